"""Local fake servers of the chat vendors' app APIs, as documented: WeCom (企业微信) application
messages, DingTalk (钉钉) 工作通知, 通讯录 and 待办, Feishu (飞书) / Lark app messages.  One fake per
vendor, on the shared server of tests/servers.py (:class:`~tests.servers.JsonFake`).

Each issues access tokens from its token endpoint (checking the app's credentials), accepts a
message only with a live token, and answers like the vendor: WeCom and DingTalk with ``errcode`` /
``errmsg`` (HTTP 200), Feishu with ``code`` / ``msg`` (HTTP 400 for a refusal).  Switches give the
documented refusals: ``expire_tokens()`` (every token issued so far has expired), ``refuse_ip()``
(the server's IP is not trusted), ``unknown_users`` (the person is not reachable by the app),
``rate_limit(n)`` (the next n messages are over the rate limit) and ``fail(path_prefix, status,
body, times=1)`` (an error answer injected).  ``calls`` records every request (``paths()``, with
``methods=True`` as "GET /gettoken"); ``sent`` the messages accepted.

DingTalk (:class:`FakeDingTalk`, ``dingtalk_app``) is one server for the old-style ``oapi`` and the
new-style v1.0 API: ``GET /gettoken`` (tokens ding-token-1, -2, …), ``POST
/topapi/message/corpconversation/asyncsend_v2``, ``POST /topapi/v2/user/get`` and ``POST
/topapi/user/getbyunionid`` (the directory: ``add_user(userid, unionid)``), ``POST
/v1.0/oauth2/accessToken`` (tokens ding-v1-token-N, only good for the v1.0 API: HTTP 401
``InvalidAuthentication`` otherwise), ``POST /v1.0/todo/users/{unionId}/tasks`` and ``PUT
/v1.0/todo/users/{unionId}/tasks/{id}`` (``todos``: ids todo1, todo2, …), and the sign-in's
``POST /v1.0/oauth2/userAccessToken`` and ``GET /v1.0/contact/users/me``.  WeCom
(:class:`FakeWeCom`, ``wecom_app``) answers the sign-in's ``/cgi-bin/auth/getuserinfo`` too.  The
sign-in codes (``codes``) are given by the authorize pages of tests/idp.py.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.local_http import JsonFake, ReceivedRequest

Call = ReceivedRequest


class FakeVendor(JsonFake):
    """The switches shared by the vendors; a vendor subclass answers ``route``."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[Call] = []
        self.unknown_users: set[str] = set()
        self.ip_refused = False
        self.limited = 0
        self.issued: list[str] = []
        self.live: set[str] = set()
        self.failures: list[list[Any]] = []  # [path prefix, status, body, times]

    # -- switches ----------------------------------------------------------------------------
    def expire_tokens(self) -> None:
        with self.lock:
            self.live.clear()

    def refuse_ip(self, on: bool = True) -> None:
        self.ip_refused = on

    def rate_limit(self, n: int = 1) -> None:
        self.limited = n

    def fail(self, prefix: str, status: int, body: dict[str, Any], times: int = 1) -> None:
        """Answer the next ``times`` requests whose path starts with ``prefix`` with ``status`` and ``body``."""
        with self.lock:
            self.failures.append([prefix, status, body, times])

    def new_token(self, prefix: str) -> str:
        with self.lock:
            token = f"{prefix}-{len(self.issued) + 1}"
            self.issued.append(token)
            self.live.add(token)
            return token

    def token_state(self, token: str | None, prefix: str = "") -> str:
        """ "live", "expired" (issued, no longer valid) or "invalid" (never issued, or of another kind)."""
        with self.lock:
            if token is None or not token.startswith(prefix):
                return "invalid"
            if token in self.live:
                return "live"
            return "expired" if token in self.issued else "invalid"

    def take_limit(self) -> bool:
        with self.lock:
            if self.limited > 0:
                self.limited -= 1
                return True
            return False

    def paths(self, methods: bool = False) -> list[str]:
        with self.lock:
            return [f"{c.method} {c.path}" if methods else c.path for c in self.calls]

    def answer(self, call: Call) -> tuple[int, Any]:
        for failure in self.failures:
            if call.path.startswith(failure[0]) and failure[3] > 0:
                failure[3] -= 1
                return failure[1], failure[2]
        return self.route(call)

    def route(self, call: Call) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError


def _bytes(text: Any) -> int:
    return len(str(text or "").encode("utf-8"))


