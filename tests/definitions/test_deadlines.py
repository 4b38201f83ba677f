"""Tests for definitions.deadlines: 完成时限, 路线图 and 反馈周期 texts."""

from __future__ import annotations

import datetime as dt

import pytest

from definitions.deadlines import (
    ACCEPTED_FORMS,
    DeadlineError,
    parse_deadline,
    parse_period,
    parse_roadmap,
)
from definitions.schema import Deadline

D = dt.date

# ---------------------------------------------------------------------------------------------
# parse_deadline: dates


@pytest.mark.parametrize(
    ("text", "due"),
    [
        # full dates
        ("2026-12-31", D(2026, 12, 31)),
        ("2026/12/31", D(2026, 12, 31)),
        ("2026.12.31", D(2026, 12, 31)),
        ("2026-1-5", D(2026, 1, 5)),
        ("2026/1/5", D(2026, 1, 5)),
        ("2026年12月31日", D(2026, 12, 31)),
        ("2026年12月31号", D(2026, 12, 31)),
        ("2026年1月5日", D(2026, 1, 5)),
        ("2028-02-29", D(2028, 2, 29)),
        ("2026-12-31 00:00:00", D(2026, 12, 31)),
        ("2026年12月31日前", D(2026, 12, 31)),
        ("2026年12月31日之前完成", D(2026, 12, 31)),
        # months → last day
        ("2026年12月底", D(2026, 12, 31)),
        ("2026年12月底前", D(2026, 12, 31)),
        ("2026年12月底之前", D(2026, 12, 31)),
        ("2026年12月底以前", D(2026, 12, 31)),
        ("2026年12月底前完成", D(2026, 12, 31)),
        ("2026年12月末", D(2026, 12, 31)),
        ("2026年12月", D(2026, 12, 31)),
        ("2026年12月份", D(2026, 12, 31)),
        ("2026年12月完成", D(2026, 12, 31)),
        ("2026年2月", D(2026, 2, 28)),
        ("2028年2月底", D(2028, 2, 29)),
        ("2026年6月", D(2026, 6, 30)),
        ("2026.12", D(2026, 12, 31)),
        ("2026-12", D(2026, 12, 31)),
        ("2026/12", D(2026, 12, 31)),
        ("2026.6", D(2026, 6, 30)),
        ("2026.12底", D(2026, 12, 31)),
        # ten-day periods
        ("2026年12月上旬", D(2026, 12, 10)),
        ("2026年12月中旬", D(2026, 12, 20)),
        ("2026年12月下旬", D(2026, 12, 31)),
        ("2026年2月下旬", D(2026, 2, 28)),
        ("2026年9月上旬前", D(2026, 9, 10)),
        # “X月前” = before month X starts
        ("2027年1月前", D(2026, 12, 31)),
        ("2026年12月前", D(2026, 11, 30)),
        ("2026年3月之前", D(2026, 2, 28)),
        ("2026年7月以前完成", D(2026, 6, 30)),
        ("2026.7前", D(2026, 6, 30)),
        # year end
        ("2026年底", D(2026, 12, 31)),
        ("2026年底前", D(2026, 12, 31)),
        ("2026年年底", D(2026, 12, 31)),
        ("2026年年底前完成", D(2026, 12, 31)),
        ("2026年末", D(2026, 12, 31)),
        ("2026年", D(2026, 12, 31)),
        ("2026年度", D(2026, 12, 31)),
        # half years and quarters
        ("2027年上半年", D(2027, 6, 30)),
        ("2027年下半年", D(2027, 12, 31)),
        ("2027年上半年前", D(2027, 6, 30)),
        ("2027年上半年末", D(2027, 6, 30)),
        ("2027年第一季度", D(2027, 3, 31)),
        ("2027年一季度", D(2027, 3, 31)),
        ("2027年1季度", D(2027, 3, 31)),
        ("2027年Q1", D(2027, 3, 31)),
        ("2027年q1", D(2027, 3, 31)),
        ("2027年第二季度", D(2027, 6, 30)),
        ("2027年二季度", D(2027, 6, 30)),
        ("2027年2季度", D(2027, 6, 30)),
        ("2027年Q2", D(2027, 6, 30)),
        ("2027年第三季度", D(2027, 9, 30)),
        ("2027年三季度末", D(2027, 9, 30)),
        ("2027年Q3", D(2027, 9, 30)),
        ("2027年第四季度", D(2027, 12, 31)),
        ("2027年四季度", D(2027, 12, 31)),
        ("2027年第4季度前", D(2027, 12, 31)),
        ("2027年Q4", D(2027, 12, 31)),
        # Chinese numerals in months
        ("2027年六月底", D(2027, 6, 30)),
        ("2027年十二月", D(2027, 12, 31)),
        ("2027年十一月上旬", D(2027, 11, 10)),
        ("2027年十月", D(2027, 10, 31)),
        ("2027年元月", D(2027, 1, 31)),
        ("2027年三月5日", D(2027, 3, 5)),
        # whitespace, full-width characters, brackets, leading 截至/到
        ("  2026-12-31  ", D(2026, 12, 31)),
        ("\t2026年12月底前\n", D(2026, 12, 31)),
        ("2026 年 12 月 底前", D(2026, 12, 31)),
        ("２０２６年１２月３１日", D(2026, 12, 31)),
        ("２０２６．１２", D(2026, 12, 31)),
        ("（2026年12月底前）", D(2026, 12, 31)),
        ("(2026年12月底前)", D(2026, 12, 31)),
        ("（2027年上半年）完成", D(2027, 6, 30)),
        ("截至2026年底", D(2026, 12, 31)),
        ("到2026年12月", D(2026, 12, 31)),
        ("于2026年12月31日前完成", D(2026, 12, 31)),
    ],
)
def test_date_texts(text: str, due: dt.date) -> None:
    assert parse_deadline(text) == Deadline("date", due=due, text=text.strip())


