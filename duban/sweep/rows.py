"""Digests as table rows with Chinese column names: what ``duban outbox`` lists and what the sweep
flow's artifact shows (shared by the CLI and flows/sweep.py, so it lives with the ledger); and the
messages that did not go out (:func:`delivery_problems`: ``duban outbox --failed``, the office's
dashboard)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, and_, func, or_, select

from duban.db import session_scope
from duban.links import local_time
from duban.models import Department, Digest, Person
from duban.sweep.delivery import AUDIENCE_NAMES
from duban.vocabulary import LedgerStatus
from notifications.channel import LABELS

INTERRUPTED = "发送中断，将自动重发"


# who a digest is for: the person, the department's group, or the audience (leading group, office)
RECIPIENT = func.coalesce(Person.name, Department.name + "（群）", Digest.audience).label("name")


_Q = TypeVar("_Q", bound=Select)  # any row shape


def with_recipient(q: _Q) -> _Q:
    """``q`` joined to the digest's person and department (for ``RECIPIENT``)."""
    return q.outerjoin(Person, Person.id == Digest.recipient_id).outerjoin(Department, Department.id == Digest.department_id)


def digest_rows(
    engine: Engine,
    *,
    run_on: dt.date | None = None,
    status: str | None = None,
    person: str | None = None,
    limit: int | None = None,
    plan_ids: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Digests as table rows (Chinese column names), newest first: what `duban outbox` lists
    (``plan_ids``: of these plans only, one institution's)."""
    with session_scope(engine, readonly=True) as session:
        q = with_recipient(
            select(
                Digest.id,
                Digest.run_on,
                RECIPIENT,
                Digest.items,
                Digest.status,
                Digest.attempts,
                Digest.last_error,
                Digest.subject,
                Digest.delivered_via,
            ).order_by(Digest.id.desc())
        )
        if run_on is not None:
            q = q.where(Digest.run_on == run_on)
        if status is not None:
            q = q.where(Digest.status == status)
        if person is not None:
            q = q.where(Person.name == person)
        if plan_ids is not None:
            q = q.where(Digest.plan_id.in_(plan_ids))
        if limit:
            q = q.limit(limit)
        return [
            {
                "编号": r.id,
                "日期": r.run_on.isoformat(),
                "收件人": AUDIENCE_NAMES.get(r.name, r.name),
                "事项": r.items,
                "状态": STATUS_LABELS.get(r.status, r.status),
                "尝试次数": r.attempts,
                "失败原因": r.last_error or "",
                "主题": r.subject,
                "渠道": _via_label(r.delivered_via),
            }
            for r in session.execute(q)
        ]


def _via_label(via: str | None) -> str:
    return "、".join(LABELS.get(v, v) for v in (via or "").split(",") if v)


STATUS_LABELS = {
    LedgerStatus.PENDING: "待发送",
    LedgerStatus.SENDING: "发送中",
    LedgerStatus.SENT: "已发送",
    LedgerStatus.FAILED: "发送失败（将重试）",
}


@dataclass(frozen=True)
class DeliveryProblem:
    """A message that did not go out: it failed (waiting for its retry), it was held back because
    its channel stopped answering (paused: waiting, with the reason), or its sender stopped while
    sending it (its claim older than the lease; the next delivery run sends it again)."""

    digest_id: int
    run_on: dt.date
    recipient: str
    status: LedgerStatus  # FAILED; PENDING with a reason (held back: a paused channel); SENDING (interrupted)
    attempts: int
    reason: str
    next_attempt: str  # local time of the retry ("" for an interrupted one: the next delivery run)

    @property
    def state(self) -> str:
        return {LedgerStatus.FAILED: "发送失败", LedgerStatus.PENDING: "暂缓发送"}.get(self.status, "发送中断")

    @property
    def next_text(self) -> str:
        return self.next_attempt or "下次发送时"


def delivery_problems(
    engine: Engine,
    *,
    now: dt.datetime,
    lease_seconds: float,
    plan_ids: Iterable[int] | None = None,
    run_on: dt.date | None = None,
    person: str | None = None,
    tz: Any = None,
    limit: int = 200,
) -> list[DeliveryProblem]:
    """Failed digests, digests held back with a reason (their channel paused: the mail relay stopped
    answering), and digests stuck "sending" for longer than the lease (``DUBAN_DELIVER_LEASE``; one
    being sent now is not a problem), newest day first; times in ``tz``. Read only."""
    utc = now.astimezone(dt.UTC)
    stuck = and_(Digest.status == LedgerStatus.SENDING, Digest.claimed_at < utc - dt.timedelta(seconds=lease_seconds))
    held_back = and_(Digest.status == LedgerStatus.PENDING, Digest.last_error.is_not(None))
    q = (
        with_recipient(
            select(Digest.id, Digest.run_on, RECIPIENT, Digest.status, Digest.attempts, Digest.last_error, Digest.next_attempt_at)
        )
        .where(or_(Digest.status == LedgerStatus.FAILED, stuck, held_back))
        .order_by(Digest.run_on.desc(), Digest.id.desc())
        .limit(limit)
    )
    if plan_ids is not None:
        q = q.where(Digest.plan_id.in_(list(plan_ids) or [-1]))
    if run_on is not None:
        q = q.where(Digest.run_on == run_on)
    if person is not None:
        q = q.where(Person.name == person)
    with session_scope(engine, readonly=True) as session:
        rows = session.execute(q).all()
    return [
        DeliveryProblem(
            r.id,
            r.run_on,
            AUDIENCE_NAMES.get(r.name, r.name),
            LedgerStatus(r.status),
            r.attempts,
            INTERRUPTED if r.status == LedgerStatus.SENDING else (r.last_error or "（未记录原因）"),
            "" if r.status == LedgerStatus.SENDING else local_time(r.next_attempt_at, tz),
        )
        for r in rows
    ]
