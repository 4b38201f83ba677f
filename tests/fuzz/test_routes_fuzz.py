"""The route fuzzer: every route of the web app (``app.routes``), driven with generated requests —
path parameters (valid tokens, junk, huge and negative integers), query strings, forms with the
real field names of each page and others, uploads — as nobody, as each role signed in, with and
without the page's CSRF field.  On loopback (TestClient, no socket), bounded by count per route
and by time.  Target: no response ≥ 500.  The counts tried are printed at the end."""

from __future__ import annotations

import logging
import time

import pytest
from fastapi.testclient import TestClient
from hypothesis import given

from duban import orchestration
from duban.settings import get_settings
from tests.fuzz.counts import COUNTS, fuzz, scale
from tests.fuzz.routes import CSRF, build_world, requests_for, routes_of
from tests.web_helpers import SECRET, import_small

pytestmark = pytest.mark.usefixtures("clock")

CASES_PER_ROUTE = {"sqlite": 10, "postgresql": 5}  # times DUBAN_FUZZ_SCALE (tests/fuzz/counts.py)
BUDGET_SECONDS = {"sqlite": 15.0, "postgresql": 10.0}  # the whole run, per database (also scaled)


@pytest.fixture
def client(use_database, engine, tmp_path, monkeypatch):
    monkeypatch.setenv("DUBAN_SECRET_KEY", SECRET)
    monkeypatch.setenv("DUBAN_WEB_SEND_NOW", "0")
    monkeypatch.setenv("DUBAN_BASE_URL", "http://testserver")
    monkeypatch.setenv("DUBAN_DATA_DIR", str(tmp_path / "data"))
    # the fuzzer sends far more than a person would: rate limits would only answer 429
    monkeypatch.setenv("DUBAN_RATE_LIMIT_PER_MINUTE", "1000000")
    monkeypatch.setenv("DUBAN_RATE_LIMIT_LINK_PER_MINUTE", "1000000")
    monkeypatch.setattr(orchestration, "deployment_available", lambda: False)  # no Prefect server: in-process
    get_settings.cache_clear()
    import_small(engine, tmp_path)
    from duban.web.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False, follow_redirects=False) as c:
        yield c


def send(client, world, req) -> tuple[int, str]:
    client.cookies.clear()
    for name, value in world.sessions[req["who"]].items():
        client.cookies.set(name, value)
    form = dict(req.get("form", {}))
    if req["csrf"] and req["method"] == "POST":
        page = client.get(req["path"])  # the form's page sets the CSRF cookie and field
        if m := CSRF.search(page.text):
            form["csrf"] = m[1]
    files = [("files", (name, data)) for name, data in req.get("files", [])]
    resp = client.request(req["method"], req["path"], params=req["query"], data=form or None, files=files or None)
    return resp.status_code, resp.text


def test_no_route_answers_500(client, engine, database_url, caplog):
    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    world = build_world(engine, client)
    routes = routes_of(client.app)
    assert len(routes) >= 25, [f"{m} {p}" for m, p, _ in routes]
    failures: list[str] = []
    stop = time.monotonic() + BUDGET_SECONDS[kind] * scale()
    caplog.set_level(logging.ERROR, logger="duban.web")

    def cases_of(method: str, template: str, route) -> None:
        name = f"routes ({kind}): {method} {template}"

        @fuzz(CASES_PER_ROUTE[kind], deadline_ms=10_000)
        @given(requests_for(method, template, route, world))
        def one(req):
            if time.monotonic() > stop:
                return
            COUNTS[name] += 1
            caplog.clear()
            status, text = send(client, world, req)
            if status >= 500 and status != 503:  # 503 is "系统正忙" (the store busy), a page by design
                errors = "; ".join(r.getMessage() + (f" {r.exc_info[1]!r}" if r.exc_info else "") for r in caplog.records)
                failures.append(f"{status} {req['method']} {req['path'][:200]} query={req['query']} who={req['who']}: {errors[:400]}")
            assert "Traceback" not in text

        one()

    for method, template, route in routes:
        cases_of(method, template, route)
    assert not failures, f"{len(failures)} responses ≥ 500:\n" + "\n".join(failures[:30])


def test_out_of_range_ids_are_not_found(client, engine):
    """The fuzzer's two 500s at the start (OverflowError on SQLite, NumericValueOutOfRange on
    PostgreSQL): an id no row can have is a page that does not exist."""
    world = build_world(engine, client)
    view = world.tokens["link"][-2]
    cases = [
        ("anonymous", f"/l/{view}/files/18446744073709551616"),
        ("dby", "/dashboard/reviews/1000000000000000000000000000000/report.pdf"),
    ]
    statuses = [send(client, world, {"method": "GET", "path": path, "query": {}, "who": who, "csrf": False})[0] for who, path in cases]
    assert statuses == [404, 404]
