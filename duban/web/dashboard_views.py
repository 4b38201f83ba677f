"""What the dashboard shows: the frames of :func:`duban.rollup.compute`, filtered for a drill-down
and for the viewer's role, as tables, headline figures and SVG charts.

No number is computed here: every figure is a cell of a roll-up frame (the same frames the HTML
report, the workbook and ``duban status --json`` agree with); this module only selects rows and
columns, formats them, and draws them.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pandas as pd

from duban import rollup
from duban.dashboard_access import Viewer
from duban.rollup.assessment import NOTHING_DUE, explanation, rates
from duban.rollup.compute import compute
from duban.values import jsonable
from duban.vocabulary import AccountRole, LinkAction, MilestoneState
from duban.web import rollup_cache
from duban.web.dashboard_tasks import task_href
from duban.web.rollup_cache import RollupCache

GROUP_COLUMNS = ["tasks", "done_tasks", "completion_rate", "on_time_rate", "red", "yellow", "green", "overdue_tasks", "due_soon_tasks"]
VIEW_COLUMNS: dict[str, list[str]] = {
    "by_plan": ["plan_name", *GROUP_COLUMNS],
    "by_system": ["system", *GROUP_COLUMNS],
    "by_project": ["system", "project", *GROUP_COLUMNS],
    "by_department": ["department", *GROUP_COLUMNS],
    "by_supervisor": ["supervisor", *GROUP_COLUMNS],
    "tasks": ["code", "title", "department", "owner", "status", "colour"],
    "overdue": ["code", "title", "milestone", "owner", "department", "due", "days_late", "level_label"],
    "due_soon": ["code", "title", "milestone", "owner", "department", "due", "days_left", "colour_label"],
    "awaiting_approval": ["kind", "code", "title", "milestone", "department", "requester", "submitted_on", "waiting_days", "new_due"],
    "extensions": ["code", "title", "milestone", "owner", "department", "baseline", "due", "slipped_days", "extensions", "reason"],
    "assessment": ["rank", "change", "department", "tasks", "on_time_rate", "avg_late_days", "escalations", "returns", "score"],
}
log = logging.getLogger("duban.web.dashboard")
RED_CARDS = 10  # overdue items shown as cards above the figures (all of them in the 逾期事项 table)
ITEM_VIEWS = ("tasks", "overdue", "due_soon", "extensions")  # lists of tasks with their owners
TASK_LINKED = frozenset((*ITEM_VIEWS, "awaiting_approval"))  # their codes and titles open the task page
FILTER_LABELS = {"system": "育人体系", "department": "牵头单位", "supervisor": "分管校领导"}
DRILL = {"system": "system", "department": "department", "supervisor": "supervisor"}  # column -> filter
COLOUR_CLASS = {"red": "red", "yellow": "yellow", "green": "green"}
# the figures a school's dashboard and the province's page both show: (key, label, class)
RATES_AND_LIGHTS = [
    ("completion_rate", "节点完成率", ""),
    ("on_time_rate", "按期完成率", ""),
    ("red", "红灯", "red"),
    ("yellow", "黄灯", "yellow"),
    ("green", "绿灯", "green"),
    ("overdue_tasks", "逾期任务", "red"),
]
KPI = [
    ("open_tasks", "在办任务", ""),
    ("done_tasks", "已办结任务", ""),
    *RATES_AND_LIGHTS,
    ("due_soon_tasks", "两周内到期", "yellow"),
    ("awaiting_approval", "待审核事项", ""),
    ("extensions_granted", "批准延期", ""),
]


@dataclass
class Cell:
    text: str
    href: str | None = None
    cls: str = ""


@dataclass
class Table:
    key: str
    title: str
    headers: list[str]
    rows: list[list[Cell]]
    long: bool = False  # folded (<details>) when long
    note: str = ""


@dataclass
class Dashboard:
    title: str
    as_of: str
    plan_code: str | None
    filters: dict[str, str]
    filter_text: str
    clear_href: str
    kpis: list[dict[str, Any]]
    tables: dict[str, Table]
    charts: dict[str, Any]
    frames: dict[str, pd.DataFrame]
    totals: dict[str, Any]
    red: list[dict[str, str]] = field(default_factory=list)  # overdue items, most serious first (cards at the top)
    red_total: int = 0
    queue_href: str | None = None
    warnings: list[str] = field(default_factory=list)
    notice: str = ""
    assessment_notes: list[str] = field(default_factory=list)  # how the score is made, what the rank change compares with


# -- formatting ------------------------------------------------------------------------------------


def _missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def fmt(name: str, v: Any) -> str:
    if _missing(v):
        return NOTHING_DUE if name == "score" else "—" if name in rollup.RATE_COLUMNS else ""
    if name in rollup.RATE_COLUMNS:
        return rollup.pct(float(v))
    if isinstance(v, (dt.date, pd.Timestamp)):
        return v.isoformat()[:10]
    if name == "status":
        return MilestoneState.label_of(str(v))
    if name == "colour":
        return rollup.COLOUR_LABELS.get(v, "")
    if isinstance(v, float):
        return f"{v:.1f}"
    if hasattr(v, "item"):
        v = v.item()
    return str(v)


def _href(plan: str | None, key: str, value: str) -> str:
    q = {"plan": plan} if plan else {}
    q[key] = value
    return "/dashboard?" + urlencode(q)


def table(key: str, title: str, frame: pd.DataFrame, *, provincial: bool, drill: bool = True, note: str = "") -> Table:
    cols = [c for c in VIEW_COLUMNS[key] if c in frame.columns]
    if provincial and "plan" in frame.columns and key != "by_plan":
        cols = ["plan", *cols]
    rows: list[list[Cell]] = []
    for rec in frame.to_dict(orient="records"):
        row = []
        for c in cols:
            cell = Cell(fmt(c, rec.get(c)))
            if drill and c in DRILL and key != "tasks" and cell.text and cell.text != rollup.UNSPECIFIED:
                cell.href = _href(rec.get("plan"), DRILL[c], cell.text)
            if c in ("code", "title") and key in TASK_LINKED and rec.get("plan") and rec.get("code"):
                cell.href = task_href(str(rec["plan"]), str(rec["code"]))  # the task page
            if key == "by_plan" and c == "plan_name":
                cell.href = "/dashboard?" + urlencode({"plan": rec.get("plan")})
            if c == "colour":
                cell.cls = "rag " + COLOUR_CLASS.get(rec.get(c) or "", "")
            elif c == "colour_label":
                cell.cls = "rag " + {"红灯": "red", "黄灯": "yellow", "绿灯": "green"}.get(cell.text, "")
            elif c in ("red",) and cell.text not in ("", "0"):
                cell.cls = "late"
            elif c in ("title", "milestone", "project", "system", "department", "supervisor", "plan_name", "requester", "owner", "reason"):
                cell.cls = "t"
            row.append(cell)
        rows.append(row)
    return Table(key, title, [rollup.header(c) for c in cols], rows, long=len(rows) > 12, note=note)


# -- building ----------------------------------------------------------------------------------------


def _task_keys(tasks: pd.DataFrame, filters: dict[str, str]) -> pd.DataFrame:
    """(plan, code) of the tasks a drill-down keeps."""
    keep = tasks
    for key, value in filters.items():
        keep = keep[keep[key].astype(str) == value]
    return keep[["plan", "code"]].drop_duplicates()


def _only(frame: pd.DataFrame, keys: pd.DataFrame | None) -> pd.DataFrame:
    if keys is None or frame.empty:
        return frame
    return frame.merge(keys, on=["plan", "code"], how="inner")


def _group_totals(r: rollup.Rollup, filters: dict[str, str]) -> dict[str, Any]:
    """The headline figures of a drill-down: the group's row(s) of the roll-up."""
    key, value = next(iter(filters.items()))  # the first filter names the group (a second only narrows the lists)
    frame = {"system": r.by_system, "department": r.by_department, "supervisor": r.by_supervisor}[key]
    part = frame[frame[key].astype(str) == value]
    if len(part) == 1:
        return dict(part.iloc[0])
    summed = pd.DataFrame([{c: int(part[c].sum()) for c in rollup.COUNT_COLUMNS}])
    rates(summed)  # the roll-up's own rate definition (several plans)
    return dict(summed.iloc[0])


