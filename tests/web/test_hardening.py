"""Hardening of the web plumbing (issue 17): out-of-range ids answer 404 (never 500), link tokens
never reach a log, every private page is ``no-store``, and the fresh-link cap is per link."""

from __future__ import annotations

import datetime as dt
import logging
import typing

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from duban.settings import get_settings
from tests.conftest import PINNED_DAY
from tests.web_helpers import SECRET, csrf_of, import_small, make_link

pytestmark = pytest.mark.usefixtures("clock")  # the web app reads the clock: pinned (tests/conftest.py)

HUGE = [2**31, 2**63, 10**30, 0, -1]


def app_client(monkeypatch, **env) -> TestClient:
    monkeypatch.setenv("DUBAN_SECRET_KEY", SECRET)
    monkeypatch.setenv("DUBAN_WEB_SEND_NOW", "0")
    monkeypatch.setenv("DUBAN_BASE_URL", "http://testserver")
    for k, v in env.items():
        monkeypatch.setenv(f"DUBAN_{k.upper()}", str(v))
    get_settings.cache_clear()
    from duban.web.app import create_app

    return TestClient(create_app(), raise_server_exceptions=False, follow_redirects=False)


@pytest.fixture
def web(use_database, engine, tmp_path, monkeypatch):
    import_small(engine, tmp_path)
    with app_client(monkeypatch) as c:
        yield c


def server_log(caplog) -> str:
    """What the app and the server logged (not the test client's own lines)."""
    return "\n".join(caplog.handler.format(r) for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))


def queue_link(engine) -> str:
    return make_link(engine, "督办员", "queue", None)


# -- out-of-range ids ------------------------------------------------------------------------------


ID_PATHS = [
    ("get", "/l/{tok}/files/{n}"),
    ("get", "/l/{tok}/r/{n}"),
    ("post", "/l/{tok}/r/{n}"),
    ("get", "/rv/{tok}/files/{n}"),
    ("post", "/rv/{tok}/items/{n}"),
    ("get", "/dashboard/reviews/{n}"),
    ("get", "/dashboard/reviews/{n}/report.xlsx"),
    ("post", "/dashboard/reviews/{n}/cancel"),
]
COUNT_PATHS = [("get", "/login?out={n}"), ("get", "/dashboard/announce?n={n}&owners={n}&offline={n}")]


@pytest.mark.parametrize(
    ("method", "path", "n"),
    [(m, p, n) for m, p in ID_PATHS for n in (2**31, 2**63, 10**30, 0, -1)]
    + [(m, p, n) for m, p in COUNT_PATHS for n in (2**31, 10**30, -1)],
)
def test_an_out_of_range_id_is_a_chinese_404(web, engine, caplog, method, path, n):
    tok = queue_link(engine)
    url = path.format(tok=tok, n=n)
    with caplog.at_level(logging.INFO):
        resp = getattr(web, method)(url)
    assert resp.status_code == 404, (url, resp.status_code)
    assert "<h1>页面不存在</h1>" in resp.text and "您访问的页面不存在。请使用通知中的完整链接。" in resp.text
    assert tok not in server_log(caplog)


def test_every_integer_parameter_of_every_route_is_bounded(web):
    """A route added later with a bare ``int`` parameter fails here (its id would reach the store)."""
    unbounded = []
    for route in web.app.routes:
        if not isinstance(route, APIRoute):
            continue
        for param in route.dependant.path_params + route.dependant.query_params:
            annotation = param.field_info.annotation
            if int not in (annotation, *typing.get_args(annotation)):
                continue
            limits = {type(m).__name__: m for m in param.field_info.metadata}
            if "Le" not in limits and "Lt" not in limits:
                unbounded.append(f"{route.path} {param.name}")
    assert unbounded == []


