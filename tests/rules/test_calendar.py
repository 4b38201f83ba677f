"""Tests for duban.rules.calendar: working days, the 2027 fallback, the institution file, periods."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from duban.rules.calendar import (
    CalendarFileError,
    InstitutionCalendar,
    Semester,
    WorkCalendar,
)

D = dt.date

WARNING_2027 = (
    "2027 年的法定节假日调休安排尚未收录（chinese-calendar 仅支持到 2026 年），"
    "已按周一至周五并扣除法定节假日计算工作日；如有调休上班日，请在单位日历文件中补充。"
)


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    """A calendar without an institution file, shared by the read-only tests."""
    return WorkCalendar()


def write(tmp_path: Path, text: str, name: str = "calendar.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# is_workday: 2026 (chinese_calendar), the year end, 2027 (fallback)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        # New Year 2026, and its 调休 Sunday
        (D(2026, 1, 1), False),
        (D(2026, 1, 2), False),
        (D(2026, 1, 3), False),
        (D(2026, 1, 4), True),  # Sunday, 调休上班
        # Spring Festival 2026: 15–23 February off; Saturdays 14 and 28 February worked
        (D(2026, 2, 13), True),
        (D(2026, 2, 14), True),  # Saturday, 调休上班
        (D(2026, 2, 15), False),
        (D(2026, 2, 16), False),
        (D(2026, 2, 17), False),  # 春节
        (D(2026, 2, 20), False),
        (D(2026, 2, 23), False),  # Monday, still off
        (D(2026, 2, 24), True),
        (D(2026, 2, 28), True),  # Saturday, 调休上班
        (D(2026, 3, 1), False),  # ordinary Sunday
        # Labour Day 2026 and its 调休 Saturday
        (D(2026, 5, 1), False),
        (D(2026, 5, 5), False),
        (D(2026, 5, 9), True),  # Saturday, 调休上班
        # Mid-autumn and National Day 2026
        (D(2026, 9, 20), True),  # Sunday, 调休上班
        (D(2026, 9, 25), False),  # 中秋节 (Friday)
        (D(2026, 9, 26), False),
        (D(2026, 9, 28), True),
        (D(2026, 9, 30), True),
        (D(2026, 10, 1), False),  # 国庆节
        (D(2026, 10, 2), False),
        (D(2026, 10, 5), False),
        (D(2026, 10, 7), False),
        (D(2026, 10, 8), True),
        (D(2026, 10, 9), True),
        (D(2026, 10, 10), True),  # Saturday, 调休上班
        (D(2026, 10, 11), False),
        (D(2026, 10, 12), True),
        # year end 2026 → 2027
        (D(2026, 12, 31), True),  # Thursday
        (D(2027, 1, 1), False),  # 元旦 (Friday), from `holidays`
        (D(2027, 1, 2), False),
        (D(2027, 1, 4), True),
        # 2027 fallback: Monday–Friday minus statutory holidays, no 调休 known
        (D(2027, 2, 4), True),
        (D(2027, 2, 5), False),  # 除夕
        (D(2027, 2, 8), False),
        (D(2027, 2, 10), False),
        (D(2027, 2, 11), True),
        (D(2027, 5, 3), False),
        (D(2027, 5, 5), True),
        (D(2027, 9, 15), False),  # 中秋节
        (D(2027, 10, 1), False),
        (D(2027, 10, 5), False),
        (D(2027, 10, 6), True),
        (D(2027, 10, 9), False),  # Saturday: off until an institution file says otherwise
        (D(2027, 5, 20), True),
    ],
)
def test_is_workday(cal, day, expected):
    assert cal.is_workday(day) is expected


def test_is_workday_accepts_datetime(cal):
    assert cal.is_workday(dt.datetime(2026, 10, 10, 9, 30)) is True
    assert cal.is_workday(dt.datetime(2026, 10, 1, 9, 30)) is False


# ---------------------------------------------------------------------------------------------
# next_workday / add_workdays


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (D(2026, 9, 30), D(2026, 9, 30)),
        (D(2026, 10, 1), D(2026, 10, 8)),
        (D(2026, 10, 11), D(2026, 10, 12)),
        (D(2026, 2, 15), D(2026, 2, 24)),
        (D(2027, 1, 1), D(2027, 1, 4)),
        (D(2026, 12, 31), D(2026, 12, 31)),
    ],
)
def test_next_workday(cal, day, expected):
    assert cal.next_workday(day) == expected


@pytest.mark.parametrize(
    ("day", "n", "expected"),
    [
        # n == 0: the day itself, or the next working day
        (D(2026, 9, 30), 0, D(2026, 9, 30)),
        (D(2026, 10, 1), 0, D(2026, 10, 8)),
        (D(2027, 1, 1), 0, D(2027, 1, 4)),
        # forwards across National Day 2026 and its 调休 Saturday
        (D(2026, 9, 30), 1, D(2026, 10, 8)),
        (D(2026, 9, 30), 2, D(2026, 10, 9)),
        (D(2026, 9, 30), 3, D(2026, 10, 10)),
        (D(2026, 9, 30), 4, D(2026, 10, 12)),
        (D(2026, 10, 3), 1, D(2026, 10, 8)),  # from a holiday
        (D(2026, 9, 18), 1, D(2026, 9, 20)),  # the 调休 Sunday counts
        (D(2026, 9, 18), 5, D(2026, 9, 24)),
        (D(2026, 9, 24), 1, D(2026, 9, 28)),  # over 中秋节
        # forwards across Spring Festival 2026
        (D(2026, 2, 13), 1, D(2026, 2, 14)),
        (D(2026, 2, 14), 1, D(2026, 2, 24)),
        # backwards
        (D(2026, 10, 12), -1, D(2026, 10, 10)),
        (D(2026, 10, 8), -1, D(2026, 9, 30)),
        (D(2026, 10, 3), -1, D(2026, 9, 30)),  # from a holiday
        (D(2026, 10, 9), -3, D(2026, 9, 29)),
        (D(2026, 2, 24), -1, D(2026, 2, 14)),
        (D(2026, 3, 2), -2, D(2026, 2, 27)),
        # across the year boundary
        (D(2026, 12, 31), 1, D(2027, 1, 4)),
        (D(2027, 1, 4), -1, D(2026, 12, 31)),
        (D(2027, 1, 1), -1, D(2026, 12, 31)),
        (D(2027, 2, 4), 1, D(2027, 2, 11)),
        # a whole year (2026 has 248 working days)
        (D(2025, 12, 31), 248, D(2026, 12, 31)),
        (D(2026, 12, 31), -248, D(2025, 12, 31)),
    ],
)
def test_add_workdays(cal, day, n, expected):
    assert cal.add_workdays(day, n) == expected


# ---------------------------------------------------------------------------------------------
# workdays_between


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (D(2026, 10, 8), D(2026, 10, 8), 0),
        (D(2026, 10, 1), D(2026, 10, 1), 0),
        (D(2026, 9, 30), D(2026, 10, 8), 1),
        (D(2026, 9, 30), D(2026, 10, 12), 4),
        (D(2026, 10, 1), D(2026, 10, 7), 0),
        (D(2026, 2, 13), D(2026, 2, 24), 2),  # 14 Feb (调休 Saturday) and 24 Feb
        (D(2026, 2, 1), D(2026, 2, 28), 16),  # 2–13 Feb, 14, 24–27, 28
        # across the year boundary
        (D(2026, 12, 31), D(2027, 1, 4), 1),
        (D(2026, 12, 25), D(2027, 1, 8), 9),
        (D(2025, 12, 31), D(2026, 12, 31), 248),
        (D(2026, 12, 31), D(2027, 12, 31), 248),  # 2027 by the fallback
        (D(2025, 12, 31), D(2027, 12, 31), 496),
        # start > end: negative
        (D(2026, 10, 8), D(2026, 9, 30), -1),
        (D(2027, 1, 8), D(2026, 12, 25), -9),
        (D(2027, 1, 4), D(2026, 12, 31), -1),
    ],
)
def test_workdays_between(cal, start, end, expected):
    assert cal.workdays_between(start, end) == expected


def test_workdays_between_and_add_workdays_agree_with_counting_day_by_day(cal):
    start = D(2025, 12, 1)
    days = [start + dt.timedelta(i) for i in range(500)]  # into 2027
    for a in days[::7]:
        for b in days[::11]:
            lo, hi = min(a, b), max(a, b)
            naive = sum(cal.is_workday(lo + dt.timedelta(i)) for i in range(1, (hi - lo).days + 1))
            assert cal.workdays_between(a, b) == (naive if b >= a else -naive), (a, b)
    for a in days[::5]:
        for n in (1, 2, 7, 30, -1, -2, -7, -30):
            e = cal.add_workdays(a, n)
            assert cal.is_workday(e)
            if cal.is_workday(a):
                assert cal.workdays_between(a, e) == n, (a, n)


# ---------------------------------------------------------------------------------------------
# unknown years: fallback and warnings


def test_known_years_give_no_warning():
    cal = WorkCalendar()
    cal.workdays_between(D(2025, 1, 1), D(2026, 12, 31))
    assert cal.warnings == []


def test_2027_warning_recorded_once():
    cal = WorkCalendar()
    for i in range(200):
        day = D(2027, 1, 1) + dt.timedelta(i)
        cal.is_workday(day)
        cal.add_workdays(day, 3)
        cal.workdays_between(D(2026, 6, 1), day)
    assert cal.warnings == [WARNING_2027]


def test_warning_recorded_when_year_first_consulted():
    cal = WorkCalendar()
    assert cal.add_workdays(D(2026, 12, 30), 1) == D(2026, 12, 31)
    assert cal.warnings == []
    assert cal.add_workdays(D(2026, 12, 31), 1) == D(2027, 1, 4)
    assert cal.warnings == [WARNING_2027]


def test_every_calendar_records_its_own_warning():
    first, second = WorkCalendar(), WorkCalendar()
    first.is_workday(D(2027, 3, 1))
    assert second.warnings == []
    second.next_workday(D(2027, 3, 6))
    assert first.warnings == second.warnings == [WARNING_2027]


def test_warnings_is_a_copy():
    cal = WorkCalendar()
    cal.is_workday(D(2027, 3, 1))
    cal.warnings.clear()
    assert cal.warnings == [WARNING_2027]


@pytest.mark.parametrize("year", [1900, 1950, 2003, 2027, 2040, 2100])
def test_far_years_do_not_raise(year):
    cal = WorkCalendar()
    first, last = D(year, 1, 1), D(year, 12, 31)
    count = cal.workdays_between(first - dt.timedelta(1), last)
    assert 230 <= count <= 262
    assert cal.is_workday(D(year, 6, 15)) in (True, False)
    assert cal.add_workdays(last, 1).year == year + 1
    assert cal.add_workdays(first, -1).year == year - 1
    assert len([w for w in cal.warnings if w.startswith(f"{year} 年")]) == 1


def test_2040_uses_statutory_holidays():
    cal = WorkCalendar()
    assert cal.is_workday(D(2040, 10, 1)) is False  # Monday, 国庆节
    assert cal.is_workday(D(2040, 10, 8)) is True
    assert "2040 年" in cal.warnings[0] and "仅支持到 2026 年" in cal.warnings[0]


def test_years_before_chinese_calendar_get_their_own_wording():
    cal = WorkCalendar()
    cal.is_workday(D(2003, 5, 1))
    assert cal.warnings == [
        "2003 年的法定节假日调休安排尚未收录（chinese-calendar 仅支持 2004 年及以后），"
        "已按周一至周五并扣除法定节假日计算工作日；如有调休上班日，请在单位日历文件中补充。"
    ]


# ---------------------------------------------------------------------------------------------
# institution file


INSTITUTION_YAML = """\
# 某大学 单位日历
holidays:
  - 2027-05-20        # 校庆
  - 2026-11-12        # 校运会
