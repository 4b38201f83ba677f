"""Table-driven tests for duban.rules.deadlines (``decide``, ``colour``, ``period_bounds``,
``escalation_recipients``) and duban.rules.policy, on the real national ``WorkCalendar``.

Reading the tables: people are numbered OWNER=10, HEAD=20, MANAGER=30 (the owner's manager),
SUPERVISOR=40 (分管校领导), OFFICE=50, 51 (领导小组办公室).  A milestone is ``ms(7, "2026-12-04")``
(id 7, due version 1, in progress); a task is ``task(ms(...), ...)`` (id 1, acknowledged, assigned
2026-01-05).  Keys read ``<kind>:<tag>:p<recipient>:<step>`` with tag ``m<id>v<due_version>`` for
a milestone, ``t<id>:<assigned_on>`` for acknowledgement and ``r<id>:<period end>`` for a report.

Useful 2026 facts (chinese_calendar): 调休 workdays 01-04 (Sun), 02-14 (Sat), 02-28 (Sat), 05-09 (Sat),
09-20 (Sun), 10-10 (Sat); 中秋 09-25 (Fri) and National Day 10-01..10-07 off.  2027 is a fallback year: Monday–Friday
minus the statutory holidays of ``holidays.China`` (01-01, 02-05..02-10, 04-05, 05-03/04, 06-09,
09-15, 10-01..10-05 on weekdays).
"""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from duban.rules.calendar import InstitutionCalendar, WorkCalendar
from duban.rules.deadlines import MilestoneView, TaskView, colour, decide, escalation_recipients, period_bounds
from duban.rules.policy import DEFAULT_POLICY, DeadlinePolicy, effective_policy
from duban.vocabulary import Light, MessageKind

D = dt.date
OWNER, HEAD, MANAGER, SUPERVISOR, OFFICE1, OFFICE2 = 10, 20, 30, 40, 50, 51
CAL = WorkCalendar()  # read-only here; the 2027 fallback warning is checked on a fresh one


def day(value: str | dt.date | None) -> dt.date | None:
    return D.fromisoformat(value) if isinstance(value, str) else value


def ms(mid: int, due: str, *, status: str = "in_progress", version: int = 1, seq: int | None = None, final: bool = False) -> MilestoneView:
    return MilestoneView(
        id=mid, seq=mid if seq is None else seq, title=f"步骤{mid}", due=day(due), due_version=version, status=status, is_final=final
    )


def task(*milestones: MilestoneView, **kw) -> TaskView:
    fields = dict(
        id=1,
        plan_id=1,
        code="1.1",
        title="推进某项工作",
        owner_id=OWNER,
        head_id=HEAD,
        owner_manager_id=MANAGER,
        supervisor_id=SUPERVISOR,
        office_ids=(OFFICE1, OFFICE2),
        assigned_on=D(2026, 1, 5),
        acknowledged=True,
        milestones=milestones,
    )
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
        if d.kind == MessageKind.ESCALATION:
            assert d.level in (1, 2, 3) and d.recipient_id != t.owner_id
        else:
            assert d.level == 0 and d.recipient_id == t.owner_id
        if d.kind in (MessageKind.DUE, MessageKind.OVERDUE):
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
    assert [d.kind for d in run(DUE_FRI, "2026-12-01")] == [MessageKind.DUE]
    assert [d.kind for d in run(DUE_FRI, "2026-12-07")] == [MessageKind.OVERDUE]


# ---------------------------------------------------------------------------------------------
# Across holidays and 调休 (2026, chinese_calendar)


