"""Review (督查) pages behind signed links (docs/reviews.md).

- ``review_answer`` (an owner, one task of a review): the task, what is known already (milestones,
  the last progress report, evidence), and the form — 已完成工作, 佐证材料 (URLs, files), 存在问题,
  下一步计划 — pre-filled with the answer given so far; editable until the task is judged.
- ``review_verdict`` (the office): every task's answer and evidence, and per task the verdict form
  (达标 / 基本达标 / 需整改 with a note; 需整改: the follow-up milestone's title, owner and date).
- ``review_report`` (the leading group and the office): the report's HTML and XLSX as downloads.

``/l/<token>`` of these actions redirects here.  GET shows, POST changes (CSRF: a random cookie on
``/rv/`` and a field bound to it and to the link by HMAC), in one transaction; a change that moves
the review on wakes its flow run (duban.orchestration.wake_or_advance).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from duban import orchestration, reviews
from duban.db import session_scope
from duban.evidence import FORMATS_TEXT, EvidenceError, clean_urls, human_size, store_form_files, stored_path
from duban.links import LinkRefused, local_time, resolve, token_hash, verify
from duban.models import (
    ITEM_JUDGED,
    ITEM_STATE_LABELS,
    REVIEW_CANCELLED,
    REVIEW_CLOSED,
    REVIEW_STATE_LABELS,
    VERDICT_FIX,
    VERDICTS,
    Event,
    Evidence,
    Milestone,
    Person,
    Review,
    ReviewItem,
    Task,
    utcnow,
)
from duban.web.security import CSRF_FIELD, RateLimiter, attachment, csrf_ok, csrf_token, new_csrf_cookie

REVIEW_LINK_ACTIONS = frozenset({"review_answer", "review_verdict", "review_report"})
COOKIE = "duban_csrf_rv"
router = APIRouter()
_limiters: dict[str, RateLimiter] = {}


def is_review_token(secret: str, token: str) -> bool:
    """Whether ``token`` is a signed review link (the ``/l/`` page redirects those here)."""
    try:
        return verify(secret, token, today=dt.date.min).get("a") in REVIEW_LINK_ACTIONS
    except Exception:  # noqa: BLE001
        return False


def _rt(request: Request):
    return request.app.state.rt


def _render(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> HTMLResponse:
    from duban.web.app import ACTION_TITLES, TEMPLATES

    return TEMPLATES.TemplateResponse(request, name, {"titles": ACTION_TITLES, **ctx}, status_code=status)


def _error(request: Request, title: str, message: str, status: int) -> HTMLResponse:
    return _render(request, "error.html", {"title": title, "message": message}, status)


def _cookie(request: Request) -> tuple[str, bool]:
    value = request.cookies.get(COOKIE)
    if value and 16 <= len(value) <= 64:
        return value, False
    return new_csrf_cookie(), True


def _with_cookie(request: Request, resp: Response, value: str, new: bool) -> Response:
    if new:
        secure = _rt(request).settings.base_url.startswith("https://")
        resp.set_cookie(COOKIE, value, httponly=True, samesite="lax", secure=secure, path="/rv/")
    return resp


def _limited(request: Request, token: str) -> Response | None:
    settings = _rt(request).settings
    ip = _limiters.setdefault("ip", RateLimiter(settings.rate_limit_per_minute, 60))
    per_link = _limiters.setdefault("link", RateLimiter(settings.rate_limit_link_per_minute, 60))
    client = request.client.host if request.client else ""
    wait = ip.hit("rv-ip:" + client) or per_link.hit("rv-link:" + token_hash(token)[:32])
    if not wait:
        return None
    resp = _error(request, "请求过于频繁", f"您的操作过于频繁，请约 {wait} 秒后再试。", 429)
    resp.headers["Retry-After"] = str(wait)
    return resp


def _refused(request: Request, err: LinkRefused) -> HTMLResponse:
    status = {"invalid": 404, "reassigned": 403, "not_reviewer": 403}.get(err.reason, 410)
    return _render(request, "refused.html", {"title": err.title, "message": err.message, "renewable": False, "token": "", "csrf": ""}, status)


def _resolve(session, request: Request, token: str, *, for_update: bool = False):
    rt = _rt(request)
    r = resolve(session, token, secret=rt.settings.secret_key, today=rt.today(), allow_used=True, for_update=for_update, tz=rt.tz)
    if r.action not in REVIEW_LINK_ACTIONS:
        raise LinkRefused("invalid", "链接无效或已被修改。请使用通知中的完整链接。")
    return r


def _origin(request: Request) -> dict[str, Any]:
    return {"ip": request.client.host if request.client else "", "agent": request.headers.get("user-agent", "")[:300]}


# ---------------------------------------------------------------------------------------------
# what a page shows


def _known(session, task: Task, tz) -> str:
    """A first draft of 已完成工作 from what the store knows: steps done, and the last progress report."""
    lines = []
    for m in session.scalars(select(Milestone).where(Milestone.task_id == task.id, Milestone.status == "done").order_by(Milestone.seq)):
        lines.append(f"已办结：{m.title or '第 %d 步' % m.seq}（{local_time(m.completed_at, tz)[:10]}）")
    last = session.scalar(select(Event).where(Event.task_id == task.id, Event.kind == "progress_reported").order_by(Event.at.desc()).limit(1))
    if last is not None and (last.data or {}).get("text"):
        lines.append(f"最近一次反馈（{local_time(last.at, tz)[:10]}）：{last.data['text']}")
    return "\n".join(lines)


def _item_evidence(session, item_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for e in session.scalars(select(Evidence).where(Evidence.review_item_id.in_(item_ids or [-1])).order_by(Evidence.id)):
        out.setdefault(e.review_item_id, []).append({"id": e.id, "kind": e.kind, "name": e.filename or e.url or "", "url": e.url,
                                                     "size": human_size(e.size)})
    return out


def _answer_context(session, request: Request, r, cookie: str) -> dict[str, Any]:
    from duban.web import pages

    rt = _rt(request)
    item = session.get(ReviewItem, r.link.review_item_id)
    review = session.get(Review, item.review_id)
    task = session.get(Task, item.task_id)
    blocked = None
    if review.status == REVIEW_CANCELLED:
        blocked = f"本次督查已撤销{('（' + review.cancel_reason + '）') if review.cancel_reason else ''}，无需再填报。"
    elif review.status == REVIEW_CLOSED or item.status == ITEM_JUDGED:
        blocked = f"该任务的督查已评定为“{item.verdict}”，填报内容不能再修改。" if item.verdict else "本次督查已结束。"
    elif item.owner_id != r.person.id:
        blocked = "该督查事项不由您填报。"
    values = {"done": item.done or _known(session, task, rt.tz), "problems": item.problems, "next_steps": item.next_steps,
              "urls": ""}
    return {
        "plan": r.plan, "person": r.person, "review": review, "item": item, "token": f"{request.path_params['token']}",
        "task": pages.task_page(session, task, today=rt.today(), tz=rt.tz), "csrf": csrf_token(rt.settings.secret_key, cookie, r.link.id),
        "values": values, "evidence": _item_evidence(session, [item.id]).get(item.id, []), "blocked": blocked,
        "late": rt.today() > review.reply_by, "answered_at": local_time(item.answered_at, rt.tz),
        "max_mb": rt.settings.upload_max_mb, "max_files": rt.settings.upload_max_files, "formats": FORMATS_TEXT,
    }


def _verdict_context(session, request: Request, r, cookie: str) -> dict[str, Any]:
    rt = _rt(request)
    review = session.get(Review, r.link.review_id)
    data = reviews.report_data(session, review, tz=rt.tz)
    rows = session.execute(select(ReviewItem, Task.code, Person.name).join(Task, Task.id == ReviewItem.task_id)
                           .join(Person, Person.id == Task.owner_id).where(ReviewItem.review_id == review.id)).all()
    by_code = {code: (item, owner) for item, code, owner in rows}
    evidence = _item_evidence(session, [item.id for item, _, _ in rows])
    follow = {f["code"]: f for f in data["follow_ups"]}
    items = []
    for i in data["items"]:
        item, owner = by_code[i["code"]]
        f = follow.get(i["code"], {})
        items.append({**i, "id": item.id, "state": ITEM_STATE_LABELS.get(item.status, item.status), "files": evidence.get(item.id, []),
                      "task_owner": owner, "follow_title": (f.get("milestone") or "").removeprefix("督查整改："),
                      "follow_owner": f.get("owner", ""), "follow_due": f.get("due", "")})
    return {"plan": r.plan, "person": r.person, "review": review, "d": data, "items": items, "verdicts": VERDICTS,
            "status": REVIEW_STATE_LABELS.get(review.status, review.status), "token": request.path_params["token"],
            "csrf": csrf_token(rt.settings.secret_key, cookie, r.link.id), "open": review.status not in (REVIEW_CLOSED, REVIEW_CANCELLED),
            "min_due": (rt.today() + dt.timedelta(days=1)).isoformat()}


# ---------------------------------------------------------------------------------------------
# routes


@router.get("/rv/{token}", response_class=HTMLResponse)
def open_review_link(request: Request, token: str):
    if (resp := _limited(request, token)) is not None:
        return resp
    cookie, new = _cookie(request)
    with session_scope(_rt(request).engine, readonly=True) as s:
        try:
            r = _resolve(s, request, token)
        except LinkRefused as err:
            return _refused(request, err)
        if r.action == "review_answer":
            ctx, name = _answer_context(s, request, r, cookie), "review_answer.html"
        elif r.action == "review_verdict":
            ctx, name = _verdict_context(s, request, r, cookie), "review_verdict.html"
        else:
            review = s.get(Review, r.link.review_id)
            ctx, name = {"plan": r.plan, "person": r.person, "review": review, "token": token,
                         "status": REVIEW_STATE_LABELS.get(review.status, review.status)}, "review_report.html"
    return _with_cookie(request, _render(request, name, ctx), cookie, new)


@router.post("/rv/{token}", response_class=HTMLResponse)
async def submit_answer(request: Request, token: str):
    if (resp := _limited(request, token)) is not None:
        return resp
    settings = _rt(request).settings
    try:
        form = await request.form(max_files=settings.upload_max_files + 5, max_fields=60)
    except Exception:  # noqa: BLE001 - a malformed form is the client's problem (an oversized body is refused earlier)
        return _error(request, "提交的内容无法识别", "请返回上一页重新填写后提交。", 400)
    return await run_in_threadpool(_answer, request, token, form)


def _posted_link(request: Request, token: str, form, cookie: str, new: bool) -> tuple[int, str] | Response:
    """The link a form was posted to (read only: a forged or used link stores nothing) and the
    form's CSRF check: (link id, action), or the page that refuses it."""
    rt = _rt(request)
    with session_scope(rt.engine, readonly=True) as s:
        try:
            r = _resolve(s, request, token)
        except LinkRefused as err:
            return _refused(request, err)
        link_id, action = r.link.id, r.action
    if not csrf_ok(rt.settings.secret_key, request.cookies.get(COOKIE), form.get(CSRF_FIELD), link_id):
        return _with_cookie(request, _error(request, "页面已过期，请重新打开链接",
                                            "为保护您的账户安全，本次提交未被受理（页面校验信息缺失或不匹配）。请重新打开通知中的链接后再提交。", 403),
                            cookie, new)
    return link_id, action


