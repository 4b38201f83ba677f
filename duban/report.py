"""The roll-up as documents: a self-contained HTML report and an Excel workbook.

``write_report(rollup, out_dir) -> ReportFiles`` writes both; ``render_html(rollup)`` and
``duban.report_xlsx.write_workbook(rollup, path)`` do one each.  The HTML has no external resource
at all: inline CSS, charts as inline SVG (:mod:`duban.report_charts`; no JavaScript, no CDN), a
font list that finds a CJK system font on Linux, Windows and macOS, and print styles.  It is read
on a phone first: the red items (overdue, 督办) come first as cards, the tables become stacked
rows below 1024 px (CSS only), the charts keep their text at 12 px or more.

Numbers are the roll-up's own (``duban.rollup``): the report only formats them.  Long lists are
cut in the HTML (the first :data:`HTML_ROWS` rows, with a note) and complete in the workbook.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from duban.files import write_private_text
from duban.report_charts import COLOUR_WORDS, RAG_COLOURS, RAG_LABELS, chart_rag, chart_rates, chart_scores, chart_trend
from duban.rollup import LIST_COLUMNS, RATE_COLUMNS, Rollup, header, pct
from duban.rollup.assessment import NOTHING_DUE, explanation
from duban.rules.policy import AssessmentPolicy, assessment_policy
from duban.vocabulary import Light, MilestoneState

__all__ = ["RAG_COLOURS", "RAG_LABELS", "chart_rag", "chart_rates", "chart_scores", "chart_trend", "render_html", "write_report"]

TEMPLATES = Path(__file__).resolve().parent / "report_templates"
HTML_ROWS = 300  # rows of one table in the HTML report (the workbook has them all)
RED_CARDS = 20  # overdue items shown as cards at the top of the report
FONT_STACK = (
    '"Noto Sans CJK SC", "Source Han Sans SC", "Noto Sans SC", "Microsoft YaHei", "PingFang SC", '
    '"Hiragino Sans GB", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", sans-serif'
)

# the columns each view shows, in order (the frames carry more: the dashboard may use them)
GROUP_COLUMNS = [
    "tasks",
    "done_tasks",
    "overdue_tasks",
    "due_soon_tasks",
    "red",
    "yellow",
    "green",
    "milestones",
    "done_milestones",
    "due_milestones",
    "on_time_milestones",
    "completion_rate",
    "on_time_rate",
    "on_time_baseline_rate",
]
VIEW_COLUMNS: dict[str, list[str]] = {
    "by_plan": ["plan", "plan_name", *GROUP_COLUMNS],
    "by_system": ["plan", "system_code", "system", *GROUP_COLUMNS],
    "by_project": ["plan", "system", "project_code", "project", *GROUP_COLUMNS],
    "by_department": ["plan", "department", *GROUP_COLUMNS],
    "by_supervisor": ["plan", "supervisor", *GROUP_COLUMNS],
    "assessment": [
        "rank",
        "change",
        "plan",
        "department",
        "tasks",
        "due_milestones",
        "on_time_milestones",
        "on_time_rate",
        "p_on_time",
        "late_days",
        "avg_late_days",
        "p_overdue",
        "escalations",
        "escalations_per_task",
        "p_escalations",
        "completion_requests",
        "returns",
        "return_rate",
        "p_returns",
        "score",
    ],
    "overdue": ["plan", "code", "title", "milestone", "owner", "department", "supervisor", "due", "baseline", "days_late", "level_label"],
    "due_soon": LIST_COLUMNS["due_soon"],
    "awaiting_approval": LIST_COLUMNS["awaiting_approval"],
    "extensions": LIST_COLUMNS["extensions"],
    "trend": [
        "day",
        "tasks",
        "done_tasks",
        "overdue_tasks",
        "red",
        "yellow",
        "green",
        "milestones",
        "done_milestones",
        "due_milestones",
        "on_time_milestones",
        "completion_rate",
        "on_time_rate",
    ],
    "tasks": [
        "plan",
        "code",
        "title",
        "system",
        "project",
        "department",
        "owner",
        "supervisor",
        "status",
        "colour",
        "milestones",
        "done_milestones",
        "due_milestones",
        "on_time_milestones",
        "overdue_milestones",
        "late_days",
        "escalations",
        "returns",
        "deadline",
        "current_milestone",
        "latest_progress",
        "acknowledged_at",
    ],
}
DECIMAL_COLUMNS = {"avg_late_days", "escalations_per_task", "p_on_time", "p_overdue", "p_escalations", "p_returns", "score"}
# the states a live task's milestones can be in (an archived one is not reported)
STATUS_LABELS: dict[str, str] = {
    state: state.label for state in (MilestoneState.ASSIGNED, MilestoneState.IN_PROGRESS, MilestoneState.SUBMITTED, MilestoneState.DONE)
}


def columns_of(r: Rollup, key: str) -> list[str]:
    """The columns shown for a view (the plan column only when several plans are rolled up)."""
    cols = VIEW_COLUMNS[key]
    if r.plan_code is not None and key != "by_plan":
        cols = [c for c in cols if c != "plan"]
    return cols


def cell_text(column: str, value: Any) -> str:
    """How the HTML report writes one value (the workbook keeps numbers as numbers)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return NOTHING_DUE if column == "score" else "—" if column in RATE_COLUMNS else ""
    if column in RATE_COLUMNS and column not in ("escalations_per_task",):
        return pct(float(value))
    if column in DECIMAL_COLUMNS:
        return f"{float(value):.1f}" if column != "escalations_per_task" else f"{float(value):.2f}"
    if column == "status":
        return STATUS_LABELS.get(value, str(value))
    if column == "colour":
        return COLOUR_WORDS.get(value, "")
    if isinstance(value, (dt.date, pd.Timestamp)):
        return value.isoformat()[:10]
    if hasattr(value, "item"):
        value = value.item()
    return str(value)


