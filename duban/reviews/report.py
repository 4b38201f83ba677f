"""The review (督查) report: a self-contained HTML page and an XLSX workbook, in Chinese.

What the leading group reads after a 督查: the scope and what was asked, the figures (tasks,
answered, late, verdicts), every task's answer (已完成工作, 佐证材料, 存在问题, 下一步计划) with its
verdict, the non-responders and the 督办 sent about them, and the follow-ups (整改) opened.
Pure rendering of :func:`duban.reviews.report_data`; the files go under
``<data dir>/reports/reviews/<id>/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill

from duban.files import private_file, write_private_text
from duban.report import FONT_STACK, environment
from duban.values import cells_as_text

ITEM_COLUMNS = [
    ("code", "任务编号", 10),
    ("title", "任务", 36),
    ("system", "育人体系", 12),
    ("department", "牵头单位", 16),
    ("owner", "责任人", 14),
    ("answered_at", "填报时间", 17),
    ("late", "逾期填报", 9),
    ("done", "已完成工作", 40),
    ("evidence", "佐证材料", 36),
    ("problems", "存在问题", 30),
    ("next_steps", "下一步计划", 30),
    ("verdict", "评定结果", 10),
    ("verdict_note", "评定意见", 30),
]
NON_RESPONDER_COLUMNS = [("code", "任务编号", 10), ("title", "任务", 40), ("department", "牵头单位", 16), ("owner", "责任人", 14)]
FOLLOW_UP_COLUMNS = [
    ("code", "任务编号", 10),
    ("title", "任务", 36),
    ("milestone", "整改事项", 36),
    ("owner", "整改责任人", 14),
    ("due", "整改完成时间", 13),
    ("note", "评定意见", 36),
]
ESCALATION_COLUMNS = [
    ("on", "日期", 12),
    ("code", "任务编号", 10),
    ("owner", "未填报责任人", 16),
    ("level", "督办层级", 16),
    ("to", "督办对象", 16),
]


@dataclass
class ReviewFiles:
    html: Path
    xlsx: Path


def report_name(data: dict[str, Any]) -> str:
    return f"督查报告-{data['id']}"


def _cell(key: str, value: Any) -> str:
    if key == "late":
        return "是" if value else ""
    if key == "evidence":
        return "\n".join(value)
    if key == "answered_at" and not value:
        return "未填报"
    return "" if value is None else str(value)


def render_html(data: dict[str, Any]) -> str:
    return environment().get_template("review_report.html.j2").render(d=data, font_stack=FONT_STACK)


def write_workbook(data: dict[str, Any], path: Path) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = "概况"
    c = data["counts"]
    rows = [
        ("督查名称", data["title"]),
        ("方案", data["plan"]),
        ("督查范围", data["scope"]),
        ("督查要求", data["ask"]),
        ("发起日期", data["started_on"]),
        ("填报截止", data["reply_by"]),
        ("发起人", data["started_by"]),
        ("督查任务数", c["items"]),
        ("已填报", c["answered"]),
        ("逾期填报", c["late"]),
        ("未填报", c["items"] - c["answered"]),
    ]
    rows += [(f"评定为“{k}”", v) for k, v in c["verdicts"].items()]
    rows += [("整改事项", len(data["follow_ups"])), ("生成时间", data["generated_at"])]
    bold = Font(bold=True)
    for r in rows:
        ws.append(list(r))
        ws.cell(ws.max_row, 1).font = bold
    ws.column_dimensions["A"].width, ws.column_dimensions["B"].width = 14, 60
    _sheet(wb, "填报与评定", ITEM_COLUMNS, data["items"])
    _sheet(wb, "未填报", NON_RESPONDER_COLUMNS, data["non_responders"])
    _sheet(wb, "整改事项", FOLLOW_UP_COLUMNS, data["follow_ups"])
    _sheet(wb, "督办记录", ESCALATION_COLUMNS, data["escalations"])
    for sheet in wb.worksheets:  # answers, titles and names are people's text, never formulas
        cells_as_text(sheet.iter_rows())
    wb.save(private_file(path))
    return path


def _sheet(wb: Workbook, title: str, columns: list[tuple[str, str, int]], rows: list[dict[str, Any]]) -> None:
    ws = wb.create_sheet(title)
    ws.append([h for _, h, _ in columns])
    fill = PatternFill("solid", fgColor="DDE7F5")
    for i, (_, _, width) in enumerate(columns, start=1):
        cell = ws.cell(1, i)
        cell.font, cell.fill = Font(bold=True), fill
        ws.column_dimensions[cell.column_letter].width = width
    wrap = Alignment(wrap_text=True, vertical="top")
    for row in rows:
        ws.append([_cell(k, row.get(k)) for k, _, _ in columns])
        for cell in ws[ws.max_row]:
            cell.alignment = wrap
    ws.freeze_panes = "A2"


def write_report(data: dict[str, Any], out_dir: Path) -> ReviewFiles:
    out = Path(out_dir)
    name = report_name(data)
    html = write_private_text(out / f"{name}.html", render_html(data))
    return ReviewFiles(html, write_workbook(data, out / f"{name}.xlsx"))
