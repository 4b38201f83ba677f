"""A leader on a phone (390 × 844, zh-CN) in headless Chromium: the dashboard and the HTML report
read without sideways scrolling, the red items come before the figures, chart text is at least
12 px as shown.  Screenshots are kept in test-artifacts/.  Slow (a real browser), like
tests/web/test_browser.py, whose fixtures it reuses."""

from __future__ import annotations

import pytest

from duban import accounts
from duban.db import session_scope
from duban.report import write_report
from duban.settings import get_settings
from tests.conftest import PINNED_DAY
from tests.rollup.test_rollup import TZ, build_scenario, compute
from tests.servers import screenshot
from tests.web_helpers import SECRET

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clock")]
PHONE = {"width": 390, "height": 844}
PASSWORD = "Dubanban-2026!"

# the smallest chart text as shown: its font size times the chart's scale (shown width ÷ viewBox width)
SMALLEST_CHART_TEXT = """() => Math.min(...[...document.querySelectorAll('svg.chart')].flatMap(svg => {
  const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
  return [...svg.querySelectorAll('text')].map(t => parseFloat(getComputedStyle(t).fontSize) * scale);
}))"""
WIDEST = """(selector) => Math.max(0, ...[...document.querySelectorAll(selector)].map(e => e.getBoundingClientRect().right))"""


def assert_fits_a_phone(page, selectors: list[str]) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for selector in selectors:
        assert page.locator(selector).count(), selector
        assert page.evaluate(WIDEST, selector) <= PHONE["width"], selector
    assert page.evaluate(SMALLEST_CHART_TEXT) >= 12


def top(page, selector: str) -> float:
    return page.locator(selector).first.bounding_box()["y"]


def test_a_leader_reads_the_dashboard_and_the_report_on_a_phone(use_database, engine, tmp_path, monkeypatch, live_server, page):
    monkeypatch.setenv("DUBAN_SECRET_KEY", SECRET)
    get_settings.cache_clear()
    build_scenario(engine, tmp_path)
    with session_scope(engine) as s:
        accounts.create_account(s, "leader", PASSWORD, role="leader", plan_code="rollup")
    page.set_viewport_size(PHONE)

    page.goto(live_server + "/login")
    page.fill("input[name=login]", "leader")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")
    assert page.locator("#red h2").inner_text() == "需要关注：逾期事项（2 项）"
    assert page.locator(".red-card .rc-title").first.inner_text() == "5 编写校本教材"
    assert top(page, "#red") < top(page, ".kpis") < top(page, ".card.charts")
    assert_fits_a_phone(page, ["main", "#red", ".kpis", ".card.charts", "table.grid", "#by_department"])
    assert page.locator("#calendar-notes").count() == 0  # the calendar notice is the office's
    taps = page.evaluate(
        "() => [...document.querySelectorAll('main a, main button, main summary')].filter(e => e.offsetParent)"
        ".map(e => e.getBoundingClientRect().height)"
    )
    assert taps and min(taps) >= 32
    screenshot(page, "leader-dashboard-390")

    files = write_report(compute(engine, as_of=PINNED_DAY, plan_code="rollup"), tmp_path / "out", tz=TZ)
    page.goto(files.html.resolve().as_uri())
    assert top(page, "#red") < top(page, ".figures") < top(page, "#charts")
    assert_fits_a_phone(page, ["main", "#red", ".figures", "#charts", "table[data-view=by_department]", "table[data-view=overdue]"])
    row = page.locator("table[data-view=by_department] tr").nth(1)
    assert row.locator("td").first.evaluate("e => getComputedStyle(e, '::before').content") == '"牵头单位"'
    screenshot(page, "report-390")


def test_the_province_reads_every_school_on_a_phone(use_database, engine, tmp_path, monkeypatch, live_server, page):
    from tests.rollup.province_schools import build_schools

    monkeypatch.setenv("DUBAN_SECRET_KEY", SECRET)
    get_settings.cache_clear()
    build_schools(engine, tmp_path)
    with session_scope(engine) as s:
        accounts.create_account(s, "province", PASSWORD, role="office", province=True)
    page.set_viewport_size(PHONE)

    page.goto(live_server + "/login")
    page.fill("input[name=login]", "province")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/province")
    assert page.locator("#institutions h2").inner_text() == "各单位督办情况（4）"
    assert_fits_a_phone(page, ["main", ".kpis", "#institutions", "table.grid"])
    first = page.locator("#institutions tbody tr").first.locator("td").first
    assert first.evaluate("e => getComputedStyle(e, '::before').content") == '"排名"'
    screenshot(page, "province-390")
    page.click("text=甲大学")
    page.wait_for_url("**/dashboard?institution=a")
    assert page.locator(".province-banner").inner_text().startswith("省级只读查看：甲大学")
    assert page.locator("main form[method=post]").count() == 0
    assert_fits_a_phone(page, ["main", ".province-banner", ".kpis"])
