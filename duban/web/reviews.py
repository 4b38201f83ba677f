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
import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from duban import orchestration
from duban.db import is_transient, session_scope
from duban.evidence import (
    FORMATS_TEXT,
    EvidenceError,
    StoredFile,
    check_form_files,
    check_quota,
    clean_urls,
    discard_files,
    human_size,
    keep_files,
)
from duban.links import LinkRefused, Resolved, local_time, resolve
from duban.models import (
    Event,
    Evidence,
    Milestone,
    Person,
    Review,
    ReviewItem,
    Task,
    utcnow,
)
from duban.reviews import api as reviews
from duban.vocabulary import EventKind, EvidenceKind, ItemState, LinkAction, MilestoneState, ReviewState, Verdict
from duban.web import pages
from duban.web.deps import (
    REVIEW_COOKIE,
    REVIEW_LINK_ACTIONS,
    UNREADABLE_FORM,
    Cookie,
    Refusal,
    RowId,
    client_ip,
    limit_link,
    link_refusal,
    read_form,
    store_write,
    stored_file,
)
from duban.web.deps import (
    runtime as _rt,
)
from duban.web.render import render
from duban.web.security import CSRF_FIELD, attachment, csrf_ok, csrf_token

router = APIRouter()
log = logging.getLogger("duban.web")


def _resolve(session, request: Request, token: str, *, for_update: bool = False) -> Resolved:
    """The review link, or the page that refuses it (no fresh link is offered on /rv/)."""
    rt = _rt(request)
    try:
        r = resolve(session, token, secret=rt.settings.secret_key, today=rt.today(), allow_used=True, for_update=for_update, tz=rt.tz)
    except LinkRefused as err:
        raise link_refusal(err, renewable=False, token="", csrf="") from None
    if r.action not in REVIEW_LINK_ACTIONS:
        raise link_refusal(LinkRefused("invalid", "链接无效或已被修改。请使用通知中的完整链接。"), renewable=False, token="", csrf="")
    return r


def _review(session: Session, r: Resolved, *, for_update: bool = False) -> Review:
    """The review a verdict or report link names, or the page that says it is not there."""
    review = session.get(Review, r.link.review_id, with_for_update=for_update) if r.link.review_id is not None else None
    if review is None:
        raise Refusal("没有找到该督查", "此链接对应的督查不存在。", 404)
    return review


def _item(session: Session, r: Resolved, *, for_update: bool = False) -> ReviewItem:
    """The task of a review an answer link names, or the page that says it is not there."""
    item = session.get(ReviewItem, r.link.review_item_id, with_for_update=for_update) if r.link.review_item_id is not None else None
    if item is None:
        raise Refusal("没有找到该督查事项", "此链接对应的督查事项不存在。", 404)
    return item


def _origin(request: Request) -> dict[str, Any]:
    return {"ip": client_ip(request), "agent": request.headers.get("user-agent", "")[:300]}


# ---------------------------------------------------------------------------------------------
# what a page shows


def _known(session, task: Task, tz) -> str:
    """A first draft of 已完成工作 from what the store knows: steps done, and the last progress report."""
    lines = []
    for m in session.scalars(
        select(Milestone).where(Milestone.task_id == task.id, Milestone.status == MilestoneState.DONE).order_by(Milestone.seq)
    ):
        lines.append(f"已办结：{m.title or f'第 {m.seq} 步'}（{local_time(m.completed_at, tz)[:10]}）")
    last = session.scalar(
        select(Event).where(Event.task_id == task.id, Event.kind == EventKind.PROGRESS_REPORTED).order_by(Event.at.desc()).limit(1)
    )
    if last is not None and (last.data or {}).get("text"):
        lines.append(f"最近一次反馈（{local_time(last.at, tz)[:10]}）：{last.data['text']}")
    return "\n".join(lines)


