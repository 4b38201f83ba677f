"""The web app (FastAPI + Jinja2, from Prefect's own dependencies): routers and middleware.

- :mod:`duban.web.link_pages`: ``/l/{token}``, the pages behind the links (docs/web.md);
- :mod:`duban.web.dashboard` and :mod:`duban.web.dashboard_reviews`: /login, /logout, /d/<token>,
  /dashboard (docs/web.md, "Dashboard");
- :mod:`duban.web.reviews`: ``/rv/{token}``, review (督查) answers, verdicts, report (docs/reviews.md);
- :mod:`duban.web.sso`: ``/sso/…``, the institution's sign-in (CAS, OIDC, WeCom, DingTalk; docs/web.md).
- :mod:`duban.web.my_pages`: ``/me/{token}`` and ``/me``, a person's own page and 批量签收 (docs/web.md).

Served by ``duban serve`` (and by ``duban run`` next to the scheduled flows).  See docs/web.md.
"""

from __future__ import annotations

import contextlib
import logging

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from duban.runtime import runtime
from duban.web import (
    dashboard,
    dashboard_announce,
    dashboard_approvals,
    dashboard_paper,
    dashboard_province,
    dashboard_reviews,
    dashboard_search,
    dashboard_tasks,
    dashboard_verdicts,
    link_pages,
    logs,
    my_pages,
    reviews,
    rollup_cache,
    sso,
)
from duban.web.deps import Limiters, Refusal, StoreBusy, busy_page, refusal_page
from duban.web.dispatch import BackgroundDelivery
from duban.web.render import STATIC, error_page
from duban.web.security import BodyLimit, SecurityHeaders

WEB_THREADS = 8  # threads per process that render pages and apply actions (see lifespan)
log = logging.getLogger("duban.web")


def create_app() -> FastAPI:
    rt = runtime()
    settings = rt.settings
    logs.install()  # link tokens never reach a log (duban/web/logs.py)
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
    app = FastAPI(
        title="督办",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.rt = rt
    app.state.dispatcher = dispatcher
    app.state.rollups = rollup_cache.RollupCache()  # the roll-ups shown, while the store is unchanged
    app.state.limiters = Limiters.of(settings, login_per_minute=dashboard.LOGIN_ATTEMPTS_PER_MINUTE)
    max_file = settings.upload_max_mb * 1024 * 1024
    body_limit = max_file * settings.upload_max_files + 1024 * 1024  # files + the form's text fields

    def too_large(scope) -> HTMLResponse:
        mb, files = settings.upload_max_mb, settings.upload_max_files
        return error_page("上传内容过大", f"每个文件不超过 {mb} MB，每次最多 {files} 个文件。请压缩或分次上传后重试。", 413)

    app.add_middleware(BodyLimit, limit=lambda: body_limit, too_large=too_large)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    # the link pages first: a request is matched against the routes in order, and the link pages
    # are most of the traffic (their paths do not overlap with the others')
    app.include_router(link_pages.router)
    app.include_router(dashboard.router)
    app.include_router(dashboard_province.router)
    app.include_router(dashboard_reviews.router)
    app.include_router(dashboard_announce.router)
    app.include_router(dashboard_tasks.router)
    app.include_router(dashboard_search.router)
    app.include_router(dashboard_paper.router)
    app.include_router(dashboard_approvals.router)
    app.include_router(dashboard_verdicts.router)
    app.include_router(reviews.router)
    app.include_router(sso.router)
    app.include_router(my_pages.router)  # 我的督办: /me, /me/<token>
    _add_error_pages(app)
    return app


def _add_error_pages(app: FastAPI) -> None:
    """Chinese pages, never a stack trace."""
    app.add_exception_handler(Refusal, refusal_page)
    # the store busy (another task writing for long): 503 "系统正忙" with Retry-After, never the 500 page
    app.add_exception_handler(StoreBusy, busy_page)
    app.add_exception_handler(DBAPIError, busy_page)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return error_page("页面不存在", "您访问的页面不存在。请使用通知中的完整链接。", 404)
        if exc.status_code == 405:
            return error_page("不支持的操作", "此页面不支持该操作，请返回后重试。", 405)
        return error_page("请求无法处理", "请求无法处理，请返回后重试。", exc.status_code)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)
        return error_page("系统繁忙", "系统暂时无法处理您的请求，请稍后再试。如多次出现，请联系领导小组办公室。", 500)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return error_page("页面不存在", "您访问的页面不存在。请使用通知中的完整链接。", 404)
