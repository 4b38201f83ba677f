"""The roll-ups the dashboard keeps (duban/web/rollup_cache.py): a second look at an unchanged store
is not computed again; any change a roll-up shows (a step done, a 督办 in the ledger, a task
acknowledged), the next day, or the time limit makes it computed afresh; at most a few are kept.
On the four schools of tests/rollup/province_schools.py, looked at on Monday 2026-11-23."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from duban.db import session_scope
from duban.models import Event, Notification, Person, Plan, Task
from duban.vocabulary import EventKind, LedgerStatus, MessageKind
from duban.web.rollup_cache import RollupCache, province, rollup
from tests.rollup.province_schools import AS_OF, CAL, at, build_schools, finish
from tests.web.test_dashboard import login
from tests.web.test_dashboard_province import table_rows, web  # noqa: F401  (the province's web fixture)


class Rt:
    """What the cache needs of a runtime: the store, the time zone and the calendar."""

    def __init__(self, engine) -> None:
        from tests.factories import TZ

        self.engine, self.tz, self.calendar = engine, TZ, CAL


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def schools(engine, tmp_path):
    build_schools(engine, tmp_path)
    return Rt(engine)


def test_an_unchanged_store_is_not_computed_again(schools):
    cache = RollupCache()
    first = province(cache, schools, as_of=AS_OF)
    again = province(cache, schools, as_of=AS_OF)
    assert again is first
    assert first.institutions["institution"].tolist() == ["b", "a", "c", "d"]


def test_a_step_done_is_shown_at_once(schools):
    cache = RollupCache()
    before = province(cache, schools, as_of=AS_OF)
    assert before.institutions.set_index("institution").loc["c", "done_milestones"] == 0
    finish(schools.engine, "c-1", "4", 1, "2026-11-20")  # in place, with no journal row
    after = province(cache, schools, as_of=AS_OF)
    assert after is not before
    assert after.institutions.set_index("institution").loc["c", "done_milestones"] == 1


def test_a_journal_row_an_escalation_or_an_acknowledgement_is_a_change(schools):
    cache = RollupCache()
    engine = schools.engine
    with session_scope(engine, readonly=True) as s:
        plan_id = s.scalar(select(Plan.id).where(Plan.code == "a-1"))
        task_id = s.scalar(select(Task.id).where(Task.plan_id == plan_id, Task.code == "1"))
        person_id = s.scalar(select(Person.id).where(Person.plan_id == plan_id).limit(1))
    report = {"text": "进展顺利"}
    changes = [
        lambda s: s.add(
            Event(
                plan_id=plan_id,
                task_id=task_id,
                at=at("2026-11-21"),
                actor="测试",
                channel="web",
                kind=EventKind.PROGRESS_REPORTED,
                data=report,
            )
        ),
        lambda s: s.add(
            Notification(
                key="escalation:test",
                plan_id=plan_id,
                task_id=task_id,
                kind=MessageKind.ESCALATION,
                recipient_id=person_id,
                level=1,
                decided_on=AS_OF,
                status=LedgerStatus.PENDING,
                data={},
            )
        ),
        lambda s: s.execute(update(Task).where(Task.id == task_id).values(acknowledged_at=None)),
    ]
    seen = rollup(cache, schools, as_of=AS_OF, plan_code=None, plan_ids=None)
    for change in changes:
        with session_scope(engine) as s:
            change(s)
        fresh = rollup(cache, schools, as_of=AS_OF, plan_code=None, plan_ids=None)
        assert fresh is not seen
        seen = fresh
    assert seen.tasks.set_index(["plan", "code"]).loc[("a-1", "1"), "latest_progress"] == "进展顺利"


def test_the_next_day_another_scope_and_the_time_limit_compute_afresh(schools):
    clock = Clock()
    cache = RollupCache(ttl_seconds=60, clock=clock)
    first = rollup(cache, schools, as_of=AS_OF, plan_code=None, plan_ids=None)
    assert rollup(cache, schools, as_of=AS_OF, plan_code="a-1", plan_ids=None) is not first
    assert rollup(cache, schools, as_of=AS_OF.replace(day=24), plan_code=None, plan_ids=None) is not first
    one_school = rollup(cache, schools, as_of=AS_OF, plan_code=None, plan_ids=frozenset({1}))
    assert list(one_school.by_plan["plan"]) != list(first.by_plan["plan"])
    clock.now += 59
    assert rollup(cache, schools, as_of=AS_OF, plan_code=None, plan_ids=None) is first
    clock.now += 2
    assert rollup(cache, schools, as_of=AS_OF, plan_code=None, plan_ids=None) is not first


def test_at_most_a_few_are_kept(schools):
    cache = RollupCache(max_entries=2)
    a = rollup(cache, schools, as_of=AS_OF, plan_code="a-1", plan_ids=None)
    rollup(cache, schools, as_of=AS_OF, plan_code="a-2", plan_ids=None)
    rollup(cache, schools, as_of=AS_OF, plan_code="b-1", plan_ids=None)
    assert len(cache) == 2
    assert rollup(cache, schools, as_of=AS_OF, plan_code="a-1", plan_ids=None) is not a  # the oldest went first


def test_the_province_page_shows_a_change_made_between_two_looks(web, engine):  # noqa: F811
    login(web, "province")
    row = {r["学校（单位）"]: r for r in table_rows(web.get("/dashboard/province").text)}
    assert (row["丙学院"]["节点完成率"], row["丙学院"]["逾期任务"]) == ("0.0%", "1")
    again = {r["学校（单位）"]: r for r in table_rows(web.get("/dashboard/province").text)}
    assert again == row
    finish(engine, "c-1", "4", 1, "2026-11-20")
    after = {r["学校（单位）"]: r for r in table_rows(web.get("/dashboard/province").text)}
    assert (after["丙学院"]["节点完成率"], after["丙学院"]["逾期任务"]) == ("100.0%", "0")
