"""Walk the example plan day by day through a month and check, per day, who got what.

The plan is imported on Friday 2026-11-20; the sweep runs every day, as the schedule does, and
skips the days that are not working days.  The per-day table is the contract of the default
ladder on the shipped plan: change the rules or the plan and this table says what changed.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from duban.db import session_scope
from duban.links import LinkMaker
from duban.models import Notification, Person
from duban.rules.calendar import WorkCalendar
from duban.sweep.decisions import decide
from duban.sweep.delivery import deliver
from duban.sweep.digests import assemble
from tests.conftest import EXAMPLE_YAML
from tests.factories import import_announced

TZ = ZoneInfo("Asia/Shanghai")
START = dt.date(2026, 11, 23)


class Outbox:
    def __init__(self):
        self.sent = []

    def __call__(self, out):
        self.sent.append(out)


@pytest.fixture(scope="module")
def month():
    """Run the sweep for 31 days on SQLite; return {day: [(recipient, kind, code), ...]}."""
    import tempfile
    from pathlib import Path

    from duban.db import make_engine, upgrade

    folder = Path(tempfile.mkdtemp())
    engine = make_engine(f"sqlite:///{folder / 'duban.db'}")
    upgrade(engine)
    import_announced(engine, EXAMPLE_YAML, now=dt.datetime(2026, 11, 20, 17, 0, tzinfo=TZ))
    cal = WorkCalendar()
    outbox = Outbox()
    days: dict[dt.date, list[tuple[str, str, str]]] = {}
    for offset in range(31):
        day = START + dt.timedelta(days=offset)
        if not cal.is_workday(day):
            days[day] = None
            continue
        now = dt.datetime.combine(day, dt.time(8, 30), TZ)
        decide(engine, today=day, cal=cal, tz=TZ)
        assemble(engine, today=day, links=LinkMaker("https://duban.example.edu.cn", "s" * 40, day), now=now)
        before = len(outbox.sent)
        deliver(engine, outbox, now=now, links=LinkMaker("https://duban.example.edu.cn", "s" * 40, day))
        with session_scope(engine) as s:
            ids = [o.id for o in outbox.sent[before:]]
            rows = s.execute(
                select(Person.name, Notification.kind, Notification.data["code"].as_string())
                .join(Person, Person.id == Notification.recipient_id)
                .where(Notification.digest_id.in_(ids))
            ).all()
        days[day] = sorted((r[0], r[1], r[2]) for r in rows)
    yield days, outbox
    engine.dispose()


def test_no_messages_on_days_off(month):
    days, _ = month
    assert [d.isoformat() for d, items in days.items() if items is None] == [
        "2026-11-28",
        "2026-11-29",
        "2026-12-05",
        "2026-12-06",
        "2026-12-12",
        "2026-12-13",
        "2026-12-19",
        "2026-12-20",
    ]


def test_per_day_counts(month):
    days, outbox = month
    table = {d.isoformat(): dict(sorted(Counter(k for _, k, _ in items).items())) for d, items in days.items() if items is not None}
    assert table == EXPECTED_PER_DAY
    # one digest per recipient per day, never two
    per_day_recipient = Counter((o.run_on, o.recipient) for o in outbox.sent)
    assert max(per_day_recipient.values()) == 1


def test_first_monday_in_detail(month):
    days, _ = month
    monday = days[START]
    # the overdue milestones of the plan, each reminded to its owner once
    overdue = sorted(code for _, kind, code in monday if kind == "overdue")
    assert overdue == ["02.3.1", "03.3.3", "05.1.4", "05.1.5", "05.1.5", "07.2.1", "09.1.3", "12.4.1", "13.1.1"]
    # nobody is asked to acknowledge yet: assigned on Friday, one working day ago
    assert not [x for x in monday if x[1] == "ack"]


def test_acknowledgement_reminders_on_the_third_working_day(month):
    days, _ = month
    wednesday = days[dt.date(2026, 11, 25)]
    acks = [x for x in wednesday if x[1] == "ack"]
    assert len(acks) == 176  # every task of the plan: nobody acknowledged
    friday = days[dt.date(2026, 11, 27)]
    assert Counter(x[1] for x in friday)["escalation"] >= 1  # heads told on the fifth working day


def test_each_message_key_once(month):
    _, outbox = month
    # every ledger item went out in exactly one digest
    assert len(outbox.sent) == len({o.id for o in outbox.sent})


# per working day: how many items of each kind went out (one digest per recipient)
EXPECTED_PER_DAY: dict[str, dict[str, int]] = {
    "2026-11-23": {"due": 10, "escalation": 21, "overdue": 9},
    "2026-11-24": {"due": 3, "escalation": 1, "overdue": 3},
    "2026-11-25": {"ack": 176, "due": 8, "escalation": 2, "report_due": 8},  # 3rd working day: 签收 reminders
    "2026-11-26": {"due": 4, "overdue": 3},
    "2026-11-27": {"due": 7, "escalation": 176, "overdue": 4},  # 5th working day: heads told
    "2026-11-30": {"due": 6, "escalation": 1, "overdue": 2, "report_due": 8},  # monthly reports due today
    "2026-12-01": {"due": 4, "escalation": 9, "overdue": 8},
    "2026-12-02": {"escalation": 2, "overdue": 3},
    "2026-12-03": {"due": 1, "escalation": 5, "overdue": 2},
    "2026-12-04": {"due": 6, "escalation": 5, "overdue": 8, "report_overdue": 8},  # November reports late
    "2026-12-07": {"due": 2, "escalation": 1, "overdue": 3},
    "2026-12-08": {"escalation": 10, "overdue": 2},
    "2026-12-09": {"due": 7, "escalation": 6, "overdue": 8, "report_overdue": 8},
    "2026-12-10": {"due": 7, "escalation": 1, "overdue": 3},
    "2026-12-11": {"escalation": 6, "overdue": 4},
    "2026-12-14": {"due": 5, "escalation": 8, "overdue": 6, "report_overdue": 8},
    "2026-12-15": {"due": 10, "escalation": 3, "overdue": 3},
    "2026-12-16": {"escalation": 3, "overdue": 9},
    "2026-12-17": {"due": 5, "escalation": 3, "overdue": 5, "report_overdue": 8},
    "2026-12-18": {"due": 5, "escalation": 11, "overdue": 2},
    "2026-12-21": {"escalation": 16, "overdue": 12},
    "2026-12-22": {"due": 30, "escalation": 3, "report_overdue": 8},
    "2026-12-23": {"escalation": 5, "overdue": 1},
}
