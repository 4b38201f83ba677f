"""The person's sign-in cookie on the web (``duban.person_sessions``): set it after the
institution's sign-in or a person's own link, read it on 我的督办, clear it at logout."""

from __future__ import annotations

import datetime as dt

from fastapi import Request
from fastapi.responses import Response

from duban import person_sessions
from duban.db import session_scope
from duban.models import Person, utcnow
from duban.web.deps import runtime


def sign_in(request: Request, resp: Response, person_id: int, *, method: str, subject: str, now: dt.datetime | None = None) -> Response:
    """Open a session for the person and set its cookie on ``resp``."""
    rt = runtime(request)
    now = now or utcnow()
    until = now + dt.timedelta(hours=person_sessions.PERSON_SESSION_HOURS)
    with session_scope(rt.engine) as s:
        session_id = person_sessions.start(s, person_id, method=method, subject=subject, now=now, until=until)
    value = person_sessions.cookie(rt.settings.secret_key, session_id, expires=until)
    resp.set_cookie(
        person_sessions.PERSON_COOKIE,
        value,
        max_age=int((until - now).total_seconds()),
        httponly=True,
        samesite="lax",
        secure=rt.settings.base_url.startswith("https://"),
        path="/",
    )
    return resp


def session_id(request: Request, now: dt.datetime | None = None) -> int | None:
    rt = runtime(request)
    return person_sessions.read_cookie(rt.settings.secret_key, request.cookies.get(person_sessions.PERSON_COOKIE), now=now or utcnow())


def current_person(request: Request, now: dt.datetime | None = None) -> tuple[int, int, str] | None:
    """(person id, plan id, name) of the signed-in person, else None."""
    now = now or utcnow()
    sid = session_id(request, now)
    if sid is None:
        return None
    with session_scope(runtime(request).engine, readonly=True) as s:
        person: Person | None = person_sessions.person_of(s, sid, now=now)
        return (person.id, person.plan_id, person.name) if person is not None else None


def sign_out(request: Request, resp: Response, now: dt.datetime | None = None) -> Response:
    sid = session_id(request, now)
    if sid is not None:
        with session_scope(runtime(request).engine) as s:
            person_sessions.end(s, sid, now=now or utcnow())
    resp.delete_cookie(person_sessions.PERSON_COOKIE, path="/")
    return resp
