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
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from duban import links as links_mod
from duban.action_common import (
    MAX_REASON,
    ActionError,
    Origin,
    Outcome,
    acknowledge_task,
    attach_evidence,
    label,
    ledger_item,
    link_task,
    open_milestone,
    owner_info,
    record_event,
    requested_due,
    require_action,
    text_field,
    use_link,
)
from duban.evidence import StoredFile
from duban.links import Resolved
from duban.models import Milestone, Notification, Request, Task
from duban.roles import on_line, plan_roles
from duban.rules.batching import next_batch_time, parse_batch_times
from duban.rules.policy import effective_policy
from duban.vocabulary import EventKind, LinkAction, MessageKind, MilestoneState, PlanRoleKind, RequestKind, RequestStatus

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")  # the institution's zone when a caller gives none (as duban.links.local_time)
# approval is required and nobody but the one who asks could approve (duban.roles.reviewers)
NO_REVIEWER = (
    "本方案要求办结审核，但目前没有可以审核您申请的人员（领导小组办公室、领导小组均无其他成员）。"
    "本次提交未被受理，请联系领导小组办公室在方案中增补审核人员后再提交。"
)


def acknowledge(session: Session, r: Resolved, origin: Origin, *, now: dt.datetime) -> Outcome:
    """签收: the owner confirms they have the task."""
    require_action(r, LinkAction.ACK)
    task = link_task(r)
    if task.acknowledged_at is not None:
        raise ActionError(f"该任务已于 {links_mod.local_time(task.acknowledged_at)} 签收，无需重复签收。")
    acknowledge_task(session, task, now)
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
    acked = acknowledge_task(session, link_task(r), now)
    ev = record_event(
        session, r, EventKind.PROGRESS_REPORTED, {"text": text, "acknowledged": acked, "urls": len(urls), "files": len(files)}, origin, now
    )
    attach_evidence(session, r, ev, urls, files, milestone_id=r.link.milestone_id, request_id=None, now=now)
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
    task = link_task(r)
    m = open_milestone(r)
    note = text_field(note, what="办结说明（完成情况及佐证材料说明）")
    reviewers = links_mod.reviewers(session, r.link.plan_id, exclude=r.person.id)
    if r.plan.approval_required and not reviewers:
        raise ActionError(NO_REVIEWER)
    with session.no_autoflush:  # reads first; the changes then go out together at the next flush
        # a pending extension of this step is moot once it is submitted
        moot = list(session.scalars(_pending_extension(m)))
        acknowledge_task(session, task, now)
    for req in moot:
        req.status, req.decided_at, req.decision_note = RequestStatus.WITHDRAWN, now, "已提交办结，延期申请自动撤回"
    evidence_count = {"urls": len(urls), "files": len(files)}
    if not r.plan.approval_required:
        m.status, m.submitted_at, m.completed_at = MilestoneState.DONE, now, now
        ev = record_event(session, r, EventKind.MILESTONE_DONE, {"note": note, "approval": "not_required", **evidence_count}, origin, now)
        attach_evidence(session, r, ev, urls, files, milestone_id=m.id, request_id=None, now=now)
        use_link(session, r, now)
        links_mod.void(session, reason="里程碑已办结", now=now, milestone_ids=[m.id])
        return Outcome(f"里程碑「{label(m)}」已办结。感谢您的辛勤工作！", event_id=ev.id)
    m.status, m.submitted_at = MilestoneState.SUBMITTED, now
    req = _new_request(session, r, m, RequestKind.COMPLETION, note=note, now=now)
    ev = record_event(session, r, EventKind.COMPLETION_SUBMITTED, {"note": note, "request": req.id, **evidence_count}, origin, now)
    attach_evidence(session, r, ev, urls, files, milestone_id=m.id, request_id=req.id, now=now)
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
    task = link_task(r)
    m = open_milestone(r)
    new_due = _extension_date(m, new_due, today)
    reason = text_field(reason, what="延期理由", limit=MAX_REASON)
    pending = session.scalar(_pending_extension(m))
    if pending is not None:
        raise ActionError(f"该里程碑已有一项延期申请（延至 {requested_due(pending).isoformat()}）正在审批中，请等待审批结果。")
    reviewers = links_mod.reviewers(session, r.link.plan_id, exclude=r.person.id)
    if not reviewers:
        raise ActionError("本方案尚未设置领导小组办公室人员，无法在线审批延期，请直接与牵头部门或领导小组联系。")
    acknowledge_task(session, task, now)
    req = _new_request(session, r, m, RequestKind.EXTENSION, note=reason, now=now, new_due=new_due)
    dates = {"from": m.due_date.isoformat(), "to": new_due.isoformat()}
    ev = record_event(session, r, EventKind.EXTENSION_REQUESTED, {"reason": reason, **dates, "request": req.id}, origin, now)
    use_link(session, r, now)
    extra = {"note": reason[:200], "new_due": new_due.isoformat(), "old_due": m.due_date.isoformat()}
    notify = _ask_reviewers(session, r, req, m, reviewers, today=today, now=now, tz=tz, extra=extra)
    return Outcome(
        f"延期申请已提交（申请延至 {new_due.isoformat()}），等待领导小组办公室审批。审批结果将通过消息通知您；"
        "在获批之前，请仍按原定时间推进。",
        notify=notify,
        request_id=req.id,
        event_id=ev.id,
    )


def _extension_date(m: Milestone, new_due: dt.date | None, today: dt.date) -> dt.date:
    """The date an extension asks for, if it is one that may be asked for."""
    if new_due is None:
        raise ActionError("请选择申请延期到的日期。")
    if new_due <= m.due_date:
        raise ActionError(f"申请的新完成时间须晚于目前的完成时间 {m.due_date.isoformat()}。")
    if new_due < today:
        raise ActionError("申请的新完成时间不能早于今天。")
    if new_due > m.due_date + dt.timedelta(days=3 * 366):
        raise ActionError("申请延期的时间过长，请与领导小组办公室沟通后调整任务时间表。")
    return new_due


def _pending_extension(m: Milestone) -> Select[Request]:
    """The milestone's extension request waiting for a decision (at most one)."""
    return select(Request).where(
        Request.milestone_id == m.id, Request.kind == RequestKind.EXTENSION, Request.status == RequestStatus.PENDING
    )


def _new_request(
    session: Session, r: Resolved, m: Milestone, kind: RequestKind, *, note: str, now: dt.datetime, new_due: dt.date | None = None
) -> Request:
    """The link holder's request on the milestone, pending (written now: its id goes in the event)."""
    req = Request(
        plan_id=r.link.plan_id,
        task_id=link_task(r).id,
        milestone_id=m.id,
        person_id=r.person.id,
        kind=kind,
        status=RequestStatus.PENDING,
        note=note,
        new_due_date=new_due,
        created_at=now,
        decision_note="",
    )
    session.add(req)
    session.flush()
    return req


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
    task = link_task(r)
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
