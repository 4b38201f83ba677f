"""A local fake of the chat vendors' group bots, as their documentation describes them (answers,
error codes).  Import the fixture into a test module:
``from tests.vendor_bots import group_bots_fixture  # noqa: F401`` (the fixture is ``group_bots``).

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

DingTalk's app API (tokens, 通讯录, 待办) is the DingTalk fake of tests/vendors.py (``dingtalk_app``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest

from tests.local_http import JsonFake, ReceivedRequest

# ---------------------------------------------------------------------------------------------
# Group bots


class FakeGroupBots(JsonFake):
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
    def token_of(req: ReceivedRequest) -> str:
        return req.query.get("key") or req.query.get("access_token") or req.path.rsplit("/", 1)[-1]

    @staticmethod
    def text_of(req: ReceivedRequest) -> str:
        body = req.json or {}
        return (body.get("text") or {}).get("content") or (body.get("content") or {}).get("text") or ""

    def received(self, token: str) -> list[str]:
        with self.lock:
            return [self.text_of(r) for r in self.calls if self.token_of(r) == token]

    def answer(self, req: ReceivedRequest) -> tuple[int, Any]:
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
    def _signed(req: ReceivedRequest, secret: str) -> bool:
        stamp = req.query.get("timestamp", "")
        digest = hmac.new(secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256).digest()
        return hmac.compare_digest(base64.b64encode(digest).decode(), req.query.get("sign", ""))


@pytest.fixture(name="group_bots")
def group_bots_fixture(monkeypatch) -> Iterator[FakeGroupBots]:
    bots = FakeGroupBots().start()
    bots.point(monkeypatch)
    yield bots
    bots.stop()
