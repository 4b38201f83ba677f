"""`duban check` as an operator runs it, in its own process: a non-working day is answered without
Prefect, and the temporary Prefect server of a cold check never outlives the command."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from duban.db import make_engine, upgrade
from duban.plans.importer import import_plan
from tests.factories import small_plan, write_yaml
from tests.flows.test_run_e2e import wait_for

DUBAN = Path(sys.executable).parent / "duban"


@pytest.fixture
def school(tmp_path) -> dict[str, str]:
    """A data folder with the small plan imported; the environment of a `duban` process using it."""
    db = tmp_path / "duban.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    import_plan(engine, write_yaml(tmp_path / "p.yaml", small_plan()), now=dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC))
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUBAN_", "PREFECT_"))}
    env.update(
        DUBAN_DEMO="1",
        DUBAN_DATABASE_URL=f"sqlite:///{db}",
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    return env


@pytest.mark.parametrize(
    ("day", "options", "says"),
    [
        ("2026-11-29", [], "2026-11-29 不是工作日，未检查（可加 --force 强制检查）。"),  # a Sunday
        ("2026-10-05", [], "2026-10-05 不是工作日，未检查（可加 --force 强制检查）。"),  # National Day holiday
        # one task, checked or previewed, obeys the working-day rule like the daily sweep
        ("2026-11-29", ["--task", "1"], "2026-11-29 不是工作日，未检查（可加 --force 强制检查）。"),
        ("2026-11-29", ["--dry-run", "--task", "1"], "2026-11-29 不是工作日，每日检查不会发送任何通知（可加 --force 强制检查）。"),
    ],
)
def test_a_non_working_day_is_answered_without_prefect(school, tmp_path, day, options, says):
    code = (
        "import sys\nfrom duban.cli.main import main\nsys.argv = ['duban', 'check', '--today', *sys.argv[1:]]\n"
        "try:\n    main()\nfinally:\n    print('prefect loaded' if 'prefect' in sys.modules else 'prefect not loaded')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, day, *options], cwd=tmp_path, env=school, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [says, "prefect not loaded"]
    assert not (tmp_path / "prefect").exists()  # no server of any kind was started


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="the temporary server dies with its parent on Linux (PR_SET_PDEATHSIG)")
def test_a_killed_check_leaves_no_prefect_server(school, tmp_path):
    proc = subprocess.Popen(
        [str(DUBAN), "check", "--today", "2026-11-23"], cwd=tmp_path, env=school, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        (server,) = wait_for(lambda: _children(proc.pid), 60, "the temporary Prefect server to start")
        assert _alive(server)
        proc.kill()  # kill -9: no exit handler runs
        proc.wait(timeout=10)
        wait_for(lambda: not _alive(server), 20, "the orphaned Prefect server to stop")
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_a_cold_check_stops_its_temporary_server(school, tmp_path):
    from tests.flows.test_run_e2e import free_port

    # an office machine's HTTP proxy (here a closed port on this machine) never carries loopback calls
    proxy = f"http://127.0.0.1:{free_port()}"
    env = {k: v for k, v in school.items() if k.lower() != "no_proxy"} | {"http_proxy": proxy, "HTTP_PROXY": proxy}
    proc = subprocess.run(
        [str(DUBAN), "check", "--today", "2026-11-23"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2026-11-23 检查完成：" in proc.stdout and "Error logging to API" not in proc.stdout + proc.stderr
    assert (tmp_path / "prefect" / "temporary-server.log").exists()
    assert _processes_with(f"PREFECT_HOME={tmp_path / 'prefect'}".encode()) == []


def _processes_with(variable: bytes) -> list[int]:
    """Processes whose environment holds ``variable`` (the temporary server inherits the command's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _alive(int(entry.name)):
            try:
                if variable in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="the Prefect server dies with its parent on Linux (PR_SET_PDEATHSIG)")
def test_a_killed_duban_run_leaves_no_prefect_server(school, tmp_path):
    from tests.flows.test_run_e2e import free_port, get

    port = free_port()
    health = f"http://127.0.0.1:{port}/api/health"
    proc = subprocess.Popen(
        [str(DUBAN), "run", "--no-web", "--prefect-port", str(port)],
        cwd=tmp_path,
        env=school,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        address = tmp_path / "prefect" / "api_url"
        wait_for(lambda: get(health) is True and address.exists(), 150, "duban run's Prefect server")
        assert address.read_text(encoding="utf-8") == f"http://127.0.0.1:{port}/api"
        proc.kill()  # kill -9: no exit handler, no finally
        proc.wait(timeout=10)

        def down() -> bool:
            try:
                get(health)
            except OSError:
                return True
            return False

        wait_for(down, 30, "the orphaned Prefect server to stop")
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (["check", "--plan", "nope", "--today", "2026-11-23"], 1, "没有编号为“nope”的方案。已有方案：demo"),
        (["check", "--today", "2026-13-01"], 2, "日期“2026-13-01”格式不正确，请写作 YYYY-MM-DD，如 2026-11-23"),
        (["status", "--plan", "nope"], 1, "没有编号为“nope”的方案。已有方案：demo"),
        (["status", "--today", "2026-11-23"], 0, "截至 2026-11-23"),
    ],
)
def test_the_command_ends_with_its_status_and_its_whole_output(school, tmp_path, args, status, says):
    """`duban` ends the process itself after the exit handlers (no interpreter teardown): the exit
    status and every line written still reach the caller."""
    proc = subprocess.run([str(DUBAN), *args], cwd=tmp_path, env={**school, "COLUMNS": "200"}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == status, proc.stdout + proc.stderr
    assert says in proc.stdout + proc.stderr
