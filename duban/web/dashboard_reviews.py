"""The dashboard's 督查 (review) section: reviews as first-class records, behind sign-in.

Routes (included by :mod:`duban.web.dashboard`'s router):

- ``GET /dashboard/reviews``: the reviews of the plans in the viewer's scope (``?plan=`` narrows);
- ``GET /dashboard/reviews/{id}``: one review — per task the owner, the answer state, and for the
  office and leaders the answers, verdicts, non-responders, follow-ups and the report downloads
  (``/dashboard/reviews/{id}/report.html|xlsx``, attachments); a ``viewer`` account sees counts only;
- ``GET/POST /dashboard/reviews/new`` (office accounts): 发起督查 — plan, scope, reply-by date, what is
  asked; started by :func:`duban.orchestration.start_review`, the same path as ``duban review start``;
- ``POST /dashboard/reviews/{id}/cancel`` (office accounts): 撤销督查 with a reason
  (:func:`duban.reviews.cancel`).

The rules of the rest of the dashboard hold: nobody signed in is sent to /login and sees nothing, a
plan (or a review of a plan) outside the viewer's scope answers 403/404 with no data, forms carry a
CSRF field bound to the form cookie, every answer is ``Cache-Control: no-store``.  See docs/reviews.md.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from duban import orchestration
from duban.db import is_transient, session_scope
from duban.models import (
    Plan,
    Review,
    ReviewItem,
    Task,
    utcnow,
)
from duban.reviews import api as reviews
from duban.vocabulary import AccountRole, ItemState, ReviewState, ScopeKind, Verdict
from duban.web import dashboard_verdicts
from duban.web.deps import Count, RowId, runtime, store_write
from duban.web.security import attachment
from duban.web.signin import PRIVATE, form_ok, handle_form, office_only, plan_scope, plans_of, refusal, signed_in, viewer_page

router = APIRouter()

DEFAULT_ASK = "请报告各项任务的已完成工作、佐证材料、存在问题和下一步计划。"
SCOPE_ORDER = tuple(ScopeKind)
SCOPE_FORM_LABELS = {
    ScopeKind.PLAN: "整个方案",
    ScopeKind.SYSTEM: "育人体系",
    ScopeKind.DEPARTMENT: "牵头单位",
    ScopeKind.SUPERVISOR: "分管校领导",
    ScopeKind.TASKS: "指定任务",
}
NOTICES = {
    "started": "督查已发起，已向范围内各任务责任人发出填报通知。逾期未报将按督办规则逐级提醒。",
    "started-flow": "督查已发起，已向范围内各任务责任人发出填报通知；督查流程已交由 Prefect 运行，可在 Prefect 界面查看进度。",
    "cancelled": "督查已撤销，尚未填报的责任人将收到撤销通知，填报链接已失效。",
    "judged": "评定已保存（{n} 项）。完成评定并报送前可继续修改。",
    "closed": "已完成评定，督查报告已生成并报送领导小组和领导小组办公室。",
}
CODE_SPLIT = re.compile(r"[\s,，、;；]+")


# -- plumbing -----------------------------------------------------------------------------------------


def _page(request: Request, name: str, viewer, ctx: dict[str, Any], status: int = 200, *, forms: tuple[str, ...] = ()) -> Response:
    return viewer_page(request, name, viewer, {"section": "reviews", **ctx}, status, forms=forms)


def _scope_text(kind: str, values: list[str]) -> str:
    return ScopeKind(kind).label + ("：" + "、".join(values) if values else "")


def _review_in_scope(request: Request, viewer, review_id: int) -> Review:
    """The review, or the refusal: a review of a plan outside the scope is answered like a missing
    one (no data, and nothing said about whether it exists)."""
    with session_scope(runtime(request).engine, readonly=True) as s:
        review = s.get(Review, review_id)
        if review is not None and viewer.may_see(review.plan_id):
            s.expunge(review)
            return review
    raise refusal(request, viewer, "没有找到该督查", "没有找到该督查，或您的账户无权查看。请从督查列表中选择。", 404)


# -- the list -------------------------------------------------------------------------------------------


@router.get("/dashboard/reviews", response_class=HTMLResponse)
def review_list(request: Request, plan: str | None = None):
    viewer, resp = signed_in(request)
    if resp is not None:
        return resp
    plans, plan_code = plan_scope(request, viewer, plan)
    allowed = {r.id: r for r in plans_of(request, viewer)}
    ids = [pid for pid, r in allowed.items() if plan_code is None or r.code == plan_code]
    rt = runtime(request)
    with session_scope(rt.engine, readonly=True) as s:
        found = s.scalars(select(Review).where(Review.plan_id.in_(ids or [-1])).order_by(Review.id.desc())).all()
        counts: dict[int, dict[str, int]] = {r.id: {"items": 0, "answered": 0, "judged": 0} for r in found}
        for rid, answered, status, n in s.execute(
            select(ReviewItem.review_id, ReviewItem.answered_at.is_not(None), ReviewItem.status, func.count())
            .where(ReviewItem.review_id.in_(list(counts) or [-1]))
            .group_by(ReviewItem.review_id, ReviewItem.answered_at.is_not(None), ReviewItem.status)
        ).all():
            c = counts[rid]
            c["items"] += n
            c["answered"] += n if answered else 0
            c["judged"] += n if status == ItemState.JUDGED else 0
        rows = [
            {
                "id": r.id,
                "href": f"/dashboard/reviews/{r.id}",
                "plan": allowed[r.plan_id].name,
                "title": r.title,
                "scope": _scope_text(r.scope_kind, list(r.scope_values or [])),
                "status": ReviewState(r.status).label,
                "status_key": r.status,
                "started_on": r.started_on.isoformat(),
                "reply_by": r.reply_by.isoformat(),
                "answered": f"{counts[r.id]['answered']}/{counts[r.id]['items']}",
                "judged": f"{counts[r.id]['judged']}/{counts[r.id]['items']}",
            }
            for r in found
        ]
    new_href = "/dashboard/reviews/new" + (f"?{urlencode({'plan': plan_code})}" if plan_code else "")
    return _page(
        request,
        "dashboard_reviews.html",
        viewer,
        {"plans": plans, "plan_code": plan_code, "rows": rows, "new_href": new_href, "provincial": plan_code is None},
    )


# -- starting a review (office) -----------------------------------------------------------------------------


def _form_plan(request: Request, viewer, code: str | None):
    """The plan the form is for (within scope), or a refusal."""
    allowed = plans_of(request, viewer)
    if code:
        match = [r for r in allowed if r.code == code]
        if not match:
            if viewer.plan_id is None:
                raise refusal(request, viewer, "没有该方案", "没有找到该方案，请从方案列表中选择。", 404)
            raise refusal(request, viewer, "无权操作", "您的账户无权在该方案中发起督查。如需发起，请联系领导小组办公室。", 403)
        return match[0], allowed
    if not allowed:
        raise refusal(request, viewer, "方案不存在", "您的账户对应的方案已不存在。请联系领导小组办公室。", 404)
    return allowed[0], allowed


def _new_page(
    request: Request,
    viewer,
    plan,
    allowed,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    rt = runtime(request)
    today = rt.today()
    with session_scope(rt.engine, readonly=True) as s:
        p = s.get(Plan, plan.id)
        if p is None:
            raise refusal(request, viewer, "方案不存在", "您的账户对应的方案已不存在。请联系领导小组办公室。", 404)
        choices = reviews.scope_choices(s, p)
        titles = dict(s.execute(select(Task.code, Task.title).where(Task.plan_id == p.id, Task.archived_at.is_(None))).all())
    v = {
        "scope": ScopeKind.SYSTEM.value,
        "system": [],
        "department": [],
        "supervisor": [],
        "tasks": "",
        "reply_by": "",
        "ask": DEFAULT_ASK,
        "title": "",
        **(values or {}),
    }
    kinds = [{"key": k, "label": SCOPE_FORM_LABELS[k], "choices": choices.get(k, [])} for k in SCOPE_ORDER]
    ctx = {
        "plan": {"code": plan.code, "name": plan.name},
        "plans": [{"code": r.code, "name": r.name} for r in allowed],
        "kinds": kinds,
        "task_list": [(c, titles.get(c, "")) for c in choices["tasks"]],
        "v": v,
        "errors": errors or {},
        "error": error,
        "min_date": (today + dt.timedelta(days=1)).isoformat(),
        "today": today.isoformat(),
    }
    return _page(request, "dashboard_review_new.html", viewer, ctx, status, forms=("review-new",))


@router.get("/dashboard/reviews/new", response_class=HTMLResponse)
def review_new_form(request: Request, plan: str | None = None):
    viewer, resp = signed_in(request)
    if resp is not None:
        return resp
    office_only(request, viewer)
    p, allowed = _form_plan(request, viewer, plan)
    return _new_page(request, viewer, p, allowed)


@router.post("/dashboard/reviews/new", response_class=HTMLResponse)
async def review_new_submit(request: Request):
    viewer, resp = signed_in(request)
    if resp is not None:
        return resp
    office_only(request, viewer)
    return await handle_form(request, viewer, _start, max_fields=1000)


def _values(form) -> dict[str, Any]:
    def one(key: str) -> str:
        value = form.get(key)
        return value if isinstance(value, str) else ""

    return {
        "plan": one("plan").strip(),
        "scope": one("scope").strip(),
        "tasks": one("tasks").strip(),
        "reply_by": one("reply_by").strip(),
        "ask": one("ask"),
        "title": one("title").strip(),
        **{k: [x.strip() for x in form.getlist(k) if isinstance(x, str) and x.strip()] for k in ("system", "department", "supervisor")},
    }


def _start(request: Request, viewer, form) -> Response:
    rt = runtime(request)
    v = _values(form)
    p, allowed = _form_plan(request, viewer, v["plan"] or None)
    if not form_ok(request, form, "review-new"):
        return _new_page(
            request,
            viewer,
            p,
            allowed,
            values=v,
            status=403,
            error="页面已过期，为保护您的账户安全，本次提交未被受理。请核对以下内容后重新提交。",
        )
    today = rt.today()
    errors: dict[str, str] = {}
    kind = v["scope"]
    values: list[str] = []
    if kind not in SCOPE_ORDER:
        errors["scope"] = "督查范围：请选择整个方案、育人体系、牵头单位、分管校领导或指定任务之一。"
    elif kind == ScopeKind.TASKS:
        values = [c for c in CODE_SPLIT.split(v["tasks"]) if c]
        if not values:
            errors["scope"] = "督查范围：请填写要督查的任务编号，多个编号用逗号分隔。"
    elif kind != ScopeKind.PLAN:
        values = v[kind]
        if not values:
            errors["scope"] = f"督查范围：请至少选择一个{SCOPE_FORM_LABELS[kind]}。"
    reply_by = None
    if not v["reply_by"]:
        errors["reply_by"] = "填报截止日期：请选择填报截止日期。"
    else:
        try:
            reply_by = dt.date.fromisoformat(v["reply_by"])
        except ValueError:
            errors["reply_by"] = "填报截止日期：格式不正确，请按 YYYY-MM-DD 填写，如 2026-12-10。"
        else:
            if reply_by <= today:
                errors["reply_by"] = f"填报截止日期：应晚于今天（{today.isoformat()}），请重新选择。"
    if not v["ask"].strip():
        errors["ask"] = "督查要求：请填写需要责任人报告的内容。"
    elif len(v["ask"].strip()) > 2000:
        errors["ask"] = f"督查要求：不能超过 2000 个字（现有 {len(v['ask'].strip())} 个字），请精简后再提交。"
    if len(v["title"]) > 300:
        errors["title"] = f"督查名称：不能超过 300 个字（现有 {len(v['title'])} 个字）。"
    if errors:
        return _new_page(request, viewer, p, allowed, values=v, errors=errors, status=400, error="提交的内容有误，请按提示修改后重新提交。")
    try:
        started = orchestration.start_review(
            rt.engine,
            plan_code=p.code,
            scope_kind=kind,
            scope_values=values,
            reply_by=reply_by,
            ask=v["ask"],
            title=v["title"] or None,
            started_by=viewer.name,
            today=today,
            reports_dir=rt.settings.data_dir / "reports",
        )
    except reviews.ReviewError as err:  # e.g. a name the plan does not have: nothing was written
        return _new_page(request, viewer, p, allowed, values=v, status=400, error=str(err))
    request.app.state.dispatcher.notify(started.recipients)
    done = "started-flow" if started.how == "deployment" else "started"
    return RedirectResponse(f"/dashboard/reviews/{started.review_id}?done={done}", status_code=303, headers=PRIVATE)


# -- one review --------------------------------------------------------------------------------------------


def show_page(
    request: Request,
    viewer,
    review: Review,
    *,
    notice: str = "",
    error: str = "",
    reason: str = "",
    status: int = 200,
    posted: Any = None,
) -> Response:
    rt = runtime(request)
    with session_scope(rt.engine, readonly=True) as s:
        r = s.get(Review, review.id)
        plan = s.get(Plan, r.plan_id) if r is not None else None
        if r is None or plan is None:
            raise refusal(request, viewer, "没有找到该督查", "没有找到该督查，或您的账户无权查看。请从督查列表中选择。", 404)
        data = reviews.report_data(s, r, tz=rt.tz)
        reports = {
            ext: f"/dashboard/reviews/{r.id}/report.{ext}"
            for ext, path in (("html", r.report_html), ("xlsx", r.report_xlsx))
            if path and Path(path).is_file()
        }
        acts = viewer.may_act(r.plan_id)  # the province reads: no forms
        judging = _judging(s, viewer, r, data) if dashboard_verdicts.may_judge(viewer) and acts else {}
        facts = {
            "status": ReviewState(r.status).label,
            "status_key": r.status,
            "cancel_reason": r.cancel_reason,
            "cancelled_by": r.cancelled_by or "",
            "answers_closed_on": r.answers_closed_on.isoformat() if r.answers_closed_on else "",
        }
    c = data["counts"]
    summary = {
        "total": c["items"],
        "answered": c["answered"],
        "unanswered": c["items"] - c["answered"],
        "late": c["late"],
        "judged": sum(c["verdicts"].values()),
        "verdicts": [(k, c["verdicts"].get(k, 0)) for k in (v.value for v in Verdict)],
        "follow_ups": len(data["follow_ups"]),
        "non_responders": len(data["non_responders"]),
    }
    sees = viewer.sees_items
    ctx = {
        "r": data,
        "plan": {"code": plan.code, "name": plan.name},
        "facts": facts,
        "summary": summary,
        "sees": sees,
        "items": data["items"] if sees else [],
        "non_responders": data["non_responders"] if sees else [],
        "follow_ups": data["follow_ups"] if sees else [],
        "reports": reports if sees else {},
        "may_cancel": viewer.kind == "account"
        and acts
        and viewer.role == AccountRole.OFFICE
        and facts["status_key"] in (ReviewState.OPEN, ReviewState.WAITING),
        "notice": notice,
        "error": error,
        "reason": reason,
        "judging": judging,
        "verdicts": [v.value for v in Verdict],
        "posted": {k: v for k, v in posted.items() if isinstance(v, str)} if posted is not None else {},
        "picked": {x for x in posted.getlist("pick") if isinstance(x, str)} if posted is not None else set(),
        "min_due": (rt.today() + dt.timedelta(days=1)).isoformat(),
    }
    forms = (f"review-cancel:{review.id}", dashboard_verdicts.verdicts_form(review.id), dashboard_verdicts.close_form(review.id))
    return _page(request, "dashboard_review.html", viewer, ctx, status, forms=forms)


def _judging(s, viewer, r: Review, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per task code, what the verdict form needs (an office account, a review still open)."""
    if r.status not in (ReviewState.OPEN, ReviewState.WAITING):
        return {}
    follow = {f["code"]: f for f in data["follow_ups"]}
    out = {}
    rows = s.execute(
        select(Task.code, ReviewItem.owner_id, Task.owner_id, ReviewItem.answered_at)
        .join(Task, Task.id == ReviewItem.task_id)
        .where(ReviewItem.review_id == r.id)
    ).all()
    for code, item_owner, task_owner, answered_at in rows:
        f = follow.get(code, {})
        why = (
            reviews.judge_refusal(s, r.plan_id, viewer.person_id, {item_owner, task_owner}, code=code)
            if viewer.person_id is not None
            else None
        )
        out[code] = {
            "open": answered_at is not None or r.status == ReviewState.WAITING,
            "not_yours": why,
            "follow_title": (f.get("milestone") or "").removeprefix("督查整改："),
            "follow_owner": f.get("owner", ""),
            "follow_due": f.get("due", ""),
        }
    return out


