"""``compute``: the roll-up of one plan or of every plan as of a day (docs/rollup.md), in named
steps: the task and milestone frames, each task's counts and flags, the groups, the lists
(overdue, due soon, awaiting approval, slipped), the totals and the trend."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from duban.db import session_scope
from duban.rollup import COLOUR_LABELS, COUNT_COLUMNS, DUE_SOON_DAYS, LEVEL_LABELS, LIST_COLUMNS, REQUEST_LABELS, UNSPECIFIED, Rollup
from duban.rollup.assessment import assessment, plan_assessment_policies, rates
from duban.rollup.frames import Workdays, last_rankings, load, local_dates, plans_frame
from duban.rollup.lights import colours
from duban.rollup.trend import snapshot_frame, trend_with_today
from duban.status import TASK_STATES
from duban.vocabulary import OPEN_STATES, Light, MilestoneState, RequestKind, RequestStatus, SnapshotScope

_MILESTONE_COUNTS = (
    "milestones",
    "done_milestones",
    "due_milestones",
    "on_time_milestones",
    "on_time_baseline_milestones",
    "overdue_milestones",
    "due_soon_milestones",
    "late_days",
)
_TASK_VIEW = [
    "plan",
    "code",
    "title",
    "system",
    "project",
    "department",
    "owner",
    "supervisor",
    "schedule",
    "status",
    "colour",
    "milestones",
    "done_milestones",
    "due_milestones",
    "on_time_milestones",
    "overdue_milestones",
    "late_days",
    "escalations",
    "returns",
    # the office's 台账 (the workbook's 任务明细): deadline, current step, latest report, 签收
    "deadline",
    "current_milestone",
    "latest_progress",
    "acknowledged_at",
]


def compute(
    engine: Engine,
    *,
    as_of: dt.date,
    plan_code: str | None = None,
    tz,
    cal,
    due_soon_days: int = DUE_SOON_DAYS,
    plan_ids: Collection[int] | None = None,
) -> Rollup:
    """The roll-up of one plan (``plan_code``) or of every plan, as of ``as_of`` (docs/rollup.md);
    ``plan_ids``: only these plans (an institution's, a viewer's scope; None: no limit)."""
    with session_scope(engine, readonly=True) as session:
        plans = plans_frame(session, plan_code, plan_ids)
        plan_ids = [int(x) for x in plans["plan_id"]]
        data = load(session, plan_ids, tz)
        snaps = snapshot_frame(session, plan_ids, scope=SnapshotScope.PLAN, key=None, until=as_of)
        published = last_rankings(session, plan_ids, before=as_of)
    code_of = dict(zip(plans["plan_id"].tolist(), plans["plan"].tolist(), strict=True))
    previous = {code_of[pid]: ranks for pid, (_name, ranks) in published.items()}
    workdays = Workdays(cal)
    people = data["people"]
    m = _milestones(data["milestones"], as_of=as_of, due_soon_days=due_soon_days, tz=tz, workdays=workdays)
    t = _tasks(data["tasks"], data["depts"], plans, people)
    t = _with_milestone_counts(t, m)
    t = _with_ledger(t, m, data["progress"], tz)
    t["colour"] = colours(t, m, plans, data["reports"], tz, cal, as_of)
    esc, req = data["escalations"], data["requests"]
    t = _with_assessment_inputs(t, esc, req)
    live = _live(t)
    by_plan = _by_plan(live, plans)
    # milestones of live tasks, with what the lists show of their task
    mt = m.merge(live[["task_id", "plan", "code", "title", "owner", "department", "supervisor", "position", "colour"]], on="task_id")
    awaiting = _awaiting_approval(t, m, req, people, tz=tz, as_of=as_of, workdays=workdays)
    extensions, granted = _extensions(mt, req, tz=tz, workdays=workdays)

    totals = _totals(by_plan, live, plans=len(plans), awaiting=len(awaiting), granted=granted, slipped=len(extensions))
    return Rollup(
        as_of=as_of,
        plan_code=plan_code,
        due_soon_days=due_soon_days,
        totals=totals,
        by_plan=by_plan,
        **_groups(live),
        overdue=_overdue(mt, esc),
        due_soon=_due_soon(mt, as_of=as_of, workdays=workdays),
        awaiting_approval=awaiting,
        extensions=extensions,
        trend=trend_with_today(snaps, totals, as_of),
        assessment=assessment(live, plans, previous),
        tasks=live.sort_values(["plan", "system_position", "project_position", "position"], kind="stable")[_TASK_VIEW].reset_index(
            drop=True
        ),
        plans=plans.drop(columns=["policy"]),
        warnings=list(getattr(cal, "warnings", []) or []),
        assessment_policies=plan_assessment_policies(plans),
        compared_with={code_of[pid]: name for pid, (name, _ranks) in published.items()},
    )


def _totals(by_plan: pd.DataFrame, live: pd.DataFrame, *, plans: int, awaiting: int, granted: int, slipped: int) -> dict[str, Any]:
    """The headline figures: the plans' counts summed, the lists' lengths, and the rates of both."""
    totals: dict[str, Any] = {c: int(by_plan[c].sum()) for c in COUNT_COLUMNS}
    totals.update(
        plans=plans,
        open_tasks=int(by_plan["tasks"].sum() - by_plan["done_tasks"].sum()),
        awaiting_approval=awaiting,
        extensions_granted=granted,
        slipped_milestones=slipped,
        escalations=int(live["escalations"].sum()),
    )
    rates(totals)
    return totals


def _groups(live: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The live tasks counted by system, project, department and supervising leader, within each plan."""
    return {
        "by_system": _group(live, ["plan", "system_code", "system", "system_position"], ["plan", "system_position", "system_code"]).drop(
            columns=["system_position"]
        ),
        "by_project": _group(
            live,
            ["plan", "system_code", "system", "system_position", "project_code", "project", "project_position"],
            ["plan", "system_position", "project_position", "project_code"],
        ).drop(columns=["system_position", "project_position"]),
        "by_department": _group(live, ["plan", "department"], ["plan", "tasks", "department"], [True, False, True]),
        "by_supervisor": _group(live, ["plan", "supervisor"], ["plan", "tasks", "supervisor"], [True, False, True]),
    }


