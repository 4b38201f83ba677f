"""Delivery: send every due digest through a :class:`~notifications.channel.Channel`, so that a
message is never lost and never sent twice — at most the one in flight when the process dies
may repeat (docs/notifications.md, "The delivery promise").

How (``duban.sweep.claims`` holds the store side, ``duban.sweep.outcomes`` what a run comes to):

- each worker claims a few digests at a time, and marks each one sent, failed or released in a
  short transaction of its own right after the channel answered; a store that is busy (a SQLite
  write lock, a PostgreSQL deadlock or lost connection) is waited for and the same transaction
  run again — nothing new is sent meanwhile;
- before the store is told, the run's journal (``duban.sweep.journal``) gets a line for the
  message on local disk: a crash while the store is locked repeats nothing;
- a heartbeat renews the run's claims every quarter of the lease; a worker sends only while its
  claim is fresh, so a run that lost its store never sends what another run may have taken;
- every run first recovers what dead runs left (``claims.recover``), and leaves nothing 发送中
  when it ends;
- quiet hours hold digests back (not an attempt), a paused channel (its server stopped
  answering) gives the message back for later (not an attempt), and a person whose digest failed
  ``unreachable_after`` times is reported to the plan's office.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from duban.db import retry_transient, session_scope
from duban.links import LinkMaker
from duban.models import Department, Digest, Person, Plan
from duban.rules.quiet import QuietHours
from duban.sweep.claims import (
    claim_ids,
    mark_failed,
    mark_sent,
    new_token,
    recover,
    release,
    renew,
)
from duban.sweep.journal import Journal
from duban.sweep.outcomes import DeliverResult, defer_quiet, delivery_rows, notify_unreachable
from duban.values import bulk_work
from duban.vocabulary import Audience
from notifications.apps import DINGTALK, FEISHU, WECOM
from notifications.channel import Channel, DeliveryReport, Outgoing, as_channel
from notifications.digest import link_ids, page_url

__all__ = ["LEASE", "deliver"]

log = logging.getLogger("duban.delivery")

LEASE = dt.timedelta(minutes=2)  # a claim not renewed for this long is taken back by the next run
CLAIM = 4  # digests a worker takes at a time from a real channel (each marked on its own)
BATCH = 1000  # digests taken at a time for an idempotent channel (the outbox: marked together)
PAUSE = dt.timedelta(minutes=5)  # a message whose every channel is paused waits this long (not an attempt)
STORE_PATIENCE = 300.0  # seconds a worker waits for a busy store before the run gives up (the journal keeps what went out)
# keyed by the stored audience (a plain string; the keys are Audience members, which equal their values)
AUDIENCE_NAMES: dict[str, str] = {Audience.LEADING_GROUP: "领导小组", Audience.OFFICE: "领导小组办公室"}


def load_outgoing(engine: Engine, ids: list[int], *, links: LinkMaker, template_dir: Path | None = None) -> list[Outgoing]:
    """The claimed digests ``ids`` as messages for a channel: recipient, channels, link URLs."""
    if not ids:
        return []
    with session_scope(engine, readonly=True) as session:
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
                Person.wecom_userid,
                Person.dingtalk_userid,
                Person.feishu_open_id,
            )
            .outerjoin(Person, Person.id == Digest.recipient_id)
            .where(Digest.id.in_(ids))
            .order_by(Digest.id)
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
        urls = links.urls(session, [lid for r in rows for lid in link_ids(r.payload)])
    out = []
    for r in rows:
        app_ids: dict[str, str] = {}
        if r.audience == Audience.PERSON:
            name, channels = r.name, list(r.notify_urls or ())
            app_ids = {k: v for k, v in ((WECOM, r.wecom_userid), (DINGTALK, r.dingtalk_userid), (FEISHU, r.feishu_open_id)) if v}
        elif r.audience == Audience.DEPARTMENT:
            d = depts.get(r.department_id)
            name, channels = (f"{d.name}（群）", list(d.notify_urls or ())) if d else ("（部门已删除）", [])
        else:
            name = f"{AUDIENCE_NAMES.get(r.audience, r.audience)}（群）"
            channels = list((plan_channels.get(r.plan_id) or {}).get(r.audience, ()))
        out.append(
            Outgoing(
                r.id, r.recipient_id, name, r.email, r.run_on, r.subject, r.payload, r.attempts,
                urls=urls, template_dir=template_dir, plan_id=r.plan_id, audience=r.audience, channels=channels, mobile=r.mobile,
                app_ids=app_ids,
                page_url=page_url(r.payload, urls),
            )
        )  # fmt: skip
    return out


def _attempt(channel: Channel, out: Outgoing) -> tuple[DeliveryReport | None, str | None]:
    """Send one message: (report or None, reason of failure or None)."""
    try:
        report = channel.send(out)
    except Exception as err:  # noqa: BLE001 - a channel failure is data, not a crash
        return None, f"{err.__class__.__name__}: {err}"
    if report is not None and not report.ok:
        return report, report.reason
    return report, None


class _Run:
    """One call of :func:`deliver`: its token, clock, lease, journal and counts (shared by its workers)."""

    def __init__(
        self,
        engine: Engine,
        channel: Channel,
        *,
        now: dt.datetime,
        lease: dt.timedelta,
        journal_dir: Path | None,
        patience: float,
        plan_ids: list[int] | None = None,
    ):
        self.engine, self.channel, self.lease, self.patience = engine, channel, lease, patience
        self.plan_ids = plan_ids  # the plans whose digests this run sends (None: every plan's)
        self.token = new_token()
        self.journal = Journal(journal_dir, self.token)
        self._start, self._t0 = now, time.monotonic()
        self.renewed = self._t0
        self.result = DeliverResult()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.unmarked = False  # something went out that the store could not be told (the journal keeps it)
        self.crashes: list[BaseException] = []

    def now(self, at: float | None = None) -> dt.datetime:
        """The run's clock: the ``now`` it was given, moved on by the time it has taken since
        (until the monotonic moment ``at``, default: this moment)."""
        return self._start + dt.timedelta(seconds=(time.monotonic() if at is None else at) - self._t0)

    def claim(self, limit: int, recipients: list[int] | None) -> tuple[list[int], float]:
        """Claim up to ``limit`` due digests: their ids and the monotonic moment the claim is dated
        (taken before each try, so a claim that waited for the store is never thought younger
        than the store has it)."""

        def attempt() -> tuple[list[int], float]:
            t = time.monotonic()
            return claim_ids(self.engine, self.token, now=self.now(t), limit=limit, recipients=recipients, plan_ids=self.plan_ids), t

        return retry_transient(attempt, patience=self.patience)

    def store(self, work: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``work(*args, **kwargs)``: one transaction, run again while the store is busy."""
        return retry_transient(functools.partial(work, *args, **kwargs), patience=self.patience)

    def fresh(self, claimed: float) -> bool:
        """Whether a claim made at ``claimed`` (monotonic) is surely still ours: no other run may
        take it before the lease lapses; a quarter of it is kept for clocks that differ and for
        the send that is about to start."""
        return time.monotonic() - max(claimed, self.renewed) < self.lease.total_seconds() * 0.75

    def heartbeat(self) -> None:
        """Renew the run's claims every quarter of the lease until the run stops."""
        while not self.stop.wait(self.lease.total_seconds() / 4):
            started = time.monotonic()
            try:
                renew(self.engine, self.token, now=self.now())
            except Exception as err:  # noqa: BLE001 - the workers see the claims go stale and stop sending
                log.warning("could not renew delivery claims (%s: %s)", err.__class__.__name__, err)
                continue
            self.renewed = started

    def count(self, **deltas: int) -> None:
        with self.lock:
            for name, delta in deltas.items():
                setattr(self.result, name, getattr(self.result, name) + delta)


