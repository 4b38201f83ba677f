"""When a plan issues its 督办通报, what period each covers, and how an issue is titled.

Pure (no I/O, no clock): the working-day calendar is passed in.

* a weekly 通报 (周通报) is issued on the last working day of the ISO week (Friday; Thursday or
  earlier when Friday is a holiday; a 调休 Saturday that is a working day takes it) and covers
  that week, Monday to Sunday; a week with no working day has none;
* a monthly 通报 (月通报) is issued on the last working day of the month and covers the month;
* ``plans.bulletin_every`` (week | month | both) chooses which a plan issues.
"""

from __future__ import annotations

import calendar
import datetime as dt

from duban.rules.calendar import WorkCalendar
from duban.vocabulary import BulletinEvery, BulletinKind

KINDS: dict[str, tuple[BulletinKind, ...]] = {
    BulletinEvery.WEEK: (BulletinKind.WEEK,),
    BulletinEvery.MONTH: (BulletinKind.MONTH,),
    BulletinEvery.BOTH: (BulletinKind.WEEK, BulletinKind.MONTH),
}


def kinds_of(every: str | None) -> tuple[BulletinKind, ...]:
    """The kinds a plan issues (an unknown or empty setting: weekly, the default)."""
    return KINDS.get(every or BulletinEvery.WEEK, KINDS[BulletinEvery.WEEK])


def period_of(kind: str, day: dt.date) -> tuple[dt.date, dt.date]:
    """The period a bulletin of ``kind`` issued on ``day`` covers: its ISO week or its month."""
    if kind == BulletinKind.WEEK:
        start = day - dt.timedelta(days=day.weekday())
        return start, start + dt.timedelta(days=6)
    return day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])


def last_workday(start: dt.date, end: dt.date, cal: WorkCalendar) -> dt.date | None:
    """The last working day from ``start`` to ``end`` (None when there is none)."""
    day = cal.add_workdays(end + dt.timedelta(days=1), -1)  # the last working day on or before ``end``
    return day if day >= start else None


def issue_day(kind: str, day: dt.date, cal: WorkCalendar) -> dt.date | None:
    """The day the bulletin of ``kind`` covering ``day``'s period is issued (None: no working day)."""
    return last_workday(*period_of(kind, day), cal)


def kinds_due(every: str | None, day: dt.date, cal: WorkCalendar) -> list[BulletinKind]:
    """The bulletins a plan with setting ``every`` issues on ``day`` (weekly first)."""
    return [kind for kind in kinds_of(every) if issue_day(kind, day, cal) == day]


def _day_text(day: dt.date, *, year: bool = True, month: bool = True) -> str:
    return (f"{day.year}年" if year else "") + (f"{day.month}月" if month else "") + f"{day.day}日"


def period_text(kind: str, start: dt.date, end: dt.date) -> str:
    """``2026年11月16日至22日``, ``2026年12月28日至2027年1月3日``, ``2026年12月``."""
    if kind == BulletinKind.MONTH:
        return f"{start.year}年{start.month}月"
    same_year, same_month = start.year == end.year, (start.year, start.month) == (end.year, end.month)
    return f"{_day_text(start)}至{_day_text(end, year=not same_year, month=not same_month)}"


def title(kind: str, number: int) -> str:
    """The issue's title: ``督办通报（周通报·第 3 期）`` / ``督办通报（月通报·第 1 期）``."""
    return f"督办通报（{BulletinKind(kind).label}·第 {number} 期）"


def issue_name(kind: str, number: int, issued_on: dt.date) -> str:
    """How a later page names an issue: ``第 3 期周通报（2026-11-20）``."""
    return f"第 {number} 期{BulletinKind(kind).label}（{issued_on.isoformat()}）"
