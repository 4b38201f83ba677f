"""Local fake servers of the chat vendors' app APIs, as documented: WeCom (企业微信) application
messages, DingTalk (钉钉) 工作通知, Feishu (飞书) / Lark app messages.

Each issues access tokens from its token endpoint (checking the app's credentials), accepts a
message only with a live token, and answers like the vendor: WeCom and DingTalk with ``errcode`` /
``errmsg`` (HTTP 200), Feishu with ``code`` / ``msg`` (HTTP 400 for a refusal).  Switches give the
documented refusals: ``expire_tokens()`` (every token issued so far has expired), ``refuse_ip()``
(the server's IP is not trusted), ``unknown_users`` (the person is not reachable by the app) and
``rate_limit(n)`` (the next n messages are over the rate limit).  ``calls`` records every request;
``sent`` the messages accepted.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.servers import LOCALHOST


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any


class FakeVendor:
    """The HTTP server and the switches; a vendor subclass answers ``route``."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.sent: list[Call] = []
        self.unknown_users: set[str] = set()
        self.ip_refused = False
        self.limited = 0
        self.issued: list[str] = []
        self.live: set[str] = set()
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- switches ----------------------------------------------------------------------------
    def expire_tokens(self) -> None:
        with self.lock:
            self.live.clear()

    def refuse_ip(self, on: bool = True) -> None:
        self.ip_refused = on

    def rate_limit(self, n: int = 1) -> None:
        self.limited = n

    def new_token(self, prefix: str) -> str:
        with self.lock:
            token = f"{prefix}-{len(self.issued) + 1}"
            self.issued.append(token)
            self.live.add(token)
            return token

    def token_state(self, token: str | None) -> str:
        """ "live", "expired" (issued, no longer valid) or "invalid" (never issued)."""
        with self.lock:
            if token in self.live:
                return "live"
            return "expired" if token in self.issued else "invalid"

    def take_limit(self) -> bool:
        with self.lock:
            if self.limited > 0:
                self.limited -= 1
                return True
            return False

    def paths(self) -> list[str]:
        return [c.path for c in self.calls]

    def route(self, call: Call) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    # -- the server --------------------------------------------------------------------------
    def start(self) -> FakeVendor:
        vendor = self

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
                query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
                call = Call(self.command, split.path, query, {k.lower(): v for k, v in self.headers.items()}, body)
                with vendor.lock:
                    vendor.calls.append(call)
                status, answer = vendor.route(call)
                data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle  # noqa: N815

            def log_message(self, format, *args):  # noqa: A002
                pass

        self._server = ThreadingHTTPServer((LOCALHOST, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://{LOCALHOST}:{self._server.server_address[1]}"


def _bytes(text: Any) -> int:
    return len(str(text or "").encode("utf-8"))


class FakeWeCom(FakeVendor):
    """qyapi.weixin.qq.com: ``/cgi-bin/gettoken`` and ``/cgi-bin/message/send``."""

    corp_id, agent_id, secret = "ww0123456789abcdef", 1000002, "wecom-app-secret-XYZ"

    def route(self, call: Call) -> tuple[int, dict[str, Any]]:
        q = call.query
        if call.path == "/cgi-bin/gettoken":
            if q.get("corpid") != self.corp_id:
                return 200, {"errcode": 40013, "errmsg": "invalid corpid"}
            if q.get("corpsecret") != self.secret:
                return 200, {"errcode": 40001, "errmsg": "invalid credential"}
            return 200, {"errcode": 0, "errmsg": "ok", "access_token": self.new_token("wecom-token"), "expires_in": 7200}
        if call.path != "/cgi-bin/message/send":
            return 404, {"errcode": 404, "errmsg": "not found"}
        state = self.token_state(q.get("access_token"))
        if state != "live":
            return 200, {"errcode": 42001, "errmsg": "access_token expired"} if state == "expired" else {
                "errcode": 40014,
                "errmsg": "invalid access_token",
            }
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


class FakeDingTalk(FakeVendor):
    """oapi.dingtalk.com: ``/gettoken`` and ``/topapi/message/corpconversation/asyncsend_v2``."""

    app_key, agent_id, secret = "dingappkey0123", 2876543210, "dingtalk-app-secret-XYZ"

    def route(self, call: Call) -> tuple[int, dict[str, Any]]:
        q = call.query
        if call.path == "/gettoken":
            if q.get("appkey") != self.app_key or q.get("appsecret") != self.secret:
                return 200, {"errcode": 40089, "errmsg": "不合法的appKey或appSecret"}
            return 200, {"errcode": 0, "errmsg": "ok", "access_token": self.new_token("ding-token"), "expires_in": 7200}
        if call.path != "/topapi/message/corpconversation/asyncsend_v2":
            return 404, {"errcode": 404, "errmsg": "not found"}
        state = self.token_state(q.get("access_token"))
        if state != "live":
            return 200, {"errcode": 42001, "errmsg": "access_token超时"} if state == "expired" else {
                "errcode": 40014,
                "errmsg": "不合法的access_token",
            }
        if self.ip_refused:
            return 200, {"errcode": 60020, "errmsg": "访问ip不在白名单之中"}
        if self.take_limit():
            return 200, {"errcode": 90018, "errmsg": "当前企业调用该接口超过每分钟调用上限"}
        body = call.json or {}
        card = (body.get("msg") or {}).get("action_card") or {}
        if body.get("agent_id") != self.agent_id:
            return 200, {"errcode": 400002, "errmsg": "无效的agent_id"}
        if not all(card.get(k) for k in ("title", "markdown", "single_title", "single_url")):
            return 200, {"errcode": 400002, "errmsg": "action_card 参数不完整"}
        if body.get("userid_list") in self.unknown_users:
            return 200, {"errcode": 33012, "errmsg": "无效的USERID"}
        self.sent.append(call)
        return 200, {"errcode": 0, "errmsg": "ok", "task_id": len(self.sent), "request_id": f"req{len(self.sent)}"}


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


@pytest.fixture
def wecom_app() -> Iterator[FakeWeCom]:
    server = FakeWeCom().start()
    yield server
    server.stop()


@pytest.fixture
def dingtalk_app() -> Iterator[FakeDingTalk]:
    server = FakeDingTalk().start()
    yield server
    server.stop()


@pytest.fixture
def feishu_app() -> Iterator[FakeFeishu]:
    server = FakeFeishu().start()
    yield server
    server.stop()


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
    from notifications.apps.base import TOKENS

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
    TOKENS.clear()
    yield Vendors(wecom, dingtalk, feishu, env)
    TOKENS.clear()
