"""What the sheets of a plan workbook hold: the task list (one row per task), the 人员 and 部门 sheets,
and the 方案 sheet (plan settings and deadline policy); the accepted header spellings of each, and the
locator that names a problem's sheet, row and column."""

from __future__ import annotations

import re
from typing import Any

from definitions.problems import Locator, Problem
from definitions.schema import (
    DepartmentIn,
    OfficeMemberIn,
    PersonIn,
    PlanChannelsIn,
    PlanIn,
    ProjectIn,
    SystemIn,
    TaskIn,
)
from definitions.spreadsheet import Sheet, cell_text, cell_value, deadline_cell, norm_header

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
    "until": ("截止日期", "持续至", "执行至"),  # a recurring or ongoing task's last day
}
TASK_HEADER_FIELDS = 3  # a task list's header names at least this many known columns (the other sheets: 2)
PEOPLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "名字", "人员"),
    "department": ("部门", "所在部门", "单位", "所在单位"),
    "title": ("职务", "职务职称", "岗位"),
    "email": ("邮箱", "电子邮箱", "email", "e-mail", "邮件"),
    "mobile": ("手机", "手机号", "手机号码", "联系电话", "电话"),
    "notify": ("通知地址", "通知方式", "通知渠道"),
    "manager": ("直接上级", "上级", "直属领导"),
    "lines": ("督办条线", "条线", "负责条线"),  # an office member's systems or departments
    "staff_no": ("工号", "职工号", "教工号", "人员编号", "统一身份认证账号"),
    "wecom_userid": ("企业微信账号", "企业微信userid", "企业微信", "企业微信ID", "企业微信用户ID", "企微账号"),
    "dingtalk_userid": ("钉钉userid", "钉钉账号", "钉钉", "钉钉ID", "钉钉用户ID"),
    "feishu_open_id": ("飞书open_id", "飞书openid", "飞书", "飞书ID", "Lark open_id", "Larkopen_id"),
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
    "ends_on": ("实施截止日期", "实施期限", "截止日期"),
    "announce_on_import": ("下达方式",),
    "bulletin_every": ("督办通报", "通报周期"),
}
# 下达方式: announce on import, or later (duban announce / the dashboard)
ANNOUNCE_ON_IMPORT = {"导入即下达", "导入后下达", "自动下达"}
ANNOUNCE_LATER = {"另行下达", "手动下达", "由办公室下达"}
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
    "待审核通知汇总时刻": "office_batch_times",
}
LIST_POLICY_FIELDS = {"remind_before", "report_remind_before"}
TEXT_POLICY_FIELDS = {"send_hours"}
TIMES_POLICY_FIELDS = {"office_batch_times"}  # a list of times of day (HH:MM), checked by the policy
REQUIRED_TASK_FIELDS = ("code", "system", "project", "title")
LIST_SPLIT = re.compile(r"[、，,；;/\n]+")
URL_SPLIT = re.compile(r"[\s；;，,]+")
YES = {"是", "需要", "要", "yes", "true", "1", "y"}
NO = {"否", "不需要", "不", "no", "false", "0", "n"}


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
        self.office_lines: dict[str, tuple[str, int, list[str]]] = {}  # name -> (sheet, row, 督办条线)
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

    def office(self, index, field, name=None):
        if name in self.office_lines:
            sheet, row, _ = self.office_lines[name]
            return self._at(sheet, row, self.people_columns.get("lines", PEOPLE_COLUMNS["lines"][0]))
        return self.plan("office")

    def plan(self, field):
        if field in self.plan_rows:
            sheet, row = self.plan_rows[field]
            return self._at(sheet, row, PLAN_KEYS[field][0])
        return f"{self.source} · {PLAN_KEYS.get(field, (field,))[0]}"


def no_task_sheet_message(csv_file: bool = False) -> str:
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


def tasks_from(sheet: Sheet, header, loc: SheetLocator, problems: list[Problem]) -> list[SystemIn]:
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

        values = {f: cell_value(get(f)) for f in cols}
        if not any(v is not None for v in values.values()):
            continue  # blank line
        # hierarchical columns: a blank cell continues the group above (merged cells are filled)
        sys_cell, proj_cell = cell_text(get("system")), cell_text(get("project"))
        if sys_cell and sys_cell != last_system:
            last_system, last_project = sys_cell, None
        if proj_cell:
            last_project = proj_cell
        if not any(cell_text(get(f)) for f in ("title", "deadline", "roadmap", "owner", "lead_department")):
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
        code=cell_text(get("code")) or "",
        title=cell_text(get("title")) or "",
        statement=cell_text(get("statement")) or "",
        done_criteria=cell_text(get("done_criteria")) or "",
        owner=cell_text(get("owner")),
        lead_department=cell_text(get("lead_department")),
        partners=[x.strip() for x in LIST_SPLIT.split(cell_text(get("partners")) or "") if x.strip()],
        supervisor=cell_text(get("supervisor")),
        deadline=deadline_cell(get("deadline")),
        roadmap=cell_text(get("roadmap")),
        report_every=cell_text(get("report_every")),
        until=deadline_cell(get("until")),
        policy={},
    )


