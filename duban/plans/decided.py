"""What was decided in duban about a plan's milestones, which a re-import must not silently undo.

A re-import compares the plan file with what the file said at the last import
(``milestones.sheet_due_date``), not with the current date: a date moved in duban (an approved
extension) stays when the sheet did not change.  When the sheet did change against a decision —
an approved extension, a step already done, submitted or with evidence — the change is a
*conflict*: held back and shown with what duban decided, who and when, until the office accepts
the sheet (``duban import --accept CODE`` / ``--accept-sheet``).

Loaded once per import, one query each (plans with tens of thousands of tasks): the latest approved
extension of every milestone and the evidence counts per task and milestone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from duban.models import Event, Evidence
from duban.values import local_date
from duban.vocabulary import EventKind, MilestoneState


@dataclass(frozen=True)
class Approval:
    """The latest approved extension of a milestone: the date it set, who approved it and when."""

    to: str  # ISO date
    actor: str
    at: dt.datetime


@dataclass(frozen=True)
class Decided:
    """A plan's decisions, by milestone id (and evidence also by task id)."""

    approvals: dict[int, Approval]
    evidence: dict[int, int]
    task_evidence: dict[int, int]
    tz: dt.tzinfo
    # the office's edits on the dashboard (duban.office_edits): date moves by milestone id, and by
    # task id the reassignments still in force (``to``: the owner the sheet named before) and archivings
    moves: dict[int, Approval] = field(default_factory=dict)
    owners: dict[int, Approval] = field(default_factory=dict)
    archived: dict[int, Approval] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, plan_id: int, tz: dt.tzinfo) -> Decided:
        approvals: dict[int, Approval] = {}
        for mid, actor, at, data in session.execute(
            select(Event.milestone_id, Event.actor, Event.at, Event.data)
            .where(Event.plan_id == plan_id, Event.kind == EventKind.EXTENSION_APPROVED, Event.milestone_id.is_not(None))
            .order_by(Event.id)
        ):
            approvals[mid] = Approval(str((data or {}).get("to", "")), actor, at)  # the last one wins
        evidence: dict[int, int] = {}
        task_evidence: dict[int, int] = {}
        for tid, mid, n in session.execute(
            select(Evidence.task_id, Evidence.milestone_id, func.count())
            .where(Evidence.plan_id == plan_id)
            .group_by(Evidence.task_id, Evidence.milestone_id)
        ):
            task_evidence[tid] = task_evidence.get(tid, 0) + n
            if mid is not None:
                evidence[mid] = n
        return cls(approvals, evidence, task_evidence, tz, **_office_decisions(session, plan_id))

    def day(self, at: dt.datetime | None) -> str:
        day = local_date(at, self.tz)
        return day.isoformat() if day else ""

    def date_decision(self, o: Any, sheet_old: dt.date) -> str | None:
        """What duban decided about stored milestone ``o``'s date, in the diff's words; None when
        nothing was (its date is still the sheet's old date and it is not done)."""
        due = o.due_date.isoformat()
        if o.due_date != sheet_old:
            a = self.approvals.get(o.id)
            if a is not None and a.to == due:
                return f"督办系统中已批准延期至 {due}（{a.actor}，{self.day(a.at)}）"
            moved = self.moves.get(o.id)
            if moved is not None and moved.to == due:
                return f"领导小组办公室已在督办系统中将完成时间调整为 {due}（{moved.actor}，{self.day(moved.at)}）"
            return f"督办系统中的完成时间已调整为 {due}（上次导入时表格为 {sheet_old.isoformat()}）"
        if o.status == MilestoneState.DONE:
            when = f"已于 {self.day(o.completed_at)} 办结" if o.completed_at else "已办结"
            return f"该里程碑{when}（原定 {due}）"
        return None

    def removal_decision(self, o: Any) -> str | None:
        """Why stored milestone ``o`` must not be archived silently (done, submitted, with
        evidence), in the diff's words; None when nothing stands in the way."""
        parts = []
        if o.status == MilestoneState.DONE:
            parts.append(f"已于 {self.day(o.completed_at)} 办结" if o.completed_at else "已办结")
        elif o.status == MilestoneState.SUBMITTED:
            parts.append(f"已于 {self.day(o.submitted_at)} 提交办结，等待审核" if o.submitted_at else "已提交办结，等待审核")
        if n := self.evidence.get(o.id, 0):
            parts.append(f"已有佐证材料 {n} 份")
        return "该里程碑" + "，".join(parts) if parts else None

    def owner_decision(self, task_id: int, current: str) -> str:
        """The office's reassignment of a task, in the diff's words."""
        a = self.owners[task_id]
        return f"领导小组办公室已在督办系统中改由 {current} 负责（{a.actor}，{self.day(a.at)}）"


_OWNER_KINDS = (EventKind.OWNER_CHANGED, EventKind.OFFICE_REASSIGNED)
_ARCHIVE_KINDS = (EventKind.TASK_ARCHIVED, EventKind.TASK_RESTORED, EventKind.OFFICE_ARCHIVED)


def _office_decisions(session: Session, plan_id: int) -> dict[str, dict[int, Approval]]:
    """The office's date moves, and the reassignments and archivings no later import overrode
    (the latest event of their kind per task is the office's)."""
    moves: dict[int, Approval] = {}
    owners: dict[int, Approval | None] = {}
    archived: dict[int, Approval | None] = {}
    kinds = (EventKind.OFFICE_DUE_MOVED, *_OWNER_KINDS, *_ARCHIVE_KINDS)
    for tid, mid, kind, actor, at, stored in session.execute(
        select(Event.task_id, Event.milestone_id, Event.kind, Event.actor, Event.at, Event.data)
        .where(Event.plan_id == plan_id, Event.kind.in_(kinds), Event.task_id.is_not(None))
        .order_by(Event.id)
    ):
        data = stored or {}
        if kind == EventKind.OFFICE_DUE_MOVED and mid is not None:
            moves[mid] = Approval(str(data.get("to", "")), actor, at)
        elif kind in _OWNER_KINDS:
            owners[tid] = Approval(str(data.get("sheet_owner") or ""), actor, at) if kind == EventKind.OFFICE_REASSIGNED else None
        else:
            archived[tid] = Approval("", actor, at) if kind == EventKind.OFFICE_ARCHIVED else None
    return {
        "moves": moves,
        "owners": {k: v for k, v in owners.items() if v is not None},
        "archived": {k: v for k, v in archived.items() if v is not None},
    }
