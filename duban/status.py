"""``duban status``: counts by status, by system and by department.

The JSON form is stable (``schema: duban.status/1``) and documented in ``docs/status-json.md``;
other tools read it.  Task status is derived from its milestones:

* ``archived``: the task was removed from the list;
* a task with milestones takes the least advanced state of its non-archived milestones
  (assigned < in_progress < submitted < done);
* a recurring or ongoing task is never ``done``: ``assigned`` until acknowledged, then
  ``in_progress`` (its milestones, if any, only ever move it forward to ``in_progress``).

A task is *overdue* when one of its open milestones (assigned / in progress) is due before the
reference day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

from rich.table import Table
from sqlalchemy import ColumnElement, Select, Subquery, and_, case, func, or_, select
from sqlalchemy.orm import Session

from duban.models import Department, Milestone, Notification, Plan, Project, Request, System, Task
from duban.vocabulary import OPEN_STATES, LedgerStatus, MessageKind, MilestoneState, RequestStatus, Schedule

SCHEMA = "duban.status/1"
# the states a task's milestones move through, least advanced first (archived ones have no rank)
RANKS = {MilestoneState.ASSIGNED: 0, MilestoneState.IN_PROGRESS: 1, MilestoneState.SUBMITTED: 2, MilestoneState.DONE: 3}
TASK_STATES = tuple(RANKS)  # the states a live task can have
ONGOING = (Schedule.RECURRING, Schedule.ONGOING)  # schedules that are never done
DUE_SOON_DAYS = 14
LAST_LEVEL = 3  # the office (领导小组办公室): the last level of the deadline ladder


def _zero() -> dict[str, int]:
    return {s: 0 for s in tuple(MilestoneState)}


def milestone_summary(*extra: Any, tasks: Any = None) -> Subquery:
    """Per task: ``min_rank`` (the least advanced state of its non-archived milestones, by
    :data:`RANKS`), ``active`` (how many are not archived), and any ``extra`` aggregates;
    ``tasks`` (a condition on ``Task``) limits it to some tasks."""
    rank = case(*((Milestone.status == state, r) for state, r in RANKS.items()), else_=None)
    q = select(Milestone.task_id.label("task_id"), func.min(rank).label("min_rank"), func.count(rank).label("active"), *extra)
    if tasks is not None:
        q = q.join(Task, Task.id == Milestone.task_id).where(tasks)
    return q.group_by(Milestone.task_id).subquery()


def task_status(per_task: Subquery) -> ColumnElement[str]:
    """A task's derived status (module docstring), as SQL over ``Task`` outer-joined to
    :func:`milestone_summary`.  The one derivation: ``duban status`` counts it, the roll-up
    (and so the dashboard) loads it per task."""
    return case(
        (Task.archived_at.is_not(None), MilestoneState.ARCHIVED),
        (
            Task.schedule.in_(ONGOING),
            case(
                (or_(Task.acknowledged_at.is_not(None), func.coalesce(per_task.c.min_rank, 0) >= 1), MilestoneState.IN_PROGRESS),
                else_=MilestoneState.ASSIGNED,
            ),
        ),
        (func.coalesce(per_task.c.active, 0) > 0, case(*((per_task.c.min_rank == r, state) for state, r in RANKS.items()))),
        (Task.acknowledged_at.is_not(None), MilestoneState.IN_PROGRESS),
        else_=MilestoneState.ASSIGNED,
    )


def collect_status(
    session: Session, *, today: dt.date, plan_code: str | None = None, plan_ids: Collection[int] | None = None
) -> dict[str, Any]:
    """Everything ``duban status`` shows, as a JSON-ready dict (``plan_ids``: only these plans, e.g.
    one institution's)."""
    plans = session.execute(select(Plan.id, Plan.code, Plan.name).order_by(Plan.code)).all()
    if plan_code is not None:
        plans = [p for p in plans if p.code == plan_code]
    if plan_ids is not None:
        plans = [p for p in plans if p.id in plan_ids]
    limited = plan_code is not None or plan_ids is not None
    rows = session.execute(_grouped_counts(today, [p.id for p in plans] if limited else None)).all()
    data = _tally(plans, rows, today=today, plan_code=plan_code)
    marked = supervised(session, [p.id for p in plans])
    data["totals"]["supervised_tasks"] = sum(len(v) for v in marked.values())
    data["totals"]["open_tasks"] = data["totals"]["tasks"] - data["tasks_by_status"][MilestoneState.DONE]
    data["totals"]["awaiting_approval"] = awaiting_approval(session, [p.id for p in plans])
    for p, bucket in zip(plans, data["by_plan"], strict=True):
        bucket["supervised"] = marked.get(p.id, [])
    return data


def awaiting_approval(session: Session, plan_ids: list[int]) -> int:
    """待审核事项: the requests (办结审核, 延期审批) waiting for a decision — the one definition the
    dashboard, the report, the workbook and the printed 通报 show (the roll-up's ``awaiting_approval``)."""
    q = select(func.count(Request.id)).join(Task, Task.id == Request.task_id)
    q = q.where(Request.status == RequestStatus.PENDING, Task.plan_id.in_(plan_ids))
    return int(session.scalar(q) or 0)


def supervised(session: Session, plan_ids: list[int]) -> dict[int, list[str]]:
    """The 督办 mark: per plan, the codes of the tasks whose lateness reached the last level of the
    ladder (领导小组办公室) and is not resolved — the step is still open at the date escalated."""
    rows = session.execute(
        select(Task.plan_id, Task.code)
        .distinct()
        .join(Notification, Notification.task_id == Task.id)
        .join(Milestone, Milestone.id == Notification.milestone_id)
        .where(
            Task.plan_id.in_(plan_ids),
            Task.archived_at.is_(None),
            Notification.kind == MessageKind.ESCALATION,
            Notification.level == LAST_LEVEL,
            Notification.status == LedgerStatus.SENT,
            Milestone.status.in_(OPEN_STATES),
            Milestone.due_date == Notification.due_date,
        )
        .order_by(Task.plan_id, Task.code)
    )
    out: dict[int, list[str]] = {}
    for plan_id, code in rows:
        out.setdefault(plan_id, []).append(code)
    return out


def _grouped_counts(today: dt.date, plan_ids: list[int] | None) -> Select:
    """Task counts in SQL, one row per (plan, system, department, status, overdue, due soon), not
    one per task; with the milestone counts of the same tasks (archived tasks left out)."""
    is_open = Milestone.status.in_(OPEN_STATES)
    soon_end = today + dt.timedelta(days=DUE_SOON_DAYS)
    per_task = milestone_summary(
        func.sum(case((and_(is_open, Milestone.due_date < today), 1), else_=0)).label("overdue"),
        func.sum(case((and_(is_open, Milestone.due_date >= today, Milestone.due_date <= soon_end), 1), else_=0)).label("due_soon"),
        *(func.sum(case((Milestone.status == st, 1), else_=0)).label(f"m_{st}") for st in tuple(MilestoneState)),
    )
    live = Task.archived_at.is_(None)
    status_expr = task_status(per_task).label("status")
    overdue_flag = (func.coalesce(per_task.c.overdue, 0) > 0).label("overdue")
    soon_flag = (func.coalesce(per_task.c.due_soon, 0) > 0).label("due_soon")
    grouped = (
        select(
            Task.plan_id,
            System.code.label("system_code"),
            System.name.label("system"),
            System.position.label("system_position"),
            Department.name.label("department"),
            status_expr,
            overdue_flag,
            soon_flag,
            func.count().label("n"),
            func.sum(case((live, func.coalesce(per_task.c.overdue, 0)), else_=0)).label("overdue_ms"),
            *(func.sum(case((live, func.coalesce(per_task.c[f"m_{st}"], 0)), else_=0)).label(f"m_{st}") for st in tuple(MilestoneState)),
        )
        .join(Project, Project.id == Task.project_id)
        .join(System, System.id == Project.system_id)
        .outerjoin(Department, Department.id == Task.lead_department_id)
        .outerjoin(per_task, per_task.c.task_id == Task.id)
        .group_by(Task.plan_id, System.code, System.name, System.position, Department.name, status_expr, overdue_flag, soon_flag)
    )
    if plan_ids is not None:
        grouped = grouped.where(Task.plan_id.in_(plan_ids))
    return grouped


def _bucket(store: dict, key, **extra) -> dict[str, Any]:
    if key not in store:
        store[key] = {**extra, "tasks": 0, "tasks_by_status": _zero(), "overdue_tasks": 0, "due_soon_tasks": 0}
    return store[key]


def _tally(plans: Sequence[Any], rows: Sequence[Any], *, today: dt.date, plan_code: str | None) -> dict[str, Any]:
    """The grouped rows added up into totals and the by-plan / system / department lists."""
    ms_counts = _zero()
    code_of = {p.id: p.code for p in plans}
    totals = {"tasks": 0, "archived_tasks": 0, "milestones": 0, "overdue_tasks": 0, "overdue_milestones": 0, "due_soon_tasks": 0}
    tasks_by_status = _zero()
    by_plan: dict[int, dict[str, Any]] = {}
    by_system: dict[tuple[int, str], dict[str, Any]] = {}
    by_department: dict[tuple[int, str | None], dict[str, Any]] = {}
    system_order: dict[tuple[int, str], tuple[int, str]] = {}
    for p in plans:
        _bucket(by_plan, p.id, plan=p.code, name=p.name)
    for r in rows:
        status, n = r.status, r.n
        for st in tuple(MilestoneState):
            ms_counts[st] += int(r._mapping[f"m_{st}"] or 0)  # PostgreSQL sums are Decimal
        totals["overdue_milestones"] += int(r.overdue_ms or 0)
        tasks_by_status[status] += n
        plan = code_of[r.plan_id]
        targets = [
            _bucket(by_plan, r.plan_id, plan=plan),
            _bucket(by_system, (r.plan_id, r.system), plan=plan, system=r.system, code=r.system_code),
            _bucket(by_department, (r.plan_id, r.department), plan=plan, department=r.department),
        ]
        system_order[(r.plan_id, r.system)] = (r.system_position, r.system_code)
        for b in targets:
            b["tasks_by_status"][status] += n
        if status == MilestoneState.ARCHIVED:
            totals["archived_tasks"] += n
            continue
        overdue, soon = n if r.overdue else 0, n if r.due_soon else 0
        totals["tasks"] += n
        totals["overdue_tasks"] += overdue
        totals["due_soon_tasks"] += soon
        for b in targets:
            b["tasks"] += n
            b["overdue_tasks"] += overdue
            b["due_soon_tasks"] += soon

    totals["milestones"] = sum(v for k, v in ms_counts.items() if k != MilestoneState.ARCHIVED)
    return {
        "schema": SCHEMA,
        "as_of": today.isoformat(),
        "plan": plan_code,
        "due_soon_days": DUE_SOON_DAYS,
        "totals": totals,
        "tasks_by_status": tasks_by_status,
        "milestones_by_status": ms_counts,
        "by_plan": [by_plan[p.id] for p in plans],
        "by_system": [v for k, v in sorted(by_system.items(), key=lambda kv: (code_of[kv[0][0]], system_order[kv[0]]))],
        "by_department": sorted(by_department.values(), key=lambda b: (b["plan"], -b["tasks"], b["department"] or "")),
    }


def render_status(data: dict[str, Any]):
    """Rich renderables for the terminal (Chinese)."""
    t = data["totals"]
    s = data["tasks_by_status"]
    head = (
        f"截至 {data['as_of']}：任务 {t['tasks']} 项（在办 {t['open_tasks']} 项，节点 {t['milestones']} 个），"
        f"已逾期 {t['overdue_tasks']} 项，{data['due_soon_days']} 天内到期 {t['due_soon_tasks']} 项，"
        f"待审核事项 {t['awaiting_approval']} 件；按任务状态：" + "，".join(f"{k.label} {s[k]}" for k in MilestoneState)
    )
    out: list[Any] = [head]
    for p in data["by_plan"]:
        if p.get("supervised"):
            shown = "、".join(p["supervised"][:20]) + ("等" if len(p["supervised"]) > 20 else "")
            out.append(f"列入重点督办（已报领导小组办公室，尚未解决）{len(p['supervised'])} 项：{shown}")

    def table(title: str, first: str, rows: list[dict[str, Any]], key: str) -> Table:
        tb = Table(title=title, title_justify="left")
        if len(data["by_plan"]) > 1:
            tb.add_column("方案")
        tb.add_column(first)
        tb.add_column("任务", justify="right")
        for state in TASK_STATES:
            tb.add_column(MilestoneState(state).label, justify="right")
        tb.add_column("已逾期", justify="right")
        tb.add_column(f"{data['due_soon_days']}天内到期", justify="right")
        for r in rows:
            cells = [r["plan"]] if len(data["by_plan"]) > 1 else []
            cells += [r.get(key) or "（未指定）", str(r["tasks"])]
            cells += [str(r["tasks_by_status"][st]) for st in TASK_STATES]
            overdue = r["overdue_tasks"]
            cells += [f"[red]{overdue}[/red]" if overdue else "0", str(r["due_soon_tasks"])]
            tb.add_row(*cells)
        return tb

    out.append(table("按育人体系", "育人体系", data["by_system"], "system"))
    out.append(table("按牵头单位", "牵头单位", data["by_department"], "department"))
    return out
