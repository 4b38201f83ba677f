"""The roll-up as documents: a self-contained HTML report and an Excel workbook.

``write_report(rollup, out_dir) -> ReportFiles`` writes both; ``render_html(rollup)`` and
``write_workbook(rollup, path)`` do one each.  The HTML has no external resource at all: inline
CSS, charts drawn here as inline SVG (no JavaScript, no CDN), a font list that finds a CJK system
font on Linux, Windows and macOS, and print styles.  The workbook has one formatted sheet per view
(Chinese headers, widths, frozen header row, print titles, fit to page width, percentages),
written in openpyxl's write-only mode so that a province (≈ 100,000 milestones) stays fast.

Numbers are the roll-up's own (``duban.rollup``): the report only formats them.  Long lists are
cut in the HTML (the first :data:`HTML_ROWS` rows, with a note) and complete in the workbook.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from openpyxl import Workbook
from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.properties import PageSetupProperties

from duban.files import private_file, write_private_text
from duban.rollup import LIST_COLUMNS, RATE_COLUMNS, Rollup, header, pct
from duban.rollup.assessment import NOTHING_DUE, explanation
from duban.rules.policy import AssessmentPolicy, assessment_policy
from duban.values import as_text, formula_like
from duban.vocabulary import Light, MilestoneState

TEMPLATES = Path(__file__).resolve().parent / "report_templates"
HTML_ROWS = 300  # rows of one table in the HTML report (the workbook has them all)
FONT_STACK = (
    '"Noto Sans CJK SC", "Source Han Sans SC", "Noto Sans SC", "Microsoft YaHei", "PingFang SC", '
    '"Hiragino Sans GB", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", sans-serif'
)
COLOUR_WORDS: dict[str, str] = {light: light.label for light in Light}  # 红灯 黄灯 绿灯
RAG_COLOURS: dict[str, str] = {Light.RED: "#dc2626", Light.YELLOW: "#f59e0b", Light.GREEN: "#16a34a", "no_light": "#9ca3af"}
RAG_LABELS: dict[str, str] = {**COLOUR_WORDS, "no_light": "已办结"}

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
    ],
}
TEXT_WIDTH = {
    "title": 36,
    "plan_name": 30,
    "project": 26,
    "milestone": 20,
    "plan": 18,
    "system": 12,
    "department": 16,
    "supervisor": 16,
    "owner": 12,
    "level_label": 16,
    "reason": 10,
    "kind": 10,
    "colour_label": 8,
    "requester": 12,
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


def _value(column: str, value: Any) -> Any:
    """A workbook cell value: numbers stay numbers, dates dates, missing empty."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return NOTHING_DUE if column == "score" else None
    if hasattr(value, "item"):
        value = value.item()
    if column == "status":
        return STATUS_LABELS.get(value, value)
    if column == "colour":
        return COLOUR_WORDS.get(value, "")
    if column in DECIMAL_COLUMNS:
        return round(float(value), 2)
    return value


# ---------------------------------------------------------------------------------------------
# charts (inline SVG)


def _svg_text(
    x: float, y: float, text: str, *, size: int = 12, anchor: str = "start", fill: str = "#374151", weight: str = "normal"
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
        f'font-weight="{weight}">{escape(text)}</text>'
    )


def chart_rag(title: str, rows: list[tuple[str, dict[str, int]]], *, width: int = 760) -> str:
    """Stacked horizontal bars: red / yellow / green / done per row (counts of tasks)."""
    if not rows:
        return ""
    label_w, bar_h, gap, top = 150, 18, 8, 40
    height = top + len(rows) * (bar_h + gap) + 10
    inner = width - label_w - 60
    biggest = max(sum(c.values()) for _, c in rows) or 1
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        _svg_text(0, 16, title, size=14, weight="bold", fill="#111827"),
    ]
    legend_x = label_w
    for key in ("red", "yellow", "green", "no_light"):
        parts.append(f'<rect x="{legend_x}" y="24" width="10" height="10" fill="{RAG_COLOURS[key]}"/>')
        parts.append(_svg_text(legend_x + 14, 33, RAG_LABELS[key], size=11))
        legend_x += 64
    for i, (label, counts) in enumerate(rows):
        y = top + i * (bar_h + gap)
        parts.append(_svg_text(label_w - 6, y + bar_h - 4, _clip(label, 11), anchor="end"))
        x = float(label_w)
        for key in ("red", "yellow", "green", "no_light"):
            n = counts.get(key, 0)
            if n:
                w = inner * n / biggest
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{RAG_COLOURS[key]}">'
                    f"<title>{escape(label)}：{RAG_LABELS[key]} {n} 项</title></rect>"
                )
                x += w
        parts.append(_svg_text(x + 4, y + bar_h - 4, str(sum(counts.values())), size=11, fill="#6b7280"))
    parts.append("</svg>")
    return "".join(parts)