@pytest.mark.parametrize(
    ("value", "due", "text"),
    [
        (D(2026, 12, 31), D(2026, 12, 31), "2026-12-31"),
        (D(2027, 1, 5), D(2027, 1, 5), "2027-01-05"),
        (dt.datetime(2026, 12, 31, 0, 0), D(2026, 12, 31), "2026-12-31"),
        (dt.datetime(2026, 12, 31, 23, 59, 59), D(2026, 12, 31), "2026-12-31"),
        # Excel serial numbers, 1900 date system
        (46022, D(2025, 12, 31), "2025-12-31"),
        (46023, D(2026, 1, 1), "2026-01-01"),
        (46387, D(2026, 12, 31), "2026-12-31"),
        (46022.0, D(2025, 12, 31), "2025-12-31"),
        (46022.75, D(2025, 12, 31), "2025-12-31"),
        (36526, D(2000, 1, 1), "2000-01-01"),
        (73050, D(2099, 12, 31), "2099-12-31"),
    ],
)
def test_dates_and_excel_serials(value, due: dt.date, text: str) -> None:
    assert parse_deadline(value) == Deadline("date", due=due, text=text)


# ---------------------------------------------------------------------------------------------
# parse_deadline: recurring and ongoing


@pytest.mark.parametrize(
    ("text", "period", "month"),
    [
        ("每学期", "semester", None),
        ("每学期末", "semester", None),
        ("每学期初", "semester", None),
        ("每学期末前完成", "semester", None),
        ("每半年", "semester", None),
        ("每月", "month", None),
        ("每月底", "month", None),
        ("每月末", "month", None),
        ("每月底前", "month", None),
        ("每季度", "quarter", None),
        ("每季度末", "quarter", None),
        ("每季", "quarter", None),
        ("每周", "week", None),
        ("每年", "year", 12),
        ("每年底", "year", 12),
        ("每年末", "year", 12),
        ("每年年底", "year", 12),
        ("每年6月", "year", 6),
        ("每年6月底", "year", 6),
        ("每年6月前", "year", 6),
        ("每年1月", "year", 1),
        ("每年12月底前", "year", 12),
        ("每年六月", "year", 6),
        ("每年十月底", "year", 10),
        ("每年十二月", "year", 12),
        ("  每学期  ", "semester", None),
    ],
)
def test_recurring(text: str, period: str, month: int | None) -> None:
    assert parse_deadline(text) == Deadline("recurring", period=period, month=month, text=text.strip())


@pytest.mark.parametrize(
    "text",
    ["长期坚持", "长期", "持续推进", "持续", "常态化", "长期推进", "常态化推进", "持续开展", "长期有效", " 长期坚持 "],
)
def test_ongoing(text: str) -> None:
    assert parse_deadline(text) == Deadline("ongoing", text=text.strip())


# ---------------------------------------------------------------------------------------------
# parse_deadline: errors


