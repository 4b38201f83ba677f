"""DingTalk 待办 (duban/chat_todos.py, notifications/dingtalk_todo.py) against the local fake of
DingTalk's API (tests/vendors.py): what is asked of DingTalk, and what the store keeps."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from duban.chat_todos import due_ms, sync_configured, sync_todos
from duban.db import session_scope
from duban.link_tokens import verify
from duban.links import LinkMaker
from duban.models import ChatTodo, Link, Milestone, Person, Task
from duban.runtime import Runtime
from duban.settings import get_settings
from duban.vocabulary import MilestoneState
from notifications.apps.base import Secret
from notifications.apps.dingtalk import DingTalkApp
from notifications.dingtalk_todo import TodoClient
from tests.factories import BASE, IMPORTED, LINK_SECRET, MON, TZ, import_announced, small_plan, write_yaml
from tests.vendors import FakeDingTalk

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
SECRET = LINK_SECRET
LINKS = LinkMaker(BASE, SECRET, MON)
# (task code, milestone title, due): 教务处处长 owns task 1, 教务处副处长 task 2
JWC_STEPS = [("1", "制定方案", 1795190399000), ("1", "中期检查", 1797350399000), ("1", "", 1798732799000)]


@pytest.fixture
def office(engine, tmp_path, dingtalk_app):
    import_announced(engine, write_yaml(tmp_path / "p.yaml", small_plan()), now=IMPORTED)
    with session_scope(engine) as s:
        s.execute(update(Person).where(Person.name == "教务处处长").values(dingtalk_userid="jwc-uid"))
        s.execute(update(Person).where(Person.name == "教务处副处长").values(dingtalk_userid="jwc2-uid"))
    dingtalk_app.add_user("jwc-uid", "union-jwc")
    dingtalk_app.add_user("jwc2-uid", "union-jwc2")
    return engine


def client(api: FakeDingTalk, secret: str | None = None) -> TodoClient:
    return TodoClient(DingTalkApp(api.app_key, None, Secret(secret or api.secret), api_base=api.base_url, v1_base=api.base_url))


def configure(monkeypatch, api: FakeDingTalk) -> None:
    """duban's environment for the DingTalk app of ``api``."""
    for name, value in {
        "DUBAN_DINGTALK_APP_KEY": api.app_key,
        "DUBAN_DINGTALK_APP_SECRET": api.secret,
        "DUBAN_DINGTALK_AGENT_ID": "3000001",
        "DUBAN_DINGTALK_OAPI_BASE": api.base_url,
        "DUBAN_DINGTALK_API_BASE": api.base_url,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def sync(engine, todo_client, now=NOW):
    return sync_todos(engine, now=now, client=todo_client, links=LINKS, tz=TZ)


def rows(engine):
    with session_scope(engine) as s:
        return [
            (r.milestone_id, r.person_id, r.external_id, r.due_date, r.closed_at is not None, r.last_error)
            for r in s.scalars(select(ChatTodo).order_by(ChatTodo.id))
        ]


def milestones(engine, code):
    with session_scope(engine) as s:
        return s.execute(
            select(Milestone.id, Milestone.title, Milestone.due_date).join(Task).where(Task.code == code).order_by(Milestone.seq)
        ).all()


def creates(api):
    return [r for r in api.calls if r.method == "POST" and r.path.endswith("/tasks")]


def puts(api):
    return [(r.path, r.json) for r in api.calls if r.method == "PUT"]


def test_each_open_milestone_of_an_owner_with_a_dingtalk_id_becomes_a_dated_to_do(office, dingtalk_app):
    result = sync(office, client(dingtalk_app))
    assert (result.created, result.failed) == (4, 0)
    assert dingtalk_app.paths(methods=True)[:4] == [
        "GET /gettoken",
        "POST /topapi/v2/user/get",
        "POST /v1.0/oauth2/accessToken",
        "POST /v1.0/todo/users/union-jwc/tasks",
    ]
    assert dingtalk_app.calls[0].query == {"appkey": "dingappkey0123", "appsecret": "dingtalk-app-secret-XYZ"}
    assert dingtalk_app.calls[1].json == {"userid": "jwc-uid", "language": "zh_CN"}
    assert dingtalk_app.calls[2].json == {"appKey": "dingappkey0123", "appSecret": "dingtalk-app-secret-XYZ"}
    made = creates(dingtalk_app)
    assert [r.path for r in made] == ["/v1.0/todo/users/union-jwc/tasks"] * 3 + ["/v1.0/todo/users/union-jwc2/tasks"]
    assert all(r.query == {"operatorId": r.path.split("/")[4]} for r in made)
    assert all(r.headers["x-acs-dingtalk-access-token"] == "ding-v1-token-2" for r in made)  # the v1.0 token, not the oapi one
    first = made[0].json
    url = first["detailUrl"]["appUrl"]
    assert first == {
        "sourceId": first["sourceId"],
        "subject": "[1] 集体备课——制定方案",
        "description": "测试方案：第 1 步「制定方案」，请于 2026-11-20 前完成。点击查看任务并办理。",
        "dueTime": 1795190399000,  # 2026-11-20 23:59:59 in Beijing
        "executorIds": ["union-jwc"],
        "detailUrl": {"appUrl": url, "pcUrl": url},
    }
    assert [r.json["dueTime"] for r in made] == [1795190399000, 1797350399000, 1798732799000, 1814371199000]
    assert made[3].json["subject"].startswith("[2] 建设课程资源库") and made[3].json["executorIds"] == ["union-jwc2"]
    # the link is the owner's own 查看任务 link to the task
    assert url.startswith(f"{BASE}/l/")
    link_id = verify(SECRET, url.rsplit("/", 1)[1], today=MON)["l"]
    with session_scope(office) as s:
        link = s.get(Link, link_id)
        owner = s.scalar(select(Task.owner_id).where(Task.code == "1"))
        assert (link.action, link.person_id, link.task_id) == ("view", owner, s.scalar(select(Task.id).where(Task.code == "1")))
    # the store: one row per to-do with DingTalk's id; the next run asks nothing
    stored = rows(office)
    assert [(r[2], r[4], r[5]) for r in stored] == [("union-jwc/todo1", False, None), ("union-jwc/todo2", False, None),
                                                    ("union-jwc/todo3", False, None), ("union-jwc2/todo4", False, None)]  # fmt: skip
    before = len(dingtalk_app.calls)
    assert sync(office, client(dingtalk_app)).created == 0
    assert len(dingtalk_app.calls) == before + 0


def test_a_done_milestone_closes_its_to_do_exactly_once(office, dingtalk_app):
    todo = client(dingtalk_app)
    sync(office, todo)
    first = milestones(office, "1")[0]
    with session_scope(office) as s:
        s.execute(update(Milestone).where(Milestone.id == first.id).values(status=MilestoneState.DONE))
    later = NOW + dt.timedelta(minutes=5)
    assert sync(office, todo, later).closed == 1
    assert sync(office, todo, later + dt.timedelta(minutes=5)).closed == 0
    assert puts(dingtalk_app) == [("/v1.0/todo/users/union-jwc/tasks/todo1", {"done": True})]
    assert dingtalk_app.todos["todo1"].done and not dingtalk_app.todos["todo2"].done
    with session_scope(office) as s:
        row = s.scalar(select(ChatTodo).where(ChatTodo.milestone_id == first.id))
        closed = row.closed_at if row.closed_at.tzinfo else row.closed_at.replace(tzinfo=dt.UTC)  # SQLite keeps UTC without a zone
        assert closed == later and row.external_id == "union-jwc/todo1"


def test_a_moved_due_date_moves_the_to_do_and_an_archived_task_closes_them(office, dingtalk_app):
    todo = client(dingtalk_app)
    sync(office, todo)
    second = milestones(office, "1")[1]
    with session_scope(office) as s:
        s.execute(update(Milestone).where(Milestone.id == second.id).values(due_date=dt.date(2027, 1, 15)))
    assert sync(office, todo).updated == 1
    assert puts(dingtalk_app) == [("/v1.0/todo/users/union-jwc/tasks/todo2", {"dueTime": 1800028799000})]
    assert [r[3] for r in rows(office) if r[0] == second.id] == [dt.date(2027, 1, 15)]
    with session_scope(office) as s:
        s.execute(update(Task).where(Task.code == "1").values(archived_at=NOW))
    assert sync(office, todo).closed == 3
    assert [r[4] for r in rows(office)] == [True, True, True, False]


def test_a_reassigned_task_closes_the_old_owners_to_do_and_gives_the_new_one_theirs(office, dingtalk_app):
    todo = client(dingtalk_app)
    sync(office, todo)
    with session_scope(office) as s:
        jwc = s.scalar(select(Person.id).where(Person.name == "教务处处长"))
        s.execute(update(Task).where(Task.code == "2").values(owner_id=jwc))
    result = sync(office, todo)
    assert (result.created, result.closed) == (1, 1)
    assert puts(dingtalk_app) == [("/v1.0/todo/users/union-jwc2/tasks/todo4", {"done": True})]
    assert creates(dingtalk_app)[-1].json["executorIds"] == ["union-jwc"]


@pytest.mark.parametrize(
    ("prefix", "status", "body", "reason"),
    [
        (
            "/v1.0/todo/users/union-jwc/tasks",
            403,
            {"code": "Forbidden.AccessDenied.AccessTokenPermissionDenied", "message": "没有调用该接口的权限"},
            "创建钉钉待办失败：Forbidden.AccessDenied.AccessTokenPermissionDenied："
            "应用没有权限（请在钉钉开放平台为应用开通待办应用写权限）：没有调用该接口的权限（HTTP 403）",
        ),
        (
            "/topapi/v2/user/get",
            200,
            {"errcode": 60121, "errmsg": "找不到该用户"},
            "钉钉拒绝：60121 钉钉通讯录中找不到该用户（请核对人员表中的钉钉 userid）",
        ),
        (
            "/topapi/v2/user/get",
            200,
            {"errcode": 60011, "errmsg": "no permission"},
            "钉钉拒绝：60011 应用没有通讯录读取权限（请在钉钉开放平台为应用开通“通讯录个人信息读权限”）",
        ),
    ],
)
def test_a_refused_call_is_recorded_and_tried_again_next_run(office, dingtalk_app, prefix, status, body, reason):
    todo = client(dingtalk_app)
    dingtalk_app.fail(prefix, status, body, times=1)
    result = sync(office, todo)
    assert (result.created, result.failed) == (3, 1)
    first = rows(office)[0]
    assert (first[2], first[5]) == (None, reason)
    assert result.errors == [f"待办 1：{reason}"]
    again = sync(office, todo)
    assert (again.created, again.failed) == (1, 0)
    assert rows(office)[0][2] is not None and rows(office)[0][5] is None
    assert len(creates(dingtalk_app)) == 4 + (0 if prefix == "/topapi/v2/user/get" else 1)


def test_expired_tokens_are_fetched_again_once(office, dingtalk_app):
    todo = client(dingtalk_app)
    sync(office, todo)
    dingtalk_app.expire_tokens()
    dingtalk_app.add_user("sj-uid", "union-sj")
    with session_scope(office) as s:
        s.execute(update(Person).where(Person.name == "党委书记").values(dingtalk_userid="sj-uid"))
        sj = s.scalar(select(Person.id).where(Person.name == "党委书记"))
        s.execute(update(Task).where(Task.code == "2").values(owner_id=sj))
    dingtalk_app.calls.clear()
    result = sync(office, todo)  # task 2 handed to 党委书记: close 教务处副处长's, create his
    assert (result.created, result.closed, result.failed) == (1, 1, 0)
    assert dingtalk_app.paths(methods=True) == [
        "PUT /v1.0/todo/users/union-jwc2/tasks/todo4",  # 401: the v1.0 token expired
        "POST /v1.0/oauth2/accessToken",
        "PUT /v1.0/todo/users/union-jwc2/tasks/todo4",
        "POST /topapi/v2/user/get",  # 42001: the oapi token expired
        "GET /gettoken",
        "POST /topapi/v2/user/get",
        "POST /v1.0/todo/users/union-sj/tasks",
    ]
    assert dingtalk_app.todos["todo4"].done and dingtalk_app.todos["todo5"].union_id == "union-sj"


def test_a_wrong_app_secret_is_named(office, dingtalk_app):
    result = sync(office, client(dingtalk_app, "wrong"))
    assert result.failed == 4 and {r[5] for r in rows(office)} == {"钉钉拒绝：40089 应用的 AppKey 或 AppSecret 不正确"}


def test_due_time_is_the_end_of_the_day_where_the_institution_is():
    assert due_ms(dt.date(2026, 11, 20), TZ) == 1795190399000
    assert due_ms(dt.date(2026, 11, 20), ZoneInfo("UTC")) == 1795219199000


def test_configured_from_the_environment(office, dingtalk_app, monkeypatch, database_url):
    monkeypatch.setenv("DUBAN_DATABASE_URL", database_url)
    get_settings.cache_clear()
    assert sync_configured(Runtime(get_settings()), now=NOW) is None  # no DingTalk app: nothing asked
    assert dingtalk_app.calls == []
    configure(monkeypatch, dingtalk_app)
    result = sync_configured(Runtime(get_settings()), now=NOW)
    get_settings.cache_clear()
    assert result is not None and (result.created, result.failed) == (4, 0)


def test_duban_deliver_keeps_the_to_dos_too(office, dingtalk_app, use_database, monkeypatch):
    from typer.testing import CliRunner

    from duban.cli.main import app

    configure(monkeypatch, dingtalk_app)
    dingtalk_app.fail("/topapi/v2/user/get", 200, {"errcode": 60121, "errmsg": "找不到该用户"})
    result = CliRunner().invoke(app, ["deliver"])
    get_settings.cache_clear()
    assert "钉钉待办：新建 3 项，改期 0 项，关闭 0 项。" in result.output
    assert (
        "钉钉待办同步失败（下次发送时重试）：待办 1：钉钉拒绝：60121 钉钉通讯录中找不到该用户（请核对人员表中的钉钉 userid）"
        in result.output
    )
