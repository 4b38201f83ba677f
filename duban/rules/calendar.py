"""Working-day calendar (工作日历) for deadlines, reminders and escalations.

Pure: nothing here does I/O except ``InstitutionCalendar.load``, which reads the institution's
own calendar file (YAML).

Which days are working days, first rule that applies wins:

1. the institution file: ``holidays`` → day off, ``workdays`` → working day;
2. years that ``chinese_calendar`` knows (2004–2026 in 1.11): ``chinese_calendar.is_workday``,
   i.e. statutory holidays off and 调休 weekend days on;
3. any other year: Monday–Friday minus the statutory holidays that ``holidays.China`` lists
   (调休 make-up workdays are unknown), and one Chinese warning per such year in ``warnings``.

Each year is computed once, on first use, into a per-day dict (``is_workday`` is one lookup),
a cumulative count of working days and a sorted list of working days, so ``workdays_between``
and ``add_workdays`` never walk day by day.
"""

from __future__ import annotations

import calendar as _stdlib_calendar
import datetime as dt
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import chinese_calendar
import holidays as _holidays_lib
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import ErrorDetails

from duban.vocabulary import Period

__all__ = [
    "PERIODS",
    "CalendarFileError",
    "InstitutionCalendar",
    "Semester",
    "SemesterSpec",
    "WorkCalendar",
]

PERIODS = tuple(Period)


def _chinese_calendar_years() -> tuple[int, int]:
    try:
        from chinese_calendar.constants import holidays as known

        return min(known).year, max(known).year
    except (ImportError, AttributeError, TypeError, ValueError):  # pragma: no cover - layout of a future chinese_calendar
        return 2004, 2026


CC_FIRST_YEAR, CC_LAST_YEAR = _chinese_calendar_years()


# ---------------------------------------------------------------------------------------------
# Institution file


class CalendarFileError(ValueError):
    """An institution calendar file that cannot be used; ``str(err)`` names the file and field."""


_DATE_TEXT = re.compile(r"^\s*(\d{4})\s*(?:[-/.]|年)\s*(\d{1,2})\s*(?:[-/.]|月)\s*(\d{1,2})\s*日?\s*$")
_DATE_HINT = "应写作 YYYY-MM-DD，例如 2027-10-09"


