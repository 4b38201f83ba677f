"""What a sheet must not hold before its rows are read: a header written twice (which column
counts?) and a formula with no computed value (it reads as empty)."""

from __future__ import annotations

from definitions.plan_sheets import SheetLocator
from definitions.problems import Problem
from definitions.spreadsheet import Sheet, norm_header


def column_label(index: int, *, csv_file: bool) -> str:
    """A 0-based column as a user finds it: Excel's letters (G), or a CSV column's number."""
    if csv_file:
        return f"第 {index + 1} 列"
    from openpyxl.utils import get_column_letter

    return f"第 {get_column_letter(index + 1)} 列"


def duplicate_headers(sheet: Sheet, header: tuple, table: dict[str, tuple[str, ...]], loc: SheetLocator) -> list[Problem]:
    """A known column name written twice in the header row: which one counts would be a guess."""
    header_row = header[0]
    aliases = {norm_header(a) for names in table.values() for a in names}
    columns: dict[str, list[int]] = {}
    for i, cell in enumerate(sheet.rows[header_row]):
        name = norm_header(cell)
        if name in aliases:
            columns.setdefault(name, []).append(i)
    out = []
    for indexes in columns.values():
        if len(indexes) > 1:
            written = str(sheet.rows[header_row][indexes[0]]).strip()
            where = "、".join(column_label(i, csv_file=loc.is_csv) for i in indexes)
            out.append(
                Problem(
                    loc._at(sheet.name, header_row + 1, None),
                    f"「{written}」列出现了 {len(indexes)} 次（{where}），无法确定以哪一列为准：请删除多余的列，或把它改为其他列名",
                )
            )
    return out


def formula_cells(sheet: Sheet, header: tuple, loc: SheetLocator) -> list[Problem]:
    """Formula cells without a computed value in the columns read (the reader sees them empty)."""
    header_row, cols, names = header
    field_of = {i: f for f, i in cols.items()}
    out = []
    for r, c in sorted(sheet.empty_formulas):
        if r > header_row and c in field_of:
            out.append(Problem(loc._at(sheet.name, r + 1, names[field_of[c]]), "单元格是公式，没有计算结果，请粘贴为数值"))
    return out
