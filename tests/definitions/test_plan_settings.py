"""A plan's life settings in YAML and spreadsheets: 实施截止日期 (plan.ends_on), 下达方式
(announce_on_import), 督办通报 (bulletin_every), office members' lines (督办条线) and a recurring
or ongoing task's 截止日期 (until); their problems, their diff lines, and export → re-import."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from definitions.export import write_plan_file
from definitions.loaders import load_plan
from definitions.problems import PlanProblems
from duban.db import session_scope
from duban.models import Person, Plan, PlanRole, Task
from duban.plans.export import plan_file_from_store
from duban.plans.importer import import_plan
from tests.factories import DEPARTMENT_ROWS, PEOPLE_ROWS, small_plan, task_of, write_xlsx, write_yaml

HEADER = ["序号", "育人体系", "重点项目", "具体任务", "牵头单位", "责任人", "完成时限", "截止日期"]
TASKS = [
    HEADER,
    [1, "课程育人", "思政课", "集体备课", "教务处", "教务处处长", "2026-12-31", ""],
    [2, "文化育人", "核心价值观", "文明校园创建", "宣传部", "", "长期坚持", "2027年12月底"],
]
PLAN_ROWS = [
    ["方案编号", "xy"],
    ["方案名称", "示例方案"],
    ["领导小组办公室", "宣传部部长、教务处处长"],
    ["实施截止日期", "2028-07-31"],
    ["下达方式", "导入即下达"],
    ["督办通报", "每周和每月"],
]


def settings_plan() -> dict:
    plan = small_plan()
    plan["plan"].update(
        ends_on="2028年7月底",
        announce_on_import=True,
        bulletin_every="每月",
        office=["党委书记", {"name": "督办员", "systems": ["课程育人"], "departments": ["宣传部"]}],
    )
    task_of(plan, "4")["until"] = "2027-12-31"
    return plan


def people(lines: dict[str, str]) -> list[list[str]]:
    """The 人员 sheet with a 督办条线 column."""
    return [[*PEOPLE_ROWS[0], "督办条线"], *([*r, lines.get(r[0], "")] for r in PEOPLE_ROWS[1:])]


def problems(path) -> list[str]:
    with pytest.raises(PlanProblems) as err:
        load_plan(path)
    return [str(p) for p in err.value.problems]


def test_yaml_settings_resolve(tmp_path):
    d = load_plan(write_yaml(tmp_path / "p.yaml", settings_plan()))
    assert (d.ends_on, d.announce_on_import, d.bulletin_every) == (dt.date(2028, 7, 31), True, "month")
    assert d.office == ("党委书记", "督办员")
    assert d.office_scopes == {"督办员": {"systems": ["课程育人"], "departments": ["宣传部"]}}
    assert {t.code: t.ends_on for t in d.tasks} == {"1": None, "2": None, "3": None, "4": dt.date(2027, 12, 31)}


def test_yaml_defaults(tmp_path):
    d = load_plan(write_yaml(tmp_path / "p.yaml", small_plan()))
    assert (d.ends_on, d.announce_on_import, d.bulletin_every, d.office_scopes) == (None, False, "week", {})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda p: p["plan"].update(ends_on="每学期"),
            "p.yaml · plan.ends_on：实施截止日期“每学期”不是具体日期：请填写一个日期，如 2028-07-31 或 2028年7月底",
        ),
        (
            lambda p: p["plan"].update(bulletin_every="每季度"),
            "p.yaml · plan.bulletin_every：督办通报“每季度”无法识别：请填写“每周”“每月”或“每周和每月”",
        ),
        (
            lambda p: p["plan"].update(office=[{"name": "督办员", "systems": ["网络育人"]}]),
            "p.yaml · plan.office[0].systems：督办条线中的育人体系“网络育人”不在方案中（方案中的育人体系有：课程育人、文化育人）",
        ),
        (
            lambda p: p["plan"].update(office=[{"name": "督办员", "departments": ["财务处"]}]),
            "p.yaml · plan.office[0].departments：督办条线中的部门“财务处”不在部门表中：请填写部门表中的部门名称",
        ),
        (
            lambda p: p["plan"].update(office=[{"name": "督办员", "area": ["课程育人"]}]),
            "p.yaml · plan.office[0].area：不认识的字段“area”，可用的字段有：name、systems、departments、lines",
        ),
        (
            lambda p: task_of(p, "1").update(until="2027-06-30"),
            "p.yaml · systems[0].projects[0].tasks[0].until（任务 1）：截止日期只适用于周期性或长期任务（如每学期、每月、长期坚持）；"
            "本任务的完成时限为“2026年12月底前”，无需填写截止日期",
        ),
    ],
    ids=["ends-on-not-a-date", "bulletin", "unknown-system", "unknown-department", "unknown-field", "until-on-a-dated-task"],
)
def test_yaml_problems(tmp_path, change, message):
    plan = small_plan()
    change(plan)
    assert problems(write_yaml(tmp_path / "p.yaml", plan)) == [message]


def test_spreadsheet_settings_and_lines(tmp_path):
    sheets = {"方案": PLAN_ROWS, "任务清单": TASKS, "人员": people({"宣传部部长": "文化育人、教务处"}), "部门": DEPARTMENT_ROWS}
    d = load_plan(write_xlsx(tmp_path / "p.xlsx", sheets))
    assert (d.ends_on, d.announce_on_import, d.bulletin_every) == (dt.date(2028, 7, 31), True, "both")
    assert d.office == ("宣传部部长", "教务处处长")
    assert d.office_scopes == {"宣传部部长": {"systems": ["文化育人"], "departments": ["教务处"]}}
    assert [t.ends_on for t in d.tasks] == [None, dt.date(2027, 12, 31)]


@pytest.mark.parametrize(
    ("plan_rows", "lines", "message"),
    [
        (
            PLAN_ROWS,
            {"宣传部部长": "文化育人、图书馆"},
            "p.xlsx · 工作表「人员」 · 第 5 行 · 「督办条线」列：督办条线“图书馆”既不是方案中的育人体系，也不是部门表中的部门："
            "请填写育人体系或部门的名称（方案中的育人体系有：课程育人、文化育人）",
        ),
        (
            PLAN_ROWS,
            {"党委书记": "课程育人"},
            "p.xlsx · 工作表「人员」 · 第 2 行 · 「督办条线」列：“党委书记”不是领导小组办公室成员，不需要填写督办条线："
            "请先在「方案」表的“领导小组办公室”一行中填写其姓名",
        ),
        (
            [*PLAN_ROWS[:4], ["下达方式", "尽快"], PLAN_ROWS[5]],
            {},
            "p.xlsx · 工作表「方案」 · 第 5 行 · 「下达方式」列：下达方式“尽快”无法识别：请填写“导入即下达”或“另行下达”（导入后由领导小组办公室下达）",
        ),
    ],
    ids=["unknown-line", "line-outside-the-office", "announce-word"],
)
def test_spreadsheet_problems(tmp_path, plan_rows, lines, message):
    sheets = {"方案": plan_rows, "任务清单": TASKS, "人员": people(lines), "部门": DEPARTMENT_ROWS}
    assert problems(write_xlsx(tmp_path / "p.xlsx", sheets)) == [message]


def test_a_dated_task_with_a_last_day_in_the_sheet(tmp_path):
    rows = [HEADER, [1, "课程育人", "思政课", "集体备课", "教务处", "教务处处长", "2026-12-31", "2027-12-31"]]
    assert problems(write_xlsx(tmp_path / "p.xlsx", {"任务清单": rows, "人员": PEOPLE_ROWS, "部门": DEPARTMENT_ROWS})) == [
        "p.xlsx · 工作表「任务清单」 · 第 2 行 · 「截止日期」列：截止日期只适用于周期性或长期任务（如每学期、每月、长期坚持）；"
        "本任务的完成时限为“2026-12-31”，无需填写截止日期"
    ]


def test_store_diff_and_export_round_trip(engine, tmp_path):
    first = import_plan(engine, write_yaml(tmp_path / "p.yaml", settings_plan()))
    assert first.plan_created
    with session_scope(engine) as s:
        plan = s.scalar(select(Plan))
        assert (plan.ends_on, plan.announce_on_import, plan.bulletin_every) == (dt.date(2028, 7, 31), True, "month")
        scopes = dict(s.execute(select(Person.name, PlanRole.scope).join(PlanRole, PlanRole.person_id == Person.id)).all())
        assert scopes == {"党委书记": {}, "督办员": {"systems": ["课程育人"], "departments": ["宣传部"]}}
        assert s.scalar(select(Task.ends_on).where(Task.code == "4")) == dt.date(2027, 12, 31)

    changed = settings_plan()
    changed["plan"].update(ends_on="2028-06-30", announce_on_import=False, bulletin_every="每周和每月")
    changed["plan"]["office"][1]["departments"] = []
    task_of(changed, "4")["until"] = "2028-01-31"
    diff = import_plan(engine, write_yaml(tmp_path / "p.yaml", changed))
    assert diff.plan_details == [
        "实施截止日期：2028-07-31 → 2028-06-30",
        "导入即下达：是 → 否",
        "督办通报：每月 → 每周和每月",
        "督办条线（督办员）：课程育人、宣传部 → 课程育人",
    ]
    assert [(c.code, c.details) for c in diff.changed] == [("4", ["截止日期：2027-12-31 → 2028-01-31"])]

    for suffix in (".yaml", ".xlsx"):
        with session_scope(engine) as s:
            out = write_plan_file(plan_file_from_store(s, "demo"), tmp_path / f"exported{suffix}")
        again = import_plan(engine, out, dry_run=True)
        assert (again.plan_details, again.changed, again.added, again.archived) == ([], [], [], []), suffix
