"""Benchmark: the roll-up of a province (≈ 100,000 milestones) and the full HTML + Excel report.

    python -m benchmarks.bench_rollup [--plans 150] [--database-url postgresql+psycopg://…/duban_bench_rollup]
    python -m benchmarks.bench_rollup --schools 1,10,150 [--baseline REV] [--database-url postgresql+psycopg://…/postgres]

1. Set-up (not timed against a target): the province of ``benchmarks/province.py`` (150 schools,
   each its own institution, ≈ 26,000 tasks, ≈ 97,000 milestones, built from
   ``benchmarks/generate.py``'s vocabulary) written with ``apply_plan``, 70 % of tasks
   acknowledged; then a history, set-based: of the milestones due before 2026-11-23, half done
   (60 % of those on time, the rest 5 days late), one in ten submitted and waiting for approval;
   one done milestone in seven was returned once; one open milestone in twenty got an approved
   extension of 30 days; and the daily sweep's decide step writes the ledger (its 督办 rows).
2. In a fresh process: ``rollup.compute`` over all plans (the provincial view) — target ≤ 5 s;
   then ``rollup.snapshot``; then ``report.write_report`` (HTML + XLSX) — target for compute +
   report ≤ 30 s.  Wall seconds, CPU seconds and peak RSS (``ru_maxrss``) after each phase.

``--schools 1,10,150`` instead measures the schools of ``benchmarks/province.py`` (each its own
institution, the same history, as of 2026-12-28): per size, ``compute`` over every plan (three
calls in a fresh process: the first, and the best later one; with ``--baseline REV`` also with the
code of that git revision — "before"), then the web app as a province leader uses it (sign in,
``/dashboard/province`` twice, a school twice, the province again: the roll-up is kept between
requests while the store is unchanged, duban/web/rollup_cache.py).  Target: compute over the
largest size ≤ 1.5 s.  With ``--database-url`` (any database of the server) a database
``duban_bench_rollup_schools`` is created for each size and dropped at the end.

SQLite always (a temporary file); PostgreSQL too with ``--database-url`` (its schema ``public``
is DROPPED and recreated: use a scratch database, e.g. ``psql -h 127.0.0.1 -U postgres -c
'create database duban_bench_rollup'``).  Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import load_average, reset_postgres_schema, safe_url

AS_OF = "2026-11-23"
ROLLUP_TARGET_S = 5.0
REPORT_TARGET_S = 30.0
SCHOOLS_AS_OF = "2026-12-28"  # benchmarks/province.py's day
SCHOOLS_DB = "duban_bench_rollup_schools"  # with --schools and --database-url: made and dropped
COMPUTE_TARGET_S = 1.5


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_load(spec: dict[str, Any]) -> dict[str, Any]:
    """The data: ``spec["plans"]`` (the default) or ``spec["schools"]`` schools of
    ``benchmarks.province`` (each its own institution); then the history and the ledger."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from sqlalchemy import func, select

    from duban.db import make_engine, session_scope, upgrade
    from duban.models import Milestone, Task
    from duban.rules.calendar import WorkCalendar
    from duban.sweep.decisions import decide

    t0 = time.perf_counter()
    engine = make_engine(spec["database_url"])
    upgrade(engine)
    from benchmarks import province

    if spec.get("schools"):
        province.load(engine, province.schools(spec["schools"], seed=1), source="bench_rollup")
        province.acknowledged(engine)
    else:
        from benchmarks.bench_sweep import IMPORTED

        now = dt.datetime.fromisoformat(IMPORTED)
        province.load(
            engine, province.schools(spec["plans"], seed=1, today=dt.date.fromisoformat(spec["as_of"])), now=now, source="bench_rollup"
        )
        province.acknowledged(engine, now=now)
    as_of = dt.date.fromisoformat(spec["as_of"])
    counts = history(engine, as_of)
    decided = decide(engine, today=as_of, cal=WorkCalendar(), tz=ZoneInfo("Asia/Shanghai"))
    with session_scope(engine) as s:
        counts.update(
            tasks=s.scalar(select(func.count()).select_from(Task)),
            milestones=s.scalar(select(func.count()).select_from(Milestone)),
            ledger=decided.new,
        )
    if engine.dialect.name == "postgresql":
        from sqlalchemy import text

        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    engine.dispose()
    return {"seconds": time.perf_counter() - t0, "counts": counts}


