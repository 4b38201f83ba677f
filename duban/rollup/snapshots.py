"""The day's snapshot of a roll-up: counts per plan, system and lead department, upserted into
``rollup_snapshots`` (the trend reads them back)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from duban.db import session_scope
from duban.models import RollupSnapshot, table_of, utcnow
from duban.rollup import SNAPSHOT_COUNTS, Rollup
from duban.rollup.compute import compute
from duban.values import chunks
from duban.vocabulary import SnapshotScope


def snapshot_rows(r: Rollup, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The snapshot rows of a roll-up: each plan, and each of its systems and lead departments."""
    now = now or utcnow()
    ids = dict(zip(r.plans["plan"], r.plans["plan_id"], strict=True))
    out = []
    for scope, frame, key in (
        (SnapshotScope.PLAN, r.by_plan, None),
        (SnapshotScope.SYSTEM, r.by_system, "system"),
        (SnapshotScope.DEPARTMENT, r.by_department, "department"),
    ):
        for row in frame.to_dict(orient="records"):
            out.append(
                {
                    "plan_id": int(ids[row["plan"]]),
                    "day": r.as_of,
                    "scope": scope,
                    "key": "" if key is None else str(row[key])[:300],
                    **{c: int(row[c]) for c in SNAPSHOT_COUNTS},
                    "computed_at": now,
                }
            )
    return out


def snapshot(engine: Engine, r: Rollup, *, now: dt.datetime | None = None, wait: float | None = None) -> int:
    """Upsert the day's snapshot rows (plan, day, scope, key); returns rows written.

    Rows of that day and plan that no longer exist (a department that leads nothing any more)
    are removed, so a re-run the same day leaves exactly what a first run would have written.
    ``wait``: seconds to wait for another writer (``duban.db.session_scope``).
    """
    rows = snapshot_rows(r, now)
    table = table_of(RollupSnapshot)
    plan_ids = [int(x) for x in r.plans["plan_id"]]
    with session_scope(engine, wait=wait) as session:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        if rows:
            stmt = insert(table)
            stmt = stmt.on_conflict_do_update(
                index_elements=["plan_id", "day", "scope", "key"],
                set_={c: stmt.excluded[c] for c in (*SNAPSHOT_COUNTS, "computed_at")},
            )
            for chunk in chunks(rows, 2000):
                session.execute(stmt, chunk)
        # drop keys of that day that this run did not write
        keep = {(x["plan_id"], x["scope"], x["key"]) for x in rows}
        stale = [
            i
            for i, p, sc, k in session.execute(
                select(table.c.id, table.c.plan_id, table.c.scope, table.c.key).where(table.c.day == r.as_of, table.c.plan_id.in_(plan_ids))
            )
            if (p, sc, k) not in keep
        ]
        for chunk in chunks(stale, 5000):
            session.execute(table.delete().where(table.c.id.in_(chunk)))
    return len(rows)


def take_snapshot(engine: Engine, *, as_of: dt.date, tz, cal, plan_ids: list[int] | None = None) -> int:
    """Compute over all plans (or ``plan_ids``: a batch of institutions') and store the day's
    snapshot (the daily sweep calls this)."""
    if plan_ids is not None and not plan_ids:
        return 0
    return snapshot(engine, compute(engine, as_of=as_of, tz=tz, cal=cal, plan_ids=plan_ids))