def _answer(request: Request, token: str, form) -> Response:
    rt = _rt(request)
    cookie, new = _cookie(request)
    checked = _posted_link(request, token, form, cookie, new)
    if isinstance(checked, Response):
        return checked
    link_id, action = checked
    if action != "review_answer":
        return _error(request, "此链接不能提交填报", "此链接用于督查评定或查看报告，不能提交填报。", 405)
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD}
    try:
        urls = clean_urls(values.get("urls", ""))
        stored = store_form_files(rt.settings.evidence_path, form.getlist("files"), max_files=rt.settings.upload_max_files,
                                  max_bytes=rt.settings.upload_max_mb * 1024 * 1024)
        now, day = utcnow(), rt.today()
        with session_scope(rt.engine) as s:
            r = _resolve(s, request, token, for_update=True)
            item = s.get(ReviewItem, r.link.review_item_id, with_for_update=True)
            out = reviews.record_answer(s, item, person=r.person, done=values.get("done", ""), problems=values.get("problems", ""),
                                        next_steps=values.get("next_steps", ""), urls=urls, files=stored, now=now, today=day,
                                        origin={**_origin(request), "link": link_id})
            if r.link.used_at is None:
                r.link.used_at = now
            review_id = item.review_id
    except LinkRefused as err:
        return _refused(request, err)
    except (EvidenceError, reviews.ReviewError) as err:
        with session_scope(rt.engine, readonly=True) as s:
            r = _resolve(s, request, token)
            ctx = _answer_context(s, request, r, cookie)
        ctx.update(error=str(err), values={**ctx["values"], **values})
        return _with_cookie(request, _render(request, "review_answer.html", ctx, err.status if isinstance(err, EvidenceError) else 400), cookie, new)
    notify = set(out.notify)
    if out.wake:
        _, more = orchestration.wake_or_advance(rt.engine, review_id, today=day, reports_dir=rt.settings.data_dir / "reports")
        notify |= more
    request.app.state.dispatcher.notify(notify)
    with session_scope(rt.engine, readonly=True) as s:
        r = _resolve(s, request, token)
        ctx = _answer_context(s, request, r, cookie)
    ctx["message"] = out.message
    return _with_cookie(request, _render(request, "review_answer.html", ctx), cookie, new)


