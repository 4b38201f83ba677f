"""The delivery promise under faults: a message is never lost and never sent twice — at most the
one in flight when a process dies may repeat (docs/notifications.md, "The delivery promise").

Every test sends real mail through the apprise channel to the local SMTP server and counts, at
the relay, how many times each digest arrived (each digest has its own subject).  The faults: the
store locked while messages go out (SQLite: another writer holds the write lock longer than the
busy timeout; PostgreSQL: ``LOCK TABLE … ACCESS EXCLUSIVE``), kill -9 of the delivering process at
each stage, two delivery runs at once with a slow relay, and a relay slower than the lease.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import make_url

from duban.db import make_engine, session_scope
from duban.links import LinkMaker
from duban.models import Digest
from duban.rules.calendar import WorkCalendar
from duban.sweep.decisions import decide
from duban.sweep.delivery import deliver
from duban.sweep.digests import assemble
from duban.sweep.outcomes import DeliverResult
from notifications.channels import AppriseChannel
from tests.factories import import_announced, small_plan, write_yaml
from tests.servers import REPO, wait_until
from tests.sweep.deliver_child import BASE, SECRET

TZ = ZoneInfo("Asia/Shanghai")
MON = dt.date(2026, 11, 23)
NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
IMPORTED = dt.datetime(2026, 11, 2, 9, 0, tzinfo=TZ)
LINKS = LinkMaker(BASE, SECRET, MON)


# ---------------------------------------------------------------------------------------------
# Fixtures built in code: n digests of the small plan's five people, each with its own subject


def queue_digests(engine, tmp_path: Path, n: int) -> list[str]:
    """The small plan's Monday digests (five people), copied until there are ``n``, numbered."""
    import_announced(engine, write_yaml(tmp_path / "p.yaml", small_plan()), now=IMPORTED)
    decide(engine, today=MON, cal=WorkCalendar(), tz=TZ)
    assemble(engine, today=MON, links=LINKS, channel="dispatch", now=NOW - dt.timedelta(minutes=30))
    subject = lambda i: f"【督办提醒】测试通知 {i + 1:03d}"  # noqa: E731
    with session_scope(engine) as s:
        model = [dict(r._mapping) for r in s.execute(select(Digest.__table__).order_by(Digest.id)).all()]
        for i, row in enumerate(model):
            s.execute(Digest.__table__.update().where(Digest.id == row["id"]).values(subject=subject(i)))
        copies = [{**{k: v for k, v in model[i % len(model)].items() if k != "id"}, "subject": subject(i)} for i in range(len(model), n)]
        if copies:
            s.execute(insert(Digest.__table__), copies)
    return [f"【督办提醒】测试通知 {i + 1:03d}" for i in range(n)]


def arrivals(smtp_server) -> Counter:
    return Counter(m.subject for m in smtp_server.received)


def statuses(engine) -> Counter:
    with session_scope(engine) as s:
        return Counter(s.scalars(select(Digest.status)))