@pytest.mark.parametrize(
    ("due", "today", "expected"),
    [
        # due Friday 10-09, right after National Day (10-01..10-07 off; 09-20 Sun and 10-10 Sat on)
        ("2026-10-09", "2026-09-18", []),  # 10 left: 调休 09-20 (Sun) counts, 中秋 09-25 (Fri) does not
        ("2026-10-09", "2026-09-21", []),  # 8 left
        ("2026-10-09", "2026-09-22", [("due:m7v1:p10:d7", 7)]),
        ("2026-10-09", "2026-09-23", [("due:m7v1:p10:d7", 6)]),
        ("2026-10-09", "2026-09-24", [("due:m7v1:p10:d7", 5)]),
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
        ("2026-10-09", "2026-10-13", [("overdue:m7v1:p10:n1", -3), ("escalation:m7v1:L1:p20", -3)]),
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
        ("2026-12-30", "2027-01-05", [("overdue:m7v1:p10:n1", -3), ("escalation:m7v1:L1:p20", -3)]),
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
    expected = [(f"overdue:m7v1:p10:n{nag}", MessageKind.OVERDUE, OWNER, 0, -late)]
    expected += [(f"escalation:m7v1:L{lvl}:p{who}", MessageKind.ESCALATION, who, lvl, -late) for who, lvl in escalated]
    if late >= 25:  # 10 working days after the last level: everyone on the ladder hears again (持续督办)
        expected += [("overdue:m7v1:p10:R1", MessageKind.OVERDUE, OWNER, 0, -late)]
        expected += [(f"escalation:m7v1:L{lvl}:p{who}:R1", MessageKind.ESCALATION, who, lvl, -late) for who, lvl in escalated]
    assert full(out) == sorted(expected)
    assert all(d.due == D(2026, 12, 4) and d.milestone_id == 7 for d in out)


@pytest.mark.parametrize(
    ("late", "nag"),
    [(1, 1), (3, 1), (4, 2), (6, 2), (7, 3), (9, 3), (10, 4), (12, 4), (13, 5), (20, 5), (60, 5)],
)
def test_overdue_nag_index(late, nag):
    today = CAL.add_workdays(D(2026, 3, 2), late)  # due Monday 2026-03-02
    out = decide(task(ms(7, "2026-03-02")), DEFAULT_POLICY, CAL, today)
    assert [d.key for d in out if d.kind == MessageKind.OVERDUE and "renotice" not in d.data] == [f"overdue:m7v1:p10:n{nag}"]


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
    got = sorted((d.recipient_id, d.level) for d in out if d.kind == MessageKind.ESCALATION)
    assert got == sorted(escalated)
    keys = sorted(d.key for d in out if d.kind == MessageKind.ESCALATION)
    assert keys == sorted(f"escalation:m7v1:L{lvl}:p{who}" for who, lvl in escalated)
    assert [d.recipient_id for d in out if d.kind == MessageKind.OVERDUE] == [t.owner_id]


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


SEVERAL = task(
    ms(1, "2026-11-30", status="done"),
    ms(2, "2026-12-04"),
    ms(3, "2026-12-01", status="submitted"),
    ms(4, "2026-12-10", status="assigned"),
    ms(5, "2027-03-31", final=True),
    ms(6, "2026-12-02", status="archived"),
)


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        ("2026-11-25", [("due:m2v1:p10:d7", 7)]),
        ("2026-12-01", [("due:m2v1:p10:d3", 3), ("due:m4v1:p10:d7", 7)]),
        ("2026-12-04", [("due:m2v1:p10:d0", 0), ("due:m4v1:p10:d7", 4)]),
        ("2026-12-09", [("overdue:m2v1:p10:n1", -3), ("escalation:m2v1:L1:p20", -3), ("due:m4v1:p10:d1", 1)]),
        (
            "2026-12-16",
            [
                ("overdue:m2v1:p10:n3", -8),
                ("escalation:m2v1:L1:p20", -8),
                ("escalation:m2v1:L2:p40", -8),
                ("overdue:m4v1:p10:n2", -4),
                ("escalation:m4v1:L1:p20", -4),
            ],
        ),
        # 71 / 67 working days late: 19 in Dec 2026, 20 in Jan 2027 (01-01 off), 16 in Feb (02-05, 08-10 off), 16 in Mar
        (
            "2027-03-22",
            [
                ("overdue:m2v1:p10:n5", -71),
                ("escalation:m2v1:L1:p20", -71),
                ("escalation:m2v1:L2:p40", -71),
                ("escalation:m2v1:L3:p50", -71),
                ("escalation:m2v1:L3:p51", -71),
                # the 5th re-notice: (71 - 15) // 10
                ("overdue:m2v1:p10:R5", -71),
                ("escalation:m2v1:L1:p20:R5", -71),
                ("escalation:m2v1:L2:p40:R5", -71),
                ("escalation:m2v1:L3:p50:R5", -71),
                ("escalation:m2v1:L3:p51:R5", -71),
                ("overdue:m4v1:p10:n5", -67),
                ("escalation:m4v1:L1:p20", -67),
                ("escalation:m4v1:L2:p40", -67),
                ("escalation:m4v1:L3:p50", -67),
                ("escalation:m4v1:L3:p51", -67),
                ("overdue:m4v1:p10:R5", -67),
                ("escalation:m4v1:L1:p20:R5", -67),
                ("escalation:m4v1:L2:p40:R5", -67),
                ("escalation:m4v1:L3:p50:R5", -67),
                ("escalation:m4v1:L3:p51:R5", -67),
                ("due:m5v1:p10:d7", 7),
            ],
        ),
    ],
)
def test_several_milestones_only_open_ones(today, expected):
    out = run(SEVERAL, today)
    assert keys_days(out) == expected
    final = [d for d in out if d.milestone_id == 5]
    assert all(d.data["final"] is True for d in final)


@pytest.mark.parametrize(
    ("due", "version", "today", "expected"),
    [
        ("2026-12-04", 1, "2026-12-09", [("overdue:m7v1:p10:n1", -3), ("escalation:m7v1:L1:p20", -3)]),
        # extension approved: the due date moved to 12-18 and its version to 2 → fresh reminders
        ("2026-12-18", 2, "2026-12-09", [("due:m7v2:p10:d7", 7)]),
        ("2026-12-18", 2, "2026-12-15", [("due:m7v2:p10:d3", 3)]),
        ("2026-12-18", 2, "2026-12-21", [("overdue:m7v2:p10:n1", -1)]),  # the nags restart at n1
        ("2026-12-18", 2, "2026-12-23", [("overdue:m7v2:p10:n1", -3), ("escalation:m7v2:L1:p20", -3)]),
        # the same date under a new version is a new message too
        ("2026-12-04", 1, "2026-12-04", [("due:m7v1:p10:d0", 0)]),
        ("2026-12-04", 2, "2026-12-04", [("due:m7v2:p10:d0", 0)]),
        ("2026-12-18", 3, "2026-12-28", [("overdue:m7v3:p10:n2", -6), ("escalation:m7v3:L1:p20", -6)]),
    ],
)
def test_moved_due_date_restarts_reminders(due, version, today, expected):
    assert keys_days(run(task(ms(7, due, version=version)), today)) == expected