# ---------------------------------------------------------------------------------------------
# charts (inline SVG, drawn by duban.report_charts)


def charts(r: Rollup, limit: int = 30) -> list[str]:
    """The report's charts, as SVG strings."""
    out = []
    provincial = r.plan_code is None and len(r.plans) > 1
    if provincial:
        groups, label, what = r.by_plan, "plan_name", "各方案"
    else:
        groups, label, what = r.by_system, "system", "各育人体系"
    worst = groups.sort_values(["on_time_rate", "tasks"], ascending=[True, False], na_position="last").head(limit)
    note = f"（按期完成率最低的 {limit} 个）" if len(groups) > limit else ""
    out.append(chart_rag(f"{what}任务状态灯{note}", [(row[label], {k: int(row[k]) for k in RAG_COLOURS}) for _, row in worst.iterrows()]))
    depts = r.by_department.sort_values(["on_time_rate", "tasks"], ascending=[True, False], na_position="last").head(limit)
    dep_label = (lambda row: f"{row['department']}（{row['plan']}）") if provincial else (lambda row: row["department"])
    note = f"（按期完成率最低的 {limit} 个）" if len(r.by_department) > limit else ""
    out.append(
        chart_rates(
            f"各牵头单位完成情况{note}",
            [(dep_label(row), _num(row["completion_rate"]), _num(row["on_time_rate"])) for _, row in depts.iterrows()],
        )
    )
    ranked = r.assessment[r.assessment["score"].notna()]
    scores = ranked.sort_values("score", ascending=True).head(limit) if len(ranked) > limit else ranked
    note = f"（得分最低的 {limit} 个）" if len(ranked) > limit else ""
    out.append(chart_scores(f"单位考核得分{note}", [(dep_label(row), float(row["score"])) for _, row in scores.iterrows()]))
    out.append(chart_trend("趋势（每日快照）", r.trend))
    return [c for c in out if c]


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


# ---------------------------------------------------------------------------------------------
# HTML


def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined, autoescape=True, trim_blocks=True, lstrip_blocks=True
    )


def table(r: Rollup, key: str, frame: pd.DataFrame, limit: int | None = HTML_ROWS) -> dict[str, Any]:
    cols = columns_of(r, key)
    shown = frame if limit is None else frame.head(limit)
    rows = [[(c, cell_text(c, v)) for c, v in zip(cols, values, strict=True)] for values in shown[cols].itertuples(index=False, name=None)]
    return {
        "key": key,
        "columns": [(c, header(c)) for c in cols],
        "labels": {c: header(c) for c in cols},
        "rows": rows,
        "total": len(frame),
        "shown": len(shown),
        "numeric": {c for c in cols if c in RATE_COLUMNS or c in DECIMAL_COLUMNS or pd.api.types.is_numeric_dtype(frame[c]) if c in frame},
    }


def figures(r: Rollup) -> list[tuple[str, str, str, str]]:
    """The headline figures: (key, label, value, tone)."""
    t = r.totals
    return [
        ("open_tasks", "在办任务", str(t["open_tasks"]), ""),
        ("done_tasks", "已办结任务", str(t["done_tasks"]), ""),
        ("tasks", "任务总数", str(t["tasks"]), ""),
        ("completion_rate", "节点完成率", pct(t["completion_rate"]), ""),
        ("on_time_rate", "按期完成率", pct(t["on_time_rate"]), ""),
        ("red", Light.RED.label, str(t["red"]), Light.RED),
        ("yellow", Light.YELLOW.label, str(t["yellow"]), Light.YELLOW),
        ("green", Light.GREEN.label, str(t["green"]), Light.GREEN),
        ("overdue_tasks", "逾期任务", str(t["overdue_tasks"]), Light.RED),
        ("due_soon_tasks", f"{r.due_soon_days}天内到期", str(t["due_soon_tasks"]), ""),
        ("awaiting_approval", "待审核事项", str(t["awaiting_approval"]), ""),
        ("slipped_milestones", "调整过时间的节点", str(t["slipped_milestones"]), ""),
    ]


def shown_policy(r: Rollup) -> AssessmentPolicy:
    """The 考核 settings the report explains: the plans' own, or the defaults when plans differ."""
    distinct = {p.model_dump_json(): p for p in r.assessment_policies.values()}
    return next(iter(distinct.values())) if len(distinct) == 1 else assessment_policy(None)


