"""When bulletins are issued (duban/rollup/schedule.py), against China's 2026 working-day calendar:
National Day 2026 is Thursday 10-01 to Wednesday 10-07 with Saturday 10-10 worked (调休); Labour
Day 2026 makes Friday 05-01 a holiday; New Year 2027 makes Friday 2027-01-01 a holiday."""

from __future__ import annotations

import datetime as dt

import pytest

from duban.rollup.schedule import issue_day, kinds_due, period_of, period_text, title
from duban.rules.calendar import WorkCalendar
from duban.vocabulary import BulletinKind

CAL = WorkCalendar()
D = dt.date.fromisoformat


@pytest.mark.parametrize(
    ("day", "week", "month"),
    [
        ("2026-11-18", "2026-11-20", "2026-11-30"),  # an ordinary week: Friday; November ends on a Monday
        ("2026-09-28", "2026-09-30", "2026-09-30"),  # Thu 10-01 and Fri 10-02 are holidays: Wednesday
        ("2026-10-05", "2026-10-10", "2026-10-30"),  # Saturday 10-10 is a working day (调休): it takes the week's
        ("2026-04-27", "2026-04-30", "2026-04-30"),  # Friday 05-01 is Labour Day: Thursday
        ("2026-12-28", "2026-12-31", "2026-12-31"),  # Friday 2027-01-01 is New Year's Day: Thursday
        ("2026-02-02", "2026-02-06", "2026-02-28"),  # February 2026 ends on a worked Saturday (调休)
    ],
)
def test_issue_days(day, week, month):
    assert issue_day(BulletinKind.WEEK, D(day), CAL) == D(week)
    assert issue_day(BulletinKind.MONTH, D(day), CAL) == D(month)


def test_a_week_without_a_working_day_has_no_weekly_bulletin():
    assert issue_day(BulletinKind.WEEK, D("2026-10-05"), CAL) == D("2026-10-10")
    # Spring Festival 2026: Monday 02-16 to Monday 02-23 (02-14 and 02-28 worked)
    assert [d for d in (D("2026-02-16") + dt.timedelta(days=i) for i in range(7)) if CAL.is_workday(d)] == []
    assert issue_day(BulletinKind.WEEK, D("2026-02-18"), CAL) is None


@pytest.mark.parametrize(
    ("every", "day", "kinds"),
    [
        ("week", "2026-11-20", ["week"]),
        ("week", "2026-11-19", []),
        ("week", "2026-10-02", []),  # the holiday Friday itself
        ("week", "2026-09-30", ["week"]),
        ("month", "2026-11-20", []),
        ("month", "2026-11-30", ["month"]),
        ("both", "2026-11-30", ["month"]),  # a Monday: not the week's last working day
        ("both", "2026-09-30", ["week", "month"]),
        ("both", "2026-12-31", ["week", "month"]),
        ("both", "2026-11-28", []),  # a Saturday
        (None, "2026-11-20", ["week"]),  # no setting: weekly
    ],
)
def test_kinds_due(every, day, kinds):
    assert kinds_due(every, D(day), CAL) == kinds


@pytest.mark.parametrize(
    ("kind", "day", "period", "text"),
    [
        ("week", "2026-11-20", ("2026-11-16", "2026-11-22"), "2026年11月16日至22日"),
        ("week", "2026-09-30", ("2026-09-28", "2026-10-04"), "2026年9月28日至10月4日"),
        ("week", "2026-12-31", ("2026-12-28", "2027-01-03"), "2026年12月28日至2027年1月3日"),
        ("month", "2026-11-30", ("2026-11-01", "2026-11-30"), "2026年11月"),
        ("month", "2026-02-28", ("2026-02-01", "2026-02-28"), "2026年2月"),
    ],
)
def test_periods_and_their_text(kind, day, period, text):
    start, end = period_of(kind, D(day))
    assert (start.isoformat(), end.isoformat()) == period
    assert period_text(kind, start, end) == text


def test_titles():
    assert title(BulletinKind.WEEK, 3) == "督办通报（周通报·第 3 期）"
    assert title(BulletinKind.MONTH, 1) == "督办通报（月通报·第 1 期）"