@router.post("/rv/{token}/items/{item_id}", response_class=HTMLResponse)
async def submit_verdict(request: Request, token: str, item_id: int):
    if (resp := _limited(request, token)) is not None:
        return resp
    try:
        form = await request.form(max_fields=30)
    except Exception:  # noqa: BLE001
        return _error(request, "提交的内容无法识别", "请返回上一页重新填写后提交。", 400)
    return await run_in_threadpool(_verdict, request, token, item_id, form)


def _verdict(request: Request, token: str, item_id: int, form) -> Response:
    rt = _rt(request)
    cookie, new = _cookie(request)
    checked = _posted_link(request, token, form, cookie, new)
    if isinstance(checked, Response):
        return checked
    link_id, action = checked
    if action != "review_verdict":
        return _error(request, "此链接不能评定", "只有领导小组办公室的督查评定链接可以评定。", 405)
    v = {k: str(form.get(k) or "") for k in ("verdict", "note", "follow_up_title", "follow_up_due", "follow_up_owner")}
    day = rt.today()
    try:
        due = dt.date.fromisoformat(v["follow_up_due"]) if v["follow_up_due"].strip() and v["verdict"] == VERDICT_FIX else None
    except ValueError:
        due = None
    try:
        with session_scope(rt.engine) as s:
            r = _resolve(s, request, token, for_update=True)
            review = s.get(Review, r.link.review_id, with_for_update=True)
            item = s.get(ReviewItem, item_id)
            if item is None or item.review_id != review.id:
                raise reviews.ReviewError("本次督查中没有该任务。")
            code = s.get(Task, item.task_id).code
            out = reviews.give_verdict(s, review, reviews.Verdict(code, v["verdict"], v["note"], v["follow_up_title"] if v["verdict"] == VERDICT_FIX else "",
                                                                  due, v["follow_up_owner"] if v["verdict"] == VERDICT_FIX else ""),
                                       actor=r.person.name, now=utcnow(), today=day, channel="link")
            review_id = review.id
    except LinkRefused as err:
        return _refused(request, err)
    except reviews.ReviewError as err:
        with session_scope(rt.engine, readonly=True) as s:
            ctx = _verdict_context(s, request, _resolve(s, request, token), cookie)
        ctx.update(error=f"任务评定未保存：{err}", failed=item_id, values=v)
        return _with_cookie(request, _render(request, "review_verdict.html", ctx, 400), cookie, new)
    notify = set(out.notify)
    if out.wake:
        _, more = orchestration.wake_or_advance(rt.engine, review_id, today=day, reports_dir=rt.settings.data_dir / "reports")
        notify |= more
    request.app.state.dispatcher.notify(notify)
    with session_scope(rt.engine, readonly=True) as s:
        ctx = _verdict_context(s, request, _resolve(s, request, token), cookie)
    ctx["message"] = out.message
    return _with_cookie(request, _render(request, "review_verdict.html", ctx), cookie, new)


