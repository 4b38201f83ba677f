"""Reading spreadsheets and YAML the way offices write them."""

from __future__ import annotations

import datetime as dt

import pytest

from definitions.loaders import load_plan
from tests.factories import DEPARTMENT_ROWS, PEOPLE_ROWS, small_plan, write_xlsx, write_yaml

HEADER = ["序号", "育人体系", "重点项目", "具体任务", "牵头单位", "责任人", "完成时限", "路线图"]


def _rows(*tasks):
    return [HEADER, *tasks]


def test_yaml_small_plan_resolves(tmp_path):
    d = load_plan(write_yaml(tmp_path / "p.yaml", small_plan()))
    assert [t.code for t in d.tasks] == ["1", "2", "3", "4"]
    t1, t2, t3, t4 = d.tasks
    assert [(m.seq, m.title, m.due, m.is_final) for m in t1.milestones] == [
        (1, "制定方案", dt.date(2026, 11, 20), False),
        (2, "中期检查", dt.date(2026, 12, 15), False),
        (3, "全部完成（达到完成标志）", dt.date(2026, 12, 31), True),
    ]
    assert (t2.schedule, t2.owner, t2.milestones[-1].due) == ("once", "教务处副处长", dt.date(2027, 6, 30))
    # owner and supervisor default to the lead department's head and supervising leader
    assert (t3.schedule, t3.period, t3.owner, t3.supervisor) == ("recurring", "semester", "宣传部部长", "党委书记")
    assert (t4.schedule, t4.period, t4.milestones) == ("ongoing", "quarter", ())
    assert d.leading_group == ("党委书记",) and d.office == ("督办员",)


@pytest.mark.parametrize(
    "header",
    [
        ["序号", "育人体系", "重点项目", "具体任务", "牵头单位", "责任人", "完成时限", "路线图"],
        ["编号", "体系", "项目", "任务内容", "牵头部门", "责任人", "完成时间", "阶段安排"],
        ["任务编号", "类别", "项目名称", "具体任务", "责任单位", "具体责任人", "时间节点", "里程碑"],
        ["序 号", "育人体系*", "重点项目（名称）", "工作任务", "责任部门", "责任人", "完成期限", "实施步骤"],
    ],
    ids=["standard", "variant-a", "variant-b", "spaces-stars-brackets"],
)
def test_header_variants(tmp_path, header):
    rows = [header, ["1", "课程育人", "思政课", "集体备课", "教务处", "教务处处长", "2026年12月底前", "2026-11-30 制定方案"]]
    path = write_xlsx(tmp_path / "p.xlsx", {"任务清单": rows, "人员": PEOPLE_ROWS, "部门": DEPARTMENT_ROWS})
    (task,) = load_plan(path).tasks
    assert (task.code, task.system, task.project, task.title, task.lead_department, task.owner) == (
        "1",
        "课程育人",
        "思政课",
        "集体备课",
        "教务处",
        "教务处处长",
    )
    assert [(m.title, m.due) for m in task.milestones] == [
        ("制定方案", dt.date(2026, 11, 30)),
        ("全部完成（达到完成标志）", dt.date(2026, 12, 31)),
    ]


def test_title_row_merged_cells_and_blank_fill_down(tmp_path):
    rows = [
        ["某某学院“三全育人”重点任务清单"],
        HEADER,
        [1, "课程育人", "思政课创优", "集体备课", "教务处", "教务处处长", "2026年12月", None],
        [2, None, None, "建设资源库", "教务处", "教务处处长", "2027-03-31", None],
        [3, None, "通识课程", "开设通识课", "教务处", "教务处处长", dt.datetime(2027, 6, 30), None],
        [4, "文化育人", "核心价值观", "开设选修课", "宣传部", "宣传部部长", "每学期末", None],
        [5, None, None, "主题讲座", "宣传部", None, 46418, None],  # blank cells and an Excel serial
    ]
    path = write_xlsx(
        tmp_path / "p.xlsx",
        {"任务清单": rows, "人员": PEOPLE_ROWS, "部门": DEPARTMENT_ROWS},
        merges={"任务清单": ["A1:H1", "B3:B5", "C3:C4"]},
    )
    d = load_plan(path)
    assert [(t.code, t.system, t.project) for t in d.tasks] == [
        ("1", "课程育人", "思政课创优"),
        ("2", "课程育人", "思政课创优"),
        ("3", "课程育人", "通识课程"),
        ("4", "文化育人", "核心价值观"),
        ("5", "文化育人", "核心价值观"),
    ]
    assert [t.milestones[-1].due if t.milestones else None for t in d.tasks] == [
        dt.date(2026, 12, 31),
        dt.date(2027, 3, 31),
        dt.date(2027, 6, 30),
        None,
        dt.date(2027, 1, 31),
    ]
    assert d.tasks[4].owner == "宣传部部长"  # blank owner: the lead department's head
    assert [g.name for g in d.systems] == ["课程育人", "文化育人"]