def _item_evidence(session, item_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for e in session.scalars(select(Evidence).where(Evidence.review_item_id.in_(item_ids or [-1])).order_by(Evidence.id)):
        out.setdefault(e.review_item_id, []).append(
            {"id": e.id, "kind": e.kind, "name": e.filename or e.url or "", "url": e.url, "size": human_size(e.size)}
        )
    return out


def _answer_context(session, request: Request, r: Resolved, cookie: Cookie) -> dict[str, Any]:
    rt = _rt(request)
    item = session.get(ReviewItem, r.link.review_item_id)
    review = session.get(Review, item.review_id)
    task = session.get(Task, item.task_id)
    blocked = None
    if review.status == ReviewState.CANCELLED:
        blocked = f"本次督查已撤销{('（' + review.cancel_reason + '）') if review.cancel_reason else ''}，无需再填报。"
    elif review.status == ReviewState.CLOSED or item.status == ItemState.JUDGED:
        blocked = f"该任务的督查已评定为“{item.verdict}”，填报内容不能再修改。" if item.verdict else "本次督查已结束。"
    elif item.owner_id != r.person.id:
        blocked = "该督查事项不由您填报。"
    values = {"done": item.done or _known(session, task, rt.tz), "problems": item.problems, "next_steps": item.next_steps, "urls": ""}
    return {
        "plan": r.plan,
        "person": r.person,
        "review": review,
        "item": item,
        "token": f"{request.path_params['token']}",
        "task": pages.task_page(session, task, today=rt.today(), tz=rt.tz),
        "csrf": csrf_token(rt.settings.secret_key, cookie.value, r.link.id),
        "values": values,
        "evidence": _item_evidence(session, [item.id]).get(item.id, []),
        "blocked": blocked,
        "late": rt.today() > review.reply_by,
        "answered_at": local_time(item.answered_at, rt.tz),
        "max_mb": rt.settings.upload_max_mb,
        "max_files": rt.settings.upload_max_files,
        "formats": FORMATS_TEXT,
    }


def _verdict_page(request: Request, token: str, cookie: Cookie, status: int = 200, **shown: Any) -> Response:
    """The verdict page as it is now, with ``shown``: the outcome's message, or an error and what was entered."""
    with session_scope(_rt(request).engine, readonly=True) as s:
        ctx = _verdict_context(s, request, _resolve(s, request, token), cookie)
    ctx.update(shown)
    return cookie.keep(render("review_verdict.html", ctx, status))


def _verdict_context(session, request: Request, r: Resolved, cookie: Cookie) -> dict[str, Any]:
    rt = _rt(request)
    review = session.get(Review, r.link.review_id)
    data = reviews.report_data(session, review, tz=rt.tz)
    rows = session.execute(
        select(ReviewItem, Task.code, Person.name, Task.owner_id)
        .join(Task, Task.id == ReviewItem.task_id)
        .join(Person, Person.id == Task.owner_id)
        .where(ReviewItem.review_id == review.id)
    ).all()
    by_code = {code: (item, owner, owner_id) for item, code, owner, owner_id in rows}
    evidence = _item_evidence(session, [item.id for item, _, _, _ in rows])
    follow = {f["code"]: f for f in data["follow_ups"]}
    items = []
    for i in data["items"]:
        item, owner, owner_id = by_code[i["code"]]
        f = follow.get(i["code"], {})
        items.append(
            {
                **i,
                "id": item.id,
                # nobody judges a task they own: the page says who judges it instead of a form
                "not_yours": reviews.judge_refusal(session, review.plan_id, r.person.id, {item.owner_id, owner_id}, code=i["code"]),
                "state": ItemState(item.status).label,
                "files": evidence.get(item.id, []),
                "task_owner": owner,
                "follow_title": (f.get("milestone") or "").removeprefix("督查整改："),
                "follow_owner": f.get("owner", ""),
                "follow_due": f.get("due", ""),
            }
        )
    return {
        "plan": r.plan,
        "person": r.person,
        "review": review,
        "d": data,
        "items": items,
        "verdicts": [v.value for v in Verdict],
        "status": ReviewState(review.status).label,
        "token": request.path_params["token"],
        "csrf": csrf_token(rt.settings.secret_key, cookie.value, r.link.id),
        "open": review.status not in (ReviewState.CLOSED, ReviewState.CANCELLED),
        "min_due": (rt.today() + dt.timedelta(days=1)).isoformat(),
        "summary": (summary := reviews.verdict_summary(session, review)),
        "close_blocked": reviews.close_refusal(summary),
    }


# ---------------------------------------------------------------------------------------------
# routes


@router.get("/rv/{token}", response_class=HTMLResponse)
def open_review_link(request: Request, token: str):
    limit_link(request, token, prefix="rv-")
    cookie = REVIEW_COOKIE.of(request)
    with session_scope(_rt(request).engine, readonly=True) as s:
        r = _resolve(s, request, token)
        if r.action == LinkAction.REVIEW_ANSWER:
            ctx, name = _answer_context(s, request, r, cookie), "review_answer.html"
        elif r.action == LinkAction.REVIEW_VERDICT:
            ctx, name = _verdict_context(s, request, r, cookie), "review_verdict.html"
        else:
            review = _review(s, r)
            ctx, name = (
                {"plan": r.plan, "person": r.person, "review": review, "token": token, "status": ReviewState(review.status).label},
                "review_report.html",
            )
    return cookie.keep(render(name, ctx))


@router.post("/rv/{token}", response_class=HTMLResponse)
async def submit_answer(request: Request, token: str):
    limit_link(request, token, prefix="rv-")
    if (form := await read_form(request, max_files=_rt(request).settings.upload_max_files + 5, max_fields=60)) is None:
        raise Refusal(*UNREADABLE_FORM)
    return await run_in_threadpool(_answer, request, token, form)


# a form posted to a review link of another kind (title, message)
CANNOT_ANSWER = ("此链接不能提交填报", "此链接用于督查评定或查看报告，不能提交填报。")
CANNOT_JUDGE = ("此链接不能评定", "只有领导小组办公室的督查评定链接可以评定。")
CANNOT_CLOSE = ("此链接不能完成评定", "只有领导小组办公室的督查评定链接可以完成评定并报送。")


def _posted_link(request: Request, token: str, form, cookie: Cookie, action: LinkAction, refused: tuple[str, str]) -> int:
    """The link a form was posted to (read only: a forged or used link stores nothing), the
    form's CSRF check and the link's ``action`` (else ``refused``: title and message): the link's
    id; else the page that refuses it is raised."""
    rt = _rt(request)
    with session_scope(rt.engine, readonly=True) as s:
        r = _resolve(s, request, token)
        link_id, posted = r.link.id, r.action
    if not csrf_ok(rt.settings.secret_key, request.cookies.get(REVIEW_COOKIE.name), form.get(CSRF_FIELD), link_id):
        raise Refusal(
            "页面已过期，请重新打开链接",
            "为保护您的账户安全，本次提交未被受理（页面校验信息缺失或不匹配）。请重新打开通知中的链接后再提交。",
            403,
            cookie=cookie,
        )
    if posted != action:
        raise Refusal(*refused, 405)
    return link_id


def _notify(request: Request, out, review_id: int, day: dt.date) -> None:
    """Send what a change wrote at once; a change that moves the review on wakes its flow run.
    The change is saved already: a store too busy to move the review on now leaves that to the
    review's daily tick, and the page still says what was saved."""
    rt = _rt(request)
    notify = set(out.notify)
    if out.wake:
        try:
            _, more = orchestration.wake_or_advance(rt.engine, review_id, today=day, reports_dir=rt.settings.data_dir / "reports")
        except DBAPIError as err:
            if not is_transient(err):
                raise
            log.warning("review %s saved, not moved on now (the store is busy): %s", review_id, err.__class__.__name__)
            more = set()
        notify |= more
    request.app.state.dispatcher.notify(notify)


def _answer(request: Request, token: str, form) -> Response:
    rt = _rt(request)
    cookie = REVIEW_COOKIE.of(request)
    link_id = _posted_link(request, token, form, cookie, LinkAction.REVIEW_ANSWER, CANNOT_ANSWER)
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD}
    now, day, origin = utcnow(), rt.today(), {**_origin(request), "link": link_id}
    stored: list[StoredFile] = []

    def record(s: Session):
        r = _resolve(s, request, token, for_update=True)
        item = _item(s, r, for_update=True)
        if stored:
            check_quota(
                s,
                stored,
                link=r.link,
                task_id=item.task_id,
                today=day,
                tz=rt.tz,
                link_max_mb=rt.settings.upload_link_max_mb,
                plan_day_max_mb=rt.settings.upload_plan_day_max_mb,
            )
        out = reviews.record_answer(
            s,
            item,
            person=r.person,
            done=values.get("done", ""),
            problems=values.get("problems", ""),
            next_steps=values.get("next_steps", ""),
            urls=urls,
            files=stored,
            now=now,
            today=day,
            origin=origin,
        )
        if r.link.used_at is None:
            r.link.used_at = now
        return out, item.review_id

    try:
        urls = clean_urls(values.get("urls", ""))
        stored = check_form_files(
            rt.settings.evidence_path,
            form.getlist("files"),
            max_files=rt.settings.upload_max_files,
            max_bytes=rt.settings.upload_max_mb * 1024 * 1024,
        )
        out, review_id = store_write(rt, f"review answer on link {link_id}", record)
        keep_files(rt.settings.evidence_path, stored)  # saved: the files go into the store
    except (EvidenceError, reviews.ReviewError) as err:
        with session_scope(rt.engine, readonly=True) as s:
            r = _resolve(s, request, token)
            ctx = _answer_context(s, request, r, cookie)
        ctx.update(error=str(err), values={**ctx["values"], **values})
        return cookie.keep(render("review_answer.html", ctx, err.status if isinstance(err, EvidenceError) else 400))
    finally:
        discard_files(stored)  # unless kept: a refused or failed answer leaves no file
    _notify(request, out, review_id, day)
    with session_scope(rt.engine, readonly=True) as s:
        r = _resolve(s, request, token)
        ctx = _answer_context(s, request, r, cookie)
    ctx["message"] = out.message
    return cookie.keep(render("review_answer.html", ctx))


