"""Each live task's light (红灯 · 黄灯 · 绿灯) for the roll-up, as :func:`duban.rules.deadlines.colour`
decides it.

A task with a single deadline (``once``), the bulk of every plan, is decided on the milestone frame
in a handful of column operations, the rule's conditions one for one (tests/rollup/test_lights.py
checks they agree with the rule on every kind of task); a recurring or ongoing task, whose light
also depends on its reporting periods, is decided by the rule itself, on the same views
``duban.sweep.load`` builds (tests/rollup/test_rollup.py checks the roll-up agrees with the sweep)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from itertools import groupby
from typing import Any

import pandas as pd

from duban.rollup.frames import local_dates
from duban.rules.deadlines import MilestoneView, TaskView, colour
from duban.rules.policy import DeadlinePolicy, effective_policy
from duban.status import ONGOING
from duban.values import local_date
from duban.vocabulary import OPEN_STATES, Light, MilestoneState

_MOVED_ON = (MilestoneState.SUBMITTED, MilestoneState.DONE)


def colours(t: pd.DataFrame, m: pd.DataFrame, plans: pd.DataFrame, reports: dict[int, Any], tz, cal, as_of: dt.date) -> pd.Series:
    """The light of each task of ``t`` (None: archived, done, or nothing dated), aligned with ``t``."""
    out = pd.Series([None] * len(t), index=t.index, dtype=object)
    live = t[~t["archived"]]
    if live.empty:
        return out
    policies = _policies(live, plans)
    assigned_on = local_dates(t["assigned_at"], tz).loc[live.index]
    periodic = live["schedule"].isin(ONGOING)
    once = live[~periodic]
    if len(once):
        out.loc[once.index] = _once_lights(once, m, policies.loc[once.index], assigned_on.loc[once.index], cal, as_of)
    every = live[periodic]
    if len(every):
        views = _milestone_views(m[m["task_id"].isin(every["task_id"])])
        last_report = {tid: local_date(at, tz) for tid, at in reports.items()}
        found = [colour(view, policy, cal, as_of) for view, policy in _task_views(every, assigned_on, views, last_report, policies)]
        out.loc[every.index] = pd.Series(found, index=every.index, dtype=object)
    return out


def _policies(live: pd.DataFrame, plans: pd.DataFrame) -> pd.Series:
    """Each task's deadline policy: its plan's, or with the task's own overrides."""
    plan_policy: dict[int, dict[str, Any] | None] = dict(zip(plans["plan_id"].tolist(), plans["policy"].tolist(), strict=True))
    base = {pid: effective_policy(pol) for pid, pol in plan_policy.items()}
    found = [
        effective_policy(plan_policy[pid], own) if own else base[pid]
        for pid, own in zip(live["plan_id"].tolist(), live["task_policy"].tolist(), strict=True)
    ]
    return pd.Series(found, index=live.index, dtype=object)


def _once_lights(
    tasks: pd.DataFrame, m: pd.DataFrame, policies: pd.Series, assigned_on: pd.Series, cal, as_of: dt.date
) -> list[str | None]:
    """``colour`` of tasks with a single deadline, on the milestone frame: none when every step is
    done or none is dated; red when an open step is past due; yellow when an open step is due within
    the reminder window, the task is not acknowledged in time, or a later step moved on while an
    earlier one is open; green otherwise."""
    ids = tasks["task_id"]
    ms = m[m["task_id"].isin(ids)]
    window = pd.Series([p.window for p in policies], index=ids.tolist())
    is_open = ms["state"].isin(OPEN_STATES)
    dues = ms["due"]
    days_left = dues.map({d: cal.workdays_between(as_of, d) for d in pd.unique(dues)})
    first_open = ms["seq"].where(is_open).groupby(ms["task_id"]).transform("min")
    flags = pd.DataFrame(
        {
            "task_id": ms["task_id"],
            "live": True,
            "not_done": ms["state"] != MilestoneState.DONE,
            "late": is_open & (dues < as_of),
            "soon": is_open & (days_left <= ms["task_id"].map(window)),
            "moved_on": ms["state"].isin(_MOVED_ON) & (ms["seq"] > first_open),
            "began": ms["state"] != MilestoneState.ASSIGNED,
        }
    )
    per_task = flags.groupby("task_id").any().reindex(ids.tolist(), fill_value=False)
    waited = assigned_on.map({d: cal.workdays_between(d, as_of) for d in pd.unique(assigned_on)})
    ack_within = pd.Series([p.ack_within for p in policies], index=tasks.index)
    not_acked = ~(tasks["acknowledged"].to_numpy(dtype=bool) | per_task["began"].to_numpy()) & (waited >= ack_within).to_numpy()
    yellow = per_task["soon"].to_numpy() | not_acked | per_task["moved_on"].to_numpy()
    return [
        None if not has or not open_ else Light.RED if late else Light.YELLOW if y else Light.GREEN
        for has, open_, late, y in zip(per_task["live"], per_task["not_done"], per_task["late"], yellow, strict=True)
    ]


def _milestone_views(ms: pd.DataFrame) -> dict[int, tuple[MilestoneView, ...]]:
    """Each task's milestones as the rules' views, in the roadmap's order."""
    ms = ms.sort_values(["task_id", "seq"], kind="stable")
    columns = ("task_id", "milestone_id", "seq", "milestone", "due", "due_version", "state", "is_final")
    rows = zip(*(ms[c].tolist() for c in columns), strict=True)
    return {
        task_id: tuple(MilestoneView(r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7])) for r in group)
        for task_id, group in groupby(rows, key=lambda r: r[0])
    }


def _task_views(
    tasks: pd.DataFrame,
    assigned_on: pd.Series,
    views: dict[int, tuple[MilestoneView, ...]],
    last_report: dict[int, dt.date | None],
    policies: pd.Series,
) -> Iterable[tuple[TaskView, DeadlinePolicy]]:
    """Each task as the rules' view, with its policy."""
    columns = ["task_id", "plan_id", "code", "title", "owner_id", "schedule", "period", "period_month", "acknowledged"]
    extra = (assigned_on.loc[tasks.index].tolist(), policies.loc[tasks.index].tolist())
    rows = zip(*(tasks[c].tolist() for c in columns), *extra, strict=True)
    for task_id, plan_id, code, title, owner_id, schedule, period, period_month, acknowledged, assigned, policy in rows:
        milestones = views.get(task_id, ())
        view = TaskView(
            id=task_id,
            plan_id=plan_id,
            code=code,
            title=title,
            owner_id=owner_id,
            schedule=schedule,
            period=period if isinstance(period, str) else None,
            period_month=int(period_month) if period_month == period_month and period_month is not None else None,
            assigned_on=assigned,
            acknowledged=bool(acknowledged) or any(mv.status != MilestoneState.ASSIGNED for mv in milestones),
            last_report_on=last_report.get(task_id),
            milestones=milestones,
        )
        yield view, policy
