"""The dashboard (看板) for the office and the leading group: the roll-up views, live, behind sign-in.

Routes (an ``APIRouter`` included by :func:`duban.web.app.create_app`):

- ``GET/POST /login``, ``POST /logout``: accounts (``duban account add``); a signed session
  cookie (HttpOnly, SameSite=Lax, Secure on https) that expires after ``DUBAN_SESSION_HOURS``;
  CSRF on both forms; wrong passwords lock the (account, client address) pair for a while
  (:func:`duban.accounts.authenticate`), attempts are limited per client address too; every
  refusal gets the same answer.  Logout ends an account's sessions, or a link's session.
- ``GET /d/<token>``: a signed read-only link (``duban dashboard-link``) becomes a session of
  its own (the token is not carried through the pages); revoked or expired, it stops at once.
  Someone already signed in keeps their session: the page asks, and only a same-site POST with
  its CSRF field (``POST /d/<token>``) replaces it.
- ``GET /dashboard/reviews…``: the 督查 section (list, show, start, cancel): duban/web/dashboard_reviews.py.
- ``GET /dashboard`` (and ``/dashboard.json``): the numbers of :func:`duban.rollup.compute` for
  the plans the viewer may see; filters ``plan``, ``system``, ``department``, ``supervisor``, and
  ``institution`` (a school's plans: the province's read-only drill-in,
  :func:`duban.web.dashboard_province.drill_in`).  A province viewer with neither ``plan`` nor
  ``institution`` lands on the province's page (``/dashboard/province``).

Nobody without access sees a name or a number: anonymous requests are redirected to /login (the
JSON answers 401 with no data), a plan outside an account's scope answers 403 with no data.
Every answer is ``Cache-Control: no-store``.  See docs/web.md ("Dashboard").
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from duban import accounts, dashboard_access
from duban.db import session_scope
from duban.models import utcnow
from duban.web import dashboard_announce, dashboard_paper, dashboard_province, dashboard_views, rollup_cache, sso
from duban.web.deps import FORM_COOKIE, Count, Refusal, client_ip, limiters, read_form, runtime, store_write, too_many
from duban.web.render import render
from duban.web.signin import (
    PRIVATE,
    clear_session,
    confirm_link_page,
    current_viewer,
    end_dashboard_session,
    form_ok,
    form_token,
    message_page,
    plan_scope,
    safe_next,
    same_origin,
    set_session,
    to_login,
    viewer_page,
)

log = logging.getLogger("duban.web.dashboard")
LOGIN_ATTEMPTS_PER_MINUTE = 10  # per client address (the account lock counts per account)
FILTERS = ("system", "department", "supervisor")

router = APIRouter()


# -- sign-in ------------------------------------------------------------------------------------------


def _login_page(
    request: Request,
    *,
    error: str = "",
    notice: str = "",
    login: str = "",
    next_url: str = "/dashboard",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    cookie = FORM_COOKIE.of(request)
    ctx = {
        "csrf": form_token(runtime(request).settings.secret_key, cookie.value, "login"),
        "error": error,
        "notice": notice,
        "login_name": login,
        "next": safe_next(next_url),
        "sso": sso.buttons(runtime(request).settings, safe_next(next_url)),
    }
    return cookie.keep(render("login.html", ctx, status, {**PRIVATE, **(headers or {})}))


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next_url: Annotated[str | None, Query(alias="next")] = None, out: Count = 0):
    if current_viewer(request) is not None:
        return RedirectResponse(safe_next(next_url), status_code=303, headers=PRIVATE)
    return _login_page(request, next_url=next_url or "/dashboard", notice="您已安全退出。" if out else "")


@router.post("/login", response_class=HTMLResponse)
async def login_submit(request: Request):
    form = await read_form(request, max_files=0, max_fields=10)
    login = (form.get("login") if form is not None else "") or ""
    password = (form.get("password") if form is not None else "") or ""
    next_url = (form.get("next") if form is not None else "") or "/dashboard"
    if not isinstance(login, str) or not isinstance(password, str) or not isinstance(next_url, str):
        return _login_page(request, error="提交的内容无法识别，请重新填写。", status=400)
    if not form_ok(request, form, "login"):
        return _login_page(request, error="页面已过期，请重新输入登录名和密码后登录。", login=login, next_url=next_url, status=403)
    if wait := limiters(request).login.hit("login:" + client_ip(request)):
        return _login_page(
            request,
            error=f"登录尝试过于频繁，请约 {wait} 秒后再试。",
            login=login,
            next_url=next_url,
            status=429,
            headers={"Retry-After": str(wait)},
        )
    return await run_in_threadpool(_login, request, login.strip(), password, next_url)


def _login(request: Request, login: str, password: str, next_url: str) -> Response:
    rt = runtime(request)
    settings = rt.settings
    now = utcnow()
    result = store_write(
        rt,
        "sign-in",
        lambda s: accounts.authenticate(
            s,
            login,
            password[:1024],
            now=now,
            address=client_ip(request),
            max_failures=settings.login_max_failures,
            lock_minutes=settings.login_lock_minutes,
            account_max_failures=settings.login_account_max_failures,
        ),
    )
    if not result.ok:
        log.info("dashboard sign-in refused for %r from %s", login[:100], client_ip(request))
        return _login_page(request, error=result.message, login=login, next_url=next_url, status=401)
    if result.account_id is None:
        raise RuntimeError("a successful sign-in names its account")
    until = now + dt.timedelta(hours=settings.session_hours)
    resp = RedirectResponse(safe_next(next_url), status_code=303, headers=PRIVATE)
    return set_session(request, resp, kind="a", ident=result.account_id, version=result.session_version, now=now, until=until)


@router.post("/logout")
async def logout(request: Request):
    form = await read_form(request, max_files=0, max_fields=5)
    if not form_ok(request, form, "logout"):
        return message_page("页面已过期", "为保护您的账户安全，本次退出未被受理。请返回看板后重新点击“退出登录”。", 403)
    await run_in_threadpool(end_dashboard_session, request)
    return clear_session(RedirectResponse("/login?out=1", status_code=303, headers=PRIVATE))


@router.get("/d/{token}")
def open_read_only_link(request: Request, token: str):
    """Nobody signed in: the link's session at once.  Signed in (an account, or another link):
    the page that asks, so that no page of another site can change who is signed in here."""
    if wait := limiters(request).login.hit("link:" + client_ip(request)):
        raise too_many(wait, page="dashboard_message.html", headers=PRIVATE, viewer=None, login=False, csrf="")
    viewer = current_viewer(request)
    if viewer is None:
        return _use_link(request, token)
    rt = runtime(request)
    try:
        with session_scope(rt.engine, readonly=True) as s:
            link = dashboard_access.open_dashboard_link(s, token, secret=rt.settings.secret_key, today=rt.today())
            link_id, link_name = link.id, link.note or dashboard_access.LINK_LABEL
    except accounts.AccountError as err:
        return _link_refused(err)
    if viewer.kind == "link" and viewer.ident == link_id:
        return RedirectResponse("/dashboard", status_code=303, headers=PRIVATE)
    return confirm_link_page(request, viewer, token=token, link_name=link_name)


@router.post("/d/{token}")
async def confirm_read_only_link(request: Request, token: str):
    """The signed-in viewer chose to view through the link instead (same site, CSRF field)."""
    form = await read_form(request, max_files=0, max_fields=5)
    if not form_ok(request, form, "open-link") or not same_origin(request):
        return message_page("页面已过期", "为保护您的账户安全，本次操作未被受理。请重新打开只读链接。", 403)
    if wait := limiters(request).login.hit("link:" + client_ip(request)):
        raise too_many(wait, page="dashboard_message.html", headers=PRIVATE, viewer=None, login=False, csrf="")
    return await run_in_threadpool(_use_link, request, token)


def _link_refused(err: accounts.AccountError) -> Response:
    return message_page("链接无法使用", str(err), 410 if "过期" in str(err) or "撤销" in str(err) else 404)


def _use_link(request: Request, token: str) -> Response:
    """The link's own session for this browser (a link session it replaces is ended)."""
    rt = runtime(request)
    now = utcnow()
    old = dashboard_access.read_session_cookie(rt.settings.secret_key, request.cookies.get(dashboard_access.SESSION_COOKIE), now=now)

    def use(s):
        link = dashboard_access.open_dashboard_link(s, token, secret=rt.settings.secret_key, today=rt.today())
        link.last_used_at = now
        end_of_link = dt.datetime.combine(link.expires_on + dt.timedelta(days=1), dt.time(), tzinfo=rt.tz)
        until = min(now + dt.timedelta(hours=rt.settings.session_hours), end_of_link)
        if old is not None and old[0] == "d":
            dashboard_access.end_link_session(s, old[1], old[2], now=now)
        return link.id, dashboard_access.start_link_session(s, link.id, now=now, until=until), until

    try:
        ident, session_id, until = store_write(rt, "read-only dashboard link", use)
    except accounts.AccountError as err:
        return _link_refused(err)
    resp = RedirectResponse("/dashboard", status_code=303, headers=PRIVATE)
    return set_session(request, resp, kind="d", ident=ident, version=session_id, now=now, until=until)