@router.post("/rv/{token}/items/{item_id}", response_class=HTMLResponse)
async def submit_verdict(request: Request, token: str, item_id: RowId):
    limit_link(request, token, prefix="rv-")
    if (form := await read_form(request, max_fields=30)) is None:
        raise Refusal(*UNREADABLE_FORM)
    return await run_in_threadpool(_verdict, request, token, item_id, form)


def _verdict(request: Request, token: str, item_id: int, form) -> Response:
    rt = _rt(request)
    cookie = REVIEW_COOKIE.of(request)
    link_id = _posted_link(request, token, form, cookie, LinkAction.REVIEW_VERDICT, CANNOT_JUDGE)
    v = {k: str(form.get(k) or "") for k in ("verdict", "note", "follow_up_title", "follow_up_due", "follow_up_owner")}
    day = rt.today()
    try:
        due = dt.date.fromisoformat(v["follow_up_due"]) if v["follow_up_due"].strip() and v["verdict"] == Verdict.FIX else None
    except ValueError:
        due = None
    fix = v["verdict"] == Verdict.FIX
    now = utcnow()

    def judge(s: Session):
        r = _resolve(s, request, token, for_update=True)
        review = _review(s, r, for_update=True)
        item = s.get(ReviewItem, item_id)
        task = s.get(Task, item.task_id) if item is not None and item.review_id == review.id else None
        if task is None:
            raise reviews.ReviewError("本次督查中没有该任务。")
        verdict = reviews.TaskVerdict(
            task.code, v["verdict"], v["note"], v["follow_up_title"] if fix else "", due, v["follow_up_owner"] if fix else ""
        )
        out = reviews.give_verdict(s, review, verdict, actor=r.person.name, now=now, today=day, channel="link", judge_id=r.person.id)
        return out, review.id

    try:
        out, review_id = store_write(rt, f"review verdict on link {link_id}", judge)
    except reviews.ReviewError as err:
        return _verdict_page(request, token, cookie, 400, error=f"任务评定未保存：{err}", failed=item_id, values=v)
    _notify(request, out, review_id, day)
    return _verdict_page(request, token, cookie, message=out.message)


