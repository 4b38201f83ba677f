"""Who is signed in to the dashboard, and what every dashboard page shares: the session cookie,
the forms' CSRF fields (bound to the ``duban_form`` cookie and to the form), the private
headers, the page that refuses, and the plans a viewer may see."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from duban import accounts, dashboard_access
from duban.db import session_scope
from duban.models import Plan, utcnow
from duban.vocabulary import AccountRole
from duban.web.deps import FORM_COOKIE, UNREADABLE_FORM, Refusal, read_form, runtime, store_write
from duban.web.render import render

PRIVATE = {"Cache-Control": "no-store, private", "Vary": "Cookie"}


def form_token(secret: str, cookie: str, purpose: str) -> str:
    """The hidden field of a form: bound to the browser's form cookie and to the form."""
    return hmac.new(secret.encode(), f"dashboard-form:{purpose}:{cookie}".encode(), hashlib.sha256).hexdigest()[:40]


def form_ok(request: Request, form, purpose: str) -> bool:
    cookie, field = request.cookies.get(FORM_COOKIE.name), form.get("csrf") if form is not None else None
    if not cookie or not isinstance(field, str):
        return False
    return hmac.compare_digest(form_token(runtime(request).settings.secret_key, cookie, purpose), field)


def message_page(
    title: str, message: str, status: int, *, viewer: dashboard_access.Viewer | None = None, login: bool = False, csrf: str = ""
) -> HTMLResponse:
    """A page that explains, and shows no data."""
    return render(
        "dashboard_message.html", {"title": title, "message": message, "viewer": viewer, "login": login, "csrf": csrf}, status, PRIVATE
    )


def viewer_page(request: Request, name: str, viewer, ctx: dict[str, Any], status: int = 200, *, forms: tuple[str, ...] = ()) -> Response:
    """A dashboard page with the sign-out field and the CSRF fields of its forms (``forms``: purposes)."""
    cookie = FORM_COOKIE.of(request)
    secret = runtime(request).settings.secret_key
    tokens = {p: form_token(secret, cookie.value, p) for p in forms}
    ctx = {"viewer": viewer, "csrf": form_token(secret, cookie.value, "logout"), "tokens": tokens, **ctx}
    return cookie.keep(render(name, ctx, status, PRIVATE))


def refusal(request: Request, viewer, title: str, message: str, status: int) -> Refusal:
    """The page that refuses a signed-in viewer (with the sign-out form): raise it."""
    cookie = FORM_COOKIE.of(request)
    csrf = form_token(runtime(request).settings.secret_key, cookie.value, "logout")
    return Refusal(
        title, message, status, page="dashboard_message.html", headers=PRIVATE, cookie=cookie, viewer=viewer, login=False, csrf=csrf
    )


def set_session(request: Request, resp: Response, *, kind: str, ident: int, version: int, now: dt.datetime, until: dt.datetime) -> Response:
    """The sign-in cookie, valid from ``now`` (the time the sign-in was checked) until ``until``."""
    settings = runtime(request).settings
    value = dashboard_access.session_cookie(settings.secret_key, kind=kind, ident=ident, version=version, expires=until)
    max_age = max(1, int((until - now).total_seconds() + 0.999))
    resp.set_cookie(
        dashboard_access.SESSION_COOKIE,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=settings.base_url.startswith("https://"),
        path="/",
    )
    return resp


def same_origin(request: Request) -> bool:
    """Whether a request comes from a page of this site: ``Sec-Fetch-Site`` when the browser
    sends it, else an ``Origin`` or ``Referer`` of this site (neither: refused)."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    ours = {_origin(runtime(request).settings.base_url), _origin(str(request.base_url))}
    source = request.headers.get("origin") or request.headers.get("referer") or ""
    return _origin(source) in ours - {""}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def confirm_link_page(request: Request, viewer: dashboard_access.Viewer, *, token: str, link_name: str) -> Response:
    """Someone signed in opened a read-only link: ask before the link's session replaces theirs."""
    cookie = FORM_COOKIE.of(request)
    secret = runtime(request).settings.secret_key
    ctx = {
        "viewer": viewer,
        "csrf": form_token(secret, cookie.value, "logout"),
        "link_csrf": form_token(secret, cookie.value, "open-link"),
        "token": token,
        "link_name": link_name,
    }
    return cookie.keep(render("dashboard_link_confirm.html", ctx, 200, PRIVATE))


