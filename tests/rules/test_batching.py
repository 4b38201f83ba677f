"""The office's batch times (``office_batch_times``): reading them, and the next slot after ``now``."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from duban.rules.batching import BatchTimesError, next_batch_time, parse_batch_times
from duban.rules.policy import effective_policy

TZ = ZoneInfo("Asia/Shanghai")
TIMES = (dt.time(10, 0), dt.time(15, 0))


@pytest.mark.parametrize(
    ("local_now", "expected_local"),
    [
        ("2026-12-01 08:00", "2026-12-01 10:00"),
        ("2026-12-01 09:59", "2026-12-01 10:00"),
        ("2026-12-01 10:00", "2026-12-01 15:00"),  # exactly at a slot: that batch has gone, the next one
        ("2026-12-01 12:30", "2026-12-01 15:00"),
        ("2026-12-01 15:00", "2026-12-02 10:00"),
        ("2026-12-01 23:59", "2026-12-02 10:00"),
        ("2026-12-31 16:00", "2027-01-01 10:00"),  # the next slot, working day or not
        ("2026-12-05 07:00", "2026-12-05 10:00"),  # a Saturday: not skipped
    ],
)
def test_next_batch_time(local_now, expected_local):
    now = dt.datetime.strptime(local_now, "%Y-%m-%d %H:%M").replace(tzinfo=TZ).astimezone(dt.UTC)
    expected = dt.datetime.strptime(expected_local, "%Y-%m-%d %H:%M").replace(tzinfo=TZ)
    got = next_batch_time(now, TIMES, TZ)
    assert got == expected and got.tzinfo == dt.UTC


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["15:00", "10:00"], (dt.time(10), dt.time(15))),
        (["9:30", "09:30"], (dt.time(9, 30),)),
        (["00:00", "23:59"], (dt.time(0), dt.time(23, 59))),
    ],
)
def test_parse_batch_times(values, expected):
    assert parse_batch_times(values) == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([], "应为一个或多个时刻的列表"),
        ("10:00", "应为一个或多个时刻的列表"),
        (["24:00"], "时刻“24:00”无法识别"),
        (["10点"], "时刻“10点”无法识别"),
    ],
)
def test_bad_batch_times_are_named(values, message):
    with pytest.raises(BatchTimesError, match=message):
        parse_batch_times(values)


def test_the_policy_default_and_override():
    assert effective_policy(None).office_batch_times == ("10:00", "15:00")
    assert effective_policy({"office_batch_times": ["16:30", "9:00"]}).office_batch_times == ("09:00", "16:30")
    with pytest.raises(ValueError, match="时刻“25:00”无法识别"):
        effective_policy({"office_batch_times": ["25:00"]})
