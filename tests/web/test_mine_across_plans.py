"""One human in two plans of one school (issue 18): the 人员 sheets of 三全育人 and 一流学科 of 甲大学
both list 教务处处长 with 工号 20061234.  One CAS sign-in covers both rows; 我的督办 (signed in, or
from either row's link) lists both plans' tasks, each labelled with its plan; 批量签收 signs across
both plans in one transaction, each 签收 recorded for the row and plan that hold the task.  The same
工号 at another school (乙学院) is refused at sign-in, and its rows are never gathered."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from duban import accounts, dashboard_access
from duban.db import session_scope
from duban.link_tokens import link_token
from duban.links import LinkMaker, issue
from duban.models import Event, Link, Person, PersonSession, Plan, Task
from duban.person_rows import same_person_rows
from duban.settings import get_settings
from duban.vocabulary import EventKind
from tests.conftest import PINNED_DAY
from tests.factories import import_announced, small_plan, write_yaml
from tests.web.test_my_pages import confirm, first_post
from tests.web.test_sso import sign_in, signed_in_person
from tests.web_helpers import IMPORTED, SECRET

pytestmark = pytest.mark.usefixtures("clock")  # the app reads the clock: pinned (2026-11-30)

STAFF_NO = "20061234"
CARD = re.compile(r'<p class="code">任务 (\d+) · <span class="state [^"]*">([^<]+)</span> · <span class="plan-of">([^<]+)</span></p>')


def plan(code: str, name: str, organization: str, tasks: list[dict] | None = None) -> dict:
    """The small plan under another code and name; 教务处处长 has the 工号 ``STAFF_NO``."""
    d = small_plan()
    d["plan"].update(code=code, name=name, organization=organization)
    next(p for p in d["people"] if p["name"] == "教务处处长")["staff_no"] = STAFF_NO
    if tasks is not None:
        d["systems"] = [{"name": "学科建设", "projects": [{"name": "学科评估", "tasks": tasks}]}]
    return d


def task(code: str, title: str, owner: str, deadline: str) -> dict:
    return {"code": code, "title": title, "owner": owner, "lead_department": "教务处", "deadline": deadline}


# 三全育人 is the small plan: 教务处处长 holds [1] 集体备课 (its first step, 2026-11-20, overdue)
YLXK_TASKS = [
    task("1", "学科评估材料", "教务处处长", "2026年12月10日前"),
    task("2", "引进高层次人才", "教务处副处长", "2027年上半年"),
    task("3", "学位点申报", "教务处处长", "2026年11月25日前"),
]
OTHER_SCHOOL_TASKS = [task("1", "乙校教学评估", "教务处处长", "2026年12月10日前")]


@pytest.fixture
def web(use_database, engine, tmp_path, monkeypatch, idp):
    """甲大学 (institution a) with two plans, both listing 教务处处长 (工号 20061234), announced;
    CAS against the fake provider."""
    from duban.web.app import create_app

    idp.env(monkeypatch, "cas")
    monkeypatch.setenv("DUBAN_SECRET_KEY", SECRET)
    monkeypatch.setenv("DUBAN_WEB_SEND_NOW", "0")
    monkeypatch.setenv("DUBAN_BASE_URL", "http://testserver")
    get_settings.cache_clear()
    import_announced(engine, write_yaml(tmp_path / "sqyr.yaml", plan("sqyr", "三全育人", "甲大学")), now=IMPORTED, institution="a")
    ylxk = plan("ylxk", "一流学科", "甲大学", YLXK_TASKS)
    import_announced(engine, write_yaml(tmp_path / "ylxk.yaml", ylxk), now=IMPORTED, institution="a")
    with TestClient(create_app(), raise_server_exceptions=True) as client:
        yield client


def other_school(engine, tmp_path) -> None:
    """乙学院 (institution b): its own 教务处处长 with the same 工号."""
    path = write_yaml(tmp_path / "b.yaml", plan("b-2026", "乙校方案", "乙学院", OTHER_SCHOOL_TASKS))
    import_announced(engine, path, now=IMPORTED, institution="b")


def row_of(engine, plan_code: str, name: str = "教务处处长") -> int:
    with session_scope(engine, readonly=True) as s:
        return s.scalar(select(Person.id).join(Plan, Plan.id == Person.plan_id).where(Plan.code == plan_code, Person.name == name))


def mine_link(engine, plan_code: str, name: str = "教务处处长") -> str:
    """The row's 我的督办 link, as a digest of that plan issues it."""
    maker = LinkMaker("http://testserver", SECRET, PINNED_DAY)
    with session_scope(engine) as s:
        plan_id = s.scalar(select(Plan.id).where(Plan.code == plan_code))
        spec = maker.mine(row_of(engine, plan_code, name), plan_id)
        (lid,) = issue(s, [spec], secret=SECRET, today=PINNED_DAY)
        return f"/me/{link_token(SECRET, lid, spec.action, spec.expires)}"


