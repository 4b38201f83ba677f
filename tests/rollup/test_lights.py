"""The roll-up's lights (duban/rollup/lights.py) are the rule's (duban.rules.deadlines.colour) for
every kind of task: single deadline or periodic, every mix of step states and due dates around the
day, acknowledged or not, assigned long ago or yesterday, with the plan's rules or the task's own."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pandas as pd

from duban.rollup.lights import colours
from duban.rules.calendar import WorkCalendar
from duban.rules.deadlines import MilestoneView, TaskView, colour
from duban.rules.policy import effective_policy
from duban.vocabulary import Light, MilestoneState, Schedule

AS_OF = dt.date(2026, 11, 23)  # a Monday
CAL = WorkCalendar()
STATES = (MilestoneState.ASSIGNED, MilestoneState.IN_PROGRESS, MilestoneState.SUBMITTED, MilestoneState.DONE)
OFFSETS = (-10, -1, 0, 2, 9, 40)  # days from AS_OF
OWN_RULES = {"remind_before": [15, 1], "ack_within": 10}


def _frames(n: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = random.Random(seed)  # noqa: S311  (a fixed sample, not a secret)
    tasks, steps = [], []
    kinds = [(Schedule.ONCE, None), (Schedule.RECURRING, "month"), (Schedule.ONGOING, "quarter")]
    for i in range(1, n + 1):
        schedule, period = kinds[0] if i % 5 else kinds[i // 5 % 2 + 1]
        assigned = dt.datetime.combine(AS_OF - dt.timedelta(days=rng.choice((1, 3, 30))), dt.time(2))
        tasks.append(
            {
                "task_id": i,
                "plan_id": 1 + i % 2,
                "code": str(i),
                "title": f"任务{i}",
                "owner_id": 1,
                "schedule": str(schedule),
                "period": period,
                "period_month": None,
                "acknowledged": rng.random() < 0.5,
                "archived": i % 17 == 0,
                "assigned_at": assigned,
                "task_policy": OWN_RULES if i % 7 == 0 else None,
            }
        )
        for seq in range(1, rng.choice((0, 1, 2, 3, 4)) + 1):
            due = AS_OF + dt.timedelta(days=rng.choice(OFFSETS))
            state = rng.choice(STATES)
            steps.append((i, i * 10 + seq, seq, f"节点{seq}", due, 1, str(state), schedule == Schedule.ONCE and seq == 4))
    t = pd.DataFrame(tasks)
    m = pd.DataFrame(steps, columns=["task_id", "milestone_id", "seq", "milestone", "due", "due_version", "state", "is_final"])
    plans = pd.DataFrame({"plan_id": [1, 2], "policy": [None, {"remind_before": [3, 0]}]})
    return t, m, plans


def _by_rule(t: pd.DataFrame, m: pd.DataFrame, plans: pd.DataFrame) -> list[str | None]:
    plan_policy = dict(zip(plans["plan_id"], plans["policy"], strict=True))
    out: list[str | None] = []
    for task in t.to_dict(orient="records"):
        rows = m[m["task_id"] == task["task_id"]].sort_values("seq")
        views = tuple(
            MilestoneView(r.milestone_id, r.seq, r.milestone, r.due, r.due_version, r.state, bool(r.is_final)) for r in rows.itertuples()
        )
        view = TaskView(
            id=task["task_id"],
            plan_id=task["plan_id"],
            code=task["code"],
            title=task["title"],
            owner_id=1,
            schedule=task["schedule"],
            period=task["period"],
            assigned_on=task["assigned_at"].date(),
            acknowledged=task["acknowledged"] or any(v.status != MilestoneState.ASSIGNED for v in views),
            milestones=views,
        )
        policy = effective_policy(plan_policy[task["plan_id"]], task["task_policy"])
        out.append(None if task["archived"] else colour(view, policy, CAL, AS_OF))
    return out


def test_every_light_is_the_rules():
    t, m, plans = _frames(600)
    found = colours(t, m, plans, {}, dt.UTC, CAL, AS_OF)
    expected = _by_rule(t, m, plans)
    assert found.tolist() == expected
    # the sample has every light, on both kinds of task
    once = t["schedule"] == Schedule.ONCE
    assert set(found[once]) == {Light.RED, Light.YELLOW, Light.GREEN, None}
    assert set(found[~once]) >= {Light.RED, Light.YELLOW, None}


def test_a_task_without_steps_and_an_archived_task_have_no_light():
    t, m, plans = _frames(1)
    t = pd.concat([t, t.assign(task_id=2, archived=True)], ignore_index=True)
    t["schedule"] = str(Schedule.ONCE)
    found = colours(t, m.iloc[0:0], plans, {}, dt.UTC, CAL, AS_OF)
    assert found.tolist() == [None, None]


def test_nothing_live_gives_an_empty_column():
    t, m, plans = _frames(3)
    found = colours(t.iloc[0:0], m, plans, {}, dt.UTC, CAL, AS_OF)
    assert found.tolist() == []


def test_every_combination_of_two_steps_of_a_single_deadline_task():
    """Two steps: each state × each due offset, both orders: the rule's light every time."""
    rows, steps = [], []
    combos = itertools.product(STATES, OFFSETS, STATES, OFFSETS, (False, True))
    for i, (s1, d1, s2, d2, acked) in enumerate(combos, start=1):
        rows.append(
            {
                "task_id": i,
                "plan_id": 1,
                "code": str(i),
                "title": "任务",
                "owner_id": 1,
                "schedule": str(Schedule.ONCE),
                "period": None,
                "period_month": None,
                "acknowledged": acked,
                "archived": False,
                "assigned_at": dt.datetime(2026, 11, 20, 2),
                "task_policy": None,
            }
        )
        steps.append((i, i * 10 + 1, 1, "第一步", AS_OF + dt.timedelta(days=d1), 1, str(s1), False))
        steps.append((i, i * 10 + 2, 2, "完成", AS_OF + dt.timedelta(days=d2), 1, str(s2), True))
    t = pd.DataFrame(rows)
    m = pd.DataFrame(steps, columns=["task_id", "milestone_id", "seq", "milestone", "due", "due_version", "state", "is_final"])
    plans = pd.DataFrame({"plan_id": [1], "policy": [None]})
    assert colours(t, m, plans, {}, dt.UTC, CAL, AS_OF).tolist() == _by_rule(t, m, plans)