def _send_one(run: _Run, out: Outgoing) -> None:
    """Send one claimed message and tell the store at once (the journal first)."""
    engine, name = run.engine, run.channel.name
    report, error = _attempt(run.channel, out)
    at = run.now()
    if error is None:
        via = report.via if report is not None else name
        try:
            run.journal.record(out.id, via, at)
        except OSError as err:  # the store is still told; only a crash in the next moment would repeat it
            log.warning("delivery journal not written (%s): %s", run.journal.path, err)
        rows = delivery_rows(out, report, None, name, at)
        try:
            run.store(mark_sent, engine, [out.id], now=at, via={out.id: via}, deliveries=rows)
        except Exception:
            run.unmarked = True
            raise
        run.count(sent=1)
    elif report is not None and report.paused:
        run.store(release, engine, run.token, [out.id], until=at + PAUSE, reason=error)
        run.count(paused=1)
        run.result.paused_reason = run.result.paused_reason or error
    else:
        rows = delivery_rows(out, report, error, name, at)
        run.store(mark_failed, engine, [(out.id, out.attempts, error)], now=at, deliveries=rows)
        with run.lock:
            run.result.failed += 1
            run.result.failures.append((out, error))
            if report is not None and report.permanent:
                run.result.permanent.add(out.id)


def _worker(run: _Run, *, links: LinkMaker, template_dir: Path | None, recipients: list[int] | None) -> None:
    """Claim a few, send each, mark each; until nothing is due or the run stops."""
    engine, token = run.engine, run.token
    try:
        while not run.stop.is_set():
            ids, claimed = run.claim(CLAIM, recipients)
            if not ids:
                return
            batch = run.store(load_outgoing, engine, ids, links=links, template_dir=template_dir)
            for i, out in enumerate(batch):
                stale = not run.fresh(claimed)
                if run.stop.is_set() or stale:
                    run.store(release, engine, token, [o.id for o in batch[i:]], until=run.now())
                    if stale:
                        log.warning("delivery claims went stale (the store did not answer); stopping this run")
                        run.stop.set()
                    return
                _send_one(run, out)
    except BaseException as err:  # noqa: BLE001 - re-raised by deliver() in the calling thread
        run.crashes.append(err)
        run.stop.set()


