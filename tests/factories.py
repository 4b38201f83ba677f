"""Plans built in code for tests: a small YAML-shaped dict and spreadsheet writers."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

# the week the message tests run in: the small plan imported on 2 Nov 2026 and announced, the sweep
# on Monday 23 Nov (Beijing time); their link secret and the address links point to
TZ = ZoneInfo("Asia/Shanghai")
IMPORTED = dt.datetime(2026, 11, 2, 9, 0, tzinfo=TZ)
MON = dt.date(2026, 11, 23)
LINK_SECRET = "k" * 8 + "0123456789abcdefghijklmnopqrstuv"
BASE = "https://duban.example.edu.cn"

SMALL_PLAN: dict[str, Any] = {
    "version": 1,
    "plan": {
        "code": "demo",
        "name": "测试方案",
        "organization": "测试学院",
        "leading_group": ["党委书记"],
        "office": ["督办员"],
    },
    "departments": [
        {"name": "教务处", "head": "教务处处长", "supervisor": "分管教学副校长"},
        {"name": "宣传部", "head": "宣传部部长", "supervisor": "党委书记"},
    ],
    "people": [
        {"name": "党委书记", "title": "党委书记", "email": "sj@example.org"},
        {"name": "分管教学副校长", "title": "副校长", "email": "fx@example.org", "manager": "党委书记"},
        {
            "name": "教务处处长",
            "department": "教务处",
            "title": "处长",
            "email": "jwc@example.org",
            "mobile": "13800000001",
            "manager": "分管教学副校长",
        },
        {"name": "教务处副处长", "department": "教务处", "title": "副处长", "email": "jwc2@example.org", "manager": "教务处处长"},
        {"name": "宣传部部长", "department": "宣传部", "title": "部长", "email": "xcb@example.org", "manager": "党委书记"},
        {"name": "督办员", "title": "督办员", "email": "db@example.org"},
    ],
    "systems": [
        {
            "name": "课程育人",
            "projects": [
                {
                    "name": "思政课创优",
                    "tasks": [
                        {
                            "code": "1",
                            "title": "集体备课",
                            "owner": "教务处处长",
                            "lead_department": "教务处",
                            "partners": ["宣传部"],
                            "deadline": "2026年12月底前",
                            "roadmap": "2026年11月20日 制定方案；2026年12月15日 中期检查",
                        },
                        {
                            "code": "2",
                            "title": "建设课程资源库",
                            "owner": "教务处副处长",
                            "lead_department": "教务处",
                            "deadline": "2027年上半年",
                        },
                    ],
                },
            ],
        },
        {
            "name": "文化育人",
            "projects": [
                {
                    "name": "核心价值观",
                    "tasks": [
                        {"code": "3", "title": "开设选修课", "lead_department": "宣传部", "deadline": "每学期末"},
                        {
                            "code": "4",
                            "title": "文明校园创建",
                            "lead_department": "宣传部",
                            "deadline": "长期坚持",
                            "report_every": "每季度",
                        },
                    ],
                },
            ],
        },
    ],
}


def small_plan() -> dict[str, Any]:
    return copy.deepcopy(SMALL_PLAN)


def task_of(plan: dict[str, Any], code: str) -> dict[str, Any]:
    for s in plan["systems"]:
        for p in s["projects"]:
            for t in p["tasks"]:
                if t["code"] == code:
                    return t
    raise KeyError(code)


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def write_xlsx(path: Path, sheets: dict[str, list[list[Any]]], merges: dict[str, list[str]] | None = None) -> Path:
    """Write sheets given as rows; ``merges`` maps a sheet to ranges like ``"B3:B5"``."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
        for rng in (merges or {}).get(name, []):
            ws.merge_cells(rng)
    wb.save(path)
    return path


PEOPLE_ROWS = [
    ["姓名", "部门", "职务", "邮箱", "手机", "通知地址", "直接上级"],
    ["党委书记", "", "党委书记", "sj@example.org", "", "", ""],
    ["分管教学副校长", "", "副校长", "fx@example.org", "", "", "党委书记"],
    ["教务处处长", "教务处", "处长", "jwc@example.org", "13800000001", "", "分管教学副校长"],
    ["宣传部部长", "宣传部", "部长", "xcb@example.org", "", "", "党委书记"],
]
DEPARTMENT_ROWS = [
    ["部门名称", "负责人", "分管校领导"],
    ["教务处", "教务处处长", "分管教学副校长"],
    ["宣传部", "宣传部部长", "党委书记"],
]


def rollup_plan() -> dict[str, Any]:
    """Five dated tasks in two systems, three projects and two departments (tests/test_rollup.py
    gives them a known history and checks every roll-up view against hand-computed numbers)."""
    plan = small_plan()
    plan["plan"]["code"] = "rollup"
    plan["plan"]["name"] = "汇总测试方案"
    plan["systems"] = [
        {
            "name": "课程育人",
            "projects": [
                {
                    "name": "思政课创优",
                    "tasks": [
                        {
                            "code": "1",
                            "title": "集体备课",
                            "owner": "教务处处长",
                            "lead_department": "教务处",
                            "deadline": "2026-12-31",
                            "roadmap": "2026年11月10日 制定方案；2026年11月20日 中期检查",
                        },
                        {
                            "code": "2",
                            "title": "建设课程资源库",
                            "owner": "教务处副处长",
                            "lead_department": "教务处",
                            "deadline": "2026-11-16",
                        },
                    ],
                },
                {
                    "name": "课程资源",
                    "tasks": [
                        {
                            "code": "5",
                            "title": "编写校本教材",
                            "owner": "教务处处长",
                            "lead_department": "教务处",
                            "deadline": "2026-10-30",
                        },
                    ],
                },
            ],
        },
        {
            "name": "文化育人",
            "projects": [
                {
                    "name": "核心价值观",
                    "tasks": [
                        {"code": "3", "title": "开设选修课", "owner": "宣传部部长", "lead_department": "宣传部", "deadline": "2026-11-13"},
                        {
                            "code": "4",
                            "title": "文明校园创建",
                            "owner": "宣传部部长",
                            "lead_department": "宣传部",
                            "deadline": "2026-11-30",
                        },
                    ],
                },
            ],
        },
    ]
    return plan


def import_announced(engine, path: Path, **options: Any):
    """Import a plan and record its tasks as announced (任务下达) at the import's time, as an office
    that handed the 任务书 out at the launch meeting would (``duban announce --no-notice``)."""
    from sqlalchemy import update

    from duban.db import session_scope
    from duban.models import Task
    from duban.plans.importer import import_plan

    diff = import_plan(engine, path, **options)
    with session_scope(engine) as session:
        session.execute(update(Task).where(Task.announced_at.is_(None)).values(announced_at=Task.assigned_at))
    return diff
