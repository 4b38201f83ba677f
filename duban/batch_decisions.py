"""Several requests decided at once by a signed-in office member (the dashboard's 批量审核):
every item through :func:`duban.approvals.decide_as` (the same rules as a link: nobody decides
what they asked for or a task they own), all in the caller's one transaction.

An item decided meanwhile by someone else, or that the rules refuse, is reported and left out
(its savepoint rolled back); the others are saved.  The owners are told as from a link."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.action_common import ActionError, Origin
from duban.approvals import decide_as, decided_already
from duban.models import Person, Request, Task
from duban.vocabulary import RequestKind, RequestStatus

APPROVE, RETURN = "approve", "return"


@dataclass(frozen=True)
class BatchItem:
    request_id: int
    new_due: dt.date | None = None  # an extension approved to another date than asked


@dataclass
class Skipped:
    request_id: int
    what: str  # "任务 T01 …" (empty when the request is not found)
    reason: str


@dataclass
class BatchResult:
    approved: list[str] = field(default_factory=list)  # one message per item saved
    returned: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notify: set[int] = field(default_factory=set)

    @property
    def summary(self) -> str:
        parts = [f"已批准 {len(self.approved)} 项", f"已退回 {len(self.returned)} 项"]
        if self.skipped:
            parts.append(f"未处理 {len(self.skipped)} 项")
        return "，".join(parts)


def decide_batch(
    session: Session,
    person: Person,
    origin: Origin,
    *,
    plan_ids: Collection[int],
    items: Sequence[BatchItem],
    decision: str,
    note: str,
    now: dt.datetime,
    today: dt.date,
) -> BatchResult:
    """批准 (completions approved, extensions approved to the asked date or ``new_due``) or 退回
    (completions returned, extensions refused; ``note``, the reason, is required) for each item of
    ``plan_ids``.  Never commits."""
    if decision not in (APPROVE, RETURN):
        raise ActionError("请选择批准或退回。")
    if decision == RETURN and not note.strip():
        raise ActionError("退回原因：请填写退回（不予批准）的原因，将通知各责任人。")
    if not items:
        raise ActionError("请至少选择一项申请。")
    result = BatchResult()
    for item in items:
        req = session.scalars(select(Request).where(Request.id == item.request_id).with_for_update()).first()
        if req is None or req.plan_id not in plan_ids:
            result.skipped.append(Skipped(item.request_id, "", "没有找到该申请，它可能不属于您审核的方案。"))
            continue
        what = _what(session, req)
        if req.status != RequestStatus.PENDING:
            result.skipped.append(Skipped(req.id, what, decided_already(session, req)))
            continue
        one = decision if decision == APPROVE or req.kind == RequestKind.COMPLETION else "refuse"
        try:
            with session.begin_nested():
                out = decide_as(session, person, origin, now=now, today=today, req=req, decision=one, note=note, new_due=item.new_due)
        except ActionError as err:
            session.refresh(req)
            result.skipped.append(Skipped(req.id, what, str(err)))
            continue
        (result.approved if decision == APPROVE else result.returned).append(f"{what}：{out.message}")
        result.notify |= out.notify
    return result


def _what(session: Session, req: Request) -> str:
    task = session.get(Task, req.task_id)
    return f"{RequestKind(req.kind).label} · 任务 {task.code} {task.title}" if task is not None else RequestKind(req.kind).label
