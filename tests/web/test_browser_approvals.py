"""The office's batch decisions and verdicts in a real headless Chromium at a desk (1366×900):
five requests approved at once (one extension to another date than asked), then a review judged
and closed with the explicit 完成评定并报送 step.  Screenshots are kept in test-artifacts/."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from duban.db import session_scope
from duban.models import Person, Request, Review, ReviewItem, Task, utcnow
from duban.reviews import api as reviews
from duban.settings import get_settings
from duban.vocabulary import RequestKind
from tests.conftest import PINNED_DAY
from tests.servers import browser_page, screenshot
from tests.web.test_browser import app_env  # noqa: F401  (the fixture)
from tests.web.test_dashboard import PASSWORD, add_account
from tests.web.test_dashboard_approvals import ask, due_of

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clock")]  # the web app reads the clock: pinned
DESK = {"width": 1366, "height": 900}


@pytest.fixture
def desk(chromium, request):
    """A fresh browser context and page at a desk's screen size."""
    with browser_page(chromium, request, DESK) as pg:
        yield pg


def answered_review(engine) -> int:
    """A review of tasks 1 and 2, both owners answered, waiting for verdicts."""
    reports = get_settings().data_dir / "reports"
    rid = reviews.start(
        engine,
        plan_code="demo",
        scope_kind="tasks",
        scope_values=["1", "2"],
        reply_by=PINNED_DAY + dt.timedelta(days=7),
        ask="请报告推进情况。",
        today=PINNED_DAY,
        started_by="督办员",
        reports_dir=reports,
    ).review_id
    with session_scope(engine) as s:
        for item in s.scalars(select(ReviewItem).where(ReviewItem.review_id == rid)):
            reviews.record_answer(
                s,
                item,
                person=s.get(Person, item.owner_id),
                done="已组织集体备课 4 次",
                problems="",
                next_steps="继续推进",
                urls=["https://example.org/beike"],
                files=[],
                now=utcnow(),
                today=PINNED_DAY,
            )
    reviews.advance(engine, rid, today=PINNED_DAY, reports_dir=reports)
    return rid


def test_batch_approval_and_verdicts_with_the_final_step(app_env, live_server, desk):  # noqa: F811
    engine = app_env
    add_account(engine, "dby", "office", "demo", person="督办员")
    due = due_of(engine, "1")
    asked = [ask(engine, "1", RequestKind.COMPLETION, seq=2), ask(engine, "1", RequestKind.COMPLETION, seq=3)]
    asked.append(ask(engine, "2", RequestKind.COMPLETION))
    ext = ask(engine, "1", RequestKind.EXTENSION, to=due + dt.timedelta(days=30))
    asked.append(ask(engine, "1", RequestKind.EXTENSION, to=due + dt.timedelta(days=40)))  # asked again later: approved as asked
    page = desk
    page.goto(f"{live_server}/login?next=/dashboard/approvals")
    page.fill("#login", "dby")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_selector("#pending")
    assert page.locator("#pending h2").inner_text() == "待审核申请（5）"

    # tick all five; the extension to 20 days instead of the 30 asked
    for rid in [*asked, ext]:
        page.check(f'input[name="pick"][value="{rid}"]')
    approved_to = (due + dt.timedelta(days=20)).isoformat()
    page.fill(f"#due-{ext}", approved_to)
    screenshot(page, "1-five-ticked")
    page.get_by_role("button", name="批准所选").click()
    page.wait_for_selector("text=请确认：批准 5 项申请")
    assert f"批准延期，完成时间调整为 {approved_to}（原定 {due.isoformat()}）" in page.inner_text("main")
    screenshot(page, "2-confirm")
    with session_scope(engine) as s:
        assert {r.status for r in s.scalars(select(Request))} == {"pending"}  # the confirmation changed nothing
    page.get_by_role("button", name="确认批准").click()
    page.wait_for_selector(".alert.success")
    assert "已批准 5 项，已退回 0 项" in page.inner_text(".alert.success")
    screenshot(page, "3-done")
    with session_scope(engine) as s:
        assert {r.status for r in s.scalars(select(Request))} == {"approved"}
    assert due_of(engine, "1") == due + dt.timedelta(days=40)  # 20 days approved first, then the later request as asked

    # verdicts: the selects start empty; saved; then the explicit final step
    rid = answered_review(engine)
    page.goto(f"{live_server}/dashboard/reviews/{rid}")
    assert page.locator("#verdict-1").input_value() == "" and page.locator("#verdict-2").input_value() == ""
    page.select_option("#verdict-1", "达标")
    page.select_option("#verdict-2", "基本达标")
    page.fill("#note-2", "佐证材料待补充")
    screenshot(page, "4-verdicts")
    page.get_by_role("button", name="保存评定").click()
    page.wait_for_selector("text=评定已保存（2 项）")
    with session_scope(engine) as s:
        assert s.get(Review, rid).status == "waiting_verdicts"  # saving the last verdict closes nothing
    page.get_by_role("button", name="完成评定并报送…").click()
    page.wait_for_selector("#summary")
    assert "达标：1 项" in page.inner_text("#summary") and "基本达标：1 项" in page.inner_text("#summary")
    screenshot(page, "5-close-summary")
    page.get_by_role("button", name="确认完成评定并报送").click()
    page.wait_for_selector("text=已完成评定，督查报告已生成并报送")
    screenshot(page, "6-closed")
    with session_scope(engine) as s:
        review = s.get(Review, rid)
        assert review.status == "closed" and review.report_html
        assert s.scalar(select(Task.code).join(ReviewItem, ReviewItem.task_id == Task.id).where(ReviewItem.verdict == "基本达标")) == "2"
