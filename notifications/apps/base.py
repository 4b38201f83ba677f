"""What the three app-message clients share: a secret given as a value or as the name of a Prefect
Secret block, the cached access token of an app, the vendor's answer, and the client that turns an
answer into an :class:`~notifications.channel.Attempt`.

A vendor answers with a JSON body whatever its HTTP status (Feishu refuses with HTTP 400): the
body's ``errcode`` (WeCom, DingTalk) or ``code`` (Feishu) is the truth.  An access token is kept
per app until shortly before its expiry and fetched again once when the vendor says it expired.
Nothing here ever writes a secret or a token into a reason: the HTTP library's own errors name the
URL, which carries the token, so a network failure is told by its class and the host only.

The token of an app is fetched and cached here once for everything duban asks of that app: the
app messages, DingTalk's 待办 (``notifications.dingtalk_todo``) and the WeCom and DingTalk sign-in
(``duban.sso.chat_oauth``) all call :meth:`AppClient.with_token`.  HTTP goes through httpx (as the
sign-in's other clients do).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from notifications.channel import Attempt, ChannelKind, Outgoing

FROM_IP = re.compile(r"from ip:\s*([0-9a-fA-F.:]+)")
TOKEN_MARGIN = 300.0  # seconds before a token's stated expiry when it is fetched anew
T = TypeVar("T")
# httpx's names of a failed connection, as a reason names them (the names the vendors' docs use)
NETWORK_NAMES = {httpx.ConnectError: "ConnectionError", httpx.RemoteProtocolError: "ConnectionError", httpx.ReadError: "ConnectionError"}


class AppConfigError(RuntimeError):
    """A secret that cannot be had (its Prefect Secret block is missing): the reason, in Chinese."""


@dataclass(frozen=True)
class Secret:
    """An app secret: the value itself, or the name of a Prefect Secret block read when first needed."""

    value: str | None = None
    block: str | None = None
    resolve: Callable[[str], str] | None = field(default=None, compare=False)

    def get(self) -> str:
        if self.value:
            return self.value
        if self.block and self.resolve is not None:
            return self.resolve(self.block)
        raise AppConfigError("未配置应用密钥")

    def __repr__(self) -> str:  # never the value
        return f"Secret(block={self.block!r})" if self.block else "Secret(***)"


@dataclass
class Answer:
    """What the vendor said: ``code`` 0 is success; ``reason`` is the Chinese explanation."""

    ok: bool
    code: int | None
    message: str
    reason: str = ""
    permanent: bool = False  # sending again cannot help (the person is unknown to the app)
    retryable: bool = True

    @property
    def shown(self) -> str:
        """The vendor's own words, as ``duban notify test`` prints them."""
        return f"errcode={self.code} errmsg={self.message}" if self.code is not None else self.message


class TokenCache:
    """Access tokens per app (API base and app id), each until ``TOKEN_MARGIN`` before its expiry.

    One process-wide cache: every delivery run and worker thread of the process shares a token, as
    the vendors ask (WeCom and DingTalk limit how often a token may be fetched)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], fetch: Callable[[], tuple[str, float]], *, stale: str | None = None) -> str:
        """The cached token of ``key``, or a fresh one from ``fetch() -> (token, seconds)``.
        ``stale``: a token the vendor refused as expired (fetched again unless already replaced)."""
        with self._lock:
            held = self._tokens.get(key)
            if held is not None and held[0] != stale and self.clock() < held[1]:
                return held[0]
            token, seconds = fetch()
            life = max(seconds - TOKEN_MARGIN, seconds / 2)
            self._tokens[key] = (token, self.clock() + life)
            return token

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


TOKENS = TokenCache()


class VendorRefusalError(Exception):
    """The token endpoint refused (wrong secret, untrusted IP): the answer to report."""

    def __init__(self, answer: Answer):
        super().__init__(answer.reason)
        self.answer = answer


@dataclass(frozen=True)
class CodeTable:
    """A vendor's codes: which mean an expired token, an unknown person, a rate limit; their Chinese words."""

    expired: frozenset[int]
    permanent: frozenset[int]
    rate_limited: frozenset[int]
    words: dict[int, str]

    def answer(self, vendor: str, code: int | None, message: str) -> Answer:
        if code == 0:
            return Answer(True, 0, message)
        words = self.words.get(code) if code is not None else None
        if code in self.rate_limited:
            words = words or "调用过于频繁"
            reason = f"{vendor}限流：{code} {words}，稍后自动重发"
        else:
            shown = code if code is not None else "（回答中没有错误码）"
            reason = f"{vendor}拒绝：{shown} {words or message or '未说明原因'}"
        if ip := FROM_IP.search(message):  # WeCom names the address it saw: the one to add to 企业可信IP
            reason += f"（本机出口 IP：{ip.group(1)}）"
        permanent = code in self.permanent
        if permanent:
            reason += "（请核对人员表中的账号后重新导入）"
        return Answer(False, code, message, reason, permanent=permanent, retryable=not permanent)


