"""What an owner or a coordinator does from a link, as store-level functions.

Each function takes a session (the caller owns the transaction), a resolved link
(:func:`duban.links.resolve`, locked ``for_update``) and the user's input; it checks the
milestone's state, changes it, writes the audit trail (who, when, which link, from which
address and agent), requests and evidence, and writes what must be told to someone into the
notification ledger in the same transaction.  Nothing here knows HTTP; a refusal is an
:class:`ActionError` with a Chinese message the page shows as is.

Life of a milestone (DESIGN.md): assigned --ack--> in_progress --submit--> submitted
--approve--> done, or --return--> in_progress; an extension moves the due date (the baseline
stays) once approved.  A plan with approval switched off goes from submit straight to done.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from duban import links as links_mod
from duban.db import rowcount
from duban.evidence import StoredFile, add_evidence
from duban.links import Resolved
from duban.models import Department, Event, Link, Milestone, Notification, Person, Request, Task
from duban.roles import holder_refusal, on_line, plan_roles
from duban.rules.batching import next_batch_time, parse_batch_times
from duban.rules.policy import effective_policy
from duban.values import clean_text
from duban.vocabulary import (
    OPEN_STATES,
    EventKind,
    LedgerStatus,
    LinkAction,
    MessageKind,
    MilestoneState,
    PlanRoleKind,
    RequestKind,
    RequestStatus,
)

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")  # the institution's zone when a caller gives none (as duban.links.local_time)

MAX_TEXT = 5000
MAX_REASON = 1000
# approval is required and nobody but the one who asks could approve (duban.roles.reviewers)
NO_REVIEWER = (
    "本方案要求办结审核，但目前没有可以审核您申请的人员（领导小组办公室、领导小组均无其他成员）。"
    "本次提交未被受理，请联系领导小组办公室在方案中增补审核人员后再提交。"
)


class ActionError(ValueError):
    """The action cannot be done (the message, in Chinese, says why and what to do)."""


@dataclass(frozen=True)
class Origin:
    """Where an action came from: the audit trail keeps it."""

    ip: str | None = None
    user_agent: str | None = None
    channel: str = "link"


@dataclass
class Outcome:
    """What happened: the result page's message, and who has news waiting in the ledger."""

    message: str
    notify: set[int] = field(default_factory=set)
    request_id: int | None = None
    event_id: int | None = None


def text_field(value: str | None, *, what: str, required: bool = True, limit: int = MAX_TEXT) -> str:
    return clean_text(value, what=what, required=required, limit=limit, error=ActionError)


def record_event(
    session: Session,
    r: Resolved,
    kind: str,
    data: dict[str, Any],
    origin: Origin,
    now: dt.datetime,
    *,
    milestone_id: int | None = None,
    task_id: int | None = None,
) -> Event:
    ev = Event(
        plan_id=r.link.plan_id,
        task_id=task_id if task_id is not None else r.link.task_id,
        milestone_id=milestone_id if milestone_id is not None else r.link.milestone_id,
        at=now,
        actor=r.person.name,
        channel=origin.channel,
        kind=kind,
        data={**data, "link": r.link.id, "action": r.link.action, "ip": origin.ip or "", "agent": (origin.user_agent or "")[:300]},
    )
    session.add(ev)
    session.flush()
    return ev


