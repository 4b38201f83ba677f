"""Re-importing a changed list updates the plan in place and never loses recorded progress."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from duban.db import session_scope
from duban.models import Event, Milestone, Person, Plan, PlanRole, Project, System, Task
from duban.plans.importer import import_plan
from tests.factories import small_plan, task_of, write_yaml


def _import(engine, tmp_path, plan, name="p.yaml", **kw):
    return import_plan(engine, write_yaml(tmp_path / name, plan), actor="测试", **kw)


def _milestones(engine, code):
    with session_scope(engine) as s:
        return [
            (m.seq, m.title, m.due_date, m.baseline_due_date, m.due_version, m.status)
            for m in s.scalars(
                select(Milestone).join(Task).where(Task.code == code).order_by(Milestone.status == "archived", Milestone.seq)
            )
        ]


def _events(engine, code=None):
    with session_scope(engine) as s:
        q = select(Event.kind, Event.actor, Event.channel, Event.data).order_by(Event.id)
        if code:
            q = q.join(Task, Task.id == Event.task_id).where(Task.code == code)
        return [tuple(r) for r in s.execute(q)]


def test_first_import_creates_everything(engine, tmp_path):
    diff = _import(engine, tmp_path, small_plan())
    assert diff.plan_created and [c.code for c in diff.added] == ["1", "2", "3", "4"]
    with session_scope(engine) as s:
        plan = s.scalar(select(Plan))
        assert (plan.code, plan.name, plan.organization, plan.approval_required, plan.report_every) == (
            "demo",
            "测试方案",
            "测试学院",
            True,
            "semester",
        )
        assert [x.name for x in s.scalars(select(System).order_by(System.position))] == ["课程育人", "文化育人"]
        assert [x.code for x in s.scalars(select(Project).order_by(Project.position))] == ["01.1", "02.1"]
        roles = s.execute(select(PlanRole.role, Person.name).join(Person, Person.id == PlanRole.person_id).order_by(PlanRole.role)).all()
        assert [tuple(r) for r in roles] == [("leading_group", "党委书记"), ("office", "督办员")]
        manager = s.scalar(select(Person).where(Person.name == "教务处处长")).manager_id
        assert s.get(Person, manager).name == "分管教学副校长"
    assert _milestones(engine, "1") == [
        (1, "制定方案", dt.date(2026, 11, 20), dt.date(2026, 11, 20), 1, "assigned"),
        (2, "中期检查", dt.date(2026, 12, 15), dt.date(2026, 12, 15), 1, "assigned"),
        (3, "全部完成（达到完成标志）", dt.date(2026, 12, 31), dt.date(2026, 12, 31), 1, "assigned"),
    ]
    assert _events(engine, "1") == [
        ("task_created", "测试", "import", {"owner": "教务处处长", "deadline": "2026年12月底前", "milestones": 3})
    ]


def test_same_file_twice_changes_nothing(engine, tmp_path):
    _import(engine, tmp_path, small_plan())
    events = _events(engine)
    diff = _import(engine, tmp_path, small_plan())
    assert not diff.has_changes and diff.unchanged == 4
    assert diff.render().splitlines()[-1] == "与库中现有内容相同，没有需要更新的内容。"
    assert _events(engine) == events


def test_changed_list_updates_in_place_and_keeps_progress(engine, tmp_path):
    _import(engine, tmp_path, small_plan())
    # progress recorded since the first import: every task announced, task 1's first step done, the second acknowledged
    with session_scope(engine) as s:
        s.execute(update(Task).values(announced_at=dt.datetime(2026, 11, 3, 1, 0, tzinfo=dt.UTC)))
        t1 = s.scalar(select(Task).where(Task.code == "1"))
        s.execute(
            update(Milestone)
            .where(Milestone.task_id == t1.id, Milestone.seq == 1)
            .values(status="done", completed_at=dt.datetime(2026, 11, 19, tzinfo=dt.UTC))
        )
        s.execute(update(Milestone).where(Milestone.task_id == t1.id, Milestone.seq > 1).values(status="in_progress"))

    plan = small_plan()
    t1 = task_of(plan, "1")
    t1["deadline"] = "2027年1月15日"  # moved
    t1["roadmap"] = "2026年11月20日 制定方案；2027年1月5日 中期检查"  # second step moved
    task_of(plan, "2")["owner"] = "教务处处长"  # reassigned
    plan["systems"][1]["projects"][0]["tasks"].pop(0)  # task 3 removed
    plan["systems"][1]["projects"][0]["tasks"].append(
        {"code": "5", "title": "主题讲座", "lead_department": "宣传部", "deadline": "2027-03-31"}
    )
    diff = _import(engine, tmp_path, plan)

    assert [c.code for c in diff.added] == ["5"]
    assert [(c.code, c.details) for c in diff.changed] == [
        (
            "1",
            [
                "完成时限：2026年12月底前 → 2027年1月15日",
                "里程碑「中期检查」时间：2026-12-15 → 2027-01-05",
                "里程碑「全部完成（达到完成标志）」时间：2026-12-31 → 2027-01-15",
            ],
        ),
        ("2", ["责任人：教务处副处长 → 教务处处长（将向新责任人重新下达）"]),
    ]
    assert [c.code for c in diff.archived] == ["3"]
    # progress kept, dates moved, baseline kept, versions bumped
    assert _milestones(engine, "1") == [
        (1, "制定方案", dt.date(2026, 11, 20), dt.date(2026, 11, 20), 1, "done"),
        (2, "中期检查", dt.date(2027, 1, 5), dt.date(2026, 12, 15), 2, "in_progress"),
        (3, "全部完成（达到完成标志）", dt.date(2027, 1, 15), dt.date(2026, 12, 31), 2, "in_progress"),
    ]
    # the new owner is announced the task afresh (任务下达) and acknowledges afresh
    assert [m[-1] for m in _milestones(engine, "2")] == ["assigned"]
    with session_scope(engine) as s:
        announced = dict(s.execute(select(Task.code, Task.announced_at).where(Task.code.in_(["1", "2"]))).all())
        assert announced["2"] is None and announced["1"] is not None  # only the reassigned task
    with session_scope(engine) as s:
        archived = s.scalar(select(Task).where(Task.code == "3"))
        assert archived.archived_at is not None  # archived, not deleted
    kinds = [e[0] for e in _events(engine, "1")]
    assert kinds == ["task_created", "milestone_due_changed", "milestone_due_changed", "task_updated"]
    assert _events(engine, "2") == [
        ("task_created", "测试", "import", {"owner": "教务处副处长", "deadline": "2027年上半年", "milestones": 1}),
        ("owner_changed", "测试", "import", {"from": "教务处副处长", "to": "教务处处长"}),
    ]
    assert [e[0] for e in _events(engine, "3")] == ["task_created", "task_archived"]


def test_removed_task_comes_back_restored(engine, tmp_path):
    _import(engine, tmp_path, small_plan())
    smaller = small_plan()
    smaller["systems"][1]["projects"][0]["tasks"].pop(0)
    _import(engine, tmp_path, smaller)
    diff = _import(engine, tmp_path, small_plan())
    assert [c.code for c in diff.restored] == ["3"] and not diff.added
    with session_scope(engine) as s:
        assert s.scalar(select(Task).where(Task.code == "3")).archived_at is None


def test_roadmap_step_removed_is_archived_and_added_step_inserted(engine, tmp_path):
    _import(engine, tmp_path, small_plan())
    plan = small_plan()
    task_of(plan, "1")["roadmap"] = "2026年11月20日 制定方案；2026年12月20日 组织试讲"
    diff = _import(engine, tmp_path, plan)
    assert diff.changed[0].details == ["新增里程碑「组织试讲」：2026-12-20", "里程碑「中期检查」已从路线图中删除（归档）"]
    assert _milestones(engine, "1") == [
        (1, "制定方案", dt.date(2026, 11, 20), dt.date(2026, 11, 20), 1, "assigned"),
        (2, "组织试讲", dt.date(2026, 12, 20), dt.date(2026, 12, 20), 1, "assigned"),
        (3, "全部完成（达到完成标志）", dt.date(2026, 12, 31), dt.date(2026, 12, 31), 1, "assigned"),
        (2, "中期检查", dt.date(2026, 12, 15), dt.date(2026, 12, 15), 1, "archived"),
    ]


def test_dry_run_reports_the_same_diff_and_writes_nothing(engine, tmp_path):
    _import(engine, tmp_path, small_plan())
    plan = small_plan()
    task_of(plan, "2")["deadline"] = "2027年下半年"
    before = (_events(engine), _milestones(engine, "2"))
    preview = _import(engine, tmp_path, plan, dry_run=True)
    assert (_events(engine), _milestones(engine, "2")) == before
    real = _import(engine, tmp_path, plan)
    assert preview.to_dict() == real.to_dict()
    assert real.changed[0].details == [
        "完成时限：2027年上半年 → 2027年下半年",
        "里程碑「全部完成（达到完成标志）」时间：2027-06-30 → 2027-12-31",
    ]


def test_people_and_departments_changes(engine, tmp_path):
    _import(engine, tmp_path, small_plan())
    plan = small_plan()
    plan["people"][2]["email"] = "jwc-new@example.org"
    plan["people"].pop(5)  # 督办员 leaves the list
    plan["plan"]["office"] = ["宣传部部长"]
    plan["departments"][1]["head"] = "党委书记"
    diff = _import(engine, tmp_path, plan)
    assert (diff.people_changed, diff.people_deactivated, diff.departments_changed) == (["教务处处长"], ["督办员"], ["宣传部"])
    with session_scope(engine) as s:
        leaver = s.scalar(select(Person).where(Person.name == "督办员"))
        assert leaver.active is False  # kept for history
        office = s.scalars(select(Person.name).join(PlanRole, PlanRole.person_id == Person.id).where(PlanRole.role == "office")).all()
        assert office == ["宣传部部长"]


def test_two_imports_at_once_leave_one_consistent_plan(engine, tmp_path):
    """Concurrent imports of the same new plan: one wins, the other fails cleanly or finds no change."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import func
    from sqlalchemy.exc import DBAPIError

    path = write_yaml(tmp_path / "p.yaml", small_plan())

    def run(_):
        try:
            return import_plan(engine, path).plan_created
        except DBAPIError:
            return "failed"

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(map(str, pool.map(run, range(2))))
    assert outcomes in (["False", "True"], ["True", "failed"])
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(Plan)) == 1
        assert s.scalar(select(func.count()).select_from(Task)) == 4
        assert s.scalar(select(func.count()).select_from(Milestone)) == 4


