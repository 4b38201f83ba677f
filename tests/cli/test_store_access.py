"""The commands against a store that is busy or out of reach: reading commands never wait for a
writer, a writer that waits too long and a database that does not answer end in one clear message."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event
from typer.testing import CliRunner

from duban import db
from duban.cli.main import app
from duban.db import make_engine
from duban.settings import get_settings
from tests.web_helpers import import_small

runner = CliRunner()


@pytest.fixture
def sqlite_school(monkeypatch, tmp_path, sqlite_template) -> Iterator[Path]:
    """The small plan in a SQLite file the commands use (DUBAN_DATABASE_URL)."""
    path = tmp_path / "duban.db"
    path.write_bytes(sqlite_template.read_bytes())
    engine = make_engine(f"sqlite:///{path}")
    import_small(engine, tmp_path)
    engine.dispose()
    monkeypatch.setenv("DUBAN_DATABASE_URL", f"sqlite:///{path}")
    get_settings.cache_clear()
    db._engines.clear()
    yield path
    for eng in db._engines.values():
        eng.dispose()
    db._engines.clear()


@contextlib.contextmanager
def write_lock(path: Path) -> Iterator[None]:
    """Another process's writer (a sweep, an import) holding SQLite's write lock."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.rollback()
        other.close()


def run(*args: str, **kw):
    started = time.monotonic()
    result = runner.invoke(app, list(args), **kw)
    return result, time.monotonic() - started


def test_reading_commands_do_not_wait_for_a_writer(sqlite_school, tmp_path):
    with write_lock(sqlite_school):
        status, status_took = run("status", "--json", "--today", "2026-11-23")
        outbox, outbox_took = run("outbox")
        current, current_took = run("db", "current")
        plans, _ = run("plans")
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["totals"]["tasks"] == 4
    assert outbox.stdout == "发件箱中没有符合条件的通知。\n"
    assert current.stdout == f"sqlite:///{sqlite_school}：0011\n"
    assert "demo" in plans.stdout
    assert max(status_took, outbox_took, current_took) < 5  # SQLite's busy timeout is 30 s


def test_report_goes_without_its_snapshot_while_another_task_writes(sqlite_school, tmp_path):
    with write_lock(sqlite_school):
        result, took = run("report", "--as-of", "2026-11-23", "--out", str(tmp_path / "reports"))
    assert result.exit_code == 0, result.output
    assert took < 10
    assert (tmp_path / "reports" / "督办汇总-全部方案-2026-11-23.html").is_file()
    assert result.stderr == (
        "提示：数据库正忙（另一项任务正在写入），本次未记录当日快照（趋势图的数据），报告不受影响；每日督办检查会记录当日快照。\n"
    )


def test_a_writing_command_says_the_store_is_busy(sqlite_school, monkeypatch):
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT", 1)
    with write_lock(sqlite_school):
        result, took = run("account", "add", "bangong", "--role", "office", "--password-stdin", input="a-long-enough-password-2026\n")
    assert result.exit_code == 1
    assert (
        result.stderr
        == "数据库正忙：另一项任务（如每日督办检查、导入或网页上的办理）正在写入，等待 1 秒后仍未结束，本次操作未能完成。请稍后重试。\n"
    )
    assert took < 10
    listed, _ = run("account", "list")
    assert listed.stdout == "还没有看板账户。可用 duban account add 登录名 --role office 新建。\n"


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a database server that hangs)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)  # wakes the accept() above
        server.close()
        thread.join(5)
        for conn in held:
            conn.close()


@pytest.mark.parametrize("command", [["status"], ["db", "current"]])
def test_a_database_that_does_not_answer_is_one_clear_message(tmp_path, command):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUBAN_")}
    with silent_server() as port:
        env.update(
            DUBAN_DEMO="1",
            DUBAN_DATABASE_URL=f"postgresql+psycopg://duban:s3cret-pw@127.0.0.1:{port}/duban",
            DUBAN_DB_CONNECT_TIMEOUT="2",
        )
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "duban.cli", *command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        took = time.monotonic() - started
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == (
        f"无法连接数据库 127.0.0.1:{port}：等待 2 秒仍无响应。请检查数据库服务是否正常运行、地址和端口是否正确、网络和防火墙是否放行"
        f"（等待时间可用 DUBAN_DB_CONNECT_TIMEOUT 调整）。（DUBAN_DATABASE_URL：postgresql+psycopg://duban:***@127.0.0.1:{port}/duban）\n"
    )
    assert took < 8  # the CLI's start (about a second) and the 2 s wait


class Stop(Exception):  # noqa: N818  not an error: the end of the test's connection attempt
    pass


def connect_arguments(url: str) -> dict:
    """What the engine of ``url`` hands the driver for a new connection (nothing is connected)."""
    engine = make_engine(url, connect_timeout=7)
    seen: dict = {}

    @event.listens_for(engine, "do_connect")
    def _capture(dialect, record, cargs, cparams):
        seen.update(cparams)
        raise Stop

    with pytest.raises(Stop):
        engine.connect()
    return seen


def test_the_connect_timeout_reaches_postgresql_unless_the_url_sets_one():
    assert connect_arguments("postgresql+psycopg://duban@db.example.org/duban")["connect_timeout"] == 7
    assert connect_arguments("postgresql+psycopg://duban@db.example.org/duban?connect_timeout=30")["connect_timeout"] == "30"
