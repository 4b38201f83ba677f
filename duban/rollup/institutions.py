"""The province's roll-up: one row per institution (school), ranked, with the change of rank since
the previous snapshot.

Made from the per-plan roll-up (:func:`duban.rollup.compute.compute`, over every plan, one pass):
an institution's figures are the sums of its plans' rows of ``by_plan`` (the same counts, lights
and rates, docs/rollup.md), so no figure is computed twice or differently.

**Ranking.**  Institutions are ranked by their 按期完成率 (on time ÷ due, to 0.1 %, as shown):
highest first, equal rates share a rank and the next skips (1, 2, 2, 4), like the 考核 ranking of
departments; an institution with nothing due yet has no rank and is listed last
(:data:`duban.rollup.assessment.NOTHING_DUE`).  The rate is the one part of the 考核 score that
the daily snapshots (``rollup_snapshots``) keep, so the rank then is computed exactly as the rank
now: the previous point is the institution's plans' snapshot rows of the latest snapshot day
before ``as_of`` (or on or before ``since``), summed per institution.  ``change`` is
:func:`duban.rollup.assessment.rank_change`'s: ``↑2``, ``↓1``, ``—``, ``新上榜`` (ranked now, no
rank then), empty when not ranked now or when there is no earlier snapshot at all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, or_, select

from duban.db import session_scope
from duban.models import Institution, Plan, RollupSnapshot
from duban.rollup import COUNT_COLUMNS, SCHEMA, SNAPSHOT_COUNTS, Rollup, records
from duban.rollup.assessment import rank_change, rates, ratio
from duban.rollup.compute import compute
from duban.rollup.frames import frame
from duban.rollup.trend import snapshot_frame
from duban.values import jsonable
from duban.vocabulary import SnapshotScope

RANKED_BY = "按期完成率"
# the columns of the province's table (and its report), in order
COLUMNS = [
    "rank",
    "change",
    "institution_name",
    "plans",
    "tasks",
    "open_tasks",
    "done_tasks",
    "completion_rate",
    "on_time_rate",
    "red",
    "yellow",
    "green",
    "overdue_tasks",
]
_KEYS = ["institution_id", "institution", "institution_name"]


@dataclass
class ProvinceRollup:
    """The province's roll-up: ``institutions`` (one row per institution, in rank order), the
    province's ``totals``, the snapshot day the rank changes compare with (None: no earlier
    snapshot), and the per-plan roll-up it is made from (``rollup``: its trend, its warnings)."""

    as_of: dt.date
    institutions: pd.DataFrame
    totals: dict[str, Any]
    compared_with: dt.date | None
    rollup: Rollup

    def comparison(self) -> str:
        """What the 名次变化 column compares with, as one Chinese sentence."""
        if self.compared_with is None:
            return "名次变化：尚无更早的统计快照，暂无比较。"
        return f"名次变化：与 {self.compared_with.isoformat()} 的统计快照相比。"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``schema: duban.rollup/1``, ``view: institutions``)."""
        return {
            "schema": SCHEMA,
            "view": "institutions",
            "as_of": self.as_of.isoformat(),
            "ranked_by": "on_time_rate",
            "compared_with": self.compared_with.isoformat() if self.compared_with else None,
            "totals": jsonable(self.totals),
            "institutions": records(self.institutions.drop(columns=["institution_id"])),
        }


def province_rollup(engine: Engine, *, as_of: dt.date, tz, cal, since: dt.date | None = None) -> ProvinceRollup:
    """Every institution's figures as of ``as_of``, ranked, with the change of rank since the
    latest snapshot before ``as_of`` (or on or before ``since``)."""
    r = compute(engine, as_of=as_of, tz=tz, cal=cal)
    with session_scope(engine, readonly=True) as session:
        insts = institution_plans(session)
        plan_ids = [int(x) for x in insts["plan_id"].dropna()]
        day, snaps = previous_snapshot(session, plan_ids, before=as_of, since=since)
    table = by_institution(r.by_plan.merge(r.plans[["plan", "plan_id"]], on="plan"), insts)
    previous = None if day is None else ranks(by_institution(snaps, insts[insts["plan_id"].isin(snaps["plan_id"])]))
    table = ranked(table, previous)
    totals: dict[str, Any] = {c: int(table[c].sum()) for c in COUNT_COLUMNS}
    rates(totals)
    totals.update(institutions=len(table), plans=int(table["plans"].sum()), open_tasks=totals["tasks"] - totals["done_tasks"])
    return ProvinceRollup(as_of=as_of, institutions=table, totals=totals, compared_with=day, rollup=r)


