"""Malformed files: every problem reported at once, each naming where it is; nothing written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from definitions.deadlines import ACCEPTED_FORMS
from definitions.loaders import load_plan
from definitions.problems import PlanProblems
from duban.db import session_scope
from duban.models import Event, Milestone, Person, Task
from duban.plans.importer import import_plan
from tests.factories import DEPARTMENT_ROWS, PEOPLE_ROWS, small_plan, task_of, write_xlsx, write_yaml

HEADER = ["序号", "育人体系", "重点项目", "具体任务", "牵头单位", "责任人", "完成时限", "路线图"]
GOOD = ["1", "课程育人", "思政课", "集体备课", "教务处", "教务处处长", "2026年12月底前", ""]


def xlsx(tmp_path, *rows, header=HEADER, people=PEOPLE_ROWS, departments=DEPARTMENT_ROWS):
    sheets = {"任务清单": [header, *rows]}
    if people:
        sheets["人员"] = people
    if departments:
        sheets["部门"] = departments
    return write_xlsx(tmp_path / "plan.xlsx", sheets)


def yaml_with(tmp_path, edit):
    plan = small_plan()
    edit(plan)
    return write_yaml(tmp_path / "plan.yaml", plan)


CASES = {
    "unknown-owner": (
        lambda p: xlsx(p, ["1", "课程育人", "思政课", "集体备课", "教务处", "张三", "2026年底", ""]),
        ["plan.xlsx · 工作表「任务清单」 · 第 2 行 · 「责任人」列：责任人“张三”不在人员表中：请先在人员表中登记，或改为人员表中已有的姓名"],
    ),
    "unknown-department": (
        lambda p: xlsx(p, ["1", "课程育人", "思政课", "集体备课", "教务部", "教务处处长", "2026年底", ""]),
        [
            "plan.xlsx · 工作表「任务清单」 · 第 2 行 · 「牵头单位」列：牵头单位“教务部”不在部门表中：请先在部门表中登记，或改为部门表中已有的名称"
        ],
    ),
    "duplicate-code": (
        lambda p: xlsx(p, GOOD, ["1", "课程育人", "思政课", "资源库", "教务处", "教务处处长", "2027年底", ""]),
        [
            "plan.xlsx · 工作表「任务清单」 · 第 3 行 · 「序号」列：任务编号“1”重复（工作表「任务清单」 · 第 2 行 · 「序号」列已使用）；编号在方案内须唯一"
        ],
    ),
    "unparseable-deadline": (
        lambda p: xlsx(p, ["1", "课程育人", "思政课", "集体备课", "教务处", "教务处处长", "尽快完成", ""]),
        [f"plan.xlsx · 工作表「任务清单」 · 第 2 行 · 「完成时限」列：完成时限“尽快完成”无法识别，请按下列写法之一修改。{ACCEPTED_FORMS}"],
    ),
    "missing-columns": (
        lambda p: xlsx(p, ["1", "集体备课", "教务处"], header=["序号", "具体任务", "牵头单位"]),
        [
            "plan.xlsx · 工作表「任务清单」：缺少必填列「育人体系」（也可写作：体系、类别、所属体系、育人类别、十大育人体系）",
            "plan.xlsx · 工作表「任务清单」：缺少必填列「重点项目」（也可写作：项目、项目名称、重点项目名称）",
            "plan.xlsx · 工作表「任务清单」：缺少必填列「完成时限」或「路线图」（至少需要其中一列；也可写作：完成时间、时间节点、完成期限、截止时间、阶段安排、里程碑、实施步骤、进度安排）",
        ],
    ),
    "milestone-after-deadline": (
        lambda p: xlsx(
            p, ["1", "课程育人", "思政课", "集体备课", "教务处", "教务处处长", "2026年12月底前", "2026年11月 调研；2027年3月 验收"]
        ),
        [
            "plan.xlsx · 工作表「任务清单」 · 第 2 行 · 「路线图」列：路线图第 2 步的时间 2027-03-31（“2027年3月”）晚于完成时限 2026-12-31（“2026年12月底前”）"
        ],
    ),
    "no-deadline": (
        lambda p: xlsx(p, ["1", "课程育人", "思政课", "集体备课", "教务处", "教务处处长", "", ""]),
        ["plan.xlsx · 工作表「任务清单」 · 第 2 行 · 「完成时限」列：缺少完成时限：请填写完成时限，或在路线图中列出带日期的步骤"],
    ),
    "several-at-once": (
        lambda p: xlsx(
            p,
            ["1", "课程育人", "思政课", "集体备课", "教务处", "张三", "2026年底", ""],
            ["2", "课程育人", "思政课", "资源库", "教务处", "教务处处长", "下个月", ""],
            ["2", "课程育人", "思政课", "", "教务处", "教务处处长", "2027年底", ""],
        ),
        [
            "plan.xlsx · 工作表「任务清单」 · 第 2 行 · 「责任人」列：责任人“张三”不在人员表中：请先在人员表中登记，或改为人员表中已有的姓名",
            f"plan.xlsx · 工作表「任务清单」 · 第 3 行 · 「完成时限」列：完成时限“下个月”无法识别，请按下列写法之一修改。{ACCEPTED_FORMS}",
            "plan.xlsx · 工作表「任务清单」 · 第 4 行 · 「序号」列：任务编号“2”重复（工作表「任务清单」 · 第 3 行 · 「序号」列已使用）；编号在方案内须唯一",
            "plan.xlsx · 工作表「任务清单」 · 第 4 行 · 「具体任务」列：具体任务内容不能为空",
        ],
    ),
    "bad-person-fields": (
        lambda p: xlsx(
            p,
            GOOD,
            people=[*PEOPLE_ROWS, ["李四", "教务处", "科员", "lisi-at-example.org", "abc", "", "王五"]],
        ),
        [
            "plan.xlsx · 工作表「人员」 · 第 6 行 · 「邮箱」列：邮箱“lisi-at-example.org”格式不正确，应形如 name@example.org",
            "plan.xlsx · 工作表「人员」 · 第 6 行 · 「手机」列：手机号“abc”格式不正确，应为数字（可带 +86 和连字符）",
            "plan.xlsx · 工作表「人员」 · 第 6 行 · 「直接上级」列：直接上级“王五”不在人员表中：请先在人员表中登记，或改为人员表中已有的姓名",
        ],
    ),
    "yaml-unknown-field": (
        lambda p: yaml_with(p, lambda d: task_of(d, "1").update(deadlne="2026年底")),
        [
            "plan.yaml · systems[0].projects[0].tasks[0].deadlne：不认识的字段“deadlne”，可用的字段有：code、title、statement、done_criteria、owner、lead_department、partners、supervisor、deadline、roadmap、report_every、until、policy"
        ],
    ),
    "yaml-missing-field": (
        lambda p: yaml_with(p, lambda d: d["plan"].pop("name")),
        ["plan.yaml · plan.name：缺少必填字段"],
    ),
    "yaml-manager-cycle": (
        lambda p: yaml_with(p, lambda d: d["people"][0].update(manager="分管教学副校长")),
        [
            "plan.yaml · people[0].manager：直接上级形成了循环（党委书记 → 分管教学副校长 → 党委书记）：请检查上级关系",
        ],
    ),
    "yaml-bad-notify-url": (
        lambda p: yaml_with(p, lambda d: d["people"][0].update(notify=["wecombot://"], email="sj@example.org")),
        ["plan.yaml · people[0].notify：通知地址（wecombot://…）无法识别或格式不正确，请对照 apprise 的写法检查"],
    ),
    "yaml-syntax": (
        lambda p: (p / "plan.yaml").write_text("plan:\n  code: x\n   name: y\n", encoding="utf-8") and p / "plan.yaml",
        ["plan.yaml · 第 3 行第 8 列：YAML 格式错误（mapping values are not allowed here），请检查缩进、冒号和引号"],
    ),
    "unknown-file-type": (
        lambda p: (p / "plan.docx").write_bytes(b"x") and p / "plan.docx",
        ["plan.docx：无法识别的文件类型：可导入 YAML（.yaml/.yml）、Excel（.xlsx/.xlsm/.xls/.ods）或 CSV（.csv）文件"],
    ),
    "no-task-sheet": (
        lambda p: write_xlsx(p / "plan.xlsx", {"Sheet1": [["姓名", "电话"], ["张三", "1"]]}),
        [
            "plan.xlsx：没有找到任务清单：请在工作表「任务清单」的第一行（或标题行下一行）写明表头，至少包括 序号、育人体系、重点项目、具体任务、牵头单位或责任人、完成时限或路线图"
        ],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_problem_messages(tmp_path, case):
    make, expected = CASES[case]
    path = make(tmp_path)
    with pytest.raises(PlanProblems) as err:
        load_plan(path)
    assert [str(p) for p in err.value.problems] == expected
    assert err.value.render().startswith(f"文件 {path.name} 有 {len(expected)} 处问题，未导入任何内容")


def _snapshot(engine):
    with session_scope(engine) as s:
        return (
            s.scalar(select(func.count()).select_from(Task)),
            s.scalar(select(func.count()).select_from(Milestone)),
            s.scalar(select(func.count()).select_from(Person)),
            s.scalar(select(func.count()).select_from(Event)),
            sorted(s.execute(select(Task.code, Task.title, Task.owner_id, Task.archived_at))),
            sorted(s.execute(select(Milestone.id, Milestone.due_date, Milestone.status))),
        )


@pytest.mark.parametrize("case", ["several-at-once", "milestone-after-deadline", "yaml-unknown-field"])
def test_invalid_file_leaves_database_unchanged(engine, tmp_path, case):
    good = small_plan()
    good["plan"]["code"] = "plan"  # the spreadsheet's plan code defaults to its file name
    import_plan(engine, write_yaml(tmp_path / "good.yaml", good))
    before = _snapshot(engine)
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    with pytest.raises(PlanProblems):
        import_plan(engine, CASES[case][0](bad_dir))
    assert _snapshot(engine) == before
