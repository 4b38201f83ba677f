"""Read a plan from YAML, XLSX or CSV into a ``PlanFile`` (then ``resolve`` it).

Spreadsheets come in the shape offices really use: one row per concrete task with Chinese
headers (a title row above the header is fine), merged cells for a system or project spanning
many rows, optional sheets 人员 (people), 部门 (departments) and 方案 (plan settings).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from definitions.problems import Locator, PlanProblems, Problem
from definitions.resolve import resolve
from definitions.schema import (
    DepartmentIn,
    PersonIn,
    PlanChannelsIn,
    PlanDefinition,
    PlanFile,
    PlanIn,
    ProjectIn,
    SystemIn,
    TaskIn,
)

YAML_SUFFIXES = {".yaml", ".yml"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".ods"}
CSV_SUFFIXES = {".csv"}

# field -> accepted header spellings (the first is the one the template uses)
TASK_COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("序号", "编号", "任务编号", "任务序号"),
    "system": ("育人体系", "体系", "类别", "所属体系", "育人类别", "十大育人体系"),
    "project": ("重点项目", "项目", "项目名称", "重点项目名称"),
    "title": ("具体任务", "任务内容", "具体任务内容", "工作任务", "主要任务", "任务"),
    "statement": ("任务书", "任务说明", "工作措施", "具体措施", "实施举措"),
    "done_criteria": ("完成标志", "工作要求", "预期成果", "成果形式", "验收标准"),
    "lead_department": ("牵头单位", "牵头部门", "责任单位", "责任部门"),
    "owner": ("责任人", "具体责任人", "负责人"),
    "partners": ("配合单位", "协同单位", "配合部门", "协办单位", "参与单位"),
    "supervisor": ("分管校领导", "分管领导", "责任校领导", "联系校领导"),
    "deadline": ("完成时限", "完成时间", "时间节点", "完成期限", "截止时间"),
    "roadmap": ("路线图", "阶段安排", "里程碑", "实施步骤", "进度安排"),
    "report_every": ("反馈周期", "进展反馈周期", "报告周期"),
}
PEOPLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "名字", "人员"),
    "department": ("部门", "所在部门", "单位", "所在单位"),
    "title": ("职务", "职务职称", "岗位"),
    "email": ("邮箱", "电子邮箱", "email", "e-mail", "邮件"),
    "mobile": ("手机", "手机号", "手机号码", "联系电话", "电话"),
    "notify": ("通知地址", "通知方式", "通知渠道"),
    "manager": ("直接上级", "上级", "直属领导"),
}
DEPARTMENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("部门", "部门名称", "单位", "单位名称"),
    "head": ("负责人", "部门负责人", "主要负责人"),
    "supervisor": ("分管校领导", "分管领导"),
    "notify": ("通知地址", "群通知地址", "群机器人", "通知渠道"),
}
PLAN_KEYS: dict[str, tuple[str, ...]] = {
    "code": ("方案编号", "编号"),
    "name": ("方案名称", "名称"),
    "organization": ("单位", "单位名称", "学校"),
    "approval_required": ("办结需审核", "需要审核", "是否审核"),
    "report_every": ("反馈周期", "长期任务反馈周期"),
    "leading_group": ("领导小组", "领导小组成员"),
    "office": ("领导小组办公室", "督办员", "办公室"),
    "channels.leading_group": ("领导小组通知地址", "领导小组群", "领导小组群通知地址"),
    "channels.office": ("领导小组办公室通知地址", "领导小组办公室群", "办公室通知地址", "办公室群"),
}
# 方案 sheet rows that override the deadline policy (working days); lists like "7、3、1、0"
POLICY_KEYS: dict[str, str] = {
    "到期前提醒（工作日）": "remind_before",
    "逾期提醒间隔（工作日）": "overdue_every",
    "逾期提醒次数上限": "overdue_cap",
    "逾期报部门负责人（工作日）": "escalate_head_after",
    "逾期报分管校领导（工作日）": "escalate_supervisor_after",
    "逾期报领导小组办公室（工作日）": "escalate_office_after",
    "签收时限（工作日）": "ack_within",
    "未签收报部门负责人（工作日）": "ack_escalate_after",
    "反馈截止前提醒（工作日）": "report_remind_before",
    "反馈宽限（工作日）": "report_grace",
    "待审核提醒（工作日）": "approval_remind_after",
    "通知发送时段": "send_hours",
}
LIST_POLICY_FIELDS = {"remind_before", "report_remind_before"}
TEXT_POLICY_FIELDS = {"send_hours"}
TASK_SHEETS = ("任务清单", "重点任务清单", "任务", "清单")
PEOPLE_SHEETS = ("人员", "人员表", "人员名单", "责任人")
DEPARTMENT_SHEETS = ("部门", "部门表", "单位")
PLAN_SHEETS = ("方案", "方案信息")
REQUIRED_TASK_FIELDS = ("code", "system", "project", "title")
LIST_SPLIT = re.compile(r"[、，,；;/\n]+")
URL_SPLIT = re.compile(r"[\s；;，,]+")
YES = {"是", "需要", "要", "yes", "true", "1", "y"}
NO = {"否", "不需要", "不", "no", "false", "0", "n"}


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


# ---------------------------------------------------------------------------------------------
# YAML

_PYDANTIC_MESSAGES = {
    "missing": "缺少必填字段",
    "string_type": "应为文字",
    "bool_parsing": "应为 true 或 false",
    "bool_type": "应为 true 或 false",
    "list_type": "应为列表",
    "dict_type": "应为键值对（映射）",
    "model_type": "应为键值对（映射）",
    "literal_error": "取值不正确",
    "int_type": "应为整数",
}


def _yaml_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"str", "date", "datetime", "int", "float", "list[MilestoneIn]"} or "[" in str(part):
            continue  # union branch names that pydantic adds to the location
        else:
            out += f".{part}" if out else str(part)
    return out


def _fields_of(model: type, loc: tuple) -> list[str]:
    """The field names accepted at the place an ``extra_forbidden`` error points to."""
    current: Any = PlanFile
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            break
        ann = field.annotation
        for arg in getattr(ann, "__args__", ()) or ():
            if hasattr(arg, "model_fields"):
                ann = arg
        if hasattr(ann, "model_fields"):
            current = ann
    return list(getattr(current, "model_fields", {}))


def read_yaml(path: Path) -> tuple[PlanFile, Locator]:
    source = path.name
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise PlanProblems(source, [Problem(source, "文件不是 UTF-8 编码，请另存为 UTF-8 后再导入")]) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source} · 第 {mark.line + 1} 行第 {mark.column + 1} 列" if mark else source
        raise PlanProblems(source, [Problem(where, f"YAML 格式错误（{getattr(err, 'problem', err)}），请检查缩进、冒号和引号")]) from None
    if not isinstance(data, dict):
        raise PlanProblems(
            source, [Problem(source, "文件内容应为一个方案（含 plan、departments、people、systems 等字段），请参照 docs/plan-format.md")]
        )
    try:
        return PlanFile.model_validate(data), Locator(source)
    except ValidationError as err:
        problems = []
        seen: set[str] = set()
        for e in err.errors():
            where = f"{source} · {_yaml_path(e['loc'])}"
            if e["type"] == "extra_forbidden":
                allowed = "、".join(_fields_of(PlanFile, tuple(e["loc"])))
                msg = f"不认识的字段“{e['loc'][-1]}”，可用的字段有：{allowed}"
            else:
                msg = _PYDANTIC_MESSAGES.get(e["type"], f"取值不正确（{e['msg']}）")
            if where + msg in seen:
                continue
            seen.add(where + msg)
            problems.append(Problem(where, msg))
        raise PlanProblems(source, problems) from None


# ---------------------------------------------------------------------------------------------
# Spreadsheets


def _norm_header(value: Any) -> str:
    text = str(value or "")
    text = re.sub(r"[\s*＊]", "", text)
    return text.lower()


def _match_columns(header: list[Any], table: dict[str, tuple[str, ...]]) -> tuple[dict[str, int], dict[str, str]]:
    """Map fields to column indexes by the accepted spellings.

    Exact names win over a name followed by a bracketed note (``完成时限（计划）``); among those,
    the earlier spelling in the table and then the leftmost column win.
    """
    normalized = [_norm_header(h) for h in header]
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
                alias_n = _norm_header(alias)
                hit = next((i for i, h in enumerate(normalized) if i not in found.values() and test(h, alias_n)), None)
                if hit is not None:
                    found[field] = hit
                    names[field] = str(header[hit]).strip()
                    break
    return found, names


def _cell(value: Any) -> Any:
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


def _text(value: Any) -> str | None:
    v = _cell(value)
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def _deadline_cell(value: Any) -> Any:
    """Real dates and numbers go to the deadline parser as they are (it knows Excel serials and
    explains a bare year); text is stripped."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return None if value != value else value
    return _cell(value)