def test_section_heading_rows_are_not_tasks(tmp_path):
    rows = [
        HEADER,
        [None, "一、课程育人", None, None, None, None, None, None],
        [None, None, "（一）思政课创优", None, None, None, None, None],
        [1, None, None, "集体备课", "教务处", "教务处处长", "2026年底", None],
    ]
    path = write_xlsx(tmp_path / "p.xlsx", {"任务清单": rows, "人员": PEOPLE_ROWS, "部门": DEPARTMENT_ROWS})
    (task,) = load_plan(path).tasks
    assert (task.system, task.project, task.milestones[-1].due) == ("一、课程育人", "（一）思政课创优", dt.date(2026, 12, 31))


def test_plan_sheet_settings(tmp_path):
    plan_rows = [
        ["方案编号", "xy-2026"],
        ["方案名称", "示例方案"],
        ["单位", "示例学院"],
        ["办结需审核", "否"],
        ["长期任务反馈周期", "每月"],
        ["领导小组", "党委书记、分管教学副校长"],
        ["领导小组办公室", "宣传部部长"],
    ]
    rows = _rows([1, "课程育人", "思政课", "集体备课", "教务处", "", "长期坚持", ""])
    path = write_xlsx(tmp_path / "p.xlsx", {"方案": plan_rows, "任务清单": rows, "人员": PEOPLE_ROWS, "部门": DEPARTMENT_ROWS})
    d = load_plan(path)
    assert (d.code, d.name, d.organization, d.approval_required, d.report_every) == ("xy-2026", "示例方案", "示例学院", False, "month")
    assert d.leading_group == ("党委书记", "分管教学副校长") and d.office == ("宣传部部长",)
    assert (d.tasks[0].schedule, d.tasks[0].period) == ("ongoing", "month")


def test_without_people_sheet_people_are_created_with_a_warning(tmp_path):
    path = write_xlsx(
        tmp_path / "任务.xlsx", {"任务清单": _rows([1, "课程育人", "思政课", "集体备课", "教务处", "王老师", "2026年底", ""])}
    )
    d = load_plan(path, plan_code="p1")
    assert d.code == "p1"
    assert [p.name for p in d.people] == ["王老师"] and [x.name for x in d.departments] == ["教务处"]
    assert d.warnings == (
        "文件中没有部门表，已按任务中出现的名称登记 1 个部门（未指定负责人）",
        "文件中没有人员表，已按任务中出现的姓名登记 1 位人员（暂无联系方式，无法接收提醒）",
    )


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_csv_with_sibling_people_and_department_files(tmp_path, encoding):
    import csv

    def write(name, rows):
        with open(tmp_path / name, "w", encoding=encoding, newline="") as f:
            csv.writer(f).writerows(rows)

    write("清单.csv", _rows(["1", "课程育人", "思政课", "集体备课", "教务处", "", "2026/12/31", "2026年11月 调研；2026年12月中旬 定稿"]))
    write("人员.csv", PEOPLE_ROWS)
    write("部门.csv", DEPARTMENT_ROWS)
    d = load_plan(tmp_path / "清单.csv")
    assert d.code == "清单"
    (task,) = d.tasks
    assert task.owner == "教务处处长"
    assert [(m.title, m.due) for m in task.milestones] == [
        ("调研", dt.date(2026, 11, 30)),
        ("定稿", dt.date(2026, 12, 20)),
        ("全部完成（达到完成标志）", dt.date(2026, 12, 31)),
    ]
    assert {p.name: p.mobile for p in d.people}["教务处处长"] == "13800000001"


