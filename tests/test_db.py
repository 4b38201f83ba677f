"""Migrations build exactly the tables the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from duban.db import alembic_config, current_revision, upgrade
from duban.models import Base


def test_migrations_match_models(engine):
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    assert current_revision(engine) == "0002"


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
    from duban.importer import import_plan
    from duban.models import Event, Milestone, Task
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