def build(
    rt, viewer: Viewer, *, plan_code: str | None, filters: dict[str, str], today: dt.date, rollups: RollupCache | None = None
) -> Dashboard:
    """The dashboard of ``viewer`` (``rollups``: the app's kept roll-ups, :mod:`duban.web.rollup_cache`)."""
    # the viewer's plans only: "every plan" is every plan the viewer may see (their institution's)
    if rollups is None:
        r = compute(rt.engine, as_of=today, plan_code=plan_code, tz=rt.tz, cal=rt.calendar, plan_ids=viewer.plan_ids)
    else:
        r = rollup_cache.rollup(rollups, rt, as_of=today, plan_code=plan_code, plan_ids=viewer.plan_ids)
    provincial = plan_code is None
    totals, frames = _figures(r, viewer, filters)
    tables = _tables(rt, r, viewer, frames, provincial=provincial)
    kpis = kpi_cards(totals, KPI)
    charts = _charts(r, frames, totals, filters)
    filter_text = "、".join(f"{FILTER_LABELS[k]}「{v}」" for k, v in filters.items())
    overdue = frames.get("overdue")
    from duban.report import red_items

    return Dashboard(
        title=r.title,
        as_of=r.as_of.isoformat(),
        plan_code=plan_code,
        filters=filters,
        filter_text=filter_text,
        clear_href="/dashboard" + (f"?{urlencode({'plan': plan_code})}" if plan_code else ""),
        kpis=kpis,
        tables=tables,
        charts=charts,
        frames=frames,
        totals=totals,
        red=red_items(overdue, RED_CARDS) if overdue is not None else [],
        red_total=len(overdue) if overdue is not None else 0,
        queue_href=_queue_href(rt, viewer, r) if viewer.sees_approvals and len(r.awaiting_approval) else None,
        warnings=list(r.warnings),
        assessment_notes=_assessment_notes(r),
    )