# ---------------------------------------------------------------------------------------------
# Acknowledgement (签收): reminder at 3 working days, escalation to level 1 at 5

ACK_KEY = "ack:t1:2026-11-02:p10"
ACK_ESC = "escalation:ack:t1:2026-11-02:p{}"


@pytest.mark.parametrize(
    ("people", "assigned_on", "today", "expected"),
    [
        ({}, "2026-11-02", "2026-11-02", []),
        ({}, "2026-11-02", "2026-11-04", []),
        ({}, "2026-11-02", "2026-11-05", [(ACK_KEY, MessageKind.ACK, OWNER, 0, -3)]),
        ({}, "2026-11-02", "2026-11-06", [(ACK_KEY, MessageKind.ACK, OWNER, 0, -4)]),
        ({}, "2026-11-02", "2026-11-08", [(ACK_KEY, MessageKind.ACK, OWNER, 0, -4)]),  # Sunday
        (
            {},
            "2026-11-02",
            "2026-11-09",
            [(ACK_KEY, MessageKind.ACK, OWNER, 0, -5), (ACK_ESC.format(HEAD), MessageKind.ESCALATION, HEAD, 1, -5)],
        ),
        (
            {},
            "2026-11-02",
            "2026-11-20",
            [(ACK_KEY, MessageKind.ACK, OWNER, 0, -14), (ACK_ESC.format(HEAD), MessageKind.ESCALATION, HEAD, 1, -14)],
        ),
        # the owner is the head: their manager; no manager: nobody
        (
            dict(owner_id=HEAD),
            "2026-11-02",
            "2026-11-09",
            [("ack:t1:2026-11-02:p20", MessageKind.ACK, HEAD, 0, -5), (ACK_ESC.format(MANAGER), MessageKind.ESCALATION, MANAGER, 1, -5)],
        ),
        (dict(owner_id=HEAD, owner_manager_id=None), "2026-11-02", "2026-11-09", [("ack:t1:2026-11-02:p20", MessageKind.ACK, HEAD, 0, -5)]),
        # only level 1, even long after (no supervisor, no office)
        (
            {},
            "2026-11-02",
            "2026-12-01",
            [(ACK_KEY, MessageKind.ACK, OWNER, 0, -21), (ACK_ESC.format(HEAD), MessageKind.ESCALATION, HEAD, 1, -21)],
        ),
        # assigned just before National Day: the holiday does not count, 调休 10-10 does
        ({}, "2026-09-29", "2026-10-07", []),
        ({}, "2026-09-29", "2026-10-08", []),
        ({}, "2026-09-29", "2026-10-09", [("ack:t1:2026-09-29:p10", MessageKind.ACK, OWNER, 0, -3)]),
        ({}, "2026-09-29", "2026-10-10", [("ack:t1:2026-09-29:p10", MessageKind.ACK, OWNER, 0, -4)]),
        (
            {},
            "2026-09-29",
            "2026-10-12",
            [
                ("ack:t1:2026-09-29:p10", MessageKind.ACK, OWNER, 0, -5),
                ("escalation:ack:t1:2026-09-29:p20", MessageKind.ESCALATION, HEAD, 1, -5),
            ],
        ),
        # acknowledged: nothing
        (dict(acknowledged=True), "2026-11-02", "2026-11-20", []),
        # assigned in the future (clock skew): nothing
        ({}, "2026-11-30", "2026-11-20", []),
    ],
)
def test_acknowledgement(people, assigned_on, today, expected):
    t = task(ms(7, "2026-12-31"), **{"acknowledged": False, "assigned_on": assigned_on, **people})
    out = run(t, today)
    assert full(out) == sorted(expected)
    for d in out:
        assert d.milestone_id is None
        assert d.data["assigned_on"] == assigned_on and d.data["waited"] == -d.days
        assert d.data.get("ack") is (True if d.kind == MessageKind.ESCALATION else None)


def test_acknowledgement_with_overdue_milestone():
    t = task(ms(7, "2026-11-04"), acknowledged=False, assigned_on="2026-11-02")
    assert full(run(t, "2026-11-09")) == sorted(
        [
            (ACK_KEY, MessageKind.ACK, OWNER, 0, -5),
            (ACK_ESC.format(HEAD), MessageKind.ESCALATION, HEAD, 1, -5),
            ("overdue:m7v1:p10:n1", MessageKind.OVERDUE, OWNER, 0, -3),
            ("escalation:m7v1:L1:p20", MessageKind.ESCALATION, HEAD, 1, -3),
        ]
    )


def test_acknowledgement_of_an_ongoing_task_without_milestones():
    t = task(schedule="ongoing", period="month", acknowledged=False, assigned_on="2026-11-02")
    assert [d.key for d in run(t, "2026-11-09")] == [ACK_KEY, ACK_ESC.format(HEAD)]


# ---------------------------------------------------------------------------------------------
# Periodic reports (反馈) of ongoing and recurring tasks

