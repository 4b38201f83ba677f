"""Apply a resolved plan to the store, in place, and say what changed.

``apply_plan`` takes a session and never commits: the caller owns the transaction, so a dry run
is the same call followed by a rollback, and the diff it prints is exactly what a real import
would do.  Nothing a user entered is deleted: removed tasks, milestones, systems and projects are
archived; recorded progress (milestone states, acknowledgements, completions) is kept; moved due
dates keep their baseline; every change becomes an event in the audit trail.

Large plans (tens of thousands of tasks) are written with bulk statements, not object by object.
"""

from __future__ import annotations

import datetime as dt
import getpass
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from definitions.schema import MilestoneDef, PlanDefinition, TaskDef
from duban.models import (
    ARCHIVED,
    ASSIGNED,
    DONE,
    IN_PROGRESS,
    SUBMITTED,
    Department,
    Event,
    ImportRun,
    Milestone,
    Person,
    Plan,
    PlanRole,
    Project,
    System,
    Task,
    utcnow,
)

SCHEDULE_LABELS = {"once": "一次性", "recurring": "周期性", "ongoing": "长期"}
FIELD_LABELS = {
    "title": "具体任务",
    "statement": "任务书",
    "done_criteria": "完成标志",
    "owner": "责任人",
    "lead_department": "牵头单位",
    "supervisor": "分管校领导",
    "partners": "配合单位",
    "deadline_text": "完成时限",
    "project": "所属项目",
    "schedule": "任务类型",
    "period": "反馈周期",
    "period_month": "每年月份",
    "policy": "督办规则",
}
PERIOD_LABELS = {"week": "每周", "month": "每月", "quarter": "每季度", "semester": "每学期", "year": "每年"}


def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "unknown"


@dataclass
class TaskChange:
    code: str
    title: str
    details: list[str] = field(default_factory=list)


@dataclass
class PlanDiff:
    """What an import changes; ``render`` prints it in Chinese, ``to_dict`` for JSON."""

    plan_code: str
    plan_name: str
    plan_created: bool = False
    plan_details: list[str] = field(default_factory=list)
    added: list[TaskChange] = field(default_factory=list)
    changed: list[TaskChange] = field(default_factory=list)
    archived: list[TaskChange] = field(default_factory=list)
    restored: list[TaskChange] = field(default_factory=list)
    unchanged: int = 0
    people_added: list[str] = field(default_factory=list)
    people_changed: list[str] = field(default_factory=list)
    people_deactivated: list[str] = field(default_factory=list)
    departments_added: list[str] = field(default_factory=list)
    departments_changed: list[str] = field(default_factory=list)
    groups_added: list[str] = field(default_factory=list)
    groups_archived: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(
            self.plan_created
            or self.plan_details
            or self.added
            or self.changed
            or self.archived
            or self.restored
            or self.people_added
            or self.people_changed
            or self.people_deactivated
            or self.departments_added
            or self.departments_changed
            or self.groups_added
            or self.groups_archived
        )

    def to_dict(self) -> dict[str, Any]:
        def tc(items: list[TaskChange]) -> list[dict[str, Any]]:
            return [{"code": c.code, "title": c.title, "details": c.details} for c in items]

        return {
            "plan": self.plan_code,
            "plan_created": self.plan_created,
            "plan_details": self.plan_details,
            "tasks": {
                "added": tc(self.added),
                "changed": tc(self.changed),
                "archived": tc(self.archived),
                "restored": tc(self.restored),
                "unchanged": self.unchanged,
            },
            "people": {
                "added": self.people_added,
                "changed": self.people_changed,
                "deactivated": self.people_deactivated,
            },
            "departments": {"added": self.departments_added, "changed": self.departments_changed},
            "groups": {"added": self.groups_added, "archived": self.groups_archived},
            "warnings": self.warnings,
        }

    def render(self, *, limit: int = 50) -> str:
        lines: list[str] = []
        head = "新建方案" if self.plan_created else "更新方案"
        lines.append(f"{head}「{self.plan_name}」（{self.plan_code}）")
        lines += [f"  方案设置：{d}" for d in self.plan_details]

        def block(title: str, items: list[TaskChange]) -> None:
            if not items:
                return
            lines.append(f"{title} {len(items)} 项：")
            for c in items[:limit]:
                lines.append(f"  {c.code} {c.title}")
                lines.extend(f"      {d}" for d in c.details)
            if len(items) > limit:
                lines.append(f"  …… 另有 {len(items) - limit} 项未列出")

        block("新增任务", self.added)
        block("变更任务", self.changed)
        block("归档任务（已从清单中删除，历史记录保留）", self.archived)
        block("恢复任务（重新出现在清单中）", self.restored)
        def names(title: str, items: list[str]) -> None:
            if not items:
                return
            if self.plan_created or len(items) > limit:
                lines.append(f"{title} {len(items)}：" + "、".join(items[:8]) + ("……" if len(items) > 8 else ""))
            else:
                lines.append(f"{title} {len(items)}：" + "、".join(items))

        names("新增体系/项目", self.groups_added)
        names("归档体系/项目", self.groups_archived)
        names("新增部门", self.departments_added)
        names("部门信息变更", self.departments_changed)
        names("新增人员", self.people_added)
        names("人员信息变更", self.people_changed)
        names("不再出现在人员表中（保留历史，不再接收提醒）", self.people_deactivated)
        if not self.has_changes:
            lines.append("与库中现有内容相同，没有需要更新的内容。")
        else:
            lines.append(f"未变更任务 {self.unchanged} 项。")
        lines += [f"提示：{w}" for w in self.warnings]
        return "\n".join(lines)


