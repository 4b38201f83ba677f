"""duban.mine.acknowledge_many at the store: the person's own unsigned tasks are signed through the
single 签收 (one event and one used 签收 link each); a task signed before, another person's or an
archived one is reported, and nothing of it is written."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from duban import mine
from duban.action_common import Origin
from duban.db import session_scope
from duban.links import LinkMaker
from duban.models import Event, Link, Person, Task
from duban.person_rows import same_person_rows
from duban.vocabulary import EventKind, LinkAction
from tests.conftest import PINNED, PINNED_DAY
from tests.web.mine_plan import OWNER, import_mine
from tests.web_helpers import SECRET


def test_acknowledge_many_signs_own_and_reports_the_rest(engine, tmp_path):
    import_mine(engine, tmp_path)
    with session_scope(engine) as s:
        ids = dict(s.execute(select(Task.code, Task.id)).all())
        s.execute(update(Task).where(Task.id == ids["12"]).values(archived_at=PINNED))
        rows = same_person_rows(s, s.scalar(select(Person).where(Person.name == OWNER)))
    maker = LinkMaker("http://testserver", SECRET, PINNED_DAY)
    chosen = [ids[c] for c in ("5", "1", "9", "2", "12", "5")] + [999_999]
    with session_scope(engine) as s:
        done = mine.acknowledge_many(s, rows, chosen, Origin(ip="10.0.0.8", channel="link"), maker=maker, now=PINNED)
    assert done.signed == [("5", "修订人才培养方案"), ("1", "集体备课")]
    assert done.before == [("9", "教学督导工作总结")]
    assert [(code, why) for code, _, why in done.refused] == [
        ("2", "该任务不由您负责或已归档"),
        ("12", "该任务不由您负责或已归档"),
        ("", "该任务不由您负责或已归档"),
    ]
    with session_scope(engine) as s:
        signed = {c for c, at in s.execute(select(Task.code, Task.acknowledged_at)) if at is not None}
        events = s.execute(
            select(Event.task_id, Event.channel, Event.data, Link.action, Link.used_at)
            .join(Link, Link.id == Event.data["link"].as_integer())
            .where(Event.kind == EventKind.ACKNOWLEDGED)
        ).all()
    assert signed == {"5", "1", "9", "11"}
    assert sorted(e.task_id for e in events) == sorted([ids["5"], ids["1"]])
    assert {(e.channel, e.data["ip"], e.action) for e in events} == {("link", "10.0.0.8", LinkAction.ACK)}
    assert all(e.used_at is not None for e in events)


def test_the_page_link_lasts_the_month_and_a_while_after():
    maker = LinkMaker("http://testserver", SECRET, dt.date(2026, 11, 30), days_after_due=60)
    spec = maker.mine(7, 1)
    assert (spec.action, spec.task_id, spec.expires) == (LinkAction.MINE, None, dt.date(2027, 1, 30))
    assert LinkMaker("http://t", SECRET, dt.date(2026, 11, 1)).mine(7, 1).expires == spec.expires  # one link all month
    assert LinkMaker("http://t", SECRET, dt.date(2026, 12, 31)).mine(7, 1).expires == dt.date(2027, 3, 2)
