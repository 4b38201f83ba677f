"""Group bot webhooks (WeCom group bot, DingTalk, Feishu and Lark custom bots) with the vendor's
answer read: a refusal is a failure with the vendor's reason, never "delivered".

Why we send these requests ourselves: apprise 1.13's plugins for these four (``wecombot``,
``dingtalk``, ``feishu``, ``lark``) check only the HTTP status, but each vendor answers a refused
message with HTTP 200 and an error code in the body (``{"errcode":93000,"errmsg":"invalid
webhook url"}``).  Wrapping a plugin to see its response would mean patching ``requests`` under
it (not thread-safe: several messages go out at once).  So apprise still parses and validates
the URL (token, key, DingTalk secret and @mobiles, ``verify=``, timeouts) and names the endpoint
(the plugin's ``notify_url``), and this module posts the same ``text`` message apprise would
(DingTalk signed as documented, see ``addresses._signed_dingtalk_class``) and reads the answer:

- WeCom group bot: ``errcode`` (0 ok); 93000 invalid webhook, 45009 rate limit, 40008/40058 bad message;
- DingTalk: ``errcode`` (0 ok); 300001/310000 token, keyword or signature, 130101 rate limit, 400102 robot stopped;
- Feishu / Lark: ``code`` (or ``StatusCode`` in older answers; 0 ok); 19001/19021/19022/19024
  signature, IP or keyword, 9499 bad request, 11232 rate limit.

A rate limit (20 messages a minute per bot for all three) is ``retryable``: the caller gives the
message back for a later round instead of counting an attempt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from notifications.channel import ChannelKind

BOT_KINDS = frozenset({ChannelKind.WECOM, ChannelKind.DINGTALK, ChannelKind.FEISHU, ChannelKind.LARK})
DEFAULT_TIMEOUT = 10.0

# (vendor's code → Chinese explanation), per kind; the codes the vendors document for a bot
WECOM_CODES: dict[int, str] = {
    93000: "机器人地址无效（webhook 地址错误或机器人已被移出群聊）",
    45009: "发送太频繁（每个机器人每分钟最多 20 条），稍后自动重试",
    40008: "消息格式不正确",
    40058: "消息内容不合法或超出长度",
    93004: "机器人已被停用",
}
DINGTALK_CODES: dict[int, str] = {
    300001: "机器人令牌（access_token）无效",
    310000: "关键词不匹配或签名错误",
    130101: "发送太频繁（每个机器人每分钟最多 20 条），稍后自动重试",
    400102: "机器人已停用",
    300005: "机器人令牌不存在",
}
FEISHU_CODES: dict[int, str] = {
    19001: "签名校验失败",
    19021: "签名校验失败（时间戳已过期或签名错误）",
    19022: "请求来源 IP 不在机器人的白名单内",
    19024: "关键词不匹配",
    9499: "请求格式不正确",
    11232: "发送太频繁，稍后自动重试",
}
CODES: dict[ChannelKind, dict[int, str]] = {
    ChannelKind.WECOM: WECOM_CODES,
    ChannelKind.DINGTALK: DINGTALK_CODES,
    ChannelKind.FEISHU: FEISHU_CODES,
    ChannelKind.LARK: FEISHU_CODES,
}
RATE_LIMITED: dict[ChannelKind, frozenset[int]] = {
    ChannelKind.WECOM: frozenset({45009}),
    ChannelKind.DINGTALK: frozenset({130101}),
    ChannelKind.FEISHU: frozenset({11232}),
    ChannelKind.LARK: frozenset({11232}),
}
VENDOR = {ChannelKind.WECOM: "企业微信", ChannelKind.DINGTALK: "钉钉", ChannelKind.FEISHU: "飞书", ChannelKind.LARK: "Lark"}


@dataclass(frozen=True)
class BotAnswer:
    """What a bot's server said about one message."""

    ok: bool
    reason: str = ""  # Chinese, with the vendor's code ("钉钉拒绝：310000 关键词不匹配或签名错误")
    code: int | None = None
    retryable: bool = False  # a rate limit: try again later, not the recipient's failure