@pytest.mark.parametrize(
    ("deadline", "roadmap", "schedule", "period", "month", "dues"),
    [
        ("2026-12-31", None, "once", None, None, [dt.date(2026, 12, 31)]),
        ("2026/12/31", None, "once", None, None, [dt.date(2026, 12, 31)]),
        ("2026年12月31日", None, "once", None, None, [dt.date(2026, 12, 31)]),
        ("2026年12月底前", None, "once", None, None, [dt.date(2026, 12, 31)]),
        ("2026年12月底", None, "once", None, None, [dt.date(2026, 12, 31)]),
        ("2026年12月", None, "once", None, None, [dt.date(2026, 12, 31)]),
        ("2026年底", None, "once", None, None, [dt.date(2026, 12, 31)]),
        ("2027年上半年", None, "once", None, None, [dt.date(2027, 6, 30)]),
        ("2027年下半年", None, "once", None, None, [dt.date(2027, 12, 31)]),
        ("每学期", None, "recurring", "semester", None, []),
        ("每学期末", None, "recurring", "semester", None, []),
        ("每年3月", None, "recurring", "year", 3, []),
        ("每季度", None, "recurring", "quarter", None, []),
        ("每月", None, "recurring", "month", None, []),
        ("长期坚持", None, "ongoing", "semester", None, []),
        ("持续推进", None, "ongoing", "semester", None, []),
        (None, "2026年12月底前 制定方案；2027年6月 中期检查", "once", None, None, [dt.date(2026, 12, 31), dt.date(2027, 6, 30)]),
        ("每学期末", "2026年12月 制定方案", "recurring", "semester", None, [dt.date(2026, 12, 31)]),
    ],
)
def test_every_deadline_form(tmp_path, deadline, roadmap, schedule, period, month, dues):
    plan = small_plan()
    task = plan["systems"][0]["projects"][0]["tasks"][0]
    task["deadline"] = deadline
    task["roadmap"] = roadmap
    t = load_plan(write_yaml(tmp_path / "p.yaml", plan)).tasks[0]
    assert (t.schedule, t.period, t.period_month) == (schedule, period, month)
    assert [m.due for m in t.milestones] == dues
    if dues:
        assert t.milestones[-1].is_final is (schedule == "once")


def test_roadmap_as_list_in_yaml_and_sorted_by_date(tmp_path):
    plan = small_plan()
    task = plan["systems"][0]["projects"][0]["tasks"][0]
    task["roadmap"] = [{"due": "2026-12-20", "title": "验收"}, {"due": dt.date(2026, 12, 1), "title": "启动"}]
    task["deadline"] = "2026-12-20"
    t = load_plan(write_yaml(tmp_path / "p.yaml", plan)).tasks[0]
    assert [(m.seq, m.title, m.due, m.is_final) for m in t.milestones] == [
        (1, "启动", dt.date(2026, 12, 1), False),
        (2, "验收", dt.date(2026, 12, 20), True),
    ]


def test_heading_merged_across_the_row_is_not_a_task(tmp_path):
    rows = [
        HEADER,
        ["一、课程育人体系"],
        [1, "课程育人", "思政课", "集体备课", "教务处", "教务处处长", "2026年底", None],
    ]
    path = write_xlsx(tmp_path / "p.xlsx", {"任务清单": rows, "人员": PEOPLE_ROWS, "部门": DEPARTMENT_ROWS}, merges={"任务清单": ["A2:H2"]})
    assert [t.code for t in load_plan(path).tasks] == ["1"]


def test_exact_header_beats_a_noted_one(tmp_path):
    header = ["序号", "育人体系", "重点项目", "具体任务", "牵头单位", "完成时限（计划）", "完成时限"]
    rows = [header, [1, "课程育人", "思政课", "集体备课", "教务处", "2026年6月", "2026年底"]]
    path = write_xlsx(tmp_path / "p.xlsx", {"任务清单": rows, "人员": PEOPLE_ROWS, "部门": DEPARTMENT_ROWS})
    assert load_plan(path).tasks[0].milestones[-1].due == dt.date(2026, 12, 31)