def _figures(r: rollup.Rollup, viewer: Viewer, filters: dict[str, str]) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """The totals and the frames the dashboard shows: the whole roll-up, or the tasks ``filters``
    pick; item lists only for viewers who see items, approvals only for those who approve."""
    keys = _task_keys(r.tasks, filters) if filters else None
    frames: dict[str, pd.DataFrame] = {}
    if filters:
        totals = _group_totals(r, filters)
        totals["open_tasks"] = int(totals["tasks"]) - int(totals["done_tasks"])
        totals["awaiting_approval"] = len(_only(r.awaiting_approval, keys))
        totals["extensions_granted"] = int(_only(r.extensions, keys)["extensions"].sum()) if len(r.extensions) else 0
        if "system" in filters:
            frames["by_project"] = r.by_project[r.by_project["system"].astype(str) == filters["system"]]
        frames["assessment"] = r.assessment.merge(_only(r.tasks, keys)[["plan", "department"]].drop_duplicates(), on=["plan", "department"])
        frames["tasks"] = _only(r.tasks, keys)
    else:
        totals = dict(r.totals)
        frames["by_plan"] = r.by_plan
        frames["by_system"] = r.by_system
        frames["by_project"] = r.by_project
        frames["by_department"] = r.by_department
        frames["by_supervisor"] = r.by_supervisor
        frames["assessment"] = r.assessment
    frames["trend"] = r.trend
    if viewer.sees_items:
        frames["overdue"] = _only(r.overdue, keys)
        frames["due_soon"] = _only(r.due_soon, keys)
        frames["extensions"] = _only(r.extensions, keys)
    else:
        frames.pop("tasks", None)
    if viewer.sees_approvals:
        frames["awaiting_approval"] = _only(r.awaiting_approval, keys)
    return totals, frames


def _tables(rt, r: rollup.Rollup, viewer: Viewer, frames: dict[str, pd.DataFrame], *, provincial: bool) -> dict[str, Table]:
    """The page's tables of ``frames`` (by plan only across plans), and 通知发送异常 for the office."""
    titles = {k: t for k, t, _ in r.views()}
    titles["tasks"] = "任务清单"
    titles["due_soon"] = f"两周内到期（{r.due_soon_days} 天）"
    tables = {}
    for key, frame in frames.items():
        if key in VIEW_COLUMNS and not (key == "by_plan" and not provincial):
            tables[key] = table(key, titles.get(key, key), frame, provincial=provincial)
    if viewer.kind == "account" and viewer.role == AccountRole.OFFICE:
        tables["delivery_problems"] = _problems_table(rt, [int(x) for x in r.plans["plan_id"]])
    return tables


