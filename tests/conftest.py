"""Shared fixtures: a migrated database per test on SQLite and (when configured) PostgreSQL.

Set ``DUBAN_TEST_POSTGRES_URL`` (``.ci/run`` sets it to the local server) to run the PostgreSQL
half; without it those tests are skipped with a clear reason, so the suite passes on a laptop.
Each test session creates its own PostgreSQL database and drops it at the end.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from duban.db import make_engine, upgrade
from duban.settings import get_settings

POSTGRES_ENV = "DUBAN_TEST_POSTGRES_URL"
PG_SKIP_REASON = f"PostgreSQL tests skipped: set {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"


# The instant the `clock` fixture pins: a Monday morning in Beijing, inside the default send hours.
# Tests that need another moment travel there themselves (time_machine.travel or an explicit `now`).
PINNED = dt.datetime(2026, 11, 30, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
PINNED_DAY = PINNED.date()


@pytest.fixture
def clock():
    """The process clock starts at PINNED and ticks (the web app, the links and the sweep read it);
    ``clock.move_to(...)`` travels on. No test depends on the real hour or date."""
    with time_machine.travel(PINNED, tick=True) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch, tmp_path):
    """Every test runs in demo mode in its own folder, with no stray DUBAN_ variables."""
    for key in list(os.environ):
        if key.startswith("DUBAN_") and key != POSTGRES_ENV:
            monkeypatch.delenv(key)
    monkeypatch.setenv("DUBAN_DEMO", "1")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def postgres_url():
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(PG_SKIP_REASON)
    url = make_url(base)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    name = f"duban_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


_pg_migrated: set[str] = set()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file, copied for each test (running the migrations each time is slow)."""
    path = tmp_path_factory.mktemp("template") / "duban.db"
    eng = make_engine(f"sqlite:///{path}")
    upgrade(eng)
    eng.dispose()  # closing the last connection checkpoints the WAL into the file
    assert not path.with_name("duban.db-wal").exists()
    return path


def _reset_postgres(url: str) -> None:
    """Empty the test database: migrate once per session, then truncate every table."""
    from duban.models import Base

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        has_schema = conn.execute(text("SELECT to_regclass('public.alembic_version')")).scalar() is not None
        if url in _pg_migrated and has_schema:
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        else:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    if url not in _pg_migrated or not has_schema:
        migrated = make_engine(url)
        upgrade(migrated)
        migrated.dispose()
        _pg_migrated.add(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    """A URL to an empty, migrated database (SQLite file, or the session's PostgreSQL database)."""
    if request.param == "sqlite":
        target = tmp_path / "duban.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    url = request.getfixturevalue("postgres_url")
    _reset_postgres(url)
    return url


@pytest.fixture
def engine(database_url):
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def use_database(monkeypatch, database_url):
    """Point the CLI (settings) at the test database."""
    monkeypatch.setenv("DUBAN_DATABASE_URL", database_url)
    get_settings.cache_clear()
    from duban import db

    db._engines.clear()
    yield database_url
    for eng in db._engines.values():
        eng.dispose()
    db._engines.clear()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not os.environ.get(POSTGRES_ENV):
        terminalreporter.write_sep("-", "PostgreSQL half of the suite was SKIPPED", yellow=True)
        terminalreporter.write_line(PG_SKIP_REASON)


EXAMPLE_YAML = Path(__file__).resolve().parent.parent / "definitions" / "plans" / "sanquan-yuren.yaml"
EXAMPLE_XLSX = EXAMPLE_YAML.with_suffix(".xlsx")


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """One embedded Prefect server for the whole session (it takes ~20 s to start)."""
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


# Real servers for tests (SMTP, webhooks, browser, the live web app, the local HTTP server the fakes
# run on): see tests/servers.py; one fake per chat vendor (WeCom, DingTalk, Feishu: app messages,
# 待办, the sign-in's API calls): tests/vendors.py; the fake identity providers (CAS, OIDC, the WeCom
# and DingTalk authorize pages): tests/idp.py.
pytest_plugins = ["tests.servers", "tests.vendors", "tests.idp"]
