"""Parse the 完成时限 and 路线图 texts that offices write in their 任务清单.

Pure functions, no I/O:

* ``parse_deadline`` turns one 完成时限 (a date, an Excel serial number or a text such as
  “2026年12月底前”, “2027年上半年”, “每学期”, “长期坚持”) into a ``Deadline``;
* ``parse_roadmap`` turns a 路线图 cell (“2026年12月底前 制定方案；2027年6月 中期检查”) into
  ``[(deadline, step title), ...]`` in the written order;
* ``parse_period`` turns a 反馈周期 (“每月”, “每学期”, …) into a ``Period``.

Every failure raises ``DeadlineError`` whose text is a message for the office that wrote the plan.

Conventions: a month means its last day (“2026年12月” → 2026-12-31), as do 底/末/下旬; 上旬 is
the 10th and 中旬 the 20th.  “X月前” without 底/末 means *before* month X starts, i.e. the last
day of the previous month.  “YYYY年前” is ambiguous (end of YYYY-1 or of YYYY?) and is refused.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import math
import numbers
import re
from collections.abc import Callable

from definitions.schema import Deadline, DeadlineValue, Period

# inline patterns, compiled once (they run for every roadmap step of large plans)
_SPACES = re.compile(r"\s+")
_DONE_SUFFIX = re.compile(r"完成$")
_YEAR4 = re.compile(r"\d{4}")
_PARENS = re.compile(r"\(([^()]*)\)")
_PARENS_YEAR = re.compile(r"\s*\d{4}")
_CHUNK = re.compile(r"[^\s:,;()]+")
_PERIOD_WORD = re.compile(r"每?(.+?)(?:一次|[底末])?")

__all__ = ["ACCEPTED_FORMS", "DeadlineError", "parse_deadline", "parse_period", "parse_roadmap"]

ACCEPTED_FORMS = (
    "完成时限可以写成：具体日期（如 2026-12-31、2026年12月31日）、"
    "月份（如 2026年12月、2026年12月底、2026年12月上旬）、年底（如 2026年底）、"
    "半年或季度（如 2027年上半年、2027年第一季度）、"
    "周期（如 每周、每月、每季度、每学期、每年、每年6月）或长期（如 长期坚持、持续推进）。"
)
_PERIOD_FORMS = "反馈周期可以写成：每周、每月、每季度、每学期（或每半年）、每年。"


class DeadlineError(ValueError):
    """A 完成时限 / 路线图 / 反馈周期 that cannot be understood.

    ``str(err)`` is a complete message for the office; ``text`` is the offending text and
    ``reason`` the short explanation (without the list of accepted forms).
    """

    def __init__(self, message: str, *, text: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.text = text
        self.reason = reason


def _error(text: str, reason: str) -> DeadlineError:
    return DeadlineError(f"完成时限“{text}”{reason}。{ACCEPTED_FORMS}", text=text, reason=reason)


_UNRECOGNISED = "无法识别，请按下列写法之一修改"
MAX_DEADLINE_CHARS = 60  # the longest form written in full is about 20 characters

# ---------------------------------------------------------------------------------------------
# Normalisation

# full-width ASCII (０-９, （）, ：, ；, ，, ．, Ｑ …) → half-width; one character for one, so
# positions in the normalised text are positions in the original.
_HALF = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

_TIME = re.compile(r"[T\s]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?$")
_LEAD = re.compile(r"^(?:截[至止](?:到|至)?|到|至|于|在)")


def _clean(text: str) -> str:
    """Normalised deadline text: half-width, no spaces, no surrounding brackets, no 完成."""
    s = _TIME.sub("", text.translate(_HALF).strip())
    s = _SPACES.sub("", s)
    while True:
        before = s
        if s.startswith("(") and s.endswith(")"):
            s = s[1:-1]
        s = _LEAD.sub("", s)
        s = _DONE_SUFFIX.sub("", s)
        if s == before:
            return s


_CN = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10,
       "十一": 11, "十二": 12, "元": 1}  # fmt: skip


def _number(token: str) -> int:
    return int(token) if token.isdigit() else _CN[token]


def _month(token: str, text: str) -> int:
    m = _number(token)
    if not 1 <= m <= 12:
        raise _error(text, f"中的月份“{token}”不存在，月份应为 1 到 12")
    return m


def _last_day(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _date(year: int, month: int, day: int, text: str) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise _error(text, f"中的日期不存在（{year}年{month}月没有{day}日），请核对") from None


# ---------------------------------------------------------------------------------------------
# Pattern tables.  Each pattern must match the whole cleaned text; ``before`` is a trailing
# 前/之前/以前, which only changes the meaning of a bare month (“2027年1月前” → 2026-12-31).

_Y = r"(?P<y>[12]\d{3})"
_M = r"(?P<m>\d{1,2}|十[一二]?|[一二三四五六七八九]|元)"
_B = r"(?P<before>之前|以前|前)?"
_PART_DAY = {"上旬": 10, "中旬": 20}


def _on_day(g: dict, text: str) -> dt.date:
    return _date(int(g["y"]), _month(g["m"], text), int(g["d"]), text)


def _on_month(g: dict, text: str) -> dt.date:
    year, month, part = int(g["y"]), _month(g["m"], text), g.get("part")
    if part in _PART_DAY:
        return dt.date(year, month, _PART_DAY[part])
    if g["before"] and not part:  # before month X starts
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return _last_day(year, month)


def _on_year(g: dict, text: str) -> dt.date:
    year = int(g["y"])
    if g["before"] and not g["part"]:
        raise _error(text, f"含义不明确（是 {year - 1}年底 还是 {year}年底？），请写成“{year - 1}年底”或“{year}年底”")
    return dt.date(year, 12, 31)


def _on_half(g: dict, text: str) -> dt.date:
    return dt.date(int(g["y"]), 6 if g["half"] == "上" else 12, 30 if g["half"] == "上" else 31)


def _on_quarter(g: dict, text: str) -> dt.date:
    q = _number(g["q"] or g["q2"])
    return _last_day(int(g["y"]), 3 * q)


_DATES: list[tuple[re.Pattern[str], Callable[[dict, str], dt.date]]] = [
    (re.compile(p + _B), f)
    for p, f in [
        (rf"{_Y}(?P<sep>[-/.])(?P<m>\d{{1,2}})(?P=sep)(?P<d>\d{{1,2}})", _on_day),  # 2026-12-31
        (rf"{_Y}年{_M}月(?P<d>\d{{1,2}})[日号]?", _on_day),  # 2026年12月31日
        (rf"{_Y}年{_M}月份?(?P<part>底|末|上旬|中旬|下旬)?", _on_month),  # 2026年12月底
        (rf"{_Y}[-/.](?P<m>\d{{1,2}})月?(?P<part>底|末)?", _on_month),  # 2026.12
        (rf"{_Y}年度?(?:年?(?P<part>底|末))?", _on_year),  # 2026年底
        (rf"{_Y}年(?P<half>[上下])半年[底末]?", _on_half),  # 2027年上半年
        (rf"{_Y}年?(?:第?(?P<q>[1-4一二三四])季度?|[Qq](?P<q2>[1-4]))[底末]?", _on_quarter),  # 2027年第一季度
    ]
]

_RECURRING_FORMS: list[tuple[str, Period]] = [
    (r"每(?:周|星期)末?", Period.WEEK),
    (r"每月(?:底|末|初)?", Period.MONTH),
    (r"每季度?(?:底|末|初)?", Period.QUARTER),
    (r"每学期(?:末|初)?", Period.SEMESTER),
    (r"每半年(?:底|末)?", Period.SEMESTER),
    (r"每年(?:年?[底末])?", Period.YEAR),
    (rf"每年{_M}月份?(?:底|末)?", Period.YEAR),
]
_RECURRING: list[tuple[re.Pattern[str], Period]] = [(re.compile(p + _B), period) for p, period in _RECURRING_FORMS]

_ONGOING = re.compile(r"(?:长期|持续|常态化)(?:坚持|推进|开展|有效|实施|进行)?")

# texts we recognise well enough to say precisely what is wrong
_NO_YEAR = re.compile(
    r"(?:今|本|明|当)年|(?:\d{1,2}|十[一二]?|[一二三四五六七八九])月|年[底末]|[上下]半年|第?[1-4一二三四]季度|[Qq][1-4]|\d{1,2}[-/.]\d{1,2}"
)
_SEMESTER = re.compile(r"学期|[春秋]季")
_YEAR_LAST_WHY = (
    "把年份写在了最后，无法确定哪个数字是月份（月/日/年与日/月/年两种写法都有人用）；"
    "请把年份写在前面，如 2026-12-31、2026/12/31 或 2026年12月31日"
)
_YEAR_LAST = re.compile(r"\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})")  # 12/31/2026, 31.12.2026


def _from_serial(original: numbers.Real) -> Deadline:
    try:
        value = float(original)
    except OverflowError:  # an integer past any float (a YAML number of hundreds of digits)
        raise _error("（位数过多的数字）", "是一个数字，不是日期；请在单元格中填写日期，或写成文字，如“2026年12月底”") from None
    if math.isnan(value):
        raise DeadlineError(f"完成时限为空，请填写。{ACCEPTED_FORMS}", text="", reason="为空")
    if 1900 <= value < 2101:  # YAML reads 2026 or 2026.12 as a number, not as an Excel serial
        raise _error(str(original), "是一个数字，看起来是年份或年月；请写成文字，如“2026年底”“2026年12月”（YAML 中请加引号）")
    # Excel serials of 2000-01-01 .. 2099-12-31: a reform plan's dates. Any other number (12 for
    # "December", 3 for "3 months") is not silently read as a day of 1900.
    if not 36526 <= value < 73051:
        raise _error(str(original), "是一个数字，不是日期；请在单元格中填写日期，或写成文字，如“2026年12月底”")
    day = (dt.datetime(1899, 12, 30) + dt.timedelta(days=int(value))).date()
    return Deadline("date", due=day, text=day.isoformat())


def _parse_deadline(value: DeadlineValue) -> Deadline:
    """Parse one 完成时限; raise ``DeadlineError`` with a message for the office if it is not understood."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return Deadline("date", due=value, text=value.isoformat())
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return _from_serial(value)
    if not isinstance(value, str):
        raise _error(str(value), _UNRECOGNISED)

    text = value.strip()
    if not text:
        raise DeadlineError(f"完成时限为空，请填写。{ACCEPTED_FORMS}", text="", reason="为空")
    if len(text) > MAX_DEADLINE_CHARS:  # no deadline is this long (and a 路线图 step tries many prefixes)
        raise _error(f"{text[:40]}…", f"过长（超过 {MAX_DEADLINE_CHARS} 个字），不是一个完成时限；请只写时间，说明另写在其他列")
    s = _clean(text)

    for pattern, on_match in _DATES:
        if m := pattern.fullmatch(s):
            return Deadline("date", due=on_match(m.groupdict(), text), text=text)
    for pattern, period in _RECURRING:
        if m := pattern.fullmatch(s):
            month = None
            if period == Period.YEAR:
                month = _month(m["m"], text) if m.groupdict().get("m") else 12
            return Deadline("recurring", period=period, month=month, text=text)
    if _ONGOING.fullmatch(s):
        return Deadline("ongoing", text=text)

    if _YEAR4.match(s) and _SEMESTER.search(s):
        raise _error(text, "按学期计算，各学期的起止日期不一，请写成具体日期或月份（如 2027年7月15日、2027年7月）")
    if _YEAR_LAST.fullmatch(s):
        raise _error(text, _YEAR_LAST_WHY)
    if _NO_YEAR.match(s):
        raise _error(text, "没有写明年份，请补上年份（如 2026年12月底）")
    raise _error(text, _UNRECOGNISED)


