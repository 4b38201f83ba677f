"""The dashboard (看板) for the office and the leading group: the roll-up views, live, behind sign-in.

Routes (an ``APIRouter`` included by :func:`duban.web.app.create_app`):

- ``GET/POST /login``, ``POST /logout``: accounts (``duban account add``); a signed session
  cookie (HttpOnly, SameSite=Lax, Secure on https) that expires after ``DUBAN_SESSION_HOURS``;
  CSRF on both forms; wrong passwords lock an account for a while, attempts are limited per
  client address too.
- ``GET /d/<token>``: a signed read-only link (``duban dashboard-link``) becomes a session of
  its own (the token is not carried through the pages); revoked or expired, it stops at once.
- ``GET /dashboard/reviews…``: the 督查 section (list, show, start, cancel): duban/web/dashboard_reviews.py.
- ``GET /dashboard`` (and ``/dashboard.json``): the numbers of :func:`duban.rollup.compute` for
  the plans the viewer may see; filters ``plan``, ``system``, ``department``, ``supervisor``.

Nobody without access sees a name or a number: anonymous requests are redirected to /login (the
JSON answers 401 with no data), a plan outside an account's scope answers 403 with no data.
Every answer is ``Cache-Control: no-store``.  See docs/web.md ("Dashboard").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from duban import accounts
from duban.db import session_scope
from duban.models import Plan, utcnow
from duban.web.security import RateLimiter, new_csrf_cookie

log = logging.getLogger("duban.web.dashboard")
HERE = Path(__file__).parent
ENV = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(default=True, default_for_string=True),
                  auto_reload=False, trim_blocks=True, lstrip_blocks=True)

FORM_COOKIE = "duban_form"  # the CSRF cookie of the sign-in and sign-out forms (path /)
PRIVATE = {"Cache-Control": "no-store, private", "Vary": "Cookie"}
LOGIN_ATTEMPTS_PER_MINUTE = 10  # per client address (the account lock counts per account)
FILTERS = ("system", "department", "supervisor")

router = APIRouter()


# -- plumbing ---------------------------------------------------------------------------------------


def _rt(request: Request):
    return request.app.state.rt


def _limiter(request: Request) -> RateLimiter:
    state = request.app.state
    limiter = getattr(state, "dashboard_login_limiter", None)
    if limiter is None:
        limiter = state.dashboard_login_limiter = RateLimiter(LOGIN_ATTEMPTS_PER_MINUTE, 60)
    return limiter


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _secure(request: Request) -> bool:
    return _rt(request).settings.base_url.startswith("https://")


def render(name: str, ctx: dict[str, Any] | None = None, status: int = 200) -> HTMLResponse:
    html = ENV.get_template(name).render(**(ctx or {}))
    return HTMLResponse(html, status_code=status, headers=PRIVATE)


def message_page(title: str, message: str, status: int, *, viewer: accounts.Viewer | None = None, login: bool = False,
                 csrf: str = "") -> HTMLResponse:
    """A page that explains, and shows no data."""
    return render("dashboard_message.html", {"title": title, "message": message, "viewer": viewer, "login": login, "csrf": csrf}, status)


def form_token(secret: str, cookie: str, purpose: str) -> str:
    """The hidden field of a form: bound to the browser's form cookie and to the form."""
    return hmac.new(secret.encode(), f"dashboard-form:{purpose}:{cookie}".encode(), hashlib.sha256).hexdigest()[:40]


def _form_cookie(request: Request) -> tuple[str, bool]:
    value = request.cookies.get(FORM_COOKIE)
    if value and 16 <= len(value) <= 64:
        return value, False
    return new_csrf_cookie(), True


def _with_form_cookie(request: Request, resp: Response, value: str, new: bool) -> Response:
    if new:
        resp.set_cookie(FORM_COOKIE, value, httponly=True, samesite="lax", secure=_secure(request), path="/")
    return resp


def _form_ok(request: Request, form, purpose: str) -> bool:
    cookie, field = request.cookies.get(FORM_COOKIE), form.get("csrf") if form is not None else None
    if not cookie or not isinstance(field, str):
        return False
    return hmac.compare_digest(form_token(_rt(request).settings.secret_key, cookie, purpose), field)


def _set_session(request: Request, resp: Response, *, kind: str, ident: int, version: int, until: dt.datetime) -> Response:
    settings = _rt(request).settings
    value = accounts.session_cookie(settings.secret_key, kind=kind, ident=ident, version=version, expires=until)
    max_age = max(1, int((until - utcnow()).total_seconds() + 0.999))
    resp.set_cookie(accounts.SESSION_COOKIE, value, max_age=max_age, httponly=True, samesite="lax", secure=_secure(request), path="/")
    return resp