class Sheet:
    def __init__(self, name: str, rows: list[list[Any]]):
        self.name = name
        self.rows = rows


class SheetLocator(Locator):
    """Names sheet, row and column; rows are numbered as Excel shows them (1-based)."""

    def __init__(self, source: str):
        super().__init__(source)
        self.task_rows: dict[tuple[int, int, int], tuple[str, int]] = {}
        self.task_columns: dict[str, str] = {}
        self.task_sheet = ""
        self.people_rows: list[tuple[str, int]] = []
        self.people_columns: dict[str, str] = {}
        self.department_rows: list[tuple[str, int]] = []
        self.department_columns: dict[str, str] = {}
        self.plan_rows: dict[str, tuple[str, int]] = {}
        self.group_rows: dict[tuple, int] = {}
        self.is_csv = False

    def _at(self, sheet: str, row: int | None, column: str | None) -> str:
        # a CSV "sheet" is its own file (人员.csv beside the task list)
        parts = [sheet or self.source] if self.is_csv else [self.source, f"工作表「{sheet}」"]
        if row is not None:
            parts.append(f"第 {row} 行")
        if column:
            parts.append(f"「{column}」列")
        return " · ".join(parts)

    def task(self, si, pi, ti, field, code=None):
        sheet, row = self.task_rows.get((si, pi, ti), (self.task_sheet, None))
        return self._at(sheet, row, self.task_columns.get(field, TASK_COLUMNS.get(field, (field,))[0]))

    def system(self, si, field):
        return self._at(self.task_sheet, self.group_rows.get(("s", si)), self.task_columns.get("system", "育人体系"))

    def project(self, si, pi, field):
        return self._at(self.task_sheet, self.group_rows.get(("p", si, pi)), self.task_columns.get("project", "重点项目"))

    def person(self, index, field):
        sheet, row = self.people_rows[index] if index < len(self.people_rows) else ("人员", None)
        return self._at(sheet, row, self.people_columns.get(field, PEOPLE_COLUMNS.get(field, (field,))[0]))

    def department(self, index, field):
        sheet, row = self.department_rows[index] if index < len(self.department_rows) else ("部门", None)
        return self._at(sheet, row, self.department_columns.get(field, DEPARTMENT_COLUMNS.get(field, (field,))[0]))

    def plan(self, field):
        if field in self.plan_rows:
            sheet, row = self.plan_rows[field]
            return self._at(sheet, row, PLAN_KEYS[field][0])
        return f"{self.source} · {PLAN_KEYS.get(field, (field,))[0]}"


