"""Signed action links (签收, 反馈, 提交办结, 申请延期, 查看).

A link names one action, one task (and milestone) and one person, expires, and is signed with
``DUBAN_SECRET_KEY`` (HMAC-SHA256).  The web pages that act on them come with the links issue;
here is what messages need to carry them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from typing import Any

ACTIONS = {
    "ack": "签收",
    "progress": "反馈进展",
    "done": "提交办结",
    "extend": "申请延期",
    "view": "查看任务",
}


class LinkError(ValueError):
    """A link that is tampered with, malformed or expired (message in Chinese)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: str, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    sig = _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()[:18])
    return f"{body}.{sig}"


def verify(secret: str, token: str, *, today: dt.date) -> dict[str, Any]:
    try:
        body, sig = token.split(".", 1)
        expected = _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()[:18])
        if not hmac.compare_digest(sig, expected):
            raise LinkError("链接无效或已被修改")
        payload = json.loads(_unb64(body))
    except LinkError:
        raise
    except Exception:  # noqa: BLE001 - any malformed token
        raise LinkError("链接无效或已被修改") from None
    if dt.date.fromisoformat(payload["e"]) < today:
        raise LinkError("链接已过期")
    return payload


def action_token(secret: str, action: str, person_id: int, task_id: int, milestone_id: int | None, expires: dt.date) -> str:
    payload = {"a": action, "p": person_id, "t": task_id, "e": expires.isoformat()}
    if milestone_id is not None:
        payload["m"] = milestone_id
    return sign(secret, payload)


def action_url(base_url: str, secret: str, action: str, person_id: int, task_id: int, milestone_id: int | None, expires: dt.date) -> str:
    return f"{base_url.rstrip('/')}/l/{action_token(secret, action, person_id, task_id, milestone_id, expires)}"


def token_hash(token: str) -> str:
    """What the store keeps of a link (never the link itself)."""
    return hashlib.sha256(token.encode()).hexdigest()