def _clear_session(resp: Response) -> Response:
    resp.delete_cookie(accounts.SESSION_COOKIE, path="/")
    return resp


def current_viewer(request: Request) -> accounts.Viewer | None:
    rt = _rt(request)
    cookie = accounts.read_session_cookie(rt.settings.secret_key, request.cookies.get(accounts.SESSION_COOKIE), now=utcnow())
    if cookie is None:
        return None
    with session_scope(rt.engine, readonly=True) as s:
        return accounts.viewer_of(s, cookie, today=rt.today())


def _safe_next(value: str | None) -> str:
    """Only a dashboard address of this site (never another site: no open redirect)."""
    if not value or not value.startswith("/dashboard") or value.startswith("//") or "\\" in value:
        return "/dashboard"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/dashboard"
    return value


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303, headers=PRIVATE)


# -- sign-in ------------------------------------------------------------------------------------------


def _login_page(request: Request, *, error: str = "", notice: str = "", login: str = "", next_url: str = "/dashboard",
                status: int = 200) -> Response:
    cookie, new = _form_cookie(request)
    ctx = {"csrf": form_token(_rt(request).settings.secret_key, cookie, "login"), "error": error, "notice": notice,
           "login_name": login, "next": _safe_next(next_url)}
    return _with_form_cookie(request, render("login.html", ctx, status), cookie, new)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None, out: int = 0):
    if current_viewer(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303, headers=PRIVATE)
    return _login_page(request, next_url=next or "/dashboard", notice="您已安全退出。" if out else "")


@router.post("/login", response_class=HTMLResponse)
async def login_submit(request: Request):
    try:
        form = await request.form(max_files=0, max_fields=10)
    except Exception:  # noqa: BLE001 - a malformed form is the client's problem
        form = None
    login = (form.get("login") if form is not None else "") or ""
    password = (form.get("password") if form is not None else "") or ""
    next_url = (form.get("next") if form is not None else "") or "/dashboard"
    if not isinstance(login, str) or not isinstance(password, str) or not isinstance(next_url, str):
        return _login_page(request, error="提交的内容无法识别，请重新填写。", status=400)
    if not _form_ok(request, form, "login"):
        return _login_page(request, error="页面已过期，请重新输入登录名和密码后登录。", login=login, next_url=next_url, status=403)
    if wait := _limiter(request).hit("login:" + _client_ip(request)):
        resp = _login_page(request, error=f"登录尝试过于频繁，请约 {wait} 秒后再试。", login=login, next_url=next_url, status=429)
        resp.headers["Retry-After"] = str(wait)
        return resp
    from fastapi.concurrency import run_in_threadpool

    return await run_in_threadpool(_login, request, login.strip(), password, next_url)


def _login(request: Request, login: str, password: str, next_url: str) -> Response:
    rt = _rt(request)
    settings = rt.settings
    now = utcnow()
    with session_scope(rt.engine) as s:
        result = accounts.authenticate(s, login, password[:1024], now=now, max_failures=settings.login_max_failures,
                                       lock_minutes=settings.login_lock_minutes)
    if not result.ok:
        log.info("dashboard sign-in refused for %r from %s", login[:100], _client_ip(request))
        status = 429 if "锁定" in result.message else 401
        return _login_page(request, error=result.message, login=login, next_url=next_url, status=status)
    until = now + dt.timedelta(hours=settings.session_hours)
    resp = RedirectResponse(_safe_next(next_url), status_code=303, headers=PRIVATE)
    return _set_session(request, resp, kind="a", ident=result.account_id, version=result.session_version, until=until)


@router.post("/logout")
async def logout(request: Request):
    try:
        form = await request.form(max_files=0, max_fields=5)
    except Exception:  # noqa: BLE001
        form = None
    if not _form_ok(request, form, "logout"):
        return message_page("页面已过期", "为保护您的账户安全，本次退出未被受理。请返回看板后重新点击“退出登录”。", 403)
    rt = _rt(request)
    cookie = accounts.read_session_cookie(rt.settings.secret_key, request.cookies.get(accounts.SESSION_COOKIE), now=utcnow())
    if cookie is not None and cookie[0] == "a":
        with session_scope(rt.engine) as s:
            accounts.end_sessions(s, cookie[1])  # a copied cookie stops working too
    return _clear_session(RedirectResponse("/login?out=1", status_code=303, headers=PRIVATE))