def cards(html: str) -> list[tuple[str, str, str]]:
    return CARD.findall(html.split('<details class="card finished">')[0])


def test_one_sign_in_covers_both_plans_of_the_school(web, engine, idp):
    idp.cas_user = STAFF_NO
    resp = sign_in(web, "cas", next_url=None)
    assert (resp.status_code, resp.headers["location"]) == (303, "/me")
    with session_scope(engine, readonly=True) as s:
        [session] = s.scalars(select(PersonSession)).all()
        assert (session.method, session.subject, session.person_id) == ("cas", STAFF_NO, row_of(engine, "sqyr"))
    html = web.get("/me").text
    assert "教务处处长，您好。以下是截至 2026-11-30 您在“三全育人”“一流学科”中负责的督办事项，每项注明所属方案。" in html
    assert '<span class="plan">三全育人、一流学科</span>' in html
    assert cards(html) == [
        ("1", "待签收", "三全育人"),  # 制定方案 due 2026-11-20: 6 working days late
        ("3", "待签收", "一流学科"),  # due 2026-11-25: 3 working days late
        ("1", "待签收", "一流学科"),  # due 2026-12-10
    ]
    assert "在办 <strong>3</strong> 项，其中已逾期 2 项，待签收 3 项" in html
    assert "引进高层次人才" not in html and "建设课程资源库" not in html  # 教务处副处长's, in either plan
    picks = re.findall(r'<input type="checkbox" name="task" value="\d+" checked> <span>([^<]+)</span>', html)
    assert picks == ["[1] 集体备课（三全育人）", "[3] 学位点申报（一流学科）", "[1] 学科评估材料（一流学科）"]


def test_each_task_s_buttons_are_the_links_of_the_row_that_holds_it(web, engine, idp):
    idp.cas_user = STAFF_NO
    sign_in(web, "cas", next_url=None)
    html = web.get("/me").text
    card = html.split('<p class="code">任务 3 ·')[1].split("</li>")[0]
    view = re.search(r'<h2><a href="(/l/[^"]+)">学位点申报</a></h2>', card).group(1)
    assert "<title>任务详情：学位点申报 · 督办系统</title>" in web.get(view).text
    with session_scope(engine, readonly=True) as s:
        held = set(
            s.execute(select(Plan.code, Task.code, Link.person_id).join(Task, Task.id == Link.task_id).join(Plan, Plan.id == Link.plan_id))
        )
    sqyr, ylxk = row_of(engine, "sqyr"), row_of(engine, "ylxk")
    assert held == {("sqyr", "1", sqyr), ("ylxk", "1", ylxk), ("ylxk", "3", ylxk)}


def test_batch_ack_across_plans_is_recorded_per_row_and_plan(web, engine, idp):
    idp.cas_user = STAFF_NO
    sign_in(web, "cas", next_url=None)
    asked = first_post(web, "/me")
    assert "请确认签收以下 3 项任务" in asked.text
    assert re.findall(r"<li>(\[\d+\] [^<]+)</li>", asked.text) == [
        "[1] 集体备课（三全育人）",
        "[1] 学科评估材料（一流学科）",
        "[3] 学位点申报（一流学科）",
    ]
    done = confirm(web, "/me", asked.text)
    assert "<strong>已签收 3 项。</strong>" in done.text
    with session_scope(engine, readonly=True) as s:
        rows = s.execute(
            select(
                Plan.code,
                Task.code,
                Event.plan_id == Task.plan_id,
                Event.actor,
                Event.channel,
                Link.person_id,
                Link.plan_id == Task.plan_id,
            )
            .join(Task, Task.id == Event.task_id)
            .join(Plan, Plan.id == Task.plan_id)
            .join(Link, Link.id == Event.data["link"].as_integer())
            .where(Event.kind == EventKind.ACKNOWLEDGED)
            .order_by(Plan.code, Task.code)
        ).all()
        signed = set(s.execute(select(Plan.code, Task.code).join(Plan, Plan.id == Task.plan_id).where(Task.acknowledged_at.is_not(None))))
    sqyr, ylxk = row_of(engine, "sqyr"), row_of(engine, "ylxk")
    assert [tuple(r) for r in rows] == [
        ("sqyr", "1", True, "教务处处长", "web", sqyr, True),
        ("ylxk", "1", True, "教务处处长", "web", ylxk, True),
        ("ylxk", "3", True, "教务处处长", "web", ylxk, True),
    ]
    assert signed == {("sqyr", "1"), ("ylxk", "1"), ("ylxk", "3")}
    assert 'id="sign"' not in web.get("/me").text  # nothing waits for 签收 in either plan


