"""The plan settings of a plan's life in an office, checked for ``definitions.resolve``: the end of the
reform period (实施截止日期), how tasks are announced (下达方式), which 督办通报 the plan issues, each
office member's line (督办条线), and a recurring or ongoing task's own last day (截止日期).

Each function takes what was written and a ``bad(where, message)`` callback; it reports what it
cannot accept (in Chinese, naming what would be) and returns the resolved value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from definitions.deadlines import DeadlineError, parse_deadline
from definitions.problems import Locator
from definitions.schema import BULLETIN_EVERY_WORDS, OfficeMemberIn, PlanIn
from duban.vocabulary import BulletinEvery, Schedule

Bad = Callable[[str, str], None]


def a_date(value: Any, where: str, what: str, bad: Bad) -> dt.date | None:
    """A single date (2028-07-31, 2028年7月底, an Excel date); None when empty or unreadable."""
    if value is None or value == "":
        return None
    try:
        d = parse_deadline(value)
    except DeadlineError as err:
        bad(where, f"{what}：{err}")
        return None
    if d.kind != "date":
        bad(where, f"{what}“{d.text}”不是具体日期：请填写一个日期，如 2028-07-31 或 2028年7月底")
        return None
    return d.due_date


def plan_ends_on(p: PlanIn, loc: Locator, bad: Bad) -> dt.date | None:
    return a_date(p.ends_on, loc.plan("ends_on"), "实施截止日期", bad)


def bulletin_every(p: PlanIn, loc: Locator, bad: Bad) -> BulletinEvery:
    word = str(p.bulletin_every or "").strip()
    if not word:
        return BulletinEvery.WEEK
    found = BULLETIN_EVERY_WORDS.get(word) or BULLETIN_EVERY_WORDS.get(word.lower())
    if found is None:
        bad(loc.plan("bulletin_every"), f"督办通报“{word}”无法识别：请填写“每周”“每月”或“每周和每月”")
        return BulletinEvery.WEEK
    return found


def office_scopes(p: PlanIn, loc: Locator, bad: Bad, *, systems: list[str], departments: set[str]) -> dict[str, dict[str, list[str]]]:
    """Each office member's line, by name: ``{"systems": [...], "departments": [...]}`` (members
    without a line are left out).  Unknown system or department names are problems."""
    out: dict[str, dict[str, list[str]]] = {}
    known = set(systems)
    listed = f"方案中的育人体系有：{'、'.join(systems)}" if systems else "方案中还没有育人体系"
    for i, member in enumerate(p.office):
        if not isinstance(member, OfficeMemberIn):
            continue
        scope: dict[str, list[str]] = {"systems": [], "departments": []}
        for x in member.systems:
            if x in known:
                scope["systems"].append(x)
            else:
                bad(loc.office(i, "systems", member.name), f"督办条线中的育人体系“{x}”不在方案中（{listed}）")
        for x in member.departments:
            if x in departments:
                scope["departments"].append(x)
            else:
                bad(loc.office(i, "departments", member.name), f"督办条线中的部门“{x}”不在部门表中：请填写部门表中的部门名称")
        for x in member.lines:
            if x in known:
                scope["systems"].append(x)
            elif x in departments:
                scope["departments"].append(x)
            else:
                bad(
                    loc.office(i, "lines", member.name),
                    f"督办条线“{x}”既不是方案中的育人体系，也不是部门表中的部门：请填写育人体系或部门的名称（{listed}）",
                )
        scope = {k: list(dict.fromkeys(v)) for k, v in scope.items() if v}
        if scope:
            out[member.name] = scope
    return out


def task_ends_on(t: Any, schedule: Schedule, deadline_text: str, at: Callable[[str], str], bad: Bad) -> dt.date | None:
    """A recurring or ongoing task's last day (``until``); a task with a final date has none."""
    if t.until is None or t.until == "":
        return None
    if schedule == Schedule.ONCE:
        bad(
            at("until"),
            f"截止日期只适用于周期性或长期任务（如每学期、每月、长期坚持）；本任务的完成时限为“{deadline_text}”，无需填写截止日期",
        )
        return None
    return a_date(t.until, at("until"), "截止日期", bad)
