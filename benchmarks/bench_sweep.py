"""Benchmark: the daily sweep (decide → ledger → digests → outbox delivery), one school and a province.

    python -m benchmarks.bench_sweep [--plans 150] [--database-url postgresql+psycopg://…] [--skip-prefect]

1. Province: ``--plans`` schools built in code by ``benchmarks.province`` (the benchmarks' one
   generator: 175 tasks, ≈ 650 milestones, 100 people and 30 departments each, each school its own
   institution), the steps' due dates spread around the reference day 2026-11-23.  They are written
   with ``duban.plans.sync.apply_plan`` (bulk) as imported on 2026-09-01; then every task is marked
   announced and 70 % of them acknowledged.  Loading is timed but is not part of a target.
2. In a fresh process (so that ``getrusage(RUSAGE_SELF).ru_maxrss`` is that of the sweep alone):
   the steps of the daily-sweep flow, as the flow calls them (``duban.runtime`` set-up,
   ``decide``, ``assemble``, ``deliver`` through the outbox file channel into a
   temporary folder); then the same day again (idempotent: nothing new).
   Targets: the sweep (set-up + the three steps) ≤ 30 s and peak RSS ≤ 1024 MiB.
3. One school end to end (the example plan ``definitions/plans/sanquan-yuren.yaml``, imported on
   2026-09-01, 70 % of its tasks acknowledged): the library steps alone in a fresh process (the
   "own work", target ≤ 2 s); then one embedded Prefect server (started once) and
   ``flows.sweep.daily_sweep(today=2026-11-23, force=True)`` on fresh copies of the database, cold
   and warm; then the design we rejected: one Prefect subflow per task (``--subflow-tasks`` of them,
   extrapolated linearly to every task when fewer), as the ratio we beat.

SQLite always (fresh files in a temporary folder); PostgreSQL too with ``--database-url`` (its
schema ``public`` is DROPPED and recreated: use a throw-away database).  Exit status 1 when a target
is missed or a check fails.  ``--profile`` adds a cProfile run of the province sweep per database
(on freshly loaded data) and prints its top costs.

This driver imports only the standard library; every measurement runs in a child interpreter.
"""

from __future__ import annotations

import argparse
import datetime as dt  # module level: the throwaway flows' annotations resolve against these globals
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

from benchmarks.common import load_average as _load
from benchmarks.common import reset_postgres_schema as _child_reset
from benchmarks.common import safe_url as _safe

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_YAML = ROOT / "definitions" / "plans" / "sanquan-yuren.yaml"
TODAY = "2026-11-23"  # a Monday, a working day
IMPORTED = "2026-09-01T08:00:00+08:00"  # the reform period starts: tasks assigned then
ACK_SHARE = 7  # of 10 tasks acknowledged (task id % 10 < 7)
PROVINCE_TARGET_S = 30.0
PEAK_TARGET_MIB = 1024.0
SCHOOL_TARGET_S = 2.0


# ---------------------------------------------------------------------------------------------
# Children (each runs in its own fresh interpreter)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class Phases:
    """Wall and CPU seconds of consecutive phases, with the peak RSS so far after each.

    Each finished phase is also appended to the ``progress`` file (JSON lines), so a driver that
    kills a child at its time limit still knows how far it got.
    """

    progress: str | None = None  # set by the child entry point

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.reset()

    def reset(self) -> None:
        self.clock, self.cpu = time.perf_counter(), time.process_time()

    def mark(self, name: str, **extra: Any) -> dict[str, Any]:
        now, cpu = time.perf_counter(), time.process_time()
        row = {"phase": name, "seconds": now - self.clock, "cpu_seconds": cpu - self.cpu, "peak_mib": _peak_mib(), **extra}
        self.rows.append(row)
        if Phases.progress:
            with open(Phases.progress, "a", encoding="utf-8") as f:
                f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        self.reset()
        return row


def _ack_update(engine) -> int:

    from sqlalchemy import update

    from duban.db import session_scope
    from duban.models import Task

    when = dt.datetime.fromisoformat(IMPORTED) + dt.timedelta(days=2)
    with session_scope(engine) as s:
        return s.execute(update(Task).where(Task.id % 10 < ACK_SHARE).values(acknowledged_at=when)).rowcount


