"""The plan importers (definitions/loaders.py ``load_plan``) on random files: workbooks built with
openpyxl (the real headers, cells of the wrong type, huge cells, formulas), YAML and CSV built
from the small plan with a field changed, random text, and broken files.  Each answers a valid
plan or ``PlanProblems`` whose every problem is a Chinese message naming where it is — never a
traceback, never a long wait."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import re
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from definitions.loaders import load_plan
from definitions.plan_sheets import TASK_COLUMNS
from definitions.problems import PlanProblems
from definitions.schema import PlanDefinition
from tests.factories import small_plan, write_xlsx
from tests.fuzz.counts import COUNTS, fuzz

CJK = re.compile(r"[\u4e00-\u9fff]")
HEADERS = [names[0] for names in TASK_COLUMNS.values()]
SMALL_ROW = {
    "序号": "1",
    "育人体系": "课程育人",
    "重点项目": "集体备课",
    "具体任务": "组织集体备课",
    "牵头单位": "教务处",
    "责任人": "教务处处长",
}
SMALL_ROW |= {"完成时限": "2026年12月底前", "路线图": "2026年11月 制定方案；2026年12月 完成"}

# what openpyxl can write in a cell (no control characters), and the texts offices really write
safe_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=60)
cells = st.one_of(
    safe_text,
    st.sampled_from(
        ["=1+1", '=HYPERLINK("http://evil.example","click")', "=A1", "@SUM(A1)", "+1", "-1", "2026年12月底前", "2026-02-30", "12/31/2026"]
        + ["长期坚持", "每月", "教务处处长", "教务处", "课程育人", "", " ", "是", "无", "#REF!"]
    ),
    st.integers(-(10**15), 10**15),
    st.floats(allow_nan=False, allow_infinity=False),
    st.dates(min_value=dt.date(1900, 3, 1), max_value=dt.date(9999, 12, 31)),
    st.booleans(),
    st.none(),
    st.integers(1, 32767).map(lambda n: "长" * n),
)


def problems_are_messages(err: PlanProblems) -> None:
    assert err.problems, "PlanProblems without a problem"
    for p in err.problems:
        assert CJK.search(p.message) and "Traceback" not in p.message, repr(p)
    assert "Traceback" not in err.render()


def loaded(path: Path) -> PlanDefinition | PlanProblems:
    try:
        return load_plan(path)
    except PlanProblems as err:
        problems_are_messages(err)
        return err


@st.composite
def task_sheets(draw) -> list[list[Any]]:
    """A 任务清单: a title row or not, the real headers (a few, in any order), rows of the small
    plan's task with cells changed, and random rows."""
    headers = draw(st.lists(st.sampled_from(HEADERS), min_size=1, max_size=len(HEADERS), unique=True))
    if "具体任务" not in headers and draw(st.booleans()):
        headers.append("具体任务")
    rows: list[list[Any]] = [["某某大学三全育人任务清单"]] if draw(st.booleans()) else []
    rows.append(list(headers))
    for _ in range(draw(st.integers(0, 5))):
        row = [SMALL_ROW.get(h) for h in headers]
        for i in draw(st.lists(st.integers(0, len(headers) - 1), max_size=3)):
            row[i] = draw(cells)
        rows.append(row)
    rows += draw(st.lists(st.lists(cells, max_size=len(headers) + 2), max_size=3))
    return rows


PEOPLE = [["姓名", "部门", "邮箱"], ["教务处处长", "教务处", "jwc@example.org"]]
DEPARTMENTS = [["部门名称", "负责人"], ["教务处", "教务处处长"]]


@fuzz(60, deadline_ms=5000)
@given(task_sheets(), st.sampled_from(["任务清单", "Sheet1", "清单"]), st.booleans())
def test_any_workbook_is_a_plan_or_problems(rows, sheet_name, with_people):
    COUNTS["import: workbooks"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        sheets = {sheet_name: rows} | ({"人员": PEOPLE, "部门": DEPARTMENTS} if with_people else {})
        result = loaded(write_xlsx(Path(tmp) / "plan.xlsx", sheets))
    assert isinstance(result, PlanDefinition | PlanProblems)


def _good_workbook() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        rows = [list(SMALL_ROW), list(SMALL_ROW.values())]
        return write_xlsx(Path(tmp) / "p.xlsx", {"任务清单": rows, "人员": PEOPLE, "部门": DEPARTMENTS}).read_bytes()


GOOD_XLSX = _good_workbook()
broken = st.one_of(
    st.binary(max_size=2000),
    st.integers(0, len(GOOD_XLSX)).map(lambda n: GOOD_XLSX[:n]),
    st.tuples(st.integers(0, len(GOOD_XLSX) - 1), st.binary(min_size=1, max_size=64)).map(
        lambda c: GOOD_XLSX[: c[0]] + c[1] + GOOD_XLSX[c[0] + len(c[1]) :]
    ),
)


@fuzz(100, deadline_ms=5000)
@given(broken, st.sampled_from([".xlsx", ".xls", ".ods", ".xlsm"]))
@example(b"", ".xlsx")
@example(GOOD_XLSX, ".xlsx")
def test_a_broken_workbook_is_problems(data, suffix):
    COUNTS["import: broken workbooks"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"plan{suffix}"
        path.write_bytes(data)
        assert isinstance(loaded(path), PlanDefinition | PlanProblems)


# -- YAML ------------------------------------------------------------------------------------------

yaml_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), safe_text, st.dates(), st.sampled_from(["=1+1", "2026年12月底前", "长期坚持"])
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(safe_text, inner, max_size=4)),
    max_leaves=12,
)


