"""The institution's own sign-in: CAS (统一身份认证), OpenID Connect, and the silent OAuth of the
WeCom and DingTalk apps.  Each protocol client turns what the provider answered into an
:class:`Identity` (the account the provider vouches for) or raises :class:`SsoError` with the
Chinese page to show; :mod:`duban.sso.people` finds the person of the 人员 sheet (and the dashboard
account) behind an identity; :mod:`duban.sso.flow` is the short-lived signed state of one sign-in.

The web routes (duban/web/sso.py) are thin over these; no secret, ticket, code or token is logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from duban.vocabulary import SignInMethod

UNREACHABLE = "暂时无法连接学校的统一身份认证服务，请稍后再试。如多次出现，请联系领导小组办公室。"


class SsoError(Exception):
    """A sign-in that cannot go on: ``title`` and ``message`` are shown as they are (no data)."""

    def __init__(self, title: str, message: str, status: int = 400):
        super().__init__(message)
        self.title, self.message, self.status = title, message, status


@dataclass(frozen=True)
class Identity:
    """Whom the provider vouches for: ``subject`` is the account (工号, userid) duban matches."""

    method: SignInMethod
    subject: str


def enabled(settings) -> list[SignInMethod]:
    """The sign-in methods the settings configure, in the order the login page offers them."""
    found = []
    if settings.cas_url:
        found.append(SignInMethod.CAS)
    if settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret:
        found.append(SignInMethod.OIDC)
    if settings.wecom_corp_id and settings.wecom_agent_id and (settings.wecom_secret or settings.wecom_secret_block):
        found.append(SignInMethod.WECOM)
    if settings.dingtalk_app_key and (settings.dingtalk_app_secret or settings.dingtalk_app_secret_block):
        found.append(SignInMethod.DINGTALK)
    return found


def unreachable(provider: str) -> SsoError:
    return SsoError(f"{provider}暂时无法访问", UNREACHABLE, 502)


def client(timeout: float) -> httpx.Client:
    """An HTTP client for the provider's server-side calls (no redirects followed)."""
    return httpx.Client(timeout=timeout, follow_redirects=False, headers={"User-Agent": "duban-sso"})


def json_of(resp: httpx.Response, provider: str) -> dict[str, Any]:
    """The JSON object of an answer, or the page that says the provider cannot be reached."""
    try:
        data = resp.json()
    except ValueError:
        raise unreachable(provider) from None
    if not isinstance(data, dict):
        raise unreachable(provider)
    return data
