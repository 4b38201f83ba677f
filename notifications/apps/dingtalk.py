"""DingTalk (钉钉) 工作通知: an ``action_card`` to one member by their userid.

API (open.dingtalk.com): ``GET /gettoken?appkey&appsecret`` → ``access_token``, ``expires_in``;
``POST /topapi/message/corpconversation/asyncsend_v2?access_token=`` with ``agent_id``,
``userid_list`` and ``msg``.  The answer's ``errcode`` 0 means DingTalk took the message (it is
sent asynchronously: ``task_id``).  DingTalk shows the same content to the same person only once
a day, so a card names its day.

The same app is what duban's other DingTalk calls act as, with this one cached token: 待办
(``notifications.dingtalk_todo``: ``POST /topapi/v2/user/get``) and the sign-in
(``duban.sso.chat_oauth``: ``POST /topapi/user/getbyunionid``) call :meth:`DingTalkApp.oapi`.  The
new-style API's app token (``POST {v1_base}/v1.0/oauth2/accessToken`` ``{appKey, appSecret}`` →
``{accessToken, expireIn}``, sent as the ``x-acs-dingtalk-access-token`` header) is cached next to
it: :meth:`DingTalkApp.v1`.
"""

from __future__ import annotations

from typing import Any

from notifications.apps.base import Answer, AppClient, CodeTable, Secret, TokenCache
from notifications.apps.card import card_of, cut_bytes, fit
from notifications.channel import ChannelKind, Outgoing

DEFAULT_API = "https://oapi.dingtalk.com"
V1_API = "https://api.dingtalk.com"  # the new-style API (v1.0: 待办, OAuth)
V1_TOKEN_HEADER = "x-acs-dingtalk-access-token"  # noqa: S105 - the header's name
TITLE_BYTES = 128  # the notification's one-line title on a phone
MARKDOWN_BYTES = 2000  # DingTalk documents no limit; a card stays readable on a phone

CODES = CodeTable(
    expired=frozenset({40014, 42001, 88}),
    permanent=frozenset({33012, 60121, 40103}),
    rate_limited=frozenset({90002, 90006, 90018, 90019, 143106}),
    words={
        40014: "访问令牌无效",
        42001: "访问令牌已过期",
        88: "访问令牌无效或已过期",
        40089: "AppKey 或 AppSecret 不正确（请核对 DUBAN_DINGTALK_APP_KEY 和 DUBAN_DINGTALK_APP_SECRET）",
        60020: "服务器 IP 不在应用的出口 IP 白名单中",
        33012: "钉钉中没有这个用户（userid 无效）",
        60121: "找不到该用户",
        40103: "该用户不在应用的可见范围内",
        90002: "接口调用超过频率限制",
        90006: "接口调用超过每秒调用上限",
        90018: "接口调用超过每分钟调用上限",
        90019: "接口调用超过每天调用上限",
        143106: "发送工作通知超过限制",
        40035: "参数不正确（应用 AgentId 是否正确？）",
        400002: "参数不正确（应用 AgentId 是否正确？）",
    },
)


class DingTalkApp(AppClient):
    kind = ChannelKind.DINGTALK_WORK
    vendor = "钉钉"
    codes = CODES

    def __init__(self, app_key: str, agent_id: int | None, secret: Secret, *, api_base: str = DEFAULT_API, v1_base: str = V1_API,
                 timeout: float = 10.0, base_url: str = "", tokens: TokenCache | None = None):  # fmt: skip
        super().__init__(api_base, app_key, timeout=timeout, base_url=base_url, tokens=tokens)
        self.app_key, self.agent_id, self.secret = app_key, agent_id, secret
        self.v1_base = v1_base.rstrip("/")

    def fetch_token(self) -> tuple[str, float]:
        return self.errcode_token("/gettoken", {"appkey": self.app_key, "appsecret": self.secret.get()})

    def oapi(self, path: str, body: Any, *, expired: frozenset[int] | None = None) -> dict[str, Any]:
        """``POST {oapi}{path}?access_token=`` with the app's token: DingTalk's JSON answer (a token
        it calls expired, by ``expired`` or the code table, is fetched again once)."""
        return self.with_token(
            lambda token: self.http("POST", path, params={"access_token": token}, json=body), lambda data: data.get("errcode"), expired
        )

    def fetch_v1_token(self) -> tuple[str, float]:
        """The new-style API's app token; a refusal raises :class:`V1RefusalError`."""
        credentials = {"appKey": self.app_key, "appSecret": self.secret.get()}
        status, data = self.request("POST", f"{self.v1_base}/v1.0/oauth2/accessToken", json=credentials)
        data = data if isinstance(data, dict) else {}
        if status != 200 or not data.get("accessToken"):
            raise V1RefusalError(status, data)
        return str(data["accessToken"]), float(data.get("expireIn") or 7200)

    def v1(self, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON answer) of a new-style API call with the app's v1.0 token (HTTP 401:
        fetched again once)."""
        key = (f"{self.v1_base} v1.0", self.app_id)  # not the oapi token's key, even when both APIs share a base

        def call(stale: str | None) -> tuple[str, int, dict[str, Any]]:
            token = self.tokens.get(key, self.fetch_v1_token, stale=stale)
            status, data = self.request(method, self.v1_base + path, json=body, headers={V1_TOKEN_HEADER: token})
            return token, status, data if isinstance(data, dict) else {}

        token, status, data = call(None)
        if status == 401:
            _, status, data = call(token)
        return status, data

    def message(self, userid: str, out: Outgoing) -> dict:
        card = card_of(out, self.base_url)
        title = cut_bytes(card.title, TITLE_BYTES)

        def layout(lines: list[str], more: str) -> str:
            parts = [f"### {markdown_text(title)}", f"**{markdown_text(card.summary)}**"]
            parts += [f"- {markdown_text(t)}" for t in lines]
            if more:
                parts.append(more)
            parts.append(f"{out.run_on.isoformat()}")
            return "\n\n".join(parts)

        return {
            "agent_id": self.agent_id,
            "userid_list": userid,
            "msg": {
                "msgtype": "action_card",
                "action_card": {
                    "title": title,
                    "markdown": fit(card, MARKDOWN_BYTES, layout),
                    "single_title": card.button,
                    "single_url": card.url,
                },
            },
        }

    def post(self, token: str, userid: str, out: Outgoing) -> Answer:
        body = self.http(
            "POST", "/topapi/message/corpconversation/asyncsend_v2", params={"access_token": token}, json=self.message(userid, out)
        )
        return self.codes.answer(self.vendor, body.get("errcode"), str(body.get("errmsg", "")))


def markdown_text(text: str) -> str:
    """A title as literal Markdown text: the characters that would format it are escaped."""
    out = text
    for ch in "\\`*_[]#<>":
        out = out.replace(ch, "\\" + ch)
    return out


class V1RefusalError(Exception):
    """The new-style API refused the app's token (wrong key or secret): its HTTP status and answer."""

    def __init__(self, status: int, data: dict[str, Any]):
        super().__init__(f"HTTP {status}")
        self.status, self.data = status, data