class AppClient:
    """One app of one vendor: fetches and caches its token, sends a card to one person.

    Subclasses give ``kind``, ``vendor``, ``codes`` and implement ``fetch_token`` and ``post``."""

    kind: ChannelKind
    vendor: str
    codes: CodeTable

    def __init__(self, api_base: str, app_id: str, *, timeout: float = 10.0, base_url: str = "", tokens: TokenCache | None = None):
        self.api_base = api_base.rstrip("/")
        self.app_id = app_id
        self.timeout = timeout
        self.base_url = base_url
        self.tokens = tokens or TOKENS

    # -- what subclasses implement ------------------------------------------------------------
    def fetch_token(self) -> tuple[str, float]:
        raise NotImplementedError

    def post(self, token: str, userid: str, out: Outgoing) -> Answer:
        raise NotImplementedError

    def target(self, userid: str) -> str:
        """How a delivery names this target (no secret: the app's AgentId, or its id, and the person's id)."""
        agent = getattr(self, "agent_id", None)
        return f"应用 {self.app_id if agent is None else agent} → {userid}"

    # -- shared -----------------------------------------------------------------------------
    def send(self, userid: str, out: Outgoing) -> Answer:
        """Send ``out`` to ``userid``: the token is fetched when none is cached, and once again
        when the vendor says it expired."""
        try:
            return self.with_token(lambda token: self.post(token, userid, out), lambda answer: answer.code)
        except VendorRefusalError as err:
            return err.answer
        except AppConfigError as err:
            return Answer(False, None, str(err), f"{self.vendor}未能发送：{err}", retryable=False)
        except Exception as err:  # noqa: BLE001 - a network failure is a reason; never its URL (it holds the token)
            name = network_name(err)
            return Answer(False, None, name, f"{self.vendor}服务器无法连接（{self.host}，{name}），稍后自动重发")

    def token(self, stale: str | None = None) -> str:
        """The app's access token (cached per API base and app id); ``stale``: one the vendor refused."""
        return self.tokens.get((self.api_base, self.app_id), self.fetch_token, stale=stale)

    def with_token(self, call: Callable[[str], T], code: Callable[[T], Any], expired: frozenset[int] | None = None) -> T:
        """``call(token)``, and once more with a new token when ``code(result)`` says the token
        expired (``expired``: the vendor's codes for that, by default its code table's)."""
        token = self.token()
        result = call(token)
        if code(result) in (self.codes.expired if expired is None else expired):
            result = call(self.token(stale=token))
        return result

    def attempt(self, userid: str, out: Outgoing) -> Attempt:
        answer = self.send(userid, out)
        return Attempt(self.kind, self.target(userid), answer.ok, answer.reason or None, permanent=answer.permanent, answer=answer.shown)

    @property
    def host(self) -> str:
        return urlsplit(self.api_base).netloc

    def request(self, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        """(HTTP status, the JSON answer or None) of one request to a full URL."""
        response = httpx.request(method, url, timeout=self.timeout, **kwargs)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    def http(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """The vendor's JSON answer to one request, whatever its HTTP status."""
        status, body = self.request(method, self.api_base + path, **kwargs)
        if not isinstance(body, dict):
            raise VendorRefusalError(
                Answer(False, None, f"HTTP {status}", f"{self.vendor}服务器的回答无法识别（HTTP {status}），稍后自动重发")
            )
        return body

    def errcode_token(self, path: str, params: dict[str, str]) -> tuple[str, float]:
        """``GET {api}{path}?params`` → ``access_token``, ``expires_in``: WeCom's and DingTalk's
        token endpoint (a refusal is ``errcode`` / ``errmsg``)."""
        body = self.http("GET", path, params=params)
        if body.get("errcode", 0) != 0 or not body.get("access_token"):
            raise self.refused_token(body.get("errcode"), str(body.get("errmsg", "")))
        return str(body["access_token"]), float(body.get("expires_in") or 7200)

    def refused_token(self, code: int | None, message: str) -> VendorRefusalError:
        answer = self.codes.answer(self.vendor, code, message)
        answer.reason = answer.reason.replace("拒绝：", "拒绝发放访问令牌：", 1)
        return VendorRefusalError(answer)


def network_name(err: Exception) -> str:
    """How a reason names a failed request: its class (never its text: that holds the URL)."""
    return next((name for cls, name in NETWORK_NAMES.items() if isinstance(err, cls)), err.__class__.__name__)
