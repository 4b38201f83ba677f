"""A review's scope (a plan, a system, a lead department, a supervising leader's area, or a list
of tasks) and creating the review over it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.orm import Session

from duban.db import session_scope
from duban.models import Department, Person, Plan, Project, Review, ReviewItem, System, Task, utcnow
from duban.reviews.common import ReviewError, _text
from duban.vocabulary import ItemState, ReviewState, ScopeKind


def scope_tasks(session: Session, plan: Plan, kind: str, values: list[str]) -> list[Task]:
    """The live tasks of ``plan`` in a scope, in plan order; unknown names are a ReviewError."""
    if kind not in tuple(ScopeKind):
        raise ReviewError(f"督查范围“{kind}”不正确，可选：" + "、".join(f"{k}（{k.label}）" for k in ScopeKind))
    values = [v.strip() for v in values if v and v.strip()]
    if kind != "plan" and not values:
        raise ReviewError(f"请指定{ScopeKind(kind).label}。")
    q = (
        select(Task)
        .join(Project, Project.id == Task.project_id)
        .join(System, System.id == Project.system_id)
        .where(Task.plan_id == plan.id, Task.archived_at.is_(None))
        .order_by(System.position, Project.position, Task.position, Task.code)
    )

    def known(names) -> str:
        return "、".join(names) or "（暂无）"

    if kind == ScopeKind.SYSTEM:
        systems = session.execute(
            select(System.id, System.code, System.name).where(System.plan_id == plan.id, System.archived_at.is_(None))
        ).all()
        ids = []
        for v in values:
            match = [s.id for s in systems if v in (s.name, s.code)]
            if not match:
                raise ReviewError(f"方案中没有名为“{v}”的育人体系。已有：{known(s.name for s in systems)}")
            ids += match
        q = q.where(System.id.in_(ids))
    elif kind == ScopeKind.DEPARTMENT:
        depts = session.execute(select(Department.id, Department.name).where(Department.plan_id == plan.id)).all()
        ids = []
        for v in values:
            match = [d.id for d in depts if d.name == v]
            if not match:
                raise ReviewError(f"方案中没有名为“{v}”的牵头单位。已有：{known(d.name for d in depts)}")
            ids += match
        q = q.where(Task.lead_department_id.in_(ids))
    elif kind == ScopeKind.SUPERVISOR:
        people = dict(session.execute(select(Person.name, Person.id).where(Person.plan_id == plan.id)).all())
        ids = []
        for v in values:
            if v not in people:
                raise ReviewError(f"方案中没有名为“{v}”的人员（分管校领导）。")
            ids.append(people[v])
        # the task's own supervising leader, else its lead department's
        dept_ids = list(session.scalars(select(Department.id).where(Department.plan_id == plan.id, Department.supervisor_id.in_(ids))))
        q = q.where(or_(Task.supervisor_id.in_(ids), and_(Task.supervisor_id.is_(None), Task.lead_department_id.in_(dept_ids or [-1]))))
    elif kind == ScopeKind.TASKS:
        codes = list(dict.fromkeys(values))
        found = set(session.scalars(select(Task.code).where(Task.plan_id == plan.id, Task.code.in_(codes), Task.archived_at.is_(None))))
        missing = [c for c in codes if c not in found]
        if missing:
            raise ReviewError(f"方案中没有编号为 {'、'.join(missing)} 的任务（或已归档）。")
        q = q.where(Task.code.in_(codes))
    tasks = list(session.scalars(q))
    if not tasks:
        raise ReviewError(f"该范围（{ScopeKind(kind).label}：{'、'.join(values) or plan.name}）内没有正在执行的任务。")
    return tasks


def default_title(kind: str, values: list[str]) -> str:
    if kind == ScopeKind.PLAN:
        return "全面督查"
    return f"{'、'.join(values)}专项督查" if kind != "tasks" else f"任务 {'、'.join(values)} 专项督查"


def plan_by_code(session: Session, code: str | None) -> Plan:
    if code is None:
        plans = session.scalars(select(Plan).order_by(Plan.code)).all()
        if len(plans) == 1:
            return plans[0]
        raise ReviewError("请用 --plan 指定方案编号。已有方案：" + ("、".join(p.code for p in plans) or "（暂无）"))
    plan = session.scalar(select(Plan).where(Plan.code == code))
    if plan is None:
        known = "、".join(session.scalars(select(Plan.code).order_by(Plan.code))) or "（暂无）"
        raise ReviewError(f"没有编号为“{code}”的方案。已有方案：{known}")
    return plan


def scope_choices(session: Session, plan: Plan) -> dict[str, list[str]]:
    """What a scope may name in ``plan`` (the dashboard's form): systems, lead departments,
    supervising leaders (of a department or of a task), and live task codes, in plan order."""
    systems = list(
        session.scalars(
            select(System.name).where(System.plan_id == plan.id, System.archived_at.is_(None)).order_by(System.position, System.code)
        )
    )
    departments = list(session.scalars(select(Department.name).where(Department.plan_id == plan.id).order_by(Department.id)))
    # the leaders in the order of the departments they supervise, then those named only on a task
    sup_ids = list(
        session.scalars(
            select(Department.supervisor_id)
            .where(Department.plan_id == plan.id, Department.supervisor_id.is_not(None))
            .order_by(Department.id)
        )
    )
    sup_ids += list(
        session.scalars(
            select(Task.supervisor_id)
            .where(Task.plan_id == plan.id, Task.archived_at.is_(None), Task.supervisor_id.is_not(None))
            .order_by(Task.id)
        )
    )
    names = dict(session.execute(select(Person.id, Person.name).where(Person.id.in_(sup_ids or [-1]))).all())
    supervisors = [names[i] for i in dict.fromkeys(sup_ids) if i in names]
    tasks = [
        t.code
        for t in session.scalars(
            select(Task)
            .join(Project, Project.id == Task.project_id)
            .join(System, System.id == Project.system_id)
            .where(Task.plan_id == plan.id, Task.archived_at.is_(None))
            .order_by(System.position, Project.position, Task.position, Task.code)
        )
    ]
    return {"system": systems, "department": departments, "supervisor": supervisors, "tasks": tasks}


def create(
    session: Session,
    *,
    plan_code: str | None,
    scope_kind: str,
    scope_values: list[str],
    reply_by: dt.date,
    ask: str,
    today: dt.date,
    started_by: str,
    title: str | None = None,
    flow_run_id: str | None = None,
    now: dt.datetime | None = None,
) -> Review:
    """A new review over the tasks of a scope (one item per task, owner = the task's owner now).

    With ``flow_run_id``, an existing review of that flow run is returned instead (a flow run
    re-executed after a resume starts here again)."""
    if flow_run_id:
        existing = session.scalar(select(Review).where(Review.flow_run_id == flow_run_id))
        if existing is not None:
            return existing
    plan = plan_by_code(session, plan_code)
    if reply_by <= today:
        raise ReviewError(f"填报截止日期 {reply_by.isoformat()} 应晚于今天（{today.isoformat()}）。")
    ask = _text(ask, what="督查要求", limit=2000)
    tasks = scope_tasks(session, plan, scope_kind, list(scope_values))
    review = Review(
        plan_id=plan.id,
        title=_text(title or default_title(scope_kind, list(scope_values)), what="督查名称", limit=300),
        ask=ask,
        scope_kind=scope_kind,
        scope_values=list(scope_values),
        reply_by=reply_by,
        started_on=today,
        status=ReviewState.OPEN,
        started_by=started_by[:200],
        created_at=now or utcnow(),
        flow_run_id=flow_run_id,
        cancel_reason="",
        wake_round=0,
    )
    session.add(review)
    session.flush()
    session.add_all(
        [
            ReviewItem(
                review_id=review.id,
                task_id=t.id,
                owner_id=t.owner_id,
                status=ItemState.REQUESTED,
                done="",
                problems="",
                next_steps="",
                verdict_note="",
            )
            for t in tasks
        ]
    )
    session.flush()
    return review


def attach_flow_run(engine: Engine, review_id: int, flow_run_id: str) -> None:
    with session_scope(engine) as s:
        s.execute(update(Review).where(Review.id == review_id).values(flow_run_id=flow_run_id))
