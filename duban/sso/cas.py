"""CAS (protocol 2.0 / 3.0): the login address, and the ticket validated server-side.

``{cas}/login?service=<callback>`` sends the browser to the institution's login page, which
returns to the callback with ``ticket=ST-…``; :func:`validate` asks ``{cas}/p3/serviceValidate``
(3.0, with attributes) or ``{cas}/serviceValidate`` (2.0) whether the ticket is good for exactly
that service.  A CAS server answers a ticket once: a replayed ticket is refused by it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405  the answer of the configured CAS server (expat: no external entities)
from urllib.parse import urlencode

import httpx

from duban.sso import Identity, SsoError, client, unreachable
from duban.vocabulary import SignInMethod

NS = {"cas": "http://www.yale.edu/tp/cas"}
MAX_ANSWER = 64 * 1024  # a validation answer is a few hundred bytes
PROVIDER = "统一身份认证服务"
REFUSED = "统一身份认证服务未能确认本次登录（票据无效、已过期或已被使用）。请返回登录页重新登录。"


def login_url(cas_url: str, service: str) -> str:
    return f"{cas_url.rstrip('/')}/login?{urlencode({'service': service})}"


def validate(cas_url: str, *, service: str, ticket: str, version: int, attribute: str | None, timeout: float) -> Identity:
    """The identity a ticket stands for (``attribute``: which attribute holds the account)."""
    if not ticket or len(ticket) > 512:
        raise SsoError("统一身份认证未通过", REFUSED)
    path = "/p3/serviceValidate" if version == 3 else "/serviceValidate"
    try:
        with client(timeout) as http:
            resp = http.get(cas_url.rstrip("/") + path, params={"service": service, "ticket": ticket})
    except httpx.HTTPError:
        raise unreachable(PROVIDER) from None
    if resp.status_code != 200 or len(resp.content) > MAX_ANSWER:
        raise unreachable(PROVIDER)
    return Identity(SignInMethod.CAS, account_of(resp.text, attribute))


def account_of(answer: str, attribute: str | None) -> str:
    """The account in a ``serviceResponse`` (``cas:user``, or the attribute named ``attribute``)."""
    try:
        root = ET.fromstring(answer)  # noqa: S314  see the import
    except ET.ParseError:
        raise unreachable(PROVIDER) from None
    success = root.find("cas:authenticationSuccess", NS)
    if success is None:
        raise SsoError("统一身份认证未通过", REFUSED)
    user = (success.findtext("cas:user", default="", namespaces=NS) or "").strip()
    if attribute:
        values = [(e.text or "").strip() for e in success.findall(f"cas:attributes/cas:{attribute}", NS)]
        values = [v for v in values if v]
        if len(values) != 1:
            raise SsoError(
                "统一身份认证信息不完整",
                f"统一身份认证服务没有提供本系统所需的账号信息（属性 {attribute}）。请联系领导小组办公室，由其与信息化部门核对配置。",
            )
        return values[0][:200]
    if not user:
        raise SsoError("统一身份认证未通过", REFUSED)
    return user[:200]