workdays:
  - 2027-10-09        # 2027 国庆调休上班（国务院通知发布后补充）
  - 2027/2/20
semesters:
  - name: 2026-2027学年第一学期
    start: 2026-08-31
    end: 2027-01-17
  - name: 2026-2027学年第二学期
    start: 2027年2月22日
    end: 2027-07-04
"""


@pytest.fixture()
def institution_cal(tmp_path) -> WorkCalendar:
    return WorkCalendar(InstitutionCalendar.load(write(tmp_path, INSTITUTION_YAML)))


def test_load_institution_file(tmp_path):
    inst = InstitutionCalendar.load(write(tmp_path, INSTITUTION_YAML))
    assert inst.holidays == [D(2027, 5, 20), D(2026, 11, 12)]
    assert inst.workdays == [D(2027, 10, 9), D(2027, 2, 20)]
    assert [(s.name, s.start, s.end) for s in inst.semesters] == [
        ("2026-2027学年第一学期", D(2026, 8, 31), D(2027, 1, 17)),
        ("2026-2027学年第二学期", D(2027, 2, 22), D(2027, 7, 4)),
    ]


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (D(2027, 10, 9), True),  # 调休 Saturday added by the institution
        (D(2027, 2, 20), True),
        (D(2027, 5, 20), False),  # 校庆
        (D(2026, 11, 12), False),  # 校运会, in a year chinese_calendar knows
        (D(2027, 5, 21), True),
        (D(2027, 10, 10), False),
    ],
)
def test_institution_days(institution_cal, day, expected):
    assert institution_cal.is_workday(day) is expected


@pytest.mark.parametrize(
    ("day", "n", "expected"),
    [
        (D(2027, 5, 19), 1, D(2027, 5, 21)),
        (D(2027, 5, 21), -1, D(2027, 5, 19)),
        (D(2027, 10, 8), 1, D(2027, 10, 9)),
        (D(2027, 10, 6), 3, D(2027, 10, 9)),
        (D(2027, 10, 6), 4, D(2027, 10, 11)),
        (D(2026, 11, 11), 1, D(2026, 11, 13)),
    ],
)
def test_institution_add_workdays(institution_cal, day, n, expected):
    assert institution_cal.add_workdays(day, n) == expected


def test_institution_workdays_between(institution_cal):
    # 1–5 Oct 2027 off; 6, 7, 8 Oct and Saturday 9 Oct (institution) worked; 11 Oct Monday
    assert institution_cal.workdays_between(D(2027, 10, 1), D(2027, 10, 11)) == 5
    assert institution_cal.workdays_between(D(2027, 10, 5), D(2027, 10, 9)) == 4
    assert institution_cal.workdays_between(D(2027, 5, 19), D(2027, 5, 21)) == 1  # 校庆 on the 20th


def test_institution_file_still_warns_for_2027(institution_cal):
    institution_cal.is_workday(D(2027, 10, 9))
    assert institution_cal.warnings == [WARNING_2027]


def test_institution_file_overrides_chinese_calendar(tmp_path):
    path = write(tmp_path, "holidays: [2026-10-10]\nworkdays: [2026-10-03]\n")
    cal = WorkCalendar(InstitutionCalendar.load(path))
    assert cal.is_workday(D(2026, 10, 10)) is False
    assert cal.is_workday(D(2026, 10, 3)) is True
    assert cal.add_workdays(D(2026, 10, 9), 1) == D(2026, 10, 12)


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "holidays: []\n"])
def test_empty_institution_file(tmp_path, text):
    inst = InstitutionCalendar.load(write(tmp_path, text))
    assert inst == InstitutionCalendar()


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("holidays:\n  - 2027-02-30\n", ["holidays → 第 1 项", "日期不存在", "2027-02-30"]),
        ("holidays:\n  - 2027-05-20\n  - 校庆\n", ["holidays → 第 2 项", "不是有效日期", "校庆"]),
        ("workdays:\n  - 20271009\n", ["workdays → 第 1 项", "不是有效日期", "YYYY-MM-DD"]),
        ("workdays:\n  - 2027-10-09 08:00:00\n", ["workdays → 第 1 项", "不是有效日期"]),
        ("holidays: 2027-05-20\n", ["holidays", "应为列表"]),
        (
            "semesters:\n  - name: 春季学期\n    start: 2027-03-01\n    end: 2027-01-15\n",
            ["semesters → 第 1 项 → end", "结束日期 2027-01-15 早于开始日期 2027-03-01"],
        ),
        (
            "semesters:\n  - name: 春季学期\n    begin: 2027-03-01\n    end: 2027-07-15\n",
            ["semesters → 第 1 项 → begin", "不认识的字段", "name、start、end", "semesters → 第 1 项 → start", "缺少此项"],
        ),
        ("semesters:\n  - start: 2027-03-01\n    end: 2027-07-15\n", ["semesters → 第 1 项 → name", "缺少此项"]),
        ("holiday:\n  - 2027-05-20\n", ["holiday", "不认识的字段", "holidays、workdays、semesters"]),
        ("holidays: [2027-05-20]\nworkdays: [2027-05-20]\n", ["workdays", "2027-05-20 同时列在 holidays 和 workdays 中"]),
        (
            "semesters:\n  - {name: 秋季, start: 2026-09-01, end: 2027-01-20}\n  - {name: 春季, start: 2027-01-15, end: 2027-07-10}\n",
            ["semesters", "时间重叠", "秋季", "春季"],
        ),
    ],
)
def test_bad_institution_file_names_file_and_field(tmp_path, text, fragments):
    path = write(tmp_path, text)
    with pytest.raises(CalendarFileError) as info:
        InstitutionCalendar.load(path)
    message = str(info.value)
    assert f"单位日历文件 {path}" in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("holidays: [2027-05-20\n", "不是有效的 YAML"),
        ("- 2027-05-20\n", "内容应为“字段: 值”的形式"),
    ],
)
def test_unreadable_institution_file(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(CalendarFileError, match=fragment) as info:
        InstitutionCalendar.load(path)
    assert str(path) in str(info.value)


def test_missing_institution_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(CalendarFileError, match="找不到单位日历文件") as info:
        InstitutionCalendar.load(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


# ---------------------------------------------------------------------------------------------
# semesters


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (D(2026, 4, 1), Semester("2025-2026 学年第二学期", D(2026, 3, 1), D(2026, 7, 15))),
        (D(2026, 3, 1), Semester("2025-2026 学年第二学期", D(2026, 3, 1), D(2026, 7, 15))),
        (D(2026, 7, 15), Semester("2025-2026 学年第二学期", D(2026, 3, 1), D(2026, 7, 15))),
        (D(2026, 9, 1), Semester("2026-2027 学年第一学期", D(2026, 9, 1), D(2027, 1, 15))),
        (D(2027, 1, 15), Semester("2026-2027 学年第一学期", D(2026, 9, 1), D(2027, 1, 15))),
        (D(2026, 7, 16), None),  # summer vacation
        (D(2026, 8, 31), None),
        (D(2027, 2, 1), None),  # winter vacation
    ],
)
def test_semester_of_default(cal, day, expected):
    assert cal.semester_of(day) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (D(2026, 8, 30), None),  # not yet started
        (D(2026, 8, 31), "2026-2027学年第一学期"),
        (D(2027, 1, 17), "2026-2027学年第一学期"),
        (D(2027, 1, 18), None),
        (D(2027, 3, 1), "2026-2027学年第二学期"),
        (D(2027, 8, 1), None),  # after the listed semesters: no default is invented
    ],
)
def test_semester_of_institution(institution_cal, day, expected):
    semester = institution_cal.semester_of(day)
    assert (semester.name if semester else None) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (D(2026, 4, 1), D(2026, 7, 15)),
        (D(2026, 7, 20), D(2027, 1, 15)),  # summer: the coming autumn semester
        (D(2026, 10, 1), D(2027, 1, 15)),
        (D(2027, 1, 10), D(2027, 1, 15)),
        (D(2027, 1, 20), D(2027, 7, 15)),  # winter: the coming spring semester
        (D(2026, 12, 31), D(2027, 1, 15)),
    ],
)
def test_semester_end_default(cal, day, expected):
    assert cal.semester_end(day) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (D(2026, 6, 1), D(2026, 7, 15)),  # long before the first listed semester: the default spring one
        (D(2026, 10, 1), D(2027, 1, 17)),
        (D(2027, 2, 1), D(2027, 7, 4)),
        (D(2027, 5, 1), D(2027, 7, 4)),
    ],
)
def test_semester_end_institution(institution_cal, day, expected):
    assert institution_cal.semester_end(day) == expected
    assert not any("学期" in w for w in institution_cal.warnings)


def test_semester_end_after_listed_semesters_falls_back_with_warning(institution_cal):
    assert institution_cal.semester_end(D(2027, 8, 1)) == D(2028, 1, 15)
    assert institution_cal.semester_end(D(2027, 10, 1)) == D(2028, 1, 15)
    assert institution_cal.warnings == [
        "单位日历文件中没有 2027-08-01 所在或之后的学期，已按默认学期“2027-2028 学年第一学期”"
        "（2027-09-01 至 2028-01-15）计算学期末；请在单位日历文件中补充学期。"
    ]


# ---------------------------------------------------------------------------------------------
# period_end


@pytest.mark.parametrize(
    ("day", "period", "month", "expected"),
    [
        # week → Friday of the ISO week
        (D(2026, 10, 5), "week", None, D(2026, 10, 9)),
        (D(2026, 10, 9), "week", None, D(2026, 10, 9)),
        (D(2026, 10, 10), "week", None, D(2026, 10, 9)),
        (D(2026, 10, 11), "week", None, D(2026, 10, 9)),
        (D(2026, 12, 28), "week", None, D(2027, 1, 1)),
        # month → last day
        (D(2026, 2, 10), "month", None, D(2026, 2, 28)),
        (D(2028, 2, 10), "month", None, D(2028, 2, 29)),
        (D(2026, 12, 1), "month", None, D(2026, 12, 31)),
        (D(2026, 4, 30), "month", None, D(2026, 4, 30)),
        # quarter → last day of the quarter
        (D(2026, 1, 1), "quarter", None, D(2026, 3, 31)),
        (D(2026, 5, 15), "quarter", None, D(2026, 6, 30)),
        (D(2026, 9, 30), "quarter", None, D(2026, 9, 30)),
        (D(2026, 11, 1), "quarter", None, D(2026, 12, 31)),
        # semester → semester_end (default semesters here)
        (D(2026, 4, 1), "semester", None, D(2026, 7, 15)),
        (D(2026, 8, 1), "semester", None, D(2027, 1, 15)),
        # year → 31 December, or the given month (this year, or next if past)
        (D(2026, 4, 1), "year", None, D(2026, 12, 31)),
        (D(2026, 12, 31), "year", None, D(2026, 12, 31)),
        (D(2026, 4, 1), "year", 6, D(2026, 6, 30)),
        (D(2026, 6, 30), "year", 6, D(2026, 6, 30)),
        (D(2026, 7, 1), "year", 6, D(2027, 6, 30)),
        (D(2027, 3, 1), "year", 2, D(2028, 2, 29)),
    ],
)
def test_period_end(cal, day, period, month, expected):
    assert cal.period_end(day, period, month) == expected


def test_period_end_semester_uses_institution_file(institution_cal):
    assert institution_cal.period_end(D(2026, 10, 1), "semester") == D(2027, 1, 17)


@pytest.mark.parametrize(
    ("period", "month", "fragment"),
    [
        ("fortnight", None, "未知的周期"),
        ("month", 6, "month 只用于 year 周期"),
        ("year", 13, "月份应为 1 到 12"),
        ("year", 0, "月份应为 1 到 12"),
    ],
)
def test_period_end_rejects_bad_arguments(cal, period, month, fragment):
    with pytest.raises(ValueError, match=fragment):
        cal.period_end(D(2026, 4, 1), period, month)
