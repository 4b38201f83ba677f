"""WeCom (企业微信) application messages: ``textcard`` to one member by their UserID.

API (developer.work.weixin.qq.com): ``GET /cgi-bin/gettoken?corpid&corpsecret`` → ``access_token``,
``expires_in``; ``POST /cgi-bin/message/send?access_token=`` with ``touser``, ``msgtype``,
``agentid`` and ``textcard`` (title ≤ 128 bytes, description ≤ 512 bytes, url, btntxt ≤ 4
characters).  The answer's ``errcode`` 0 is success; ``invaliduser`` names members the app cannot
reach even then.
"""

from __future__ import annotations

import html

from notifications.apps.base import Answer, AppClient, CodeTable, Secret, TokenCache
from notifications.apps.card import card_of, cut_bytes, fit
from notifications.channel import ChannelKind, Outgoing

DEFAULT_API = "https://qyapi.weixin.qq.com"
TITLE_BYTES = 128
DESCRIPTION_BYTES = 512

CODES = CodeTable(
    expired=frozenset({40014, 42001}),
    permanent=frozenset({81013, 60111, 40031}),
    rate_limited=frozenset({45009, 45033, 45047}),
    words={
        40001: "应用 Secret 不正确（请核对 DUBAN_WECOM_SECRET）",
        40013: "企业 ID 不正确（请核对 DUBAN_WECOM_CORP_ID）",
        40014: "访问令牌无效",
        40031: "成员账号不正确",
        40056: "应用 AgentId 不正确（请核对 DUBAN_WECOM_AGENT_ID）",
        42001: "访问令牌已过期",
        45009: "接口调用超过频率限制",
        45033: "接口并发调用超过限制",
        45047: "发送消息超过上限",
        48002: "应用没有发送消息的权限",
        60011: "应用没有权限访问该成员（请在应用的可见范围中加入该成员）",
        60020: "服务器 IP 不在企业可信 IP 列表中",
        60111: "企业微信中没有这个账号（UserID）",
        81013: "该成员不在企业或不在应用的可见范围内",
        82001: "该成员不在应用的可见范围内",
    },
)


class WeComApp(AppClient):
    kind = ChannelKind.WECOM_APP
    vendor = "企业微信"
    codes = CODES

    def __init__(self, corp_id: str, agent_id: int, secret: Secret, *, api_base: str = DEFAULT_API, timeout: float = 10.0,
                 base_url: str = "", tokens: TokenCache | None = None):  # fmt: skip
        super().__init__(api_base, f"{corp_id}:{agent_id}", timeout=timeout, base_url=base_url, tokens=tokens)
        self.corp_id, self.agent_id, self.secret = corp_id, agent_id, secret

    def fetch_token(self) -> tuple[str, float]:
        return self.errcode_token("/cgi-bin/gettoken", {"corpid": self.corp_id, "corpsecret": self.secret.get()})

    def message(self, userid: str, out: Outgoing) -> dict:
        card = card_of(out, self.base_url)

        def layout(lines: list[str], more: str) -> str:
            parts = [f'<div class="highlight">{html.escape(card.summary)}</div>']
            parts += [f'<div class="normal">· {html.escape(t)}</div>' for t in lines]
            if more:
                parts.append(f'<div class="gray">{more}</div>')
            return "".join(parts)

        return {
            "touser": userid,
            "msgtype": "textcard",
            "agentid": self.agent_id,
            "textcard": {
                "title": cut_bytes(card.title, TITLE_BYTES),
                "description": fit(card, DESCRIPTION_BYTES, layout),
                "url": card.url,
                "btntxt": card.button,
            },
            "enable_duplicate_check": 0,
        }

    def post(self, token: str, userid: str, out: Outgoing) -> Answer:
        body = self.http("POST", "/cgi-bin/message/send", params={"access_token": token}, json=self.message(userid, out))
        answer = self.codes.answer(self.vendor, body.get("errcode"), str(body.get("errmsg", "")))
        invalid = str(body.get("invaliduser") or "")
        if answer.ok and userid in invalid.split("|"):
            return self.codes.answer(self.vendor, 81013, f"invaliduser: {invalid}")
        return answer
