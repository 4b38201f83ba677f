"""Table-driven tests for duban.rules.deadlines (``decide``, ``colour``, ``period_bounds``,
``escalation_recipients``) and duban.rules.policy, on the real national ``WorkCalendar``.

Reading the tables: people are numbered OWNER=10, HEAD=20, MANAGER=30 (the owner's manager),
SUPERVISOR=40 (分管校领导), OFFICE=50, 51 (领导小组办公室).  A milestone is ``ms(7, "2026-12-04")``
(id 7, due version 1, in progress); a task is ``task(ms(...), ...)`` (id 1, acknowledged, assigned
2026-01-05).  Keys read ``<kind>:<tag>:p<recipient>:<step>`` with tag ``m<id>v<due_version>`` for
a milestone, ``t<id>:<assigned_on>`` for acknowledgement and ``r<id>:<period end>`` for a report.

Useful 2026 facts (chinese_calendar): 调休 workdays 01-04 (Sun), 02-14 (Sat), 02-28 (Sat), 05-09 (Sat),
09-20 (Sun), 10-10 (Sat); National Day 10-01..10-07.  2027 is a fallback year: Monday–Friday
minus the statutory holidays of ``holidays.China`` (01-01, 02-05..02-10, 04-05, 05-03/04, 06-09,
09-15, 10-01..10-05 on weekdays).
"""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from duban.rules.calendar import InstitutionCalendar, WorkCalendar
from duban.rules.deadlines import (
    ACK,
    DUE,
    ESCALATION,
    GREEN,
    OVERDUE,
    RED,
    REPORT_DUE,
    REPORT_OVERDUE,
    YELLOW,
    MilestoneView,
    TaskView,
    colour,
    decide,
    escalation_recipients,
    period_bounds,
)
from duban.rules.policy import DEFAULT_POLICY, DeadlinePolicy, effective_policy

D = dt.date
OWNER, HEAD, MANAGER, SUPERVISOR, OFFICE1, OFFICE2 = 10, 20, 30, 40, 50, 51
CAL = WorkCalendar()  # read-only here; the 2027 fallback warning is checked on a fresh one


def day(value: str | dt.date | None) -> dt.date | None:
    return D.fromisoformat(value) if isinstance(value, str) else value


def ms(id: int, due: str, *, status: str = "in_progress", version: int = 1, seq: int | None = None,
       final: bool = False) -> MilestoneView:
    return MilestoneView(id=id, seq=id if seq is None else seq, title=f"步骤{id}", due=day(due),
                         due_version=version, status=status, is_final=final)


def task(*milestones: MilestoneView, **kw) -> TaskView:
    fields = dict(id=1, plan_id=1, code="1.1", title="推进某项工作", owner_id=OWNER, head_id=HEAD,
                  owner_manager_id=MANAGER, supervisor_id=SUPERVISOR, office_ids=(OFFICE1, OFFICE2),
                  assigned_on=D(2026, 1, 5), acknowledged=True, milestones=milestones)
    fields.update(kw)
    for name in ("assigned_on", "last_report_on"):
        fields[name] = day(fields.get(name))
    return TaskView(**fields)


def run(t: TaskView, today: str, policy: DeadlinePolicy = DEFAULT_POLICY, cal: WorkCalendar = CAL):
    out = decide(t, policy, cal, day(today))
    check_invariants(t, out)
    return out


def keys_days(out) -> list[tuple[str, int]]:
    return [(d.key, d.days) for d in out]


def full(out) -> list[tuple[str, str, int, int, int]]:
    """(key, kind, recipient, level, days), sorted by key."""
    return sorted((d.key, d.kind, d.recipient_id, d.level, d.days) for d in out)


