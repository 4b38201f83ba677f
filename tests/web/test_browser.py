"""The owner's and the coordinator's pages in a real headless Chromium (phone viewport, zh-CN),
against the live app: open a link from a real message, submit done with evidence, the
coordinator approves from their own message, the owner sees the status change.  Screenshots
are kept in test-artifacts/."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest

from duban.settings import get_settings
from duban.sweep.decisions import decide
from duban.sweep.delivery import deliver
from duban.sweep.digests import assemble
from tests.conftest import PINNED, PINNED_DAY
from tests.servers import screenshot
from tests.web_helpers import PDF, SECRET, import_small, milestone, milestone_id, requests

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clock")]  # the web app reads the clock: pinned


@pytest.fixture
def app_env(use_database, engine, tmp_path, monkeypatch):
    monkeypatch.setenv("DUBAN_SECRET_KEY", SECRET)
    monkeypatch.setenv("DUBAN_WEB_SEND_DELAY", "0.1")
    monkeypatch.setenv("DUBAN_SEND_HOURS", "always")
    get_settings.cache_clear()
    import_small(engine, tmp_path)
    return engine


def outbox_message(name: str, *, after: set | None = None, timeout: float = 20) -> str:
    """The newest outbox file of ``name`` (not among ``after``), waiting for it to arrive."""
    folder = get_settings().outbox_path
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted(p for p in folder.rglob(f"*-{name}.txt") if p not in (after or set()))
        if files:
            return files[-1].read_text(encoding="utf-8")
        time.sleep(0.1)
    raise AssertionError(f"no message for {name} within {timeout} s")


def link_in(message: str, label: str, *, item: str | None = None) -> str:
    """The URL labelled ``label`` in a plain-text message (within the item mentioning ``item``)."""
    text = message if item is None else message[message.index(item) :]
    m = re.search(rf"^\s*{label}：(http\S+)$", text, re.M)
    assert m, f"no {label} link in:\n{message}"
    return m.group(1)


def daily_sweep_messages(engine) -> None:
    """Today's reminders, as the daily sweep sends them (to the local outbox)."""
    from duban.runtime import runtime
    from notifications.outbox import OutboxChannel

    rt = runtime()
    today = rt.today()
    decide(engine, today=today, cal=rt.calendar, tz=rt.tz)
    assemble(engine, today=today, links=rt.links(today))
    deliver(engine, OutboxChannel(rt.settings.outbox_path), now=dt.datetime.now(dt.UTC), links=rt.links(today))


def office_batch_time(clock) -> None:
    """Past the office's next batch time (15:00: the clock is pinned at 10:00), a delivery run sends
    the approval requests held for it (``policy.office_batch_times``)."""
    from duban.runtime import runtime
    from duban.sweep.sending import deliver_due

    clock.move_to(PINNED.replace(hour=15, minute=1))
    deliver_due(runtime())