def kpi_cards(totals: dict[str, Any], kpi: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """The figures above the tables: one card per ``(key, label, class)`` of ``kpi`` that ``totals`` has."""
    return [{"label": label, "value": fmt(k, totals.get(k)), "cls": cls} for k, label, cls in kpi if k in totals]


def _assessment_notes(r: rollup.Rollup) -> list[str]:
    from duban.report import comparisons, shown_policy

    return [*explanation(shown_policy(r)), comparisons(r)]


PROBLEM_ROWS = 100  # messages listed under 通知发送异常 (all of them: duban outbox --failed)


def _problems_table(rt, plan_ids: list[int]) -> Table:
    """The office's list of messages that did not go out: failed (with the reason and the next
    retry) or interrupted while being sent (sent again by the next delivery run)."""
    from duban.models import utcnow
    from duban.sweep.rows import delivery_problems

    problems = delivery_problems(
        rt.engine, now=utcnow(), lease_seconds=rt.settings.deliver_lease, plan_ids=plan_ids, tz=rt.tz, limit=PROBLEM_ROWS
    )
    rows = [
        [Cell(p.recipient, cls="t"), Cell(p.run_on.isoformat()), Cell(p.state, cls="late")]
        + [Cell(str(p.attempts)), Cell(p.reason, cls="t"), Cell(p.next_text)]
        for p in problems
    ]
    note = f"仅列出最近 {PROBLEM_ROWS} 份，全部可用 duban outbox --failed 查看。" if len(problems) == PROBLEM_ROWS else ""
    headers = ["收件人", "日期", "状态", "尝试次数", "原因", "下次重试"]
    return Table("delivery_problems", "通知发送异常", headers, rows, long=len(rows) > 12, note=note)


def _charts(r: rollup.Rollup, frames: dict[str, pd.DataFrame], totals: dict[str, Any], filters: dict[str, str]) -> dict[str, Any]:
    """The report's own SVG charts (:mod:`duban.report`), for what the page shows."""
    from markupsafe import Markup

    from duban import report

    def rate(v):
        return None if _missing(v) else float(v)

    lights = report.RAG_COLOURS  # red, yellow, green, no_light
    if "system" in filters:
        groups, name, what = frames["by_project"], "project", "各重点项目"
    elif filters:
        groups, name, what = pd.DataFrame([{**totals, "label": "、".join(filters.values())}]), "label", ""
    elif r.plan_code is None and len(r.plans) > 1:
        groups, name, what = r.by_plan, "plan_name", "各方案"
    else:
        groups, name, what = r.by_system, "system", "各育人体系"
    charts: dict[str, Any] = {
        "lights": report.chart_rag(
            f"{what}任务状态灯", [(str(row[name]), {k: int(row.get(k, 0)) for k in lights}) for row in groups.to_dict(orient="records")]
        ),
        "trend": report.chart_trend("趋势（每日汇总，最后一点为今日实时数据）", r.trend),
    }
    if what:
        charts["rates"] = report.chart_rates(
            f"{what}完成情况",
            [(str(row[name]), rate(row["completion_rate"]), rate(row["on_time_rate"])) for row in groups.to_dict(orient="records")],
        )
    a = frames.get("assessment")
    a = a[a["score"].notna()] if a is not None else None
    if a is not None and len(a):
        multi = a["plan"].nunique() > 1
        charts["assessment"] = report.chart_scores(
            "单位考核得分",
            [
                ((f"{row['department']}（{row['plan']}）" if multi else str(row["department"])), float(row["score"]))
                for row in a.to_dict(orient="records")
            ],
        )
    return {k: Markup(v) for k, v in charts.items() if v}  # noqa: S704  SVG built by duban.report, every text in it escaped


def _queue_href(rt, viewer: Viewer, r: rollup.Rollup) -> str | None:
    """An office account tied to a reviewer of the plan opens the existing review queue (its own
    signed queue link, issued once and reused). Looked up read-only; only a new link is written
    (once a day at most), and when the store is busy the page goes without it rather than wait."""
    if viewer.person_id is None:
        return None
    from sqlalchemy import select

    from duban.db import is_transient, session_scope
    from duban.link_tokens import link_token
    from duban.links import LinkSpec, issue, reviewers
    from duban.models import Link, Person

    today = rt.today()
    expires = today + dt.timedelta(days=rt.settings.link_days_after_due)
    with session_scope(rt.engine, readonly=True) as s:
        person = s.get(Person, viewer.person_id)
        if person is None or person.plan_id not in {int(x) for x in r.plans["plan_id"]} or not viewer.may_act(person.plan_id):
            return None
        if person.id not in reviewers(s, person.plan_id):
            return None
        spec = LinkSpec(person.plan_id, person.id, LinkAction.QUEUE, None, None, expires)
        found = s.execute(
            select(Link.id, Link.expires_on)
            .where(Link.person_id == person.id, Link.action == LinkAction.QUEUE, Link.task_id.is_(None))
            .where(Link.used_at.is_(None), Link.void_at.is_(None), Link.expires_on >= expires)
            .order_by(Link.expires_on.desc())
            .limit(1)
        ).first()
    if found is None:
        try:
            with session_scope(rt.engine, wait=2.0) as s:
                [lid] = issue(s, [spec], secret=rt.settings.secret_key, today=today)
                found = s.execute(select(Link.id, Link.expires_on).where(Link.id == lid)).one()
        except Exception as err:
            if not is_transient(err):
                raise
            log.info("review queue link not issued (the store is busy): %s", err.__class__.__name__)
            return None
    return f"/l/{link_token(rt.settings.secret_key, found.id, LinkAction.QUEUE, found.expires_on)}"


def as_json(d: Dashboard, viewer: Viewer) -> dict[str, Any]:
    """The same numbers as the page, JSON-ready (``schema: duban.dashboard/1``)."""
    return {
        "ok": True,
        "schema": "duban.dashboard/1",
        "rollup_schema": rollup.SCHEMA,
        "as_of": d.as_of,
        "plan": d.plan_code,
        "role": viewer.role if viewer.kind == "account" else "link",
        "filters": d.filters,
        "totals": jsonable(d.totals),
        "views": {k: rollup.records(f) for k, f in d.frames.items()},
    }
