"""The province's daily sweep on Prefect workers: 150 schools (benchmarks/province.py, each
school its own institution) on PostgreSQL, swept by the ``daily-sweep`` deployment through a real
Prefect server with 1 and then 2 process workers, all started from the units of deploy/
(benchmarks/production.py).  Prints the seconds from the run's creation to the parent's end
(whole process: the workers' polling, a subprocess per flow run, every school's sweep) and the
speed-up.

    python -m benchmarks.bench_workers --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Delivery goes to the local outbox (demo mode).  The store is loaded once into a template database
and copied for each run (CREATE DATABASE … TEMPLATE), so each run sweeps the same fresh day.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.common import load_average, machine_gauge, safe_url
from benchmarks.production import Stack, admin_sql, create_database, database_urls, drop_database


def load_store(url: str, size: int, seed: int, today: dt.date) -> dict[str, int]:
    """The ``size`` schools of benchmarks/province.py, each its own institution."""
    from benchmarks import province
    from duban.db import make_engine, session_scope, upgrade
    from duban.plans.sync import apply_plan

    engine = make_engine(url)
    upgrade(engine)
    for plan in province.schools(size, seed=seed, today=today):
        with session_scope(engine) as session:
            apply_plan(session, plan, actor="bench", source="bench_workers", now=province.ASSIGNED, institution=plan.code,
                       institution_name=plan.organization)  # fmt: skip
    acked = province.acknowledged(engine)
    engine.dispose()
    return {"schools": size, "acknowledged": acked}


def sweep_counts(url: str, day: dt.date) -> dict[str, int]:
    from sqlalchemy import func, select

    from duban.db import make_engine, session_scope
    from duban.models import Digest, Notification

    engine = make_engine(url, connect_timeout=10)
    with session_scope(engine, readonly=True) as s:
        out = {
            "ledger": int(s.scalar(select(func.count()).select_from(Notification).where(Notification.decided_on == day)) or 0),
            "digests": int(s.scalar(select(func.count()).select_from(Digest).where(Digest.run_on == day)) or 0),
            "sent": int(s.scalar(select(func.count()).select_from(Digest).where(Digest.run_on == day, Digest.status == "sent")) or 0),
        }
    engine.dispose()
    return out


def one_run(
    stack: Stack, *, admin: str, template: str, workers: int, day: dt.date, batch: int | None, work: Path, limit: int, pin: bool = False
) -> dict[str, Any]:
    """A fresh copy of the store, ``workers`` workers, one daily sweep: its figures."""
    name = f"bench_workers_{uuid.uuid4().hex[:8]}"
    admin_sql(admin, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = database_urls(admin, name)[0]
    stack.env_file.update(DUBAN_DATABASE_URL=url, DUBAN_OUTBOX_DIR=str(work / f"outbox-{workers}"), DUBAN_WORKER_LIMIT=str(limit))
    try:
        stack.workers(workers, pin=pin)
        time.sleep(3)  # the workers' first poll (what a running installation has long done)
        params: dict[str, Any] = {"today": day.isoformat(), "force": True} | ({"batch": batch} if batch else {})
        started = time.perf_counter()
        run_id = stack.run("daily-sweep/daily-sweep", params)
        (parent,) = stack.wait([run_id], timeout=900).values()
        seconds = time.perf_counter() - started
        children = [r for r in stack.flow_runs(parent_flow_run_id={"any_": [run_id]}) if r["id"] != run_id]
        if not children:
            children = [r for r in stack.flow_runs(tags={"all_": ["sweep"]}) if any(t.startswith("institution:") for t in r["tags"])]
        counts = sweep_counts(url, day)
    finally:
        stack.stop_workers()
        drop_database(admin, name)
    return {"workers": workers, "seconds": seconds, "state": parent["state"]["type"], "children": len(children), **counts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_workers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DUBAN_TEST_POSTGRES_URL"), help="a PostgreSQL server (its admin URL)")
    parser.add_argument("--size", type=int, default=150, help="schools (default 150)")
    parser.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated (default 1,2)")
    parser.add_argument("--batch", type=int, default=None, help="DUBAN_SWEEP_BATCH for the runs (default: the setting's default)")
    parser.add_argument("--limit", type=int, default=2, help="DUBAN_WORKER_LIMIT: flow runs at once per worker (default 2, as deploy/)")
    parser.add_argument(
        "--pin", action="store_true", help="worker i (and its flow runs) on CPU i-1 only: each worker a one-core machine (taskset)"
    )
    parser.add_argument("--today", default="2026-12-28")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or DUBAN_TEST_POSTGRES_URL) is required: the benchmark runs on PostgreSQL")
    day = dt.date.fromisoformat(args.today)
    admin = args.database_url
    template, prefect_db = f"bench_workers_tpl_{uuid.uuid4().hex[:6]}", f"bench_prefect_{uuid.uuid4().hex[:6]}"
    print(f"# bench_workers: {args.size} schools, PostgreSQL at {safe_url(admin)}; load {load_average()}")
    print(f"# machine gauge: {machine_gauge():.2f} s (benchmarks.common.machine_gauge: lower is faster)")
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        work = Path(tmp)
        create_database(admin, template)
        create_database(admin, prefect_db)
        try:
            t0 = time.perf_counter()
            loaded = load_store(database_urls(admin, template)[0], args.size, args.seed, day)
            print(f"store loaded in {time.perf_counter() - t0:.1f} s: {loaded}")
            env = {"DUBAN_DEMO": "1", "PREFECT_API_DATABASE_CONNECTION_URL": database_urls(admin, prefect_db)[1]}
            with Stack(work, env) as stack:
                stack.server()
                stack.deploy()
                options = {"admin": admin, "template": template, "day": day, "batch": args.batch, "work": work, "limit": args.limit}
                results = [one_run(stack, workers=int(n), pin=args.pin, **options) for n in args.workers.split(",")]
        finally:
            drop_database(admin, template)
            drop_database(admin, prefect_db)
    for r in results:
        print(
            f"{r['workers']} worker(s): {r['seconds']:.1f} s ({r['state']}), {r['children']} child runs; "
            f"{r['ledger']:,} ledger items, {r['digests']:,} digests, {r['sent']:,} sent"
        )
    if len(results) > 1:
        print(f"speed-up {results[0]['workers']} → {results[-1]['workers']} workers: {results[0]['seconds'] / results[-1]['seconds']:.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
