"""The dashboard's task search (GET /dashboard/search): by code, title, owner, lead department and
state, filters in the address, results linked to the task page, only the viewer's plans."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update

from duban.db import session_scope
from duban.models import Milestone, Task
from duban.vocabulary import MilestoneState
from tests.web.test_dashboard import add_account, assert_private, login, web  # noqa: F401  (the fixture)

pytestmark = pytest.mark.usefixtures("clock")
ROW = re.compile(r'<td><a href="/dashboard/tasks/(\w+)/(\w+)">')


def found(client, query: str) -> tuple[str, list[tuple[str, str]]]:
    page = client.get("/dashboard/search?" + query)
    assert page.status_code == 200 and "no-store" in page.headers["cache-control"]
    return page.text, ROW.findall(page.text)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=1", [("demo", "1")]),  # a code
        ("q=资源库", [("demo", "2")]),  # part of a title
        ("q=宣传部部长", [("demo", "3"), ("demo", "4")]),  # an owner (the department head owns the tasks without one)
        ("department=宣传部", [("demo", "3"), ("demo", "4")]),
        ("person=副处长", [("demo", "2")]),
        ("q=课&department=教务处", [("demo", "1"), ("demo", "2")]),
        ("state=in_progress", [("demo", "2")]),
        ("q=外省", [("other", "9")]),  # an account over every plan searches them all
        ("q=外省&plan=demo", []),
    ],
)
def test_search_by_code_title_owner_department_and_state(web, engine, query, expected):  # noqa: F811
    with session_scope(engine) as s:
        t2 = s.scalar(select(Task.id).where(Task.plan_id == 1, Task.code == "2"))
        s.execute(update(Milestone).where(Milestone.task_id == t2).values(status=MilestoneState.IN_PROGRESS))
    add_account(engine, "all", "office")
    login(web, "all")
    text, rows = found(web, query)
    assert rows == expected
    assert f"搜索结果（共 {len(expected)} 项）" in text
    if not expected:
        assert "没有找到符合条件的任务。请检查任务编号或名称，或减少筛选条件后再试。" in text


def test_filters_stay_in_the_form_and_an_empty_search_explains(web, engine):  # noqa: F811
    add_account(engine, "dby", "office", "demo")
    login(web, "dby")
    text, rows = found(web, "")
    assert rows == [] and "请输入任务编号、任务名称或责任人姓名" in text and "搜索结果" not in text
    text, rows = found(web, "q=备课&state=assigned&department=教务处")
    assert rows == [("demo", "1")]
    assert 'value="备课"' in text and '<option value="assigned" selected>待签收</option>' in text
    assert '<option value="教务处" selected>教务处</option>' in text
    assert 'action="/dashboard/search"' in web.get("/dashboard").text  # the search box on every dashboard page


def test_an_account_of_one_plan_finds_only_its_own(web, engine):  # noqa: F811
    add_account(engine, "ws", "leader", "other")
    login(web, "ws")
    text, rows = found(web, "q=课")
    assert rows == []
    assert_private(text, ["集体备课", "建设课程资源库", "开设选修课", "教务处处长"])
    refused = web.get("/dashboard/search?q=1&plan=demo")
    assert refused.status_code == 403 and "您的账户无权查看该方案。" in refused.text


def test_statistics_accounts_cannot_search(web, engine):  # noqa: F811
    add_account(engine, "tj", "viewer", "demo")
    login(web, "tj")
    page = web.get("/dashboard/search?q=1")
    assert page.status_code == 403 and "只读统计账户" in page.text
    assert 'action="/dashboard/search"' not in web.get("/dashboard").text