def _request(m: Any, kind: str, status: str, created: Any, decided: Any, **extra: Any) -> dict[str, Any]:
    return (
        dict(
            plan_id=m.plan_id,
            task_id=m.task_id,
            milestone_id=m.id,
            person_id=m.owner_id,
            kind=kind,
            status=status,
            note="",
            new_due_date=None,
            created_at=created,
            decided_at=decided,
            decision_note="",
        )
        | extra
    )


def history(engine: Any, as_of: Any) -> dict[str, int]:
    """A history, set-based: of the milestones due before ``as_of``, half done (60 % of those on
    time, the rest 5 days late), one in ten submitted and waiting; one done in seven returned once;
    one later milestone in twenty extended by 30 days (approved).  Returns what was written."""
    import datetime as dt

    from sqlalchemy import bindparam, insert, select

    from duban.db import session_scope
    from duban.models import Milestone, Request, Task
    from duban.vocabulary import MilestoneState, RequestKind, RequestStatus

    utc = dt.UTC
    done, submitted, extended, requests = [], [], [], []
    with session_scope(engine) as s:
        rows = s.execute(
            select(Milestone.id, Milestone.task_id, Milestone.due_date, Task.plan_id, Task.owner_id).join(
                Task, Task.id == Milestone.task_id
            )
        ).all()
        for m in rows:
            at = dt.datetime.combine(m.due_date, dt.time(2), tzinfo=utc)
            if m.due_date < as_of:
                k = m.id % 10
                if k < 5:
                    when = at - dt.timedelta(days=1) if k < 3 else at + dt.timedelta(days=5)
                    done.append({"mid": m.id, "sub": when, "fin": when + dt.timedelta(days=1)})
                    requests.append(_request(m, RequestKind.COMPLETION, RequestStatus.APPROVED, when, when + dt.timedelta(days=1)))
                    if m.id % 7 == 0:
                        before = when - dt.timedelta(days=2)
                        returned = _request(m, RequestKind.COMPLETION, RequestStatus.RETURNED, before, when - dt.timedelta(days=1))
                        requests.append(returned | {"decision_note": "请补充佐证材料"})
                elif k == 5:
                    submitted.append({"mid": m.id, "sub": at})
                    requests.append(_request(m, RequestKind.COMPLETION, RequestStatus.PENDING, at, None))
            elif m.id % 20 == 0:
                new_due = m.due_date + dt.timedelta(days=30)
                extended.append({"mid": m.id, "due": new_due})
                asked, granted = at - dt.timedelta(days=20), at - dt.timedelta(days=19)
                requests.append(_request(m, RequestKind.EXTENSION, RequestStatus.APPROVED, asked, granted, new_due_date=new_due))
        t = Milestone.__table__
        ms = t.c.id == bindparam("mid")
        if done:
            finished = {"submitted_at": bindparam("sub"), "completed_at": bindparam("fin")}
            s.execute(t.update().where(ms).values(status=MilestoneState.DONE, **finished), done)
        if submitted:
            s.execute(t.update().where(ms).values(status=MilestoneState.SUBMITTED, submitted_at=bindparam("sub")), submitted)
        if extended:
            s.execute(t.update().where(ms).values(due_date=bindparam("due"), due_version=2), extended)
        for i in range(0, len(requests), 5000):
            s.execute(insert(Request), requests[i : i + 5000])
    return {"requests": len(requests), "done": len(done), "submitted": len(submitted), "extended": len(extended)}


