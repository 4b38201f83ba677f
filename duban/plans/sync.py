"""Apply a resolved plan to the store, in place, and say what changed.

``apply_plan`` takes a session and never commits: the caller owns the transaction, so a dry run
is the same call followed by a rollback, and the diff it prints is exactly what a real import
would do.  Nothing a user entered is deleted: removed tasks, milestones, systems and projects are
archived; recorded progress (milestone states, acknowledgements, completions) is kept; moved due
dates keep their baseline; every change becomes an event in the audit trail.  What was decided in
duban (an approved extension, a done or submitted step, evidence, a review's follow-up step) is
not undone by the sheet unless the office accepts it (``accept`` / ``accept_sheet``).

Large plans (tens of thousands of tasks) are written with bulk statements, not object by object.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from definitions.person_ids import ID_RULES
from definitions.schema import BULLETIN_EVERY_LABELS, GroupDef, PersonDef, PlanDefinition
from duban import institutions
from duban.models import Department, Event, ImportRun, Person, Plan, PlanRole, Project, System, table_of, utcnow
from duban.person_rows import IDENTITY_COLUMNS, name_clashes
from duban.plans.diff import PlanDiff, show
from duban.plans.tasks import Ids, TaskSync
from duban.plans.writes import IMPORT_ACTOR, bulk_update, event_row
from duban.values import chunks
from duban.vocabulary import EventKind, PlanRoleKind

# plan settings copied as they are from the definition, with their label in the diff
PLAN_SETTINGS = (
    ("name", "方案名称"),
    ("organization", "单位"),
    ("approval_required", "办结需审核"),
    ("report_every", "长期任务反馈周期"),
    ("policy", "督办规则"),
    ("ends_on", "实施截止日期"),
    ("announce_on_import", "导入即下达"),
    ("bulletin_every", "督办通报"),
)
PLAN_ROLES = ((PlanRoleKind.LEADING_GROUP, "领导小组"), (PlanRoleKind.OFFICE, "领导小组办公室"))


def default_actor() -> str:
    """Who an import is recorded as when no one is named: the office, never the OS account."""
    return IMPORT_ACTOR


def apply_plan(
    session: Session,
    d: PlanDefinition,
    *,
    actor: str | None = None,
    source: str = "",
    sha256: str = "",
    now: dt.datetime | None = None,
    accept: Collection[str] = (),
    accept_sheet: bool = False,
    tz: dt.tzinfo = dt.UTC,
    institution: str | None = None,
    institution_name: str | None = None,
) -> PlanDiff:
    """Create or update plan ``d.code`` in place; return the diff.  Does not commit.

    A change the sheet asks for against a decision taken in duban is a conflict: held back and
    listed in ``diff.conflicts``, unless its task code is in ``accept`` or ``accept_sheet`` is set;
    then it is applied (``diff.accepted``) and its event names the decision it overrode.  ``tz``
    is the time zone the diff gives decision dates in.  ``institution`` (a code) names the
    institution the plan belongs to (``duban.institutions.for_import``: made when new; a plan
    never moves to another).  Raises ``InstitutionError`` for a plan of another institution."""
    actor = actor or default_actor()
    now = now or utcnow()
    diff = PlanDiff(plan_code=d.code, plan_name=d.name, warnings=list(d.warnings))
    events: list[dict[str, Any]] = []

    inst = institutions.for_import(session, d.code, institution, name=institution_name, organization=d.organization)
    diff.institution, diff.institution_name = inst.code, inst.name
    pid = _sync_plan(session, d, diff, source=source, now=now, institution_id=inst.id)
    dept_ids = _sync_departments_names(session, pid, d, diff)
    person_ids = _sync_people(session, pid, d, dept_ids, diff)
    diff.warnings += _same_account_warnings(session, pid, inst.id, d)
    _sync_department_roles(session, pid, d, dept_ids, person_ids, diff)
    roles_before = _sync_plan_roles(session, pid, d, person_ids)
    if roles_before is not None and not diff.plan_created:
        diff.plan_details += _role_changes(d, roles_before, person_ids)
    if diff.plan_details:
        events.append(event_row(pid, None, EventKind.PLAN_UPDATED, {"changes": diff.plan_details}, actor=actor, at=now))
    project_ids = _sync_groups(session, pid, d, diff, now)
    ids = Ids(dept_ids, person_ids, project_ids)
    TaskSync(session, pid, ids, diff, events, actor=actor, now=now, accept=frozenset(accept), accept_all=accept_sheet, tz=tz).run(d)

    for chunk in chunks(events, 20000):
        session.execute(table_of(Event).insert(), chunk)
    if diff.has_changes or diff.plan_created:
        session.add(ImportRun(plan_id=pid, at=now, actor=actor, source=source, sha256=sha256, summary=_summary(diff)))
    session.flush()
    return diff


def _sync_plan(session: Session, d: PlanDefinition, diff: PlanDiff, *, source: str, now: dt.datetime, institution_id: int) -> int:
    """Create the plan row or update its settings (noting each change in the diff); return its id."""
    plan = session.scalar(select(Plan).where(Plan.code == d.code))
    if plan is None:
        plan = Plan(
            institution_id=institution_id,
            code=d.code,
            **{attr: getattr(d, attr) for attr, _label in PLAN_SETTINGS},
            channels=d.channels,
            source=source,
            created_at=now,
            updated_at=now,
        )
        session.add(plan)
        session.flush()
        diff.plan_created = True
        return plan.id
    for attr, label in PLAN_SETTINGS:
        old, new = getattr(plan, attr), getattr(d, attr)
        if old != new:
            diff.plan_details.append(f"{label}：{_shown(attr, old)} → {_shown(attr, new)}")
            setattr(plan, attr, new)
    if (plan.channels or {}) != d.channels:  # URLs hold secrets: say what changed, never the values
        diff.plan_details.append("领导小组/办公室群通知地址：已更新")
        plan.channels = d.channels
    plan.source = source or plan.source
    plan.updated_at = now
    return plan.id


def _shown(attr: str, value: Any) -> str:
    """A plan setting as the diff prints it (督办通报 by its Chinese name)."""
    return BULLETIN_EVERY_LABELS.get(value, value) if attr == "bulletin_every" else show(value)


def _scope_text(scope: dict[str, Any]) -> str:
    """An office member's line as the diff prints it: its systems and departments, or 全部."""
    return show([*scope.get("systems", ()), *scope.get("departments", ())]) if scope else "全部"