def chart_rates(
    title: str,
    rows: list[tuple[str, float | None, float | None]],
    *,
    width: int = 760,
    names: tuple[str, str] = ("节点完成率", "按期完成率"),
) -> str:
    """Two horizontal bars per row (rates 0–1), e.g. completion and on-time rate."""
    if not rows:
        return ""
    label_w, bar_h, gap, top = 150, 9, 10, 40
    height = top + len(rows) * (2 * bar_h + gap) + 24
    inner = width - label_w - 70
    colours = ("#2563eb", "#16a34a")
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        _svg_text(0, 16, title, size=14, weight="bold", fill="#111827"),
    ]
    for k, name in enumerate(names):
        parts.append(f'<rect x="{label_w + k * 110}" y="24" width="10" height="10" fill="{colours[k]}"/>')
        parts.append(_svg_text(label_w + k * 110 + 14, 33, name, size=11))
    for tick in (0, 0.5, 1):
        x = label_w + inner * tick
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 20}" stroke="#e5e7eb"/>')
        parts.append(_svg_text(x, height - 6, f"{int(tick * 100)}%", size=10, anchor="middle", fill="#6b7280"))
    for i, (label, a, b) in enumerate(rows):
        y = top + i * (2 * bar_h + gap)
        parts.append(_svg_text(label_w - 6, y + 2 * bar_h - 3, _clip(label, 11), anchor="end"))
        for k, v in enumerate((a, b)):
            yy = y + k * bar_h
            if v is None or (isinstance(v, float) and math.isnan(v)):
                parts.append(_svg_text(label_w + 2, yy + bar_h - 1, "—", size=9, fill="#9ca3af"))
                continue
            w = max(inner * float(v), 0.5)
            parts.append(
                f'<rect x="{label_w}" y="{yy}" width="{w:.1f}" height="{bar_h - 1}" fill="{colours[k]}">'
                f"<title>{escape(label)}：{names[k]} {pct(float(v))}</title></rect>"
            )
            parts.append(_svg_text(label_w + w + 4, yy + bar_h - 1, pct(float(v)), size=9, fill="#374151"))
    parts.append("</svg>")
    return "".join(parts)


def chart_scores(title: str, rows: list[tuple[str, float]], *, width: int = 760) -> str:
    """Horizontal bars of scores 0–100, coloured by band."""
    if not rows:
        return ""
    label_w, bar_h, gap, top = 150, 14, 6, 28
    height = top + len(rows) * (bar_h + gap) + 10
    inner = width - label_w - 60
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        _svg_text(0, 16, title, size=14, weight="bold", fill="#111827"),
    ]
    for i, (label, score) in enumerate(rows):
        y = top + i * (bar_h + gap)
        colour = "#16a34a" if score >= 90 else "#f59e0b" if score >= 75 else "#dc2626"
        w = max(inner * score / 100, 0.5)
        parts.append(_svg_text(label_w - 6, y + bar_h - 2, _clip(label, 11), anchor="end"))
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}">'
            f"<title>{escape(label)}：{score:.1f} 分</title></rect>"
        )
        parts.append(_svg_text(label_w + w + 4, y + bar_h - 2, f"{score:.1f}", size=11))
    parts.append("</svg>")
    return "".join(parts)