def institution_plans(session) -> pd.DataFrame:
    """Each institution (active, or with plans) with each of its plans' ids (NaN: no plan)."""
    rows = session.execute(
        select(Institution.id, Institution.code, Institution.name, Plan.id)
        .outerjoin(Plan, Plan.institution_id == Institution.id)
        .where(or_(Institution.active.is_(True), Plan.id.is_not(None)))
        .order_by(Institution.code, Plan.id)
    ).all()
    return frame(rows, [*_KEYS, "plan_id"])


def previous_snapshot(session, plan_ids: list[int], *, before: dt.date, since: dt.date | None) -> tuple[dt.date | None, pd.DataFrame]:
    """The latest snapshot day before ``before`` (on or before ``since`` when given) of any of the
    plans, and the plans' rows of that day (scope plan)."""
    limit = min(before - dt.timedelta(days=1), since) if since is not None else before - dt.timedelta(days=1)
    s = RollupSnapshot
    day = session.scalar(select(func.max(s.day)).where(s.plan_id.in_(plan_ids), s.scope == SnapshotScope.PLAN, s.day <= limit))
    if day is None:
        return None, pd.DataFrame(columns=["plan_id", *SNAPSHOT_COUNTS])
    return day, snapshot_frame(session, plan_ids, scope=SnapshotScope.PLAN, key=None, until=day, days=1)


def by_institution(per_plan: pd.DataFrame, insts: pd.DataFrame) -> pd.DataFrame:
    """Per-plan counts (``plan_id`` and count columns: ``by_plan``, or snapshot rows) summed per
    institution, with the roll-up's rates; every institution of ``insts`` is a row (zeros when it
    has no plan or no figures)."""
    counts = [c for c in COUNT_COLUMNS if c in per_plan.columns]
    plans = insts.dropna(subset=["plan_id"]).astype({"plan_id": "int64"})
    joined = plans.merge(per_plan[["plan_id", *counts]], on="plan_id", how="inner")
    summed = joined.groupby("institution_id", sort=False)[counts].sum()
    summed["plans"] = plans.groupby("institution_id").size()
    out = insts[_KEYS].drop_duplicates("institution_id").merge(summed, left_on="institution_id", right_index=True, how="left")
    for c in [*counts, "plans"]:
        out[c] = out[c].fillna(0).astype("int64")
    out["open_tasks"] = out["tasks"] - out["done_tasks"]
    if "on_time_baseline_milestones" in out:
        rates(out)
    else:  # snapshot rows: the rate they keep the inputs of
        out["on_time_rate"] = ratio(out["on_time_milestones"], out["due_milestones"])
    return out.reset_index(drop=True)


def ranks(table: pd.DataFrame) -> dict[str, int]:
    """Each ranked institution's (code's) rank: by on-time rate to 0.1 %, ties share (1, 2, 2, 4);
    nothing due, no rank."""
    due = table[table["due_milestones"] > 0]
    shown = (due["on_time_rate"] * 1000).round()
    by_rank = shown.rank(method="min", ascending=False).astype("int64")
    return dict(zip(due["institution"].tolist(), by_rank.tolist(), strict=True))


def ranked(table: pd.DataFrame, previous: dict[str, int] | None) -> pd.DataFrame:
    """``table`` with ``rank`` (None: nothing due) and ``change`` since ``previous`` (None:
    nothing to compare with), in rank order (ties and the unranked by code)."""
    now = ranks(table)
    table = table.copy()
    table["rank"] = pd.Series([now.get(c) for c in table["institution"].tolist()], index=table.index, dtype=object)
    table["change"] = [
        rank_change((previous or {}).get(c), now.get(c), compared=previous is not None) for c in table["institution"].tolist()
    ]
    order = table.assign(_unranked=table["rank"].isna(), _rank=table["rank"].fillna(0).astype("int64"))
    order = order.sort_values(["_unranked", "_rank", "institution"], kind="stable")
    return order.drop(columns=["_unranked", "_rank"]).reset_index(drop=True)
