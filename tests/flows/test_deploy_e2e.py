"""The scale path: `prefect deploy --all` against a Prefect server, a process worker runs the
daily sweep deployment from prefect.yaml and the digests land in the outbox."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from duban.db import make_engine, upgrade
from tests.factories import import_announced, small_plan, write_yaml
from tests.flows.test_run_e2e import free_port, get, wait_for

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_prefect_deploy_all_and_a_worker_run_the_sweep(tmp_path):
    db = tmp_path / "duban.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    import_announced(engine, write_yaml(tmp_path / "p.yaml", small_plan()), now=dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC))
    engine.dispose()
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUBAN_", "PREFECT_"))}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_API_URL=api,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DUBAN_DEMO="1",
        DUBAN_DATABASE_URL=f"sqlite:///{db}",
        DUBAN_HOME=str(ROOT),
    )
    procs = []

    def start(*args, log):
        p = subprocess.Popen(
            [str(BIN / "prefect"), *args],
            env=env,
            cwd=ROOT,
            stdout=open(tmp_path / log, "wb"),  # noqa: SIM115 - the child's log, open while it runs
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(p)
        return p

    try:
        start("server", "start", "--host", "127.0.0.1", "--port", str(port), log="server.log")
        wait_for(lambda: get(f"{api}/health") is True, 120, "the Prefect server")
        subprocess.run(
            [str(BIN / "prefect"), "work-pool", "create", "duban", "--type", "process"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=120,
        )
        deployed = subprocess.run(
            [str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        deployments = {d["name"]: d for d in get(f"{api}/deployments/filter", {})}
        assert set(deployments) == {
            "daily-sweep",
            "institution-sweep",
            "deliver-due",
            "task-check",
            "import-plan",
            "rollup",
            "bulletin",
            "review",
        }
        (schedule,) = deployments["daily-sweep"]["schedules"]
        assert (schedule["schedule"]["cron"], schedule["schedule"]["timezone"]) == ("30 8 * * *", "Asia/Shanghai")
        (every5,) = deployments["deliver-due"]["schedules"]
        assert (every5["schedule"]["cron"], every5["schedule"]["timezone"]) == ("*/5 * * * *", "Asia/Shanghai")
        (daily,) = deployments["bulletin"]["schedules"]
        assert (daily["schedule"]["cron"], daily["schedule"]["timezone"]) == ("30 16 * * *", "Asia/Shanghai")

        start("worker", "start", "--pool", "duban", log="worker.log")
        get(f"{api}/deployments/{deployments['daily-sweep']['id']}/create_flow_run", {"parameters": {"today": "2026-11-23", "force": True}})
        outbox = tmp_path / "outbox" / "2026-11-23"
        wait_for(lambda: outbox.exists() and len(list(outbox.glob("*.txt"))) == 5, 180, "the worker's sweep to fill the outbox")
    finally:
        for p in reversed(procs):
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
