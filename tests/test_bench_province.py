"""The province benchmark's generator (benchmarks/province.py): one school, its counts, and the
work it gives the sweep on the reference day (counts, never timings)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from benchmarks import province
from duban.db import session_scope
from duban.models import Department, Institution, Milestone, Notification, Person, Plan, Task
from duban.rules.calendar import WorkCalendar
from duban.sweep.decisions import decide


def test_one_school_has_the_sizes_of_a_school_and_is_the_same_at_every_size():
    (one,) = province.schools(1)
    assert one.code == "school-001"
    assert (len(one.tasks), len(one.people), len(one.departments)) == (175, 100, 30)
    assert sum(len(t.milestones) for t in one.tasks) == 648
    assert len({p.name for p in one.people}) == 100  # every name once: the 人员 sheet's key
    # school i is generated alone: the first school of a province of three is the same school
    assert province.schools(3)[0] == one
    assert province.schools(1, seed=2)[0] != one


def test_each_school_is_its_own_institution(engine):
    province.load(engine, province.schools(2))
    with session_scope(engine, readonly=True) as s:
        rows = s.execute(
            select(Institution.code, Institution.name, Plan.code).join(Plan, Plan.institution_id == Institution.id).order_by(Plan.code)
        ).all()
    assert [tuple(r) for r in rows] == [("school-001", "示例学校001", "school-001"), ("school-002", "示例学校002", "school-002")]


def test_the_reference_day_has_due_overdue_and_unacknowledged_work(engine):
    province.load(engine, province.schools(1))
    acknowledged = province.acknowledged(engine)
    with session_scope(engine, readonly=True) as s:
        counts = [s.scalar(select(func.count()).select_from(m)) for m in (Plan, Task, Milestone, Person, Department)]
        overdue = s.scalar(select(func.count()).select_from(Milestone).where(Milestone.due_date < province.TODAY))
    assert counts == [1, 175, 648, 100, 30]
    assert acknowledged == 124
    assert overdue == 50

    result = decide(engine, today=province.TODAY, cal=WorkCalendar(), tz=ZoneInfo("Asia/Shanghai"))
    with session_scope(engine, readonly=True) as s:
        kinds = Counter(s.scalars(select(Notification.kind)))
        recipients = s.scalar(select(func.count(Notification.recipient_id.distinct())))
    assert result.new == sum(kinds.values()) == 542
    assert dict(kinds) == {"overdue": 68, "escalation": 367, "due": 10, "report_overdue": 31, "report_due": 15, "ack": 51}
    assert recipients == 77
    assert (province.TODAY, province.TODAY.weekday()) == (dt.date(2026, 12, 28), 0)  # a Monday
