"""Quiet hours: messages go out on working days within working hours, unless a plan says otherwise.

Pure (a calendar, a time zone and a window): the rules validate a plan's ``send_hours`` with it,
and delivery holds messages back with it.

The institution sets the window with ``DUBAN_SEND_HOURS`` (default ``08:00-18:00``, local time);
a plan may override it with ``policy.send_hours`` (``"07:30-21:00"``, or ``"always"`` for a plan
whose messages may go out at any time, on any day).  A digest that comes due outside the window
waits for the next allowed moment; waiting is not a failed attempt.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from duban.rules.calendar import WorkCalendar

ALWAYS = {"always", "全天", "随时", "不限"}
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–~至到]\s*(\d{1,2}):(\d{2})\s*$")


class SendHoursError(ValueError):
    """A send window that cannot be read (message in Chinese)."""


Window = tuple[dt.time, dt.time] | None  # None: always


def parse_send_hours(text: str) -> Window:
    """``"08:00-18:00"`` → (08:00, 18:00); ``"always"`` / ``"全天"`` → None."""
    value = (text or "").strip()
    if value.lower() in ALWAYS:
        return None
    m = _HOURS.match(value)
    if not m:
        raise SendHoursError(f"发送时段“{text}”无法识别：请写作 08:00-18:00（当地时间），或写 always（全天、不限工作日）")
    h1, m1, h2, m2 = (int(x) for x in m.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise SendHoursError(f"发送时段“{text}”中的时间不正确：小时应为 0–23，分钟应为 0–59")
    start, end = dt.time(h1, m1), (dt.time(23, 59, 59) if h2 == 24 else dt.time(h2, m2))
    if end <= start:
        raise SendHoursError(f"发送时段“{text}”的结束时间应晚于开始时间")
    return start, end


@dataclass
class QuietHours:
    """When messages may go out: working days (the calendar) within a daily window."""

    calendar: WorkCalendar
    tz: dt.tzinfo
    default: Window = (dt.time(8, 0), dt.time(18, 0))
    per_plan: dict[int, Window] = field(default_factory=dict)  # plan id -> its own window

    def window(self, plan_id: int | None) -> Window:
        return self.per_plan.get(plan_id, self.default) if plan_id is not None else self.default

    def next_allowed(self, now: dt.datetime, plan_id: int | None = None) -> dt.datetime | None:
        """None when a message may go out ``now``; otherwise the next moment it may (UTC)."""
        win = self.window(plan_id)
        if win is None:
            return None
        local = now.astimezone(self.tz)
        start, end = win
        day = local.date()
        if self.calendar.is_workday(day) and start <= local.time() < end:
            return None
        if not (self.calendar.is_workday(day) and local.time() < start):
            day = self.calendar.next_workday(day + dt.timedelta(days=1))
        return dt.datetime.combine(day, start, self.tz).astimezone(dt.UTC)
