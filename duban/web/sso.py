"""The institution's sign-in on the web (docs/web.md, "统一身份认证 / Sign-in the institution already has").

- ``GET /sso/login?next=…`` (the first configured method) and ``GET /sso/{method}/login?next=…``
  (``cas``, ``oidc``, ``wecom``, ``dingtalk``): a short-lived signed cookie holds the sign-in's
  state (:mod:`duban.sso.flow`), then off to the provider with the exact callback address made
  from ``DUBAN_BASE_URL``.
- ``GET /sso/{method}/callback``: the ticket or code checked server-side, the person of the 人员
  sheet found (:mod:`duban.sso.people`), then either the dashboard session (``next`` a dashboard
  address and an active account of the person) or the person's session and ``/me``.
- ``POST /sso/logout``: ends the person's session and the dashboard session.

A refusal is a Chinese page with no data.  No route logs a ticket, code or token.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from duban.db import session_scope
from duban.models import utcnow
from duban.runtime import dingtalk_app, wecom_app
from duban.sso import Identity, SsoError, cas, enabled, flow, oidc, people, unreachable
from duban.sso.chat_oauth import DINGTALK, WECOM, DingTalk, WeCom
from duban.vocabulary import SignInMethod, SsoAccountMatch
from duban.web import person_signin
from duban.web.deps import client_ip, limiters, read_form, runtime, too_many
from duban.web.render import render
from duban.web.signin import PRIVATE, clear_session, end_dashboard_session, form_ok, message_page, safe_next, set_session

log = logging.getLogger("duban.web")
router = APIRouter()
PERSON_PAGE = "/me"  # 我的督办
MAX_NEXT = 500  # characters of ``next`` kept (the state cookie holds it)
NextUrl = Annotated[str | None, Query(alias="next")]
BUTTONS = {
    SignInMethod.CAS: "统一身份认证登录",
    SignInMethod.OIDC: "统一身份认证登录",
    SignInMethod.WECOM: "企业微信登录",
    SignInMethod.DINGTALK: "钉钉登录",
}


def buttons(settings, next_url: str) -> list[dict[str, str]]:
    """The login page's buttons of the configured methods."""
    return [{"href": f"/sso/{m}/login?next={quote(next_url, safe='/')}", "label": BUTTONS[m], "method": str(m)} for m in enabled(settings)]


def target(next_url: str | None) -> str:
    """Where the sign-in leads: a dashboard address of this site, else the person's page."""
    if next_url and len(next_url) <= MAX_NEXT and next_url.startswith("/dashboard"):
        return safe_next(next_url)
    return PERSON_PAGE


def callback_url(settings, method: SignInMethod) -> str:
    """The exact address each provider's console registers (DUBAN_BASE_URL + /sso/<method>/callback)."""
    return f"{settings.base_url.rstrip('/')}/sso/{method}/callback"


def _refused(err: SsoError) -> Response:
    return _drop_flow(message_page(err.title, err.message, err.status))


def _drop_flow(resp: Response) -> Response:
    resp.delete_cookie(flow.FLOW_COOKIE, path=flow.FLOW_PATH)
    return resp


def _method(method: str, settings) -> SignInMethod:
    try:
        chosen = SignInMethod(method)
    except ValueError:
        chosen = None
    if chosen is None or chosen not in enabled(settings):
        raise SsoError("未启用该登录方式", "本系统未启用该登录方式。请使用登录页上提供的方式登录，或联系领导小组办公室。", 404)
    return chosen


# -- starting a sign-in -----------------------------------------------------------------------------------


@router.get("/sso/login")
def sso_login_default(request: Request, next_url: NextUrl = None):
    methods = enabled(runtime(request).settings)
    if not methods:
        return _refused(SsoError("未启用统一身份认证", "本系统未启用统一身份认证。请使用领导小组办公室开通的账户登录。", 404))
    return sso_login(request, str(methods[0]), next_url)


@router.get("/sso/{method}/login")
def sso_login(request: Request, method: str, next_url: NextUrl = None):
    settings = runtime(request).settings
    try:
        chosen = _method(method, settings)
        started = flow.Flow.start(chosen, target(next_url))
        location = _provider_url(settings, started)
    except SsoError as err:
        return _refused(err)
    resp = RedirectResponse(location, status_code=303, headers=PRIVATE)
    resp.set_cookie(
        flow.FLOW_COOKIE,
        started.cookie(settings.secret_key, now=utcnow()),
        max_age=flow.FLOW_MINUTES * 60,
        httponly=True,
        samesite="lax",
        secure=settings.base_url.startswith("https://"),
        path=flow.FLOW_PATH,
    )
    return resp


def _provider_url(settings, started: flow.Flow) -> str:
    back = callback_url(settings, started.method)
    if started.method == SignInMethod.CAS:
        return cas.login_url(settings.cas_url, back)
    if started.method == SignInMethod.OIDC:
        provider = oidc.discover(settings.oidc_issuer, timeout=settings.sso_timeout)
        return oidc.authorization_url(
            provider,
            client_id=settings.oidc_client_id,
            redirect_uri=back,
            scope=settings.oidc_scope,
            state=started.state,
            nonce=started.nonce,
            verifier=started.verifier,
        )
    if started.method == SignInMethod.WECOM:
        return _wecom(settings).authorization_url(back, started.state)
    return _dingtalk(settings).authorization_url(back, started.state)


def _wecom(settings) -> WeCom:
    app = wecom_app(settings, timeout=settings.sso_timeout)
    if app is None:  # not configured (sso.enabled offers it only when it is)
        raise unreachable(WECOM)
    return WeCom(app, settings.wecom_authorize_url)