# ---------------------------------------------------------------------------------------------
# 路线图

_STEP_SPLIT = re.compile(r"[;；\n\r。]")
_NUMBERING = re.compile(
    r"""(?:
        \d{1,2}\s*[.、)]                                   # 1.  1、  1)
      | \(\s*(?:\d{1,2}|[一二三四五六七八九十]+)\s*\)       # (1)  （一）
      | [一二三四五六七八九十]+\s*[、.]                      # 一、
      | [\u2460-\u2473\u2776-\u277f]                       # ①  ❶
      | 第\s*(?:\d{1,2}|[一二三四五六七八九十]+)\s*(?:阶段|步骤?|项|条)  # 第一阶段
      | (?:步骤|阶段)\s*(?:\d{1,2}|[一二三四五六七八九十]+)   # 步骤1  阶段一
    )[\s:,、.]*""",
    re.X,
)
# after a date written without a separator, the title may not continue the date
_DATE_GOES_ON = re.compile(
    r"[\d年月日号旬底末季度前之以.\-/]|[〇零一二三四五六七八九十]+[月季]|[上中下]旬|[上下]半年|[春夏秋冬]季|学期|[寒暑]假"
)
_DATE_CHARS = re.compile(r"[\d年月日号旬底末前之以完成份上中下半季度第Qq一二三四五六七八九十元春夏秋冬学期\-/. ]+")
_YEAR = re.compile(r"(?<!\d)\d{4}(?!\d)")
_NOT_DATED = re.compile(r"每(?:周|星期|月|季|学期|半年|年)|长期|持续|常态化")
_TITLE_TRIM = " \t\u3000:：,，、-—–"