def _records(picked, on_row) -> None:
    """Call ``on_row(get, rownum)`` for each non-blank row under the header of a picked sheet."""
    sheet, (header_row, cols, _names) = picked
    for r in range(header_row + 1, len(sheet.rows)):
        row = sheet.rows[r]
        get = lambda f, _row=row: cell_text(_row[cols[f]]) if f in cols and cols[f] < len(_row) else None  # noqa: E731
        if any(get(f) for f in cols):
            on_row(get, r + 1)


def people_from(picked, loc: SheetLocator, problems: list[Problem]) -> list[PersonIn]:
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
                staff_no=get("staff_no"),
                wecom_userid=get("wecom_userid"),
                dingtalk_userid=get("dingtalk_userid"),
                feishu_open_id=get("feishu_open_id"),
            )
        )
        loc.people_rows.append((picked[0].name, rownum))
        if lines := [x.strip() for x in LIST_SPLIT.split(get("lines") or "") if x.strip()]:
            loc.office_lines[get("name") or ""] = (picked[0].name, rownum, lines)

    _records(picked, add)
    return out


def departments_from(picked, loc: SheetLocator, problems: list[Problem]) -> list[DepartmentIn]:
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


def plan_from_sheet(sheet: Sheet | None, loc: SheetLocator, problems: list[Problem], *, default_code: str, default_name: str) -> PlanIn:
    values: dict[str, Any] = {}
    policy: dict[str, Any] = {}
    policy_keys = {norm_header(k): (k, f) for k, f in POLICY_KEYS.items()}
    if sheet is not None:
        for r, row in enumerate(sheet.rows):
            if len(row) < 2:
                continue
            key = norm_header(row[0])
            for field, aliases in PLAN_KEYS.items():
                if key in {norm_header(a) for a in aliases} and field not in values:
                    values[field] = cell_text(row[1])
                    loc.plan_rows[field] = (sheet.name, r + 1)
            if key in policy_keys and (raw := cell_text(row[1])) is not None:
                label, field = policy_keys[key]
                if field in TEXT_POLICY_FIELDS:
                    policy[field] = raw
                    continue
                if field in TIMES_POLICY_FIELDS:
                    policy[field] = [x.strip() for x in LIST_SPLIT.split(raw.replace(" ", "、")) if x.strip()]
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
        ends_on=values.get("ends_on"),
        announce_on_import=_announce_on_import(values.get("announce_on_import"), loc, problems),
        bulletin_every=values.get("bulletin_every") or "每周",
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


def _announce_on_import(value: str | None, loc: SheetLocator, problems: list[Problem]) -> bool:
    """下达方式: 导入即下达 (or 是) announces on import; 另行下达 (or 否, or nothing) waits for the office."""
    if value is None:
        return False
    word = value.strip()
    if word in ANNOUNCE_ON_IMPORT or word.lower() in YES:
        return True
    if word in ANNOUNCE_LATER or word.lower() in NO:
        return False
    problems.append(
        Problem(loc.plan("announce_on_import"), f"下达方式“{word}”无法识别：请填写“导入即下达”或“另行下达”（导入后由领导小组办公室下达）")
    )
    return False


def attach_office_lines(plan_in: PlanIn, loc: SheetLocator, problems: list[Problem]) -> None:
    """The 人员 sheet's 督办条线 column onto the office members (方案 sheet, 领导小组办公室); a line
    written for someone outside the office is a problem at that row."""
    office = [x if isinstance(x, str) else x.name for x in plan_in.office]
    for name, (sheet, row, _lines) in loc.office_lines.items():
        if name not in office:
            where = loc._at(sheet, row, loc.people_columns.get("lines", PEOPLE_COLUMNS["lines"][0]))
            problems.append(
                Problem(where, f"“{name}”不是领导小组办公室成员，不需要填写督办条线：请先在「方案」表的“领导小组办公室”一行中填写其姓名")
            )
    plan_in.office = [OfficeMemberIn(name=n, lines=loc.office_lines[n][2]) if n in loc.office_lines else n for n in office]
