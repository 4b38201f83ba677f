"""What a link page shows, loaded in a few queries: the task, its 任务书 and 完成标志, its
milestones with states and dates, requests waiting, and its history with evidence."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BindParameter, Row, and_, bindparam, select
from sqlalchemy.orm import Session

from duban.action_common import label
from duban.approvals import REQUEST_STATUS
from duban.evidence import human_size
from duban.links import local_time
from duban.models import (
    Department,
    Event,
    Evidence,
    Milestone,
    Person,
    Request,
    Task,
)
from duban.reviews.queries import task_history
from duban.timeline import EVENT_LABELS, HIDDEN_EVENTS, Entry, FileView, actor_name, timeline
from duban.timeline import event_detail as _detail
from duban.vocabulary import OPEN_STATES, MilestoneState, RequestKind, RequestStatus

STATE_CLASS = {
    MilestoneState.ASSIGNED: "s-assigned",
    MilestoneState.IN_PROGRESS: "s-progress",
    MilestoneState.SUBMITTED: "s-submitted",
    MilestoneState.DONE: "s-done",
    MilestoneState.ARCHIVED: "s-archived",
}


@dataclass
class HistoryEntry:
    at: str
    actor: str
    label: str
    milestone: str
    detail: str
    evidence: list[FileView] = field(default_factory=list)
    sent: str = ""  # a reminder: "发给 教务处处长 · 电子邮件 · 已发送（…）"
    failed: bool = False


@dataclass
class MilestoneView:
    id: int
    label: str
    due: str
    baseline: str | None  # shown when an extension moved the date
    state: str
    state_class: str
    overdue: bool
    current: bool


@dataclass
class RequestView:
    id: int
    kind: str
    kind_label: str
    status: str
    status_label: str
    who: str
    at: str
    note: str
    milestone: str
    due: str
    new_due: str | None
    task_code: str
    task_title: str
    decided: str  # "2026-11-24 10:00 由 督办员 审核：已退回（原因）"
    evidence: list[FileView] = field(default_factory=list)


@dataclass
class TaskPage:
    code: str
    title: str
    statement: str
    done_criteria: str
    deadline_text: str
    owner: str
    department: str
    partners: str
    acknowledged: str
    milestones: list[MilestoneView]
    pending: list[RequestView]
    history: list[HistoryEntry]
    reviews: list[dict[str, Any]] = field(default_factory=list)  # 督查记录 (duban.reviews.task_history)


def _file_views(rows: list[Evidence]) -> list[FileView]:
    return [FileView(e.id, e.kind, e.filename or e.url or "", e.url, human_size(e.size)) for e in rows]


_STATEMENTS: dict[str, Any] = {}


def _statements() -> dict[str, Any]:
    """The page's queries, built once (Core rows: the page only reads).  Built into a new dict
    and published whole: the first requests of a process come in on several threads at once,
    and a thread must never see the dict half filled (it did: KeyError 'history')."""
    if not _STATEMENTS:
        built: dict[str, Any] = {}
        ms, ev, evd = Milestone.__table__, Event.__table__, Evidence.__table__
        tid: BindParameter[int] = bindparam("task_id")
        built["milestones"] = (
            select(ms.c.id, ms.c.seq, ms.c.title, ms.c.is_final, ms.c.status, ms.c.due_date, ms.c.baseline_due_date)
            .where(ms.c.task_id == tid)
            .order_by(ms.c.seq, ms.c.id)
        )
        # the newest events, each with its evidence, in one query
        recent = (
            select(ev.c.id, ev.c.at, ev.c.actor, ev.c.channel, ev.c.kind, ev.c.milestone_id, ev.c.data)
            .where(ev.c.task_id == tid, ev.c.kind.not_in(sorted(HIDDEN_EVENTS)))
            .order_by(ev.c.at.desc(), ev.c.id.desc())
            .limit(bindparam("history_limit"))
            .subquery("recent")
        )
        built["history"] = (
            select(
                recent,
                evd.c.id.label("f_id"),
                evd.c.kind.label("f_kind"),
                evd.c.filename.label("f_name"),
                evd.c.url.label("f_url"),
                evd.c.size.label("f_size"),
            )
            .outerjoin(evd, and_(evd.c.event_id == recent.c.id, evd.c.task_id == tid))
            .order_by(recent.c.at.desc(), recent.c.id.desc(), evd.c.id)
        )
        built["requests"] = select(Request).where(Request.task_id == tid, Request.status == RequestStatus.PENDING).order_by(Request.id)
        _STATEMENTS.update(built)  # one call under the GIL: all keys at once
    return _STATEMENTS


def task_page(
    session: Session,
    task: Task,
    *,
    today: dt.date,
    tz,
    current_milestone: int | None = None,
    history_limit: int = 100,
    owner: Person | None = None,
    department: Department | None = None,
    for_person: int | None = None,
) -> TaskPage:
    """``owner`` and ``department``, when the caller has them (duban.links.resolve loads them with
    the link), save their queries.  ``for_person``: the owner's own view (a VIEW link), whose
    history shows the reminders sent to that person too (:func:`duban.timeline.timeline`)."""
    q = _statements()
    if owner is None or owner.id != task.owner_id:
        owner = session.get(Person, task.owner_id)
    dept = (
        department
        if department is not None and department.id == task.lead_department_id
        else (session.get(Department, task.lead_department_id) if task.lead_department_id else None)
    )
    ms = session.execute(q["milestones"], {"task_id": task.id}).all()
    labels = {m.id: label(m) for m in ms}
    if for_person is None:
        history = _history(session, task.id, labels, tz=tz, limit=history_limit)
    else:
        history = _own_history(session, task, tz=tz, person_id=for_person, limit=history_limit)
    pending = [
        request_view(session, r, task=task, milestones=ms, tz=tz, with_evidence=False, people={owner.id: owner} if owner else None)
        for r in session.scalars(q["requests"], {"task_id": task.id})
    ]
    return TaskPage(
        code=task.code,
        title=task.title,
        statement=task.statement,
        done_criteria=task.done_criteria,
        deadline_text=task.deadline_text,
        owner=owner.name if owner else "",
        department=dept.name if dept else "",
        partners="、".join(task.partners or []),
        acknowledged=local_time(task.acknowledged_at, tz),
        milestones=milestone_views(ms, labels, today=today, current=current_milestone),
        pending=pending,
        history=history,
        reviews=task_history(session, task.id),
    )


def approve_min(session: Session, req: Request) -> str:
    """The earliest date an extension may be approved to: the day after the step's current due date."""
    m = session.get(Milestone, req.milestone_id) if req.kind == RequestKind.EXTENSION and req.milestone_id else None
    return (m.due_date + dt.timedelta(days=1)).isoformat() if m is not None else ""