def _role_changes(d: PlanDefinition, roles_before: list[tuple], person_ids: dict[str, int]) -> list[str]:
    """Diff lines for the leading group and the office, where their members or lines changed."""
    names = {v: k for k, v in person_ids.items()}
    out = []
    for role, label in PLAN_ROLES:
        old_names = [names.get(p) for p, r, _, _ in roles_before if r == role]
        new_names = list(getattr(d, role))
        if old_names != new_names:
            out.append(f"{label}：{show(old_names)} → {show(new_names)}")
    old_scopes = {names.get(p): json.loads(scope) for p, r, _, scope in roles_before if r == PlanRoleKind.OFFICE}
    for name in d.office:
        old, new = old_scopes.get(name), d.office_scopes.get(name, {})
        if old is not None and old != new:
            out.append(f"督办条线（{name}）：{_scope_text(old)} → {_scope_text(new)}")
    return out


def _system_of(project: GroupDef) -> str:
    """A project's system (resolve sets it for every project)."""
    if project.system is None:
        raise ValueError(f"project {project.name!r} has no system")
    return project.system


def _summary(diff: PlanDiff) -> dict[str, Any]:
    return {
        "added": len(diff.added),
        "changed": len(diff.changed),
        "archived": len(diff.archived),
        "restored": len(diff.restored),
        "unchanged": diff.unchanged,
        "conflicts_not_applied": len(diff.conflicts),
        "conflicts_accepted": len(diff.accepted),
    }


def _sync_departments_names(session: Session, pid: int, d: PlanDefinition, diff: PlanDiff) -> dict[str, int]:
    existing = {name: id_ for id_, name in session.execute(select(Department.id, Department.name).where(Department.plan_id == pid))}
    new_names = [dep.name for dep in d.departments if dep.name not in existing]
    if new_names:
        session.execute(insert(Department), [{"plan_id": pid, "name": name} for name in new_names])
        diff.departments_added += new_names
        existing = {name: id_ for id_, name in session.execute(select(Department.id, Department.name).where(Department.plan_id == pid))}
    return existing


