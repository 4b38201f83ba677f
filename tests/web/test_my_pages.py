"""我的督办 through HTTP (TestClient) on SQLite and PostgreSQL: the person's list and its order
for a literal plan (tests/web/mine_plan.py), the counts, the buttons, refusals, another person's
link, and 批量签收 with its confirmation step (double submit, signed meanwhile, a GET never acts);
``/me`` with and without a sign-in session; the ``accept=`` list of file inputs."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from duban import person_sessions
from duban.db import session_scope
from duban.filecheck import ALLOWED, accept_attribute
from duban.models import Event, Link, Person, PersonSession, Task
from duban.settings import get_settings
from duban.vocabulary import EventKind, LinkAction
from tests.conftest import PINNED
from tests.web.mine_plan import EXTENDED_TO, OPEN_ORDER, OWNER, WAITING, import_mine, mine_token
from tests.web_helpers import SECRET, csrf_of, make_link, snapshot

pytestmark = pytest.mark.usefixtures("clock")  # the web app reads the clock: pinned (tests/conftest.py)

CODE = re.compile(r'<p class="code">任务 (\d+) · <span class="state [^"]*">([^<]+)</span>')
ASKS = re.compile(r'<p class="code">任务 (\d+) ·.*?(?:<p class="asks">(.*?)</p>|<p class="m-due)', re.S)


@pytest.fixture
def web(use_database, engine, tmp_path, monkeypatch):
    from duban.web.app import create_app

    monkeypatch.setenv("DUBAN_SECRET_KEY", SECRET)
    monkeypatch.setenv("DUBAN_WEB_SEND_NOW", "0")
    monkeypatch.setenv("DUBAN_BASE_URL", "http://testserver")
    get_settings.cache_clear()
    import_mine(engine, tmp_path)
    with TestClient(create_app(), raise_server_exceptions=True) as client:
        yield client


def codes_and_states(html: str) -> list[tuple[str, str]]:
    return CODE.findall(html.split('<details class="card finished">')[0])


def asks_of(html: str) -> dict[str, list[str]]:
    return {code: re.findall(r'<span class="ask[^"]*">([^<]+)</span>', asks or "") for code, asks in ASKS.findall(html)}


def acknowledged(engine) -> dict[str, bool]:
    with session_scope(engine) as s:
        return {code: at is not None for code, at in s.execute(select(Task.code, Task.acknowledged_at))}


def without_links(snap: dict) -> dict:
    """A snapshot with the link rows' use kept and their number left out (a page issues the
    person's links; it never uses one)."""
    return {**snap, "links": [(used, void) for _, used, void in snap["links"] if used or void]}


# -- the list ---------------------------------------------------------------------------------------


def test_the_list_order_states_asks_dates_and_counts(web, engine):
    resp = web.get(f"/me/{mine_token(engine)}")
    assert resp.status_code == 200
    html = resp.text
    assert "<title>我的督办 · 督办系统</title>" in html
    assert "教务处处长，您好。以下是截至 2026-11-30 由您负责的督办事项。" in html
    assert "在办 <strong>8</strong> 项，其中已逾期 2 项，待签收 7 项，即将到期 1 项，待反馈 1 项，待审核 1 项。" in html
    assert codes_and_states(html) == [(code, "待审核" if code == "9" else "待签收") for code in OPEN_ORDER]
    assert asks_of(html) == {
        "5": ["待签收", "已逾期 14 个工作日"],
        "1": ["待签收", "已逾期 6 个工作日"],
        "8": ["待签收", "待反馈"],
        "6": ["待签收", "即将到期"],
        "10": ["待签收"],
        "7": ["待签收"],
        "12": ["待签收"],
        "9": ["待审核"],
    }
    assert '<p class="m-due late">制定方案，完成时间 2026-11-20</p>' in html
    assert '<p class="m-due">反馈截止 2026-11-30</p>' in html
    extended = f'完成时间 {EXTENDED_TO.isoformat()}<span class="muted">（原定 2026-12-20，已批准延期）</span>'
    assert extended in html
    finished = html.split('<details class="card finished">')[1]
    assert "<summary>已办结的任务（1 项）</summary>" in finished
    assert "[11] 教学档案整理" in finished
    assert "[11]" not in html.split('<details class="card finished">')[0]
    assert "建设课程资源库" not in html  # 教务处副处长's task


