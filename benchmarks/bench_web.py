"""Benchmark: the link pages under load, on loopback, against SQLite and PostgreSQL.

    python -m benchmarks.bench_web [--clients 50] [--workers 1,2] [--duration 20]
                                   [--view-rate 200] [--submit-rate 50] [--arrivals poisson|even]
                                   [--views 5000] [--submissions 1000] [--skip-closed] [--skip-open]
                                   [--database-url postgresql+psycopg://…] [--skip-sqlite]

1. A generated plan (``benchmarks.generate``, ``--tasks`` tasks, default 2,500) is imported into a
   fresh database; one 提交办结 link is issued per task (its owner, its first milestone) and one
   查看 link per task, as the sweep would.
2. The app runs under uvicorn in a child process (``duban.web.app:create_app``, the same app as
   ``duban serve``) on 127.0.0.1 with ``--workers`` processes, rate limits raised out of the way,
   immediate sending off (the messages an action causes are still written to the ledger in its
   transaction).
3. Two load models, both with ``--clients`` concurrent clients (one keep-alive HTTP/1.1
   connection each; a small asyncio client, not httpx, so that the load generator takes little of
   the CPUs it shares with the server: its own CPU time is printed).

   - **closed loop (saturation)**: each client sends its next request as soon as the previous
     one is answered (no think time): first ``--views`` page views, then ``--submissions``
     submissions (open the 提交办结 link for the CSRF cookie and field, POST the completion, POST
     the same form again: a replay, which must be refused).  This measures the most the server
     can do; its latency is set by the load model itself (Little's law: 50 requests always in
     flight at X requests/s means 50/X s mean latency), so only its throughput is compared with
     the targets.
   - **open loop (the target rates)**: requests arrive on a fixed schedule (``--arrivals``:
     Poisson or evenly spaced), ``--view-rate`` page views/s and ``--submit-rate`` submissions/s
     for ``--duration`` s, served by the same 50 clients (an arrival waits for a free client when
     all 50 are busy).  Every latency is measured from the request's *scheduled* start, so
     waiting for a client or for the server counts (no coordinated omission).  Printed: achieved
     rates and p50/p95/p99 for page views, for the submissions' POST, and for a whole submission
     (open the page, submit: from its scheduled start).

4. After each phase the store is checked: every link submitted exactly once (one request, one
   event, one used link, one submitted milestone, ledger items for the reviewers), none lost,
   none applied twice.

Targets: ≥ 200 page views/s and ≥ 50 submissions/s (closed loop: the capacity; open loop: achieved
at the offered rates) with p99 < 200 ms (open loop, views and submission POSTs).  SQLite always (a
temporary folder); PostgreSQL too with ``--database-url`` (its schema ``public`` is DROPPED and
recreated: use a throw-away database).  Exit status 1 when a target is missed or a check fails.
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
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from benchmarks.common import load_average, reset_postgres_schema, safe_url

SECRET = "bench-web-0123456789abcdefghijklmnopqrstuvwxyz"  # noqa: S105 - the benchmark's own test key
CSRF_RE = re.compile(rb'name="csrf" value="([0-9a-f]+)"')
COOKIE_RE = re.compile(rb"duban_csrf=([^;]+)")
TARGET_VIEWS, TARGET_SUBMITS, TARGET_P99 = 200.0, 50.0, 0.200
NOTE = "压力测试：已完成，佐证材料见附件。"


def prepare(url: str, folder: Path, tasks: int) -> tuple[list[str], list[str]]:
    """Import a generated plan and issue links; return (view tokens, done tokens)."""
    from sqlalchemy import select

    from benchmarks.generate import build_plan, write_generated
    from duban import db
    from duban.db import get_engine, session_scope
    from duban.link_tokens import link_token
    from duban.links import LinkSpec, issue
    from duban.models import Milestone, Plan, Task
    from duban.plans.importer import import_plan

    book = write_generated(build_plan(tasks, seed=7), folder / "plan.xlsx")
    db._engines.pop(url, None)  # a PostgreSQL schema dropped and made again: migrate it again
    engine = get_engine(url)
    t0 = time.perf_counter()
    import_plan(engine, book, actor="bench")
    today = dt.date.today()
    expires = today + dt.timedelta(days=60)
    with session_scope(engine) as s:
        plan_id = s.scalar(select(Plan.id))
        rows = s.execute(
            select(Task.id, Task.owner_id, Milestone.id)
            .join(Milestone, Milestone.task_id == Task.id)
            .where(Milestone.seq == 1)
            .order_by(Task.id)
        ).all()
        specs = [LinkSpec(plan_id, owner, "view", tid, None, expires) for tid, owner, _ in rows]
        specs += [LinkSpec(plan_id, owner, "done", tid, mid, expires) for tid, owner, mid in rows]
        ids = issue(s, specs, secret=SECRET, today=today)
    tokens = [link_token(SECRET, i, sp.action, expires) for i, sp in zip(ids, specs, strict=True)]
    engine.dispose()
    print(f"  data: {len(rows)} tasks imported and {len(tokens)} links issued in {time.perf_counter() - t0:.1f} s", flush=True)
    return tokens[: len(rows)], tokens[len(rows) :]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, folder: Path, workers: int, http: str = "auto", loop: str = "auto") -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUBAN_")}
    env.update(
        DUBAN_DATABASE_URL=url,
        DUBAN_SECRET_KEY=SECRET,
        DUBAN_BASE_URL=f"http://127.0.0.1:{port}",
        DUBAN_RATE_LIMIT_PER_MINUTE="100000000",
        DUBAN_RATE_LIMIT_LINK_PER_MINUTE="100000000",
        DUBAN_WEB_SEND_NOW="0",
        DUBAN_OUTBOX_DIR=str(folder / "outbox"),
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "duban.web.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
            "--http",
            http,
            "--loop",
            loop,
        ],
        env=env,
        cwd=folder,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            status, _, _ = asyncio.run(_once(port, "/healthz"))
            if status == 200:
                time.sleep(1.0 if workers > 1 else 0)  # let every worker come up
                return proc, port
        except OSError:
            pass
        if proc.poll() is not None:
            raise SystemExit("the server exited during start-up")
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start within 60 s")


def server_stack() -> str:
    """What uvicorn's "auto" picks here: httptools and uvloop when they are installed (pyproject)."""
    import importlib.util

    return ", ".join(f"{m} {'installed' if importlib.util.find_spec(m) else 'not installed'}" for m in ("httptools", "uvloop"))


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children (uvicorn's workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        pids = [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return float("nan")
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


# ---------------------------------------------------------------------------------------------
# A small HTTP/1.1 keep-alive client on asyncio streams (httpx costs the shared CPUs several
# times more per request)


class Client:
    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, *, form: dict | None = None, cookie: bytes | None = None) -> tuple[int, dict, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        body = urlencode(form).encode() if form is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUser-Agent: bench_web\r\n".encode()
        if cookie:
            head += b"Cookie: duban_csrf=" + cookie + b"\r\n"
        if form is not None:
            head += f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n".encode()
        self.writer.write(head + b"\r\n" + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            if b":" in line:
                k, v = line.split(b":", 1)
                k = k.strip().lower()
                headers[k] = headers[k] + b"\n" + v.strip() if k in headers else v.strip()
        data = await self.reader.readexactly(int(headers.get(b"content-length", b"0")))
        if headers.get(b"connection", b"").lower() == b"close":
            await self.close()
        return status, headers, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = self.reader = None


async def _once(port: int, path: str):
    c = Client(port)
    try:
        return await c.request("GET", path)
    finally:
        await c.close()


async def submit(client: Client, tok: str, t_start: float, res: dict) -> None:
    """Open a 提交办结 link (a first visit: no cookie), submit it, submit it again (a replay)."""
    status, headers, page = await client.request("GET", f"/l/{tok}")
    t_page = time.perf_counter()
    res["page_lat"].append(t_page - t_start)
    m = CSRF_RE.search(page)
    c = COOKIE_RE.search(headers.get(b"set-cookie", b""))
    if status != 200 or not m or not c:
        res["errors"].append(f"GET before POST {status}")
        return
    form = {"csrf": m.group(1).decode(), "note": NOTE}
    for attempt in ("first", "replay"):
        t = time.perf_counter()
        status, _, _ = await client.request("POST", f"/l/{tok}", form=form, cookie=c.group(1))
        now = time.perf_counter()
        res["post_lat" if attempt == "first" else "replay_lat"].append(now - t)
        if attempt == "first":
            res["whole_lat"].append(now - t_start)
        key = f"{attempt}:{status}"
        res["outcomes"][key] = res["outcomes"].get(key, 0) + 1


def new_result() -> dict:
    return {"view_lat": [], "page_lat": [], "post_lat": [], "replay_lat": [], "whole_lat": [], "outcomes": {}, "errors": []}


async def closed_loop(port: int, views: list[str], dones: list[str], *, clients: int, n_views: int) -> dict:
    """Saturation: every client sends its next request as soon as it has the answer."""
    rng = random.Random(1)
    view_queue = [rng.choice(views + dones) for _ in range(n_views)]
    res = new_result()
    conns = [Client(port) for _ in range(clients)]

    async def viewer(c: Client):
        while view_queue:
            tok = view_queue.pop()
            t = time.perf_counter()
            status, _, _ = await c.request("GET", f"/l/{tok}")
            res["view_lat"].append(time.perf_counter() - t)
            if status != 200:
                res["errors"].append(f"GET {status}")

    todo = list(dones)

    async def submitter(c: Client):
        while todo:
            await submit(c, todo.pop(), time.perf_counter(), res)

    try:
        await asyncio.gather(*(c.request("GET", f"/l/{views[0]}") for c in conns))  # connect, warm up
        c0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(viewer(c) for c in conns))
        res["view_wall"], res["view_client_cpu"] = time.perf_counter() - t0, time.process_time() - c0
        c0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(submitter(c) for c in conns))
        res["submit_wall"], res["submit_client_cpu"] = time.perf_counter() - t0, time.process_time() - c0
    finally:
        for c in conns:
            await c.close()
    return res