def _tasks(tasks: pd.DataFrame, depts: pd.DataFrame, plans: pd.DataFrame, people: dict[int, str]) -> pd.DataFrame:
    """Tasks with their department, supervising leader (the task's, else its department's), owner and plan."""
    t = tasks.merge(depts, on="department_id", how="left")
    t["archived"] = t["archived"].astype(bool)
    t["acknowledged"] = t["acknowledged"].astype(bool)
    t["department"] = t["department"].where(t["department"].notna(), None)
    sup = t["task_supervisor_id"].where(t["task_supervisor_id"].notna(), t["dept_supervisor_id"])
    t["supervisor"] = [people.get(int(x)) if x == x and x is not None else None for x in sup.tolist()]
    t["owner"] = [people.get(int(x), "") for x in t["owner_id"].tolist()]
    return t.merge(plans[["plan_id", "plan", "plan_name", "organization"]], on="plan_id", how="left")


def _finished_by(done: pd.Series, finished: pd.Series, limit: pd.Series) -> pd.Series:
    """Done, and finished on or before ``limit`` (per row)."""
    flags = [d and f is not None and f <= x for d, f, x in zip(done.tolist(), finished.tolist(), limit.tolist(), strict=True)]
    return pd.Series(flags, index=done.index, dtype=bool)


