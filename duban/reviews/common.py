"""What the review modules share: the error, text checks, the counts and the ledger items
(messages: they land in each person's normal digest)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from duban.models import Notification, Person, Plan, PlanRole, Review, ReviewItem, Task
from duban.roles import reviewers, who_decides
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


def judges(session: Session, review: Review) -> list[int]:
    """Who is asked for a review's verdicts: the office, and whoever judges the tasks that office
    members own (the office's other members, else the leading group: nobody judges their own)."""
    out = list(office_members(session, review.plan_id))
    owner_sets = session.execute(
        select(ReviewItem.owner_id, Task.owner_id).join(Task, Task.id == ReviewItem.task_id).where(ReviewItem.review_id == review.id)
    ).all()
    for owners in {frozenset(row) for row in owner_sets}:
        out += reviewers(session, review.plan_id, exclude=owners)
    return list(dict.fromkeys(out))


def judge_refusal(session: Session, plan_id: int, judge: int, owners: set[int], *, code: str, strict: bool = True) -> str | None:
    """Why ``judge`` may not judge a task owned by ``owners`` (Chinese), or None.  Nobody judges a
    task they own; ``strict``: only its judges (``duban.roles.reviewers``) judge it."""
    who = who_decides(session, plan_id, owners)
    if judge in owners:
        if who:
            return f"不能评定自己负责的任务（任务 {code}），请由{who}评定。"
        return f"不能评定自己负责的任务（任务 {code}）；本方案没有其他可以评定的人员，请在方案中增补领导小组办公室成员后再评定。"
    if strict and judge not in reviewers(session, plan_id, exclude=owners):
        return f"任务 {code} 由{who or '领导小组办公室'}评定，您不能评定。"
    return None


def report_readers(session: Session, plan_id: int) -> list[int]:
    """Who receives the report: the leading group and the office (active people)."""
    rows = session.execute(
        select(PlanRole.person_id)
        .join(Person, Person.id == PlanRole.person_id)
        .where(PlanRole.plan_id == plan_id, PlanRole.role.in_((PlanRoleKind.LEADING_GROUP, PlanRoleKind.OFFICE)), Person.active.is_(True))
        .order_by(PlanRole.role, PlanRole.position)
    ).scalars()
    return list(dict.fromkeys(rows))
