"""Verdicts (督查评定) on the dashboard's review page, for office accounts.

- ``POST /dashboard/reviews/{id}/verdicts``: the verdicts chosen on the page — per task (the select
  starts empty: a task left empty is not judged), or one verdict and note for the tasks ticked
  (``mode=batch``) — saved together in one transaction through
  :func:`duban.reviews.verdicts.give_verdict` (nobody judges a task they own); editable until the
  review is closed;
- ``POST /dashboard/reviews/{id}/close``: 完成评定并报送 — ``step=confirm`` shows the summary (the
  count per verdict; tasks without a verdict block it) and asks; ``step=do`` closes the review
  (:func:`duban.reviews.closing.close_review`): the report written and sent.

Forms carry the CSRF field bound to the form cookie; every answer is ``Cache-Control: no-store``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from duban import orchestration
from duban.db import is_transient, session_scope
from duban.models import Person, Review, ReviewItem, Task, utcnow
from duban.reviews import api as reviews
from duban.vocabulary import AccountRole, Verdict
from duban.web.deps import RowId, runtime, store_write
from duban.web.signin import PRIVATE, form_ok, handle_form, refusal, signed_in, viewer_page

router = APIRouter()
EXPIRED = "页面已过期，为保护您的账户安全，本次提交未被受理。请核对后重新提交。"


def verdicts_form(review_id: int) -> str:
    return f"review-verdicts:{review_id}"


def close_form(review_id: int) -> str:
    return f"review-close:{review_id}"


def may_judge(viewer: Any) -> bool:
    return viewer.kind == "account" and viewer.role == AccountRole.OFFICE


def _office_review(request: Request, viewer: Any, review_id: int) -> Review:
    if not may_judge(viewer):
        raise refusal(request, viewer, "无权操作", "只有领导小组办公室的账户可以评定督查。", 403)
    with session_scope(runtime(request).engine, readonly=True) as s:
        review = s.get(Review, review_id)
        if review is not None and viewer.may_see(review.plan_id):
            s.expunge(review)
            return review
    raise refusal(request, viewer, "没有找到该督查", "没有找到该督查，或您的账户无权查看。请从督查列表中选择。", 404)


def _judge(session, viewer: Any) -> tuple[str, int | None]:
    """Who judges: the account's person (checked as a judge of each task), else its name."""
    person = session.get(Person, viewer.person_id) if viewer.person_id else None
    return (person.name, person.id) if person is not None else (viewer.name, None)


