"""A local fake of the institution's identity providers, for the sign-in tests (duban/sso/).

:class:`FakeIdP` is one HTTP server on 127.0.0.1 and a free port that plays, as their vendors
document them:

CAS (protocol 2.0 / 3.0) under ``/cas``
    ``GET /cas/login?service=S``: with :attr:`FakeIdP.cas_user` set (a CAS session already open)
    straight back to ``S?ticket=ST-…``; else the login form, whose ``POST /cas/login`` checks the
    password (:attr:`FakeIdP.cas_passwords`) and then redirects the same way.
    ``GET /cas/p3/serviceValidate`` and ``/cas/serviceValidate`` answer the XML
    ``cas:serviceResponse`` with ``cas:authenticationSuccess`` (``cas:user``, ``cas:attributes``)
    or ``cas:authenticationFailure code="INVALID_TICKET" | "INVALID_SERVICE"``.  A ticket is good
    once, for the service it was issued to.

OpenID Connect under ``/oidc`` (issuer ``{url}/oidc``)
    discovery, ``/oidc/jwks``, ``/oidc/authorize`` (the signed-in user is :attr:`FakeIdP.oidc_claims`;
    ``code_challenge_method=S256`` required) and ``POST /oidc/token`` (client_secret_basic, the
    code once, redirect_uri and the PKCE verifier checked) issuing RS256 id_tokens signed with
    joserfc.  :attr:`oidc_audience` and :attr:`oidc_lifetime` make a wrong or expired token.

WeCom (``/wecom/authorize``, ``/cgi-bin/gettoken``, ``/cgi-bin/auth/getuserinfo``) and DingTalk
(``/dingtalk/oauth2/auth``; ``/dingtalk-api/v1.0/oauth2/userAccessToken``, ``/v1.0/contact/users/me``;
``/dingtalk-oapi/gettoken``, ``/topapi/user/getbyunionid``) with their error codes: a code is
good once (WeCom 40029 invalid code, DingTalk HTTP 400), an outsider has no userid (DingTalk 60121).

Every request is kept in :attr:`FakeIdP.calls` (method, path, query, form or JSON body).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

LOCALHOST = "127.0.0.1"
CLIENT_ID = "duban-oidc"
CLIENT_SECRET = "oidc-secret-值/with:colon"
CORP_ID = "ww0123456789"
AGENT_ID = "1000002"
WECOM_SECRET = "wecom-app-secret"
DINGTALK_KEY = "dingappkey0001"
DINGTALK_SECRET = "dingtalk-app-secret"


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeIdP:
    url: str = ""
    # CAS
    cas_user: str | None = None  # a CAS session already open (no form)
    cas_passwords: dict[str, str] = field(default_factory=dict)  # the login form's accounts
    cas_attributes: dict[str, dict[str, str]] = field(default_factory=dict)  # per user
    tickets: dict[str, tuple[str, str]] = field(default_factory=dict)  # ticket → (service, user)
    # OIDC
    oidc_claims: dict[str, Any] = field(default_factory=dict)  # the signed-in user's claims (sub, preferred_username…)
    oidc_audience: str | None = None  # None: the client id
    oidc_lifetime: int = 300  # seconds (negative: already expired)
    oidc_codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    published_key: RSAKey | None = None  # what the JWKS publishes (None: the signing key)
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "idp-1", "use": "sig", "alg": "RS256"}))
    # WeCom and DingTalk
    wecom_user: str | None = None  # the member's userid (None: an outsider)
    wecom_codes: dict[str, str | None] = field(default_factory=dict)
    dingtalk_union_id: str = "union-0001"
    dingtalk_users: dict[str, str] = field(default_factory=dict)  # unionId → userid of the corp
    dingtalk_codes: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # access tokens issued → what for
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def cas_url(self) -> str:
        return f"{self.url}/cas"

    @property
    def issuer(self) -> str:
        return f"{self.url}/oidc"

    def env(self, monkeypatch, *methods: str) -> None:
        """Configure duban (``DUBAN_*``) for the given methods against this server."""
        values = {
            "cas": {"CAS_URL": self.cas_url},
            "oidc": {"OIDC_ISSUER": self.issuer, "OIDC_CLIENT_ID": CLIENT_ID, "OIDC_CLIENT_SECRET": CLIENT_SECRET},
            "wecom": {
                "WECOM_CORP_ID": CORP_ID,
                "WECOM_AGENT_ID": AGENT_ID,
                "WECOM_SECRET": WECOM_SECRET,
                "WECOM_API_BASE": self.url,
                "WECOM_AUTHORIZE_URL": f"{self.url}/wecom/authorize",
            },
            "dingtalk": {
                "DINGTALK_APP_KEY": DINGTALK_KEY,
                "DINGTALK_APP_SECRET": DINGTALK_SECRET,
                "DINGTALK_AGENT_ID": "3000002",
                "DINGTALK_API_BASE": f"{self.url}/dingtalk-api",
                "DINGTALK_OAPI_BASE": f"{self.url}/dingtalk-oapi",
                "DINGTALK_AUTHORIZE_URL": f"{self.url}/dingtalk/oauth2/auth",
            },
        }
        for method in methods:
            for name, value in values[method].items():
                monkeypatch.setenv(f"DUBAN_{name}", value)

    def paths(self) -> list[str]:
        return [c.path for c in self.calls]

    # -- CAS ----------------------------------------------------------------------------------------

    def cas_ticket(self, service: str, user: str) -> str:
        ticket = "ST-" + secrets.token_urlsafe(16)
        with self.lock:
            self.tickets[ticket] = (service, user)
        return ticket

    def cas_validate(self, query: dict[str, str], *, attributes: bool) -> str:
        with self.lock:
            issued = self.tickets.pop(query.get("ticket", ""), None)
        if issued is None:
            return _cas_failure("INVALID_TICKET", f"Ticket {query.get('ticket', '')[:8]}… not recognized")
        service, user = issued
        if service != query.get("service"):
            return _cas_failure("INVALID_SERVICE", "Ticket was issued for another service")
        attrs = "".join(f"<cas:{k}>{html.escape(v)}</cas:{k}>" for k, v in self.cas_attributes.get(user, {}).items())
        body = f"<cas:user>{html.escape(user)}</cas:user>" + (f"<cas:attributes>{attrs}</cas:attributes>" if attributes else "")
        return f"<cas:serviceResponse xmlns:cas='http://www.yale.edu/tp/cas'><cas:authenticationSuccess>{body}</cas:authenticationSuccess></cas:serviceResponse>"

    # -- OIDC ---------------------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        }

    def oidc_authorize(self, q: dict[str, str]) -> tuple[int, dict[str, str], str]:
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code" or not q.get("redirect_uri"):
            return 400, {}, "invalid_request"
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return _back(q["redirect_uri"], error="invalid_request", state=q.get("state", ""))
        code = secrets.token_urlsafe(16)
        with self.lock:
            self.oidc_codes[code] = {"q": q, "claims": dict(self.oidc_claims)}
        return _back(q["redirect_uri"], code=code, state=q.get("state", ""))

    def oidc_token(self, form: dict[str, str], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        client_id, _, secret = base64.b64decode(value or "").decode().partition(":") if scheme == "Basic" else ("", "", "")
        if (unquote(client_id), unquote(secret)) != (CLIENT_ID, CLIENT_SECRET):
            return 401, {"error": "invalid_client"}
        with self.lock:
            issued = self.oidc_codes.pop(form.get("code", ""), None)
        if issued is None or form.get("grant_type") != "authorization_code":
            return 400, {"error": "invalid_grant", "error_description": "code unknown or used"}
        q = issued["q"]
        challenge = base64.urlsafe_b64encode(hashlib.sha256(form.get("code_verifier", "").encode()).digest()).rstrip(b"=").decode()
        if form.get("redirect_uri") != q["redirect_uri"] or challenge != q["code_challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri or code_verifier mismatch"}
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.oidc_audience or CLIENT_ID,
            "iat": now,
            "exp": now + self.oidc_lifetime,
            **issued["claims"],
        }
        if "nonce" in q:
            claims["nonce"] = q["nonce"]
        id_token = jwt.encode({"alg": "RS256", "kid": "idp-1"}, claims, self.key)
        return 200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300, "id_token": id_token}

    # -- WeCom and DingTalk -------------------------------------------------------------------------------

    def token(self, purpose: str) -> str:
        value = secrets.token_urlsafe(16)
        with self.lock:
            self.tokens[value] = purpose
        return value

    def wecom(self, path: str, q: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if path == "/cgi-bin/gettoken":
            if (q.get("corpid"), q.get("corpsecret")) != (CORP_ID, WECOM_SECRET):
                return 200, {"errcode": 40091, "errmsg": "secret is invalid"}
            return 200, {"errcode": 0, "errmsg": "ok", "access_token": self.token("wecom"), "expires_in": 7200}
        if self.tokens.get(q.get("access_token", "")) != "wecom":
            return 200, {"errcode": 40014, "errmsg": "invalid access_token"}
        with self.lock:
            if q.get("code", "") not in self.wecom_codes:
                return 200, {"errcode": 40029, "errmsg": "invalid code"}
            userid = self.wecom_codes.pop(q["code"])
        if userid is None:  # not a member: WeCom answers the outsider's openid only
            return 200, {"errcode": 0, "errmsg": "ok", "openid": "oAAAA-outsider"}
        return 200, {"errcode": 0, "errmsg": "ok", "userid": userid, "user_ticket": "ticket-not-needed"}

    def dingtalk(self, path: str, q: dict[str, str], body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if path == "/dingtalk-api/v1.0/oauth2/userAccessToken":
            if (body.get("clientId"), body.get("clientSecret"), body.get("grantType")) != (
                DINGTALK_KEY,
                DINGTALK_SECRET,
                "authorization_code",
            ):
                return 400, {"code": "invalidClientIdOrSecret", "message": "无效的clientId或clientSecret"}
            with self.lock:
                union_id = self.dingtalk_codes.pop(str(body.get("code")), None)
            if union_id is None:
                return 400, {"code": "invalidAuthCode", "message": "authCode无效或已使用"}
            return 200, {"accessToken": self.token("user:" + union_id), "refreshToken": "r", "expireIn": 7200}
        if path == "/dingtalk-api/v1.0/contact/users/me":
            purpose = self.tokens.get(headers.get("x-acs-dingtalk-access-token", ""), "")
            if not purpose.startswith("user:"):
                return 401, {"code": "InvalidAuthentication", "message": "不合法的access_token"}
            return 200, {"nick": "用户", "unionId": purpose.removeprefix("user:"), "openId": "open-1", "stateCode": "86"}
        if path == "/dingtalk-oapi/gettoken":
            if (q.get("appkey"), q.get("appsecret")) != (DINGTALK_KEY, DINGTALK_SECRET):
                return 200, {"errcode": 40089, "errmsg": "不合法的corpid或corpsecret"}
            return 200, {"errcode": 0, "errmsg": "ok", "access_token": self.token("dingtalk-app"), "expires_in": 7200}
        if path == "/dingtalk-oapi/topapi/user/getbyunionid":
            if self.tokens.get(q.get("access_token", "")) != "dingtalk-app":
                return 200, {"errcode": 88, "errmsg": "不合法的access_token"}
            userid = self.dingtalk_users.get(str(body.get("unionid")))
            if userid is None:
                return 200, {"errcode": 60121, "errmsg": "找不到该用户"}
            return 200, {"errcode": 0, "errmsg": "ok", "result": {"contact_type": 0, "userid": userid}, "request_id": "r1"}
        return 404, {"code": "notFound"}


def _cas_failure(code: str, text: str) -> str:
    return (
        "<cas:serviceResponse xmlns:cas='http://www.yale.edu/tp/cas'>"
        f"<cas:authenticationFailure code='{code}'>{html.escape(text)}</cas:authenticationFailure></cas:serviceResponse>"
    )


def _back(redirect_uri: str, **params: str) -> tuple[int, dict[str, str], str]:
    sep = "&" if "?" in redirect_uri else "?"
    return 302, {"Location": f"{redirect_uri}{sep}{urlencode(params)}"}, ""


CAS_FORM = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>统一身份认证</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body><h1>统一身份认证</h1>{error}
<form method="post" action="/cas/login"><input type="hidden" name="service" value="{service}">
<label for="username">学工号</label><input id="username" name="username">
<label for="password">密码</label><input id="password" name="password" type="password">
<button type="submit">登录</button></form></body></html>"""