def test_the_title_opens_the_task_page_and_the_buttons_open_the_action_pages(web, engine):
    html = web.get(f"/me/{mine_token(engine)}").text
    card = html.split('<p class="code">任务 5 ·')[1].split("</li>")[0]
    title = re.search(r'<h2><a href="(/l/[^"]+)">修订人才培养方案</a></h2>', card)
    assert title is not None
    view = web.get(title.group(1))
    assert view.status_code == 200
    assert "<title>任务详情：修订人才培养方案 · 督办系统</title>" in view.text
    buttons = dict((label, href) for href, label in re.findall(r'<a class="btn[^"]*" href="([^"]+)">([^<]+)</a>', card))
    assert list(buttons) == ["签收", "反馈进展", "提交办结", "申请延期", "查看任务"]
    titles = {label: re.search(r"<title>([^<]+)</title>", web.get(href).text).group(1) for label, href in buttons.items()}
    assert titles == {
        "签收": "签收任务：修订人才培养方案 · 督办系统",
        "反馈进展": "反馈工作进展：修订人才培养方案 · 督办系统",
        "提交办结": "提交办结：修订人才培养方案 · 督办系统",
        "申请延期": "申请延期：修订人才培养方案 · 督办系统",
        "查看任务": "任务详情：修订人才培养方案 · 督办系统",
    }
    # opened again, the page reuses the links it issued (no new rows)
    with session_scope(engine) as s:
        before = s.scalars(select(Link.id)).all()
    web.get(f"/me/{mine_token(engine)}")
    with session_scope(engine) as s:
        assert s.scalars(select(Link.id)).all() == before


def test_another_persons_link_shows_only_their_own_tasks(web, engine):
    html = web.get(f"/me/{mine_token(engine, '教务处副处长')}").text
    assert "教务处副处长，您好。" in html
    assert [c for c, _ in codes_and_states(html)] == ["2"]
    assert not any(title in html for title in ("修订人才培养方案", "集体备课", "教学档案整理"))


def test_a_mine_link_opened_under_l_goes_to_its_page(web, engine):
    tok = mine_token(engine)
    resp = web.get(f"/l/{tok}", follow_redirects=False)
    assert (resp.status_code, resp.headers["location"]) == (303, f"/me/{tok}")


@pytest.mark.parametrize(
    ("case", "status", "title"),
    [
        ("void", 410, "链接已失效"),
        ("expired", 410, "链接已过期"),
        ("tampered", 404, "链接无效"),
        ("not_mine", 404, "链接无效"),
        ("inactive", 410, "链接已失效"),
    ],
)
def test_links_that_cannot_open_the_page(web, engine, case, status, title):
    # issued in August, it lasted until 2026-10-31
    tok = mine_token(engine, today=dt.date(2026, 8, 15)) if case == "expired" else mine_token(engine)
    if case == "void":
        with session_scope(engine) as s:
            s.execute(update(Link).where(Link.action == LinkAction.MINE).values(void_at=PINNED, void_reason="已重新发放"))
    elif case == "tampered":
        tok = tok[:-2] + ("AA" if not tok.endswith("AA") else "BB")
    elif case == "not_mine":
        tok = make_link(engine, OWNER, LinkAction.VIEW, "5")
    elif case == "inactive":
        with session_scope(engine) as s:
            s.execute(update(Person).where(Person.name == OWNER).values(active=False))
    for path in (f"/me/{tok}", f"/me/{tok}/ack"):
        resp = web.get(path) if path.endswith(tok) else web.post(path, data={"csrf": "x", "task": "1"})
        assert resp.status_code == status
        assert f"<title>{title} · 督办系统</title>" in resp.text
        assert "修订人才培养方案" not in resp.text


# -- 批量签收 ---------------------------------------------------------------------------------------


def first_post(web, base: str, task_ids: list[str] | None = None):
    page = web.get(base).text
    ids = task_ids if task_ids is not None else re.findall(r'name="task" value="(\d+)" checked', page)
    return web.post(f"{base}/ack", data={"csrf": csrf_of(page), "task": ids})


def confirm(web, base: str, page: str):
    nonce = re.search(r'name="nonce" value="([^"]+)"', page)
    assert nonce is not None, "the page has no confirmation"
    return web.post(f"{base}/ack", data={"csrf": csrf_of(page), "nonce": nonce.group(1)})


def test_sign_seven_with_a_confirmation_step(web, engine):
    base = f"/me/{mine_token(engine)}"
    before = without_links(snapshot(engine))
    asked = first_post(web, base)
    assert asked.status_code == 200
    assert "请确认签收以下 7 项任务" in asked.text
    listed = re.findall(r"<li>\[(\d+)\] ", asked.text)
    assert sorted(listed, key=int) == sorted(WAITING, key=int)
    assert without_links(snapshot(engine)) == before  # the first POST changes nothing (a scanner stops here)
    done = confirm(web, base, asked.text)
    assert done.status_code == 200
    assert "<strong>已签收 7 项。</strong>" in done.text
    assert acknowledged(engine) == {c: c in WAITING or c in ("9", "11") for c in acknowledged(engine)}
    with session_scope(engine) as s:
        rows = s.execute(
            select(Task.code, Event.actor, Event.channel, Event.data, Link.action, Link.person_id, Link.used_at)
            .join(Task, Task.id == Event.task_id)
            .join(Link, Link.id == Event.data["link"].as_integer())
            .where(Event.kind == EventKind.ACKNOWLEDGED)
        ).all()
        owner = s.scalar(select(Person.id).where(Person.name == OWNER))
    assert sorted(r.code for r in rows) == sorted(WAITING)
    assert {(r.actor, r.channel, r.data["action"], r.action, r.person_id) for r in rows} == {(OWNER, "link", "ack", "ack", owner)}
    assert all(r.used_at is not None for r in rows)  # each task's 签收 link is used, as from a message
    after = web.get(base).text
    assert 'id="sign"' not in after  # nothing waits for 签收 any more
    assert "待签收 7 项" not in after and "在办 <strong>8</strong> 项" in after


