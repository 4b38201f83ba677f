"""Batched notices to the office: approval requests (待审核) wait for the next of a plan's fixed
times (``policy.office_batch_times``, local time, e.g. ``["10:00", "15:00"]``) and reach each
office member in one digest then, instead of one message per submission.

Pure: a time of day is parsed here, and the next slot is computed from ``now`` and the times in
the institution's time zone (the next slot of the day, else the first one of the next day; working
days are not considered)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from zoneinfo import ZoneInfo

DEFAULT_BATCH_TIMES = ("10:00", "15:00")
_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")


class BatchTimesError(ValueError):
    """Batch times that cannot be read (message in Chinese)."""


def parse_batch_times(values: Sequence[str]) -> tuple[dt.time, ...]:
    """``["15:00", "10:00"]`` → (10:00, 15:00), sorted, no repeats; at least one time."""
    if isinstance(values, str) or not values:
        raise BatchTimesError('应为一个或多个时刻的列表（当地时间），如 ["10:00", "15:00"]')
    out = set()
    for v in values:
        m = _TIME.match(str(v))
        if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
            raise BatchTimesError(f"时刻“{v}”无法识别：请写作 HH:MM（当地时间，00:00–23:59），如 10:00")
        out.add(dt.time(int(m.group(1)), int(m.group(2))))
    return tuple(sorted(out))


def next_batch_time(now: dt.datetime, times: Sequence[dt.time], tz: ZoneInfo | dt.tzinfo) -> dt.datetime:
    """The first batch time strictly after ``now`` (aware), as an aware UTC datetime."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not times:
        raise ValueError("no batch times")
    local = now.astimezone(tz)
    for day in (local.date(), local.date() + dt.timedelta(days=1)):
        for t in sorted(times):
            slot = dt.datetime.combine(day, t, tzinfo=tz)
            if slot > local:
                return slot.astimezone(dt.UTC)
    raise AssertionError("unreachable: the next day has a slot")
