"""Feishu (飞书) and Lark application messages: an ``interactive`` card to one person by open_id.

API (open.feishu.cn; Lark: open.larksuite.com): ``POST /open-apis/auth/v3/tenant_access_token/internal``
with ``app_id`` and ``app_secret`` → ``tenant_access_token``, ``expire``; ``POST
/open-apis/im/v1/messages?receive_id_type=open_id`` with ``Authorization: Bearer <token>`` and
``receive_id``, ``msg_type`` "interactive", ``content`` (the card as a JSON string).  The answer's
``code`` 0 is success; a refusal comes with HTTP 400 and its ``code`` in the body.  At most 5
messages a second to one person.
"""

from __future__ import annotations

import json

from notifications.apps.base import Answer, AppClient, CodeTable, Secret, TokenCache
from notifications.apps.card import card_of, cut_bytes, fit
from notifications.channel import ChannelKind, Outgoing

FEISHU_API = "https://open.feishu.cn"
LARK_API = "https://open.larksuite.com"
TITLE_BYTES = 300
BODY_BYTES = 8000  # a card may hold 30 KB; a phone shows a short one well

CODES = CodeTable(
    expired=frozenset({99991663, 99991661, 99991668}),
    permanent=frozenset({230013, 99992361, 99992364, 230006}),
    rate_limited=frozenset({99991400, 230020}),
    words={
        10003: "App ID 或 App Secret 不正确",
        10014: "App Secret 不正确",
        99991663: "访问令牌无效",
        99991661: "缺少访问令牌",
        99991668: "访问令牌无效或已过期",
        99991672: "应用没有发送消息的权限（请开通 im:message:send_as_bot）",
        99991401: "服务器 IP 不在应用的 IP 白名单中",
        230013: "机器人对该用户不可用（该用户不在应用的可用范围内或已离职）",
        230006: "应用未启用机器人能力",
        99992361: "open_id 不属于本应用（请填写本应用下的 open_id）",
        99992364: "用户不存在",
        99991400: "请求过于频繁",
        230020: "发送消息触发频率限制",
    },
)


class FeishuApp(AppClient):
    codes = CODES

    def __init__(self, app_id: str, secret: Secret, *, lark: bool = False, api_base: str | None = None, timeout: float = 10.0,
                 base_url: str = "", tokens: TokenCache | None = None):  # fmt: skip
        super().__init__(api_base or (LARK_API if lark else FEISHU_API), app_id, timeout=timeout, base_url=base_url, tokens=tokens)
        self.secret = secret
        self.kind = ChannelKind.LARK_APP if lark else ChannelKind.FEISHU_APP
        self.vendor = "Lark" if lark else "飞书"

    def fetch_token(self) -> tuple[str, float]:
        body = self.http(
            "POST", "/open-apis/auth/v3/tenant_access_token/internal", json={"app_id": self.app_id, "app_secret": self.secret.get()}
        )
        if body.get("code", 0) != 0 or not body.get("tenant_access_token"):
            raise self.refused_token(body.get("code"), str(body.get("msg", "")))
        return str(body["tenant_access_token"]), float(body.get("expire") or 7200)

    def card(self, out: Outgoing) -> dict:
        card = card_of(out, self.base_url)

        def layout(lines: list[str], more: str) -> str:
            parts = [f"**{lark_md(card.summary)}**", *(f"· {lark_md(t)}" for t in lines)]
            return "\n".join([*parts, more] if more else parts)

        return {
            "config": {"wide_screen_mode": True},
            "header": {"title": {"tag": "plain_text", "content": cut_bytes(card.title, TITLE_BYTES)}, "template": "blue"},
            "elements": [
                {"tag": "div", "text": {"tag": "lark_md", "content": fit(card, BODY_BYTES, layout)}},
                {
                    "tag": "action",
                    "actions": [
                        {"tag": "button", "text": {"tag": "plain_text", "content": card.button}, "type": "primary", "url": card.url}
                    ],
                },
            ],
        }

    def post(self, token: str, userid: str, out: Outgoing) -> Answer:
        message = {"receive_id": userid, "msg_type": "interactive", "content": json.dumps(self.card(out), ensure_ascii=False)}
        body = self.http(
            "POST",
            "/open-apis/im/v1/messages",
            params={"receive_id_type": "open_id"},
            headers={"Authorization": f"Bearer {token}"},
            json=message,
        )
        return self.codes.answer(self.vendor, body.get("code"), str(body.get("msg", "")))


def lark_md(text: str) -> str:
    """Text as literal lark_md: the characters that would format it are escaped."""
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for ch in "*_~`[]":
        out = out.replace(ch, "\\" + ch)
    return out
