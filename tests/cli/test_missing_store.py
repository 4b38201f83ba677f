"""A database without duban's tables (a mistyped SQLite path, an empty PostgreSQL database) is
refused with one message instead of silently becoming a new, empty store; ``duban db upgrade``,
``duban import`` and ``duban demo`` may create the tables."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner

from duban import db
from duban.cli.main import app
from duban.settings import get_settings
from tests.factories import small_plan, write_yaml

runner = CliRunner()
HINT = "如确是新建的数据库，请先运行 duban db upgrade 建立数据表，或用 duban import 导入第一个方案。\n"


@pytest.fixture
def store(monkeypatch):
    """Point the commands at ``url`` (a fresh engine cache for each)."""

    def point(url: str | None) -> None:
        if url is None:
            monkeypatch.delenv("DUBAN_DATABASE_URL", raising=False)
        else:
            monkeypatch.setenv("DUBAN_DATABASE_URL", url)
        get_settings.cache_clear()
        db._engines.clear()

    yield point
    for engine in db._engines.values():
        engine.dispose()
    db._engines.clear()


@pytest.mark.parametrize(
    "command", [["status"], ["plans"], ["check", "--today", "2026-11-23"], ["export", "demo", "-o", "x.xlsx"], ["db", "current"]]
)
def test_a_mistyped_sqlite_path_is_refused_and_not_created(store, tmp_path, command):
    typo = tmp_path / "dubna" / "duban.db"
    store(f"sqlite:///{typo}")
    result = runner.invoke(app, command)
    assert result.exit_code == 2
    assert result.stderr == f"数据库文件 {typo} 不存在，未创建新数据库。请检查 DUBAN_DATABASE_URL 是否写错。{HINT}"
    assert not typo.parent.exists()


def test_the_default_database_not_yet_made_is_explained(store, tmp_path):
    store(None)
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2
    assert result.stderr == (
        f"数据库文件 {tmp_path / '.duban' / 'duban.db'} 不存在，未创建新数据库。"
        f"未设置 DUBAN_DATABASE_URL，使用的是当前文件夹下的数据库；请确认在正确的文件夹中运行，或设置 DUBAN_DATABASE_URL。{HINT}"
    )
    assert not (tmp_path / ".duban").exists()


def empty_database(request, tmp_path) -> str:
    """A database that exists but holds none of duban's tables."""
    if request.param == "sqlite":
        path = tmp_path / "other.db"
        sqlite3.connect(path).execute("CREATE TABLE notes (id INTEGER)").connection.close()
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:  # the session's database, emptied (the next test migrates it again)
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request, tmp_path) -> str:
    return empty_database(request, tmp_path)


def test_a_database_without_duban_tables_is_refused_until_the_first_import(store, empty_url, tmp_path):
    from sqlalchemy.engine import make_url

    store(empty_url)
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2
    shown = make_url(empty_url).render_as_string(hide_password=True)
    assert result.stderr == f"数据库 {shown} 中没有 duban 的数据表，未创建新数据库。请检查 DUBAN_DATABASE_URL 是否写错。{HINT}"
    engine = create_engine(empty_url)
    assert "alembic_version" not in inspect(engine).get_table_names()  # nothing was created
    engine.dispose()

    store(empty_url)
    imported = runner.invoke(app, ["import", str(write_yaml(tmp_path / "p.yaml", small_plan()))])
    assert imported.exit_code == 0, imported.output
    assert imported.stdout.splitlines()[-1] == "导入完成。"
    store(empty_url)
    listed = runner.invoke(app, ["plans"])
    assert listed.exit_code == 0 and "demo" in listed.stdout


def test_db_upgrade_creates_a_new_database(store, tmp_path):
    path = tmp_path / "new" / "duban.db"
    store(f"sqlite:///{path}")
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"数据库 sqlite:///{path} 已是最新结构（版本 {db.HEAD_REVISION}）。\n"
    store(f"sqlite:///{path}")
    assert runner.invoke(app, ["status"]).stdout.strip() == "库中还没有方案。请先导入：duban import 方案文件.xlsx"