@router.get("/dashboard/reviews/{review_id:int}", response_class=HTMLResponse)
def review_show(request: Request, review_id: RowId, done: str | None = None, n: Count = 0):
    viewer, resp = signed_in(request)
    if resp is not None:
        return resp
    review = _review_in_scope(request, viewer, review_id)
    return show_page(request, viewer, review, notice=NOTICES.get(done or "", "").format(n=n))


@router.get("/dashboard/reviews/{review_id:int}/report.{ext}")
def review_report(request: Request, review_id: RowId, ext: str):
    viewer, resp = signed_in(request)
    if resp is not None:
        return resp
    review = _review_in_scope(request, viewer, review_id)
    if not viewer.sees_items:
        raise refusal(request, viewer, "无权查看", "督查报告含各任务责任人及填报内容，您的账户为只读统计账户，不能下载。", 403)
    path = {"html": review.report_html, "xlsx": review.report_xlsx}.get(ext)
    if not path or not Path(path).is_file():
        raise refusal(request, viewer, "督查报告尚未生成", "全部任务评定后将生成督查报告，届时会通知领导小组和领导小组办公室。", 404)
    ctype = "text/html; charset=utf-8" if ext == "html" else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    resp = attachment(Path(path), f"督查报告-{review.title}.{ext}", ctype)
    resp.headers.update(PRIVATE)
    return resp


