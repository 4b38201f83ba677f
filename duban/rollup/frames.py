"""The database as frames for the roll-up: one query per table, filtered by plan, in one
read-only transaction (Core rows: no ORM objects)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any, TypedDict

import pandas as pd
from sqlalchemy import Text, cast, func, select

from duban.models import Bulletin, Department, Event, Milestone, Notification, Person, Plan, Project, Request, System, Task
from duban.rollup import RollupError
from duban.status import milestone_summary, task_status
from duban.sweep.decisions import REPORT_EVENTS
from duban.vocabulary import EventKind, MessageKind, MilestoneState


def frame(rows, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(r) for r in rows], columns=columns)


def core_frame(session, statement, columns: list[str]) -> pd.DataFrame:
    """``statement`` run on the session's connection (Core rows, not the ORM's result), as a frame."""
    return frame(session.connection().execute(statement).fetchall(), columns)


def local_dates(series: pd.Series, tz) -> pd.Series:
    """Timestamps (naive = UTC, as SQLite returns them) as local calendar dates (object, None)."""
    if series.empty:
        return pd.Series([], dtype=object, index=series.index)
    ts = pd.to_datetime(series, utc=True)
    local = ts.dt.tz_convert(tz)
    out = local.dt.date
    return out.where(ts.notna(), None).astype(object)


class Workdays:
    """``cal.workdays_between`` over columns of dates, each distinct pair computed once."""

    def __init__(self, cal) -> None:
        self.cal = cal
        self.memo: dict[tuple[dt.date, dt.date], int] = {}

    def __call__(self, start: pd.Series, end: pd.Series | dt.date) -> pd.Series:
        if not isinstance(end, pd.Series):
            end = pd.Series([end] * len(start), index=start.index, dtype=object)
        out = []
        memo, cal = self.memo, self.cal
        for s, e in zip(start.tolist(), end.tolist(), strict=True):
            if s is None or e is None or (isinstance(s, float)) or (isinstance(e, float)):
                out.append(0)
                continue
            k = (s, e)
            v = memo.get(k)
            if v is None:
                v = memo[k] = cal.workdays_between(s, e)
            out.append(v)
        return pd.Series(out, index=start.index, dtype="int64")


def plans_frame(session, plan_code: str | None, plan_ids: Collection[int] | None = None) -> pd.DataFrame:
    """The plans of a roll-up: ``plan_code``, or every plan (only ``plan_ids`` when given)."""
    q = select(Plan.id, Plan.code, Plan.name, Plan.organization, Plan.policy).order_by(Plan.code)
    rows = session.execute(q if plan_ids is None else q.where(Plan.id.in_(list(plan_ids) or [-1]))).all()
    plans = frame(rows, ["plan_id", "plan", "plan_name", "organization", "policy"])
    if plan_code is not None:
        plans = plans[plans["plan"] == plan_code].reset_index(drop=True)
        if plans.empty:
            known = "、".join(r.code for r in rows) or "（暂无）"
            raise RollupError(f"没有编号为“{plan_code}”的方案。已有方案：{known}")
    return plans


class Frames(TypedDict):
    """What ``load`` reads: a frame per table; people's names and each task's last report as dicts."""

    tasks: pd.DataFrame
    depts: pd.DataFrame
    people: dict[int, str]
    milestones: pd.DataFrame
    escalations: pd.DataFrame
    requests: pd.DataFrame
    reports: dict[int, dt.datetime]
    progress: dict[int, str]  # each task's last progress report (its text)


def load(session, plan_ids: list[int], tz) -> Frames:
    """The database as frames: one query per table, filtered by plan."""
    return {
        "tasks": _tasks(session, plan_ids),
        "progress": _last_progress(session, plan_ids),
        "depts": _departments(session, plan_ids),
        "people": dict(session.execute(select(Person.id, Person.name).where(Person.plan_id.in_(plan_ids))).all()),
        "milestones": _milestones(session, plan_ids),
        "escalations": _escalations(session, plan_ids),
        "requests": _requests(session, plan_ids),
        "reports": _last_reports(session, plan_ids),
    }


def _query_frame(session, columns: dict[str, Any], finish) -> pd.DataFrame:
    """``select`` the ``columns`` (frame column name → expression), ``finish`` the statement
    (joins, filters), and read it as a frame with those column names."""
    return core_frame(session, finish(select(*columns.values())), list(columns))


def _tasks(session, plan_ids: list[int]) -> pd.DataFrame:
    in_plans = Task.plan_id.in_(plan_ids)
    per_task = milestone_summary(tasks=in_plans)
    columns = {
        "task_id": Task.id,
        "plan_id": Task.plan_id,
        "code": Task.code,
        "title": Task.title,
        "owner_id": Task.owner_id,
        "department_id": Task.lead_department_id,
        "task_supervisor_id": Task.supervisor_id,
        "schedule": Task.schedule,
        "archived": Task.archived_at.is_not(None),
        "acknowledged": Task.acknowledged_at.is_not(None),
        "acknowledged_at": Task.acknowledged_at,
        "position": Task.position,
        "period": Task.period,
        "period_month": Task.period_month,
        "assigned_at": Task.assigned_at,
        "status": task_status(per_task),
        "project_code": Project.code,
        "project": Project.name,
        "project_position": Project.position,
        "system_code": System.code,
        "system": System.name,
        "system_position": System.position,
    }
    tasks = _query_frame(
        session,
        columns,
        lambda q: (
            q.join(Project, Project.id == Task.project_id)
            .join(System, System.id == Project.system_id)
            .outerjoin(per_task, per_task.c.task_id == Task.id)
            .where(in_plans)
        ),
    )
    own = _task_policies(session, in_plans)
    tasks["task_policy"] = pd.Series([own.get(i) for i in tasks["task_id"].tolist()], index=tasks.index, dtype=object)
    return tasks


def _task_policies(session, in_plans) -> dict[int, dict[str, Any]]:
    """The tasks with deadline rules of their own (most have none: ``{}``, not decoded one by one)."""
    own = func.coalesce(cast(Task.policy, Text), "{}").not_in(("{}", "null"))
    return {task_id: policy for task_id, policy in session.connection().execute(select(Task.id, Task.policy).where(in_plans, own))}


def _departments(session, plan_ids: list[int]) -> pd.DataFrame:
    columns = {"department_id": Department.id, "department": Department.name, "dept_supervisor_id": Department.supervisor_id}
    return _query_frame(session, columns, lambda q: q.where(Department.plan_id.in_(plan_ids)))


def _milestones(session, plan_ids: list[int]) -> pd.DataFrame:
    columns = {
        "milestone_id": Milestone.id,
        "task_id": Milestone.task_id,
        "seq": Milestone.seq,
        "milestone": Milestone.title,
        "due": Milestone.due_date,
        "baseline": Milestone.baseline_due_date,
        "state": Milestone.status,
        "is_final": Milestone.is_final,
        "submitted_at": Milestone.submitted_at,
        "completed_at": Milestone.completed_at,
        "due_version": Milestone.due_version,
    }
    return _query_frame(
        session,
        columns,
        lambda q: q.join(Task, Task.id == Milestone.task_id).where(Task.plan_id.in_(plan_ids), Milestone.status != MilestoneState.ARCHIVED),
    )


def _escalations(session, plan_ids: list[int]) -> pd.DataFrame:
    """One 督办 per (task, milestone or acknowledgement, due date, level), however many people got it."""
    columns = {
        "task_id": Notification.task_id,
        "milestone_id": Notification.milestone_id,
        "due": Notification.due_date,
        "level": Notification.level,
    }
    return _query_frame(
        session,
        columns,
        lambda q: q.where(
            Notification.plan_id.in_(plan_ids),
            Notification.kind == MessageKind.ESCALATION,
            Notification.level >= 1,
            Notification.task_id.is_not(None),
        ).distinct(),
    )


def _requests(session, plan_ids: list[int]) -> pd.DataFrame:
    columns = {
        "request_id": Request.id,
        "task_id": Request.task_id,
        "milestone_id": Request.milestone_id,
        "person_id": Request.person_id,
        "kind": Request.kind,
        "status": Request.status,
        "new_due": Request.new_due_date,
        "created_at": Request.created_at,
        "decided_at": Request.decided_at,
    }
    return _query_frame(session, columns, lambda q: q.where(Request.plan_id.in_(plan_ids)))


def _last_reports(session, plan_ids: list[int]) -> dict[int, dt.datetime]:
    """When each task last reported (any of ``REPORT_EVENTS``)."""
    return dict(
        session.execute(
            select(Event.task_id, func.max(Event.at))
            .where(Event.plan_id.in_(plan_ids), Event.kind.in_(REPORT_EVENTS), Event.task_id.is_not(None))
            .group_by(Event.task_id)
        ).all()
    )


def _last_progress(session, plan_ids: list[int]) -> dict[int, str]:
    """Each task's last progress report, its text."""
    latest = (
        select(func.max(Event.id)).where(Event.plan_id.in_(plan_ids), Event.kind == EventKind.PROGRESS_REPORTED).group_by(Event.task_id)
    )
    return {
        task_id: str((data or {}).get("text") or "")
        for task_id, data in session.execute(select(Event.task_id, Event.data).where(Event.id.in_(latest.scalar_subquery())))
    }