def _counts(engine) -> dict[str, int]:
    from sqlalchemy import func, select

    from duban.db import session_scope
    from duban.models import Digest, Event, Milestone, Notification, Person, Plan, Task

    with session_scope(engine) as s:
        return {
            name: s.scalar(select(func.count()).select_from(model))
            for name, model in (
                ("plans", Plan),
                ("tasks", Task),
                ("milestones", Milestone),
                ("people", Person),
                ("events", Event),
                ("notifications", Notification),
                ("digests", Digest),
            )
        }


def _child_load_province(spec: dict[str, Any]) -> dict[str, Any]:

    ph = Phases()
    from benchmarks import province
    from duban.db import make_engine, upgrade

    ph.mark("import modules")
    plans = province.schools(spec["plans"], seed=spec["seed"], today=dt.date.fromisoformat(TODAY))
    ph.mark(f"build {len(plans)} PlanDefinitions in code")
    engine = make_engine(spec["database_url"])
    upgrade(engine)
    ph.mark("create schema (alembic upgrade head)")
    province.load(engine, plans, now=dt.datetime.fromisoformat(IMPORTED), source="bench_sweep")
    ph.mark(f"apply_plan × {len(plans)} (one transaction each, one institution each)")
    acked = province.acknowledged(engine, now=dt.datetime.fromisoformat(IMPORTED))
    ph.mark(f"announce every task, acknowledge {acked} (two UPDATEs)")
    counts = _counts(engine)
    engine.dispose()  # SQLite: the last connection checkpoints the WAL into the file
    return {"phases": ph.rows, "counts": counts, "acked": acked, "peak_mib": _peak_mib()}


def _child_load_school(spec: dict[str, Any]) -> dict[str, Any]:

    ph = Phases()
    from duban.db import make_engine, upgrade
    from duban.plans.importer import import_plan

    engine = make_engine(spec["database_url"])
    upgrade(engine)
    import_plan(engine, EXAMPLE_YAML, actor="bench", now=dt.datetime.fromisoformat(IMPORTED))
    acked = _ack_update(engine)
    ph.mark("import the example plan")
    counts = _counts(engine)
    engine.dispose()
    return {"phases": ph.rows, "counts": counts, "acked": acked}


def _outbox_files(folder: Path) -> int:
    return sum(1 for _ in folder.rglob("*.txt")) if folder.exists() else 0


def _sweep_once(today, ph: Phases, label: str) -> dict[str, Any]:
    """The steps of flows.sweep.daily_sweep, without Prefect, as its tasks call them."""

    from duban.runtime import runtime
    from duban.sweep.decisions import decide
    from duban.sweep.delivery import deliver
    from duban.sweep.digests import assemble

    rt = runtime()
    _ = rt.engine, rt.calendar, rt.tz, rt.channel  # process-wide engine (migration check on first use)
    setup = ph.mark(f"{label}set-up (runtime: engine, calendar, channel)")
    decided = decide(rt.engine, today=today, cal=rt.calendar, tz=rt.tz)
    d = ph.mark(f"{label}decide", decided=decided.decided, new=decided.new, warnings=len(decided.warnings))
    digests = assemble(rt.engine, today=today, links=rt.links(today), channel=rt.channel.name, template_dir=rt.settings.template_dir)
    a = ph.mark(f"{label}assemble", digests=digests)
    delivered = deliver(rt.engine, rt.channel, now=dt.datetime.now(dt.UTC), links=rt.links(today))
    s = ph.mark(f"{label}deliver (outbox files)", sent=delivered.sent, failed=delivered.failed)
    steps = (setup, d, a, s)
    return {
        "decided": decided.decided,
        "new": decided.new,
        "digests": digests,
        "sent": delivered.sent,
        "failed": delivered.failed,
        "warnings": decided.warnings,
        "seconds": sum(x["seconds"] for x in steps),
        "cpu_seconds": sum(x["cpu_seconds"] for x in steps),
        "peak_mib": _peak_mib(),
    }