# a person's accounts (工号, chat-app ids): written as the plan gives them, like the other person fields
PERSON_IDS = (Person.staff_no, Person.wecom_userid, Person.dingtalk_userid, Person.feishu_open_id)


def _ids(p: PersonDef) -> dict[str, str | None]:
    return {column.key: getattr(p, column.key) for column in PERSON_IDS}


def _sync_people(session: Session, pid: int, d: PlanDefinition, dept_ids: dict[str, int], diff: PlanDiff) -> dict[str, int]:
    rows = session.execute(
        select(
            Person.id,
            Person.name,
            Person.department_id,
            Person.title,
            Person.email,
            Person.mobile,
            Person.notify_urls,
            Person.manager_id,
            Person.active,
            *PERSON_IDS,
        ).where(Person.plan_id == pid)
    ).all()
    existing = {r.name: r for r in rows}
    new_people = [p for p in d.people if p.name not in existing]
    new = [
        {
            "plan_id": pid,
            "name": p.name,
            "department_id": dept_ids.get(p.department) if p.department else None,
            "title": p.title,
            "email": p.email,
            "mobile": p.mobile,
            "notify_urls": list(p.notify),
            "active": True,
            **_ids(p),
        }
        for p in new_people
    ]
    if new:
        session.execute(insert(Person), new)
        diff.people_added += [p.name for p in new_people]
    ids = {name: id_ for id_, name in session.execute(select(Person.id, Person.name).where(Person.plan_id == pid))}
    added = {p.name for p in new_people}
    updates: list[dict[str, Any]] = []
    for p in d.people:
        want = {
            "department_id": dept_ids.get(p.department) if p.department else None,
            "title": p.title,
            "email": p.email,
            "mobile": p.mobile,
            "notify_urls": list(p.notify),
            "manager_id": ids.get(p.manager) if p.manager else None,
            "active": True,
            **_ids(p),
        }
        if p.name in added:
            if want["manager_id"] is not None:
                updates.append({"id": ids[p.name], "manager_id": want["manager_id"]})
            continue
        old = existing[p.name]
        changed = {k: v for k, v in want.items() if getattr(old, k) != v}
        if changed:
            updates.append({"id": ids[p.name], **want})
            diff.people_changed.append(p.name)
    named = {p.name for p in d.people}
    for name, old in existing.items():
        if name not in named and old.active:
            updates.append({"id": old.id, "active": False})
            diff.people_deactivated.append(name)
    bulk_update(session, Person, updates)
    return ids


def _same_account_warnings(session: Session, pid: int, institution_id: int, d: PlanDefinition) -> list[str]:
    """A 工号 (or chat-app userid) the institution's other plans give to someone of another name:
    the same account is one human there (duban.person_rows), so say where, and do not refuse."""
    written = {(c, v): p for p in d.people for c in IDENTITY_COLUMNS if (v := getattr(p, c))}
    out = []
    for clash in name_clashes(session, pid, institution_id, [(c, v, p.name) for (c, v), p in written.items()]):
        what = ID_RULES[clash.column].what
        where = written[(clash.column, clash.value)].located.get(clash.column) or f"人员“{clash.name}”"
        out.append(
            f"{where}：{what}“{clash.value}”在本单位的方案“{clash.other_plan}”中登记为“{clash.other_name}”，"
            f"与此处的姓名“{clash.name}”不同。同一单位内{what}相同即视为同一人（其“我的督办”合并显示两个方案的任务），请核对是否填错。"
        )
    return out


def _sync_department_roles(
    session: Session, pid: int, d: PlanDefinition, dept_ids: dict[str, int], person_ids: dict[str, int], diff: PlanDiff
) -> None:
    rows = {
        r.name: r
        for r in session.execute(
            select(Department.id, Department.name, Department.head_id, Department.supervisor_id, Department.notify_urls).where(
                Department.plan_id == pid
            )
        )
    }
    updates = []
    for dep in d.departments:
        head = person_ids.get(dep.head) if dep.head else None
        sup = person_ids.get(dep.supervisor) if dep.supervisor else None
        old = rows[dep.name]
        if (old.head_id, old.supervisor_id, list(old.notify_urls or ())) != (head, sup, list(dep.notify)):
            updates.append({"id": old.id, "head_id": head, "supervisor_id": sup, "notify_urls": list(dep.notify)})
            if dep.name not in diff.departments_added:
                diff.departments_changed.append(dep.name)
    bulk_update(session, Department, updates)


