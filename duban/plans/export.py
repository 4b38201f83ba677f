"""Read a plan back out of the store as a ``PlanFile`` (to export it and re-import it later).

The file carries duban's current dates (an approved extension included) and only the steps that
come from the plan file (``origin`` plan): a review's follow-up step stays in duban and is neither
duplicated nor archived when the file comes back.  Re-importing an export changes nothing: a date
decided in duban reads as the sheet agreeing with it (``duban.plans.tasks``)."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from definitions.schema import (
    BULLETIN_EVERY_LABELS,
    DepartmentIn,
    MilestoneIn,
    OfficeMemberIn,
    PersonIn,
    PlanChannelsIn,
    PlanFile,
    PlanIn,
    ProjectIn,
    SystemIn,
    TaskIn,
)
from duban.models import Department, Milestone, Person, Plan, PlanRole, Project, System, Task
from duban.plans.diff import PERIOD_LABELS
from duban.vocabulary import MilestoneOrigin, MilestoneState, PlanRoleKind, Schedule


def _name(names: dict[int, str], id_: int | None) -> str | None:
    """The name for an optional id (None when there is none)."""
    return names.get(id_) if id_ is not None else None


def _due(m: Milestone) -> str:
    """A milestone's date as the file writes it: the sheet's own words while the date is still the
    sheet's, else duban's current date."""
    sheet = m.sheet_due_date or m.due_date
    return m.due_text if m.due_text and m.due_date == sheet else m.due_date.isoformat()


def _office_member(name: str, scope: dict | None) -> str | OfficeMemberIn:
    """An office member as written: the name, or the name with the member's line (督办条线)."""
    if not scope:
        return name
    return OfficeMemberIn(name=name, systems=list(scope.get("systems", ())), departments=list(scope.get("departments", ())))


def plan_file_from_store(session: Session, code: str) -> PlanFile | None:
    plan = session.scalar(select(Plan).where(Plan.code == code))
    if plan is None:
        return None
    people = session.scalars(select(Person).where(Person.plan_id == plan.id, Person.active.is_(True)).order_by(Person.id)).all()
    all_people = {p.id: p.name for p in session.scalars(select(Person).where(Person.plan_id == plan.id))}
    depts = session.scalars(select(Department).where(Department.plan_id == plan.id).order_by(Department.id)).all()
    dept_names = {d.id: d.name for d in depts}
    return PlanFile(
        plan=_plan_in(session, plan, all_people),
        departments=[
            DepartmentIn(
                name=d.name,
                head=_name(all_people, d.head_id),
                supervisor=_name(all_people, d.supervisor_id),
                notify=list(d.notify_urls or ()),
            )
            for d in depts
        ],
        people=[
            PersonIn(
                name=p.name,
                department=_name(dept_names, p.department_id),
                title=p.title,
                email=p.email,
                mobile=p.mobile,
                notify=list(p.notify_urls),
                manager=_name(all_people, p.manager_id),
                staff_no=p.staff_no,
                wecom_userid=p.wecom_userid,
                dingtalk_userid=p.dingtalk_userid,
                feishu_open_id=p.feishu_open_id,
            )
            for p in people
        ],
        systems=_systems_in(session, plan.id, all_people, dept_names),
    )


def _plan_in(session: Session, plan: Plan, all_people: dict[int, str]) -> PlanIn:
    """The plan's settings, its leading group and its office (with each member's line)."""
    roles = session.execute(
        select(PlanRole.role, PlanRole.person_id, PlanRole.scope)
        .where(PlanRole.plan_id == plan.id)
        .order_by(PlanRole.role, PlanRole.position)
    ).all()
    return PlanIn(
        code=plan.code,
        name=plan.name,
        organization=plan.organization,
        approval_required=plan.approval_required,
        report_every=PERIOD_LABELS.get(plan.report_every, "每学期"),
        policy=dict(plan.policy or {}),
        leading_group=[all_people[pid] for role, pid, _ in roles if role == PlanRoleKind.LEADING_GROUP],
        office=[_office_member(all_people[pid], scope) for role, pid, scope in roles if role == PlanRoleKind.OFFICE],
        ends_on=plan.ends_on,
        announce_on_import=plan.announce_on_import,
        bulletin_every=BULLETIN_EVERY_LABELS.get(plan.bulletin_every, "每周"),
        channels=PlanChannelsIn(
            **{k: list(v) for k, v in (plan.channels or {}).items() if k in (PlanRoleKind.LEADING_GROUP, PlanRoleKind.OFFICE)}
        ),
    )


def _systems_in(session: Session, plan_id: int, all_people: dict[int, str], dept_names: dict[int, str]) -> list[SystemIn]:
    """The live systems, projects and tasks; each task's roadmap from its plan steps, at duban's dates."""
    milestones = defaultdict(list)
    for m in session.scalars(
        select(Milestone)
        .join(Task, Task.id == Milestone.task_id)
        .where(Task.plan_id == plan_id, Milestone.status != MilestoneState.ARCHIVED, Milestone.origin == MilestoneOrigin.PLAN)
        .order_by(Milestone.task_id, Milestone.seq)
    ):
        milestones[m.task_id].append(m)
    systems = []
    for s in session.scalars(select(System).where(System.plan_id == plan_id, System.archived_at.is_(None)).order_by(System.position)):
        projects = []
        for pr in session.scalars(
            select(Project).where(Project.system_id == s.id, Project.archived_at.is_(None)).order_by(Project.position)
        ):
            tasks = session.scalars(select(Task).where(Task.project_id == pr.id, Task.archived_at.is_(None)).order_by(Task.position))
            projects.append(
                ProjectIn(code=pr.code, name=pr.name, tasks=[_task_in(t, milestones.get(t.id, []), all_people, dept_names) for t in tasks])
            )
        systems.append(SystemIn(code=s.code, name=s.name, projects=projects))
    return systems


def _task_in(t: Task, ms: list[Milestone], all_people: dict[int, str], dept_names: dict[int, str]) -> TaskIn:
    final = next((m for m in ms if m.is_final), None)
    steps = [m for m in ms if not m.is_final]
    return TaskIn(
        code=t.code,
        title=t.title,
        statement=t.statement,
        done_criteria=t.done_criteria,
        owner=all_people.get(t.owner_id),
        lead_department=_name(dept_names, t.lead_department_id),
        partners=list(t.partners),
        supervisor=_name(all_people, t.supervisor_id),
        deadline=_due(final) if t.schedule == Schedule.ONCE and final is not None else t.deadline_text,
        roadmap=[MilestoneIn(due=_due(m), title=m.title) for m in steps] or None,
        report_every=PERIOD_LABELS.get(t.period) if t.schedule != Schedule.RECURRING and t.period else None,
        until=t.ends_on,
        policy=dict(t.policy or {}),
    )