# -- the dashboard --------------------------------------------------------------------------------------


def _filters(request: Request) -> dict[str, str]:
    return {key: value[:300] for key in FILTERS if (value := request.query_params.get(key))}


def _data(request: Request, viewer: dashboard_access.Viewer, plan_code: str | None) -> dashboard_views.Dashboard:
    rt = runtime(request)
    return dashboard_views.build(
        rt, viewer, plan_code=plan_code, filters=_filters(request), today=rt.today(), rollups=rollup_cache.of(request)
    )


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, plan: str | None = None, institution: str | None = None):
    viewer = current_viewer(request)
    if viewer is None:
        return to_login(request)
    if viewer.province and not plan and not institution:
        return RedirectResponse(dashboard_province.PAGE, status_code=303, headers=PRIVATE)  # the province's page first
    viewer, school = dashboard_province.drill_in(request, viewer, institution, plan)
    plans, plan_code = plan_scope(request, viewer, plan)
    announce = [a for a in dashboard_announce.waiting_plans(request, viewer) if plan_code is None or a["code"] == plan_code]
    paper = dashboard_paper.downloads(request, viewer, plan_code)
    d = _data(request, viewer, plan_code)
    if viewer.province:  # read only: nothing to hand out, nothing to issue
        announce, paper["notices"] = [], False
        if school and plan_code is None:
            d.clear_href = school["href"]
    ctx = {"plans": plans, "plan_code": plan_code, "d": d, "announce": announce, "paper": paper, "school": school}
    return viewer_page(request, "dashboard.html", viewer, ctx, forms=(dashboard_paper.FORM,))


@router.get("/dashboard.json")
def dashboard_json(request: Request, plan: str | None = None, institution: str | None = None):
    viewer = current_viewer(request)
    if viewer is None:
        return JSONResponse({"ok": False, "error": "请先登录。"}, status_code=401, headers=PRIVATE)
    try:
        viewer, _school = dashboard_province.drill_in(request, viewer, institution, plan)
        _, plan_code = plan_scope(request, viewer, plan)
    except Refusal as err:
        return JSONResponse({"ok": False, "error": err.message}, status_code=err.status, headers=PRIVATE)
    return JSONResponse(dashboard_views.as_json(_data(request, viewer, plan_code), viewer), headers=PRIVATE)