@router.get("/rv/{token}/files/{evidence_id}")
def download_evidence(request: Request, token: str, evidence_id: int):
    if (resp := _limited(request, token)) is not None:
        return resp
    rt = _rt(request)
    with session_scope(rt.engine, readonly=True) as s:
        try:
            r = _resolve(s, request, token)
        except LinkRefused as err:
            return _refused(request, err)
        ev = s.get(Evidence, evidence_id)
        item = s.get(ReviewItem, ev.review_item_id) if ev is not None and ev.review_item_id else None
        allowed = item is not None and ev.kind == "file" and (
            (r.action == "review_answer" and item.id == r.link.review_item_id)
            or (r.action in ("review_verdict", "review_report") and item.review_id == r.link.review_id))
        if not allowed:
            return _error(request, "没有找到该附件", "该附件不存在，或不属于此链接对应的督查。", 404)
        name, ctype, stored_name = ev.filename or "附件", ev.content_type or "application/octet-stream", ev.stored_name
    try:
        path = stored_path(rt.settings.evidence_path, stored_name)
    except EvidenceError:
        return _error(request, "附件无法打开", "附件记录无效，请联系领导小组办公室。", 404)
    if not path.is_file():
        return _error(request, "附件无法打开", "附件文件已不存在，请联系领导小组办公室。", 404)
    return attachment(path, name, ctype)


@router.get("/rv/{token}/report.{ext}")
def download_report(request: Request, token: str, ext: str):
    if (resp := _limited(request, token)) is not None:
        return resp
    rt = _rt(request)
    with session_scope(rt.engine, readonly=True) as s:
        try:
            r = _resolve(s, request, token)
        except LinkRefused as err:
            return _refused(request, err)
        if r.action not in ("review_report", "review_verdict"):
            return _error(request, "没有找到督查报告", "此链接不能查看督查报告。", 404)
        review = s.get(Review, r.link.review_id)
        path = {"html": review.report_html, "xlsx": review.report_xlsx}.get(ext)
        title = review.title
    if not path or not Path(path).is_file():
        return _error(request, "督查报告尚未生成", "全部任务评定后将生成督查报告，届时会通知您。", 404)
    ctype = "text/html; charset=utf-8" if ext == "html" else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return attachment(Path(path), f"督查报告-{title}.{ext}", ctype)


def redirect_if_review(request: Request, token: str) -> Response | None:
    """For ``/l/<token>``: a review link's page lives under ``/rv/``."""
    if is_review_token(_rt(request).settings.secret_key, token):
        return RedirectResponse(f"/rv/{token}", status_code=303)
    return None