def test_either_rows_link_shows_the_gathered_list(web, engine):
    html = web.get(mine_link(engine, "ylxk")).text
    assert "以下是截至 2026-11-30 您在“一流学科”“三全育人”中负责的督办事项" in html  # the link's own plan first
    assert [(code, plan) for code, _, plan in cards(html)] == [("1", "三全育人"), ("3", "一流学科"), ("1", "一流学科")]
    asked = first_post(web, mine_link(engine, "sqyr"))
    assert "请确认签收以下 3 项任务" in asked.text


def test_a_person_without_a_shared_account_sees_their_plan_only(web, engine):
    html = web.get(mine_link(engine, "ylxk", "教务处副处长")).text  # no 工号 in either sheet
    assert "教务处副处长，您好。以下是截至 2026-11-30 由您负责的督办事项。" in html
    assert "引进高层次人才" in html and "建设课程资源库" not in html
    assert 'class="plan-of"' not in html


def test_the_same_staff_no_at_two_schools_is_refused_and_shows_nothing(web, engine, idp, tmp_path):
    other_school(engine, tmp_path)
    idp.cas_user = STAFF_NO
    for next_url in (None, "/dashboard"):
        resp = sign_in(web, "cas", next_url)
        assert resp.status_code == 409
        assert (
            "您的工号（20061234）在多所学校的人员名单中均有登记，系统无法确定您所在的学校。"
            "请联系本校领导小组办公室，由其核对人员表中的工号。"
        ) in resp.text
        assert not any(word in resp.text for word in ("任务", "甲大学", "乙学院", "三全育人", "乙校方案"))
        assert signed_in_person(web, engine) is None
        assert dashboard_access.SESSION_COOKIE not in web.cookies
    with session_scope(engine, readonly=True) as s:
        assert s.scalars(select(PersonSession)).all() == []


def test_a_row_of_another_school_is_never_gathered(web, engine, tmp_path):
    other_school(engine, tmp_path)
    ours = web.get(mine_link(engine, "sqyr")).text
    assert [(code, plan) for code, _, plan in cards(ours)] == [("1", "三全育人"), ("3", "一流学科"), ("1", "一流学科")]
    assert "乙校教学评估" not in ours and "乙校方案" not in ours
    theirs = web.get(mine_link(engine, "b-2026")).text
    assert "以下是截至 2026-11-30 由您负责的督办事项。" in theirs
    assert "乙校教学评估" in theirs and not any(t in theirs for t in ("集体备课", "学科评估材料", "学位点申报"))
    with session_scope(engine, readonly=True) as s:
        b_task = s.scalar(select(Task.id).join(Plan, Plan.id == Task.plan_id).where(Plan.code == "b-2026", Task.code == "1"))
    asked = first_post(web, mine_link(engine, "sqyr"), [str(b_task)])  # another school's task, by its id
    assert asked.status_code == 409
    assert "所选任务均已签收或已不由您负责，无需再签收。" in asked.text


def test_the_dashboard_account_of_either_row_opens_the_dashboard(web, engine, idp):
    with session_scope(engine) as s:
        accounts.create_account(s, "jwc", "Dubanban-2026!", role="leader", plan_code="ylxk", person="教务处处长")
    idp.cas_user = STAFF_NO
    resp = sign_in(web, "cas", "/dashboard")
    assert (resp.status_code, resp.headers["location"]) == (303, "/dashboard")
    assert web.get("/dashboard").status_code == 200


def test_an_account_shared_by_two_people_of_one_plan_gathers_no_one(web, engine):
    """With DUBAN_SSO_MATCH=email the e-mail links rows too, but an office's e-mail shared by two
    people of a plan names neither of them."""
    deputy, minister, ylxk_clerk = (
        row_of(engine, "sqyr", "教务处副处长"),
        row_of(engine, "sqyr", "宣传部部长"),
        row_of(engine, "ylxk", "督办员"),
    )

    def gathered(match: str = "staff_no") -> list[tuple[str, str]]:
        with session_scope(engine, readonly=True) as s:
            return [(r.plan_name, r.name) for r in same_person_rows(s, s.get(Person, deputy), match=match)]

    assert gathered() == [("三全育人", "教务处副处长")]  # no 工号: the e-mail does not count by default
    assert gathered("email") == [("三全育人", "教务处副处长"), ("一流学科", "教务处副处长")]  # jwc2@example.org in both
    with session_scope(engine) as s:
        s.execute(update(Person).where(Person.id == ylxk_clerk).values(email="jwc2@example.org"))
    assert gathered("email") == [("三全育人", "教务处副处长")]  # two in 一流学科: neither
    with session_scope(engine) as s:
        s.execute(update(Person).where(Person.id == ylxk_clerk).values(email="db@example.org"))
        s.execute(update(Person).where(Person.id == minister).values(email="JWC2@example.org"))
    assert gathered("email") == [("三全育人", "教务处副处长")]  # shared in their own plan: names no one