def check_invariants(t: TaskView, out) -> None:
    """What every decision must satisfy, whatever the case."""
    assert len({d.key for d in out}) == len(out), "duplicate keys in one decision list"
    for d in out:
        assert d.task_id == t.id
        assert d.key.startswith(f"{d.kind}:")
        assert d.key.endswith(f":p{d.recipient_id}") or f":p{d.recipient_id}:" in d.key
        assert d.data["code"] == t.code and d.data["title"] == t.title
        if d.kind == ESCALATION:
            assert d.level in (1, 2, 3) and d.recipient_id != t.owner_id
        else:
            assert d.level == 0 and d.recipient_id == t.owner_id
        if d.kind in (DUE, OVERDUE):
            assert d.milestone_id is not None and d.due is not None


# ---------------------------------------------------------------------------------------------
# Reminders before the due date: the latest step reached (7, 3, 1, 0 working days before)

DUE_FRI = task(ms(7, "2026-12-04"))  # Friday 2026-12-04, an ordinary week


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        ("2026-11-20", []),  # 10 working days left
        ("2026-11-24", []),  # 8 left: before the window
        ("2026-11-25", [("due:m7v1:p10:d7", 7)]),
        ("2026-11-27", [("due:m7v1:p10:d7", 5)]),  # same key: the ledger keeps it once
        ("2026-11-28", [("due:m7v1:p10:d7", 5)]),  # Saturday
        ("2026-11-30", [("due:m7v1:p10:d7", 4)]),  # Monday: 4 left, d3 not reached yet
        ("2026-12-01", [("due:m7v1:p10:d3", 3)]),
        ("2026-12-02", [("due:m7v1:p10:d3", 2)]),
        ("2026-12-03", [("due:m7v1:p10:d1", 1)]),
        ("2026-12-04", [("due:m7v1:p10:d0", 0)]),
        ("2026-12-05", []),  # Saturday: due yesterday, 0 working days late
        ("2026-12-06", []),  # Sunday
        ("2026-12-07", [("overdue:m7v1:p10:n1", -1)]),  # Monday: 1 working day late
    ],
)
def test_reminders_before_due(today, expected):
    out = run(DUE_FRI, today)
    assert keys_days(out) == expected
    for d in out:
        assert (d.recipient_id, d.milestone_id, d.due, d.level) == (OWNER, 7, D(2026, 12, 4), 0)
        assert d.data["milestone"] == "步骤7" and d.data["seq"] == 7 and d.data["final"] is False


def test_reminder_kinds():
    assert [d.kind for d in run(DUE_FRI, "2026-12-01")] == [DUE]
    assert [d.kind for d in run(DUE_FRI, "2026-12-07")] == [OVERDUE]


# ---------------------------------------------------------------------------------------------
# Across holidays and 调休 (2026, chinese_calendar)