def test_numbers_in_yaml_are_read_as_text(engine, tmp_path):
    plan = small_plan()
    task_of(plan, "1")["code"] = 101
    plan["people"][2]["mobile"] = 13800000001
    diff = _import(engine, tmp_path, plan)
    assert [c.code for c in diff.added][0] == "101"
    with session_scope(engine) as s:
        assert s.scalar(select(Person.mobile).where(Person.name == "教务处处长")) == "13800000001"


def test_schedule_and_roles_changes_are_in_the_diff(engine, tmp_path):
    _import(engine, tmp_path, small_plan())
    plan = small_plan()
    task_of(plan, "4")["report_every"] = "每月"
    plan["plan"]["leading_group"] = ["党委书记", "分管教学副校长"]
    diff = _import(engine, tmp_path, plan)
    assert [(c.code, c.details) for c in diff.changed] == [("4", ["反馈周期：每季度 → 每月"])]
    assert diff.plan_details == ["领导小组：党委书记 → 党委书记、分管教学副校长"]
    assert diff.has_changes


def test_archived_then_restored_task_keeps_its_submission(engine, tmp_path):
    _import(engine, tmp_path, small_plan())
    with session_scope(engine) as s:
        tid = s.scalar(select(Task.id).where(Task.code == "2"))
        s.execute(
            update(Milestone)
            .where(Milestone.task_id == tid)
            .values(status="submitted", submitted_at=dt.datetime(2026, 11, 20, tzinfo=dt.UTC))
        )
    smaller = small_plan()
    smaller["systems"][0]["projects"][0]["tasks"].pop(1)
    _import(engine, tmp_path, smaller)
    assert [m[-1] for m in _milestones(engine, "2")] == ["archived"]
    _import(engine, tmp_path, small_plan())
    assert [m[-1] for m in _milestones(engine, "2")] == ["submitted"]
