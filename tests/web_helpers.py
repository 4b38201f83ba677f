"""Helpers for the link, action and browser tests: a small plan in the store, links issued for it."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from duban.db import session_scope
from duban.link_tokens import link_token
from duban.links import LinkSpec, issue
from duban.models import Event, Link, Milestone, Notification, Person, Plan, Request, Task
from tests.conftest import PINNED_DAY
from tests.factories import import_announced, small_plan, task_of, write_yaml

TZ = ZoneInfo("Asia/Shanghai")
SECRET = "w" * 8 + "0123456789abcdefghijklmnopqrstuv-web"
IMPORTED = dt.datetime(2026, 11, 2, 9, 0, tzinfo=TZ)
STATEMENT = "每学期组织思政课教师集体备课不少于 4 次，形成教案集。"
CRITERIA = "集体备课记录 4 份、教案集 1 册"
# smallest valid files of each kind
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = bytes.fromhex(
    "89504E470D0A1A0A0000000D49484452000000010000000108060000001F15C4890000000D4944415478DA63F8FFFF3F0005FE02FEA7D6A4F80000000049454E44AE426082"
)


def plan_definition(*, approval: bool = True) -> dict:
    d = small_plan()
    d["plan"]["approval_required"] = approval
    t = task_of(d, "1")
    t["statement"] = STATEMENT
    t["done_criteria"] = CRITERIA
    return d


def import_small(engine, folder: Path, *, approval: bool = True, data: dict | None = None):
    return import_announced(engine, write_yaml(folder / "plan.yaml", data or plan_definition(approval=approval)), now=IMPORTED)


def web_env(monkeypatch) -> None:
    """The settings a web test's app runs with: the test secret, links to http://testserver, nothing sent at once."""
    from duban.settings import get_settings

    monkeypatch.setenv("DUBAN_SECRET_KEY", SECRET)
    monkeypatch.setenv("DUBAN_WEB_SEND_NOW", "0")
    monkeypatch.setenv("DUBAN_BASE_URL", "http://testserver")
    get_settings.cache_clear()


def sign_in(client, login: str, password: str, *, next_url: str = "/dashboard"):
    """``login`` signs in through the login form; the form's answer (303 when it worked)."""
    page = client.get("/login")
    assert page.status_code == 200
    return client.post("/login", data={"csrf": csrf_of(page.text), "login": login, "password": password, "next": next_url})


@contextlib.contextmanager
def small_plan_app(engine, folder: Path, monkeypatch, **client_options) -> Iterator:
    """The web app on the test database (``use_database``) with the small plan imported, links to
    http://testserver and nothing sent at once: a TestClient."""
    from fastapi.testclient import TestClient

    from duban.web.app import create_app

    web_env(monkeypatch)
    import_small(engine, folder)
    with TestClient(create_app(), raise_server_exceptions=True, **client_options) as client:
        yield client


def person_id(engine, name: str) -> int:
    with session_scope(engine) as s:
        return s.scalar(select(Person.id).where(Person.name == name))


def task_id(engine, code: str) -> int:
    with session_scope(engine) as s:
        return s.scalar(select(Task.id).where(Task.code == code))


def milestone_id(engine, code: str, seq: int | None = None, *, final: bool = False) -> int:
    with session_scope(engine) as s:
        q = select(Milestone.id).join(Task, Task.id == Milestone.task_id).where(Task.code == code)
        q = q.where(Milestone.is_final.is_(True)) if final else q.where(Milestone.seq == seq)
        return s.scalar(q)


def make_link(
    engine,
    person: str,
    action: str,
    code: str | None,
    *,
    milestone: int | None = None,
    request: int | None = None,
    expires: dt.date | None = None,
    secret: str = SECRET,
) -> str:
    """Issue a link (as the sweep would) and return its token."""
    expires = expires or PINNED_DAY + dt.timedelta(days=60)
    with session_scope(engine) as s:
        plan_id = s.scalar(select(Plan.id))
        pid = s.scalar(select(Person.id).where(Person.name == person))
        tid = s.scalar(select(Task.id).where(Task.code == code)) if code else None
        [lid] = issue(s, [LinkSpec(plan_id, pid, action, tid, milestone, expires, request)], secret=secret, today=min(expires, PINNED_DAY))
    return link_token(secret, lid, action, expires)


def events(engine, kind: str | None = None) -> list[Event]:
    with session_scope(engine) as s:
        q = select(Event).order_by(Event.id)
        if kind:
            q = q.where(Event.kind == kind)
        return list(s.scalars(q))


def requests(engine) -> list[Request]:
    with session_scope(engine) as s:
        return list(s.scalars(select(Request).order_by(Request.id)))


def ledger(engine, kind: str | None = None) -> list[Notification]:
    with session_scope(engine) as s:
        q = select(Notification).order_by(Notification.id)
        if kind:
            q = q.where(Notification.kind == kind)
        return list(s.scalars(q))


def milestone(engine, mid: int) -> Milestone:
    with session_scope(engine) as s:
        return s.get(Milestone, mid)


def link_row(engine, lid: int) -> Link:
    with session_scope(engine) as s:
        return s.get(Link, lid)


def snapshot(engine) -> dict:
    """Everything an action could change, to show that something did not change."""
    from duban.models import Evidence

    with session_scope(engine) as s:
        return {
            "events": s.scalars(select(Event.id).order_by(Event.id)).all(),
            "requests": [(r.id, r.status) for r in s.scalars(select(Request).order_by(Request.id))],
            "evidence": s.scalars(select(Evidence.id).order_by(Evidence.id)).all(),
            "ledger": s.scalars(select(Notification.key).order_by(Notification.key)).all(),
            "milestones": [(m.id, m.status, m.due_date) for m in s.scalars(select(Milestone).order_by(Milestone.id))],
            "tasks": [(t.id, t.acknowledged_at) for t in s.scalars(select(Task).order_by(Task.id))],
            "links": [(k.id, k.used_at, k.void_at) for k in s.scalars(select(Link).order_by(Link.id))],
        }


CSRF_RE = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def csrf_of(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "the page has no CSRF field"
    return m.group(1)
