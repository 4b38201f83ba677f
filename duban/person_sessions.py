"""A person signed in to their own pages (我的督办): a ``person_sessions`` row and a signed cookie.

Opened by the institution's sign-in (CAS, OIDC, WeCom or DingTalk OAuth) or by a person's own
link; the cookie holds only the row's id, signed with a key derived from ``DUBAN_SECRET_KEY``
(its own purpose, so a dashboard cookie is never a person cookie).  Logout ends the row, so a
copied cookie stops working too; a person made inactive by a re-import is signed out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from sqlalchemy import update
from sqlalchemy.orm import Session

from duban.link_tokens import LinkError, sign, verify
from duban.models import Person, PersonSession
from duban.values import aware

PERSON_COOKIE = "duban_me"
PERSON_SESSION_HOURS = 12


def _key(secret: str) -> str:
    return hmac.new(secret.encode(), b"duban-person-session", hashlib.sha256).hexdigest()


def start(session: Session, person_id: int, *, method: str, subject: str, now: dt.datetime, until: dt.datetime) -> int:
    """A new session of the person (``method``: how they were identified); its id."""
    row = PersonSession(person_id=person_id, method=method, subject=subject[:200], created_at=now, expires_at=until)
    session.add(row)
    session.flush()
    return row.id


def cookie(secret: str, session_id: int, *, expires: dt.datetime) -> str:
    return sign(_key(secret), {"l": session_id, "a": "p", "e": "9999-12-31", "x": int(expires.timestamp())})


def read_cookie(secret: str, value: str | None, *, now: dt.datetime) -> int | None:
    """The session id of a valid, unexpired cookie, else None."""
    if not value or len(value) > 300:
        return None
    try:
        payload = verify(_key(secret), value, today=dt.date.min)
        session_id, kind, expiry = int(payload["l"]), payload["a"], int(payload["x"])
    except (LinkError, KeyError, TypeError, ValueError):
        return None
    return session_id if kind == "p" and expiry > now.timestamp() else None


def person_of(session: Session, session_id: int | None, *, now: dt.datetime) -> Person | None:
    """The person of an open session (ended, expired or an inactive person: None)."""
    if session_id is None:
        return None
    row = session.get(PersonSession, session_id)
    if row is None or row.ended_at is not None or aware(row.expires_at) <= now:
        return None
    person = session.get(Person, row.person_id)
    return person if person is not None and person.active else None


def end(session: Session, session_id: int, *, now: dt.datetime) -> None:
    session.execute(update(PersonSession).where(PersonSession.id == session_id, PersonSession.ended_at.is_(None)).values(ended_at=now))
