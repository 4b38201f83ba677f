"""Benchmark: import a large XLSX plan and run ``duban status`` on it.

    python -m benchmarks.bench_import [--tasks 30000] [--database-url postgresql+psycopg://…]

Generates a workbook (``benchmarks.generate``; its time is printed but not counted), then runs
each measurement in a fresh subprocess so that peak memory is honest:

* the CLI (``duban import FILE``, a re-import, ``duban status`` with and without ``--json`` and
  ``--plan``) runs as the only child of a small wrapper process, which reports the wall time,
  CPU time and the child's peak RSS (``getrusage(RUSAGE_CHILDREN).ru_maxrss``);
* the library phases (read workbook, resolve, apply + commit, status) run in one process of
  their own, which reports ``getrusage(RUSAGE_SELF).ru_maxrss``.

SQLite always (a fresh file in a temporary folder); PostgreSQL too when ``--database-url`` is
given (its schema ``public`` is DROPPED and recreated first: use a throw-away database).
Exit status 1 when a target is missed (import ≤ 15 s, status ≤ 1 s, peak ≤ 1024 MiB).

This driver imports only the standard library, so the children it starts stay small.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import load_average as _load
from benchmarks.common import reset_postgres_schema as _child_reset
from benchmarks.common import safe_url as _safe
from benchmarks.common import timed_child

ROOT = Path(__file__).resolve().parent.parent
IMPORT_TARGET_S = 15.0
STATUS_TARGET_S = 1.0
PEAK_TARGET_MIB = 1024.0


# ---------------------------------------------------------------------------------------------
# Children (each runs in its own fresh interpreter)


def _peak_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux: KiB


def _child_phases(spec: dict[str, Any]) -> dict[str, Any]:
    """The import and status phases in-process, each timed, with the peak RSS after each."""
    import datetime as dt
    import io

    phases: list[dict[str, Any]] = []
    clock, cpu = time.perf_counter(), time.process_time()

    def mark(name: str) -> None:
        nonlocal clock, cpu
        now, now_cpu = time.perf_counter(), time.process_time()
        phases.append({"phase": name, "seconds": now - clock, "cpu_seconds": now_cpu - cpu, "peak_mib": _peak_mib(resource.RUSAGE_SELF)})
        clock, cpu = time.perf_counter(), time.process_time()

    import hashlib

    from sqlalchemy import func, select
    from sqlalchemy.orm import sessionmaker

    from definitions.loaders import read_plan_file
    from definitions.resolve import resolve
    from definitions.spreadsheet import read_excel_sheets as _read_excel_sheets
    from duban.db import make_engine, upgrade
    from duban.models import Event, Milestone, Task
    from duban.plans.sync import apply_plan
    from duban.status import collect_status, render_status

    mark("import modules (sqlalchemy, pydantic, duban …)")
    engine = make_engine(spec["database_url"])
    upgrade(engine)
    mark("create schema (alembic upgrade head)")
    path = Path(spec["file"])
    sheets = _read_excel_sheets(path)
    rows = sum(len(s.rows) for s in sheets)
    del sheets
    mark(f"  (calamine only: workbook → {rows} rows, not counted below)")
    plan_file, locator = read_plan_file(path)
    mark("read_plan_file: calamine + rows → PlanFile (pydantic)")
    definition = resolve(plan_file, locator)
    mark("resolve: names, deadlines, roadmaps → PlanDefinition")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    factory = sessionmaker(engine, expire_on_commit=False)
    for label in ("import", "re-import"):
        with factory() as session:
            session.begin()
            diff = apply_plan(session, definition, actor="bench", source=path.name, sha256=digest)
            mark(f"apply_plan ({label}: {len(diff.added)} added, {len(diff.changed)} changed, {diff.unchanged} unchanged)")
            session.commit()
            mark(f"commit ({label})")
    today = dt.date.fromisoformat(spec["today"]) if spec.get("today") else dt.date.today()
    with factory() as session:
        data = collect_status(session, today=today)
        mark("collect_status (SQL + Python roll-up)")
        counts = {
            "tasks": session.scalar(select(func.count()).select_from(Task)),
            "milestones": session.scalar(select(func.count()).select_from(Milestone)),
            "events": session.scalar(select(func.count()).select_from(Event)),
        }
        clock, cpu = time.perf_counter(), time.process_time()
    text = json.dumps(data, ensure_ascii=False, indent=2)
    mark(f"status as JSON ({len(text) // 1024} KiB)")
    from rich.console import Console

    console = Console(file=io.StringIO(), width=160, soft_wrap=True)
    for item in render_status(data):
        console.print(item)
    mark("status rendered (rich tables)")
    engine.dispose()
    return {"phases": phases, "counts": counts, "peak_mib": _peak_mib(resource.RUSAGE_SELF)}


CHILDREN = {"phases": _child_phases, "reset": _child_reset}


# ---------------------------------------------------------------------------------------------
# Driver


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUBAN_")}
    env["DUBAN_DATABASE_URL"] = database_url
    env["DUBAN_DEMO"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.setdefault("COLUMNS", "160")
    return env


def _child(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_import", "--child", json.dumps(spec)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {spec['kind']} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _duban() -> list[str]:
    script = Path(sys.executable).parent / "duban"
    return [str(script)] if script.exists() else [sys.executable, "-m", "duban.cli"]


class Report:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.failed = False

    def add(
        self,
        label: str,
        seconds: float,
        peak: float | None,
        *,
        target_s: float | None,
        cpu: float | None = None,
        note: str = "",
        ok: bool = True,
    ) -> None:
        checks = []
        if target_s is not None:
            checks.append(seconds <= target_s)
        if peak is not None:
            checks.append(peak <= PEAK_TARGET_MIB)
        checks.append(ok)
        verdict = ("PASS" if all(checks) else "FAIL") if (target_s is not None or peak is not None) else ("" if ok else "FAIL")
        self.failed |= verdict == "FAIL"
        target = " · ".join(
            t for t in (f"≤ {target_s:g} s" if target_s is not None else "", f"≤ {PEAK_TARGET_MIB:g} MiB" if peak is not None else "") if t
        )
        self.rows.append(
            {"label": label, "seconds": seconds, "cpu_seconds": cpu, "peak_mib": peak, "target": target, "result": verdict, "note": note}
        )

    def print(self, title: str) -> None:
        print(f"\n{title}")
        width = max(len(r["label"]) for r in self.rows) + 2
        print(f"  {'measurement':<{width}}{'seconds':>9}{'(cpu)':>8}{'peak MiB':>10}   {'target':<22}result")
        for r in self.rows:
            peak = f"{r['peak_mib']:.0f}" if r["peak_mib"] is not None else "–"
            cpu = f"({r['cpu_seconds']:.2f})" if r["cpu_seconds"] is not None else ""
            print(
                f"  {r['label']:<{width}}{r['seconds']:>9.2f}{cpu:>8}{peak:>10}   {r['target']:<22}{r['result']}"
                + (f"  {r['note']}" if r["note"] else "")
            )


def _measure_database(name: str, url: str, xlsx: Path, tasks: int, workdir: Path, args, report: Report, phase_tables: list) -> None:
    env = _env(url)
    is_pg = url.startswith("postgresql")
    if is_pg:
        _child({"kind": "reset", "database_url": url}, env)
    duban = _duban()

    def cli(label: str, argv: list[str], *, check=None) -> dict[str, Any]:
        out = workdir / f"{name}-{label.replace(' ', '_').replace('/', '')}.out"
        run = timed_child([*duban, *argv], env, cwd=workdir)
        out.write_text(run.stdout, encoding="utf-8")
        r: dict[str, Any] = {"seconds": run.wall, "cpu_seconds": run.cpu, "peak_mib": run.peak_mib}
        r.update(returncode=run.returncode, stderr=run.stderr[-4000:])
        ok, note = r["returncode"] == 0, ""
        if not ok:
            note = (
                f"exit {r['returncode']}: " + r["stderr"].strip().splitlines()[-1][:200]
                if r["stderr"].strip()
                else f"exit {r['returncode']}"
            )
            tail = "\n".join(r["stderr"].strip().splitlines()[-12:])
            print(f"\n--- {label} failed (exit {r['returncode']}); end of its error output: ---\n{tail}", file=sys.stderr)
        elif check is not None:
            ok, note = check(out.read_text("utf-8", "replace"))
        r.update(ok=ok, note=note)
        return r

    def expect_tasks(text: str):
        try:
            data = json.loads(text)
        except ValueError:
            return False, "output is not JSON"
        n = data["totals"]["tasks"]
        return n == tasks, f"{n} tasks, {data['totals']['milestones']} milestones"

    r = cli("import", ["import", str(xlsx)], check=lambda t: ("导入完成" in t, "" if "导入完成" in t else "no 导入完成 in output"))
    report.add(
        f"[{name}] duban import (fresh database)",
        r["seconds"],
        r["peak_mib"],
        target_s=IMPORT_TARGET_S,
        cpu=r["cpu_seconds"],
        ok=r["ok"],
        note=r["note"],
    )
    if not r["ok"]:
        return
    r = cli(
        "reimport",
        ["import", str(xlsx)],
        check=lambda t: ("没有需要更新的内容" in t, "" if "没有需要更新的内容" in t else "re-import reported changes"),
    )
    report.add(
        f"[{name}] duban import (same file again)",
        r["seconds"],
        r["peak_mib"],
        target_s=IMPORT_TARGET_S,
        cpu=r["cpu_seconds"],
        ok=r["ok"],
        note=r["note"],
    )
    today = ["--today", args.today] if args.today else []
    plan_code = f"bench-{tasks}"
    if args.file:  # the plan code written in the workbook
        probe = cli("probe", ["status", "--json", *today])
        if probe["returncode"] == 0:
            plan_code = json.loads((workdir / f"{name}-probe.out").read_text("utf-8"))["by_plan"][0]["plan"]
    for label, argv, check in (
        ("duban status", ["status", *today], lambda t: ("按育人体系" in t, "" if "按育人体系" in t else "no tables in output")),
        ("duban status --json", ["status", "--json", *today], expect_tasks),
        ("duban status --plan CODE --json", ["status", "--plan", plan_code, "--json", *today], expect_tasks),
    ):
        runs = [cli(label, argv, check=check) for _ in range(args.repeat)]
        secs = [x["seconds"] for x in runs]
        med = statistics.median(secs)
        note = runs[0]["note"]
        if args.repeat > 1:
            note = f"median of {args.repeat} (min {min(secs):.2f}, max {max(secs):.2f})" + (f"; {note}" if note else "")
        cpu = statistics.median(x["cpu_seconds"] for x in runs)
        report.add(
            f"[{name}] {label}",
            med,
            max(x["peak_mib"] for x in runs),
            target_s=STATUS_TARGET_S,
            cpu=cpu,
            ok=all(x["ok"] for x in runs),
            note=note,
        )
    r = cli("plans", ["plans"])
    report.add(
        f"[{name}] duban plans (CLI start-up + one query, for scale)", r["seconds"], None, target_s=None, cpu=r["cpu_seconds"], ok=r["ok"]
    )

    # in-process phases against a fresh database of the same kind
    if is_pg:
        _child({"kind": "reset", "database_url": url}, env)
        phase_url = url
    else:
        phase_url = f"sqlite:///{workdir / f'{name}-phases.db'}"
    try:
        result = _child({"kind": "phases", "file": str(xlsx), "database_url": phase_url, "today": args.today}, _env(phase_url))
    except RuntimeError as err:
        print(f"\n--- in-process phases [{name}] failed ---\n{err}", file=sys.stderr)
        report.add(f"[{name}] in-process phases", 0.0, None, target_s=None, ok=False, note="failed, see above")
        return
    phase_tables.append((name, result))


def _print_phases(name: str, result: dict[str, Any]) -> None:
    print(f"\nIn-process phases [{name}] (one fresh process; wall s, cpu s, peak RSS so far after each phase)")
    width = max(len(p["phase"]) for p in result["phases"]) + 2
    for p in result["phases"]:
        print(f"  {p['phase']:<{width}}{p['seconds']:>8.2f} s{p['cpu_seconds']:>8.2f} cpu{p['peak_mib']:>8.0f} MiB")
    c = result["counts"]
    print(f"  stored: {c['tasks']} tasks, {c['milestones']} milestones, {c['events']} events; process peak {result['peak_mib']:.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_import", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=30000, help="tasks in the generated workbook (default 30000)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--database-url", default=None, help="also measure PostgreSQL at this URL (its schema public is dropped!)")
    parser.add_argument("--file", type=Path, default=None, help="use this workbook instead of generating one")
    parser.add_argument("--today", default=None, help="reference day for duban status (YYYY-MM-DD; default today)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each status command (median reported; default 3)")
    parser.add_argument("--skip-phases", action="store_true", help="skip the in-process phase breakdown")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (workbook, databases, outputs)")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the figures as JSON here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(CHILDREN[spec["kind"]](spec)))
        return 0

    workdir = Path(tempfile.mkdtemp(prefix="duban-bench-"))
    try:
        if args.file:
            xlsx = args.file.resolve()
            tasks = args.tasks
            print(f"workbook: {xlsx} (expecting {tasks} tasks)")
        else:
            xlsx = workdir / f"bench-{args.tasks}.xlsx"
            tasks = args.tasks
            start = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "benchmarks.generate", "--tasks", str(tasks), "--seed", str(args.seed), "--out", str(xlsx)],
                cwd=ROOT,
                env=_env("sqlite://"),
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return 2
            print(proc.stdout.strip())
            print(f"generation: {time.perf_counter() - start:.1f} s (not counted)")
        print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}, load average {_load()}")

        report = Report()
        phase_tables: list = []
        databases = [("sqlite", f"sqlite:///{workdir / 'bench.db'}")]
        if args.database_url:
            databases.append(("postgresql", args.database_url))
        for name, url in databases:
            print(f"measuring {name} ({_safe(url)}) …", flush=True)
            _measure_database(name, url, xlsx, tasks, workdir, args, report, phase_tables if not args.skip_phases else [])
        report.print(f"Figures ({tasks} tasks; wall seconds including interpreter start-up; peak = max RSS of the process)")
        for name, result in phase_tables:
            _print_phases(name, result)
        if args.json_out:
            args.json_out.write_text(
                json.dumps({"tasks": tasks, "figures": report.rows, "phases": dict(phase_tables)}, ensure_ascii=False, indent=2),
                encoding="utf-8",
            )
        print(f"\nload average at the end: {_load()} (other work on the machine inflates wall seconds; cpu seconds less so)")
        print("\nRESULT:", "FAIL (a target was missed)" if report.failed else "PASS (all targets met)")
        if args.keep:
            print(f"kept {workdir}")
        return 1 if report.failed else 0
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