def _event(plan_id: int, task_id: int | None, kind: str, data: dict[str, Any], *, actor: str, at: dt.datetime, milestone_id: int | None = None, channel: str = "import") -> dict[str, Any]:
    return {
        "plan_id": plan_id,
        "task_id": task_id,
        "milestone_id": milestone_id,
        "at": at,
        "actor": actor,
        "channel": channel,
        "kind": kind,
        "data": data,
    }


def apply_plan(
    session: Session,
    d: PlanDefinition,
    *,
    actor: str | None = None,
    source: str = "",
    sha256: str = "",
    now: dt.datetime | None = None,
) -> PlanDiff:
    """Create or update plan ``d.code`` in place; return the diff.  Does not commit."""
    actor = actor or default_actor()
    now = now or utcnow()
    diff = PlanDiff(plan_code=d.code, plan_name=d.name, warnings=list(d.warnings))
    events: list[dict[str, Any]] = []

    # Plan ---------------------------------------------------------------------------------
    plan = session.scalar(select(Plan).where(Plan.code == d.code))
    if plan is None:
        plan = Plan(
            code=d.code,
            name=d.name,
            organization=d.organization,
            approval_required=d.approval_required,
            report_every=d.report_every,
            policy=d.policy,
            channels=d.channels,
            source=source,
            created_at=now,
            updated_at=now,
        )
        session.add(plan)
        session.flush()
        diff.plan_created = True
    else:
        for attr, label in (("name", "方案名称"), ("organization", "单位"), ("approval_required", "办结需审核"), ("report_every", "长期任务反馈周期"), ("policy", "督办规则")):
            old, new = getattr(plan, attr), getattr(d, attr)
            if old != new:
                diff.plan_details.append(f"{label}：{_show(old)} → {_show(new)}")
                setattr(plan, attr, new)
        if (plan.channels or {}) != d.channels:  # URLs hold secrets: say what changed, never the values
            diff.plan_details.append("领导小组/办公室群通知地址：已更新")
            plan.channels = d.channels
        plan.source = source or plan.source
        plan.updated_at = now
    pid = plan.id
    # Departments and people -----------------------------------------------------------------
    dept_ids = _sync_departments_names(session, pid, d, diff)
    person_ids = _sync_people(session, pid, d, dept_ids, diff)
    _sync_department_roles(session, pid, d, dept_ids, person_ids, diff)
    roles_before = _sync_plan_roles(session, pid, d, person_ids)
    if roles_before is not None:
        for role, label in (("leading_group", "领导小组"), ("office", "领导小组办公室")):
            names = {v: k for k, v in person_ids.items()}
            old_names = [names.get(p) for p, r, _ in roles_before if r == role]
            new_names = list(d.leading_group if role == "leading_group" else d.office)
            if old_names != new_names and not diff.plan_created:
                diff.plan_details.append(f"{label}：{_show(old_names)} → {_show(new_names)}")

    if diff.plan_details:
        events.append(_event(pid, None, "plan_updated", {"changes": diff.plan_details}, actor=actor, at=now))

    # Systems and projects -----------------------------------------------------------------
    project_ids = _sync_groups(session, pid, d, diff, now)

    # Tasks and milestones -----------------------------------------------------------------
    _sync_tasks(session, pid, d, dept_ids, person_ids, project_ids, diff, events, actor=actor, now=now)

    for chunk in _chunks(events, 20000):
        session.execute(Event.__table__.insert(), chunk)
    if diff.has_changes or diff.plan_created:
        session.add(
            ImportRun(plan_id=pid, at=now, actor=actor, source=source, sha256=sha256, summary=_summary(diff))
        )
    session.flush()
    return diff


