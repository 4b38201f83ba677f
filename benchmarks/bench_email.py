"""Email delivery benchmark: N digests (default 5,000) through the sweep to a local SMTP server.

    .venv/bin/python -m benchmarks.bench_email [--digests 5000] [--workers 1 8] [--relay-delay 0.02] [--database URL]

A plan with one owner per task, every task overdue and unacknowledged, so the daily sweep makes
exactly one digest (two items, five action links, HTML + text) per person.  The local server is
the test suite's aiosmtpd (``tests/servers.py``); it parses every message it accepts.  Only
``deliver`` is timed: claiming, rendering text and HTML, SMTP, the delivery journal (one
fsync'd line per message), marking each digest sent with its delivery record.  ``--relay-delay``:
the relay answers the end of each message that much later (a real relay scans it first); the
line also counts duplicates at the relay (messages beyond one per recipient), which must be 0.
For comparison the same messages through apprise's own email plugin (a new SMTP connection per
message) are timed on a sample.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

TZ = ZoneInfo("Asia/Shanghai")
DAY = dt.date(2026, 11, 23)
SECRET = "b" * 8 + "0123456789abcdefghijklmnopqrstuv"


def plan(n: int) -> dict:
    people = [{"name": f"责任人{i:05d}", "email": f"owner{i:05d}@example.org"} for i in range(n)]
    tasks = [{"code": str(i + 1), "title": f"第 {i + 1} 项改革任务", "owner": f"责任人{i:05d}", "deadline": "2026-11-16"} for i in range(n)]
    return {
        "version": 1,
        "plan": {"code": "bench", "name": "邮件基准方案", "office": [people[0]["name"]]},
        "people": people,
        "systems": [{"name": "课程育人", "projects": [{"name": "项目", "tasks": tasks}]}],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--digests", type=int, default=5000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--naive-sample", type=int, default=200, help="messages sent the naive way (apprise notify per message)")
    ap.add_argument("--relay-delay", type=float, default=0.02, help="seconds the relay takes to answer the end of a message")
    ap.add_argument("--database", help="database URL (default: a fresh SQLite file per run)")
    args = ap.parse_args()

    from benchmarks.common import load_average
    from duban.db import make_engine, upgrade
    from duban.links import LinkMaker
    from duban.plans.importer import import_plan
    from duban.rules.calendar import WorkCalendar
    from duban.sweep.decisions import decide
    from duban.sweep.delivery import deliver
    from duban.sweep.digests import assemble
    from notifications.channels import AppriseChannel
    from tests.servers import SMTPServer

    folder = Path(tempfile.mkdtemp(prefix="bench-email-"))
    source = folder / "plan.yaml"
    source.write_text(yaml.safe_dump(plan(args.digests), allow_unicode=True), encoding="utf-8")
    print(f"email benchmark: {args.digests} digests, relay answers after {args.relay_delay * 1000:.0f} ms, load average {load_average()}")
    for workers in args.workers:
        url = args.database or f"sqlite:///{folder / f'w{workers}.db'}"
        if args.database:
            from benchmarks.common import reset_postgres_schema

            reset_postgres_schema({"database_url": url})
        engine = make_engine(url)
        upgrade(engine)
        import_plan(engine, source, now=dt.datetime(2026, 11, 2, 9, 0, tzinfo=TZ))
        links = LinkMaker("https://duban.example.edu.cn", SECRET, DAY)
        now = dt.datetime(2026, 11, 23, 8, 30, tzinfo=TZ)
        decide(engine, today=DAY, cal=WorkCalendar(), tz=TZ)
        made = assemble(engine, today=DAY, links=links, channel="dispatch", now=now)
        with SMTPServer() as server:
            if args.relay_delay:
                server.slow(args.relay_delay)
            send = AppriseChannel(server.relay_url, tz=TZ)
            started = time.perf_counter()
            result = deliver(engine, send, now=now, links=links, workers=workers, journal_dir=folder / "journal")
            seconds = time.perf_counter() - started
            received = server.wait_for(result.sent, timeout=60)
        unique = len({m.rcpt_tos[0] for m in received})
        print(
            f"  workers={workers:<2} digests={made} sent={result.sent} failed={result.failed} received={len(received)} "
            f"duplicates={len(received) - unique} in {seconds:.1f} s → {result.sent / seconds:.0f} messages/s"
        )
        engine.dispose()

    if args.naive_sample:
        import apprise

        with SMTPServer() as server:
            body = "<p>" + "督办提醒" * 200 + "</p>"
            started = time.perf_counter()
            for i in range(args.naive_sample):
                apprise.Apprise.instantiate(server.url(f"owner{i:05d}@example.org")).notify(body=body, title="督办提醒")
            seconds = time.perf_counter() - started
            server.wait_for(args.naive_sample, timeout=30)
        print(
            f"  for comparison: apprise notify() per message (new SMTP connection each), {args.naive_sample} messages "
            f"in {seconds:.1f} s → {args.naive_sample / seconds:.0f} messages/s"
        )


if __name__ == "__main__":
    main()
