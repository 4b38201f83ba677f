"""The messages that did not go out, as the office sees them (``duban outbox --failed``, the
dashboard's 通知发送异常): failed ones with their reason and next retry, and ones whose sender
stopped mid-way (claim older than the lease); never a sent one or one being sent right now."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select

from duban.db import session_scope
from duban.models import Digest, Person, Plan
from duban.sweep.rows import DeliveryProblem, delivery_problems
from duban.vocabulary import LedgerStatus
from tests.conftest import PINNED
from tests.web_helpers import import_small

TZ = ZoneInfo("Asia/Shanghai")
LEASE = 120.0
REASON = "邮件服务器拒收：550 mailbox unavailable"
PAUSED = "邮件 mailto://127.0.0.1:2525/fx@example.org：邮件服务器 127.0.0.1:2525 连续 3 次无响应，暂停发送，稍后自动重试"


def add_digests(engine, now: dt.datetime) -> None:
    """Six of the day's messages: failed twice (retry at 11:00 Beijing time), interrupted ten
    minutes ago, held back by a paused relay (retry at 10:05), sent, being sent (claimed 30 s
    ago), and waiting for the send window (no reason: not a problem)."""
    day, now = now.astimezone(TZ).date(), now.astimezone(dt.UTC)  # stored as UTC, as the sender does
    with session_scope(engine) as s:
        plan_id = s.scalar(select(Plan.id).where(Plan.code == "demo"))
        people = dict(s.execute(select(Person.name, Person.id).where(Person.plan_id == plan_id)).all())

        def digest(name: str, status: LedgerStatus, **kw) -> Digest:
            return Digest(
                plan_id=plan_id, recipient_id=people[name], channel="email", run_on=day, subject=f"致{name}", items=1, status=status, **kw
            )

        s.add_all(
            [
                digest(
                    "教务处处长",
                    LedgerStatus.FAILED,
                    attempts=2,
                    last_error=REASON,
                    next_attempt_at=dt.datetime(2026, 11, 30, 3, tzinfo=dt.UTC),
                ),
                digest("宣传部部长", LedgerStatus.SENDING, attempts=1, claimed_at=now - dt.timedelta(minutes=10), claim_token="h:1:a"),
                digest("教务处副处长", LedgerStatus.SENT, attempts=1, sent_at=now),
                digest("党委书记", LedgerStatus.SENDING, attempts=1, claimed_at=now - dt.timedelta(seconds=30), claim_token="h:2:b"),
                digest(
                    "分管教学副校长",
                    LedgerStatus.PENDING,
                    last_error=PAUSED,
                    next_attempt_at=dt.datetime(2026, 11, 30, 2, 5, tzinfo=dt.UTC),
                ),
                digest("分管教学副校长", LedgerStatus.PENDING, next_attempt_at=dt.datetime(2026, 12, 1, 0, 0, tzinfo=dt.UTC)),
            ]
        )


def test_failed_and_interrupted_messages_are_listed_with_reason_and_next_retry(engine, tmp_path):
    import_small(engine, tmp_path)
    add_digests(engine, PINNED)
    problems = delivery_problems(engine, now=PINNED, lease_seconds=LEASE, tz=TZ)
    assert [(p.recipient, p.run_on, p.state, p.attempts, p.reason, p.next_text) for p in problems] == [
        ("分管教学副校长", dt.date(2026, 11, 30), "暂缓发送", 0, PAUSED, "2026-11-30 10:05"),
        ("宣传部部长", dt.date(2026, 11, 30), "发送中断", 1, "发送中断，将自动重发", "下次发送时"),
        ("教务处处长", dt.date(2026, 11, 30), "发送失败", 2, REASON, "2026-11-30 11:00"),
    ]
    assert all(isinstance(p, DeliveryProblem) for p in problems)


def test_only_the_plans_asked_for(engine, tmp_path):
    import_small(engine, tmp_path)
    add_digests(engine, PINNED)
    with session_scope(engine, readonly=True) as s:
        plan_id = s.scalar(select(Plan.id))
    assert len(delivery_problems(engine, now=PINNED, lease_seconds=LEASE, plan_ids=[plan_id])) == 3
    assert delivery_problems(engine, now=PINNED, lease_seconds=LEASE, plan_ids=[plan_id + 1]) == []
    # three minutes later the claim of the one being sent has lapsed too (lease: two minutes)
    later = delivery_problems(engine, now=PINNED + dt.timedelta(minutes=3), lease_seconds=LEASE)
    assert sorted(p.recipient for p in later) == ["党委书记", "分管教学副校长", "宣传部部长", "教务处处长"]
