"""我的督办 in a real headless Chromium at a phone viewport (390×844, zh-CN), against the live app:
the owner opens their page from the link in a real message (the outbox), signs seven tasks at
once (批量签收, with its confirmation step), then opens one task's page.  Nothing on the page is
wider than the phone.  Screenshots are kept in test-artifacts/."""

from __future__ import annotations

import pytest

from duban.settings import get_settings
from tests.servers import PHONE_VIEWPORT, screenshot
from tests.web.mine_plan import OPEN_ORDER, OWNER, import_mine
from tests.web.test_browser import daily_sweep_messages, link_in, outbox_message
from tests.web_helpers import SECRET

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clock")]  # the web app reads the clock: pinned

# every element whose right edge passes the viewport (a page that scrolls sideways on a phone)
TOO_WIDE = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .map(e => e.tagName + '.' + e.className)"""


@pytest.fixture
def mine_env(use_database, engine, tmp_path, monkeypatch):
    monkeypatch.setenv("DUBAN_SECRET_KEY", SECRET)
    monkeypatch.setenv("DUBAN_WEB_SEND_DELAY", "0.1")
    monkeypatch.setenv("DUBAN_SEND_HOURS", "always")
    get_settings.cache_clear()
    import_mine(engine, tmp_path)
    return engine


def fits(page) -> None:
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE_VIEWPORT["width"]
    assert page.evaluate(TOO_WIDE) == []


def test_owner_signs_seven_tasks_from_their_page(mine_env, live_server, page):
    daily_sweep_messages(mine_env)
    message = outbox_message(OWNER)
    mine_url = link_in(message, "查看我的全部督办事项")
    assert mine_url.startswith(live_server + "/me/")
    assert message.index("查看我的全部督办事项") < message.index("\n【")  # near the top, before the first group

    # 1. the page from the message: the list in order, the counts, the 批量签收 form
    page.goto(mine_url)
    assert page.title() == "我的督办 · 督办系统"
    assert "在办 8 项，其中已逾期 2 项，待签收 7 项，即将到期 1 项，待反馈 1 项，待审核 1 项。" in page.inner_text(".summary")
    codes = [t.split(" ·")[0].removeprefix("任务 ") for t in page.locator("ol.mine p.code").all_inner_texts()]
    assert codes == OPEN_ORDER
    assert page.locator("#sign input[type=checkbox]:checked").count() == 7
    assert not page.locator("details.finished ul").is_visible()  # finished tasks folded
    fits(page)
    screenshot(page, "1-my-page")

    # 2. 批量签收: the first press only asks to confirm
    page.get_by_role("button", name="签收所选任务").click()
    assert page.locator("h1").inner_text() == "请确认签收以下 7 项任务"
    fits(page)
    screenshot(page, "2-confirm")
    page.get_by_role("button", name="确认签收 7 项").click()
    page.wait_for_selector(".alert.success")
    assert page.inner_text(".alert.success").startswith("已签收 7 项。")
    assert page.locator("ol.confirm-list li").count() == 7
    fits(page)
    screenshot(page, "3-signed")

    # 3. back on the page: nothing waits for 签收; one task's page from its title
    page.get_by_role("link", name="← 返回我的督办").click()
    assert page.locator("#sign").count() == 0
    assert "待签收" not in page.inner_text(".summary")
    page.locator("details.finished summary").click()
    assert page.locator("details.finished ul").is_visible()
    screenshot(page, "4-my-page-after")
    page.get_by_role("link", name="修订人才培养方案").first.click()
    assert page.title() == "任务详情：修订人才培养方案 · 督办系统"
    assert "已于" in page.locator("dl.facts").inner_text()  # 签收: 已于 … 签收
    fits(page)
    screenshot(page, "5-task-page")
