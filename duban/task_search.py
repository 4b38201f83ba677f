"""Finding tasks: by code, title or owner's name (one box), narrowed by plan, state (the task status
of :func:`duban.status.task_status`, the one derivation), lead department and owner.

Read-only, one query (plus the count).  ``plan_ids``: the plans the viewer may see (None: every
plan); the caller never learns about tasks outside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from duban.models import Department, Person, Plan, Task
from duban.status import milestone_summary, task_status
from duban.vocabulary import MilestoneState

LIMIT = 200
STATES = (
    MilestoneState.ASSIGNED,
    MilestoneState.IN_PROGRESS,
    MilestoneState.SUBMITTED,
    MilestoneState.DONE,
    MilestoneState.ARCHIVED,
)


@dataclass(frozen=True)
class Query:
    text: str = ""  # code, title or owner's name
    plan: str = ""  # plan code
    state: str = ""  # a MilestoneState value
    department: str = ""  # lead department name
    person: str = ""  # owner's name (part of it)

    @property
    def empty(self) -> bool:
        return not (self.text or self.plan or self.state or self.department or self.person)


@dataclass(frozen=True)
class Found:
    plan_code: str
    plan_name: str
    code: str
    title: str
    owner: str
    department: str
    state: str  # the stored value (MilestoneState)

    @property
    def state_label(self) -> str:
        return MilestoneState.label_of(self.state)


@dataclass
class Results:
    rows: list[Found] = field(default_factory=list)
    total: int = 0  # all matches (``rows`` holds at most ``LIMIT``)


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column: Any, value: str) -> ColumnElement[bool]:
    return func.lower(column).like(_like(value.lower()), escape="\\")


def _select(q: Query, plan_ids: list[int] | None) -> Select:
    per_task = milestone_summary()
    status = task_status(per_task).label("state")
    stmt = (
        select(
            Plan.code.label("plan_code"),
            Plan.name.label("plan_name"),
            Task.code,
            Task.title,
            Person.name.label("owner"),
            Department.name.label("department"),
            status,
        )
        .select_from(Task)
        .join(Plan, Plan.id == Task.plan_id)
        .join(Person, Person.id == Task.owner_id)
        .outerjoin(Department, Department.id == Task.lead_department_id)
        .outerjoin(per_task, per_task.c.task_id == Task.id)
    )
    if plan_ids is not None:
        stmt = stmt.where(Task.plan_id.in_(plan_ids or [-1]))
    if q.text:
        stmt = stmt.where(
            or_(
                Task.code == q.text,
                Task.code.like(q.text.replace("%", "").replace("_", "") + ".%"),
                _contains(Task.title, q.text),
                _contains(Person.name, q.text),
            )
        )
    if q.plan:
        stmt = stmt.where(Plan.code == q.plan)
    if q.department:
        stmt = stmt.where(Department.name == q.department)
    if q.person:
        stmt = stmt.where(_contains(Person.name, q.person))
    if q.state:
        stmt = stmt.where(status == q.state)
    elif not q.text:
        stmt = stmt.where(Task.archived_at.is_(None))  # browsing leaves archived tasks out unless asked
    return stmt


def search(session: Session, q: Query, *, plan_ids: list[int] | None, limit: int = LIMIT) -> Results:
    """The tasks matching ``q`` among ``plan_ids``' (plan, position order), at most ``limit``."""
    if q.empty:
        return Results()
    stmt = _select(q, plan_ids)
    total = int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    rows = session.execute(stmt.order_by(Plan.code, Task.position, Task.id).limit(limit)).all()
    return Results([Found(r.plan_code, r.plan_name, r.code, r.title, r.owner, r.department or "", str(r.state)) for r in rows], total)


def departments(session: Session, plan_ids: list[int] | None) -> list[str]:
    """The lead departments of the plans (the search form's list)."""
    stmt = select(Department.name).distinct().join(Task, Task.lead_department_id == Department.id)
    if plan_ids is not None:
        stmt = stmt.where(Task.plan_id.in_(plan_ids or [-1]))
    return sorted(session.scalars(stmt))