def _paths(node: Any, at: tuple = ()) -> list[tuple]:
    """Every place in the plan a value sits (dict keys and list indexes)."""
    out = [at] if at else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*at, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*at, i))
    return out


PLAN_PATHS = _paths(small_plan())


@st.composite
def changed_plans(draw) -> dict:
    """The small plan with one to three values replaced by random ones (wrong types, deep nests)."""
    plan = copy.deepcopy(small_plan())
    for where in draw(st.lists(st.sampled_from(PLAN_PATHS), min_size=1, max_size=3)):
        node = plan
        try:
            for key in where[:-1]:
                node = node[key]
            node[where[-1]] = draw(yaml_values)
        except (KeyError, IndexError, TypeError):  # an earlier change removed the way there
            continue
    return plan


@fuzz(80, deadline_ms=5000)
@given(changed_plans())
def test_a_changed_yaml_plan_is_a_plan_or_problems(plan):
    COUNTS["import: YAML plans changed"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.yaml"
        path.write_text(yaml.safe_dump(plan, allow_unicode=True), encoding="utf-8")
        assert isinstance(loaded(path), PlanDefinition | PlanProblems)


@fuzz(150, deadline_ms=3000)
@given(st.one_of(st.text(max_size=400), st.binary(max_size=400).map(lambda b: b.decode("latin-1"))))
@example("plan: [")
@example("&a [*a]")
@example("!!python/object/apply:os.system ['true']")
@example("a: " + "[" * 50 + "]" * 50)
def test_any_yaml_text_is_problems(text):
    COUNTS["import: YAML texts"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        assert isinstance(loaded(path), PlanDefinition | PlanProblems)


# -- CSV -------------------------------------------------------------------------------------------

csv_cells = st.one_of(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=40), cells.map(str))


@st.composite
def csv_files(draw) -> bytes:
    rows = draw(task_sheets())
    for row in draw(st.lists(st.lists(csv_cells, max_size=8), max_size=3)):
        rows.append(row)
    out = io.StringIO()
    csv.writer(out, lineterminator=draw(st.sampled_from(["\r\n", "\n"]))).writerows(
        [["" if c is None else str(c) for c in r] for r in rows]
    )
    return out.getvalue().encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "gb18030"])), errors="replace")


@fuzz(80, deadline_ms=5000)
@given(st.one_of(csv_files(), st.binary(max_size=1000)))
def test_any_csv_is_a_plan_or_problems(data):
    COUNTS["import: CSV files"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.csv"
        path.write_bytes(data)
        assert isinstance(loaded(path), PlanDefinition | PlanProblems)


# -- found by the outside fault run, fixed in issue 17 --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("mixed.csv", "序号,育人体系,重点项目,具体任务\r\n1,课程育人,集体备课,a\rb\n".encode()),
        ("big.csv", ("序号,具体任务\n1," + "x" * (1 << 20) + "\n").encode()),
        ("bad-date.yaml", b"plan: {code: x, name: x, ends_on: 2026-02-30}\n"),
        ("deep.yaml", b"plan: " + b"[" * 20000 + b"]" * 20000 + b"\n"),
    ],
)
def test_known_import_tracebacks_are_problems(tmp_path, name, data):
    """Tracebacks the outside test found (a plan, or problems with messages, once fixed)."""
    path = tmp_path / name
    path.write_bytes(data)
    assert isinstance(loaded(path), PlanDefinition | PlanProblems)


def corrupt_sheet(data: bytes, member: str = "xl/worksheets/sheet1.xml") -> bytes:
    """The workbook with the first bytes of one member's compressed stream overwritten."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(member)
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    return data[:start] + b"\xff" * 8 + data[start + 8 :]


def test_a_workbook_corrupt_inside_a_sheet_is_a_problem(tmp_path):
    """Found by the fuzzing: a workbook whose sheet XML is corrupt (its compressed stream broken)
    opened, then raised calamine's XmlError while its cells were read."""
    path = tmp_path / "plan.xlsx"
    path.write_bytes(corrupt_sheet(GOOD_XLSX))
    with pytest.raises(PlanProblems) as err:
        load_plan(path)
    [problem] = err.value.problems  # the cause in parentheses is the reader's (zlib's or calamine's)
    assert problem.where == "plan.xlsx"
    assert problem.message.startswith("无法读取 Excel 文件（")
    assert problem.message.endswith("）：请确认文件未损坏、未加密，并另存为 .xlsx 后重试")
