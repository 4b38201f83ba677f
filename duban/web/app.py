"""The web app (FastAPI + Jinja2, from Prefect's own dependencies): the pages behind the links.

``/l/{token}`` is the front door for most users: opened on a phone inside WeCom or DingTalk.

- GET only shows (the task, its 任务书 and 完成标志, milestones, history, and the form of the
  link's action): a mail scanner or a chat preview that fetches the link changes nothing.
- POST does, with a CSRF check (a random cookie, and a form field bound by HMAC to the cookie
  and to the link), through :mod:`duban.actions` in one transaction.
- A link that cannot be used (tampered, expired, used, void, reassigned) shows a clear page
  that offers a fresh link by message when the holder may have one; never a stack trace.
- Rate limits per client address and per link; uploads limited in size, count and type.

Served by ``duban serve`` (and by ``duban run`` next to the scheduled flows).  See docs/web.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select, text
from starlette.exceptions import HTTPException as StarletteHTTPException

from duban import actions
from duban.db import session_scope
from duban.evidence import FORMATS_TEXT, EvidenceError, clean_urls, store_form_files, stored_path
from duban.links import ACTIONS, LinkRefused, Resolved, local_time, resolve, token_hash, verify
from duban.models import (
    EXTENSION,
    REQUEST_PENDING,
    SUBMITTED,
    Evidence,
    Link,
    Request as RequestRow,
    Task,
    utcnow,
)
from duban.web import pages
from duban.web.dispatch import BackgroundDelivery
from duban.web.security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    BodyLimit,
    RateLimiter,
    SecurityHeaders,
    attachment,
    csrf_ok,
    csrf_token,
    new_csrf_cookie,
)

HERE = Path(__file__).parent
WEB_THREADS = 8  # threads per process that render pages and apply actions (see lifespan)
STATIC = HERE / "static"
log = logging.getLogger("duban.web")

ENV = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(default=True, default_for_string=True),
                  auto_reload=False,  # compiled once per process (no stat of each template per page)
                  trim_blocks=True, lstrip_blocks=True)
TEMPLATES = Jinja2Templates(env=ENV)
_TEMPLATE_CACHE: dict[str, Any] = {}


def template(name: str):
    """A compiled template of :data:`ENV`, looked up once per process."""
    t = _TEMPLATE_CACHE.get(name)
    if t is None:
        t = _TEMPLATE_CACHE[name] = ENV.get_template(name)
    return t

ACTION_TITLES = {
    "ack": "签收任务",
    "progress": "反馈工作进展",
    "done": "提交办结",
    "extend": "申请延期",
    "view": "任务详情",
    "review": "审核",
    "queue": "待审核事项",
}


def create_app() -> FastAPI:
    from duban.runtime import runtime

    rt = runtime()
    settings = rt.settings
    dispatcher = BackgroundDelivery(rt, delay=settings.web_send_delay, enabled=settings.web_send_now)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        # pages are rendered in worker threads; a few suffice (they mostly hold the GIL) and
        # fewer threads interleave less: under load, requests then wait their turn in order
        # instead of all slowing down together (anyio's default is 40)
        anyio.to_thread.current_default_thread_limiter().total_tokens = WEB_THREADS
        yield
        await run_in_threadpool(dispatcher.flush, 30.0)
        dispatcher.stop(5.0)

    # FastAPI's native OpenTelemetry off: it would trace every request as soon as some library in
    # the process (Prefect, in `duban run`) installs a tracer provider, and checks for one per request
    app = FastAPI(title="督办", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan,
                  telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False})
    app.state.rt = rt
    app.state.dispatcher = dispatcher
    ip_limiter = RateLimiter(settings.rate_limit_per_minute, 60)
    link_limiter = RateLimiter(settings.rate_limit_link_per_minute, 60)
    renew_limiter = RateLimiter(settings.relink_per_hour, 3600)
    max_file = settings.upload_max_mb * 1024 * 1024
    body_limit = max_file * settings.upload_max_files + 1024 * 1024  # files + the form's text fields
    secure_cookie = settings.base_url.startswith("https://")

    def render(request: Request, name: str, ctx: dict[str, Any] | None = None, status: int = 200) -> HTMLResponse:
        # rendered straight into an HTMLResponse (the templates use neither ``request`` nor
        # ``url_for``; TemplateResponse adds both to the context and a debug message per response)
        return HTMLResponse(template(name).render({"titles": ACTION_TITLES, **(ctx or {})}), status_code=status)

    def error_page(request: Request, title: str, message: str, status: int, **extra: Any) -> HTMLResponse:
        return render(request, "error.html", {"title": title, "message": message, **extra}, status)

    def too_large(scope) -> Response:
        mb = settings.upload_max_mb
        html = ENV.get_template("error.html").render(
            title="上传内容过大", titles=ACTION_TITLES,
            message=f"每个文件不超过 {mb} MB，每次最多 {settings.upload_max_files} 个文件。请压缩或分次上传后重试。")
        return HTMLResponse(html, status_code=413)

    app.add_middleware(BodyLimit, limit=lambda: body_limit, too_large=too_large)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    from duban.web.reviews import redirect_if_review

    # -- helpers -------------------------------------------------------------------------------
    def client_ip(request: Request) -> str:
        return request.client.host if request.client else ""

    def origin(request: Request) -> actions.Origin:
        return actions.Origin(ip=client_ip(request), user_agent=request.headers.get("user-agent", ""), channel="link")

    def limited(request: Request, token: str) -> Response | None:
        wait = ip_limiter.hit("ip:" + client_ip(request)) or link_limiter.hit("link:" + token_hash(token)[:32])
        if not wait:
            return None
        resp = error_page(request, "请求过于频繁", f"您的操作过于频繁，请约 {wait} 秒后再试。", 429)
        resp.headers["Retry-After"] = str(wait)
        return resp

    def cookie_of(request: Request) -> tuple[str, bool]:
        value = request.cookies.get(CSRF_COOKIE)
        if value and 16 <= len(value) <= 64:
            return value, False
        return new_csrf_cookie(), True

    def with_cookie(resp: Response, value: str, new: bool) -> Response:
        if new:
            resp.set_cookie(CSRF_COOKIE, value, httponly=True, samesite="lax", secure=secure_cookie, path="/l/")
        return resp

    def refused(request: Request, token: str, err: LinkRefused) -> HTMLResponse:
        status = {"invalid": 404, "reassigned": 403, "not_reviewer": 403}.get(err.reason, 410)
        cookie, new = cookie_of(request)
        ctx = {"title": err.title, "message": err.message, "renewable": err.renewable and err.link_id is not None,
               "token": token, "csrf": csrf_token(settings.secret_key, cookie, err.link_id) if err.link_id else ""}
        return with_cookie(render(request, "refused.html", ctx, status), cookie, new)

    def today() -> dt.date:
        return rt.today()

    def blocked_reason(session, r: Resolved) -> str | None:
        """Why the link's action cannot be done now although the link is valid (shown, no form)."""
        m = r.milestone
        if r.action == "ack" and r.task.acknowledged_at is not None:
            return f"您已于 {local_time(r.task.acknowledged_at, rt.tz)} 签收此任务，无需重复签收。"
        if r.action in ("done", "extend") and m is not None and m.status == SUBMITTED:
            return f"里程碑「{actions.label(m)}」已于 {local_time(m.submitted_at, rt.tz)} 提交办结，正在等待审核。审核结果将通过消息通知您。"
        if r.action == "extend" and m is not None:
            pending = session.scalar(select(RequestRow).where(RequestRow.milestone_id == m.id, RequestRow.kind == EXTENSION,
                                                              RequestRow.status == REQUEST_PENDING))
            if pending is not None:
                return f"您已申请延期至 {pending.new_due_date.isoformat()}，正在等待审批，审批结果将通过消息通知您。"
        return None

    def link_context(session, r: Resolved, *, cookie: str, request_row: RequestRow | None = None) -> dict[str, Any]:
        ctx: dict[str, Any] = {
            "r": r, "action": r.action, "plan": r.plan, "person": r.person, "label": ACTIONS.get(r.action, r.action),
            "csrf": csrf_token(settings.secret_key, cookie, r.link.id), "approval_required": r.plan.approval_required,
            "max_mb": settings.upload_max_mb, "max_files": settings.upload_max_files, "formats": FORMATS_TEXT,
            "expires": r.link.expires_on.isoformat(),
        }
        if r.action == "queue" and request_row is None:
            waiting = actions.pending_requests(session, r.link.plan_id)
            ctx["queue"] = [pages.request_view(session, q, tz=rt.tz, with_evidence=False) for q in waiting]
            return ctx
        if r.action in ("review", "queue"):
            req = request_row or r.request
            ctx["req"] = pages.request_view(session, req, tz=rt.tz)
            ctx["req_pending"] = req.status == REQUEST_PENDING and req.person_id != r.person.id
            if req.person_id == r.person.id:
                ctx["blocked"] = "这是您本人提交的申请，请由其他审核人员审核。"
            task = session.get(Task, req.task_id)
            ctx["task"] = pages.task_page(session, task, today=today(), tz=rt.tz, current_milestone=req.milestone_id)
            return ctx
        ctx["task"] = pages.task_page(session, r.task, today=today(), tz=rt.tz, current_milestone=r.link.milestone_id)
        ctx["milestone"] = r.milestone
        ctx["milestone_label"] = actions.label(r.milestone) if r.milestone else ""
        if r.milestone is not None:
            ctx["min_new_due"] = max(r.milestone.due_date + dt.timedelta(days=1), today()).isoformat()
        ctx["blocked"] = blocked_reason(session, r)
        return ctx

    def file_url(token: str, evidence_id: int) -> str:
        return f"/l/{token}/files/{evidence_id}"

    ENV.globals["file_url"] = file_url

    # -- pages ---------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def index(request: Request):
        return render(request, "index.html")

    @app.get("/healthz")
    def healthz():
        try:
            with rt.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as err:  # noqa: BLE001
            return JSONResponse({"ok": False, "database": f"{err.__class__.__name__}"}, status_code=503)
        return {"ok": True}

    @app.get("/l/{token}", response_class=HTMLResponse)
    def open_link(request: Request, token: str):
        if (resp := limited(request, token)) is not None:
            return resp
        if (resp := redirect_if_review(request, token)) is not None:
            return resp
        cookie, new = cookie_of(request)
        with session_scope(rt.engine, readonly=True) as s:
            try:
                r = resolve(s, token, secret=settings.secret_key, today=today(), tz=rt.tz)
            except LinkRefused as err:
                return refused(request, token, err)
            ctx = link_context(s, r, cookie=cookie)
        ctx["token"] = token
        template = "queue.html" if r.action == "queue" else "review.html" if r.action == "review" else "link.html"
        return with_cookie(render(request, template, ctx), cookie, new)

    @app.get("/l/{token}/r/{request_id}", response_class=HTMLResponse)
    def open_request(request: Request, token: str, request_id: int):
        """A request reached from a coordinator's queue page."""
        if (resp := limited(request, token)) is not None:
            return resp
        cookie, new = cookie_of(request)
        with session_scope(rt.engine, readonly=True) as s:
            try:
                r = resolve(s, token, secret=settings.secret_key, today=today(), tz=rt.tz)
                req = actions.request_for(s, r, request_id)
            except LinkRefused as err:
                return refused(request, token, err)
            except actions.ActionError as err:
                return error_page(request, "无法打开该申请", str(err), 404)
            ctx = link_context(s, r, cookie=cookie, request_row=req)
        ctx["token"] = token
        ctx["post_to"] = f"/l/{token}/r/{request_id}"
        return with_cookie(render(request, "review.html", ctx), cookie, new)

    async def _form(request: Request):
        try:
            return await request.form(max_files=settings.upload_max_files + 5, max_fields=60)
        except Exception as err:  # noqa: BLE001 - a malformed or oversized form is the client's problem
            from duban.web.security import BodyTooLarge

            if isinstance(err, BodyTooLarge):
                raise
            return None

    @app.post("/l/{token}", response_class=HTMLResponse)
    async def submit(request: Request, token: str):
        if (resp := limited(request, token)) is not None:
            return resp
        form = await _form(request)
        if form is None:
            return error_page(request, "提交的内容无法识别", "请返回上一页重新填写后提交。", 400)
        return await run_in_threadpool(_submit, request, token, form, None)

    @app.post("/l/{token}/r/{request_id}", response_class=HTMLResponse)
    async def submit_request(request: Request, token: str, request_id: int):
        if (resp := limited(request, token)) is not None:
            return resp
        form = await _form(request)
        if form is None:
            return error_page(request, "提交的内容无法识别", "请返回上一页重新填写后提交。", 400)
        return await run_in_threadpool(_submit, request, token, form, request_id)

    def _submit(request: Request, token: str, form, request_id: int | None) -> Response:
        cookie, new = cookie_of(request)
        now, day = utcnow(), today()
        # 1. the link (read only: a forged or used link stores no file)
        with session_scope(rt.engine, readonly=True) as s:
            try:
                r = resolve(s, token, secret=settings.secret_key, today=day, tz=rt.tz)
            except LinkRefused as err:
                return refused(request, token, err)
            link_id, action = r.link.id, r.action
        # 2. CSRF: the cookie and the form field bound to it and to this link
        if not csrf_ok(settings.secret_key, request.cookies.get(CSRF_COOKIE), form.get(CSRF_FIELD), link_id):
            return with_cookie(error_page(
                request, "页面已过期，请重新打开链接",
                "为保护您的账户安全，本次提交未被受理（页面校验信息缺失或不匹配）。请重新打开通知中的链接后再提交。", 403,
                back=f"/l/{token}"), cookie, new)
        if action in ("view",) or (action == "queue" and request_id is None):
            return error_page(request, "此链接仅供查看", "此链接只能查看任务情况，不能提交办理。", 405)
        values = {k: v for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD}
        # 3. inputs, then files (stored by content hash; refused types never touch the store)
        stored = []
        try:
            urls = clean_urls(values.get("urls", "")) if action in ("progress", "done") else []
            if action in ("progress", "done"):
                stored = store_form_files(settings.evidence_path, form.getlist("files"), max_files=settings.upload_max_files,
                                          max_bytes=max_file)
            new_due = None
            if action == "extend":
                raw = values.get("new_due", "").strip()
                try:
                    new_due = dt.date.fromisoformat(raw) if raw else None
                except ValueError:
                    raise actions.ActionError("申请延期到的日期格式不正确，请用日期选择框选择。") from None
        except (EvidenceError, actions.ActionError) as err:
            status = err.status if isinstance(err, EvidenceError) else 400
            return form_again(request, token, cookie, new, str(err), values, status, request_id)
        # 4. the action, in one transaction with the link locked
        try:
            with session_scope(rt.engine) as s:
                r = resolve(s, token, secret=settings.secret_key, today=day, for_update=True, tz=rt.tz)
                o = origin(request)
                if action == "ack":
                    outcome = actions.acknowledge(s, r, o, now=now)
                elif action == "progress":
                    outcome = actions.report_progress(s, r, o, now=now, text=values.get("text", ""), urls=urls, files=stored)
                elif action == "done":
                    outcome = actions.submit_done(s, r, o, now=now, today=day, note=values.get("note", ""), urls=urls, files=stored)
                elif action == "extend":
                    outcome = actions.request_extension(s, r, o, now=now, today=day, new_due=new_due, reason=values.get("reason", ""))
                else:
                    outcome = actions.decide(s, r, o, now=now, today=day, request_id=request_id, decision=values.get("decision", ""),
                                             note=values.get("note", ""))
        except LinkRefused as err:
            return refused(request, token, err)
        except actions.ActionError as err:
            return form_again(request, token, cookie, new, str(err), values, 400, request_id)
        dispatcher.notify(outcome.notify)
        # 5. the result, with the task as it is now
        with session_scope(rt.engine, readonly=True) as s:
            # the link's task as the action left it (loaded and committed above); a queue link's
            # task is read again
            task, owner, dept = r.task, r.owner, r.department
            if task is None:
                task_id = s.get(RequestRow, outcome.request_id).task_id if outcome.request_id else None
                task, owner, dept = s.get(Task, task_id), None, None
            ctx = {"message": outcome.message, "task": pages.task_page(s, task, today=day, tz=rt.tz, owner=owner, department=dept,
                                                                       current_milestone=r.link.milestone_id),
                   "token": token, "action": action, "plan": r.plan, "person": r.person,
                   "queue_back": f"/l/{token}" if r.action == "queue" else None}
        return with_cookie(render(request, "result.html", ctx), cookie, new)

    def form_again(request: Request, token: str, cookie: str, new: bool, error: str, values: dict[str, str], status: int,
                   request_id: int | None) -> Response:
        with session_scope(rt.engine, readonly=True) as s:
            try:
                r = resolve(s, token, secret=settings.secret_key, today=today(), tz=rt.tz)
                req = actions.request_for(s, r, request_id) if request_id is not None else None
            except LinkRefused as err:
                return refused(request, token, err)
            except actions.ActionError as err:
                return error_page(request, "无法打开该申请", str(err), 404)
            ctx = link_context(s, r, cookie=cookie, request_row=req)
        ctx.update(token=token, error=error, values=values)
        if request_id is not None:
            ctx["post_to"] = f"/l/{token}/r/{request_id}"
        template = "review.html" if r.action in ("review", "queue") else "link.html"
        return with_cookie(render(request, template, ctx, status), cookie, new)

    @app.post("/l/{token}/renew", response_class=HTMLResponse)
    async def renew(request: Request, token: str):
        if (resp := limited(request, token)) is not None:
            return resp
        form = await _form(request)
        return await run_in_threadpool(_renew, request, token, form)

    def _renew(request: Request, token: str, form) -> Response:
        try:
            link_id = int(verify(settings.secret_key, token, today=dt.date.min)["l"])
        except Exception:  # noqa: BLE001 - only a link we signed may ask for a fresh one
            return error_page(request, "链接无效", "链接无效或已被修改，无法申请新链接。请使用通知中的完整链接。", 404)
        if form is None or not csrf_ok(settings.secret_key, request.cookies.get(CSRF_COOKIE), form.get(CSRF_FIELD), link_id):
            return error_page(request, "页面已过期，请重新打开链接",
                              "为保护您的账户安全，本次申请未被受理（页面校验信息缺失或不匹配）。请重新打开链接后再申请。", 403)
        if wait := renew_limiter.hit(f"renew:{link_id}") or renew_limiter.hit("renew-ip:" + client_ip(request)):
            resp = error_page(request, "申请过于频繁", f"已为此链接申请过多次新链接，请约 {max(1, wait // 60)} 分钟后再试，或联系领导小组办公室。", 429)
            resp.headers["Retry-After"] = str(wait)
            return resp
        day = today()
        try:
            with session_scope(rt.engine) as s:
                try:
                    resolve(s, token, secret=settings.secret_key, today=day, tz=rt.tz)
                except LinkRefused as err:
                    if not err.renewable:
                        return refused(request, token, err)
                else:
                    return RedirectResponse(f"/l/{token}", status_code=303)  # still valid: nothing to renew
                link = s.get(Link, link_id)
                outcome = actions.request_new_link(s, link, origin(request), now=utcnow(), today=day)
        except actions.ActionError as err:
            return error_page(request, "无法发送新链接", str(err), 409)
        dispatcher.notify(outcome.notify)
        return render(request, "renewed.html", {"message": outcome.message})

    @app.get("/l/{token}/files/{evidence_id}")
    def download(request: Request, token: str, evidence_id: int):
        if (resp := limited(request, token)) is not None:
            return resp
        with session_scope(rt.engine, readonly=True) as s:
            try:
                r = resolve(s, token, secret=settings.secret_key, today=today(), allow_used=True, tz=rt.tz)
            except LinkRefused as err:
                return refused(request, token, err)
            ev = s.get(Evidence, evidence_id)
            allowed = ev is not None and ev.kind == "file" and (
                (r.task is not None and ev.task_id == r.task.id) or (r.action == "queue" and ev.plan_id == r.link.plan_id)
            )
            if not allowed:
                return error_page(request, "没有找到该附件", "该附件不存在，或不属于此链接对应的任务。", 404)
            name, ctype, stored = ev.filename or "附件", ev.content_type or "application/octet-stream", ev.stored_name
        try:
            path = stored_path(settings.evidence_path, stored)
        except EvidenceError:
            return error_page(request, "附件无法打开", "附件记录无效，请联系领导小组办公室。", 404)
        if not path.is_file():
            return error_page(request, "附件无法打开", "附件文件已不存在，请联系领导小组办公室。", 404)
        return attachment(path, name, ctype)

    # the other pages' routers after the link pages' routes: a request is matched against the
    # routes in order, and the link pages are most of the traffic (their paths do not overlap)
    from duban.web.dashboard import router as dashboard_router
    from duban.web.reviews import router as reviews_router

    app.include_router(dashboard_router)  # /login, /logout, /d/<token>, /dashboard (docs/web.md, "Dashboard")
    app.include_router(reviews_router)  # /rv/<token>: review (督查) answers, verdicts, report (docs/reviews.md)

    # -- errors: Chinese pages, never a stack trace -------------------------------------------
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return error_page(request, "页面不存在", "您访问的页面不存在。请使用通知中的完整链接。", 404)
        if exc.status_code == 405:
            return error_page(request, "不支持的操作", "此页面不支持该操作，请返回后重试。", 405)
        return error_page(request, "请求无法处理", "请求无法处理，请返回后重试。", exc.status_code)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)
        return error_page(request, "系统繁忙", "系统暂时无法处理您的请求，请稍后再试。如多次出现，请联系领导小组办公室。", 500)

    from fastapi.exceptions import RequestValidationError

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return error_page(request, "页面不存在", "您访问的页面不存在。请使用通知中的完整链接。", 404)

    return app