def _milestones(m: pd.DataFrame, *, as_of: dt.date, due_soon_days: int, tz, workdays: Workdays) -> pd.DataFrame:
    """Every live milestone's flags: done, due, on time (against its date and its baseline), overdue, due soon, days late."""
    m["finished_on"] = local_dates(m["submitted_at"].where(m["submitted_at"].notna(), m["completed_at"]), tz)
    m["is_final"] = m["is_final"].astype(bool)
    m["is_done"] = m["state"] == MilestoneState.DONE
    m["is_open"] = m["state"].isin(OPEN_STATES)
    due = m["due"]
    finished = m["finished_on"]
    m["is_due"] = m["is_done"] | (due < as_of)
    m["is_on_time"] = _finished_by(m["is_done"], finished, due)
    m["is_on_time_baseline"] = _finished_by(m["is_done"], finished, m["baseline"])
    m["is_overdue"] = m["is_open"] & (due < as_of)
    soon_end = as_of + dt.timedelta(days=due_soon_days)
    m["is_due_soon"] = m["is_open"] & (due >= as_of) & (due <= soon_end)
    # working days late: open and past due → until as_of; done late → until it was finished
    late_end = pd.Series(
        [
            as_of if o else (f if (d and f is not None and f > x) else None)
            for o, d, f, x in zip(m["is_overdue"].tolist(), m["is_done"].tolist(), finished.tolist(), due.tolist(), strict=True)
        ],
        index=m.index,
        dtype=object,
    )
    m["days_late"] = workdays(due, late_end).clip(lower=0) if len(m) else pd.Series([], dtype="int64")
    return m


def _with_milestone_counts(t: pd.DataFrame, m: pd.DataFrame) -> pd.DataFrame:
    per_task = m.groupby("task_id").agg(
        milestones=("milestone_id", "size"),
        done_milestones=("is_done", "sum"),
        due_milestones=("is_due", "sum"),
        on_time_milestones=("is_on_time", "sum"),
        on_time_baseline_milestones=("is_on_time_baseline", "sum"),
        overdue_milestones=("is_overdue", "sum"),
        due_soon_milestones=("is_due_soon", "sum"),
        late_days=("days_late", "sum"),
    )
    t = t.merge(per_task, left_on="task_id", right_index=True, how="left")
    for c in _MILESTONE_COUNTS:
        t[c] = t[c].fillna(0).astype("int64")
    return t


def _with_assessment_inputs(t: pd.DataFrame, esc: pd.DataFrame, req: pd.DataFrame) -> pd.DataFrame:
    """Per task: escalations (督办), decided completion requests and returns."""
    comp = req[req["kind"] == RequestKind.COMPLETION]
    decided = comp[comp["status"].isin((RequestStatus.APPROVED, RequestStatus.RETURNED))]
    for counted in (
        esc.groupby("task_id").size().rename("escalations"),
        decided.groupby("task_id").size().rename("completion_requests"),
        comp[comp["status"] == RequestStatus.RETURNED].groupby("task_id").size().rename("returns"),
    ):
        t = t.merge(counted, left_on="task_id", right_index=True, how="left")
    for c in ("escalations", "completion_requests", "returns"):
        t[c] = t[c].fillna(0).astype("int64")
    return t


def _with_ledger(t: pd.DataFrame, m: pd.DataFrame, progress: dict[int, str], tz) -> pd.DataFrame:
    """The 台账 columns of each task: 完成时限 (its final step's date, else its last date), 当前节点
    (the first step not done, by the roadmap's order), 最近进展 (the last progress report's text)
    and 签收时间 (local, to the minute)."""
    steps = m.sort_values(["task_id", "seq"], kind="stable")
    ids = t["task_id"]
    latest = steps.assign(_day=pd.to_datetime(steps["due"])).sort_values(["task_id", "_day"], kind="stable")
    last = latest.drop_duplicates("task_id", keep="last").set_index("task_id")["due"]
    final = latest[latest["is_final"]].drop_duplicates("task_id", keep="last").set_index("task_id")["due"]
    t["deadline"] = _as_built(ids.map(final).where(ids.isin(final.index), ids.map(last)))
    current = steps[steps["state"] != MilestoneState.DONE].groupby("task_id")["milestone"].first()
    t["current_milestone"] = _as_built(ids.map(current).astype(object).where(lambda x: x.notna() & (x != ""), ""))
    t["latest_progress"] = _as_built(ids.map(pd.Series(progress, dtype=object)).astype(object).where(lambda x: x.notna(), ""))
    acked = pd.to_datetime(t["acknowledged_at"], utc=True)
    t["acknowledged_at"] = _as_built(acked.dt.tz_convert(tz).dt.strftime("%Y-%m-%d %H:%M").where(acked.notna()))
    return t


