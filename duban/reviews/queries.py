"""Reading reviews: the report's data, the list, a task's 督查记录."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from duban.links import local_time
from duban.models import (
    Department,
    Evidence,
    Milestone,
    Notification,
    Person,
    Plan,
    Project,
    Review,
    ReviewItem,
    System,
    Task,
)
from duban.reviews.common import _counts, _plan
from duban.vocabulary import EvidenceKind, MessageKind, ReviewState, ScopeKind, Verdict


def report_data(session: Session, review: Review, *, generated_at: dt.datetime | None = None, tz=None) -> dict[str, Any]:
    """Everything the report shows, as plain data (duban.review_report renders it)."""

    plan = _plan(session, review.plan_id)
    rows = session.execute(
        select(ReviewItem, Task, Person.name.label("owner"), Department.name.label("dept"), System.name.label("system"))
        .join(Task, Task.id == ReviewItem.task_id)
        .join(Person, Person.id == ReviewItem.owner_id)
        .join(Project, Project.id == Task.project_id)
        .join(System, System.id == Project.system_id)
        .outerjoin(Department, Department.id == Task.lead_department_id)
        .where(ReviewItem.review_id == review.id)
        .order_by(System.position, Project.position, Task.position, Task.code)
    ).all()
    evidence: dict[int, list[str]] = defaultdict(list)
    for e in session.scalars(select(Evidence).where(Evidence.review_item_id.in_([r[0].id for r in rows] or [-1])).order_by(Evidence.id)):
        if e.review_item_id is None:  # selected by review_item_id: never
            continue
        evidence[e.review_item_id].append(e.url if e.kind == EvidenceKind.URL and e.url is not None else f"附件：{e.filename}")
    names = dict(session.execute(select(Person.id, Person.name).where(Person.plan_id == review.plan_id)).all())
    milestones = {
        m.id: m
        for m in session.scalars(
            select(Milestone).where(Milestone.id.in_([r[0].follow_up_milestone_id for r in rows if r[0].follow_up_milestone_id] or [-1]))
        )
    }
    items, non_responders, follow_ups = [], [], []
    verdict_counts: dict[str, int] = {v: 0 for v in tuple(Verdict)}  # keyed by the stored verdict
    for item, task, owner, dept, system in rows:
        late = item.answered_at is not None and _local_day(item.answered_at, tz) > review.reply_by
        entry = {
            "code": task.code,
            "title": task.title,
            "system": system,
            "department": dept or "",
            "owner": owner,
            "answered": item.answered_at is not None,
            "answered_at": local_time(item.answered_at, tz),
            "late": late,
            "done": item.done,
            "evidence": evidence.get(item.id, []),
            "problems": item.problems,
            "next_steps": item.next_steps,
            "verdict": item.verdict or "",
            "verdict_note": item.verdict_note,
            "verdict_by": item.verdict_by or "",
        }
        items.append(entry)
        if item.verdict:
            verdict_counts[item.verdict] += 1
        if item.answered_at is None:
            non_responders.append({"code": task.code, "title": task.title, "department": dept or "", "owner": owner})
        if item.follow_up_milestone_id:
            m = milestones[item.follow_up_milestone_id]
            follow_ups.append(
                {
                    "code": task.code,
                    "title": task.title,
                    "milestone": m.title,
                    "owner": names.get(item.follow_up_owner_id, "") if item.follow_up_owner_id is not None else "",
                    "due": m.due_date.isoformat(),
                    "note": item.verdict_note,
                }
            )
    scope = ScopeKind.label_of(review.scope_kind) + ("：" + "、".join(review.scope_values) if review.scope_values else "")
    return {
        "id": review.id,
        "title": review.title,
        "plan": plan.name,
        "plan_code": plan.code,
        "organization": plan.organization,
        "ask": review.ask,
        "scope": scope,
        "started_on": review.started_on.isoformat(),
        "reply_by": review.reply_by.isoformat(),
        "started_by": review.started_by,
        "status": review.status,
        "generated_at": local_time(generated_at, tz) if generated_at else "",
        "counts": {
            "items": len(items),
            "answered": sum(1 for i in items if i["answered"]),
            "late": sum(1 for i in items if i["late"]),
            "verdicts": verdict_counts,
        },
        "items": items,
        "non_responders": non_responders,
        "follow_ups": follow_ups,
        "escalations": _escalations(session, review),
    }


def _escalations(session: Session, review: Review) -> list[dict[str, Any]]:
    """The 督办 sent about missing answers of this review (who was told, at which level)."""
    levels = {1: "部门负责人", 2: "分管校领导", 3: "领导小组办公室"}
    out = []
    for n, name in session.execute(
        select(Notification, Person.name)
        .join(Person, Person.id == Notification.recipient_id)
        .where(Notification.kind == MessageKind.REVIEW_ESCALATION, Notification.plan_id == review.plan_id)
        .order_by(Notification.decided_on, Notification.level, Notification.id)
    ):
        if (n.data or {}).get("review") == review.id:
            out.append(
                {
                    "code": n.data.get("code", ""),
                    "owner": n.data.get("owner", ""),
                    "level": levels.get(n.level, str(n.level)),
                    "to": name,
                    "on": n.decided_on.isoformat(),
                }
            )
    return out


def _local_day(value: dt.datetime, tz) -> dt.date:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(tz or ZoneInfo("Asia/Shanghai")).date()


def summaries(session: Session, *, plan_code: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
    q = select(Review, Plan.code).join(Plan, Plan.id == Review.plan_id).order_by(Review.id.desc())
    if plan_code:
        q = q.where(Plan.code == plan_code)
    if status:
        q = q.where(Review.status == status)
    out = []
    for review, code in session.execute(q).all():
        counts = _counts(session, review.id)
        out.append(
            {
                "id": review.id,
                "plan": code,
                "title": review.title,
                "status": review.status,
                "reply_by": review.reply_by.isoformat(),
                "started_on": review.started_on.isoformat(),
                "started_by": review.started_by,
                **counts,
                "flow_run_id": review.flow_run_id or "",
            }
        )
    return out


_TASK_HISTORY = (
    select(
        Review.title,
        Review.status,
        Review.reply_by,
        ReviewItem.answered_at,
        ReviewItem.done,
        ReviewItem.problems,
        ReviewItem.next_steps,
        ReviewItem.verdict,
        ReviewItem.verdict_note,
        Milestone.title.label("ms_title"),
        Milestone.due_date.label("ms_due"),
    )
    .join(Review, Review.id == ReviewItem.review_id)
    .outerjoin(Milestone, Milestone.id == ReviewItem.follow_up_milestone_id)
    .where(ReviewItem.task_id == bindparam("task_id"))
    .order_by(Review.id.desc())
)


def task_history(session: Session, task_id: int) -> list[dict[str, Any]]:
    """The reviews a task was part of, newest first (the task page's 督查记录): one statement,
    built once — the link pages show it on every view."""
    return [
        {
            "review": r.title,
            "status": ReviewState.label_of(r.status),
            "reply_by": r.reply_by.isoformat(),
            "answered": r.answered_at is not None,
            "done": r.done,
            "problems": r.problems,
            "next_steps": r.next_steps,
            "verdict": r.verdict or "",
            "note": r.verdict_note,
            "follow_up": f"{r.ms_title}（{r.ms_due.isoformat()}）" if r.ms_title is not None else "",
        }
        for r in session.execute(_TASK_HISTORY, {"task_id": task_id})
    ]
