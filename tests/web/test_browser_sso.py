"""The institution's sign-in in a real headless Chromium (phone viewport, zh-CN): the login page's
"统一身份认证登录" button, the fake CAS server's login form (tests/idp.py), back to the dashboard."""

from __future__ import annotations

import pytest

from duban import accounts
from duban.db import session_scope
from duban.models import Person
from tests.servers import screenshot
from tests.web.test_browser import app_env  # noqa: F401  the fixture
from tests.web_helpers import person_id

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clock")]  # the web app reads the clock: pinned


@pytest.fixture
def cas_env(app_env, idp, monkeypatch):  # noqa: F811  the imported fixture
    """CAS configured (before the live server starts), 督办员 with 工号 20061234 and an office account."""
    engine = app_env
    idp.env(monkeypatch, "cas")
    idp.cas_passwords = {"20061234": "campus-pass"}
    with session_scope(engine) as s:
        s.get(Person, person_id(engine, "督办员")).staff_no = "20061234"
    with session_scope(engine) as s:
        accounts.create_account(s, "dby", "Dubanban-2026!", role="office", person="督办员")
    return engine


def test_coordinator_signs_in_through_cas_to_the_dashboard(cas_env, idp, live_server, page):
    page.goto(live_server + "/dashboard")
    assert page.url.startswith(live_server + "/login")
    sso = page.get_by_role("link", name="统一身份认证登录")
    assert sso.is_visible()
    screenshot(page, "1-login-page-offers-cas")
    sso.click()
    page.wait_for_url(idp.cas_url + "/login?*")
    page.fill("#username", "20061234")
    page.fill("#password", "campus-pass")
    screenshot(page, "2-fake-cas-login")
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(live_server + "/dashboard")
    assert "督办员" in page.inner_text("body")
    screenshot(page, "3-dashboard-after-cas")
    validations = [c for c in idp.calls if c.path == "/cas/p3/serviceValidate"]
    assert [c.query["service"] for c in validations] == [live_server + "/sso/cas/callback"]
