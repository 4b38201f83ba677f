"""Sending as its callers need it: deliver what is due through the configured channel (the daily
sweep, the delivery flow every few minutes, `duban deliver`), or assemble and deliver for a few
people at once (an action in the web app, a review step, a bulletin); and the day's outcome as
the store has it (what `duban check` and the flows report: honest after a crash or a retry).

``rt`` is a :class:`duban.runtime.Runtime` (the engine, the channel and the delivery options).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from duban.db import session_scope
from duban.models import Digest
from duban.sweep import journal
from duban.sweep.claims import due_condition
from duban.sweep.delivery import deliver
from duban.sweep.digests import assemble, held_due
from duban.sweep.outcomes import DeliverResult
from duban.vocabulary import LedgerStatus


def deliver_due(
    rt: Any, recipients: list[int] | None = None, *, now: dt.datetime | None = None, plan_ids: list[int] | None = None
) -> DeliverResult:
    """Deliver every digest that is due (new, a retry, one held back for working hours); then
    assemble and deliver at once the notices to the office about people who cannot be reached.
    ``plan_ids``: only these plans' (one institution's, sent with its runtime; None: every plan's)."""
    now = now or dt.datetime.now(dt.UTC)
    today = now.astimezone(rt.tz).date()
    options = rt.deliver_options(today)
    assemble_held(rt, now=now, today=today, links=options["links"], plan_ids=plan_ids)
    if not anything_due(rt.engine, now=now, lease=options["lease"], journal_dir=options["journal_dir"], plan_ids=plan_ids):
        return DeliverResult()
    result = deliver(rt.engine, rt.channel, now=now, recipients=recipients, plan_ids=plan_ids, **options)
    if result.unreachable:
        assemble(rt.engine, today=today, links=options["links"], channel=rt.channel.name, recipients=result.unreachable, plan_ids=plan_ids)
        extra = deliver(rt.engine, rt.channel, now=now, recipients=result.unreachable, plan_ids=plan_ids, **options)
        result.sent += extra.sent
        result.failed += extra.failed
        result.errors += extra.errors
    return result


@dataclass
class DeliveryGroup:
    """Institutions whose messages go out (and whose roll-up is computed) with one runtime: every
    school without settings of its own shares the installation's (one run for all of them:
    ``plan_ids`` None when that is every plan); a school with its own (channel, apps, send hours,
    templates, calendar) is a group of its own."""

    rt: Any
    codes: list[str]
    names: list[str]
    plan_ids: list[int] | None

    @property
    def label(self) -> str:
        from duban.institutions import school_names

        return school_names(self.names)


def delivery_groups(rt: Any, codes: list[str] | None = None) -> list[DeliveryGroup]:
    """How delivery runs by institution (``codes``: these only; unknown ones raise
    ``InstitutionError``).  A store without institutions yet is one group of everything."""
    from duban import institutions

    with session_scope(rt.engine, readonly=True) as session:
        scopes = institutions.sweep_scopes(session, codes)
    return runtime_groups(rt, scopes, whole_store=codes is None)


def runtime_groups(rt: Any, scopes: list[Any], *, whole_store: bool = False) -> list[DeliveryGroup]:
    """``scopes`` (``institutions.SweepScope``) by the runtime they run with: the schools without
    settings of their own together, first, then each school with its own.  ``whole_store``: the
    scopes are every institution there is, so the shared group stands for every plan (None), and
    is there even when the store has no institution yet."""
    plain = [s for s in scopes if not s.own_settings]
    groups = [DeliveryGroup(rt.for_institution(s.code), [s.code], [s.name], list(s.plan_ids)) for s in scopes if s.own_settings]
    if plain or (whole_store and not scopes):
        ids = None if whole_store and not groups else [p for s in plain for p in s.plan_ids]
        groups.insert(0, DeliveryGroup(rt, [s.code for s in plain], [s.name for s in plain], ids))
    return groups


def assemble_held(rt: Any, *, now: dt.datetime, today: dt.date, links: Any, plan_ids: list[int] | None = None) -> int:
    """The digests of the people whose held ledger items came due (the office's batch time passed):
    one digest each with everything held for them (read-only when nobody has any)."""
    with session_scope(rt.engine, readonly=True) as session:
        people = held_due(session, now, plan_ids)
    if not people:
        return 0
    return assemble(
        rt.engine,
        today=today,
        links=links,
        channel=rt.channel.name,
        template_dir=rt.settings.template_dir,
        recipients=people,
        now=now,
        plan_ids=plan_ids,
    )