def _child_sweep(spec: dict[str, Any]) -> dict[str, Any]:

    ph = Phases()
    from duban.runtime import runtime
    from duban.sweep import decisions, delivery, digests  # noqa: F401 - the modules the flow's tasks import
    from notifications.outbox import OutboxChannel  # noqa: F401

    ph.mark("import modules (not counted)")
    today = dt.date.fromisoformat(spec["today"])
    profiler = None
    if spec.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        ph.reset()
    first = _sweep_once(today, ph, "")
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(spec["profile"])
        _write_profile_text(spec["profile"])
        return {"phases": ph.rows, "first": first}
    outbox = Path(runtime().settings.outbox_path)
    files = _outbox_files(outbox)
    counts = _counts(runtime().engine)
    ph.reset()
    again = _sweep_once(today, ph, "same day again: ")
    counts_after = _counts(runtime().engine)
    return {
        "phases": ph.rows,
        "first": first,
        "again": again,
        "files": files,
        "counts": counts,
        "counts_after": counts_after,
        "peak_mib": _peak_mib(),
    }


def _write_profile_text(path: str) -> None:
    import io
    import pstats

    out = io.StringIO()
    stats = pstats.Stats(path, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    Path(path + ".txt").write_text(out.getvalue(), encoding="utf-8")


def _child_prefect(spec: dict[str, Any]) -> dict[str, Any]:
    """One embedded Prefect server; daily_sweep cold and warm; the same steps in-process; subflows."""

    ph = Phases()
    workdir = Path(spec["workdir"])
    template = Path(spec["template"])
    today = dt.date.fromisoformat(spec["today"])
    from prefect import flow
    from prefect.testing.utilities import prefect_test_harness
    from sqlalchemy import select

    from duban.db import session_scope
    from duban.models import Notification, Task
    from duban.runtime import runtime
    from duban.settings import get_settings
    from duban.sweep.decisions import decide
    from duban.sweep.delivery import deliver
    from duban.sweep.digests import assemble
    from flows.sweep import daily_sweep

    ph.mark("import prefect, flows, duban")

    def fresh_copy(name: str) -> Path:
        db = workdir / f"school-{name}.db"
        shutil.copyfile(template, db)
        os.environ["DUBAN_DATABASE_URL"] = f"sqlite:///{db}"
        os.environ["DUBAN_OUTBOX_DIR"] = str(workdir / f"outbox-{name}")
        get_settings.cache_clear()
        return workdir / f"outbox-{name}"

    @flow(name="bench-check-one-task", flow_run_name="check {task_code}")
    def check_one_task(task_code: str, day: dt.date) -> dict:
        rt = runtime()
        decided = decide(rt.engine, today=day, cal=rt.calendar, tz=rt.tz, task_code=task_code)
        with session_scope(rt.engine) as s:
            recipients = sorted(
                set(
                    s.scalars(
                        select(Notification.recipient_id)
                        .join(Task, Task.id == Notification.task_id)
                        .where(Task.code == task_code, Notification.status == "pending")
                    )
                )
            )
        digests = sent = 0
        if recipients:
            digests = assemble(
                rt.engine,
                today=day,
                links=rt.links(day),
                channel=rt.channel.name,
                template_dir=rt.settings.template_dir,
                recipients=recipients,
            )
            sent = deliver(rt.engine, rt.channel, now=dt.datetime.now(dt.UTC), links=rt.links(day), recipients=recipients).sent
        return {"decided": decided.decided, "new": decided.new, "digests": digests, "sent": sent}

    @flow(name="bench-sweep-subflow-per-task", flow_run_name="per-task sweep {day}")
    def per_task_sweep(codes: list[str], day: dt.date) -> dict:
        totals = {"decided": 0, "new": 0, "digests": 0, "sent": 0}
        each = []
        for code in codes:
            start = time.perf_counter()
            r = check_one_task(code, day)
            each.append(time.perf_counter() - start)
            for k in totals:
                totals[k] += r[k]
        return {**totals, "subflow_seconds": each}

    out: dict[str, Any] = {}
    with prefect_test_harness(server_startup_timeout=120):
        ph.mark("start the embedded Prefect server (prefect_test_harness)")
        for name in ("cold", "warm"):
            outbox = fresh_copy(name)
            ph.reset()
            result = daily_sweep(today=today, force=True)
            row = ph.mark(
                f"daily_sweep flow run ({name}; fresh database copy)", result={k: v for k, v in result.items() if k != "warnings"}
            )
            row["files"] = _outbox_files(outbox)
            out[name] = row
        ph.reset()
        again = daily_sweep(today=today, force=True)
        out["again"] = ph.mark(
            "daily_sweep flow run (same day again on the warm copy)", result={k: v for k, v in again.items() if k != "warnings"}
        )

        fresh_copy("inproc")
        ph.reset()
        out["inproc"] = _sweep_once(today, ph, "in this process, no Prefect: ")

        outbox = fresh_copy("subflows")
        with session_scope(runtime().engine) as s:
            codes = list(s.scalars(select(Task.code).where(Task.archived_at.is_(None)).order_by(Task.plan_id, Task.position)))
        n = len(codes) if not spec["subflow_tasks"] else min(spec["subflow_tasks"], len(codes))
        ph.reset()
        r = per_task_sweep(codes[:n], today)
        row = ph.mark(f"one subflow per task: {n} of {len(codes)} tasks", result={k: v for k, v in r.items() if k != "subflow_seconds"})
        each = r["subflow_seconds"]
        row.update(
            tasks_run=n,
            tasks_all=len(codes),
            subflow_mean=sum(each) / len(each),
            subflow_min=min(each),
            subflow_max=max(each),
            parent_overhead=row["seconds"] - sum(each),
            files=_outbox_files(outbox),
        )
        row["extrapolated"] = row["parent_overhead"] + row["subflow_mean"] * len(codes)
        out["subflows"] = row
    return {"phases": ph.rows, **out, "peak_mib": _peak_mib()}


CHILDREN = {
    "load-province": _child_load_province,
    "load-school": _child_load_school,
    "sweep": _child_sweep,
    "prefect": _child_prefect,
    "reset": _child_reset,
}


# ---------------------------------------------------------------------------------------------
# Driver


def _env(database_url: str, outbox: Path | None = None, prefect_home: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUBAN_", "PREFECT_"))}
    env["DUBAN_DATABASE_URL"] = database_url
    env["DUBAN_DEMO"] = "1"
    if outbox is not None:
        env["DUBAN_OUTBOX_DIR"] = str(outbox)
    if prefect_home is not None:
        env["PREFECT_HOME"] = str(prefect_home)
        env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


class ChildTimeoutError(RuntimeError):
    def __init__(self, kind: str, seconds: float, done: list[dict[str, Any]]):
        super().__init__(f"child {kind} killed at its time limit of {seconds:g} s")
        self.seconds = seconds
        self.done = done  # the phases it finished


def _child(spec: dict[str, Any], env: dict[str, str], workdir: Path, timeout: float | None = None) -> dict[str, Any]:
    stamp = time.monotonic_ns()
    result = workdir / f"result-{spec['kind']}-{stamp}.json"
    log = workdir / f"log-{spec['kind']}-{stamp}.txt"
    progress = workdir / f"progress-{spec['kind']}-{stamp}.jsonl"
    spec = {**spec, "result": str(result), "progress": str(progress)}
    with open(log, "wb") as out:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "benchmarks.bench_sweep", "--child", json.dumps(spec)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:  # run() has killed the child
            done = [json.loads(line) for line in progress.read_text("utf-8").splitlines()] if progress.exists() else []
            raise ChildTimeoutError(spec["kind"], timeout or 0, done) from None
    if proc.returncode != 0 or not result.exists():
        tail = "\n".join(log.read_text("utf-8", "replace").splitlines()[-30:])
        raise RuntimeError(f"child {spec['kind']} failed ({proc.returncode}):\n{tail}")
    return json.loads(result.read_text("utf-8"))


def _print_phases(title: str, rows: list[dict[str, Any]], extra=lambda r: "") -> None:
    print(f"\n{title}")
    width = max(len(r["phase"]) for r in rows) + 2
    for r in rows:
        print(f"  {r['phase']:<{width}}{r['seconds']:>8.2f} s{r['cpu_seconds']:>8.2f} cpu{r['peak_mib']:>7.0f} MiB  {extra(r)}".rstrip())


def _step_note(r: dict[str, Any]) -> str:
    keys = [
        ("decided", "decisions"),
        ("new", "ledger rows written"),
        ("digests", "digests created"),
        ("sent", "sent"),
        ("failed", "failed"),
    ]
    parts = [f"{r[k]} {label}" for k, label in keys if k in r]
    if r.get("warnings"):
        parts.append(f"{r['warnings']} calendar warnings")
    return ", ".join(parts)


class Summary:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.failed = False

    def add(self, label: str, value: str, target: str = "", ok: bool | None = None, note: str = "") -> None:
        verdict = "" if ok is None else ("PASS" if ok else "FAIL")
        self.failed |= ok is False
        self.rows.append({"label": label, "value": value, "target": target, "result": verdict, "note": note})

    def print(self) -> None:
        print("\nSummary")
        w1 = max(len(r["label"]) for r in self.rows) + 2
        w2 = max(len(r["value"]) for r in self.rows) + 2
        w3 = max([len(r["target"]) for r in self.rows] + [6]) + 2
        print(f"  {'measurement':<{w1}}{'value':<{w2}}{'target':<{w3}}result")
        for r in self.rows:
            print(f"  {r['label']:<{w1}}{r['value']:<{w2}}{r['target']:<{w3}}{r['result']}" + (f"  {r['note']}" if r["note"] else ""))


def _province(name: str, url: str, args, workdir: Path, summary: Summary, figures: dict) -> None:
    is_pg = url.startswith("postgresql")
    outbox = workdir / f"outbox-{name}"

    def load(plans: int) -> dict[str, Any]:
        if is_pg:
            _child({"kind": "reset", "database_url": url}, _env(url), workdir)
        else:
            db = Path(url.removeprefix("sqlite:///"))
            for f in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
                f.unlink(missing_ok=True)
        return _child({"kind": "load-province", "database_url": url, "plans": plans, "seed": args.seed}, _env(url), workdir)

    print(f"\n[{name}] loading the province ({_safe(url)}) …", flush=True)
    loaded = load(args.plans)
    c = loaded["counts"]
    _print_phases(f"[{name}] Province data (not part of a target)", loaded["phases"])
    print(
        f"  stored: {c['plans']} plans, {c['tasks']} tasks ({loaded['acked']} acknowledged), {c['milestones']} milestones, "
        f"{c['people']} people, {c['events']} events"
    )
    load_s = sum(p["seconds"] for p in loaded["phases"][1:])
    print(f"[{name}] sweeping (fresh process, time limit {args.sweep_timeout:g} s) …", flush=True)
    scale = f"{c['tasks']} tasks, {c['milestones']} ms, {c['people']} people"
    summary.add(f"[{name}] province load ({c['plans']} plans; not a target)", f"{load_s:.1f} s", note=scale)
    try:
        r = _child({"kind": "sweep", "today": TODAY}, _env(url, outbox), workdir, timeout=args.sweep_timeout)
    except ChildTimeoutError as err:
        steps = ["import modules", "set-up", "decide", "assemble", "deliver"]
        running = steps[len(err.done)] if len(err.done) < len(steps) else "?"
        if err.done:
            _print_phases(
                f"[{name}] Province sweep on {TODAY}: KILLED at {err.seconds:g} s, in {running}; finished before that:",
                err.done,
                _step_note,
            )
        print(f"  files written before the kill: {_outbox_files(outbox)}")
        peak = max((p["peak_mib"] for p in err.done), default=0)
        summary.add(
            f"[{name}] province sweep (set-up+decide+assemble+deliver)",
            f"> {err.seconds:g} s",
            f"≤ {PROVINCE_TARGET_S:g} s",
            False,
            f"killed at the time limit while in {running}",
        )
        summary.add(f"[{name}] province sweep peak RSS", f"≥ {peak:.0f} MiB", f"≤ {PEAK_TARGET_MIB:g} MiB", None, "unknown: killed")
        figures[name] = {"load": loaded, "sweep_killed": err.done}
        _profile(name, url, args, workdir, load, outbox)
        return
    first, again = r["first"], r["again"]
    _print_phases(f"[{name}] Province sweep on {TODAY} (fresh process; wall s, cpu s, peak RSS so far)", r["phases"], _step_note)
    after = r["counts"]
    print(
        f"  first run: {first['decided']} decisions, {first['new']} ledger rows written (ledger now {after['notifications']}), "
        f"{first['digests']} digests (outbox table {after['digests']}), {first['sent']} sent, {first['failed']} failed, "
        f"{r['files']} files written"
    )
    if first["warnings"]:
        print("  calendar warnings: " + " / ".join(first["warnings"]))
    ok_time = first["seconds"] <= PROVINCE_TARGET_S
    ok_peak = first["peak_mib"] <= PEAK_TARGET_MIB
    print(
        f"  sweep total {first['seconds']:.2f} s (cpu {first['cpu_seconds']:.2f} s) — target ≤ {PROVINCE_TARGET_S:g} s: "
        f"{'PASS' if ok_time else 'FAIL'}"
    )
    print(
        f"  peak RSS {first['peak_mib']:.0f} MiB (whole process, after the first sweep) — target ≤ {PEAK_TARGET_MIB:g} MiB: "
        f"{'PASS' if ok_peak else 'FAIL'}"
    )
    idem = (
        again["new"] == 0 and again["digests"] == 0 and again["sent"] == 0 and r["counts_after"]["notifications"] == after["notifications"]
    )
    print(
        f"  same day again: {again['seconds']:.2f} s, {again['decided']} decisions, {again['new']} new, {again['digests']} digests, "
        f"{again['sent']} sent — {'idempotent' if idem else 'NOT IDEMPOTENT'}"
    )
    consistent = first["failed"] == 0 and first["sent"] == first["digests"] == r["files"] and first["new"] == after["notifications"]
    summary.add(
        f"[{name}] province sweep (set-up+decide+assemble+deliver)",
        f"{first['seconds']:.2f} s",
        f"≤ {PROVINCE_TARGET_S:g} s",
        ok_time,
        f"{first['decided']} decisions, {first['new']} ledger rows, {first['digests']} digests, {r['files']} files",
    )
    summary.add(f"[{name}] province sweep peak RSS", f"{first['peak_mib']:.0f} MiB", f"≤ {PEAK_TARGET_MIB:g} MiB", ok_peak)
    summary.add(
        f"[{name}] province sweep, same day again",
        f"{again['seconds']:.2f} s",
        "0 new",
        idem and consistent,
        "" if consistent else "ledger/digests/files do not agree",
    )
    figures[name] = {"load": loaded, "sweep": r}
    _profile(name, url, args, workdir, load, outbox)


def _profile(name: str, url: str, args, workdir: Path, load, outbox: Path) -> None:
    if not args.profile:
        return
    plans = args.profile_plans or args.plans
    print(f"[{name}] profiling the province sweep with cProfile ({plans} plans, reloaded) …", flush=True)
    loaded = load(plans)
    prof = workdir / f"profile-{name}.prof"
    shutil.rmtree(outbox, ignore_errors=True)
    try:
        p = _child({"kind": "sweep", "today": TODAY, "profile": str(prof)}, _env(url, outbox), workdir, timeout=args.sweep_timeout * 3)
    except ChildTimeoutError as err:
        print(f"  the profiled run was killed at {err.seconds:g} s: use --profile-plans with fewer plans")
        return
    c = loaded["counts"]
    _print_phases(f"[{name}] Profiled sweep, {c['plans']} plans, {c['tasks']} tasks (cProfile inflates these)", p["phases"], _step_note)
    print(Path(str(prof) + ".txt").read_text("utf-8"))
    if args.keep:
        print(f"  profile kept: {prof}")


def _school(args, workdir: Path, summary: Summary, figures: dict) -> None:
    template = workdir / "school-template.db"
    url = f"sqlite:///{template}"
    print("\n[school] importing the example plan …", flush=True)
    loaded = _child({"kind": "load-school", "database_url": url}, _env(url), workdir)
    c = loaded["counts"]
    print(
        f"  stored: {c['tasks']} tasks ({loaded['acked']} acknowledged), {c['milestones']} milestones, {c['people']} people "
        f"(imported {IMPORTED[:10]}, {loaded['phases'][0]['seconds']:.2f} s)"
    )

    own_db = workdir / "school-own.db"
    shutil.copyfile(template, own_db)
    own_url = f"sqlite:///{own_db}"
    r = _child({"kind": "sweep", "today": TODAY}, _env(own_url, workdir / "outbox-school-own"), workdir)
    first = r["first"]
    _print_phases(f"[school] Own work: the flow's library steps without Prefect (fresh process) on {TODAY}", r["phases"], _step_note)
    ok = first["seconds"] <= SCHOOL_TARGET_S
    print(
        f"  own work {first['seconds']:.2f} s (cpu {first['cpu_seconds']:.2f} s; module imports not counted) — "
        f"target ≤ {SCHOOL_TARGET_S:g} s: "
        f"{'PASS' if ok else 'FAIL'}; {r['files']} files written"
    )
    summary.add(
        "[school] own work (set-up+decide+assemble+deliver, no Prefect)",
        f"{first['seconds']:.2f} s",
        f"≤ {SCHOOL_TARGET_S:g} s",
        ok,
        f"{first['decided']} decisions, {first['digests']} digests",
    )
    figures["school_own"] = r
    if args.skip_prefect:
        return

    print("\n[school] through Prefect (embedded server, started once) …", flush=True)
    try:
        p = _child(
            {"kind": "prefect", "template": str(template), "workdir": str(workdir), "today": TODAY, "subflow_tasks": args.subflow_tasks},
            _env(url, prefect_home=workdir / "prefect-home"),
            workdir,
        )
    except RuntimeError as err:
        print(f"\n--- the Prefect part failed ---\n{err}", file=sys.stderr)
        summary.add("[school] daily_sweep through Prefect", "failed", ok=False)
        return
    figures["school_prefect"] = p

    def note(row: dict[str, Any]) -> str:
        res = row.get("result") or {}
        return _step_note(res) if res else _step_note(row)

    _print_phases("[school] One embedded Prefect server, one process (wall s, cpu s, peak RSS so far)", p["phases"], note)
    cold, warm, inproc, sub = p["cold"], p["warm"], p["inproc"], p["subflows"]
    start_s = p["phases"][1]["seconds"]
    flow_ok = all(x["result"]["sent"] == x["files"] == first["sent"] and x["result"]["decided"] == first["decided"] for x in (cold, warm))
    own_again = r["again"]["seconds"]
    fixed = p["again"]["seconds"] - own_again
    print(
        f"  daily_sweep: cold {cold['seconds']:.2f} s, warm {warm['seconds']:.2f} s (own work in a fresh process {first['seconds']:.2f} s; "
        f"the same steps in this process, no Prefect, {inproc['seconds']:.2f} s)"
    )
    print(
        f"  Prefect's fixed cost per flow run ≈ {fixed:.2f} s (same day again: flow {p['again']['seconds']:.2f} s − the same steps without "
        f"Prefect {own_again:.2f} s; cpu {p['again']['cpu_seconds']:.2f} s: mostly waiting)"
    )
    extrap = sub["tasks_run"] < sub["tasks_all"]
    how = (
        (
            f"{sub['tasks_run']} subflows run, extrapolated linearly to {sub['tasks_all']} tasks "
            f"(parent {sub['parent_overhead']:.2f} s + {sub['tasks_all']} × mean {sub['subflow_mean']:.2f} s)"
        )
        if extrap
        else f"all {sub['tasks_all']} subflows run"
    )
    per_task_s = sub["extrapolated"] if extrap else sub["seconds"]
    ratio = per_task_s / warm["seconds"]
    print(
        f"  one subflow per task: {sub['seconds']:.2f} s for {sub['tasks_run']} tasks (each: mean {sub['subflow_mean']:.2f} s, "
        f"min {sub['subflow_min']:.2f}, max {sub['subflow_max']:.2f}); {how}: {per_task_s:.1f} s "
        f"= {ratio:.0f}× the single-flow sweep (warm {warm['seconds']:.2f} s; {per_task_s / cold['seconds']:.0f}× the cold one)"
    )
    print(
        f"  (the per-task design also sends more messages: {sub['result']['digests']} digests for {sub['tasks_run']} tasks, "
        "one per task and "
        f"recipient, where the single flow sends one per recipient)"
    )
    summary.add("[school] Prefect server start-up (once; not a target)", f"{start_s:.1f} s")
    summary.add(
        "[school] daily_sweep flow run, cold / warm",
        f"{cold['seconds']:.2f} / {warm['seconds']:.2f} s",
        ok=flow_ok or None,
        note=f"own work {first['seconds']:.2f} s; Prefect's fixed cost per run ≈ {fixed:.2f} s"
        + ("" if flow_ok else "; results differ from the own-work run!"),
    )
    if not flow_ok:
        summary.failed = True
    summary.add("[school] daily_sweep same day again", f"{p['again']['seconds']:.2f} s", "0 new", p["again"]["result"]["new"] == 0)
    summary.add(
        f"[school] one subflow per task ({'extrapolated' if extrap else 'measured'})",
        f"{per_task_s:.1f} s",
        note=f"{ratio:.0f}× the warm single flow; {sub['subflow_mean']:.2f} s per subflow",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", type=int, default=150, help="schools in the province (default 150, 175 tasks each)")
    parser.add_argument("--seed", type=int, default=1, help="data seed (default 1)")
    parser.add_argument("--database-url", default=None, help="also measure PostgreSQL at this URL (its schema public is dropped!)")
    parser.add_argument("--skip-prefect", action="store_true", help="skip the Prefect part of the one-school measurement")
    parser.add_argument(
        "--subflow-tasks", type=int, default=30, help="subflows to run in the per-task comparison (0 = every task; default 30)"
    )
    parser.add_argument("--sweep-timeout", type=float, default=300, help="kill the province sweep after this many seconds (default 300)")
    parser.add_argument("--profile", action="store_true", help="also profile the province sweep (cProfile) and print the top costs")
    parser.add_argument("--profile-plans", type=int, default=None, help="plans for the profiled run (default: --plans)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (databases, outboxes, logs)")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the figures as JSON here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        spec = json.loads(args.child)
        Phases.progress = spec.get("progress")
        result = CHILDREN[spec["kind"]](spec)
        Path(spec["result"]).write_text(json.dumps(result, ensure_ascii=False, default=str), encoding="utf-8")
        return 0

    workdir = Path(tempfile.mkdtemp(prefix="duban-bench-sweep-"))
    started = time.perf_counter()
    try:
        print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M')}, load average {_load()}")
        print(f"reference day {TODAY}; tasks assigned {IMPORTED[:10]}; {ACK_SHARE * 10} % of tasks acknowledged")
        summary = Summary()
        figures: dict[str, Any] = {}
        databases = [("sqlite", f"sqlite:///{workdir / 'province.db'}")]
        if args.database_url:
            databases.append(("postgresql", args.database_url))
        for name, url in databases:
            try:
                _province(name, url, args, workdir, summary, figures)
            except RuntimeError as err:
                print(f"\n--- province [{name}] failed ---\n{err}", file=sys.stderr)
                summary.add(f"[{name}] province", "failed", ok=False)
        try:
            _school(args, workdir, summary, figures)
        except RuntimeError as err:
            print(f"\n--- school failed ---\n{err}", file=sys.stderr)
            summary.add("[school]", "failed", ok=False)
        summary.print()
        if args.json_out:
            args.json_out.write_text(
                json.dumps({"summary": summary.rows, "figures": figures}, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
            )
        print(
            f"\nload average at the end: {_load()} (other work on the machine inflates wall seconds; cpu seconds less so); "
            f"benchmark took {time.perf_counter() - started:.0f} s"
        )
        print("\nRESULT:", "FAIL (a target was missed or a check failed)" if summary.failed else "PASS (all targets met)")
        if args.keep:
            print(f"kept {workdir}")
        return 1 if summary.failed else 0
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
