"""Claims on digests being sent: who holds which message, for how long, and what happens to the
messages of a sender that died.

A delivery run has a token (``host:pid:random``).  It claims a few due digests at a time (status
``sending``, ``claimed_at``, ``claim_token``), keeps its claims alive while it works (``renew``,
every quarter of the lease), and marks each message sent, failed or released on its own, in a
short transaction, right after the channel answered.  A claim that is not renewed within the
lease — the run died — is recovered by the next run (``recover``); on the same machine a run
whose process is gone is recovered at once, without waiting for the lease.  Every function here
is one transaction, safe to run again after a transient store error (``duban.db.retry_transient``).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, case, func, select, update

from duban.db import rowcount, session_scope
from duban.models import Delivery, Digest, Notification, table_of
from duban.sweep import journal
from duban.values import aware, chunks
from duban.vocabulary import LedgerStatus

MAX_BACKOFF = dt.timedelta(hours=6)
FIRST_BACKOFF = dt.timedelta(minutes=5)
INTERRUPTED = "发送过程中断（发送程序意外退出），已重新排队发送"


def backoff(attempts: int) -> dt.timedelta:
    return min(FIRST_BACKOFF * 2 ** max(attempts - 1, 0), MAX_BACKOFF)


def new_token() -> str:
    """This run's claim token: the machine, the process and a random part."""
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:40] or "host"
    return f"{host}:{os.getpid()}:{secrets.token_hex(4)}"


def due_condition(now: dt.datetime, recipients: list[int] | None = None, plan_ids: list[int] | None = None):
    """Digests due at ``now`` (of these people, of these plans: None = everyone's, every plan's)."""
    due = and_(Digest.status.in_((LedgerStatus.PENDING, LedgerStatus.FAILED)), Digest.next_attempt_at <= now)
    if recipients is not None:
        due = and_(due, Digest.recipient_id.in_(recipients))
    return due if plan_ids is None else and_(due, Digest.plan_id.in_(plan_ids))


def claim_ids(
    engine: Engine, token: str, *, now: dt.datetime, limit: int, recipients: list[int] | None = None, plan_ids: list[int] | None = None
) -> list[int]:
    """Take up to ``limit`` due digests for ``token`` (oldest first; of these plans: None = all); their ids."""
    due = due_condition(now, recipients, plan_ids)
    with session_scope(engine) as session:
        q = select(Digest.id).where(due).order_by(Digest.id).limit(limit).with_for_update(skip_locked=True)
        ids = list(session.scalars(q))
        if not ids:
            return []
        session.execute(
            update(Digest)
            .where(Digest.id.in_(ids), due)
            .values(status=LedgerStatus.SENDING, claimed_at=now, claim_token=token, attempts=Digest.attempts + 1)
        )
        return list(session.scalars(select(Digest.id).where(Digest.id.in_(ids), Digest.claim_token == token).order_by(Digest.id)))


def renew(engine: Engine, token: str, *, now: dt.datetime) -> int:
    """Keep this run's claims alive: how many it holds."""
    with session_scope(engine) as session:
        return rowcount(
            session.execute(update(Digest).where(Digest.claim_token == token, Digest.status == LedgerStatus.SENDING).values(claimed_at=now))
        )


MARK_CHUNK = 1000  # digests per UPDATE … WHERE id IN (…) when many are marked at once


def mark_sent(
    engine: Engine, ids: list[int], *, now: dt.datetime, via: dict[int, str] | None = None, deliveries: list[dict[str, Any]] | None = None
) -> None:
    """Mark digests and their items sent, in one short transaction.

    Whoever holds the claim now: a message that went out is sent, even when its lease lapsed.
    Set-based: one UPDATE per channel combination (``via``) and chunk of ids, not one per digest."""
    if not ids:
        return
    via = via or {}
    by_via: dict[str | None, list[int]] = {}
    for i in ids:
        by_via.setdefault((via.get(i) or None) and via[i][:200], []).append(i)
    d_tab, n_tab = table_of(Digest), table_of(Notification)
    with session_scope(engine) as session:
        for channels, group in by_via.items():
            for chunk in chunks(sorted(group), MARK_CHUNK):
                session.execute(
                    d_tab.update()
                    .where(d_tab.c.id.in_(chunk))
                    .values(status=LedgerStatus.SENT, sent_at=now, last_error=None, delivered_via=channels, claim_token=None)
                )
                session.execute(n_tab.update().where(n_tab.c.digest_id.in_(chunk)).values(status=LedgerStatus.SENT))
        if deliveries:
            session.execute(table_of(Delivery).insert(), deliveries)