@router.get("/d/{token}")
def open_read_only_link(request: Request, token: str):
    if wait := _limiter(request).hit("link:" + _client_ip(request)):
        resp = message_page("请求过于频繁", f"您的操作过于频繁，请约 {wait} 秒后再试。", 429)
        resp.headers["Retry-After"] = str(wait)
        return resp
    rt = _rt(request)
    try:
        with session_scope(rt.engine) as s:
            link = accounts.open_dashboard_link(s, token, secret=rt.settings.secret_key, today=rt.today())
            link.last_used_at = utcnow()
            ident, expires_on = link.id, link.expires_on
    except accounts.AccountError as err:
        return message_page("链接无法使用", str(err), 410 if "过期" in str(err) or "撤销" in str(err) else 404)
    end_of_link = dt.datetime.combine(expires_on + dt.timedelta(days=1), dt.time(), tzinfo=rt.tz)
    until = min(utcnow() + dt.timedelta(hours=rt.settings.session_hours), end_of_link)
    resp = RedirectResponse("/dashboard", status_code=303, headers=PRIVATE)
    return _set_session(request, resp, kind="d", ident=ident, version=0, until=until)


# -- the dashboard --------------------------------------------------------------------------------------


class Refusal(Exception):
    def __init__(self, title: str, message: str, status: int):
        super().__init__(message)
        self.title, self.message, self.status = title, message, status


def _scope(request: Request, viewer: accounts.Viewer, plan: str | None) -> tuple[list[dict[str, str]], str | None]:
    """The plans the viewer may pick, and the plan to show (None: every plan, for an account
    over all plans).  Refuses a plan outside the viewer's scope without saying whether it exists."""
    rt = _rt(request)
    with session_scope(rt.engine, readonly=True) as s:
        rows = s.execute(select(Plan.id, Plan.code, Plan.name).order_by(Plan.code)).all()
    allowed = [r for r in rows if viewer.may_see(r.id)]
    plans = [{"code": r.code, "name": r.name} for r in allowed]
    if plan:
        if not any(r.code == plan for r in allowed):
            if viewer.plan_id is None:
                raise Refusal("没有该方案", "没有找到该方案，请从方案列表中选择。", 404)
            raise Refusal("无权查看", "您的账户无权查看该方案。如需查看，请联系领导小组办公室。", 403)
        return plans, plan
    if viewer.plan_id is not None:
        if not allowed:
            raise Refusal("方案不存在", "您的账户对应的方案已不存在。请联系领导小组办公室。", 404)
        return plans, allowed[0].code
    if len(allowed) == 1:
        return plans, allowed[0].code
    return plans, None


def _filters(request: Request) -> dict[str, str]:
    out = {}
    for key in FILTERS:
        value = request.query_params.get(key)
        if value:
            out[key] = value[:300]
    return out


def _data(request: Request, viewer: accounts.Viewer, plan_code: str | None, filters: dict[str, str]) -> dict[str, Any]:
    from duban.web import dashboard_views

    rt = _rt(request)
    return dashboard_views.build(rt, viewer, plan_code=plan_code, filters=filters, today=rt.today())


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, plan: str | None = None):
    viewer = current_viewer(request)
    if viewer is None:
        return _clear_session(_to_login(request)) if request.cookies.get(accounts.SESSION_COOKIE) else _to_login(request)
    cookie, new = _form_cookie(request)
    csrf = form_token(_rt(request).settings.secret_key, cookie, "logout")
    try:
        plans, plan_code = _scope(request, viewer, plan)
    except Refusal as err:
        return _with_form_cookie(request, message_page(err.title, err.message, err.status, viewer=viewer, csrf=csrf), cookie, new)
    data = _data(request, viewer, plan_code, _filters(request))
    ctx = {"viewer": viewer, "plans": plans, "plan_code": plan_code, "csrf": csrf, "d": data}
    return _with_form_cookie(request, render("dashboard.html", ctx), cookie, new)


@router.get("/dashboard.json")
def dashboard_json(request: Request, plan: str | None = None):
    viewer = current_viewer(request)
    if viewer is None:
        return JSONResponse({"ok": False, "error": "请先登录。"}, status_code=401, headers=PRIVATE)
    try:
        _, plan_code = _scope(request, viewer, plan)
    except Refusal as err:
        return JSONResponse({"ok": False, "error": err.message}, status_code=err.status, headers=PRIVATE)
    from duban.web import dashboard_views

    data = _data(request, viewer, plan_code, _filters(request))
    return JSONResponse(dashboard_views.as_json(data, viewer), headers=PRIVATE)


# -- 督查 (reviews): /dashboard/reviews … (duban/web/dashboard_reviews.py) ------------------------------------

from duban.web.dashboard_reviews import router as _reviews_router  # noqa: E402 - it uses the helpers above

router.include_router(_reviews_router)
