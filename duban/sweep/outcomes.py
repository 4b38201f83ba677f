"""What a delivery run comes to: its :class:`DeliverResult`, the ``deliveries`` rows of each attempt,
digests held back for quiet hours, and the office told of a person no channel reaches
(``duban.sweep.delivery`` runs the workers that produce them)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select, update

from duban.db import rowcount, session_scope
from duban.models import Department, Digest, Person, PlanRole, utcnow
from duban.rules.quiet import QuietHours
from duban.sweep.claims import due_condition
from duban.sweep.ledger import existing_keys, insert_ignore
from duban.vocabulary import Audience, LedgerStatus, MessageKind, PlanRoleKind
from notifications.channel import DeliveryReport, Outgoing


@dataclass
class DeliverResult:
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    deferred: int = 0  # waiting for working hours (not an attempt)
    unreachable: list[int] = field(default_factory=list)  # office members who were told someone is unreachable
    paused: int = 0  # every channel of the message paused (its server stopped answering): given back for later
    paused_reason: str | None = None  # why (the first such message's reason)
    recovered: int = 0  # a dead run's messages its journal says went out: marked sent, not sent again
    interrupted: int = 0  # a dead run's other messages: due again now
    failures: list[tuple[Outgoing, str]] = field(default_factory=list, repr=False)
    permanent: set[int] = field(default_factory=set, repr=False)  # digests no attempt can mend (an app does not know the person)


def delivery_rows(
    out: Outgoing, report: DeliveryReport | None, error: str | None, channel_name: str, now: dt.datetime
) -> list[dict[str, Any]]:
    """The ``deliveries`` rows of one message: each attempt the channel reports, else one for its answer."""
    if report is not None and report.attempts:
        return [
            {
                "digest_id": out.id,
                "channel": a.channel[:30],
                "target": (a.target or "")[:500],
                "at": a.at,
                "ok": a.ok,
                "error": (a.error or None) and a.error[:2000],
            }
            for a in report.attempts
        ]
    return [
        {"digest_id": out.id, "channel": channel_name[:30], "target": "", "at": now, "ok": error is None, "error": error and error[:2000]}
    ]


def defer_quiet(
    engine: Engine, quiet: QuietHours, *, now: dt.datetime, recipients: list[int] | None = None, plan_ids: list[int] | None = None
) -> int:
    """Push digests that come due outside the allowed hours to the next allowed moment (per plan).

    Not an attempt: ``attempts`` and the backoff are untouched.
    """
    due = due_condition(now, recipients, plan_ids)
    moved = 0
    with session_scope(engine) as session:
        for plan_id in list(session.scalars(select(Digest.plan_id).where(due).distinct())):
            later = quiet.next_allowed(now, plan_id)
            if later is not None:
                moved += rowcount(session.execute(update(Digest).where(due, Digest.plan_id == plan_id).values(next_attempt_at=later)))
    return moved


def notify_unreachable(engine: Engine, outs: list[tuple[Outgoing, str]], *, today: dt.date) -> list[int]:
    """Tell the plan's office that a person cannot be reached: a ledger item for each office member
    (once per person and day), delivered like any other item in their next digest."""
    # (digest, person, plan, reason): a person's digest always belongs to a plan (none: no office to tell)
    people = [
        (o, o.recipient_id, o.plan_id, r)
        for o, r in outs
        if o.audience == Audience.PERSON and o.recipient_id is not None and o.plan_id is not None
    ]
    if not people:
        return []
    now = utcnow()
    with session_scope(engine) as session:
        office: dict[int, list[int]] = defaultdict(list)
        plan_ids = sorted({plan_id for _, _, plan_id, _ in people})
        for r in session.execute(
            select(PlanRole.plan_id, PlanRole.person_id)
            .where(PlanRole.role == PlanRoleKind.OFFICE, PlanRole.plan_id.in_(plan_ids))
            .order_by(PlanRole.position)
        ):
            office[r.plan_id].append(r.person_id)
        depts = dict(
            session.execute(
                select(Person.id, Department.name)
                .join(Department, Department.id == Person.department_id)
                .where(Person.id.in_([person_id for _, person_id, _, _ in people]))
            ).all()
        )
        rows: list[dict[str, Any]] = [
            {
                "key": f"unreachable:p{person_id}:to{member}:{today.isoformat()}",
                "plan_id": plan_id,
                "task_id": None,
                "milestone_id": None,
                "recipient_id": member,
                "kind": MessageKind.UNREACHABLE,
                "level": 0,
                "due_date": None,
                "days": 0,
                "decided_on": today,
                "status": LedgerStatus.PENDING,
                "created_at": now,
                "digest_id": None,
                "data": {
                    "person": o.recipient,
                    "department": depts.get(person_id),
                    "attempts": o.attempts,
                    "reason": reason[:500],
                    "code": "",
                    "title": f"{o.recipient}的通知无法送达",
                },
            }
            for o, person_id, plan_id, reason in people
            for member in office.get(plan_id, ())
            if member != person_id
        ]
        if not rows:
            return []
        existing = existing_keys(session, [r["key"] for r in rows])
        fresh = [r for r in rows if r["key"] not in existing]
        insert_ignore(session, fresh)
    return sorted({r["recipient_id"] for r in fresh})