@router.post("/dashboard/reviews/{review_id:int}/cancel", response_class=HTMLResponse)
async def review_cancel(request: Request, review_id: RowId):
    viewer, resp = signed_in(request)
    if resp is not None:
        return resp
    office_only(request, viewer)
    return await handle_form(request, viewer, _cancel, review_id)


def _cancel(request: Request, viewer, review_id: int, form) -> Response:
    rt = runtime(request)
    review = _review_in_scope(request, viewer, review_id)
    reason = form.get("reason")
    reason = reason.strip() if isinstance(reason, str) else ""
    if not form_ok(request, form, f"review-cancel:{review_id}"):
        return show_page(
            request,
            viewer,
            review,
            reason=reason,
            status=403,
            error="页面已过期，为保护您的账户安全，本次撤销未被受理。请核对后重新点击“撤销督查”。",
        )
    if not reason:
        return show_page(request, viewer, review, status=400, error="撤销原因：请填写撤销原因（将告知尚未填报的责任人）。")
    if len(reason) > 500:
        return show_page(
            request, viewer, review, reason=reason, status=400, error=f"撤销原因：不能超过 500 个字（现有 {len(reason)} 个字）。"
        )
    today, now = rt.today(), utcnow()
    try:
        out = store_write(
            rt, f"cancel review {review_id}", lambda s: reviews.cancel(s, review_id, actor=viewer.name, reason=reason, now=now, today=today)
        )
    except reviews.ReviewError as err:
        return show_page(request, viewer, review, status=409, error=str(err))
    try:
        orchestration.wake(rt.engine, review_id)  # a suspended flow run ends itself (it finds the review cancelled)
    except DBAPIError as err:  # cancelled already; the flow run finds out at its next round
        if not is_transient(err):
            raise
    request.app.state.dispatcher.notify(out.notify)
    return RedirectResponse(f"/dashboard/reviews/{review_id}?done=cancelled", status_code=303, headers=PRIVATE)