def test_problems_in_a_sibling_csv_name_that_file(tmp_path):
    import csv

    from definitions.problems import PlanProblems

    def write(name, rows):
        with open(tmp_path / name, "w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows(rows)

    write("清单.csv", _rows(["1", "课程育人", "思政课", "集体备课", "教务处", "", "2026年底", ""]))
    write("人员.csv", [*PEOPLE_ROWS, ["李四", "教务处", "科员", "lisi-at-example.org", "", "", ""]])
    write("部门.csv", DEPARTMENT_ROWS)
    with pytest.raises(PlanProblems) as err:
        load_plan(tmp_path / "清单.csv")
    assert [str(p) for p in err.value.problems] == [
        "人员.csv · 第 6 行 · 「邮箱」列：邮箱“lisi-at-example.org”格式不正确，应形如 name@example.org"
    ]


def test_a_number_that_looks_like_a_year_is_explained(tmp_path):
    from definitions.problems import PlanProblems

    path = write_xlsx(
        tmp_path / "p.xlsx",
        {
            "任务清单": _rows([1, "课程育人", "思政课", "集体备课", "教务处", "教务处处长", 2026.10, None]),
            "人员": PEOPLE_ROWS,
            "部门": DEPARTMENT_ROWS,
        },
    )
    with pytest.raises(PlanProblems) as err:
        load_plan(path)
    (problem,) = err.value.problems
    assert problem.where == "p.xlsx · 工作表「任务清单」 · 第 2 行 · 「完成时限」列"
    assert "年份" in problem.message


def test_policy_overrides_from_yaml_and_the_plan_sheet(tmp_path):
    plan = small_plan()
    plan["plan"]["policy"] = {"remind_before": [5, 1], "escalate_head_after": 2}
    plan["systems"][0]["projects"][0]["tasks"][0]["policy"] = {"overdue_every": 1}
    d = load_plan(write_yaml(tmp_path / "p.yaml", plan))
    assert d.policy == {"remind_before": [5, 1], "escalate_head_after": 2}
    assert d.tasks[0].policy == {"overdue_every": 1} and d.tasks[1].policy == {}

    rows = _rows([1, "课程育人", "思政课", "集体备课", "教务处", "教务处处长", "2026年底", None])
    plan_rows = [["方案编号", "x"], ["方案名称", "示例"], ["到期前提醒（工作日）", "10、5、0"], ["逾期报部门负责人（工作日）", 2]]
    path = write_xlsx(tmp_path / "p.xlsx", {"方案": plan_rows, "任务清单": rows, "人员": PEOPLE_ROWS, "部门": DEPARTMENT_ROWS})
    assert load_plan(path).policy == {"remind_before": [10, 5, 0], "escalate_head_after": 2}


def test_office_batch_times_from_yaml_and_the_plan_sheet(tmp_path):
    from definitions.problems import PlanProblems

    plan = small_plan()
    plan["plan"]["policy"] = {"office_batch_times": ["9:30", "16:00"]}
    assert load_plan(write_yaml(tmp_path / "p.yaml", plan)).policy == {"office_batch_times": ["9:30", "16:00"]}
    plan["plan"]["policy"] = {"office_batch_times": ["10:00", "25:00"]}
    with pytest.raises(PlanProblems) as err:
        load_plan(write_yaml(tmp_path / "bad.yaml", plan))
    assert [str(p) for p in err.value.problems] == [
        "bad.yaml · plan.policy：督办规则“office_batch_times”：时刻“25:00”无法识别：请写作 HH:MM（当地时间，00:00–23:59），如 10:00"
    ]
    rows = _rows([1, "课程育人", "思政课", "集体备课", "教务处", "教务处处长", "2026年底", None])
    plan_rows = [["方案编号", "x"], ["方案名称", "示例"], ["待审核通知汇总时刻", "10:00、15:30"]]
    path = write_xlsx(tmp_path / "p.xlsx", {"方案": plan_rows, "任务清单": rows, "人员": PEOPLE_ROWS, "部门": DEPARTMENT_ROWS})
    assert load_plan(path).policy == {"office_batch_times": ["10:00", "15:30"]}


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            {"remind": [1]},
            "不认识的督办规则“remind”，可用的有：remind_before、overdue_every、overdue_cap、escalate_head_after、escalate_supervisor_after、escalate_office_after、ack_within、ack_escalate_after、report_remind_before、report_grace、approval_remind_after、announce_grace、renotice_every、send_hours、office_batch_times、assessment",
        ),
        (
            {"overdue_every": 0},
            "督办规则“overdue_every”取值不正确（Input should be greater than or equal to 1）：天数应为不小于 1 的整数，提醒天数为整数列表",
        ),
    ],
)
def test_bad_policy_is_reported(tmp_path, policy, message):
    from definitions.problems import PlanProblems

    plan = small_plan()
    plan["plan"]["policy"] = policy
    with pytest.raises(PlanProblems) as err:
        load_plan(write_yaml(tmp_path / "p.yaml", plan))
    assert [str(p) for p in err.value.problems] == [f"p.yaml · plan.policy：{message}"]
