"""The roll-ups the dashboard shows, kept for a short while: a province leader opens the province's
page and drills in again and again, and at a province's size (150 schools, 100,000 milestones) a
roll-up takes a second or more to compute.

A roll-up is kept per scope (which view, the day, the plan, the viewer's plans) together with the
store's *state* when it was computed, and is used again only while both hold:

- the state is unchanged.  The state is one cheap query (each part is an index lookup or a small
  scan): the last row of every journal a roll-up depends on — ``events`` (every change a person
  or the office makes to a task, a step or a request is recorded there: 签收, 反馈, 提交办结,
  审核, 延期, office edits, reviews, imports), ``notifications`` (the sweep's 督办 ledger),
  ``requests``, ``bulletins`` (the ranks compared with), ``import_runs``, ``institutions`` —,
  the latest ``rollup_snapshots.computed_at`` (the trend), the latest ``updated_at`` of plans and
  tasks, and counts that move when a step or a task is changed in place even without a journal
  row (steps submitted, done, moved; tasks acknowledged, archived): 20–50 ms at a province's size;
- it is younger than :data:`TTL_SECONDS` (a bound for a change made around duban, e.g. by hand
  in the database).

At most :data:`MAX_ENTRIES` roll-ups are kept (the least recently used goes first), so memory stays
bounded whatever the viewers ask for.  The kept objects are shared between requests: the pages only
read them (every view filters or sorts into a new frame).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Hashable
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy import Engine, func, select

from duban.db import session_scope
from duban.models import Bulletin, Event, ImportRun, Institution, Milestone, Notification, Plan, RollupSnapshot, Task
from duban.models import Request as TaskRequest
from duban.rollup import Rollup
from duban.rollup.compute import compute
from duban.rollup.institutions import ProvinceRollup, province_rollup

MAX_ENTRIES = 8
TTL_SECONDS = 60.0
T = TypeVar("T")


def store_state(engine: Engine) -> tuple[Any, ...]:
    """What a roll-up depends on having changed shows here (module docstring): one query."""
    parts = (
        func.max(Event.id),
        func.max(Notification.id),
        func.max(TaskRequest.id),
        func.max(Bulletin.id),
        func.max(ImportRun.id),
        func.max(Institution.id),
        func.max(RollupSnapshot.computed_at),
        func.max(Plan.updated_at),
        func.max(Task.updated_at),
        # steps and tasks changed in place, journal or not: submitted, done, moved, acknowledged, archived
        func.count(Milestone.submitted_at),
        func.count(Milestone.completed_at),
        func.sum(Milestone.due_version),
        func.count(Milestone.id),
        func.count(Task.acknowledged_at),
        func.count(Task.archived_at),
    )
    with session_scope(engine, readonly=True) as session:
        row = session.execute(select(*(select(p).scalar_subquery() for p in parts))).one()
    return tuple(row)


class RollupCache:
    """Roll-ups by scope, each with the store's state it was computed in (module docstring)."""

    def __init__(self, *, max_entries: int = MAX_ENTRIES, ttl_seconds: float = TTL_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.max_entries, self.ttl_seconds, self.clock = max_entries, ttl_seconds, clock
        self._entries: OrderedDict[Hashable, tuple[tuple[Any, ...], float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, engine: Engine, key: Hashable, make: Callable[[], T]) -> T:
        """The kept value of ``key`` if the store has not changed since, else ``make()`` (kept)."""
        state = store_state(engine)
        now = self.clock()
        with self._lock:
            found = self._entries.get(key)
            if found is not None and found[0] == state and now - found[1] < self.ttl_seconds:
                self._entries.move_to_end(key)
                return found[2]
        value = make()
        with self._lock:
            self._entries[key] = (state, now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)


def of(request: Request) -> RollupCache:
    """The app's cache (made with the app, see :func:`duban.web.app.create_app`)."""
    return request.app.state.rollups


def rollup(cache: RollupCache, rt, *, as_of: dt.date, plan_code: str | None, plan_ids: Collection[int] | None) -> Rollup:
    """:func:`duban.rollup.compute.compute` for this scope, kept."""
    scope = None if plan_ids is None else frozenset(plan_ids)
    return cache.get(
        rt.engine,
        ("plans", as_of, plan_code, scope),
        lambda: compute(rt.engine, as_of=as_of, plan_code=plan_code, tz=rt.tz, cal=rt.calendar, plan_ids=plan_ids),
    )


def province(cache: RollupCache, rt, *, as_of: dt.date) -> ProvinceRollup:
    """:func:`duban.rollup.institutions.province_rollup` of the day, kept."""
    return cache.get(rt.engine, ("province", as_of), lambda: province_rollup(rt.engine, as_of=as_of, tz=rt.tz, cal=rt.calendar))
