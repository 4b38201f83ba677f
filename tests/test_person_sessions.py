"""A person's own sign-in session (我的督办): opened, read back from its cookie, ended."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from duban import person_sessions
from duban.db import session_scope
from duban.models import Person
from tests.factories import import_announced, small_plan, write_yaml

NOW = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC)
SECRET = "s" * 32


@pytest.fixture
def person_id(engine, tmp_path) -> int:
    import_announced(engine, write_yaml(tmp_path / "plan.yaml", small_plan()))
    with session_scope(engine) as s:
        return s.scalars(select(Person.id).order_by(Person.id)).first()


def _open(engine, person_id: int, hours: int = 12) -> tuple[int, str]:
    until = NOW + dt.timedelta(hours=hours)
    with session_scope(engine) as s:
        sid = person_sessions.start(s, person_id, method="cas", subject="20061234", now=NOW, until=until)
    return sid, person_sessions.cookie(SECRET, sid, expires=until)


def test_a_cookie_names_its_session_until_it_expires(engine, person_id):
    sid, value = _open(engine, person_id)
    assert person_sessions.read_cookie(SECRET, value, now=NOW) == sid
    assert person_sessions.read_cookie(SECRET, value, now=NOW + dt.timedelta(hours=12)) is None
    with session_scope(engine, readonly=True) as s:
        assert person_sessions.person_of(s, sid, now=NOW).id == person_id


@pytest.mark.parametrize(
    "value",
    ["", "x" * 301, "not.a-token", person_sessions.cookie("another secret key, 32 chars long", 1, expires=NOW + dt.timedelta(hours=1))],
)
def test_a_forged_or_foreign_cookie_names_nobody(value):
    assert person_sessions.read_cookie(SECRET, value, now=NOW) is None


def test_a_dashboard_cookie_is_not_a_person_cookie():
    from duban import dashboard_access

    dashboard = dashboard_access.session_cookie(SECRET, kind="a", ident=1, version=0, expires=NOW + dt.timedelta(hours=1))
    assert person_sessions.read_cookie(SECRET, dashboard, now=NOW) is None


def test_logout_and_an_inactive_person_end_the_session(engine, person_id):
    sid, _ = _open(engine, person_id)
    with session_scope(engine) as s:
        s.get(Person, person_id).active = False
    with session_scope(engine, readonly=True) as s:
        assert person_sessions.person_of(s, sid, now=NOW) is None
    with session_scope(engine) as s:
        s.get(Person, person_id).active = True
        person_sessions.end(s, sid, now=NOW)
    with session_scope(engine, readonly=True) as s:
        assert person_sessions.person_of(s, sid, now=NOW) is None
