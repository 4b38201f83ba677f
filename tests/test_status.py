"""`duban status`: counts by status, system and department, checked by hand on a small plan."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from duban.db import session_scope
from duban.models import Milestone, Task
from duban.status import collect_status
from tests.factories import import_announced, small_plan, write_yaml

ZERO = {"assigned": 0, "in_progress": 0, "submitted": 0, "done": 0, "archived": 0}


def states(**kw):
    return {**ZERO, **kw}


@pytest.fixture
def imported(engine, tmp_path):
    import_announced(engine, write_yaml(tmp_path / "p.yaml", small_plan()))
    return engine


def status(engine, day="2026-11-23", plan=None):
    with session_scope(engine) as s:
        return collect_status(s, today=dt.date.fromisoformat(day), plan_code=plan)


def test_fresh_plan(imported):
    data = status(imported)
    assert data["schema"] == "duban.status/1" and data["as_of"] == "2026-11-23"
    assert data["totals"] == {
        "tasks": 4,
        "archived_tasks": 0,
        "milestones": 4,
        "overdue_tasks": 1,
        "overdue_milestones": 1,
        "due_soon_tasks": 0,
        "supervised_tasks": 0,
        "open_tasks": 4,
        "awaiting_approval": 0,
    }
    assert data["tasks_by_status"] == states(assigned=4)
    assert data["milestones_by_status"] == states(assigned=4)
    assert data["by_plan"] == [
        {
            "plan": "demo",
            "name": "测试方案",
            "tasks": 4,
            "tasks_by_status": states(assigned=4),
            "overdue_tasks": 1,
            "due_soon_tasks": 0,
            "supervised": [],
        }
    ]
    assert data["by_system"] == [
        {
            "plan": "demo",
            "system": "课程育人",
            "code": "01",
            "tasks": 2,
            "tasks_by_status": states(assigned=2),
            "overdue_tasks": 1,
            "due_soon_tasks": 0,
        },
        {
            "plan": "demo",
            "system": "文化育人",
            "code": "02",
            "tasks": 2,
            "tasks_by_status": states(assigned=2),
            "overdue_tasks": 0,
            "due_soon_tasks": 0,
        },
    ]
    assert [(b["department"], b["tasks"], b["overdue_tasks"]) for b in data["by_department"]] == [("宣传部", 2, 0), ("教务处", 2, 1)]


def test_progress_changes_the_counts(imported, tmp_path):
    with session_scope(imported) as s:
        ids = dict(s.execute(select(Task.code, Task.id)).all())
        s.execute(update(Milestone).where(Milestone.task_id == ids["1"], Milestone.seq == 1).values(status="done"))
        s.execute(update(Milestone).where(Milestone.task_id == ids["1"], Milestone.seq > 1).values(status="in_progress"))
        s.execute(update(Milestone).where(Milestone.task_id == ids["2"]).values(status="submitted"))
        s.execute(update(Task).where(Task.id == ids["4"]).values(acknowledged_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)))
    # on 2026-12-10 task 1's step due 12-15 is due soon; on 12-20 it is overdue
    data = status(imported, "2026-12-10")
    assert data["tasks_by_status"] == states(assigned=1, in_progress=2, submitted=1)
    assert data["milestones_by_status"] == states(in_progress=2, submitted=1, done=1)
    assert (data["totals"]["overdue_tasks"], data["totals"]["due_soon_tasks"]) == (0, 1)
    data = status(imported, "2026-12-20")
    # overdue (step due 12-15) and due soon (final step 12-31) at once
    assert (data["totals"]["overdue_tasks"], data["totals"]["overdue_milestones"], data["totals"]["due_soon_tasks"]) == (1, 1, 1)

    # removing task 3 from the list archives it: counted apart, not in the active totals
    plan = small_plan()
    plan["systems"][1]["projects"][0]["tasks"].pop(0)
    import_announced(imported, write_yaml(tmp_path / "p2.yaml", plan))
    data = status(imported, "2026-12-20")
    assert data["tasks_by_status"] == states(in_progress=2, submitted=1, archived=1)
    assert (data["totals"]["tasks"], data["totals"]["archived_tasks"]) == (3, 1)


def test_several_plans_and_filter(imported, tmp_path):
    other = small_plan()
    other["plan"]["code"] = "other"
    other["systems"].pop(1)
    import_announced(imported, write_yaml(tmp_path / "o.yaml", other))
    data = status(imported)
    assert [(p["plan"], p["tasks"]) for p in data["by_plan"]] == [("demo", 4), ("other", 2)]
    assert data["totals"]["tasks"] == 6
    only = status(imported, plan="other")
    assert only["plan"] == "other" and only["totals"]["tasks"] == 2 and [p["plan"] for p in only["by_plan"]] == ["other"]
    assert only["totals"]["overdue_milestones"] == 1