def comparisons(r: Rollup) -> str:
    """What the 名次变化 column compares with, as one Chinese sentence."""
    if not r.compared_with:
        return "名次变化：尚未印发过督办通报，暂无比较。"
    if r.plan_code is not None or len(r.plans) == 1:
        return f"名次变化：与{next(iter(r.compared_with.values()))}相比。"
    return "名次变化：与各方案最近一期督办通报相比（" + "；".join(f"{k}：{v}" for k, v in sorted(r.compared_with.items())) + "）。"


def local_time(at: dt.datetime | None, tz: Any) -> str:
    """A moment as the institution's local time, to the minute (a naive ``at`` is taken as local)."""
    at = at or dt.datetime.now(dt.UTC)
    if at.tzinfo is not None and tz is not None:
        at = at.astimezone(tz)
    return at.strftime("%Y-%m-%d %H:%M")


def red_items(overdue: pd.DataFrame, limit: int = RED_CARDS) -> list[dict[str, str]]:
    """The overdue items (the roll-up's ``overdue``: most serious first, by the level of 督办
    reached, then days late) as the cards a leader reads first."""
    out = []
    for x in overdue.head(limit).to_dict(orient="records"):
        who = [str(x[k]) for k in ("department", "owner") if isinstance(x.get(k), str) and x[k]]
        out.append(
            {
                "code": str(x["code"]),
                "title": str(x["title"]),
                "milestone": x["milestone"] if isinstance(x.get("milestone"), str) else "",
                "who": "、".join(who),
                "due": cell_text("due", x["due"]),
                "days_late": str(int(x["days_late"])),
                "level": str(x["level_label"]),
                "plan": str(x["plan"]),
            }
        )
    return out


def render_html(r: Rollup, *, generated_at: dt.datetime | None = None, organization: str | None = None, tz: Any = None) -> str:
    tables = [(key, title, table(r, key, frame)) for key, title, frame in r.views()]
    if organization is None and len(r.plans) == 1:
        organization = str(r.plans.iloc[0]["organization"] or "")
    policy = shown_policy(r)
    return (
        environment()
        .get_template("report.html.j2")
        .render(
            r=r,
            title=r.title,
            organization=organization or "",
            as_of=r.as_of.isoformat(),
            generated_at=local_time(generated_at, tz),
            red=red_items(r.overdue),
            figures=figures(r),
            charts=charts(r),
            tables=tables,
            font_stack=FONT_STACK,
            explanation=explanation(policy),
            own_settings=len({p.model_dump_json() for p in r.assessment_policies.values()}) > 1,
            compared=comparisons(r),
            warnings=r.warnings,
            html_rows=HTML_ROWS,
        )
    )


NOTES = (
    "统计口径：",
    "任务总数：未归档的任务；在办任务：其中尚未办结的任务；已办结任务：全部节点审核通过的任务。",
    "任务状态、逾期、近期到期、待审核事项与命令 duban status 的口径一致。",
    "待审核事项：等待领导小组办公室审核的申请（办结审核、延期审批），每份申请计一件。",
    "节点完成率 = 已完成节点 ÷ 节点总数（节点即路线图、时间表中的各个步骤）。",
    "应完成节点 = 已完成的节点 + 完成时间早于统计日仍未完成的节点。",
    "按期完成率 = 按期完成节点 ÷ 应完成节点；按期指提交办结的日期不晚于当前完成时间（批准延期后按新时间计）。",
    "按原定时间完成率：同上，但按最初下达的完成时间（基准时间）计算，反映延期的影响。",
    "红灯：已逾期未完成；黄灯：临近完成时间、未按时签收、路线图前序步骤未完成或待反馈；绿灯：正常推进。",
)


@dataclass
class ReportFiles:
    html: Path
    xlsx: Path


def report_name(r: Rollup) -> str:
    """``督办汇总-<plan name>-<day>`` (the plan's name, as people know it; 全部方案 for several)."""
    name = str(r.plans.iloc[0]["plan_name"]) if r.plan_code is not None and len(r.plans) == 1 else "全部方案"
    return safe_file_name(f"督办汇总-{name}-{r.as_of.isoformat()}")


def safe_file_name(name: str) -> str:
    """A file name from people's words: no path separators or characters Windows refuses."""
    return "".join("_" if ch in '\\/:*?"<>|' or ord(ch) < 32 else ch for ch in name).strip(" .")[:150] or "督办"


def write_report(r: Rollup, out_dir: str | Path, *, generated_at: dt.datetime | None = None, tz: Any = None) -> ReportFiles:
    """Write ``<name>.html`` and ``<name>.xlsx`` into ``out_dir`` (created if needed)."""
    from duban.report_xlsx import write_workbook

    out = Path(out_dir)
    name = report_name(r)
    html = write_private_text(out / f"{name}.html", render_html(r, generated_at=generated_at, tz=tz))
    xlsx = write_workbook(r, out / f"{name}.xlsx")
    return ReportFiles(html, xlsx)
