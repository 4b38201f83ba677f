"""Review (督查) rules: who is reminded or escalated about a missing answer today.

Pure, like :mod:`duban.rules.deadlines`, and on the same ladder: a review item is "answer by
``reply_by``" for the owner the review asked, so the deadline ladder applies as it is — reminders
before the reply-by date (only the steps that fall after the request went out), then overdue nags
to the owner and escalations to the department head (+3 working days), the supervising leader
(+7) and the office (+15), with the plan's (or the task's) policy.  Keys name the review item, so
a review never repeats a message and two reviews of one task never share one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from duban.rules.deadlines import ESCALATION, Calendar, Decision, TaskView, _ladder
from duban.rules.policy import DeadlinePolicy

REVIEW_REQUEST = "review_request"  # 督查通知 → owner (the request itself)
REVIEW_REMINDER = "review_reminder"  # 督查填报提醒 → owner, before the reply-by date
REVIEW_OVERDUE = "review_overdue"  # 督查催报 → owner, after it
REVIEW_ESCALATION = "review_escalation"  # 督查督办 → head (1), supervising leader (2), office (3)
REVIEW_VERDICTS = "review_verdicts"  # → the office: answers are in, give the verdicts
REVIEW_FOLLOW_UP = "review_follow_up"  # → the follow-up owner: 整改 required, a new milestone
REVIEW_REPORT = "review_report"  # → the leading group and the office: the report is ready
REVIEW_CANCELLED_NOTICE = "review_cancelled"  # → owners still asked: no need to answer any more
REVIEW_KINDS = (REVIEW_REQUEST, REVIEW_REMINDER, REVIEW_OVERDUE, REVIEW_ESCALATION, REVIEW_VERDICTS, REVIEW_FOLLOW_UP,
                REVIEW_REPORT, REVIEW_CANCELLED_NOTICE)


@dataclass(frozen=True)
class ReviewItemView:
    """What the rule needs of one review item: the task (its owner replaced by the owner asked)."""

    item_id: int
    review_id: int
    review_title: str
    task: TaskView
    requested_on: dt.date
    reply_by: dt.date
    answered: bool = False
    closed: bool = False  # review closed or cancelled: nothing more to ask


def decide_item(view: ReviewItemView, policy: DeadlinePolicy, cal: Calendar, today: dt.date) -> list[Decision]:
    """Reminders and escalations about a missing answer (none once answered or the review ended)."""
    if view.answered or view.closed or today < view.requested_on:
        return []
    window = cal.workdays_between(view.requested_on, view.reply_by)
    before = tuple(step for step in policy.remind_before if step < window)  # the request itself covers the rest
    data = {"code": view.task.code, "title": view.task.title, "review": view.review_id, "item": view.item_id,
            "review_title": view.review_title, "reply_by": view.reply_by.isoformat()}
    out = []
    for d in _ladder(view.task, f"rv{view.review_id}i{view.item_id}", view.reply_by, policy, cal, today, before=before,
                     soon_kind=REVIEW_REMINDER, late_kind=REVIEW_OVERDUE, data=data):
        if d.kind == ESCALATION:
            d = dataclasses.replace(d, kind=REVIEW_ESCALATION, key="review_" + d.key)
        out.append(d)
    return out


def answers_closed(*, today: dt.date, reply_by: dt.date, unanswered: int) -> bool:
    """Whether a review stops waiting for answers: everyone answered, or the reply-by date passed."""
    return unanswered == 0 or today > reply_by