class FakeWeCom(FakeVendor):
    """qyapi.weixin.qq.com: ``/cgi-bin/gettoken``, ``/cgi-bin/message/send`` and the sign-in's
    ``/cgi-bin/auth/getuserinfo`` (40029 for a code it did not give or gave already)."""

    corp_id, agent_id, secret = "ww0123456789abcdef", 1000002, "wecom-app-secret-XYZ"

    def __init__(self) -> None:
        super().__init__()
        self.codes: dict[str, str | None] = {}  # sign-in code -> the member's userid (None: an outsider)

    def route(self, call: Call) -> tuple[int, dict[str, Any]]:
        q = call.query
        if call.path == "/cgi-bin/gettoken":
            if q.get("corpid") != self.corp_id:
                return 200, {"errcode": 40013, "errmsg": "invalid corpid"}
            if q.get("corpsecret") != self.secret:
                return 200, {"errcode": 40001, "errmsg": "invalid credential"}
            return 200, {"errcode": 0, "errmsg": "ok", "access_token": self.new_token("wecom-token"), "expires_in": 7200}
        if call.path not in ("/cgi-bin/message/send", "/cgi-bin/auth/getuserinfo"):
            return 404, {"errcode": 404, "errmsg": "not found"}
        state = self.token_state(q.get("access_token"))
        if state != "live":
            return 200, {"errcode": 42001, "errmsg": "access_token expired"} if state == "expired" else {
                "errcode": 40014,
                "errmsg": "invalid access_token",
            }
        if call.path == "/cgi-bin/auth/getuserinfo":
            return self._user_of_code(q.get("code", ""))
        if self.ip_refused:
            return 200, {"errcode": 60020, "errmsg": "not allow to access from your ip, from ip: 127.0.0.1"}
        if self.take_limit():
            return 200, {"errcode": 45009, "errmsg": "api freq out of limit"}
        body = call.json or {}
        card = body.get("textcard") or {}
        if body.get("agentid") != self.agent_id:
            return 200, {"errcode": 40056, "errmsg": "invalid agentid"}
        if (
            body.get("msgtype") != "textcard"
            or not card.get("url")
            or _bytes(card.get("title")) > 128
            or _bytes(card.get("description")) > 512
        ):
            return 200, {"errcode": 40058, "errmsg": "invalid textcard"}
        if len(str(card.get("btntxt", ""))) > 4:
            return 200, {"errcode": 40058, "errmsg": "btntxt exceed max length"}
        if body.get("touser") in self.unknown_users:
            return 200, {"errcode": 81013, "errmsg": "user & party & tag all invalid"}
        self.sent.append(call)
        return 200, {"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": f"msg-{len(self.sent)}"}

    def _user_of_code(self, code: str) -> tuple[int, dict[str, Any]]:
        """The sign-in: a code of ``codes`` (given by the authorize page, tests/idp.py) is good once."""
        if code not in self.codes:
            return 200, {"errcode": 40029, "errmsg": "invalid code"}
        userid = self.codes.pop(code)
        if userid is None:  # not a member: WeCom answers the outsider's openid only
            return 200, {"errcode": 0, "errmsg": "ok", "openid": "oAAAA-outsider"}
        return 200, {"errcode": 0, "errmsg": "ok", "userid": userid, "user_ticket": "ticket-not-needed"}


@dataclass
class FakeTodo:
    id: str
    union_id: str
    body: dict[str, Any]
    done: bool = False
    updates: list[dict[str, Any]] = field(default_factory=list)


