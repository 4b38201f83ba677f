"""Verdicts (the office: review page, CLI, or Prefect flow input), follow-ups, and cancelling."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from duban.models import Event, Link, Milestone, Notification, Person, Review, ReviewItem, Task
from duban.reviews.common import Outcome, ReviewError, _counts, _ledger, _text, judge_refusal
from duban.vocabulary import EventKind, ItemState, LedgerStatus, MessageKind, MilestoneOrigin, MilestoneState, ReviewState, Verdict


@dataclass
class TaskVerdict:
    task_code: str
    verdict: str
    note: str = ""
    follow_up_title: str = ""
    follow_up_due: dt.date | None = None
    follow_up_owner: str = ""  # a person's name; the task's owner when empty


def give_verdict(
    session: Session,
    review: Review,
    v: TaskVerdict,
    *,
    actor: str,
    now: dt.datetime,
    today: dt.date,
    channel: str = "cli",
    judge_id: int | None = None,
) -> Outcome:
    """Judge one task of ``review`` (again, to change it, until the review is closed).  The last
    verdict does not close the review: :func:`duban.reviews.closing.close_review` does, on the
    office's explicit step.

    Nobody judges a task they own (answered for the review, or own now): ``judge_id`` (a link's
    holder) must be one of the task's judges; a judge known only by name (``actor``: the CLI, the
    flow's input) is refused when the name is the owner's."""
    item, task = _judgeable_item(session, review, v, actor=actor, judge_id=judge_id)
    note = _text(v.note, what="评定意见", required=v.verdict == Verdict.FIX, limit=2000)
    notify: set[int] = set()
    old_ms = session.get(Milestone, item.follow_up_milestone_id) if item.follow_up_milestone_id else None
    if v.verdict == Verdict.FIX:
        owner_id, ms = _follow_up_step(session, review, v, task, old_ms, now=now, today=today)
        item.follow_up_milestone_id, item.follow_up_owner_id = ms.id, owner_id
        if _ledger(
            session,
            key=f"{MessageKind.REVIEW_FOLLOW_UP}:rv{review.id}:i{item.id}:m{ms.id}v{ms.due_version}:p{owner_id}",
            review=review,
            recipient=owner_id,
            kind=MessageKind.REVIEW_FOLLOW_UP,
            today=today,
            now=now,
            task=task,
            milestone_id=ms.id,
            due=ms.due_date,
            data={"item": item.id, "milestone": ms.title, "note": note, "task_owner": owner_id == task.owner_id},
        ):
            notify.add(owner_id)
    else:
        if old_ms is not None and old_ms.status in (MilestoneState.ASSIGNED, MilestoneState.IN_PROGRESS):
            old_ms.status, old_ms.archived_at = MilestoneState.ARCHIVED, now  # the verdict changed: no 整改 any more
        item.follow_up_milestone_id, item.follow_up_owner_id = None, None
    item.verdict, item.verdict_note, item.verdict_by, item.verdict_at, item.status = v.verdict, note, actor[:200], now, ItemState.JUDGED
    session.add(
        Event(
            plan_id=review.plan_id,
            task_id=task.id,
            milestone_id=item.follow_up_milestone_id,
            at=now,
            actor=actor[:200],
            channel=channel,
            kind=EventKind.REVIEW_JUDGED,
            data={
                "review": review.id,
                "item": item.id,
                "review_title": review.title,
                "verdict": v.verdict,
                "note": note,
                "follow_up": item.follow_up_milestone_id,
            },
        )
    )
    session.flush()
    counts = _counts(session, review.id)
    msg = f"任务 {task.code} 评定为「{v.verdict}」。"
    if counts["judged"] == counts["items"]:
        msg += "本次督查的全部任务均已评定；核对无误后，请点击“完成评定并报送”生成督查报告并报送领导小组。"
    return Outcome(msg, notify)


def _judgeable_item(session: Session, review: Review, v: TaskVerdict, *, actor: str, judge_id: int | None) -> tuple[ReviewItem, Task]:
    """The review's item for ``v.task_code``, once the review, the judge and the verdict allow judging it."""
    if review.status == ReviewState.CANCELLED:
        raise ReviewError("本次督查已撤销，不能评定。")
    if review.status == ReviewState.CLOSED:
        raise ReviewError("本次督查已完成并已生成报告，评定不能再修改。")
    row = session.execute(
        select(ReviewItem, Task)
        .join(Task, Task.id == ReviewItem.task_id)
        .where(ReviewItem.review_id == review.id, Task.code == v.task_code)
    ).first()
    if row is None:
        raise ReviewError(f"本次督查中没有编号为 {v.task_code} 的任务。")
    item, task = row
    _check_judge(session, review, item, task, actor=actor, judge_id=judge_id)
    if v.verdict not in tuple(Verdict):
        raise ReviewError(f"评定结果“{v.verdict}”不正确，应为：{'、'.join(tuple(Verdict))}。")
    if review.status == ReviewState.OPEN and item.answered_at is None:
        raise ReviewError(f"任务 {task.code} 尚未填报；请在责任人填报后，或填报截止（{review.reply_by.isoformat()}）后再评定。")
    return item, task


