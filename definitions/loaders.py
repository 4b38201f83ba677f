"""Read a plan from YAML, XLSX or CSV into a ``PlanFile`` (then ``resolve`` it).

Spreadsheets come in the shape offices really use: one row per concrete task with Chinese
headers (a title row above the header is fine), merged cells for a system or project spanning
many rows, optional sheets 人员 (people), 部门 (departments) and 方案 (plan settings).
"""

from __future__ import annotations

from pathlib import Path

from definitions.plan_sheets import (
    DEPARTMENT_COLUMNS,
    PEOPLE_COLUMNS,
    TASK_COLUMNS,
    TASK_HEADER_FIELDS,
    SheetLocator,
    attach_office_lines,
    departments_from,
    no_task_sheet_message,
    people_from,
    plan_from_sheet,
    tasks_from,
)
from definitions.problems import Locator, PlanProblems, Problem
from definitions.resolve import resolve
from definitions.schema import (
    DepartmentIn,
    PersonIn,
    PlanDefinition,
    PlanFile,
    PlanIn,
)
from definitions.sheet_checks import duplicate_headers, formula_cells
from definitions.spreadsheet import Sheet, find_header, pick_sheet, read_csv_rows, read_excel_sheets
from definitions.yaml_file import read_yaml

YAML_SUFFIXES = {".yaml", ".yml"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".ods"}
CSV_SUFFIXES = {".csv"}
TASK_SHEETS = ("任务清单", "重点任务清单", "任务", "清单")
PEOPLE_SHEETS = ("人员", "人员表", "人员名单", "责任人")
DEPARTMENT_SHEETS = ("部门", "部门表", "单位")
PLAN_SHEETS = ("方案", "方案信息")


def load_plan(path: str | Path, *, plan_code: str | None = None, check_notify: bool = True) -> PlanDefinition:
    """Read and resolve a plan file; raise ``PlanProblems`` naming every problem."""
    plan_file, locator = read_plan_file(path, plan_code=plan_code)
    return resolve(plan_file, locator, check_notify=check_notify)


def read_plan_file(path: str | Path, *, plan_code: str | None = None) -> tuple[PlanFile, Locator]:
    path = Path(path)
    if not path.exists():
        raise PlanProblems(str(path), [Problem(str(path), "文件不存在，请检查路径")])
    if not path.is_file():
        raise PlanProblems(path.name, [Problem(str(path), "这是一个文件夹，不是方案文件：请指定文件夹中的 .xlsx、.yaml 或 .csv 文件")])
    suffix = path.suffix.lower()
    if suffix in YAML_SUFFIXES:
        plan_file, locator = read_yaml(path)
        if plan_code:
            plan_file.plan.code = plan_code
        return plan_file, locator
    if suffix in EXCEL_SUFFIXES:
        return read_workbook(path, plan_code=plan_code)
    if suffix in CSV_SUFFIXES:
        return read_csv(path, plan_code=plan_code)
    raise PlanProblems(
        path.name,
        [Problem(path.name, "无法识别的文件类型：可导入 YAML（.yaml/.yml）、Excel（.xlsx/.xlsm/.xls/.ods）或 CSV（.csv）文件")],
    )


def _task_sheet(sheets: list[Sheet]) -> tuple[Sheet, tuple] | None:
    """The task list: a sheet named as one, else any sheet whose header names the task columns."""
    picked = pick_sheet(sheets, TASK_SHEETS, TASK_COLUMNS, "title", enough=TASK_HEADER_FIELDS)
    if picked is None:
        for s in sheets:
            header = find_header(s.rows, TASK_COLUMNS, "title", enough=TASK_HEADER_FIELDS)
            if header:
                return s, header
    return picked


def _hidden_notes(hidden: list[Sheet], loc: SheetLocator) -> None:
    """Hidden sheets are not read (an office hides a stale copy, not the list it means): say so."""
    for s in hidden:
        if find_header(s.rows, TASK_COLUMNS, "title", enough=TASK_HEADER_FIELDS) or s.name.strip() in (
            *TASK_SHEETS,
            *PEOPLE_SHEETS,
            *DEPARTMENT_SHEETS,
            *PLAN_SHEETS,
        ):
            loc.notes.append(f"工作表「{s.name}」是隐藏的，未读取；如需导入其中的内容，请在 Excel 中取消隐藏后重新导入")


