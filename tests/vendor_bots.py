"""Local fakes of the chat vendors' group bots and of DingTalk's to-do API, as their documentation
describes them (answers, error codes, token lifetimes).  Import the fixtures into a test module:
``from tests.vendor_bots import group_bots_fixture  # noqa: F401`` (the fixture is ``group_bots``;
likewise ``dingtalk_api_fixture`` → ``dingtalk_api``).

Group bots (``group_bots`` → :class:`FakeGroupBots`), one server for all four vendors; every
answer is HTTP 200 (as the vendors do), the refusal is in the body:

- WeCom group bot ``POST /cgi-bin/webhook/send?key=K`` → ``{"errcode":0,"errmsg":"ok"}``;
- DingTalk custom bot ``POST /robot/send?access_token=T[&timestamp&sign]`` → ``{"errcode":0,...}``;
  a bot registered with a secret (``bots.dingtalk_secret(T, S)``) checks the signature
  (Base64 HMAC-SHA256 of "timestamp\\nsecret") and answers 310000 when it does not match;
- Feishu ``POST /open-apis/bot/v2/hook/T`` and Lark ``POST /lark/open-apis/bot/v2/hook/T`` →
  ``{"code":0,"msg":"success","data":{}}``.

``bots.refuse(token, body, times=None)`` answers the bot named by its key/token with ``body``
(the next ``times`` requests, or from now on).  ``bots.point(monkeypatch)`` points apprise's
plugins (``notify_url``) at the server.  ``bots.received(token)`` lists the texts a bot got.

DingTalk API (``dingtalk_api`` → :class:`FakeDingTalkAPI`): ``GET /gettoken``,
``POST /topapi/v2/user/get``, ``POST /v1.0/oauth2/accessToken``, ``POST /v1.0/todo/users/{unionId}/tasks``
and ``PUT /v1.0/todo/users/{unionId}/tasks/{id}``.  Tokens live ``token_seconds`` on the
server's clock (``api.advance(seconds)`` moves it; ``api.expire_tokens()`` ends every token now);
an expired oapi token gets ``{"errcode":42001}``, an unknown one 40014, the v1.0 API answers
401 ``InvalidAuthentication``.  ``api.fail(path_prefix, status, body, times=1)`` injects an
error answer; ``api.todos`` holds the to-dos it keeps (ids todo1, todo2, … ; tokens tok1, tok2, …); ``api.requests`` every request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

LOCALHOST = "127.0.0.1"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any


class _Server:
    """A threaded local HTTP server that records requests and answers through ``answer``."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                req = Request(
                    self.command,
                    unquote(split.path),
                    {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()},
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with server.lock:
                    server.requests.append(req)
                    status, answer = server.answer(req)
                data = json.dumps(answer, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _handle  # noqa: N815

            def log_message(self, format, *args):  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer((LOCALHOST, 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://{LOCALHOST}:{self.httpd.server_address[1]}"

    def answer(self, req: Request) -> tuple[int, Any]:
        raise NotImplementedError

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------------------------------------
# Group bots


class FakeGroupBots(_Server):
    def __init__(self) -> None:
        super().__init__()
        self.refusals: dict[str, list[list[Any]]] = {}  # token -> [[body, times or None]]
        self.secrets: dict[str, str] = {}

    def refuse(self, token: str, body: dict[str, Any], times: int | None = None) -> None:
        with self.lock:
            self.refusals.setdefault(token, []).append([body, times])

    def dingtalk_secret(self, token: str, secret: str) -> None:
        self.secrets[token] = secret

    def point(self, monkeypatch) -> None:
        from apprise.plugins.dingtalk import NotifyDingTalk
        from apprise.plugins.feishu import NotifyFeishu
        from apprise.plugins.lark import NotifyLark
        from apprise.plugins.wecombot import NotifyWeComBot

        monkeypatch.setattr(NotifyWeComBot, "notify_url", self.base_url + "/cgi-bin/webhook/send?key={key}")
        monkeypatch.setattr(NotifyDingTalk, "notify_url", self.base_url + "/robot/send?access_token={token}")
        monkeypatch.setattr(NotifyFeishu, "notify_url", self.base_url + "/open-apis/bot/v2/hook/{token}")
        monkeypatch.setattr(NotifyLark, "notify_url", self.base_url + "/lark/open-apis/bot/v2/hook/")

    @staticmethod
    def token_of(req: Request) -> str:
        return req.query.get("key") or req.query.get("access_token") or req.path.rsplit("/", 1)[-1]

    @staticmethod
    def text_of(req: Request) -> str:
        body = req.json or {}
        return (body.get("text") or {}).get("content") or (body.get("content") or {}).get("text") or ""

    def received(self, token: str) -> list[str]:
        with self.lock:
            return [self.text_of(r) for r in self.requests if self.token_of(r) == token]

    def answer(self, req: Request) -> tuple[int, Any]:
        token = self.token_of(req)
        feishu = "/open-apis/bot/v2/hook/" in req.path
        stack = self.refusals.get(token)
        if stack:
            entry = stack[-1]
            if entry[1] is not None:
                entry[1] -= 1
                if entry[1] <= 0:
                    stack.pop()
            return 200, entry[0]
        if req.path == "/robot/send" and token in self.secrets and not self._signed(req, self.secrets[token]):
            return 200, {"errcode": 310000, "errmsg": "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"}
        return 200, ({"code": 0, "msg": "success", "data": {}} if feishu else {"errcode": 0, "errmsg": "ok"})

    @staticmethod
    def _signed(req: Request, secret: str) -> bool:
        stamp = req.query.get("timestamp", "")
        digest = hmac.new(secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256).digest()
        return hmac.compare_digest(base64.b64encode(digest).decode(), req.query.get("sign", ""))


@pytest.fixture(name="group_bots")
def group_bots_fixture(monkeypatch) -> Iterator[FakeGroupBots]:
    bots = FakeGroupBots()
    bots.point(monkeypatch)
    yield bots
    bots.stop()


# ---------------------------------------------------------------------------------------------
# DingTalk API: tokens, users, to-dos


@dataclass
class FakeTodo:
    id: str
    union_id: str
    body: dict[str, Any]
    done: bool = False
    updates: list[dict[str, Any]] = field(default_factory=list)


class FakeDingTalkAPI(_Server):
    APP_KEY, APP_SECRET = "ding-app-key", "ding-app-secret"

    def __init__(self, token_seconds: int = 7200) -> None:
        super().__init__()
        self.token_seconds = token_seconds
        self.clock = 0.0
        self.tokens: dict[str, float] = {}  # token -> expiry on the server's clock
        self.users: dict[str, str] = {}  # userid -> unionid
        self.todos: dict[str, FakeTodo] = {}
        self.failures: list[list[Any]] = []  # [prefix, status, body, times]
        self._token_ids = itertools.count(1)
        self._todo_ids = itertools.count(1)

    def add_user(self, userid: str, unionid: str) -> None:
        self.users[userid] = unionid

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.clock += seconds

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens = dict.fromkeys(self.tokens, self.clock)

    def fail(self, prefix: str, status: int, body: dict[str, Any], times: int = 1) -> None:
        with self.lock:
            self.failures.append([prefix, status, body, times])

    def paths(self) -> list[str]:
        with self.lock:
            return [f"{r.method} {r.path}" for r in self.requests]

    def _issue(self) -> str:
        token = f"tok{next(self._token_ids)}"
        self.tokens[token] = self.clock + self.token_seconds
        return token

    def _token_state(self, token: str | None) -> str:
        if not token or token not in self.tokens:
            return "unknown"
        return "ok" if self.tokens[token] > self.clock else "expired"

    def answer(self, req: Request) -> tuple[int, Any]:
        for f in self.failures:
            if req.path.startswith(f[0]) and f[3] > 0:
                f[3] -= 1
                return f[1], f[2]
        if req.path == "/gettoken":
            if (req.query.get("appkey"), req.query.get("appsecret")) != (self.APP_KEY, self.APP_SECRET):
                return 200, {"errcode": 40089, "errmsg": "不合法的corpid或corpsecret"}
            return 200, {"errcode": 0, "errmsg": "ok", "access_token": self._issue(), "expires_in": self.token_seconds}
        if req.path == "/v1.0/oauth2/accessToken":
            body = req.json or {}
            if (body.get("appKey"), body.get("appSecret")) != (self.APP_KEY, self.APP_SECRET):
                return 400, {"code": "invalidClientIdOrSecret", "message": "无效的clientId或者clientSecret"}
            return 200, {"accessToken": self._issue(), "expireIn": self.token_seconds}
        if req.path == "/topapi/v2/user/get":
            return self._user(req)
        if req.path.startswith("/v1.0/todo/users/"):
            state = self._token_state(req.headers.get("x-acs-dingtalk-access-token"))
            if state != "ok":
                return 401, {"code": "InvalidAuthentication", "message": "不合法的access_token"}
            return self._todo(req)
        return 404, {"code": "NotFound", "message": "not found"}

    def _user(self, req: Request) -> tuple[int, Any]:
        state = self._token_state(req.query.get("access_token"))
        if state != "ok":
            return 200, {
                "errcode": 42001 if state == "expired" else 40014,
                "errmsg": "access_token超时" if state == "expired" else "不合法的access_token",
            }
        userid = (req.json or {}).get("userid")
        if userid not in self.users:
            return 200, {"errcode": 60121, "errmsg": "找不到该用户"}
        return 200, {"errcode": 0, "errmsg": "ok", "result": {"userid": userid, "unionid": self.users[userid], "name": userid}}

    def _todo(self, req: Request) -> tuple[int, Any]:
        m = re.fullmatch(r"/v1\.0/todo/users/([^/]+)/tasks(?:/([^/]+))?", req.path)
        if m is None or req.query.get("operatorId") != m.group(1):
            return 400, {"code": "invalidParameter", "message": "operatorId 不正确"}
        union, task_id = m.group(1), m.group(2)
        body = req.json or {}
        if req.method == "POST" and task_id is None:
            todo = FakeTodo(f"todo{next(self._todo_ids)}", union, body)
            self.todos[todo.id] = todo
            return 200, {"id": todo.id, "subject": body.get("subject"), "dueTime": body.get("dueTime"), "done": False}
        todo = self.todos.get(task_id or "")
        if req.method != "PUT" or todo is None or todo.union_id != union:
            return 404, {"code": "todo.task.notExist", "message": "待办不存在"}
        todo.updates.append(body)
        if "done" in body:
            todo.done = bool(body["done"])
        if "dueTime" in body:
            todo.body["dueTime"] = body["dueTime"]
        return 200, {"result": True}


@pytest.fixture(name="dingtalk_api")
def dingtalk_api_fixture() -> Iterator[FakeDingTalkAPI]:
    api = FakeDingTalkAPI()
    yield api
    api.stop()