def _find_header(rows: list[list[Any]], table: dict[str, tuple[str, ...]], key_field: str, limit: int = 10):
    """The first row (within ``limit``) that names ``key_field`` and enough other fields."""
    enough = 3 if table is TASK_COLUMNS else 2
    for r, row in enumerate(rows[:limit]):
        found, names = _match_columns(row, table)
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


def _read_excel_sheets(path: Path) -> list[Sheet]:
    import python_calamine

    try:
        wb = python_calamine.CalamineWorkbook.from_path(str(path))
    except Exception as err:  # noqa: BLE001 - calamine raises its own error types
        raise PlanProblems(
            path.name, [Problem(path.name, f"无法读取 Excel 文件（{err}）：请确认文件未损坏、未加密，并另存为 .xlsx 后重试")]
        ) from None
    sheets = []
    for name in wb.sheet_names:
        ws = wb.get_sheet_by_name(name)
        rows = ws.to_python(skip_empty_area=False)
        rows = [list(r) for r in rows]
        merged = ws.merged_cell_ranges or []
        _fill_merged(rows, merged)
        sheets.append(Sheet(name, rows))
    wb.close()
    return sheets


def _read_csv_rows(path: Path) -> list[list[Any]]:
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


def _pick(sheets: list[Sheet], names: tuple[str, ...], table, key_field) -> tuple[Sheet, tuple] | None:
    by_name = {s.name.strip(): s for s in sheets}
    for n in names:
        if n in by_name:
            header = _find_header(by_name[n].rows, table, key_field)
            if header:
                return by_name[n], header
    return None