def test_a_double_submit_signs_once(web, engine):
    base = f"/me/{mine_token(engine)}"
    asked = first_post(web, base).text
    assert "<strong>已签收 7 项。</strong>" in confirm(web, base, asked).text
    again = confirm(web, base, asked)
    assert again.status_code == 200
    assert "此次签收已经提交过，未重复办理" in again.text
    assert "此前已签收（7 项）" in again.text
    with session_scope(engine) as s:
        assert len(s.scalars(select(Event.id).where(Event.kind == EventKind.ACKNOWLEDGED)).all()) == 7


def test_a_task_signed_meanwhile_is_reported_not_failed(web, engine):
    base = f"/me/{mine_token(engine)}"
    asked = first_post(web, base).text
    tok = make_link(engine, OWNER, LinkAction.ACK, "5")  # the owner signs one from its message meanwhile
    page = web.get(f"/l/{tok}").text
    assert web.post(f"/l/{tok}", data={"csrf": csrf_of(page)}).status_code == 200
    done = confirm(web, base, asked)
    assert "<strong>已签收 6 项。</strong>" in done.text
    assert "此前已签收（1 项）" in done.text and "[5] 修订人才培养方案" in done.text.split("此前已签收")[1]
    assert all(acknowledged(engine)[c] for c in WAITING)


def test_only_the_chosen_and_own_tasks_are_signed(web, engine):
    base = f"/me/{mine_token(engine)}"
    with session_scope(engine) as s:
        ids = dict(s.execute(select(Task.code, Task.id)).all())
    asked = first_post(web, base, [str(ids["5"]), str(ids["2"])])  # 2 is 教务处副处长's
    assert "请确认签收以下 1 项任务" in asked.text and "[2]" not in asked.text
    assert "<strong>已签收 1 项。</strong>" in confirm(web, base, asked.text).text
    signed = acknowledged(engine)
    assert (signed["5"], signed["2"], signed["1"]) == (True, False, False)


def test_another_persons_confirmation_is_refused(web, engine):
    mine, theirs = f"/me/{mine_token(engine)}", f"/me/{mine_token(engine, '教务处副处长')}"
    asked = first_post(web, mine).text
    other_page = web.get(theirs).text
    nonce = re.search(r'name="nonce" value="([^"]+)"', asked).group(1)
    resp = web.post(f"{theirs}/ack", data={"csrf": csrf_of(other_page), "nonce": nonce})
    assert resp.status_code == 409
    assert "<title>确认已过期 · 督办系统</title>" in resp.text
    assert not any(acknowledged(engine)[c] for c in WAITING)


@pytest.mark.parametrize("case", ["no_csrf", "wrong_csrf", "expired_nonce", "nothing_chosen", "nothing_left"])
def test_a_submission_that_does_not_act(web, engine, clock, case):
    base = f"/me/{mine_token(engine)}"
    page = web.get(base).text
    before = without_links(snapshot(engine))
    if case == "expired_nonce":
        asked = first_post(web, base).text
        clock.move_to(PINNED + dt.timedelta(minutes=16))
        resp = confirm(web, base, asked)
        assert (resp.status_code, "签收确认仅在 15 分钟内有效" in resp.text) == (409, True)
    elif case == "nothing_chosen":
        resp = web.post(f"{base}/ack", data={"csrf": csrf_of(page)})
        assert (resp.status_code, "请至少勾选一项需要签收的任务。" in resp.text) == (400, True)
    elif case == "nothing_left":  # 9 is signed already, 2 is another person's
        with session_scope(engine) as s:
            ids = [str(i) for i in s.scalars(select(Task.id).where(Task.code.in_(["9", "2"])))]
        resp = web.post(f"{base}/ack", data={"csrf": csrf_of(page), "task": ids})
        assert (resp.status_code, "所选任务均已签收或已不由您负责，无需再签收。" in resp.text) == (409, True)
    else:
        data = {"task": ["1"], **({"csrf": "0" * 40} if case == "wrong_csrf" else {})}
        resp = web.post(f"{base}/ack", data=data)
        assert (resp.status_code, "<title>页面已过期，请重新打开 · 督办系统</title>" in resp.text) == (403, True)
    assert without_links(snapshot(engine)) == before


