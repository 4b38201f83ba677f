"""The dashboard's task search: ``GET /dashboard/search?q=&plan=&state=&department=&person=``.

A plain GET form (the filters stay in the address, so a result list can be bookmarked or sent):
code, title or owner's name in one box, narrowed by plan, state (the one derivation of
``duban.status``), lead department and owner.  Only the plans the viewer may see are searched; a
plan outside them gives the same refusal as the dashboard.  Read-only statistics accounts see no
tasks (403).  Each result links to its task page (duban/web/dashboard_tasks.py).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from duban.db import session_scope
from duban.task_search import LIMIT, STATES, Query, departments, search
from duban.web.dashboard_tasks import task_href
from duban.web.deps import runtime
from duban.web.signin import plan_scope, plans_of, refusal, signed_in, viewer_page

router = APIRouter()


def _query(request: Request) -> Query:
    p = request.query_params
    state = p.get("state", "")
    return Query(
        text=p.get("q", "").strip()[:100],
        plan=p.get("plan", "").strip()[:100],
        state=state if state in STATES else "",
        department=p.get("department", "").strip()[:200],
        person=p.get("person", "").strip()[:100],
    )


@router.get("/dashboard/search", response_class=HTMLResponse)
def search_page(request: Request):
    viewer, resp = signed_in(request)
    if resp is not None:
        return resp
    if not viewer.sees_items:
        raise refusal(request, viewer, "无权查看", "您的账户为只读统计账户，不显示具体任务和责任人。", 403)
    q = _query(request)
    plans, _ = plan_scope(request, viewer, q.plan or None)  # refuses a plan outside the viewer's scope
    allowed = [r.id for r in plans_of(request, viewer)]
    with session_scope(runtime(request).engine, readonly=True) as s:
        found = search(s, q, plan_ids=allowed)
        depts = departments(s, allowed)
    rows = [{"href": task_href(f.plan_code, f.code), "found": f} for f in found.rows]
    ctx = {
        "section": "search",
        "q": q,
        "plans": plans,
        "states": [{"value": st.value, "label": st.label} for st in STATES],
        "departments": depts,
        "rows": rows,
        "total": found.total,
        "limit": LIMIT,
        "several_plans": len(plans) > 1,
    }
    return viewer_page(request, "dashboard_search.html", viewer, ctx)