# (period, period_month, assigned_on, last_report_on, today, expected [(key, days)])
REPORT_CASES = [
    # month: November 2026 ends Monday 11-30; October ends Saturday 10-31
    ("month", None, "2026-01-05", "2026-10-20", "2026-11-24", []),
    ("month", None, "2026-01-05", "2026-10-20", "2026-11-25", [("report_due:r1:2026-11-30:p10:d3", 3)]),
    ("month", None, "2026-01-05", "2026-10-20", "2026-11-27", [("report_due:r1:2026-11-30:p10:d3", 1)]),
    ("month", None, "2026-01-05", "2026-10-20", "2026-11-28", [("report_due:r1:2026-11-30:p10:d3", 1)]),
    ("month", None, "2026-01-05", "2026-10-20", "2026-11-30", [("report_due:r1:2026-11-30:p10:d0", 0)]),
    ("month", None, "2026-01-05", "2026-11-03", "2026-11-25", []),  # filed this month
    ("month", None, "2026-01-05", "2026-11-30", "2026-11-30", []),
    # October missing: 3 working days of grace after 10-31, then 催报 and the ladder
    ("month", None, "2026-01-05", "2026-09-15", "2026-11-04", []),
    ("month", None, "2026-01-05", "2026-09-15", "2026-11-05", [("report_overdue:r1:2026-10-31:p10:n1", -1)]),
    # two months missing: September's report keeps escalating while October's is chased
    (
        "month",
        None,
        "2026-01-05",
        None,
        "2026-11-05",
        [
            ("report_overdue:r1:2026-09-30:p10:n5", -19),
            ("escalation:r1:2026-09-30:L1:p20", -19),
            ("escalation:r1:2026-09-30:L2:p40", -19),
            ("escalation:r1:2026-09-30:L3:p50", -19),
            ("escalation:r1:2026-09-30:L3:p51", -19),
            ("report_overdue:r1:2026-10-31:p10:n1", -1),
        ],
    ),
    (
        "month",
        None,
        "2026-01-05",
        "2026-09-15",
        "2026-11-09",
        [("report_overdue:r1:2026-10-31:p10:n1", -3), ("escalation:r1:2026-10-31:L1:p20", -3)],
    ),
    (
        "month",
        None,
        "2026-01-05",
        "2026-09-15",
        "2026-11-10",
        [("report_overdue:r1:2026-10-31:p10:n2", -4), ("escalation:r1:2026-10-31:L1:p20", -4)],
    ),
    (
        "month",
        None,
        "2026-01-05",
        "2026-09-15",
        "2026-11-25",
        [
            ("report_overdue:r1:2026-10-31:p10:n5", -15),
            ("escalation:r1:2026-10-31:L1:p20", -15),
            ("escalation:r1:2026-10-31:L2:p40", -15),
            ("escalation:r1:2026-10-31:L3:p50", -15),
            ("escalation:r1:2026-10-31:L3:p51", -15),
            ("report_due:r1:2026-11-30:p10:d3", 3),
        ],
    ),
    # only the date of the last report is known: a late October report filed on 11-02 also counts
    # for November (current behaviour, see the report)
    ("month", None, "2026-01-05", "2026-11-02", "2026-11-25", []),
    # assigned on October's last day (a Saturday): still asked for October (current behaviour)
    ("month", None, "2026-10-31", None, "2026-11-05", [("report_overdue:r1:2026-10-31:p10:n1", -1)]),
    # assigned after October ended: not asked for October, asked for November
    ("month", None, "2026-11-02", None, "2026-11-10", []),
    ("month", None, "2026-11-02", None, "2026-11-25", [("report_due:r1:2026-11-30:p10:d3", 3)]),
    # quarter: Q4 ends Thursday 12-31; Q3 ended 09-30, grace runs 10-08, 10-09, 10-10 (调休)
    ("quarter", None, "2026-01-05", "2026-08-01", "2026-12-24", []),
    ("quarter", None, "2026-01-05", "2026-08-01", "2026-12-28", [("report_due:r1:2026-12-31:p10:d3", 3)]),
    ("quarter", None, "2026-01-05", "2026-08-01", "2026-12-31", [("report_due:r1:2026-12-31:p10:d0", 0)]),
    ("quarter", None, "2026-01-05", "2026-10-15", "2026-12-28", []),
    ("quarter", None, "2026-01-05", "2026-06-30", "2026-10-10", []),
    ("quarter", None, "2026-01-05", "2026-06-30", "2026-10-12", [("report_overdue:r1:2026-09-30:p10:n1", -1)]),
    (
        "quarter",
        None,
        "2026-01-05",
        "2026-06-30",
        "2026-10-14",
        [("report_overdue:r1:2026-09-30:p10:n1", -3), ("escalation:r1:2026-09-30:L1:p20", -3)],
    ),
    # semester (default: spring 01-16..07-15, autumn 07-16..01-15)
    ("semester", None, "2026-01-05", "2026-05-01", "2027-01-11", []),
    ("semester", None, "2026-01-05", "2026-05-01", "2027-01-12", [("report_due:r1:2027-01-15:p10:d3", 3)]),
    ("semester", None, "2026-01-05", "2026-05-01", "2027-01-15", [("report_due:r1:2027-01-15:p10:d0", 0)]),
    ("semester", None, "2026-01-05", "2026-01-10", "2026-07-20", []),
    ("semester", None, "2026-01-05", "2026-01-10", "2026-07-21", [("report_overdue:r1:2026-07-15:p10:n1", -1)]),
    ("semester", None, "2026-01-05", "2026-07-16", "2026-07-21", []),
    ("semester", None, "2026-01-20", None, "2026-07-21", [("report_overdue:r1:2026-07-15:p10:n1", -1)]),
    ("semester", None, "2026-07-16", None, "2026-07-21", []),
    # year, ending in June (每年6月)
    ("year", 6, "2025-01-01", "2025-09-01", "2026-06-25", []),
    ("year", 6, "2025-01-01", "2025-03-01", "2026-06-25", [("report_due:r1:2026-06-30:p10:d3", 3)]),
    ("year", 6, "2025-01-01", "2025-03-01", "2026-07-06", [("report_overdue:r1:2026-06-30:p10:n1", -1)]),
    ("year", 6, "2025-01-01", "2026-07-02", "2026-07-06", []),
    # year, ending in December (default)
    ("year", None, "2025-01-01", "2026-02-01", "2026-12-28", []),
    ("year", None, "2025-01-01", "2025-05-01", "2026-12-28", [("report_due:r1:2026-12-31:p10:d3", 3)]),
    ("year", None, "2025-01-01", "2025-05-01", "2027-01-07", [("report_overdue:r1:2026-12-31:p10:n1", -1)]),
    # week (Monday..Friday)
    ("week", None, "2026-01-05", "2026-11-27", "2026-12-01", [("report_due:r1:2026-12-04:p10:d3", 3)]),
    (
        "week",
        None,
        "2026-01-05",
        "2026-11-20",
        "2026-12-03",
        [("report_overdue:r1:2026-11-27:p10:n1", -1), ("report_due:r1:2026-12-04:p10:d3", 1)],
    ),
]


