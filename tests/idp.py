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

The WeCom and DingTalk authorize pages (``/wecom/authorize``, ``/dingtalk/oauth2/auth``): they
give a code to the vendor's fake of tests/vendors.py (:attr:`FakeIdP.wecom`, :attr:`FakeIdP.dingtalk`,
the same servers as the app messages' and 待办's), which answers the server-side calls
(``/cgi-bin/gettoken``, ``/cgi-bin/auth/getuserinfo``; ``/v1.0/oauth2/userAccessToken``,
``/v1.0/contact/users/me``, ``/gettoken``, ``/topapi/user/getbyunionid``) with their error codes: a
code is good once (WeCom 40029 invalid code, DingTalk HTTP 400), an outsider has no userid (DingTalk
60121: not in the fake's directory, ``idp.dingtalk.add_user(userid, unionid)``).

Every request is kept in :attr:`FakeIdP.calls` (method, path, query, form or JSON body).
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.conftest import PINNED
from tests.local_http import ReceivedRequest, Reply, Serving
from tests.vendors import FakeDingTalk, FakeWeCom

CLIENT_ID = "duban-oidc"
CLIENT_SECRET = "oidc-secret-值/with:colon"


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
    # when the provider says it issued a token: the instant the `clock` fixture pins, never the real clock
    oidc_issued_at: int = int(PINNED.timestamp())
    oidc_codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    published_key: RSAKey | None = None  # what the JWKS publishes (None: the signing key)
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "idp-1", "use": "sig", "alg": "RS256"}))
    # WeCom and DingTalk: their authorize pages; the vendors' own fakes answer the rest
    wecom: FakeWeCom = field(default_factory=FakeWeCom)
    dingtalk: FakeDingTalk = field(default_factory=FakeDingTalk)
    wecom_user: str | None = None  # the member's userid (None: an outsider)
    dingtalk_union_id: str = "union-0001"
    calls: list[ReceivedRequest] = field(default_factory=list)
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
                "WECOM_CORP_ID": self.wecom.corp_id,
                "WECOM_AGENT_ID": str(self.wecom.agent_id),
                "WECOM_SECRET": self.wecom.secret,
                "WECOM_API_BASE": self.wecom.base_url,
                "WECOM_AUTHORIZE_URL": f"{self.url}/wecom/authorize",
            },
            "dingtalk": {
                "DINGTALK_APP_KEY": self.dingtalk.app_key,
                "DINGTALK_APP_SECRET": self.dingtalk.secret,
                "DINGTALK_AGENT_ID": str(self.dingtalk.agent_id),
                "DINGTALK_API_BASE": self.dingtalk.base_url,
                "DINGTALK_OAPI_BASE": self.dingtalk.base_url,
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
        now = self.oidc_issued_at
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


def _handler(idp: FakeIdP):
    def send(status: int, body: str | dict | list, headers: dict[str, str] | None = None, kind: str = "application/json") -> Reply:
        return Reply.of(status, body, headers, kind)

    def get(path: str, q: dict[str, str]) -> Reply:
        if path == "/cas/login":
            if idp.cas_user:
                status, headers, _ = _back(q.get("service", ""), ticket=idp.cas_ticket(q.get("service", ""), idp.cas_user))
                return send(status, "", headers, "text/html")
            return send(200, CAS_FORM.format(error="", service=html.escape(q.get("service", ""))), kind="text/html")
        if path in ("/cas/p3/serviceValidate", "/cas/serviceValidate"):
            return send(200, idp.cas_validate(q, attributes=path.startswith("/cas/p3/")), kind="application/xml")
        if path == "/oidc/.well-known/openid-configuration":
            return send(200, idp.discovery())
        if path == "/oidc/jwks":
            return send(200, {"keys": [(idp.published_key or idp.key).as_dict(private=False)]})
        if path == "/oidc/authorize":
            status, headers, text = idp.oidc_authorize(q)
            return send(status, text, headers, "text/plain")
        if path in ("/wecom/authorize", "/dingtalk/oauth2/auth"):
            code = secrets.token_urlsafe(12)
            if path == "/wecom/authorize":
                idp.wecom.codes[code] = idp.wecom_user
                status, headers, _ = _back(q["redirect_uri"], code=code, state=q.get("state", ""))
            else:
                idp.dingtalk.codes[code] = idp.dingtalk_union_id
                status, headers, _ = _back(q["redirect_uri"], authCode=code, state=q.get("state", ""))
            return send(status, "", headers, "text/plain")
        return send(404, {"error": "not_found"})

    def post(path: str, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        if path == "/cas/login":
            user, service = body.get("username", ""), body.get("service", "")
            if user and idp.cas_passwords.get(user) == body.get("password"):
                status, location, _ = _back(service, ticket=idp.cas_ticket(service, user))
                return send(303, "", location, "text/html")
            form = CAS_FORM.format(error="<p class='error'>用户名或密码错误</p>", service=html.escape(service))
            return send(401, form, kind="text/html")
        if path == "/oidc/token":
            return send(*idp.oidc_token(body, headers))
        return send(404, {"error": "not_found"})

    def handle(req: ReceivedRequest) -> Reply:
        idp.calls.append(req)
        return get(req.path, req.query) if req.method == "GET" else post(req.path, req.form, req.headers)

    return handle


@pytest.fixture
def idp():
    """A :class:`FakeIdP` serving on a free local port for the test (and its WeCom and DingTalk fakes)."""
    from notifications.apps.base import TOKENS

    fake = FakeIdP()
    serving = Serving(_handler(fake), name="fake-idp")
    fake.url = serving.base_url
    fake.wecom.start()
    fake.dingtalk.start()
    TOKENS.clear()
    try:
        yield fake
    finally:
        serving.stop()
        fake.wecom.stop()
        fake.dingtalk.stop()
        TOKENS.clear()