@router.post("/rv/{token}/close", response_class=HTMLResponse)
async def submit_close(request: Request, token: str):
    limit_link(request, token, prefix="rv-")
    if (form := await read_form(request, max_fields=10)) is None:
        raise Refusal(*UNREADABLE_FORM)
    return await run_in_threadpool(_close, request, token, form)


def _close(request: Request, token: str, form) -> Response:
    """完成评定并报送 (the box ticked: the explicit confirmation), in one transaction."""
    rt = _rt(request)
    cookie = REVIEW_COOKIE.of(request)
    link_id = _posted_link(request, token, form, cookie, LinkAction.REVIEW_VERDICT, CANNOT_CLOSE)
    day, now = rt.today(), utcnow()

    def close(s: Session):
        r = _resolve(s, request, token, for_update=True)
        review = _review(s, r)
        if form.get("confirm") != "yes":
            raise reviews.ReviewError("请勾选确认后再完成评定并报送。")
        out = reviews.close_review(
            s, review.id, actor=r.person.name, now=now, today=day, reports_dir=rt.settings.data_dir / "reports", channel="link"
        )
        return out, review.id

    try:
        out, review_id = store_write(rt, f"review close on link {link_id}", close)
    except reviews.ReviewError as err:
        return _verdict_page(request, token, cookie, 400, error=f"未能完成评定并报送：{err}")
    _notify(request, out, review_id, day)
    return _verdict_page(request, token, cookie, message=out.message)