def _one(form: Any, key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


def posted_verdicts(form: Any, codes: list[str]) -> list[reviews.TaskVerdict]:
    """The verdicts the form asks for, in the page's order: per task, or the batch for the tasks ticked."""
    batch = form.get("mode") == "batch"
    picked = {x for x in form.getlist("pick") if isinstance(x, str)}
    out = []
    for code in codes:
        if batch and code not in picked:
            continue
        verdict = _one(form, "batch_verdict") if batch else _one(form, f"verdict-{code}")
        if not verdict:
            continue
        note = _one(form, "batch_note") if batch else _one(form, f"note-{code}")
        due_raw = _one(form, f"follow_up_due-{code}")
        try:
            due = dt.date.fromisoformat(due_raw) if due_raw and verdict == Verdict.FIX else None
        except ValueError:
            raise reviews.ReviewError(f"任务 {code}：整改完成日期“{due_raw}”格式不正确，请用日期选择框选择。") from None
        fix = verdict == Verdict.FIX
        title = _one(form, f"follow_up_title-{code}") if fix else ""
        owner = _one(form, f"follow_up_owner-{code}") if fix else ""
        out.append(reviews.TaskVerdict(code, verdict, note, title, due, owner))
    if batch and not picked:
        raise reviews.ReviewError("批量评定：请先勾选要评定的任务。")
    if batch and not _one(form, "batch_verdict"):
        raise reviews.ReviewError("批量评定：请选择评定结果。")
    if not out:
        raise reviews.ReviewError("请至少为一项任务选择评定结果。")
    return out


@router.post("/dashboard/reviews/{review_id:int}/verdicts", response_class=HTMLResponse)
async def save_verdicts(request: Request, review_id: RowId):
    viewer, resp = signed_in(request)
    if resp is not None:
        return resp
    review = _office_review(request, viewer, review_id)
    return await handle_form(request, viewer, _save, review, max_fields=5000)


def _show(request: Request, viewer: Any, review: Review, **kw: Any) -> Response:
    from duban.web.dashboard_reviews import show_page

    return show_page(request, viewer, review, **kw)


def _save(request: Request, viewer: Any, review: Review, form: Any) -> Response:
    if not form_ok(request, form, verdicts_form(review.id)):
        return _show(request, viewer, review, status=403, error=EXPIRED)
    rt = runtime(request)
    now, today = utcnow(), rt.today()

    def work(s):
        r = s.get(Review, review.id, with_for_update=True)
        codes = list(
            s.scalars(
                select(Task.code).join(ReviewItem, ReviewItem.task_id == Task.id).where(ReviewItem.review_id == r.id).order_by(Task.code)
            )
        )
        actor, judge_id = _judge(s, viewer)
        notify: set[int] = set()
        wanted = posted_verdicts(form, codes)
        for v in wanted:
            try:
                out = reviews.give_verdict(s, r, v, actor=actor, now=now, today=today, channel="dashboard", judge_id=judge_id)
            except reviews.ReviewError as err:
                raise reviews.ReviewError(f"任务 {v.task_code}：{err}（本次评定均未保存）") from None
            notify |= out.notify
        return len(wanted), notify

    try:
        saved, notify = store_write(rt, f"verdicts on review {review.id}", work)
    except reviews.ReviewError as err:
        return _show(request, viewer, review, status=400, error=str(err), posted=form)
    request.app.state.dispatcher.notify(notify)
    return RedirectResponse(f"/dashboard/reviews/{review.id}?done=judged&n={saved}#items", status_code=303, headers=PRIVATE)


@router.post("/dashboard/reviews/{review_id:int}/close", response_class=HTMLResponse)
async def close_review(request: Request, review_id: RowId):
    viewer, resp = signed_in(request)
    if resp is not None:
        return resp
    review = _office_review(request, viewer, review_id)
    return await handle_form(request, viewer, _close, review)


def _close(request: Request, viewer: Any, review: Review, form: Any) -> Response:
    if not form_ok(request, form, close_form(review.id)):
        return _show(request, viewer, review, status=403, error=EXPIRED)
    rt = runtime(request)
    if form.get("step") != "do":
        with session_scope(rt.engine, readonly=True) as s:
            r = s.get(Review, review.id)
            if r is None:
                raise refusal(request, viewer, "没有找到该督查", "没有找到该督查，或您的账户无权查看。请从督查列表中选择。", 404)
            summary = reviews.verdict_summary(s, r)
        ctx = {"section": "reviews", "review": {"id": review.id, "title": review.title}, "summary": summary}
        ctx["blocked"] = reviews.close_refusal(summary)
        return viewer_page(
            request, "dashboard_review_close.html", viewer, ctx, 409 if ctx["blocked"] else 200, forms=(close_form(review.id),)
        )
    now, today = utcnow(), rt.today()

    def work(s):
        actor, _ = _judge(s, viewer)
        return reviews.close_review(
            s, review.id, actor=actor, now=now, today=today, reports_dir=rt.settings.data_dir / "reports", channel="dashboard"
        )

    try:
        out = store_write(rt, f"close review {review.id}", work)
    except reviews.ReviewError as err:
        return _show(request, viewer, review, status=409, error=str(err))
    try:
        orchestration.wake(rt.engine, review.id)  # a suspended flow run ends itself (it finds the review closed)
    except DBAPIError as err:
        if not is_transient(err):
            raise
    request.app.state.dispatcher.notify(out.notify)
    return RedirectResponse(f"/dashboard/reviews/{review.id}?done=closed", status_code=303, headers=PRIVATE)