def _parse_day(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        raise ValueError(f"应为日期（不带时间），{_DATE_HINT}")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        m = _DATE_TEXT.match(value)
        if m:
            y, mo, d = (int(g) for g in m.groups())
            try:
                return dt.date(y, mo, d)
            except ValueError:
                raise ValueError(f"日期不存在：{value!r}") from None
    raise ValueError(f"不是有效日期：{value!r}，{_DATE_HINT}")


Day = Annotated[dt.date, BeforeValidator(_parse_day)]


@dataclass(frozen=True)
class Semester:
    name: str
    start: dt.date
    end: dt.date

    def __contains__(self, d: dt.date) -> bool:
        return self.start <= d <= self.end


class SemesterSpec(BaseModel):
    """One semester as written in the institution file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    start: Day
    end: Day

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: dt.date, info: ValidationInfo) -> dt.date:
        start = info.data.get("start")
        if start is not None and end < start:
            raise ValueError(f"结束日期 {end} 早于开始日期 {start}")
        return end

    def to_semester(self) -> Semester:
        return Semester(self.name, self.start, self.end)


class InstitutionCalendar(BaseModel):
    """The institution's own additions to the national calendar (单位日历文件)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    holidays: list[Day] = []
    workdays: list[Day] = []
    semesters: list[SemesterSpec] = []

    @field_validator("workdays")
    @classmethod
    def _not_both(cls, workdays: list[dt.date], info: ValidationInfo) -> list[dt.date]:
        both = sorted(set(workdays) & set(info.data.get("holidays") or ()))
        if both:
            days = "、".join(str(d) for d in both)
            raise ValueError(f"{days} 同时列在 holidays 和 workdays 中，请只保留一处")
        return workdays

    @field_validator("semesters")
    @classmethod
    def _no_overlap(cls, semesters: list[SemesterSpec]) -> list[SemesterSpec]:
        ordered = sorted(semesters, key=lambda s: s.start)
        for a, b in zip(ordered, ordered[1:], strict=False):
            if b.start <= a.end:
                raise ValueError(f"学期“{a.name}”（{a.start} 至 {a.end}）与“{b.name}”（{b.start} 至 {b.end}）时间重叠")
        return semesters

    @classmethod
    def load(cls, path: str | Path) -> InstitutionCalendar:
        """Read a YAML institution file; raise ``CalendarFileError`` with a Chinese message."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CalendarFileError(f"找不到单位日历文件 {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CalendarFileError(f"无法读取单位日历文件 {path}：{exc}") from None
        try:
            data = yaml.load(text, Loader=_DatesAsTextLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            where = ""
            mark = getattr(exc, "problem_mark", None)
            if mark is not None:
                where = f"第 {mark.line + 1} 行第 {mark.column + 1} 列"
            raise CalendarFileError(f"单位日历文件 {path} 不是有效的 YAML{where}：{exc}") from None
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise CalendarFileError(
                f"单位日历文件 {path} 的内容应为“字段: 值”的形式（可用字段：{_TOP_FIELDS}），实际是 {type(data).__name__}"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            lines = [f"  - {_field_name(e['loc'])}：{_error_text(e)}" for e in exc.errors()]
            raise CalendarFileError(f"单位日历文件 {path} 有 {len(lines)} 处错误：\n" + "\n".join(lines)) from None


class _DatesAsTextLoader(yaml.SafeLoader):
    """SafeLoader that leaves 2027-10-09 as text, so that bad dates reach our own messages."""


_DatesAsTextLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_TOP_FIELDS = "holidays、workdays、semesters"
_SEMESTER_FIELDS = "name、start、end"


def _field_name(loc: tuple[Any, ...]) -> str:
    if not loc:
        return "（整个文件）"
    parts = [f"第 {p + 1} 项" if isinstance(p, int) else str(p) for p in loc]
    return " → ".join(parts)


def _error_text(err: ErrorDetails) -> str:
    kind, loc = err["type"], err["loc"]
    if kind == "value_error":
        return str(err.get("ctx", {}).get("error", err["msg"]))
    if kind == "extra_forbidden":
        fields = _SEMESTER_FIELDS if loc and loc[0] == "semesters" else _TOP_FIELDS
        return f"不认识的字段，可用字段：{fields}"
    if kind == "missing":
        return "缺少此项"
    if kind == "list_type":
        return f"应为列表（每行以“- ”开头），实际是 {err['input']!r}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"应为“字段: 值”的形式（{_SEMESTER_FIELDS}），实际是 {err['input']!r}"
    if kind == "string_type":
        return f"应为文字，实际是 {err['input']!r}"
    if kind == "string_too_short":
        return "不能为空"
    return f"{err['msg']}（{err['input']!r}）"


# ---------------------------------------------------------------------------------------------
# Working days


class _Year:
    """One year's working days: ``cum[i]`` = working days among the year's first ``i`` days."""

    __slots__ = ("first", "cum", "days", "total")

    def __init__(self, first: int, flags: list[bool]) -> None:
        self.first = first  # ordinal of 1 January
        cum = [0]
        days: list[int] = []
        count = 0
        for i, on in enumerate(flags):
            if on:
                count += 1
                days.append(first + i)
            cum.append(count)
        self.cum = cum
        self.days = days  # ordinals of the working days, ascending
        self.total = count


_FALLBACK_HINT = "如有调休上班日，请在单位日历文件中补充。"


def _days_of(year: int) -> list[dt.date]:
    if not dt.MINYEAR <= year <= dt.MAXYEAR:
        raise ValueError(f"日期超出可计算范围（{year} 年）")
    first = dt.date(year, 1, 1)
    return [first + dt.timedelta(i) for i in range(366 if _stdlib_calendar.isleap(year) else 365)]


@cache
def _national_year(year: int) -> tuple[tuple[bool, ...], str | None]:
    """National working-day flags of ``year`` (index = day of year - 1) and the fallback warning.

    The same for every ``WorkCalendar``, so computed once per process; each calendar records
    the warning itself the first time it consults the year.
    """
    days = _days_of(year)
    try:
        return tuple(chinese_calendar.is_workday(d) for d in days), None
    except NotImplementedError:
        statutory = _statutory(year)
        flags = tuple(d.weekday() < 5 and d not in statutory for d in days)
        return flags, _unknown_year_text(year, bool(statutory))


def _statutory(year: int) -> set[dt.date]:
    try:
        return set(_holidays_lib.China(years=year))
    except Exception:  # noqa: BLE001  third-party holiday data: an unknown year must never stop a run
        return set()


def _unknown_year_text(year: int, has_statutory: bool) -> str:
    known = f"chinese-calendar 仅支持到 {CC_LAST_YEAR} 年" if year > CC_LAST_YEAR else f"chinese-calendar 仅支持 {CC_FIRST_YEAR} 年及以后"
    if has_statutory:
        return f"{year} 年的法定节假日调休安排尚未收录（{known}），已按周一至周五并扣除法定节假日计算工作日；{_FALLBACK_HINT}"
    return (
        f"{year} 年的法定节假日调休安排尚未收录（{known}），且没有该年的法定节假日数据，"
        f"已按周一至周五计算工作日；如有节假日或调休上班日，请在单位日历文件中补充。"
    )


class WorkCalendar:
    """National working days (chinese_calendar / holidays) plus the institution's own file."""

    def __init__(self, institution: InstitutionCalendar | None = None) -> None:
        self.institution = institution or InstitutionCalendar()
        self._extra_off: dict[int, set[dt.date]] = {}
        self._extra_on: dict[int, set[dt.date]] = {}
        for d in self.institution.holidays:
            self._extra_off.setdefault(d.year, set()).add(d)
        for d in self.institution.workdays:
            self._extra_on.setdefault(d.year, set()).add(d)
        self._semesters = sorted((s.to_semester() for s in self.institution.semesters), key=lambda s: s.start)
        self._day: dict[dt.date, bool] = {}
        self._years: dict[int, _Year] = {}
        self._semester_periods: dict[dt.date, tuple[dt.date, dt.date]] = {}
        self._warnings: list[str] = []
        self._warned: set[object] = set()

    # -- warnings ------------------------------------------------------------------------------

    @property
    def warnings(self) -> list[str]:
        """Chinese warnings (unknown years, semester fallback), each recorded once, in order."""
        return list(self._warnings)

    def _warn(self, key: object, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self._warnings.append(text)

    # -- per-year tables -----------------------------------------------------------------------

    def _year(self, year: int) -> _Year:
        table = self._years.get(year)
        if table is None:
            table = self._build_year(year)
        return table

    def _build_year(self, year: int) -> _Year:
        national, warning = _national_year(year)
        if warning:
            self._warn(("year", year), warning)
        flags = list(national)
        first = dt.date(year, 1, 1).toordinal()
        for d in self._extra_on.get(year, ()):
            flags[d.toordinal() - first] = True
        for d in self._extra_off.get(year, ()):
            flags[d.toordinal() - first] = False
        self._day.update(zip(_days_of(year), flags, strict=True))
        table = self._years[year] = _Year(first, flags)
        return table

    # -- days ----------------------------------------------------------------------------------

    def is_workday(self, d: dt.date) -> bool:
        try:
            return self._day[d]
        except KeyError:
            if isinstance(d, dt.datetime):
                d = d.date()
            self._year(d.year)
            return self._day[d]

    def next_workday(self, d: dt.date) -> dt.date:
        """``d`` itself if it is a working day, else the first working day after it."""
        year = d.year
        table = self._year(year)
        k = table.cum[d.toordinal() - table.first]  # working days before d in its year
        while k >= table.total:
            k -= table.total
            year += 1
            table = self._year(year)
        return dt.date.fromordinal(table.days[k])

    def add_workdays(self, d: dt.date, n: int) -> dt.date:
        """The ``n``-th working day after ``d`` (before it when ``n`` < 0).

        The result is always a working day; ``d`` itself need not be one.  ``n == 0`` gives
        ``next_workday(d)``.  E.g. from Saturday, ``+1`` is Monday and ``-1`` is Friday.
        """
        if n == 0:
            return self.next_workday(d)
        year = d.year
        table = self._year(year)
        i = d.toordinal() - table.first
        if n > 0:
            k = table.cum[i + 1] + n - 1
            while k >= table.total:
                k -= table.total
                year += 1
                table = self._year(year)
        else:
            k = table.cum[i] + n
            while k < 0:
                year -= 1
                table = self._year(year)
                k += table.total
        return dt.date.fromordinal(table.days[k])

    def workdays_between(self, start: dt.date, end: dt.date) -> int:
        """Working days in ``(start, end]``; negative when ``end`` < ``start``; 0 when equal."""
        s, e = start.toordinal(), end.toordinal()
        if e < s:
            return -self.workdays_between(end, start)
        ys, ye = start.year, end.year
        table = self._year(ys)
        before_start = table.cum[s - table.first + 1]
        if ys == ye:
            return table.cum[e - table.first + 1] - before_start
        count = table.total - before_start
        for year in range(ys + 1, ye):
            count += self._year(year).total
        table = self._year(ye)
        return count + table.cum[e - table.first + 1]

    # -- semesters and periods -----------------------------------------------------------------

    @staticmethod
    def _default_semesters(year: int) -> list[Semester]:
        """Default semesters touching calendar ``year``: autumn of year-1, spring, autumn."""
        return [
            Semester(f"{year - 1}-{year} 学年第一学期", dt.date(year - 1, 9, 1), dt.date(year, 1, 15)),
            Semester(f"{year - 1}-{year} 学年第二学期", dt.date(year, 3, 1), dt.date(year, 7, 15)),
            Semester(f"{year}-{year + 1} 学年第一学期", dt.date(year, 9, 1), dt.date(year + 1, 1, 15)),
        ]

    def semester_of(self, d: dt.date) -> Semester | None:
        """The semester containing ``d`` (institution file, or default semesters if it has none)."""
        if isinstance(d, dt.datetime):
            d = d.date()
        semesters = self._semesters or self._default_semesters(d.year)
        for s in semesters:
            if s.start <= d <= s.end:
                return s
        return None

    def _semester_due(self, d: dt.date) -> Semester:
        """The semester containing ``d``, or the next one to start (during a vacation)."""
        if self._semesters and d > self._default_end_before(self._semesters[0].start):
            for s in self._semesters:
                if d <= s.end:
                    return s
        # before the file's first semester (and its vacation) or after its last: the defaults
        for s in self._default_semesters(d.year) + self._default_semesters(d.year + 1):
            if d <= s.end:
                if self._semesters and d > self._semesters[-1].end:
                    self._warn(
                        ("semester", s.name),
                        f"单位日历文件中没有 {d} 所在或之后的学期，已按默认学期“{s.name}”"
                        f"（{s.start} 至 {s.end}）计算学期末；请在单位日历文件中补充学期。",
                    )
                return s
        raise AssertionError("unreachable")  # pragma: no cover

    def semester_end(self, d: dt.date) -> dt.date:
        """Last day of the semester containing ``d``; during a vacation, of the next semester."""
        if isinstance(d, dt.datetime):
            d = d.date()
        return self._semester_due(d).end

    def _default_end_before(self, day: dt.date) -> dt.date:
        """The last day of the latest default semester that ends before ``day``."""
        candidates = self._default_semesters(day.year - 1) + self._default_semesters(day.year)
        return max(c.end for c in candidates if c.end < day)

    def semester_period(self, d: dt.date) -> tuple[dt.date, dt.date]:
        """The reporting period of the semester due for ``d``: from the day after the previous
        semester ended (vacations belong to the coming semester) to the semester's last day."""
        if isinstance(d, dt.datetime):
            d = d.date()
        known = self._semester_periods.get(d)
        if known is None:  # once per day asked (a sweep asks for the same few days for every task)
            due = self._semester_due(d)
            earlier = [s.end for s in self._semesters if s.end < due.start]
            prev_end = max(earlier) if earlier else self._default_end_before(due.start)
            known = self._semester_periods[d] = (prev_end + dt.timedelta(days=1), due.end)
        return known

    def period_end(self, d: dt.date, period: str, month: int | None = None) -> dt.date:
        """Due date of the ``period`` containing ``d`` (a calendar date, not rolled to a workday).

        week → Friday of d's ISO week; month → last day of the month; quarter → last day of
        the quarter; semester → ``semester_end(d)``; year → 31 December, or with ``month`` the
        last day of that month in d's year (next year's if it is already past).
        """
        if isinstance(d, dt.datetime):
            d = d.date()
        if month is not None and period != Period.YEAR:
            raise ValueError(f"month 只用于 year 周期，不能用于 {period!r}")
        if period == Period.WEEK:
            return d + dt.timedelta(days=4 - d.weekday())
        if period == Period.MONTH:
            return _last_day(d.year, d.month)
        if period == Period.QUARTER:
            return _last_day(d.year, (d.month - 1) // 3 * 3 + 3)
        if period == Period.SEMESTER:
            return self.semester_end(d)
        if period == Period.YEAR:
            if month is None:
                return dt.date(d.year, 12, 31)
            if not 1 <= month <= 12:
                raise ValueError(f"月份应为 1 到 12，实际是 {month!r}")
            due = _last_day(d.year, month)
            return due if due >= d else _last_day(d.year + 1, month)
        raise ValueError(f"未知的周期 {period!r}，可用：{'、'.join(PERIODS)}")


def _last_day(year: int, month: int) -> dt.date:
    return dt.date(year, month, _stdlib_calendar.monthrange(year, month)[1])