def read_answer(kind: ChannelKind, status: int, body: bytes) -> BotAnswer:
    """The vendor's verdict on one message from its HTTP status and body."""
    vendor = VENDOR[kind]
    try:
        data: Any = json.loads(body.decode("utf-8")) if body else {}
    except (UnicodeDecodeError, ValueError):
        data = None
    code = _code(kind, data)
    message = str(data.get("errmsg") or data.get("msg") or data.get("StatusMessage") or "") if isinstance(data, dict) else ""
    if status != 200:
        said = f"（{code} {message}）".replace(" ）", "）") if code else ""
        return BotAnswer(False, f"{vendor}服务器返回 HTTP {status}{said}", code, status == 429)
    if code is None:
        return BotAnswer(False, f"{vendor}的应答无法识别，无法确认已送达")
    if code == 0:
        return BotAnswer(True, code=0)
    explained = CODES[kind].get(code) or message or "未知错误"
    return BotAnswer(False, f"{vendor}拒绝：{code} {explained}", code, code in RATE_LIMITED[kind])


def _code(kind: ChannelKind, data: Any) -> int | None:
    if not isinstance(data, dict):
        return None
    keys = ("errcode",) if kind in (ChannelKind.WECOM, ChannelKind.DINGTALK) else ("code", "StatusCode")
    for key in keys:
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
    return None


def request_for(kind: ChannelKind, plugin: Any, text: str) -> tuple[str, dict[str, Any]]:
    """The URL and JSON body apprise's plugin would post for ``text`` (a plain text message)."""
    cls = type(plugin)
    if kind == ChannelKind.WECOM:
        return cls.notify_url.format(key=plugin.key), {"msgtype": "text", "text": {"content": text}}
    if kind == ChannelKind.DINGTALK:
        url = cls.notify_url.format(token=plugin.token)
        if plugin.secret:
            timestamp, sign = plugin.get_signature()
            url += ("&" if "?" in url else "?") + urlencode({"timestamp": timestamp, "sign": sign})
        return url, {"msgtype": "text", "text": {"content": text}, "at": {"atMobiles": list(plugin.targets), "isAtAll": False}}
    if kind == ChannelKind.FEISHU:
        return cls.notify_url.format(token=plugin.token), {"msg_type": "text", "content": {"text": text}}
    if kind == ChannelKind.LARK:
        return f"{cls.notify_url}{plugin.token}", {"msg_type": "text", "content": {"text": text}}
    raise ValueError(f"not a group bot: {kind}")


def post_json(url: str, body: Any, *, timeout: float, verify: bool = True) -> tuple[int, bytes]:
    """POST ``body`` as JSON: (HTTP status, response body).  Network failures raise
    ``httpx.TransportError`` (``httpx.TimeoutException`` when the server did not answer in time)."""
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "duban"}
    response = httpx.post(url, content=data, headers=headers, timeout=timeout, verify=verify)
    return response.status_code, response.content


def send(kind: ChannelKind, plugin: Any, text: str) -> BotAnswer:
    """Post one text message to a group bot and read the answer (a network failure is a failure
    of this attempt, retried with the usual backoff)."""
    url, body = request_for(kind, plugin, text)
    timeout = _timeout(plugin)
    try:
        status, answer = post_json(url, body, timeout=timeout, verify=bool(getattr(plugin, "verify_certificate", True)))
    except httpx.TimeoutException:
        return BotAnswer(False, f"{VENDOR[kind]}服务器在 {timeout:g} 秒内没有应答")
    except httpx.TransportError as err:
        return BotAnswer(False, f"无法连接{VENDOR[kind]}服务器（{err}）")
    return read_answer(kind, status, answer)


def _timeout(plugin: Any) -> float:
    """apprise's (connect, read) timeouts as one number (the longer of the two)."""
    values = [v for v in (getattr(plugin, "socket_connect_timeout", None), getattr(plugin, "socket_read_timeout", None)) if v]
    return float(max(values)) if values else DEFAULT_TIMEOUT
