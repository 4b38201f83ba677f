"""The pages behind the links (``/l/{token}``): the front door for most users, opened on a phone
inside WeCom or DingTalk.

- GET only shows (the task, its 任务书 and 完成标志, milestones, history, and the form of the
  link's action): a mail scanner or a chat preview that fetches the link changes nothing.
- POST does, with a CSRF check (a random cookie, and a form field bound by HMAC to the cookie
  and to the link), through :mod:`duban.actions` in one transaction; the action is looked up in
  :data:`APPLY`.
- A link that cannot be used (tampered, expired, used, void, reassigned) shows a clear page
  that offers a fresh link by message when the holder may have one; never a stack trace.
- Rate limits per client address and per link (:func:`link_page`, the dependency of every route);
  uploads limited in size, count and type (duban.filecheck), and in total per link and per plan a
  day; a submission's files are kept only when its action is saved.

See docs/web.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from duban import actions, approvals, relink
from duban.action_common import ActionError, Origin, Outcome, label, pending_requests
from duban.db import session_scope
from duban.evidence import FORMATS_TEXT, EvidenceError, StoredFile, check_form_files, check_quota, clean_urls, discard_files, keep_files
from duban.link_tokens import verify
from duban.links import LinkRefused, Resolved, local_time, resolve
from duban.models import Evidence, Link, Task, utcnow
from duban.models import Request as RequestRow
from duban.vocabulary import EvidenceKind, LinkAction, MilestoneState, RequestKind, RequestStatus
from duban.web import pages
from duban.web.deps import (
    LINK_COOKIE,
    UNREADABLE_FORM,
    Cookie,
    Refusal,
    RowId,
    client_ip,
    is_mine_token,
    is_review_token,
    limit_link,
    limiters,
    link_refusal,
    read_form,
    runtime,
    store_write,
    stored_file,
    too_many,
)
from duban.web.render import render
from duban.web.security import CSRF_FIELD, attachment, csrf_ok, csrf_token

router = APIRouter()
PAGES: dict[str, str] = {LinkAction.QUEUE: "queue.html", LinkAction.REVIEW: "review.html"}  # the GET page of an action; others: link.html
EXPIRED_FORM = (
    "页面已过期，请重新打开链接",
    "为保护您的账户安全，本次提交未被受理（页面校验信息缺失或不匹配）。请重新打开通知中的链接后再提交。",
    403,
)


@dataclass
class LinkPage:
    """One request to a link page: the runtime, the link's token and the browser's CSRF cookie."""

    request: Request
    token: str
    cookie: Cookie

    @property
    def rt(self):
        return runtime(self.request)

    def resolve(self, session: Session, *, today: dt.date | None = None, **kw: Any) -> Resolved:
        """The link, or the page that refuses it (:func:`duban.links.resolve`)."""
        try:
            return resolve(session, self.token, secret=self.rt.settings.secret_key, today=today or self.rt.today(), tz=self.rt.tz, **kw)
        except LinkRefused as err:
            raise self.refused(err) from None

    def refused(self, err: LinkRefused) -> Refusal:
        csrf = csrf_token(self.rt.settings.secret_key, self.cookie.value, err.link_id) if err.link_id else ""
        return link_refusal(err, renewable=err.renewable and err.link_id is not None, token=self.token, csrf=csrf, cookie=self.cookie)

    def request_for(self, session: Session, r: Resolved, request_id: int | None) -> RequestRow | None:
        """The request a coordinator's link opens from its queue (None: none asked for)."""
        try:
            return approvals.request_for(session, r, request_id) if request_id is not None else None
        except ActionError as err:
            raise Refusal("无法打开该申请", str(err), 404) from None

    def render(self, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
        return self.cookie.keep(render(name, ctx, status))

    def origin(self) -> Origin:
        return Origin(ip=client_ip(self.request), user_agent=self.request.headers.get("user-agent", ""), channel="link")

    async def form(self):
        settings = self.rt.settings
        return await read_form(self.request, too_large=True, max_files=settings.upload_max_files + 5, max_fields=60)


async def link_page(request: Request, token: str) -> LinkPage:
    """The preamble of every link route: the rate limits, then the browser's CSRF cookie."""
    limit_link(request, token)
    return LinkPage(request, token, LINK_COOKIE.of(request))


Page = Annotated[LinkPage, Depends(link_page)]


# -- what a page shows ------------------------------------------------------------------------------


def blocked_reason(session: Session, r: Resolved, tz) -> str | None:
    """Why the link's action cannot be done now although the link is valid (shown, no form)."""
    m = r.milestone
    if r.action == LinkAction.ACK and r.task is not None and r.task.acknowledged_at is not None:
        return f"您已于 {local_time(r.task.acknowledged_at, tz)} 签收此任务，无需重复签收。"
    if r.action in (LinkAction.DONE, LinkAction.EXTEND) and m is not None and m.status == MilestoneState.SUBMITTED:
        return f"里程碑「{label(m)}」已于 {local_time(m.submitted_at, tz)} 提交办结，正在等待审核。审核结果将通过消息通知您。"
    if r.action == LinkAction.EXTEND and m is not None:
        pending = session.scalar(
            select(RequestRow).where(
                RequestRow.milestone_id == m.id, RequestRow.kind == RequestKind.EXTENSION, RequestRow.status == RequestStatus.PENDING
            )
        )
        if pending is not None and pending.new_due_date is not None:
            return f"您已申请延期至 {pending.new_due_date.isoformat()}，正在等待审批，审批结果将通过消息通知您。"
    return None


def link_context(session: Session, page: LinkPage, r: Resolved, *, request_row: RequestRow | None = None) -> dict[str, Any]:
    rt, settings = page.rt, page.rt.settings
    ctx: dict[str, Any] = {
        "r": r,
        "action": r.action,
        "plan": r.plan,
        "person": r.person,
        "label": LinkAction.label_of(r.action),
        "token": page.token,
        "csrf": csrf_token(settings.secret_key, page.cookie.value, r.link.id),
        "approval_required": r.plan.approval_required,
        "max_mb": settings.upload_max_mb,
        "max_files": settings.upload_max_files,
        "formats": FORMATS_TEXT,
        "expires": r.link.expires_on.isoformat(),
    }
    if r.action == LinkAction.QUEUE and request_row is None:
        waiting = pending_requests(session, r.link.plan_id)
        ctx["queue"] = [pages.request_view(session, q, tz=rt.tz, with_evidence=False) for q in waiting]
        return ctx
    if r.action in (LinkAction.REVIEW, LinkAction.QUEUE):
        req = request_row or r.request
        if req is None:
            raise Refusal("没有找到该申请", "此链接没有对应的申请。", 404)
        ctx["req"] = pages.request_view(session, req, tz=rt.tz)
        ctx["approve_min"] = pages.approve_min(session, req)
        not_yours = approvals.decider_refusal(session, r.person.id, req)  # nobody decides their own
        ctx["req_pending"] = req.status == RequestStatus.PENDING and not_yours is None
        if req.person_id == r.person.id:
            ctx["blocked"] = "这是您本人提交的申请，请由其他审核人员审核。"
        elif not_yours is not None and req.status == RequestStatus.PENDING:
            ctx["blocked"] = not_yours
        task = session.get(Task, req.task_id)
        if task is None:
            raise Refusal("没有找到该任务", "该申请对应的任务不存在。", 404)
        ctx["task"] = pages.task_page(session, task, today=rt.today(), tz=rt.tz, current_milestone=req.milestone_id)
        return ctx
    if r.task is None:
        raise Refusal("没有找到该任务", "此链接没有对应的任务。", 404)
    own = r.person.id if r.action == LinkAction.VIEW else None  # the owner's view: the reminders sent to them too
    ctx["task"] = pages.task_page(session, r.task, today=rt.today(), tz=rt.tz, current_milestone=r.link.milestone_id, for_person=own)
    ctx["milestone"] = r.milestone
    ctx["milestone_label"] = label(r.milestone) if r.milestone else ""
    if r.milestone is not None:
        ctx["min_new_due"] = max(r.milestone.due_date + dt.timedelta(days=1), rt.today()).isoformat()
    ctx["blocked"] = blocked_reason(session, r, rt.tz)
    return ctx


# -- pages ------------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def index():
    return render("index.html")


@router.get("/healthz")
def healthz(request: Request):
    try:
        with runtime(request).engine.connect() as conn:
            conn.execution_options(duban_readonly=True)  # a health check never waits for a writer
            conn.execute(text("SELECT 1"))
    except Exception as err:  # noqa: BLE001
        return JSONResponse({"ok": False, "database": f"{err.__class__.__name__}"}, status_code=503)
    return {"ok": True}


@router.get("/l/{token}", response_class=HTMLResponse)
def open_link(page: Page):
    if is_review_token(page.rt.settings.secret_key, page.token):  # a review link's page lives under /rv/
        return RedirectResponse(f"/rv/{page.token}", status_code=303)
    if is_mine_token(page.rt.settings.secret_key, page.token):  # a person's own page lives under /me/
        return RedirectResponse(f"/me/{page.token}", status_code=303)
    with session_scope(page.rt.engine, readonly=True) as s:
        r = page.resolve(s)
        ctx = link_context(s, page, r)
    return page.render(PAGES.get(r.action, "link.html"), ctx)


@router.get("/l/{token}/r/{request_id}", response_class=HTMLResponse)
def open_request(request_id: RowId, page: Page):
    """A request reached from a coordinator's queue page."""
    with session_scope(page.rt.engine, readonly=True) as s:
        r = page.resolve(s)
        ctx = link_context(s, page, r, request_row=page.request_for(s, r, request_id))
    ctx["post_to"] = f"/l/{page.token}/r/{request_id}"
    return page.render("review.html", ctx)


@router.post("/l/{token}", response_class=HTMLResponse)
async def submit(page: Page):
    if (form := await page.form()) is None:
        raise Refusal(*UNREADABLE_FORM)
    return await run_in_threadpool(_submit, page, form, None)


@router.post("/l/{token}/r/{request_id}", response_class=HTMLResponse)
async def submit_request(request_id: RowId, page: Page):
    if (form := await page.form()) is None:
        raise Refusal(*UNREADABLE_FORM)
    return await run_in_threadpool(_submit, page, form, request_id)


# -- actions ----------------------------------------------------------------------------------------


@dataclass
class Posted:
    """What a form posted, checked: its text fields, the evidence stored, the date asked for."""

    now: dt.datetime
    today: dt.date
    request_id: int | None
    values: dict[str, str]
    urls: list[str] = field(default_factory=list)
    files: list[StoredFile] = field(default_factory=list)
    new_due: dt.date | None = None
    tz: Any = None


def _decide(s: Session, r: Resolved, o: Origin, p: Posted) -> Outcome:
    return approvals.decide(
        s,
        r,
        o,
        now=p.now,
        today=p.today,
        request_id=p.request_id,
        decision=p.values.get("decision", ""),
        note=p.values.get("note", ""),
        new_due=p.new_due,
    )


APPLY: dict[str, Callable[[Session, Resolved, Origin, Posted], Outcome]] = {
    LinkAction.ACK: lambda s, r, o, p: actions.acknowledge(s, r, o, now=p.now),
    LinkAction.PROGRESS: lambda s, r, o, p: actions.report_progress(
        s, r, o, now=p.now, text=p.values.get("text", ""), urls=p.urls, files=p.files
    ),
    LinkAction.DONE: lambda s, r, o, p: actions.submit_done(
        s, r, o, now=p.now, today=p.today, note=p.values.get("note", ""), urls=p.urls, files=p.files, tz=p.tz
    ),
    LinkAction.EXTEND: lambda s, r, o, p: actions.request_extension(
        s, r, o, now=p.now, today=p.today, new_due=p.new_due, reason=p.values.get("reason", ""), tz=p.tz
    ),
    LinkAction.REVIEW: _decide,
    LinkAction.QUEUE: _decide,
}


def _posted_link(page: LinkPage, form, day: dt.date) -> tuple[int, str]:
    """The link a form was posted to (read only: a forged or used link stores no file) and the
    form's CSRF check (the cookie and the field bound to it and to this link): (link id, action)."""
    with session_scope(page.rt.engine, readonly=True) as s:
        r = page.resolve(s, today=day)
        link_id, action = r.link.id, r.action
    if not csrf_ok(page.rt.settings.secret_key, page.request.cookies.get(LINK_COOKIE.name), form.get(CSRF_FIELD), link_id):
        raise Refusal(*EXPIRED_FORM, back=f"/l/{page.token}", cookie=page.cookie)
    return link_id, action


def _read_inputs(page: LinkPage, action: str, form, p: Posted) -> None:
    """URLs and files (checked and staged: stored only once the action is saved), or the date."""
    settings = page.rt.settings
    if action in (LinkAction.PROGRESS, LinkAction.DONE):
        p.urls = clean_urls(p.values.get("urls", ""))
        p.files = check_form_files(
            settings.evidence_path,
            form.getlist("files"),
            max_files=settings.upload_max_files,
            max_bytes=settings.upload_max_mb * 1024 * 1024,
        )
    elif action == LinkAction.EXTEND or (action in (LinkAction.REVIEW, LinkAction.QUEUE) and p.values.get("decision") == "approve"):
        raw = p.values.get("new_due", "").strip()
        try:
            p.new_due = dt.date.fromisoformat(raw) if raw else None
        except ValueError:
            what = "申请延期到的日期" if action == LinkAction.EXTEND else "批准延至的日期"
            raise ActionError(f"{what}格式不正确，请用日期选择框选择。") from None


def _submit(page: LinkPage, form, request_id: int | None) -> Response:
    p = Posted(
        now=utcnow(),
        today=page.rt.today(),
        request_id=request_id,
        values={k: v for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD},
        tz=page.rt.tz,
    )
    link_id, action = _posted_link(page, form, p.today)
    if action == LinkAction.VIEW or (action == LinkAction.QUEUE and request_id is None):
        raise Refusal("此链接仅供查看", "此链接只能查看任务情况，不能提交办理。", 405)
    try:
        _read_inputs(page, action, form, p)
    except (EvidenceError, ActionError) as err:
        return _form_again(page, str(err), p.values, err.status if isinstance(err, EvidenceError) else 400, request_id)
    try:
        return _apply(page, action, link_id, p)
    finally:
        discard_files(p.files)  # unless kept with the saved action: a refused or failed one leaves no file


def _apply(page: LinkPage, action: str, link_id: int, p: Posted) -> Response:
    """The action in one transaction (the link locked; the upload caps checked there), then the
    staged files kept, the messages it wrote sent, and the result shown."""
    origin, settings = page.origin(), page.rt.settings

    def apply(s: Session) -> tuple[Resolved, Outcome]:
        r = page.resolve(s, today=p.today, for_update=True)
        if p.files and r.link.task_id is not None:
            check_quota(
                s,
                p.files,
                link=r.link,
                task_id=r.link.task_id,
                today=p.today,
                tz=page.rt.tz,
                link_max_mb=settings.upload_link_max_mb,
                plan_day_max_mb=settings.upload_plan_day_max_mb,
            )
        return r, APPLY.get(action, _decide)(s, r, origin, p)

    try:
        r, outcome = store_write(page.rt, f"{action} on link {link_id}", apply)
    except LinkRefused as err:
        raise page.refused(err) from None
    except (EvidenceError, ActionError) as err:
        return _form_again(page, str(err), p.values, err.status if isinstance(err, EvidenceError) else 400, p.request_id)
    keep_files(settings.evidence_path, p.files)
    page.request.app.state.dispatcher.notify(outcome.notify)
    return _result(page, r, outcome, p.today)


def _result(page: LinkPage, r: Resolved, outcome: Outcome, day: dt.date) -> Response:
    """The result, with the task as it is now."""
    with session_scope(page.rt.engine, readonly=True) as s:
        # the link's task as the action left it (loaded and committed above); a queue link's task is read again
        task, owner, dept = r.task, r.owner, r.department
        if task is None:
            req = s.get(RequestRow, outcome.request_id) if outcome.request_id else None
            task, owner, dept = (s.get(Task, req.task_id) if req is not None else None), None, None
        if task is None:
            raise Refusal("没有找到该任务", "该申请对应的任务不存在。", 404)
        ctx = {
            "message": outcome.message,
            "task": pages.task_page(s, task, today=day, tz=page.rt.tz, owner=owner, department=dept, current_milestone=r.link.milestone_id),
            "token": page.token,
            "action": r.action,
            "plan": r.plan,
            "person": r.person,
            "queue_back": f"/l/{page.token}" if r.action == LinkAction.QUEUE else None,
        }
    return page.render("result.html", ctx)


def _form_again(page: LinkPage, error: str, values: dict[str, str], status: int, request_id: int | None) -> Response:
    with session_scope(page.rt.engine, readonly=True) as s:
        r = page.resolve(s)
        ctx = link_context(s, page, r, request_row=page.request_for(s, r, request_id))
    ctx.update(error=error, values=values)
    if request_id is not None:
        ctx["post_to"] = f"/l/{page.token}/r/{request_id}"
    return page.render("review.html" if r.action in (LinkAction.REVIEW, LinkAction.QUEUE) else "link.html", ctx, status)


# -- a fresh link, files ----------------------------------------------------------------------------


@router.post("/l/{token}/renew", response_class=HTMLResponse)
async def renew(page: Page):
    form = await page.form()
    return await run_in_threadpool(_renew, page, form)


def _renew(page: LinkPage, form) -> Response:
    rt, secret = page.rt, page.rt.settings.secret_key
    try:
        link_id = int(verify(secret, page.token, today=dt.date.min)["l"])
    except Exception:  # noqa: BLE001 - only a link we signed may ask for a fresh one
        raise Refusal("链接无效", "链接无效或已被修改，无法申请新链接。请使用通知中的完整链接。", 404) from None
    if form is None or not csrf_ok(secret, page.request.cookies.get(LINK_COOKIE.name), form.get(CSRF_FIELD), link_id):
        raise Refusal(
            "页面已过期，请重新打开链接", "为保护您的账户安全，本次申请未被受理（页面校验信息缺失或不匹配）。请重新打开链接后再申请。", 403
        )
    lim = limiters(page.request)
    if wait := lim.renew.hit(f"renew:{link_id}"):
        raise too_many(wait, "申请过于频繁", f"已为此链接申请过多次新链接，请约 {max(1, wait // 60)} 分钟后再试，或联系领导小组办公室。")
    if wait := lim.renew_ip.hit("renew-ip:" + client_ip(page.request)):  # one address, many links (a campus NAT): a higher ceiling
        raise too_many(wait, "申请过于频繁", f"您所在网络申请新链接过于频繁，请约 {max(1, wait // 60)} 分钟后再试，或联系领导小组办公室。")
    day, now, origin = rt.today(), utcnow(), page.origin()

    def ask(s: Session) -> Outcome | None:
        try:
            resolve(s, page.token, secret=secret, today=day, tz=rt.tz)
        except LinkRefused as err:
            if not err.renewable:
                raise page.refused(err) from None
        else:
            return None  # still valid: nothing to renew
        link = s.get(Link, link_id)
        if link is None:  # resolve() refused it as invalid already
            raise Refusal("链接无效", "链接无效或已被修改，无法申请新链接。请使用通知中的完整链接。", 404)
        return relink.request_new_link(s, link, origin, now=now, today=day)

    try:
        outcome = store_write(rt, f"fresh link for link {link_id}", ask)
    except ActionError as err:
        raise Refusal("无法发送新链接", str(err), 409) from None
    if outcome is None:
        return RedirectResponse(f"/l/{page.token}", status_code=303)
    page.request.app.state.dispatcher.notify(outcome.notify)
    return render("renewed.html", {"message": outcome.message})


@router.get("/l/{token}/files/{evidence_id}")
def download(evidence_id: RowId, page: Page):
    with session_scope(page.rt.engine, readonly=True) as s:
        r = page.resolve(s, allow_used=True)
        ev = s.get(Evidence, evidence_id)
        if (
            ev is None
            or ev.kind != EvidenceKind.FILE
            or not ((r.task is not None and ev.task_id == r.task.id) or (r.action == LinkAction.QUEUE and ev.plan_id == r.link.plan_id))
        ):
            raise Refusal("没有找到该附件", "该附件不存在，或不属于此链接对应的任务。", 404)
        name, ctype, stored = ev.filename or "附件", ev.content_type or "application/octet-stream", ev.stored_name
    return attachment(stored_file(page.rt.settings.evidence_path, stored), name, ctype)
