"""The roll-up for the leading group (领导小组): progress, lights, overdue items, scores, trend.

Library only (no Prefect): ``flows/rollup.py`` schedules it, ``duban report`` and the dashboard
call it.  Definitions (on time, rates, the score) are documented in ``docs/rollup.md``.

Stable API (the dashboard and the report build on these; within ``duban.rollup/1`` names are only
added, never removed or renamed):

``compute(engine, *, as_of, plan_code=None, tz, cal, due_soon_days=14) -> Rollup``
    Everything, as pandas DataFrames, from a handful of set-based queries in one read-only
    transaction.  ``plan_code=None`` is the provincial view across all plans.  Raises
    :class:`RollupError` (Chinese message) for an unknown plan code.
``Rollup``
    ``as_of``, ``plan_code``, ``due_soon_days``, ``totals`` (dict of headline numbers), and the
    DataFrames ``by_plan``, ``by_system``, ``by_project``, ``by_department``, ``by_supervisor``,
    ``overdue``, ``due_soon``, ``awaiting_approval``, ``extensions``, ``trend``, ``assessment``,
    ``tasks`` (one row per task, with its colour: for drill-down); ``views()`` lists
    ``(key, Chinese title, DataFrame)`` in report order; ``to_dict()`` is JSON-ready
    (``schema: duban.rollup/1``).  Column names are English identifiers; :data:`COLUMNS` maps
    each to its Chinese header (``header(name)``), :data:`RATE_COLUMNS` are fractions 0–1.
``snapshot(engine, rollup, *, now=None) -> int``
    Write the day's counts (scope plan / system / department) to ``rollup_snapshots``, an upsert
    on (plan, day, scope, key): running it again the same day replaces, never duplicates.
``take_snapshot(engine, *, as_of, tz, cal) -> int``
    ``compute`` over all plans + ``snapshot`` (what the daily sweep calls).
``trend(engine, *, plan_code=None, scope="plan", key=None, until=None, days=None) -> DataFrame``
    The stored snapshots as a time series (summed over plans for the provincial view).

Group metrics (every ``by_*`` frame and the snapshot): ``tasks`` (non-archived), ``done_tasks``,
``on_time_tasks``, ``overdue_tasks``, ``due_soon_tasks``, ``milestones``, ``done_milestones``,
``due_milestones`` (应完成: done, or due before ``as_of``), ``on_time_milestones``,
``on_time_baseline_milestones``, ``overdue_milestones``, ``late_days``, ``red``, ``yellow``,
``green``, ``no_light``, ``completion_rate`` (done / milestones), ``on_time_rate``
(on time / due), ``on_time_baseline_rate``.  Task status counts (``assigned`` … ``done``) follow
``duban.status`` exactly, and ``tasks`` / ``overdue_tasks`` / ``due_soon_tasks`` agree with
``duban status --json``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select

from duban.db import session_scope
from duban.models import (
    ARCHIVED,
    ASSIGNED,
    COMPLETION,
    DONE,
    EXTENSION,
    IN_PROGRESS,
    OPEN_STATES,
    SUBMITTED,
    APPROVED,
    REQUEST_PENDING,
    RETURNED,
    Department,
    Event,
    Milestone,
    Notification,
    Person,
    Plan,
    Project,
    Request,
    RollupSnapshot,
    System,
    Task,
    utcnow,
)
from duban.rules.deadlines import ESCALATION, GREEN, RED, YELLOW, MilestoneView, TaskView, colour
from duban.rules.policy import AssessmentPolicy, assessment_policy, effective_policy

SCHEMA = "duban.rollup/1"
DUE_SOON_DAYS = 14
UNSPECIFIED = "（未指定）"
TASK_STATES = (ASSIGNED, IN_PROGRESS, SUBMITTED, DONE)
LEVEL_LABELS = {0: "未督办", 1: "已督办部门负责人", 2: "已督办分管校领导", 3: "已报领导小组办公室"}
COLOUR_LABELS = {RED: "红灯", YELLOW: "黄灯", GREEN: "绿灯", None: "无（已办结）"}
REQUEST_LABELS = {COMPLETION: "办结审核", EXTENSION: "延期审批"}

# the summable counts of a group (snapshot columns are a subset)
COUNT_COLUMNS = (
    "tasks", *TASK_STATES, "done_tasks", "on_time_tasks", "overdue_tasks", "due_soon_tasks", "milestones", "done_milestones",
    "due_milestones", "on_time_milestones", "on_time_baseline_milestones", "overdue_milestones", "late_days",
    "red", "yellow", "green", "no_light",
)
RATE_COLUMNS = frozenset({
    "completion_rate", "on_time_rate", "on_time_baseline_rate", "s_on_time", "s_overdue", "s_escalations", "s_returns",
    "escalations_per_task", "return_rate",
})
SNAPSHOT_COUNTS = ("tasks", "done_tasks", "overdue_tasks", "due_soon_tasks", "red", "yellow", "green", "milestones",
                   "done_milestones", "due_milestones", "on_time_milestones", "overdue_milestones")

COLUMNS: dict[str, str] = {
    "plan": "方案编号", "plan_name": "方案名称", "organization": "单位", "system_code": "体系编号", "system": "育人体系",
    "project_code": "项目编号", "project": "重点项目", "department": "牵头单位", "supervisor": "分管校领导",
    "tasks": "在办任务", "assigned": "待签收", "in_progress": "办理中", "submitted": "待审核", "done": "已办结",
    "done_tasks": "已办结任务", "on_time_tasks": "按期办结任务", "overdue_tasks": "逾期任务", "due_soon_tasks": "近期到期任务",
    "milestones": "节点总数", "done_milestones": "已完成节点", "due_milestones": "应完成节点", "on_time_milestones": "按期完成节点",
    "on_time_baseline_milestones": "按原定时间完成节点", "overdue_milestones": "逾期节点", "late_days": "累计逾期工作日",
    "red": "红灯", "yellow": "黄灯", "green": "绿灯", "no_light": "无灯（已办结）",
    "completion_rate": "节点完成率", "on_time_rate": "按期完成率", "on_time_baseline_rate": "按原定时间完成率",
    "code": "任务编号", "title": "任务名称", "milestone": "节点", "owner": "责任人", "due": "完成时间", "baseline": "原定时间",
    "days_late": "逾期工作日", "level": "督办层级", "level_label": "督办情况", "days_left": "剩余工作日", "colour": "灯",
    "colour_label": "状态灯", "status": "任务状态", "kind": "类别", "requester": "申请人", "submitted_on": "提交日期",
    "waiting_days": "已等待工作日", "new_due": "申请延至", "extensions": "批准延期次数", "slipped_days": "推迟天数",
    "slipped_workdays": "推迟工作日", "reason": "调整原因", "last_approved": "最近批准日期",
    "day": "日期", "escalations": "被督办次数", "escalations_per_task": "每项任务督办次数", "completion_requests": "办结申请",
    "returns": "被退回", "return_rate": "退回率", "avg_late_days": "每节点平均逾期工作日",
    "s_on_time": "按期完成得分率", "s_overdue": "逾期得分率", "s_escalations": "督办得分率", "s_returns": "退回得分率",
    "p_on_time": "按期完成得分", "p_overdue": "逾期得分", "p_escalations": "督办得分", "p_returns": "退回得分",
    "score": "考核得分", "rank": "排名", "schedule": "类型", "overdue": "是否逾期",
}


def header(name: str) -> str:
    """The Chinese header of a column (the name itself when it has none)."""
    return COLUMNS.get(name, name)


class RollupError(ValueError):
    """A roll-up that cannot be made (message in Chinese)."""


@dataclass
class Rollup:
    as_of: dt.date
    plan_code: str | None
    due_soon_days: int
    totals: dict[str, Any]
    by_plan: pd.DataFrame
    by_system: pd.DataFrame
    by_project: pd.DataFrame
    by_department: pd.DataFrame
    by_supervisor: pd.DataFrame
    overdue: pd.DataFrame
    due_soon: pd.DataFrame
    awaiting_approval: pd.DataFrame
    extensions: pd.DataFrame
    trend: pd.DataFrame
    assessment: pd.DataFrame
    tasks: pd.DataFrame
    plans: pd.DataFrame  # plan_id, plan, plan_name, organization
    warnings: list[str] = field(default_factory=list)
    assessment_policies: dict[str, AssessmentPolicy] = field(default_factory=dict)  # plan code -> its 考核 settings

    @property
    def title(self) -> str:
        if len(self.plans) == 1:
            return str(self.plans.iloc[0]["plan_name"])
        return f"全部方案（{len(self.plans)} 个）"

    def views(self) -> list[tuple[str, str, pd.DataFrame]]:
        """``(key, Chinese title, frame)`` of every view, in report order."""
        out = [
            ("by_plan", "按方案" if len(self.plans) > 1 else "总体情况", self.by_plan),
            ("by_system", "按育人体系", self.by_system),
            ("by_project", "按重点项目", self.by_project),
            ("by_department", "按牵头单位", self.by_department),
            ("by_supervisor", "按分管校领导", self.by_supervisor),
            ("assessment", "单位考核", self.assessment),
            ("overdue", "逾期事项", self.overdue),
            ("due_soon", f"{self.due_soon_days}天内到期", self.due_soon),
            ("awaiting_approval", "待审核事项", self.awaiting_approval),
            ("extensions", "延期与调整", self.extensions),
            ("trend", "趋势", self.trend),
        ]
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``schema: duban.rollup/1``): dates as ISO text, NaN as null."""
        return {
            "schema": SCHEMA, "as_of": self.as_of.isoformat(), "plan": self.plan_code, "due_soon_days": self.due_soon_days,
            "totals": _jsonable(self.totals),
            **{key: records(frame) for key, _title, frame in self.views()},
        }


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame as JSON-ready dicts (dates ISO, NaN/NaT None, numpy scalars plain)."""
    return [_jsonable(r) for r in frame.to_dict(orient="records")]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None:
        return None
    if isinstance(value, (dt.date, dt.datetime, pd.Timestamp)):
        return value.isoformat() if not pd.isna(value) else None
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


# ---------------------------------------------------------------------------------------------
# loading


def _frame(rows, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(r) for r in rows], columns=columns)


def _local_dates(series: pd.Series, tz) -> pd.Series:
    """Timestamps (naive = UTC, as SQLite returns them) as local calendar dates (object, None)."""
    if series.empty:
        return pd.Series([], dtype=object, index=series.index)
    ts = pd.to_datetime(series, utc=True)
    local = ts.dt.tz_convert(tz)
    out = local.dt.date
    return out.where(ts.notna(), None).astype(object)


class _Workdays:
    """``cal.workdays_between`` over columns of dates, each distinct pair computed once."""

    def __init__(self, cal) -> None:
        self.cal, self.memo = cal, {}

    def __call__(self, start: pd.Series, end: pd.Series | dt.date) -> pd.Series:
        if not isinstance(end, pd.Series):
            end = pd.Series([end] * len(start), index=start.index, dtype=object)
        out = []
        memo, cal = self.memo, self.cal
        for s, e in zip(start.tolist(), end.tolist()):
            if s is None or e is None or (isinstance(s, float)) or (isinstance(e, float)):
                out.append(0)
                continue
            k = (s, e)
            v = memo.get(k)
            if v is None:
                v = memo[k] = cal.workdays_between(s, e)
            out.append(v)
        return pd.Series(out, index=start.index, dtype="int64")


def _plans(session, plan_code: str | None) -> pd.DataFrame:
    rows = session.execute(select(Plan.id, Plan.code, Plan.name, Plan.organization, Plan.policy).order_by(Plan.code)).all()
    plans = _frame(rows, ["plan_id", "plan", "plan_name", "organization", "policy"])
    if plan_code is not None:
        plans = plans[plans["plan"] == plan_code].reset_index(drop=True)
        if plans.empty:
            known = "、".join(r.code for r in rows) or "（暂无）"
            raise RollupError(f"没有编号为“{plan_code}”的方案。已有方案：{known}")
    return plans


def _load(session, plan_ids: list[int], tz) -> dict[str, pd.DataFrame]:
    """The store as frames: one query per table, filtered by plan."""
    in_plans = Task.plan_id.in_(plan_ids)
    tasks = _frame(session.execute(
        select(Task.id, Task.plan_id, Task.code, Task.title, Task.owner_id, Task.lead_department_id, Task.supervisor_id,
               Task.schedule, Task.archived_at.is_not(None), Task.acknowledged_at.is_not(None), Task.position,
               Task.period, Task.period_month, Task.assigned_at, Task.policy,
               Project.code, Project.name, Project.position, System.code, System.name, System.position)
        .join(Project, Project.id == Task.project_id).join(System, System.id == Project.system_id)
        .where(in_plans)
    ), ["task_id", "plan_id", "code", "title", "owner_id", "department_id", "task_supervisor_id", "schedule", "archived",
        "acknowledged", "position", "period", "period_month", "assigned_at", "task_policy", "project_code", "project", "project_position", "system_code", "system", "system_position"])
    depts = _frame(session.execute(select(Department.id, Department.name, Department.supervisor_id).where(Department.plan_id.in_(plan_ids))),
                   ["department_id", "department", "dept_supervisor_id"])
    people = dict(session.execute(select(Person.id, Person.name).where(Person.plan_id.in_(plan_ids))).all())
    milestones = _frame(session.execute(
        select(Milestone.id, Milestone.task_id, Milestone.seq, Milestone.title, Milestone.due_date, Milestone.baseline_due_date,
               Milestone.status, Milestone.is_final, Milestone.submitted_at, Milestone.completed_at, Milestone.due_version)
        .join(Task, Task.id == Milestone.task_id).where(in_plans, Milestone.status != ARCHIVED)
    ), ["milestone_id", "task_id", "seq", "milestone", "due", "baseline", "state", "is_final", "submitted_at", "completed_at", "due_version"])
    # one 督办 per (task, milestone or acknowledgement, due date, level), however many people got it
    escalations = _frame(session.execute(
        select(Notification.task_id, Notification.milestone_id, Notification.due_date, Notification.level)
        .where(Notification.plan_id.in_(plan_ids), Notification.kind == ESCALATION, Notification.level >= 1,
               Notification.task_id.is_not(None))
        .distinct()
    ), ["task_id", "milestone_id", "due", "level"])
    requests = _frame(session.execute(
        select(Request.id, Request.task_id, Request.milestone_id, Request.person_id, Request.kind, Request.status,
               Request.new_due_date, Request.created_at, Request.decided_at)
        .where(Request.plan_id.in_(plan_ids))
    ), ["request_id", "task_id", "milestone_id", "person_id", "kind", "status", "new_due", "created_at", "decided_at"])
    from duban.sweep import REPORT_EVENTS

    reports = dict(session.execute(
        select(Event.task_id, func.max(Event.at)).where(Event.plan_id.in_(plan_ids), Event.kind.in_(REPORT_EVENTS),
                                                        Event.task_id.is_not(None)).group_by(Event.task_id)
    ).all())
    return {"tasks": tasks, "depts": depts, "people": people, "milestones": milestones, "escalations": escalations,
            "requests": requests, "reports": reports}


def _colours(t: pd.DataFrame, m: pd.DataFrame, plans: pd.DataFrame, reports: dict[int, Any], tz, cal,
             as_of: dt.date) -> dict[int, str | None]:
    """Each live task's light, by the rules themselves (``duban.rules.deadlines.colour``), on the
    same views ``duban.sweep.load`` builds (tests/test_rollup.py checks they agree), made from the
    frames already loaded rather than a second read of every milestone."""
    from itertools import groupby

    plan_policy = {row.plan_id: row.policy for row in plans.itertuples()}
    base = {pid: effective_policy(pol) for pid, pol in plan_policy.items()}
    ms = m.sort_values(["task_id", "seq"], kind="stable")
    views: dict[int, tuple[MilestoneView, ...]] = {}
    cols = zip(ms["task_id"].tolist(), ms["milestone_id"].tolist(), ms["seq"].tolist(), ms["milestone"].tolist(), ms["due"].tolist(),
               ms["due_version"].tolist(), ms["state"].tolist(), ms["is_final"].tolist())
    for task_id, rows in groupby(cols, key=lambda r: r[0]):
        views[task_id] = tuple(MilestoneView(r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7])) for r in rows)
    last_report = {tid: _local_date(at, tz) for tid, at in reports.items()}
    assigned = _local_dates(t["assigned_at"], tz).tolist()
    out: dict[int, str | None] = {}
    live = t[~t["archived"]]
    idx = [t.index.get_loc(i) for i in live.index]
    for k, row in enumerate(live[["task_id", "plan_id", "code", "title", "owner_id", "schedule", "period", "period_month", "acknowledged",
                                  "task_policy"]].itertuples(index=False)):
        milestones = views.get(row.task_id, ())
        view = TaskView(
            id=row.task_id, plan_id=row.plan_id, code=row.code, title=row.title, owner_id=row.owner_id, schedule=row.schedule,
            period=row.period if isinstance(row.period, str) else None,
            period_month=int(row.period_month) if row.period_month == row.period_month and row.period_month is not None else None,
            assigned_on=assigned[idx[k]],
            acknowledged=bool(row.acknowledged) or any(mv.status != ASSIGNED for mv in milestones),
            last_report_on=last_report.get(row.task_id), milestones=milestones,
        )
        policy = effective_policy(plan_policy[row.plan_id], row.task_policy) if row.task_policy else base[row.plan_id]
        out[row.task_id] = colour(view, policy, cal, as_of)
    return out


def _local_date(value: Any, tz) -> dt.date | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(tz).date()


# ---------------------------------------------------------------------------------------------
# computing


def compute(engine: Engine, *, as_of: dt.date, plan_code: str | None = None, tz, cal,
            due_soon_days: int = DUE_SOON_DAYS) -> Rollup:
    """The roll-up of one plan (``plan_code``) or of every plan, as of ``as_of`` (docs/rollup.md)."""
    with session_scope(engine, readonly=True) as session:
        plans = _plans(session, plan_code)
        plan_ids = [int(x) for x in plans["plan_id"]]
        data = _load(session, plan_ids, tz)
        snaps = _snapshot_frame(session, plan_ids, scope="plan", key=None, until=as_of)
    workdays = _Workdays(cal)
    people = data["people"]

    # tasks, with their department, supervising leader and names
    t = data["tasks"].merge(data["depts"], on="department_id", how="left")
    t["archived"] = t["archived"].astype(bool)
    t["acknowledged"] = t["acknowledged"].astype(bool)
    t["department"] = t["department"].where(t["department"].notna(), None)
    sup = t["task_supervisor_id"].where(t["task_supervisor_id"].notna(), t["dept_supervisor_id"])
    t["supervisor"] = [people.get(int(x)) if x == x and x is not None else None for x in sup.tolist()]
    t["owner"] = [people.get(int(x), "") for x in t["owner_id"].tolist()]
    t = t.merge(plans[["plan_id", "plan", "plan_name", "organization"]], on="plan_id", how="left")

    # milestones of every task (archived milestones already left out)
    m = data["milestones"]
    m["finished_on"] = _local_dates(m["submitted_at"].where(m["submitted_at"].notna(), m["completed_at"]), tz)
    m["is_final"] = m["is_final"].astype(bool)
    m["is_done"] = m["state"] == DONE
    m["is_open"] = m["state"].isin(OPEN_STATES)
    due = m["due"]
    finished = m["finished_on"]
    m["is_due"] = m["is_done"] | (due < as_of)
    on_time = [d and f is not None and f <= x for d, f, x in zip(m["is_done"].tolist(), finished.tolist(), due.tolist())]
    on_base = [d and f is not None and f <= x for d, f, x in zip(m["is_done"].tolist(), finished.tolist(), m["baseline"].tolist())]
    m["is_on_time"] = pd.Series(on_time, index=m.index, dtype=bool)
    m["is_on_time_baseline"] = pd.Series(on_base, index=m.index, dtype=bool)
    m["is_overdue"] = m["is_open"] & (due < as_of)
    soon_end = as_of + dt.timedelta(days=due_soon_days)
    m["is_due_soon"] = m["is_open"] & (due >= as_of) & (due <= soon_end)
    # working days late: open and past due → until as_of; done late → until it was finished
    late_end = pd.Series([as_of if o else (f if (d and f is not None and f > x) else None)
                          for o, d, f, x in zip(m["is_overdue"].tolist(), m["is_done"].tolist(), finished.tolist(), due.tolist())],
                         index=m.index, dtype=object)
    m["days_late"] = workdays(due, late_end).clip(lower=0) if len(m) else pd.Series([], dtype="int64")
    rank = m["state"].map({ASSIGNED: 0, IN_PROGRESS: 1, SUBMITTED: 2, DONE: 3})
    m["rank"] = rank

    per_task = m.groupby("task_id").agg(
        milestones=("milestone_id", "size"), done_milestones=("is_done", "sum"), due_milestones=("is_due", "sum"),
        on_time_milestones=("is_on_time", "sum"), on_time_baseline_milestones=("is_on_time_baseline", "sum"),
        overdue_milestones=("is_overdue", "sum"), due_soon_milestones=("is_due_soon", "sum"), late_days=("days_late", "sum"),
        min_rank=("rank", "min"),
    )
    t = t.merge(per_task, left_on="task_id", right_index=True, how="left")
    for c in ("milestones", "done_milestones", "due_milestones", "on_time_milestones", "on_time_baseline_milestones",
              "overdue_milestones", "due_soon_milestones", "late_days"):
        t[c] = t[c].fillna(0).astype("int64")

    # status, as duban.status derives it
    ongoing = t["schedule"].isin(("recurring", "ongoing"))
    has_ms = t["milestones"] > 0
    min_rank = t["min_rank"]
    started = t["acknowledged"] | (min_rank.fillna(0) >= 1)
    by_rank = min_rank.map({0: ASSIGNED, 1: IN_PROGRESS, 2: SUBMITTED, 3: DONE})
    status = pd.Series(ASSIGNED, index=t.index, dtype=object)
    status = status.where(~(~ongoing & ~has_ms & t["acknowledged"]), IN_PROGRESS)
    status = status.where(~(~ongoing & has_ms), by_rank)
    status = status.where(~(ongoing & started), IN_PROGRESS)
    status = status.where(~t["archived"], ARCHIVED)
    t["status"] = status
    colours = _colours(t, m, plans, data["reports"], tz, cal, as_of)
    t["colour"] = pd.Series([colours.get(int(i)) if not a else None for i, a in zip(t["task_id"].tolist(), t["archived"].tolist())],
                            index=t.index, dtype=object)

    # assessment inputs per task: escalations, completion requests and returns
    esc = data["escalations"]
    t = t.merge(esc.groupby("task_id").size().rename("escalations"), left_on="task_id", right_index=True, how="left")
    req = data["requests"]
    comp = req[req["kind"] == COMPLETION]
    decided = comp[comp["status"].isin((APPROVED, RETURNED))]
    t = t.merge(decided.groupby("task_id").size().rename("completion_requests"), left_on="task_id", right_index=True, how="left")
    t = t.merge(comp[comp["status"] == RETURNED].groupby("task_id").size().rename("returns"), left_on="task_id", right_index=True, how="left")
    for c in ("escalations", "completion_requests", "returns"):
        t[c] = t[c].fillna(0).astype("int64")

    live = t[~t["archived"]].copy()
    live["done_tasks"] = live["status"] == DONE
    all_on_time = live["on_time_milestones"] == live["milestones"]
    live["on_time_tasks"] = live["done_tasks"] & all_on_time & (live["milestones"] > 0)
    live["overdue_tasks"] = live["overdue_milestones"] > 0
    live["due_soon_tasks"] = live["due_soon_milestones"] > 0
    for st in TASK_STATES:
        live[st] = live["status"] == st
    live["red"] = live["colour"] == RED
    live["yellow"] = live["colour"] == YELLOW
    live["green"] = live["colour"] == GREEN
    live["no_light"] = live["colour"].isna()
    live["department"] = live["department"].fillna(UNSPECIFIED)
    live["supervisor"] = live["supervisor"].fillna(UNSPECIFIED)
    live["tasks"] = 1

    def group(keys: list[str], order: list[str], ascending: list[bool] | None = None) -> pd.DataFrame:
        cols = list(COUNT_COLUMNS)
        if live.empty:
            return pd.DataFrame(columns=keys + cols + ["completion_rate", "on_time_rate", "on_time_baseline_rate"])
        g = live.groupby(keys, sort=False, dropna=False)[cols].sum().reset_index()
        for c in cols:
            g[c] = g[c].astype("int64")
        _rates(g)
        g = g.sort_values(order, ascending=ascending if ascending is not None else True, kind="stable").reset_index(drop=True)
        return g

    by_plan = group(["plan", "plan_name", "organization"], ["plan"])
    # every selected plan, even one without tasks
    by_plan = plans[["plan", "plan_name", "organization"]].merge(by_plan, on=["plan", "plan_name", "organization"], how="left")
    for c in COUNT_COLUMNS:
        by_plan[c] = by_plan[c].fillna(0).astype("int64")
    _rates(by_plan)
    by_system = group(["plan", "system_code", "system", "system_position"], ["plan", "system_position", "system_code"])
    by_system = by_system.drop(columns=["system_position"])
    by_project = group(["plan", "system_code", "system", "system_position", "project_code", "project", "project_position"],
                       ["plan", "system_position", "project_position", "project_code"])
    by_project = by_project.drop(columns=["system_position", "project_position"])
    by_department = group(["plan", "department"], ["plan", "tasks", "department"], [True, False, True])
    by_supervisor = group(["plan", "supervisor"], ["plan", "tasks", "supervisor"], [True, False, True])

    # overdue milestones, with the highest 督办 level reached for the current due date
    mt = m.merge(live[["task_id", "plan", "code", "title", "owner", "department", "supervisor", "position", "colour"]], on="task_id")
    level = esc.dropna(subset=["milestone_id"]).groupby(["milestone_id", "due"])["level"].max().rename("level").reset_index()
    level["milestone_id"] = level["milestone_id"].astype("int64")
    od = mt[mt["is_overdue"]].merge(level, on=["milestone_id", "due"], how="left")
    od["level"] = od["level"].fillna(0).astype("int64")
    od["level_label"] = od["level"].map(LEVEL_LABELS)
    od["milestone"] = [("" if f else (s or "")) for f, s in zip(od["is_final"].tolist(), od["milestone"].tolist())]
    overdue = od.sort_values(["level", "days_late", "plan", "position", "seq"], ascending=[False, False, True, True, True], kind="stable")
    overdue = overdue[["plan", "code", "title", "milestone", "owner", "department", "supervisor", "due", "baseline", "days_late",
                       "level", "level_label"]].reset_index(drop=True)

    ds = mt[mt["is_due_soon"]].copy()
    ds["days_left"] = workdays(pd.Series([as_of] * len(ds), index=ds.index, dtype=object), ds["due"]) if len(ds) else 0
    ds["milestone"] = [("" if f else (s or "")) for f, s in zip(ds["is_final"].tolist(), ds["milestone"].tolist())]
    ds["colour_label"] = ds["colour"].map(lambda c: COLOUR_LABELS.get(c, ""))
    due_soon = ds.sort_values(["due", "plan", "position", "seq"], kind="stable")[
        ["plan", "code", "title", "milestone", "owner", "department", "due", "days_left", "colour_label"]].reset_index(drop=True)

    # requests waiting for the office
    tinfo = t[["task_id", "plan", "code", "title", "department", "position"]].copy()
    tinfo["department"] = tinfo["department"].fillna(UNSPECIFIED)
    mtitle = m[["milestone_id", "milestone", "is_final", "due"]]
    pend = req[req["status"] == REQUEST_PENDING].merge(tinfo, on="task_id")
    pend = pend.merge(mtitle, on="milestone_id", how="left")
    pend["kind"] = pend["kind"].map(lambda k: REQUEST_LABELS.get(k, k))
    pend["requester"] = [people.get(int(p), "") for p in pend["person_id"].tolist()]
    pend["submitted_on"] = _local_dates(pend["created_at"], tz)
    pend["waiting_days"] = workdays(pend["submitted_on"], as_of).clip(lower=0) if len(pend) else 0
    pend["milestone"] = [("" if f is True else (s if isinstance(s, str) else "")) for f, s in zip(pend["is_final"].tolist(), pend["milestone"].tolist())]
    awaiting = pend.sort_values(["submitted_on", "plan", "position"], kind="stable")[
        ["plan", "kind", "code", "title", "milestone", "department", "requester", "submitted_on", "waiting_days", "due", "new_due"]
    ].reset_index(drop=True)

    # slippage: every live milestone whose due date moved from its baseline
    ext = req[(req["kind"] == EXTENSION) & (req["status"] == APPROVED)].copy()
    ext["decided_on"] = _local_dates(ext["decided_at"], tz)
    ext_by_m = ext.groupby("milestone_id").agg(extensions=("request_id", "size"), last_approved=("decided_on", "max"))
    moved = mt[mt["due"] != mt["baseline"]].merge(ext_by_m, left_on="milestone_id", right_index=True, how="left")
    moved["extensions"] = moved["extensions"].fillna(0).astype("int64")
    moved["slipped_days"] = [(d - b).days for d, b in zip(moved["due"].tolist(), moved["baseline"].tolist())]
    moved["slipped_workdays"] = workdays(moved["baseline"], moved["due"]) if len(moved) else 0
    moved["reason"] = ["批准延期" if n else "方案调整" for n in moved["extensions"].tolist()]
    moved["milestone"] = [("" if f else (s or "")) for f, s in zip(moved["is_final"].tolist(), moved["milestone"].tolist())]
    moved["last_approved"] = moved["last_approved"].where(moved["last_approved"].notna(), None)
    extensions = moved.sort_values(["slipped_days", "plan", "position"], ascending=[False, True, True], kind="stable")[
        ["plan", "code", "title", "milestone", "owner", "department", "baseline", "due", "slipped_days", "slipped_workdays",
         "extensions", "reason", "last_approved"]].reset_index(drop=True)

    assessment = _assessment(live, plans)

    totals = {c: int(by_plan[c].sum()) for c in COUNT_COLUMNS}
    totals.update(plans=len(plans), awaiting_approval=len(awaiting), extensions_granted=int(ext.shape[0]),
                  slipped_milestones=len(extensions), escalations=int(live["escalations"].sum()))
    _rates(totals)

    trend = _trend_with_today(snaps, totals, as_of)

    task_cols = ["plan", "code", "title", "system", "project", "department", "owner", "supervisor", "schedule", "status", "colour",
                 "milestones", "done_milestones", "due_milestones", "on_time_milestones", "overdue_milestones", "late_days",
                 "escalations", "returns"]
    tasks_view = live.sort_values(["plan", "system_position", "project_position", "position"], kind="stable")[task_cols].reset_index(drop=True)
    return Rollup(as_of=as_of, plan_code=plan_code, due_soon_days=due_soon_days, totals=totals, by_plan=by_plan,
                  by_system=by_system, by_project=by_project, by_department=by_department, by_supervisor=by_supervisor,
                  overdue=overdue, due_soon=due_soon, awaiting_approval=awaiting, extensions=extensions, trend=trend,
                  assessment=assessment, tasks=tasks_view, plans=plans.drop(columns=["policy"]),
                  warnings=list(getattr(cal, "warnings", []) or []),
                  assessment_policies={row.plan: assessment_policy(row.policy) for row in plans.itertuples()})


def _ratio(num, den):
    """num / den, NaN where den is 0 (frames) or None (scalars)."""
    if isinstance(den, pd.Series):
        return (num / den.where(den > 0)).astype("float64")
    return (num / den) if den else None


def _rates(g) -> None:
    g["completion_rate"] = _ratio(g["done_milestones"], g["milestones"])
    g["on_time_rate"] = _ratio(g["on_time_milestones"], g["due_milestones"])
    g["on_time_baseline_rate"] = _ratio(g["on_time_baseline_milestones"], g["due_milestones"])


def _assessment(live: pd.DataFrame, plans: pd.DataFrame) -> pd.DataFrame:
    """考核: one row per (plan, lead department); formula in docs/rollup.md."""
    cols = ["tasks", "due_milestones", "on_time_milestones", "late_days", "escalations", "completion_requests", "returns"]
    out_cols = ["plan", "department", "tasks", "due_milestones", "on_time_milestones", "on_time_rate", "late_days",
                "avg_late_days", "escalations", "escalations_per_task", "completion_requests", "returns", "return_rate",
                "s_on_time", "s_overdue", "s_escalations", "s_returns", "p_on_time", "p_overdue", "p_escalations", "p_returns",
                "score", "rank"]
    if live.empty:
        return pd.DataFrame(columns=out_cols)
    g = live.groupby(["plan", "department"], sort=False)[cols].sum().reset_index()
    policies = {row.plan: assessment_policy(row.policy) for row in plans.itertuples()}
    if len({p.model_dump_json() for p in policies.values()}) <= 1:
        a = score_frame(g, next(iter(policies.values())))
    else:  # plans with their own settings: each row scored with its plan's (vectorised, not per plan)
        per = {name: g["plan"].map({code: value(p) for code, p in policies.items()}) for name, value in _PARAMS.items()}
        a = _score(g, **per)
    a = a.sort_values(["plan", "score", "department"], ascending=[True, False, True], kind="stable").reset_index(drop=True)
    a["rank"] = a.groupby("plan")["score"].rank(method="min", ascending=False).astype("int64")
    return a[out_cols]


def score_frame(g: pd.DataFrame, policy: AssessmentPolicy) -> pd.DataFrame:
    """Add the component scores and the total to a frame with the record columns (docs/rollup.md).

    Each component is a rate from 0 to 1 (``s_*``), its points are rate × weight (``p_*``), and the
    score is the points' sum over the weights' sum × 100.  Nothing due yet counts as full marks.
    """
    return _score(g, **{name: value(policy) for name, value in _PARAMS.items()})


_PARAMS = {
    "w_on_time": lambda p: p.weights.on_time, "w_overdue": lambda p: p.weights.overdue, "w_escalations": lambda p: p.weights.escalations,
    "w_returns": lambda p: p.weights.returns, "overdue_limit": lambda p: p.overdue_days_limit,
    "escalations_limit": lambda p: p.escalations_limit, "returns_limit": lambda p: p.returns_limit,
}


def _score(g: pd.DataFrame, *, w_on_time, w_overdue, w_escalations, w_returns, overdue_limit, escalations_limit, returns_limit) -> pd.DataFrame:
    """The arithmetic of :func:`score_frame`; each parameter a number or a per-row Series."""
    due = g["due_milestones"]
    g["on_time_rate"] = _ratio(g["on_time_milestones"], due)
    g["avg_late_days"] = (g["late_days"] / due.where(due > 0)).fillna(0.0)
    g["escalations_per_task"] = (g["escalations"] / g["tasks"].where(g["tasks"] > 0)).fillna(0.0)
    g["return_rate"] = _ratio(g["returns"], g["completion_requests"])
    g["s_on_time"] = g["on_time_rate"].fillna(1.0)
    g["s_overdue"] = (1 - g["avg_late_days"] / overdue_limit).clip(lower=0.0, upper=1.0)
    g["s_escalations"] = (1 - g["escalations_per_task"] / escalations_limit).clip(lower=0.0, upper=1.0)
    g["s_returns"] = (1 - g["return_rate"].fillna(0.0) / returns_limit).clip(lower=0.0, upper=1.0)
    g["p_on_time"] = g["s_on_time"] * w_on_time
    g["p_overdue"] = g["s_overdue"] * w_overdue
    g["p_escalations"] = g["s_escalations"] * w_escalations
    g["p_returns"] = g["s_returns"] * w_returns
    total = g["p_on_time"] + g["p_overdue"] + g["p_escalations"] + g["p_returns"]
    g["score"] = (total / (w_on_time + w_overdue + w_escalations + w_returns) * 100).round(1)
    for c in ("p_on_time", "p_overdue", "p_escalations", "p_returns"):
        g[c] = g[c].round(1)
    return g


# ---------------------------------------------------------------------------------------------
# snapshots and trend


def _snapshot_frame(session, plan_ids: list[int], *, scope: str, key: str | None, until: dt.date | None,
                    days: int | None = None) -> pd.DataFrame:
    s = RollupSnapshot
    q = select(s.plan_id, s.day, s.scope, s.key, *(getattr(s, c) for c in SNAPSHOT_COUNTS)).where(s.plan_id.in_(plan_ids), s.scope == scope)
    if key is not None:
        q = q.where(s.key == key)
    if until is not None:
        q = q.where(s.day <= until)
        if days is not None:
            q = q.where(s.day > until - dt.timedelta(days=days))
    return _frame(session.execute(q), ["plan_id", "day", "scope", "key", *SNAPSHOT_COUNTS])


def _trend_frame(snaps: pd.DataFrame, by_key: bool = False) -> pd.DataFrame:
    cols = list(SNAPSHOT_COUNTS)
    keys = ["day", "key"] if by_key else ["day"]
    if snaps.empty:
        out = pd.DataFrame(columns=keys + cols)
    else:
        out = snaps.groupby(keys, sort=True)[cols].sum().reset_index()
        for c in cols:
            out[c] = out[c].astype("int64")
    out["completion_rate"] = _ratio(out["done_milestones"], out["milestones"]) if len(out) else pd.Series([], dtype="float64")
    out["on_time_rate"] = _ratio(out["on_time_milestones"], out["due_milestones"]) if len(out) else pd.Series([], dtype="float64")
    return out


def _trend_with_today(snaps: pd.DataFrame, totals: dict[str, Any], as_of: dt.date) -> pd.DataFrame:
    """Stored daily snapshots up to ``as_of``; ``as_of`` itself from the live numbers (so the trend
    always ends today, whether or not today's snapshot has been written yet)."""
    snaps = snaps[snaps["day"] != as_of] if not snaps.empty else snaps
    out = _trend_frame(snaps)
    today = pd.DataFrame([{"day": as_of, **{c: totals[c] for c in SNAPSHOT_COUNTS}}])
    out = pd.concat([out[["day", *SNAPSHOT_COUNTS]], today], ignore_index=True) if len(out) else today
    for c in SNAPSHOT_COUNTS:
        out[c] = out[c].astype("int64")
    out["completion_rate"] = _ratio(out["done_milestones"], out["milestones"])
    out["on_time_rate"] = _ratio(out["on_time_milestones"], out["due_milestones"])
    return out.sort_values("day").reset_index(drop=True)


def trend(engine: Engine, *, plan_code: str | None = None, scope: str = "plan", key: str | None = None,
          until: dt.date | None = None, days: int | None = None) -> pd.DataFrame:
    """Stored snapshots as a daily series (``day`` + the snapshot counts + rates), summed over the
    selected plans; ``scope`` system/department gives one series per ``key`` unless ``key`` is set."""
    with session_scope(engine, readonly=True) as session:
        plans = _plans(session, plan_code)
        snaps = _snapshot_frame(session, [int(x) for x in plans["plan_id"]], scope=scope, key=key, until=until, days=days)
    return _trend_frame(snaps, by_key=scope != "plan" and key is None)


def snapshot_rows(r: Rollup, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The snapshot rows of a roll-up: each plan, and each of its systems and lead departments."""
    now = now or utcnow()
    ids = dict(zip(r.plans["plan"], r.plans["plan_id"]))
    out = []
    for scope, frame, key in (("plan", r.by_plan, None), ("system", r.by_system, "system"), ("department", r.by_department, "department")):
        for row in frame.to_dict(orient="records"):
            out.append({"plan_id": int(ids[row["plan"]]), "day": r.as_of, "scope": scope, "key": "" if key is None else str(row[key])[:300],
                        **{c: int(row[c]) for c in SNAPSHOT_COUNTS}, "computed_at": now})
    return out


def snapshot(engine: Engine, r: Rollup, *, now: dt.datetime | None = None) -> int:
    """Upsert the day's snapshot rows (plan, day, scope, key); returns rows written.

    Rows of that day and plan that no longer exist (a department that leads nothing any more)
    are removed, so a re-run the same day leaves exactly what a first run would have written.
    """
    rows = snapshot_rows(r, now)
    table = RollupSnapshot.__table__
    plan_ids = [int(x) for x in r.plans["plan_id"]]
    with session_scope(engine) as session:
        if session.bind.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        if rows:
            stmt = insert(table)
            stmt = stmt.on_conflict_do_update(
                index_elements=["plan_id", "day", "scope", "key"],
                set_={c: stmt.excluded[c] for c in (*SNAPSHOT_COUNTS, "computed_at")},
            )
            for i in range(0, len(rows), 2000):
                session.execute(stmt, rows[i : i + 2000])
        # drop keys of that day that this run did not write
        keep = {(x["plan_id"], x["scope"], x["key"]) for x in rows}
        stale = [i for i, p, sc, k in session.execute(
            select(table.c.id, table.c.plan_id, table.c.scope, table.c.key).where(table.c.day == r.as_of, table.c.plan_id.in_(plan_ids))
        ) if (p, sc, k) not in keep]
        for i in range(0, len(stale), 5000):
            session.execute(table.delete().where(table.c.id.in_(stale[i : i + 5000])))
    return len(rows)


def take_snapshot(engine: Engine, *, as_of: dt.date, tz, cal) -> int:
    """Compute over all plans and store the day's snapshot (the daily sweep calls this)."""
    return snapshot(engine, compute(engine, as_of=as_of, tz=tz, cal=cal))


def headline(r: Rollup) -> str:
    """One Chinese sentence with the headline figures (CLI, artifacts, the 通报)."""
    t = r.totals
    return (f"截至 {r.as_of.isoformat()}，在办任务 {t['tasks']} 项，已办结 {t['done_tasks']} 项；节点完成率 {pct(t['completion_rate'])}，"
            f"按期完成率 {pct(t['on_time_rate'])}；红灯 {t['red']} 项、黄灯 {t['yellow']} 项、绿灯 {t['green']} 项；"
            f"逾期任务 {t['overdue_tasks']} 项，待审核 {t['awaiting_approval']} 项。")


def pct(value: Any, digits: int = 1) -> str:
    """A rate as a Chinese percentage (``—`` when there is nothing to divide)."""
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    return f"{value * 100:.{digits}f}%"