@pytest.mark.parametrize(
    ("due", "today", "expected"),
    [
        # due Friday 10-09, right after National Day (10-01..10-07 off; 09-20 Sun and 10-10 Sat on)
        ("2026-10-09", "2026-09-18", []),  # 11 left: 09-20 (Sun) counts
        ("2026-10-09", "2026-09-22", []),  # 8 left
        ("2026-10-09", "2026-09-23", [("due:m7v1:p10:d7", 7)]),
        ("2026-10-09", "2026-09-25", [("due:m7v1:p10:d7", 5)]),
        ("2026-10-09", "2026-09-29", [("due:m7v1:p10:d3", 3)]),
        ("2026-10-09", "2026-09-30", [("due:m7v1:p10:d3", 2)]),  # 10-08, 10-09 only
        ("2026-10-09", "2026-10-01", [("due:m7v1:p10:d3", 2)]),  # during the holiday
        ("2026-10-09", "2026-10-07", [("due:m7v1:p10:d3", 2)]),
        ("2026-10-09", "2026-10-08", [("due:m7v1:p10:d1", 1)]),
        ("2026-10-09", "2026-10-09", [("due:m7v1:p10:d0", 0)]),
        ("2026-10-09", "2026-10-10", [("overdue:m7v1:p10:n1", -1)]),  # 调休 Saturday is a working day
        ("2026-10-09", "2026-10-11", [("overdue:m7v1:p10:n1", -1)]),  # Sunday
        ("2026-10-09", "2026-10-12", [("overdue:m7v1:p10:n1", -2)]),
        ("2026-10-09", "2026-10-13", [("escalation:m7v1:L1:p20", -3), ("overdue:m7v1:p10:n1", -3)]),
        # due on the 调休 Saturday 10-10 itself
        ("2026-10-10", "2026-09-30", [("due:m7v1:p10:d3", 3)]),  # 10-08, 10-09, 10-10
        ("2026-10-10", "2026-10-09", [("due:m7v1:p10:d1", 1)]),
        ("2026-10-10", "2026-10-10", [("due:m7v1:p10:d0", 0)]),
        ("2026-10-10", "2026-10-11", []),  # Sunday: 0 working days late
        ("2026-10-10", "2026-10-12", [("overdue:m7v1:p10:n1", -1)]),
        # due on the 调休 Sunday 09-20
        ("2026-09-20", "2026-09-18", [("due:m7v1:p10:d1", 1)]),
        ("2026-09-20", "2026-09-19", [("due:m7v1:p10:d1", 1)]),
        ("2026-09-20", "2026-09-21", [("overdue:m7v1:p10:n1", -1)]),
        # due on an ordinary Sunday: step d0 is reached on the Friday before
        ("2026-12-06", "2026-12-03", [("due:m7v1:p10:d1", 1)]),
        ("2026-12-06", "2026-12-04", [("due:m7v1:p10:d0", 0)]),
        ("2026-12-06", "2026-12-05", [("due:m7v1:p10:d0", 0)]),
        ("2026-12-06", "2026-12-06", [("due:m7v1:p10:d0", 0)]),
        ("2026-12-06", "2026-12-07", [("overdue:m7v1:p10:n1", -1)]),
        # due on a holiday Sunday (10-04): d0 on the last working day before the holiday
        ("2026-10-04", "2026-09-29", [("due:m7v1:p10:d1", 1)]),
        ("2026-10-04", "2026-09-30", [("due:m7v1:p10:d0", 0)]),
        ("2026-10-04", "2026-10-07", []),
        ("2026-10-04", "2026-10-08", [("overdue:m7v1:p10:n1", -1)]),
        # Spring Festival 02-15..02-23 off, 02-14 (Sat) on
        ("2026-02-24", "2026-02-13", [("due:m7v1:p10:d3", 2)]),  # 02-14, 02-24
        ("2026-02-24", "2026-02-14", [("due:m7v1:p10:d1", 1)]),
        ("2026-02-24", "2026-02-20", [("due:m7v1:p10:d1", 1)]),
        # Labour Day 05-01..05-05 off, 05-09 (Sat) on
        ("2026-05-11", "2026-04-30", [("due:m7v1:p10:d7", 5)]),  # 05-06, 07, 08, 09, 11
        ("2026-05-11", "2026-05-08", [("due:m7v1:p10:d3", 2)]),  # 05-09, 05-11
        # New Year 2026: 01-01..01-03 off, 01-04 (Sun) on; counted across the year end
        ("2026-01-05", "2025-12-31", [("due:m7v1:p10:d3", 2)]),
        ("2026-01-05", "2026-01-03", [("due:m7v1:p10:d3", 2)]),
        ("2026-01-05", "2026-01-04", [("due:m7v1:p10:d1", 1)]),
    ],
)
def test_reminders_across_holidays(due, today, expected):
    assert keys_days(run(task(ms(7, due)), today)) == expected


# ---------------------------------------------------------------------------------------------
# Year end 2026 → 2027 and dates in 2027 (fallback calendar: Mon–Fri minus statutory holidays)