def milestone_views(ms: Sequence[Any], labels: dict[int, str], *, today: dt.date, current: int | None) -> list[MilestoneView]:
    """The roadmap as a page shows it (archived steps left out, unless the link names one)."""
    return [
        MilestoneView(
            id=m.id,
            label=labels[m.id],
            due=m.due_date.isoformat(),
            baseline=m.baseline_due_date.isoformat() if m.baseline_due_date != m.due_date else None,
            state=MilestoneState(m.status).label,
            state_class=STATE_CLASS.get(m.status, ""),
            overdue=m.status in OPEN_STATES and m.due_date < today,
            current=m.id == current,
        )
        for m in ms
        if m.status != MilestoneState.ARCHIVED or m.id == current
    ]


def _history(session: Session, task_id: int, labels: dict[int, str], *, tz, limit: int) -> list[HistoryEntry]:
    """The newest events, each with its evidence (one query: the link pages' fast path)."""
    history: list[HistoryEntry] = []
    last = None
    for row in session.execute(_statements()["history"], {"task_id": task_id, "history_limit": limit}):
        if row.id != last:
            last = row.id
            history.append(
                HistoryEntry(
                    at=local_time(row.at, tz),
                    actor=actor_name(row.actor, row.channel),
                    label=EVENT_LABELS.get(row.kind, row.kind),
                    milestone=labels.get(row.milestone_id, "") if row.milestone_id else "",
                    detail=_detail(row.kind, row.data or {}),
                )
            )
        if row.f_id is not None:
            history[-1].evidence.append(FileView(row.f_id, row.f_kind, row.f_name or row.f_url or "", row.f_url, human_size(row.f_size)))
    return history


def _own_history(session: Session, task: Task, *, tz, person_id: int, limit: int) -> list[HistoryEntry]:
    """The owner's view: the task's events and the messages sent to that person, newest first."""
    entries: list[Entry] = timeline(session, task, tz=tz, for_person=person_id)
    return [
        HistoryEntry(
            at=e.when,
            actor=e.actor,
            label=e.label,
            milestone=e.milestone,
            detail=e.detail,
            evidence=e.evidence,
            sent=" · ".join(x for x in ("发给您", e.channels, e.outcome) if x) if e.source == "notice" else "",
            failed=e.failed,
        )
        for e in reversed(entries[-limit:])
    ]


def request_view(
    session: Session,
    r: Request,
    *,
    tz,
    task: Task | None = None,
    milestones: Sequence[Row[Any]] | None = None,
    with_evidence: bool = True,
    people: dict[int, Person] | None = None,
) -> RequestView:
    """``milestones``: the task's milestones as Core rows (``task_page`` has them already)."""
    task = task or session.get(Task, r.task_id)
    if task is None:
        raise LookupError(f"request {r.id}: task {r.task_id} is not in the store")
    m: Row[Any] | Milestone | None = next((x for x in milestones or () if x.id == r.milestone_id), None) if milestones else None
    if m is None and r.milestone_id:
        m = session.get(Milestone, r.milestone_id)
    who = (people or {}).get(r.person_id) or session.get(Person, r.person_id)
    decided = ""
    if r.status != RequestStatus.PENDING:
        by = session.get(Person, r.decided_by_id) if r.decided_by_id else None
        decided = f"{local_time(r.decided_at, tz)} {by.name + ' ' if by else ''}审核：{REQUEST_STATUS.get(r.status, r.status)}"
        if r.decision_note:
            decided += f"（{r.decision_note}）"
    files = []
    if with_evidence:
        files = _file_views(list(session.scalars(select(Evidence).where(Evidence.request_id == r.id).order_by(Evidence.id))))
    return RequestView(
        id=r.id,
        kind=r.kind,
        kind_label=RequestKind(r.kind).label,
        status=r.status,
        status_label=REQUEST_STATUS.get(r.status, r.status),
        who=who.name if who else "",
        at=local_time(r.created_at, tz),
        note=r.note,
        milestone=label(m),
        due=m.due_date.isoformat() if m else "",
        new_due=r.new_due_date.isoformat() if r.new_due_date else None,
        task_code=task.code,
        task_title=task.title,
        decided=decided,
        evidence=files,
    )
