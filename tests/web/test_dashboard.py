"""The dashboard (看板): accounts, sign-in, sessions, read-only links, plan scope, and its numbers
against ``duban.rollup.compute`` and ``duban status --json`` on a small plan (hand-computed).

On SQLite and PostgreSQL (TestClient); one headless Chromium screenshot test (slow)."""

from __future__ import annotations

import datetime as dt
import json
import re
from zoneinfo import ZoneInfo

import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from duban import accounts, dashboard_access, link_tokens
from duban.db import session_scope
from duban.models import Account, DashboardLink, LoginThrottle, utcnow
from duban.settings import get_settings
from tests.conftest import PINNED_DAY
from tests.factories import import_announced, small_plan, write_yaml
from tests.web_helpers import SECRET, import_small, sign_in, web_env

pytestmark = pytest.mark.usefixtures("clock")  # the web app reads the clock: pinned (tests/conftest.py)

PASSWORD = "Dubanban-2026!"
# what nobody without access may see: people, tasks, systems, departments of the plans
PRIVATE_WORDS = [
    "教务处处长",
    "教务处副处长",
    "宣传部部长",
    "分管教学副校长",
    "党委书记",
    "督办员",
    "集体备课",
    "建设课程资源库",
    "开设选修课",
    "文明校园创建",
    "课程育人",
    "文化育人",
    "教务处",
    "宣传部",
    "测试方案",
    "另一方案",
    "外省任务",
]
OTHER_WORDS = ["另一方案", "外省任务", "外省处长"]


def other_plan() -> dict:
    d = small_plan()
    d["plan"].update(code="other", name="另一方案")
    d["people"].append({"name": "外省处长", "department": "教务处", "email": "ws@example.org"})
    d["systems"] = [
        {
            "name": "实践育人",
            "projects": [
                {
                    "name": "社会实践",
                    "tasks": [
                        {"code": "9", "title": "外省任务", "owner": "外省处长", "lead_department": "教务处", "deadline": "2026年11月10日"}
                    ],
                }
            ],
        }
    ]
    return d


def add_account(engine, login: str, role: str = "office", plan: str | None = None, person: str | None = None) -> None:
    with session_scope(engine) as s:
        accounts.create_account(s, login, PASSWORD, role=role, plan_code=plan, person=person)


@pytest.fixture
def web(use_database, engine, tmp_path, monkeypatch):
    web_env(monkeypatch)
    import_small(engine, tmp_path)
    import_announced(engine, write_yaml(tmp_path / "other.yaml", other_plan()))
    from duban.web.app import create_app

    with TestClient(create_app(), raise_server_exceptions=True, follow_redirects=False) as client:
        yield client


