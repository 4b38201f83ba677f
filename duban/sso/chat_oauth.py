"""The silent sign-in inside the WeCom (企业微信) and DingTalk (钉钉) apps: OAuth2 without a password.

WeCom: ``open.weixin.qq.com/connect/oauth2/authorize?…&scope=snsapi_base&agentid=…#wechat_redirect``
returns ``code``; ``{api}/cgi-bin/gettoken?corpid&corpsecret`` gives the app's access token and
``{api}/cgi-bin/auth/getuserinfo?access_token&code`` the member's ``userid``.

DingTalk: ``login.dingtalk.com/oauth2/auth?…&scope=openid&prompt=consent`` returns ``authCode``;
``POST {api}/v1.0/oauth2/userAccessToken`` gives the user's token, ``GET {api}/v1.0/contact/users/me``
the ``unionId``; ``{oapi}/gettoken?appkey&appsecret`` the app's token and ``POST
{oapi}/topapi/user/getbyunionid`` the member's ``userid``.  Both vendors answer a code once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from duban.sso import Identity, SsoError, client, json_of, unreachable
from duban.vocabulary import SignInMethod

WECOM, DINGTALK = "企业微信", "钉钉"


def _refused(provider: str) -> SsoError:
    message = f"{provider}未能确认本次登录（授权码无效、已过期或已被使用）。请在{provider}中重新打开督办应用。"
    return SsoError(f"{provider}登录未通过", message)


def _not_member(provider: str) -> SsoError:
    message = f"{provider}确认您不是本单位通讯录中的成员，无法登录督办系统。如有疑问，请联系领导小组办公室。"
    return SsoError(f"{provider}登录未通过", message, 403)


@dataclass(frozen=True)
class WeCom:
    corp_id: str
    agent_id: str
    secret: str
    api_base: str
    authorize: str
    timeout: float

    def authorization_url(self, redirect_uri: str, state: str) -> str:
        # WeCom reads the parameters in this order, and needs the #wechat_redirect fragment
        q = f"appid={quote(self.corp_id, safe='')}&redirect_uri={quote(redirect_uri, safe='')}&response_type=code"
        q += f"&scope=snsapi_base&state={quote(state, safe='')}&agentid={quote(self.agent_id, safe='')}"
        return f"{self.authorize}?{q}#wechat_redirect"

    def identity(self, code: str) -> Identity:
        if not code or len(code) > 512:
            raise _refused(WECOM)
        api = self.api_base.rstrip("/")
        try:
            with client(self.timeout) as http:
                token = _wecom_ok(http.get(f"{api}/cgi-bin/gettoken", params={"corpid": self.corp_id, "corpsecret": self.secret}))
                user = _wecom_ok(
                    http.get(f"{api}/cgi-bin/auth/getuserinfo", params={"access_token": token.get("access_token", ""), "code": code}),
                    code_error=True,
                )
        except httpx.HTTPError:
            raise unreachable(WECOM) from None
        userid = user.get("userid") or user.get("UserId")
        if not isinstance(userid, str) or not userid:
            raise _not_member(WECOM)  # an outsider gets openid only
        return Identity(SignInMethod.WECOM, userid[:200])


# WeCom errcodes of a bad code: 40029 invalid code, 50001 redirect_uri not trusted, 40163 code used
WECOM_CODE_ERRORS = frozenset({40029, 40163, 42003})


def _wecom_ok(resp: httpx.Response, *, code_error: bool = False) -> dict[str, Any]:
    data = json_of(resp, WECOM)
    errcode = data.get("errcode", 0)
    if code_error and errcode in WECOM_CODE_ERRORS:
        raise _refused(WECOM)
    if resp.status_code != 200 or errcode != 0:
        raise unreachable(WECOM)
    return data


@dataclass(frozen=True)
class DingTalk:
    app_key: str
    app_secret: str
    api_base: str
    oapi_base: str
    authorize: str
    timeout: float

    def authorization_url(self, redirect_uri: str, state: str) -> str:
        q = f"redirect_uri={quote(redirect_uri, safe='')}&response_type=code&client_id={quote(self.app_key, safe='')}"
        return f"{self.authorize}?{q}&scope=openid&state={quote(state, safe='')}&prompt=consent"

    def identity(self, code: str) -> Identity:
        if not code or len(code) > 512:
            raise _refused(DINGTALK)
        api, oapi = self.api_base.rstrip("/"), self.oapi_base.rstrip("/")
        body = {"clientId": self.app_key, "clientSecret": self.app_secret, "code": code, "grantType": "authorization_code"}
        try:
            with client(self.timeout) as http:
                resp = http.post(f"{api}/v1.0/oauth2/userAccessToken", json=body)
                user_token = json_of(resp, DINGTALK)
                if resp.status_code == 400:
                    raise _refused(DINGTALK)
                user_header = {"x-acs-dingtalk-access-token": _str(user_token, "accessToken")}
                me = _dingtalk_ok(http.get(f"{api}/v1.0/contact/users/me", headers=user_header))
                app = _dingtalk_ok(http.get(f"{oapi}/gettoken", params={"appkey": self.app_key, "appsecret": self.app_secret}))
                app_token = {"access_token": _str(app, "access_token")}
                unionid = {"unionid": _str(me, "unionId")}
                found = _dingtalk_ok(http.post(f"{oapi}/topapi/user/getbyunionid", params=app_token, json=unionid), not_member=True)
        except httpx.HTTPError:
            raise unreachable(DINGTALK) from None
        result = found.get("result")
        userid = result.get("userid") if isinstance(result, dict) else None
        if not isinstance(userid, str) or not userid:
            raise _not_member(DINGTALK)
        return Identity(SignInMethod.DINGTALK, userid[:200])


DINGTALK_NOT_MEMBER = frozenset({60121})  # 找不到该用户


def _dingtalk_ok(resp: httpx.Response, *, not_member: bool = False) -> dict[str, Any]:
    data = json_of(resp, DINGTALK)
    if not_member and data.get("errcode") in DINGTALK_NOT_MEMBER:
        raise _not_member(DINGTALK)
    if resp.status_code != 200 or data.get("errcode", 0) != 0:
        raise unreachable(DINGTALK)
    return data


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise unreachable(DINGTALK)
    return value
