"""A fresh link by message: what a holder of an expired or used link gets instead
(:func:`renewal_action`), and the request for it from the expired link's page
(:func:`request_new_link`), sent to the link's own person through their own channels."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from duban import links as links_mod
from duban.action_common import ActionError, Origin, Outcome, ledger_item, link_event, pending_requests
from duban.models import Department, Link, Milestone, Person, Request, Task
from duban.roles import holder_refusal
from duban.vocabulary import OPEN_STATES, EventKind, LinkAction, MessageKind, RequestStatus


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
    link_event(session, link, person.name, EventKind.LINK_RENEWAL, {}, origin, now, task_id=task.id, milestone_id=m.id if m else None)
    if not fresh:
        return Outcome("今天已经为您发送过新链接，请查看您的邮箱或工作消息。")
    return Outcome(
        f"新的「{LinkAction.label_of(action)}」链接将通过消息发送给{person.name}（您的邮箱或工作消息），请稍候查收。",
        notify={link.person_id},
    )