def _parses(text: str) -> Deadline | None:
    try:
        return parse_deadline(text)
    except DeadlineError:
        return None


def _step_error(n: int, step: str, reason: str) -> DeadlineError:
    return DeadlineError(f"路线图第{n}步“{step}”{reason}。{ACCEPTED_FORMS}", text=step, reason=reason)


def _parse_step(n: int, step: str) -> tuple[Deadline, str]:
    norm = step.translate(_HALF)
    start = 0
    for _ in range(3):  # “1. 第一阶段：…”
        if m := _NUMBERING.match(norm, start):
            start = m.end()
    body, nb = step[start:], norm[start:]

    def checked(date_text: str) -> Deadline:
        try:
            d = parse_deadline(date_text)
        except DeadlineError as err:
            raise _step_error(n, step, f"：时间“{err.text or date_text.strip()}”{err.reason}") from None
        if d.kind != "date":
            raise _step_error(n, step, f"：“{d.text}”不是具体日期，路线图的每一步都要写明完成时间（日期、月份、年底、半年或季度）")
        return d

    def result(d0: int, d1: int, t0: int, t1: int) -> tuple[Deadline, str]:
        return checked(body[d0:d1]), body[t0:t1].strip(_TITLE_TRIM)

    # the date first: “2026年12月底前 制定方案”, “（2026年12月）制定方案”
    lead: tuple[int, bool] | None = None
    chunk = ""
    if m := _PARENS.match(nb):
        if _PARENS_YEAR.match(m[1]):
            return result(1, m.end(1), m.end(), len(nb))
    elif _YEAR.match(nb) and (head := _CHUNK.match(nb)):
        chunk = head[0]
        for end in range(len(chunk), 3, -1):
            if end < len(chunk) and _DATE_GOES_ON.match(nb, end):
                continue
            if _parses(body[:end]):
                lead = (end, end == len(chunk))
                break
    if lead and lead[1]:
        return result(0, lead[0], lead[0], len(nb))

    # the title first: “制定方案（2026年12月底前）”, “制定方案：2026年12月”
    tail = nb.rstrip()
    if tail.endswith(")") and (i := tail.rfind("(")) > 0 and (_YEAR.search(tail, i) or _NOT_DATED.search(tail, i)):
        return result(i + 1, len(tail) - 1, 0, i)
    candidates = [m.start() for m in _YEAR.finditer(nb) if m.start() > 0]
    for i in candidates:
        if _parses(body[i:]):
            return result(i, len(nb), 0, i)

    if lead:  # “2026年12月底前完成方案”
        return result(0, lead[0], lead[0], len(nb))
    if chunk:
        checked(body[: len(chunk)])  # raises with the precise reason
    for i in reversed(candidates):
        if _DATE_CHARS.fullmatch(nb[i:].rstrip()):
            checked(body[i:])
    if _NOT_DATED.search(nb):
        raise _step_error(
            n, step, "没有写明具体日期：路线图的每一步都要写明完成时间（日期、月份、年底、半年或季度），不能只写周期或“长期坚持”"
        )
    raise _step_error(
        n,
        step,
        "没有写明完成时间：请在步骤前面写上时间（如“2026年12月底前 制定方案”），或在后面用括号注明（如“制定方案（2026年12月底前）”）",
    )