def test_owner_submits_done_and_coordinator_approves(app_env, live_server, page, tmp_path, clock):
    engine = app_env
    daily_sweep_messages(engine)
    message = outbox_message("教务处处长")
    # one entry per task: its asks under it, each link once
    assert "1. [1] 集体备课\n   · 第 1 步「制定方案」完成时间 2026-11-20，已逾期 6 个工作日" in message, message
    done_url = link_in(message, "提交办结", item="[1] 集体备课")
    assert done_url.startswith(live_server + "/l/")

    # 1. the owner opens the link from the message: the page shows the task, nothing changes
    page.goto(done_url)
    assert page.title() == "提交办结：集体备课 · 督办系统"
    assert page.get_by_text("完成标志：").is_visible()
    assert page.locator(".m-title").all_inner_texts() == ["制定方案", "中期检查", "全部完成（达到完成标志）"]
    screenshot(page, "1-owner-opens-done-link")
    assert milestone(engine, milestone_id(engine, "1", 1)).status == "assigned"

    # 2. submit done with a note, a URL and a file
    evidence = tmp_path / "实施方案.pdf"
    evidence.write_bytes(PDF)
    page.fill("#note", "实施方案已经党委会审议通过并印发。")
    page.fill("#urls", "https://jwc.example.edu.cn/notice/2026-11")
    page.set_input_files("#files", str(evidence))
    screenshot(page, "2-owner-fills-the-form")
    page.get_by_role("button", name="提交办结").click()
    page.wait_for_selector(".alert.success")
    assert "已提交办结，等待领导小组办公室审核。" in page.inner_text(".alert.success")
    assert page.locator(".state.s-submitted").first.inner_text() == "待审核"
    screenshot(page, "3-owner-submitted")
    [req] = requests(engine)
    assert req.status == "pending"

    # 3. the coordinator's message comes with the office's next batch, with a review link
    assert not list(get_settings().outbox_path.rglob("*-督办员.txt"))  # held until the batch time
    office_batch_time(clock)
    coordinator = outbox_message("督办员")
    assert "责任人 教务处处长（教务处） 已提交办结，办结说明：实施方案已经党委会审议通过并印发。请审核佐证材料后办结或退回" in coordinator
    page.goto(link_in(coordinator, "审核"))
    assert page.get_by_text("请审核以下办结申请。").is_visible()
    assert page.get_by_role("link", name="实施方案.pdf").first.is_visible()
    screenshot(page, "4-coordinator-reviews")
    seen = set(get_settings().outbox_path.rglob("*-教务处处长.txt"))
    page.get_by_role("button", name="审核通过（办结）").click()
    page.wait_for_selector(".alert.success")
    assert "已审核通过，里程碑「制定方案」办结。" in page.inner_text(".alert.success")
    screenshot(page, "5-coordinator-approved")
    assert milestone(engine, req.milestone_id).status == "done"

    # 4. the owner is told, and their view link shows the step done
    owner_msg = outbox_message("教务处处长", after=seen)
    assert "您提交的办结已由督办员审核通过，该事项已办结。" in owner_msg
    page.goto(link_in(owner_msg, "查看任务"))
    first = page.locator("ol.milestones li").first
    assert first.locator(".state").inner_text() == "已办结"
    assert "审核通过（办结）" in page.locator("ol.history").inner_text()
    screenshot(page, "6-owner-sees-done")


def test_coordinator_returns_and_owner_reads_the_reason(app_env, live_server, page, clock):
    from tests.web_helpers import make_link

    engine = app_env
    page.goto(f"{live_server}/l/{make_link(engine, '教务处处长', 'done', '1', milestone=milestone_id(engine, '1', 1))}")
    page.fill("#note", "已完成")
    page.get_by_role("button", name="提交办结").click()
    page.wait_for_selector(".alert.success")
    office_batch_time(clock)
    page.goto(link_in(outbox_message("督办员"), "待审核事项"))
    assert page.locator("h1").inner_text() == "待审核事项（1 项）"
    screenshot(page, "1-queue")
    page.locator("ol.queue a").first.click()
    page.get_by_role("button", name="退回").click()  # without a reason: the page asks for one
    assert page.inner_text(".alert.error") == "请填写退回原因。"
    page.fill("#note", "请补充印发文件扫描件")
    seen = set(get_settings().outbox_path.rglob("*-教务处处长.txt"))
    page.get_by_role("button", name="退回").click()
    page.wait_for_selector(".alert.success")
    screenshot(page, "2-returned")
    owner_msg = outbox_message("教务处处长", after=seen)
    assert "退回原因：请补充印发文件扫描件" in owner_msg
    page.goto(link_in(owner_msg, "提交办结"))
    assert "退回原因：请补充印发文件扫描件" in page.locator("ol.history").inner_text()
    assert page.locator("ol.milestones li").first.locator(".state").inner_text() == "办理中"
    screenshot(page, "3-owner-reads-reason")


def test_expired_link_page_offers_a_fresh_link(app_env, live_server, page):
    from tests.web_helpers import make_link

    tok = make_link(app_env, "教务处处长", "progress", "1", expires=PINNED_DAY - dt.timedelta(days=2))
    page.goto(f"{live_server}/l/{tok}")
    assert page.locator("h1").inner_text() == "链接已过期"
    screenshot(page, "1-expired")
    page.get_by_role("button", name="给我发送新链接").click()
    assert "新的「反馈进展」链接将通过消息发送给教务处处长" in page.inner_text("main")
    fresh = link_in(outbox_message("教务处处长"), "反馈进展")
    page.goto(fresh)
    assert page.locator("#text").is_visible()
    screenshot(page, "2-fresh-link")
