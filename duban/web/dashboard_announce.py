"""The dashboard's 任务下达 (announcement) section, for office accounts.

- the dashboard shows an office account how many tasks of its plans await announcement
  (:func:`waiting_plans`), with a link to the page below;
- ``GET /dashboard/announce?plan=…``: who would receive which tasks (a dry run), and the form;
- ``POST /dashboard/announce``: announce them (:func:`duban.announce.announce_in` in one
  transaction), with the notices (sent at once by the web app's background delivery) or, when
  the 任务书 was handed out at a meeting, without (已线下下达); then the page shows the result.

Leaders and read-only viewers see none of it (403 with no data).  The form carries the CSRF
field bound to the form cookie; every answer is ``Cache-Control: no-store``.  See docs/web.md.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from duban.announce import AnnounceError, announce_in, preview, waiting
from duban.db import session_scope
from duban.models import utcnow
from duban.vocabulary import AccountRole
from duban.web.deps import Count, OptCount, runtime, store_write
from duban.web.signin import PRIVATE, form_ok, handle_form, plans_of, refusal, signed_in, viewer_page

router = APIRouter()
FORM = "announce"


def is_office(viewer: Any) -> bool:
    return viewer is not None and viewer.kind == "account" and viewer.role == AccountRole.OFFICE


def waiting_plans(request: Request, viewer: Any) -> list[dict[str, Any]]:
    """The viewer's plans with tasks awaiting announcement (a school's office accounts only; else none)."""
    if not is_office(viewer) or viewer.province:
        return []
    out = []
    with session_scope(runtime(request).engine, readonly=True) as s:
        for p in plans_of(request, viewer):
            n = waiting(s, p.code)
            if n:
                out.append({"code": p.code, "name": p.name, "waiting": n, "href": "/dashboard/announce?" + urlencode({"plan": p.code})})
    return out


def _office_plan(request: Request, viewer: Any, code: str | None) -> Any:
    """The plan (within the office account's scope), or the refusal."""
    if not is_office(viewer):
        raise refusal(request, viewer, "无权操作", "只有领导小组办公室的账户可以下达任务。如需下达，请联系领导小组办公室。", 403)
    allowed = plans_of(request, viewer)
    match = [r for r in allowed if r.code == code] if code else allowed[:1] if len(allowed) == 1 else []
    if not match:
        raise refusal(request, viewer, "请选择方案", "没有找到该方案，或您的账户无权在该方案中下达任务。请从看板选择方案。", 404)
    return match[0]


def _page(request: Request, viewer: Any, plan: Any, *, done: dict[str, Any] | None = None, error: str = "", status: int = 200) -> Response:
    with session_scope(runtime(request).engine, readonly=True) as s:
        would = preview(s, plan_code=plan.code)
    ctx = {
        "section": "announce",
        "plan": {"code": plan.code, "name": plan.name},
        "owners": [{"name": owner, "tasks": [f"{t.code} {t.title}" for t in tasks]} for owner, tasks in would.by_owner().items()],
        "waiting": would.announced,
        "already": would.already,
        "done": done,
        "error": error,
    }
    return viewer_page(request, "dashboard_announce.html", viewer, ctx, status, forms=(FORM,))


@router.get("/dashboard/announce", response_class=HTMLResponse)
def announce_page(request: Request, plan: str | None = None, n: OptCount = None, owners: Count = 0, offline: Count = 0):
    viewer, resp = signed_in(request)
    if resp is not None:
        return resp
    p = _office_plan(request, viewer, plan)
    done = {"announced": n, "owners": owners, "offline": bool(offline)} if n is not None else None
    return _page(request, viewer, p, done=done)


@router.post("/dashboard/announce", response_class=HTMLResponse)
async def announce_submit(request: Request):
    viewer, resp = signed_in(request)
    if resp is not None:
        return resp
    return await handle_form(request, viewer, _announce)


def _announce(request: Request, viewer: Any, form: Any) -> Response:
    code = form.get("plan")
    p = _office_plan(request, viewer, code if isinstance(code, str) else None)
    if not form_ok(request, form, FORM):
        return _page(
            request, viewer, p, status=403, error="页面已过期，为保护您的账户安全，本次下达未被受理。请核对以下任务后重新点击“确认下达”。"
        )
    offline = form.get("how") == "offline"
    rt = runtime(request)
    today, now = rt.today(), utcnow()

    def work(s):
        return announce_in(s, today=today, now=now, actor=viewer.name, plan_code=p.code, notify=not offline, cal=rt.calendar, channel="web")

    try:
        result = store_write(rt, f"announce plan {p.code}", work)
    except AnnounceError as err:
        return _page(request, viewer, p, status=400, error=str(err))
    request.app.state.dispatcher.notify(result.recipients)
    query = urlencode({"plan": p.code, "n": result.announced, "owners": result.owners, "offline": int(offline)})
    return RedirectResponse(f"/dashboard/announce?{query}", status_code=303, headers=PRIVATE)
