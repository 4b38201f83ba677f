"""The province's roll-up by institution (duban/rollup/institutions.py) against hand-computed
figures on four institutions with a known history (tests/rollup/province_schools.py), and its
ranking's change against two stored snapshots."""

from __future__ import annotations

import pytest

from duban.rollup.institutions import province_rollup
from tests.factories import TZ
from tests.rollup.province_schools import AS_OF, CAL, FIRST_SNAPSHOT, build_schools

FIGURES = ["institution", "institution_name", "plans", "tasks", "done_tasks", "completion_rate", "on_time_rate"]
LIGHTS = ["institution", "red", "yellow", "green", "overdue_tasks", "due_milestones", "on_time_milestones"]


@pytest.fixture
def schools(engine, tmp_path):
    build_schools(engine, tmp_path)
    return engine


def rows(frame, columns) -> list[tuple]:
    return [tuple(None if v != v else v for v in r) for r in frame[columns].itertuples(index=False, name=None)]


def test_each_institution_sums_its_plans_and_is_ranked_by_its_on_time_rate(schools):
    p = province_rollup(schools, as_of=AS_OF, tz=TZ, cal=CAL)
    # a: a-1 has 3 of 7 steps done (2 on time), 5 due; a-2 none done, 5 due → 2 on time of 10 due
    assert rows(p.institutions, FIGURES) == [
        ("b", "乙学院", 1, 5, 3, 5 / 7, 1.0),
        ("a", "甲大学", 2, 10, 2, 3 / 14, 0.2),
        ("c", "丙学院", 1, 1, 0, 0.0, 0.0),
        ("d", "丁学院", 0, 0, 0, None, None),
    ]
    assert rows(p.institutions, LIGHTS) == [
        ("b", 0, 1, 1, 0, 5, 5),
        ("a", 6, 2, 0, 6, 10, 2),
        ("c", 1, 0, 0, 1, 1, 0),
        ("d", 0, 0, 0, 0, 0, 0),
    ]
    # d has nothing due: no rank, listed last; c is ranked now and had nothing due on 11-16
    assert rows(p.institutions, ["institution", "rank", "change"]) == [("b", 1, "↑1"), ("a", 2, "↓1"), ("c", 3, "新上榜"), ("d", None, "")]
    assert p.compared_with.isoformat() == "2026-11-16"
    assert p.comparison() == "名次变化：与 2026-11-16 的统计快照相比。"
    t = p.totals
    assert (t["institutions"], t["plans"], t["tasks"], t["open_tasks"], t["red"], t["overdue_tasks"]) == (4, 4, 16, 11, 7, 7)
    assert (t["due_milestones"], t["on_time_milestones"], t["on_time_rate"]) == (16, 7, 7 / 16)


def test_the_figures_are_the_per_plan_roll_ups_own(schools):
    p = province_rollup(schools, as_of=AS_OF, tz=TZ, cal=CAL)
    by_plan = p.rollup.by_plan.set_index("plan")
    a = p.institutions.set_index("institution").loc["a"]
    for column in ("tasks", "done_milestones", "due_milestones", "red", "yellow", "overdue_tasks", "late_days"):
        assert a[column] == by_plan.loc["a-1", column] + by_plan.loc["a-2", column], column


def test_the_change_since_an_earlier_snapshot_and_with_none(schools):
    # on 11-09 nothing was done: a and b both had 0 % and shared rank 1; c had nothing due
    since = province_rollup(schools, as_of=AS_OF, tz=TZ, cal=CAL, since=FIRST_SNAPSHOT)
    assert rows(since.institutions, ["institution", "rank", "change"]) == [
        ("b", 1, "—"),
        ("a", 2, "↓1"),
        ("c", 3, "新上榜"),
        ("d", None, ""),
    ]
    assert since.compared_with == FIRST_SNAPSHOT
    # looked at on the first snapshot's day (statuses as they are now): no earlier snapshot, no change
    first = province_rollup(schools, as_of=FIRST_SNAPSHOT, tz=TZ, cal=CAL)
    assert first.compared_with is None and first.comparison() == "名次变化：尚无更早的统计快照，暂无比较。"
    assert rows(first.institutions, ["institution", "rank", "change"]) == [("b", 1, ""), ("a", 2, ""), ("c", None, ""), ("d", None, "")]


def test_json_is_the_same_table(schools):
    data = province_rollup(schools, as_of=AS_OF, tz=TZ, cal=CAL).to_dict()
    assert (data["view"], data["as_of"], data["compared_with"], data["ranked_by"]) == (
        "institutions",
        "2026-11-23",
        "2026-11-16",
        "on_time_rate",
    )
    assert [(x["institution"], x["rank"], x["change"], x["on_time_rate"]) for x in data["institutions"]] == [
        ("b", 1, "↑1", 1.0),
        ("a", 2, "↓1", 0.2),
        ("c", 3, "新上榜", 0.0),
        ("d", None, "", None),
    ]