def read_workbook(path: Path, *, plan_code: str | None = None) -> tuple[PlanFile, Locator]:
    all_sheets = read_excel_sheets(path)
    sheets = [s for s in all_sheets if not s.hidden]
    hidden = [s for s in all_sheets if s.hidden]
    loc = SheetLocator(path.name)
    problems: list[Problem] = []

    picked = _task_sheet(sheets)
    if picked is None:
        stale = _task_sheet(hidden)
        message = (
            f"任务清单在隐藏的工作表「{stale[0].name}」中，未读取：请确认这是要导入的清单，在 Excel 中取消隐藏该工作表后重新导入"
            if stale
            else no_task_sheet_message()
        )
        raise PlanProblems(path.name, [Problem(path.name, message)])
    _hidden_notes(hidden, loc)
    task_sheet, task_header = picked
    used = {task_sheet.name}

    people_pick = pick_sheet([s for s in sheets if s.name not in used], PEOPLE_SHEETS, PEOPLE_COLUMNS, "name")
    dept_pick = pick_sheet([s for s in sheets if s.name not in used], DEPARTMENT_SHEETS, DEPARTMENT_COLUMNS, "name")
    plan_sheet = next((s for s in sheets if s.name.strip() in PLAN_SHEETS), None)
    for table, pick in ((TASK_COLUMNS, picked), (PEOPLE_COLUMNS, people_pick), (DEPARTMENT_COLUMNS, dept_pick)):
        if pick is not None:
            problems += duplicate_headers(pick[0], pick[1], table, loc) + formula_cells(pick[0], pick[1], loc)
    if problems:  # which column counts, or what a formula says, is unknown: the rows cannot be read
        raise PlanProblems(path.name, problems)

    plan_in = plan_from_sheet(plan_sheet, loc, problems, default_code=plan_code or path.stem, default_name=path.stem)
    if plan_code:
        plan_in.code = plan_code
    people = people_from(people_pick, loc, problems) if people_pick else []
    departments = departments_from(dept_pick, loc, problems) if dept_pick else []
    systems = tasks_from(task_sheet, task_header, loc, problems)
    attach_office_lines(plan_in, loc, problems)
    if problems:
        raise PlanProblems(path.name, problems)
    return PlanFile(plan=plan_in, departments=departments, people=people, systems=systems), loc


def read_csv(path: Path, *, plan_code: str | None = None) -> tuple[PlanFile, Locator]:
    """A CSV holds the task list; 人员.csv / 部门.csv beside it (or ``<name>.人员.csv``) are read too."""
    loc = SheetLocator(path.name)
    loc.is_csv = True
    problems: list[Problem] = []
    task_sheet = Sheet(path.name, read_csv_rows(path))
    header = find_header(task_sheet.rows, TASK_COLUMNS, "title", enough=TASK_HEADER_FIELDS)
    if header is None:
        raise PlanProblems(path.name, [Problem(path.name, no_task_sheet_message(csv_file=True))])
    if duplicated := duplicate_headers(task_sheet, header, TASK_COLUMNS, loc):
        raise PlanProblems(path.name, duplicated)

    def sibling(kind: str) -> Path | None:
        for candidate in (path.with_name(f"{path.stem}.{kind}.csv"), path.with_name(f"{kind}.csv")):
            if candidate.exists():
                return candidate
        return None

    def table(kind: str, columns, read, expected: str) -> list:
        path = sibling(kind)
        if path is None:
            return []
        sheet = Sheet(path.name, read_csv_rows(path))
        header = find_header(sheet.rows, columns, "name")
        if header is None:
            problems.append(Problem(path.name, f"{kind}表缺少表头：第一行应为 {expected}"))
            return []
        if duplicated := duplicate_headers(sheet, header, columns, loc):
            problems.extend(duplicated)
            return []
        return read((sheet, header), loc, problems)

    people: list[PersonIn] = table("人员", PEOPLE_COLUMNS, people_from, "姓名、部门、职务、邮箱、手机、通知地址、直接上级")
    departments: list[DepartmentIn] = table("部门", DEPARTMENT_COLUMNS, departments_from, "部门名称、负责人、分管校领导")
    plan_in = PlanIn(code=plan_code or path.stem, name=path.stem)
    systems = tasks_from(task_sheet, header, loc, problems)
    attach_office_lines(plan_in, loc, problems)
    if problems:
        raise PlanProblems(path.name, problems)
    return PlanFile(plan=plan_in, departments=departments, people=people, systems=systems), loc
