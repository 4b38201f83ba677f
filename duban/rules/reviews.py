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

from duban.rules.deadlines import Calendar, Decision, TaskView, _ladder
from duban.rules.policy import DeadlinePolicy
from duban.vocabulary import MessageKind


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
    data = {
        "code": view.task.code,
        "title": view.task.title,
        "review": view.review_id,
        "item": view.item_id,
        "review_title": view.review_title,
        "reply_by": view.reply_by.isoformat(),
    }
    decided = _ladder(
        view.task,
        f"rv{view.review_id}i{view.item_id}",
        view.reply_by,
        policy,
        cal,
        today,
        before=before,
        soon_kind=MessageKind.REVIEW_REMINDER,
        late_kind=MessageKind.REVIEW_OVERDUE,
        data=data,
    )
    return [
        dataclasses.replace(d, kind=MessageKind.REVIEW_ESCALATION, key="review_" + d.key) if d.kind == MessageKind.ESCALATION else d
        for d in decided
    ]


def answers_closed(*, today: dt.date, reply_by: dt.date, unanswered: int) -> bool:
    """Whether a review stops waiting for answers: everyone answered, or the reply-by date passed."""
    return unanswered == 0 or today > reply_by
