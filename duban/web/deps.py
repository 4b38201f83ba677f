"""What the routers share: the runtime, the client's address, the CSRF cookie of a group of pages,
rate limits, reading a form, writing to the store (:func:`store_write`), and the exceptions a
route raises to refuse (rendered by :func:`refusal_page`) or to say the store is busy (rendered by
:func:`busy_page`), the handlers :func:`duban.web.app.create_app` registers.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Path as PathParam
from fastapi import Query, Request
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from duban.db import is_transient, retry_transient, session_scope
from duban.evidence import EvidenceError, stored_path
from duban.link_tokens import token_hash, verify
from duban.links import LinkRefused
from duban.vocabulary import LinkAction
from duban.web.render import render
from duban.web.security import BodyTooLarge, RateLimiter, new_csrf_cookie

# Every integer a route reads from the address is bounded: an id beyond the store's integer (a
# PostgreSQL integer is 32-bit, SQLite's 64-bit) would fail in the driver (500), so it is answered
# as a page that does not exist (404, app.py) before the route runs. tests/web/test_hardening.py
# checks that no route takes a bare int.
MAX_ID = 2**31 - 1
RowId = Annotated[int, PathParam(ge=1, le=MAX_ID)]  # a row's id in the path
Count = Annotated[int, Query(ge=0, le=MAX_ID)]  # a number in the query string
OptCount = Annotated[int | None, Query(ge=0, le=MAX_ID)]


def runtime(request: Request):
    """The runtime the app was created with (settings, engine, clock)."""
    return request.app.state.rt


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


# -- the CSRF cookie ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsrfCookie:
    """The random cookie a group of pages binds its forms' CSRF fields to (HttpOnly, SameSite=Lax,
    Secure on https), on its own path: ``duban_csrf`` on /l/, ``duban_csrf_rv`` on /rv/,
    ``duban_form`` on / (the dashboard's forms)."""

    name: str
    path: str

    def of(self, request: Request) -> Cookie:
        """The browser's cookie, or a new one (set on the response by :meth:`Cookie.keep`)."""
        value = request.cookies.get(self.name)
        if value and 16 <= len(value) <= 64:
            return Cookie(self, value, False, False)
        return Cookie(self, new_csrf_cookie(), True, runtime(request).settings.base_url.startswith("https://"))


@dataclass(frozen=True)
class Cookie:
    spec: CsrfCookie
    value: str
    new: bool
    secure: bool

    def keep(self, resp: Response) -> Response:
        """``resp``, with the cookie set when the browser had none."""
        if self.new:
            resp.set_cookie(self.spec.name, self.value, httponly=True, samesite="lax", secure=self.secure, path=self.spec.path)
        return resp


LINK_COOKIE = CsrfCookie("duban_csrf", "/l/")
REVIEW_COOKIE = CsrfCookie("duban_csrf_rv", "/rv/")
FORM_COOKIE = CsrfCookie("duban_form", "/")


# -- refusals -------------------------------------------------------------------------------------------


class Refusal(Exception):  # noqa: N818  a page that says why not, not an error
    """A page that says why not, raised anywhere in a route (or a dependency) and rendered by
    :func:`refusal_page`: ``page`` with ``title``, ``message`` and ``ctx``, the ``headers``, and
    the CSRF ``cookie`` when the page carries a form bound to it."""

    def __init__(
        self,
        title: str,
        message: str,
        status: int,
        *,
        page: str = "error.html",
        headers: Mapping[str, str] | None = None,
        cookie: Cookie | None = None,
        **ctx: Any,
    ):
        super().__init__(message)
        self.title, self.message, self.status = title, message, status
        self.page, self.headers, self.cookie, self.ctx = page, dict(headers or {}), cookie, ctx


async def refusal_page(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, Refusal):  # registered for Refusal only
        raise exc
    resp = render(exc.page, {"title": exc.title, "message": exc.message, **exc.ctx}, exc.status, exc.headers)
    return exc.cookie.keep(resp) if exc.cookie is not None else resp


UNREADABLE_FORM = ("提交的内容无法识别", "请返回上一页重新填写后提交。", 400)


def link_refusal(err: LinkRefused, **ctx: Any) -> Refusal:
    """The page of a link that cannot be used (``refused.html``: ``renewable``, ``token``, ``csrf``)."""
    status = {"invalid": 404, "reassigned": 403, "not_reviewer": 403}.get(err.reason, 410)
    return Refusal(err.title, err.message, status, page="refused.html", **ctx)


def stored_file(evidence_path: Path, stored_name: str | None) -> Path:
    """The file of an evidence record, or the page that says it cannot be opened."""
    if stored_name is None:  # a URL, not a file
        raise Refusal("附件无法打开", "附件记录无效，请联系领导小组办公室。", 404)
    try:
        path = stored_path(evidence_path, stored_name)
    except EvidenceError:
        raise Refusal("附件无法打开", "附件记录无效，请联系领导小组办公室。", 404) from None
    if not path.is_file():
        raise Refusal("附件无法打开", "附件文件已不存在，请联系领导小组办公室。", 404)
    return path


# -- writing to the store -------------------------------------------------------------------------------

T = TypeVar("T")
log = logging.getLogger("duban.web")
ATTEMPT_WAIT = 5.0  # seconds one attempt waits for a lock (SQLite busy timeout, PostgreSQL lock_timeout)
BUSY_RETRY_AFTER = 30  # seconds the busy page asks a browser (or a script) to wait


class StoreBusy(Exception):  # noqa: N818  a page that says "not now", not an error
    """The store stayed busy (another task writing) for longer than the web waits: nothing of the
    request was saved. Rendered by :func:`busy_page` (503, ``Retry-After``)."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def store_write(rt, what: str, work: Callable[[Session], T]) -> T:
    """``work`` in one writing transaction, committed; while another process holds the store's
    lock (a sweep's long write on SQLite, a row or table lock on PostgreSQL), run again for up to
    ``DUBAN_WEB_BUSY_PATIENCE`` seconds, then raise :class:`StoreBusy` (``what``: for the log).

    ``work`` must touch nothing but the store (uploads are checked before and kept after it commits, messages sent after):
    a failed run is rolled back and only the last run is committed."""
    patience = rt.settings.web_busy_patience
    deadline = time.monotonic() + patience

    def attempt() -> T:
        with session_scope(rt.engine, wait=min(ATTEMPT_WAIT, max(0.1, deadline - time.monotonic()))) as s:
            return work(s)

    try:
        return retry_transient(attempt, patience=patience)
    except DBAPIError as err:
        if not is_transient(err):
            raise
        log.warning("store busy for %.0f s: %s not saved (%s: %s)", patience, what, err.__class__.__name__, err.orig)
        raise StoreBusy(what) from err


BUSY_TITLE = "系统正忙"
NOT_SAVED = f"系统正忙（另一项任务正在处理数据），您填写的内容尚未保存。请约 {BUSY_RETRY_AFTER} 秒后返回上一页，重新提交。"
TRY_AGAIN = f"系统正忙（另一项任务正在处理数据），请约 {BUSY_RETRY_AFTER} 秒后再试。如您刚才提交过内容，请重新打开页面查看是否已保存。"


async def busy_page(request: Request, exc: Exception) -> Response:
    """503 with ``Retry-After``: the store stayed busy (:class:`StoreBusy`: nothing saved), or any
    other transient store error (:func:`duban.db.is_transient`); other store errors go on to the 500 page."""
    if not isinstance(exc, StoreBusy) and not is_transient(exc):
        raise exc
    if not isinstance(exc, StoreBusy):
        log.warning("store busy on %s %s: %s", request.method, request.url.path, exc.__class__.__name__)
    parts = request.url.path.split("/")
    back = "/".join(parts[:3]) if len(parts) > 2 and parts[1] in ("l", "rv") else None
    message = NOT_SAVED if isinstance(exc, StoreBusy) else TRY_AGAIN
    headers = {"Retry-After": str(BUSY_RETRY_AFTER), "Cache-Control": "no-store"}
    return render("error.html", {"title": BUSY_TITLE, "message": message, "back": back}, 503, headers)


# -- links ----------------------------------------------------------------------------------------------

REVIEW_LINK_ACTIONS = frozenset({LinkAction.REVIEW_ANSWER, LinkAction.REVIEW_VERDICT, LinkAction.REVIEW_REPORT})


def is_review_token(secret: str, token: str) -> bool:
    """Whether ``token`` is a signed review link (the ``/l/`` page redirects those to ``/rv/``)."""
    try:
        return verify(secret, token, today=dt.date.min).get("a") in REVIEW_LINK_ACTIONS
    except Exception:  # noqa: BLE001
        return False


def is_mine_token(secret: str, token: str) -> bool:
    """Whether ``token`` is a signed 我的督办 link (the ``/l/`` page redirects those to ``/me/``)."""
    try:
        return verify(secret, token, today=dt.date.min).get("a") == LinkAction.MINE
    except Exception:  # noqa: BLE001
        return False


# -- rate limits ----------------------------------------------------------------------------------------


@dataclass
class Limiters:
    """The app's rate limiters (one set per app: :func:`duban.web.app.create_app`)."""

    ip: RateLimiter  # per client address, every link page
    link: RateLimiter  # per link
    renew: RateLimiter  # fresh links asked for, per link
    renew_ip: RateLimiter  # fresh links asked for, per client address over all links (much higher: many people share a NAT)
    login: RateLimiter  # dashboard sign-in attempts and read-only links, per address

    @classmethod
    def of(cls, settings, *, login_per_minute: int) -> Limiters:
        return cls(
            ip=RateLimiter(settings.rate_limit_per_minute, 60),
            link=RateLimiter(settings.rate_limit_link_per_minute, 60),
            renew=RateLimiter(settings.relink_per_hour, 3600),
            renew_ip=RateLimiter(settings.relink_per_address_per_hour, 3600),
            login=RateLimiter(login_per_minute, 60),
        )


def limiters(request: Request) -> Limiters:
    return request.app.state.limiters


def too_many(wait: int, title: str = "请求过于频繁", message: str | None = None, **kw: Any) -> Refusal:
    """The 429 page, with ``Retry-After``."""
    headers = {"Retry-After": str(wait), **kw.pop("headers", {})}
    return Refusal(title, message or f"您的操作过于频繁，请约 {wait} 秒后再试。", 429, headers=headers, **kw)


def limit_link(request: Request, token: str, *, prefix: str = "") -> None:
    """The first step of every link page: at most so many requests per client address and per link
    (``prefix`` keeps the counts of the review pages apart)."""
    lim = limiters(request)
    if wait := lim.ip.hit(f"{prefix}ip:{client_ip(request)}") or lim.link.hit(f"{prefix}link:{token_hash(token)[:32]}"):
        raise too_many(wait)


async def read_form(request: Request, *, too_large: bool = False, **limits: int):
    """The posted form, or None when it cannot be read (a malformed form is the client's problem).
    ``too_large``: a body that streams past the size limit is answered by
    :class:`duban.web.security.BodyLimit` (413) instead of as an unreadable form."""
    try:
        return await request.form(**limits)
    except BodyTooLarge:
        if too_large:
            raise
        return None
    except Exception:  # noqa: BLE001
        return None
