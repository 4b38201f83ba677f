"""The office's dashboard lists the messages that did not go out (通知发送异常): failed ones with
reason and next retry, interrupted ones; never a sent one or one being sent now. Only the office."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PINNED
from tests.sweep.test_delivery_problems import PAUSED, REASON, add_digests
from tests.web.test_dashboard import add_account, login
from tests.web_helpers import small_plan_app

pytestmark = pytest.mark.usefixtures("clock")  # the web app reads the clock: pinned (tests/conftest.py)


@pytest.fixture
def web(use_database, engine, tmp_path, monkeypatch):
    with small_plan_app(engine, tmp_path, monkeypatch, follow_redirects=False) as client:
        yield client


def section(html: str) -> str | None:
    m = re.search(r'<section class="card" id="delivery_problems">(.*?)</section>', html, re.S)
    return m.group(1) if m else None


def rows(html: str) -> list[list[str]]:
    return [re.findall(r"<td[^>]*>([^<]*)</td>", tr) for tr in re.findall(r"<tr>(.*?)</tr>", html, re.S) if "<td" in tr]


def test_the_office_sees_failed_and_interrupted_messages(web, engine):
    add_digests(engine, PINNED)
    add_account(engine, "bangong")
    assert login(web, "bangong").status_code == 303
    part = section(web.get("/dashboard").text)
    assert part is not None
    assert "<h2>通知发送异常（3）</h2>" in part
    assert "<th>收件人</th><th>日期</th><th>状态</th><th>尝试次数</th><th>原因</th><th>下次重试</th>" in part
    assert rows(part) == [
        ["分管教学副校长", "2026-11-30", "暂缓发送", "0", PAUSED, "2026-11-30 10:05"],
        ["宣传部部长", "2026-11-30", "发送中断", "1", "发送中断，将自动重发", "下次发送时"],
        ["教务处处长", "2026-11-30", "发送失败", "2", REASON, "2026-11-30 11:00"],
    ]
    assert "教务处副处长" not in part and "党委书记" not in part  # sent, and being sent now


def test_nothing_wrong_says_so(web, engine):
    add_account(engine, "bangong")
    login(web, "bangong")
    part = section(web.get("/dashboard").text)
    assert part is not None
    assert "<h2>通知发送异常（0）</h2>" in part and "目前没有发送失败或中断的通知。" in part


def test_a_leader_does_not_see_the_section(web, engine):
    add_digests(engine, PINNED)
    add_account(engine, "lingdao", role="leader")
    login(web, "lingdao")
    page = web.get("/dashboard")
    assert page.status_code == 200 and section(page.text) is None and "邮件服务器拒收" not in page.text
