"""The web app while another process writes for long (a sweep on SQLite, a lock on PostgreSQL):
pages that only read answer at once; an action waits and is saved once, or, when the store
stays busy past DUBAN_WEB_BUSY_PATIENCE, a 503 page says nothing was saved, and nothing was."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import exc

from duban.settings import get_settings
from tests.web.test_dashboard import add_account, login
from tests.web_helpers import PDF, csrf_of, events, make_link, small_plan_app, snapshot

pytestmark = pytest.mark.usefixtures("clock")  # the web app reads the clock: pinned (tests/conftest.py)

NOT_SAVED = "系统正忙（另一项任务正在处理数据），您填写的内容尚未保存。请约 30 秒后返回上一页，重新提交。"
# what the actions below write; EXCLUSIVE lets readers through and holds writers (a sweep's rows)
WRITTEN = "links, events, evidence, tasks, milestones, accounts, notifications"


@contextlib.contextmanager
def other_writer(database_url: str, *, seconds: float | None = None) -> Iterator[None]:
    """Another process's write transaction, held until the block ends (or for ``seconds``)."""
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")
    else:
        conn = psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"))
        conn.execute(f"LOCK TABLE {WRITTEN} IN EXCLUSIVE MODE")
    timer = threading.Timer(seconds, conn.rollback) if seconds else None
    if timer:
        timer.start()
    try:
        yield
    finally:
        if timer:
            timer.join()
        else:
            conn.rollback()
        conn.close()


@pytest.fixture
def web(use_database, engine, tmp_path, monkeypatch):
    with small_plan_app(engine, tmp_path, monkeypatch, follow_redirects=False) as client:
        yield client


@pytest.fixture
def impatient(monkeypatch):
    monkeypatch.setenv("DUBAN_WEB_BUSY_PATIENCE", "1")
    get_settings.cache_clear()


def evidence_files() -> list[str]:
    folder = get_settings().evidence_path
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_an_acknowledgement_waits_for_a_short_write_and_is_saved_once(web, engine, database_url):
    tok = make_link(engine, "教务处处长", "ack", "1")
    page = web.get(f"/l/{tok}")
    with other_writer(database_url, seconds=1.0):
        resp = web.post(f"/l/{tok}", data={"csrf": csrf_of(page.text)})
    assert resp.status_code == 200 and "已签收。" in resp.text
    assert len(events(engine, "acknowledged")) == 1


def test_an_acknowledgement_is_refused_with_503_when_the_store_stays_busy(impatient, web, engine, database_url):
    tok = make_link(engine, "教务处处长", "ack", "1")
    page = web.get(f"/l/{tok}")
    before = snapshot(engine)
    with other_writer(database_url):
        started = time.monotonic()
        resp = web.post(f"/l/{tok}", data={"csrf": csrf_of(page.text)})
        took = time.monotonic() - started
    assert resp.status_code == 503
    assert resp.headers["retry-after"] == "30"
    assert "<h1>系统正忙</h1>" in resp.text and NOT_SAVED in resp.text
    assert f'<a href="/l/{tok}">重新打开办理页面</a>' in resp.text
    assert took < 5
    assert snapshot(engine) == before
    # later, the same form goes through
    assert web.post(f"/l/{tok}", data={"csrf": csrf_of(page.text)}).status_code == 200
    assert len(events(engine, "acknowledged")) == 1


def test_a_report_with_a_file_is_saved_once_after_a_short_write(web, engine, database_url):
    tok = make_link(engine, "教务处处长", "progress", "1")
    page = web.get(f"/l/{tok}")
    with other_writer(database_url, seconds=1.0):
        resp = web.post(
            f"/l/{tok}",
            data={"csrf": csrf_of(page.text), "text": "完成第一次集体备课"},
            files=[("files", ("备课记录.pdf", PDF, "application/pdf"))],
        )
    assert resp.status_code == 200 and "进展已反馈" in resp.text
    assert len(events(engine, "progress_reported")) == 1
    assert len(snapshot(engine)["evidence"]) == 1
    assert evidence_files() == ["5a/5a838678058f6de375e8635b5f2fea47a4e5f07cb1a882a44b10f39abc6f34ff"]  # SHA-256 of PDF


def test_a_report_not_saved_leaves_no_file_behind(impatient, web, engine, database_url):
    tok = make_link(engine, "教务处处长", "progress", "1")
    page = web.get(f"/l/{tok}")
    before = snapshot(engine)
    with other_writer(database_url):
        resp = web.post(
            f"/l/{tok}",
            data={"csrf": csrf_of(page.text), "text": "完成第一次集体备课"},
            files=[("files", ("备课记录.pdf", PDF, "application/pdf"))],
        )
    assert resp.status_code == 503 and NOT_SAVED in resp.text
    assert snapshot(engine) == before
    assert evidence_files() == []


def test_signing_in_waits_for_a_short_write(web, engine, database_url):
    add_account(engine, "bangong")
    with other_writer(database_url, seconds=1.0):
        resp = login(web, "bangong")
    assert resp.status_code == 303 and resp.headers["location"] == "/dashboard"


def test_the_dashboard_and_a_link_page_do_not_wait_for_a_writer(web, engine, database_url):
    add_account(engine, "bangong", person="督办员")
    assert login(web, "bangong").status_code == 303
    tok = make_link(engine, "教务处处长", "progress", "1")
    with other_writer(database_url):
        started = time.monotonic()
        board = web.get("/dashboard")
        page = web.get(f"/l/{tok}")
        health = web.get("/healthz")
        took = time.monotonic() - started
    assert board.status_code == 200 and "<h1>测试方案</h1>" in board.text
    assert page.status_code == 200 and "反馈工作进展" in page.text
    assert health.json() == {"ok": True}
    assert took < 5


def test_any_other_busy_store_error_is_the_503_page(web, engine, monkeypatch):
    from duban.web import link_pages

    def busy(*args, **kwargs):
        raise exc.OperationalError("SELECT", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(link_pages, "link_context", busy)
    resp = web.get(f"/l/{make_link(engine, '教务处处长', 'progress', '1')}")
    assert resp.status_code == 503 and resp.headers["retry-after"] == "30"
    assert "系统正忙（另一项任务正在处理数据），请约 30 秒后再试。如您刚才提交过内容，请重新打开页面查看是否已保存。" in resp.text
