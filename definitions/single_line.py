"""One-line fields (names, departments, e-mail addresses, phone numbers, codes, notify addresses)
hold no control characters: a line break in a name would reach a mail header, a tab would split
a column in every export."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from definitions.problems import Locator, Problem
from definitions.schema import PlanFile

# C0 and C1 control characters (tab, CR and LF among them) and Unicode's line and paragraph separators
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMES = {"\n": "换行符", "\r": "回车符", "\t": "制表符（Tab）"}
_SHOWN = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# codes: resolve's CODE_RE refuses them with its own message
PLAN_FIELDS = {"name": "方案名称", "organization": "单位名称", "leading_group": "领导小组成员", "office": "领导小组办公室成员"}
PERSON_FIELDS = {
    "name": "姓名",
    "department": "所在部门",
    "title": "职务",
    "email": "邮箱",
    "mobile": "手机号",
    "manager": "直接上级",
    "notify": "通知地址",
    "staff_no": "工号",
    "wecom_userid": "企业微信账号",
    "dingtalk_userid": "钉钉userid",
    "feishu_open_id": "飞书open_id",
}
DEPARTMENT_FIELDS = {"name": "部门名称", "head": "部门负责人", "supervisor": "分管校领导", "notify": "通知地址"}
TASK_FIELDS = {"owner": "责任人", "lead_department": "牵头单位", "partners": "配合单位", "supervisor": "分管校领导"}


def control_problem(what: str, value: Any) -> str | None:
    """Why ``value`` cannot stand in a one-line field, or None."""
    if not isinstance(value, str) or not (m := CONTROL.search(value)):
        return None
    kind = _NAMES.get(m.group(), f"控制字符（U+{ord(m.group()):04X}）")
    shown = CONTROL.sub(lambda c: _SHOWN.get(c.group(), f"\\u{ord(c.group()):04x}"), value)
    return f"{what}“{shown}”中含有{kind}：该项只能写成一行文字，请删除换行、制表符等控制字符"


def _values(value: Any) -> Iterator[Any]:
    """A field's texts: itself, or each entry of a list (an office member by name)."""
    for item in value if isinstance(value, list) else [value]:
        yield getattr(item, "name", item)


def _check(item: Any, fields: dict[str, str], where: Callable[[str], str], out: list[Problem]) -> None:
    for field, what in fields.items():
        for value in _values(getattr(item, field, None)):
            if why := control_problem(what, value):
                out.append(Problem(where(field), why))
                break


def single_line_problems(plan_file: PlanFile, loc: Locator) -> list[Problem]:
    """Every one-line field of the plan with a control character, located."""
    out: list[Problem] = []
    _check(plan_file.plan, PLAN_FIELDS, loc.plan, out)
    for i, person in enumerate(plan_file.people):
        _check(person, PERSON_FIELDS, partial(loc.person, i), out)
    for i, dept in enumerate(plan_file.departments):
        _check(dept, DEPARTMENT_FIELDS, partial(loc.department, i), out)
    for si, system in enumerate(plan_file.systems):
        for pi, project in enumerate(system.projects):
            for ti, task in enumerate(project.tasks):
                _check(task, TASK_FIELDS, partial(loc.task, si, pi, ti, code=task.code), out)
    return out
