"""Approval requests to the office wait for the plan's next batch time (``office_batch_times``):
a morning's submissions reach each office member in ONE digest at 10:00, none before."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from duban.actions import ledger_item, office_hold
from duban.db import session_scope
from duban.links import LinkMaker
from duban.models import Digest, Person, Plan, Request, Task
from duban.sweep.digests import assemble, held_due
from duban.vocabulary import MessageKind, RequestKind, RequestStatus
from tests.web_helpers import SECRET, import_small

TZ = ZoneInfo("Asia/Shanghai")
DAY = dt.date(2026, 12, 1)


def at(hh: int, mm: int) -> dt.datetime:
    return dt.datetime.combine(DAY, dt.time(hh, mm), tzinfo=TZ).astimezone(dt.UTC)


@pytest.fixture
def plan(use_database, engine, tmp_path):
    import_small(engine, tmp_path)
    return engine


def test_twelve_submissions_reach_the_office_in_one_digest_at_ten(plan):
    times = [at(8, 0) + dt.timedelta(minutes=8 * n) for n in range(12)]  # 08:00 … 09:28
    with session_scope(plan) as s:
        office = s.scalar(select(Person.id).where(Person.name == "督办员"))
        p = s.scalar(select(Plan))
        tasks = s.scalars(select(Task).where(Task.plan_id == p.id).order_by(Task.code)).all()
        for n, now in enumerate(times):
            task = tasks[n % len(tasks)]
            req = Request(
                plan_id=p.id,
                task_id=task.id,
                person_id=task.owner_id,
                kind=RequestKind.COMPLETION,
                status=RequestStatus.PENDING,
                note="已完成",
                created_at=now,
                decision_note="",
            )
            s.add(req)
            s.flush()
            held = office_hold(s, p, task, now=now, tz=TZ)
            assert held == at(10, 0)
            ledger_item(
                s,
                key=f"{MessageKind.APPROVAL}:test{n}:p{office}",
                r_plan=p.id,
                task=task,
                milestone=None,
                recipient=office,
                kind=MessageKind.APPROVAL,
                today=DAY,
                now=now,
                data={"request": req.id, "request_kind": "completion"},
                not_before=held,
            )
    links = LinkMaker("http://testserver", SECRET, DAY)
    for early in (at(9, 30), at(9, 59)):  # the web's dispatcher and the delivery runs before ten send nothing
        assert assemble(plan, today=DAY, links=links, recipients=[office], now=early) == 0
        with session_scope(plan) as s:
            assert held_due(s, early) == []
    with session_scope(plan) as s:
        assert held_due(s, at(10, 0)) == [office]
    assert assemble(plan, today=DAY, links=links, now=at(10, 1)) == 1
    with session_scope(plan) as s:
        [digest] = s.scalars(select(Digest).where(Digest.recipient_id == office)).all()
        asks = sum(len(e["asks"]) for e in digest.payload["items"])
        assert asks == 12 and held_due(s, at(10, 5)) == []
    assert assemble(plan, today=DAY, links=links, now=at(15, 1)) == 0  # nothing twice