def mark_failed(
    engine: Engine, failures: list[tuple[int, int, str]], *, now: dt.datetime, deliveries: list[dict[str, Any]] | None = None
) -> None:
    """Mark digests failed: ``(id, attempts, reason)``; each is due again after its backoff."""
    if not failures:
        return
    with session_scope(engine) as session:
        for digest_id, attempts, reason in failures:
            session.execute(
                update(Digest)
                .where(Digest.id == digest_id, Digest.status == LedgerStatus.SENDING)
                .values(status=LedgerStatus.FAILED, last_error=reason[:2000], next_attempt_at=now + backoff(attempts), claim_token=None)
            )
        if deliveries:
            session.execute(table_of(Delivery).insert(), deliveries)


def release(engine: Engine, token: str, ids: Iterable[int] | None, *, until: dt.datetime, reason: str | None = None) -> int:
    """Give back claims that were not tried (not an attempt): due again at ``until``.  ``ids``
    None: everything ``token`` still holds (a finished run leaves nothing 发送中)."""
    held = and_(Digest.claim_token == token, Digest.status == LedgerStatus.SENDING)
    if ids is not None:
        ids = list(ids)
        if not ids:
            return 0
        held = and_(held, Digest.id.in_(ids))
    values: dict[str, Any] = {
        "status": LedgerStatus.PENDING,
        "claim_token": None,
        "attempts": case((Digest.attempts > 0, Digest.attempts - 1), else_=0),
        "next_attempt_at": until,
    }
    if reason is not None:
        values["last_error"] = reason[:2000]
    with session_scope(engine) as session:
        return rowcount(session.execute(update(Digest).where(held).values(**values)))


def _local_and_dead(token: str) -> bool:
    """Whether ``token`` is a run of another process of this machine that no longer exists."""
    host, _, rest = token.partition(":")
    pid_text = rest.partition(":")[0]
    if host != new_token().partition(":")[0] or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (another user's process)
        return False
    return False


def _held(engine: Engine) -> dict[str | None, dt.datetime | None]:
    """The tokens that hold digests being sent, with their newest claim or renewal."""
    with session_scope(engine, readonly=True) as session:
        rows = session.execute(
            select(Digest.claim_token, func.max(Digest.claimed_at))
            .where(Digest.status == LedgerStatus.SENDING)
            .group_by(Digest.claim_token)
        ).all()
    return {token: last for token, last in rows}


def recover(engine: Engine, *, now: dt.datetime, lease: dt.timedelta, journal_dir: Path | None) -> tuple[int, int]:
    """Take back what dead runs held: first mark sent what their journal says went out, then make
    the rest due now (status failed, reason 发送过程中断).  A run is dead when its process of this
    machine is gone, or when it has not renewed its claims within ``lease``.  Returns (marked
    sent, made due again)."""
    held = _held(engine)
    marked = released = 0
    for token in set(held) | set(journal.tokens(journal_dir)):
        last = aware(held.get(token))
        expired = last is not None and last < now - lease
        dead = token is not None and _local_and_dead(token)
        if not (dead or expired):
            continue
        if token is not None:
            marked += _apply_journal(engine, journal_dir, token, now=now)
        released += _requeue(engine, token, now=now)
        if dead and token is not None:
            journal.discard(journal_dir, token)
    return marked, released


def _apply_journal(engine: Engine, journal_dir: Path | None, token: str, *, now: dt.datetime) -> int:
    entries = {e.digest_id: e for e in journal.read(journal_dir, token)}
    if not entries:
        return 0
    with session_scope(engine, readonly=True) as session:
        todo = list(session.scalars(select(Digest.id).where(Digest.id.in_(list(entries)), Digest.status != LedgerStatus.SENT)))
    rows = [
        {"digest_id": i, "channel": channel[:30], "target": "", "at": entries[i].at, "ok": True, "error": None}
        for i in todo
        for channel in (entries[i].via.split(",") or [""])
    ]
    mark_sent(engine, todo, now=now, via={i: entries[i].via for i in todo}, deliveries=rows)
    return len(todo)


def _requeue(engine: Engine, token: str | None, *, now: dt.datetime) -> int:
    held_by = Digest.claim_token.is_(None) if token is None else Digest.claim_token == token
    with session_scope(engine) as session:
        return rowcount(
            session.execute(
                update(Digest)
                .where(held_by, Digest.status == LedgerStatus.SENDING)
                .values(status=LedgerStatus.FAILED, last_error=INTERRUPTED, next_attempt_at=now, claim_token=None)
            )
        )