@pytest.mark.parametrize("schedule", ["ongoing", "recurring"])
@pytest.mark.parametrize(("period", "month", "assigned_on", "last_report_on", "today", "expected"), REPORT_CASES)
def test_periodic_reports(schedule, period, month, assigned_on, last_report_on, today, expected):
    t = task(schedule=schedule, period=period, period_month=month, assigned_on=assigned_on, last_report_on=last_report_on)
    out = run(t, today)
    assert keys_days(out) == expected
    for d in out:
        assert d.kind in (MessageKind.REPORT_DUE, MessageKind.REPORT_OVERDUE, MessageKind.ESCALATION) and d.milestone_id is None
        assert d.data["report"] is True
        assert d.due == D.fromisoformat(d.data["period_end"])
        assert d.key.split(":")[2] == d.data["period_end"]


def test_periodic_reports_alongside_milestones():
    t = task(ms(7, "2026-12-04"), schedule="ongoing", period="month", last_report_on="2026-10-20")
    assert keys_days(run(t, "2026-11-25")) == [("due:m7v1:p10:d7", 7), ("report_due:r1:2026-11-30:p10:d3", 3)]


@pytest.mark.parametrize(
    ("period", "month", "when", "bounds"),
    [
        ("week", None, "2026-12-02", ("2026-11-30", "2026-12-04")),
        ("week", None, "2026-11-30", ("2026-11-30", "2026-12-04")),
        ("week", None, "2026-12-05", ("2026-11-30", "2026-12-04")),  # Saturday: the week that just ended
        ("month", None, "2026-01-01", ("2026-01-01", "2026-01-31")),
        ("month", None, "2026-02-10", ("2026-02-01", "2026-02-28")),
        ("month", None, "2028-02-10", ("2028-02-01", "2028-02-29")),
        ("month", None, "2026-04-30", ("2026-04-01", "2026-04-30")),
        ("month", None, "2026-12-31", ("2026-12-01", "2026-12-31")),
        ("quarter", None, "2026-01-01", ("2026-01-01", "2026-03-31")),
        ("quarter", None, "2026-03-31", ("2026-01-01", "2026-03-31")),
        ("quarter", None, "2026-05-15", ("2026-04-01", "2026-06-30")),
        ("quarter", None, "2026-09-30", ("2026-07-01", "2026-09-30")),
        ("quarter", None, "2026-11-11", ("2026-10-01", "2026-12-31")),
        ("semester", None, "2026-01-15", ("2025-07-16", "2026-01-15")),
        ("semester", None, "2026-01-16", ("2026-01-16", "2026-07-15")),
        ("semester", None, "2026-02-10", ("2026-01-16", "2026-07-15")),
        ("semester", None, "2026-07-15", ("2026-01-16", "2026-07-15")),
        ("semester", None, "2026-07-16", ("2026-07-16", "2027-01-15")),
        ("semester", None, "2026-08-20", ("2026-07-16", "2027-01-15")),
        ("semester", None, "2026-12-31", ("2026-07-16", "2027-01-15")),
        ("semester", None, "2027-01-15", ("2026-07-16", "2027-01-15")),
        ("semester", None, "2027-01-16", ("2027-01-16", "2027-07-15")),
        ("year", None, "2026-01-01", ("2026-01-01", "2026-12-31")),
        ("year", None, "2026-06-01", ("2026-01-01", "2026-12-31")),
        ("year", 12, "2026-12-31", ("2026-01-01", "2026-12-31")),
        ("year", 6, "2026-06-30", ("2025-07-01", "2026-06-30")),
        ("year", 6, "2026-07-01", ("2026-07-01", "2027-06-30")),
        ("year", 6, "2026-01-10", ("2025-07-01", "2026-06-30")),
        ("year", 2, "2028-02-29", ("2027-03-01", "2028-02-29")),
        ("year", 2, "2027-03-01", ("2027-03-01", "2028-02-29")),
        ("year", 1, "2026-02-01", ("2026-02-01", "2027-01-31")),
    ],
)
def test_period_bounds(period, month, when, bounds):
    got = period_bounds(CAL, day(when), period, month)
    assert got == (day(bounds[0]), day(bounds[1]))
    # the period contains the day (a week's weekend follows its Friday) and agrees with the calendar
    assert got[0] <= day(when) and (day(when) <= got[1] or period == "week")
    assert got[1] == CAL.period_end(day(when), period, month)
    # periods tile: the previous one ends the day before this one starts (a week: the Friday before)
    prev = period_bounds(CAL, got[0] - dt.timedelta(days=1), period, month)
    assert prev[1] == got[0] - dt.timedelta(days=3 if period == "week" else 1)