def _handler(idp: FakeIdP) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  quiet
            pass

        def _record(self, body: dict[str, Any]) -> tuple[str, dict[str, str]]:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            headers = {k.lower(): v for k, v in self.headers.items()}
            idp.calls.append(Call(self.command, parts.path, query, body, headers))
            return parts.path, query

        def _send(
            self, status: int, body: str | dict | list, headers: dict[str, str] | None = None, kind: str = "application/json"
        ) -> None:
            data = (json.dumps(body, ensure_ascii=False) if not isinstance(body, str) else body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": f"{kind}; charset=utf-8", **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            path, q = self._record({})
            if path == "/cas/login":
                if idp.cas_user:
                    status, headers, _ = _back(q.get("service", ""), ticket=idp.cas_ticket(q.get("service", ""), idp.cas_user))
                    return self._send(status, "", headers, "text/html")
                return self._send(200, CAS_FORM.format(error="", service=html.escape(q.get("service", ""))), kind="text/html")
            if path in ("/cas/p3/serviceValidate", "/cas/serviceValidate"):
                return self._send(200, idp.cas_validate(q, attributes=path.startswith("/cas/p3/")), kind="application/xml")
            if path == "/oidc/.well-known/openid-configuration":
                return self._send(200, idp.discovery())
            if path == "/oidc/jwks":
                return self._send(200, {"keys": [(idp.published_key or idp.key).as_dict(private=False)]})
            if path == "/oidc/authorize":
                status, headers, text = idp.oidc_authorize(q)
                return self._send(status, text, headers, "text/plain")
            if path == "/wecom/authorize":
                code = secrets.token_urlsafe(12)
                idp.wecom_codes[code] = idp.wecom_user
                status, headers, _ = _back(q["redirect_uri"], code=code, state=q.get("state", ""))
                return self._send(status, "", headers, "text/plain")
            if path == "/dingtalk/oauth2/auth":
                code = secrets.token_urlsafe(12)
                idp.dingtalk_codes[code] = idp.dingtalk_union_id
                status, headers, _ = _back(q["redirect_uri"], authCode=code, state=q.get("state", ""))
                return self._send(status, "", headers, "text/plain")
            if path.startswith("/cgi-bin/"):
                return self._send(*idp.wecom(path, q))
            status, body = idp.dingtalk(path, q, {}, {k.lower(): v for k, v in self.headers.items()})
            return self._send(status, body)

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            if self.headers.get("Content-Type", "").startswith("application/json"):
                body: dict[str, Any] = json.loads(raw or "{}")
            else:
                body = {k: v[0] for k, v in parse_qs(raw).items()}
            path, q = self._record(body)
            headers = {k.lower(): v for k, v in self.headers.items()}
            if path == "/cas/login":
                user, service = body.get("username", ""), body.get("service", "")
                if user and idp.cas_passwords.get(user) == body.get("password"):
                    status, location, _ = _back(service, ticket=idp.cas_ticket(service, user))
                    return self._send(303, "", location, "text/html")
                form = CAS_FORM.format(error="<p class='error'>用户名或密码错误</p>", service=html.escape(service))
                return self._send(401, form, kind="text/html")
            if path == "/oidc/token":
                return self._send(*idp.oidc_token(body, headers))
            return self._send(*idp.dingtalk(path, q, body, headers))

    return Handler


@pytest.fixture
def idp():
    """A :class:`FakeIdP` serving on a free local port for the test."""
    fake = FakeIdP()
    server = ThreadingHTTPServer((LOCALHOST, 0), _handler(fake))
    fake.url = f"http://{LOCALHOST}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake-idp", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