def test_a_get_never_acts(web, engine):
    base = f"/me/{mine_token(engine)}"
    before = without_links(snapshot(engine))
    for path in (base, base, f"{base}/ack", "/me"):
        assert web.get(path).status_code in (200, 405)
    assert web.get(f"{base}/ack").status_code == 405
    assert without_links(snapshot(engine)) == before


# -- /me: the signed-in person ----------------------------------------------------------------------


def test_me_without_a_session_says_how_to_open_it(web):
    resp = web.get("/me")
    assert resp.status_code == 200
    assert "<title>我的督办 · 督办系统</title>" in resp.text
    assert "“查看我的全部督办事项”后的链接" in resp.text
    assert '<a href="/sso/login?next=/me">统一身份认证登录</a>' in resp.text
    assert web.post("/me/ack", data={"task": "1"}).status_code == 403


def test_me_with_a_session_shows_the_same_page_and_signs(web, engine):
    with session_scope(engine) as s:
        pid = s.scalar(select(Person.id).where(Person.name == OWNER))
        sid = person_sessions.start(s, pid, method="cas", subject="T0001", now=PINNED, until=PINNED + dt.timedelta(hours=12))
    web.cookies.set(person_sessions.PERSON_COOKIE, person_sessions.cookie(SECRET, sid, expires=PINNED + dt.timedelta(hours=12)))
    html = web.get("/me").text
    assert "教务处处长，您好。" in html
    assert [c for c, _ in codes_and_states(html)] == OPEN_ORDER
    asked = first_post(web, "/me")
    assert "请确认签收以下 7 项任务" in asked.text
    assert "<strong>已签收 7 项。</strong>" in confirm(web, "/me", asked.text).text
    with session_scope(engine) as s:
        channels = s.scalars(select(Event.channel).where(Event.kind == EventKind.ACKNOWLEDGED)).all()
    assert channels == ["web"] * 7


def test_a_signed_in_person_signs_out_from_their_page(web, engine):
    with session_scope(engine) as s:
        pid = s.scalar(select(Person.id).where(Person.name == OWNER))
        sid = person_sessions.start(s, pid, method="cas", subject="T0001", now=PINNED, until=PINNED + dt.timedelta(hours=12))
    web.cookies.set(person_sessions.PERSON_COOKIE, person_sessions.cookie(SECRET, sid, expires=PINNED + dt.timedelta(hours=12)))
    html = web.get("/me").text
    (signout,) = re.findall(
        r'<form method="post" action="/sso/logout" class="signout">\s*<input type="hidden" name="csrf" value="([^"]+)">', html
    )
    assert "退出登录" in html
    assert "退出登录" not in web.get(f"/me/{make_link(engine, OWNER, LinkAction.MINE, None)}").text  # a link is not a sign-in
    resp = web.post("/sso/logout", data={"csrf": signout}, follow_redirects=False)
    assert (resp.status_code, resp.headers["location"]) == (303, "/login?out=1")
    with session_scope(engine) as s:
        assert s.get(PersonSession, sid).ended_at is not None
    assert '<a href="/sso/login?next=/me">统一身份认证登录</a>' in web.get("/me").text


# -- file inputs ------------------------------------------------------------------------------------


def test_every_file_input_lists_what_is_accepted(web, engine):
    accept = accept_attribute()
    parts = accept.split(",")
    assert parts[: len(ALLOWED)] == [f".{ext}" for ext in ALLOWED]
    assert {"application/pdf", "image/jpeg", "text/plain", "application/zip"} <= set(parts)
    assert not any(";" in p or " " in p for p in parts)
    page = web.get(f"/l/{make_link(engine, OWNER, LinkAction.PROGRESS, '5')}").text
    inputs = re.findall(r"<input[^>]*type=\"file\"[^>]*>", page)
    assert inputs == [f'<input id="files" name="files" type="file" multiple accept="{accept}">']


@pytest.fixture
def impatient(monkeypatch):
    monkeypatch.setenv("DUBAN_WEB_BUSY_PATIENCE", "1")
    get_settings.cache_clear()


def test_a_busy_store_signs_nothing_and_the_same_confirmation_works_later(impatient, web, engine, database_url):
    from tests.web.test_store_busy import other_writer

    base = f"/me/{mine_token(engine)}"
    asked = first_post(web, base).text
    with other_writer(database_url):
        busy = confirm(web, base, asked)
    assert busy.status_code == 503 and "您填写的内容尚未保存" in busy.text
    assert not any(acknowledged(engine)[c] for c in WAITING)
    assert "<strong>已签收 7 项。</strong>" in confirm(web, base, asked).text