def _summary(diff: PlanDiff) -> dict[str, Any]:
    return {
        "added": len(diff.added),
        "changed": len(diff.changed),
        "archived": len(diff.archived),
        "restored": len(diff.restored),
        "unchanged": diff.unchanged,
    }


def _show(value: Any) -> str:
    if value is None or value == "" or value == ():
        return "（空）"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (list, tuple)):
        return "、".join(map(str, value)) or "（空）"
    if isinstance(value, dict):
        return "；".join(f"{k}={_show(v)}" for k, v in sorted(value.items())) or "（默认）"
    return str(value)


def _sync_departments_names(session: Session, pid: int, d: PlanDefinition, diff: PlanDiff) -> dict[str, int]:
    existing = {name: id_ for id_, name in session.execute(select(Department.id, Department.name).where(Department.plan_id == pid))}
    new = [{"plan_id": pid, "name": dep.name} for dep in d.departments if dep.name not in existing]
    if new:
        session.execute(insert(Department), new)
        diff.departments_added += [n["name"] for n in new]
        existing = {name: id_ for id_, name in session.execute(select(Department.id, Department.name).where(Department.plan_id == pid))}
    return existing


def _sync_people(session: Session, pid: int, d: PlanDefinition, dept_ids: dict[str, int], diff: PlanDiff) -> dict[str, int]:
    rows = session.execute(
        select(Person.id, Person.name, Person.department_id, Person.title, Person.email, Person.mobile, Person.notify_urls, Person.manager_id, Person.active).where(Person.plan_id == pid)
    ).all()
    existing = {r.name: r for r in rows}
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
        }
        for p in d.people
        if p.name not in existing
    ]
    if new:
        session.execute(insert(Person), new)
        diff.people_added += [n["name"] for n in new]
    ids = {name: id_ for id_, name in session.execute(select(Person.id, Person.name).where(Person.plan_id == pid))}
    added = {n["name"] for n in new}
    updates = []
    for p in d.people:
        want = {
            "department_id": dept_ids.get(p.department) if p.department else None,
            "title": p.title,
            "email": p.email,
            "mobile": p.mobile,
            "notify_urls": list(p.notify),
            "manager_id": ids.get(p.manager) if p.manager else None,
            "active": True,
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
    _bulk_update(session, Person, updates)
    return ids


def _bulk_update(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    """ORM bulk UPDATE by primary key, grouped by the set of columns each row changes."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(sorted(row))].append(row)
    for batch in groups.values():
        session.execute(update(model), batch)


def _sync_department_roles(session: Session, pid: int, d: PlanDefinition, dept_ids: dict[str, int], person_ids: dict[str, int], diff: PlanDiff) -> None:
    rows = {r.name: r for r in session.execute(select(Department.id, Department.name, Department.head_id, Department.supervisor_id, Department.notify_urls).where(Department.plan_id == pid))}
    updates = []
    for dep in d.departments:
        head = person_ids.get(dep.head) if dep.head else None
        sup = person_ids.get(dep.supervisor) if dep.supervisor else None
        old = rows[dep.name]
        if (old.head_id, old.supervisor_id, list(old.notify_urls or ())) != (head, sup, list(dep.notify)):
            updates.append({"id": old.id, "head_id": head, "supervisor_id": sup, "notify_urls": list(dep.notify)})
            if dep.name not in diff.departments_added:
                diff.departments_changed.append(dep.name)
    _bulk_update(session, Department, updates)


def _sync_plan_roles(session: Session, pid: int, d: PlanDefinition, person_ids: dict[str, int]) -> list[tuple] | None:
    """Replace the leading group and office when they changed; return the old membership then."""
    want = [(person_ids[n], "leading_group", i) for i, n in enumerate(d.leading_group)]
    want += [(person_ids[n], "office", i) for i, n in enumerate(d.office)]
    have = sorted(tuple(r) for r in session.execute(select(PlanRole.person_id, PlanRole.role, PlanRole.position).where(PlanRole.plan_id == pid)))
    if sorted(want) == have:
        return None
    session.execute(delete(PlanRole).where(PlanRole.plan_id == pid))
    if want:
        session.execute(insert(PlanRole), [{"plan_id": pid, "person_id": p, "role": r, "position": i} for p, r, i in want])
    return sorted(have, key=lambda x: (x[1], x[2]))


def _sync_groups(session: Session, pid: int, d: PlanDefinition, diff: PlanDiff, now: dt.datetime) -> dict[tuple[str, str], int]:
    systems = {r.name: r for r in session.execute(select(System.id, System.name, System.code, System.position, System.archived_at).where(System.plan_id == pid))}
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
    _bulk_update(session, System, updates)
    system_ids = {name: id_ for id_, name in session.execute(select(System.id, System.name).where(System.plan_id == pid))}

    projects = {(r.system_id, r.name): r for r in session.execute(select(Project.id, Project.system_id, Project.name, Project.code, Project.position, Project.archived_at).where(Project.plan_id == pid))}
    new = []
    for pr in d.projects:
        key = (system_ids[pr.system], pr.name)
        if key not in projects:
            new.append({"plan_id": pid, "system_id": key[0], "code": pr.code, "name": pr.name, "position": pr.position})
    if new:
        session.execute(insert(Project), new)
        diff.groups_added += [f"项目「{p['name']}」" for p in new]
    updates = []
    wanted = set()
    for pr in d.projects:
        key = (system_ids[pr.system], pr.name)
        wanted.add(key)
        old = projects.get(key)
        if old is not None and (old.code, old.position, old.archived_at) != (pr.code, pr.position, None):
            updates.append({"id": old.id, "code": pr.code, "position": pr.position, "archived_at": None})
    for key, old in projects.items():
        if key not in wanted and old.archived_at is None:
            updates.append({"id": old.id, "code": old.code, "position": old.position, "archived_at": now})
            diff.groups_archived.append(f"项目「{old.name}」")
    _bulk_update(session, Project, updates)
    names = {id_: name for name, id_ in system_ids.items()}
    return {
        (names[sid], name): id_
        for id_, sid, name in session.execute(select(Project.id, Project.system_id, Project.name).where(Project.plan_id == pid))
    }


TASK_FIELDS = (
    "title",
    "statement",
    "done_criteria",
    "owner_id",
    "lead_department_id",
    "supervisor_id",
    "partners",
    "schedule",
    "period",
    "period_month",
    "deadline_text",
    "project_id",
    "position",
    "policy",
)


def _task_row(t: TaskDef, dept_ids, person_ids, project_ids) -> dict[str, Any]:
    return {
        "title": t.title,
        "statement": t.statement,
        "done_criteria": t.done_criteria,
        "owner_id": person_ids[t.owner],
        "lead_department_id": dept_ids.get(t.lead_department) if t.lead_department else None,
        "supervisor_id": person_ids.get(t.supervisor) if t.supervisor else None,
        "partners": list(t.partners),
        "schedule": t.schedule,
        "period": t.period,
        "period_month": t.period_month,
        "deadline_text": t.deadline_text,
        "project_id": project_ids[(t.system, t.project)],
        "position": t.position,
        "policy": dict(t.policy),
    }


def _milestone_row(m: MilestoneDef, task_id: int, now: dt.datetime) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "seq": m.seq,
        "title": m.title,
        "due_date": m.due,
        "baseline_due_date": m.due,
        "due_text": m.due_text,
        "due_version": 1,
        "is_final": m.is_final,
        "status": ASSIGNED,
        "assigned_at": now,
    }


def _sync_tasks(session, pid, d, dept_ids, person_ids, project_ids, diff, events, *, actor, now) -> None:
    names_by_id = {v: k for k, v in person_ids.items()}
    dept_by_id = {v: k for k, v in dept_ids.items()}
    project_names = {v: f"{k[0]} / {k[1]}" for k, v in project_ids.items()}
    cols = [Task.id, Task.code, Task.archived_at, *(getattr(Task, f) for f in TASK_FIELDS)]
    existing = {r.code: r for r in session.execute(select(*cols).where(Task.plan_id == pid))}
    ms_by_task: dict[int, list[Any]] = defaultdict(list)
    if existing:
        for r in session.execute(
            select(
                Milestone.id, Milestone.task_id, Milestone.seq, Milestone.title, Milestone.due_date, Milestone.due_text,
                Milestone.due_version, Milestone.is_final, Milestone.status, Milestone.completed_at,
                Milestone.submitted_at, Milestone.acknowledged_at,
            )
            .join(Task, Task.id == Milestone.task_id)
            .where(Task.plan_id == pid)
            .order_by(Milestone.task_id, Milestone.seq, Milestone.id)
        ):
            ms_by_task[r.task_id].append(r)

    # new tasks: bulk insert with RETURNING, then their milestones
    new_defs = [t for t in d.tasks if t.code not in existing]
    if new_defs:
        rows = [{"plan_id": pid, "code": t.code, "created_at": now, "updated_at": now, "assigned_at": now, **_task_row(t, dept_ids, person_ids, project_ids)} for t in new_defs]
        # Core executemany (no RETURNING): far faster than the ORM bulk path for tens of thousands
        for chunk in _chunks(rows, 10000):
            session.execute(Task.__table__.insert(), chunk)
        ids = dict(session.execute(select(Task.code, Task.id).where(Task.plan_id == pid)).all())
        ms_rows = [_milestone_row(m, ids[t.code], now) for t in new_defs for m in t.milestones]
        for chunk in _chunks(ms_rows, 20000):
            session.execute(Milestone.__table__.insert(), chunk)
        for t in new_defs:
            diff.added.append(TaskChange(t.code, t.title, [f"责任人：{t.owner}；完成时限：{t.deadline_text}；里程碑 {len(t.milestones)} 个"]))
            events.append(_event(pid, ids[t.code], "task_created", {"owner": t.owner, "deadline": t.deadline_text, "milestones": len(t.milestones)}, actor=actor, at=now))

    task_updates: list[dict[str, Any]] = []
    ms_updates: list[dict[str, Any]] = []
    ms_inserts: list[dict[str, Any]] = []
    for t in d.tasks:
        old = existing.get(t.code)
        if old is None:
            continue
        want = _task_row(t, dept_ids, person_ids, project_ids)
        details: list[str] = []
        changes: dict[str, Any] = {}
        for f in TASK_FIELDS:
            o, n = getattr(old, f), want[f]
            if o == n:
                continue
            changes[f] = n
            label_field = {"owner_id": "owner", "lead_department_id": "lead_department", "supervisor_id": "supervisor", "project_id": "project"}.get(f, f)
            if label_field in FIELD_LABELS:
                if f in ("owner_id", "supervisor_id"):
                    shown = (names_by_id.get(o), names_by_id.get(n))
                elif f == "lead_department_id":
                    shown = (dept_by_id.get(o), dept_by_id.get(n))
                elif f == "project_id":
                    shown = (project_names.get(o), project_names.get(n))
                elif f in ("statement", "done_criteria"):
                    shown = None
                elif f == "schedule":
                    shown = (SCHEDULE_LABELS.get(o, o), SCHEDULE_LABELS.get(n, n))
                elif f == "period":
                    shown = (PERIOD_LABELS.get(o, o), PERIOD_LABELS.get(n, n))
                else:
                    shown = (o, n)
                if shown is None:
                    details.append(f"{FIELD_LABELS[label_field]}已修改")
                else:
                    details.append(f"{FIELD_LABELS[label_field]}：{_show(shown[0])} → {_show(shown[1])}")
        restored = old.archived_at is not None
        if restored:
            changes["archived_at"] = None
        ms_details = _sync_milestones(old.id, t, ms_by_task.get(old.id, []), ms_updates, ms_inserts, events, pid, actor, now, reassigned="owner_id" in changes)
        details += ms_details
        if "owner_id" in changes:
            changes["acknowledged_at"] = None  # the new owner acknowledges afresh
            changes["assigned_at"] = now
        if changes:
            changes["updated_at"] = now
            task_updates.append({"id": old.id, **changes})
        if "owner_id" in changes:
            events.append(_event(pid, old.id, "owner_changed", {"from": names_by_id.get(old.owner_id), "to": t.owner}, actor=actor, at=now))
        data = {k: _jsonable(v) for k, v in changes.items() if k not in ("updated_at", "position", "archived_at", "owner_id", "acknowledged_at", "assigned_at")}
        if restored:
            diff.restored.append(TaskChange(t.code, t.title, details))
            events.append(_event(pid, old.id, "task_restored", data, actor=actor, at=now))
        elif details:
            diff.changed.append(TaskChange(t.code, t.title, details))
            if data:
                events.append(_event(pid, old.id, "task_updated", data, actor=actor, at=now))
        else:
            diff.unchanged += 1

    # tasks no longer in the list: archive, keep history
    wanted = {t.code for t in d.tasks}
    for code, old in existing.items():
        if code in wanted or old.archived_at is not None:
            continue
        task_updates.append({"id": old.id, "archived_at": now, "updated_at": now})
        for m in ms_by_task.get(old.id, []):
            if m.status not in (DONE, ARCHIVED):
                ms_updates.append({"id": m.id, "status": ARCHIVED, "archived_at": now})
        diff.archived.append(TaskChange(code, old.title))
        events.append(_event(pid, old.id, "task_archived", {}, actor=actor, at=now))

    _bulk_update(session, Task, task_updates)
    _bulk_update(session, Milestone, ms_updates)
    for chunk in _chunks(ms_inserts, 20000):
        session.execute(Milestone.__table__.insert(), chunk)
    # links stop working for a task handed to someone else, a task or step removed from the list
    from duban.links import OWNER_ACTIONS, void as void_links

    reassigned = [u["id"] for u in task_updates if "owner_id" in u]
    archived_tasks = [u["id"] for u in task_updates if u.get("archived_at") is not None]
    archived_ms = [u["id"] for u in ms_updates if u.get("status") == ARCHIVED]
    for chunk in _chunks(reassigned, 5000):
        void_links(session, reason="任务已改由他人负责", now=now, task_ids=chunk, actions=OWNER_ACTIONS)
    for chunk in _chunks(archived_tasks, 5000):
        void_links(session, reason="任务已从清单中删除", now=now, task_ids=chunk)
    for chunk in _chunks(archived_ms, 5000):
        void_links(session, reason="里程碑已从路线图中删除", now=now, milestone_ids=chunk)


def _sync_milestones(task_id, t: TaskDef, old_ms, ms_updates, ms_inserts, events, pid, actor, now, *, reassigned: bool) -> list[str]:
    """Match the task's milestones to the definition; move dates (keeping the baseline)."""
    details: list[str] = []
    remaining = list(old_ms)
    pairs: list[tuple[MilestoneDef, Any | None]] = []
    # 1) same title (non-empty) 2) the final deadline with the final one 3) same position (below)
    unmatched_defs: list[MilestoneDef] = []
    for m in t.milestones:
        hit = next((o for o in remaining if m.title and o.title == m.title and o.is_final == m.is_final), None)
        if hit is None and m.is_final:
            hit = next((o for o in remaining if o.is_final), None)
        if hit is not None:
            remaining.remove(hit)
            pairs.append((m, hit))
        else:
            unmatched_defs.append(m)
    for m in unmatched_defs:
        # same position: a step renamed on the same date, or an untitled step whose date moved
        hit = next(
            (o for o in remaining if o.seq == m.seq and not o.is_final and (o.due_date == m.due or not (o.title and m.title))),
            None,
        )
        if hit is not None:
            remaining.remove(hit)
        pairs.append((m, hit))
    for m, o in sorted(pairs, key=lambda p: p[0].seq):
        label = m.title or f"第 {m.seq} 步"
        if o is None:
            ms_inserts.append(_milestone_row(m, task_id, now))
            details.append(f"新增里程碑「{label}」：{m.due.isoformat()}")
            events.append(_event(pid, task_id, "milestone_added", {"title": m.title, "due": m.due.isoformat()}, actor=actor, at=now))
            continue
        upd: dict[str, Any] = {}
        if o.due_date != m.due:
            upd["due_date"] = m.due
            upd["due_version"] = o.due_version + 1
            details.append(f"里程碑「{label}」时间：{o.due_date.isoformat()} → {m.due.isoformat()}")
            events.append(_event(pid, task_id, "milestone_due_changed", {"from": o.due_date.isoformat(), "to": m.due.isoformat(), "version": o.due_version + 1}, actor=actor, at=now, milestone_id=o.id))
        if o.title != m.title and o.title:
            details.append(f"里程碑名称：{o.title} → {m.title or '（空）'}")
        for attr, val in (("seq", m.seq), ("title", m.title), ("due_text", m.due_text), ("is_final", m.is_final)):
            if getattr(o, attr) != val:
                upd[attr] = val
        if o.status == ARCHIVED:
            # back to where it was: the timestamps keep what had happened before it was archived
            upd["status"] = (
                DONE if o.completed_at else SUBMITTED if o.submitted_at else IN_PROGRESS if o.acknowledged_at else ASSIGNED
            )
            upd["archived_at"] = None
            details.append(f"里程碑「{label}」恢复")
            events.append(_event(pid, task_id, "milestone_restored", {"title": m.title, "status": upd["status"]}, actor=actor, at=now, milestone_id=o.id))
        elif reassigned and o.status in (ASSIGNED, IN_PROGRESS):
            # a new owner acknowledges afresh; progress reports stay in the audit trail
            upd["status"] = ASSIGNED
            upd["assigned_at"] = now
            upd["acknowledged_at"] = None
        if upd:
            ms_updates.append({"id": o.id, **upd})
    for o in remaining:
        if o.status == ARCHIVED:
            continue
        ms_updates.append({"id": o.id, "status": ARCHIVED, "archived_at": now})
        details.append(f"里程碑「{o.title or f'第 {o.seq} 步'}」已从路线图中删除（归档）")
        events.append(_event(pid, task_id, "milestone_archived", {"title": o.title, "status_before": o.status}, actor=actor, at=now, milestone_id=o.id))
    return details


def _jsonable(v: Any) -> Any:
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return v


def _chunks(rows: list[Any], size: int):
    for i in range(0, len(rows), size):
        yield rows[i : i + size]
