"""Benchmark: the link pages under load, on loopback, against SQLite and PostgreSQL.

    python -m benchmarks.bench_web [--clients 50] [--views 5000] [--submissions 1000]
                                   [--database-url postgresql+psycopg://…] [--workers 1]

1. A generated plan (``benchmarks.generate``, ``--tasks`` tasks, default 2,000) is imported into a
   fresh database; one 提交办结 link is issued per task (its owner, its first milestone) and one
   查看 link per task, as the sweep would.
2. The app runs under uvicorn in a child process (``duban.web.app:create_app``, the same app as
   ``duban serve``) on 127.0.0.1, rate limits raised out of the way, immediate sending off (the
   messages an action causes are still written to the ledger in its transaction).
3. ``--clients`` concurrent clients (httpx, asyncio) open pages (GET: the full task page with
   milestones and history), then submit: each client opens a 提交办结 link (GET, for the CSRF
   cookie and field), POSTs the completion, and POSTs the same form again (a replay, which must
   be refused).  Requests per second and p50/p99 latency are printed for page views and for
   submissions.
4. Afterwards the store is checked: every link submitted exactly once (one request, one event,
   one used link, one ledger item per reviewer), none lost, none applied twice.

Targets: ≥ 200 page views/s, ≥ 50 submissions/s, p99 < 200 ms.  SQLite always (a temporary
folder); PostgreSQL too with ``--database-url`` (its schema ``public`` is DROPPED and recreated:
use a throw-away database).  Exit status 1 when a target is missed or a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import load_average, reset_postgres_schema, safe_url

SECRET = "bench-web-0123456789abcdefghijklmnopqrstuvwxyz"
CSRF_RE = re.compile(r'name="csrf" value="([0-9a-f]+)"')
TARGET_VIEWS, TARGET_SUBMITS, TARGET_P99 = 200.0, 50.0, 0.200


def prepare(url: str, folder: Path, tasks: int) -> tuple[list[str], list[str]]:
    """Import a generated plan and issue links; return (view tokens, done tokens)."""
    from sqlalchemy import select

    from benchmarks.generate import build_plan, write_generated
    from duban.db import get_engine, session_scope
    from duban.importer import import_plan
    from duban.links import LinkSpec, issue, link_token
    from duban.models import Milestone, Plan, Task

    book = write_generated(build_plan(tasks, seed=7), folder / "plan.xlsx")
    engine = get_engine(url)
    t0 = time.perf_counter()
    import_plan(engine, book, actor="bench")
    today = dt.date.today()
    expires = today + dt.timedelta(days=60)
    with session_scope(engine) as s:
        plan_id = s.scalar(select(Plan.id))
        rows = s.execute(
            select(Task.id, Task.owner_id, Milestone.id).join(Milestone, Milestone.task_id == Task.id)
            .where(Milestone.seq == 1).order_by(Task.id)
        ).all()
        specs = [LinkSpec(plan_id, owner, "view", tid, None, expires) for tid, owner, _ in rows]
        specs += [LinkSpec(plan_id, owner, "done", tid, mid, expires) for tid, owner, mid in rows]
        ids = issue(s, specs, secret=SECRET, today=today)
    tokens = [link_token(SECRET, i, sp.action, expires) for i, sp in zip(ids, specs)]
    engine.dispose()
    print(f"  data: {len(rows)} tasks imported and {len(tokens)} links issued in {time.perf_counter() - t0:.1f} s", flush=True)
    return tokens[: len(rows)], tokens[len(rows):]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, folder: Path, workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUBAN_")}
    env.update(DUBAN_DATABASE_URL=url, DUBAN_SECRET_KEY=SECRET, DUBAN_BASE_URL=f"http://127.0.0.1:{port}",
               DUBAN_RATE_LIMIT_PER_MINUTE="100000000", DUBAN_RATE_LIMIT_LINK_PER_MINUTE="100000000", DUBAN_WEB_SEND_NOW="0",
               DUBAN_OUTBOX_DIR=str(folder / "outbox"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "duban.web.app:create_app", "--factory", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
        env=env, cwd=folder,
    )
    import httpx

    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit("the server exited during start-up")
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start within 60 s")


async def run_load(base: str, views: list[str], dones: list[str], *, clients: int, n_views: int) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    view_lat: list[float] = []
    submit_lat: list[float] = []
    outcomes: dict[str, int] = {}
    errors: list[str] = []
    rng = random.Random(1)
    view_queue = [rng.choice(views + dones) for _ in range(n_views)]

    async def viewer(client: httpx.AsyncClient):
        while view_queue:
            tok = view_queue.pop()
            t = time.perf_counter()
            r = await client.get(f"/l/{tok}")
            view_lat.append(time.perf_counter() - t)
            if r.status_code != 200:
                errors.append(f"GET {r.status_code}")

    todo = list(dones)

    async def submitter(client: httpx.AsyncClient):
        while todo:
            tok = todo.pop()
            client.cookies.clear()
            t = time.perf_counter()
            page = await client.get(f"/l/{tok}")
            view_lat.append(time.perf_counter() - t)
            m = CSRF_RE.search(page.text)
            if page.status_code != 200 or not m:
                errors.append(f"GET before POST {page.status_code}")
                continue
            form = {"csrf": m.group(1), "note": "压力测试：已完成，佐证材料见附件。"}
            for attempt in ("first", "replay"):
                t = time.perf_counter()
                r = await client.post(f"/l/{tok}", data=form)
                submit_lat.append(time.perf_counter() - t)
                key = f"{attempt}:{r.status_code}"
                outcomes[key] = outcomes.get(key, 0) + 1

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as probe:
        await probe.get(f"/l/{views[0]}")  # warm up
    clients_ = [httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_connections=1), timeout=30) for _ in range(clients)]
    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(viewer(c) for c in clients_))
        view_wall = time.perf_counter() - t0
        n_view_phase = len(view_lat)
        phase_view_lat = list(view_lat)
        t0 = time.perf_counter()
        await asyncio.gather(*(submitter(c) for c in clients_))
        submit_wall = time.perf_counter() - t0
    finally:
        for c in clients_:
            await c.aclose()
    return {"view_wall": view_wall, "views": n_view_phase, "view_lat": phase_view_lat, "submit_wall": submit_wall,
            "submit_lat": submit_lat, "submit_views": len(view_lat) - n_view_phase, "outcomes": outcomes, "errors": errors}


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def verify(url: str, n: int) -> list[str]:
    """Each done link applied exactly once: problems found (empty when all is well)."""
    from sqlalchemy import func, select

    from duban.db import get_engine, session_scope
    from duban.models import Event, Link, Milestone, Notification, Request

    engine = get_engine(url)
    problems = []
    with session_scope(engine) as s:
        reqs = s.scalar(select(func.count()).select_from(Request))
        per_ms = s.execute(select(Request.milestone_id, func.count()).group_by(Request.milestone_id).having(func.count() > 1)).all()
        evs = s.scalar(select(func.count()).select_from(Event).where(Event.kind == "completion_submitted"))
        used = s.scalar(select(func.count()).select_from(Link).where(Link.action == "done", Link.used_at.is_not(None)))
        submitted = s.scalar(select(func.count()).select_from(Milestone).where(Milestone.status == "submitted"))
        approvals = s.scalar(select(func.count(func.distinct(Notification.data["request"].as_integer()))).where(Notification.kind == "approval"))
    for label, got in (("requests", reqs), ("completion events", evs), ("used done links", used), ("submitted milestones", submitted),
                       ("requests with approval messages", approvals)):
        if got != n:
            problems.append(f"{label}: {got}, expected {n}")
    if per_ms:
        problems.append(f"{len(per_ms)} milestones with more than one request")
    engine.dispose()
    return problems


def bench(url: str, label: str, args, folder: Path) -> bool:
    print(f"\n== {label}: {safe_url(url)}", flush=True)
    views, dones = prepare(url, folder, args.tasks)
    dones = dones[: args.submissions]
    proc, base = start_server(url, folder, args.workers)
    try:
        res = asyncio.run(run_load(base, views, dones, clients=args.clients, n_views=args.views))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    ok = True
    v_rps = res["views"] / res["view_wall"]
    s_rps = len(dones) / res["submit_wall"]
    v50, v99 = pct(res["view_lat"], 50), pct(res["view_lat"], 99)
    first = [x for i, x in enumerate(res["submit_lat"]) if i % 2 == 0]
    s50, s99 = pct(res["submit_lat"], 50), pct(res["submit_lat"], 99)
    print(f"  page views : {res['views']} in {res['view_wall']:.2f} s = {v_rps:.0f}/s, p50 {v50 * 1000:.0f} ms, p99 {v99 * 1000:.0f} ms"
          f"  (target ≥ {TARGET_VIEWS:.0f}/s, p99 < {TARGET_P99 * 1000:.0f} ms)")
    print(f"  submissions: {len(dones)} (each opened, submitted, replayed) in {res['submit_wall']:.2f} s = {s_rps:.0f} submissions/s"
          f" ({(len(res['submit_lat']) + res['submit_views']) / res['submit_wall']:.0f} requests/s); POST p50 {s50 * 1000:.0f} ms,"
          f" p99 {s99 * 1000:.0f} ms; first POSTs p99 {pct(first, 99) * 1000:.0f} ms  (target ≥ {TARGET_SUBMITS:.0f}/s, p99 < 200 ms)")
    print(f"  answers    : {dict(sorted(res['outcomes'].items()))}; errors: {len(res['errors'])} {sorted(set(res['errors']))[:5]}")
    expected = {"first:200": len(dones), "replay:410": len(dones)}
    if res["outcomes"] != expected or res["errors"]:
        print(f"  CHECK FAILED: expected {expected}")
        ok = False
    problems = verify(url, len(dones))
    print("  store      : " + ("every submission applied exactly once (requests, events, used links, submitted milestones, "
                              "approval messages all = %d)" % len(dones) if not problems else "PROBLEMS: " + "; ".join(problems)))
    ok = ok and not problems
    for name, value, target, more in (("views/s", v_rps, TARGET_VIEWS, True), ("submissions/s", s_rps, TARGET_SUBMITS, True),
                                      ("view p99", v99, TARGET_P99, False), ("submit p99", s99, TARGET_P99, False)):
        if (value < target) if more else (value >= target):
            print(f"  TARGET MISSED: {name} {value:.3f} (target {target})")
            ok = False
    return ok


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_web", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--views", type=int, default=5000, help="page views in the first phase")
    p.add_argument("--submissions", type=int, default=1000)
    p.add_argument("--tasks", type=int, default=2000)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument("--database-url", help="also PostgreSQL (its schema public is dropped and recreated)")
    p.add_argument("--skip-sqlite", action="store_true")
    args = p.parse_args(argv)
    args.submissions = min(args.submissions, args.tasks)
    print(f"bench_web: {args.clients} clients, {os.cpu_count()} CPUs, load average {load_average()}, Python {sys.version.split()[0]}")
    ok = True
    folder = Path(tempfile.mkdtemp(prefix="duban-bench-web-"))
    try:
        if not args.skip_sqlite:
            sub = folder / "sqlite"
            sub.mkdir()
            ok &= bench(f"sqlite:///{sub / 'duban.db'}", "SQLite", args, sub)
        if args.database_url:
            reset_postgres_schema({"database_url": args.database_url})
            sub = folder / "postgresql"
            sub.mkdir()
            ok &= bench(args.database_url, "PostgreSQL", args, sub)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("\nall targets met, every check passed" if ok else "\nSOME TARGETS MISSED OR CHECKS FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
