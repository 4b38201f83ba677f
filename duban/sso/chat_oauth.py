"""The silent sign-in inside the WeCom (企业微信) and DingTalk (钉钉) apps: OAuth2 without a password.

WeCom: ``open.weixin.qq.com/connect/oauth2/authorize?…&scope=snsapi_base&agentid=…#wechat_redirect``
returns ``code``; ``{api}/cgi-bin/auth/getuserinfo?access_token&code`` with the app's access token
(``{api}/cgi-bin/gettoken``) gives the member's ``userid``.

DingTalk: ``login.dingtalk.com/oauth2/auth?…&scope=openid&prompt=consent`` returns ``authCode``;
``POST {api}/v1.0/oauth2/userAccessToken`` gives the user's token, ``GET {api}/v1.0/contact/users/me``
the ``unionId``; ``POST {oapi}/topapi/user/getbyunionid`` with the app's token (``{oapi}/gettoken``)
the member's ``userid``.  Both vendors answer a code once.

The app's token is the one the app messages use (:mod:`notifications.apps`: fetched once, cached,
fetched again when the vendor calls it expired).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from duban.sso import Identity, SsoError, client, json_of, unreachable
from duban.vocabulary import SignInMethod
from notifications.apps.base import AppConfigError, VendorRefusalError
from notifications.apps.dingtalk import DingTalkApp
from notifications.apps.wecom import WeComApp

# what an app call may raise when the vendor cannot be asked: the page says so
APP_FAILURES = (httpx.HTTPError, VendorRefusalError, AppConfigError)

WECOM, DINGTALK = "企业微信", "钉钉"


def _refused(provider: str) -> SsoError:
    message = f"{provider}未能确认本次登录（授权码无效、已过期或已被使用）。请在{provider}中重新打开督办应用。"
    return SsoError(f"{provider}登录未通过", message)


def _not_member(provider: str) -> SsoError:
    message = f"{provider}确认您不是本单位通讯录中的成员，无法登录督办系统。如有疑问，请联系领导小组办公室。"
    return SsoError(f"{provider}登录未通过", message, 403)


@dataclass(frozen=True)
class WeCom:
    app: WeComApp
    authorize: str

    def authorization_url(self, redirect_uri: str, state: str) -> str:
        # WeCom reads the parameters in this order, and needs the #wechat_redirect fragment
        q = f"appid={quote(self.app.corp_id, safe='')}&redirect_uri={quote(redirect_uri, safe='')}&response_type=code"
        q += f"&scope=snsapi_base&state={quote(state, safe='')}&agentid={quote(str(self.app.agent_id), safe='')}"
        return f"{self.authorize}?{q}#wechat_redirect"

    def identity(self, code: str) -> Identity:
        if not code or len(code) > 512:
            raise _refused(WECOM)
        app = self.app
        try:
            user = app.with_token(
                lambda token: app.http("GET", "/cgi-bin/auth/getuserinfo", params={"access_token": token, "code": code}),
                lambda data: data.get("errcode"),
            )
        except APP_FAILURES:
            raise unreachable(WECOM) from None
        errcode = user.get("errcode", 0)
        if errcode in WECOM_CODE_ERRORS:
            raise _refused(WECOM)
        if errcode != 0:
            raise unreachable(WECOM)
        userid = user.get("userid") or user.get("UserId")
        if not isinstance(userid, str) or not userid:
            raise _not_member(WECOM)  # an outsider gets openid only
        return Identity(SignInMethod.WECOM, userid[:200])


# WeCom errcodes of a bad code: 40029 invalid code, 50001 redirect_uri not trusted, 40163 code used
WECOM_CODE_ERRORS = frozenset({40029, 40163, 42003})


@dataclass(frozen=True)
class DingTalk:
    app: DingTalkApp
    authorize: str
    timeout: float

    def authorization_url(self, redirect_uri: str, state: str) -> str:
        q = f"redirect_uri={quote(redirect_uri, safe='')}&response_type=code&client_id={quote(self.app.app_key, safe='')}"
        return f"{self.authorize}?{q}&scope=openid&state={quote(state, safe='')}&prompt=consent"

    def identity(self, code: str) -> Identity:
        if not code or len(code) > 512:
            raise _refused(DINGTALK)
        app, api = self.app, self.app.v1_base
        try:
            body = {"clientId": app.app_key, "clientSecret": app.secret.get(), "code": code, "grantType": "authorization_code"}
            with client(self.timeout) as http:
                resp = http.post(f"{api}/v1.0/oauth2/userAccessToken", json=body)
                user_token = json_of(resp, DINGTALK)
                if resp.status_code == 400:
                    raise _refused(DINGTALK)
                user_header = {"x-acs-dingtalk-access-token": _str(user_token, "accessToken")}
                me = _dingtalk_ok(http.get(f"{api}/v1.0/contact/users/me", headers=user_header))
            found = app.oapi("/topapi/user/getbyunionid", {"unionid": _str(me, "unionId")})
        except APP_FAILURES:
            raise unreachable(DINGTALK) from None
        if found.get("errcode") in DINGTALK_NOT_MEMBER:
            raise _not_member(DINGTALK)
        if found.get("errcode", 0) != 0:
            raise unreachable(DINGTALK)
        result = found.get("result")
        userid = result.get("userid") if isinstance(result, dict) else None
        if not isinstance(userid, str) or not userid:
            raise _not_member(DINGTALK)
        return Identity(SignInMethod.DINGTALK, userid[:200])


DINGTALK_NOT_MEMBER = frozenset({60121})  # 找不到该用户


def _dingtalk_ok(resp: httpx.Response) -> dict[str, Any]:
    data = json_of(resp, DINGTALK)
    if resp.status_code != 200 or data.get("errcode", 0) != 0:
        raise unreachable(DINGTALK)
    return data


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise unreachable(DINGTALK)
    return value
