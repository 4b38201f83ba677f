"""The rules over a plan's life in an office (issue 14): the announcement (任务下达) starts the
clocks, items already late get a grace, nothing is sent about a done task or after a recurring
task's end, and a Sunday deadline is met on the Friday before.

Same tables as test_deadlines.py (OWNER=10, HEAD=20, SUPERVISOR=40, OFFICE=50/51).  Announced on
Tuesday 2026-12-01; +3 working days is Friday 12-04, +5 is Tuesday 12-08, +6 Wednesday 12-09.
"""

from __future__ import annotations

import datetime as dt

import pytest

from duban.rules.deadlines import decide
from duban.rules.policy import DEFAULT_POLICY, DeadlinePolicy
from duban.vocabulary import MessageKind, MilestoneState, Period, Schedule
from tests.rules.test_deadlines import CAL, keys_days, ms, run, task

D = dt.date
ANNOUNCED = D(2026, 12, 1)


def announced_task(*milestones, **kw):
    fields = {"assigned_on": ANNOUNCED, "announced_on": ANNOUNCED, "acknowledged": False, **kw}
    return task(*milestones, **fields)


LATE_AT_ANNOUNCEMENT = announced_task(ms(7, "2026-10-20"))  # 30 working days late when announced


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        ("2026-12-01", []),  # announcement day: the notice was the message; nothing climbs
        ("2026-12-03", []),
        ("2026-12-04", [("ack:t1:2026-12-01:p10", -3)]),  # the 签收 clock started at the announcement
        ("2026-12-08", [("ack:t1:2026-12-01:p10", -5), ("escalation:ack:t1:2026-12-01:p20", -5)]),  # grace ends today
        # the first working day after the grace: the overdue ladder starts; the text keeps the true lateness
        ("2026-12-09", [("ack:t1:2026-12-01:p10", -6), ("escalation:ack:t1:2026-12-01:p20", -6), ("overdue:m7v1:p10:n1", -36)]),
        (
            "2026-12-11",
            [
                ("ack:t1:2026-12-01:p10", -8),
                ("escalation:ack:t1:2026-12-01:p20", -8),
                ("overdue:m7v1:p10:n1", -38),
                ("escalation:m7v1:L1:p20", -38),
            ],
        ),
    ],
)
def test_announcement_starts_the_clocks_and_late_items_get_a_grace(today, expected):
    assert keys_days(run(LATE_AT_ANNOUNCEMENT, today)) == expected


@pytest.mark.parametrize(("today", "expected"), [("2026-12-01", []), ("2026-12-02", [("overdue:m7v1:p10:n1", -31)])])
def test_without_grace_still_nothing_on_announcement_day(today, expected):
    t = announced_task(ms(7, "2026-10-20"), acknowledged=True)
    assert keys_days(run(t, today, DeadlinePolicy(announce_grace=0))) == expected


@pytest.mark.parametrize("today", ["2026-11-20", "2026-12-01", "2026-12-09", "2027-03-01"])
def test_nothing_before_the_announcement(today):
    assert run(announced_task(ms(7, "2026-10-20"), announced_on=None), today) == []


def test_an_item_due_after_the_grace_climbs_as_usual():
    t = announced_task(ms(7, "2026-12-18"), acknowledged=True)
    assert keys_days(run(t, "2026-12-21")) == [("overdue:m7v1:p10:n1", -1)]


@pytest.mark.parametrize(
    ("final_status", "expected"),
    [
        (MilestoneState.DONE, []),  # done: nothing more about any of its steps
        (MilestoneState.SUBMITTED, []),  # submitted for approval: the owner says it is done
        (MilestoneState.IN_PROGRESS, ["overdue:m1v1:p10:n5", "overdue:m1v1:p10:R2"]),
    ],
)
def test_a_done_task_sends_nothing_for_its_earlier_steps(final_status, expected):
    t = task(ms(1, "2026-11-02"), ms(2, "2026-12-31", status=final_status, final=True))
    assert [k for k, _ in keys_days(run(t, "2026-12-21")) if k.startswith("overdue:m1v1:")] == expected


MONTHLY = dict(schedule=Schedule.RECURRING, period=Period.MONTH, acknowledged=True, assigned_on=D(2026, 9, 1))


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        ("2027-06-28", [("report_due:r1:2027-06-30:p10:d3", 2)]),
        ("2027-07-01", []),  # the plan has ended: July is not asked for, June is not chased
        ("2029-03-01", []),  # long after: never "已 576 个工作日未签收"
    ],
)
def test_recurring_tasks_stop_at_their_end(today, expected):
    t = task(ends_on=D(2027, 6, 30), last_report_on=D(2027, 5, 31), **MONTHLY)
    assert keys_days(run(t, today)) == expected


def test_the_last_period_is_due_at_the_end():
    t = task(ends_on=D(2027, 7, 16), last_report_on=D(2027, 6, 30), **{**MONTHLY, "period": Period.MONTH})
    assert keys_days(run(t, "2027-07-14")) == [("report_due:r1:2027-07-16:p10:d3", 2)]


def test_a_sunday_deadline_counts_down_to_friday():
    t = task(ms(7, "2026-12-06"))
    friday = run(t, "2026-12-04")
    assert keys_days(friday) == [("due:m7v1:p10:d0", 0)]
    assert friday[0].due == D(2026, 12, 6) and friday[0].data["due_workday"] == "2026-12-04"
    assert run(t, "2026-12-03")[0].data["due_workday"] == "2026-12-04"
    assert "due_workday" not in run(task(ms(7, "2026-12-04")), "2026-12-04")[0].data


def test_re_notices_after_the_last_level_every_ten_working_days():
    t = task(ms(7, "2026-12-04"))  # L3 at 15 working days late (12-25)
    keys = {d.key: d.data.get("renotice") for d in decide(t, DEFAULT_POLICY, CAL, CAL.add_workdays(D(2026, 12, 4), 24))}
    assert [k for k in keys if k.endswith(":R1")] == []
    keys = {d.key: d.data.get("renotice") for d in decide(t, DEFAULT_POLICY, CAL, CAL.add_workdays(D(2026, 12, 4), 25))}
    assert {k: v for k, v in keys.items() if v} == {
        "overdue:m7v1:p10:R1": 1,
        "escalation:m7v1:L1:p20:R1": 1,
        "escalation:m7v1:L2:p40:R1": 1,
        "escalation:m7v1:L3:p50:R1": 1,
        "escalation:m7v1:L3:p51:R1": 1,
    }
    later = decide(t, DeadlinePolicy(renotice_every=5), CAL, CAL.add_workdays(D(2026, 12, 4), 26))
    assert sorted(d.key for d in later if d.data.get("renotice") == 2 and d.kind == MessageKind.OVERDUE) == ["overdue:m7v1:p10:R2"]
