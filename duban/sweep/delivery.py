"""Delivery: claim pending digests (a lease protects against two senders), send them through a
:class:`~notifications.channel.Channel`, mark them sent; failures are kept with their reason and
retried with backoff.  A crash between sending and marking re-sends at most that one digest when
its lease expires.  Quiet hours hold digests back; a person who cannot be reached is reported to
the plan's office.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import CursorResult, Engine, and_, bindparam, or_, select, update

from duban.db import session_scope
from duban.links import LinkMaker
from duban.models import Delivery, Department, Digest, Notification, Person, Plan, PlanRole, table_of, utcnow
from duban.rules.quiet import QuietHours
from duban.sweep.ledger import existing_keys, insert_ignore
from duban.vocabulary import Audience, LedgerStatus, MessageKind, PlanRoleKind
from notifications.channel import Channel, DeliveryReport, Outgoing, as_channel

LEASE = dt.timedelta(minutes=10)
MAX_BACKOFF = dt.timedelta(hours=6)
FIRST_BACKOFF = dt.timedelta(minutes=5)
# keyed by the stored audience (a plain string; the keys are Audience members, which equal their values)
AUDIENCE_NAMES: dict[str, str] = {Audience.LEADING_GROUP: "领导小组", Audience.OFFICE: "领导小组办公室"}


@dataclass
class DeliverResult:
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    deferred: int = 0  # waiting for working hours (not an attempt)
    unreachable: list[int] = field(default_factory=list)  # office members who were told someone is unreachable


def backoff(attempts: int) -> dt.timedelta:
    return min(FIRST_BACKOFF * 2 ** max(attempts - 1, 0), MAX_BACKOFF)


def claim(
    engine: Engine,
    *,
    now: dt.datetime,
    links: LinkMaker,
    limit: int = 500,
    recipients: Iterable[int] | None = None,
    template_dir: Path | None = None,
) -> list[Outgoing]:
    """Take up to ``limit`` digests that are due for (re)delivery, marking them as being sent."""
    with session_scope(engine) as session:
        due = or_(
            and_(Digest.status.in_((LedgerStatus.PENDING, LedgerStatus.FAILED)), Digest.next_attempt_at <= now),
            and_(Digest.status == LedgerStatus.SENDING, Digest.claimed_at < now - LEASE),  # a sender died mid-way
        )
        q = select(Digest.id).where(due)
        if recipients is not None:
            q = q.where(Digest.recipient_id.in_(list(recipients)))
        ids = list(session.scalars(q.order_by(Digest.id).limit(limit).with_for_update(skip_locked=True)))
        if not ids:
            return []
        session.execute(
            update(Digest).where(Digest.id.in_(ids), due).values(status=LedgerStatus.SENDING, claimed_at=now, attempts=Digest.attempts + 1)
        )
        rows = session.execute(
            select(
                Digest.id,
                Digest.recipient_id,
                Person.name,
                Person.email,
                Digest.run_on,
                Digest.subject,
                Digest.payload,
                Digest.attempts,
                Digest.plan_id,
                Digest.audience,
                Digest.department_id,
                Person.notify_urls,
                Person.mobile,
            )
            .outerjoin(Person, Person.id == Digest.recipient_id)
            .where(Digest.id.in_(ids), Digest.status == LedgerStatus.SENDING, Digest.claimed_at == now)
        ).all()
        dept_ids = sorted({r.department_id for r in rows if r.department_id is not None})
        depts = (
            {
                d.id: d
                for d in session.execute(select(Department.id, Department.name, Department.notify_urls).where(Department.id.in_(dept_ids)))
            }
            if dept_ids
            else {}
        )
        plan_ids = sorted({r.plan_id for r in rows if r.audience in AUDIENCE_NAMES})
        plan_channels: dict[int, dict[str, Any]] = (
            dict(session.execute(select(Plan.id, Plan.channels).where(Plan.id.in_(plan_ids))).all()) if plan_ids else {}
        )
        urls = links.urls(session, [lid for r in rows for item in r.payload.get("items", ()) for _, lid in item.get("links", ())])
    out = []
    for r in rows:
        if r.audience == Audience.PERSON:
            name, channels = r.name, list(r.notify_urls or ())
        elif r.audience == Audience.DEPARTMENT:
            d = depts.get(r.department_id)
            name, channels = (f"{d.name}（群）", list(d.notify_urls or ())) if d else ("（部门已删除）", [])
        else:
            name, channels = (
                f"{AUDIENCE_NAMES.get(r.audience, r.audience)}（群）",
                list((plan_channels.get(r.plan_id) or {}).get(r.audience, ())),
            )
        out.append(
            Outgoing(
                r.id,
                r.recipient_id,
                name,
                r.email,
                r.run_on,
                r.subject,
                r.payload,
                r.attempts,
                urls=urls,
                template_dir=template_dir,
                plan_id=r.plan_id,
                audience=r.audience,
                channels=channels,
                mobile=r.mobile,
            )
        )
    return out


_MARK_DIGEST = (
    table_of(Digest)
    .update()
    .where(table_of(Digest).c.id == bindparam("did"))
    .values(status=LedgerStatus.SENT, sent_at=bindparam("at"), last_error=None, delivered_via=bindparam("via"))
)
_MARK_ITEMS = table_of(Notification).update().where(table_of(Notification).c.digest_id == bindparam("did")).values(status=LedgerStatus.SENT)


def _delivery_rows(
    out: Outgoing, report: DeliveryReport | None, error: str | None, channel_name: str, now: dt.datetime
) -> list[dict[str, Any]]:
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


def mark_sent(
    engine: Engine, ids: list[int], *, now: dt.datetime, via: dict[int, str] | None = None, deliveries: list[dict[str, Any]] | None = None
) -> None:
    """Mark digests and their items sent, in one short transaction (Core: called per message)."""
    if not ids:
        return
    via = via or {}
    with engine.begin() as conn:
        conn.execute(_MARK_DIGEST, [{"did": i, "at": now, "via": (via.get(i) or None) and via[i][:200]} for i in ids])
        conn.execute(_MARK_ITEMS, [{"did": i} for i in ids])
        if deliveries:
            conn.execute(table_of(Delivery).insert(), deliveries)


def mark_failed(
    engine: Engine, failures: list[tuple[Outgoing, str]], *, now: dt.datetime, deliveries: list[dict[str, Any]] | None = None
) -> None:
    if not failures:
        return
    with session_scope(engine) as session:
        for out, reason in failures:
            session.execute(
                update(Digest)
                .where(Digest.id == out.id)
                .values(status=LedgerStatus.FAILED, last_error=reason[:2000], next_attempt_at=now + backoff(out.attempts))
            )
        if deliveries:
            session.execute(table_of(Delivery).insert(), deliveries)


def defer_quiet(engine: Engine, quiet: QuietHours, *, now: dt.datetime, recipients: list[int] | None = None) -> int:
    """Push digests that come due outside the allowed hours to the next allowed moment (per plan).

    Not an attempt: ``attempts`` and the backoff are untouched.
    """
    due = and_(Digest.status.in_((LedgerStatus.PENDING, LedgerStatus.FAILED)), Digest.next_attempt_at <= now)
    if recipients is not None:
        due = and_(due, Digest.recipient_id.in_(recipients))
    moved = 0
    with session_scope(engine) as session:
        for plan_id in list(session.scalars(select(Digest.plan_id).where(due).distinct())):
            later = quiet.next_allowed(now, plan_id)
            if later is not None:
                result = session.execute(update(Digest).where(due, Digest.plan_id == plan_id).values(next_attempt_at=later))
                if not isinstance(result, CursorResult):  # an UPDATE always answers with a cursor result
                    raise TypeError(f"UPDATE returned {type(result).__name__}")
                moved += result.rowcount or 0
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


def _attempt(channel: Channel, out: Outgoing) -> tuple[Outgoing, DeliveryReport | None, str | None]:
    """Send one message: (out, report or None, reason of failure or None)."""
    try:
        report = channel.send(out)
    except Exception as err:  # noqa: BLE001 - a channel failure is data, not a crash
        return out, None, f"{err.__class__.__name__}: {err}"
    if report is not None and not report.ok:
        return out, report, report.reason
    return out, report, None


def deliver(
    engine: Engine,
    send: Channel | Callable[[Outgoing], Any],
    *,
    now: dt.datetime,
    links: LinkMaker,
    batch: int = 500,
    recipients: Iterable[int] | None = None,
    template_dir: Path | None = None,
    workers: int = 1,
    quiet: QuietHours | None = None,
    unreachable_after: int | None = None,
    today: dt.date | None = None,
) -> DeliverResult:
    """Send every digest that is due through ``send`` (a :class:`Channel`, or a plain function); a
    failure never stops the others.

    Each digest is marked sent right after it went out, so a crash repeats at most the messages
    in flight (their lease expires and a later run sends them again): one with ``workers=1``,
    at most ``workers`` with a thread pool.  ``quiet`` holds back what comes due outside working
    hours; ``unreachable_after``: after that many failed attempts of a person's digest, the
    plan's office is told (a ledger item; see ``notify_unreachable``).
    """
    channel = as_channel(send)
    result = DeliverResult()
    recipients = list(recipients) if recipients is not None else None
    if quiet is not None:
        result.deferred = defer_quiet(engine, quiet, now=now, recipients=recipients)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="deliver") if workers > 1 else None
    try:
        while True:
            claimed = claim(engine, now=now, links=links, limit=batch, recipients=recipients, template_dir=template_dir)
            if not claimed:
                break
            if pool is None:
                outcomes: Iterable[tuple[Outgoing, DeliveryReport | None, str | None]] = (_attempt(channel, out) for out in claimed)
            else:
                outcomes = (f.result() for f in as_completed([pool.submit(_attempt, channel, out) for out in claimed]))
            failures = _record(engine, channel, outcomes, now=now, result=result)
            if unreachable_after:
                hopeless = [(o, r) for o, r in failures if o.attempts >= unreachable_after]
                if hopeless:
                    told = notify_unreachable(engine, hopeless, today=today or now.date())
                    result.unreachable = sorted(set(result.unreachable) | set(told))
            if len(claimed) < batch:
                break
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        channel.close()
    return result


def _record(
    engine: Engine,
    channel: Channel,
    outcomes: Iterable[tuple[Outgoing, DeliveryReport | None, str | None]],
    *,
    now: dt.datetime,
    result: DeliverResult,
) -> list[tuple[Outgoing, str]]:
    """Mark what went out as sent and what failed as failed (with backoff); return the failures.

    A channel whose repeat is harmless (the outbox rewrites the same file) is marked per batch;
    any other is marked right after each message, so a crash repeats at most the one in flight.
    """
    failures: list[tuple[Outgoing, str]] = []
    sent: list[int] = []
    via: dict[int, str] = {}
    rows: list[dict[str, Any]] = []
    fail_rows: list[dict[str, Any]] = []
    for out, report, error in outcomes:
        if error is not None:
            failures.append((out, error))
            fail_rows += _delivery_rows(out, report, error, channel.name, now)
            continue
        if channel.idempotent:
            sent.append(out.id)
            via[out.id] = report.via if report is not None else channel.name
            rows += _delivery_rows(out, report, None, channel.name, now)
        else:
            mark_sent(
                engine,
                [out.id],
                now=now,
                via={out.id: report.via if report is not None else channel.name},
                deliveries=_delivery_rows(out, report, None, channel.name, now),
            )
        result.sent += 1
    mark_sent(engine, sent, now=now, via=via, deliveries=rows)
    mark_failed(engine, failures, now=now, deliveries=fail_rows)
    result.failed += len(failures)
    result.errors += [f"{o.recipient}：{r}" for o, r in failures]
    return failures
