"""Look inside a workbook before it is read: a zip bomb or XML with entity declarations (XXE,
"billion laughs") is refused with one message, and formula cells that carry no computed value are
found (the reader would see them as empty).

An .xlsx/.xlsm/.ods file is a ZIP of XML parts. Every part is decompressed here as a stream, at
most ``MAX_PART`` bytes each and ``MAX_TOTAL`` in all (the sizes a ZIP declares can lie), and a part
that expands more than ``MAX_RATIO`` times is refused. Office programs never write a DOCTYPE, so
any part with one is refused before an XML parser sees it.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from definitions.problems import PlanProblems, Problem

MAX_PART = 200 * 1024 * 1024  # bytes of one decompressed part (a 30,000-task sheet is about 30 MB)
MAX_TOTAL = 400 * 1024 * 1024  # bytes of all parts together
MAX_RATIO = 200  # decompressed ÷ compressed, for parts over RATIO_FROM bytes (office XML: about 5–20)
RATIO_FROM = 1024 * 1024
_CHUNK = 1024 * 1024
# <!DOCTYPE or <!ENTITY, in UTF-8 or UTF-16 (comments <!-- and CDATA <![ are not declarations)
_DECLARATION = re.compile(rb"<\x00?!\x00?[DE]", re.IGNORECASE)
_FORMULA = re.compile(rb"<(?:\w+:)?f[ >/]")
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_PACKAGE_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"


@dataclass
class WorkbookParts:
    """What the look inside found: formula cells without a value, per sheet name, as (row, column)
    0-based, and the worksheet parts that hold formulas."""

    empty_formulas: dict[str, set[tuple[int, int]]] = field(default_factory=dict)
    formula_parts: set[str] = field(default_factory=set)


def _refuse(path: Path, message: str) -> PlanProblems:
    return PlanProblems(path.name, [Problem(path.name, message)])


def inspect_workbook(path: Path) -> WorkbookParts:
    """Check a ZIP-based workbook part by part; raise ``PlanProblems`` on a bomb or a DOCTYPE."""
    found = WorkbookParts()
    if not zipfile.is_zipfile(path):
        return found  # .xls (OLE) or not a workbook at all: the reader says so
    try:
        with zipfile.ZipFile(path) as zf:
            total = 0
            for info in zf.infolist():
                total += _check_part(path, zf, info, found, budget=MAX_TOTAL - total)
            if found.formula_parts:
                found.empty_formulas = _empty_formulas(zf, found.formula_parts)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError, zlib.error) as err:
        raise _refuse(path, f"无法读取 Excel 文件（{err}）：请确认文件未损坏、未加密，并另存为 .xlsx 后重试") from None
    return found


def _check_part(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, found: WorkbookParts, *, budget: int) -> int:
    """Stream one part: its decompressed size (bounded), a DOCTYPE refused, formulas noted."""
    bomb = "文件解压后过大（疑似“压缩炸弹”），出于安全考虑不予读取：请确认文件来源，或在 Excel 中另存为新的 .xlsx 后重试"
    if info.file_size > RATIO_FROM and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise _refuse(path, bomb)
    size, tail, xml = 0, b"", info.filename.lower().endswith((".xml", ".rels", ".vml"))
    with zf.open(info) as part:
        while chunk := part.read(_CHUNK):
            size += len(chunk)
            if size > min(MAX_PART, budget) or (size > RATIO_FROM and size > MAX_RATIO * max(info.compress_size, 1)):
                raise _refuse(path, bomb)
            if xml:
                window = tail + chunk
                if _DECLARATION.search(window):
                    raise _refuse(
                        path,
                        f"文件中的“{info.filename}”含有 DOCTYPE 或实体声明（Excel 不会写入这类内容，可能被用来读取服务器上的文件），"
                        "出于安全考虑不予读取：请在 Excel 中打开后另存为新的 .xlsx 再导入",
                    )
                if info.filename.startswith("xl/worksheets/") and _FORMULA.search(window):
                    found.formula_parts.add(info.filename)
                tail = window[-16:]
    return size


def _sheet_parts(zf: zipfile.ZipFile) -> dict[str, str]:
    """Worksheet part name -> sheet name, from xl/workbook.xml and its relationships."""
    try:
        # every part was checked for declarations (no DOCTYPE, no entities) before any is parsed
        book = ElementTree.fromstring(zf.read("xl/workbook.xml"))  # noqa: S314
        rels = ElementTree.fromstring(zf.read("xl/_rels/workbook.xml.rels"))  # noqa: S314
    except (KeyError, ElementTree.ParseError):
        return {}
    targets = {}
    for rel in rels.iter(_PACKAGE_REL):
        target = rel.get("Target", "")
        targets[rel.get("Id")] = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
    return {targets[s.get(_REL)]: s.get("name", "") for s in book.iter(f"{_MAIN}sheet") if s.get(_REL) in targets}


def _empty_formulas(zf: zipfile.ZipFile, parts: set[str]) -> dict[str, set[tuple[int, int]]]:
    names = _sheet_parts(zf)
    out: dict[str, set[tuple[int, int]]] = {}
    for part in sorted(parts):
        if part in names:
            with zf.open(part) as stream:
                cells = _formula_cells_without_value(stream)
            if cells:
                out[names[part]] = cells
    return out


def _column_index(ref: str) -> int:
    letters = "".join(ch for ch in ref if ch.isalpha()).upper()
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def _formula_cells_without_value(stream) -> set[tuple[int, int]]:
    """(row, column), 0-based, of cells with a formula (``<f>``) and no or an empty value (``<v>``)."""
    out: set[tuple[int, int]] = set()
    row = col = -1
    for event, el in ElementTree.iterparse(stream, events=("start", "end")):  # noqa: S314 - checked as above
        if el.tag == f"{_MAIN}row" and event == "start":
            row = int(el.get("r", row + 2)) - 1
            col = -1
        elif el.tag == f"{_MAIN}c" and event == "end":
            ref = el.get("r")
            col = _column_index(ref) if ref else col + 1
            f, v = el.find(f"{_MAIN}f"), el.find(f"{_MAIN}v")
            if f is not None and (v is None or not (v.text or "").strip()) and el.find(f"{_MAIN}is") is None:
                out.add((row, col))
            el.clear()
    return out