def _message(value) -> str:
    with pytest.raises(DeadlineError) as info:
        parse_deadline(value)
    message = str(info.value)
    assert message.endswith(ACCEPTED_FORMS)
    assert "2026年12月底" in message  # part of ACCEPTED_FORMS
    return message


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("12月底", "没有写明年份"),
        ("12月", "没有写明年份"),
        ("六月底", "没有写明年份"),
        ("今年底", "没有写明年份"),
        ("上半年", "没有写明年份"),
        ("第一季度", "没有写明年份"),
        ("12-31", "没有写明年份"),
        ("尽快", "无法识别"),
        ("马上", "无法识别"),
        ("待定", "无法识别"),
        ("2026年13月", "月份“13”不存在"),
        ("2026年0月", "月份“0”不存在"),
        ("2026-13", "月份“13”不存在"),
        ("2026-13-01", "月份“13”不存在"),
        ("每年13月", "月份“13”不存在"),
        ("2026-02-30", "日期不存在"),
        ("2026年2月29日", "日期不存在"),
        ("2026年4月31日", "日期不存在"),
        ("2026.12.32", "日期不存在"),
        ("2026年前", "含义不明确"),
        ("2027年春季学期末", "学期"),
        ("2027年秋季学期", "学期"),
        ("2027年第一学期末", "学期"),
        ("46022", "无法识别"),  # a numeric string is not an Excel serial
        ("2026", "无法识别"),
        ("20261231", "无法识别"),
        ("2026年12月初", "无法识别"),
        ("2027年第五季度", "无法识别"),
        ("每天", "无法识别"),
        ("2026-12/31", "无法识别"),
    ],
)
def test_rejected_texts(text: str, reason: str) -> None:
    message = _message(text)
    assert f"“{text}”" in message
    assert reason in message


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_text(text: str) -> None:
    message = _message(text)
    assert "为空" in message


@pytest.mark.parametrize(
    ("value", "quoted", "reason"),
    [
        (0, "0", "不是日期"),
        (-5, "-5", "不是日期"),
        (12, "12", "不是日期"),  # meant as December: never silently 1900-01-11
        (1899, "1899", "不是日期"),
        (73051, "73051", "不是日期"),  # 2100-01-01: outside a reform plan's years
        (1e12, "1000000000000.0", "不是日期"),
        (2026, "2026", "年份"),  # YAML `deadline: 2026`
        (2026.12, "2026.12", "年份"),  # YAML `deadline: 2026.12`
        (True, "True", "无法识别"),
    ],
)
def test_rejected_numbers(value, quoted: str, reason: str) -> None:
    message = _message(value)
    assert f"“{quoted}”" in message
    assert reason in message


def test_nan_is_empty() -> None:
    assert "为空" in _message(float("nan"))


def test_error_is_value_error_with_details() -> None:
    with pytest.raises(ValueError) as info:
        parse_deadline("2026年13月")
    err = info.value
    assert isinstance(err, DeadlineError)
    assert err.text == "2026年13月"
    assert "月份" in err.reason
    assert str(err) == f"完成时限“2026年13月”{err.reason}。{ACCEPTED_FORMS}"


def test_accepted_forms_is_one_sentence() -> None:
    assert ACCEPTED_FORMS.endswith("。")
    assert ACCEPTED_FORMS.count("。") == 1
    for example in ("2026-12-31", "2026年12月底", "2027年上半年", "每学期", "每年6月", "长期坚持"):
        assert example in ACCEPTED_FORMS


# ---------------------------------------------------------------------------------------------
# parse_roadmap


def _steps(text: str) -> list[tuple[dt.date, str, str]]:
    result = parse_roadmap(text)
    assert all(d.kind == "date" for d, _title in result)
    return [(d.due, d.text, title) for d, title in result]


THREE_STEPS = [
    (D(2026, 12, 31), "制定方案"),
    (D(2027, 6, 30), "中期检查"),
    (D(2027, 12, 31), "总结验收"),
]


@pytest.mark.parametrize(
    "text",
    [
        # date first
        "2026年12月底前 制定方案；2027年6月 中期检查；2027年12月 总结验收",
        "2026年12月底前：制定方案；2027年6月：中期检查；2027年12月：总结验收",
        "2026年12月底前:制定方案;2027年6月:中期检查;2027年12月:总结验收",
        "2026年12月底前，制定方案。2027年6月，中期检查。2027年12月，总结验收。",
        "2026-12-31 制定方案\n2027-06-30 中期检查\n2027-12-31 总结验收",
        "2026.12 制定方案；2027.6 中期检查；2027.12 总结验收",
        "2026年12月底前制定方案；2027年6月中期检查；2027年12月总结验收",
        "（2026年12月底前）制定方案；（2027年6月）中期检查；（2027年12月）总结验收",
        # title first, date in brackets
        "制定方案（2026年12月底前）；中期检查（2027年6月）；总结验收（2027年12月）",
        "制定方案(2026年12月底前);中期检查(2027年6月);总结验收(2027年12月)",
        "制定方案（2026年12月底前完成）\n中期检查（2027年上半年）\n总结验收（2027年底）",
        # title first, date after a colon / comma / space
        "制定方案：2026年12月；中期检查：2027年6月；总结验收：2027年12月",
        "制定方案，2026年12月底前完成；中期检查，2027年6月；总结验收 2027年12月31日",
        # mixed separators and styles, blank steps
        "2026年12月底前 制定方案；\n中期检查（2027年6月）。\n\n总结验收：2027年12月；；",
        "  2026年12月底前 制定方案 ;  2027年6月 中期检查\r\n2027年12月 总结验收  ",
    ],
)
def test_roadmap_three_steps(text: str) -> None:
    assert [(due, title) for due, _text, title in _steps(text)] == THREE_STEPS


