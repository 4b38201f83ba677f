"""Paper from the dashboard: the 督办通报 of a plan as PDF, and a task's numbered 督办单.

- ``GET /dashboard/paper/bulletin.pdf?plan=…[&kind=week|month][&number=N]``: an issued 督办通报
  (the latest when no number is given) in the official document layout — for the office and the
  leaders of the plan (read-only statistics links see no names, so no 通报 either);
- ``POST /dashboard/paper/notice`` (``plan``, ``code``, CSRF field): an office account issues the
  task's 督办单 — the first printing of the year allocates its number 督办〔年〕N号, a reprint keeps
  it — and is sent on to
- ``GET /dashboard/paper/notice.pdf?plan=…&year=…&number=…``: the issued 督办单 (office accounts).

A GET never changes anything (allocating a number is the POST).  The files are named after the
plan (``三全育人-督办通报-第3期.pdf``, RFC 5987).  Every answer is ``Cache-Control: no-store``.
See docs/web.md ("Paper").
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from duban import paper
from duban.db import session_scope
from duban.models import Plan, SupervisionNotice
from duban.web.dashboard_announce import is_office
from duban.web.deps import OptCount, runtime
from duban.web.signin import PRIVATE, form_ok, handle_form, plan_scope, refusal, signed_in

router = APIRouter()
FORM = "notice"


def downloads(request: Request, viewer: Any, plan_code: str | None) -> dict[str, Any]:
    """What the dashboard offers to print for the plan shown: the latest 通报 (when one was
    issued and the viewer may read it), and whether the viewer may issue 督办单."""
    out: dict[str, Any] = {"bulletin": None, "notices": is_office(viewer) and plan_code is not None and not viewer.province}
    if plan_code is None or not viewer.sees_items:
        return out
    try:
        _plan, b = paper.find_bulletin(runtime(request).engine, plan_code)
    except paper.PaperError:
        return out
    out["bulletin"] = {"href": "/dashboard/paper/bulletin.pdf?" + urlencode({"plan": plan_code}), "title": b.data.get("title", "")}
    return out


def _pdf(doc: paper.Document) -> Response:
    return Response(doc.pdf, media_type="application/pdf", headers={**PRIVATE, "Content-Disposition": doc.content_disposition})


@router.get("/dashboard/paper/bulletin.pdf")
def bulletin_pdf(request: Request, plan: str | None = None, kind: str | None = None, number: OptCount = None):
    viewer, resp = signed_in(request)
    if resp is not None:
        return resp
    _, code = plan_scope(request, viewer, plan)
    if code is None:
        raise refusal(request, viewer, "请选择方案", "督办通报按方案印发，请先在看板上选择方案。", 404)
    if not viewer.sees_items:
        raise refusal(request, viewer, "无权查看", "督办通报列有具体事项和责任人，只读统计账户不能下载。", 403)
    if kind not in (None, "week", "month"):
        raise refusal(request, viewer, "没有该通报", "通报类别应为周通报（week）或月通报（month）。", 404)
    try:
        found_plan, b = paper.find_bulletin(runtime(request).engine, code, kind=kind, number=number)
    except paper.PaperError as err:
        raise refusal(request, viewer, "没有该通报", str(err), 404) from None
    return _pdf(paper.bulletin_pdf(found_plan, b))


@router.post("/dashboard/paper/notice")
async def notice_submit(request: Request):
    viewer, resp = signed_in(request)
    if resp is not None:
        return resp
    return await handle_form(request, viewer, _issue)


def _issue(request: Request, viewer: Any, form: Any) -> Response:
    if not is_office(viewer):
        raise refusal(request, viewer, "无权操作", "只有领导小组办公室的账户可以印发督办单。", 403)
    plan, code = form.get("plan"), form.get("code")
    if not isinstance(plan, str) or not isinstance(code, str) or not plan or not code:
        raise refusal(request, viewer, "请选择任务", "请从看板的逾期事项中选择要印发督办单的任务。", 400)
    plan_scope(request, viewer, plan)
    if not form_ok(request, form, FORM):
        raise refusal(request, viewer, "页面已过期", "为保护您的账户安全，本次印发未被受理。请刷新看板后重新点击“印发督办单”。", 403)
    rt = runtime(request)
    try:
        notice = paper.issue_notice(rt.engine, plan, code[:50], today=rt.today(), cal=rt.calendar, issued_by=viewer.name)
    except paper.PaperError as err:
        raise refusal(request, viewer, "无法印发督办单", str(err), 404) from None
    query = urlencode({"plan": plan, "year": notice.year, "number": notice.number})
    return RedirectResponse(f"/dashboard/paper/notice.pdf?{query}", status_code=303, headers=PRIVATE)


@router.get("/dashboard/paper/notice.pdf")
def notice_pdf(request: Request, plan: str | None = None, year: OptCount = None, number: OptCount = None):
    viewer, resp = signed_in(request)
    if resp is not None:
        return resp
    if not is_office(viewer):
        raise refusal(request, viewer, "无权查看", "督办单由领导小组办公室印发和下载。", 403)
    _, code = plan_scope(request, viewer, plan)
    with session_scope(runtime(request).engine, readonly=True) as s:
        notice = s.scalars(
            select(SupervisionNotice)
            .join(Plan, Plan.id == SupervisionNotice.plan_id)
            .where(Plan.code == code, SupervisionNotice.year == year, SupervisionNotice.number == number)
        ).first()
        if notice is not None:
            s.expunge(notice)
    if notice is None:
        raise refusal(request, viewer, "没有该督办单", "没有找到该督办单，请从看板的逾期事项中重新印发。", 404)
    return _pdf(paper.notice_pdf(notice))