def last_rankings(session, plan_ids: list[int], *, before: dt.date) -> dict[int, tuple[str, dict[str, int]]]:
    """Each plan's last 通报 issued before ``before`` (any kind): its name (``第 3 期周通报（…）``)
    and the rank it published for each department (those it ranked)."""
    from duban.rollup.schedule import issue_name

    order = func.row_number().over(partition_by=Bulletin.plan_id, order_by=(Bulletin.issued_on.desc(), Bulletin.id.desc()))
    latest = select(Bulletin.id, order.label("n")).where(Bulletin.plan_id.in_(plan_ids), Bulletin.issued_on < before).subquery()
    rows = session.execute(
        select(Bulletin.plan_id, Bulletin.kind, Bulletin.number, Bulletin.issued_on, Bulletin.data)
        .join(latest, latest.c.id == Bulletin.id)
        .where(latest.c.n == 1)
    ).all()
    return {r.plan_id: (issue_name(r.kind, r.number, r.issued_on), published_ranks(r.data)) for r in rows}


def published_ranks(data: dict[str, Any] | None) -> dict[str, int]:
    """The ranks a bulletin published (``data["ranking"]``), by department."""
    return {str(e["department"]): int(e["rank"]) for e in (data or {}).get("ranking", []) if e.get("rank") is not None}
