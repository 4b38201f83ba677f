"""Approval requests to the office wait for the plan's next batch time (``office_batch_times``):
a morning's submissions reach each office member in ONE digest at 10:00, none before."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from duban.action_common import ledger_item
from duban.actions import office_hold
from duban.db import session_scope
from duban.links import LinkMaker
from duban.models import Digest, Milestone, Person, Plan, Request, Task
from duban.sweep.digests import assemble, held_due
from duban.vocabulary import MessageKind, RequestKind, RequestStatus
from tests.conftest import PINNED_DAY
from tests.factories import task_of
from tests.web.test_review_roles import app_for  # noqa: F401  (the fixture)
from tests.web_helpers import SECRET, csrf_of, import_small, make_link, plan_definition

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


def twelve_step_plan() -> dict:
    """The small plan with two office members on different lines and task 1 in twelve steps."""
    d = plan_definition(approval=True)
    d["people"].append({"name": "督办员二", "title": "督办员", "email": "db2@example.org"})
    d["plan"]["office"] = [{"name": "督办员", "systems": ["课程育人"]}, {"name": "督办员二", "systems": ["文化育人"]}]
    steps = "；".join(f"2026年12月{day}日 第{day}步" for day in range(2, 13))
    task_of(d, "1")["roadmap"] = steps
    return d


def test_a_mornings_submissions_reach_the_office_member_on_the_line_once_at_ten(app_for, engine, clock):  # noqa: F811
    from duban.runtime import runtime
    from duban.sweep.sending import deliver_due

    web = app_for(twelve_step_plan())
    with session_scope(engine) as s:
        task = s.scalar(select(Task).where(Task.code == "1"))
        steps = s.scalars(select(Milestone.id).where(Milestone.task_id == task.id).order_by(Milestone.seq)).all()
    assert len(steps) == 12
    for n, mid in enumerate(steps):  # 08:00 … 09:28, one submission every 8 minutes
        clock.move_to(dt.datetime.combine(PINNED_DAY, dt.time(8, 0), tzinfo=TZ) + dt.timedelta(minutes=8 * n))
        tok = make_link(engine, "教务处处长", "done", "1", milestone=mid)
        page = web.get(f"/l/{tok}")
        assert web.post(f"/l/{tok}", data={"csrf": csrf_of(page.text), "note": f"第 {n + 1} 项已完成"}).status_code == 200
    for hh, mm in ((9, 30), (9, 59)):  # the delivery runs before ten send the office nothing
        clock.move_to(dt.datetime.combine(PINNED_DAY, dt.time(hh, mm), tzinfo=TZ))
        deliver_due(runtime())
        assert digests(engine) == []
    clock.move_to(dt.datetime.combine(PINNED_DAY, dt.time(10, 1), tzinfo=TZ))
    deliver_due(runtime())
    clock.move_to(dt.datetime.combine(PINNED_DAY, dt.time(10, 6), tzinfo=TZ))
    deliver_due(runtime())  # the next run: nothing more
    assert digests(engine) == [("督办员", 12, "sent")]  # one digest, twelve asks; 督办员二's line is another


def digests(engine) -> list[tuple[str, int, str]]:
    """The office's digests: (recipient, asks, status)."""
    with session_scope(engine) as s:
        rows = s.execute(
            select(Person.name, Digest.payload, Digest.status)
            .join(Person, Person.id == Digest.recipient_id)
            .where(Person.name.in_(("督办员", "督办员二")))
        ).all()
    return [(name, sum(len(e["asks"]) for e in payload["items"]), status) for name, payload, status in rows]