def read_workbook(path: Path, *, plan_code: str | None = None) -> tuple[PlanFile, Locator]:
    sheets = _read_excel_sheets(path)
    loc = SheetLocator(path.name)
    problems: list[Problem] = []

    picked = _pick(sheets, TASK_SHEETS, TASK_COLUMNS, "title")
    if picked is None:
        for s in sheets:  # any sheet whose header names the task columns
            header = _find_header(s.rows, TASK_COLUMNS, "title")
            if header:
                picked = (s, header)
                break
    if picked is None:
        raise PlanProblems(path.name, [Problem(path.name, _no_task_sheet_message())])
    task_sheet, task_header = picked
    used = {task_sheet.name}

    people_pick = _pick([s for s in sheets if s.name not in used], PEOPLE_SHEETS, PEOPLE_COLUMNS, "name")
    dept_pick = _pick([s for s in sheets if s.name not in used], DEPARTMENT_SHEETS, DEPARTMENT_COLUMNS, "name")
    plan_sheet = next((s for s in sheets if s.name.strip() in PLAN_SHEETS), None)

    plan_in = _plan_from_sheet(plan_sheet, loc, problems, default_code=plan_code or path.stem, default_name=path.stem)
    if plan_code:
        plan_in.code = plan_code
    people = _people_from(people_pick, loc, problems) if people_pick else []
    departments = _departments_from(dept_pick, loc, problems) if dept_pick else []
    systems = _tasks_from(task_sheet, task_header, loc, problems)
    if problems:
        raise PlanProblems(path.name, problems)
    return PlanFile(plan=plan_in, departments=departments, people=people, systems=systems), loc


def read_csv(path: Path, *, plan_code: str | None = None) -> tuple[PlanFile, Locator]:
    """A CSV holds the task list; 人员.csv / 部门.csv beside it (or ``<name>.人员.csv``) are read too."""
    loc = SheetLocator(path.name)
    loc.is_csv = True
    problems: list[Problem] = []
    task_sheet = Sheet(path.name, _read_csv_rows(path))
    header = _find_header(task_sheet.rows, TASK_COLUMNS, "title")
    if header is None:
        raise PlanProblems(path.name, [Problem(path.name, _no_task_sheet_message(csv_file=True))])

    def sibling(kind: str) -> Path | None:
        for candidate in (path.with_name(f"{path.stem}.{kind}.csv"), path.with_name(f"{kind}.csv")):
            if candidate.exists():
                return candidate
        return None

    def table(kind: str, columns, read, expected: str) -> list:
        path = sibling(kind)
        if path is None:
            return []
        sheet = Sheet(path.name, _read_csv_rows(path))
        header = _find_header(sheet.rows, columns, "name")
        if header is None:
            problems.append(Problem(path.name, f"{kind}表缺少表头：第一行应为 {expected}"))
            return []
        return read((sheet, header), loc, problems)

    people: list[PersonIn] = table("人员", PEOPLE_COLUMNS, _people_from, "姓名、部门、职务、邮箱、手机、通知地址、直接上级")
    departments: list[DepartmentIn] = table("部门", DEPARTMENT_COLUMNS, _departments_from, "部门名称、负责人、分管校领导")
    plan_in = PlanIn(code=plan_code or path.stem, name=path.stem)
    systems = _tasks_from(task_sheet, header, loc, problems)
    if problems:
        raise PlanProblems(path.name, problems)
    return PlanFile(plan=plan_in, departments=departments, people=people, systems=systems), loc


def _no_task_sheet_message(csv_file: bool = False) -> str:
    where = "文件的第一行" if csv_file else "工作表「任务清单」的第一行（或标题行下一行）"
    return f"没有找到任务清单：请在{where}写明表头，至少包括 序号、育人体系、重点项目、具体任务、牵头单位或责任人、完成时限或路线图"


