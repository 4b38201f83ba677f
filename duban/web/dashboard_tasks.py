"""The dashboard's task page, and what the office and leaders do there.

- ``GET /dashboard/tasks/{plan}/{task}``: the 任务书 (statement, 完成标志, 完成时限, 牵头单位,
  配合单位, 分管校领导), the roadmap with current and original dates, the owner with contacts,
  the current state and the full timeline (:func:`duban.timeline.timeline`);
- ``POST …/instruction`` (领导批示: leader and office accounts), ``…/urge`` (催办), ``…/reassign``
  (更换责任人), ``…/move`` (调整完成时间), ``…/archive`` (归档) (office accounts): thin over
  :mod:`duban.office_edits`; each form carries its CSRF field; reassigning and archiving ask for
  a confirmation; what was written to the ledger is sent at once (the web app's background delivery,
  ``duban.sweep.sending.send_to``).

A plan outside the viewer's scope, an unknown plan and an unknown task get the same answer (404),
so nobody learns whether a task exists in a plan they may not see.  Read-only statistics accounts
see no task at all.  Every answer is ``Cache-Control: no-store``.  See docs/web.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from duban import office_edits
from duban.action_common import label
from duban.db import session_scope
from duban.models import Department, Milestone, Person, Plan, Task, utcnow
from duban.status import milestone_summary, task_status
from duban.timeline import timeline
from duban.vocabulary import OPEN_STATES, AccountRole, MilestoneState
from duban.web.deps import runtime, store_write
from duban.web.pages import milestone_views
from duban.web.signin import PRIVATE, PROVINCE_READ_ONLY, form_ok, handle_form, refusal, signed_in, viewer_page

router = APIRouter()
ACTIONS = ("instruction", "urge", "reassign", "move", "archive")
DONE = {
    "instruction": "批示已记录，并已通知责任人。",
    "urge": "已向责任人发出催办提醒。",
    "reassign": "责任人已更换；新责任人将收到任务下达通知（任务尚未下达的，下达时通知）。",
    "move": "完成时间已调整，原定时间保留在路线图中。",
    "archive": "任务已归档，不再提醒。",
}
NOT_FOUND = ("没有找到该任务", "没有找到该任务，或您的账户无权查看该任务。请从看板或搜索结果中打开任务。", 404)


def task_href(plan_code: str, task_code: str) -> str:
    """The task page's address (codes may hold any character: quoted)."""
    return f"/dashboard/tasks/{quote(str(plan_code), safe='')}/{quote(str(task_code), safe='')}"


def may_instruct(viewer: Any) -> bool:
    return viewer.kind == "account" and viewer.role in (AccountRole.OFFICE, AccountRole.LEADER) and not viewer.province


def is_office(viewer: Any) -> bool:
    """An office account of the school (the province reads, and acts on nothing)."""
    return viewer.kind == "account" and viewer.role == AccountRole.OFFICE and not viewer.province


def _find(request: Request, viewer: Any, session: Session, plan_code: str, task_code: str, *, act: bool = False) -> tuple[Plan, Task]:
    """The task, within the viewer's scope; else the one refusal that says nothing more.  ``act``:
    to change it (the province reads every school's tasks and changes none)."""
    if not viewer.sees_items:
        raise refusal(request, viewer, "无权查看", "您的账户为只读统计账户，不显示具体任务和责任人。", 403)
    plan = session.scalar(select(Plan).where(Plan.code == plan_code))
    task = session.scalar(select(Task).where(Task.plan_id == plan.id, Task.code == task_code)) if plan is not None else None
    if plan is None or task is None or not viewer.may_see(plan.id):
        raise refusal(request, viewer, *NOT_FOUND)
    if act and not viewer.may_act(plan.id):
        raise refusal(request, viewer, *PROVINCE_READ_ONLY)
    return plan, task


def _state(session: Session, task: Task) -> str:
    """The task's status by the one derivation (duban.status)."""
    per_task = milestone_summary(tasks=Task.id == task.id)
    q = select(task_status(per_task)).select_from(Task).outerjoin(per_task, per_task.c.task_id == Task.id).where(Task.id == task.id)
    return MilestoneState.label_of(str(session.scalar(q)))


def _book(session: Session, task: Task) -> dict[str, Any]:
    """The 任务书 and the owner with contacts."""
    owner = session.get(Person, task.owner_id)
    dept = session.get(Department, task.lead_department_id) if task.lead_department_id else None
    owner_dept = session.get(Department, owner.department_id) if owner is not None and owner.department_id else None
    supervisor_id = task.supervisor_id or (dept.supervisor_id if dept else None)
    supervisor = session.get(Person, supervisor_id) if supervisor_id else None
    return {
        "code": task.code,
        "title": task.title,
        "statement": task.statement,
        "done_criteria": task.done_criteria,
        "deadline_text": task.deadline_text,
        "department": dept.name if dept else "",
        "partners": "、".join(task.partners or []),
        "supervisor": supervisor.name if supervisor else "",
        "owner": {
            "name": owner.name if owner else "",
            "department": owner_dept.name if owner_dept else "",
            "title": (owner.title or "") if owner else "",
            "mobile": (owner.mobile or "") if owner else "",
            "email": (owner.email or "") if owner else "",
        },
        "archived": task.archived_at is not None,
        "announced": task.announced_at is not None,
    }


