"""The deadline-text parser (definitions/deadlines.py) on any input: a ``Deadline`` or the
module's own ``DeadlineError`` with a Chinese message for the office — never another exception,
never a long wait (the patterns are regular expressions: a text built from the characters they
match is where a slow one would show)."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from definitions.deadlines import DeadlineError, parse_deadline, parse_period, parse_roadmap
from definitions.schema import Deadline
from tests.fuzz.counts import COUNTS, fuzz

CJK = re.compile(r"[\u4e00-\u9fff]")
SLOW = 0.5  # seconds: far above what one text takes (about 50 µs), far below a hang

# the characters the patterns are written in: texts of these reach deep into the expressions
DATE_CHARS = "0123456789年月日号旬底末前之以完成份上中下半季度第Qq一二三四五六七八九十元春夏秋冬学期每周长期坚持-/. ()（）：:；;,，、\n①"
date_like = st.text(alphabet=DATE_CHARS, max_size=400)
any_text = st.text(max_size=300)
huge = st.builds(lambda s, n: s * n, st.sampled_from(["2026年12月底前", "1", "(", "第一阶段", "12-", "每"]), st.integers(1, 3000))
texts = st.one_of(any_text, date_like, huge)


def checked(call, value):
    """``call(value)``, which must answer within SLOW seconds with a result or a DeadlineError."""
    start = time.perf_counter()
    try:
        return call(value)
    except DeadlineError as err:
        assert CJK.search(str(err)), f"not a message for the office: {err!r}"
        assert "Traceback" not in str(err)
        return err
    finally:
        assert time.perf_counter() - start < SLOW, f"{call.__name__} took too long on {value!r:.200}"


@fuzz(800)
@given(texts)
@example("2026年2月30日")
@example("(" * 5000)
@example("2026年12月底前" * 2000)
def test_any_deadline_text_is_a_deadline_or_a_message(text):
    COUNTS["deadlines: 完成时限 texts"] += 1
    result = checked(parse_deadline, text)
    assert isinstance(result, Deadline | DeadlineError)


values = st.one_of(
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.dates(),
    st.datetimes(),
    st.booleans(),
)


@fuzz(400)
@given(values)
@example(10**400)
@example(float("inf"))
@example(-(10**400))
def test_any_deadline_value_is_a_deadline_or_a_message(value):
    """What YAML and a sheet hand over besides text: numbers (also past a float), dates, booleans."""
    COUNTS["deadlines: 完成时限 values"] += 1
    result = checked(parse_deadline, value)
    assert isinstance(result, Deadline | DeadlineError)


@fuzz(600)
@given(texts)
@example("2026年12月底前 制定方案；2027年6月 中期检查")
@example("；" * 5000)
def test_any_roadmap_is_steps_or_a_message(text):
    COUNTS["deadlines: 路线图 texts"] += 1
    result = checked(parse_roadmap, text)
    if not isinstance(result, DeadlineError):
        assert all(isinstance(d, Deadline) and isinstance(title, str) for d, title in result)


@fuzz(300)
@given(st.one_of(any_text, st.text(alphabet="每周月季度学期半年一次底末 weeklymonth", max_size=200)))
def test_any_period_is_a_period_or_a_message(text):
    COUNTS["deadlines: 反馈周期 texts"] += 1
    checked(parse_period, text)


@fuzz(300)
@given(
    st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31)), st.sampled_from(["{y}年{m}月{d}日", "{y}-{m:02d}-{d:02d}"])
)
def test_a_written_date_is_that_date(day, form):
    COUNTS["deadlines: written dates"] += 1
    text = form.format(y=day.year, m=day.month, d=day.day)
    assert parse_deadline(text) == Deadline("date", due=day, text=text)


# -- what the fuzzing found (each failed before its fix) ----------------------------------------------------------------


def test_an_integer_past_any_float_is_refused_with_a_message():
    """A YAML deadline of 400 digits raised OverflowError (a traceback at import)."""
    with pytest.raises(DeadlineError) as err:
        parse_deadline(10**400)
    assert str(err.value).startswith("完成时限“（位数过多的数字）”是一个数字，不是日期；请在单元格中填写日期")


def test_a_long_roadmap_step_is_read_at_once():
    """A 路线图 step of one long run of date characters took seconds (every prefix was parsed in
    full: 4,000 repeats took 6.5 s; a 32,767-character cell minutes)."""
    start = time.perf_counter()
    parse_roadmap("2026年12月底前" * 4000)
    assert time.perf_counter() - start < SLOW


def test_a_long_deadline_text_is_refused_with_its_beginning():
    with pytest.raises(DeadlineError) as err:
        parse_deadline("2026年12月底前完成" + "并" * 100)
    assert str(err.value).startswith(
        "完成时限“2026年12月底前完成并并并并并并并并并并并并并并并并并并并并并并并并并并并并…”过长（超过 60 个字），不是一个完成时限；请只写时间，说明另写在其他列。"
    )