def _child_measure(spec: dict[str, Any]) -> dict[str, Any]:
    import datetime as dt

    phases: list[dict[str, Any]] = []
    clock, cpu = time.perf_counter(), time.process_time()

    def mark(name: str) -> None:
        nonlocal clock, cpu
        now, c = time.perf_counter(), time.process_time()
        phases.append({"phase": name, "seconds": now - clock, "cpu_seconds": c - cpu, "peak_mib": _peak_mib()})
        clock, cpu = now, c

    from zoneinfo import ZoneInfo

    from duban.db import make_engine
    from duban.report import write_report
    from duban.rollup.compute import compute
    from duban.rollup.snapshots import snapshot
    from duban.rules.calendar import WorkCalendar

    engine = make_engine(spec["database_url"])
    mark("import modules, engine")
    r = compute(engine, as_of=dt.date.fromisoformat(AS_OF), tz=ZoneInfo("Asia/Shanghai"), cal=WorkCalendar())
    mark("rollup.compute (all plans)")
    stored = snapshot(engine, r)
    mark(f"rollup.snapshot ({stored} rows)")
    files = write_report(r, spec["out"])
    mark("report: HTML + XLSX")
    t = r.totals
    return {
        "phases": phases,
        "totals": {
            k: t[k]
            for k in (
                "plans",
                "tasks",
                "milestones",
                "done_milestones",
                "overdue_milestones",
                "red",
                "yellow",
                "green",
                "awaiting_approval",
                "slipped_milestones",
                "escalations",
            )
        },
        "rows": {k: len(f) for k, _t, f in r.views()},
        "html_bytes": files.html.stat().st_size,
        "xlsx_bytes": files.xlsx.stat().st_size,
    }


