"""The ledger (``notifications``) as the sweep writes it: insert-or-skip per dialect, known keys.

Also the two small helpers every room of the sweep uses (``chunks``, ``local_date``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from duban.db import JSON_TEXT, executemany
from duban.models import Notification, table_of
from duban.values import chunks


def insert_ignore(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert ledger rows, skipping keys already there (two sweeps at once included); the number
    of rows inserted.  Each row gives every column of ``_LEDGER_COLUMNS`` (a missing one is NULL).

    One statement per chunk: PostgreSQL the values as arrays (``unnest``), SQLite one
    ``executemany`` of ``INSERT … ON CONFLICT DO NOTHING`` whose row count is the rows inserted,
    the values converted column by column with the columns' own bind processors (the ORM bulk
    path splits rows into many small batches by which columns are None and merges their results
    quadratically; Core's per-row parameter processing was most of a province sweep's insert).
    """
    if not rows:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        return _insert_ignore_postgresql(session, rows)
    return _insert_ignore_sqlite(session, rows)


_LEDGER_COLUMNS = (
    ("key", "text"),
    ("plan_id", "int"),
    ("task_id", "int"),
    ("milestone_id", "int"),
    ("recipient_id", "int"),
    ("kind", "text"),
    ("level", "int"),
    ("due_date", "date"),
    ("days", "int"),
    ("decided_on", "date"),
    ("created_at", "timestamptz"),
    ("status", "text"),
    ("data", "json"),
    ("not_before", "timestamptz"),
)
# built from the constant column list above, never from input (the values are bound parameters)
_LEDGER_UNNEST = text(
    f"INSERT INTO notifications ({', '.join(c for c, _ in _LEDGER_COLUMNS)}) "  # noqa: S608  constant columns
    f"SELECT * FROM unnest({', '.join(f'CAST(:{c} AS {t}[])' for c, t in _LEDGER_COLUMNS)}) "
    "ON CONFLICT (key) DO NOTHING RETURNING id"
)


def _insert_ignore_postgresql(session: Session, rows: list[dict[str, Any]]) -> int:
    """PostgreSQL: one statement per 20,000 rows, the values as arrays (``unnest``): psycopg
    otherwise spends most of a province sweep rewriting 1,000-row multi-VALUES statements."""
    inserted = 0
    for chunk in chunks(rows, 20000):
        params = {c: [r.get(c) for r in chunk] for c, _ in _LEDGER_COLUMNS if c != "data"}
        params["data"] = [JSON_TEXT(r["data"]) for r in chunk]
        inserted += len(session.execute(_LEDGER_UNNEST, params).all())
    return inserted


_LEDGER_NAMES = tuple(c for c, _ in _LEDGER_COLUMNS)
# built from the constant column list above, never from input (the values are bound parameters)
_LEDGER_INSERT = (
    f"INSERT INTO notifications ({', '.join(_LEDGER_NAMES)}) "  # noqa: S608  constant columns
    f"VALUES ({', '.join('?' for _ in _LEDGER_NAMES)}) ON CONFLICT (key) DO NOTHING"
)


def _insert_ignore_sqlite(session: Session, rows: list[dict[str, Any]]) -> int:
    """SQLite: one ``executemany`` per 5,000 rows (``duban.db.executemany``)."""
    table = table_of(Notification)
    return sum(executemany(session, table, _LEDGER_INSERT, _LEDGER_NAMES, chunk) for chunk in chunks(rows, 5000))


def existing_keys(session: Session, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunks(keys, 5000):
        found.update(session.scalars(select(Notification.key).where(Notification.key.in_(chunk))))
    return found