def chart_trend(title: str, frame: pd.DataFrame, *, width: int = 760, height: int = 260) -> str:
    """Lines over days: completion and on-time rate (left axis, %), red tasks (right axis)."""
    if frame.empty:
        return ""
    left, right, top, bottom = 50, 50, 40, 36
    inner_w, inner_h = width - left - right, height - top - bottom
    days = list(frame["day"])
    n = len(days)

    def x(i: int) -> float:
        return left + (inner_w * i / (n - 1) if n > 1 else inner_w / 2)

    reds = [int(v) for v in frame["red"]]
    red_max = max(*reds, 1)
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        _svg_text(0, 16, title, size=14, weight="bold", fill="#111827"),
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1):
        y = top + inner_h * (1 - tick)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + inner_w}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(_svg_text(left - 6, y + 4, f"{int(tick * 100)}%", size=10, anchor="end", fill="#6b7280"))
        parts.append(_svg_text(left + inner_w + 6, y + 4, f"{red_max * tick:.3g}", size=10, fill="#dc2626"))
    series = [
        ("节点完成率", "#2563eb", [v for v in frame["completion_rate"]], 1.0),
        ("按期完成率", "#16a34a", [v for v in frame["on_time_rate"]], 1.0),
        ("红灯任务（右轴）", "#dc2626", reds, float(red_max)),
    ]
    for k, (name, colour, values, scale) in enumerate(series):
        parts.append(f'<rect x="{left + k * 130}" y="24" width="10" height="10" fill="{colour}"/>')
        parts.append(_svg_text(left + k * 130 + 14, 33, name, size=11))
        points = [
            (x(i), top + inner_h * (1 - float(v) / scale))
            for i, v in enumerate(values)
            if v is not None and not (isinstance(v, float) and math.isnan(v))
        ]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for px, py in points:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{colour}"/>')
    step = max(1, n // 8)
    for i in range(0, n, step):
        parts.append(_svg_text(x(i), height - 12, cell_text("day", days[i])[5:], size=10, anchor="middle", fill="#6b7280"))
    if (n - 1) % step:
        parts.append(_svg_text(x(n - 1), height - 12, cell_text("day", days[-1])[5:], size=10, anchor="middle", fill="#6b7280"))
    parts.append("</svg>")
    return "".join(parts)


def _clip(text: str, n: int) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


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
        "rows": rows,
        "total": len(frame),
        "shown": len(shown),
        "numeric": {c for c in cols if c in RATE_COLUMNS or c in DECIMAL_COLUMNS or pd.api.types.is_numeric_dtype(frame[c]) if c in frame},
    }