def _child_compute(spec: dict[str, Any]) -> dict[str, Any]:
    """``compute`` over every plan, ``spec["repeat"]`` times (the first pays the imports and the
    calendar's tables): wall and CPU seconds of each; run with the code of ``spec["src"]`` when given."""
    if spec.get("src"):
        sys.path.insert(0, spec["src"])  # the code before (a `git archive` of it), ahead of this checkout
    import datetime as dt
    from zoneinfo import ZoneInfo

    import duban
    from duban.db import make_engine
    from duban.rollup.compute import compute
    from duban.rules.calendar import WorkCalendar

    engine = make_engine(spec["database_url"])
    runs = []
    for _ in range(spec.get("repeat", 3)):
        wall, cpu = time.perf_counter(), time.process_time()
        r = compute(engine, as_of=dt.date.fromisoformat(spec["as_of"]), tz=ZoneInfo("Asia/Shanghai"), cal=WorkCalendar())
        runs.append({"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu})
    return {"runs": runs, "tasks": int(r.totals["tasks"]), "code": str(Path(duban.__file__).parent)}


def _child_pages(spec: dict[str, Any]) -> dict[str, Any]:
    """The web app as a province leader uses it: sign in, open the province's page twice, a school
    twice, and the province's page again (seconds of each request)."""
    import datetime as dt
    import re
    from zoneinfo import ZoneInfo

    import time_machine
    from fastapi.testclient import TestClient

    from duban import accounts
    from duban.db import make_engine, session_scope
    from duban.web.app import create_app

    os.environ.update(
        DUBAN_DATABASE_URL=spec["database_url"],
        DUBAN_SECRET_KEY="bench-rollup-" + "0123456789abcdefghijklmnopqrstuv",
        DUBAN_BASE_URL="http://testserver",
        DUBAN_WEB_SEND_NOW="0",
    )
    engine = make_engine(spec["database_url"])
    with session_scope(engine) as s:
        accounts.create_account(s, "province-bench", "bench-password-123", role="office", province=True)
    looked_at = dt.datetime.combine(dt.date.fromisoformat(spec["as_of"]), dt.time(10), tzinfo=ZoneInfo("Asia/Shanghai"))
    out: list[dict[str, Any]] = []
    with time_machine.travel(looked_at, tick=True), TestClient(create_app(), follow_redirects=False) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        login = {"csrf": token.group(1) if token else "", "login": "province-bench", "password": "bench-password-123"}
        assert client.post("/login", data=login | {"next": "/dashboard"}).status_code == 303
        for what, url in (
            ("province page, first", "/dashboard/province"),
            ("province page, again", "/dashboard/province"),
            ("a school, first", "/dashboard?institution=school-001"),
            ("a school, again", "/dashboard?institution=school-001"),
            ("province page, third", "/dashboard/province"),
        ):
            started = time.perf_counter()
            resp = client.get(url)
            out.append({"request": what, "url": url, "status": resp.status_code, "seconds": time.perf_counter() - started})
    return {"requests": out}


CHILDREN = {
    "load": _child_load,
    "measure": _child_measure,
    "compute": _child_compute,
    "pages": _child_pages,
    "reset": reset_postgres_schema,
}


def _run_child(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_rollup", "--child", kind, json.dumps(spec)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if out.returncode != 0:
        raise RuntimeError(f"child {kind} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure(name: str, url: str, plans: int, workdir: Path) -> bool:
    print(f"\n[{name}] {safe_url(url)}: loading {plans} plans and their history …", flush=True)
    if url.startswith("postgresql"):
        _run_child("reset", {"database_url": url})
    loaded = _run_child("load", {"database_url": url, "plans": plans, "as_of": AS_OF})
    c = loaded["counts"]
    print(
        f"[{name}] set-up {loaded['seconds']:.1f} s: {c['tasks']} tasks, {c['milestones']} milestones, {c['done']} done, "
        f"{c['submitted']} submitted, {c['extended']} extended, {c['requests']} requests, {c['ledger']} ledger rows",
        flush=True,
    )
    m = _run_child("measure", {"database_url": url, "out": str(workdir / f"report-{name}")})
    for p in m["phases"]:
        print(f"  {p['phase']:<34} {p['seconds']:7.2f} s  (cpu {p['cpu_seconds']:6.2f})  peak {p['peak_mib']:6.0f} MiB")
    by = {p["phase"].split(" (")[0]: p for p in m["phases"]}
    compute_s = by["rollup.compute"]["seconds"]
    report_s = compute_s + by["report: HTML + XLSX"]["seconds"]
    peak = m["phases"][-1]["peak_mib"]
    print(f"  totals: {m['totals']}")
    print(f"  rows per view: {m['rows']}")
    print(f"  HTML {m['html_bytes'] / 1024:.0f} KiB, XLSX {m['xlsx_bytes'] / 1024:.0f} KiB")
    ok1, ok2 = compute_s <= ROLLUP_TARGET_S, report_s <= REPORT_TARGET_S
    print(
        f"[{name}] rollup {compute_s:.2f} s (target ≤ {ROLLUP_TARGET_S:g} s: {'ok' if ok1 else 'MISSED'}); "
        f"rollup + HTML + XLSX {report_s:.2f} s (target ≤ {REPORT_TARGET_S:g} s: {'ok' if ok2 else 'MISSED'}); peak RSS {peak:.0f} MiB"
    )
    return ok1 and ok2


def _admin(url: str, statement: str) -> None:
    """One statement on the server's maintenance database (CREATE / DROP DATABASE)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(statement))
    engine.dispose()


def _baseline_source(rev: str, workdir: Path) -> str:
    """The code of git revision ``rev`` (``git archive``), to measure "before"."""
    root = Path(__file__).resolve().parent.parent
    dest = workdir / "baseline"
    dest.mkdir()
    archive = subprocess.run(["git", "archive", rev, "duban", "definitions", "notifications"], cwd=root, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return str(dest)


def _schools(args: argparse.Namespace, workdir: Path) -> bool:
    """Compute at each size (before with ``--baseline``, after), and the pages' first and later requests."""
    sizes = [int(x) for x in args.schools.split(",") if x.strip()]
    before = _baseline_source(args.baseline, workdir) if args.baseline else None
    rows = []
    for size in sizes:
        if args.database_url:
            from sqlalchemy.engine import make_url

            _admin(args.database_url, f"DROP DATABASE IF EXISTS {SCHOOLS_DB} WITH (FORCE)")
            _admin(args.database_url, f"CREATE DATABASE {SCHOOLS_DB}")
            url = make_url(args.database_url).set(database=SCHOOLS_DB).render_as_string(hide_password=False)
        else:
            url = f"sqlite:///{workdir / f'schools-{size}.db'}"
        print(f"  {size} schools: loading …", flush=True)
        spec = {"database_url": url, "schools": size, "as_of": SCHOOLS_AS_OF}
        loaded = _run_child("load", spec)
        after = _run_child("compute", spec)
        old = _run_child("compute", spec | {"src": before}) if before else None
        pages = _run_child("pages", spec)
        rows.append({"size": size, "counts": loaded["counts"], "after": after, "before": old, "pages": pages["requests"]})
    if args.database_url:
        _admin(args.database_url, f"DROP DATABASE IF EXISTS {SCHOOLS_DB} WITH (FORCE)")
    _print_schools(rows, args.baseline)
    for r in rows[:1]:
        print(f"code measured: after {r['after']['code']}" + (f"; before {r['before']['code']}" if r["before"] else ""))
    big = rows[-1]
    return min(r["seconds"] for r in big["after"]["runs"][1:] or big["after"]["runs"]) <= COMPUTE_TARGET_S


def _print_schools(rows: list[dict[str, Any]], baseline: str | None) -> None:
    def fig(result: dict[str, Any] | None) -> str:
        if result is None:
            return "—"
        runs = result["runs"]
        best = min(runs[1:] or runs, key=lambda r: r["seconds"])
        return f"{runs[0]['seconds']:.2f} / {best['seconds']:.2f} (cpu {best['cpu_seconds']:.2f})"

    print(f"\ncompute over every plan, seconds: first call / best later call (cpu); before = {baseline or 'not measured'}")
    head = ["schools", "tasks", "milestones", "before", "after", "page 1st", "page 2nd", "school 1st", "school 2nd", "page 3rd"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        p = [f"{q['seconds']:.3f}" + ("" if q["status"] == 200 else f" ({q['status']})") for q in r["pages"]]
        c = r["counts"]
        print("| " + " | ".join([str(r["size"]), f"{c['tasks']:,}", f"{c['milestones']:,}", fig(r["before"]), fig(r["after"]), *p]) + " |")
    print(f"target: compute over {rows[-1]['size']} schools ≤ {COMPUTE_TARGET_S:g} s (best later call)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", type=int, default=150, help="plans in the province (default 150, ≈ 650 milestones each)")
    parser.add_argument("--database-url", help="also measure this PostgreSQL database (its schema public is dropped!)")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--schools", help="instead: the schools of benchmarks/province.py at these sizes (e.g. 1,10,150)")
    parser.add_argument("--baseline", help="with --schools: also time compute with the code of this git revision (before)")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, spec = args.child
        print(json.dumps(CHILDREN[kind](json.loads(spec)), ensure_ascii=False, default=str))
        return 0
    if args.schools:
        print(f"bench_rollup --schools {args.schools}, as of {SCHOOLS_AS_OF}; load average {load_average()}")
        with tempfile.TemporaryDirectory(prefix="duban-bench-rollup-") as tmp:
            ok = _schools(args, Path(tmp))
        print(f"load average at the end: {load_average()}")
        return 0 if ok else 1
    print(f"bench_rollup: {args.plans} plans, as of {AS_OF}; load average {load_average()}")
    ok = True
    with tempfile.TemporaryDirectory(prefix="duban-bench-rollup-") as tmp:
        workdir = Path(tmp)
        if not args.skip_sqlite:
            ok &= _measure("sqlite", f"sqlite:///{workdir / 'province.db'}", args.plans, workdir)
        if args.database_url:
            url = args.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            ok &= _measure("postgresql", url, args.plans, workdir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
