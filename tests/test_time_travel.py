"""Walk the example plan as an office would use it, from the announcement through two months.

The plan is imported and announced (任务下达) on Tuesday 2026-12-01. The sweep runs every day and
skips days off. Most owners acknowledge on 12-03; the two slow owners never do. On 12-10 two
tasks are finished (their final step done, an earlier step still open). The contract, per day:
nobody gets more than one digest; nothing but the 任务下达 notices on announcement day; 签收
reminders and their escalations only for the slow owners; nothing about finished tasks; the
office's lines respected at the last level; and, past the plan's end, nothing at all.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from duban.announce import announce
from duban.db import make_engine, session_scope, upgrade
from duban.links import LinkMaker
from duban.models import Milestone, Notification, Person, Project, System, Task
from duban.plans.importer import import_plan
from duban.rules.calendar import WorkCalendar
from duban.status import collect_status
from duban.sweep.decisions import decide, preview
from duban.sweep.delivery import deliver
from duban.sweep.digests import assemble
from duban.vocabulary import MessageKind, MilestoneState, Schedule
from tests.conftest import EXAMPLE_YAML

TZ = ZoneInfo("Asia/Shanghai")
START = dt.date(2026, 12, 1)
DAYS = 62  # 12-01 .. 2027-01-31
SLOW = ("图书馆副馆长", "财务处副处长")  # the owners who never acknowledge (one task each)
FINISHED_ON = dt.date(2026, 12, 10)
FINISHED = ("13.1.1", "05.1.5")
TEACHING_LINE = ("课程育人", "实践育人", "科研育人")  # 督办员（教学线）'s systems in the example plan


class Outbox:
    def __init__(self):
        self.sent = []

    def __call__(self, out):
        self.sent.append(out)


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), TZ)


def _acknowledge_all_but_slow(engine, day: dt.date) -> None:
    with session_scope(engine) as s:
        slow = s.scalars(select(Person.id).where(Person.name.in_(SLOW))).all()
        s.execute(update(Task).where(Task.owner_id.not_in(slow)).values(acknowledged_at=_at(day, 9)))


def _finish(engine, day: dt.date) -> None:
    """The final step of each FINISHED task approved; its earlier steps left open."""
    with session_scope(engine) as s:
        ids = s.scalars(select(Task.id).where(Task.code.in_(FINISHED))).all()
        s.execute(
            update(Milestone)
            .where(Milestone.task_id.in_(ids), Milestone.is_final.is_(True))
            .values(status=MilestoneState.DONE, completed_at=_at(day, 11))
        )


def _sweep(engine, cal, day: dt.date, outbox: Outbox, now: dt.datetime) -> list[tuple[str, str, str, int]]:
    links = LinkMaker("https://duban.example.edu.cn", "s" * 40, day)
    decide(engine, today=day, cal=cal, tz=TZ)
    assemble(engine, today=day, links=links, now=now)
    before = len(outbox.sent)
    deliver(engine, outbox, now=now, links=links)
    ids = [o.id for o in outbox.sent[before:]]
    with session_scope(engine) as s:
        rows = s.execute(
            select(Person.name, Notification.kind, Notification.data["code"].as_string(), Notification.level)
            .join(Person, Person.id == Notification.recipient_id)
            .where(Notification.digest_id.in_(ids))
        ).all()
    return sorted((r[0], r[1], r[2], r[3]) for r in rows)


@pytest.fixture(scope="module")
def walk():
    """Two months on SQLite: {day: [(recipient, kind, code, level), ...]} (None on days off)."""
    folder = Path(tempfile.mkdtemp())
    engine = make_engine(f"sqlite:///{folder / 'duban.db'}")
    upgrade(engine)
    cal = WorkCalendar()
    import_plan(engine, EXAMPLE_YAML, now=_at(START, 9))
    outbox = Outbox()
    days: dict[dt.date, list | None] = {}
    for offset in range(DAYS):
        day = START + dt.timedelta(days=offset)
        if not cal.is_workday(day):
            days[day] = None
            continue
        if day == START:
            announce(engine, today=day, now=_at(day, 10), actor="领导小组办公室主任", cal=cal)
        if day == dt.date(2026, 12, 3):
            _acknowledge_all_but_slow(engine, day)
        if day == FINISHED_ON:
            _finish(engine, day)
        days[day] = _sweep(engine, cal, day, outbox, _at(day, 10, 30) if day == START else _at(day, 8, 30))
    yield engine, cal, days, outbox
    engine.dispose()


def _items(days, kind=None):
    return [(d, *x) for d, items in days.items() if items for x in items if kind is None or x[1] == kind]


def test_announcement_day_is_the_notices_only(walk):
    engine, _, days, outbox = walk
    first = days[START]
    assert Counter(x[1] for x in first) == {MessageKind.ASSIGNMENT: 176}
    with session_scope(engine) as s:
        owners = s.scalar(select(func.count(func.distinct(Task.owner_id))))
    assert len([o for o in outbox.sent if o.run_on == START]) == owners  # one notice per owner, all their tasks in it


def test_nobody_gets_two_digests_a_day(walk):
    _, _, _, outbox = walk
    per_day = Counter((o.run_on, o.recipient) for o in outbox.sent)
    assert max(per_day.values()) == 1


def test_acknowledgement_reminders_only_for_the_slow_owners(walk):
    _, _, days, _ = walk
    acks = _items(days, MessageKind.ACK)
    assert sorted((d.isoformat(), who) for d, who, *_ in acks) == [("2026-12-04", "图书馆副馆长"), ("2026-12-04", "财务处副处长")]
    ack_escalations = [
        (d.isoformat(), who) for d, who, kind, code, level in _items(days, MessageKind.ESCALATION) if d == dt.date(2026, 12, 8)
    ]
    assert ack_escalations and all(who in ("图书馆馆长", "财务处处长") for _, who in ack_escalations)


def test_nothing_about_finished_tasks_after_they_are_done(walk):
    _, _, days, _ = walk
    late = [(d.isoformat(), who, kind, code) for d, who, kind, code, _ in _items(days) if code in FINISHED and d >= FINISHED_ON]
    assert late == []


def test_nothing_climbs_before_the_grace_ends(walk):
    _, _, days, _ = walk
    before = [(d.isoformat(), who, code) for d, who, kind, code, level in _items(days) if d <= dt.date(2026, 12, 8) and level > 0]
    # only the slow owners' 签收 escalation on the fifth working day
    assert all(d == "2026-12-08" for d, _, _ in before)
    assert {code for _, _, code in before} <= slow_codes(walk[0])


def slow_codes(engine) -> set[str]:
    with session_scope(engine) as s:
        return set(s.scalars(select(Task.code).join(Person, Person.id == Task.owner_id).where(Person.name.in_(SLOW))))


def test_the_office_hears_by_line(walk):
    engine, _, days, _ = walk
    with session_scope(engine) as s:
        system_of = dict(s.execute(select(Task.code, System.name).join(Project, Project.id == Task.project_id).join(System)).all())
    l3 = [(who, system_of[code]) for _, who, kind, code, level in _items(days, MessageKind.ESCALATION) if level == 3]
    assert l3, "two months in, the office hears of the items late since before the announcement"
    assert all(system in TEACHING_LINE for who, system in l3 if who == "督办员（教学线）")
    assert all(system not in TEACHING_LINE for who, system in l3 if who != "督办员（教学线）")


def test_per_day_counts(walk):
    _, _, days, _ = walk
    table = {d.isoformat(): dict(sorted(Counter(x[1] for x in items).items())) for d, items in days.items() if items}
    assert table == EXPECTED_PER_DAY


def test_items_per_person_per_day_stay_bounded(walk):
    _, _, days, _ = walk
    busiest = max(Counter(who for who, *_ in items).most_common(1)[0][1] for d, items in days.items() if items and d > START)
    assert busiest == BUSIEST


def test_the_supervised_mark(walk):
    engine, _, _, _ = walk
    with session_scope(engine) as s:
        data = collect_status(s, today=START + dt.timedelta(days=DAYS - 1))
    marked = data["by_plan"][0]["supervised"]
    assert len(marked) == 48 and "02.3.1" in marked and "12.4.1" in marked
    assert not set(marked) & set(FINISHED)


@pytest.mark.parametrize("day", ["2028-08-01", "2028-09-15", "2029-03-01"])
def test_nothing_after_the_plan_ends(walk, day):
    engine, cal, _, _ = walk
    with session_scope(engine) as s:  # every dated task finished by the end of the plan
        once = s.scalars(select(Task.id).where(Task.schedule == Schedule.ONCE)).all()
        s.execute(update(Milestone).where(Milestone.task_id.in_(once)).values(status=MilestoneState.DONE))
    assert preview(engine, today=dt.date.fromisoformat(day), cal=cal, tz=TZ) == []


# per working day: how many items of each kind went out. The contract of the default ladder on the
# shipped plan: change the rules or the plan and this table says what changed. Before issue 14 the
# third working day after import sent 176 签收 reminders and the fifth 176 escalations.
EXPECTED_PER_DAY: dict[str, dict[str, int]] = {
    "2026-12-01": {"assignment": 176},
    "2026-12-02": {"due": 3},
    "2026-12-03": {"due": 1},
    "2026-12-04": {"ack": 2, "due": 6},
    "2026-12-07": {"due": 2},
    "2026-12-08": {"escalation": 2},
    "2026-12-09": {"due": 7, "overdue": 20},
    "2026-12-10": {"due": 7},
    "2026-12-11": {"escalation": 16, "overdue": 2},
    "2026-12-14": {"due": 5, "overdue": 16},
    "2026-12-15": {"due": 10, "escalation": 2},
    "2026-12-16": {"overdue": 7},
    "2026-12-17": {"due": 5, "escalation": 16, "overdue": 16},
    "2026-12-18": {"due": 5, "escalation": 5},
    "2026-12-21": {"escalation": 2, "overdue": 12},
    "2026-12-22": {"due": 30, "overdue": 16},
    "2026-12-23": {"escalation": 5},
    "2026-12-24": {"escalation": 5, "overdue": 12},
    "2026-12-25": {"overdue": 16},
    "2026-12-28": {"due": 30, "report_due": 17},
    "2026-12-29": {"escalation": 20, "overdue": 12},
    "2026-12-30": {"due": 30},
    "2026-12-31": {"due": 30, "escalation": 2, "report_due": 17},
    "2027-01-04": {"overdue": 40},
    "2027-01-06": {"escalation": 35},
    "2027-01-07": {"overdue": 35, "report_overdue": 17},
    "2027-01-11": {"escalation": 22},
    "2027-01-12": {"escalation": 30, "overdue": 30, "report_due": 11, "report_overdue": 17},
    "2027-01-13": {"escalation": 38, "overdue": 16},
    "2027-01-15": {"escalation": 22, "overdue": 32, "report_due": 11, "report_overdue": 17},
    "2027-01-20": {"due": 17, "escalation": 11, "overdue": 35, "report_overdue": 17},
    "2027-01-21": {"report_overdue": 11},
    "2027-01-22": {"escalation": 30},
    "2027-01-25": {"escalation": 22, "overdue": 5, "report_overdue": 17},
    "2027-01-26": {"due": 17, "report_due": 8, "report_overdue": 11},
    "2027-01-27": {"escalation": 54, "overdue": 16},
    "2027-01-28": {"due": 17},
    "2027-01-29": {"due": 17, "escalation": 16, "overdue": 2, "report_due": 8, "report_overdue": 11},
}
# the most items one person received on one day after the announcement (before issue 14: 48)
BUSIEST = 20
