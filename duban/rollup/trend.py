"""The stored daily snapshots as a trend (``rollup_snapshots``, written by :mod:`duban.rollup.snapshots`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from duban.db import session_scope
from duban.models import RollupSnapshot
from duban.rollup import SNAPSHOT_COUNTS
from duban.rollup.assessment import ratio
from duban.rollup.frames import frame, plans_frame
from duban.vocabulary import SnapshotScope


def snapshot_frame(
    session, plan_ids: list[int], *, scope: str, key: str | None, until: dt.date | None, days: int | None = None
) -> pd.DataFrame:
    s = RollupSnapshot
    q = select(s.plan_id, s.day, s.scope, s.key, *(getattr(s, c) for c in SNAPSHOT_COUNTS)).where(s.plan_id.in_(plan_ids), s.scope == scope)
    if key is not None:
        q = q.where(s.key == key)
    if until is not None:
        q = q.where(s.day <= until)
        if days is not None:
            q = q.where(s.day > until - dt.timedelta(days=days))
    return frame(session.execute(q), ["plan_id", "day", "scope", "key", *SNAPSHOT_COUNTS])


def _trend_frame(snaps: pd.DataFrame, by_key: bool = False) -> pd.DataFrame:
    cols = list(SNAPSHOT_COUNTS)
    keys = ["day", "key"] if by_key else ["day"]
    if snaps.empty:
        out = pd.DataFrame(columns=keys + cols)
    else:
        out = snaps.groupby(keys, sort=True)[cols].sum().reset_index()
        for c in cols:
            out[c] = out[c].astype("int64")
    out["completion_rate"] = ratio(out["done_milestones"], out["milestones"]) if len(out) else pd.Series([], dtype="float64")
    out["on_time_rate"] = ratio(out["on_time_milestones"], out["due_milestones"]) if len(out) else pd.Series([], dtype="float64")
    return out


def trend_with_today(snaps: pd.DataFrame, totals: dict[str, Any], as_of: dt.date) -> pd.DataFrame:
    """Stored daily snapshots up to ``as_of``; ``as_of`` itself from the live numbers (so the trend
    always ends today, whether or not today's snapshot has been written yet)."""
    snaps = snaps[snaps["day"] != as_of] if not snaps.empty else snaps
    out = _trend_frame(snaps)
    today = pd.DataFrame([{"day": as_of, **{c: totals[c] for c in SNAPSHOT_COUNTS}}])
    out = pd.concat([out[["day", *SNAPSHOT_COUNTS]], today], ignore_index=True) if len(out) else today
    for c in SNAPSHOT_COUNTS:
        out[c] = out[c].astype("int64")
    out["completion_rate"] = ratio(out["done_milestones"], out["milestones"])
    out["on_time_rate"] = ratio(out["on_time_milestones"], out["due_milestones"])
    return out.sort_values("day").reset_index(drop=True)


def trend(
    engine: Engine,
    *,
    plan_code: str | None = None,
    scope: str = SnapshotScope.PLAN,
    key: str | None = None,
    until: dt.date | None = None,
    days: int | None = None,
) -> pd.DataFrame:
    """Stored snapshots as a daily series (``day`` + the snapshot counts + rates), summed over the
    selected plans; ``scope`` system/department gives one series per ``key`` unless ``key`` is set."""
    with session_scope(engine, readonly=True) as session:
        plans = plans_frame(session, plan_code)
        snaps = snapshot_frame(session, [int(x) for x in plans["plan_id"]], scope=scope, key=key, until=until, days=days)
    return _trend_frame(snaps, by_key=scope != SnapshotScope.PLAN and key is None)
