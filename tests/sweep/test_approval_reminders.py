"""A completion waiting for the office is not forgotten: reviewers are reminded on the nag ladder
(rules: ``approval_reminder``; sweep: ``approval_decisions``), and the reminder stops once decided."""

from __future__ import annotations

import datetime as dt

import pytest

from duban import actions, approvals
from duban.action_common import Origin
from duban.db import session_scope
from duban.links import LinkMaker, resolve
from duban.rules.calendar import WorkCalendar
from duban.rules.deadlines import approval_reminder
from duban.rules.policy import DeadlinePolicy
from duban.sweep import decisions
from duban.sweep.decisions import decide
from notifications.digest import describe
from tests.web_helpers import SECRET, TZ, import_small, ledger, make_link, milestone_id, person_id, requests

CAL = WorkCalendar()
SUBMITTED = dt.date(2026, 11, 30)  # a Monday
ORIGIN = Origin(ip="10.1.2.3", user_agent="test")


@pytest.mark.parametrize(
    "today, expected",
    [
        (dt.date(2026, 11, 30), None),  # the day it was submitted
        (dt.date(2026, 12, 2), None),  # 2 working days
        (dt.date(2026, 12, 3), (1, 3)),  # 3 working days: first reminder
        (dt.date(2026, 12, 7), (1, 5)),  # Monday: 5 working days, still step 1
        (dt.date(2026, 12, 8), (2, 6)),  # every 3 working days after
        (dt.date(2026, 12, 31), (5, 23)),  # capped at 5 reminders (23 working days in December)
    ],
)
def test_approval_reminder_ladder(today, expected):
    assert approval_reminder(SUBMITTED, DeadlinePolicy(), CAL, today) == expected


def test_approval_reminder_after_is_configurable():
    assert approval_reminder(SUBMITTED, DeadlinePolicy(approval_remind_after=1), CAL, dt.date(2026, 12, 1)) == (1, 1)


def _submit(engine, today: dt.date):
    mid = milestone_id(engine, "1", 1)
    with session_scope(engine) as s:
        r = resolve(s, make_link(engine, "教务处处长", "done", "1", milestone=mid), secret=SECRET, today=today, for_update=True)
        actions.submit_done(s, r, ORIGIN, now=dt.datetime.combine(today, dt.time(10), TZ), today=today, note="方案已印发")
    return mid


def test_office_is_reminded_of_a_waiting_completion_until_it_is_decided(engine, tmp_path):
    import_small(engine, tmp_path)
    mid = _submit(engine, SUBMITTED)
    office = person_id(engine, "督办员")
    for day in (dt.date(2026, 12, 2), dt.date(2026, 12, 3), dt.date(2026, 12, 4), dt.date(2026, 12, 8)):
        decide(engine, today=day, cal=CAL, tz=TZ)
    [req] = requests(engine)
    waiting = ledger(engine, "approval_waiting")
    assert [(n.key, n.recipient_id, n.decided_on, n.days) for n in waiting] == [
        (f"approval_waiting:r{req.id}:p{office}:n1", office, dt.date(2026, 12, 3), -3),
        (f"approval_waiting:r{req.id}:p{office}:n2", office, dt.date(2026, 12, 8), -6),
    ]
    first = waiting[0]
    assert (first.milestone_id, first.data["owner"], first.data["submitted_on"], first.data["waited"]) == (
        mid,
        "教务处处长",
        "2026-11-30",
        3,
    )
    line = describe(first.kind, first.level, first.due_date, first.days, first.data)
    assert line.startswith("办结申请已于 2026-11-30 提交，已等待审核 3 个工作日，请尽快办理。责任人 教务处处长")
    # the reviewer's links: this request's review page and the queue of all that wait
    specs = LinkMaker("https://x", SECRET, dt.date(2026, 12, 3)).specs(first, first.plan_id)
    assert [(s.action, s.request_id) for s in specs] == [("review", req.id), ("queue", None)]
    # the preview (duban check --dry-run) shows the next one before it is written
    preview = decisions.preview(engine, today=dt.date(2026, 12, 11), cal=CAL, tz=TZ)
    assert [(p.recipient, p.kind) for p in preview if p.kind == "approval_waiting"] == [("督办员", "approval_waiting")]

    # decided: no more reminders
    with session_scope(engine) as s:
        r = resolve(
            s,
            make_link(engine, "督办员", "review", "1", milestone=mid, request=req.id),
            secret=SECRET,
            today=dt.date(2026, 12, 9),
            for_update=True,
        )
        approvals.decide(
            s,
            r,
            ORIGIN,
            now=dt.datetime(2026, 12, 9, 2, 0, tzinfo=dt.UTC),
            today=dt.date(2026, 12, 9),
            request_id=None,
            decision="approve",
        )
    decide(engine, today=dt.date(2026, 12, 11), cal=CAL, tz=TZ)
    assert len(ledger(engine, "approval_waiting")) == 2
