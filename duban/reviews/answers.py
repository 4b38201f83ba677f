"""Requests out, answers in (the owner, from the signed link), answers closed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.action_common import acknowledge_task
from duban.evidence import add_evidence
from duban.models import Event, Person, Review, ReviewItem, Task
from duban.reviews.common import Outcome, ReviewError, _counts, _ledger, _review, _task, _text, judges
from duban.vocabulary import EventKind, ItemState, MessageKind, ReviewState


def send_requests(session: Session, review: Review, *, today: dt.date, now: dt.datetime) -> set[int]:
    """One request per item to the owner asked (idempotent: the ledger keeps each key once)."""
    told: set[int] = set()
    rows = session.execute(
        select(ReviewItem, Task).join(Task, Task.id == ReviewItem.task_id).where(ReviewItem.review_id == review.id).order_by(ReviewItem.id)
    ).all()
    for item, task in rows:
        if _ledger(
            session,
            key=f"{MessageKind.REVIEW_REQUEST}:rv{review.id}:i{item.id}:p{item.owner_id}",
            review=review,
            recipient=item.owner_id,
            kind=MessageKind.REVIEW_REQUEST,
            today=today,
            now=now,
            task=task,
            data={"item": item.id, "ask": review.ask},
        ):
            told.add(item.owner_id)
    if review.requests_sent_at is None:
        review.requests_sent_at = now
    return told


def _close_answers(session: Session, review: Review, *, today: dt.date, now: dt.datetime) -> set[int]:
    """open → waiting_verdicts: the office is asked for the verdicts."""
    review.status = ReviewState.WAITING
    review.answers_closed_on = today
    told = set()
    counts = _counts(session, review.id)
    for member in judges(session, review):
        if _ledger(
            session,
            key=f"{MessageKind.REVIEW_VERDICTS}:rv{review.id}:p{member}",
            review=review,
            recipient=member,
            kind=MessageKind.REVIEW_VERDICTS,
            today=today,
            now=now,
            data={"items": counts["items"], "answered": counts["answered"]},
        ):
            told.add(member)
    return told


def record_answer(
    session: Session,
    item: ReviewItem,
    *,
    person: Person,
    done: str,
    problems: str,
    next_steps: str,
    urls: list[str],
    files: list[Any],
    now: dt.datetime,
    today: dt.date,
    channel: str = "link",
    origin: dict[str, Any] | None = None,
) -> Outcome:
    """The owner's answer for one task (again, to amend it, until the task is judged)."""
    review = _review(session, item.review_id, for_update=True)
    if review.status in (ReviewState.CLOSED, ReviewState.CANCELLED):
        raise ReviewError("本次督查已结束（已完成或已撤销），无需再填报。")
    if item.status == ItemState.JUDGED:
        raise ReviewError("该任务的督查已评定，不能再修改填报内容。如需补充，请联系领导小组办公室。")
    if item.owner_id != person.id:
        raise ReviewError("该督查事项不由您填报。")
    done = _text(done, what="已完成工作", required=True)
    problems = _text(problems, what="存在问题")
    next_steps = _text(next_steps, what="下一步计划", required=True)
    amended = item.answered_at is not None
    item.done, item.problems, item.next_steps = done, problems, next_steps
    item.answered_at, item.answered_by, item.status = now, person.name, ItemState.ANSWERED
    task = _task(session, item.task_id)
    if task.owner_id == person.id:
        acknowledge_task(session, task, now)  # answering counts as 签收, like any first action on the task
    ev = Event(
        plan_id=review.plan_id,
        task_id=task.id,
        at=now,
        actor=person.name,
        channel=channel,
        kind=EventKind.REVIEW_ANSWERED,
        data={
            "review": review.id,
            "item": item.id,
            "review_title": review.title,
            "amended": amended,
            "late": today > review.reply_by,
            "done": done[:500],
            "problems": problems[:500],
            "next_steps": next_steps[:500],
            **(origin or {}),
        },
    )
    session.add(ev)
    session.flush()
    add_evidence(
        session,
        urls,
        files,
        plan_id=review.plan_id,
        task_id=task.id,
        event_id=ev.id,
        review_item_id=item.id,
        person_id=person.id,
        created_at=now,
    )
    session.flush()
    notify: set[int] = set()
    wake = False
    if review.status == ReviewState.OPEN and _counts(session, review.id)["answered"] == _counts(session, review.id)["items"]:
        notify |= _close_answers(session, review, today=today, now=now)
        wake = True
    msg = "已修改您的督查填报内容。" if amended else "已收到您的督查填报，感谢您的配合。"
    if today > review.reply_by:
        msg += f"（填报截止日期为 {review.reply_by.isoformat()}，本次为逾期填报。）"
    return Outcome(msg + "评定前如需补充，可再次打开此链接修改。", notify, wake)
