"""The dashboard's 任务下达 (announce) page: office accounts see how many tasks await announcement
and announce them (with notices, or 已线下下达); leaders and read-only viewers see none of it."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update

from duban.db import session_scope
from duban.models import Event, Notification, Task
from duban.vocabulary import EventKind, MessageKind
from tests.web.test_dashboard import add_account, assert_private, login, web  # noqa: F401  (the fixture)

pytestmark = pytest.mark.usefixtures("clock", "not_yet_announced")


@pytest.fixture
def not_yet_announced(web, engine):  # noqa: F811
    """The small plan (plan 1) as imported, before anyone announced it (the shared ``web`` fixture
    imports both plans announced, as the other dashboard tests need)."""
    with session_scope(engine) as s:
        s.execute(update(Task).where(Task.plan_id == 1).values(announced_at=None))


TOKEN_RE = re.compile(r'name="csrf" value="([0-9a-f]+)">\s*<input type="hidden" name="plan"')


def state(engine) -> tuple[int, int, list]:
    """(tasks of plan demo announced, ASSIGNMENT items, the TASK_ANNOUNCED events' (actor, channel, notice))."""
    with session_scope(engine) as s:
        marked = len(s.scalars(select(Task.id).where(Task.plan_id == 1, Task.announced_at.is_not(None))).all())
        items = len(s.scalars(select(Notification.id).where(Notification.kind == MessageKind.ASSIGNMENT)).all())
        events = [(e.actor, e.channel, e.data["notice"]) for e in s.scalars(select(Event).where(Event.kind == EventKind.TASK_ANNOUNCED))]
    return marked, items, events


@pytest.mark.parametrize("how", ["notice", "offline"])
def test_office_announces_from_the_dashboard(web, engine, how):  # noqa: F811
    add_account(engine, "dby", "office", "demo", person="督办员")
    login(web, "dby")
    page = web.get("/dashboard")
    assert "测试方案有 4 项任务尚未下达，责任人尚未收到任务书。" in page.text and 'href="/dashboard/announce?plan=demo"' in page.text
    form = web.get("/dashboard/announce?plan=demo")
    assert form.status_code == 200
    assert "<h2>待下达任务（4）</h2>" in form.text and '<td>宣传部部长</td><td class="t">3 开设选修课；4 文明校园创建</td>' in form.text
    token = TOKEN_RE.search(form.text).group(1)
    done = web.post("/dashboard/announce", data={"csrf": token, "plan": "demo", "how": how})
    assert done.status_code == 303 and "no-store" in done.headers["cache-control"]
    shown = web.get(done.headers["location"])
    if how == "notice":
        assert "已下达 4 项任务，已向 3 位责任人各发出一份下达通知（含任务书、时间表和办理链接）。" in shown.text
        assert state(engine) == (4, 4, [("督办员", "web", True)] * 4)
    else:
        assert "已将 4 项任务记为线下下达（涉及责任人 3 位），未发送通知。" in shown.text
        assert state(engine) == (4, 0, [("督办员", "web", False)] * 4)
    assert "本方案的任务均已下达（共 4 项）" in shown.text
    assert "尚未下达" not in web.get("/dashboard").text
    again = web.post("/dashboard/announce", data={"csrf": token, "plan": "demo", "how": how})
    assert "没有需要下达的任务（可能已由他人下达）。" in web.get(again.headers["location"]).text
    assert state(engine)[0] == 4 and len(state(engine)[2]) == 4


def test_an_expired_form_announces_nothing(web, engine):  # noqa: F811
    add_account(engine, "dby", "office", "demo")
    login(web, "dby")
    page = web.post("/dashboard/announce", data={"csrf": "0" * 40, "plan": "demo", "how": "notice"})
    assert page.status_code == 403 and "页面已过期，为保护您的账户安全，本次下达未被受理。" in page.text
    assert state(engine) == (0, 0, [])


@pytest.mark.parametrize("role", ["leader", "viewer"])
def test_leaders_and_viewers_see_no_announce_button_and_cannot_post(web, engine, role):  # noqa: F811
    add_account(engine, "someone", role, "demo")
    login(web, "someone")
    assert "任务下达" not in web.get("/dashboard").text
    page = web.get("/dashboard/announce?plan=demo")
    assert page.status_code == 403 and "只有领导小组办公室的账户可以下达任务。" in page.text
    assert_private(page.text)
    posted = web.post("/dashboard/announce", data={"csrf": "x", "plan": "demo", "how": "notice"})
    assert posted.status_code == 403 and state(engine) == (0, 0, [])


def test_an_office_account_of_another_plan_cannot_announce_this_one(web, engine):  # noqa: F811
    add_account(engine, "other", "office", "other")
    login(web, "other")
    page = web.get("/dashboard/announce?plan=demo")
    assert page.status_code == 404 and "没有找到该方案，或您的账户无权在该方案中下达任务。" in page.text
    assert "测试方案" not in web.get("/dashboard").text


def test_nobody_signed_in_is_sent_to_login(web):  # noqa: F811
    assert web.get("/dashboard/announce?plan=demo").status_code == 303
    assert web.post("/dashboard/announce", data={"plan": "demo"}).status_code == 303
