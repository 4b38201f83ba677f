"""Institutions kept apart on every web surface (issue 18), on SQLite and PostgreSQL.

Two schools in one installation (tests/schools.py): school a (two plans) and school b (one plan
with a request and its PDF, a review and a 督办单).  A school-a account, read-only link, action
link or 我的督办 session that names school b's objects gets the answer an unknown object gets and
changes nothing; a school-a account's "every plan" is school a's plans; the province account
reads both schools, and every POST it makes is refused with the read-only page."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from duban import accounts, dashboard_access, orchestration, paper, person_sessions
from duban.db import session_scope
from duban.link_tokens import verify
from duban.models import Evidence, Plan, Request, Task
from duban.rules.calendar import WorkCalendar
from duban.settings import get_settings
from duban.web.security import csrf_token
from duban.web.signin import form_token
from tests.conftest import PINNED, PINNED_DAY
from tests.schools import A_WORDS, B_WORDS, ids, import_schools, link, start_b_review, store
from tests.web_helpers import PDF, SECRET, csrf_of, web_env
from tests.web_helpers import sign_in as form_sign_in

pytestmark = pytest.mark.usefixtures("clock")  # the web app reads the clock: pinned (tests/conftest.py)

PASSWORD = "Dubanban-2026!"
READ_ONLY = "省级账户可以查看各单位的督办情况，不能代替单位办理（审批、催办、发起督查等）。如需办理，请联系该单位的领导小组办公室。"
H1 = re.compile(r"<h1>([^<]*)</h1>")


@pytest.fixture
def web(use_database, engine, tmp_path, monkeypatch):
    """The web app over two schools, with school b's request (and its PDF), review and 督办单."""
    from duban.web.app import create_app

    monkeypatch.setenv("DUBAN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(orchestration, "deployment_available", lambda: False)
    web_env(monkeypatch)
    import_schools(engine, tmp_path)
    with session_scope(engine) as s:
        accounts.create_account(s, "a-office", PASSWORD, role="office", institution="a", person="督办员")
        accounts.create_account(s, "prov", PASSWORD, role="office", province=True)
    with TestClient(create_app(), raise_server_exceptions=True, follow_redirects=False) as client:
        done = link(engine, SECRET, "b-2026", "教务处处长", "done", "1", step=True)  # school b's owner submits 办结 with a PDF
        page = client.get(f"/l/{done}")
        sent = client.post(
            f"/l/{done}", data={"csrf": csrf_of(page.text), "note": "已完成"}, files=[("files", ("乙校材料.pdf", PDF, "application/pdf"))]
        )
        assert sent.status_code == 200
        client.cookies.clear()
        yield client


@pytest.fixture
def b(web, engine):
    """School b's objects: its request and evidence, a review, a 督办单."""
    with session_scope(engine, readonly=True) as s:
        request_id, evidence_id = s.execute(select(Request.id, Evidence.id).join(Evidence, Evidence.request_id == Request.id)).one()
    review = start_b_review(engine, ask="请报告乙校专属任务进展", reports_dir=get_settings().data_dir / "reports")
    notice = paper.issue_notice(engine, "b-2026", "9", today=PINNED_DAY, cal=WorkCalendar(), issued_by="督办员")
    return {"request": request_id, "evidence": evidence_id, "review": review, "year": notice.year, "number": notice.number}


def sign_in(client, login: str) -> None:
    assert form_sign_in(client, login, PASSWORD).status_code == 303


def token(client, purpose: str) -> str:
    """A valid CSRF field for ``purpose`` (so that a refusal is never the CSRF check's)."""
    if not client.cookies.get("duban_form"):
        client.get("/dashboard")
    return form_token(SECRET, client.cookies.get("duban_form"), purpose)


def leaked(text: str, words=B_WORDS) -> list[str]:
    return [w for w in words if w in text]


def plan_codes(client) -> list[str]:
    return [row["plan"] for row in client.get("/dashboard.json").json()["views"]["by_plan"]]


# -- a school's "every plan" is its own plans ---------------------------------------------------------------------


def test_a_schools_dashboard_over_every_plan_shows_its_plans_only(web, engine):
    sign_in(web, "a-office")
    assert plan_codes(web) == ["a-2026", "a-extra"]
    data = web.get("/dashboard.json").json()
    assert (data["plan"], data["totals"]["tasks"], data["totals"]["awaiting_approval"]) == (None, 8, 0)
    # each plan's task 1 is late for its first step; school b's overdue task 9 is not school a's
    assert [(r["plan"], r["code"]) for r in data["views"]["overdue"]] == [("a-2026", "1"), ("a-extra", "1")]
    page = web.get("/dashboard")
    assert page.status_code == 200 and "全部方案（2 个）" in page.text
    assert leaked(page.text) == [] and all(w in page.text for w in A_WORDS)


def test_the_province_reads_every_school(web, engine, b):
    sign_in(web, "prov")
    assert plan_codes(web) == ["a-2026", "a-extra", "b-2026"]
    data = web.get("/dashboard.json").json()
    assert (data["totals"]["tasks"], data["totals"]["awaiting_approval"]) == (13, 1)
    assert sorted((r["plan"], r["code"]) for r in data["views"]["overdue"]) == [("a-2026", "1"), ("a-extra", "1"), ("b-2026", "9")]
    task = web.get("/dashboard/tasks/b-2026/9")
    assert task.status_code == 200 and "乙校专属任务" in task.text and "乙校处长" in task.text
    assert "/urge" not in task.text and "/instruction" not in task.text  # no forms for the province
    queue = web.get("/dashboard/approvals")
    assert "省级账户可以查看各单位的待审核申请，不能代替单位审核。" in queue.text and "任务 1 集体备课" in queue.text
    assert web.get(f"/dashboard/approvals/files/{b['evidence']}").content == PDF
    shown = web.get(f"/dashboard/reviews/{b['review']}")
    assert shown.status_code == 200 and "乙校专项督查" in shown.text and "撤销督查</button>" not in shown.text
    assert "乙校专项督查" in web.get("/dashboard/reviews").text
    assert "乙校专属任务" in web.get("/dashboard/search?q=乙校").text
    assert web.get(f"/dashboard/paper/notice.pdf?plan=b-2026&year={b['year']}&number={b['number']}").status_code == 200
    assert "印发督办单" not in web.get("/dashboard?plan=b-2026").text


# -- school a reading school b: the answer an unknown object gets ------------------------------------------------------

# (school b's address, the same address naming nothing); {r} review, {e} evidence, {y}/{n} the 督办单
READS = [
    ("/dashboard?plan=b-2026", "/dashboard?plan=nope"),
    ("/dashboard/tasks/b-2026/9", "/dashboard/tasks/nope/9"),
    ("/dashboard/tasks/b-2026/1", "/dashboard/tasks/a-2026/99"),
    ("/dashboard/search?plan=b-2026", "/dashboard/search?plan=nope"),
    ("/dashboard/approvals?plan=b-2026", "/dashboard/approvals?plan=nope"),
    ("/dashboard/approvals/files/{e}", "/dashboard/approvals/files/999999"),
    ("/dashboard/reviews?plan=b-2026", "/dashboard/reviews?plan=nope"),
    ("/dashboard/reviews/{r}", "/dashboard/reviews/999999"),
    ("/dashboard/reviews/{r}/report.html", "/dashboard/reviews/999999/report.html"),
    ("/dashboard/reviews/new?plan=b-2026", "/dashboard/reviews/new?plan=nope"),
    ("/dashboard/announce?plan=b-2026", "/dashboard/announce?plan=nope"),
    ("/dashboard/paper/bulletin.pdf?plan=b-2026", "/dashboard/paper/bulletin.pdf?plan=nope"),
    ("/dashboard/paper/notice.pdf?plan=b-2026&year={y}&number={n}", "/dashboard/paper/notice.pdf?plan=nope&year={y}&number={n}"),
]


@pytest.mark.parametrize(("theirs", "unknown"), READS, ids=[t for t, _ in READS])
def test_a_school_reading_another_schools_object_gets_the_unknown_answer(web, b, theirs, unknown):
    sign_in(web, "a-office")
    fill = {"r": b["review"], "e": b["evidence"], "y": b["year"], "n": b["number"]}
    got, expected = web.get(theirs.format(**fill)), web.get(unknown.format(**fill))
    assert got.status_code == expected.status_code == 404
    assert H1.findall(got.text) == H1.findall(expected.text) != []
    assert leaked(got.text) == [] and "乙校专项督查" not in got.text and got.content != PDF


def test_a_schools_lists_and_search_hold_nothing_of_another(web, b):
    sign_in(web, "a-office")
    for path in ("/dashboard", "/dashboard/approvals", "/dashboard/reviews", "/dashboard/search?q=乙校", "/dashboard/search?q=集体备课"):
        page = web.get(path)
        assert page.status_code == 200, path
        assert leaked(page.text) == [] and "乙校专项督查" not in page.text, path
    assert "<h2>待审核申请（0）</h2>" in web.get("/dashboard/approvals").text
    assert "<h2>搜索结果（共 0 项）</h2>" in web.get("/dashboard/search?q=乙校").text
    assert "<h2>搜索结果（共 2 项）</h2>" in web.get("/dashboard/search?q=集体备课").text  # task 1 of each of school a's plans
    assert (
        web.get("/dashboard.json?plan=b-2026").json()
        == web.get("/dashboard.json?plan=nope").json()
        == {
            "ok": False,
            "error": "没有找到该方案，请从方案列表中选择。",
        }
    )


def test_a_schools_read_only_link_sees_its_plans_only(web, engine):
    with session_scope(engine) as s:
        _, tok = dashboard_access.issue_dashboard_link(s, secret=SECRET, plan_code=None, days=30, today=PINNED_DAY, institution="a")
    assert web.get(f"/d/{tok}").status_code == 303
    assert plan_codes(web) == ["a-2026", "a-extra"]
    assert web.get("/dashboard?plan=b-2026").status_code == 404
    assert leaked(web.get("/dashboard").text) == []


# -- school a acting on school b: refused as unknown, nothing changes ---------------------------------------------


def _posts(b: dict) -> list[tuple[str, str, dict]]:
    """(address, CSRF purpose, fields) of each dashboard POST, aimed at school b's objects."""
    r = b["review"]
    return [
        ("/dashboard/approvals", "approvals", {"pick": [b["request"]], "decision": "approve", "step": "do"}),
        ("/dashboard/tasks/b-2026/9/urge", "task-urge", {"text": "请抓紧"}),
        ("/dashboard/tasks/b-2026/1/archive", "task-archive", {"reason": "x", "confirm": "yes"}),
        ("/dashboard/reviews/new", "review-new", {"plan": "b-2026", "scope": "plan", "reply_by": "2026-12-20", "ask": "报告"}),
        (f"/dashboard/reviews/{r}/cancel", f"review-cancel:{r}", {"reason": "撤销"}),
        (f"/dashboard/reviews/{r}/verdicts", f"review-verdicts:{r}", {"verdict-9": "达标"}),
        (f"/dashboard/reviews/{r}/close", f"review-close:{r}", {"step": "do"}),
        ("/dashboard/paper/notice", "notice", {"plan": "b-2026", "code": "9"}),
        ("/dashboard/announce", "announce", {"plan": "b-2026", "how": "offline"}),
    ]


POST_NAMES = ["approvals", "urge", "archive", "review-new", "review-cancel", "verdicts", "close", "notice", "announce"]


@pytest.mark.parametrize("which", range(len(POST_NAMES)), ids=POST_NAMES)
def test_a_school_acting_on_another_schools_object_is_refused_and_nothing_changes(web, engine, b, which):
    sign_in(web, "a-office")
    path, purpose, fields = _posts(b)[which]
    before = store(engine)
    resp = web.post(path, data={"csrf": token(web, purpose), **fields})
    assert resp.status_code in (200, 404)
    if resp.status_code == 200:  # the batch page reports the request as not found among its plans
        assert "没有找到该申请，它可能不属于您审核的方案。" in resp.text
    assert leaked(resp.text) == []
    assert store(engine) == before


@pytest.mark.parametrize("which", range(len(POST_NAMES)), ids=POST_NAMES)
@pytest.mark.parametrize("school", ["b-2026", "a-2026"])
def test_every_post_of_the_province_is_refused_read_only(web, engine, b, which, school):
    sign_in(web, "prov")
    path, purpose, fields = _posts(b)[which]
    if school == "a-2026":  # the same forms aimed at school a's objects
        path = path.replace("b-2026", "a-2026")
        fields = {k: (v.replace("b-2026", "a-2026") if isinstance(v, str) else v) for k, v in fields.items()}
    before = store(engine)
    resp = web.post(path, data={"csrf": token(web, purpose), **fields})
    assert resp.status_code == 403
    assert "<h1>只读账户</h1>" in resp.text and READ_ONLY in resp.text
    assert store(engine) == before


# -- links and 我的督办 are a person's, and so a school's -----------------------------------------------------------


def test_a_school_a_link_cannot_reach_school_b_by_changing_ids(web, engine, b):
    view = link(engine, SECRET, "a-2026", "教务处处长", "view", "1")
    resp = web.get(f"/l/{view}/files/{b['evidence']}")
    assert resp.status_code == 404 and "该附件不存在，或不属于此链接对应的任务。" in resp.text and resp.content != PDF
    queue = link(engine, SECRET, "a-2026", "督办员", "queue")
    page = web.get(f"/l/{queue}")
    assert page.status_code == 200 and leaked(page.text) == []
    assert web.get(f"/l/{queue}/files/{b['evidence']}").status_code == 404
    opened = web.get(f"/l/{queue}/r/{b['request']}")
    assert opened.status_code == 404 and "没有找到该申请，它可能不属于您审核的方案。" in opened.text
    before = store(engine)
    field = csrf_token(SECRET, web.cookies.get("duban_csrf"), int(verify(SECRET, queue, today=PINNED_DAY)["l"]))
    decided = web.post(f"/l/{queue}/r/{b['request']}", data={"csrf": field, "decision": "approve", "note": "同意"})
    assert decided.status_code == 404 and leaked(decided.text) == []
    assert store(engine) == before


def test_a_school_a_session_of_my_tasks_cannot_sign_school_b_tasks(web, engine):
    me = ids(engine, "a-2026", person="教务处处长")["person"]
    with session_scope(engine) as s:
        sid = person_sessions.start(s, me, method="cas", subject="A0001", now=PINNED, until=PINNED + dt.timedelta(hours=12))
        theirs = [str(t) for t in s.scalars(select(Task.id).join(Plan, Plan.id == Task.plan_id).where(Plan.code == "b-2026"))]
    web.cookies.set(person_sessions.PERSON_COOKIE, person_sessions.cookie(SECRET, sid, expires=PINNED + dt.timedelta(hours=12)))
    page = web.get("/me")
    assert page.status_code == 200 and leaked(page.text) == []
    before = store(engine)
    resp = web.post("/me/ack", data={"csrf": csrf_of(page.text), "task": theirs})
    assert resp.status_code == 409 and "所选任务均已签收或已不由您负责，无需再签收。" in resp.text
    assert "请确认签收" not in resp.text and leaked(resp.text) == []
    assert store(engine) == before  # school b's tasks: none signed
