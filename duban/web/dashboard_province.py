"""省级汇总: the province's page of the dashboard, and its read-only drill-in into one school.

Routes (an ``APIRouter`` included by :func:`duban.web.app.create_app`):

- ``GET /dashboard/province`` (and ``/dashboard/province.json``): one row per institution
  (:func:`duban.rollup.institutions.province_rollup`: plans, tasks, completion, on-time rate,
  lights, overdue tasks, rank and its change), in rank order or sorted by ``sort``; each school's
  name opens the dashboard of that school (``/dashboard?institution=CODE``).  Only a province
  viewer sees it; a school's viewer gets the refusal every out-of-scope page gives (403).
- :func:`drill_in` is what ``/dashboard`` does with ``institution=CODE`` (or a plan of a school,
  for a province viewer): the viewer narrowed to that school's plans, and the school to name in
  the banner 省级只读查看：….  A province viewer with neither lands on this page.

Nothing here computes a figure: every number is a cell of the province's roll-up.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import select

from duban import dashboard_access, rollup
from duban.db import session_scope
from duban.models import Institution, Plan
from duban.rollup.assessment import NOTHING_DUE
from duban.rollup.institutions import COLUMNS, RANKED_BY, ProvinceRollup
from duban.web import rollup_cache
from duban.web.dashboard_views import RATES_AND_LIGHTS, Cell, Table, fmt, kpi_cards
from duban.web.deps import runtime
from duban.web.signin import PRIVATE, current_viewer, refusal, to_login, viewer_page

router = APIRouter()
PAGE = "/dashboard/province"
NOT_PROVINCE = ("无权查看", "各单位汇总仅供省级主管部门的账户查看。如需了解其他单位的情况，请联系省级主管部门。", 403)
NOT_YOURS = ("无权查看", "您的账户无权查看该单位。如需查看，请联系领导小组办公室。", 403)
NO_SUCH_SCHOOL = ("没有该单位", "没有找到该单位，请从各单位汇总中选择。", 404)
# how the table may be ordered: key → (label, column, highest first)
SORTS: dict[str, tuple[str, str, bool]] = {
    "rank": ("排名", "rank", False),
    "completion_rate": ("节点完成率", "completion_rate", True),
    "red": ("红灯", "red", True),
    "overdue_tasks": ("逾期任务", "overdue_tasks", True),
    "tasks": ("任务总数", "tasks", True),
}
KPI = [("institutions", "单位", ""), ("open_tasks", "在办任务", ""), *RATES_AND_LIGHTS]


def _province(request: Request) -> dashboard_access.Viewer | None:
    """The province viewer (None: nobody signed in); any other viewer is refused."""
    viewer = current_viewer(request)
    if viewer is not None and not viewer.province:
        raise refusal(request, viewer, *NOT_PROVINCE)
    return viewer


def _rollup(request: Request) -> ProvinceRollup:
    rt = runtime(request)
    return rollup_cache.province(rollup_cache.of(request), rt, as_of=rt.today())


def sort_href(key: str) -> str:
    return PAGE + ("" if key == "rank" else "?" + urlencode({"sort": key}))


def school_href(code: str) -> str:
    return "/dashboard?" + urlencode({"institution": code})


def table(p: ProvinceRollup, sort: str) -> Table:
    """The institutions as the dashboard's table (cells formatted as every dashboard table's)."""
    _label, column, descending = SORTS[sort]
    frame = p.institutions
    if sort != "rank":
        frame = frame.sort_values([column, "institution"], ascending=[not descending, True], kind="stable", na_position="last")
    rows = []
    for rec in frame.to_dict(orient="records"):
        row = []
        for c in COLUMNS:
            cell = Cell(fmt(c, rec.get(c)))
            if c == "rank" and not cell.text:
                cell.text = NOTHING_DUE
            if c == "institution_name":
                cell.href, cell.cls = school_href(str(rec["institution"])), "t"
            elif c in ("red", "overdue_tasks") and cell.text not in ("", "0"):
                cell.cls = "late"
            row.append(cell)
        rows.append(row)
    return Table("institutions", "各单位督办情况", [rollup.header(c) for c in COLUMNS], rows)


@router.get(PAGE, response_class=HTMLResponse)
def province_page(request: Request, sort: str = "rank"):
    viewer = _province(request)
    if viewer is None:
        return to_login(request)
    sort = sort if sort in SORTS else "rank"
    p = _rollup(request)
    ctx = {
        "p": p,
        "t": table(p, sort),
        "kpis": kpi_cards(p.totals, KPI),
        "sorts": [{"key": k, "label": v[0], "href": sort_href(k)} for k, v in SORTS.items()],
        "sort": sort,
        "ranked_by": RANKED_BY,
        "section": "province",
    }
    return viewer_page(request, "dashboard_province.html", viewer, ctx)


@router.get(PAGE + ".json")
def province_json(request: Request):
    viewer = current_viewer(request)
    if viewer is None:
        return JSONResponse({"ok": False, "error": "请先登录。"}, status_code=401, headers=PRIVATE)
    if not viewer.province:
        return JSONResponse({"ok": False, "error": NOT_PROVINCE[1]}, status_code=403, headers=PRIVATE)
    data = _rollup(request).to_dict()
    data["rollup_schema"] = data.pop("schema")
    return JSONResponse({"ok": True, "schema": "duban.dashboard/1", **data}, headers=PRIVATE)


def drill_in(
    request: Request, viewer: dashboard_access.Viewer, institution: str | None, plan: str | None
) -> tuple[dashboard_access.Viewer, dict[str, Any] | None]:
    """The viewer ``/dashboard`` shows for, and the school a province viewer is looking at
    (``{"code", "name"}``, for the banner; None otherwise).

    ``institution=CODE``: a province viewer sees that school's plans (404 for no such school); a
    school's viewer only its own institution (403 for any other, whether it exists or not).
    Without it, a province viewer looking at a plan sees the school of that plan."""
    if institution is None and not (viewer.province and plan):
        return viewer, None
    with session_scope(runtime(request).engine, readonly=True) as s:
        q = select(Institution.id, Institution.code, Institution.name)
        q = q.where(Institution.code == institution) if institution is not None else q.join(Plan).where(Plan.code == plan)
        found = s.execute(q).first()
        ids = frozenset(s.scalars(select(Plan.id).where(Plan.institution_id == found.id))) if found is not None else frozenset()
    if not viewer.province:
        if found is None or found.id != viewer.institution_id:
            raise refusal(request, viewer, *NOT_YOURS)
        return viewer, None
    if found is None:
        if institution is None:
            return viewer, None  # an unknown plan: the dashboard's own answer
        raise refusal(request, viewer, *NO_SUCH_SCHOOL)
    return dataclasses.replace(viewer, plan_ids=ids), {"code": found.code, "name": found.name, "href": school_href(found.code)}