SEMESTERS = InstitutionCalendar(
    semesters=[
        {"name": "2026-2027 学年第一学期", "start": "2026-09-07", "end": "2027-01-22"},
        {"name": "2026-2027 学年第二学期", "start": "2027-02-22", "end": "2027-07-09"},
    ]
)


@pytest.mark.parametrize(
    ("when", "bounds"),
    [
        ("2026-09-07", ("2026-07-16", "2027-01-22")),  # the first semester in the file takes the vacation before it
        ("2026-10-01", ("2026-07-16", "2027-01-22")),  # the first semester in the file takes the vacation before it
        ("2027-01-22", ("2026-07-16", "2027-01-22")),  # the first semester in the file takes the vacation before it
        ("2027-01-23", ("2027-01-23", "2027-07-09")),  # winter vacation belongs to the coming semester
        ("2027-02-01", ("2027-01-23", "2027-07-09")),
        ("2027-07-09", ("2027-01-23", "2027-07-09")),
    ],
)
def test_period_bounds_institution_semesters(when, bounds):
    cal = WorkCalendar(SEMESTERS)
    got = period_bounds(cal, day(when), "semester")
    assert got == (day(bounds[0]), day(bounds[1]))
    assert got[1] == cal.period_end(day(when), "semester")


@pytest.mark.parametrize("when", ["2026-08-01", "2026-09-06"])
def test_period_bounds_around_institution_semesters_agree_with_calendar(when):
    cal = WorkCalendar(SEMESTERS)
    assert period_bounds(cal, day(when), "semester")[1] == cal.period_end(day(when), "semester")


@pytest.mark.parametrize("when", ["2026-09-07", "2026-10-01", "2027-01-22"])
def test_period_before_an_institution_semester_ends_the_day_before(when):
    cal = WorkCalendar(SEMESTERS)
    start, _ = period_bounds(cal, day(when), "semester")
    prev = period_bounds(cal, start - dt.timedelta(days=1), "semester")
    assert prev[1] == start - dt.timedelta(days=1)


def test_semester_report_not_overdue_before_institution_semester_ends():
    # reported in the spring semester; the autumn semester runs to 2027-01-22.  Today a report
    # "for the period ending 2027-01-15" (a default semester overlapping this one) is chased.
    cal = WorkCalendar(SEMESTERS)
    t = task(schedule="ongoing", period="semester", assigned_on="2026-03-02", last_report_on="2026-06-01")
    assert keys_days(decide(t, DEFAULT_POLICY, cal, D(2027, 1, 21))) == [("report_due:r1:2027-01-22:p10:d3", 1)]
    assert colour(t, DEFAULT_POLICY, cal, D(2027, 1, 21)) == Light.YELLOW


# ---------------------------------------------------------------------------------------------
# Policy overrides

SHORT = DeadlinePolicy(remind_before=(5, 0), overdue_every=1, overdue_cap=2, escalate_head_after=1)


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        ("2026-11-26", []),
        ("2026-11-27", [("due:m7v1:p10:d5", 5)]),
        ("2026-12-01", [("due:m7v1:p10:d5", 3)]),
        ("2026-12-03", [("due:m7v1:p10:d5", 1)]),
        ("2026-12-04", [("due:m7v1:p10:d0", 0)]),
        ("2026-12-07", [("overdue:m7v1:p10:n1", -1), ("escalation:m7v1:L1:p20", -1)]),
        ("2026-12-08", [("overdue:m7v1:p10:n2", -2), ("escalation:m7v1:L1:p20", -2)]),
        ("2026-12-11", [("overdue:m7v1:p10:n2", -5), ("escalation:m7v1:L1:p20", -5)]),
        ("2026-12-15", [("overdue:m7v1:p10:n2", -7), ("escalation:m7v1:L1:p20", -7), ("escalation:m7v1:L2:p40", -7)]),
    ],
)
def test_policy_override_changes_keys(today, expected):
    assert keys_days(run(DUE_FRI, today, SHORT)) == expected


@pytest.mark.parametrize(
    ("policy", "today", "expected"),
    [
        (DeadlinePolicy(remind_before=()), "2026-12-04", []),
        (DeadlinePolicy(remind_before=()), "2026-12-07", [("overdue:m7v1:p10:n1", -1)]),
        (DeadlinePolicy(remind_before=(10,)), "2026-11-20", [("due:m7v1:p10:d10", 10)]),
        (DeadlinePolicy(remind_before=(10,)), "2026-12-04", [("due:m7v1:p10:d10", 0)]),
        (DeadlinePolicy(escalate_supervisor_after=2), "2026-12-08", [("overdue:m7v1:p10:n1", -2), ("escalation:m7v1:L2:p40", -2)]),
        (
            DeadlinePolicy(overdue_cap=1),
            "2026-12-25",
            [
                ("overdue:m7v1:p10:n1", -15),
                ("escalation:m7v1:L1:p20", -15),
                ("escalation:m7v1:L2:p40", -15),
                ("escalation:m7v1:L3:p50", -15),
                ("escalation:m7v1:L3:p51", -15),
            ],
        ),
        (DeadlinePolicy(ack_within=1, ack_escalate_after=2), "2026-12-04", [("due:m7v1:p10:d0", 0)]),
    ],
)
def test_other_policy_overrides(policy, today, expected):
    assert keys_days(run(DUE_FRI, today, policy)) == expected