def _sync_plan_roles(session: Session, pid: int, d: PlanDefinition, person_ids: dict[str, int]) -> list[tuple] | None:
    """Replace the leading group and office (with each member's line) when they changed; return
    the old membership then, as (person, role, position, line as JSON)."""
    want = [(person_ids[n], PlanRoleKind.LEADING_GROUP, i, _key({})) for i, n in enumerate(d.leading_group)]
    want += [(person_ids[n], PlanRoleKind.OFFICE, i, _key(d.office_scopes.get(n, {}))) for i, n in enumerate(d.office)]
    have = sorted(
        (r.person_id, r.role, r.position, _key(r.scope or {}))
        for r in session.execute(
            select(PlanRole.person_id, PlanRole.role, PlanRole.position, PlanRole.scope).where(PlanRole.plan_id == pid)
        )
    )
    if sorted(want) == have:
        return None
    session.execute(delete(PlanRole).where(PlanRole.plan_id == pid))
    if want:
        rows = [{"plan_id": pid, "person_id": p, "role": r, "position": i, "scope": json.loads(k)} for p, r, i, k in want]
        session.execute(insert(PlanRole), rows)
    return sorted(have, key=lambda x: (x[1], x[2]))


def _key(scope: dict[str, Any]) -> str:
    """A line, comparable and sortable (JSON with sorted keys)."""
    return json.dumps(scope, ensure_ascii=False, sort_keys=True)


def _sync_groups(session: Session, pid: int, d: PlanDefinition, diff: PlanDiff, now: dt.datetime) -> dict[tuple[str, str], int]:
    systems = {
        r.name: r
        for r in session.execute(
            select(System.id, System.name, System.code, System.position, System.archived_at).where(System.plan_id == pid)
        )
    }
    new = [{"plan_id": pid, "code": s.code, "name": s.name, "position": s.position} for s in d.systems if s.name not in systems]
    if new:
        session.execute(insert(System), new)
        diff.groups_added += [f"体系「{s['name']}」" for s in new]
    updates = []
    for s in d.systems:
        old = systems.get(s.name)
        if old is not None and (old.code, old.position, old.archived_at) != (s.code, s.position, None):
            updates.append({"id": old.id, "code": s.code, "position": s.position, "archived_at": None})
    named = {s.name for s in d.systems}
    for name, old in systems.items():
        if name not in named and old.archived_at is None:
            updates.append({"id": old.id, "code": old.code, "position": old.position, "archived_at": now})
            diff.groups_archived.append(f"体系「{name}」")
    bulk_update(session, System, updates)
    system_ids = {name: id_ for id_, name in session.execute(select(System.id, System.name).where(System.plan_id == pid))}

    projects = {
        (r.system_id, r.name): r
        for r in session.execute(
            select(Project.id, Project.system_id, Project.name, Project.code, Project.position, Project.archived_at).where(
                Project.plan_id == pid
            )
        )
    }
    new = []
    for pr in d.projects:
        key = (system_ids[_system_of(pr)], pr.name)
        if key not in projects:
            new.append({"plan_id": pid, "system_id": key[0], "code": pr.code, "name": pr.name, "position": pr.position})
    if new:
        session.execute(insert(Project), new)
        diff.groups_added += [f"项目「{p['name']}」" for p in new]
    updates = []
    wanted = set()
    for pr in d.projects:
        key = (system_ids[_system_of(pr)], pr.name)
        wanted.add(key)
        old_project = projects.get(key)
        if old_project is not None and (old_project.code, old_project.position, old_project.archived_at) != (pr.code, pr.position, None):
            updates.append({"id": old_project.id, "code": pr.code, "position": pr.position, "archived_at": None})
    for key, old_project in projects.items():
        if key not in wanted and old_project.archived_at is None:
            updates.append({"id": old_project.id, "code": old_project.code, "position": old_project.position, "archived_at": now})
            diff.groups_archived.append(f"项目「{old_project.name}」")
    bulk_update(session, Project, updates)
    names = {id_: name for name, id_ in system_ids.items()}
    return {
        (names[sid], name): id_
        for id_, sid, name in session.execute(select(Project.id, Project.system_id, Project.name).where(Project.plan_id == pid))
    }