def _missing_column(sheet: str, field: str, loc: SheetLocator) -> Problem:
    where = loc.source if loc.is_csv else f"{loc.source} · 工作表「{sheet}」"
    either = {"owner": "lead_department", "deadline": "roadmap"}
    if field in either:
        a, b = TASK_COLUMNS[field], TASK_COLUMNS[either[field]]
        return Problem(
            where,
            f"缺少必填列「{a[0]}」或「{b[0]}」（至少需要其中一列；也可写作：{'、'.join(a[1:] + b[1:])}）",
        )
    aliases = TASK_COLUMNS[field]
    return Problem(where, f"缺少必填列「{aliases[0]}」（也可写作：{'、'.join(aliases[1:])}）")


def _tasks_from(sheet: Sheet, header, loc: SheetLocator, problems: list[Problem]) -> list[SystemIn]:
    header_row, cols, names = header
    loc.task_sheet = sheet.name
    loc.task_columns = names
    missing = _missing_task_columns(cols)
    if missing:
        problems.extend(_missing_column(sheet.name, f, loc) for f in missing)
        return []

    systems: dict[str, SystemIn] = {}
    projects: dict[tuple[str, str], ProjectIn] = {}
    system_pos: dict[str, int] = {}
    project_pos: dict[tuple[str, str], int] = {}
    last_system = last_project = None
    for r in range(header_row + 1, len(sheet.rows)):
        row = sheet.rows[r]

        def get(field: str, _row=row) -> Any:
            i = cols.get(field)
            return _row[i] if i is not None and i < len(_row) else None

        values = {f: _cell(get(f)) for f in cols}
        if not any(v is not None for v in values.values()):
            continue  # blank line
        # hierarchical columns: a blank cell continues the group above (merged cells are filled)
        sys_cell, proj_cell = _text(get("system")), _text(get("project"))
        if sys_cell and sys_cell != last_system:
            last_system, last_project = sys_cell, None
        if proj_cell:
            last_project = proj_cell
        if not any(_text(get(f)) for f in ("title", "deadline", "roadmap", "owner", "lead_department")):
            continue  # a section heading ("一、课程育人"), not a task
        system, project = last_system, last_project
        rownum = r + 1
        if not system:
            problems.append(Problem(loc._at(sheet.name, rownum, names["system"]), "缺少育人体系：请填写该任务所属的育人体系"))
            continue
        if not project:
            problems.append(Problem(loc._at(sheet.name, rownum, names["project"]), "缺少重点项目：请填写该任务所属的重点项目"))
            continue
        # positions kept beside the objects: looking them up with list.index() compares pydantic
        # models field by field and made a 30,000-row sheet take seconds
        if system not in systems:
            systems[system] = SystemIn(name=system)
            system_pos[system] = len(system_pos)
            loc.group_rows[("s", system_pos[system])] = rownum
        sys_obj, si = systems[system], system_pos[system]
        if (system, project) not in projects:
            projects[(system, project)] = ProjectIn(name=project)
            project_pos[(system, project)] = len(sys_obj.projects)
            sys_obj.projects.append(projects[(system, project)])
            loc.group_rows[("p", si, project_pos[(system, project)])] = rownum
        proj_obj, pi = projects[(system, project)], project_pos[(system, project)]
        proj_obj.tasks.append(_task_in(get))
        loc.task_rows[(si, pi, len(proj_obj.tasks) - 1)] = (sheet.name, rownum)
    return list(systems.values())


def _missing_task_columns(cols: dict[str, int]) -> list[str]:
    """The task fields without a column: the required ones, an owner (or lead department), a deadline (or roadmap)."""
    missing = [f for f in REQUIRED_TASK_FIELDS if f not in cols]
    if "owner" not in cols and "lead_department" not in cols:
        missing.append("owner")
    if "deadline" not in cols and "roadmap" not in cols:
        missing.append("deadline")
    return missing


def _task_in(get) -> TaskIn:
    """One task row as written (checked later by ``resolve``); ``get(field)`` reads its cell."""
    return TaskIn.model_construct(
        code=_text(get("code")) or "",
        title=_text(get("title")) or "",
        statement=_text(get("statement")) or "",
        done_criteria=_text(get("done_criteria")) or "",
        owner=_text(get("owner")),
        lead_department=_text(get("lead_department")),
        partners=[x.strip() for x in LIST_SPLIT.split(_text(get("partners")) or "") if x.strip()],
        supervisor=_text(get("supervisor")),
        deadline=_deadline_cell(get("deadline")),
        roadmap=_text(get("roadmap")),
        report_every=_text(get("report_every")),
        policy={},
    )