@pytest.mark.parametrize(
    ("policy", "today", "expected"),
    [
        (DeadlinePolicy(ack_within=1, ack_escalate_after=2), "2026-11-03", [("ack:t1:2026-11-02:p10", -1)]),
        (
            DeadlinePolicy(ack_within=1, ack_escalate_after=2),
            "2026-11-04",
            [("ack:t1:2026-11-02:p10", -2), ("escalation:ack:t1:2026-11-02:p20", -2)],
        ),
        (
            DeadlinePolicy(report_remind_before=(5,), report_grace=0),
            "2026-11-23",
            [("ack:t1:2026-11-02:p10", -15), ("escalation:ack:t1:2026-11-02:p20", -15), ("report_due:r1:2026-11-30:p10:d5", 5)],
        ),
    ],
)
def test_ack_and_report_policy_overrides(policy, today, expected):
    t = task(ms(7, "2026-12-31"), acknowledged=False, assigned_on="2026-11-02", schedule="ongoing", period="month")
    assert keys_days(run(t, today, policy)) == expected


def test_report_grace_zero_chases_on_the_first_working_day():
    t = task(schedule="ongoing", period="month", last_report_on="2026-09-15")
    policy = DeadlinePolicy(report_grace=0)
    assert keys_days(run(t, "2026-10-31", policy)) == [("report_due:r1:2026-10-31:p10:d0", 0)]
    assert keys_days(run(t, "2026-11-02", policy)) == [("report_overdue:r1:2026-10-31:p10:n1", -1)]


@pytest.mark.parametrize(
    ("plan", "task_policy", "expected"),
    [
        (None, None, {}),
        ({}, {}, {}),
        ({"remind_before": [5, 0]}, None, {"remind_before": (5, 0)}),
        (None, {"remind_before": [0, 1, 1, 3]}, {"remind_before": (3, 1, 0)}),
        ({"overdue_every": 1, "overdue_cap": 2}, {"overdue_cap": 4}, {"overdue_every": 1, "overdue_cap": 4}),
        ({"escalate_head_after": 2}, {"escalate_supervisor_after": 5}, {"escalate_head_after": 2, "escalate_supervisor_after": 5}),
        ({"report_grace": 5}, {"report_grace": 0}, {"report_grace": 0}),
        ({"ack_within": 2}, None, {"ack_within": 2}),
    ],
)
def test_effective_policy(plan, task_policy, expected):
    policy = effective_policy(plan, task_policy)
    assert policy.model_dump() == {**DEFAULT_POLICY.model_dump(), **expected}


def test_default_policy():
    assert effective_policy(None) is DEFAULT_POLICY
    assert DEFAULT_POLICY.model_dump() == {
        "remind_before": (7, 3, 1, 0),
        "overdue_every": 3,
        "overdue_cap": 5,
        "escalate_head_after": 3,
        "escalate_supervisor_after": 7,
        "escalate_office_after": 15,
        "ack_within": 3,
        "ack_escalate_after": 5,
        "report_remind_before": (3, 0),
        "report_grace": 3,
        "approval_remind_after": 3,
        "announce_grace": 5,
        "renotice_every": 10,
        "send_hours": "",
        "office_batch_times": ("10:00", "15:00"),
    }
    assert DEFAULT_POLICY.window == 7
    assert SHORT.window == 5
    assert DeadlinePolicy(remind_before=()).window == 0


@pytest.mark.parametrize(
    ("plan", "task_policy"),
    [
        ({"remind_before": [-1]}, None),
        (None, {"overdue_every": 0}),
        ({"overdue_cap": 0}, None),
        (None, {"no_such_rule": 1}),
        ({"report_grace": -1}, None),
    ],
)
def test_effective_policy_rejects_bad_values(plan, task_policy):
    with pytest.raises(ValidationError):
        effective_policy(plan, task_policy)


# ---------------------------------------------------------------------------------------------
# Colour (red / yellow / green / None)

MONTHLY = dict(schedule="ongoing", period="month")