def _as_built(values: pd.Series) -> pd.Series:
    """``values`` (missing: None) with the dtype pandas infers for a column built from a list, as
    the columns of these frames always were (text: ``str``; dates and None: ``object``)."""
    return pd.Series(values.astype(object).where(values.notna(), None).tolist(), index=values.index)


def _live(t: pd.DataFrame) -> pd.DataFrame:
    """Tasks not archived, with the 0/1 columns the groups add up."""
    live = t[~t["archived"]].copy()
    live["done_tasks"] = live["status"] == MilestoneState.DONE
    all_on_time = live["on_time_milestones"] == live["milestones"]
    live["on_time_tasks"] = live["done_tasks"] & all_on_time & (live["milestones"] > 0)
    live["overdue_tasks"] = live["overdue_milestones"] > 0
    live["due_soon_tasks"] = live["due_soon_milestones"] > 0
    for st in TASK_STATES:
        live[st] = live["status"] == st
    live["red"] = live["colour"] == Light.RED
    live["yellow"] = live["colour"] == Light.YELLOW
    live["green"] = live["colour"] == Light.GREEN
    live["no_light"] = live["colour"].isna()
    live["department"] = live["department"].fillna(UNSPECIFIED)
    live["supervisor"] = live["supervisor"].fillna(UNSPECIFIED)
    live["tasks"] = 1
    return live


def _group(live: pd.DataFrame, keys: list[str], order: list[str], ascending: list[bool] | None = None) -> pd.DataFrame:
    """The summed counts and rates of live tasks grouped by ``keys``, sorted by ``order``."""
    cols = list(COUNT_COLUMNS)
    if live.empty:
        return pd.DataFrame(columns=keys + cols + ["completion_rate", "on_time_rate", "on_time_baseline_rate"])
    g = live.groupby(keys, sort=False, dropna=False)[cols].sum().reset_index()
    for c in cols:
        g[c] = g[c].astype("int64")
    rates(g)
    return g.sort_values(order, ascending=ascending if ascending is not None else True, kind="stable").reset_index(drop=True)


def _by_plan(live: pd.DataFrame, plans: pd.DataFrame) -> pd.DataFrame:
    """Every selected plan, even one without tasks."""
    keys = ["plan", "plan_name", "organization"]
    by_plan = plans[keys].merge(_group(live, keys, ["plan"]), on=keys, how="left")
    for c in COUNT_COLUMNS:
        by_plan[c] = by_plan[c].fillna(0).astype("int64")
    rates(by_plan)
    return by_plan


def _step_titles(is_final: pd.Series, titles: pd.Series) -> list[str]:
    """A milestone's title as the lists show it: none for the final deadline."""
    return [("" if f else (s or "")) for f, s in zip(is_final.tolist(), titles.tolist(), strict=True)]


def _overdue(mt: pd.DataFrame, esc: pd.DataFrame) -> pd.DataFrame:
    """Overdue milestones, with the highest 督办 level reached for the current due date."""
    level = esc.dropna(subset=["milestone_id"]).groupby(["milestone_id", "due"])["level"].max().rename("level").reset_index()
    level["milestone_id"] = level["milestone_id"].astype("int64")
    od = mt[mt["is_overdue"]].merge(level, on=["milestone_id", "due"], how="left")
    od["level"] = od["level"].fillna(0).astype("int64")
    od["level_label"] = od["level"].map(LEVEL_LABELS)
    od["milestone"] = _step_titles(od["is_final"], od["milestone"])
    overdue = od.sort_values(["level", "days_late", "plan", "position", "seq"], ascending=[False, False, True, True, True], kind="stable")
    return overdue[
        ["plan", "code", "title", "milestone", "owner", "department", "supervisor", "due", "baseline", "days_late", "level", "level_label"]
    ].reset_index(drop=True)