def _dingtalk(settings) -> DingTalk:
    app = dingtalk_app(settings, timeout=settings.sso_timeout)
    if app is None:  # not configured (sso.enabled offers it only when it is)
        raise unreachable(DINGTALK)
    return DingTalk(app, settings.dingtalk_authorize_url, settings.sso_timeout)


# -- the provider's answer ------------------------------------------------------------------------------


@router.get("/sso/{method}/callback")
def sso_callback(request: Request, method: str):
    if wait := limiters(request).login.hit("sso:" + client_ip(request)):
        raise too_many(wait, page="dashboard_message.html", headers=PRIVATE, viewer=None, login=False, csrf="")
    settings = runtime(request).settings
    now = utcnow()
    try:
        chosen = _method(method, settings)
        started = flow.read(settings.secret_key, request.cookies.get(flow.FLOW_COOKIE), method=chosen, now=now)
        identity = _identity(request, chosen, started)
        if started is None:  # _identity refuses first; for the type checker
            raise _expired()
        return _drop_flow(_finish(request, identity, started.next_url, now))
    except SsoError as err:
        return _refused(err)


def _expired() -> SsoError:
    return SsoError("登录已失效", "本次登录已过期，或不是从本浏览器发起的。请返回登录页重新登录。", 400)


def _identity(request: Request, method: SignInMethod, started: flow.Flow | None) -> Identity:
    """The provider's answer checked (the state bound to this browser's cookie first)."""
    q, settings = request.query_params, runtime(request).settings
    if started is None:
        raise _expired()
    if method == SignInMethod.CAS:
        ticket = q.get("ticket", "")
        return cas.validate(
            settings.cas_url,
            service=callback_url(settings, method),
            ticket=ticket,
            version=settings.cas_version,
            attribute=settings.cas_attribute,
            timeout=settings.sso_timeout,
        )
    if not flow.same_state(started, q.get("state")):
        raise _expired()
    if q.get("error"):
        raise SsoError("登录未完成", "您在统一身份认证页面取消了登录，或认证服务拒绝了本次登录。请返回登录页重新登录。", 403)
    code = q.get("code") or q.get("authCode") or ""
    if method == SignInMethod.OIDC:
        provider = oidc.discover(settings.oidc_issuer, timeout=settings.sso_timeout)
        back = callback_url(settings, method)
        rp = oidc.Client(settings.oidc_client_id, settings.oidc_client_secret, back, settings.oidc_claim, settings.sso_timeout)
        return oidc.identity(provider, rp, code=code, verifier=started.verifier, nonce=started.nonce, now=int(utcnow().timestamp()))
    if method == SignInMethod.WECOM:
        return _wecom(settings).identity(code)
    return _dingtalk(settings).identity(code)


def _finish(request: Request, identity: Identity, next_url: str, now: dt.datetime) -> Response:
    """The dashboard session (a dashboard address and an account), else the person's session."""
    rt = runtime(request)
    settings = rt.settings
    to_dashboard = next_url.startswith("/dashboard")
    with session_scope(rt.engine) as s:
        rows = _people_or_none(s, identity, settings, required=not to_dashboard or settings.sso_account_match == SsoAccountMatch.PERSON)
        person = rows[0] if rows else None  # the session keeps the first; 我的督办 gathers the rest
        account = people.account_of(s, identity, rows, mode=settings.sso_account_match) if to_dashboard else None
        if account is not None:
            account.last_login_at = now
        opened = (account.id, account.session_version) if account is not None else None
        person_id = person.id if person is not None else None
    log.info("sign-in through %s: account %r, person %s, dashboard %s", identity.method, identity.subject, person_id, opened is not None)
    if opened is not None:
        until = now + dt.timedelta(hours=settings.session_hours)
        to_next = RedirectResponse(next_url, status_code=303, headers=PRIVATE)
        return set_session(request, to_next, kind="a", ident=opened[0], version=opened[1], now=now, until=until)
    if person_id is None:
        raise SsoError("尚未开通看板账户", "您已通过身份认证，但尚未开通督办看板账户。如需查看看板，请联系领导小组办公室开通。", 403)
    if to_dashboard:
        resp: Response = render("dashboard_message.html", _no_account_ctx(), 403, PRIVATE)
    else:
        resp = RedirectResponse(PERSON_PAGE, status_code=303, headers=PRIVATE)
    return person_signin.sign_in(request, resp, person_id, method=identity.method, subject=identity.subject, now=now)


def _people_or_none(s, identity: Identity, settings, *, required: bool) -> list:
    try:
        return people.people_of(s, identity, match=settings.sso_match)
    except SsoError:
        if required:
            raise
        return []


def _no_account_ctx() -> dict:
    message = (
        "您已通过身份认证，但尚未开通督办看板账户。如需查看看板，请联系领导小组办公室开通并关联您的人员信息。"
        "您本人的督办事项可在“我的督办”中查看。"
    )
    return {"title": "尚未开通看板账户", "message": message, "viewer": None, "login": False, "csrf": "", "me_link": PERSON_PAGE}


# -- signing out ---------------------------------------------------------------------------------------------


@router.post("/sso/logout")
async def sso_logout(request: Request):
    """Ends the person's session and the dashboard session of this browser.  The form's CSRF field
    is the dashboard's sign-out field (``signin.form_token(secret, <duban_form cookie>, "logout")``),
    so the dashboard's and the personal page's sign-out forms may both post here."""
    form = await read_form(request, max_files=0, max_fields=5)
    if not form_ok(request, form, "logout"):
        return message_page("页面已过期", "为保护您的账户安全，本次退出未被受理。请返回后重新点击“退出登录”。", 403)
    await run_in_threadpool(end_dashboard_session, request)
    resp = clear_session(RedirectResponse("/login?out=1", status_code=303, headers=PRIVATE))
    return await run_in_threadpool(person_signin.sign_out, request, resp)