def anything_due(
    engine: Engine, *, now: dt.datetime, lease: dt.timedelta, journal_dir: Path | None, plan_ids: list[int] | None = None
) -> bool:
    """Whether a delivery run has anything to do (read-only: a run every few minutes that finds
    nothing takes no write lock)."""
    if journal.tokens(journal_dir):
        return True
    with session_scope(engine, readonly=True) as session:
        due = select(Digest.id).where(due_condition(now, None, plan_ids)).limit(1)
        stale = select(Digest.id).where(Digest.status == LedgerStatus.SENDING, Digest.claimed_at < now - lease).limit(1)
        return session.scalar(due) is not None or session.scalar(stale) is not None


def send_to(rt: Any, recipients: list[int] | set[int], *, today: dt.date) -> DeliverResult | None:
    """Assemble and deliver what the ledger holds for just these people (None: nobody)."""
    if not recipients:
        return None
    people = sorted(recipients)
    links = rt.links(today)
    assemble(rt.engine, today=today, links=links, channel=rt.channel.name, template_dir=rt.settings.template_dir, recipients=people)
    return deliver_due(rt, people)


@dataclass(frozen=True)
class DayOutcome:
    """What a run did and where the day's digests are, as the store has it afterwards (honest after
    a crash, a retried task or a second sender)."""

    sent: int = 0  # digests sent since the run began (any day's: a retry of yesterday's counts)
    failed: int = 0  # the day's digests waiting for a retry (the reason is stored)
    deferred: int = 0  # the day's digests held back for working hours or a paused channel: due later
    sending: int = 0  # the day's digests held by a run (another one still working, or one that died)
    older_failed: int = 0  # digests of earlier days still failing

    @property
    def problems(self) -> bool:
        return bool(self.failed or self.sending)


def _outcome_counts(run_on: dt.date, since: dt.datetime, now: dt.datetime) -> list[Any]:
    """The counts of a ``DayOutcome``, in its fields' order, as SQL aggregates over digests."""
    status, today = Digest.status, Digest.run_on == run_on
    return [
        func.count().filter(status == LedgerStatus.SENT, Digest.sent_at >= since),
        func.count().filter(today, status == LedgerStatus.FAILED),
        func.count().filter(today, status == LedgerStatus.PENDING, Digest.next_attempt_at > now),
        func.count().filter(today, status == LedgerStatus.SENDING),
        func.count().filter(Digest.run_on < run_on, status == LedgerStatus.FAILED),
    ]


def day_outcome(engine: Engine, *, run_on: dt.date, since: dt.datetime, now: dt.datetime, plan_ids: list[int] | None = None) -> DayOutcome:
    """Count the digests by where they are (one query; ``plan_ids``: of these plans only)."""
    q = select(*_outcome_counts(run_on, since, now))
    if plan_ids is not None:
        q = q.where(Digest.plan_id.in_(plan_ids))
    with session_scope(engine, readonly=True) as session:
        row = session.execute(q).one()
    return DayOutcome(*(int(v or 0) for v in row))


def outcomes_by_plan(
    engine: Engine, *, run_on: dt.date, since: dt.datetime, now: dt.datetime, plan_ids: list[int]
) -> dict[int, tuple[int, DayOutcome]]:
    """Of each of ``plan_ids`` that has digests: how many were made since ``since`` and its
    ``DayOutcome`` (one grouped query: the schools of a sweep swept together, each counted)."""
    made = func.count().filter(Digest.created_at >= since)
    q = select(Digest.plan_id, made, *_outcome_counts(run_on, since, now)).where(Digest.plan_id.in_(plan_ids)).group_by(Digest.plan_id)
    with session_scope(engine, readonly=True) as session:
        rows = session.execute(q).all()
    return {int(r[0]): (int(r[1] or 0), DayOutcome(*(int(v or 0) for v in r[2:]))) for r in rows}


def paused_line(result: DeliverResult) -> str | None:
    """A relay or chat service that stopped answering, as the office reads it (None: none)."""
    if not result.paused:
        return None
    return f"{result.paused} 份因通知渠道暂时无响应而暂停发送，将于 5 分钟后自动重试（{result.paused_reason}）。"


def outcome_lines(o: DayOutcome) -> list[str]:
    """What the office should know beyond "发送成功 n 份，失败 m 份" (the CLI and the flows' artifact)."""
    lines = []
    if o.failed:
        lines.append(f"发送失败的 {o.failed} 份将自动重试，原因可用 duban outbox --failed 查看。")
    if o.deferred:
        lines.append(f"其中 {o.deferred} 份不在发送时段内或通知渠道暂时无响应，将稍后自动发出。")
    if o.sending:
        lines.append(f"另有 {o.sending} 份正在由其他进程发送，或上次发送中断（中断的将自动重发）。")
    if o.older_failed:
        lines.append(f"此前各日仍有 {o.older_failed} 份通知发送失败，正在重试。")
    return lines