def _due_soon(mt: pd.DataFrame, *, as_of: dt.date, workdays: Workdays) -> pd.DataFrame:
    ds = mt[mt["is_due_soon"]].copy()
    ds["days_left"] = workdays(pd.Series([as_of] * len(ds), index=ds.index, dtype=object), ds["due"]) if len(ds) else 0
    ds["milestone"] = _step_titles(ds["is_final"], ds["milestone"])
    ds["colour_label"] = ds["colour"].map(lambda c: COLOUR_LABELS.get(c, ""))
    return ds.sort_values(["due", "plan", "position", "seq"], kind="stable")[LIST_COLUMNS["due_soon"]].reset_index(drop=True)


def _awaiting_approval(
    t: pd.DataFrame, m: pd.DataFrame, req: pd.DataFrame, people: dict[int, str], *, tz, as_of: dt.date, workdays: Workdays
) -> pd.DataFrame:
    """Requests waiting for the office, oldest first."""
    tinfo = t[["task_id", "plan", "code", "title", "department", "position"]].copy()
    tinfo["department"] = tinfo["department"].fillna(UNSPECIFIED)
    mtitle = m[["milestone_id", "milestone", "is_final", "due"]]
    pend = req[req["status"] == RequestStatus.PENDING].merge(tinfo, on="task_id")
    pend = pend.merge(mtitle, on="milestone_id", how="left")
    pend["kind"] = pend["kind"].map(lambda k: REQUEST_LABELS.get(k, k))
    pend["requester"] = [people.get(int(p), "") for p in pend["person_id"].tolist()]
    pend["submitted_on"] = local_dates(pend["created_at"], tz)
    pend["waiting_days"] = workdays(pend["submitted_on"], as_of).clip(lower=0) if len(pend) else 0
    pend["milestone"] = [
        ("" if f is True else (s if isinstance(s, str) else ""))
        for f, s in zip(pend["is_final"].tolist(), pend["milestone"].tolist(), strict=True)
    ]
    return pend.sort_values(["submitted_on", "plan", "position"], kind="stable")[LIST_COLUMNS["awaiting_approval"]].reset_index(drop=True)


def _extensions(mt: pd.DataFrame, req: pd.DataFrame, *, tz, workdays: Workdays) -> tuple[pd.DataFrame, int]:
    """Slippage: every live milestone whose due date moved from its baseline; and how many extensions were granted."""
    ext = req[(req["kind"] == RequestKind.EXTENSION) & (req["status"] == RequestStatus.APPROVED)].copy()
    ext["decided_on"] = local_dates(ext["decided_at"], tz)
    ext_by_m = ext.groupby("milestone_id").agg(extensions=("request_id", "size"), last_approved=("decided_on", "max"))
    moved = mt[mt["due"] != mt["baseline"]].merge(ext_by_m, left_on="milestone_id", right_index=True, how="left")
    moved["extensions"] = moved["extensions"].fillna(0).astype("int64")
    moved["slipped_days"] = [(d - b).days for d, b in zip(moved["due"].tolist(), moved["baseline"].tolist(), strict=True)]
    moved["slipped_workdays"] = workdays(moved["baseline"], moved["due"]) if len(moved) else 0
    moved["reason"] = ["批准延期" if n else "方案调整" for n in moved["extensions"].tolist()]
    moved["milestone"] = _step_titles(moved["is_final"], moved["milestone"])
    moved["last_approved"] = moved["last_approved"].where(moved["last_approved"].notna(), None)
    extensions = moved.sort_values(["slipped_days", "plan", "position"], ascending=[False, True, True], kind="stable")[
        LIST_COLUMNS["extensions"]
    ].reset_index(drop=True)
    return extensions, int(ext.shape[0])