@pytest.mark.parametrize(
    ("t", "today", "expected"),
    [
        # past due and open → red (even on the weekend, before any overdue message)
        (task(ms(7, "2026-12-04")), "2026-12-05", Light.RED),
        (task(ms(7, "2026-12-04")), "2026-12-28", Light.RED),
        (task(ms(7, "2026-12-04", status="assigned")), "2026-12-07", Light.RED),
        # due within 7 working days → yellow
        (task(ms(7, "2026-12-04")), "2026-12-04", Light.YELLOW),
        (task(ms(7, "2026-12-04")), "2026-11-25", Light.YELLOW),
        (task(ms(7, "2026-12-04")), "2026-11-24", Light.GREEN),
        (task(ms(7, "2026-10-09")), "2026-09-22", Light.YELLOW),  # 7 working days across 中秋 and National Day
        (task(ms(7, "2026-10-09")), "2026-09-21", Light.GREEN),
        # submitted (awaiting review) only → green, even past due
        (task(ms(7, "2026-12-04", status="submitted")), "2026-12-28", Light.GREEN),
        (task(ms(1, "2026-11-30", status="done"), ms(2, "2026-12-04", status="submitted")), "2026-12-28", Light.GREEN),
        # done / archived → no colour
        (task(ms(7, "2026-12-04", status="done")), "2026-12-28", None),
        (task(ms(1, "2026-11-30", status="done"), ms(2, "2026-12-04", status="done")), "2026-12-28", None),
        (task(ms(7, "2026-12-04", status="done"), ms(8, "2026-12-10", status="archived")), "2026-12-28", None),
        (task(ms(7, "2026-12-04", status="archived")), "2026-12-28", None),
        (task(ms(7, "2026-12-04"), archived=True), "2026-12-28", None),
        (task(archived=True, **MONTHLY), "2026-11-05", None),
        (task(), "2026-12-04", None),
        (task(ms(7, "2026-12-04", status="done"), acknowledged=False), "2026-12-28", None),
        # archived milestone past due does not make it red
        (task(ms(7, "2026-11-04", status="archived"), ms(8, "2027-06-30")), "2026-12-04", Light.GREEN),
        # not acknowledged after 3 working days → yellow
        (task(ms(7, "2026-12-31"), acknowledged=False, assigned_on="2026-11-02"), "2026-11-04", Light.GREEN),
        (task(ms(7, "2026-12-31"), acknowledged=False, assigned_on="2026-11-02"), "2026-11-05", Light.YELLOW),
        (task(ms(7, "2026-12-31"), acknowledged=True, assigned_on="2026-11-02"), "2026-11-05", Light.GREEN),
        # a later roadmap step is done (or submitted) while an earlier one is open → yellow
        (task(ms(1, "2026-09-30"), ms(2, "2026-12-31", status="done")), "2026-06-01", Light.YELLOW),
        (task(ms(1, "2026-09-30"), ms(2, "2026-12-31", status="submitted")), "2026-06-01", Light.YELLOW),
        (task(ms(1, "2026-09-30"), ms(2, "2026-12-31")), "2026-06-01", Light.GREEN),
        (task(ms(1, "2026-09-30", status="done"), ms(2, "2026-12-31")), "2026-06-01", Light.GREEN),
        (task(ms(5, "2026-09-30", seq=1), ms(3, "2026-12-31", seq=2, status="done")), "2026-06-01", Light.YELLOW),
        (task(ms(5, "2026-09-30", seq=2), ms(3, "2026-12-31", seq=1, status="done")), "2026-06-01", Light.GREEN),
        # red wins over everything
        (task(ms(1, "2026-05-29"), ms(2, "2026-12-31", status="done"), acknowledged=False), "2026-06-01", Light.RED),
        # periodic reports: October missing, 3 days of grace, then red
        (task(last_report_on="2026-09-15", **MONTHLY), "2026-11-04", Light.YELLOW),
        (task(last_report_on="2026-09-15", **MONTHLY), "2026-11-05", Light.RED),
        (task(last_report_on=None, **MONTHLY), "2026-11-05", Light.RED),
        (task(last_report_on="2026-10-20", **MONTHLY), "2026-11-10", Light.GREEN),
        (task(last_report_on="2026-10-20", **MONTHLY), "2026-11-24", Light.GREEN),
        (task(last_report_on="2026-10-20", **MONTHLY), "2026-11-25", Light.YELLOW),  # 3 working days before 11-30
        (task(last_report_on="2026-11-03", **MONTHLY), "2026-11-25", Light.GREEN),
        (task(assigned_on="2026-11-02", **MONTHLY), "2026-11-10", Light.GREEN),  # not asked for October
        (task(last_report_on="2026-06-30", schedule="ongoing", period="quarter"), "2026-10-12", Light.RED),
        (task(last_report_on="2026-06-30", schedule="recurring", period="quarter"), "2026-10-10", Light.YELLOW),
        # ongoing: done milestones do not end it; no period → green
        (task(ms(7, "2026-12-04", status="done"), last_report_on="2026-11-03", **MONTHLY), "2026-11-10", Light.GREEN),
        (task(schedule="ongoing"), "2026-11-10", Light.GREEN),
    ],
)
def test_colour(t, today, expected):
    assert colour(t, DEFAULT_POLICY, CAL, day(today)) == expected


@pytest.mark.parametrize("today", ["2026-12-01", "2026-12-02", "2026-12-03"])
def test_colour_stays_red_when_reports_missing_for_two_periods(today):
    t = task(last_report_on="2026-09-15", **MONTHLY)
    assert colour(t, DEFAULT_POLICY, CAL, day(today)) == Light.RED


@pytest.mark.parametrize("policy", [DEFAULT_POLICY, SHORT])
@pytest.mark.parametrize("today", ["2026-11-20", "2026-11-25", "2026-11-27", "2026-12-01", "2026-12-04", "2026-12-05", "2026-12-07"])
def test_colour_follows_the_reminders(policy, today):
    """Yellow exactly when a 'due' reminder is decided, red once past due."""
    out = run(DUE_FRI, today, policy)
    c = colour(DUE_FRI, policy, CAL, day(today))
    if day(today) > D(2026, 12, 4):
        assert c == Light.RED
    else:
        assert c == (Light.YELLOW if any(d.kind == MessageKind.DUE for d in out) else Light.GREEN)
