"""Spreadsheet reading: workbooks and CSV files as sheets of cells (merged cells filled in), cell values
normalised, and header rows found by the accepted spellings of their columns."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

from definitions.problems import PlanProblems, Problem


def norm_header(value: Any) -> str:
    text = str(value or "")
    text = re.sub(r"[\s*＊]", "", text)
    return text.lower()


def match_columns(header: list[Any], table: dict[str, tuple[str, ...]]) -> tuple[dict[str, int], dict[str, str]]:
    """Map fields to column indexes by the accepted spellings.

    Exact names win over a name followed by a bracketed note (``完成时限（计划）``); among those,
    the earlier spelling in the table and then the leftmost column win.
    """
    normalized = [norm_header(h) for h in header]
    found: dict[str, int] = {}
    names: dict[str, str] = {}

    def exact(h: str, a: str) -> bool:
        return h == a

    def noted(h: str, a: str) -> bool:
        return h.startswith(a) and h[len(a) : len(a) + 1] in {"(", "（"}

    for test in (exact, noted):
        for field, aliases in table.items():
            if field in found:
                continue
            for alias in aliases:
                alias_n = norm_header(alias)
                hit = next((i for i, h in enumerate(normalized) if i not in found.values() and test(h, alias_n)), None)
                if hit is not None:
                    found[field] = hit
                    names[field] = str(header[hit]).strip()
                    break
    return found, names


def cell_value(value: Any) -> Any:
    """Normalise a cell: strip text, integral floats to digits, empty to None; dates kept."""
    if value is None:
        return None
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        if value.is_integer():
            return str(int(value))
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value
    if isinstance(value, dt.time):
        return None
    text = str(value).strip()
    return text or None


def cell_text(value: Any) -> str | None:
    v = cell_value(value)
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def deadline_cell(value: Any) -> Any:
    """Real dates and numbers go to the deadline parser as they are (it knows Excel serials and
    explains a bare year); text is stripped."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return None if value != value else value
    return cell_value(value)


class Sheet:
    def __init__(self, name: str, rows: list[list[Any]]):
        self.name = name
        self.rows = rows


def find_header(rows: list[list[Any]], table: dict[str, tuple[str, ...]], key_field: str, limit: int = 10, *, enough: int = 2):
    """The first row (within ``limit``) that names ``key_field`` and at least ``enough`` known fields."""
    for r, row in enumerate(rows[:limit]):
        found, names = match_columns(row, table)
        if key_field in found and len(found) >= enough:
            return r, found, names
    return None


def _fill_merged(rows: list[list[Any]], merged: list[tuple[tuple[int, int], tuple[int, int]]]) -> None:
    """Copy a merged cell's value into every row it spans (a system or project over many tasks).

    Merges across columns (a title row, a section heading spanning the table) are left alone:
    copying them would turn a heading into a task.
    """
    for (r0, c0), (r1, c1) in merged:
        if r0 >= len(rows) or c1 != c0:
            continue
        value = rows[r0][c0] if c0 < len(rows[r0]) else None
        for r in range(r0, min(r1, len(rows) - 1) + 1):
            for c in range(c0, c1 + 1):
                if c < len(rows[r]) and (r, c) != (r0, c0):
                    rows[r][c] = value


def read_excel_sheets(path: Path) -> list[Sheet]:
    import python_calamine

    try:
        wb = python_calamine.CalamineWorkbook.from_path(str(path))
        sheets = []
        for name in wb.sheet_names:  # a sheet's cells are read (and may be found corrupt) only here
            ws = wb.get_sheet_by_name(name)
            rows = ws.to_python(skip_empty_area=False)
            rows = [list(r) for r in rows]
            merged = ws.merged_cell_ranges or []
            _fill_merged(rows, merged)
            sheets.append(Sheet(name, rows))
        wb.close()
    except Exception as err:  # noqa: BLE001 - calamine raises its own error types
        raise PlanProblems(
            path.name, [Problem(path.name, f"无法读取 Excel 文件（{err}）：请确认文件未损坏、未加密，并另存为 .xlsx 后重试")]
        ) from None
    return sheets


def read_csv_rows(path: Path) -> list[list[Any]]:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes nearly anything
        raise PlanProblems(path.name, [Problem(path.name, "无法识别文件编码：请另存为 UTF-8 编码的 CSV")])
    return [list(r) for r in csv.reader(io.StringIO(text))]


def pick_sheet(sheets: list[Sheet], names: tuple[str, ...], table, key_field, *, enough: int = 2) -> tuple[Sheet, tuple] | None:
    by_name = {s.name.strip(): s for s in sheets}
    for n in names:
        if n in by_name:
            header = find_header(by_name[n].rows, table, key_field, enough=enough)
            if header:
                return by_name[n], header
    return None
