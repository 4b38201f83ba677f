"""Small value helpers shared by plan sync, the roll-up and the sweep: JSON-ready values, local
calendar dates of stored timestamps, and batches for bulk statements.  No pandas or numpy import:
their values are recognised by what they are (a ``pd.Timestamp`` is a ``datetime``, a numpy scalar
has ``item()``)."""

from __future__ import annotations

import datetime as dt
import gc
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, overload

T = TypeVar("T")


def jsonable(value: Any) -> Any:
    """``value`` as JSON-ready data: dates as ISO text, NaN / NaT as None, numpy scalars plain,
    dicts, lists and tuples converted throughout (tuples become lists)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None:
        return None
    if isinstance(value, dt.date):  # also datetime and pd.Timestamp; NaT is the one not equal to itself
        return value.isoformat() if value == value else None
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


@overload
def aware(value: dt.datetime) -> dt.datetime: ...
@overload
def aware(value: None) -> None: ...
def aware(value: dt.datetime | None) -> dt.datetime | None:
    """A stored timestamp with its zone: SQLite returns naive UTC, PostgreSQL an aware value."""
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


def local_date(value: dt.datetime | None, tz) -> dt.date | None:
    """A stored timestamp (naive = UTC, as SQLite returns it) as a calendar date in ``tz``."""
    return aware(value).astimezone(tz).date() if value is not None else None


def clean_text(value: str | None, *, what: str, required: bool, limit: int, error: type[Exception] = ValueError) -> str:
    """Text a person typed into a form: line ends normalised, trimmed, required or not, at most ``limit``
    characters; otherwise ``error`` with a Chinese message naming the field (``what``)."""
    value = (value or "").replace("\r\n", "\n").strip()
    if required and not value:
        raise error(f"请填写{what}。")
    if len(value) > limit:
        raise error(f"{what}不能超过 {limit} 个字（现有 {len(value)} 个字），请精简后再提交。")
    return value


def chunks(rows: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``rows`` in slices of at most ``size`` (bulk statements and IN lists stay bounded)."""
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


BULK_GC_THRESHOLD = 50_000  # allocations between two young-generation passes during bulk work


class _Collector:
    """How many bulk steps run in the process now, and the collector's threshold before the first."""

    lock = threading.Lock()
    depth = 0
    saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def bulk_work() -> Iterator[None]:
    """Fewer passes of the cyclic garbage collector while a bulk step runs (also a decorator).

    The sweep's steps make hundreds of thousands of objects that live until the step ends; at
    the default (a pass every 700 allocations, and the whole heap again and again as it grows)
    the collector took a quarter of their CPU re-walking them.  The first threshold is raised
    for as long as any bulk step runs in the process, then restored: other threads see it too,
    which changes only when cyclic garbage is freed, never what anything computes."""
    with _Collector.lock:
        if _Collector.depth == 0:
            _Collector.saved = gc.get_threshold()
            gc.set_threshold(max(_Collector.saved[0], BULK_GC_THRESHOLD), *_Collector.saved[1:])
        _Collector.depth += 1
    try:
        yield
    finally:
        with _Collector.lock:
            _Collector.depth -= 1
            if _Collector.depth == 0:
                gc.set_threshold(*_Collector.saved)


# A spreadsheet program reads text that starts with one of these as a formula (OWASP "CSV injection"):
# a cell holding someone's text must never become one.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_like(value: Any) -> bool:
    """Whether ``value`` is text a spreadsheet program would take for a formula."""
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


def as_text(cell: T) -> T:
    """An openpyxl cell (or write-only cell) whose text could read as a formula, kept as text:
    stored as a string (openpyxl makes any ``=…`` a live formula) and marked quote-prefixed, so
    the reader sees exactly the text written and editing it in Excel does not turn it into one."""
    if formula_like(getattr(cell, "value", None)):
        cell.data_type = "s"  # type: ignore[attr-defined]
        cell.quotePrefix = True  # type: ignore[attr-defined]
    return cell


def cells_as_text(rows: Iterable[Iterable[Any]]) -> None:
    """:func:`as_text` on every cell of ``rows`` (a worksheet's ``iter_rows()``)."""
    for row in rows:
        for cell in row:
            as_text(cell)


def csv_text(value: Any) -> Any:
    """A value for a CSV file: text that could read as a formula gets a leading single quote
    (OWASP's advice); everything else unchanged."""
    return f"'{value}" if formula_like(value) else value
