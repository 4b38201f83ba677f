"""The province's daily sweep as one process does it: `duban check` on N schools, whole process.

    python -m benchmarks.bench_province_check [--schools 150] [--repeat 2] [--database-url postgresql+psycopg://…/postgres]

The N schools of benchmarks/province.py (each its own institution, 175 tasks, ≈ 650 milestones,
100 people; 70 % of the tasks acknowledged) are loaded once; each measured run then starts from a
fresh copy of that store (a copy of the SQLite file, or CREATE DATABASE … TEMPLATE) and runs
`duban check --today 2026-12-28` as an operator would: a fresh interpreter, a temporary Prefect
server started by Prefect, the daily sweep (the schools without settings of their own swept
together), delivery to the local outbox (demo mode) and the roll-up snapshot.  Printed: wall and
CPU seconds (the process and its children: the temporary server included) and peak RSS of each
run, the check's own summary line, and the machine gauge (``benchmarks.common.machine_gauge``)
so that figures taken on different days can be compared.

A first run, not counted, lets Prefect create its own database in the PREFECT_HOME the runs
share (what any installation has done once).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.common import load_average, machine_gauge, safe_url, timed_child

ROOT = Path(__file__).resolve().parent.parent


def _fresh_store(args: argparse.Namespace, template: str, work: Path) -> tuple[str, str | None]:
    """A copy of the loaded store: its URL, and the PostgreSQL database to drop afterwards."""
    if not args.database_url:
        copy = work / f"check-{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(template, copy)
        return f"sqlite:///{copy}", None
    from benchmarks.production import admin_sql, database_urls

    name = f"bench_check_{uuid.uuid4().hex[:8]}"
    admin_sql(args.database_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return database_urls(args.database_url, name)[0], name


def _env(url: str, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUBAN_", "PREFECT_"))}
    env.update(
        DUBAN_DATABASE_URL=url,
        DUBAN_DEMO="1",
        DUBAN_OUTBOX_DIR=str(work / f"outbox-{uuid.uuid4().hex[:8]}"),
        DUBAN_DATA_DIR=str(work / "data"),
        DUBAN_SECRET_KEY="bench-province-" + "0123456789abcdefghijklmnopqrstuv",
        PREFECT_HOME=str(work / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_province_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--schools", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=2, help="measured runs (default 2), each on a fresh copy of the store")
    parser.add_argument("--today", default="2026-12-28")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server (databases are created and dropped)")
    args = parser.parse_args(argv)

    from benchmarks.bench_workers import load_store
    from benchmarks.production import admin_sql, database_urls, drop_database

    work = Path(tempfile.mkdtemp(prefix="duban-bench-check-"))
    where = safe_url(args.database_url) if args.database_url else "SQLite"
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M')}, load {load_average()}")
    print(f"machine gauge: {machine_gauge():.2f} s (benchmarks.common.machine_gauge)")
    print(f"{args.schools} schools, `duban check --today {args.today}`, {where}, delivery to the outbox")
    template = str(work / "template.db") if not args.database_url else f"bench_check_template_{uuid.uuid4().hex[:8]}"
    dropped: list[str] = []
    try:
        url = f"sqlite:///{template}" if not args.database_url else database_urls(args.database_url, template)[0]
        if args.database_url:
            admin_sql(args.database_url, f'CREATE DATABASE "{template}"')
            dropped.append(template)
        started = time.perf_counter()
        loaded = load_store(url, args.schools, args.seed, dt.date.fromisoformat(args.today))
        print(f"  loaded {loaded} in {time.perf_counter() - started:.1f} s")
        command = [str(Path(sys.executable).parent / "duban"), "check", "--today", args.today]
        for n in range(args.repeat + 1):
            store, name = _fresh_store(args, template, work)
            dropped += [name] if name else []
            run = timed_child(command, _env(store, work), cwd=ROOT)
            if run.returncode != 0:
                raise SystemExit(f"duban check failed ({run.returncode}):\n{run.output[-3000:]}")
            label = "first run (not counted: Prefect creates its database)" if n == 0 else f"run {n}"
            print(f"  {label}: {run.wall:.1f} s wall, {run.cpu:.1f} s CPU, peak {run.peak_mib:.0f} MiB — {run.first_line}", flush=True)
        print(f"load average at the end: {load_average()}")
        return 0
    finally:
        for name in dropped if args.database_url else ():
            drop_database(args.database_url, name)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