def _parse_roadmap(text: str) -> list[tuple[Deadline, str]]:
    """Parse a 路线图 cell into ``[(deadline, step title), ...]`` in the written order."""
    steps = [s.strip() for s in _STEP_SPLIT.split(text or "")]
    return [_parse_step(n, step) for n, step in enumerate((s for s in steps if s), 1)]


# ---------------------------------------------------------------------------------------------
# 反馈周期

_PERIOD_WORDS: dict[str, Period] = {
    "week": Period.WEEK, "weekly": Period.WEEK, "month": Period.MONTH, "monthly": Period.MONTH,
    "quarter": Period.QUARTER, "quarterly": Period.QUARTER, "semester": Period.SEMESTER, "term": Period.SEMESTER,
    "year": Period.YEAR, "yearly": Period.YEAR, "annually": Period.YEAR, "annual": Period.YEAR,
    "周": Period.WEEK, "星期": Period.WEEK, "月": Period.MONTH, "季": Period.QUARTER, "季度": Period.QUARTER,
    "学期": Period.SEMESTER, "半年": Period.SEMESTER, "年": Period.YEAR,
}  # fmt: skip


def parse_period(text: str) -> Period:
    """Parse a 反馈周期 such as 每月、每季度、每学期 (or 'month', 'quarter', …)."""
    raw = str(text if text is not None else "").strip()
    s = _SPACES.sub("", raw.translate(_HALF)).lower()
    m = _PERIOD_WORD.fullmatch(s)
    if m and m[1] in _PERIOD_WORDS:
        return _PERIOD_WORDS[m[1]]
    if s in _PERIOD_WORDS:
        return _PERIOD_WORDS[s]
    if not s:
        raise DeadlineError(f"反馈周期为空，请填写。{_PERIOD_FORMS}", text="", reason="为空")
    raise DeadlineError(f"反馈周期“{raw}”无法识别，请按下列写法之一修改。{_PERIOD_FORMS}", text=raw, reason=_UNRECOGNISED)


# Offices write the same few dozen texts thousands of times: parse each text once.
_text_cache = functools.lru_cache(maxsize=8192)(_parse_deadline)
_roadmap_cache = functools.lru_cache(maxsize=8192)(lambda text: tuple(_parse_roadmap(text)))


def parse_deadline(value: DeadlineValue) -> Deadline:
    """Parse one 完成时限 (text, date, datetime or Excel serial); raise ``DeadlineError``."""
    if isinstance(value, str):
        return _text_cache(value)
    return _parse_deadline(value)


def parse_roadmap(text: str) -> list[tuple[Deadline, str]]:
    """Parse a 路线图 cell into dated steps, in the written order; raise ``DeadlineError``."""
    return list(_roadmap_cache(text))
