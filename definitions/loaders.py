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


def read_workbook(path: Path, *, plan_code: str | None = None) -> tuple[PlanFile, Locator]:
    sheets = read_excel_sheets(path)
    loc = SheetLocator(path.name)
    problems: list[Problem] = []

    picked = pick_sheet(sheets, TASK_SHEETS, TASK_COLUMNS, "title", enough=TASK_HEADER_FIELDS)
    if picked is None:
        for s in sheets:  # any sheet whose header names the task columns
            header = find_header(s.rows, TASK_COLUMNS, "title", enough=TASK_HEADER_FIELDS)
            if header:
                picked = (s, header)
                break
    if picked is None:
        raise PlanProblems(path.name, [Problem(path.name, no_task_sheet_message())])
    task_sheet, task_header = picked
    used = {task_sheet.name}

    people_pick = pick_sheet([s for s in sheets if s.name not in used], PEOPLE_SHEETS, PEOPLE_COLUMNS, "name")
    dept_pick = pick_sheet([s for s in sheets if s.name not in used], DEPARTMENT_SHEETS, DEPARTMENT_COLUMNS, "name")
    plan_sheet = next((s for s in sheets if s.name.strip() in PLAN_SHEETS), None)

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
        return read((sheet, header), loc, problems)

    people: list[PersonIn] = table("人员", PEOPLE_COLUMNS, people_from, "姓名、部门、职务、邮箱、手机、通知地址、直接上级")
    departments: list[DepartmentIn] = table("部门", DEPARTMENT_COLUMNS, departments_from, "部门名称、负责人、分管校领导")
    plan_in = PlanIn(code=plan_code or path.stem, name=path.stem)
    systems = tasks_from(task_sheet, header, loc, problems)
    attach_office_lines(plan_in, loc, problems)
    if problems:
        raise PlanProblems(path.name, problems)
    return PlanFile(plan=plan_in, departments=departments, people=people, systems=systems), loc
