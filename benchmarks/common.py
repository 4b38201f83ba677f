"""Small helpers shared by the benchmarks."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


def load_average() -> str:
    """The machine's load average, to print beside wall-clock figures."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def safe_url(url: str) -> str:
    """A database URL with its password masked, for printing."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        if ":" in cred:
            return f"{scheme}://{cred.split(':', 1)[0]}:***@{host}"
    return url


def reset_postgres_schema(spec: dict[str, Any]) -> dict[str, Any]:
    """Drop and recreate schema public of the PostgreSQL database ``spec["database_url"]``."""
    from sqlalchemy import create_engine, text

    url = spec["database_url"]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return {}


def machine_gauge(rounds: int = 3) -> float:
    """Seconds for a fixed pure-Python loop (20 million additions; the best of ``rounds``): how fast
    this machine runs Python today.  Print it beside figures so that runs on different days (or
    machines of the same kind, which differ) can be compared: 3.2 s on the machine of 2026-12-01."""
    import time

    best = float("inf")
    for _ in range(rounds):
        started, total = time.perf_counter(), 0
        for i in range(20_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return best


@dataclass
class ChildRun:
    returncode: int
    wall: float  # seconds
    cpu: float  # user + system seconds of the command and its children
    peak_mib: float  # the largest resident set of the command or any of its children
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def first_line(self) -> str:
        return next((line for line in self.output.splitlines() if line.strip()), "")


_WRAPPER = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - started
use = resource.getrusage(resource.RUSAGE_CHILDREN)
json.dump({"returncode": proc.returncode, "wall": wall, "cpu": use.ru_utime + use.ru_stime, "peak_mib": use.ru_maxrss / 1024,
           "stdout": proc.stdout, "stderr": proc.stderr}, sys.stdout)
"""


def timed_child(command: list[str], env: dict[str, str], cwd: Any) -> ChildRun:
    """Run ``command`` as the only child of a fresh wrapper process, which measures it (so that the
    figures are the command's own, not the sum of every run so far)."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _WRAPPER, *command], env=env, cwd=cwd, capture_output=True, text=True, check=True)
    return ChildRun(**json.loads(out.stdout))
