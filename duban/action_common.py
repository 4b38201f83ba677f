"""What every action from a link shares (:mod:`duban.actions` for the owner's, :mod:`duban.approvals`
for a coordinator's, :mod:`duban.relink` for a fresh link): the refusal (:class:`ActionError`), where
an action came from (:class:`Origin`) and what it did (:class:`Outcome`), the audit trail, the link's
single use, evidence, 签收 on first contact, and a ledger item for someone to be told.

Each function takes a session (the caller owns the transaction) and a resolved link
(:func:`duban.links.resolve`, locked ``for_update``).  Nothing here knows HTTP; a refusal is an
:class:`ActionError` with a Chinese message the page shows as is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from duban import links as links_mod
from duban.db import rowcount
from duban.evidence import StoredFile, add_evidence
from duban.links import Resolved
from duban.models import Department, Event, Link, Milestone, Notification, Person, Request, Task
from duban.values import clean_text
from duban.vocabulary import OPEN_STATES, LedgerStatus, MilestoneState, RequestStatus

MAX_TEXT = 5000
MAX_REASON = 1000


class ActionError(ValueError):
    """The action cannot be done (the message, in Chinese, says why and what to do)."""


@dataclass(frozen=True)
class Origin:
    """Where an action came from: the audit trail keeps it."""

    ip: str | None = None
    user_agent: str | None = None
    channel: str = "link"

    def trail(self) -> dict[str, str]:
        """What an event's data keeps of it (the address, the agent cut to 300 characters)."""
        return {"ip": self.ip or "", "agent": (self.user_agent or "")[:300]}


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
    """The action's event, by the link's holder (the link's task and milestone unless told)."""
    task_id = task_id if task_id is not None else r.link.task_id
    milestone_id = milestone_id if milestone_id is not None else r.link.milestone_id
    return link_event(session, r.link, r.person.name, kind, data, origin, now, task_id=task_id, milestone_id=milestone_id)


def link_event(
    session: Session,
    link: Link,
    actor: str,
    kind: str,
    data: dict[str, Any],
    origin: Origin,
    now: dt.datetime,
    *,
    task_id: int | None,
    milestone_id: int | None,
) -> Event:
    """An event done from ``link``: its data names the link, its action and the origin (written now)."""
    ev = Event(
        plan_id=link.plan_id,
        task_id=task_id,
        milestone_id=milestone_id,
        at=now,
        actor=actor,
        channel=origin.channel,
        kind=kind,
        data={**data, "link": link.id, "action": link.action, **origin.trail()},
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


def attach_evidence(
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
        task_id=link_task(r).id,
        milestone_id=milestone_id,
        request_id=request_id,
        event_id=ev.id,
        person_id=r.person.id,
        created_at=now,
    )


def acknowledge_task(session: Session, task: Task, now: dt.datetime) -> bool:
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


def link_task(r: Resolved) -> Task:
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


def open_milestone(r: Resolved) -> Milestone:
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


def pending_requests(session: Session, plan_id: int) -> list[Request]:
    """A plan's requests waiting for a decision, oldest first."""
    return list(
        session.scalars(
            select(Request)
            .where(Request.plan_id == plan_id, Request.status == RequestStatus.PENDING)
            .order_by(Request.created_at, Request.id)
        )
    )
