"""The office's desk in a real headless Chromium, on a laptop (1366×900) and a phone (390×844):
open a task from a dashboard row, read its page, then find a task with the search box.
Screenshots are kept in test-artifacts/."""

from __future__ import annotations

import pytest

from tests.servers import screenshot
from tests.web.test_browser import app_env  # noqa: F401  (the fixture)
from tests.web.test_dashboard import PASSWORD, add_account

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clock")]  # the web app reads the clock: pinned


@pytest.mark.parametrize(("width", "height"), [(1366, 900), (390, 844)], ids=["laptop", "phone"])
def test_open_a_task_from_the_dashboard_then_search(app_env, live_server, page, width, height):  # noqa: F811
    add_account(app_env, "dby", "office", "demo", person="督办员")
    page.set_viewport_size({"width": width, "height": height})
    page.goto(live_server + "/dashboard")
    page.fill("#login", "dby")
    page.fill("#password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(live_server + "/dashboard")

    # the overdue list's task code opens the task page
    page.locator("#overdue a", has_text="集体备课").first.click()
    page.wait_for_url(live_server + "/dashboard/tasks/demo/1")
    assert page.locator("h1").inner_text() == "集体备课"
    assert page.locator("#owner").get_by_text("13800000001").is_visible()
    assert page.locator("#roadmap .m-due.late").first.inner_text() == "完成时间 2026-11-20（已逾期）"
    assert "领导小组办公室（导入）" in page.locator("#timeline").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing wider than the screen
    screenshot(page, f"task-page-{width}")

    # the search box in the dashboard's header
    page.fill("#quick-q", "资源库")
    page.locator("form.quick-search button").click()
    page.wait_for_url("**/dashboard/search?q=*")
    assert "搜索结果（共 1 项）" in page.locator("#results h2").inner_text()
    page.locator("#results a", has_text="建设课程资源库").click()
    page.wait_for_url(live_server + "/dashboard/tasks/demo/2")
    assert page.locator("h1").inner_text() == "建设课程资源库"
    screenshot(page, f"task-from-search-{width}")