@pytest.mark.parametrize(
    "text",
    [
        "1. 2026年12月底前 制定方案\n2. 2027年6月 中期检查\n3. 2027年12月 总结验收",
        "1.2026年12月底前 制定方案；2.2027年6月 中期检查；3.2027年12月 总结验收",
        "1、2026年12月底前 制定方案；2、2027年6月 中期检查；3、2027年12月 总结验收",
        "1）2026年12月底前 制定方案；2）2027年6月 中期检查；3）2027年12月 总结验收",
        "（1）2026年12月底前 制定方案；（2）2027年6月 中期检查；（3）2027年12月 总结验收",
        "(1) 2026年12月底前 制定方案;(2) 2027年6月 中期检查;(3) 2027年12月 总结验收",
        "（一）2026年12月底前 制定方案；（二）2027年6月 中期检查；（三）2027年12月 总结验收",
        "一、2026年12月底前 制定方案；二、2027年6月 中期检查；三、2027年12月 总结验收",
        "①2026年12月底前 制定方案；②2027年6月 中期检查；③2027年12月 总结验收",
        "第一阶段：2026年12月底前 制定方案；第二阶段：2027年6月 中期检查；第三阶段：2027年12月 总结验收",
        "第1步 2026年12月底前 制定方案；第2步 2027年6月 中期检查；第3步 2027年12月 总结验收",
        "步骤1：2026年12月底前 制定方案；步骤2：2027年6月 中期检查；步骤3：2027年12月 总结验收",
        "第一阶段（2026年12月底前）：制定方案；第二阶段（2027年6月）：中期检查；第三阶段（2027年12月）：总结验收",
        "1. 制定方案（2026年12月底前）\n2. 中期检查（2027年6月）\n3. 总结验收（2027年12月）",
        "①制定方案：2026年12月；②中期检查：2027年6月；③总结验收：2027年12月",
        "1. 第一阶段：2026年12月底前 制定方案\n2. 第二阶段：2027年6月 中期检查\n3. 第三阶段：2027年12月 总结验收",
    ],
)
def test_roadmap_numbering_is_stripped(text: str) -> None:
    assert [(due, title) for due, _text, title in _steps(text)] == THREE_STEPS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "2026年12月底前 制定方案；2027年6月 中期检查；2027年12月 总结验收",
            [
                (D(2026, 12, 31), "2026年12月底前", "制定方案"),
                (D(2027, 6, 30), "2027年6月", "中期检查"),
                (D(2027, 12, 31), "2027年12月", "总结验收"),
            ],
        ),
        # written order is kept, not sorted
        (
            "2027年12月 总结验收；2026年12月 制定方案",
            [(D(2027, 12, 31), "2027年12月", "总结验收"), (D(2026, 12, 31), "2026年12月", "制定方案")],
        ),
        # a step with only a date has an empty title
        ("2027年6月；2027年12月 总结", [(D(2027, 6, 30), "2027年6月", ""), (D(2027, 12, 31), "2027年12月", "总结")]),
        ("①2027年6月", [(D(2027, 6, 30), "2027年6月", "")]),
        # the date text of a bracketed date is its content
        ("制定方案（2026年12月底前）", [(D(2026, 12, 31), "2026年12月底前", "制定方案")]),
        # titles keep their own brackets, commas and years
        (
            "2026年12月底前 修订章程（试行），报学校审定",
            [(D(2026, 12, 31), "2026年12月底前", "修订章程（试行），报学校审定")],
        ),
        (
            "修订章程（试行）（2026年12月）",
            [(D(2026, 12, 31), "2026年12月", "修订章程（试行）")],
        ),
        (
            "2026年招生方案制定：2026年12月",
            [(D(2026, 12, 31), "2026年12月", "2026年招生方案制定")],
        ),
        (
            "2026年12月底前 制定2027年工作方案",
            [(D(2026, 12, 31), "2026年12月底前", "制定2027年工作方案")],
        ),
        # a date glued to its title
        ("2026年12月上报材料", [(D(2026, 12, 31), "2026年12月", "上报材料")]),
        ("2026.12.31制定方案", [(D(2026, 12, 31), "2026.12.31", "制定方案")]),
        ("2026年12月底前完成调研", [(D(2026, 12, 31), "2026年12月底前完成", "调研")]),
        ("2027年1月前完成招生方案", [(D(2026, 12, 31), "2027年1月前完成", "招生方案")]),
        ("制定方案2026年12月底前完成", [(D(2026, 12, 31), "2026年12月底前完成", "制定方案")]),
        # other date forms inside a roadmap
        (
            "2027年上半年 试点；2027年第三季度 推广；2027年底 验收",
            [
                (D(2027, 6, 30), "2027年上半年", "试点"),
                (D(2027, 9, 30), "2027年第三季度", "推广"),
                (D(2027, 12, 31), "2027年底", "验收"),
            ],
        ),
        ("２０２７年６月　中期检查", [(D(2027, 6, 30), "２０２７年６月", "中期检查")]),
    ],
)
def test_roadmap_details(text: str, expected: list) -> None:
    assert _steps(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "；；\n", "。"])
