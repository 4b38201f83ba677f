"""The production path of deploy/ run on this machine: the ``ExecStart=`` commands (and the
``Environment=`` lines) of the systemd units, with the installed paths, ports and URLs replaced
by the caller's: a Prefect server on PostgreSQL, the work pool and deployments made by the deploy
unit, N process workers.  The e2e test (tests/flows/test_production_e2e.py) and
``benchmarks/bench_workers.py`` both start the stack through here, so what they run is what the
units say.

Only the standard library at module level.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
INSTALLED = "/opt/duban"  # where the units say duban is installed
STATE = "/var/lib/duban"  # where they keep Prefect's home
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Unit:
    """What a unit file says to run: its environment and its commands, in order."""

    name: str
    environment: dict[str, str] = field(default_factory=dict)
    pre: list[str] = field(default_factory=list)  # ExecStartPre=
    start: list[str] = field(default_factory=list)  # ExecStart=


def read_unit(name: str) -> Unit:
    unit = Unit(name)
    for raw in (DEPLOY / name).read_text(encoding="utf-8").splitlines():
        key, sep, value = raw.strip().partition("=")
        if not sep or raw.lstrip().startswith("#"):
            continue
        if key == "Environment":
            for pair in shlex.split(value):
                k, _, v = pair.partition("=")
                unit.environment[k] = v
        elif key == "ExecStartPre":
            unit.pre.append(value)
        elif key == "ExecStart":
            unit.start.append(value)
    return unit


def expand(line: str, env: dict[str, str], *, instance: str = "1") -> list[str]:
    """A unit's command as this machine runs it: the installed paths → this checkout and its
    virtualenv, ``%i`` / ``%H`` → the instance and host, ``${VAR}`` → the environment."""
    words = []
    for raw in shlex.split(line):
        word = raw.replace(f"{INSTALLED}/.venv/bin/", f"{BIN}/").replace(INSTALLED, str(ROOT))
        word = word.replace("%i", instance).replace("%H", socket.gethostname())
        for k, v in env.items():
            word = word.replace("${" + k + "}", v)
        words.append(word)
    return words


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api(url: str, body: dict | None = None, *, method: str | None = None) -> Any:
    """Call the Prefect API (JSON in and out)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method=method)
    with _LOCAL.open(req, timeout=30) as resp:
        text = resp.read()
    return json.loads(text) if text else None


def healthy(api_url: str) -> bool:
    try:
        return api(f"{api_url}/health") is True
    except OSError:
        return False


class Stack:
    """The Prefect server, the deploy unit's commands and N workers, as the units say; stopped
    (each process group) on exit.  ``env_file``: what /etc/duban/duban.env would hold here."""

    def __init__(self, workdir: Path, env_file: dict[str, str]):
        self.workdir, self.port = workdir, free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.base = {k: v for k, v in os.environ.items() if not k.startswith(("DUBAN_", "PREFECT_"))}
        self.env_file = {
            "DUBAN_HOME": str(ROOT),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_API_PORT": str(self.port),
            **env_file,
        }
        self.procs: list[subprocess.Popen] = []

    def env(self, unit: Unit) -> dict[str, str]:
        """The unit's Environment= lines (paths moved into the work folder), then the env file (it
        wins, as EnvironmentFile= does)."""
        own = {k: v.replace(STATE, str(self.workdir)) for k, v in unit.environment.items()}
        return {**self.base, **own, **self.env_file}

    def _spawn(self, args: list[str], env: dict[str, str], log: str) -> subprocess.Popen:
        out = open(self.workdir / log, "wb")  # noqa: SIM115 - the child's log, open while it runs
        proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # noqa: S603
        self.procs.append(proc)
        return proc

    def server(self, timeout: float = 120) -> None:
        unit = read_unit("duban-prefect-server.service")
        env = self.env(unit)
        (line,) = unit.start
        proc = self._spawn(expand(line, env), env, "prefect-server.log")
        deadline = time.monotonic() + timeout
        while not healthy(self.api_url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Prefect server did not come up:\n{self.log_tail('prefect-server.log')}")
            time.sleep(0.5)

    def deploy(self, timeout: float = 300) -> None:
        unit = read_unit("duban-deploy.service")
        env = self.env(unit)
        for line in [*unit.pre, *unit.start]:
            done = subprocess.run(expand(line, env), env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)  # noqa: S603
            if done.returncode != 0:
                raise RuntimeError(f"{line!r} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def workers(self, n: int, *, pin: bool = False) -> None:
        """``n`` workers of duban-worker@.service (``pin``: worker i and its flow runs on CPU i − 1
        only, ``taskset``: each worker a machine of one core)."""
        unit = read_unit("duban-worker@.service")
        env = self.env(unit)
        (line,) = unit.start
        for i in range(1, n + 1):
            command = expand(line, env, instance=str(i))
            if pin:
                command = ["taskset", "-c", str((i - 1) % (os.cpu_count() or 1)), *command]
            self._spawn(command, env, f"worker-{i}.log")

    def run(self, deployment: str, parameters: dict[str, Any]) -> str:
        """Create a flow run of ``flow/deployment``: its id."""
        found = api(f"{self.api_url}/deployments/name/{deployment}")
        return api(f"{self.api_url}/deployments/{found['id']}/create_flow_run", {"parameters": parameters})["id"]

    def wait(self, run_ids: list[str], timeout: float) -> dict[str, dict]:
        """Wait until the flow runs are final: their API records."""
        deadline = time.monotonic() + timeout
        while True:
            runs = {i: api(f"{self.api_url}/flow_runs/{i}") for i in run_ids}
            if all(r["state"] and r["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") for r in runs.values()):
                return runs
            if time.monotonic() > deadline:
                states = {i: r["state"] and r["state"]["type"] for i, r in runs.items()}
                raise TimeoutError(f"flow runs not final after {timeout:.0f} s: {states}\n{self.log_tail('worker-1.log')}")
            time.sleep(0.5)

    def flow_runs(self, **flow_runs_filter: Any) -> list[dict]:
        return api(f"{self.api_url}/flow_runs/filter", {"flow_runs": flow_runs_filter, "limit": 200})

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.workdir / name
        return "\n".join(path.read_text("utf-8", "replace").splitlines()[-lines:]) if path.exists() else ""

    def stop_workers(self) -> None:
        self._stop([p for p in self.procs if p.args and "worker" in p.args])

    def _stop(self, procs: list[subprocess.Popen]) -> None:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            if p in self.procs:
                self.procs.remove(p)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop(list(self.procs))


def create_database(admin_url: str, name: str) -> None:
    """CREATE DATABASE on the server of ``admin_url`` (dropped first if it exists)."""
    admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin_sql(admin_url, f'CREATE DATABASE "{name}"')


def drop_database(admin_url: str, name: str) -> None:
    admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def admin_sql(url: str, statement: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(statement))
    engine.dispose()


def database_urls(admin_url: str, name: str) -> tuple[str, str]:
    """(duban's URL, the Prefect server's asyncpg URL) of database ``name`` on that server."""
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    duban = url.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
    prefect = url.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    return duban, prefect
