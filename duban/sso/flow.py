"""The state of one sign-in, kept in the browser's short-lived signed cookie (``duban_sso``).

It binds the provider's answer to the browser that started the sign-in: the callback needs the
cookie, of the same method, unexpired, and (OAuth/OIDC) with the same ``state``; the cookie also
holds the OIDC nonce and PKCE verifier and where to go after.  The callback deletes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from duban.link_tokens import LinkError, sign, verify
from duban.vocabulary import SignInMethod

FLOW_COOKIE = "duban_sso"
FLOW_PATH = "/sso/"
FLOW_MINUTES = 10  # time to sign in at the provider


def _key(secret: str) -> str:
    return hmac.new(secret.encode(), b"duban-sso-flow", hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Flow:
    method: SignInMethod
    state: str
    nonce: str
    verifier: str
    next_url: str  # where to go after (a safe local path)

    @classmethod
    def start(cls, method: SignInMethod, next_url: str) -> Flow:
        return cls(method, secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48), next_url)

    def cookie(self, secret: str, *, now: dt.datetime) -> str:
        expires = int((now + dt.timedelta(minutes=FLOW_MINUTES)).timestamp())
        payload = {"l": 0, "a": "sso", "e": "9999-12-31", "m": str(self.method), "s": self.state, "n": self.nonce}
        return sign(_key(secret), {**payload, "v": self.verifier, "t": self.next_url, "x": expires})


def read(secret: str, value: str | None, *, method: SignInMethod, now: dt.datetime) -> Flow | None:
    """The flow of a valid, unexpired cookie of ``method``, else None."""
    if not value or len(value) > 1500:
        return None
    try:
        p = verify(_key(secret), value, today=dt.date.min)
        flow = Flow(SignInMethod(p["m"]), str(p["s"]), str(p["n"]), str(p["v"]), str(p["t"]))
        fresh = p["a"] == "sso" and int(p["x"]) > now.timestamp()
    except (LinkError, KeyError, TypeError, ValueError):
        return None
    return flow if fresh and flow.method == method else None


def same_state(flow: Flow, state: str | None) -> bool:
    return bool(state) and hmac.compare_digest(flow.state.encode(), (state or "").encode())