async def open_loop(
    port: int, views: list[str], dones: list[str], *, clients: int, view_rate: float, submit_rate: float, duration: float, arrivals: str
) -> dict:
    """The target rates, on a schedule fixed in advance; latency from each scheduled start."""
    rng = random.Random(2)

    def times(rate: float) -> list[float]:
        out, t = [], 0.0
        if rate <= 0:
            return out
        while True:
            t += rng.expovariate(rate) if arrivals == "poisson" else 1.0 / rate
            if t >= duration:
                return out
            out.append(t)

    schedule = sorted([(t, "view") for t in times(view_rate)] + [(t, "submit") for t in times(submit_rate)])
    n_submits = sum(1 for _, k in schedule if k == "submit")
    if n_submits > len(dones):
        raise SystemExit(f"{n_submits} submissions scheduled but only {len(dones)} links left: raise --tasks")
    todo = list(dones[:n_submits])
    res = new_result()
    res["scheduled_views"], res["scheduled_submits"] = len(schedule) - n_submits, n_submits
    conns = [Client(port) for _ in range(clients)]
    queue: asyncio.Queue = asyncio.Queue()
    lateness: list[float] = []  # how late the client put arrivals in the queue (its own lag)

    async def worker(c: Client):
        while True:
            job = await queue.get()
            if job is None:
                return
            t_start, kind = job
            if kind == "view":
                status, _, _ = await c.request("GET", f"/l/{rng.choice(views)}")
                res["view_lat"].append(time.perf_counter() - t_start)
                if status != 200:
                    res["errors"].append(f"GET {status}")
            else:
                await submit(c, todo.pop(), t_start, res)

    try:
        await asyncio.gather(*(c.request("GET", f"/l/{views[0]}") for c in conns))  # connect, warm up
        tasks = [asyncio.create_task(worker(c)) for c in conns]
        c0 = time.process_time()
        t0 = time.perf_counter() + 0.05
        for at, kind in schedule:
            t_sched = t0 + at
            delay = t_sched - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lateness.append(time.perf_counter() - t_sched)
            queue.put_nowait((t_sched, kind))
        for _ in conns:
            queue.put_nowait(None)
        await asyncio.gather(*tasks)
        res["wall"], res["client_cpu"] = time.perf_counter() - t0, time.process_time() - c0
    finally:
        for c in conns:
            await c.close()
    res["lateness_p99"] = pct(lateness, 99)
    return res


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def ms(values: list[float]) -> str:
    return " / ".join(f"{pct(values, p) * 1000:.0f}" for p in (50, 95, 99)) + " ms"