def use_link(session: Session, r: Resolved, now: dt.datetime) -> None:
    """Mark the link used (once: a second submission of the same link finds it used)."""
    if r.link.action in links_mod.REUSABLE_ACTIONS:
        return
    done = rowcount(
        session.execute(
            update(Link)
            .where(Link.id == r.link.id, Link.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    if done != 1:
        raise ActionError("该链接刚刚已被使用，请勿重复提交。")
    set_committed_value(r.link, "used_at", now)  # already written: no second UPDATE at flush


def _evidence(
    session: Session,
    r: Resolved,
    ev: Event,
    urls: Sequence[str],
    files: Sequence[StoredFile],
    *,
    milestone_id: int | None,
    request_id: int | None,
    now: dt.datetime,
) -> None:
    add_evidence(
        session,
        list(urls),
        list(files),
        plan_id=r.link.plan_id,
        task_id=_task(r).id,
        milestone_id=milestone_id,
        request_id=request_id,
        event_id=ev.id,
        person_id=r.person.id,
        created_at=now,
    )


def _acknowledge(session: Session, task: Task, now: dt.datetime) -> bool:
    """The task counts as acknowledged (签收) from the first thing its owner does with it."""
    changed = False
    if task.acknowledged_at is None:
        task.acknowledged_at = now
        changed = True
    for m in session.scalars(select(Milestone).where(Milestone.task_id == task.id, Milestone.status == MilestoneState.ASSIGNED)):
        m.status = MilestoneState.IN_PROGRESS
        m.acknowledged_at = now
        changed = True
    return changed


def _task(r: Resolved) -> Task:
    """The task a link names (every link but a queue or review link names one)."""
    if r.task is None:
        raise ActionError("此链接没有对应的任务。")
    return r.task


def requested_due(req: Request) -> dt.date:
    """The date an extension request asks for (every extension request has one)."""
    if req.new_due_date is None:
        raise ActionError("该延期申请没有申请延至的日期。")
    return req.new_due_date


def require_action(r: Resolved, *actions: str) -> None:
    if r.link.action not in actions:
        raise ActionError("此链接不能办理该事项。")


def _open_milestone(r: Resolved) -> Milestone:
    m = r.milestone
    if m is None:
        raise ActionError("此链接没有对应的里程碑。")
    if m.status == MilestoneState.SUBMITTED:
        raise ActionError(f"里程碑「{label(m)}」已于 {links_mod.local_time(m.submitted_at)} 提交办结，正在等待审核，无需重复提交。")
    if m.status not in OPEN_STATES:
        raise ActionError(f"里程碑「{label(m)}」已办结或已归档，无需再办理。")
    return m


def label(m: Milestone | Row[Any] | None) -> str:
    """A milestone's name (``m``: a ``Milestone`` or a Core row with its title, is_final and seq)."""
    if m is None:
        return ""
    return m.title or ("完成全部任务" if m.is_final else f"第 {m.seq} 步")


def owner_info(session: Session, task: Task) -> dict[str, Any]:
    owner = session.get(Person, task.owner_id)
    dept = session.get(Department, task.lead_department_id) if task.lead_department_id else None
    return {"owner": owner.name if owner else "", "department": dept.name if dept else None}


def ledger_item(
    session: Session,
    *,
    key: str,
    r_plan: int,
    task: Task,
    milestone: Milestone | None,
    recipient: int,
    kind: str,
    today: dt.date,
    now: dt.datetime,
    data: dict[str, Any],
    due: dt.date | None = None,
    checked: bool = False,
    not_before: dt.datetime | None = None,
) -> bool:
    """One ledger item (a message to send), unless its key is already there (``checked``: the
    caller looked for it already); ``not_before``: held back until then (the office's batch time)."""
    if not checked and session.scalar(select(Notification.id).where(Notification.key == key)) is not None:
        return False
    session.add(
        Notification(
            key=key,
            plan_id=r_plan,
            task_id=task.id,
            milestone_id=milestone.id if milestone else None,
            recipient_id=recipient,
            kind=kind,
            level=0,
            due_date=due if due is not None else (milestone.due_date if milestone else None),
            days=0,
            decided_on=today,
            created_at=now,
            status=LedgerStatus.PENDING,
            data={"code": task.code, "title": task.title, "milestone": label(milestone), **data},
            not_before=not_before,
        )
    )
    return True


# ---------------------------------------------------------------------------------------------
# Owner actions


def acknowledge(session: Session, r: Resolved, origin: Origin, *, now: dt.datetime) -> Outcome:
    """签收: the owner confirms they have the task."""
    require_action(r, LinkAction.ACK)
    task = _task(r)
    if task.acknowledged_at is not None:
        raise ActionError(f"该任务已于 {links_mod.local_time(task.acknowledged_at)} 签收，无需重复签收。")
    _acknowledge(session, task, now)
    ev = record_event(session, r, EventKind.ACKNOWLEDGED, {}, origin, now)
    use_link(session, r, now)
    return Outcome("已签收。请按任务书和时间表推进，按期反馈进展；完成后可通过通知中的链接提交办结。", event_id=ev.id)


def report_progress(
    session: Session,
    r: Resolved,
    origin: Origin,
    *,
    now: dt.datetime,
    text: str,
    urls: Sequence[str] = (),
    files: Sequence[StoredFile] = (),
) -> Outcome:
    """反馈: a progress report (text, optional evidence); also counts as 签收."""
    require_action(r, LinkAction.PROGRESS)
    text = text_field(text, what="工作进展")
    acked = _acknowledge(session, _task(r), now)
    ev = record_event(
        session, r, EventKind.PROGRESS_REPORTED, {"text": text, "acknowledged": acked, "urls": len(urls), "files": len(files)}, origin, now
    )
    _evidence(session, r, ev, urls, files, milestone_id=r.link.milestone_id, request_id=None, now=now)
    use_link(session, r, now)
    return Outcome("进展已反馈，感谢您的及时报送。", event_id=ev.id)


def submit_done(
    session: Session,
    r: Resolved,
    origin: Origin,
    *,
    now: dt.datetime,
    today: dt.date,
    note: str,
    urls: Sequence[str] = (),
    files: Sequence[StoredFile] = (),
    tz: Any = None,
) -> Outcome:
    """提交办结 with 佐证材料: waits for a reviewer (审核), or is done at once where the plan
    switched approval off.  Nobody approves their own: the office, or the leading group when the
    office has nobody else, decides; with nobody to decide, the submission is refused."""
    require_action(r, LinkAction.DONE)
    task = _task(r)
    m = _open_milestone(r)
    note = text_field(note, what="办结说明（完成情况及佐证材料说明）")
    reviewers = links_mod.reviewers(session, r.link.plan_id, exclude=r.person.id)
    if r.plan.approval_required and not reviewers:
        raise ActionError(NO_REVIEWER)
    with session.no_autoflush:  # reads first; the changes then go out together at the next flush
        # a pending extension of this step is moot once it is submitted
        moot = list(
            session.scalars(
                select(Request).where(
                    Request.milestone_id == m.id, Request.kind == RequestKind.EXTENSION, Request.status == RequestStatus.PENDING
                )
            )
        )
        _acknowledge(session, task, now)
    for req in moot:
        req.status, req.decided_at, req.decision_note = RequestStatus.WITHDRAWN, now, "已提交办结，延期申请自动撤回"
    evidence_count = {"urls": len(urls), "files": len(files)}
    if not r.plan.approval_required:
        m.status, m.submitted_at, m.completed_at = MilestoneState.DONE, now, now
        ev = record_event(session, r, EventKind.MILESTONE_DONE, {"note": note, "approval": "not_required", **evidence_count}, origin, now)
        _evidence(session, r, ev, urls, files, milestone_id=m.id, request_id=None, now=now)
        use_link(session, r, now)
        links_mod.void(session, reason="里程碑已办结", now=now, milestone_ids=[m.id])
        return Outcome(f"里程碑「{label(m)}」已办结。感谢您的辛勤工作！", event_id=ev.id)
    m.status, m.submitted_at = MilestoneState.SUBMITTED, now
    req = Request(
        plan_id=r.link.plan_id,
        task_id=task.id,
        milestone_id=m.id,
        person_id=r.person.id,
        kind=RequestKind.COMPLETION,
        status=RequestStatus.PENDING,
        note=note,
        created_at=now,
        decision_note="",
    )
    session.add(req)
    session.flush()
    ev = record_event(session, r, EventKind.COMPLETION_SUBMITTED, {"note": note, "request": req.id, **evidence_count}, origin, now)
    _evidence(session, r, ev, urls, files, milestone_id=m.id, request_id=req.id, now=now)
    use_link(session, r, now)
    notify = _ask_reviewers(session, r, req, m, reviewers, today=today, now=now, tz=tz, extra={"note": note[:200]})
    return Outcome("已提交办结，等待领导小组办公室审核。审核结果将通过消息通知您。", notify=notify, request_id=req.id, event_id=ev.id)


def request_extension(
    session: Session,
    r: Resolved,
    origin: Origin,
    *,
    now: dt.datetime,
    today: dt.date,
    new_due: dt.date | None,
    reason: str,
    tz: Any = None,
) -> Outcome:
    """延期申请: a new date and a reason, for a reviewer to approve or refuse."""
    require_action(r, LinkAction.EXTEND)
    task = _task(r)
    m = _open_milestone(r)
    if new_due is None:
        raise ActionError("请选择申请延期到的日期。")
    if new_due <= m.due_date:
        raise ActionError(f"申请的新完成时间须晚于目前的完成时间 {m.due_date.isoformat()}。")
    if new_due < today:
        raise ActionError("申请的新完成时间不能早于今天。")
    if new_due > m.due_date + dt.timedelta(days=3 * 366):
        raise ActionError("申请延期的时间过长，请与领导小组办公室沟通后调整任务时间表。")
    reason = text_field(reason, what="延期理由", limit=MAX_REASON)
    pending = session.scalar(
        select(Request).where(Request.milestone_id == m.id, Request.kind == RequestKind.EXTENSION, Request.status == RequestStatus.PENDING)
    )
    if pending is not None:
        raise ActionError(f"该里程碑已有一项延期申请（延至 {requested_due(pending).isoformat()}）正在审批中，请等待审批结果。")
    reviewers = links_mod.reviewers(session, r.link.plan_id, exclude=r.person.id)
    if not reviewers:
        raise ActionError("本方案尚未设置领导小组办公室人员，无法在线审批延期，请直接与牵头部门或领导小组联系。")
    _acknowledge(session, task, now)
    req = Request(
        plan_id=r.link.plan_id,
        task_id=task.id,
        milestone_id=m.id,
        person_id=r.person.id,
        kind=RequestKind.EXTENSION,
        status=RequestStatus.PENDING,
        note=reason,
        new_due_date=new_due,
        created_at=now,
        decision_note="",
    )
    session.add(req)
    session.flush()
    ev = record_event(
        session,
        r,
        EventKind.EXTENSION_REQUESTED,
        {"reason": reason, "from": m.due_date.isoformat(), "to": new_due.isoformat(), "request": req.id},
        origin,
        now,
    )
    use_link(session, r, now)
    notify = _ask_reviewers(
        session,
        r,
        req,
        m,
        reviewers,
        today=today,
        now=now,
        tz=tz,
        extra={"note": reason[:200], "new_due": new_due.isoformat(), "old_due": m.due_date.isoformat()},
    )
    return Outcome(
        f"延期申请已提交（申请延至 {new_due.isoformat()}），等待领导小组办公室审批。审批结果将通过消息通知您；"
        "在获批之前，请仍按原定时间推进。",
        notify=notify,
        request_id=req.id,
        event_id=ev.id,
    )


def _ask_reviewers(
    session: Session,
    r: Resolved,
    req: Request,
    m: Milestone,
    reviewers: list[int],
    *,
    today: dt.date,
    now: dt.datetime,
    tz: Any,
    extra: dict[str, Any],
) -> set[int]:
    """The request in the ledger of each reviewer on the task's line (the office member whose 督办条线
    covers it: :func:`duban.roles.on_line`); an office member's item waits for the plan's next batch
    time (``office_batch_times``), so a morning's submissions reach them in one digest."""
    task = _task(r)
    data = {**owner_info(session, task), "request": req.id, "request_kind": req.kind, **extra}
    reviewers = on_line(session, task, reviewers)
    held = office_hold(session, r.plan, task, now=now, tz=tz)
    office = set(plan_roles(session, task.plan_id)[PlanRoleKind.OFFICE])
    keys = {pid: f"{MessageKind.APPROVAL}:r{req.id}:p{pid}" for pid in reviewers}
    present = set(session.scalars(select(Notification.key).where(Notification.key.in_(sorted(set(keys.values())))))) if keys else set()
    for pid, key in keys.items():  # one query for all reviewers' keys, then the items (one INSERT at the flush)
        if key not in present:
            ledger_item(
                session,
                key=key,
                r_plan=r.link.plan_id,
                task=task,
                milestone=m,
                recipient=pid,
                kind=MessageKind.APPROVAL,
                today=today,
                now=now,
                data=data,
                checked=True,
                not_before=held if pid in office else None,
            )
    return set(reviewers)


def office_hold(session: Session, plan: Any, task: Task, *, now: dt.datetime, tz: Any) -> dt.datetime:
    """When an approval request to the office goes out: the plan's (or the task's) next batch time."""
    policy = effective_policy(plan.policy, task.policy)
    return next_batch_time(now, parse_batch_times(policy.office_batch_times), tz or DEFAULT_TZ)


def pending_requests(session: Session, plan_id: int) -> list[Request]:
    return list(
        session.scalars(
            select(Request)
            .where(Request.plan_id == plan_id, Request.status == RequestStatus.PENDING)
            .order_by(Request.created_at, Request.id)
        )
    )


# ---------------------------------------------------------------------------------------------
# A fresh link, by message


def renewal_action(session: Session, link: Link) -> str | None:
    """The link a holder of an expired or used ``link`` gets: the same action while it still
    applies, else a read-only one (owners: view; reviewers: their queue); None when the holder
    has nothing to do with the task any more."""
    task = session.get(Task, link.task_id) if link.task_id else None
    dept = session.get(Department, task.lead_department_id) if task is not None and task.lead_department_id else None
    owner = session.get(Person, task.owner_id) if task is not None else None
    if holder_refusal(session, link, task, dept, owner) is not None:  # no longer holds the role that earned it
        return None
    if link.action in links_mod.REVIEW_ACTIONS:
        req = session.get(Request, link.request_id) if link.request_id else None
        return LinkAction.REVIEW if req is not None and req.status == RequestStatus.PENDING else LinkAction.QUEUE
    if task is None or task.archived_at is not None:
        return None
    if link.action in links_mod.OWNER_ACTIONS and task.owner_id != link.person_id:
        return None
    m = session.get(Milestone, link.milestone_id) if link.milestone_id else None
    if link.action == LinkAction.ACK and task.acknowledged_at is not None:
        return LinkAction.VIEW
    if link.action in (LinkAction.DONE, LinkAction.EXTEND) and (m is None or m.status not in OPEN_STATES):
        return LinkAction.VIEW
    return link.action


def request_new_link(session: Session, link: Link, origin: Origin, *, now: dt.datetime, today: dt.date) -> Outcome:
    """Ask for a fresh link by message (to the link's person, through their own channels: a
    forwarded link never yields a fresh one for whoever forwarded it)."""
    session.refresh(link, with_for_update=True)
    action = renewal_action(session, link)
    if action is None:
        raise ActionError("该任务已不由您负责或已归档，无法发送新链接。如有疑问，请联系领导小组办公室。")
    task = session.get(Task, link.task_id) if link.task_id else None
    if task is None:  # an expired queue link: attach the message to a waiting request's task
        waiting = pending_requests(session, link.plan_id)
        if not waiting:
            return Outcome("目前没有等待您审核的事项。有新的申请时，您会收到新的通知和审核链接。")
        task = session.get(Task, waiting[0].task_id)
        if task is None:
            raise ActionError("没有找到等待审核的申请对应的任务。")
    m = session.get(Milestone, link.milestone_id) if link.milestone_id else None
    person = session.get(Person, link.person_id)
    if person is None:
        raise ActionError("没有找到该链接的接收人。")
    data = {"action": action, "old_action": link.action, "request": link.request_id}
    fresh = ledger_item(
        session,
        key=f"{MessageKind.RELINK}:l{link.id}:{today.isoformat()}",
        r_plan=link.plan_id,
        task=task,
        milestone=m,
        recipient=link.person_id,
        kind=MessageKind.RELINK,
        today=today,
        now=now,
        data=data,
    )
    session.add(
        Event(
            plan_id=link.plan_id,
            task_id=task.id,
            milestone_id=m.id if m else None,
            at=now,
            actor=person.name,
            channel=origin.channel,
            kind=EventKind.LINK_RENEWAL,
            data={"link": link.id, "action": link.action, "ip": origin.ip or "", "agent": (origin.user_agent or "")[:300]},
        )
    )
    if not fresh:
        return Outcome("今天已经为您发送过新链接，请查看您的邮箱或工作消息。")
    return Outcome(
        f"新的「{LinkAction.label_of(action)}」链接将通过消息发送给{person.name}（您的邮箱或工作消息），请稍候查收。",
        notify={link.person_id},
    )
