"""The production path as deploy/ describes it, run here: the Prefect server of
duban-prefect-server.service on a PostgreSQL database made for the test, the work pool and
deployments of duban-deploy.service, two workers of duban-worker@.service; the daily sweep of a
store of three schools, triggered twice at once so that the two workers overlap, reaches every
school's people exactly once, in child flow runs named and tagged after the schools; without a
batch size the schools are spread over the two workers, the daily sweep sweeping its own share."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections import Counter

import pytest

from benchmarks.production import Stack, create_database, database_urls, drop_database
from duban.db import make_engine, upgrade
from tests.conftest import POSTGRES_ENV
from tests.factories import import_announced, small_plan, write_yaml
from tests.schools import sent_by_institution

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres]
IMPORTED = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
SCHOOLS = {"a": "甲大学", "b": "乙学院", "c": "丙学院"}
PEOPLE = ["党委书记", "分管教学副校长", "宣传部部长", "教务处副处长", "教务处处长"]  # whom the small plan's sweep reaches on MON


@pytest.fixture
def databases():
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"needs {POSTGRES_ENV}")
    names = [f"duban_e2e_{uuid.uuid4().hex[:8]}", f"prefect_e2e_{uuid.uuid4().hex[:8]}"]
    for name in names:
        create_database(base, name)
    yield database_urls(base, names[0])[0], database_urls(base, names[1])[1]
    for name in names:
        drop_database(base, name)


def three_schools(url: str, tmp_path) -> None:
    engine = make_engine(url)
    upgrade(engine)
    for code, name in SCHOOLS.items():
        plan = small_plan()
        plan["plan"]["code"], plan["plan"]["organization"] = f"{code}-2026", name
        import_announced(engine, write_yaml(tmp_path / f"{code}.yaml", plan), now=IMPORTED, institution=code)
    engine.dispose()


def sent_to(url: str) -> Counter:
    engine = make_engine(url)
    try:
        return sent_by_institution(engine)
    finally:
        engine.dispose()


def test_the_units_run_the_sweep_on_two_workers_once_per_person(databases, tmp_path):
    duban_url, prefect_url = databases
    three_schools(duban_url, tmp_path)
    env_file = {
        "DUBAN_DATABASE_URL": duban_url,
        "DUBAN_DEMO": "1",
        "DUBAN_OUTBOX_DIR": str(tmp_path / "outbox"),
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    with Stack(tmp_path, env_file) as stack:
        stack.server()
        stack.deploy()
        deployed = {d["name"] for d in _deployments(stack)}
        assert {"daily-sweep", "institution-sweep", "deliver-due"} <= deployed
        stack.workers(2)
        # two sweeps of the same day at once: one school per child run, and all three in one
        first = stack.run("daily-sweep/daily-sweep", {"today": "2026-11-23", "force": True, "batch": 1})
        second = stack.run("daily-sweep/daily-sweep", {"today": "2026-11-23", "force": True, "batch": 3})
        parents = stack.wait([first, second], timeout=150)
        assert {r["state"]["type"] for r in parents.values()} == {"COMPLETED"}, stack.log_tail("worker-1.log")
        # the child runs (the scheduler's future runs of daily-sweep carry no school's tag)
        children = [r for r in stack.flow_runs(tags={"all_": ["sweep"]}) if any(t.startswith("institution:") for t in r["tags"])]
        by_name = sorted((r["name"], sorted(t for t in r["tags"] if t.startswith("institution:"))) for r in children)
        # no batch size: a batch per online worker (two), the first swept by the parent itself on
        # its worker, the other a child run; what was sent is not sent again
        third = stack.run("daily-sweep/daily-sweep", {"today": "2026-11-23", "force": True})
        (ended,) = stack.wait([third], timeout=150).values()
        spread = sorted(r["name"] for r in stack.flow_runs(parent_flow_run_id={"any_": [third]}) if r["id"] != third)
    assert ended["state"]["type"] == "COMPLETED"
    assert spread == ["sweep 2026-11-23 丙学院"]
    assert by_name == [
        ("sweep 2026-11-23 丙学院", ["institution:c"]),
        ("sweep 2026-11-23 乙学院", ["institution:b"]),
        ("sweep 2026-11-23 甲大学", ["institution:a"]),
        ("sweep 2026-11-23 甲大学、乙学院、丙学院", ["institution:a", "institution:b", "institution:c"]),
    ]
    assert {r["state"]["type"] for r in children} == {"COMPLETED"}
    assert sent_to(duban_url) == Counter({(code, name): 1 for code in SCHOOLS for name in PEOPLE})
    assert len(list((tmp_path / "outbox" / "2026-11-23").glob("*.txt"))) == 15


def _deployments(stack: Stack) -> list[dict]:
    from benchmarks.production import api

    return api(f"{stack.api_url}/deployments/filter", {})
