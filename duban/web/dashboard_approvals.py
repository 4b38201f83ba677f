"""The dashboard's 批量审核 (batch decisions), for office accounts tied to a person of the office.

- ``GET /dashboard/approvals``: every pending completion (办结) and extension (延期) request of the
  viewer's plans — filters: plan, kind, an office member's line (督办条线, ``plan_roles.scope``) —
  each with the task, the owner, what was asked, the evidence; checkboxes, a date per extension
  (批准延至: the asked date, changeable), 批准 or 退回 (a reason required);
- ``POST /dashboard/approvals`` (``step=confirm``): the confirmation — what will happen to each item;
- ``POST /dashboard/approvals`` (``step=do``): all of it in one transaction through
  :func:`duban.batch_decisions.decide_batch` (the rules of :mod:`duban.approvals`: nobody decides what
  they asked for or a task they own), the owners told as from a link, and the result page;
- ``GET /dashboard/approvals/files/{id}``: an evidence file of a request of the viewer's plans.

A signed-in reviewer's own decisions are not rate-limited per minute (the anonymous link pages are:
:func:`duban.web.deps.limit_link`); forms carry the CSRF field bound to the form cookie; every answer
is ``Cache-Control: no-store``.  See docs/web.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from duban.action_common import ActionError, Origin
from duban.batch_decisions import APPROVE, RETURN, BatchItem, decide_batch
from duban.db import session_scope
from duban.models import Evidence, Person, PlanRole, Task, utcnow
from duban.models import Request as RequestRow
from duban.roles import on_line, reviewers
from duban.vocabulary import AccountRole, EvidenceKind, PlanRoleKind, RequestKind, RequestStatus
from duban.web import pages
from duban.web.deps import RowId, client_ip, runtime, store_write, stored_file
from duban.web.security import attachment
from duban.web.signin import PRIVATE, form_ok, handle_form, plans_of, refusal, signed_in, viewer_page

router = APIRouter()
FORM = "approvals"
KINDS = {RequestKind.COMPLETION.value: "办结申请", RequestKind.EXTENSION.value: "延期申请"}
DECISIONS = {APPROVE: "批准", RETURN: "退回"}


def _office(request: Request, viewer: Any) -> None:
    if viewer.kind != "account" or viewer.role != AccountRole.OFFICE:
        raise refusal(request, viewer, "无权操作", "只有领导小组办公室的账户可以审核办结和延期申请。", 403)


def _lines(session, plan_ids: list[int]) -> list[dict[str, Any]]:
    """The office members of the plans, with their lines (for the filter)."""
    rows = session.execute(
        select(PlanRole.person_id, PlanRole.scope, Person.name)
        .join(Person, Person.id == PlanRole.person_id)
        .where(PlanRole.plan_id.in_(plan_ids or [-1]), PlanRole.role == PlanRoleKind.OFFICE)
        .order_by(PlanRole.plan_id, PlanRole.position)
    ).all()
    out, seen = [], set()
    for pid, scope, name in rows:
        if pid in seen:
            continue
        seen.add(pid)
        parts = [*(scope or {}).get("systems", []), *(scope or {}).get("departments", [])]
        out.append({"id": pid, "label": name + (f"（{'、'.join(parts)}）" if parts else "（未分条线）")})
    return out


def _pending(session, viewer: Any, plan_ids: list[int], *, kind: str, line: int | None, tz) -> list[dict[str, Any]]:
    q = select(RequestRow).where(RequestRow.plan_id.in_(plan_ids or [-1]), RequestRow.status == RequestStatus.PENDING)
    if kind in KINDS:
        q = q.where(RequestRow.kind == kind)
    out = []
    for req in session.scalars(q.order_by(RequestRow.created_at, RequestRow.id)):
        task = session.get(Task, req.task_id)
        if task is None or task.archived_at is not None:
            continue
        on = on_line(session, task, reviewers(session, req.plan_id, exclude={req.person_id, task.owner_id}))
        if line is not None and line not in on:
            continue
        view = pages.request_view(session, req, tz=tz, task=task)
        owner = session.get(Person, task.owner_id)
        out.append(
            {
                "v": view,
                "owner": owner.name if owner else "",
                "approve_min": pages.approve_min(session, req),
                "own": viewer.person_id in {req.person_id, task.owner_id},
            }
        )
    return out


def _scope(request: Request, viewer: Any, plan: str | None) -> tuple[list[Any], list[int]]:
    allowed = plans_of(request, viewer)
    if plan and not any(p.code == plan for p in allowed):
        raise refusal(request, viewer, "无权查看", "没有找到该方案，或您的账户无权审核该方案。请从列表中选择。", 404)
    return allowed, [p.id for p in allowed if not plan or p.code == plan]


def _list_page(request: Request, viewer: Any, q: dict[str, Any], *, error: str = "", status: int = 200, values=None) -> Response:
    allowed, plan_ids = _scope(request, viewer, q.get("plan") or None)
    with session_scope(runtime(request).engine, readonly=True) as s:
        rows = _pending(s, viewer, plan_ids, kind=q.get("kind") or "", line=q.get("line"), tz=runtime(request).tz)
        lines = _lines(s, [p.id for p in allowed])
    ctx = {
        "section": "approvals",
        "plans": [{"code": p.code, "name": p.name} for p in allowed],
        "q": q,
        "kinds": KINDS,
        "lines": lines,
        "rows": rows,
        "error": error,
        "values": values or {},
        "no_person": viewer.person_id is None,
        "read_only": viewer.province,
    }
    return viewer_page(request, "dashboard_approvals.html", viewer, ctx, status, forms=(FORM,))


@router.get("/dashboard/approvals", response_class=HTMLResponse)
def approvals_page(request: Request, plan: str | None = None, kind: str | None = None, line: str | None = None):
    viewer, resp = signed_in(request)
    if resp is not None:
        return resp
    _office(request, viewer)
    line_id = int(line) if line and line.isdigit() and len(line) < 10 else None
    return _list_page(request, viewer, {"plan": plan or "", "kind": kind or "", "line": line_id})


@router.post("/dashboard/approvals", response_class=HTMLResponse)
async def approvals_submit(request: Request):
    viewer, resp = signed_in(request)
    if resp is not None:
        return resp
    _office(request, viewer)
    return await handle_form(request, viewer, _submit, max_fields=2000)


def _posted(form: Any) -> tuple[list[BatchItem], str, str]:
    """The items picked (with the date each extension is approved to), the decision and the note."""
    decision = str(form.get("decision") or "")
    note = str(form.get("note") or "").strip()
    items = []
    for raw in form.getlist("pick"):
        if not isinstance(raw, str) or not raw.isdigit() or len(raw) > 9:
            continue
        due_raw = str(form.get(f"due-{raw}") or "").strip()
        try:
            due = dt.date.fromisoformat(due_raw) if due_raw and decision == APPROVE else None
        except ValueError:
            raise ActionError(f"批准延至的日期“{due_raw}”格式不正确，请用日期选择框选择。") from None
        items.append(BatchItem(int(raw), due))
    if decision not in DECISIONS:
        raise ActionError("请选择批准或退回。")
    if not items:
        raise ActionError("请至少勾选一项申请。")
    if decision == RETURN and not note:
        raise ActionError("退回原因：退回（或不予批准延期）时请填写原因，原因将通知各责任人。")
    if len(note) > 1000:
        raise ActionError(f"意见不能超过 1000 个字（现有 {len(note)} 个字）。")
    return items, decision, note


def _submit(request: Request, viewer: Any, form: Any) -> Response:
    q = {"plan": str(form.get("plan") or ""), "kind": str(form.get("kind") or ""), "line": None}
    values = {"note": str(form.get("note") or ""), "picked": {str(x) for x in form.getlist("pick")}}
    values["dues"] = {k.removeprefix("due-"): str(v) for k, v in form.items() if k.startswith("due-") and isinstance(v, str)}
    if not form_ok(request, form, FORM):
        error = "页面已过期，为保护您的账户安全，本次操作未被受理。请核对后重新提交。"
        return _list_page(request, viewer, q, error=error, status=403, values=values)
    if viewer.person_id is None:
        return _list_page(request, viewer, q, error=NO_PERSON, status=403, values=values)
    try:
        items, decision, note = _posted(form)
    except ActionError as err:
        return _list_page(request, viewer, q, error=str(err), status=400, values=values)
    if form.get("step") != "do":
        return _confirm_page(request, viewer, q, items, decision, note)
    return _do(request, viewer, q, items, decision, note)


NO_PERSON = "您的账户没有关联领导小组办公室的人员，不能审核。请联系系统管理员为账户关联人员（duban account）。"


def _confirm_page(request: Request, viewer: Any, q: dict[str, Any], items: list[BatchItem], decision: str, note: str) -> Response:
    _, plan_ids = _scope(request, viewer, q.get("plan") or None)
    tz = runtime(request).tz
    what = []
    with session_scope(runtime(request).engine, readonly=True) as s:
        for it in items:
            req = s.get(RequestRow, it.request_id)
            if req is None or req.plan_id not in plan_ids:
                continue
            v = pages.request_view(s, req, tz=tz)
            due = it.new_due.isoformat() if it.new_due else v.new_due
            if decision == APPROVE:
                effect = (
                    "批准办结，里程碑记为已办结"
                    if req.kind == RequestKind.COMPLETION
                    else f"批准延期，完成时间调整为 {due}（原定 {v.due}）"
                )
            else:
                effect = "退回，里程碑恢复为办理中" if req.kind == RequestKind.COMPLETION else f"不予批准，完成时间仍为 {v.due}"
            what.append({"v": v, "effect": effect, "due": it.new_due.isoformat() if it.new_due else ""})
    ctx = {"section": "approvals", "q": q, "what": what, "decision": decision, "decision_label": DECISIONS[decision], "note": note}
    return viewer_page(request, "dashboard_approvals_confirm.html", viewer, ctx, forms=(FORM,))


def _do(request: Request, viewer: Any, q: dict[str, Any], items: list[BatchItem], decision: str, note: str) -> Response:
    rt = runtime(request)
    _, plan_ids = _scope(request, viewer, q.get("plan") or None)
    origin = Origin(ip=client_ip(request), user_agent=request.headers.get("user-agent", ""), channel="dashboard")
    now, today = utcnow(), rt.today()

    def work(s):
        person = s.get(Person, viewer.person_id)
        if person is None:
            raise ActionError(NO_PERSON)
        return decide_batch(s, person, origin, plan_ids=plan_ids, items=items, decision=decision, note=note, now=now, today=today)

    try:
        result = store_write(rt, f"batch decisions by account {viewer.ident}", work)
    except ActionError as err:
        return _list_page(request, viewer, q, error=str(err), status=400)
    request.app.state.dispatcher.notify(result.notify)
    ctx = {"section": "approvals", "q": q, "result": result}
    return viewer_page(request, "dashboard_approvals_done.html", viewer, ctx)


@router.get("/dashboard/approvals/files/{evidence_id}")
def approval_file(request: Request, evidence_id: RowId):
    viewer, resp = signed_in(request)
    if resp is not None:
        return resp
    _office(request, viewer)
    with session_scope(runtime(request).engine, readonly=True) as s:
        ev = s.get(Evidence, evidence_id)
        if ev is None or ev.kind != EvidenceKind.FILE or not viewer.may_see(ev.plan_id):
            raise refusal(request, viewer, "没有找到该附件", "该附件不存在，或不属于您可审核的方案。", 404)
        name, ctype, stored = ev.filename or "附件", ev.content_type or "application/octet-stream", ev.stored_name
    out = attachment(stored_file(runtime(request).settings.evidence_path, stored), name, ctype)
    out.headers.update(PRIVATE)
    return out
