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
from duban.sweep.delivery import DeliverResult, deliver
from duban.sweep.digests import assemble, held_due
from duban.vocabulary import LedgerStatus


def deliver_due(rt: Any, recipients: list[int] | None = None, *, now: dt.datetime | None = None) -> DeliverResult:
    """Deliver every digest that is due (new, a retry, one held back for working hours); then
    assemble and deliver at once the notices to the office about people who cannot be reached."""
    now = now or dt.datetime.now(dt.UTC)
    today = now.astimezone(rt.tz).date()
    options = rt.deliver_options(today)
    assemble_held(rt, now=now, today=today, links=options["links"])
    if not anything_due(rt.engine, now=now, lease=options["lease"], journal_dir=options["journal_dir"]):
        return DeliverResult()
    result = deliver(rt.engine, rt.channel, now=now, recipients=recipients, **options)
    if result.unreachable:
        assemble(rt.engine, today=today, links=options["links"], channel=rt.channel.name, recipients=result.unreachable)
        extra = deliver(rt.engine, rt.channel, now=now, recipients=result.unreachable, **options)
        result.sent += extra.sent
        result.failed += extra.failed
        result.errors += extra.errors
    return result


def assemble_held(rt: Any, *, now: dt.datetime, today: dt.date, links: Any) -> int:
    """The digests of the people whose held ledger items came due (the office's batch time passed):
    one digest each with everything held for them (read-only when nobody has any)."""
    with session_scope(rt.engine, readonly=True) as session:
        people = held_due(session, now)
    if not people:
        return 0
    return assemble(
        rt.engine, today=today, links=links, channel=rt.channel.name, template_dir=rt.settings.template_dir, recipients=people, now=now
    )


def anything_due(engine: Engine, *, now: dt.datetime, lease: dt.timedelta, journal_dir: Path | None) -> bool:
    """Whether a delivery run has anything to do (read-only: a run every few minutes that finds
    nothing takes no write lock)."""
    if journal.tokens(journal_dir):
        return True
    with session_scope(engine, readonly=True) as session:
        due = select(Digest.id).where(due_condition(now)).limit(1)
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


def day_outcome(engine: Engine, *, run_on: dt.date, since: dt.datetime, now: dt.datetime) -> DayOutcome:
    """Count the digests by where they are (one query)."""
    status, today = Digest.status, Digest.run_on == run_on
    with session_scope(engine, readonly=True) as session:
        row = session.execute(
            select(
                func.count().filter(status == LedgerStatus.SENT, Digest.sent_at >= since),
                func.count().filter(today, status == LedgerStatus.FAILED),
                func.count().filter(today, status == LedgerStatus.PENDING, Digest.next_attempt_at > now),
                func.count().filter(today, status == LedgerStatus.SENDING),
                func.count().filter(Digest.run_on < run_on, status == LedgerStatus.FAILED),
            )
        ).one()
    return DayOutcome(*(int(v or 0) for v in row))


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
