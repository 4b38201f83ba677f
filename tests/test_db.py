"""Migrations build exactly the tables the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import sqlite3
import time

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import exc, inspect, text

from duban.db import alembic_config, current_revision, upgrade
from duban.models import Base


def test_migrations_match_models(engine):
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    assert current_revision(engine) == "0011"


def test_downgrade_and_upgrade_again(engine):
    command.downgrade(alembic_config(engine), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    upgrade(engine)  # idempotent
    assert {"plans", "tasks", "milestones", "events", "people", "departments"} <= set(inspect(engine).get_table_names())


def test_upgrade_from_0001_keeps_data(database_url, tmp_path):
    """A database made by an earlier release, with plans and progress in it, migrates in place."""
    from sqlalchemy import func, select

    from duban.db import make_engine, session_scope
    from duban.models import Event, Milestone, Task
    from duban.plans.importer import import_plan
    from tests.factories import small_plan, write_yaml

    eng = make_engine(database_url)
    command.downgrade(alembic_config(eng), "0001")
    # write with the 0001 schema (no tasks.assigned_at yet) through plain SQL of an import
    newer = make_engine(database_url)
    upgrade(newer)
    import_plan(newer, write_yaml(tmp_path / "p.yaml", small_plan()))
    command.downgrade(alembic_config(newer), "0001")
    upgrade(newer)
    with session_scope(newer) as s:
        assert s.scalar(select(func.count()).select_from(Task)) == 4
        assert s.scalar(select(func.count()).select_from(Milestone)) == 4
        assert s.scalar(select(func.count()).select_from(Event)) == 4
        created, assigned = s.execute(select(Task.created_at, Task.assigned_at).where(Task.code == "1")).one()
        assert assigned == created
    eng.dispose()
    newer.dispose()


def test_head_revision_constant_is_alembics_head():
    from alembic.script import ScriptDirectory

    from duban.db import HEAD_REVISION, MIGRATIONS_DIR

    assert ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head() == HEAD_REVISION


def test_sqlite_reader_does_not_wait_for_a_writer(tmp_path):
    """`duban status` during an import: the reader sees the last commit at once."""
    import time

    from sqlalchemy import text

    from duban.db import make_engine, session_scope

    eng = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade(eng)
    with session_scope(eng) as setup:
        setup.execute(
            text("INSERT INTO institutions (id, code, name, settings, active, created_at) VALUES (1, 'i', 'n', '{}', 1, '2026-01-01')")
        )
    with session_scope(eng) as writer:
        writer.execute(
            text(
                "INSERT INTO plans (institution_id, code, name, organization, approval_required, report_every, policy, source, "
                "created_at, updated_at) VALUES (1, 'p', 'n', '', 1, 'semester', '{}', '', '2026-01-01', '2026-01-01')"
            )
        )
        started = time.monotonic()
        with session_scope(eng, readonly=True) as reader:
            assert reader.execute(text("SELECT count(*) FROM plans")).scalar() == 0
        assert time.monotonic() - started < 1
    with session_scope(eng, readonly=True) as reader:
        assert reader.execute(text("SELECT count(*) FROM plans")).scalar() == 1
    eng.dispose()


@contextlib.contextmanager
def other_writer(database_url: str):
    """Another process's long write: SQLite's write lock, or a PostgreSQL table lock on plans that
    lets readers through and holds writers."""
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
    else:
        conn = psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"))
        conn.execute("LOCK TABLE plans IN EXCLUSIVE MODE")
    try:
        yield
    finally:
        conn.rollback()
        conn.close()


def test_a_transaction_waits_for_a_lock_no_longer_than_it_was_told(engine, database_url):
    from duban.db import is_transient, session_scope

    with other_writer(database_url):
        assert current_revision(engine) == "0011"  # read-only: does not queue behind the writer
        started = time.monotonic()
        with pytest.raises(exc.OperationalError) as caught, session_scope(engine, wait=0.5) as s:
            s.execute(text("UPDATE plans SET name = 'x'"))
        waited = time.monotonic() - started
    assert is_transient(caught.value)
    assert 0.4 < waited < 3
    with session_scope(engine) as s:  # the pooled connection is back to the usual wait
        setting = "PRAGMA busy_timeout" if database_url.startswith("sqlite") else "SHOW lock_timeout"
        assert str(s.execute(text(setting)).scalar()) == ("30000" if database_url.startswith("sqlite") else "0")


@pytest.mark.parametrize(
    ("doc", "stored"),
    [
        (
            {"recipient": "后勤处负责人", "items": [{"line": "请督促签收", "days": -80}]},
            '{"recipient":"后勤处负责人","items":[{"line":"请督促签收","days":-80}]}',
        ),
        ({"office": ["督办员", ""], "n": None}, '{"office":["督办员",""],"n":null}'),
    ],
)
def test_json_columns_hold_chinese_as_it_reads_compactly(engine, doc, stored):
    """A digest's payload is mostly Chinese: stored as UTF-8 without spaces, not as \\uXXXX escapes
    (after a province sweep the digests take 30 % less room, the ledger 20 %), and read back unchanged."""
    from sqlalchemy import JSON, Column, Integer, MetaData, Table, select

    meta = MetaData()
    probe = Table("json_probe", meta, Column("id", Integer, primary_key=True), Column("doc", JSON))
    meta.create_all(engine)
    try:
        with engine.begin() as conn:
            conn.execute(probe.insert(), {"id": 1, "doc": doc})
            raw = conn.execute(text("SELECT CAST(doc AS TEXT) FROM json_probe")).scalar_one()
            back = conn.execute(select(probe.c.doc)).scalar_one()
    finally:
        meta.drop_all(engine)
    assert raw == stored
    assert back == doc