def test_a_server_error_logs_no_link_token(web, engine, caplog, monkeypatch):
    tok = make_link(engine, "教务处处长", "progress", "1")

    def broken(*_a, **_kw):
        raise RuntimeError(f"boom while reading /l/{tok}/files/1?token={tok}")

    monkeypatch.setattr("duban.web.link_pages.link_context", broken)
    with caplog.at_level(logging.INFO):
        resp = web.get(f"/l/{tok}?token={tok}")
    assert resp.status_code == 500 and "<h1>系统繁忙</h1>" in resp.text
    logged = server_log(caplog)
    assert "unhandled error on /l/…" in logged and "RuntimeError: boom while reading /l/…/files/1?token=…" in logged
    assert tok.split(".")[0] not in logged and tok.split(".")[1] not in logged


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ('127.0.0.1:5000 - "GET /l/eyJhIjoxfQ.c2ln HTTP/1.1" 200', '127.0.0.1:5000 - "GET /l/… HTTP/1.1" 200'),
        ("GET /rv/abc.def/items/3", "GET /rv/…/items/3"),
        ("GET /d/abc.def", "GET /d/…"),
        ("POST /me/abc.def/ack", "POST /me/…/ack"),
        ("GET /me", "GET /me"),
        ("POST /l/abc.def/renew?x=1&token=abc.def&y=2", "POST /l/…/renew?x=1&token=…&y=2"),
        ("GET /dashboard/reviews/3", "GET /dashboard/reviews/3"),
        ("see /static/app.css", "see /static/app.css"),
    ],
)
def test_token_redaction(line, shown):
    from duban.web.logs import redact

    assert redact(line) == shown


def test_the_access_log_shows_no_token(web, engine):
    """uvicorn's access log formats its arguments itself: they are redacted, the format still works."""
    from duban.web.logs import TokenFilter

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", "/l/abc.def?token=abc.def", "1.1", 200),
        None,
    )
    assert TokenFilter().filter(record)
    assert record.getMessage() == '1.2.3.4:5 - "GET /l/…?token=… HTTP/1.1" 200'
    assert logging.getLogger("uvicorn.access").filters and logging.getLogger("duban.web").filters


# -- no-store --------------------------------------------------------------------------------------


def test_every_page_but_the_static_files_is_no_store(web, engine):
    from tests.web.test_dashboard import issue_link

    tok = make_link(engine, "教务处处长", "progress", "1")
    _, dashboard_token = issue_link(engine)
    pages = [
        "/",
        f"/l/{tok}",
        "/l/not-a-link",
        "/rv/not-a-link",
        "/rv/not-a-link/report.html",
        f"/d/{dashboard_token}",
        "/d/not-a-link",
        "/login",
        "/dashboard",
        "/dashboard.json",
        "/dashboard/reviews",
        "/dashboard/announce",
        "/no-such-page",
    ]
    for path in pages:
        resp = web.get(path)
        assert resp.headers.get("cache-control", "").startswith("no-store"), path
        assert resp.headers.get("pragma") == "no-cache", path
    after_login = web.post("/logout")
    assert "no-store" in after_login.headers["cache-control"]
    static = web.get("/static/app.css")
    assert static.status_code == 200 and "no-store" not in static.headers.get("cache-control", "")


# -- fresh links -----------------------------------------------------------------------------------


def ask_fresh(web, tok: str):
    page = web.get(f"/l/{tok}")
    assert page.status_code == 410
    return web.post(f"/l/{tok}/renew", data={"csrf": csrf_of(page.text)})


def test_the_fresh_link_cap_is_per_link_not_per_address(web, engine):
    """Two people behind one address (a campus NAT): one person's requests never block the other's."""
    expired = PINNED_DAY - dt.timedelta(days=1)
    first = make_link(engine, "教务处处长", "progress", "1", expires=expired)
    second = make_link(engine, "教务处副处长", "progress", "2", expires=expired)
    answers = [ask_fresh(web, first).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]  # the 4th in an hour on the same link
    limited = ask_fresh(web, first)
    assert "已为此链接申请过多次新链接" in limited.text and limited.headers["retry-after"]
    assert ask_fresh(web, second).status_code == 200


def test_one_address_has_a_ceiling_over_all_links(use_database, engine, tmp_path, monkeypatch):
    import_small(engine, tmp_path)
    expired = PINNED_DAY - dt.timedelta(days=1)
    people = [("教务处处长", "1"), ("教务处副处长", "2"), ("教务处处长", "1")]
    tokens = [make_link(engine, who, "progress", code, expires=expired) for who, code in people]
    with app_client(monkeypatch, relink_per_address_per_hour=2) as web:
        answers = [ask_fresh(web, t) for t in tokens]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert "您所在网络申请新链接过于频繁" in answers[2].text
