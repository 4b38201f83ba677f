"""The task and milestone step of a plan sync (``duban.plans.sync.apply_plan``).

New tasks are inserted in bulk; existing ones are compared field by field and updated in place;
tasks no longer in the list are archived (history kept).  Milestones are matched to the
definition (same title, then the final one, then the same position) so a moved date keeps its
baseline and recorded progress stays.  Only steps that come from the plan file take part: a review's
follow-up step (or one the office added) is never matched to a sheet step and never archived
because the sheet lacks it.  A change against a decision taken in duban is held back as a conflict
unless the office accepted it (``duban.plans.decided``).  Links stop working where their task or
step went away or changed hands.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from definitions.schema import MilestoneDef, PlanDefinition, TaskDef
from duban.links import OWNER_ACTIONS
from duban.links import void as void_links
from duban.models import Milestone, Task, table_of
from duban.plans.decided import Decided
from duban.plans.diff import FIELD_LABELS, PERIOD_LABELS, SCHEDULE_LABELS, PlanDiff, TaskChange, show
from duban.plans.writes import bulk_update, event_row
from duban.values import chunks, jsonable
from duban.vocabulary import OPEN_STATES, EventKind, MilestoneOrigin, MilestoneState

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
    "ends_on",
)
# the diff names a reference by what it refers to
_LABEL_FIELD = {"owner_id": "owner", "lead_department_id": "lead_department", "supervisor_id": "supervisor", "project_id": "project"}
# changed columns that are not part of an event's data
_NOT_IN_EVENT = ("updated_at", "position", "archived_at", "owner_id", "acknowledged_at", "assigned_at", "announced_at")
# what a matched milestone's date did to the task's 完成时限 text (the final milestone's date)
_HELD = "held"  # a conflict not accepted: the text stays with the date
_AGREED = "agreed"  # the sheet now says duban's date: the text is recorded silently
_MILESTONE_COLUMNS = (
    Milestone.id,
    Milestone.task_id,
    Milestone.seq,
    Milestone.title,
    Milestone.due_date,
    Milestone.sheet_due_date,
    Milestone.origin,
    Milestone.due_text,
    Milestone.due_version,
    Milestone.is_final,
    Milestone.status,
    Milestone.completed_at,
    Milestone.submitted_at,
    Milestone.acknowledged_at,
)


@dataclass(frozen=True)
class Ids:
    """Database ids of what tasks refer to, by name."""

    departments: dict[str, int]
    people: dict[str, int]
    projects: dict[tuple[str, str], int]


def task_row(t: TaskDef, ids: Ids) -> dict[str, Any]:
    return {
        "title": t.title,
        "statement": t.statement,
        "done_criteria": t.done_criteria,
        "owner_id": ids.people[t.owner],
        "lead_department_id": ids.departments.get(t.lead_department) if t.lead_department else None,
        "supervisor_id": ids.people.get(t.supervisor) if t.supervisor else None,
        "partners": list(t.partners),
        "schedule": t.schedule,
        "period": t.period,
        "period_month": t.period_month,
        "deadline_text": t.deadline_text,
        "project_id": ids.projects[(t.system, t.project)],
        "position": t.position,
        "policy": dict(t.policy),
        "ends_on": t.ends_on,
    }


def milestone_row(m: MilestoneDef, task_id: int, now: dt.datetime) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "seq": m.seq,
        "title": m.title,
        "due_date": m.due,
        "baseline_due_date": m.due,
        "sheet_due_date": m.due,
        "origin": MilestoneOrigin.PLAN,
        "due_text": m.due_text,
        "due_version": 1,
        "is_final": m.is_final,
        "status": MilestoneState.ASSIGNED,
        "assigned_at": now,
    }


def _state_before_archiving(o: Any) -> MilestoneState:
    """Where an archived milestone was: its timestamps keep what had happened before."""
    if o.completed_at:
        return MilestoneState.DONE
    if o.submitted_at:
        return MilestoneState.SUBMITTED
    return MilestoneState.IN_PROGRESS if o.acknowledged_at else MilestoneState.ASSIGNED


def _match_milestones(defs: tuple[MilestoneDef, ...], old_ms: list[Any]) -> tuple[list[tuple[MilestoneDef, Any | None]], list[Any]]:
    """Pair each defined milestone with a stored one (or None: new); also return the stored ones left over.

    1) same title (non-empty) 2) the final deadline with the final one 3) same position."""
    remaining = list(old_ms)
    pairs: list[tuple[MilestoneDef, Any | None]] = []
    unmatched_defs: list[MilestoneDef] = []
    for m in defs:
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
    return sorted(pairs, key=lambda p: p[0].seq), remaining


@dataclass
class TaskSync:
    """One plan's task step: collects the writes, the diff lines and the events, then writes them.

    ``accept`` names the tasks whose conflicts the office accepted (``accept_all``: every one)."""

    session: Session
    pid: int
    ids: Ids
    diff: PlanDiff
    events: list[dict[str, Any]]
    actor: str
    now: dt.datetime
    accept: Collection[str] = ()
    accept_all: bool = False
    tz: dt.tzinfo = dt.UTC
    task_updates: list[dict[str, Any]] = field(default_factory=list)
    ms_updates: list[dict[str, Any]] = field(default_factory=list)
    ms_inserts: list[dict[str, Any]] = field(default_factory=list)
    conflicts: dict[str, TaskChange] = field(default_factory=dict)
    accepted: dict[str, TaskChange] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.person_names = {v: k for k, v in self.ids.people.items()}
        self.dept_names = {v: k for k, v in self.ids.departments.items()}
        self.project_names = {v: f"{k[0]} / {k[1]}" for k, v in self.ids.projects.items()}
        self.decided = Decided({}, {}, {}, self.tz)

    def event(self, task_id: int | None, kind: EventKind, data: dict[str, Any], milestone_id: int | None = None) -> None:
        self.events.append(event_row(self.pid, task_id, kind, data, actor=self.actor, at=self.now, milestone_id=milestone_id))

    def run(self, d: PlanDefinition) -> None:
        existing, ms_by_task = self._existing()
        if existing:
            self.decided = Decided.load(self.session, self.pid, self.tz)
        new_defs = [t for t in d.tasks if t.code not in existing]
        if new_defs:
            self._insert(new_defs)
        for t in d.tasks:
            old = existing.get(t.code)
            if old is not None:
                self._update(t, old, ms_by_task.get(old.id, []))
        wanted = {t.code for t in d.tasks}
        for code, old in existing.items():
            if code not in wanted and old.archived_at is None:
                self._archive(code, old, ms_by_task.get(old.id, []))
        self.diff.conflicts += self.conflicts.values()
        self.diff.accepted += self.accepted.values()
        if not self.accept_all:
            idle = [code for code in dict.fromkeys(self.accept) if code not in self.accepted]
            if idle:
                self.diff.warnings.append(f"--accept 指定的任务 {'、'.join(idle)} 没有与系统中已有决定冲突的变更，已忽略。")
        self._write()

    def _conflict(self, t: TaskDef, line: str) -> bool:
        """Note a change against a decision taken in duban; True when the office accepted it (apply it)."""
        taken = self.accept_all or t.code in self.accept
        into = self.accepted if taken else self.conflicts
        into.setdefault(t.code, TaskChange(t.code, t.title)).details.append(line)
        return taken

    def _existing(self) -> tuple[dict[str, Any], dict[int, list[Any]]]:
        """The plan's stored tasks by code, and their milestones by task id (in order)."""
        cols = [Task.id, Task.code, Task.archived_at, *(getattr(Task, f) for f in TASK_FIELDS)]
        existing = {r.code: r for r in self.session.execute(select(*cols).where(Task.plan_id == self.pid))}
        ms_by_task: dict[int, list[Any]] = defaultdict(list)
        if existing:
            for r in self.session.execute(
                select(*_MILESTONE_COLUMNS)
                .join(Task, Task.id == Milestone.task_id)
                .where(Task.plan_id == self.pid)
                .order_by(Milestone.task_id, Milestone.seq, Milestone.id)
            ):
                ms_by_task[r.task_id].append(r)
        return existing, ms_by_task

    def _insert(self, new_defs: list[TaskDef]) -> None:
        """New tasks, then their milestones."""
        now, session = self.now, self.session
        rows = [
            {"plan_id": self.pid, "code": t.code, "created_at": now, "updated_at": now, "assigned_at": now, **task_row(t, self.ids)}
            for t in new_defs
        ]
        # Core executemany (no RETURNING): far faster than the ORM bulk path for tens of thousands
        for chunk in chunks(rows, 10000):
            session.execute(table_of(Task).insert(), chunk)
        ids = dict(session.execute(select(Task.code, Task.id).where(Task.plan_id == self.pid)).all())
        ms_rows = [milestone_row(m, ids[t.code], now) for t in new_defs for m in t.milestones]
        for chunk in chunks(ms_rows, 20000):
            session.execute(table_of(Milestone).insert(), chunk)
        for t in new_defs:
            summary = f"责任人：{t.owner}；完成时限：{t.deadline_text}；里程碑 {len(t.milestones)} 个"
            self.diff.added.append(TaskChange(t.code, t.title, [summary]))
            self.event(
                ids[t.code], EventKind.TASK_CREATED, {"owner": t.owner, "deadline": t.deadline_text, "milestones": len(t.milestones)}
            )

    def _field_detail(self, f: str, o: Any, n: Any) -> str | None:
        """The diff line of one changed task field (None: a field the diff does not show)."""
        label = FIELD_LABELS.get(_LABEL_FIELD.get(f, f))
        if label is None:
            return None
        if f in ("statement", "done_criteria"):
            return f"{label}已修改"
        if f == "owner_id":
            return f"{label}：{show(self.person_names.get(o))} → {show(self.person_names.get(n))}（将向新责任人重新下达）"
        if f == "supervisor_id":
            shown = (self.person_names.get(o), self.person_names.get(n))
        elif f == "lead_department_id":
            shown = (self.dept_names.get(o), self.dept_names.get(n))
        elif f == "project_id":
            shown = (self.project_names.get(o), self.project_names.get(n))
        elif f == "schedule":
            shown = (SCHEDULE_LABELS.get(o, o), SCHEDULE_LABELS.get(n, n))
        elif f == "period":
            shown = (PERIOD_LABELS.get(o, o), PERIOD_LABELS.get(n, n))
        else:
            shown = (o, n)
        return f"{label}：{show(shown[0])} → {show(shown[1])}"

    def _update(self, t: TaskDef, old: Any, old_ms: list[Any]) -> None:
        """An existing task: changed fields, its milestones, restored if it was archived."""
        want = task_row(t, self.ids)
        if old.archived_at is not None and old.id in self.decided.archived and not self._restore_archived(t, old.id):
            self.diff.unchanged += 1  # archived by the office: the sheet listing it is not a decision to restore it
            return
        changes = {f: want[f] for f in TASK_FIELDS if getattr(old, f) != want[f]}
        if "owner_id" in changes and old.id in self.decided.owners and not self._owner_over_office(t, old):
            del changes["owner_id"]
        reassigned = "owner_id" in changes
        ms_details, final = self._sync_milestones(old.id, t, old_ms, reassigned=reassigned)
        # the 完成时限 text goes with the final date: held back with it, or recorded silently when
        # the sheet now says duban's date
        silent = {"deadline_text"} if final == _AGREED else set()
        if final == _HELD:
            changes.pop("deadline_text", None)
        fields = [f for f in changes if f not in silent]
        details = [line for f in fields if (line := self._field_detail(f, getattr(old, f), want[f])) is not None] + ms_details
        restored = old.archived_at is not None
        if restored:
            changes["archived_at"] = None
        if reassigned:
            # the new owner is announced the task (任务下达) afresh and acknowledges afresh
            changes.update(acknowledged_at=None, assigned_at=self.now, announced_at=None)
        if changes:
            changes["updated_at"] = self.now
            self.task_updates.append({"id": old.id, **changes})
        if reassigned:
            self.event(old.id, EventKind.OWNER_CHANGED, {"from": self.person_names.get(old.owner_id), "to": t.owner})
        data = {k: jsonable(v) for k, v in changes.items() if k not in _NOT_IN_EVENT and k not in silent}
        if restored:
            self.diff.restored.append(TaskChange(t.code, t.title, details))
            self.event(old.id, EventKind.TASK_RESTORED, data)
        elif details:
            self.diff.changed.append(TaskChange(t.code, t.title, details))
            if data:
                self.event(old.id, EventKind.TASK_UPDATED, data)
        else:
            self.diff.unchanged += 1

    def _restore_archived(self, t: TaskDef, task_id: int) -> bool:
        """A task the office archived, still in the sheet: restored only when the office accepts it."""
        if not (self.accept_all or t.code in self.accept):
            return False
        a = self.decided.archived[task_id]
        self.accepted.setdefault(t.code, TaskChange(t.code, t.title)).details.append(
            f"任务恢复：领导小组办公室已在督办系统中归档该任务（{a.actor}，{self.decided.day(a.at)}）"
        )
        return True

    def _owner_over_office(self, t: TaskDef, old: Any) -> bool:
        """The sheet names another owner than the office chose: an unchanged sheet (it still names
        the owner it named before) keeps the office's choice; a changed one is a conflict."""
        decision = self.decided.owners[old.id]
        if t.owner == decision.to:
            return False
        current = self.person_names.get(old.owner_id) or ""
        return self._conflict(t, f"责任人：表格为 {t.owner}，{self.decided.owner_decision(old.id, current)}")

    def _archive(self, code: str, old: Any, old_ms: list[Any]) -> None:
        """A task no longer in the list: archived, its open milestones too; history (done steps,
        evidence) kept."""
        self.task_updates.append({"id": old.id, "archived_at": self.now, "updated_at": self.now})
        for m in old_ms:
            if m.status not in (MilestoneState.DONE, MilestoneState.ARCHIVED):
                self.ms_updates.append({"id": m.id, "status": MilestoneState.ARCHIVED, "archived_at": self.now})
        kept = []
        if done := sum(1 for m in old_ms if m.status == MilestoneState.DONE):
            kept.append(f"已办结的里程碑 {done} 个仍为已办结")
        if evidence := self.decided.task_evidence.get(old.id, 0):
            kept.append(f"佐证材料 {evidence} 份保留")
        self.diff.archived.append(TaskChange(code, old.title, ["；".join(kept)] if kept else []))
        self.event(old.id, EventKind.TASK_ARCHIVED, {})

    def _sync_milestones(self, task_id: int, t: TaskDef, old_ms: list[Any], *, reassigned: bool) -> tuple[list[str], str | None]:
        """Match the task's plan steps to the definition; move dates (keeping the baseline).

        Returns the diff lines and what became of the final milestone's date (``_HELD``,
        ``_AGREED`` or None)."""
        details: list[str] = []
        final: str | None = None
        plan_ms = [o for o in old_ms if o.origin == MilestoneOrigin.PLAN]
        pairs, remaining = _match_milestones(t.milestones, plan_ms)
        for m, o in pairs:
            if o is None:
                label = m.title or f"第 {m.seq} 步"
                self.ms_inserts.append(milestone_row(m, task_id, self.now))
                details.append(f"新增里程碑「{label}」：{m.due.isoformat()}")
                self.event(task_id, EventKind.MILESTONE_ADDED, {"title": m.title, "due": m.due.isoformat()})
            else:
                outcome = self._update_milestone(task_id, t, m, o, details, reassigned=reassigned)
                final = outcome if m.is_final else final
        for o in remaining:
            self._remove_milestone(task_id, t, o, details)
        if reassigned:  # a review's follow-up step is acknowledged afresh by the new owner too
            for o in old_ms:
                if o.origin != MilestoneOrigin.PLAN and o.status in OPEN_STATES:
                    self.ms_updates.append(
                        {"id": o.id, "status": MilestoneState.ASSIGNED, "assigned_at": self.now, "acknowledged_at": None}
                    )
        return details, final

    def _remove_milestone(self, task_id: int, t: TaskDef, o: Any, details: list[str]) -> None:
        """A plan step the sheet no longer lists: archived, unless it is done, submitted or has
        evidence and the office did not accept the sheet over that."""
        if o.status == MilestoneState.ARCHIVED:
            return
        label = o.title or f"第 {o.seq} 步"
        data = {"title": o.title, "status_before": o.status}
        decision = self.decided.removal_decision(o)
        if decision is not None:
            if not self._conflict(t, f"里程碑「{label}」：表格中已删除，{decision}"):
                return
            data["sheet_over_decision"] = decision
        self.ms_updates.append({"id": o.id, "status": MilestoneState.ARCHIVED, "archived_at": self.now})
        details.append(f"里程碑「{label}」已从路线图中删除（归档）")
        self.event(task_id, EventKind.MILESTONE_ARCHIVED, data, milestone_id=o.id)

    def _update_milestone(self, task_id: int, t: TaskDef, m: MilestoneDef, o: Any, details: list[str], *, reassigned: bool) -> str | None:
        """A stored milestone matched to a defined one: its new date, title and position; restored or reset."""
        label = m.title or f"第 {m.seq} 步"
        upd: dict[str, Any] = {}
        outcome = self._milestone_date(task_id, t, m, o, upd, details)
        if o.title != m.title and o.title:
            details.append(f"里程碑名称：{o.title} → {m.title or '（空）'}")
        for attr, val in (("seq", m.seq), ("title", m.title), ("due_text", m.due_text), ("is_final", m.is_final)):
            if getattr(o, attr) != val and not (attr == "due_text" and outcome == _HELD):
                upd[attr] = val
        if o.status == MilestoneState.ARCHIVED:
            upd["status"] = _state_before_archiving(o)
            upd["archived_at"] = None
            details.append(f"里程碑「{label}」恢复")
            self.event(task_id, EventKind.MILESTONE_RESTORED, {"title": m.title, "status": upd["status"]}, milestone_id=o.id)
        elif reassigned and o.status in OPEN_STATES:
            # a new owner acknowledges afresh; progress reports stay in the audit trail
            upd["status"] = MilestoneState.ASSIGNED
            upd["assigned_at"] = self.now
            upd["acknowledged_at"] = None
        if upd:
            self.ms_updates.append({"id": o.id, **upd})
        return outcome

    def _milestone_date(self, task_id: int, t: TaskDef, m: MilestoneDef, o: Any, upd: dict[str, Any], details: list[str]) -> str | None:
        """The sheet's date against duban's: unchanged sheet → duban's date stays; changed sheet →
        applied when nothing was decided in duban, agreed when it says duban's date, else a conflict."""
        sheet_old = o.sheet_due_date or o.due_date
        if m.due == sheet_old:
            if o.sheet_due_date is None:
                upd["sheet_due_date"] = m.due
            return None
        if m.due == o.due_date:
            upd["sheet_due_date"] = m.due
            return _AGREED
        moved: dict[str, Any] = {"from": o.due_date.isoformat(), "to": m.due.isoformat(), "version": o.due_version + 1}
        decision = self.decided.date_decision(o, sheet_old)
        if decision is not None:
            what = "完成时间" if m.is_final else f"里程碑「{m.title or f'第 {m.seq} 步'}」时间"
            if not self._conflict(t, f"{what}：表格为 {m.due.isoformat()}，{decision}"):
                return _HELD
            moved["sheet_over_decision"] = decision
        upd.update(due_date=m.due, sheet_due_date=m.due, due_version=o.due_version + 1)
        details.append(f"里程碑「{m.title or f'第 {m.seq} 步'}」时间：{o.due_date.isoformat()} → {m.due.isoformat()}")
        self.event(task_id, EventKind.MILESTONE_DUE_CHANGED, moved, milestone_id=o.id)
        return None

    def _write(self) -> None:
        """The collected updates and inserts; then the links that must stop working."""
        session, now = self.session, self.now
        bulk_update(session, Task, self.task_updates)
        bulk_update(session, Milestone, self.ms_updates)
        for chunk in chunks(self.ms_inserts, 20000):
            session.execute(table_of(Milestone).insert(), chunk)
        # links stop working for a task handed to someone else, a task or step removed from the list
        reassigned: list[int] = [u["id"] for u in self.task_updates if "owner_id" in u]
        archived_tasks: list[int] = [u["id"] for u in self.task_updates if u.get("archived_at") is not None]
        archived_ms: list[int] = [u["id"] for u in self.ms_updates if u.get("status") == MilestoneState.ARCHIVED]
        for ids in chunks(reassigned, 5000):
            void_links(session, reason="任务已改由他人负责", now=now, task_ids=list(ids), actions=OWNER_ACTIONS)
        for ids in chunks(archived_tasks, 5000):
            void_links(session, reason="任务已从清单中删除", now=now, task_ids=list(ids))
        for ids in chunks(archived_ms, 5000):
            void_links(session, reason="里程碑已从路线图中删除", now=now, milestone_ids=list(ids))
