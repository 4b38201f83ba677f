"""Announcing tasks (任务下达): telling each owner, once, what they are responsible for.

Importing a plan does not tell anybody: a task is *announced* when the office says so
(``duban announce``, the dashboard's 任务下达 button, or an import of a plan that announces on
import).  Announcing selects the tasks whose ``announced_at`` is NULL — a plan's first
announcement, the tasks a re-import added, and tasks handed to a new owner (the re-import sets
``announced_at`` back to NULL) — and in one transaction marks them announced, writes a
``TASK_ANNOUNCED`` event for each and, unless the 任务书 was handed out offline, one
``ASSIGNMENT`` ledger item per task to its owner, carrying the task book and its timetable.
``send`` then delivers them through the normal path, one digest per owner.

Nothing is decided for a task before it is announced (duban.rules.deadlines); the 签收 clock
starts at the announcement, and steps already overdue or due within ``announce_grace`` working
days get that many working days before the ladder climbs: the notice says until when.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from duban.db import session_scope
from duban.models import Department, Event, Milestone, Person, Plan, Task, table_of
from duban.plans.writes import event_row
from duban.rules.calendar import WorkCalendar
from duban.rules.policy import effective_policy
from duban.sweep.ledger import insert_ignore
from duban.values import chunks
from duban.vocabulary import EventKind, LedgerStatus, MessageKind, MilestoneState


class AnnounceError(Exception):
    """A request that cannot be carried out (an unknown plan or task); the message is for the user."""


@dataclass(frozen=True)
class AnnouncedTask:
    """One task announced (or, in a dry run, that would be)."""

    plan_code: str
    code: str
    title: str
    owner: str
    owner_id: int


@dataclass
class AnnounceResult:
    tasks: list[AnnouncedTask] = field(default_factory=list)  # announced now (a dry run: would be)
    already: int = 0  # tasks of the selection announced before
    notify: bool = True  # whether the owners are sent the notice (False: 已线下下达)
    dry_run: bool = False

    @property
    def announced(self) -> int:
        return len(self.tasks)

    @property
    def recipients(self) -> set[int]:
        """The owners a notice was written for (none when nothing is sent)."""
        return {t.owner_id for t in self.tasks} if self.notify and not self.dry_run else set()

    @property
    def owners(self) -> int:
        return len({t.owner_id for t in self.tasks})

    def by_owner(self) -> dict[str, list[AnnouncedTask]]:
        out: dict[str, list[AnnouncedTask]] = defaultdict(list)
        for t in self.tasks:
            out[t.owner].append(t)
        return dict(sorted(out.items()))


def _plans(session: Session, plan_code: str | None, plan_ids: Collection[int] | None = None) -> dict[int, Any]:
    """The plans concerned: ``plan_code``, or every plan (only ``plan_ids`` when given: an institution's)."""
    plans = {p.id: p for p in session.execute(select(Plan.id, Plan.code, Plan.policy).order_by(Plan.code))}
    if plan_ids is not None:
        plans = {k: v for k, v in plans.items() if k in plan_ids}
    if plan_code is None:
        return plans
    found = {k: v for k, v in plans.items() if v.code == plan_code}
    if not found:
        known = "、".join(p.code for p in plans.values()) or "（暂无，请先用 duban import 导入）"
        raise AnnounceError(f"没有编号为“{plan_code}”的方案。已有方案：{known}")
    return found


def _selection(
    session: Session, plan_code: str | None, task_codes: list[str] | None, plan_ids: Collection[int] | None = None
) -> tuple[dict[int, Any], list[Any]]:
    """The plans concerned and their non-archived tasks (only ``task_codes`` when given)."""
    plans = _plans(session, plan_code, plan_ids)
    q = select(Task.id, Task.plan_id, Task.code, Task.title, Task.owner_id, Task.announced_at, Task.policy, Task.position).where(
        Task.plan_id.in_(list(plans) or [-1]), Task.archived_at.is_(None)
    )
    if task_codes:
        q = q.where(Task.code.in_(task_codes))
    rows = list(session.execute(q.order_by(Task.plan_id, Task.position, Task.id)).all())
    if task_codes:
        missing = [c for c in dict.fromkeys(task_codes) if c not in {r.code for r in rows}]
        if missing:
            raise AnnounceError(f"没有找到任务编号“{'、'.join(missing)}”（或该任务已从清单中删除）。请核对任务编号。")
        if len({r.plan_id for r in rows}) > 1:
            raise AnnounceError("这些任务编号在多个方案中都有：请用 --plan 指定方案编号。")
    return plans, rows


def waiting(session: Session, plan_code: str | None = None) -> int:
    """How many tasks await announcement (the dashboard's button shows it)."""
    _, rows = _selection(session, plan_code, None)
    return sum(1 for r in rows if r.announced_at is None)


def announce(
    engine: Engine,
    *,
    today: dt.date,
    now: dt.datetime,
    actor: str,
    plan_code: str | None = None,
    task_codes: list[str] | None = None,
    notify: bool = True,
    dry_run: bool = False,
    cal: WorkCalendar | None = None,
    channel: str = "cli",
    plan_ids: Collection[int] | None = None,
) -> AnnounceResult:
    """Announce the selected tasks not announced yet (one transaction); see the module docstring.

    ``announce(engine, today=…, now=…, actor="test", notify=False)`` marks a plan announced
    without writing any notice (a test's one-line helper, or 已线下下达).  A dry run writes nothing.
    Raises ``AnnounceError`` for an unknown plan or task code (nothing written).
    """
    if dry_run:
        with session_scope(engine, readonly=True) as session:
            return preview(session, plan_code=plan_code, task_codes=task_codes, plan_ids=plan_ids)
    with session_scope(engine) as session:
        return announce_in(
            session,
            today=today,
            now=now,
            actor=actor,
            plan_code=plan_code,
            task_codes=task_codes,
            notify=notify,
            cal=cal,
            channel=channel,
            plan_ids=plan_ids,
        )


def preview(
    session: Session, *, plan_code: str | None = None, task_codes: list[str] | None = None, plan_ids: Collection[int] | None = None
) -> AnnounceResult:
    """Who would receive which tasks (a dry run), writing nothing."""
    plans, rows = _selection(session, plan_code, task_codes, plan_ids)
    fresh = [r for r in rows if r.announced_at is None]
    names = _names(session, Person, {r.owner_id for r in fresh})
    tasks = [AnnouncedTask(plans[r.plan_id].code, r.code, r.title, names.get(r.owner_id, ""), r.owner_id) for r in fresh]
    return AnnounceResult(tasks=tasks, already=len(rows) - len(fresh), dry_run=True)


def announce_in(
    session: Session,
    *,
    today: dt.date,
    now: dt.datetime,
    actor: str,
    plan_code: str | None = None,
    task_codes: list[str] | None = None,
    notify: bool = True,
    cal: WorkCalendar | None = None,
    channel: str = "cli",
    plan_ids: Collection[int] | None = None,
) -> AnnounceResult:
    """``announce`` inside the caller's transaction (the web app's ``store_write``)."""
    now = now.astimezone(dt.UTC)  # stored in UTC: SQLite keeps the wall time and drops the offset
    plans, rows = _selection(session, plan_code, task_codes, plan_ids)
    fresh = [r for r in rows if r.announced_at is None]
    result = AnnounceResult(already=len(rows) - len(fresh), notify=notify)
    marked = _mark(session, [r.id for r in fresh], now)  # only those no one else announced meanwhile
    fresh = [r for r in fresh if r.id in marked]
    names = _names(session, Person, {r.owner_id for r in fresh})
    data = {"notice": notify}
    events = [
        event_row(
            r.plan_id, r.id, EventKind.TASK_ANNOUNCED, {"owner": names.get(r.owner_id, ""), **data}, actor=actor, at=now, channel=channel
        )
        for r in fresh
    ]
    for chunk in chunks(events, 20000):
        session.execute(table_of(Event).insert(), chunk)
    if notify and fresh:
        notices = _notices(session, fresh, plans, names, today=today, cal=cal or WorkCalendar())
        insert_ignore(session, [_ledger_row(n, today=today, now=now) for n in notices])
    result.tasks = [AnnouncedTask(plans[r.plan_id].code, r.code, r.title, names.get(r.owner_id, ""), r.owner_id) for r in fresh]
    return result


def _names(session: Session, model: Any, ids: set[int]) -> dict[int, str]:
    """Names of people or departments by id."""
    out: dict[int, str] = {}
    for chunk in chunks(sorted(ids), 5000):
        out.update(session.execute(select(model.id, model.name).where(model.id.in_(chunk))).all())
    return out


def _mark(session: Session, ids: list[int], now: dt.datetime) -> set[int]:
    """Set ``announced_at``, only where it is still NULL (a second announcement at the same time
    finds the rows taken); the ids marked."""
    t = table_of(Task)
    marked: set[int] = set()
    for chunk in chunks(ids, 5000):
        stmt = update(t).where(t.c.id.in_(chunk), t.c.announced_at.is_(None)).values(announced_at=now).returning(t.c.id)
        marked.update(session.execute(stmt).scalars())
    return marked


@dataclass(frozen=True)
class _Notice:
    """One ASSIGNMENT item: the task, what the notice shows, its next open step and final date."""

    task: Any
    data: dict[str, Any]
    milestone_id: int | None
    due: dt.date | None
    days: int


def _notices(
    session: Session, fresh: list[Any], plans: dict[int, Any], owners: dict[int, str], *, today: dt.date, cal: WorkCalendar
) -> list[_Notice]:
    """The task book of each task, its timetable and, for steps overdue or due within the grace,
    the day the grace ends (the plan's or task's ``announce_grace`` working days after ``today``)."""
    ids = [r.id for r in fresh]
    details: dict[int, Any] = {}
    steps: dict[int, list[Any]] = defaultdict(list)
    for chunk in chunks(ids, 5000):
        details.update(
            (r.id, r)
            for r in session.execute(
                select(
                    Task.id,
                    Task.statement,
                    Task.done_criteria,
                    Task.deadline_text,
                    Task.lead_department_id,
                    Task.supervisor_id,
                    Task.partners,
                ).where(Task.id.in_(chunk))
            )
        )
        for m in session.execute(
            select(
                Milestone.id, Milestone.task_id, Milestone.seq, Milestone.title, Milestone.due_date, Milestone.is_final, Milestone.status
            )
            .where(Milestone.task_id.in_(chunk), Milestone.status != MilestoneState.ARCHIVED)
            .order_by(Milestone.task_id, Milestone.seq)
        ):
            steps[m.task_id].append(m)
    depts = {
        d.id: d
        for d in session.execute(
            select(Department.id, Department.name, Department.supervisor_id).where(
                Department.id.in_({d.lead_department_id for d in details.values() if d.lead_department_id is not None} or {-1})
            )
        )
    }
    supervisors = {
        d.supervisor_id or (depts[d.lead_department_id].supervisor_id if d.lead_department_id in depts else None) for d in details.values()
    }
    people = {**owners, **_names(session, Person, {s for s in supervisors if s is not None})}
    return [_notice(r, details[r.id], steps.get(r.id, []), plans[r.plan_id], depts, people, today=today, cal=cal) for r in fresh]


def _notice(
    r: Any, d: Any, steps: list[Any], plan: Any, depts: dict[int, Any], people: dict[int, str], *, today: dt.date, cal: WorkCalendar
) -> _Notice:
    grace = effective_policy(plan.policy, r.policy).announce_grace
    grace_until = cal.add_workdays(today, grace) if grace else None
    open_steps = [m for m in steps if m.status != MilestoneState.DONE]
    milestones = []
    for m in steps:
        item = {"seq": m.seq, "title": m.title, "due": m.due_date.isoformat(), "final": m.is_final}
        if m.status == MilestoneState.DONE:
            item["done"] = True
        elif grace_until is not None and m.due_date <= grace_until:
            item["grace_until"] = grace_until.isoformat()
        milestones.append(item)
    dept = depts.get(d.lead_department_id)
    supervisor = d.supervisor_id or (dept.supervisor_id if dept else None)
    data: dict[str, Any] = {
        "code": r.code,
        "title": r.title,
        "statement": d.statement,
        "done_criteria": d.done_criteria,
        "deadline": d.deadline_text,
        "milestones": milestones,
        "owner": people.get(r.owner_id, ""),
        "department": dept.name if dept else None,
        "supervisor": people.get(supervisor) if supervisor is not None else None,
        "partners": list(d.partners or ()),
        "announced_on": today.isoformat(),
        "ack_within": effective_policy(plan.policy, r.policy).ack_within,
    }
    if any("grace_until" in m for m in milestones) and grace_until is not None:
        data["grace_until"] = grace_until.isoformat()
    nxt = open_steps[0] if open_steps else None
    if nxt is not None:
        data["milestone"] = nxt.title
    final = next((m for m in reversed(steps) if m.is_final), None)
    due = final.due_date if final is not None else None
    return _Notice(r, data, nxt.id if nxt else None, due, cal.workdays_between(today, due) if due else 0)


def _ledger_row(n: _Notice, *, today: dt.date, now: dt.datetime) -> dict[str, Any]:
    return {
        "key": f"{MessageKind.ASSIGNMENT}:t{n.task.id}:{now.isoformat()}",
        "plan_id": n.task.plan_id,
        "task_id": n.task.id,
        "milestone_id": n.milestone_id,
        "recipient_id": n.task.owner_id,
        "kind": MessageKind.ASSIGNMENT,
        "level": 0,
        "due_date": n.due,
        "days": n.days,
        "decided_on": today,
        "status": LedgerStatus.PENDING,
        "data": n.data,
        "created_at": now,
        "digest_id": None,
    }


def moment(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    """``announced_at`` for an announcement dated ``day``: now, or this time of day on ``day`` when
    the office dates it otherwise (``--today``, the demo's simulated day)."""
    now = dt.datetime.now(tz)
    return now if now.date() == day else dt.datetime.combine(day, now.time(), tzinfo=tz)


def send(rt: Any, result: AnnounceResult, *, today: dt.date) -> None:
    """Deliver the notices just written, one digest per owner (the normal path: assemble, deliver)."""
    from duban.sweep.sending import send_to

    send_to(rt, result.recipients, today=today)


def announce_now(rt: Any, *, today: dt.date, now: dt.datetime, actor: str, channel: str = "cli", **options: Any) -> AnnounceResult:
    """Announce (``announce``'s options) and send the notices at once: what the CLI and the web app call."""
    result = announce(rt.engine, today=today, now=now, actor=actor, cal=rt.calendar, channel=channel, **options)
    if result.recipients:
        send(rt, result, today=today)
    return result


def announce_imported(rt: Any, plan_code: str, *, today: dt.date, now: dt.datetime, actor: str) -> AnnounceResult | None:
    """After an import: announce what it added or reassigned when the plan announces on import
    (``plan.announce_on_import``); None when it does not."""
    with session_scope(rt.engine, readonly=True) as session:
        on_import = session.scalar(select(Plan.announce_on_import).where(Plan.code == plan_code))
    if not on_import:
        return None
    return announce_now(rt, today=today, now=now, actor=actor, channel="import", plan_code=plan_code)