def verify(url: str, n: int) -> list[str]:
    """Each of the ``n`` done links submitted so far applied exactly once: problems found (empty when all is well)."""
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
        approvals = s.scalar(
            select(func.count(func.distinct(Notification.data["request"].as_integer()))).where(Notification.kind == "approval")
        )
    for label, got in (
        ("requests", reqs),
        ("completion events", evs),
        ("used done links", used),
        ("submitted milestones", submitted),
        ("requests with approval messages", approvals),
    ):
        if got != n:
            problems.append(f"{label}: {got}, expected {n}")
    if per_ms:
        problems.append(f"{len(per_ms)} milestones with more than one request")
    engine.dispose()
    return problems


def check_store(url: str, n: int, res: dict) -> bool:
    expected = {"first:200": len(res["post_lat"]), "replay:410": len(res["replay_lat"])}
    ok = True
    print(f"    answers  : {dict(sorted(res['outcomes'].items()))}; errors: {len(res['errors'])} {sorted(set(res['errors']))[:5]}")
    if res["outcomes"] != expected or res["errors"] or len(res["post_lat"]) != len(res["page_lat"]):
        print("    CHECK FAILED: every first POST 200 and every replay 410 expected, no errors")
        ok = False
    problems = verify(url, n)
    print(
        "    store    : "
        + (
            f"every submission so far applied exactly once (requests, events, used links, submitted milestones, approval items all = {n})"
            if not problems
            else "PROBLEMS: " + "; ".join(problems)
        )
    )
    return ok and not problems