def _context(session: Session, plan: Plan, task: Task, *, today: dt.date, tz: Any, office: bool) -> dict[str, Any]:
    ms = session.execute(
        select(
            Milestone.id,
            Milestone.seq,
            Milestone.title,
            Milestone.is_final,
            Milestone.status,
            Milestone.due_date,
            Milestone.baseline_due_date,
        )
        .where(Milestone.task_id == task.id)
        .order_by(Milestone.seq, Milestone.id)
    ).all()
    labels: dict[int, str] = {m.id: label(m) for m in ms}  # type: ignore[arg-type]
    ctx: dict[str, Any] = {
        "plan": {"code": plan.code, "name": plan.name},
        "task": _book(session, task),
        "milestones": milestone_views(ms, labels, today=today, current=None),
        "state": _state(session, task),
        "timeline": list(reversed(timeline(session, task, tz=tz))),
        "href": task_href(plan.code, task.code),
    }
    if office:
        ctx["open_steps"] = [{"id": m.id, "label": labels[m.id], "due": m.due_date.isoformat()} for m in ms if m.status in OPEN_STATES]
        ctx["people"] = [
            {"id": p.id, "name": p.name}
            for p in session.execute(
                select(Person.id, Person.name)
                .where(Person.plan_id == plan.id, Person.active.is_(True), Person.id != task.owner_id)
                .order_by(Person.name)
            )
        ]
    return ctx


def _page(request: Request, viewer: Any, plan_code: str, task_code: str, *, ok: str = "", error: str = "", status: int = 200) -> Response:
    rt = runtime(request)
    with session_scope(rt.engine, readonly=True) as s:
        plan, task = _find(request, viewer, s, plan_code, task_code)
        acts = viewer.may_act(plan.id)  # the province reads: no forms
        office = is_office(viewer) and acts
        ctx = _context(s, plan, task, today=rt.today(), tz=rt.tz, office=office)
    ctx.update(
        section="tasks",
        done=DONE.get(ok, ""),
        error=error,
        may_instruct=may_instruct(viewer) and acts,
        office=office,
        today=rt.today().isoformat(),
    )
    forms = tuple(f"task-{a}" for a in ACTIONS)
    return viewer_page(request, "dashboard_task.html", viewer, ctx, status, forms=forms)


@router.get("/dashboard/tasks/{plan_code}/{task_code}", response_class=HTMLResponse)
def task_page(request: Request, plan_code: str, task_code: str, ok: str = ""):
    viewer, resp = signed_in(request)
    if resp is not None:
        return resp
    return _page(request, viewer, plan_code[:100], task_code[:50], ok=ok if ok in DONE else "")


@router.post("/dashboard/tasks/{plan_code}/{task_code}/{action}", response_class=HTMLResponse)
async def task_action(request: Request, plan_code: str, task_code: str, action: str):
    viewer, resp = signed_in(request)
    if resp is not None:
        return resp
    if action not in ACTIONS:
        raise refusal(request, viewer, "页面不存在", "没有这项操作，请返回任务页面。", 404)
    if viewer.province:
        raise refusal(request, viewer, *PROVINCE_READ_ONLY)
    if not (may_instruct(viewer) if action == "instruction" else is_office(viewer)):
        what = "作出批示" if action == "instruction" else "催办、更换责任人、调整完成时间或归档任务"
        who = "领导和领导小组办公室" if action == "instruction" else "领导小组办公室"
        raise refusal(request, viewer, "无权操作", f"只有{who}的账户可以{what}。", 403)
    return await handle_form(request, viewer, _act, plan_code[:100], task_code[:50], action)


def _act(request: Request, viewer: Any, plan_code: str, task_code: str, action: str, form: Any) -> Response:
    def again(error: str, status: int) -> Response:
        return _page(request, viewer, plan_code, task_code, error=error, status=status)

    if not form_ok(request, form, f"task-{action}"):
        return again("页面已过期，为保护您的账户安全，本次操作未被受理。请核对后重新提交。", 403)
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if action in ("reassign", "archive") and fields.get("confirm") != "yes":
        return again("请勾选确认后再提交（该操作会通知或停止通知责任人）。", 400)
    rt = runtime(request)
    now, today = utcnow(), rt.today()

    def work(s: Session) -> office_edits.Edit:
        _, task = _find(request, viewer, s, plan_code, task_code, act=True)
        return _apply(s, task, action, fields, by=viewer.name, now=now, today=today, rt=rt)

    try:
        edit = store_write(rt, f"{action} on task {plan_code}/{task_code}", work)
    except office_edits.EditError as err:
        return again(str(err), 400)
    request.app.state.dispatcher.notify(edit.notify)
    return RedirectResponse(f"{task_href(plan_code, task_code)}?{urlencode({'ok': action})}", status_code=303, headers=PRIVATE)


def _number(value: str | None, what: str) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise office_edits.EditError(f"请选择{what}。") from None


def _date(value: str | None) -> dt.date:
    try:
        return dt.date.fromisoformat(value or "")
    except ValueError:
        raise office_edits.EditError("请填写新的完成时间（年-月-日，如 2026-12-31）。") from None


def _apply(
    s: Session, task: Task, action: str, f: dict[str, str], *, by: str, now: dt.datetime, today: dt.date, rt: Any
) -> office_edits.Edit:
    if action == "instruction":
        return office_edits.instruct(s, task, text=f.get("text", ""), by=by, now=now, today=today)
    if action == "urge":
        return office_edits.urge(s, task, by=by, now=now, today=today, tz=rt.tz, text=f.get("text", ""))
    if action == "reassign":
        person = _number(f.get("person"), "新的责任人")
        return office_edits.reassign(s, task, person_id=person, by=by, now=now, today=today, cal=rt.calendar, reason=f.get("reason", ""))
    if action == "move":
        step = _number(f.get("milestone"), "要调整的里程碑")
        return office_edits.move_due(s, task, step, new_due=_date(f.get("due")), reason=f.get("reason", ""), by=by, now=now)
    return office_edits.archive(s, task, reason=f.get("reason", ""), by=by, now=now)
