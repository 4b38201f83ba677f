"""The roll-up for the leading group (领导小组): progress, lights, overdue items, scores, trend.

Library only (no Prefect): ``flows/rollup.py`` schedules it, ``duban report`` and the dashboard
call it.  Definitions (on time, rates, the score) are documented in ``docs/rollup.md``.

Stable API (the dashboard and the report build on these; within ``duban.rollup/1`` names are only
added, never removed or renamed):

Where things are: this module holds the result (``Rollup``, the columns and their headers,
``headline``, ``pct``); :mod:`duban.rollup.compute` computes it from :mod:`duban.rollup.frames`
(the loaded tables) and :mod:`duban.rollup.assessment` (考核); :mod:`duban.rollup.snapshots`
stores the day's counts and :mod:`duban.rollup.trend` reads them back.

``compute.compute(engine, *, as_of, plan_code=None, tz, cal, due_soon_days=14) -> Rollup``
    Everything, as pandas DataFrames, from a handful of set-based queries in one read-only
    transaction.  ``plan_code=None`` is the provincial view across all plans.  Raises
    :class:`RollupError` (Chinese message) for an unknown plan code.
``Rollup``
    ``as_of``, ``plan_code``, ``due_soon_days``, ``totals`` (dict of headline numbers), and the
    DataFrames ``by_plan``, ``by_system``, ``by_project``, ``by_department``, ``by_supervisor``,
    ``overdue``, ``due_soon``, ``awaiting_approval``, ``extensions``, ``trend``, ``assessment``,
    ``tasks`` (one row per task, with its colour: for drill-down), ``compared_with`` (plan code →
    the 通报 the ranks are compared with, ``第 3 期周通报（2026-11-20）``); ``views()`` lists
    ``(key, Chinese title, DataFrame)`` in report order; ``to_dict()`` is JSON-ready
    (``schema: duban.rollup/1``).  Column names are English identifiers; :data:`COLUMNS` maps
    each to its Chinese header (``header(name)``), :data:`RATE_COLUMNS` are fractions 0–1.
``snapshots.snapshot(engine, rollup, *, now=None) -> int``
    Write the day's counts (scope plan / system / department) to ``rollup_snapshots``, an upsert
    on (plan, day, scope, key): running it again the same day replaces, never duplicates.
``snapshots.take_snapshot(engine, *, as_of, tz, cal) -> int``
    ``compute`` over all plans + ``snapshot`` (what the daily sweep calls).
``trend.trend(engine, *, plan_code=None, scope="plan", key=None, until=None, days=None) -> DataFrame``
    The stored snapshots as a time series (summed over plans for the provincial view).
``assessment``
    One row per (plan, lead department): the record, the parts ``s_*`` / ``p_*``, ``score``,
    ``rank`` (int) and ``change`` (``↑2`` / ``↓1`` / ``—`` / ``新上榜`` / empty); a department with
    nothing due has NaN parts and score and ``rank`` None, after the ranked ones.
``bulletins.issue_bulletins(engine, *, today, cal, tz, ...) -> BulletinRun``
    Issue the numbered 督办通报 due today (``schedule``: which day, which period, the title).

Group metrics (every ``by_*`` frame and the snapshot): ``tasks`` (non-archived), ``done_tasks``,
``on_time_tasks``, ``overdue_tasks``, ``due_soon_tasks``, ``milestones``, ``done_milestones``,
``due_milestones`` (应完成: done, or due before ``as_of``), ``on_time_milestones``,
``on_time_baseline_milestones``, ``overdue_milestones``, ``late_days``, ``red``, ``yellow``,
``green``, ``no_light``, ``completion_rate`` (done / milestones), ``on_time_rate``
(on time / due), ``on_time_baseline_rate``.  Task status counts (``assigned`` … ``done``) are of
``duban.status.task_status`` itself, and ``tasks`` / ``overdue_tasks`` / ``due_soon_tasks`` agree with
``duban status --json``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from duban.rules.policy import AssessmentPolicy
from duban.status import TASK_STATES
from duban.values import jsonable
from duban.vocabulary import Light, RequestKind

SCHEMA = "duban.rollup/1"
DUE_SOON_DAYS = 14
UNSPECIFIED = "（未指定）"
LEVEL_LABELS = {0: "未督办", 1: "已督办部门负责人", 2: "已督办分管校领导", 3: "已报领导小组办公室"}
COLOUR_LABELS = {Light.RED: "红灯", Light.YELLOW: "黄灯", Light.GREEN: "绿灯", None: "无（已办结）"}
REQUEST_LABELS = {RequestKind.COMPLETION: "办结审核", RequestKind.EXTENSION: "延期审批"}

# the summable counts of a group (snapshot columns are a subset)
COUNT_COLUMNS = (
    "tasks",
    *TASK_STATES,
    "done_tasks",
    "on_time_tasks",
    "overdue_tasks",
    "due_soon_tasks",
    "milestones",
    "done_milestones",
    "due_milestones",
    "on_time_milestones",
    "on_time_baseline_milestones",
    "overdue_milestones",
    "late_days",
    "red",
    "yellow",
    "green",
    "no_light",
)
RATE_COLUMNS = frozenset(
    {
        "completion_rate",
        "on_time_rate",
        "on_time_baseline_rate",
        "s_on_time",
        "s_overdue",
        "s_escalations",
        "s_returns",
        "escalations_per_task",
        "return_rate",
    }
)
# the columns of the task lists, in order: the frames compute builds and the report's views share them
LIST_COLUMNS: dict[str, list[str]] = {
    "due_soon": ["plan", "code", "title", "milestone", "owner", "department", "due", "days_left", "colour_label"],
    "awaiting_approval": [
        "plan",
        "kind",
        "code",
        "title",
        "milestone",
        "department",
        "requester",
        "submitted_on",
        "waiting_days",
        "due",
        "new_due",
    ],
    "extensions": [
        "plan",
        "code",
        "title",
        "milestone",
        "owner",
        "department",
        "baseline",
        "due",
        "slipped_days",
        "slipped_workdays",
        "extensions",
        "reason",
        "last_approved",
    ],
}
SNAPSHOT_COUNTS = (
    "tasks",
    "done_tasks",
    "overdue_tasks",
    "due_soon_tasks",
    "red",
    "yellow",
    "green",
    "milestones",
    "done_milestones",
    "due_milestones",
    "on_time_milestones",
    "overdue_milestones",
)

COLUMNS: dict[str, str] = {
    "plan": "方案编号",
    "plan_name": "方案名称",
    "institution": "单位编号",
    "institution_name": "学校（单位）",
    "plans": "方案数",
    "organization": "单位",
    "system_code": "体系编号",
    "system": "育人体系",
    "project_code": "项目编号",
    "project": "重点项目",
    "department": "牵头单位",
    "supervisor": "分管校领导",
    "tasks": "任务总数",
    "open_tasks": "在办任务",
    "assigned": "待签收",
    "in_progress": "办理中",
    "submitted": "待审核",
    "done": "已办结",
    "done_tasks": "已办结任务",
    "on_time_tasks": "按期办结任务",
    "overdue_tasks": "逾期任务",
    "due_soon_tasks": "近期到期任务",
    "milestones": "节点总数",
    "done_milestones": "已完成节点",
    "due_milestones": "应完成节点",
    "on_time_milestones": "按期完成节点",
    "on_time_baseline_milestones": "按原定时间完成节点",
    "overdue_milestones": "逾期节点",
    "late_days": "累计逾期工作日",
    "red": "红灯",
    "yellow": "黄灯",
    "green": "绿灯",
    "no_light": "无灯（已办结）",
    "completion_rate": "节点完成率",
    "on_time_rate": "按期完成率",
    "on_time_baseline_rate": "按原定时间完成率",
    "code": "任务编号",
    "title": "任务名称",
    "milestone": "节点",
    "owner": "责任人",
    "due": "完成时间",
    "baseline": "原定时间",
    "days_late": "逾期工作日",
    "level": "督办层级",
    "level_label": "督办情况",
    "days_left": "剩余工作日",
    "colour": "灯",
    "colour_label": "状态灯",
    "status": "任务状态",
    "kind": "类别",
    "requester": "申请人",
    "submitted_on": "提交日期",
    "waiting_days": "已等待工作日",
    "new_due": "申请延至",
    "extensions": "批准延期次数",
    "slipped_days": "推迟天数",
    "slipped_workdays": "推迟工作日",
    "reason": "调整原因",
    "last_approved": "最近批准日期",
    "day": "日期",
    "escalations": "被督办次数",
    "escalations_per_task": "每项任务督办次数",
    "completion_requests": "办结申请",
    "returns": "被退回",
    "return_rate": "退回率",
    "avg_late_days": "每节点平均逾期工作日",
    "s_on_time": "按期完成得分率",
    "s_overdue": "逾期得分率",
    "s_escalations": "督办得分率",
    "s_returns": "退回得分率",
    "p_on_time": "按期完成得分",
    "p_overdue": "逾期得分",
    "p_escalations": "督办得分",
    "p_returns": "退回得分",
    "score": "考核得分",
    "rank": "排名",
    "change": "名次变化",
    "schedule": "类型",
    "overdue": "是否逾期",
    "deadline": "完成时限",
    "current_milestone": "当前节点",
    "latest_progress": "最近进展",
    "acknowledged_at": "签收时间",
    "awaiting_approval": "待审核事项",
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
    compared_with: dict[str, str] = field(default_factory=dict)  # plan code -> the 通报 the rank changes are since

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
            "schema": SCHEMA,
            "as_of": self.as_of.isoformat(),
            "plan": self.plan_code,
            "due_soon_days": self.due_soon_days,
            "totals": jsonable(self.totals),
            **{key: records(frame) for key, _title, frame in self.views()},
        }


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame as JSON-ready dicts (dates ISO, NaN/NaT None, numpy scalars plain)."""
    return [jsonable(r) for r in frame.to_dict(orient="records")]


def headline(r: Rollup) -> str:
    """One Chinese sentence with the headline figures (CLI, artifacts, the 通报)."""
    t = r.totals
    return (
        f"截至 {r.as_of.isoformat()}，任务 {t['tasks']} 项，其中在办 {t['open_tasks']} 项、已办结 {t['done_tasks']} 项；"
        f"{rates_and_lights(t)}，待审核事项 {t['awaiting_approval']} 件。"
    )


def rates_and_lights(t: dict[str, Any]) -> str:
    """The rates, lights and overdue tasks of ``totals`` as one phrase of a headline (school's, province's)."""
    return (
        f"节点完成率 {pct(t['completion_rate'])}，按期完成率 {pct(t['on_time_rate'])}；"
        f"红灯 {t['red']} 项、黄灯 {t['yellow']} 项、绿灯 {t['green']} 项；逾期任务 {t['overdue_tasks']} 项"
    )


def pct(value: Any, digits: int = 1) -> str:
    """A rate as a Chinese percentage (``—`` when there is nothing to divide)."""
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    return f"{value * 100:.{digits}f}%"
