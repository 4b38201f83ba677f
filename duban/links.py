"""Signed action links (签收, 反馈, 提交办结, 申请延期, 查看).

A link names one action, one task (and milestone) and one person, expires, and is signed with
``DUBAN_SECRET_KEY`` (HMAC-SHA256).  Each issued link is a ``links`` row (who, what, until when,
used or void) holding only the SHA-256 of its token; the token carries the row id and is derived
again from the row and the secret key whenever a message is rendered.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

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


def link_token(secret: str, link_id: int, action: str, expires: dt.date) -> str:
    """The token of an issued link (``links`` row): derived from the row and the secret key, so the
    store keeps only its hash and a message can be rendered again (a retry) with the same link."""
    return sign(secret, {"l": link_id, "a": action, "e": expires.isoformat()})


def link_url(base_url: str, secret: str, link_id: int, action: str, expires: dt.date) -> str:
    return f"{base_url.rstrip('/')}/l/{link_token(secret, link_id, action, expires)}"


def token_hash(token: str) -> str:
    """What the store keeps of a link (never the link itself)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class LinkSpec:
    """A link to issue: one action, one person, one task (and milestone or request)."""

    plan_id: int
    person_id: int
    action: str
    task_id: int | None
    milestone_id: int | None
    expires: dt.date
    request_id: int | None = None

    @property
    def reuse_key(self) -> tuple:
        return (self.person_id, self.task_id, self.milestone_id, self.request_id, self.action)


def issue(session: Session, specs: list[LinkSpec], *, secret: str, today: dt.date, now: dt.datetime | None = None) -> list[int]:
    """Link ids for ``specs`` (in order): an unused, valid link for the same action, person, task
    and milestone is reused when it lasts at least as long; otherwise a new one is stored (hash only)."""
    from duban.models import Link, utcnow

    if not specs:
        return []
    now = now or utcnow()
    table = Link.__table__
    existing: dict[tuple, tuple[int, dt.date]] = {}
    people = sorted({s.person_id for s in specs})
    for start in range(0, len(people), 5000):
        rows = session.execute(
            select(table.c.id, table.c.person_id, table.c.task_id, table.c.milestone_id, table.c.request_id, table.c.action, table.c.expires_on)
            .where(table.c.person_id.in_(people[start : start + 5000]), table.c.used_at.is_(None), table.c.void_at.is_(None),
                   table.c.expires_on >= today)
        )
        for r in rows:
            key = (r.person_id, r.task_id, r.milestone_id, r.request_id, r.action)
            if key not in existing or existing[key][1] < r.expires_on:
                existing[key] = (r.id, r.expires_on)
    ids: list[int | None] = []
    new: dict[tuple, int] = {}  # reuse_key -> index into fresh
    fresh: list[LinkSpec] = []
    for spec in specs:
        found = existing.get(spec.reuse_key)
        if found and found[1] >= spec.expires:
            ids.append(found[0])
        else:
            if spec.reuse_key not in new:
                new[spec.reuse_key] = len(fresh)
                fresh.append(spec)
            ids.append(None)
    if fresh:
        rows = [
            {"plan_id": s.plan_id, "person_id": s.person_id, "task_id": s.task_id, "milestone_id": s.milestone_id,
             "request_id": s.request_id, "action": s.action, "expires_on": s.expires, "created_at": now,
             "token_hash": "new-" + secrets.token_hex(20)}
            for s in fresh
        ]
        fresh_ids = []
        for start in range(0, len(rows), 2000):
            fresh_ids += session.execute(table.insert().returning(table.c.id, sort_by_parameter_order=True), rows[start : start + 2000]).scalars().all()
        session.execute(
            table.update().where(table.c.id == bindparam("lid")).values(token_hash=bindparam("h")),
            [{"lid": lid, "h": token_hash(link_token(secret, lid, s.action, s.expires))} for lid, s in zip(fresh_ids, fresh)],
        )
        ids = [i if i is not None else fresh_ids[new[spec.reuse_key]] for i, spec in zip(ids, specs)]
    return ids  # type: ignore[return-value]


def urls(session: Session, ids: list[int], *, base_url: str, secret: str) -> dict[int, str]:
    """The URLs of issued links, by id (for rendering a message)."""
    from duban.models import Link

    table = Link.__table__
    out: dict[int, str] = {}
    ids = sorted(set(ids))
    for start in range(0, len(ids), 5000):
        for r in session.execute(select(table.c.id, table.c.action, table.c.expires_on).where(table.c.id.in_(ids[start : start + 5000]))):
            out[r.id] = link_url(base_url, secret, r.id, r.action, r.expires_on)
    return out