@pytest.mark.parametrize(
    ("due", "today", "expected"),
    [
        ("2027-01-04", "2026-12-24", [("due:m7v1:p10:d7", 6)]),
        ("2027-01-04", "2026-12-25", [("due:m7v1:p10:d7", 5)]),  # 12-28..12-31, 01-04 (01-01 off)
        ("2027-01-04", "2026-12-30", [("due:m7v1:p10:d3", 2)]),
        ("2027-01-04", "2026-12-31", [("due:m7v1:p10:d1", 1)]),
        ("2027-01-04", "2027-01-01", [("due:m7v1:p10:d1", 1)]),
        ("2027-01-04", "2027-01-02", [("due:m7v1:p10:d1", 1)]),
        ("2027-01-04", "2027-01-04", [("due:m7v1:p10:d0", 0)]),
        ("2027-01-04", "2027-01-05", [("overdue:m7v1:p10:n1", -1)]),
        # overdue across the year end: 12-31, 01-04, 01-05
        ("2026-12-30", "2027-01-05", [("escalation:m7v1:L1:p20", -3), ("overdue:m7v1:p10:n1", -3)]),
        ("2026-12-30", "2027-01-01", [("overdue:m7v1:p10:n1", -1)]),
        # Spring Festival 2027 per holidays.China: 02-05 and 02-08..02-10 (weekdays) off
        ("2027-02-12", "2027-02-03", [("due:m7v1:p10:d3", 3)]),  # 02-04, 02-11, 02-12
        ("2027-02-12", "2027-02-04", [("due:m7v1:p10:d3", 2)]),
        ("2027-02-12", "2027-02-10", [("due:m7v1:p10:d3", 2)]),
        # Labour Day 2027: 05-03, 05-04 off
        ("2027-05-06", "2027-04-30", [("due:m7v1:p10:d3", 2)]),
        # National Day 2027: 10-01, 10-04, 10-05 off (no 调休 known)
        ("2027-10-08", "2027-09-30", [("due:m7v1:p10:d3", 3)]),
        ("2027-10-08", "2027-10-02", [("due:m7v1:p10:d3", 3)]),
        ("2027-10-08", "2027-10-06", [("due:m7v1:p10:d3", 2)]),
        # an ordinary 2027 week
        ("2027-03-19", "2027-03-10", [("due:m7v1:p10:d7", 7)]),
        ("2027-03-19", "2027-03-22", [("overdue:m7v1:p10:n1", -1)]),
    ],
)
def test_reminders_year_end_and_2027(due, today, expected):
    assert keys_days(run(task(ms(7, due)), today)) == expected


def test_2027_fallback_warns_and_does_not_crash():
    cal = WorkCalendar()
    out = run(task(ms(7, "2027-01-04")), "2026-12-25", cal=cal)
    assert keys_days(out) == [("due:m7v1:p10:d7", 5)]
    assert any(w.startswith("2027 年的法定节假日调休安排尚未收录") for w in cal.warnings)


# ---------------------------------------------------------------------------------------------
# Overdue: owner nags every 3 working days (capped at 5) and the escalation ladder

# due Friday 2026-12-04; (working days late, a day that late)
LATE_DAYS = [
    (1, "2026-12-07"),
    (2, "2026-12-08"),
    (3, "2026-12-09"),
    (4, "2026-12-10"),
    (5, "2026-12-12"),  # Saturday, still 5
    (7, "2026-12-15"),
    (8, "2026-12-16"),
    (15, "2026-12-25"),
    (16, "2026-12-28"),
    (30, "2027-01-18"),  # across the year end, 2027-01-01 off
]


