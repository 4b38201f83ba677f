"""The roll-up (duban/rollup.py) against hand-computed numbers on a small plan with a known history.

The plan (tests/factories.py ``rollup_plan``), imported on 2026-10-01, every task acknowledged,
looked at on Monday 2026-11-23 (working days per China's 2026 calendar):

| task | dept | milestones (due) | what happened |
| --- | --- | --- | --- |
| 1 | 教务处 | 11-10, 11-20, 12-31 (final) | step 1 submitted 11-09, approved 11-10 (on time); step 2 open: 1 working day late |
| 2 | 教务处 | 11-16 | returned once (11-17), submitted again 11-18 and approved 11-19: done 2 working days late |
| 3 | 宣传部 | 11-13 → 12-04 | extension approved 11-12 (baseline 11-13); open, due in 9 working days |
| 4 | 宣传部 | 11-30 | submitted 11-20, waiting for approval |
| 5 | 教务处 | 10-30 | open, 16 working days late; the sweep escalated it to the supervising leader (2) and the office (3) |
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from duban import rollup
from duban.db import session_scope
from duban.models import Milestone, Person, Plan, Request, RollupSnapshot, Task
from duban.rollup.compute import compute as compute_rollup
from duban.rollup.snapshots import snapshot
from duban.rollup.trend import trend
from duban.rules.calendar import WorkCalendar
from duban.rules.deadlines import colour
from duban.status import collect_status
from duban.vocabulary import MilestoneState, RequestKind, RequestStatus
from tests.factories import import_announced, rollup_plan, write_yaml

TZ = ZoneInfo("Asia/Shanghai")
AS_OF = dt.date(2026, 11, 23)


def at(day: str) -> dt.datetime:
    """10:00 Beijing time on that day."""
    return dt.datetime.fromisoformat(day + "T02:00:00+00:00")


def build_scenario(engine, tmp_path, plan: dict | None = None) -> None:
    """Import the plan and give it the history in the module docstring."""
    import_announced(engine, write_yaml(tmp_path / "rollup.yaml", plan or rollup_plan()), now=at("2026-10-01"))
    with session_scope(engine) as s:
        plan_id = s.scalar(select(Plan.id).where(Plan.code == "rollup"))
        tasks = {t.code: t for t in s.scalars(select(Task).where(Task.plan_id == plan_id))}
        s.execute(update(Task).where(Task.plan_id == plan_id).values(acknowledged_at=at("2026-10-02")))
        ms = {(tasks[c].code, m.seq): m for c in tasks for m in s.scalars(select(Milestone).where(Milestone.task_id == tasks[c].id))}
        owner = {c: t.owner_id for c, t in tasks.items()}
        office = s.scalar(select(Person.id).where(Person.plan_id == plan_id, Person.name == "督办员"))

        def req(code, m, kind, status, created, decided=None, new_due=None):
            s.add(
                Request(
                    plan_id=plan_id,
                    task_id=tasks[code].id,
                    milestone_id=m.id,
                    person_id=owner[code],
                    kind=kind,
                    status=status,
                    note="",
                    new_due_date=new_due,
                    created_at=at(created),
                    decided_by_id=office if decided else None,
                    decided_at=at(decided) if decided else None,
                    decision_note="",
                )
            )

        m = ms[("1", 1)]
        m.status, m.submitted_at, m.completed_at = MilestoneState.DONE, at("2026-11-09"), at("2026-11-10")
        req("1", m, RequestKind.COMPLETION, RequestStatus.APPROVED, "2026-11-09", "2026-11-10")
        ms[("1", 2)].status = ms[("1", 3)].status = MilestoneState.IN_PROGRESS
        m = ms[("2", 1)]
        m.status, m.submitted_at, m.completed_at = MilestoneState.DONE, at("2026-11-18"), at("2026-11-19")
        req("2", m, RequestKind.COMPLETION, RequestStatus.RETURNED, "2026-11-17", "2026-11-17")
        req("2", m, RequestKind.COMPLETION, RequestStatus.APPROVED, "2026-11-18", "2026-11-19")
        m = ms[("3", 1)]
        m.status, m.due_date, m.due_version = MilestoneState.IN_PROGRESS, dt.date(2026, 12, 4), 2
        req("3", m, RequestKind.EXTENSION, RequestStatus.APPROVED, "2026-11-11", "2026-11-12", new_due=dt.date(2026, 12, 4))
        m = ms[("4", 1)]
        m.status, m.submitted_at = MilestoneState.SUBMITTED, at("2026-11-20")
        req("4", m, RequestKind.COMPLETION, RequestStatus.PENDING, "2026-11-20")
        ms[("5", 1)].status = MilestoneState.IN_PROGRESS
    from duban.sweep.decisions import decide

    decide(engine, today=AS_OF, cal=WorkCalendar(), tz=TZ)  # the ledger's 督办 rows


@pytest.fixture
def scenario(engine, tmp_path):
    build_scenario(engine, tmp_path)
    return engine


def compute(engine, as_of=AS_OF, plan_code=None):
    return compute_rollup(engine, as_of=as_of, plan_code=plan_code, tz=TZ, cal=WorkCalendar())


def row(frame, **where):
    sel = frame
    for k, v in where.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, (where, frame)
    return sel.iloc[0]


COUNTS = [
    "tasks",
    "done_tasks",
    "on_time_tasks",
    "overdue_tasks",
    "due_soon_tasks",
    "milestones",
    "done_milestones",
    "due_milestones",
    "on_time_milestones",
    "on_time_baseline_milestones",
    "overdue_milestones",
    "late_days",
    "red",
    "yellow",
    "green",
    "no_light",
    "assigned",
    "in_progress",
    "submitted",
    "done",
]


def counts(r) -> dict:
    return {c: int(r[c]) for c in COUNTS}


def test_totals_and_by_plan(scenario):
    r = compute(scenario)
    expected = dict(
        tasks=5,
        done_tasks=1,
        on_time_tasks=0,
        overdue_tasks=2,
        due_soon_tasks=1,
        milestones=7,
        done_milestones=2,
        due_milestones=4,
        on_time_milestones=1,
        on_time_baseline_milestones=1,
        overdue_milestones=2,
        late_days=19,
        red=2,
        yellow=0,
        green=2,
        no_light=1,
        assigned=0,
        in_progress=3,
        submitted=1,
        done=1,
    )
    assert {c: r.totals[c] for c in COUNTS} == expected
    assert counts(row(r.by_plan, plan="rollup")) == expected
    assert r.totals["completion_rate"] == pytest.approx(2 / 7)
    assert r.totals["on_time_rate"] == pytest.approx(0.25)
    assert r.totals["awaiting_approval"] == 1 and r.totals["extensions_granted"] == 1 and r.totals["escalations"] == 2
    assert r.title == "汇总测试方案"
    assert "按期完成率 25.0%" in rollup.headline(r) and "红灯 2 项" in rollup.headline(r)


def test_by_department_system_project_supervisor(scenario):
    r = compute(scenario, plan_code="rollup")
    jwc = dict(
        tasks=3,
        done_tasks=1,
        on_time_tasks=0,
        overdue_tasks=2,
        due_soon_tasks=0,
        milestones=5,
        done_milestones=2,
        due_milestones=4,
        on_time_milestones=1,
        on_time_baseline_milestones=1,
        overdue_milestones=2,
        late_days=19,
        red=2,
        yellow=0,
        green=0,
        no_light=1,
        assigned=0,
        in_progress=2,
        submitted=0,
        done=1,
    )
    xcb = dict(
        tasks=2,
        done_tasks=0,
        on_time_tasks=0,
        overdue_tasks=0,
        due_soon_tasks=1,
        milestones=2,
        done_milestones=0,
        due_milestones=0,
        on_time_milestones=0,
        on_time_baseline_milestones=0,
        overdue_milestones=0,
        late_days=0,
        red=0,
        yellow=0,
        green=2,
        no_light=0,
        assigned=0,
        in_progress=1,
        submitted=1,
        done=0,
    )
    assert list(r.by_department["department"]) == ["教务处", "宣传部"]  # most tasks first
    assert counts(row(r.by_department, department="教务处")) == jwc
    assert counts(row(r.by_department, department="宣传部")) == xcb
    assert row(r.by_department, department="教务处")["completion_rate"] == pytest.approx(0.4)
    assert row(r.by_department, department="教务处")["on_time_rate"] == pytest.approx(0.25)
    assert (
        row(r.by_department, department="宣传部")["on_time_rate"] != row(r.by_department, department="宣传部")["on_time_rate"]
    )  # NaN: nothing due

    assert list(r.by_system["system"]) == ["课程育人", "文化育人"]
    assert counts(row(r.by_system, system="课程育人")) == jwc
    assert counts(row(r.by_system, system="文化育人")) == xcb

    assert list(r.by_project["project"]) == ["思政课创优", "课程资源", "核心价值观"]
    p1 = row(r.by_project, project="思政课创优")
    assert (
        p1["tasks"],
        p1["milestones"],
        p1["done_milestones"],
        p1["due_milestones"],
        p1["on_time_milestones"],
        p1["late_days"],
        p1["overdue_tasks"],
        p1["red"],
        p1["no_light"],
    ) == (2, 4, 2, 3, 1, 3, 1, 1, 1)
    p2 = row(r.by_project, project="课程资源")
    assert (p2["tasks"], p2["due_milestones"], p2["late_days"], p2["red"]) == (1, 1, 16, 1)

    assert counts(row(r.by_supervisor, supervisor="分管教学副校长")) == jwc
    assert counts(row(r.by_supervisor, supervisor="党委书记")) == xcb


def test_overdue_due_soon_awaiting_and_extensions(scenario):
    r = compute(scenario)
    assert list(r.overdue["code"]) == ["5", "1"]  # highest 督办 level first
    first, second = r.overdue.iloc[0], r.overdue.iloc[1]
    assert (
        first["days_late"],
        first["level"],
        first["level_label"],
        first["due"],
        first["owner"],
        first["department"],
        first["supervisor"],
    ) == (16, 3, "已报领导小组办公室", dt.date(2026, 10, 30), "教务处处长", "教务处", "分管教学副校长")
    assert (second["milestone"], second["days_late"], second["level"], second["level_label"]) == ("中期检查", 1, 0, "未督办")

    assert list(r.due_soon["code"]) == ["3"]
    assert (r.due_soon.iloc[0]["due"], r.due_soon.iloc[0]["days_left"], r.due_soon.iloc[0]["colour_label"]) == (
        dt.date(2026, 12, 4),
        9,
        "绿灯",
    )

    (a,) = r.awaiting_approval.itertuples()
    assert (a.code, a.kind, a.requester, a.submitted_on, a.waiting_days, a.department) == (
        "4",
        "办结审核",
        "宣传部部长",
        dt.date(2026, 11, 20),
        1,
        "宣传部",
    )

    (e,) = r.extensions.itertuples()
    assert (e.code, e.baseline, e.due, e.slipped_days, e.slipped_workdays, e.extensions, e.reason, e.last_approved) == (
        "3",
        dt.date(2026, 11, 13),
        dt.date(2026, 12, 4),
        21,
        15,
        1,
        "批准延期",
        dt.date(2026, 11, 12),
    )


def test_assessment_arithmetic(scenario):
    r = compute(scenario)
    jwc = row(r.assessment, department="教务处")
    # on time 1 of 4 due → 0.25 × 50 = 12.5; 19 working days late over 4 due → 4.75 per step, 1 − 4.75/10 = 0.525 × 20 = 10.5;
    # 2 督办 over 3 tasks → 1 − 0.667 = 0.333 × 15 = 5.0; 1 of 3 decided completions returned → 1 − 0.333/0.5 = 0.333 × 15 = 5.0
    assert (
        jwc["due_milestones"],
        jwc["on_time_milestones"],
        jwc["late_days"],
        jwc["escalations"],
        jwc["completion_requests"],
        jwc["returns"],
    ) == (4, 1, 19, 2, 3, 1)
    assert (jwc["p_on_time"], jwc["p_overdue"], jwc["p_escalations"], jwc["p_returns"]) == (12.5, 10.5, 5.0, 5.0)
    assert jwc["score"] == 33.0 and jwc["rank"] == 1 and jwc["change"] == ""  # no 通报 issued yet: nothing to compare with
    # 宣传部 has nothing due yet: no score, no rank (not ahead of a department that is delivering)
    xcb = row(r.assessment, department="宣传部")
    assert (xcb["due_milestones"], xcb["tasks"], xcb["rank"], xcb["change"]) == (0, 2, None, "")
    assert xcb[["p_on_time", "p_overdue", "p_escalations", "p_returns", "score"]].isna().all()
    assert list(r.assessment["department"]) == ["教务处", "宣传部"]


def test_assessment_weights_come_from_the_plan_policy(engine, tmp_path):
    plan = rollup_plan()
    plan["plan"]["policy"] = {
        "escalate_head_after": 3,
        "assessment": {"weights": {"on_time": 40, "overdue": 40, "escalations": 10, "returns": 10}, "overdue_days_limit": 20},
    }
    build_scenario(engine, tmp_path, plan)
    jwc = row(compute(engine).assessment, department="教务处")
    # 0.25 × 40 = 10; (1 − 4.75/20) × 40 = 30.5; 0.333 × 10 = 3.33; 0.333 × 10 = 3.33 → 47.17 of 100
    assert (jwc["p_on_time"], jwc["p_overdue"], jwc["p_escalations"], jwc["p_returns"]) == (10.0, 30.5, 3.3, 3.3)
    assert jwc["score"] == 47.2


def test_bad_assessment_policy_is_refused_at_import(engine, tmp_path):
    from definitions.problems import PlanProblems

    plan = rollup_plan()
    plan["plan"]["policy"] = {"assessment": {"weights": {"on_time": -5}}}
    with pytest.raises(PlanProblems) as err:
        import_announced(engine, write_yaml(tmp_path / "bad.yaml", plan))
    assert "考核设置“assessment.weights.on_time”不正确" in err.value.render()


def test_colours_agree_with_the_rules(scenario):
    from duban.sweep.decisions import load

    r = compute(scenario)
    assert dict(zip(r.tasks["code"], r.tasks["colour"], strict=True)) == {"1": "red", "2": None, "3": "green", "4": "green", "5": "red"}
    with session_scope(scenario, readonly=True) as s:
        loaded = load(s, tz=TZ)
    cal = WorkCalendar()
    by_code = dict(zip(r.tasks["code"], r.tasks["colour"], strict=True))
    for view, policy in loaded.tasks:
        assert by_code[view.code] == colour(view, policy, cal, AS_OF)


@pytest.mark.parametrize("as_of", [AS_OF, dt.date(2026, 11, 2), dt.date(2027, 1, 5)])
def test_counts_agree_with_status_json(scenario, as_of):
    r = compute(scenario, as_of=as_of)
    with session_scope(scenario, readonly=True) as s:
        status = collect_status(s, today=as_of)
    assert r.totals["tasks"] == status["totals"]["tasks"]
    assert r.totals["overdue_tasks"] == status["totals"]["overdue_tasks"]
    assert r.totals["overdue_milestones"] == status["totals"]["overdue_milestones"]
    assert r.totals["due_soon_tasks"] == status["totals"]["due_soon_tasks"]
    assert r.totals["milestones"] == status["totals"]["milestones"]
    for st in ("assigned", "in_progress", "submitted", "done"):
        assert r.totals[st] == status["tasks_by_status"][st]
    for key, frame, name in (("by_system", r.by_system, "system"), ("by_department", r.by_department, "department")):
        for entry in status[key]:
            if not entry["tasks"]:
                continue
            mine = row(frame, **{name: entry[name] or rollup.UNSPECIFIED})
            assert (mine["tasks"], mine["overdue_tasks"], mine["due_soon_tasks"]) == (
                entry["tasks"],
                entry["overdue_tasks"],
                entry["due_soon_tasks"],
            )
            assert {st: int(mine[st]) for st in ("assigned", "in_progress", "submitted", "done")} == {
                st: entry["tasks_by_status"][st] for st in ("assigned", "in_progress", "submitted", "done")
            }


def test_archived_tasks_are_left_out(scenario, tmp_path):
    plan = rollup_plan()
    plan["systems"][1]["projects"][0]["tasks"].pop()  # task 4 removed from the list: archived
    import_announced(scenario, write_yaml(tmp_path / "again.yaml", plan))
    r = compute(scenario)
    assert r.totals["tasks"] == 4 and "4" not in set(r.tasks["code"])
    assert r.totals["awaiting_approval"] == 1  # its request still waits: the office sees it


def test_unknown_plan_is_one_clear_error(scenario):
    with pytest.raises(rollup.RollupError, match="没有编号为“nope”的方案。已有方案：rollup"):
        compute(scenario, plan_code="nope")


def test_empty_store(engine):
    r = compute(engine)
    assert r.totals["tasks"] == 0 and r.by_department.empty and r.assessment.empty
    assert r.totals["on_time_rate"] is None
    assert snapshot(engine, r) == 0
    assert r.to_dict()["schema"] == "duban.rollup/1"


def test_snapshots_are_idempotent_and_make_a_trend(scenario):
    earlier = compute(scenario, as_of=dt.date(2026, 11, 20))
    assert snapshot(scenario, earlier) == 1 + 2 + 2  # plan, 2 systems, 2 departments
    r = compute(scenario)
    assert snapshot(scenario, r) == 5
    assert snapshot(scenario, r) == 5  # same day again: replaced, not added
    with session_scope(scenario, readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(RollupSnapshot)) == 10
        plan_row = s.execute(select(RollupSnapshot).where(RollupSnapshot.day == AS_OF, RollupSnapshot.scope == "plan")).scalar_one()
        assert (plan_row.tasks, plan_row.red, plan_row.done_milestones, plan_row.due_milestones, plan_row.on_time_milestones) == (
            5,
            2,
            2,
            4,
            1,
        )

    # the trend: 11-20 from its snapshot, 11-23 from today's numbers
    t = compute(scenario).trend
    assert list(t["day"]) == [dt.date(2026, 11, 20), AS_OF]
    # on 11-20 task 1's step 2 (due that day) and task 3 were not overdue yet: only task 5 was
    assert list(t["overdue_tasks"]) == [1, 2]
    assert list(t["red"]) == [int(earlier.totals["red"]), 2]
    stored = trend(scenario, plan_code="rollup")
    assert list(stored["day"]) == [dt.date(2026, 11, 20), AS_OF] and list(stored["tasks"]) == [5, 5]
    deps = trend(scenario, scope="department")
    assert set(deps["key"]) == {"教务处", "宣传部"} and len(deps) == 4

    # a change the same day replaces that day's numbers
    with session_scope(scenario) as s:
        s.execute(
            update(Milestone)
            .where(Milestone.status == MilestoneState.SUBMITTED)
            .values(status=MilestoneState.DONE, completed_at=at("2026-11-23"))
        )
    snapshot(scenario, compute(scenario))
    with session_scope(scenario, readonly=True) as s:
        plan_row = s.execute(select(RollupSnapshot).where(RollupSnapshot.day == AS_OF, RollupSnapshot.scope == "plan")).scalar_one()
        assert (plan_row.done_tasks, plan_row.done_milestones) == (2, 3)
        assert s.scalar(select(func.count()).select_from(RollupSnapshot)) == 10


def test_to_dict_is_json(scenario):
    import json

    data = json.loads(json.dumps(compute(scenario).to_dict(), ensure_ascii=False))
    assert data["totals"]["red"] == 2
    assert data["overdue"][0]["due"] == "2026-10-30"
    assert data["by_department"][1]["on_time_rate"] is None