def figures(r: Rollup) -> list[tuple[str, str, str, str]]:
    """The headline figures: (key, label, value, tone)."""
    t = r.totals
    return [
        ("tasks", "在办任务", str(t["tasks"]), ""),
        ("done_tasks", "已办结任务", str(t["done_tasks"]), ""),
        ("completion_rate", "节点完成率", pct(t["completion_rate"]), ""),
        ("on_time_rate", "按期完成率", pct(t["on_time_rate"]), ""),
        ("red", Light.RED.label, str(t["red"]), Light.RED),
        ("yellow", Light.YELLOW.label, str(t["yellow"]), Light.YELLOW),
        ("green", Light.GREEN.label, str(t["green"]), Light.GREEN),
        ("overdue_tasks", "逾期任务", str(t["overdue_tasks"]), Light.RED),
        ("due_soon_tasks", f"{r.due_soon_days}天内到期", str(t["due_soon_tasks"]), ""),
        ("awaiting_approval", "待审核", str(t["awaiting_approval"]), ""),
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


def render_html(r: Rollup, *, generated_at: dt.datetime | None = None, organization: str | None = None) -> str:
    generated_at = generated_at or dt.datetime.now()
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
            generated_at=generated_at.strftime("%Y-%m-%d %H:%M"),
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


# ---------------------------------------------------------------------------------------------
# Excel


def _width(column: str, values: Iterable[Any]) -> float:
    if column in TEXT_WIDTH:
        return TEXT_WIDTH[column]
    head = header(column)
    return max(8.0, min(14.0, len(head) * 2.0 + 2))


_HEAD_FONT = Font(bold=True, color="FFFFFF")
_HEAD_FILL = PatternFill("solid", fgColor="B91C1C")
_HEAD_ALIGN = Alignment(horizontal="center", vertical="center", wrap_text=True)
_HEAD_BORDER = Border(bottom=Side(style="thin", color="D1D5DB"))
_FORMATS = {**{c: "0.0%" for c in RATE_COLUMNS}, **{c: "0.0" for c in DECIMAL_COLUMNS}, "escalations_per_task": "0.00"}
_DATE_COLUMNS = ("due", "baseline", "day", "submitted_on", "new_due", "last_approved")


def write_workbook(r: Rollup, path: str | Path) -> Path:
    """One sheet per view (plus 说明 and 任务明细), formatted and ready to print."""
    path = Path(path)
    wb = Workbook(write_only=True)
    _notes_sheet(wb, r)
    for key, title, frame in r.views():
        _sheet(wb, f"{r.title} {title}", title, columns_of(r, key), frame)
    _sheet(wb, f"{r.title} 任务明细", "任务明细", columns_of(r, "tasks"), r.tasks)
    wb.save(private_file(path))
    return path


def _notes_sheet(wb: Workbook, r: Rollup) -> None:
    """说明: headline figures and how they are counted."""
    ws = wb.create_sheet("说明")
    ws.column_dimensions["A"].width = 24
    ws.column_dimensions["B"].width = 90
    ws.page_setup.orientation = "portrait"
    title = as_text(WriteOnlyCell(ws, value=f"{r.title} 督办汇总（截至 {r.as_of.isoformat()}）"))
    title.font = Font(bold=True, size=14)
    ws.append([title])
    for key, label, _value_text, _tone in figures(r):
        raw = r.totals.get(key)
        cell = WriteOnlyCell(ws, value=raw if raw is not None else "—")
        if key in RATE_COLUMNS and raw is not None:
            cell.number_format = "0.0%"
        ws.append([label, cell])
    ws.append([])
    for line in NOTES:
        ws.append(["", line])
    ws.append(["单位考核", "考核得分由以下四项加权计算："])
    for line in [*explanation(shown_policy(r)), comparisons(r)]:
        ws.append(_text_safe(ws, ["", line]))


def _sheet(wb: Workbook, page_header: str, name: str, cols: list[str], frame: pd.DataFrame) -> None:
    """One view as a sheet: a styled header row, formatted numbers and dates, printed landscape on A4."""
    ws = wb.create_sheet(name[:31])
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = "9"  # A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.print_title_rows = "1:1"
    ws.freeze_panes = "A2"
    ws.oddHeader.center.text = page_header
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"
    for i, c in enumerate(cols, 1):
        ws.column_dimensions[get_column_letter(i)].width = _width(c, ())
    cells = []
    for c in cols:
        cell = WriteOnlyCell(ws, value=header(c))
        cell.font, cell.fill, cell.alignment, cell.border = _HEAD_FONT, _HEAD_FILL, _HEAD_ALIGN, _HEAD_BORDER
        cells.append(cell)
    ws.append(cells)
    formatted = [(i, _FORMATS[c]) for i, c in enumerate(cols) if c in _FORMATS]
    formatted += [(i, "yyyy-mm-dd") for i, c in enumerate(cols) if c in _DATE_COLUMNS]
    for values in frame[cols].itertuples(index=False, name=None):
        row = _text_safe(ws, [_value(c, v) for c, v in zip(cols, values, strict=True)])
        for i, fmt in formatted:
            if row[i] is not None:
                cell = row[i] if isinstance(row[i], Cell) else WriteOnlyCell(ws, value=row[i])
                cell.number_format = fmt
                row[i] = cell
        ws.append(row)
    if len(frame):
        ws.auto_filter.ref = f"A1:{get_column_letter(len(cols))}{len(frame) + 1}"


def _text_safe(ws: Any, row: list[Any]) -> list[Any]:
    """A row whose text (task titles, names, plans: people's words) stays text: a value that a
    spreadsheet would read as a formula goes in as a cell marked as text."""
    return [as_text(WriteOnlyCell(ws, value=v)) if formula_like(v) else v for v in row]


NOTES = (
    "统计口径：",
    "在办任务：未归档的任务；任务状态、逾期、近期到期与 duban status 的口径一致。",
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
    return f"督办汇总-{r.plan_code or '全部方案'}-{r.as_of.isoformat()}"


def write_report(r: Rollup, out_dir: str | Path, *, generated_at: dt.datetime | None = None) -> ReportFiles:
    """Write ``<name>.html`` and ``<name>.xlsx`` into ``out_dir`` (created if needed)."""
    out = Path(out_dir)
    name = report_name(r)
    html = write_private_text(out / f"{name}.html", render_html(r, generated_at=generated_at))
    xlsx = write_workbook(r, out / f"{name}.xlsx")
    return ReportFiles(html, xlsx)