@pytest.mark.parametrize(
    ("late", "today", "nag", "escalated"),
    [
        (1, "2026-12-07", 1, []),
        (2, "2026-12-08", 1, []),
        (3, "2026-12-09", 1, [(HEAD, 1)]),
        (4, "2026-12-10", 2, [(HEAD, 1)]),
        (5, "2026-12-12", 2, [(HEAD, 1)]),
        (7, "2026-12-15", 3, [(HEAD, 1), (SUPERVISOR, 2)]),
        (8, "2026-12-16", 3, [(HEAD, 1), (SUPERVISOR, 2)]),
        (15, "2026-12-25", 5, [(HEAD, 1), (SUPERVISOR, 2), (OFFICE1, 3), (OFFICE2, 3)]),
        (16, "2026-12-28", 5, [(HEAD, 1), (SUPERVISOR, 2), (OFFICE1, 3), (OFFICE2, 3)]),
        (30, "2027-01-18", 5, [(HEAD, 1), (SUPERVISOR, 2), (OFFICE1, 3), (OFFICE2, 3)]),
    ],
)
def test_overdue_ladder(late, today, nag, escalated):
    out = run(DUE_FRI, today)
    expected = [(f"overdue:m7v1:p10:n{nag}", OVERDUE, OWNER, 0, -late)]
    expected += [(f"escalation:m7v1:L{lvl}:p{who}", ESCALATION, who, lvl, -late) for who, lvl in escalated]
    assert full(out) == sorted(expected)
    assert all(d.due == D(2026, 12, 4) and d.milestone_id == 7 for d in out)


@pytest.mark.parametrize(
    ("late", "nag"),
    [(1, 1), (3, 1), (4, 2), (6, 2), (7, 3), (9, 3), (10, 4), (12, 4), (13, 5), (20, 5), (60, 5)],
)
def test_overdue_nag_index(late, nag):
    today = CAL.add_workdays(D(2026, 3, 2), late)  # due Monday 2026-03-02
    out = decide(task(ms(7, "2026-03-02")), DEFAULT_POLICY, CAL, today)
    assert [d.key for d in out if d.kind == OVERDUE] == [f"overdue:m7v1:p10:n{nag}"]


@pytest.mark.parametrize(
    ("people", "today", "escalated"),
    [
        # the owner is the department head: level 1 goes to the owner's manager
        (dict(owner_id=HEAD), "2026-12-09", [(MANAGER, 1)]),
        (dict(owner_id=HEAD), "2026-12-25", [(MANAGER, 1), (SUPERVISOR, 2), (OFFICE1, 3), (OFFICE2, 3)]),
        # ... and without a manager, nobody at level 1
        (dict(owner_id=HEAD, owner_manager_id=None), "2026-12-15", [(SUPERVISOR, 2)]),
        # no department head: the owner's manager
        (dict(head_id=None), "2026-12-09", [(MANAGER, 1)]),
        (dict(head_id=None, owner_manager_id=None), "2026-12-09", []),
        # the owner is the supervising leader: no level-2 message
        (dict(owner_id=SUPERVISOR), "2026-12-15", [(HEAD, 1)]),
        (dict(owner_id=SUPERVISOR), "2026-12-25", [(HEAD, 1), (OFFICE1, 3), (OFFICE2, 3)]),
        # no supervising leader on record
        (dict(supervisor_id=None), "2026-12-15", [(HEAD, 1)]),
        # the head is also the supervising leader: one message, at the highest level reached
        (dict(head_id=SUPERVISOR), "2026-12-09", [(SUPERVISOR, 1)]),
        (dict(head_id=SUPERVISOR), "2026-12-15", [(SUPERVISOR, 2)]),
        (dict(head_id=SUPERVISOR), "2026-12-25", [(SUPERVISOR, 2), (OFFICE1, 3), (OFFICE2, 3)]),
        # the owner's manager (owner is head) is the supervising leader
        (dict(owner_id=HEAD, owner_manager_id=SUPERVISOR), "2026-12-09", [(SUPERVISOR, 1)]),
        (dict(owner_id=HEAD, owner_manager_id=SUPERVISOR), "2026-12-15", [(SUPERVISOR, 2)]),
        # the head sits in the office: level 3 only for them
        (dict(office_ids=(HEAD, OFFICE1)), "2026-12-15", [(HEAD, 1), (SUPERVISOR, 2)]),
        (dict(office_ids=(HEAD, OFFICE1)), "2026-12-25", [(HEAD, 3), (SUPERVISOR, 2), (OFFICE1, 3)]),
        # the owner sits in the office: not told about themselves
        (dict(office_ids=(OWNER, OFFICE1)), "2026-12-25", [(HEAD, 1), (SUPERVISOR, 2), (OFFICE1, 3)]),
        (dict(office_ids=()), "2026-12-25", [(HEAD, 1), (SUPERVISOR, 2)]),
    ],
)
def test_escalation_recipients_in_decisions(people, today, escalated):
    t = task(ms(7, "2026-12-04"), **people)
    out = run(t, today)
    got = sorted((d.recipient_id, d.level) for d in out if d.kind == ESCALATION)
    assert got == sorted(escalated)
    keys = sorted(d.key for d in out if d.kind == ESCALATION)
    assert keys == sorted(f"escalation:m7v1:L{lvl}:p{who}" for who, lvl in escalated)
    assert [d.recipient_id for d in out if d.kind == OVERDUE] == [t.owner_id]


