"""OpenID Connect: discovery, the authorization code flow with PKCE, state and nonce, and the
id_token checked against the provider's JWKS (signature, issuer, audience, expiry, nonce).

The server-side calls go through httpx; PKCE comes from authlib and the JOSE checks from joserfc
(authlib's own JOSE library).  The state, the nonce and the code verifier live in the browser's
short-lived signed cookie (:mod:`duban.sso.flow`), never on the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from duban.sso import Identity, SsoError, client, json_of, unreachable
from duban.vocabulary import SignInMethod

PROVIDER = "统一身份认证服务"
ALGORITHMS = ("RS256", "PS256", "ES256")
LEEWAY = 30  # seconds of clock difference allowed with the provider
REFUSED = "统一身份认证服务未能确认本次登录（授权码无效、已过期或已被使用）。请返回登录页重新登录。"
UNVERIFIED = (
    "统一身份认证服务返回的身份凭证未通过校验（签名、签发方、适用对象或有效期不符）。"
    "请返回登录页重新登录；如多次出现，请联系领导小组办公室。"
)


@dataclass(frozen=True)
class Provider:
    """What discovery says about the provider."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


def discover(issuer: str, *, timeout: float) -> Provider:
    """``{issuer}/.well-known/openid-configuration``; its ``issuer`` must be the configured one."""
    try:
        with client(timeout) as http:
            resp = http.get(issuer.rstrip("/") + "/.well-known/openid-configuration")
    except httpx.HTTPError:
        raise unreachable(PROVIDER) from None
    meta = json_of(resp, PROVIDER)
    keys = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
    if resp.status_code != 200 or not all(isinstance(meta.get(k), str) for k in keys):
        raise unreachable(PROVIDER)
    if meta["issuer"].rstrip("/") != issuer.rstrip("/"):
        raise SsoError("统一身份认证配置有误", "统一身份认证服务的签发方与本系统的配置不一致。请联系领导小组办公室核对配置。", 502)
    return Provider(meta["issuer"], meta["authorization_endpoint"], meta["token_endpoint"], meta["jwks_uri"])


def authorization_url(p: Provider, *, client_id: str, redirect_uri: str, scope: str, state: str, nonce: str, verifier: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "nonce": nonce,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    return f"{p.authorization_endpoint}{'&' if '?' in p.authorization_endpoint else '?'}{urlencode(params)}"


@dataclass(frozen=True)
class Client:
    """The relying party (duban) as registered with the provider."""

    client_id: str
    client_secret: str
    redirect_uri: str
    claim: str  # the claim that holds the account
    timeout: float


def identity(p: Provider, rp: Client, *, code: str, verifier: str, nonce: str, now: int) -> Identity:
    """Exchange the code (with the PKCE verifier) and check the id_token; the account it names."""
    if not code or len(code) > 2048:
        raise SsoError("统一身份认证未通过", REFUSED)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri, "code_verifier": verifier}
    # client_secret_basic: RFC 6749 2.3.1 form-encodes the id and the secret before Basic
    auth = httpx.BasicAuth(quote(rp.client_id, safe=""), quote(rp.client_secret, safe=""))
    try:
        with client(rp.timeout) as http:
            resp = http.post(p.token_endpoint, data=form, auth=auth, headers={"Accept": "application/json"})
            tokens = json_of(resp, PROVIDER)
            if resp.status_code in (400, 401) and "error" in tokens:
                raise SsoError("统一身份认证未通过", REFUSED)
            id_token = tokens.get("id_token")
            if resp.status_code != 200 or not isinstance(id_token, str):
                raise unreachable(PROVIDER)
            keys = json_of(http.get(p.jwks_uri), PROVIDER)
    except httpx.HTTPError:
        raise unreachable(PROVIDER) from None
    claims = checked_claims(id_token, keys, issuer=p.issuer, audience=rp.client_id, nonce=nonce, now=now)
    subject = claims.get(rp.claim)
    if not isinstance(subject, str | int) or not str(subject).strip():
        raise SsoError(
            "统一身份认证信息不完整",
            f"统一身份认证服务没有提供本系统所需的账号信息（{rp.claim}）。请联系领导小组办公室，由其与信息化部门核对配置。",
        )
    return Identity(SignInMethod.OIDC, str(subject).strip()[:200])


def checked_claims(id_token: str, jwks: dict[str, Any], *, issuer: str, audience: str, nonce: str, now: int) -> dict[str, Any]:
    """The claims of an id_token whose signature, issuer, audience, expiry and nonce are right."""
    registry = jwt.JWTClaimsRegistry(
        now=now,
        leeway=LEEWAY,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        sub={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        token = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=list(ALGORITHMS))  # type: ignore[arg-type]
        registry.validate(token.claims)
    except (JoseError, ValueError, KeyError, TypeError):
        raise SsoError("统一身份认证未通过", UNVERIFIED) from None
    claims = dict(token.claims)
    aud, azp = claims.get("aud"), claims.get("azp")
    if isinstance(aud, list) and len(aud) > 1 and azp != audience:
        raise SsoError("统一身份认证未通过", UNVERIFIED)
    return claims
