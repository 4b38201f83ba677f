"""Read-only link sessions and sign-in through the web app (issue 17): logout ends a link's
session, revoking ends them all, opening ``/d/<token>`` while signed in keeps that session
unless a same-site POST confirms, and the one answer for every refused sign-in.  SQLite and
PostgreSQL (TestClient)."""

from __future__ import annotations

import re

import pytest

from duban import dashboard_access
from duban.db import session_scope
from duban.models import utcnow
from tests.web.test_dashboard import add_account, issue_link, login
from tests.web.test_dashboard import web as web  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("clock")
# ruff: noqa: F811 - ``web``, the imported fixture, as the tests' argument


def _csrf(text: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', text).group(1)


def test_logout_ends_a_read_only_links_session(web, engine):
    _, token = issue_link(engine)
    assert web.get(f"/d/{token}").status_code == 303
    page = web.get("/dashboard")
    assert page.status_code == 200 and "王书记 · 只读链接" in page.text and "结束查看" in page.text
    copied = web.cookies.get("duban_session")
    out = web.post("/logout", data={"csrf": _csrf(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/login?out=1"
    # the cookie, copied before the logout, no longer opens anything
    web.cookies.clear()
    web.cookies.set("duban_session", copied)
    assert web.get("/dashboard").status_code == 303
    assert web.get("/dashboard.json").status_code == 401
    # the link itself still works: a new session
    web.cookies.clear()
    assert web.get(f"/d/{token}").status_code == 303 and web.get("/dashboard").status_code == 200


def test_revoking_a_link_ends_every_session_it_opened(web, engine):
    lid, token = issue_link(engine)
    web.get(f"/d/{token}")
    first = web.cookies.get("duban_session")
    web.cookies.clear()
    web.get(f"/d/{token}")
    with session_scope(engine) as s:
        dashboard_access.revoke_dashboard_link(s, lid, now=utcnow())
    for cookie in (first, web.cookies.get("duban_session")):
        web.cookies.clear()
        web.cookies.set("duban_session", cookie)
        assert web.get("/dashboard").status_code == 303


@pytest.mark.parametrize("fetch_site", ["cross-site", "same-origin", None])
def test_a_link_opened_while_signed_in_keeps_the_account_session(web, engine, fetch_site):
    add_account(engine, "dby", "office")
    login(web, "dby")
    _, token = issue_link(engine)
    headers = {"Sec-Fetch-Site": fetch_site} if fetch_site else {}
    page = web.get(f"/d/{token}", headers=headers)
    assert page.status_code == 200 and "您当前已以“dby · 领导小组办公室”的身份登录督办看板" in page.text
    assert "duban_session" not in page.headers.get("set-cookie", "")
    assert "dby · 领导小组办公室" in web.get("/dashboard").text  # still the account


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Referer": "https://evil.example/page"},
        {},  # no Sec-Fetch-Site, no Origin, no Referer
    ],
)
def test_a_cross_site_post_never_changes_who_is_signed_in(web, engine, headers):
    add_account(engine, "dby", "office")
    login(web, "dby")
    _, token = issue_link(engine)
    page = web.get(f"/d/{token}")
    field = re.search(r'action="/d/[^"]+">\s*<input type="hidden" name="csrf" value="([^"]+)"', page.text).group(1)
    resp = web.post(f"/d/{token}", data={"csrf": field}, headers=headers)
    assert resp.status_code == 403 and "duban_session" not in resp.headers.get("set-cookie", "")
    assert "dby · 领导小组办公室" in web.get("/dashboard").text


@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "same-origin"}, {"Origin": "http://testserver"}])
def test_a_confirmed_same_site_post_switches_to_the_link(web, engine, headers):
    add_account(engine, "dby", "office")
    login(web, "dby")
    _, token = issue_link(engine)
    page = web.get(f"/d/{token}")
    # without the page's field: refused
    assert web.post(f"/d/{token}", data={}, headers=headers).status_code == 403
    field = re.search(r'action="/d/[^"]+">\s*<input type="hidden" name="csrf" value="([^"]+)"', page.text).group(1)
    resp = web.post(f"/d/{token}", data={"csrf": field}, headers=headers)
    assert resp.status_code == 303 and resp.headers["location"] == "/dashboard"
    assert "王书记 · 只读链接" in web.get("/dashboard").text
    # the same link again: straight to the dashboard
    assert web.get(f"/d/{token}").headers["location"] == "/dashboard"


def test_nobody_signed_in_opens_a_link_from_another_site(web, engine):
    """A leader clicks the link in a webmail page: it opens (nobody's identity is replaced)."""
    _, token = issue_link(engine)
    resp = web.get(f"/d/{token}", headers={"Sec-Fetch-Site": "cross-site"})
    assert resp.status_code == 303 and "duban_session=" in resp.headers["set-cookie"]


def test_a_locked_address_and_an_unknown_name_answer_alike(web, engine):
    add_account(engine, "dby", "office")
    for _ in range(5):
        login(web, "dby", "wrong-password")
    locked, unknown = login(web, "dby"), login(web, "nobody", "wrong-password")
    for resp in (locked, unknown):
        assert resp.status_code == 401 and "用户名或密码不正确，或尝试次数过多，请稍后再试。" in resp.text
    strip = re.compile(r'value="[^"]*"')
    assert strip.sub("", locked.text) == strip.sub("", unknown.text)  # the same page but the name typed
