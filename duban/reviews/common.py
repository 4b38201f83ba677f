"""What the review modules share: the error, text checks, the counts and the ledger items
(messages: they land in each person's normal digest)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from duban.links import reviewers
from duban.models import Notification, Person, Plan, PlanRole, Review, ReviewItem, Task
from duban.values import clean_text
from duban.vocabulary import ItemState, LedgerStatus, PlanRoleKind

MAX_TEXT = 5000


class ReviewError(ValueError):
    """A review action that cannot be done; the message (Chinese) says why and what to do."""


def _review(session: Session, review_id: int, *, for_update: bool = False) -> Review:
    review = session.get(Review, review_id, with_for_update=for_update)
    if review is None:
        raise ReviewError(f"没有编号为 {review_id} 的督查。")
    return review


def _task(session: Session, task_id: int) -> Task:
    task = session.get(Task, task_id)
    if task is None:
        raise ReviewError(f"没有编号为 {task_id} 的任务。")
    return task


def _plan(session: Session, plan_id: int) -> Plan:
    plan = session.get(Plan, plan_id)
    if plan is None:
        raise ReviewError(f"没有编号为 {plan_id} 的方案。")
    return plan


def _text(value: str | None, *, what: str, required: bool = False, limit: int = MAX_TEXT) -> str:
    return clean_text(value, what=what, required=required, limit=limit, error=ReviewError)


@dataclass
class Outcome:
    message: str
    notify: set[int] = field(default_factory=set)
    wake: bool = False  # the review moved on: wake its flow run (or advance it in-process)


def _counts(session: Session, review_id: int) -> dict[str, int]:
    rows = session.execute(
        select(ReviewItem.status, ReviewItem.answered_at.is_not(None), func.count())
        .where(ReviewItem.review_id == review_id)
        .group_by(ReviewItem.status, ReviewItem.answered_at.is_not(None))
    ).all()
    out = {"items": 0, "answered": 0, "judged": 0}
    for status, answered, n in rows:
        out["items"] += n
        out["answered"] += n if answered else 0
        out["judged"] += n if status == ItemState.JUDGED else 0
    return out


def _ledger(
    session: Session,
    *,
    key: str,
    review: Review,
    recipient: int,
    kind: str,
    today: dt.date,
    now: dt.datetime,
    task: Task | None = None,
    milestone_id: int | None = None,
    due: dt.date | None = None,
    data: dict[str, Any] | None = None,
) -> bool:
    if session.scalar(select(Notification.id).where(Notification.key == key)) is not None:
        return False
    session.add(
        Notification(
            key=key,
            plan_id=review.plan_id,
            task_id=task.id if task else None,
            milestone_id=milestone_id,
            recipient_id=recipient,
            kind=kind,
            level=0,
            due_date=due if due is not None else review.reply_by,
            days=0,
            decided_on=today,
            created_at=now,
            status=LedgerStatus.PENDING,
            data={
                "code": task.code if task else "",
                "title": task.title if task else review.title,
                "review": review.id,
                "review_title": review.title,
                "reply_by": review.reply_by.isoformat(),
                **(data or {}),
            },
        )
    )
    return True


def office_members(session: Session, plan_id: int) -> list[int]:
    """Who judges a review: the office (the leading group when the plan has no office)."""
    return reviewers(session, plan_id)


def report_readers(session: Session, plan_id: int) -> list[int]:
    """Who receives the report: the leading group and the office (active people)."""
    rows = session.execute(
        select(PlanRole.person_id)
        .join(Person, Person.id == PlanRole.person_id)
        .where(PlanRole.plan_id == plan_id, PlanRole.role.in_((PlanRoleKind.LEADING_GROUP, PlanRoleKind.OFFICE)), Person.active.is_(True))
        .order_by(PlanRole.role, PlanRole.position)
    ).scalars()
    return list(dict.fromkeys(rows))
