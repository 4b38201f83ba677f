"""Four institutions with a known history, for the province's roll-up (library, web and CLI tests).

Every plan is ``rollup_plan`` (tests/factories.py: tasks 1 [steps 11-10, 11-20, final 12-31],
2 [11-16], 5 [10-30], 3 [11-13], 4 [11-30]; 7 steps) imported on 2026-10-01 and acknowledged:

| institution | plans | what happened |
| --- | --- | --- |
| a 甲大学 | a-1, a-2 | a-1: step 1.1 done on time, 2 done late (submitted 11-18), 5 done on time; a-2: nothing |
| b 乙学院 | b-1 | nothing, until after the 11-16 snapshot: then 1.1, 1.2, 2, 5, 3 all done on time |
| c 丙学院 | c-1 | one task (4, due 11-20), open |
| d 丁学院 | — | no plan yet |

Snapshots (every plan, as the daily sweep stores them) are taken on 2026-11-09 (nothing done) and
2026-11-16 (a-1's steps done, b's not); the province is looked at on Monday 2026-11-23.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from duban import institutions
from duban.db import session_scope
from duban.models import Milestone, Plan, Task
from duban.rollup.compute import compute
from duban.rollup.snapshots import snapshot
from duban.rules.calendar import WorkCalendar
from duban.vocabulary import MilestoneState
from tests.factories import TZ, import_announced, rollup_plan, write_yaml

AS_OF = dt.date(2026, 11, 23)
FIRST_SNAPSHOT = dt.date(2026, 11, 9)
SECOND_SNAPSHOT = dt.date(2026, 11, 16)
CAL = WorkCalendar()


def at(day: str) -> dt.datetime:
    """10:00 Beijing time on that day."""
    return dt.datetime.fromisoformat(day + "T02:00:00+00:00")


def school_plan(code: str, organization: str, *, only_task_4_due: str | None = None) -> dict:
    plan = rollup_plan()
    plan["plan"].update(code=code, name=f"{organization}督办方案", organization=organization)
    if only_task_4_due:
        project = plan["systems"][1]["projects"][0]
        project["tasks"] = [dict(project["tasks"][1], deadline=only_task_4_due)]
        plan["systems"] = [plan["systems"][1]]
    return plan


def finish(engine, plan: str, code: str, seq: int, submitted: str) -> None:
    """Step ``seq`` of task ``code`` of ``plan`` done: submitted that day, approved the next."""
    with session_scope(engine) as s:
        task_id = s.scalar(select(Task.id).join(Plan, Plan.id == Task.plan_id).where(Plan.code == plan, Task.code == code))
        approved = (dt.date.fromisoformat(submitted) + dt.timedelta(days=1)).isoformat()
        s.execute(
            update(Milestone)
            .where(Milestone.task_id == task_id, Milestone.seq == seq)
            .values(status=MilestoneState.DONE, submitted_at=at(submitted), completed_at=at(approved))
        )


def take_snapshot(engine, day: dt.date) -> None:
    snapshot(engine, compute(engine, as_of=day, tz=TZ, cal=CAL))


def build_schools(engine, tmp_path) -> None:
    for code, inst, name, options in (
        ("a-1", "a", "甲大学", {}),
        ("a-2", "a", "甲大学", {}),
        ("b-1", "b", "乙学院", {}),
        ("c-1", "c", "丙学院", {"only_task_4_due": "2026-11-20"}),
    ):
        path = write_yaml(tmp_path / f"{code}.yaml", school_plan(code, name, **options))
        import_announced(engine, path, now=at("2026-10-01"), institution=inst)
    with session_scope(engine) as s:
        institutions.ensure(s, "d", "丁学院")
        s.execute(update(Task).values(acknowledged_at=at("2026-10-02")))
    take_snapshot(engine, FIRST_SNAPSHOT)
    finish(engine, "a-1", "1", 1, "2026-11-09")
    finish(engine, "a-1", "2", 1, "2026-11-18")
    finish(engine, "a-1", "5", 1, "2026-10-29")
    take_snapshot(engine, SECOND_SNAPSHOT)
    for code, seq, day in (
        ("1", 1, "2026-11-09"),
        ("1", 2, "2026-11-19"),
        ("2", 1, "2026-11-15"),
        ("5", 1, "2026-10-29"),
        ("3", 1, "2026-11-12"),
    ):
        finish(engine, "b-1", code, seq, day)