@router.get("/rv/{token}/files/{evidence_id}")
def download_evidence(request: Request, token: str, evidence_id: RowId):
    limit_link(request, token, prefix="rv-")
    rt = _rt(request)
    with session_scope(rt.engine, readonly=True) as s:
        r = _resolve(s, request, token)
        ev = s.get(Evidence, evidence_id)
        item = s.get(ReviewItem, ev.review_item_id) if ev is not None and ev.review_item_id else None
        if (
            ev is None
            or item is None
            or ev.kind != EvidenceKind.FILE
            or not (
                (r.action == LinkAction.REVIEW_ANSWER and item.id == r.link.review_item_id)
                or (r.action in (LinkAction.REVIEW_VERDICT, LinkAction.REVIEW_REPORT) and item.review_id == r.link.review_id)
            )
        ):
            raise Refusal("没有找到该附件", "该附件不存在，或不属于此链接对应的督查。", 404)
        name, ctype, stored_name = ev.filename or "附件", ev.content_type or "application/octet-stream", ev.stored_name
    return attachment(stored_file(rt.settings.evidence_path, stored_name), name, ctype)


@router.get("/rv/{token}/report.{ext}")
def download_report(request: Request, token: str, ext: str):
    limit_link(request, token, prefix="rv-")
    rt = _rt(request)
    with session_scope(rt.engine, readonly=True) as s:
        r = _resolve(s, request, token)
        if r.action not in (LinkAction.REVIEW_REPORT, LinkAction.REVIEW_VERDICT):
            raise Refusal("没有找到督查报告", "此链接不能查看督查报告。", 404)
        review = _review(s, r)
        path = {"html": review.report_html, "xlsx": review.report_xlsx}.get(ext)
        title = review.title
    if not path or not Path(path).is_file():
        raise Refusal("督查报告尚未生成", "全部任务评定后将生成督查报告，届时会通知您。", 404)
    ctype = "text/html; charset=utf-8" if ext == "html" else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return attachment(Path(path), f"督查报告-{title}.{ext}", ctype)
