"""DingTalk 待办 (to-do) through the DingTalk app's API: the HTTP client ``duban.chat_todos`` uses.

It acts as the institution's DingTalk app (:class:`notifications.apps.dingtalk.DingTalkApp`, which
fetches and caches the app's tokens for every DingTalk call duban makes).  Two APIs are involved
(bases configurable: ``DUBAN_DINGTALK_OAPI_BASE``, ``DUBAN_DINGTALK_API_BASE``):

- the old-style ``oapi``: ``POST /topapi/v2/user/get?access_token=`` ``{userid}`` →
  ``result.unionid`` (the to-do API names people by unionId; the app needs 通讯录 read permission);
- the new-style API, with the app's v1.0 token in the ``x-acs-dingtalk-access-token`` header:
  ``POST /v1.0/todo/users/{unionId}/tasks?operatorId={unionId}`` (create; needs 待办应用写权限)
  and ``PUT /v1.0/todo/users/{unionId}/tasks/{id}?operatorId={unionId}`` (``{done: true}`` or a
  new ``dueTime``).

A token the server no longer accepts (oapi 40014/42001, v1.0 HTTP 401) is fetched again once and
the call repeated.  Every failure raises :class:`DingTalkError` with a Chinese reason naming
DingTalk's code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx

from notifications.apps.base import AppConfigError, VendorRefusalError
from notifications.apps.dingtalk import DingTalkApp, V1RefusalError

VENDOR = "dingtalk"
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


class TodoClient:
    """DingTalk's to-do API for one app (thread-safe; the app's tokens and the unionIds are cached)."""

    vendor = VENDOR

    def __init__(self, app: DingTalkApp):
        self.app = app
        self._union: dict[str, str] = {}

    # -- plumbing ----------------------------------------------------------------------------
    @contextmanager
    def _reasons(self) -> Iterator[None]:
        """DingTalk's refusals and network failures as :class:`DingTalkError`."""
        try:
            yield
        except VendorRefusalError as err:  # the token endpoint refused, or an answer that is not JSON
            raise _oapi_error(err.answer.code, err.answer.message, None) from None
        except V1RefusalError as err:
            raise _api_error(err.status, err.data, "获取钉钉访问凭证失败") from None
        except AppConfigError as err:
            raise DingTalkError(f"钉钉应用未配置好：{err}") from None
        except httpx.TimeoutException:
            raise DingTalkError(f"钉钉服务器在 {self.app.timeout:g} 秒内没有应答") from None
        except httpx.HTTPError as err:
            raise DingTalkError(f"无法连接钉钉服务器（{err}）") from None

    def _oapi(self, path: str, body: Any) -> dict[str, Any]:
        with self._reasons():
            data = self.app.oapi(path, body, expired=STALE_TOKEN_CODES)
        if data.get("errcode") != 0:
            raise _oapi_error(data.get("errcode"), str(data.get("errmsg") or ""), 200)
        return data

    def _api(self, method: str, path: str, body: Any, what: str) -> dict[str, Any]:
        with self._reasons():
            status, data = self.app.v1(method, path, body)
        if status != 200:
            raise _api_error(status, data, what)
        return data

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


def _oapi_error(code: Any, message: str, status: int | None) -> DingTalkError:
    if code is None:
        return DingTalkError(f"钉钉服务器返回 {message or f'HTTP {status}'}", status=status)
    reason = OAPI_REASONS.get(int(code), message or "未知错误")
    return DingTalkError(f"钉钉拒绝：{code} {reason}", code=int(code), status=status)


def _api_error(status: int, data: dict[str, Any], what: str) -> DingTalkError:
    code = data.get("code")
    message = str(data.get("message") or "")
    if status == 403:
        message = f"应用没有权限（请在钉钉开放平台为应用开通待办应用写权限）{'：' + message if message else ''}"
    said = "：".join(str(x) for x in (code, message) if x) or f"HTTP {status}"
    return DingTalkError(f"{what}：{said}（HTTP {status}）", code=code, status=status)