def _batches(run: _Run, *, links: LinkMaker, template_dir: Path | None, recipients: list[int] | None) -> None:
    """An idempotent channel (the outbox): take many at a time and mark them together (a repeat
    rewrites the same file).  Every message of the batch has been tried before the store is told.

    One thread: rendering is Python under the GIL, and a second thread writing files beside it
    (as this did) spent half as much CPU again handing the GIL back and forth, for no time saved."""
    engine, name = run.engine, run.channel.name
    while True:
        ids, _ = run.claim(BATCH, recipients)
        if not ids:
            return
        outs = run.store(load_outgoing, engine, ids, links=links, template_dir=template_dir)
        _mark_batch(run, name, outs, [_attempt(run.channel, out) for out in outs])


def _mark_batch(run: _Run, name: str, outs: list[Outgoing], answers: list[tuple[DeliveryReport | None, str | None]]) -> None:
    """Tell the store what became of a batch: sent or failed, in one transaction each."""
    engine = run.engine
    sent: dict[int, str] = {}
    rows: list[dict[str, Any]] = []
    failures: list[tuple[int, int, str]] = []
    fail_rows: list[dict[str, Any]] = []
    for out, (report, error) in zip(outs, answers, strict=True):
        if error is None:
            sent[out.id] = report.via if report is not None else name
            rows += delivery_rows(out, report, None, name, run.now())
        else:
            failures.append((out.id, out.attempts, error))
            fail_rows += delivery_rows(out, report, error, name, run.now())
            run.result.failures.append((out, error))
    at = run.now()
    run.store(mark_sent, engine, list(sent), now=at, via=sent, deliveries=rows)
    run.store(mark_failed, engine, failures, now=at, deliveries=fail_rows)
    run.count(sent=len(sent), failed=len(failures))


@bulk_work()
def deliver(
    engine: Engine,
    send: Channel | Callable[[Outgoing], Any],
    *,
    now: dt.datetime,
    links: LinkMaker,
    recipients: Iterable[int] | None = None,
    template_dir: Path | None = None,
    workers: int = 1,
    quiet: QuietHours | None = None,
    unreachable_after: int | None = None,
    today: dt.date | None = None,
    lease: dt.timedelta = LEASE,
    journal_dir: Path | None = None,
    store_patience: float = STORE_PATIENCE,
    plan_ids: Iterable[int] | None = None,
) -> DeliverResult:
    """Send every digest that is due through ``send`` (a :class:`Channel`, or a plain function); a
    failure never stops the others.  ``workers`` threads send at once (a real channel); ``quiet``
    holds back what comes due outside working hours; after ``unreachable_after`` failed attempts
    of a person's digest the plan's office is told; ``journal_dir`` keeps the run's journal;
    ``plan_ids``: only these plans' digests (one institution's; None: every plan's).

    Raises when the store stays unavailable for ``store_patience`` seconds (what went out is in
    the journal, what was claimed is recovered by the next run)."""
    channel = as_channel(send)
    recipients = list(recipients) if recipients is not None else None
    plans = list(plan_ids) if plan_ids is not None else None
    run = _Run(engine, channel, now=now, lease=lease, journal_dir=journal_dir, patience=store_patience, plan_ids=plans)
    result = run.result
    try:
        result.recovered, result.interrupted = run.store(recover, engine, now=now, lease=lease, journal_dir=journal_dir)
        if quiet is not None:
            result.deferred = run.store(defer_quiet, engine, quiet, now=now, recipients=recipients, plan_ids=plans)
        heartbeat = threading.Thread(target=run.heartbeat, name="deliver-heartbeat", daemon=True)
        heartbeat.start()
        try:
            _run_workers(run, workers, links=links, template_dir=template_dir, recipients=recipients)
        finally:
            run.stop.set()
            heartbeat.join()
            _finish(run)
    finally:
        channel.close()
    if run.crashes:
        raise run.crashes[0]
    result.errors = [f"{o.recipient}：{r}" for o, r in result.failures]
    # the office is told after ``unreachable_after`` attempts, or at once when sending again cannot help
    hopeless = [(o, r) for o, r in result.failures if unreachable_after and (o.attempts >= unreachable_after or o.id in result.permanent)]
    if hopeless:
        result.unreachable = notify_unreachable(engine, hopeless, today=today or now.date())
    return result


def _run_workers(run: _Run, workers: int, **options: Any) -> None:
    if run.channel.idempotent:
        try:
            _batches(run, **options)
        except BaseException as err:  # noqa: BLE001 - re-raised by deliver() after the run is wound up
            run.crashes.append(err)
        return
    if workers <= 1:
        _worker(run, **options)
        return
    threads = [threading.Thread(target=_worker, args=(run,), kwargs=options, name=f"deliver-{n}") for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _finish(run: _Run) -> None:
    """Leave nothing 发送中 (what the run still holds is due again) and drop the journal when the
    store has everything it lists."""
    try:
        retry_transient(lambda: release(run.engine, run.token, None, until=run.now()), patience=min(run.patience, 30.0))
    except Exception as err:  # noqa: BLE001 - the next run recovers them after the lease
        log.warning("could not give back this run's claims (%s: %s); the next run takes them back", err.__class__.__name__, err)
        run.unmarked = True
    run.journal.close(all_marked=not run.unmarked)