def _follow_up_step(
    session: Session, review: Review, v: TaskVerdict, task: Task, old_ms: Milestone | None, *, now: dt.datetime, today: dt.date
) -> tuple[int, Milestone]:
    """需整改: its owner and its step (the open one of an earlier verdict moved, else a new one)."""
    title = _text(v.follow_up_title, what="整改事项（整改里程碑名称）", required=True, limit=300)
    if v.follow_up_due is None or v.follow_up_due <= today:
        raise ReviewError(f"请填写晚于今天（{today.isoformat()}）的整改完成日期。")
    owner_id = task.owner_id
    if v.follow_up_owner.strip():
        named = session.scalar(select(Person.id).where(Person.plan_id == review.plan_id, Person.name == v.follow_up_owner.strip()))
        if named is None:
            raise ReviewError(f"方案中没有名为“{v.follow_up_owner.strip()}”的人员，无法指定为整改责任人。")
        owner_id = named
    full_title = f"督查整改：{title}"
    if old_ms is not None and old_ms.status in (MilestoneState.ASSIGNED, MilestoneState.IN_PROGRESS):
        if old_ms.due_date != v.follow_up_due:
            old_ms.due_version += 1
        old_ms.title, old_ms.due_date, old_ms.baseline_due_date = full_title, v.follow_up_due, v.follow_up_due
        return owner_id, old_ms
    seq = (session.scalar(select(func.max(Milestone.seq)).where(Milestone.task_id == task.id)) or 0) + 1
    acknowledged = task.acknowledged_at is not None
    ms = Milestone(
        task_id=task.id,
        seq=seq,
        title=full_title,
        due_date=v.follow_up_due,
        baseline_due_date=v.follow_up_due,
        due_text=f"督查整改（{review.title}）",
        due_version=1,
        is_final=False,
        origin=MilestoneOrigin.REVIEW,
        status=MilestoneState.IN_PROGRESS if acknowledged else MilestoneState.ASSIGNED,
        assigned_at=now,
        acknowledged_at=now if acknowledged else None,
    )
    session.add(ms)
    session.flush()
    return owner_id, ms


def _check_judge(session: Session, review: Review, item: ReviewItem, task: Task, *, actor: str, judge_id: int | None) -> None:
    judge = judge_id
    if judge is None:  # named only: refused when the name is one of the task's owners
        judge = session.scalar(select(Person.id).where(Person.plan_id == review.plan_id, Person.name == actor.strip()))
    if judge is None:
        return
    why = judge_refusal(session, review.plan_id, judge, {item.owner_id, task.owner_id}, code=task.code, strict=judge_id is not None)
    if why is not None:
        raise ReviewError(why)


def cancel(session: Session, review_id: int, *, actor: str, reason: str, now: dt.datetime, today: dt.date) -> Outcome:
    review = session.get(Review, review_id, with_for_update=True)
    if review is None:
        raise ReviewError(f"没有编号为 {review_id} 的督查。")
    if review.status in (ReviewState.CLOSED, ReviewState.CANCELLED):
        raise ReviewError(f"督查 {review_id} 已{'完成' if review.status == ReviewState.CLOSED else '撤销'}，不能撤销。")
    review.status, review.cancelled_by, review.cancel_reason, review.closed_at = ReviewState.CANCELLED, actor[:200], reason.strip(), now
    notify = set()
    for item, task in session.execute(
        select(ReviewItem, Task)
        .join(Task, Task.id == ReviewItem.task_id)
        .where(ReviewItem.review_id == review.id, ReviewItem.answered_at.is_(None))
    ).all():
        if _ledger(
            session,
            key=f"{MessageKind.REVIEW_CANCELLED}:rv{review.id}:i{item.id}",
            review=review,
            recipient=item.owner_id,
            kind=MessageKind.REVIEW_CANCELLED,
            today=today,
            now=now,
            task=task,
            data={"item": item.id, "reason": review.cancel_reason},
        ):
            notify.add(item.owner_id)
    item_ids = select(ReviewItem.id).where(ReviewItem.review_id == review.id)
    session.execute(
        update(Link)
        .where(Link.void_at.is_(None), (Link.review_id == review.id) | Link.review_item_id.in_(item_ids))
        .values(void_at=now, void_reason="督查已撤销")
    )
    # pending reminders that were not sent yet are dropped
    session.execute(
        update(Notification)
        .where(
            Notification.status == LedgerStatus.PENDING,
            Notification.digest_id.is_(None),
            Notification.kind.in_(
                (MessageKind.REVIEW_REMINDER, MessageKind.REVIEW_OVERDUE, MessageKind.REVIEW_ESCALATION, MessageKind.REVIEW_REQUEST)
            ),
            Notification.task_id.in_(select(ReviewItem.task_id).where(ReviewItem.review_id == review.id)),
        )
        .values(status="cancelled")
    )
    return Outcome(f"督查 {review.id}（{review.title}）已撤销。", notify, wake=True)
