"""DingTalk 待办 (to-do) through the DingTalk app's API: the HTTP client ``duban.chat_todos`` uses.

Two APIs are involved (bases configurable: ``DUBAN_DINGTALK_OAPI_BASE``, ``DUBAN_DINGTALK_API_BASE``):

- the old-style ``oapi``: ``GET /gettoken?appkey&appsecret`` → ``access_token``, then
  ``POST /topapi/v2/user/get?access_token=`` ``{userid}`` → ``result.unionid`` (the to-do API
  names people by unionId; the app needs 通讯录 read permission);
- the new-style API: ``POST /v1.0/oauth2/accessToken`` ``{appKey, appSecret}`` →
  ``{accessToken, expireIn}``, sent as the ``x-acs-dingtalk-access-token`` header to
  ``POST /v1.0/todo/users/{unionId}/tasks?operatorId={unionId}`` (create; needs 待办应用写权限)
  and ``PUT /v1.0/todo/users/{unionId}/tasks/{id}?operatorId={unionId}`` (``{done: true}`` or a
  new ``dueTime``).

Tokens are kept until shortly before they expire; a token the server no longer accepts (oapi
40014/42001, v1.0 HTTP 401) is fetched again once and the call repeated.  Every failure raises
:class:`DingTalkError` with a Chinese reason naming DingTalk's code.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from notifications.bots import post_json

VENDOR = "dingtalk"
TOKEN_MARGIN = 300.0  # seconds: a token is fetched again this long before DingTalk says it expires
STALE_TOKEN_CODES = frozenset({40014, 42001})  # oapi: 不合法的 access_token, access_token 超时
OAPI_REASONS = {
    40014: "access_token 无效",
    42001: "access_token 已过期",
    40089: "应用的 AppKey 或 AppSecret 不正确",
    60011: "应用没有通讯录读取权限（请在钉钉开放平台为应用开通“通讯录个人信息读权限”）",
    60121: "钉钉通讯录中找不到该用户（请核对人员表中的钉钉 userid）",
    88: "应用没有调用该接口的权限",
}


class DingTalkError(Exception):
    """A call DingTalk refused or could not answer; ``str(err)`` is the Chinese reason."""

    def __init__(self, reason: str, *, code: str | int | None = None, status: int | None = None):
        super().__init__(reason)
        self.code, self.status = code, status


@dataclass(frozen=True)
class DingTalkApp:
    """The DingTalk app duban acts as (DUBAN_DINGTALK_*)."""

    app_key: str
    app_secret: str
    agent_id: str | None = None
    oapi_base: str = "https://oapi.dingtalk.com"
    api_base: str = "https://api.dingtalk.com"
    timeout: float = 10.0


class TodoClient:
    """DingTalk's to-do API for one app (thread-safe; tokens and unionIds are cached)."""

    vendor = VENDOR

    def __init__(self, app: DingTalkApp):
        self.app = app
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}  # "oapi" | "api" -> (token, monotonic expiry)
        self._union: dict[str, str] = {}

    # -- tokens ------------------------------------------------------------------------------
    def _token(self, which: str) -> str:
        with self._lock:
            held = self._tokens.get(which)
            if held and held[1] > time.monotonic():
                return held[0]
        token, expires_in = self._fetch_oapi_token() if which == "oapi" else self._fetch_api_token()
        with self._lock:
            self._tokens[which] = (token, time.monotonic() + max(float(expires_in) - TOKEN_MARGIN, 0.0))
        return token

    def _forget(self, which: str) -> None:
        with self._lock:
            self._tokens.pop(which, None)

    def _fetch_oapi_token(self) -> tuple[str, float]:
        query = urlencode({"appkey": self.app.app_key, "appsecret": self.app.app_secret})
        data = self._oapi_answer(*self._call("GET", f"{self.app.oapi_base.rstrip('/')}/gettoken?{query}", None))
        return str(data["access_token"]), float(data.get("expires_in") or 7200)

    def _fetch_api_token(self) -> tuple[str, float]:
        url = f"{self.app.api_base.rstrip('/')}/v1.0/oauth2/accessToken"
        status, data = self._call("POST", url, {"appKey": self.app.app_key, "appSecret": self.app.app_secret})
        if status != 200 or not data.get("accessToken"):
            raise _api_error(status, data, "获取钉钉访问凭证失败")
        return str(data["accessToken"]), float(data.get("expireIn") or 7200)

    # -- plumbing ----------------------------------------------------------------------------
    def _call(self, method: str, url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        try:
            status, raw = post_json(url, body, timeout=self.app.timeout, method=method, headers=headers)
        except TimeoutError:
            raise DingTalkError(f"钉钉服务器在 {self.app.timeout:g} 秒内没有应答") from None
        except OSError as err:
            raise DingTalkError(f"无法连接钉钉服务器（{getattr(err, 'reason', err)}）") from None
        try:
            data = json.loads(raw.decode("utf-8")) if raw else {}
        except (UnicodeDecodeError, ValueError):
            data = {}
        return status, data if isinstance(data, dict) else {}

    @staticmethod
    def _oapi_answer(status: int, data: dict[str, Any]) -> dict[str, Any]:
        code = data.get("errcode")
        if status == 200 and code == 0:
            return data
        if code is None:
            raise DingTalkError(f"钉钉服务器返回 HTTP {status}", status=status)
        reason = OAPI_REASONS.get(int(code), str(data.get("errmsg") or "未知错误"))
        raise DingTalkError(f"钉钉拒绝：{code} {reason}", code=int(code), status=status)

    def _oapi(self, path: str, body: Any) -> dict[str, Any]:
        for again in (False, True):
            url = f"{self.app.oapi_base.rstrip('/')}{path}?access_token={quote(self._token('oapi'))}"
            try:
                return self._oapi_answer(*self._call("POST", url, body))
            except DingTalkError as err:
                if again or err.code not in STALE_TOKEN_CODES:
                    raise
                self._forget("oapi")
        raise AssertionError("unreachable")

    def _api(self, method: str, path: str, body: Any, what: str) -> dict[str, Any]:
        for again in (False, True):
            headers = {"x-acs-dingtalk-access-token": self._token("api")}
            status, data = self._call(method, f"{self.app.api_base.rstrip('/')}{path}", body, headers)
            if status == 200:
                return data
            if status == 401 and not again:
                self._forget("api")
                continue
            raise _api_error(status, data, what)
        raise AssertionError("unreachable")

    # -- what duban does ---------------------------------------------------------------------
    def union_id(self, userid: str) -> str:
        """The unionId of a person of the organisation, from their userid (cached)."""
        if userid in self._union:
            return self._union[userid]
        data = self._oapi("/topapi/v2/user/get", {"userid": userid, "language": "zh_CN"})
        union = (data.get("result") or {}).get("unionid")
        if not union:
            raise DingTalkError(f"钉钉没有给出用户 {userid} 的 unionId（请确认应用有通讯录读取权限）")
        self._union[userid] = str(union)
        return str(union)

    def create(self, union_id: str, *, subject: str, description: str, due_ms: int, url: str, source_id: str) -> str:
        """Create a to-do for one person (its executor); DingTalk's id of it."""
        body = {
            "sourceId": source_id,
            "subject": subject,
            "description": description,
            "dueTime": due_ms,
            "executorIds": [union_id],
            "detailUrl": {"appUrl": url, "pcUrl": url},
        }
        data = self._api("POST", _task_path(union_id), body, "创建钉钉待办失败")
        if not data.get("id"):
            raise DingTalkError("钉钉没有返回所建待办的编号，无法确认已创建")
        return str(data["id"])

    def set_due(self, union_id: str, task_id: str, due_ms: int) -> None:
        self._api("PUT", _task_path(union_id, task_id), {"dueTime": due_ms}, "修改钉钉待办截止时间失败")

    def close(self, union_id: str, task_id: str) -> None:
        """Mark a to-do done; one DingTalk no longer has (deleted by its holder) counts as closed."""
        try:
            self._api("PUT", _task_path(union_id, task_id), {"done": True}, "关闭钉钉待办失败")
        except DingTalkError as err:
            if err.status != 404:
                raise


def _task_path(union_id: str, task_id: str | None = None) -> str:
    tail = f"/{quote(task_id, safe='')}" if task_id else ""
    return f"/v1.0/todo/users/{quote(union_id, safe='')}/tasks{tail}?operatorId={quote(union_id, safe='')}"


def _api_error(status: int, data: dict[str, Any], what: str) -> DingTalkError:
    code = data.get("code")
    message = str(data.get("message") or "")
    if status == 403:
        message = f"应用没有权限（请在钉钉开放平台为应用开通待办应用写权限）{'：' + message if message else ''}"
    said = "：".join(str(x) for x in (code, message) if x) or f"HTTP {status}"
    return DingTalkError(f"{what}：{said}（HTTP {status}）", code=code, status=status)


def client_from(settings: Any, resolve: Callable[[str], str] | None = None) -> TodoClient | None:
    """The to-do client when the DingTalk app is configured (key and secret), else None.  The
    secret is ``DUBAN_DINGTALK_APP_SECRET``, or the Prefect Secret block named by
    ``DUBAN_DINGTALK_APP_SECRET_BLOCK`` read through ``resolve`` (as the app messages do)."""
    key, raw = settings.dingtalk_app_key, settings.dingtalk_app_secret
    secret = raw.get_secret_value() if raw is not None else None
    block = settings.dingtalk_app_secret_block
    if not secret and block and resolve is not None:
        secret = resolve(block)
    if not (key and secret):
        return None
    agent = settings.dingtalk_agent_id
    return TodoClient(
        DingTalkApp(
            app_key=key,
            app_secret=secret,
            agent_id=str(agent) if agent is not None else None,
            oapi_base=settings.dingtalk_oapi_base,
            api_base=settings.dingtalk_api_base,
        )
    )
