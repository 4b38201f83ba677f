"""Benchmark: from one school to a province (issue 18) — every stage of a day, per size.

    python -m benchmarks.bench_province [--sizes 1,10,150] [--smtp] [--database-url postgresql+psycopg://…] [--profile]

For each size N (schools; ``benchmarks.province``: 175 tasks, ≈ 650 milestones, 100 people, 30
departments each, each school an institution with its plan) a fresh child process on a fresh database runs the
day's stages one after another and reports wall and CPU seconds and the process's peak RSS after
each (``getrusage``: the peak so far, so a stage's figure is the highest of it and the stages
before):

1. import: the schools written with ``apply_plan`` as imported on 2026-09-01 (one transaction
   each), then 70 % of the tasks acknowledged;
2. the sweep as ``flows.sweep.daily_sweep`` runs it, without Prefect: decide (rules → ledger),
   assemble (one digest per recipient), deliver (the outbox — as ``duban check`` in demo mode —
   or, with ``--smtp``, email to the test suite's aiosmtpd server in the same process);
3. the roll-up snapshot (what the sweep stores for the trend);
4. the report (roll-up of every plan, HTML + XLSX).

The reference day is Monday 2026-12-28 (``--today``).  SQLite by default (a file in a temporary
folder); ``--database-url`` measures PostgreSQL instead: a fresh database ``duban_bench_province``
is created on that server for the run and dropped at the end.  ``--profile`` adds a cProfile of
assemble and deliver (text written beside the figures; ``--keep`` keeps it).

The driver imports only the standard library and ``benchmarks.common``; every size runs in a child.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import load_average, machine_gauge, safe_url

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "duban_bench_province"
STAGES = ("import", "decide", "assemble", "deliver", "roll-up snapshot", "report")
SWEEP = ("decide", "assemble", "deliver")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class _Clock:
    """Wall and CPU seconds of consecutive stages, with the peak RSS so far after each."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, float]] = {}
        self.reset()

    def reset(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def mark(self, stage: str, **extra: Any) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.rows[stage] = {"seconds": wall - self.wall, "cpu": cpu - self.cpu, "peak_mib": _peak_mib(), **extra}
        self.reset()


# ---------------------------------------------------------------------------------------------
# The child: one size, every stage


def _channel(spec: dict[str, Any], stack: Any, tz: Any) -> Any:
    """The outbox (the runtime's channel in demo mode) or email to a local aiosmtpd server."""
    from duban.runtime import runtime

    if not spec["smtp"]:
        return runtime().channel
    from notifications.channels import AppriseChannel
    from tests.servers import SMTPServer

    server = stack.enter_context(SMTPServer())
    spec["_server"] = server
    return AppriseChannel(server.relay_url, tz=tz)


def _profiled(spec: dict[str, Any], name: str, work: Any) -> Any:
    if not spec.get("profile"):
        return work()
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    result = prof.runcall(work)
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(45)
    Path(spec["profile"]).with_suffix(f".{name}.txt").write_text(out.getvalue(), encoding="utf-8")
    return result


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    import contextlib

    clock = _Clock()
    from benchmarks import province
    from duban.db import make_engine, upgrade
    from duban.report import write_report
    from duban.rollup.compute import compute
    from duban.rollup.snapshots import take_snapshot
    from duban.runtime import runtime
    from duban.sweep.decisions import decide
    from duban.sweep.delivery import deliver
    from duban.sweep.digests import assemble

    today = dt.date.fromisoformat(spec["today"])
    plans = province.schools(spec["size"], seed=spec["seed"], today=today)
    engine = make_engine(spec["database_url"])
    upgrade(engine)
    clock.mark("set-up", note="imports, generate, schema")
    province.load(engine, plans)
    acked = province.acknowledged(engine)
    clock.mark("import", acknowledged=acked)
    rt = runtime()
    links = rt.links(today)
    # the sweep's clock: 08:30 Beijing on the day (links and quiet hours depend on it, not on the real clock)
    now = dt.datetime.combine(today, dt.time(8, 30), tzinfo=rt.tz)
    with contextlib.ExitStack() as stack:
        channel = _channel(spec, stack, rt.tz)
        clock.reset()
        decided = decide(rt.engine, today=today, cal=rt.calendar, tz=rt.tz)
        clock.mark("decide", decisions=decided.decided, ledger=decided.new)
        digests = _profiled(
            spec,
            "assemble",
            lambda: assemble(rt.engine, today=today, links=links, channel=channel.name, template_dir=rt.settings.template_dir, now=now),
        )
        clock.mark("assemble", digests=digests)
        options = rt.deliver_options(today) | {"links": links, "workers": spec["workers"]}
        result = _profiled(spec, "deliver", lambda: deliver(rt.engine, channel, now=now, **options))
        received = len(spec["_server"].wait_for(result.sent, timeout=120)) if spec["smtp"] else result.sent
        clock.mark("deliver", sent=result.sent, failed=result.failed, received=received)
    stored = take_snapshot(rt.engine, as_of=today, tz=rt.tz, cal=rt.calendar)
    clock.mark("roll-up snapshot", rows=stored)
    files = write_report(compute(rt.engine, as_of=today, tz=rt.tz, cal=rt.calendar), spec["report_dir"])
    clock.mark("report", html_kib=files.html.stat().st_size // 1024, xlsx_kib=files.xlsx.stat().st_size // 1024)
    return {"stages": clock.rows, "counts": _counts(rt.engine)}


def _counts(engine: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    from duban.db import session_scope
    from duban.models import Department, Digest, Milestone, Notification, Person, Plan, Task

    models = {
        "plans": Plan,
        "tasks": Task,
        "milestones": Milestone,
        "people": Person,
        "departments": Department,
        "ledger": Notification,
        "digests": Digest,
    }
    with session_scope(engine, readonly=True) as s:
        return {name: int(s.scalar(select(func.count()).select_from(m)) or 0) for name, m in models.items()}


# ---------------------------------------------------------------------------------------------
# The driver


def _env(database_url: str, outbox: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUBAN_", "PREFECT_"))}
    env.update(DUBAN_DATABASE_URL=database_url, DUBAN_DEMO="1", DUBAN_OUTBOX_DIR=str(outbox))
    env["DUBAN_SECRET_KEY"] = "bench-province-" + "0123456789abcdefghijklmnopqrstuv"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def _run_child(spec: dict[str, Any], env: dict[str, str], workdir: Path) -> tuple[dict[str, Any], float, float]:
    """Run one size in a fresh interpreter: its result, wall seconds and peak RSS (MiB) as a whole process."""
    result = workdir / f"result-{spec['size']}.json"
    log = workdir / f"log-{spec['size']}.txt"
    spec = {**spec, "result": str(result)}
    started = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_province", "--child", json.dumps(spec)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wall = time.perf_counter() - started
    if proc.returncode != 0 or not result.exists():
        tail = "\n".join(log.read_text("utf-8", "replace").splitlines()[-30:])
        raise RuntimeError(f"size {spec['size']} failed ({proc.returncode}):\n{tail}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return json.loads(result.read_text("utf-8")), wall, peak


def _admin(url: str, statement: str) -> None:
    """Run one statement on the server's maintenance database (CREATE / DROP DATABASE)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(statement))
    engine.dispose()


def _database(args: argparse.Namespace, workdir: Path, size: int) -> str:
    """A fresh database for one size: a new SQLite file, or the run's PostgreSQL database recreated."""
    if not args.database_url:
        return f"sqlite:///{workdir / f'province-{size}.db'}"
    from sqlalchemy.engine import make_url

    _admin(args.database_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    _admin(args.database_url, f"CREATE DATABASE {BENCH_DB}")
    return make_url(args.database_url).set(database=BENCH_DB).render_as_string(hide_password=False)


def _print_table(rows: list[dict[str, Any]]) -> None:
    print("\nseconds (cpu) and peak RSS so far, MiB, per stage; the sweep is decide + assemble + deliver; sweep/institution: sweep / N")
    head = ["institutions", "tasks", *STAGES, "sweep", "sweep/institution", "process", "peak MiB"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        st = r["stages"]
        sweep = sum(st[s]["seconds"] for s in SWEEP)
        cells = [str(r["size"]), f"{r['counts']['tasks']:,}"]
        cells += [f"{st[s]['seconds']:.2f} ({st[s]['cpu']:.2f}) {st[s]['peak_mib']:.0f}" for s in STAGES]
        cells += [f"{sweep:.2f}", f"{sweep / r['size'] * 1000:.0f} ms", f"{r['wall']:.1f}", f"{r['peak']:.0f}"]
        print("| " + " | ".join(cells) + " |")
    print()
    for r in rows:
        st, c = r["stages"], r["counts"]
        print(
            f"  {r['size']} schools: {c['tasks']:,} tasks, {c['milestones']:,} milestones, {c['people']:,} people, "
            f"{c['departments']:,} departments; {st['decide']['decisions']:,} decisions, {st['decide']['ledger']:,} ledger rows, "
            f"{st['assemble']['digests']:,} digests, {st['deliver']['sent']:,} sent ({st['deliver']['received']:,} received), "
            f"{st['deliver']['failed']} failed; snapshot {st['roll-up snapshot']['rows']} rows; "
            f"report {st['report']['html_kib']:,} KiB HTML + {st['report']['xlsx_kib']:,} KiB XLSX"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_province", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,10,150", help="schools per run, comma-separated (default 1,10,150)")
    parser.add_argument("--today", default="2026-12-28", help="the day swept (default Monday 2026-12-28)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--smtp", action="store_true", help="deliver by email to a local aiosmtpd server instead of the outbox")
    parser.add_argument("--workers", type=int, default=1, help="delivery worker threads with --smtp (default 1)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL server to use (a fresh database is created and dropped)")
    parser.add_argument("--profile", action="store_true", help="cProfile assemble and deliver (text files in the temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        out = _child(spec)
        Path(spec["result"]).write_text(json.dumps(out, ensure_ascii=False, default=str), encoding="utf-8")
        return 0

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="duban-bench-province-"))
    where = safe_url(args.database_url) if args.database_url else "SQLite"
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M')}, load {load_average()}")
    print(f"machine gauge: {machine_gauge():.2f} s (benchmarks.common.machine_gauge: lower is faster)")
    print(f"sizes {sizes}, day {args.today}, {where}, delivery to {'aiosmtpd (email)' if args.smtp else 'the outbox'}")
    rows = []
    try:
        for size in sizes:
            url = _database(args, workdir, size)
            spec = {
                "size": size,
                "seed": args.seed,
                "today": args.today,
                "database_url": url,
                "smtp": args.smtp,
                "workers": args.workers,
                "report_dir": str(workdir / f"report-{size}"),
                **({"profile": str(workdir / f"profile-{size}")} if args.profile else {}),
            }
            print(f"  {size} schools …", flush=True)
            result, wall, peak = _run_child(spec, _env(url, workdir / f"outbox-{size}"), workdir)
            rows.append({"size": size, **result, "wall": wall, "peak": peak})
            for name in ("assemble", "deliver") if args.profile else ():
                print(Path(spec["profile"]).with_suffix(f".{name}.txt").read_text("utf-8"))
        _print_table(rows)
        print(f"\nload average at the end: {load_average()}")
        if args.json_out:
            args.json_out.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
        return 0
    finally:
        if args.database_url:
            _admin(args.database_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
