"""The review functions the flow (flows/review.py), the web pages and the CLI call, in one place
(``from duban.reviews import api as reviews``); the package itself imports nothing, so its modules
import each other without a cycle through it."""

from __future__ import annotations

from duban.reviews.answers import record_answer, send_requests
from duban.reviews.closing import VerdictSummary, close_refusal, close_review, verdict_summary
from duban.reviews.common import Outcome, ReviewError, judge_refusal, judges, office_members, report_readers
from duban.reviews.progress import Advance, Started, TickResult, advance, deliver, item_views, next_wake_round, start, tick
from duban.reviews.queries import report_data, summaries, task_history
from duban.reviews.scope import attach_flow_run, create, default_title, plan_by_code, scope_choices, scope_tasks
from duban.reviews.verdicts import TaskVerdict, cancel, give_verdict

__all__ = [
    "Advance",
    "Outcome",
    "ReviewError",
    "Started",
    "TaskVerdict",
    "TickResult",
    "VerdictSummary",
    "advance",
    "attach_flow_run",
    "cancel",
    "close_refusal",
    "close_review",
    "create",
    "default_title",
    "deliver",
    "give_verdict",
    "item_views",
    "judge_refusal",
    "judges",
    "next_wake_round",
    "office_members",
    "plan_by_code",
    "record_answer",
    "report_data",
    "report_readers",
    "scope_choices",
    "scope_tasks",
    "send_requests",
    "start",
    "summaries",
    "task_history",
    "tick",
    "verdict_summary",
]
