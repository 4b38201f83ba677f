"""The dashboard's 督查 section (/dashboard/reviews): list, show, start (office), cancel (office),
report downloads, and who sees what — on SQLite and PostgreSQL (TestClient).  Also the CLI's
``duban review start``, which now goes through the same library function (duban.orchestration.start_review)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from duban import orchestration
from duban.db import session_scope
from duban.models import Notification, Person, Review, ReviewItem, Task, utcnow
from duban.reviews import api as reviews
from duban.settings import get_settings
from tests.factories import import_announced, write_yaml
from tests.web.test_dashboard import add_account, assert_private, login, other_plan
from tests.web_helpers import SECRET, import_small

pytestmark = pytest.mark.usefixtures("clock")  # the web app reads the clock: pinned (tests/conftest.py)

TODAY = dt.date(2026, 11, 23)
REPLY_BY = dt.date(2026, 12, 4)
ASK = "请对照任务书报告本学期推进情况。"
# what a viewer account (and anybody without access) may not see of a review of plan demo
NAMES = [
    "教务处处长",
    "教务处副处长",
    "集体备课",
    "建设课程资源库",
    "督办员",
    "已组织集体备课 4 次",
    "青年教师参与度不高",
    "下学期开展示范课评比",
    "备课记录.pdf",
]


@pytest.fixture
def engine_web(use_database, engine, tmp_path, monkeypatch):
    monkeypatch.setenv("DUBAN_SECRET_KEY", SECRET)
    monkeypatch.setenv("DUBAN_WEB_SEND_NOW", "0")
    monkeypatch.setenv("DUBAN_BASE_URL", "http://testserver")
    monkeypatch.setenv("DUBAN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr("duban.runtime.Runtime.today", lambda self: TODAY)
    monkeypatch.setattr(orchestration, "deployment_available", lambda: False)  # no Prefect server: in-process
    get_settings.cache_clear()
    import_small(engine, tmp_path)
    import_announced(engine, write_yaml(tmp_path / "other.yaml", other_plan()))
    add_account(engine, "dby", "office", "demo", person="督办员")
    add_account(engine, "leader", "leader", "demo")
    add_account(engine, "viewer", "viewer", "demo")
    add_account(engine, "other-office", "office", "other")
    return engine


@pytest.fixture
def client(engine_web):
    from duban.web.app import create_app

    with TestClient(create_app(), follow_redirects=False) as c:
        yield c


def field(html: str, form_action: str) -> str:
    """The CSRF field of the form posting to ``form_action``."""
    m = re.search(
        r'<form method="post" action="' + re.escape(form_action) + r'">\s*<input type="hidden" name="csrf" value="([0-9a-f]+)"', html
    )
    assert m, f"no form to {form_action}"
    return m.group(1)


def store(engine) -> dict:
    """What the store holds about reviews: (title, kind, values, status, started_by), items, requests."""
    with session_scope(engine) as s:
        rows = [
            (r.title, r.scope_kind, r.scope_values, r.status, r.reply_by, r.started_by, r.ask)
            for r in s.scalars(select(Review).order_by(Review.id))
        ]
        items = sorted(
            s.execute(
                select(Task.code, Person.name)
                .join(ReviewItem, ReviewItem.task_id == Task.id)
                .join(Person, Person.id == ReviewItem.owner_id)
            ).all()
        )
        ledger = sorted(
            s.execute(
                select(Notification.kind, Person.name, Notification.data["code"].as_string())
                .join(Person, Person.id == Notification.recipient_id)
                .where(Notification.kind.like("review%"))
            ).all()
        )
    return {"reviews": rows, "items": [tuple(i) for i in items], "ledger": [tuple(n) for n in ledger]}


EMPTY = {"reviews": [], "items": [], "ledger": []}


def start_review(engine, kind="system", values=("课程育人",)) -> int:
    return reviews.start(
        engine,
        plan_code="demo",
        scope_kind=kind,
        scope_values=list(values),
        reply_by=REPLY_BY,
        ask=ASK,
        today=TODAY,
        started_by="督办员",
        reports_dir=get_settings().data_dir / "reports",
    ).review_id


def answer(engine, review_id: int, code: str, *, files=()) -> None:
    with session_scope(engine) as s:
        item = s.scalar(
            select(ReviewItem).join(Task, Task.id == ReviewItem.task_id).where(ReviewItem.review_id == review_id, Task.code == code)
        )
        reviews.record_answer(
            s,
            item,
            person=s.get(Person, item.owner_id),
            done="已组织集体备课 4 次",
            problems="青年教师参与度不高",
            next_steps="下学期开展示范课评比",
            urls=["https://example.org/beike"],
            files=list(files),
            now=utcnow(),
            today=TODAY + dt.timedelta(days=1),
        )


# -- the office starts a review from the form -----------------------------------------------------------------------


def test_office_starts_a_review_from_the_form(client, engine_web):
    login(client, "dby")
    listing = client.get("/dashboard/reviews")
    assert listing.status_code == 200 and listing.headers["cache-control"] == "no-store, private"
    assert "暂无督查。" in listing.text and '<a href="/dashboard/reviews/new?plan=demo">发起督查</a>' in listing.text
    form = client.get("/dashboard/reviews/new")
    assert form.status_code == 200 and "方案：测试方案。" in form.text
    # the choice lists come from the plan
    assert re.findall(r'name="system" value="([^"]+)"', form.text) == ["课程育人", "文化育人"]
    assert re.findall(r'name="department" value="([^"]+)"', form.text) == ["教务处", "宣传部"]
    assert re.findall(r'name="supervisor" value="([^"]+)"', form.text) == ["分管教学副校长", "党委书记"]
    assert re.findall(r"<li>(\d) ", form.text) == ["1", "2", "3", "4"]
    assert 'min="2026-11-24"' in form.text
    assert_private(form.text, ["另一方案", "外省任务", "外省处长"])

    resp = client.post(
        "/dashboard/reviews/new",
        data={
            "csrf": field(form.text, "/dashboard/reviews/new"),
            "plan": "demo",
            "scope": "system",
            "system": "课程育人",
            "reply_by": "2026-12-04",
            "ask": ASK,
            "title": "",
        },
    )
    assert resp.status_code == 303, resp.text
    [review_id] = re.fullmatch(r"/dashboard/reviews/(\d+)\?done=started", resp.headers["location"]).groups()
    assert store(engine_web) == {
        "reviews": [("课程育人专项督查", "system", ["课程育人"], "open", REPLY_BY, "督办员", ASK)],
        "items": [("1", "教务处处长"), ("2", "教务处副处长")],
        "ledger": [("review_request", "教务处副处长", "2"), ("review_request", "教务处处长", "1")],
    }
    page = client.get(resp.headers["location"])
    assert page.status_code == 200
    assert "督查已发起，已向范围内各任务责任人发出填报通知。" in page.text
    assert "<h1>课程育人专项督查</h1>" in page.text and "<dd>育人体系：课程育人</dd>" in page.text and "<dd>填报中</dd>" in page.text
    assert (
        '<h3><a href="/dashboard/tasks/demo/1">1 集体备课</a></h3>' in page.text
        and "责任人 教务处处长" in page.text
        and '<h3><a href="/dashboard/tasks/demo/2">2 建设课程资源库</a></h3>' in page.text
    )
    assert '<span class="n">0/2</span><span class="l">已填报</span>' in page.text
    assert f'action="/dashboard/reviews/{review_id}/cancel"' in page.text
    rows = re.findall(
        r"<tr><td>(\d+)</td><td class=\"t\"><a href=\"([^\"]+)\">([^<]+)</a></td><td class=\"t\">([^<]+)</td>"
        r"<td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>",
        client.get("/dashboard/reviews").text,
    )
    assert rows == [
        (
            review_id,
            f"/dashboard/reviews/{review_id}",
            "课程育人专项督查",
            "育人体系：课程育人",
            "填报中",
            "2026-11-23",
            "2026-12-04",
            "0/2",
            "0/2",
        )
    ]

    # the other kinds of scope: departments, a leader's area, task codes (with a title), the whole plan
    for data, title, codes in [
        ({"scope": "department", "department": "宣传部"}, "宣传部专项督查", ["3", "4"]),
        ({"scope": "supervisor", "supervisor": "分管教学副校长"}, "分管教学副校长专项督查", ["1", "2"]),
        ({"scope": "tasks", "tasks": "2, 4"}, "任务 2、4 专项督查", ["2", "4"]),
        ({"scope": "plan", "title": "年终全面督查"}, "年终全面督查", ["1", "2", "3", "4"]),
    ]:
        form = client.get("/dashboard/reviews/new")
        resp = client.post(
            "/dashboard/reviews/new",
            data={"csrf": field(form.text, "/dashboard/reviews/new"), "plan": "demo", "reply_by": "2026-12-04", "ask": ASK, **data},
        )
        assert resp.status_code == 303, resp.text
        rid = int(re.search(r"/dashboard/reviews/(\d+)", resp.headers["location"]).group(1))
        with session_scope(engine_web) as s:
            assert s.get(Review, rid).title == title
            assert (
                sorted(s.scalars(select(Task.code).join(ReviewItem, ReviewItem.task_id == Task.id).where(ReviewItem.review_id == rid)))
                == codes
            )


@pytest.mark.parametrize(
    ("data", "status", "messages"),
    [
        (
            {"scope": "system", "system": "课程育人", "reply_by": "2026-11-20"},
            400,
            ["填报截止日期：应晚于今天（2026-11-23），请重新选择。"],
        ),
        (
            {"scope": "system", "system": "课程育人", "reply_by": "2026-11-23"},
            400,
            ["填报截止日期：应晚于今天（2026-11-23），请重新选择。"],
        ),
        ({"scope": "system", "system": "课程育人", "reply_by": ""}, 400, ["填报截止日期：请选择填报截止日期。"]),
        (
            {"scope": "system", "system": "课程育人", "reply_by": "12/04/2026"},
            400,
            ["填报截止日期：格式不正确，请按 YYYY-MM-DD 填写，如 2026-12-10。"],
        ),
        ({"scope": "system", "reply_by": "2026-12-04"}, 400, ["督查范围：请至少选择一个育人体系。"]),
        ({"scope": "department", "reply_by": "2026-12-04"}, 400, ["督查范围：请至少选择一个牵头单位。"]),
        ({"scope": "tasks", "tasks": " ，", "reply_by": "2026-12-04"}, 400, ["督查范围：请填写要督查的任务编号，多个编号用逗号分隔。"]),
        ({"reply_by": "2026-12-04"}, 400, ["督查范围：请选择整个方案、育人体系、牵头单位、分管校领导或指定任务之一。"]),
        ({"scope": "tasks", "tasks": "1, 99", "reply_by": "2026-12-04"}, 400, ["方案中没有编号为 99 的任务（或已归档）。"]),
        (
            {"scope": "system", "system": "体育育人", "reply_by": "2026-12-04"},
            400,
            ["方案中没有名为“体育育人”的育人体系。已有：课程育人、文化育人"],
        ),
        ({"scope": "system", "system": "课程育人", "reply_by": "2026-12-04", "ask": "  "}, 400, ["督查要求：请填写需要责任人报告的内容。"]),
        (
            {"scope": "system", "system": "课程育人", "reply_by": "2026-11-01", "ask": ""},
            400,
            ["填报截止日期：应晚于今天（2026-11-23），请重新选择。", "督查要求：请填写需要责任人报告的内容。"],
        ),
    ],
)
def test_a_wrong_form_says_what_to_fix_and_writes_nothing(client, engine_web, data, status, messages):
    login(client, "dby")
    form = client.get("/dashboard/reviews/new")
    resp = client.post(
        "/dashboard/reviews/new", data={"csrf": field(form.text, "/dashboard/reviews/new"), "plan": "demo", "ask": ASK, **data}
    )
    assert resp.status_code == status
    for message in messages:
        assert message in resp.text
    assert "提交的内容有误，请按提示修改后重新提交。" in resp.text or "方案中没有" in resp.text
    # the form keeps what was typed
    if data.get("system") == "课程育人":
        assert 'name="system" value="课程育人" checked' in resp.text
    assert store(engine_web) == EMPTY


def test_a_plan_outside_the_scope_and_a_forged_form_are_refused(client, engine_web):
    login(client, "dby")
    form = client.get("/dashboard/reviews/new")
    token = field(form.text, "/dashboard/reviews/new")
    other = client.post(
        "/dashboard/reviews/new", data={"csrf": token, "plan": "other", "scope": "plan", "reply_by": "2026-12-04", "ask": ASK}
    )
    assert other.status_code == 403 and "您的账户无权在该方案中发起督查。如需发起，请联系领导小组办公室。" in other.text
    assert_private(other.text, ["另一方案", "外省任务", "外省处长", "实践育人"])
    assert client.get("/dashboard/reviews/new?plan=other").status_code == 403
    forged = client.post("/dashboard/reviews/new", data={"plan": "demo", "scope": "plan", "reply_by": "2026-12-04", "ask": ASK})
    assert forged.status_code == 403 and "页面已过期，为保护您的账户安全，本次提交未被受理。" in forged.text
    from duban.web.dashboard import form_token

    wrong = client.post(
        "/dashboard/reviews/new",
        data={
            "csrf": form_token(SECRET, "someone-elses-cookie-value", "review-new"),
            "plan": "demo",
            "scope": "plan",
            "reply_by": "2026-12-04",
            "ask": ASK,
        },
    )
    assert wrong.status_code == 403
    # the sign-in form's field does not start a review either (the field names its form)
    login_field = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text).group(1)  # the sign-out form's
    assert (
        client.post(
            "/dashboard/reviews/new", data={"csrf": login_field, "plan": "demo", "scope": "plan", "reply_by": "2026-12-04", "ask": ASK}
        ).status_code
        == 403
    )
    assert store(engine_web) == EMPTY


# -- who sees what ---------------------------------------------------------------------------------------------------


def test_leader_sees_the_reviews_and_answers_but_cannot_start_or_cancel(client, engine_web):
    rid = start_review(engine_web)
    answer(engine_web, rid, "1")
    login(client, "leader")
    listing = client.get("/dashboard/reviews")
    assert listing.status_code == 200 and "课程育人专项督查" in listing.text and "<td>1/2</td>" in listing.text
    assert "发起督查</a>" not in listing.text
    page = client.get(f"/dashboard/reviews/{rid}")
    assert page.status_code == 200
    for text in (
        '<h3><a href="/dashboard/tasks/demo/1">1 集体备课</a></h3>',
        "责任人 教务处处长",
        "已组织集体备课 4 次",
        "青年教师参与度不高",
        "下学期开展示范课评比",
        "https://example.org/beike",
        "（督办员）",
        '<td><a href="/dashboard/tasks/demo/2">2</a></td><td class="t"><a href="/dashboard/tasks/demo/2">建设课程资源库</a></td>'
        '<td class="t">教务处</td><td class="t">教务处副处长</td>',
    ):
        assert text in page.text, text
    assert "撤销督查" not in page.text and "/cancel" not in page.text
    for resp in (
        client.get("/dashboard/reviews/new"),
        client.post("/dashboard/reviews/new", data={"plan": "demo", "scope": "plan", "reply_by": "2026-12-04", "ask": ASK}),
        client.post(f"/dashboard/reviews/{rid}/cancel", data={"reason": "并入全面督查"}),
    ):
        assert resp.status_code == 403 and "只有领导小组办公室的账户可以发起或撤销督查。" in resp.text
    with session_scope(engine_web) as s:
        assert [r.status for r in s.scalars(select(Review))] == ["open"]


def test_viewer_sees_counts_only(client, engine_web):
    rid = start_review(engine_web)
    answer(engine_web, rid, "1")
    login(client, "viewer")
    listing = client.get("/dashboard/reviews")
    assert listing.status_code == 200 and "课程育人专项督查" in listing.text and "<td>1/2</td><td>0/2</td>" in listing.text
    assert_private(listing.text, NAMES)
    page = client.get(f"/dashboard/reviews/{rid}")
    assert page.status_code == 200
    assert (
        '<span class="n">1/2</span><span class="l">已填报</span>' in page.text
        and '<span class="n">1</span><span class="l">未填报</span>' in page.text
    )
    assert "只读统计账户" in page.text and 'id="items"' not in page.text and 'id="non_responders"' not in page.text
    assert_private(page.text, NAMES + [ASK])
    assert client.get(f"/dashboard/reviews/{rid}/report.xlsx").status_code == 403
    assert client.get("/dashboard/reviews/new").status_code == 403


def test_anonymous_is_sent_to_sign_in_and_sees_nothing(client, engine_web):
    rid = start_review(engine_web)
    answer(engine_web, rid, "1")
    before = store(engine_web)
    paths = [
        "/dashboard/reviews",
        "/dashboard/reviews?plan=demo",
        f"/dashboard/reviews/{rid}",
        f"/dashboard/reviews/{rid}/report.html",
        "/dashboard/reviews/new",
        f"/dashboard/reviews/{rid + 1}",
    ]
    for path in paths:
        resp = client.get(path)
        assert resp.status_code == 303 and resp.headers["location"].startswith("/login?next=%2Fdashboard%2Freviews"), path
        assert_private(resp.text, NAMES + ["课程育人专项督查"])
    for path, data in [
        ("/dashboard/reviews/new", {"plan": "demo", "scope": "plan", "reply_by": "2026-12-04", "ask": ASK}),
        (f"/dashboard/reviews/{rid}/cancel", {"reason": "x"}),
    ]:
        resp = client.post(path, data=data)
        assert resp.status_code == 303 and resp.headers["location"].startswith("/login"), path
    assert store(engine_web) == before


def test_a_review_of_another_plan_is_not_found(client, engine_web):
    rid = start_review(engine_web)
    login(client, "other-office")
    assert "课程育人专项督查" not in client.get("/dashboard/reviews").text
    for path in (f"/dashboard/reviews/{rid}", f"/dashboard/reviews/{rid}/report.html", f"/dashboard/reviews/{rid + 100}"):
        resp = client.get(path)
        assert resp.status_code == 404 and "没有找到该督查，或您的账户无权查看。" in resp.text, path
        assert_private(resp.text, NAMES + ["课程育人专项督查"])
    page = client.get(f"/dashboard/reviews/{rid}")
    cancel = client.post(f"/dashboard/reviews/{rid}/cancel", data={"csrf": "0" * 40, "reason": "x"})
    assert cancel.status_code == 404 and page.status_code == 404
    assert client.get("/dashboard/reviews?plan=demo").status_code == 403


# -- cancel, and the report ---------------------------------------------------------------------------------------------


def test_office_cancels_with_a_reason_and_not_without_its_csrf_field(client, engine_web):
    rid = start_review(engine_web)
    answer(engine_web, rid, "1")
    login(client, "dby")
    page = client.get(f"/dashboard/reviews/{rid}")
    action = f"/dashboard/reviews/{rid}/cancel"
    token = field(page.text, action)
    forged = client.post(action, data={"reason": "并入全面督查"})
    assert forged.status_code == 403 and "本次撤销未被受理" in forged.text
    # a field made for another review does not pass
    from duban.web.dashboard import form_token

    cookie = client.cookies.get("duban_form")
    assert client.post(action, data={"csrf": form_token(SECRET, cookie, f"review-cancel:{rid + 1}"), "reason": "x"}).status_code == 403
    empty = client.post(action, data={"csrf": token, "reason": "  "})
    assert empty.status_code == 400 and "撤销原因：请填写撤销原因（将告知尚未填报的责任人）。" in empty.text
    with session_scope(engine_web) as s:
        assert s.get(Review, rid).status == "open"
    done = client.post(action, data={"csrf": token, "reason": "并入全面督查"})
    assert done.status_code == 303 and done.headers["location"] == f"/dashboard/reviews/{rid}?done=cancelled"
    with session_scope(engine_web) as s:
        r = s.get(Review, rid)
        assert (r.status, r.cancel_reason, r.cancelled_by) == ("cancelled", "并入全面督查", "督办员")
    # only the owner who had not answered is told
    assert [n for n in store(engine_web)["ledger"] if n[0] == "review_cancelled"] == [("review_cancelled", "教务处副处长", "2")]
    after = client.get(done.headers["location"])
    assert "督查已撤销，尚未填报的责任人将收到撤销通知，填报链接已失效。" in after.text
    assert "<dd>已撤销</dd>" in after.text and "<dd>并入全面督查</dd>" in after.text and "撤销督查</button>" not in after.text
    again = client.post(action, data={"csrf": token, "reason": "再撤一次"})
    assert again.status_code == 409 and f"督查 {rid} 已撤销，不能撤销。" in again.text


def test_report_downloads_for_accounts_in_scope(client, engine_web):
    rid = start_review(engine_web, "tasks", ["1"])
    answer(engine_web, rid, "1")  # the only answer: the answers close
    with session_scope(engine_web) as s:
        reviews.give_verdict(s, s.get(Review, rid), reviews.TaskVerdict("1", "达标"), actor="督办员", now=utcnow(), today=TODAY)
    with session_scope(engine_web) as s:  # 完成评定并报送
        reviews.close_review(s, rid, actor="督办员", now=utcnow(), today=TODAY, reports_dir=get_settings().data_dir / "reports")
    login(client, "leader")
    page = client.get(f"/dashboard/reviews/{rid}")
    assert "<dd>已完成</dd>" in page.text and '<span class="n">1</span><span class="l">达标</span>' in page.text
    for ext, ctype in (("html", "text/html; charset=utf-8"), ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")):
        assert f'href="/dashboard/reviews/{rid}/report.{ext}"' in page.text
        resp = client.get(f"/dashboard/reviews/{rid}/report.{ext}")
        assert resp.status_code == 200 and resp.headers["content-type"] == ctype
        assert resp.headers["content-disposition"] == (
            f'attachment; filename="____-___1_____.{ext}"; '
            f"filename*=UTF-8''%E7%9D%A3%E6%9F%A5%E6%8A%A5%E5%91%8A-%E4%BB%BB%E5%8A%A1%201%20"
            f"%E4%B8%93%E9%A1%B9%E7%9D%A3%E6%9F%A5.{ext}"
        )
        assert resp.headers["cache-control"] == "no-store, private" and len(resp.content) > 1000
    assert client.get(f"/dashboard/reviews/{rid}/report.pdf").status_code == 404
    # not yet written
    other = start_review(engine_web, "tasks", ["2"])
    resp = client.get(f"/dashboard/reviews/{other}/report.html")
    assert resp.status_code == 404 and "督查报告尚未生成" in resp.text


# -- one start path: the deployment when there is one, and the CLI ---------------------------------------------------------


def test_with_a_review_deployment_the_flow_run_gets_the_review(client, engine_web, monkeypatch):
    calls = []

    class Run:
        id = "7d6c3c52-2d6c-4f4e-9a57-3b0e5f0a1c11"

    def run_deployment(name, parameters, timeout):
        calls.append((name, parameters, timeout))
        return Run()

    monkeypatch.setattr(orchestration, "deployment_available", lambda: True)
    monkeypatch.setattr("prefect.deployments.run_deployment", run_deployment)
    login(client, "dby")
    form = client.get("/dashboard/reviews/new")
    resp = client.post(
        "/dashboard/reviews/new",
        data={
            "csrf": field(form.text, "/dashboard/reviews/new"),
            "plan": "demo",
            "scope": "tasks",
            "tasks": "1",
            "reply_by": "2026-12-04",
            "ask": ASK,
        },
    )
    rid = int(re.fullmatch(r"/dashboard/reviews/(\d+)\?done=started-flow", resp.headers["location"]).group(1))
    assert calls == [
        (
            "review/review",
            {
                "request": {
                    "plan": "demo",
                    "scope": "tasks",
                    "values": ["1"],
                    "reply_by": "2026-12-04",
                    "ask": ASK,
                    "title": "任务 1 专项督查",
                    "started_by": "督办员",
                },
                "today": "2026-11-23",
                "review_id": rid,
            },
            0,
        )
    ]
    with session_scope(engine_web) as s:
        assert s.get(Review, rid).flow_run_id == Run.id
    # the requests do not wait for a worker
    assert store(engine_web)["ledger"] == [("review_request", "教务处处长", "1")]
    assert "督查流程已交由 Prefect 运行" in client.get(resp.headers["location"]).text


def test_cli_review_start_uses_the_same_path(engine_web):
    from duban.cli.main import app

    out = CliRunner().invoke(
        app,
        [
            "review",
            "start",
            "--plan",
            "demo",
            "--department",
            "宣传部",
            "--reply-by",
            "2026-12-04",
            "--ask",
            ASK,
            "--today",
            "2026-11-23",
            "--by",
            "督办员",
        ],
    )
    assert out.exit_code == 0, out.output
    rid = store(engine_web)
    assert rid["reviews"] == [("宣传部专项督查", "department", ["宣传部"], "open", REPLY_BY, "督办员", ASK)]
    assert rid["ledger"] == [("review_request", "宣传部部长", "3"), ("review_request", "宣传部部长", "4")]
    assert re.search(r"已发起督查 \d+：2 项任务，填报截止 2026-12-04，已通知各责任人。", out.output)
    bad = CliRunner().invoke(
        app, ["review", "start", "--plan", "demo", "--department", "财务部", "--reply-by", "2026-12-04", "--today", "2026-11-23"]
    )
    assert bad.exit_code == 1 and "方案中没有名为“财务部”的牵头单位。" in bad.output
    late = CliRunner().invoke(app, ["review", "start", "--plan", "demo", "--all", "--reply-by", "2026-11-23", "--today", "2026-11-23"])
    assert late.exit_code == 2 and "应晚于今天" in late.output
    assert len(store(engine_web)["reviews"]) == 1
