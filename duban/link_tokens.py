"""Signed tokens: what an action link carries, signed with ``DUBAN_SECRET_KEY`` (HMAC-SHA256).

A token is base64 JSON (the link row's id ``l``, the action ``a``, the last day ``e``) and its
signature.  :func:`sign` and :func:`verify` serve every signed value of duban (action links,
read-only dashboard links, session cookies, sign-in state); :func:`link_token` derives an issued
link's token from its row, and the store keeps only :func:`token_hash`.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import json
from typing import Any

from duban.vocabulary import LinkAction


class LinkError(ValueError):
    """A link that is tampered with, malformed or expired (message in Chinese)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# one encoder for every token (``json.dumps`` with options builds a new encoder on each call)
_TOKEN_JSON = json.JSONEncoder(separators=(",", ":"), sort_keys=True)
# the actions whose JSON string is the action itself between quotes (plain ASCII names)
_PLAIN_ACTIONS = frozenset(str(a) for a in LinkAction if str(a).replace("_", "").isalnum() and str(a).isascii())


@functools.lru_cache(maxsize=16)
def _keyed(secret: str) -> Any:
    """The HMAC of ``secret`` with nothing fed yet: copied for each signature (the key is hashed once)."""
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def _signature(secret: str, body: str) -> str:
    mac = _keyed(secret).copy()
    mac.update(body.encode())
    return _b64(mac.digest()[:18])


def sign(secret: str, payload: dict[str, Any]) -> str:
    return _signed(secret, _TOKEN_JSON.encode(payload))


def _signed(secret: str, text: str) -> str:
    body = _b64(text.encode())
    return f"{body}.{_signature(secret, body)}"


@functools.lru_cache(maxsize=4096)
def _checked_payload(secret: str, token: str) -> tuple[tuple[str, Any], ...]:
    """The payload of a token whose signature is valid (raises :class:`LinkError` otherwise).
    Remembered: one page view checks its token two or three times (the review redirect,
    ``resolve``), and a link is opened more than once; only valid tokens are remembered."""
    try:
        body, sig = token.split(".", 1)
        expected = _signature(secret, body)
        if not hmac.compare_digest(sig, expected):
            raise LinkError("链接无效或已被修改")
        payload = json.loads(_unb64(body))
    except LinkError:
        raise
    except Exception:  # noqa: BLE001 - any malformed token
        raise LinkError("链接无效或已被修改") from None
    if not isinstance(payload, dict) or not {"l", "a", "e"} <= payload.keys():
        raise LinkError("链接无效或已被修改")
    try:
        dt.date.fromisoformat(payload["e"])
    except (TypeError, ValueError):  # a malformed date is a malformed token
        raise LinkError("链接无效或已被修改") from None
    return tuple(payload.items())


def verify(secret: str, token: str, *, today: dt.date) -> dict[str, Any]:
    payload = dict(_checked_payload(secret, token))
    if dt.date.fromisoformat(payload["e"]) < today:
        raise LinkError("链接已过期")
    return payload


def link_token(secret: str, link_id: int, action: str, expires: dt.date) -> str:
    """The token of an issued link (``links`` row): derived from the row and the secret key, so the
    store keeps only its hash and a message can be rendered again (a retry) with the same link.

    A province's sweep signs ~90,000 links twice (their hashes, then their messages): the payload's
    JSON is written directly for the usual case (the bytes ``sign`` would encode)."""
    if type(link_id) is int and action in _PLAIN_ACTIONS:
        return _signed(secret, f'{{"a":"{action}","e":"{expires.isoformat()}","l":{link_id}}}')
    return sign(secret, {"l": link_id, "a": action, "e": expires.isoformat()})


def link_url(base_url: str, secret: str, link_id: int, action: str, expires: dt.date) -> str:
    """A link's address: ``/l/<token>``, and a person's own page (我的督办) ``/me/<token>``."""
    room = "me" if action == LinkAction.MINE else "l"
    return f"{base_url.rstrip('/')}/{room}/{link_token(secret, link_id, action, expires)}"


def token_hash(token: str) -> str:
    """What the store keeps of a link (never the link itself)."""
    return hashlib.sha256(token.encode()).hexdigest()