def _records(picked, on_row) -> None:
    """Call ``on_row(get, rownum)`` for each non-blank row under the header of a picked sheet."""
    sheet, (header_row, cols, _names) = picked
    for r in range(header_row + 1, len(sheet.rows)):
        row = sheet.rows[r]
        get = lambda f, _row=row: _text(_row[cols[f]]) if f in cols and cols[f] < len(_row) else None  # noqa: E731
        if any(get(f) for f in cols):
            on_row(get, r + 1)


def _people_from(picked, loc: SheetLocator, problems: list[Problem]) -> list[PersonIn]:
    loc.people_columns = picked[1][2]
    out: list[PersonIn] = []

    def add(get, rownum):
        out.append(
            PersonIn(
                name=get("name") or "",
                department=get("department"),
                title=get("title"),
                email=get("email"),
                mobile=get("mobile"),
                notify=[u for u in URL_SPLIT.split(get("notify") or "") if u],
                manager=get("manager"),
            )
        )
        loc.people_rows.append((picked[0].name, rownum))

    _records(picked, add)
    return out


def _departments_from(picked, loc: SheetLocator, problems: list[Problem]) -> list[DepartmentIn]:
    loc.department_columns = picked[1][2]
    out: list[DepartmentIn] = []

    def add(get, rownum):
        out.append(
            DepartmentIn(
                name=get("name") or "",
                head=get("head"),
                supervisor=get("supervisor"),
                notify=[u for u in URL_SPLIT.split(get("notify") or "") if u],
            )
        )
        loc.department_rows.append((picked[0].name, rownum))

    _records(picked, add)
    return out


def _plan_from_sheet(sheet: Sheet | None, loc: SheetLocator, problems: list[Problem], *, default_code: str, default_name: str) -> PlanIn:
    values: dict[str, Any] = {}
    policy: dict[str, Any] = {}
    policy_keys = {_norm_header(k): (k, f) for k, f in POLICY_KEYS.items()}
    if sheet is not None:
        for r, row in enumerate(sheet.rows):
            if len(row) < 2:
                continue
            key = _norm_header(row[0])
            for field, aliases in PLAN_KEYS.items():
                if key in {_norm_header(a) for a in aliases} and field not in values:
                    values[field] = _text(row[1])
                    loc.plan_rows[field] = (sheet.name, r + 1)
            if key in policy_keys and (raw := _text(row[1])) is not None:
                label, field = policy_keys[key]
                if field in TEXT_POLICY_FIELDS:
                    policy[field] = raw
                    continue
                try:
                    numbers = [int(x) for x in LIST_SPLIT.split(raw.replace(" ", "、")) if x.strip()]
                except ValueError:
                    problems.append(
                        Problem(
                            f"{loc.source} · 工作表「{sheet.name}」 · 第 {r + 1} 行",
                            f"{label}“{raw}”应为工作日天数（整数），多个用顿号隔开，如 7、3、1、0",
                        )
                    )
                    continue
                policy[field] = numbers if field in LIST_POLICY_FIELDS else (numbers[0] if len(numbers) == 1 else raw)
    approval = True
    if values.get("approval_required") is not None:
        flag = str(values["approval_required"]).strip().lower()
        if flag in YES:
            approval = True
        elif flag in NO:
            approval = False
        else:
            problems.append(Problem(loc.plan("approval_required"), f"“{values['approval_required']}”无法识别：请填写“是”或“否”"))
    return PlanIn(
        code=values.get("code") or default_code,
        name=values.get("name") or default_name,
        organization=values.get("organization") or "",
        approval_required=approval,
        report_every=values.get("report_every") or "每学期",
        leading_group=[x for x in LIST_SPLIT.split(values.get("leading_group") or "") if x.strip()],
        office=[x for x in LIST_SPLIT.split(values.get("office") or "") if x.strip()],
        policy=policy,
        channels=PlanChannelsIn(
            leading_group=[u for u in URL_SPLIT.split(values.get("channels.leading_group") or "") if u],
            office=[u for u in URL_SPLIT.split(values.get("channels.office") or "") if u],
        ),
    )
