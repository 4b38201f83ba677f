"""The roll-up as an Excel workbook, ready to print.

One formatted sheet per view, plus 说明 (headline figures and how they are counted) and 任务明细
(the office's 台账: one row per task with its 完成时限, 当前节点, 最近进展 and 签收时间).  Every
sheet prints on A4 (landscape when wide), fitted to the page width, with its header row repeated
on each page, margins, a page header and page numbers.  Column widths count a Chinese (full-width)
character as two (:func:`display_width`), so 责任人 and 分管校领导 are not cut.  Written in
openpyxl's write-only mode so that a province (≈ 100,000 milestones) stays fast.
"""

from __future__ import annotations

import math
import unicodedata
from pathlib import Path
from typing import Any

import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.properties import PageSetupProperties

from duban.files import private_file
from duban.report import DECIMAL_COLUMNS, NOTES, STATUS_LABELS, columns_of, comparisons, figures, shown_policy
from duban.report_charts import COLOUR_WORDS
from duban.rollup import RATE_COLUMNS, Rollup, header
from duban.rollup.assessment import NOTHING_DUE, explanation
from duban.values import as_text, formula_like

WIDTH_SAMPLE = 500  # rows looked at to size a column (the header counts too)
MAX_WIDTH = 48.0  # a wider text wraps
WRAP_COLUMNS = {"title", "latest_progress", "plan_name", "project", "reason", "current_milestone", "milestone"}
PORTRAIT_UP_TO = 90.0  # total width (characters) that still prints portrait
_HEAD_FONT = Font(bold=True, color="FFFFFF")
_HEAD_FILL = PatternFill("solid", fgColor="B91C1C")
_HEAD_ALIGN = Alignment(horizontal="center", vertical="center", wrap_text=True)
_HEAD_BORDER = Border(bottom=Side(style="thin", color="D1D5DB"))
_WRAP = Alignment(wrap_text=True, vertical="top")
_FORMATS = {**{c: "0.0%" for c in RATE_COLUMNS}, **{c: "0.0" for c in DECIMAL_COLUMNS}, "escalations_per_task": "0.00"}
_DATE_COLUMNS = ("due", "baseline", "day", "submitted_on", "new_due", "last_approved", "deadline")


def display_width(value: Any) -> int:
    """How many columns a value takes in a spreadsheet or a terminal: a wide or full-width
    character (汉字, full-width punctuation) counts as 2, any other as 1."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in str(value))


def column_width(column: str, values: list[Any]) -> float:
    """A column's width: its header and its widest value (of a sample), plus a margin, capped."""
    texts = [_shown(column, v) for v in values[:WIDTH_SAMPLE]]
    widest = max([display_width(header(column)), *(display_width(t) for t in texts if t)], default=0)
    return float(min(MAX_WIDTH, max(6, widest + 2)))


def _shown(column: str, value: Any) -> str:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return ""
    if column in RATE_COLUMNS:
        return "100.0%"
    if column in _DATE_COLUMNS:
        return "2026-01-01"
    return str(_value(column, value))


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


def page_setup(ws: Any, *, title: str, landscape: bool, header_rows: str | None = "1:1") -> None:
    """Print settings of a sheet: A4, the orientation, fitted to the page width (as many pages
    down as needed), the header row repeated on every page, margins, a page header and numbers."""
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.page_setup.paperSize = "9"  # A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.page_margins = PageMargins(left=0.5, right=0.5, top=0.75, bottom=0.75, header=0.3, footer=0.3)
    ws.print_options.horizontalCentered = True
    if header_rows:
        ws.print_title_rows = header_rows
    ws.oddHeader.center.text = title
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"


def write_workbook(r: Rollup, path: str | Path) -> Path:
    """One sheet per view (plus 说明 and 任务明细), formatted and ready to print."""
    path = Path(path)
    wb = Workbook(write_only=True)
    _notes_sheet(wb, r)
    for key, title, frame in r.views():
        _sheet(wb, f"{r.title} {title}", title, columns_of(r, key), frame)
    _sheet(wb, f"{r.title} 任务明细（台账）", "任务明细", columns_of(r, "tasks"), r.tasks)
    wb.save(private_file(path))
    return path


def _notes_sheet(wb: Workbook, r: Rollup) -> None:
    """说明: headline figures and how they are counted."""
    ws = wb.create_sheet("说明")
    ws.column_dimensions["A"].width = 24
    ws.column_dimensions["B"].width = 90
    page_setup(ws, title=f"{r.title} 督办汇总 说明", landscape=False, header_rows="1:1")
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
        ws.append(["", _wrapped(ws, line)])
    ws.append(["单位考核", "考核得分由以下四项加权计算："])
    for line in [*explanation(shown_policy(r)), comparisons(r), *r.warnings]:
        ws.append(["", _wrapped(ws, line)])


def _wrapped(ws: Any, text: str) -> Cell:
    cell = as_text(WriteOnlyCell(ws, value=text)) if formula_like(text) else WriteOnlyCell(ws, value=text)
    cell.alignment = _WRAP
    return cell


def _sheet(wb: Workbook, page_header: str, name: str, cols: list[str], frame: pd.DataFrame) -> None:
    """One view as a sheet: a styled header row, formatted numbers and dates, printed on A4."""
    ws = wb.create_sheet(name[:31])
    widths = [column_width(c, frame[c].tolist() if c in frame else []) for c in cols]
    page_setup(ws, title=page_header, landscape=sum(widths) > PORTRAIT_UP_TO)
    ws.freeze_panes = "A2"
    for i, w in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(i)].width = w
    cells = []
    for c in cols:
        cell = WriteOnlyCell(ws, value=header(c))
        cell.font, cell.fill, cell.alignment, cell.border = _HEAD_FONT, _HEAD_FILL, _HEAD_ALIGN, _HEAD_BORDER
        cells.append(cell)
    ws.append(cells)
    formatted = [(i, _FORMATS[c]) for i, c in enumerate(cols) if c in _FORMATS]
    formatted += [(i, "yyyy-mm-dd") for i, c in enumerate(cols) if c in _DATE_COLUMNS]
    wrapped = [i for i, (c, w) in enumerate(zip(cols, widths, strict=True)) if c in WRAP_COLUMNS and w >= MAX_WIDTH]
    for values in frame[cols].itertuples(index=False, name=None):
        row = _text_safe(ws, [_value(c, v) for c, v in zip(cols, values, strict=True)])
        for i, fmt in formatted:
            if row[i] is not None:
                row[i] = _cell(ws, row[i])
                row[i].number_format = fmt
        for i in wrapped:
            if row[i] is not None:
                row[i] = _cell(ws, row[i])
                row[i].alignment = _WRAP
        ws.append(row)
    if len(frame):
        ws.auto_filter.ref = f"A1:{get_column_letter(len(cols))}{len(frame) + 1}"


def _cell(ws: Any, value: Any) -> Cell:
    return value if isinstance(value, Cell) else WriteOnlyCell(ws, value=value)


def _text_safe(ws: Any, row: list[Any]) -> list[Any]:
    """A row whose text (task titles, names, plans: people's words) stays text: a value that a
    spreadsheet would read as a formula goes in as a cell marked as text."""
    return [as_text(WriteOnlyCell(ws, value=v)) if formula_like(v) else v for v in row]
