"""Whole-process time of `duban check` as an operator sees it (issue: a fast `duban check`).

Three cases, each a fresh `duban check` process on the example plan (176 tasks, one school):

* a non-working day (a Sunday): decided before Prefect is imported or any server started;
* one school with `duban run` up: the flow runs on the server `duban run` started, found through
  the address it records in the data folder;
* one school cold: no Prefect server anywhere, so Prefect starts a temporary one for the run.

Every measured check starts from a copy of the same freshly imported database, so each one
decides, assembles and delivers the day's digests (to the local outbox, demo mode). The
breakdown times the parts separately: interpreter + CLI imports, the Prefect and flow imports,
a temporary Prefect server's start, and the sweep's own work (decide, assemble, deliver) in
process without Prefect.

    python -m benchmarks.bench_check            # median of 3 runs per case
    python -m benchmarks.bench_check --repeat 5 --day 2026-11-23 --holiday 2026-11-29
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.common import load_average

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
EXAMPLE = ROOT / "definitions" / "plans" / "sanquan-yuren.yaml"
TARGETS = {"holiday": 1.5, "served": 3.0, "cold": 10.0}


def _env(db: Path, prefect_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUBAN_", "PREFECT_"))}
    env.update(
        DUBAN_DEMO="1", DUBAN_DATABASE_URL=f"sqlite:///{db}", PREFECT_HOME=str(prefect_home), PREFECT_SERVER_ANALYTICS_ENABLED="false"
    )
    return env


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return seconds, proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def _python(code: str, env: dict[str, str], cwd: Path) -> float:
    return _timed([sys.executable, "-c", code], env, cwd)[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.3)
    raise SystemExit(f"timed out waiting for {what}")


def _fresh(template: Path, folder: Path) -> Path:
    """A data folder holding a copy of the imported database (the outbox lands beside it)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copyfile(template, folder / "duban.db")
    return folder / "duban.db"


def _median_check(
    label: str, args: argparse.Namespace, template: Path, work: Path, day: str, prefect_home: Path, data: Path | None = None
) -> tuple[float, list[float], str]:
    times, last = [], ""
    for i in range(args.repeat):
        db = _fresh(template, data or work / f"{label}-{i}")
        seconds, last = _timed([str(BIN / "duban"), "check", "--today", day], _env(db, prefect_home), db.parent)
        times.append(seconds)
    return statistics.median(times), times, last


def _sweep_work(template: Path, work: Path, day: str) -> float:
    db = _fresh(template, work / "work-only")
    code = (
        "import datetime as dt, time\n"
        "from duban.runtime import runtime\nfrom duban.sweep.decisions import decide\n"
        "from duban.sweep.digests import assemble\nfrom duban.sweep.delivery import deliver\n"
        "rt = runtime(); rt.engine; rt.calendar.is_workday(dt.date.today())\n"
        f"day = dt.date.fromisoformat('{day}')\n"
        "t = time.perf_counter()\n"
        "decide(rt.engine, today=day, cal=rt.calendar, tz=rt.tz)\n"
        "assemble(rt.engine, today=day, links=rt.links(day), channel=rt.channel.name)\n"
        "deliver(rt.engine, rt.channel, now=dt.datetime.now(dt.timezone.utc), **rt.deliver_options(day))\n"
        "print(time.perf_counter() - t)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(db, work / "prefect-unused"),
        cwd=db.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return float(proc.stdout.strip().splitlines()[-1])


def _ephemeral_start(env: dict[str, str], cwd: Path) -> float:
    code = (
        "import time\nfrom prefect.server.api.server import SubprocessASGIServer\n"
        "t = time.perf_counter(); s = SubprocessASGIServer(); s.start(); print(time.perf_counter() - t); s.stop()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=True)
    return float(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--day", default="2026-11-23", help="a working day with reminders and escalations to send")
    parser.add_argument("--holiday", default="2026-11-29", help="a day that is not a working day")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-check-"))
    prefect_home = work / "prefect-home"
    template = work / "template" / "duban.db"
    template.parent.mkdir(parents=True)
    env = _env(template, prefect_home)
    print(f"duban check, whole process (median of {args.repeat}); example plan, 176 tasks; load average {load_average()}")
    import_s, _ = _timed([str(BIN / "duban"), "import", str(EXAMPLE)], env, template.parent)
    print(f"  (import of the example plan: {import_s:.2f} s, not counted)")
    # warm the temporary server's database once (its first start creates the schema), as on a
    # machine where duban has run before
    _timed([str(BIN / "duban"), "check", "--today", args.day], _env(_fresh(template, work / "warm"), prefect_home), work)

    results: dict[str, float] = {}
    results["holiday"], times, out = _median_check("holiday", args, template, work, args.holiday, prefect_home)
    print(f"  non-working day            {results['holiday']:6.2f} s  runs {', '.join(f'{t:.2f}' for t in times)}  «{out}»")

    results["cold"], times, out = _median_check("cold", args, template, work, args.day, prefect_home)
    print(f"  one school, cold           {results['cold']:6.2f} s  runs {', '.join(f'{t:.2f}' for t in times)}  «{out}»")

    # `duban run` up on the data folder the checks use
    served = work / "served"
    db = _fresh(template, served)
    port = _free_port()
    run_env = _env(db, work / "run-prefect-home")
    log = open(work / "run.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(BIN / "duban"), "run", "--no-web", "--prefect-port", str(port)],
        env=run_env,
        cwd=served,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2).status == 200,  # noqa: S310
            180,
            "duban run's Prefect server",
        )
        time.sleep(3)  # let it record its address and serve its deployments
        times = []
        for _ in range(args.repeat):
            # a fresh copy of the database in the same data folder (the recorded address stays)
            shutil.copyfile(template, db)
            for extra in ("duban.db-wal", "duban.db-shm"):
                (served / extra).unlink(missing_ok=True)
            seconds, out = _timed([str(BIN / "duban"), "check", "--today", args.day], run_env, served)
            times.append(seconds)
        results["served"] = statistics.median(times)
        print(f"  one school, duban run up   {results['served']:6.2f} s  runs {', '.join(f'{t:.2f}' for t in times)}  «{out}»")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()

    print("breakdown (each part in a fresh process, median of the runs above where stated):")
    cli = statistics.median(_python("import duban.cli", env, work) for _ in range(args.repeat))
    flows = statistics.median(_python("import duban.cli, flows.sweep", env, work) for _ in range(args.repeat))
    bare = statistics.median(_python("pass", env, work) for _ in range(args.repeat))
    server = statistics.median(_ephemeral_start(_env(template, prefect_home), work) for _ in range(args.repeat))
    sweep_s = statistics.median(_sweep_work(template, work, args.day) for _ in range(args.repeat))
    print(f"  interpreter start                      {bare:6.2f} s")
    print(f"  + duban CLI imports                    {cli - bare:6.2f} s")
    print(f"  + Prefect and flow imports             {flows - cli:6.2f} s  (not paid on a non-working day)")
    print(f"  temporary Prefect server start         {server:6.2f} s  (cold only)")
    print(f"  the sweep's work (decide/assemble/deliver, no Prefect) {sweep_s:6.2f} s")
    print("targets:")
    ok = True
    for key, label in (("holiday", "non-working day"), ("served", "one school, duban run up"), ("cold", "one school, cold")):
        met = results[key] <= TARGETS[key]
        ok &= met
        print(f"  {label:28s} {results[key]:6.2f} s  ≤ {TARGETS[key]:.1f} s  {'met' if met else 'NOT MET'}")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
