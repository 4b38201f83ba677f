"""The province's page (省级汇总) and its read-only drill-in into one school, on four institutions
with a known history (tests/rollup/province_schools.py), looked at on Monday 2026-11-23:
what a province account sees, that a school's dashboard opened from it shows that school only and
offers nothing to do, and that a school's account is refused the province's page."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
import time_machine
from fastapi.testclient import TestClient

from duban import accounts
from duban.db import session_scope
from tests.rollup.province_schools import build_schools
from tests.web.test_dashboard import PASSWORD, login
from tests.web_helpers import web_env

LOOKED_AT = dt.datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
CELL = re.compile(r'<td data-label="([^"]+)"[^>]*>(?:<a href="[^"]*">)?([^<]*)')


@pytest.fixture
def web(use_database, engine, tmp_path, monkeypatch):
    web_env(monkeypatch)
    build_schools(engine, tmp_path)
    with session_scope(engine) as s:
        accounts.create_account(s, "province", PASSWORD, role="office", province=True)
        accounts.create_account(s, "a-office", PASSWORD, role="office", institution="a")
    from duban.web.app import create_app

    with (
        time_machine.travel(LOOKED_AT, tick=True),
        TestClient(create_app(), raise_server_exceptions=True, follow_redirects=False) as client,
    ):
        yield client


def table_rows(html: str) -> list[dict[str, str]]:
    """The rows of the page's first table, as label → text."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [dict(CELL.findall(tr)) for tr in body.split("</tr>")[:-1]]


def test_the_province_lands_on_every_school_ranked(web):
    assert login(web, "province").headers["location"] == "/dashboard"
    landing = web.get("/dashboard")
    assert (landing.status_code, landing.headers["location"]) == (303, "/dashboard/province")
    page = web.get("/dashboard/province")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store, private"
    rows = table_rows(page.text)
    assert [(r["排名"], r["名次变化"], r["学校（单位）"], r["方案数"], r["任务总数"]) for r in rows] == [
        ("1", "↑1", "乙学院", "1", "5"),
        ("2", "↓1", "甲大学", "2", "10"),
        ("3", "新上榜", "丙学院", "1", "1"),
        ("暂无到期事项", "", "丁学院", "0", "0"),
    ]
    assert [(r["节点完成率"], r["按期完成率"], r["红灯"], r["黄灯"], r["绿灯"], r["逾期任务"]) for r in rows] == [
        ("71.4%", "100.0%", "0", "1", "1", "0"),
        ("21.4%", "20.0%", "6", "2", "0", "6"),
        ("0.0%", "0.0%", "1", "0", "0", "1"),
        ("—", "—", "0", "0", "0", "0"),
    ]
    assert '<a href="/dashboard?institution=b">乙学院</a>' in page.text
    assert "名次变化：与 2026-11-16 的统计快照相比。" in page.text
    assert page.text.count('method="post"') == 1  # signing out, nothing else
    assert "批量审核" not in page.text
    by_red = table_rows(web.get("/dashboard/province?sort=red").text)
    assert [r["学校（单位）"] for r in by_red] == ["甲大学", "丙学院", "乙学院", "丁学院"]


def test_the_json_twin_has_the_same_rows(web):
    login(web, "province")
    data = web.get("/dashboard/province.json").json()
    assert (data["ok"], data["schema"], data["view"], data["as_of"], data["compared_with"]) == (
        True,
        "duban.dashboard/1",
        "institutions",
        "2026-11-23",
        "2026-11-16",
    )
    assert [(x["institution"], x["rank"], x["change"], x["red"]) for x in data["institutions"]] == [
        ("b", 1, "↑1", 0),
        ("a", 2, "↓1", 6),
        ("c", 3, "新上榜", 1),
        ("d", None, "", 0),
    ]
    assert data["totals"]["institutions"] == 4 and data["totals"]["tasks"] == 16


def test_the_drill_in_shows_that_school_only_and_offers_nothing_to_do(web):
    login(web, "province")
    page = web.get("/dashboard?institution=a")
    assert page.status_code == 200
    assert "省级只读查看：甲大学" in page.text
    assert 'href="/dashboard?institution=a" class="on">全部方案' in page.text
    assert "b-1" not in page.text and "c-1" not in page.text and "a-1" in page.text and "a-2" in page.text
    assert page.text.count('method="post"') == 1  # signing out: no 印发督办单, no 任务下达
    assert "印发督办单" not in page.text and "任务下达" not in page.text
    views = web.get("/dashboard.json?institution=a").json()["views"]
    assert [x["plan"] for x in views["by_plan"]] == ["a-1", "a-2"]
    assert sorted({x["plan"] for x in views["overdue"]}) == ["a-1", "a-2"]
    assert len(views["overdue"]) == 7
    # a plan of another school: that school's banner
    other = web.get("/dashboard?plan=b-1")
    assert other.status_code == 200 and "省级只读查看：乙学院" in other.text and "a-1" not in other.text
    # the task page reads, and offers no form either
    task = web.get("/dashboard/tasks/a-1/3")
    assert task.status_code == 200 and "开设选修课" in task.text and task.text.count('method="post"') == 1
    missing = web.get("/dashboard?institution=zz")
    assert missing.status_code == 404 and "没有找到该单位" in missing.text


def test_a_school_account_is_refused_the_province_and_other_schools(web):
    login(web, "a-office")
    for url in ("/dashboard/province", "/dashboard/province?sort=red", "/dashboard?institution=b", "/dashboard?institution=zz"):
        page = web.get(url)
        assert page.status_code == 403, url
        assert "无权查看" in page.text and "乙学院" not in page.text and "丙学院" not in page.text, url
    assert "各单位汇总仅供省级主管部门的账户查看" in web.get("/dashboard/province").text
    refused = web.get("/dashboard/province.json")
    assert refused.status_code == 403 and refused.json() == {
        "ok": False,
        "error": "各单位汇总仅供省级主管部门的账户查看。如需了解其他单位的情况，请联系省级主管部门。",
    }
    assert web.get("/dashboard.json?institution=b").status_code == 403
    own = web.get("/dashboard?institution=a")
    assert own.status_code == 200 and "省级只读查看" not in own.text and "a-2" in own.text and "b-1" not in own.text


def test_nobody_signed_in_sees_nothing(web):
    assert web.get("/dashboard/province").headers["location"] == "/login?next=%2Fdashboard%2Fprovince"
    assert web.get("/dashboard/province.json").status_code == 401
