"""`duban run` on one machine: a real Prefect server, the served deployments, the web app.

A run of the daily sweep deployment (as the schedule would start it) writes the digests to the
local outbox; the deployment carries the 08:30 Asia/Shanghai schedule.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from duban.db import make_engine, upgrade
from tests.factories import import_announced, small_plan, write_yaml
from tests.servers import screenshot

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read() or b"null")


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except OSError as err:
            last = err
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} ({last})")


def _down(url: str) -> bool:
    try:
        get(url)
    except OSError:
        return True
    return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_duban_run_serves_the_schedule_and_the_web(tmp_path, page):
    db = tmp_path / "duban.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    import_announced(engine, write_yaml(tmp_path / "p.yaml", small_plan()), now=dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC))
    engine.dispose()
    web, api = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUBAN_", "PREFECT_"))}
    env.update(
        DUBAN_DEMO="1",
        DUBAN_DATABASE_URL=f"sqlite:///{db}",
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # the server's scheduler looks for deployments every 2 s instead of every minute
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2",
    )
    duban = Path(sys.executable).parent / "duban"
    log = open(tmp_path / "run.log", "wb")  # noqa: SIM115 - the child's log, open while it runs
    proc = subprocess.Popen(
        [str(duban), "run", "--port", str(web), "--prefect-port", str(api)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api_url = f"http://127.0.0.1:{api}/api"
    try:
        wait_for(lambda: get(f"http://127.0.0.1:{web}/healthz") == {"ok": True}, 150, "the web app")
        home = urllib.request.urlopen(f"http://127.0.0.1:{web}/", timeout=5).read().decode()  # noqa: S310
        assert "<h1>督办系统</h1>" in home

        served = wait_for(
            lambda: (lambda ds: ds if {"daily-sweep", "task-check", "import-plan"} <= set(ds) else None)(
                {d["name"]: d for d in get(f"{api_url}/deployments/filter", {})}
            ),
            60,
            "the deployments",
        )
        sweep = served["daily-sweep"]
        (schedule,) = sweep["schedules"]
        assert (schedule["schedule"]["cron"], schedule["schedule"]["timezone"]) == ("30 8 * * *", "Asia/Shanghai")
        # the server's scheduler creates the coming runs (SQLAlchemy 2.1 broke this in Prefect 3.8.8 and 3.9.0)
        scheduled = wait_for(
            lambda: get(
                f"{api_url}/flow_runs/filter",
                {"deployments": {"id": {"any_": [sweep["id"]]}}, "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}},
            ),
            60,
            "the scheduler to create runs of the daily sweep",
        )
        starts = {
            dt.datetime.fromisoformat(r["expected_start_time"]).astimezone(dt.timezone(dt.timedelta(hours=8))).time() for r in scheduled
        }
        assert starts == {dt.time(8, 30)}

        # the Prefect UI on a port of our choosing talks to its own API (not to port 4200)
        assert get(f"http://127.0.0.1:{api}/ui-settings")["api_url"] == api_url
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url))
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"http://127.0.0.1:{api}/deployments")
        page.get_by_text("daily-sweep").first.wait_for(timeout=60_000)
        screenshot(page, "prefect-ui-deployments")
        api_calls = [u for u in asked if "/api/" in u]
        assert api_calls and all(u.startswith(api_url + "/") for u in api_calls), api_calls

        # start a run of the deployment the way the schedule does; the served runner executes it
        # (a busy Prefect server may answer 503 for a moment: ask again, as a scheduler would)
        wait_for(
            lambda: get(f"{api_url}/deployments/{sweep['id']}/create_flow_run", {"parameters": {"today": "2026-11-23", "force": True}}),
            60,
            "a flow run of the deployment",
        )
        outbox = tmp_path / "outbox" / "2026-11-23"  # the outbox sits beside the SQLite database
        files = wait_for(
            lambda: sorted(outbox.glob("*.txt")) if outbox.exists() and len(list(outbox.glob("*.txt"))) == 5 else None, 120, "the outbox"
        )
        names = sorted(f.name.split("-", 1)[1] for f in files)
        assert names == sorted(f"{n}.txt" for n in ["党委书记", "分管教学副校长", "宣传部部长", "教务处副处长", "教务处处长"])
        assert files[0].read_text(encoding="utf-8").startswith("收件人：")

        # `duban check` beside it runs its flow on this server (found through the address `duban run`
        # records in the data folder), not on a temporary one of its own
        check = subprocess.run(
            [str(duban), "check", "--today", "2026-11-24"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert "2026-11-24 检查完成" in check.stdout
        runs = get(f"{api_url}/flow_runs/filter", {"flow_runs": {"name": {"any_": ["sweep 2026-11-24"]}}})
        assert [r["state_type"] for r in runs] == ["COMPLETED"]
        assert not (tmp_path / "prefect" / "temporary-server.log").exists()
    finally:
        # a service manager's stop: SIGTERM to duban alone; it must stop its Prefect server itself
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    # the Prefect server it started is gone with it
    wait_for(lambda: _down(f"{api_url}/health"), 30, "the Prefect server to stop")
    if _group_alive(proc.pid):  # tidy up anything else left in the group (not part of the check)
        os.killpg(proc.pid, signal.SIGKILL)
