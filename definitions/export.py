"""Write a plan (``PlanFile``) as the XLSX template offices fill in, or as YAML.

The workbook has the sheets the importer reads: 方案 (plan settings), 任务清单 (one row per
task, systems and projects in merged cells as offices lay them out), 人员, 部门, plus 填写说明.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from definitions.loaders import read_plan_file
from definitions.plan_sheets import POLICY_KEYS
from definitions.schema import PlanFile
from duban.values import cells_as_text

TASK_HEADERS = (
    "序号",
    "育人体系",
    "重点项目",
    "具体任务",
    "任务书",
    "完成标志",
    "牵头单位",
    "责任人",
    "配合单位",
    "分管校领导",
    "完成时限",
    "路线图",
    "反馈周期",
    "截止日期",
)
PEOPLE_HEADERS = (
    "姓名",
    "部门",
    "职务",
    "邮箱",
    "手机",
    "通知地址",
    "直接上级",
    "督办条线",
    "工号",
    "企业微信账号",
    "钉钉userid",
    "飞书open_id",
)
TEXT_COLUMNS = (5, 9, 10, 11, 12)  # 手机, 工号 and the chat-app ids are text (leading zeros kept), not numbers
DEPARTMENT_HEADERS = ("部门名称", "负责人", "分管校领导", "通知地址")
INSTRUCTIONS = [
    "填写说明",
    "1. 「任务清单」每行一项具体任务；“序号”在方案内唯一，再次导入时据此匹配任务，请勿随意改动。",
    "2. 育人体系、重点项目可合并单元格，也可只在第一行填写，下方留空表示同上。",
    "3. 完成时限可写：2026-12-31、2026/12/31、2026年12月31日、2026年12月底（前）、2026年12月、2026年底、2027年上半年/下半年、"
    "每学期（末）、每年3月、每季度、每月、长期坚持/持续推进（长期任务按“反馈周期”定期反馈进展）。",
    "4. 路线图写若干带时间的步骤，用分号隔开，如：2026年12月底前 制定方案；2027年6月 中期检查；2027年12月 总结验收。"
    "每一步的时间不能晚于完成时限。",
    "5. 责任人须在「人员」表中登记；牵头单位、配合单位须在「部门」表中登记。责任人留空时，由牵头单位负责人负责。",
    "6. 「人员」表的通知地址可填写 apprise 通知地址（mailto://、wecombot://、dingtalk://、feishu:// 等），多个用空格分隔，"
    "按优先顺序排列：前一个发送失败时改用下一个；写 email 表示经单位邮件服务器发到本人邮箱（不写时，有邮箱者最后用邮件）；"
    "地址前加 always= 表示该渠道每次都发。钉钉地址末尾写手机号可在群里 @ 本人（dingtalk://密钥@令牌/手机号）。",
    "7. 导入前可先预览：duban import 文件.xlsx --dry-run；有问题时会逐条指出工作表、行号和列名，全部无误才会写入。",
    "8. 「部门」表的通知地址填部门群机器人，本部门牵头任务的督办会同时发到群里；「方案」表的领导小组/办公室通知地址接收督办通报。"
    "通知发送时段如 08:00-18:00（工作日），不填按系统设置。通知地址含密钥，请妥善保管本文件。",
    "9. 「方案」表的实施截止日期是改革实施期限的最后一天，周期性、长期任务到此为止（不填为路线图中最晚的日期）；"
    "「任务清单」的截止日期只给周期性或长期任务填写（到哪一天为止），有明确完成时限的任务不填。",
    "10. 下达方式：“另行下达”（缺省）表示导入后由领导小组办公室在系统中下达（duban announce 或看板“任务下达”），"
    "“导入即下达”表示导入后立即向责任人发出任务书。督办通报填“每周”“每月”或“每周和每月”。",
    "11. 「人员」表的督办条线只给领导小组办公室成员填写：其负责督办的育人体系或部门，用顿号隔开；"
    "逾期督办到办公室时只发给负责该条线的督办员，不填表示负责全部。",
    "12. 「人员」表的工号用于统一身份认证登录；企业微信账号（成员 UserID）、钉钉userid、飞书open_id（ou_ 开头）"
    "填写后，若系统配置了相应的单位应用，督办提醒会以应用消息（卡片）直接发到本人手机上，与邮件等通知地址同时发送。",
]


def _due(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.date()
    return value


def _due_text(value: Any) -> str:
    value = _due(value)
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def roadmap_text(roadmap: Any) -> str:
    if roadmap is None:
        return ""
    if isinstance(roadmap, str):
        return roadmap
    return "；".join(f"{_due_text(step.due)} {step.title}".strip() for step in roadmap)


def write_plan_file(plan_file: PlanFile, out: str | Path) -> Path:
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix in {".yaml", ".yml"}:
        out.write_text(to_yaml(plan_file), encoding="utf-8")
    elif suffix == ".xlsx":
        write_workbook(plan_file, out)
    else:
        raise ValueError(f"无法导出为“{out.suffix or out.name}”：请使用 .xlsx 或 .yaml 文件名")
    return out


def to_yaml(plan_file: PlanFile) -> str:
    data = plan_file.model_dump(mode="json", exclude_defaults=True)
    data = {"version": 1, **data}
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1000)


_BOLD = Font(bold=True)
_FILL = PatternFill("solid", fgColor="DDEBF7")
_WRAP = Alignment(wrap_text=True, vertical="top")
_CENTER = Alignment(vertical="center", horizontal="center", wrap_text=True)
_TASK_WIDTHS = (9, 12, 22, 36, 40, 30, 14, 16, 20, 16, 16, 44, 10, 14)


def write_workbook(plan_file: PlanFile, out: Path) -> None:
    """The plan as the XLSX template: 方案, 任务清单, 人员, 部门 and 填写说明."""
    wb = Workbook()
    _plan_sheet(wb.active, plan_file.plan)
    _task_sheet(wb.create_sheet("任务清单"), plan_file)
    ws = wb.create_sheet("人员")
    lines = {m.name: "、".join([*m.systems, *m.departments, *m.lines]) for m in plan_file.plan.office if not isinstance(m, str)}
    _table(
        ws,
        PEOPLE_HEADERS,
        width=22,
        rows=(
            [
                person.name,
                person.department or "",
                person.title or "",
                person.email or "",
                person.mobile or "",
                " ".join(person.notify),
                person.manager or "",
                lines.get(person.name, ""),
                person.staff_no or "",
                person.wecom_userid or "",
                person.dingtalk_userid or "",
                person.feishu_open_id or "",
            ]
            for person in plan_file.people
        ),
    )
    for r in range(2, ws.max_row + 1):
        for c in TEXT_COLUMNS:
            ws.cell(r, c).number_format = "@"
    _table(
        wb.create_sheet("部门"),
        DEPARTMENT_HEADERS,
        width=24,
        rows=([d.name, d.head or "", d.supervisor or "", " ".join(d.notify)] for d in plan_file.departments),
    )
    ws = wb.create_sheet("填写说明")
    for line in INSTRUCTIONS:
        ws.append([line])
    ws.cell(1, 1).font = Font(bold=True, size=13)
    ws.column_dimensions["A"].width = 120
    wb.active = 1
    for sheet in wb.worksheets:  # names, tasks and notes are people's text, never formulas
        cells_as_text(sheet.iter_rows())
    wb.save(out)


def _plan_sheet(ws: Any, p: Any) -> None:
    """方案: the plan settings, one labelled row each; the policy keys it overrides."""
    ws.title = "方案"
    rows: list[tuple[str, Any]] = [
        ("方案编号", p.code),
        ("方案名称", p.name),
        ("单位", p.organization),
        ("办结需审核", "是" if p.approval_required else "否"),
        ("长期任务反馈周期", p.report_every),
        ("领导小组", "、".join(p.leading_group)),
        ("领导小组办公室", "、".join(m if isinstance(m, str) else m.name for m in p.office)),
        ("领导小组通知地址", " ".join(p.channels.leading_group)),
        ("领导小组办公室通知地址", " ".join(p.channels.office)),
        ("实施截止日期", _due(p.ends_on) if p.ends_on is not None else ""),
        ("下达方式", "导入即下达" if p.announce_on_import else "另行下达"),
        ("督办通报", p.bulletin_every),
    ]
    for label, field in POLICY_KEYS.items():
        if field in p.policy:
            value = p.policy[field]
            rows.append((label, "、".join(map(str, value)) if isinstance(value, (list, tuple)) else value))
    if "send_hours" not in p.policy:
        rows.append(("通知发送时段", ""))  # an empty row to fill in: the institution's default applies
    for key, value in rows:
        ws.append([key, value])
        ws.cell(ws.max_row, 1).font = _BOLD
    ws.column_dimensions["A"].width = 18
    ws.column_dimensions["B"].width = 60


def _task_sheet(ws: Any, plan_file: PlanFile) -> None:
    """任务清单: a title row, the headers, one row per task; systems and projects in merged cells."""
    p = plan_file.plan
    ws.append([f"{p.organization}{p.name} 重点任务清单".strip()])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(TASK_HEADERS))
    ws.cell(1, 1).font = Font(bold=True, size=14)
    ws.cell(1, 1).alignment = _CENTER
    ws.append(list(TASK_HEADERS))
    for c in range(1, len(TASK_HEADERS) + 1):
        ws.cell(2, c).font = _BOLD
        ws.cell(2, c).fill = _FILL
        ws.cell(2, c).alignment = _CENTER
    row = 3
    for s in plan_file.systems:
        s_start = row
        for pr in s.projects:
            p_start = row
            for t in pr.tasks:
                deadline = _due(t.deadline)
                ws.append(
                    [
                        t.code,
                        s.name,
                        pr.name,
                        t.title,
                        t.statement,
                        t.done_criteria,
                        t.lead_department or "",
                        t.owner or "",
                        "、".join(t.partners),
                        t.supervisor or "",
                        deadline if deadline is not None else "",
                        roadmap_text(t.roadmap),
                        t.report_every or "",
                        _due(t.until) if t.until is not None else "",
                    ]
                )
                if isinstance(deadline, dt.date):
                    ws.cell(row, 11).number_format = "yyyy-mm-dd"
                if isinstance(_due(t.until), dt.date):
                    ws.cell(row, 14).number_format = "yyyy-mm-dd"
                for c in range(1, len(TASK_HEADERS) + 1):
                    ws.cell(row, c).alignment = _WRAP
                row += 1
            if row - p_start > 1:
                ws.merge_cells(start_row=p_start, start_column=3, end_row=row - 1, end_column=3)
        if row - s_start > 1:
            ws.merge_cells(start_row=s_start, start_column=2, end_row=row - 1, end_column=2)
    for c, width in enumerate(_TASK_WIDTHS, 1):
        ws.column_dimensions[get_column_letter(c)].width = width
    ws.freeze_panes = "D3"


def _table(ws: Any, headers: tuple[str, ...], *, width: int, rows: Iterable[list[str]]) -> None:
    """A plain table: bold filled headers, one row per item, every column ``width`` wide."""
    ws.append(list(headers))
    for values in rows:
        ws.append(values)
    for c in range(1, len(headers) + 1):
        ws.cell(1, c).font = _BOLD
        ws.cell(1, c).fill = _FILL
        ws.column_dimensions[get_column_letter(c)].width = width


if __name__ == "__main__":  # python -m definitions.export plans/x.yaml plans/x.xlsx
    import sys

    source, target = sys.argv[1:3]
    write_plan_file(read_plan_file(source)[0], target)
    print(f"wrote {target}")