def end_dashboard_session(request: Request) -> None:
    """End this browser's dashboard session in the store (an account's sessions, or a link's
    session): a copied cookie stops working too."""
    rt = runtime(request)
    now = utcnow()
    cookie = dashboard_access.read_session_cookie(rt.settings.secret_key, request.cookies.get(dashboard_access.SESSION_COOKIE), now=now)
    if cookie is None:
        return
    kind, ident, version = cookie

    def end(s) -> None:
        if kind == "a":
            accounts.end_sessions(s, ident)
        else:
            dashboard_access.end_link_session(s, ident, version, now=now)

    store_write(rt, "sign-out", end)


def clear_session(resp: Response) -> Response:
    resp.delete_cookie(dashboard_access.SESSION_COOKIE, path="/")
    return resp


def current_viewer(request: Request) -> dashboard_access.Viewer | None:
    rt = runtime(request)
    cookie = dashboard_access.read_session_cookie(
        rt.settings.secret_key, request.cookies.get(dashboard_access.SESSION_COOKIE), now=utcnow()
    )
    if cookie is None:
        return None
    with session_scope(rt.engine, readonly=True) as s:
        return dashboard_access.viewer_of(s, cookie, today=rt.today())


def safe_next(value: str | None) -> str:
    """Only a dashboard address of this site (never another site: no open redirect)."""
    if not value or not value.startswith("/dashboard") or value.startswith("//") or "\\" in value:
        return "/dashboard"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/dashboard"
    return value


def to_login(request: Request) -> Response:
    """Nobody signed in: to /login (and the stale session cookie cleared), no data."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    resp = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303, headers=PRIVATE)
    return clear_session(resp) if request.cookies.get(dashboard_access.SESSION_COOKIE) else resp


def signed_in(request: Request):
    """(viewer, None) or (None, the answer for nobody signed in: to /login, no data)."""
    viewer = current_viewer(request)
    return (viewer, None) if viewer is not None else (None, to_login(request))


async def handle_form(request: Request, viewer, handle: Callable[..., Response], *args: Any, max_fields: int = 10) -> Response:
    """A dashboard POST: the posted form (no files), refused when it cannot be read, then
    ``handle(request, viewer, *args, form)`` off the event loop (it reads and writes the store).
    A province viewer reads every school and acts on none: refused before the form is read."""
    if viewer.province:
        raise refusal(request, viewer, *PROVINCE_READ_ONLY)
    if (form := await read_form(request, max_files=0, max_fields=max_fields)) is None:
        raise refusal(request, viewer, *UNREADABLE_FORM)
    return await run_in_threadpool(handle, request, viewer, *args, form)


PROVINCE_READ_ONLY = (
    "只读账户",
    "省级账户可以查看各单位的督办情况，不能代替单位办理（审批、催办、发起督查等）。如需办理，请联系该单位的领导小组办公室。",
    403,
)


def office_only(request: Request, viewer) -> None:
    if viewer.kind == "account" and viewer.role == AccountRole.OFFICE:
        return
    raise refusal(request, viewer, "无权操作", "只有领导小组办公室的账户可以发起或撤销督查。如需发起督查，请联系领导小组办公室。", 403)


def plans_of(request: Request, viewer) -> list[Any]:
    """The plans the viewer may see (id, code, name), by code."""
    with session_scope(runtime(request).engine, readonly=True) as s:
        rows = s.execute(select(Plan.id, Plan.code, Plan.name).order_by(Plan.code)).all()
    return [r for r in rows if viewer.may_see(r.id)]


def plan_scope(request: Request, viewer: dashboard_access.Viewer, plan: str | None) -> tuple[list[dict[str, str]], str | None]:
    """The plans the viewer may pick, and the plan to show (None: every plan the viewer may see,
    ``viewer.plan_ids``: their institution's, or every plan for the province).  Refuses a plan
    outside the viewer's scope as if it did not exist (another school's plan is never confirmed)."""
    allowed = plans_of(request, viewer)
    plans = [{"code": r.code, "name": r.name} for r in allowed]
    if plan:
        if not any(r.code == plan for r in allowed):
            if viewer.plan_id is None:
                raise refusal(request, viewer, "没有该方案", "没有找到该方案，请从方案列表中选择。", 404)
            raise refusal(request, viewer, "无权查看", "您的账户无权查看该方案。如需查看，请联系领导小组办公室。", 403)
        return plans, plan
    if viewer.plan_id is not None:
        if not allowed:
            raise refusal(request, viewer, "方案不存在", "您的账户对应的方案已不存在。请联系领导小组办公室。", 404)
        return plans, allowed[0].code
    if len(allowed) == 1:
        return plans, allowed[0].code
    return plans, None