def missed(name: str, value: float, target: float, more: bool) -> bool:
    if (value < target) if more else (value >= target):
        print(f"    TARGET MISSED: {name} {value:.3f} (target {'≥' if more else '<'} {target})")
        return True
    return False


def bench(url: str, label: str, args, folder: Path, workers: int) -> bool:
    print(f"\n== {label}, {workers} worker{'s' if workers > 1 else ''}: {safe_url(url)}  (load average {load_average()})", flush=True)
    if url.startswith("postgresql"):
        reset_postgres_schema({"database_url": url})
    views, dones = prepare(url, folder, args.tasks)
    proc, port = start_server(url, folder, workers, args.http, args.loop)
    ok, submitted = True, 0
    try:
        if not args.skip_closed:
            n = min(args.submissions, len(dones))
            s0 = cpu_seconds(proc.pid)
            res = asyncio.run(closed_loop(port, views, dones[:n], clients=args.clients, n_views=args.views))
            server_cpu = cpu_seconds(proc.pid) - s0
            dones = dones[n:]
            submitted += n
            v_rps = len(res["view_lat"]) / res["view_wall"]
            s_rps = n / res["submit_wall"]
            reqs = 3 * n / res["submit_wall"]
            print(f"  closed loop (saturation, {args.clients} clients, no think time; latency = clients / rate by Little's law):")
            print(
                f"    views    : {len(res['view_lat'])} in {res['view_wall']:.1f} s = {v_rps:.0f}/s; p50/p95/p99 {ms(res['view_lat'])}"
                f"  (Little: {args.clients}/{v_rps:.0f} = {args.clients / v_rps * 1000:.0f} ms mean)"
            )
            print(
                f"    submits  : {n} in {res['submit_wall']:.1f} s = {s_rps:.0f}/s ({reqs:.0f} requests/s: open, submit, replay);"
                f" POST p50/p95/p99 {ms(res['post_lat'])}; replay {ms(res['replay_lat'])}"
            )
            print(
                f"    CPU      : server {server_cpu:.1f} s, load generator {res['view_client_cpu'] + res['submit_client_cpu']:.1f} s"
                f" over {res['view_wall'] + res['submit_wall']:.1f} s"
            )
            ok &= check_store(url, submitted, res)
            ok &= not missed("closed-loop views/s", v_rps, TARGET_VIEWS, True)
            ok &= not missed("closed-loop submissions/s", s_rps, TARGET_SUBMITS, True)
        if not args.skip_open:
            s0 = cpu_seconds(proc.pid)
            res = asyncio.run(
                open_loop(
                    port,
                    views,
                    dones,
                    clients=args.clients,
                    view_rate=args.view_rate,
                    submit_rate=args.submit_rate,
                    duration=args.duration,
                    arrivals=args.arrivals,
                )
            )
            server_cpu = cpu_seconds(proc.pid) - s0
            n = len(res["post_lat"])
            submitted += res["scheduled_submits"]
            wall = res["wall"]
            print(
                f"  open loop ({args.arrivals} arrivals, {args.view_rate:.0f} views/s + {args.submit_rate:.0f} submissions/s offered for"
                f" {args.duration:.0f} s, {args.clients} clients; latency from the scheduled start):"
            )
            print(
                f"    offered  : {res['scheduled_views'] / args.duration:.0f} views/s, {res['scheduled_submits'] / args.duration:.0f}"
                f" submissions/s (this schedule's realisation)"
            )
            print(
                f"    views    : {len(res['view_lat'])} of {res['scheduled_views']} = {len(res['view_lat']) / wall:.0f}/s;"
                f" p50/p95/p99 {ms(res['view_lat'])}"
            )
            print(
                f"    submits  : {n} of {res['scheduled_submits']} = {n / wall:.0f}/s; POST p50/p95/p99 {ms(res['post_lat'])};"
                f" whole (open + submit) {ms(res['whole_lat'])}; replay {ms(res['replay_lat'])}"
            )
            print(
                f"    CPU      : server {server_cpu:.1f} s ({server_cpu / wall * 100:.0f}% of one CPU), load generator"
                f" {res['client_cpu']:.1f} s ({res['client_cpu'] / wall * 100:.0f}%) over {wall:.1f} s; schedule lag p99"
                f" {res['lateness_p99'] * 1000:.1f} ms"
            )
            ok &= check_store(url, submitted, res)
            # kept up: everything offered was served at (within 3 % of) the rate it was offered
            ok &= not missed(
                "open-loop views/s vs offered", len(res["view_lat"]) / wall, 0.97 * res["scheduled_views"] / args.duration, True
            )
            ok &= not missed("open-loop submissions/s vs offered", n / wall, 0.97 * res["scheduled_submits"] / args.duration, True)
            if args.view_rate < TARGET_VIEWS or args.submit_rate < TARGET_SUBMITS:
                print("    (offered below the target rates: not a test of the targets)")
                ok = False
            ok &= not missed("open-loop view p99 (s)", pct(res["view_lat"], 99), TARGET_P99, False)
            ok &= not missed("open-loop submission POST p99 (s)", pct(res["post_lat"], 99), TARGET_P99, False)
    finally:
        stop_server(proc)
    return ok


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_web", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--workers", default="1,2", help="uvicorn worker processes; a list runs each (default 1,2)")
    p.add_argument("--views", type=int, default=5000, help="closed loop: page views")
    p.add_argument("--submissions", type=int, default=1000, help="closed loop: submissions")
    p.add_argument("--duration", type=float, default=20.0, help="open loop: seconds of arrivals")
    p.add_argument("--view-rate", type=float, default=TARGET_VIEWS, help="open loop: page views per second offered")
    p.add_argument("--submit-rate", type=float, default=TARGET_SUBMITS, help="open loop: submissions per second offered")
    p.add_argument("--arrivals", choices=("poisson", "even"), default="poisson")
    p.add_argument("--tasks", type=int, default=2500)
    p.add_argument("--skip-closed", action="store_true")
    p.add_argument("--skip-open", action="store_true")
    p.add_argument("--database-url", help="also PostgreSQL (its schema public is dropped and recreated)")
    p.add_argument("--skip-sqlite", action="store_true")
    p.add_argument(
        "--http",
        default="auto",
        choices=("auto", "h11", "httptools"),
        help="uvicorn's HTTP parser (auto: httptools when installed, as `duban serve`)",
    )
    p.add_argument(
        "--loop",
        default="auto",
        choices=("auto", "asyncio", "uvloop"),
        help="uvicorn's event loop (auto: uvloop when installed, as `duban serve`)",
    )
    args = p.parse_args(argv)
    workers = [int(w) for w in str(args.workers).split(",") if w.strip()]
    print(
        f"bench_web: {args.clients} clients, workers {workers}, {os.cpu_count()} CPUs, load average {load_average()},"
        f" Python {sys.version.split()[0]}, uvicorn --http {args.http} --loop {args.loop} ({server_stack()})"
    )
    ok = True
    folder = Path(tempfile.mkdtemp(prefix="duban-bench-web-"))
    try:
        for w in workers:
            if not args.skip_sqlite:
                sub = folder / f"sqlite-{w}"
                sub.mkdir()
                ok &= bench(f"sqlite:///{sub / 'duban.db'}", "SQLite", args, sub, w)
            if args.database_url:
                sub = folder / f"postgresql-{w}"
                sub.mkdir()
                ok &= bench(args.database_url, "PostgreSQL", args, sub, w)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("\nall targets met, every check passed" if ok else "\nSOME TARGETS MISSED OR CHECKS FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