@pytest.mark.parametrize(
    ("people", "level", "expected"),
    [
        ({}, 1, (HEAD,)),
        ({}, 2, (SUPERVISOR,)),
        ({}, 3, (OFFICE1, OFFICE2)),
        (dict(owner_id=HEAD), 1, (MANAGER,)),
        (dict(owner_id=HEAD, owner_manager_id=None), 1, ()),
        (dict(owner_id=HEAD, owner_manager_id=HEAD), 1, ()),
        (dict(head_id=None), 1, (MANAGER,)),
        (dict(owner_id=SUPERVISOR), 2, ()),
        (dict(supervisor_id=None), 2, ()),
        (dict(owner_id=OFFICE1), 3, (OFFICE2,)),
        (dict(office_ids=()), 3, ()),
    ],
)
def test_escalation_recipients(people, level, expected):
    assert escalation_recipients(task(**people), level) == expected


# ---------------------------------------------------------------------------------------------
# Who gets no reminders; several milestones; a moved due date


@pytest.mark.parametrize("status", ["submitted", "done", "archived"])
@pytest.mark.parametrize("today", ["2026-11-25", "2026-12-04", "2026-12-07", "2026-12-28"])
def test_no_reminders_for_closed_milestones(status, today):
    assert run(task(ms(7, "2026-12-04", status=status)), today) == []


@pytest.mark.parametrize("status", ["assigned", "in_progress"])
def test_open_statuses_are_reminded(status):
    assert [d.key for d in run(task(ms(7, "2026-12-04", status=status)), "2026-12-04")] == ["due:m7v1:p10:d0"]


@pytest.mark.parametrize(
    ("t", "today"),
    [
        (task(ms(7, "2026-12-04"), archived=True), "2026-12-04"),
        (task(ms(7, "2026-12-04"), archived=True), "2026-12-28"),
        (task(ms(7, "2026-12-04"), archived=True, acknowledged=False), "2026-12-28"),
        (task(ms(7, "2026-12-04"), archived=True, schedule="ongoing", period="month"), "2026-12-28"),
        (task(ms(1, "2026-11-30", status="done"), ms(2, "2026-12-04", status="done")), "2026-12-28"),
        (task(ms(1, "2026-11-30", status="done"), ms(2, "2026-12-04", status="submitted")), "2026-12-28"),
        # done (or submitted) and never acknowledged: nothing to chase
        (task(ms(7, "2026-12-04", status="done"), acknowledged=False), "2026-12-28"),
        (task(), "2026-12-04"),  # nothing dated
        (task(acknowledged=False), "2026-12-04"),
        # a one-off task does not report periodically even with a period
        (task(ms(7, "2026-12-04", status="done"), period="month"), "2026-12-28"),
        # an ongoing task without a period
        (task(schedule="ongoing"), "2026-12-28"),
    ],
)
def test_no_reminders_for_closed_tasks(t, today):
    assert run(t, today) == []