class FakeDingTalk(FakeVendor):
    """oapi.dingtalk.com and api.dingtalk.com: the app's tokens, 工作通知, the directory, 待办, and the
    sign-in's ``/v1.0/oauth2/userAccessToken`` (HTTP 400 for an authCode it did not give or gave
    already) and ``/v1.0/contact/users/me``."""

    app_key, agent_id, secret = "dingappkey0123", 2876543210, "dingtalk-app-secret-XYZ"
    OAPI_TOKEN, V1_TOKEN = "ding-token", "ding-v1-token"

    def __init__(self) -> None:
        super().__init__()
        self.users: dict[str, str] = {}  # userid -> unionid
        self.codes: dict[str, str] = {}  # sign-in authCode -> unionId (given by the authorize page, tests/idp.py)
        self.user_tokens: dict[str, str] = {}  # a user's access token -> unionId
        self.todos: dict[str, FakeTodo] = {}
        self._todo_ids = itertools.count(1)

    def add_user(self, userid: str, unionid: str) -> None:
        self.users[userid] = unionid

    def route(self, call: Call) -> tuple[int, dict[str, Any]]:
        q, body = call.query, call.json or {}
        if call.path == "/gettoken":
            if q.get("appkey") != self.app_key or q.get("appsecret") != self.secret:
                return 200, {"errcode": 40089, "errmsg": "不合法的appKey或appSecret"}
            return 200, {"errcode": 0, "errmsg": "ok", "access_token": self.new_token(self.OAPI_TOKEN), "expires_in": 7200}
        if call.path == "/v1.0/oauth2/accessToken":
            if (body.get("appKey"), body.get("appSecret")) != (self.app_key, self.secret):
                return 400, {"code": "invalidClientIdOrSecret", "message": "无效的clientId或者clientSecret"}
            return 200, {"accessToken": self.new_token(self.V1_TOKEN), "expireIn": 7200}
        if call.path == "/v1.0/oauth2/userAccessToken":
            return self._user_token(body)
        if call.path == "/v1.0/contact/users/me":
            union = self.user_tokens.get(call.headers.get("x-acs-dingtalk-access-token", ""))
            if union is None:
                return 401, {"code": "InvalidAuthentication", "message": "不合法的access_token"}
            return 200, {"nick": "用户", "unionId": union, "openId": "open-1", "stateCode": "86"}
        if call.path.startswith("/v1.0/todo/users/"):
            if self.token_state(call.headers.get("x-acs-dingtalk-access-token"), self.V1_TOKEN) != "live":
                return 401, {"code": "InvalidAuthentication", "message": "不合法的access_token"}
            return self._todo(call)
        oapi = {
            "/topapi/message/corpconversation/asyncsend_v2": self._send,
            "/topapi/v2/user/get": self._user,
            "/topapi/user/getbyunionid": self._by_union,
        }
        if call.path not in oapi:
            return 404, {"errcode": 404, "errmsg": "not found"}
        state = self.token_state(q.get("access_token"), self.OAPI_TOKEN)
        if state != "live":
            return 200, {"errcode": 42001, "errmsg": "access_token超时"} if state == "expired" else {
                "errcode": 40014,
                "errmsg": "不合法的access_token",
            }
        return oapi[call.path](body)

    def _user_token(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The sign-in: an authCode is good once, for this app's key and secret."""
        if (body.get("clientId"), body.get("clientSecret"), body.get("grantType")) != (self.app_key, self.secret, "authorization_code"):
            return 400, {"code": "invalidClientIdOrSecret", "message": "无效的clientId或clientSecret"}
        union = self.codes.pop(str(body.get("code")), None)
        if union is None:
            return 400, {"code": "invalidAuthCode", "message": "authCode无效或已使用"}
        token = self.new_token("ding-user-token")
        self.user_tokens[token] = union
        return 200, {"accessToken": token, "refreshToken": "r", "expireIn": 7200}

    def _send(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.ip_refused:
            return 200, {"errcode": 60020, "errmsg": "访问ip不在白名单之中"}
        if self.take_limit():
            return 200, {"errcode": 90018, "errmsg": "当前企业调用该接口超过每分钟调用上限"}
        card = (body.get("msg") or {}).get("action_card") or {}
        if body.get("agent_id") != self.agent_id:
            return 200, {"errcode": 400002, "errmsg": "无效的agent_id"}
        if not all(card.get(k) for k in ("title", "markdown", "single_title", "single_url")):
            return 200, {"errcode": 400002, "errmsg": "action_card 参数不完整"}
        if body.get("userid_list") in self.unknown_users:
            return 200, {"errcode": 33012, "errmsg": "无效的USERID"}
        self.sent.append(self.calls[-1])
        return 200, {"errcode": 0, "errmsg": "ok", "task_id": len(self.sent), "request_id": f"req{len(self.sent)}"}

    def _user(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        userid = body.get("userid")
        if userid not in self.users:
            return 200, {"errcode": 60121, "errmsg": "找不到该用户"}
        return 200, {"errcode": 0, "errmsg": "ok", "result": {"userid": userid, "unionid": self.users[userid], "name": userid}}

    def _by_union(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        found = [userid for userid, union in self.users.items() if union == body.get("unionid")]
        if not found:
            return 200, {"errcode": 60121, "errmsg": "找不到该用户"}
        return 200, {"errcode": 0, "errmsg": "ok", "result": {"contact_type": 0, "userid": found[0]}, "request_id": "r1"}

    def _todo(self, call: Call) -> tuple[int, dict[str, Any]]:
        m = re.fullmatch(r"/v1\.0/todo/users/([^/]+)/tasks(?:/([^/]+))?", call.path)
        if m is None or call.query.get("operatorId") != m.group(1):
            return 400, {"code": "invalidParameter", "message": "operatorId 不正确"}
        union, task_id = m.group(1), m.group(2)
        body = call.json or {}
        if call.method == "POST" and task_id is None:
            todo = FakeTodo(f"todo{next(self._todo_ids)}", union, body)
            self.todos[todo.id] = todo
            return 200, {"id": todo.id, "subject": body.get("subject"), "dueTime": body.get("dueTime"), "done": False}
        todo = self.todos.get(task_id or "")
        if call.method != "PUT" or todo is None or todo.union_id != union:
            return 404, {"code": "todo.task.notExist", "message": "待办不存在"}
        todo.updates.append(body)
        if "done" in body:
            todo.done = bool(body["done"])
        if "dueTime" in body:
            todo.body["dueTime"] = body["dueTime"]
        return 200, {"result": True}


class FakeFeishu(FakeVendor):
    """open.feishu.cn: ``/open-apis/auth/v3/tenant_access_token/internal`` and ``/open-apis/im/v1/messages``."""

    app_id, secret = "cli_a1b2c3d4e5f6", "feishu-app-secret-XYZ"

    def route(self, call: Call) -> tuple[int, dict[str, Any]]:
        body = call.json or {}
        if call.path == "/open-apis/auth/v3/tenant_access_token/internal":
            if body.get("app_id") != self.app_id or body.get("app_secret") != self.secret:
                return 400, {"code": 10014, "msg": "app secret invalid"}
            return 200, {"code": 0, "msg": "ok", "tenant_access_token": self.new_token("t-feishu"), "expire": 7200}
        if call.path != "/open-apis/im/v1/messages":
            return 404, {"code": 404, "msg": "not found"}
        auth = call.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return 400, {"code": 99991661, "msg": "Missing access token for authorization"}
        if self.token_state(auth.removeprefix("Bearer ")) != "live":
            return 400, {"code": 99991663, "msg": "Invalid access token for authorization"}
        if self.ip_refused:
            return 400, {"code": 99991401, "msg": "ip not in whitelist"}
        if self.take_limit():
            return 400, {"code": 99991400, "msg": "request trigger frequency limit"}
        if call.query.get("receive_id_type") != "open_id" or body.get("msg_type") != "interactive":
            return 400, {"code": 230001, "msg": "invalid receive_id_type or msg_type"}
        try:
            json.loads(body.get("content") or "")
        except ValueError:
            return 400, {"code": 230001, "msg": "content is not a JSON string"}
        if body.get("receive_id") in self.unknown_users:
            return 400, {"code": 230013, "msg": "Bot has NO availability to this user."}
        self.sent.append(call)
        return 200, {"code": 0, "msg": "success", "data": {"message_id": f"om_{len(self.sent)}"}}


def _serve(fake: FakeVendor) -> Iterator[Any]:
    from notifications.apps.base import TOKENS

    TOKENS.clear()  # a token of an earlier test's server on the same port is not this one's
    yield fake.start()
    fake.stop()
    TOKENS.clear()


@pytest.fixture
def wecom_app() -> Iterator[FakeWeCom]:
    yield from _serve(FakeWeCom())


@pytest.fixture
def dingtalk_app() -> Iterator[FakeDingTalk]:
    yield from _serve(FakeDingTalk())


@pytest.fixture
def feishu_app() -> Iterator[FakeFeishu]:
    yield from _serve(FakeFeishu())


@dataclass
class Vendors:
    wecom: FakeWeCom
    dingtalk: FakeDingTalk
    feishu: FakeFeishu
    env: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def app_vendors(monkeypatch, wecom_app, dingtalk_app, feishu_app) -> Iterator[Vendors]:
    """All three fakes, and duban's environment configured for them (the token cache emptied)."""
    from duban.settings import get_settings

    wecom, dingtalk, feishu = wecom_app, dingtalk_app, feishu_app
    env = {
        "DUBAN_WECOM_CORP_ID": wecom.corp_id,
        "DUBAN_WECOM_AGENT_ID": str(wecom.agent_id),
        "DUBAN_WECOM_SECRET": wecom.secret,
        "DUBAN_WECOM_API_BASE": wecom.base_url,
        "DUBAN_DINGTALK_APP_KEY": dingtalk.app_key,
        "DUBAN_DINGTALK_AGENT_ID": str(dingtalk.agent_id),
        "DUBAN_DINGTALK_APP_SECRET": dingtalk.secret,
        "DUBAN_DINGTALK_OAPI_BASE": dingtalk.base_url,
        "DUBAN_FEISHU_APP_ID": feishu.app_id,
        "DUBAN_FEISHU_APP_SECRET": feishu.secret,
        "DUBAN_FEISHU_API_BASE": feishu.base_url,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield Vendors(wecom, dingtalk, feishu, env)