def test_roadmap_empty(text: str) -> None:
    assert parse_roadmap(text) == []


@pytest.mark.parametrize(
    ("text", "step_no", "step", "reason"),
    [
        ("制定方案", 1, "制定方案", "没有写明完成时间"),
        ("2026年12月 制定方案；中期检查", 2, "中期检查", "没有写明完成时间"),
        ("每学期 检查进展", 1, "每学期 检查进展", "不能只写周期"),
        ("2026年12月 制定方案；持续推进", 2, "持续推进", "不能只写周期"),
        ("长期坚持", 1, "长期坚持", "不能只写周期"),
        ("检查进展（每学期）", 1, "检查进展（每学期）", "“每学期”不是具体日期"),
        ("日常督导（长期坚持）", 1, "日常督导（长期坚持）", "“长期坚持”不是具体日期"),
        ("2026年12月 制定；2026年13月 检查", 2, "2026年13月 检查", "时间“2026年13月”中的月份“13”不存在"),
        ("制定方案：2026年13月", 1, "制定方案：2026年13月", "时间“2026年13月”中的月份“13”不存在"),
        ("2026-02-30 制定方案", 1, "2026-02-30 制定方案", "日期不存在"),
        ("2027年春季学期末 总结", 1, "2027年春季学期末 总结", "学期"),
        ("2026年前 制定方案", 1, "2026年前 制定方案", "含义不明确"),
        ("12月底 制定方案", 1, "12月底 制定方案", "没有写明完成时间"),
    ],
)
def test_roadmap_errors(text: str, step_no: int, step: str, reason: str) -> None:
    with pytest.raises(DeadlineError) as info:
        parse_roadmap(text)
    message = str(info.value)
    assert message.startswith(f"路线图第{step_no}步“{step}”")
    assert reason in message
    assert message.endswith(ACCEPTED_FORMS)


# ---------------------------------------------------------------------------------------------
# parse_period


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("每周", "week"),
        ("每月", "month"),
        ("每季度", "quarter"),
        ("每学期", "semester"),
        ("每年", "year"),
        ("每半年", "semester"),
        ("week", "week"),
        ("month", "month"),
        ("quarter", "quarter"),
        ("semester", "semester"),
        ("year", "year"),
        ("Month", "month"),
        (" quarter ", "quarter"),
        ("周", "week"),
        ("月", "month"),
        ("季度", "quarter"),
        ("学期", "semester"),
        ("半年", "semester"),
        ("年", "year"),
        ("每月一次", "month"),
        ("每学期末", "semester"),
        ("  每季度 ", "quarter"),
    ],
)
def test_parse_period(text: str, period: str) -> None:
    assert parse_period(text) == period


@pytest.mark.parametrize("text", ["每天", "每两周", "2026年", "随时", "daily", "每年6月"])
def test_parse_period_rejects(text: str) -> None:
    with pytest.raises(DeadlineError) as info:
        parse_period(text)
    message = str(info.value)
    assert f"“{text}”" in message
    assert "每周、每月、每季度、每学期" in message


def test_parse_period_empty() -> None:
    with pytest.raises(DeadlineError, match="为空"):
        parse_period("")