CSRF_RE = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def csrf(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "no CSRF field"
    return m.group(1)


def login(client, name: str, password: str = PASSWORD, *, next_url: str = "/dashboard"):
    return sign_in(client, name, password, next_url=next_url)


def assert_private(text: str, words=PRIVATE_WORDS) -> None:
    leaked = [w for w in words if w in text]
    assert not leaked, f"leaked {leaked}"


# -- passwords and accounts -------------------------------------------------------------------------


def test_password_hash_is_salted_scrypt():
    a, b = accounts.hash_password("correct horse"), accounts.hash_password("correct horse")
    assert a != b and a.startswith("scrypt$32768$8$1$")
    assert accounts.check_password("correct horse", a) and accounts.check_password("correct horse", b)
    assert not accounts.check_password("correct horsf", a)
    assert not accounts.check_password("x", "bcrypt$whatever") and not accounts.check_password("x", "garbage")


def test_account_rules(engine, tmp_path):
    import_small(engine, tmp_path)
    with session_scope(engine) as s:
        for kwargs, message in [
            ({"login": "a b", "password": PASSWORD, "role": "office"}, "不能含空格"),
            ({"login": "x", "password": PASSWORD, "role": "boss"}, "角色“boss”无效"),
            ({"login": "x", "password": "short", "role": "office"}, "密码太短"),
            ({"login": "x", "password": "aaaaaaaaaa", "role": "office"}, "密码过于简单"),
            ({"login": "x", "password": PASSWORD, "role": "office", "plan_code": "nope"}, "没有编号为“nope”的方案。已有方案：demo"),
            ({"login": "x", "password": PASSWORD, "role": "office", "person": "无名氏"}, "没有找到人员“无名氏”"),
        ]:
            with pytest.raises(accounts.AccountError, match=message):
                accounts.create_account(s, **kwargs)
        a = accounts.create_account(s, "dby", PASSWORD, role="office", plan_code="demo", person="督办员")
        assert (a.display_name, a.role, a.active) == ("督办员", "office", True)
        with pytest.raises(accounts.AccountError, match="已存在"):
            accounts.create_account(s, "dby", PASSWORD, role="leader")


# -- sign-in, sessions, logout ---------------------------------------------------------------------------


def test_login_sets_a_safe_cookie_and_logout_ends_the_session(web, engine):
    add_account(engine, "dby", "office", "demo")
    assert web.get("/dashboard").headers["location"] == "/login?next=%2Fdashboard"
    resp = login(web, "dby")
    assert resp.status_code == 303 and resp.headers["location"] == "/dashboard"
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith("duban_session=") and "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Max-Age=43200" in cookie and "Secure" not in cookie  # http base URL; https gets Secure
    session_value = web.cookies.get("duban_session")
    page = web.get("/dashboard")
    assert page.status_code == 200 and "dby · 领导小组办公室" in page.text
    assert page.headers["cache-control"] == "no-store, private"
    with session_scope(engine) as s:
        assert s.scalar(select(Account.last_login_at).where(Account.login == "dby")) is not None
    # signed in: /login goes to the dashboard
    assert web.get("/login").headers["location"] == "/dashboard"
    # logout needs its CSRF field
    assert web.post("/logout", data={}).status_code == 403
    out = web.post("/logout", data={"csrf": csrf(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/login?out=1"
    assert "您已安全退出。" in web.get("/login?out=1").text
    # the old cookie (e.g. copied from this device) no longer works
    web.cookies.clear()
    web.cookies.set("duban_session", session_value)
    assert web.get("/dashboard").status_code == 303
    assert web.get("/dashboard.json").status_code == 401


def test_next_is_only_a_dashboard_address(web, engine):
    add_account(engine, "dby", "office")
    assert login(web, "dby", next_url="/dashboard?plan=other").headers["location"] == "/dashboard?plan=other"
    web.cookies.clear()
    for evil in ("//evil.example/x", "https://evil.example/dashboard", "/l/abc", "/dashboard\\@evil"):
        web.cookies.clear()
        assert login(web, "dby", next_url=evil).headers["location"] == "/dashboard"


def test_https_base_url_makes_the_cookie_secure(web, engine, monkeypatch):
    add_account(engine, "dby", "office")
    web.app.state.rt.settings.base_url = "https://duban.example.edu.cn"
    assert "Secure" in login(web, "dby").headers["set-cookie"]


def test_wrong_password_unknown_name_and_lockout(web, engine):
    add_account(engine, "dby", "office")
    for name in ("dby", "nobody"):
        resp = login(web, name, "wrong-password")
        assert resp.status_code == 401 and accounts.WRONG in resp.text and "duban_session" not in resp.headers.get("set-cookie", "")
    for _ in range(3):
        assert login(web, "dby", "wrong-password").status_code == 401
    locked = login(web, "dby", "wrong-password")  # the 5th in a row: this address is locked out of dby
    assert locked.status_code == 401 and accounts.WRONG in locked.text  # the same answer (issue 17)
    still = login(web, "dby")  # even the right password, from this address, while locked
    assert still.status_code == 401 and "duban_session" not in still.headers.get("set-cookie", "")
    with session_scope(engine) as s:
        s.execute(update(LoginThrottle).values(locked_until=utcnow() - dt.timedelta(seconds=1)))
    assert login(web, "dby").status_code == 303


def test_attempts_are_limited_per_client_address(web, engine):
    for _ in range(10):
        assert login(web, "nobody", "wrong-password").status_code == 401
    resp = login(web, "nobody", "wrong-password")
    assert resp.status_code == 429 and "登录尝试过于频繁" in resp.text and int(resp.headers["retry-after"]) >= 1


def test_login_form_needs_its_csrf_field(web, engine):
    add_account(engine, "dby", "office")
    web.get("/login")
    resp = web.post("/login", data={"login": "dby", "password": PASSWORD})
    assert resp.status_code == 403 and "页面已过期" in resp.text and "duban_session" not in resp.headers.get("set-cookie", "")
    # a field made for another browser's cookie does not pass either
    from duban.web.dashboard import form_token

    resp = web.post(
        "/login", data={"login": "dby", "password": PASSWORD, "csrf": form_token(SECRET, "someone-elses-cookie-value", "login")}
    )
    assert resp.status_code == 403


def test_tampered_forged_and_expired_sessions_are_refused(web, engine):
    add_account(engine, "dby", "office")
    with session_scope(engine) as s:
        aid = s.scalar(select(Account.id))
    later = utcnow() + dt.timedelta(hours=1)
    cookies = {
        "tampered": dashboard_access.session_cookie(SECRET, kind="a", ident=aid, version=0, expires=later)[:-2] + "AA",
        "other key": dashboard_access.session_cookie("k" * 40, kind="a", ident=aid, version=0, expires=later),
        "expired": dashboard_access.session_cookie(SECRET, kind="a", ident=aid, version=0, expires=utcnow() - dt.timedelta(seconds=1)),
        "old version": dashboard_access.session_cookie(SECRET, kind="a", ident=aid, version=7, expires=later),
        "no account": dashboard_access.session_cookie(SECRET, kind="a", ident=aid + 99, version=0, expires=later),
        # an action link's token is no session (another key)
        "link token": __import__("duban.links", fromlist=["x"]).link_token(SECRET, aid, "a", dt.date(2099, 1, 1)),
    }
    for what, value in cookies.items():
        web.cookies.clear()
        web.cookies.set("duban_session", value)
        resp = web.get("/dashboard")
        assert resp.status_code == 303 and resp.headers["location"].startswith("/login"), what
        assert web.get("/dashboard.json").status_code == 401, what
    web.cookies.clear()
    web.cookies.set("duban_session", dashboard_access.session_cookie(SECRET, kind="a", ident=aid, version=0, expires=later))
    assert web.get("/dashboard").status_code == 200


def test_disabling_or_a_new_password_ends_sessions(web, engine):
    add_account(engine, "dby", "office")
    login(web, "dby")
    assert web.get("/dashboard").status_code == 200
    with session_scope(engine) as s:
        accounts.set_password(s, "dby", "Another-pass-2026")
    assert web.get("/dashboard").status_code == 303
    assert login(web, "dby", "Another-pass-2026").status_code == 303
    with session_scope(engine) as s:
        accounts.set_active(s, "dby", False)
    assert web.get("/dashboard").status_code == 303
    resp = login(web, "dby", "Another-pass-2026")
    assert resp.status_code == 401 and accounts.WRONG in resp.text  # the answer of any refusal (issue 17)


# -- nobody without access sees anything -----------------------------------------------------------


def test_anonymous_sees_no_names_and_no_numbers(web, engine):
    add_account(engine, "dby", "office")
    paths = [
        "/dashboard",
        "/dashboard?plan=demo",
        "/dashboard?plan=other&system=课程育人",
        "/dashboard?department=教务处",
        "/dashboard.json",
        "/dashboard.json?plan=demo",
        "/d/garbage",
        "/d/abc.def",
        "/login",
        "/login?next=/dashboard",
        "/dashboard/anything",
        "/logout",
    ]
    for path in paths:
        for resp in (web.get(path), web.post(path, data={"login": "dby"})):
            assert resp.status_code in ((200, 403) if path.startswith("/login") else (303, 401, 403, 404, 405)), (path, resp.status_code)
            assert_private(resp.text)
            if resp.status_code == 303:
                assert resp.headers["location"].startswith("/login"), path
    body = web.get("/dashboard.json").json()
    assert body == {"ok": False, "error": "请先登录。"}
    # a failed sign-in shows nothing either
    assert_private(login(web, "dby", "wrong-password").text)


def test_plan_scoped_account_cannot_see_another_plan(web, engine):
    add_account(engine, "demo-leader", "leader", "demo")
    login(web, "demo-leader")
    page = web.get("/dashboard")
    assert page.status_code == 200 and "测试方案" in page.text
    assert_private(page.text, OTHER_WORDS)
    for path in ("/dashboard?plan=other", "/dashboard?plan=nope", "/dashboard.json?plan=other"):
        resp = web.get(path)
        assert resp.status_code == 403, path
        assert_private(resp.text, OTHER_WORDS + ["测试方案", "教务处处长", "集体备课"])
    assert "您的账户无权查看该方案" in web.get("/dashboard?plan=other").text
    assert web.get("/dashboard.json?plan=other").json() == {
        "ok": False,
        "error": "您的账户无权查看该方案。如需查看，请联系领导小组办公室。",
    }


def test_provincial_account_sees_every_plan(web, engine):
    add_account(engine, "province", "leader")
    login(web, "province")
    page = web.get("/dashboard")
    assert page.status_code == 200
    assert "全部方案" in page.text and 'href="/dashboard?plan=demo"' in page.text and 'href="/dashboard?plan=other"' in page.text
    assert "测试方案" in page.text and "另一方案" in page.text
    assert web.get("/dashboard?plan=other").status_code == 200
    assert web.get("/dashboard?plan=nope").status_code == 404


# -- read-only links --------------------------------------------------------------------------------------


def issue_link(engine, plan: str | None = "demo", days: int = 30, today: dt.date | None = None) -> tuple[int, str]:
    with session_scope(engine) as s:
        row, token = dashboard_access.issue_dashboard_link(
            s, secret=SECRET, plan_code=plan, days=days, today=today or PINNED_DAY, note="王书记"
        )
        return row.id, token


def test_read_only_link_works_expires_and_is_revoked(web, engine):
    lid, token = issue_link(engine)
    with session_scope(engine) as s:
        row = s.get(DashboardLink, lid)
        assert row.token_hash == link_tokens.token_hash(token) and token not in json.dumps(row.note)
    resp = web.get(f"/d/{token}")
    assert resp.status_code == 303 and resp.headers["location"] == "/dashboard"
    assert "HttpOnly" in resp.headers["set-cookie"]
    page = web.get("/dashboard")
    assert page.status_code == 200 and "王书记 · 只读链接" in page.text and "测试方案" in page.text
    assert "退出登录" not in page.text  # nothing to sign out of
    assert web.get("/dashboard?plan=other").status_code == 403
    with session_scope(engine) as s:
        assert s.get(DashboardLink, lid).last_used_at is not None
        dashboard_access.revoke_dashboard_link(s, lid, now=utcnow())
    # revoked: the session it opened stops at once, and the link too
    assert web.get("/dashboard").status_code == 303
    web.cookies.clear()
    resp = web.get(f"/d/{token}")
    assert resp.status_code == 410 and "该链接已被撤销" in resp.text
    assert_private(resp.text)
    # expired
    _, old = issue_link(engine, days=1, today=PINNED_DAY - dt.timedelta(days=5))
    resp = web.get(f"/d/{old}")
    assert resp.status_code == 410 and "现已过期" in resp.text
    # tampered, or an action link's token
    assert web.get(f"/d/{token[:-3]}xyz").status_code == 404
    from tests.web_helpers import make_link

    action = make_link(engine, "教务处处长", "view", "1", secret=SECRET)
    assert web.get(f"/d/{action}").status_code == 404


# -- the CLI ----------------------------------------------------------------------------------------------------


def cli(*args, input: str | None = None):  # noqa: A002 - named like CliRunner.invoke's input
    from duban.cli.main import app

    return CliRunner().invoke(app, [str(a) for a in args], input=input)


@time_machine.travel(dt.datetime(2026, 12, 1, 3, 30, tzinfo=ZoneInfo("Asia/Shanghai")), tick=True)  # 11-30 in UTC
def test_account_commands(use_database, engine, tmp_path, monkeypatch):
    monkeypatch.setenv("DUBAN_SECRET_KEY", SECRET)
    monkeypatch.setenv("DUBAN_BASE_URL", "https://duban.example.edu.cn")
    get_settings.cache_clear()
    import_small(engine, tmp_path)
    for cmd in (["account"], ["account", "add"], ["account", "list"], ["account", "disable"], ["account", "passwd"], ["dashboard-link"]):
        result = cli(*cmd, "--help")
        assert result.exit_code == 0 and any("\u4e00" <= ch <= "\u9fff" for ch in result.output), cmd
    assert "还没有看板账户" in cli("account", "list").output
    result = cli(
        "account", "add", "dby", "--role", "office", "--plan", "demo", "--person", "督办员", "--password-stdin", input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert "已新建账户 dby（领导小组办公室，方案 demo）。登录地址：https://duban.example.edu.cn/login" in result.output
    # prompted twice
    result = cli("account", "add", "ld", "--role", "leader", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0 and "已新建账户 ld（领导，全部方案）" in result.output, result.output
    result = cli("account", "add", "x", "--role", "leader", input=f"{PASSWORD}\nsomething-else\n{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    bad = cli("account", "add", "y", "--role", "chief", "--password-stdin", input=PASSWORD + "\n")
    assert bad.exit_code == 1 and "角色“chief”无效" in bad.output
    assert cli("account", "add", "dby", "--role", "office", "--password-stdin", input=PASSWORD + "\n").exit_code == 1
    listing = cli("account", "list").output
    assert "dby" in listing and "督办员" in listing and "从未登录" in listing and "全部方案" in listing
    assert cli("account", "disable", "ld").exit_code == 0 and "已停用" in cli("account", "list").output
    assert cli("account", "enable", "ld").exit_code == 0
    assert cli("account", "disable", "nobody").exit_code == 1
    result = cli("account", "passwd", "dby", "--password-stdin", input="New-password-1\n")
    assert result.exit_code == 0 and "已重设账户 dby 的密码" in result.output
    with session_scope(engine) as s:
        a = accounts.get_account(s, "dby")
        assert accounts.check_password("New-password-1", a.password_hash) and a.session_version == 1
    assert cli("account", "passwd", "dby", "--password-stdin", input="short\n").exit_code == 1

    result = cli("dashboard-link", "--plan", "demo", "--days", "7", "--note", "王书记")
    assert result.exit_code == 0, result.output
    [url] = re.findall(r"^https://duban\.example\.edu\.cn/d/\S+$", result.output, re.M)
    assert "有效期至 2026-12-08" in result.output  # seven days from the institution's date, not UTC's
    with session_scope(engine) as s:
        row = s.scalar(select(DashboardLink))
        assert row.token_hash == link_tokens.token_hash(url.rsplit("/", 1)[1]) and row.note == "王书记"
    assert "王书记" in cli("dashboard-link", "--list").output and "有效" in cli("dashboard-link", "--list").output
    assert cli("dashboard-link", "--revoke", str(row.id)).exit_code == 0
    assert "已撤销" in cli("dashboard-link", "--list").output
    assert cli("dashboard-link", "--revoke", "999").exit_code == 1
    assert cli("dashboard-link", "--plan", "nope").exit_code == 1


def test_demo_account(engine):
    with session_scope(engine) as s:
        login_name, password = accounts.ensure_demo_account(s)
    with session_scope(engine) as s:
        _, again = accounts.ensure_demo_account(s)
        a = accounts.get_account(s, "demo")
        assert (a.role, a.plan_id) == ("office", None)
        assert accounts.check_password(again, a.password_hash) and not accounts.check_password(password, a.password_hash)


# -- the numbers: a small plan with hand-computed figures ---------------------------------------------------------
#
# As of 2026-12-10 (plan imported 2026-11-02; tasks 1, 2, 4 acknowledged):
#   1 集体备课 (课程育人, 教务处, 分管教学副校长): 制定方案 11-20 done 11-18 (on time); 中期检查 12-15 open (due
#     soon: 3 working days left → yellow); the final step moved 12-31 → 2027-01-15 by an approved extension.
#   2 建设课程资源库 (课程育人, 教务处): due 11-30, submitted 12-01, completion waiting for approval → green.
#   3 开设选修课 (文化育人, 宣传部, 党委书记): every semester, not acknowledged after 3 working days → yellow.
#   4 文明校园创建 (文化育人, 宣传部): ongoing, acknowledged, quarterly report not due yet → green.
#   5 校园文化节 (文化育人, 宣传部): due 11-25, open → red, 11 working days late (11-26 … 12-10),
#     escalated to the department head (level 1).
# Milestones 5, done 1 → completion 1/5 = 20.0%; due (done or past due) 3: 1-制定方案, 2, 5; on time 1
# → 33.3%.  Assessment (weights 50/20/15/15): 教务处 on time 1/2 → 25 + 20 + 15 + 15 = 75.0;
# 宣传部 on time 0/1 → 0, 11 days late on average → 0, 1 escalation over 3 tasks → 15 × 2/3 = 10, no
# returns → 15: 25.0.

AS_OF = dt.date(2026, 12, 10)
UTC = dt.UTC


def scenario_plan() -> dict:
    from tests.factories import task_of

    d = small_plan()
    task_of(d, "2")["deadline"] = "2026年11月30日"
    d["systems"][1]["projects"][0]["tasks"].append(
        {"code": "5", "title": "校园文化节", "owner": "宣传部部长", "lead_department": "宣传部", "deadline": "2026年11月25日"}
    )
    return d


def build_scenario(engine, folder) -> None:
    from duban.models import Milestone, Notification, Person, Plan, Request, Task
    from tests.web_helpers import IMPORTED

    import_announced(engine, write_yaml(folder / "scenario.yaml", scenario_plan()), now=IMPORTED)
    with session_scope(engine) as s:
        plan_id = s.scalar(select(Plan.id).where(Plan.code == "demo"))
        tid = dict(s.execute(select(Task.code, Task.id).where(Task.plan_id == plan_id)).all())
        pid = dict(s.execute(select(Person.name, Person.id).where(Person.plan_id == plan_id)).all())
        ms = {
            (code, m.seq): m
            for code, m in s.execute(select(Task.code, Milestone).join(Task, Task.id == Milestone.task_id).where(Task.plan_id == plan_id))
        }
        s.execute(
            update(Task).where(Task.id.in_([tid["1"], tid["2"], tid["4"]])).values(acknowledged_at=dt.datetime(2026, 11, 3, 1, tzinfo=UTC))
        )
        m1, m2, m3 = ms[("1", 1)], ms[("1", 2)], ms[("1", 3)]
        m1.status, m1.submitted_at, m1.completed_at = (
            "done",
            dt.datetime(2026, 11, 18, 2, tzinfo=UTC),
            dt.datetime(2026, 11, 19, 2, tzinfo=UTC),
        )
        m2.status = m3.status = "in_progress"
        m3.due_date, m3.due_version = dt.date(2027, 1, 15), 2
        s.add(
            Request(
                plan_id=plan_id,
                task_id=tid["1"],
                milestone_id=m3.id,
                person_id=pid["教务处处长"],
                kind="extension",
                status="approved",
                note="寒假顺延",
                new_due_date=dt.date(2027, 1, 15),
                created_at=dt.datetime(2026, 11, 28, 2, tzinfo=UTC),
                decided_by_id=pid["督办员"],
                decided_at=dt.datetime(2026, 12, 1, 2, tzinfo=UTC),
            )
        )
        t2 = ms[("2", 1)]
        t2.status, t2.submitted_at = "submitted", dt.datetime(2026, 12, 1, 3, tzinfo=UTC)
        s.add(
            Request(
                plan_id=plan_id,
                task_id=tid["2"],
                milestone_id=t2.id,
                person_id=pid["教务处副处长"],
                kind="completion",
                status="pending",
                note="资源库已上线",
                created_at=dt.datetime(2026, 12, 1, 3, tzinfo=UTC),
            )
        )
        s.add(
            Notification(
                key="test:escalation:5",
                plan_id=plan_id,
                task_id=tid["5"],
                milestone_id=ms[("5", 1)].id,
                recipient_id=pid["宣传部部长"],
                kind="escalation",
                level=1,
                due_date=dt.date(2026, 11, 25),
                days=-3,
                decided_on=dt.date(2026, 11, 30),
                status="sent",
            )
        )


HAND = {
    "tasks": 5,
    "assigned": 2,
    "in_progress": 2,
    "submitted": 1,
    "done": 0,
    "done_tasks": 0,
    "overdue_tasks": 1,
    "due_soon_tasks": 1,
    "milestones": 5,
    "done_milestones": 1,
    "due_milestones": 3,
    "on_time_milestones": 1,
    "overdue_milestones": 1,
    "late_days": 11,
    "red": 1,
    "yellow": 2,
    "green": 2,
    "no_light": 0,
    "awaiting_approval": 1,
    "extensions_granted": 1,
    "escalations": 1,
    "completion_rate": 0.2,
    "on_time_rate": pytest.approx(1 / 3),
}


@pytest.fixture
def scenario(use_database, engine, tmp_path, monkeypatch):
    monkeypatch.setenv("DUBAN_SECRET_KEY", SECRET)
    monkeypatch.setenv("DUBAN_WEB_SEND_NOW", "0")
    monkeypatch.setenv("DUBAN_BASE_URL", "http://testserver")
    monkeypatch.setattr("duban.runtime.Runtime.today", lambda self: AS_OF)
    get_settings.cache_clear()
    build_scenario(engine, tmp_path)
    add_account(engine, "dby", "office", "demo", person="督办员")
    add_account(engine, "leader", "leader", "demo")
    add_account(engine, "viewer", "viewer", "demo")
    return engine


@pytest.fixture
def client(scenario):
    from duban.web.app import create_app

    with TestClient(create_app(), follow_redirects=False) as c:
        yield c


def kpi(html: str, label: str) -> str:
    m = re.search(r'<span class="n">([^<]*)</span><span class="l">' + re.escape(label) + "</span>", html)
    assert m, label
    return m.group(1)


def rows_of(html: str, section: str) -> list[list[str]]:
    """The cells (text) of a dashboard section's table."""
    m = re.search(rf'<section class="card" id="{section}">(.*?)</section>', html, re.S)
    assert m, section
    return [
        [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", m.group(1), re.S)
        if "<td" in row
    ]


def test_numbers_agree_with_rollup_status_and_hand_counts(scenario, client):
    from duban import rollup
    from duban.rollup.compute import compute
    from duban.runtime import runtime
    from duban.values import jsonable

    rt = runtime()
    r = compute(scenario, as_of=AS_OF, plan_code="demo", tz=rt.tz, cal=rt.calendar)
    assert {k: r.totals[k] for k in HAND} == HAND
    # duban status --json
    status = json.loads(cli("status", "--json", "--today", AS_OF.isoformat(), "--plan", "demo").stdout)
    assert (
        status["totals"]["tasks"],
        status["totals"]["overdue_tasks"],
        status["totals"]["due_soon_tasks"],
        status["totals"]["milestones"],
    ) == (5, 1, 1, 5)
    assert {k: v for k, v in status["tasks_by_status"].items() if v} == {"assigned": 2, "in_progress": 2, "submitted": 1}
    assert [(b["system"], b["tasks"], b["overdue_tasks"]) for b in status["by_system"]] == [("课程育人", 2, 0), ("文化育人", 3, 1)]
    assert [(b["department"], b["tasks"], b["overdue_tasks"]) for b in status["by_department"]] == [("宣传部", 3, 1), ("教务处", 2, 0)]

    login(client, "dby")
    data = client.get("/dashboard.json").json()
    assert data["ok"] and data["schema"] == "duban.dashboard/1" and data["as_of"] == "2026-12-10" and data["plan"] == "demo"
    assert {k: data["totals"][k] for k in HAND} == HAND
    assert data["totals"] == jsonable(r.totals)
    for key in (
        "by_system",
        "by_project",
        "by_department",
        "by_supervisor",
        "overdue",
        "due_soon",
        "awaiting_approval",
        "extensions",
        "assessment",
        "trend",
    ):
        assert data["views"][key] == rollup.records(getattr(r, key)), key
    v = data["views"]
    assert [
        (x["system"], x["tasks"], x["completion_rate"], x["on_time_rate"], x["red"], x["yellow"], x["green"]) for x in v["by_system"]
    ] == [("课程育人", 2, 0.25, 0.5, 0, 1, 1), ("文化育人", 3, 0.0, 0.0, 1, 1, 1)]
    assert [(x["supervisor"], x["tasks"]) for x in v["by_supervisor"]] == [("党委书记", 3), ("分管教学副校长", 2)]
    assert [(x["code"], x["title"], x["owner"], x["days_late"], x["level_label"]) for x in v["overdue"]] == [
        ("5", "校园文化节", "宣传部部长", 11, "已督办部门负责人")
    ]
    assert [(x["code"], x["milestone"], x["due"], x["days_left"], x["colour_label"]) for x in v["due_soon"]] == [
        ("1", "中期检查", "2026-12-15", 3, "黄灯")
    ]
    assert [(x["kind"], x["code"], x["requester"], x["submitted_on"]) for x in v["awaiting_approval"]] == [
        ("办结审核", "2", "教务处副处长", "2026-12-01")
    ]
    assert [(x["code"], x["baseline"], x["due"], x["slipped_days"], x["reason"]) for x in v["extensions"]] == [
        ("1", "2026-12-31", "2027-01-15", 15, "批准延期")
    ]
    assert [(x["department"], x["score"], x["rank"]) for x in v["assessment"]] == [("教务处", 75.0, 1), ("宣传部", 25.0, 2)]

    html = client.get("/dashboard").text
    assert [
        kpi(html, label)
        for label in ("在办任务", "节点完成率", "按期完成率", "红灯", "黄灯", "绿灯", "逾期任务", "两周内到期", "待审核事项", "批准延期")
    ] == ["5", "20.0%", "33.3%", "1", "2", "2", "1", "1", "1", "1"]
    assert rows_of(html, "by_system") == [
        ["课程育人", "2", "0", "25.0%", "50.0%", "0", "1", "1", "0", "1"],
        ["文化育人", "3", "0", "0.0%", "0.0%", "1", "1", "1", "1", "0"],
    ]
    assert rows_of(html, "overdue") == [["5", "校园文化节", "", "宣传部部长", "宣传部", "2026-11-25", "11", "已督办部门负责人"]]
    assert rows_of(html, "due_soon") == [["1", "集体备课", "中期检查", "教务处处长", "教务处", "2026-12-15", "3", "黄灯"]]
    assert rows_of(html, "awaiting_approval") == [["办结审核", "2", "建设课程资源库", "", "教务处", "教务处副处长", "2026-12-01", "7", ""]]
    assert rows_of(html, "extensions") == [["1", "集体备课", "", "教务处处长", "教务处", "2026-12-31", "2027-01-15", "15", "1", "批准延期"]]
    assert [(row[0], row[1], row[2], row[-1]) for row in rows_of(html, "assessment")] == [
        ("1", "", "教务处", "75.0"),
        ("2", "", "宣传部", "25.0"),
    ]
    assert "按期完成 50 分：按期完成节点 ÷ 应完成节点 × 50" in html and "名次变化：尚未印发过督办通报，暂无比较。" in html
    assert "docs/" not in html
    assert html.count("<svg") == 4  # lights, rates by system, trend, assessment


def test_drill_down_by_department_system_and_supervisor(client):
    login(client, "dby")
    html = client.get("/dashboard?plan=demo&department=宣传部").text
    assert "当前查看：牵头单位「宣传部」" in html
    assert [kpi(html, label) for label in ("在办任务", "红灯", "黄灯", "绿灯", "逾期任务", "待审核事项")] == ["3", "1", "1", "1", "1", "0"]
    assert [row[1] for row in rows_of(html, "tasks")] == ["开设选修课", "文明校园创建", "校园文化节"]
    assert [row[1] for row in rows_of(html, "overdue")] == ["校园文化节"] and rows_of(html, "due_soon") == []
    assert [row[2] for row in rows_of(html, "assessment")] == ["宣传部"]
    data = client.get("/dashboard.json?plan=demo&department=宣传部").json()
    assert data["filters"] == {"department": "宣传部"} and data["totals"]["tasks"] == 3

    html = client.get("/dashboard?plan=demo&system=课程育人").text
    assert [row[:3] for row in rows_of(html, "by_project")] == [["课程育人", "思政课创优", "2"]]
    assert rows_of(html, "overdue") == [] and [row[1] for row in rows_of(html, "due_soon")] == ["集体备课"]
    assert kpi(html, "节点完成率") == "25.0%" and kpi(html, "按期完成率") == "50.0%"
    html = client.get("/dashboard?plan=demo&supervisor=分管教学副校长").text
    assert kpi(html, "在办任务") == "2" and [row[1] for row in rows_of(html, "tasks")] == ["集体备课", "建设课程资源库"]
    # the overview links to the drill-downs
    html = client.get("/dashboard").text
    assert 'href="/dashboard?plan=demo&amp;department=%E5%AE%A3%E4%BC%A0%E9%83%A8"' in html
    assert 'href="/dashboard?plan=demo&amp;system=%E8%AF%BE%E7%A8%8B%E8%82%B2%E4%BA%BA"' in html


def test_roles_see_what_they_may(client):
    # the office: the approvals, with the way to the review pages
    login(client, "dby")
    html = client.get("/dashboard").text
    [queue] = re.findall(r'<a href="(/l/[^"]+)">前往待审核事项，逐项审核</a>', html)
    page = client.get(queue)
    assert page.status_code == 200 and "待审核事项（1 项）" in page.text and "建设课程资源库" in page.text
    # a leader: the lists, but not the approvals
    client.cookies.clear()
    login(client, "leader")
    html = client.get("/dashboard").text
    assert "校园文化节" in html and "中期检查" in html and 'id="awaiting_approval"' not in html and "建设课程资源库" not in html
    assert kpi(html, "待审核事项") == "1"
    assert "awaiting_approval" not in client.get("/dashboard.json").json()["views"]
    # a viewer: figures only, no task and no owner
    client.cookies.clear()
    login(client, "viewer")
    html = client.get("/dashboard").text
    assert kpi(html, "在办任务") == "5" and "只读统计账户" in html
    assert_private(html, ["校园文化节", "集体备课", "建设课程资源库", "教务处处长", "宣传部部长", "教务处副处长"])
    views = client.get("/dashboard.json").json()["views"]
    assert not {"overdue", "due_soon", "extensions", "awaiting_approval", "tasks"} & set(views)
    assert_private(client.get("/dashboard.json?department=宣传部").text, ["校园文化节", "宣传部部长"])


def test_provincial_view_adds_plans(scenario, tmp_path):
    import_announced(scenario, write_yaml(tmp_path / "other.yaml", other_plan()))
    add_account(scenario, "province", "leader")
    from duban import rollup
    from duban.rollup.compute import compute
    from duban.runtime import runtime
    from duban.web.app import create_app

    rt = runtime()
    r = compute(scenario, as_of=AS_OF, tz=rt.tz, cal=rt.calendar)
    with TestClient(create_app(), follow_redirects=False) as c:
        login(c, "province")
        data = c.get("/dashboard.json").json()
        assert data["plan"] is None and data["totals"]["tasks"] == 6 and data["totals"]["red"] == 2
        assert data["views"]["by_plan"] == rollup.records(r.by_plan)
        html = c.get("/dashboard").text
        assert [row[:2] for row in rows_of(html, "by_plan")] == [["测试方案", "5"], ["另一方案", "1"]]
        assert [row[:2] for row in rows_of(html, "overdue")] == [["demo", "5"], ["other", "9"]]


# -- in a real browser --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_dashboard_in_chromium_shows_chinese_and_charts(scenario, live_server, page):
    from tests.servers import screenshot
    from tests.test_servers import platform_fonts

    page.goto(live_server + "/dashboard")
    assert page.url.startswith(live_server + "/login")
    page.fill("#login", "dby")
    page.fill("#password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(live_server + "/dashboard")
    assert page.locator("h1").inner_text() == "测试方案"
    assert any("CJK" in f["familyName"] for f in platform_fonts(page, "h1"))
    # the charts are drawn (not blocked by the Content-Security-Policy) and their labels are Chinese glyphs
    charts = page.locator("figure.chart svg")
    assert charts.count() == 4
    for i in range(4):
        box = charts.nth(i).bounding_box()
        assert box and box["width"] > 300 and box["height"] > 25
    fonts = platform_fonts(page, "figure.chart svg text")
    assert any("CJK" in f["familyName"] for f in fonts), fonts
    assert page.locator("#overdue").inner_text().count("校园文化节") == 1
    screenshot(page, "dashboard-phone-first-screen", full_page=False)
    path = screenshot(page, "dashboard-phone")
    assert path.stat().st_size > 20_000
    page.set_viewport_size({"width": 1280, "height": 900})
    wide = screenshot(page, "dashboard-desktop")
    assert wide.stat().st_size > 20_000
    # sign out: back to the sign-in page, and the dashboard is closed again
    page.click("form.logout button")
    page.wait_for_url(live_server + "/login?out=1")
    page.goto(live_server + "/dashboard")
    assert page.url.startswith(live_server + "/login")


def test_assessment_table_lists_departments_with_nothing_due_unranked():
    import pandas as pd

    from duban.web.dashboard_views import table

    frame = pd.DataFrame(
        [
            ("demo", "教务处", 1, "↑1", 3, 0.25, 4.75, 2, 1, 33.0),
            ("demo", "宣传部", None, "", 2, float("nan"), 0.0, 0, 0, float("nan")),
        ],
        columns=["plan", "department", "rank", "change", "tasks", "on_time_rate", "avg_late_days", "escalations", "returns", "score"],
    )
    frame["rank"] = pd.Series([1, None], dtype=object)  # as duban.rollup.assessment makes it
    t = table("assessment", "单位考核", frame, provincial=False)
    assert t.headers == [
        "排名",
        "名次变化",
        "牵头单位",
        "任务总数",
        "按期完成率",
        "每节点平均逾期工作日",
        "被督办次数",
        "被退回",
        "考核得分",
    ]
    assert [[c.text for c in row] for row in t.rows] == [
        ["1", "↑1", "教务处", "3", "25.0%", "4.8", "2", "1", "33.0"],
        ["", "", "宣传部", "2", "—", "0.0", "0", "0", "暂无到期事项"],
    ]
