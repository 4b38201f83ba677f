"""The route fuzzer's parts: a web app with something behind every kind of link, and the
strategies that build requests for any route of it (path, query, form, files, cookies)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import string
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st
from sqlalchemy import select
from starlette.routing import Route

from duban import accounts, dashboard_access
from duban.db import session_scope
from duban.link_tokens import link_token
from duban.links import LinkSpec, issue
from duban.models import Person, Plan, ReviewItem
from duban.reviews import api as reviews
from duban.settings import get_settings
from tests.conftest import PINNED_DAY
from tests.web_helpers import PDF, SECRET, make_link, milestone_id

PASSWORD = "Dubanban-2026!"
EXPIRES = PINNED_DAY + dt.timedelta(days=60)
FIELD = re.compile(r'name="([A-Za-z_][\w\-]*)"')
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')
TOKEN_CHARS = string.ascii_letters + string.digits + "-_."

# integers a path may carry: small, ids that exist, negative, and past 32 and 64 bits
INTS = st.one_of(
    st.integers(-3, 40),
    st.sampled_from([0, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30]),
    st.integers(),
)
JUNK = st.one_of(
    st.text(max_size=40),
    st.text(TOKEN_CHARS, max_size=200),
    st.sampled_from(["..", "../../etc/passwd", "%00", "' OR 1=1 --", "<script>alert(1)</script>", "a" * 5000, "１２３", "1e9", "0x10"]),
)
VALUES = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["", " ", "0", "-1", "达标", "基本达标", "未达标", "2026-12-31", "2026-02-30", "9999-12-31", "课程育人", "demo"]),
    st.sampled_from(["https://example.org/x", "javascript:alert(1)", "//evil.example", "/dashboard", "\r\nSet-Cookie: x=1", "长" * 20000]),
    INTS.map(str),
)
UPLOADS = st.tuples(
    st.one_of(st.text(max_size=30), st.sampled_from(["备课记录.pdf", "a.exe", "x.zip", "../../a.pdf", "notes.txt"])),
    st.one_of(st.binary(max_size=300), st.just(PDF), st.just(b"<script>x</script>")),
)


@dataclasses.dataclass
class World:
    """What the fuzzer signs in and links with: tokens by kind, the field names of every form."""

    tokens: dict[str, list[str]]
    fields: set[str]
    sessions: dict[str, dict[str, str]]  # account -> its cookies after signing in (plus "anonymous")


def build_world(engine, client) -> World:
    """Links of every action, a review with its links, a read-only dashboard link, accounts of
    every role signed in; the form field names read from the rendered pages."""
    with session_scope(engine) as s:
        for login, role, person in [("dby", "office", "督办员"), ("leader", "leader", None), ("viewer", "viewer", None)]:
            accounts.create_account(s, login, PASSWORD, role=role, plan_code="demo", person=person)
        _, dash = dashboard_access.issue_dashboard_link(s, secret=SECRET, plan_code="demo", days=30, today=PINNED_DAY)
    review_id = reviews.start(
        engine,
        plan_code="demo",
        scope_kind="system",
        scope_values=["课程育人"],
        reply_by=PINNED_DAY + dt.timedelta(days=10),
        ask="请报告推进情况。",
        today=PINNED_DAY,
        started_by="督办员",
        reports_dir=get_settings().data_dir / "reports",
    ).review_id
    tokens: dict[str, list[str]] = {"dashboard": [dash]}
    owner = [
        ("ack", None),
        ("progress", None),
        ("done", milestone_id(engine, "1", final=True)),
        ("extend", milestone_id(engine, "1", final=True)),
        ("view", None),
    ]
    for action, mid in owner:
        tokens.setdefault("link", []).append(make_link(engine, "教务处处长", action, "1", milestone=mid))
    tokens["link"].append(make_link(engine, "督办员", "queue", None))
    tokens["review"] = _review_links(engine, review_id)
    tokens["mine"] = [make_link(engine, "教务处处长", "mine", None)]  # 我的督办 (/me/<token>)
    fields = set()
    for token in tokens["link"]:
        fields |= set(FIELD.findall(client.get(f"/l/{token}").text))
    for token in tokens["review"]:
        fields |= set(FIELD.findall(client.get(f"/rv/{token}").text))
    for token in tokens["mine"]:
        fields |= set(FIELD.findall(client.get(f"/me/{token}").text))
    sessions: dict[str, dict[str, str]] = {"anonymous": {}}
    for login in ("dby", "leader", "viewer"):
        client.cookies.clear()
        page = client.get("/login")
        client.post("/login", data={"csrf": CSRF.search(page.text)[1], "login": login, "password": PASSWORD, "next": "/dashboard"})
        for path in (
            "/dashboard",
            "/dashboard/reviews/new",
            "/dashboard/announce",
            f"/dashboard/reviews/{review_id}",
            "/dashboard/tasks/demo/1",
        ):
            fields |= set(FIELD.findall(client.get(path).text))
        sessions[login] = dict(client.cookies.items())
    client.cookies.clear()
    return World(tokens, fields - {"csrf"}, sessions)


def _review_links(engine, review_id: int) -> list[str]:
    with session_scope(engine) as s:
        plan_id = s.scalar(select(Plan.id))
        item = s.scalars(select(ReviewItem).where(ReviewItem.review_id == review_id).order_by(ReviewItem.id)).first()
        office = s.scalar(select(Person.id).where(Person.name == "督办员"))
        specs = [
            LinkSpec(plan_id, item.owner_id, "review_answer", None, None, EXPIRES, review_item_id=item.id),
            LinkSpec(plan_id, office, "review_verdict", None, None, EXPIRES, review_id=review_id),
            LinkSpec(plan_id, office, "review_report", None, None, EXPIRES, review_id=review_id),
        ]
        ids = issue(s, specs, secret=SECRET, today=PINNED_DAY)
    return [link_token(SECRET, lid, spec.action, EXPIRES) for lid, spec in zip(ids, specs, strict=True)]


def routes_of(app) -> list[tuple[str, str, Route]]:
    """(method, path template, route) for every route of the app (HEAD and the static mount aside).
    FastAPI 0.150 wraps an included router (``_IncludedRouter``): its routes are walked too."""
    out = []

    def walk(routes, prefix: str) -> None:
        for route in routes:
            if isinstance(route, Route) and route.methods:
                out.extend((m, prefix + route.path, route) for m in sorted(route.methods - {"HEAD"}))
            elif (inner := getattr(route, "original_router", None)) is not None:
                walk(inner.routes, prefix + getattr(getattr(route, "include_context", None), "prefix", ""))

    walk(app.routes, "")
    return out


def path_value(name: str, world: World) -> st.SearchStrategy[str]:
    if name == "token":
        return st.one_of(st.sampled_from([t for ts in world.tokens.values() for t in ts]), JUNK)
    if name in ("plan_code", "task_code", "action"):  # the dashboard's task page and its forms
        known = {"plan_code": ["demo"], "task_code": ["1", "2"], "action": ["instruction", "urge", "reassign", "move", "archive"]}[name]
        return st.one_of(st.sampled_from(known), JUNK)
    if name == "ext":
        return st.one_of(st.sampled_from(["html", "xlsx", "csv", "pdf", "json", "xlsx.exe"]), JUNK)
    return st.one_of(INTS.map(str), JUNK)  # ids


@st.composite
def requests_for(draw, method: str, template: str, route: Route, world: World) -> dict[str, Any]:
    """One request to ``route``: path parameters filled, a query, and for a POST a form (the real
    field names and others), files, with or without a CSRF field taken from the page."""
    path = template
    for name in route.param_convertors:
        raw = draw(path_value(name, world), label=name)
        path = re.sub(r"\{" + name + r"(:[a-z]+)?\}", quote(raw, safe="") or "%20", path)
    query_names = [
        "next",
        "plan",
        "out",
        "n",
        "owners",
        "offline",
        "done",
        "system",
        "department",
        "supervisor",
        "q",
        "state",
        "person",
        "ok",
    ]
    # httpx itself refuses a query past 64 KB: the long values go in forms
    query_values = VALUES.filter(lambda v: len(v) < 2000)
    query = draw(st.dictionaries(st.one_of(st.sampled_from(query_names), st.text(max_size=8)), query_values, max_size=4), label="query")
    req: dict[str, Any] = {
        "method": method,
        "path": path,
        "query": query,
        "who": draw(st.sampled_from(sorted(world.sessions)), label="who"),
        "csrf": draw(st.booleans(), label="csrf"),
    }
    if method == "POST":
        names = st.one_of(st.sampled_from(sorted(world.fields)), st.text(max_size=10))
        req["form"] = draw(st.dictionaries(names, VALUES, max_size=8), label="form")
        req["files"] = draw(st.lists(UPLOADS, max_size=2), label="files") if draw(st.booleans()) else []
    return req
