"""Deciding: load open tasks and milestones, apply the rules, and write each decision to the ledger.

``decide`` writes every decision under its unique key, before anything is sent: re-running, a
retry or a second sweep at the same time adds nothing that is already there.  ``preview`` runs
the same without writing: who would receive what today.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Engine, Select, func, select
from sqlalchemy.orm import Session

from duban.db import session_scope
from duban.links import reviewers
from duban.models import Department, Event, Milestone, Notification, Person, Plan, PlanRole, Project, Request, System, Task, utcnow
from duban.roles import line_covering, on_line, plan_roles
from duban.rules.batching import next_batch_time, parse_batch_times
from duban.rules.calendar import WorkCalendar
from duban.rules.deadlines import Decision, MilestoneView, TaskView, approval_reminder
from duban.rules.deadlines import decide as decide_task
from duban.rules.policy import DeadlinePolicy, effective_policy
from duban.sweep.kinds import facts
from duban.sweep.ledger import existing_keys, insert_ignore
from duban.values import bulk_work, local_date
from duban.vocabulary import EventKind, LedgerStatus, MessageKind, MilestoneOrigin, MilestoneState, PlanRoleKind, RequestStatus
from notifications.digest import describe

# events that count as the period's report (反馈): a progress report, and an answer to a 督查
REPORT_EVENTS = (EventKind.PROGRESS_REPORTED, EventKind.REVIEW_ANSWERED)


@dataclass
class Loaded:
    """What the rules need, loaded in a handful of queries."""

    tasks: list[tuple[TaskView, DeadlinePolicy]]
    people: dict[int, tuple[str, str | None]]  # id -> (name, department name)


def _day(value: dt.datetime, tz: dt.tzinfo) -> dt.date:
    """The local date of a timestamp that is never NULL (``local_date`` also takes None)."""
    day = local_date(value, tz)
    if day is None:
        raise ValueError("a NOT NULL timestamp was NULL")
    return day


def _live_tasks(plan_ids: list[int], task_code: str | None, owner_id: int | None) -> list[ColumnElement[bool]]:
    """Which tasks the sweep looks at: the live tasks of the plans (of one task, or one owner's)."""
    where: list[ColumnElement[bool]] = [Task.archived_at.is_(None), Task.plan_id.in_(plan_ids)]
    if task_code is not None:
        where.append(Task.code == task_code)
    if owner_id is not None:
        where.append(Task.owner_id == owner_id)
    return where


def _tasks_query(where: list[ColumnElement[bool]]):
    """The tasks, with what the rules read of each (and its system's name)."""
    return (
        select(
            Task.id,
            Task.plan_id,
            Task.code,
            Task.title,
            Task.owner_id,
            Task.schedule,
            Task.period,
            Task.period_month,
            Task.supervisor_id,
            Task.lead_department_id,
            Task.assigned_at,
            Task.announced_at,
            Task.acknowledged_at,
            Task.policy,
            Task.ends_on,
            System.name.label("system"),
        )
        .join(Project, Project.id == Task.project_id)
        .join(System, System.id == Project.system_id)
        .where(*where)
    )


def _plans(session: Session, plan_code: str | None, plan_ids: Collection[int] | None) -> dict[int, Any]:
    """The plans by id (that code's, these ids', or every one)."""
    q = select(Plan.id, Plan.code, Plan.name, Plan.policy, Plan.ends_on)
    if plan_code is not None:
        q = q.where(Plan.code == plan_code)
    if plan_ids is not None:
        q = q.where(Plan.id.in_(list(plan_ids)))
    return {p.id: p for p in session.execute(q)}


def load(
    session: Session,
    *,
    tz,
    plan_code: str | None = None,
    task_code: str | None = None,
    owner_id: int | None = None,
    plan_ids: Collection[int] | None = None,
) -> Loaded:
    """The live tasks (of one plan, of some plans — ``plan_ids`` —, one task, or one owner's) as
    the rules see them."""
    plans = _plans(session, plan_code, plan_ids)
    plan_ids = list(plans)
    live = _live_tasks(plan_ids, task_code, owner_id)
    # Core rows (the connection's execute): the ORM's row loading is a third of this for a province
    task_rows = session.connection().execute(_tasks_query(live)).all()

    depts = {
        d.id: d
        for d in session.execute(
            select(Department.id, Department.name, Department.head_id, Department.supervisor_id).where(Department.plan_id.in_(plan_ids))
        )
    }
    people_rows = session.execute(
        select(Person.id, Person.name, Person.manager_id, Person.department_id).where(Person.plan_id.in_(plan_ids))
    ).all()
    people = {p.id: (p.name, depts[p.department_id].name if p.department_id in depts else None) for p in people_rows}
    managers = {p.id: p.manager_id for p in people_rows}
    office = OfficeLines(
        session.execute(
            select(PlanRole.plan_id, PlanRole.person_id, PlanRole.scope)
            .where(PlanRole.role == PlanRoleKind.OFFICE, PlanRole.plan_id.in_(plan_ids))
            .order_by(PlanRole.position)
        ).all()
    )
    plan_ends = _plan_ends(session, plans)

    ms, started, last_report = _steps_and_reports(session, select(Task.id).where(*live), tz)
    plan_policy = {pid: effective_policy(p.policy) for pid, p in plans.items()}
    out = []
    for t in task_rows:
        dept = depts.get(t.lead_department_id)
        supervisor = t.supervisor_id or (dept.supervisor_id if dept else None)
        view = TaskView(
            id=t.id,
            plan_id=t.plan_id,
            code=t.code,
            title=t.title,
            owner_id=t.owner_id,
            schedule=t.schedule,
            period=t.period,
            period_month=t.period_month,
            head_id=dept.head_id if dept else None,
            owner_manager_id=managers.get(t.owner_id),
            supervisor_id=supervisor,
            office_ids=office.covering(t.plan_id, t.system, dept.name if dept else None),
            assigned_on=_day(t.assigned_at, tz),
            announced_on=local_date(t.announced_at, tz),
            ends_on=t.ends_on or plan_ends.get(t.plan_id),
            acknowledged=t.acknowledged_at is not None or t.id in started,
            last_report_on=last_report.get(t.id),
            milestones=tuple(sorted(ms.get(t.id, ()), key=lambda m: m.seq)),
        )
        policy = effective_policy(plans[t.plan_id].policy, t.policy) if t.policy else plan_policy[t.plan_id]
        out.append((view, policy))
    return Loaded(out, people)


class OfficeLines:
    """Who in each plan's office hears of a task at the last level of the ladder: the members whose
    line (督办条线: systems, departments) covers it; when no line covers it, the members without a
    line (the office's director), and all of them only when every member has a line."""

    def __init__(self, rows: Sequence[Any]) -> None:
        self.members: dict[int, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
        for r in rows:
            self.members[r.plan_id].append((r.person_id, r.scope or {}))

    def covering(self, plan_id: int, system: str | None, department: str | None) -> tuple[int, ...]:
        return line_covering(self.members.get(plan_id, []), system, department)


def _plan_ends(session: Session, plans: dict[int, Any]) -> dict[int, dt.date]:
    """Each plan's end: its 实施截止日期, else the latest date of its roadmap."""
    ends = {pid: p.ends_on for pid, p in plans.items() if p.ends_on is not None}
    rest = [pid for pid in plans if pid not in ends]
    if rest:
        q = (
            select(Task.plan_id, func.max(Milestone.due_date))
            .join(Milestone, Milestone.task_id == Task.id)
            .where(Task.plan_id.in_(rest), Milestone.origin == MilestoneOrigin.PLAN)
            .group_by(Task.plan_id)
        )
        ends.update({pid: day for pid, day in session.execute(q) if day is not None})
    return ends


def _steps_and_reports(session: Session, task_ids: Select[Any], tz) -> tuple[dict[int, list[MilestoneView]], set[int], dict[int, dt.date]]:
    """The tasks' (``task_ids``: a query of their ids) live milestones, which tasks have started
    (a step past 待签收), and each task's last report day."""
    ms: dict[int, list[MilestoneView]] = defaultdict(list)
    started: set[int] = set()
    last_report: dict[int, dt.date] = {}
    connection = session.connection()
    steps = select(
        Milestone.id,
        Milestone.task_id,
        Milestone.seq,
        Milestone.title,
        Milestone.due_date,
        Milestone.due_version,
        Milestone.status,
        Milestone.is_final,
    ).where(Milestone.task_id.in_(task_ids), Milestone.status != MilestoneState.ARCHIVED)
    assigned = MilestoneState.ASSIGNED
    for mid, task_id, seq, title, due, version, status, final in connection.execute(steps).all():
        ms[task_id].append(MilestoneView(mid, seq, title, due, version, status, final))
        if status != assigned:
            started.add(task_id)
    reports = (
        select(Event.task_id, func.max(Event.at)).where(Event.task_id.in_(task_ids), Event.kind.in_(REPORT_EVENTS)).group_by(Event.task_id)
    )
    for tid, at in connection.execute(reports):
        day = local_date(at, tz)
        if tid is not None and day is not None:  # task_id IN (…) and max() over reports: never NULL
            last_report[tid] = day
    return ms, started, last_report


class Planned(NamedTuple):
    """A decision and the plan it belongs to (the ledger row's ``plan_id``; not part of its data),
    and when it may go out (``not_before``: an office member's approval reminder waits for the
    plan's next batch time)."""

    plan_id: int
    decision: Decision
    not_before: dt.datetime | None = None


def decisions_for(loaded: Loaded, cal: WorkCalendar, today: dt.date) -> list[Planned]:
    """The rules' decisions for every loaded task, each with the owner's name and department
    added to its data (last, in that order: the ledger stores the data as it is)."""
    out: list[Planned] = []
    for view, policy in loaded.tasks:
        owner, dept = loaded.people.get(view.owner_id, ("", None))
        for d in decide_task(view, policy, cal, today):
            # the rules made this dict for this call (a ladder's decisions may share one, all of
            # the same task): adding the same two keys in place is what a copy with them would hold
            d.data.update(owner=owner, department=dept)
            out.append(Planned(view.plan_id, d))
    return out


def approval_decisions(
    session: Session,
    cal: WorkCalendar,
    today: dt.date,
    *,
    tz,
    plan_code: str | None = None,
    task_code: str | None = None,
    now: dt.datetime | None = None,
    plan_ids: Collection[int] | None = None,
) -> list[Planned]:
    """Completions and extensions waiting too long for the office: a reminder to each reviewer on
    the task's line (rules: ``approval_reminder``), carrying what the original request said and its
    links; an office member's waits for the plan's next batch time (``office_batch_times``)."""
    now = now or utcnow()
    waiting = _waiting_requests(session, cal, today, tz=tz, plan_code=plan_code, task_code=task_code, plan_ids=plan_ids)
    if not waiting:
        return []
    asked, held = {}, {}
    for r, _, _ in waiting:
        task = session.get(Task, r.task_id)
        asked[r.id] = on_line(session, task, reviewers(session, r.plan_id, exclude=r.person_id)) if task else []
        times = parse_batch_times(effective_policy(r.plan_policy, r.task_policy).office_batch_times)
        held[r.id] = (next_batch_time(now, times, tz), set(plan_roles(session, r.plan_id)[PlanRoleKind.OFFICE]))
    originals = _original_approval_data(session, asked)
    out = []
    for r, step, waited in waiting:
        for pid in asked[r.id]:
            decision = _approval_waiting(r, pid, step, waited, originals.get(f"approval:r{r.id}:p{pid}"), tz)
            out.append(Planned(r.plan_id, decision, held[r.id][0] if pid in held[r.id][1] else None))
    return out


def _waiting_requests(
    session: Session,
    cal: WorkCalendar,
    today: dt.date,
    *,
    tz,
    plan_code: str | None,
    task_code: str | None,
    plan_ids: Collection[int] | None,
) -> list[tuple[Any, int, int]]:
    """The pending requests of live tasks that have waited long enough for a reminder: each with
    the reminder's step and the working days waited (``approval_reminder``)."""
    q = (
        select(
            Request.id,
            Request.plan_id,
            Request.task_id,
            Request.milestone_id,
            Request.person_id,
            Request.kind,
            Request.created_at,
            Task.code,
            Task.title,
            Task.policy.label("task_policy"),
            Plan.policy.label("plan_policy"),
            Milestone.due_date,
        )
        .join(Task, Task.id == Request.task_id)
        .join(Plan, Plan.id == Request.plan_id)
        .outerjoin(Milestone, Milestone.id == Request.milestone_id)
        .where(Request.status == RequestStatus.PENDING, Task.archived_at.is_(None))
    )
    if plan_code is not None:
        q = q.where(Plan.code == plan_code)
    if plan_ids is not None:
        q = q.where(Request.plan_id.in_(list(plan_ids)))
    if task_code is not None:
        q = q.where(Task.code == task_code)
    waiting = []
    for r in session.execute(q):
        reached = approval_reminder(_day(r.created_at, tz), effective_policy(r.plan_policy, r.task_policy), cal, today)
        if reached is not None:
            waiting.append((r, *reached))
    return waiting


def _original_approval_data(session: Session, asked: dict[int, list[int]]) -> dict[str, dict[str, Any]]:
    """What each reviewer's original approval item said, by its ledger key."""
    keys = [f"approval:r{rid}:p{pid}" for rid, pids in asked.items() for pid in pids]
    return dict(session.execute(select(Notification.key, Notification.data).where(Notification.key.in_(keys))).all())


def _approval_waiting(r, pid: int, step: int, waited: int, original: dict[str, Any] | None, tz) -> Decision:
    """The reminder to reviewer ``pid`` that request ``r`` has waited ``waited`` working days."""
    data = dict(original or {"code": r.code, "title": r.title, "request": r.id, "request_kind": r.kind})
    data.update(waited=waited, submitted_on=_day(r.created_at, tz).isoformat())
    return Decision(
        key=f"{MessageKind.APPROVAL_WAITING}:r{r.id}:p{pid}:n{step}",
        kind=MessageKind.APPROVAL_WAITING,
        recipient_id=pid,
        task_id=r.task_id,
        milestone_id=r.milestone_id,
        due=r.due_date,
        days=-waited,
        data=data,
    )


@dataclass
class DecideResult:
    decided: int  # decisions the rules made today
    new: int  # of those, not in the ledger before (written now)
    warnings: list[str]
    # plan id → (decided, new) of that plan (new: not in the ledger when the run looked; a second
    # sweep writing the same key at that moment makes ``new`` the smaller of the two)
    by_plan: dict[int, tuple[int, int]] = field(default_factory=dict)


def _new_today(
    session: Session,
    loaded: Loaded,
    cal: WorkCalendar,
    today: dt.date,
    *,
    tz,
    plan_code: str | None,
    task_code: str | None,
    plan_ids: Collection[int] | None = None,
) -> tuple[Counter[int], list[Planned]]:
    """How many decisions the rules make today (by plan), and those not in the ledger yet."""
    approvals = approval_decisions(session, cal, today, tz=tz, plan_code=plan_code, task_code=task_code, plan_ids=plan_ids)
    decisions = decisions_for(loaded, cal, today) + approvals
    existing = existing_keys(session, [p.decision.key for p in decisions])
    return Counter(p.plan_id for p in decisions), [p for p in decisions if p.decision.key not in existing]


@bulk_work()
def decide(
    engine: Engine,
    *,
    today: dt.date,
    cal: WorkCalendar,
    tz,
    plan_code: str | None = None,
    task_code: str | None = None,
    plan_ids: Collection[int] | None = None,
) -> DecideResult:
    """Apply the rules and write new decisions to the ledger (one transaction).  ``plan_code``,
    ``plan_ids``, ``task_code``: only that plan's, these plans' (the schools of a sweep), that task's."""
    now = utcnow()
    with session_scope(engine) as session:
        loaded = load(session, tz=tz, plan_code=plan_code, task_code=task_code, plan_ids=plan_ids)
        decided, fresh = _new_today(session, loaded, cal, today, tz=tz, plan_code=plan_code, task_code=task_code, plan_ids=plan_ids)
        rows = [
            {
                "key": d.key,
                "not_before": not_before,
                "plan_id": plan_id,
                "task_id": d.task_id,
                "milestone_id": d.milestone_id,
                "recipient_id": d.recipient_id,
                "kind": d.kind,
                "level": d.level,
                "due_date": d.due,
                "days": d.days,
                "decided_on": today,
                "status": LedgerStatus.PENDING,
                "data": d.data,
                "created_at": now,
                "digest_id": None,
            }
            for plan_id, d, not_before in fresh
        ]
        new = insert_ignore(session, rows)
    fresh_by_plan = Counter(plan_id for plan_id, _, _ in fresh)
    by_plan = {plan_id: (n, fresh_by_plan[plan_id]) for plan_id, n in decided.items()}
    return DecideResult(decided=decided.total(), new=new, warnings=cal.warnings, by_plan=by_plan)


@dataclass
class PreviewItem:
    recipient: str
    kind: str
    code: str
    title: str
    line: str


def preview(
    engine: Engine, *, today: dt.date, cal: WorkCalendar, tz, plan_code: str | None = None, task_code: str | None = None
) -> list[PreviewItem]:
    """Who would receive what today (decisions not yet in the ledger), writing nothing."""
    factory_session = Session(engine.execution_options(duban_readonly=True))
    try:
        loaded = load(factory_session, tz=tz, plan_code=plan_code, task_code=task_code)
        _, fresh = _new_today(factory_session, loaded, cal, today, tz=tz, plan_code=plan_code, task_code=task_code)
    finally:
        factory_session.rollback()
        factory_session.close()
    items = [
        PreviewItem(
            loaded.people.get(d.recipient_id, ("?", None))[0],
            d.kind,
            d.data["code"],
            d.data["title"],
            describe(d.kind, d.level, d.due, d.days, d.data),
        )
        for _, d, _ in fresh
    ]
    return sorted(items, key=lambda i: (i.recipient, facts(i.kind).order, i.code))
