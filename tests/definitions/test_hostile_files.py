"""Files that once gave a traceback, a hang or a silently wrong import: each is one clear message
naming where it is (or, for a hidden stale sheet, the visible list imported with a note); nothing
is written."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook

from definitions.deadlines import ACCEPTED_FORMS
from definitions.loaders import load_plan, read_plan_file
from definitions.problems import PlanProblems
from duban.plans.importer import import_plan
from tests.definitions.test_import_problems import GOOD, HEADER, _snapshot, xlsx
from tests.factories import DEPARTMENT_ROWS, PEOPLE_ROWS, small_plan, write_xlsx, write_yaml


def problems_of(path: Path) -> list[str]:
    with pytest.raises(PlanProblems) as err:
        load_plan(path)
    return [str(p) for p in err.value.problems]


def rewrite_part(path: Path, part: str, edit) -> Path:
    """The workbook at ``path`` with one ZIP part changed by ``edit(bytes) -> bytes``."""
    with zipfile.ZipFile(path) as zf:
        parts = {i.filename: zf.read(i) for i in zf.infolist()}
    parts[part] = edit(parts[part])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return path


def with_doctype(doctype: bytes):
    def edit(xml: bytes) -> bytes:
        body = xml.split(b"?>", 1)[1] if xml.startswith(b"<?xml") else xml
        return b'<?xml version="1.0" encoding="UTF-8"?>' + doctype + body.replace(">集体备课<".encode(), b">&e;<")

    return edit


# --- hostile workbooks: XXE, entity expansion, zip bombs ------------------------------------

XXE = "plan.xlsx：文件中的“xl/worksheets/sheet1.xml”含有 DOCTYPE 或实体声明（Excel 不会写入这类内容，可能被用来读取服务器上的文件），出于安全考虑不予读取：请在 Excel 中打开后另存为新的 .xlsx 再导入"


@pytest.mark.parametrize(
    "doctype",
    [
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
        b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY e "&b;&b;&b;&b;&b;">]>',
        b'<!doctype x [<!entity e SYSTEM "http://127.0.0.1:9/x">]>',
    ],
    ids=["external-file", "billion-laughs", "lower-case"],
)
def test_a_sheet_declaring_entities_is_refused_unread(tmp_path, doctype):
    path = rewrite_part(xlsx(tmp_path, GOOD), "xl/worksheets/sheet1.xml", with_doctype(doctype))
    assert problems_of(path) == [XXE]


def test_a_zip_bomb_is_refused_before_it_is_expanded(tmp_path):
    padding = b" " * (60 * 1024 * 1024)  # 60 MB of blanks in the sheet XML: about 60 KB compressed
    path = rewrite_part(xlsx(tmp_path, GOOD), "xl/worksheets/sheet1.xml", lambda xml: xml.replace(b"<sheetData>", b"<sheetData>" + padding))
    assert problems_of(path) == [
        "plan.xlsx：文件解压后过大（疑似“压缩炸弹”），出于安全考虑不予读取：请确认文件来源，或在 Excel 中另存为新的 .xlsx 后重试"
    ]


def test_a_part_larger_than_its_cap_is_refused_while_it_streams(tmp_path, monkeypatch):
    from definitions import workbook_guard

    monkeypatch.setattr(workbook_guard, "MAX_PART", 4096)  # a sheet that expands past the cap, whatever its header says
    path = xlsx(tmp_path, *([f"{n}", *GOOD[1:]] for n in range(1, 101)))
    assert problems_of(path) == [
        "plan.xlsx：文件解压后过大（疑似“压缩炸弹”），出于安全考虑不予读取：请确认文件来源，或在 Excel 中另存为新的 .xlsx 后重试"
    ]


# --- formulas ---------------------------------------------------------------------------------


def test_a_formula_without_a_computed_value_is_named_not_read_as_empty(tmp_path):
    path = xlsx(
        tmp_path,
        GOOD,
        ["2", "课程育人", "思政课", '=CONCAT("资源","库")', "教务处", "教务处处长", "2027年底", ""],
        ["=ROW()", "课程育人", "思政课", "课程思政", "教务处", "教务处处长", "2027年底", ""],
    )
    assert problems_of(path) == [
        "plan.xlsx · 工作表「任务清单」 · 第 3 行 · 「具体任务」列：单元格是公式，没有计算结果，请粘贴为数值",
        "plan.xlsx · 工作表「任务清单」 · 第 4 行 · 「序号」列：单元格是公式，没有计算结果，请粘贴为数值",
    ]


def test_a_formula_with_its_computed_value_is_read_as_that_value(tmp_path):
    path = xlsx(tmp_path, ["=1+1", *GOOD[1:]])
    # Excel keeps the value it computed beside the formula
    rewrite_part(
        path,
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(b"<f>1+1</f><v></v>", b"<f>1+1</f><v>2</v>").replace(b"<f>1+1</f><v />", b"<f>1+1</f><v>2</v>"),
    )
    assert [t.code for t in load_plan(path).tasks] == ["2"]


# --- CSV and YAML that raised -----------------------------------------------------------------


def csv_rows(*rows: list[str]) -> str:
    return "".join(",".join(r) + "\n" for r in rows)


def test_a_csv_with_mixed_line_endings_is_read(tmp_path):
    path = tmp_path / "plan.csv"
    text = csv_rows(HEADER, GOOD, ["2", "课程育人", "思政课", "资源库", "教务处", "教务处处长", "2027年底", ""])
    lines = text.split("\n")
    path.write_bytes((lines[0] + "\r\n" + lines[1] + "\r" + lines[2] + "\n").encode("utf-8"))
    (tmp_path / "人员.csv").write_text(csv_rows(*PEOPLE_ROWS), encoding="utf-8")
    (tmp_path / "部门.csv").write_text(csv_rows(*DEPARTMENT_ROWS), encoding="utf-8")
    assert [(t.code, t.title) for t in load_plan(path).tasks] == [("1", "集体备课"), ("2", "资源库")]


def test_a_csv_with_a_huge_cell_is_one_message(tmp_path):
    path = tmp_path / "plan.csv"
    path.write_text(csv_rows(HEADER, GOOD) + '2,课程育人,思政课,"' + "长" * 1_000_000 + '",教务处,教务处处长,2027年底,\n', encoding="utf-8")
    assert problems_of(path) == [
        "plan.csv · 第 3 行：有一个单元格超过 131,072 个字符，无法导入：请检查该行（可能缺少一个右引号，使后面的内容都并入了一个单元格）"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "plan:\n  code: demo\n  name: 测试\n  ends_on: 2026-02-30\n",
            "plan.yaml · 第 4 行第 12 列：日期“2026-02-30”不存在：请检查年、月、日（如 2 月没有 30 日）",
        ),
        (
            "plan:\n  code: demo\n  name: 测试\n  code: demo-2\n",
            "plan.yaml · 第 4 行第 3 列：键“code”重复（第 2 行已写过）：同一层中每个键只能写一次，请删除或合并其中一处",
        ),
        ("plan: " + "[" * 20_000 + "]" * 20_000 + "\n", "plan.yaml：文件的嵌套层次过深，无法读取：方案文件只有几层缩进，请检查文件内容"),
    ],
    ids=["no-such-date", "duplicate-key", "nested-20000-deep"],
)
def test_yaml_that_raised_is_one_message(tmp_path, text, expected):
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    assert problems_of(path) == [expected]


def test_a_folder_named_like_a_plan_is_one_message(tmp_path):
    (tmp_path / "x.yaml").mkdir()
    assert problems_of(tmp_path / "x.yaml") == [
        f"{tmp_path / 'x.yaml'}：这是一个文件夹，不是方案文件：请指定文件夹中的 .xlsx、.yaml 或 .csv 文件"
    ]


# --- silently wrong: hidden sheets, a header twice --------------------------------------------


def hide(path: Path, *names: str) -> Path:
    wb = load_workbook(path)
    for name in names:
        wb[name].sheet_state = "hidden"
    wb.save(path)
    return path


def test_a_hidden_stale_task_list_is_skipped_with_a_note(tmp_path):
    stale = ["1", "课程育人", "思政课", "集体备课", "教务处", "教务处处长", "2025年12月底前", ""]
    path = write_xlsx(
        tmp_path / "plan.xlsx",
        {"任务清单": [HEADER, stale], "2026年清单": [HEADER, GOOD], "人员": PEOPLE_ROWS, "部门": DEPARTMENT_ROWS},
    )
    plan = load_plan(hide(path, "任务清单"))
    assert [(t.code, t.deadline_text) for t in plan.tasks] == [("1", "2026年12月底前")]
    assert plan.warnings[0] == "工作表「任务清单」是隐藏的，未读取；如需导入其中的内容，请在 Excel 中取消隐藏后重新导入"


def test_a_task_list_only_in_a_hidden_sheet_is_refused(tmp_path):
    path = hide(xlsx(tmp_path, GOOD), "任务清单")
    assert problems_of(path) == [
        "plan.xlsx：任务清单在隐藏的工作表「任务清单」中，未读取：请确认这是要导入的清单，在 Excel 中取消隐藏该工作表后重新导入"
    ]


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [
        (
            ".xlsx",
            "plan.xlsx · 工作表「任务清单」 · 第 1 行：「完成时限」列出现了 2 次（第 G 列、第 I 列），无法确定以哪一列为准：请删除多余的列，或把它改为其他列名",
        ),
        (
            ".csv",
            "plan.csv · 第 1 行：「完成时限」列出现了 2 次（第 7 列、第 9 列），无法确定以哪一列为准：请删除多余的列，或把它改为其他列名",
        ),
    ],
)
def test_a_header_written_twice_is_refused_with_its_columns(tmp_path, suffix, expected):
    header, row = [*HEADER, "完成时限"], [*GOOD, "2025年底"]
    if suffix == ".xlsx":
        path = xlsx(tmp_path, row, header=header)
    else:
        path = tmp_path / "plan.csv"
        path.write_text(csv_rows(header, row), encoding="utf-8")
    assert problems_of(path) == [expected]


def test_a_people_header_written_twice_is_refused(tmp_path):
    people = [[*PEOPLE_ROWS[0], "邮箱"], *(r + [""] for r in PEOPLE_ROWS[1:])]
    assert problems_of(xlsx(tmp_path, GOOD, people=people)) == [
        "plan.xlsx · 工作表「人员」 · 第 1 行：「邮箱」列出现了 2 次（第 D 列、第 H 列），无法确定以哪一列为准：请删除多余的列，或把它改为其他列名"
    ]


# --- misleading: dates with the year last -----------------------------------------------------


@pytest.mark.parametrize("written", ["12/31/2026", "31.12.2026", "12-31-26"])
def test_a_date_with_the_year_last_says_which_forms_are_read(tmp_path, written):
    path = xlsx(tmp_path, [*GOOD[:6], written, ""])
    assert problems_of(path) == [
        f"plan.xlsx · 工作表「任务清单」 · 第 2 行 · 「完成时限」列：完成时限“{written}”把年份写在了最后，无法确定哪个数字是月份"
        "（月/日/年与日/月/年两种写法都有人用）；请把年份写在前面，如 2026-12-31、2026/12/31 或 2026年12月31日。" + ACCEPTED_FORMS
    ]


# --- control characters in one-line fields ----------------------------------------------------


@pytest.mark.parametrize(
    ("row", "column", "value", "shown", "kind"),
    [
        (2, "姓名", "党委\n书记", "党委\\n书记", "换行符"),
        (3, "邮箱", "fx@example.org\nBcc: all@example.org", "fx@example.org\\nBcc: all@example.org", "换行符"),
        (4, "职务", "处\t长", "处\\t长", "制表符（Tab）"),
        (5, "部门", "宣传\x85部", "宣传\\u0085部", "控制字符（U+0085）"),
    ],
    ids=["crlf-name", "lf-email", "tab-title", "c1-department"],
)
def test_control_characters_in_a_person_are_refused_at_their_cell(tmp_path, row, column, value, shown, kind):
    people = [r[:] for r in PEOPLE_ROWS]
    col = people[0].index(column)
    people[row - 1][col] = value
    what = {"姓名": "姓名", "邮箱": "邮箱", "职务": "职务", "部门": "所在部门"}[column]
    found = problems_of(xlsx(tmp_path, GOOD, people=people))
    assert found[0] == (
        f"plan.xlsx · 工作表「人员」 · 第 {row} 行 · 「{column}」列：{what}“{shown}”中含有{kind}：该项只能写成一行文字，请删除换行、制表符等控制字符"
    )


def test_control_characters_in_yaml_are_refused_at_their_field(tmp_path):
    plan = small_plan()
    plan["departments"][0]["name"] = "教务\n处"
    plan["systems"][0]["projects"][0]["tasks"][0]["owner"] = "教务处\r处长"
    plan["people"][0]["email"] = "sj@example.org\r\nBcc: all@example.org"
    found = problems_of(write_yaml(tmp_path / "plan.yaml", plan))
    assert [p for p in found if "控制字符" in p] == [
        "plan.yaml · people[0].email：邮箱“sj@example.org\\r\\nBcc: all@example.org”中含有回车符：该项只能写成一行文字，请删除换行、制表符等控制字符",
        "plan.yaml · departments[0].name：部门名称“教务\\n处”中含有换行符：该项只能写成一行文字，请删除换行、制表符等控制字符",
        "plan.yaml · systems[0].projects[0].tasks[0].owner（任务 1）：责任人“教务处\\r处长”中含有回车符：该项只能写成一行文字，请删除换行、制表符等控制字符",
    ]


# --- nothing written --------------------------------------------------------------------------


def test_refused_files_leave_the_database_unchanged(engine, tmp_path):
    good = small_plan()
    good["plan"]["code"] = "plan"
    import_plan(engine, write_yaml(tmp_path / "good.yaml", good))
    before = _snapshot(engine)
    for name, make in {
        "hidden": lambda d: hide(xlsx(d, GOOD), "任务清单"),
        "xxe": lambda d: rewrite_part(
            xlsx(d, GOOD), "xl/worksheets/sheet1.xml", with_doctype(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>')
        ),
        "duplicate-key": lambda d: (
            (d / "plan.yaml").write_text("plan:\n  code: plan\n  name: a\n  code: plan2\n", encoding="utf-8") and d / "plan.yaml"
        ),
    }.items():
        folder = tmp_path / name
        folder.mkdir()
        with pytest.raises(PlanProblems):
            import_plan(engine, make(folder))
    assert _snapshot(engine) == before
    assert read_plan_file(tmp_path / "good.yaml")[0].plan.code == "plan"