@contextlib.contextmanager
def store_locked(database_url: str) -> Iterator[None]:
    """Another connection holds the store: SQLite's write lock, or PostgreSQL's table lock on digests."""
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as conn:
        conn.execute("LOCK TABLE digests IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            conn.rollback()


def settled(count: Callable[[], int], quiet: float = 1.0, timeout: float = 20.0) -> int:
    """Wait until ``count()`` has not changed for ``quiet`` seconds; its value."""
    deadline = time.monotonic() + timeout
    last, since = count(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
    raise AssertionError(f"still changing after {timeout} s")


class Child:
    """``tests/sweep/deliver_child.py`` in a process of its own (to be killed)."""

    def __init__(self, database_url: str, relay: str, journal: Path, *, workers: int = 1, lease: float = 120.0, now=NOW):
        args = ["--db", database_url, "--relay", relay, "--now", now.isoformat(), "--journal", str(journal)]
        args += ["--workers", str(workers), "--lease", str(lease)]
        self.proc = subprocess.Popen(  # noqa: S603 - this Python and our module
            [sys.executable, "-m", "tests.sweep.deliver_child", *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "started", self.proc.stderr.read() if self.proc.stderr else ""

    def kill(self) -> None:
        self.proc.kill()  # kill -9: no finally, no exit handler
        self.proc.wait(10)

    def result(self, timeout: float = 120) -> dict:
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err
        return json.loads(out.strip().splitlines()[-1])


def rerun(engine, smtp_server, journal: Path, *, minutes: int = 1) -> DeliverResult:
    smtp_server.ok()
    return deliver(engine, AppriseChannel(smtp_server.relay_url), now=NOW + dt.timedelta(minutes=minutes), links=LINKS, journal_dir=journal)


# ---------------------------------------------------------------------------------------------
# The store locked while messages go out


@pytest.mark.parametrize("workers", [1, 4])
def test_a_store_locked_during_delivery_still_sends_every_message_once(database_url, tmp_path, smtp_server, workers):
    # a busy timeout far shorter than the lock: marking fails with "database is locked" and is run again
    engine = make_engine(database_url, busy_timeout=0.3)
    subjects = queue_digests(engine, tmp_path, 20)
    smtp_server.slow(0.05)
    outcome: dict[str, DeliverResult] = {}

    def run() -> None:
        channel = AppriseChannel(smtp_server.relay_url)
        outcome["run"] = deliver(engine, channel, now=NOW, links=LINKS, workers=workers, journal_dir=tmp_path / "journal")

    sender = threading.Thread(target=run)
    sender.start()
    assert wait_until(lambda: len(smtp_server.received) >= 3, 30)
    with store_locked(database_url):
        during = settled(lambda: len(smtp_server.received))  # nothing new goes out while the store cannot record it
        time.sleep(1.0)
        assert len(smtp_server.received) == during
    sender.join(120)
    assert arrivals(smtp_server) == Counter(dict.fromkeys(subjects, 1))
    assert (outcome["run"].sent, outcome["run"].failed) == (20, 0)
    assert statuses(engine) == Counter({"sent": 20})
    assert list((tmp_path / "journal").glob("*")) == []  # the store has everything: the journal is gone


def test_kill_while_the_store_is_locked_repeats_nothing(database_url, tmp_path, smtp_server):
    """Four workers have sent and wait for the locked store when the process is killed: the
    journal on disk says what went out, so the next run marks those sent and sends only the rest."""
    engine = make_engine(database_url)
    subjects = queue_digests(engine, tmp_path, 20)
    smtp_server.slow(0.05)
    child = Child(database_url, smtp_server.relay_url, tmp_path / "journal", workers=4)
    assert wait_until(lambda: len(smtp_server.received) >= 3, 30)
    with store_locked(database_url):
        went_out = settled(lambda: len(smtp_server.received))
        child.kill()
    assert 3 <= went_out < 20
    assert len(list((tmp_path / "journal").glob("*.jsonl"))) == 1
    marked_before = statuses(engine)["sent"]  # marked before the lock was taken
    result = rerun(engine, smtp_server, tmp_path / "journal")
    # the kill came after the sends settled, so the journal knew every one: no repeat at all
    assert arrivals(smtp_server) == Counter(dict.fromkeys(subjects, 1))
    assert marked_before + result.recovered == went_out and result.recovered >= 1
    assert result.sent == 20 - went_out
    assert statuses(engine) == Counter({"sent": 20})
    assert list((tmp_path / "journal").glob("*")) == []


# ---------------------------------------------------------------------------------------------
# kill -9 at each stage


def test_kill_while_the_relay_holds_the_answer_repeats_only_that_message(database_url, tmp_path, smtp_server):
    """The relay has the message but its answer never reached us: that one message, and only it,
    goes out again (the promise's "at most the one in flight")."""
    engine = make_engine(database_url)
    subjects = queue_digests(engine, tmp_path, 6)
    smtp_server.slow(30)  # the relay keeps the message and answers the final "." only after 30 s
    child = Child(database_url, smtp_server.relay_url, tmp_path / "journal", workers=1)
    assert wait_until(lambda: len(smtp_server.received) == 1, 30)
    child.kill()
    in_flight = smtp_server.received[0].subject
    result = rerun(engine, smtp_server, tmp_path / "journal")
    counts = arrivals(smtp_server)
    assert counts == Counter({**dict.fromkeys(subjects, 1), in_flight: 2})
    assert (result.sent, result.recovered, result.interrupted) == (6, 0, 4)  # its claim of four went back at once
    assert statuses(engine) == Counter({"sent": 6})


def test_kill_before_anything_went_out_loses_nothing(database_url, tmp_path, smtp_server):
    """Killed while waiting for the store to claim its first messages: nothing was sent, the next
    run sends everything once."""
    engine = make_engine(database_url)
    subjects = queue_digests(engine, tmp_path, 6)
    with store_locked(database_url):
        child = Child(database_url, smtp_server.relay_url, tmp_path / "journal", workers=2)
        time.sleep(0.5)
        child.kill()
    assert smtp_server.received == []
    result = rerun(engine, smtp_server, tmp_path / "journal")
    assert arrivals(smtp_server) == Counter(dict.fromkeys(subjects, 1))
    assert result.sent == 6


def test_a_killed_run_is_visible_and_recovered_by_the_next_run_without_waiting_for_the_lease(database_url, tmp_path, smtp_server):
    engine = make_engine(database_url)
    subjects = queue_digests(engine, tmp_path, 8)
    smtp_server.slow(30)
    child = Child(database_url, smtp_server.relay_url, tmp_path / "journal", workers=2, lease=600)
    assert wait_until(lambda: len(smtp_server.received) == 2, 30)
    child.kill()
    assert statuses(engine)["sending"] == 8  # two claims of four, held by a process that no longer exists
    # the next run, a minute later (well inside the 10-minute lease), sees the process is gone
    result = rerun(engine, smtp_server, tmp_path / "journal", minutes=1)
    assert (result.interrupted, result.sent) == (8, 8)
    counts = arrivals(smtp_server)
    assert set(counts) == set(subjects) and sum(counts.values()) == 10  # the two in flight went out again
    assert statuses(engine) == Counter({"sent": 8})


# ---------------------------------------------------------------------------------------------
# Runs at once, a relay slower than the lease


def test_two_runs_at_once_with_a_slow_relay_send_each_message_once(database_url, tmp_path, smtp_server):
    engine = make_engine(database_url)
    subjects = queue_digests(engine, tmp_path, 24)
    smtp_server.slow(0.05)
    runs = [Child(database_url, smtp_server.relay_url, tmp_path / "journal", workers=2) for _ in range(2)]
    results = [r.result() for r in runs]
    assert arrivals(smtp_server) == Counter(dict.fromkeys(subjects, 1))
    assert sum(r["sent"] for r in results) == 24
    assert statuses(engine) == Counter({"sent": 24})


def test_a_relay_slower_than_the_lease_is_not_taken_over_by_another_run(database_url, tmp_path, smtp_server):
    """Each message takes 2 s at the relay and the lease is 5 s: the first run keeps its claims
    alive (renewed every quarter of the lease), so a second run started 6 s later, when the first
    one's earliest claim is older than the lease, finds nothing of the first run's to take."""
    engine = make_engine(database_url)
    subjects = queue_digests(engine, tmp_path, 5)
    smtp_server.slow(2.0)
    first = Child(database_url, smtp_server.relay_url, tmp_path / "journal", workers=1, lease=5)
    time.sleep(6)
    second = Child(database_url, smtp_server.relay_url, tmp_path / "journal", workers=1, lease=5, now=NOW + dt.timedelta(seconds=6))
    results = [first.result(), second.result()]
    assert arrivals(smtp_server) == Counter(dict.fromkeys(subjects, 1))
    # the second run may take only the fifth, which the first had not claimed yet (it claims four at a time)
    assert sum(r["sent"] for r in results) == 5 and results[0]["sent"] >= 4
