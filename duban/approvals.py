"""What a coordinator (领导小组办公室) decides from a link: the requests waiting for review, and the
decision on one — approve a completion (办结) or return it (退回), approve an extension or refuse it
(不予批准) — with the same audit trail and ledger items as the owner's actions (:mod:`duban.actions`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from duban import links as links_mod
from duban.action_common import (
    MAX_REASON,
    ActionError,
    Origin,
    Outcome,
    label,
    ledger_item,
    owner_info,
    requested_due,
    require_action,
    text_field,
    use_link,
)
from duban.db import rowcount
from duban.links import Resolved
from duban.models import Event, Link, Milestone, Person, Request, Task
from duban.roles import who_decides
from duban.vocabulary import OPEN_STATES, EventKind, LinkAction, MessageKind, MilestoneState, RequestKind, RequestStatus


def request_for(session: Session, r: Resolved, request_id: int | None = None, *, for_update: bool = False) -> Request:
    """The request a review link (its own) or a queue link (any of its plan's) names."""
    if r.link.action == LinkAction.REVIEW:
        req = r.request
        if req is None or (request_id is not None and request_id != req.id):
            raise ActionError("此链接不能办理该申请。")
        if for_update:
            session.refresh(req, with_for_update=True)
        return req
    if r.link.action != LinkAction.QUEUE or request_id is None:
        raise ActionError("此链接不能办理该申请。")
    q = select(Request).where(Request.id == request_id, Request.plan_id == r.link.plan_id)
    req = session.scalars(q.with_for_update() if for_update else q).first()
    if req is None:
        raise ActionError("没有找到该申请，它可能不属于您审核的方案。")
    return req


@dataclass(frozen=True)
class _Deciding:
    """A request being decided: what each outcome below needs to record and tell."""

    session: Session
    person: Person  # who decides (a link's holder, or the person of a signed-in office account)
    link: Link | None  # the link it was decided from (None: the dashboard)
    origin: Origin
    now: dt.datetime
    today: dt.date
    req: Request
    task: Task
    milestone: Milestone
    note: str
    new_due: dt.date | None = None  # an extension approved to another date than asked

    def record(self, kind: EventKind, data: dict[str, Any]) -> Event:
        via = {"link": self.link.id, "action": self.link.action} if self.link is not None else {"link": None, "action": "dashboard"}
        ev = Event(
            plan_id=self.req.plan_id,
            task_id=self.task.id,
            milestone_id=self.milestone.id,
            at=self.now,
            actor=self.person.name,
            channel=self.origin.channel,
            kind=kind,
            data={"request": self.req.id, **data, **via, **self.origin.trail()},
        )
        self.session.add(ev)
        self.session.flush()
        return ev

    def tell_owner(self, kind: MessageKind, data: dict[str, Any] | None = None, *, due: dt.date | None = None) -> None:
        base = {"request": self.req.id, "reviewer": self.person.name, "reason": self.note[:500]}
        ledger_item(
            self.session,
            key=f"{kind}:r{self.req.id}",
            r_plan=self.req.plan_id,
            task=self.task,
            milestone=self.milestone,
            recipient=self.task.owner_id,
            kind=kind,
            today=self.today,
            now=self.now,
            due=due,
            data={**base, **(data or {})},
        )


def _approve_completion(d: _Deciding) -> tuple[Event, str]:
    m = d.milestone
    m.status, m.completed_at = MilestoneState.DONE, d.now
    ev = d.record(EventKind.COMPLETION_APPROVED, {"note": d.note, "owner": owner_info(d.session, d.task)["owner"]})
    links_mod.void(d.session, reason="里程碑已办结", now=d.now, milestone_ids=[m.id], actions=links_mod.OWNER_ACTIONS)
    d.tell_owner(MessageKind.APPROVED)
    return ev, f"已审核通过，里程碑「{label(m)}」办结。"


def _return_completion(d: _Deciding) -> tuple[Event, str]:
    m = d.milestone
    m.status, m.submitted_at = MilestoneState.IN_PROGRESS, None
    ev = d.record(EventKind.COMPLETION_RETURNED, {"reason": d.note})
    d.tell_owner(MessageKind.RETURNED)
    return ev, f"已退回，退回原因已通知责任人；里程碑「{label(m)}」恢复为办理中，提醒将继续。"


def _approve_extension(d: _Deciding) -> tuple[Event, str]:
    m = d.milestone
    if m.status not in OPEN_STATES:
        raise ActionError("该里程碑已办结或已提交，无需再调整完成时间。")
    old, asked = m.due_date, requested_due(d.req)
    new = d.new_due or asked
    if new <= old:
        raise ActionError(f"批准延至的日期应晚于目前的完成时间（{old.isoformat()}），请重新选择。")
    m.due_date, m.due_version = new, m.due_version + 1
    ev = d.record(
        EventKind.EXTENSION_APPROVED,
        {"from": old.isoformat(), "to": new.isoformat(), "asked": asked.isoformat(), "version": m.due_version, "note": d.note},
    )
    d.tell_owner(
        MessageKind.EXTENSION_DECIDED,
        due=m.due_date,
        data={
            "approved": True,
            "old_due": old.isoformat(),
            "new_due": m.due_date.isoformat(),
            "asked": asked.isoformat(),
            "baseline": m.baseline_due_date.isoformat(),
        },
    )
    other = f"，申请延至 {asked.isoformat()}" if new != asked else ""
    return ev, f"已批准延期：里程碑「{label(m)}」的完成时间调整为 {m.due_date.isoformat()}（原定 {old.isoformat()}{other}）。"


def _refuse_extension(d: _Deciding) -> tuple[Event, str]:
    asked = requested_due(d.req).isoformat()
    ev = d.record(EventKind.EXTENSION_REFUSED, {"reason": d.note, "to": asked})
    d.tell_owner(MessageKind.EXTENSION_DECIDED, data={"approved": False, "new_due": asked})
    return ev, f"已不予批准，理由已通知责任人；完成时间仍为 {d.milestone.due_date.isoformat()}。"


# (request kind, decision) → what deciding it does, the request's new status, and the name of the note
_OUTCOMES: dict[tuple[str, str], tuple[Callable[[_Deciding], tuple[Event, str]], RequestStatus, str]] = {
    (RequestKind.COMPLETION, "approve"): (_approve_completion, RequestStatus.APPROVED, "审核意见"),
    (RequestKind.COMPLETION, "return"): (_return_completion, RequestStatus.RETURNED, "退回原因"),
    (RequestKind.EXTENSION, "approve"): (_approve_extension, RequestStatus.APPROVED, "审核意见"),
    (RequestKind.EXTENSION, "refuse"): (_refuse_extension, RequestStatus.REFUSED, "不予批准的理由"),
}


def decide(
    session: Session,
    r: Resolved,
    origin: Origin,
    *,
    now: dt.datetime,
    today: dt.date,
    request_id: int | None,
    decision: str,
    note: str = "",
    new_due: dt.date | None = None,
) -> Outcome:
    """审核 from a link: approve (办结 / 批准延期, ``new_due``: to another date than asked), return a
    completion (退回, with a reason that reaches the owner, whose reminders resume) or refuse an
    extension (不予批准, with a reason)."""
    require_action(r, LinkAction.REVIEW, LinkAction.QUEUE)
    req = request_for(session, r, request_id, for_update=True)
    out = decide_as(session, r.person, origin, now=now, today=today, req=req, decision=decision, note=note, new_due=new_due, link=r.link)
    use_link(session, r, now)
    return out


def decide_as(
    session: Session,
    person: Person,
    origin: Origin,
    *,
    now: dt.datetime,
    today: dt.date,
    req: Request,
    decision: str,
    note: str = "",
    new_due: dt.date | None = None,
    link: Link | None = None,
) -> Outcome:
    """``person`` decides ``req`` (locked by the caller): the rules of every way of deciding — a
    link (:func:`decide`) or the dashboard (:mod:`duban.batch_decisions`)."""
    outcome = _OUTCOMES.get((req.kind, decision))
    if outcome is None:
        raise ActionError("请选择审核结果。")
    apply, status, what = outcome
    _check_undecided(session, person.id, req)
    note = text_field(note, what=what, required=decision != "approve", limit=MAX_REASON)
    task = session.get(Task, req.task_id)
    if task is None:
        raise ActionError("没有找到该申请对应的任务。")
    m = session.get(Milestone, req.milestone_id) if req.milestone_id else None
    _mark_decided(session, person.id, req, status=status, note=note, now=now)
    if req.kind == RequestKind.COMPLETION and (m is None or m.status != MilestoneState.SUBMITTED):
        raise ActionError("该里程碑目前不在待审核状态，无法审核。")
    if m is None:
        raise ActionError("没有找到该申请对应的里程碑。")
    deciding = _Deciding(
        session, person, link, origin, now, today, req, task, m, note, new_due if req.kind == RequestKind.EXTENSION else None
    )
    ev, message = apply(deciding)
    return Outcome(message, notify={task.owner_id}, request_id=req.id, event_id=ev.id)


def decided_already(session: Session, req: Request) -> str:
    """Who decided ``req`` and when (Chinese), for a request no longer pending."""
    who = session.get(Person, req.decided_by_id) if req.decided_by_id else None
    by = f"由{who.name}" if who else ""
    return f"该申请已于 {links_mod.local_time(req.decided_at)} {by}处理（{REQUEST_STATUS.get(req.status, req.status)}），无需重复审核。"


def _check_undecided(session: Session, person_id: int, req: Request) -> None:
    if req.status != RequestStatus.PENDING:
        raise ActionError(decided_already(session, req))
    if (why := decider_refusal(session, person_id, req)) is not None:
        raise ActionError(why)


def decider_refusal(session: Session, person_id: int, req: Request) -> str | None:
    """Why ``person_id`` may not decide ``req`` (Chinese), or None.  Nobody decides what they
    asked for or a request about a task they own; the rest are decided by the request's
    reviewers (the office, else the leading group: ``links.reviewers``)."""
    if req.person_id == person_id:
        return "不能审核自己提交的申请。"
    task = session.get(Task, req.task_id)
    excluded = {req.person_id} | ({task.owner_id} if task is not None else set())
    if person_id in excluded:
        return "不能审核自己负责的任务的申请。"
    if person_id not in links_mod.reviewers(session, req.plan_id, exclude=excluded):
        return f"该申请由{who_decides(session, req.plan_id, excluded) or '领导小组办公室'}审核，您不能审核。"
    return None


def _mark_decided(session: Session, person_id: int, req: Request, *, status: RequestStatus, note: str, now: dt.datetime) -> None:
    """The request's new status, written only if nobody decided it meanwhile."""
    done = rowcount(
        session.execute(
            update(Request)
            .where(Request.id == req.id, Request.status == RequestStatus.PENDING)
            .values(status=status, decided_by_id=person_id, decided_at=now, decision_note=note)
            .execution_options(synchronize_session=False)
        )
    )
    if done != 1:
        raise ActionError("该申请刚刚已被处理，无需重复审核。")
    req.status, req.decided_by_id, req.decided_at, req.decision_note = status, person_id, now, note


REQUEST_STATUS: dict[str, str] = {
    RequestStatus.PENDING: "待审核",
    RequestStatus.APPROVED: "已通过",
    RequestStatus.RETURNED: "已退回",
    RequestStatus.REFUSED: "不予批准",
    RequestStatus.WITHDRAWN: "已撤回",
}
