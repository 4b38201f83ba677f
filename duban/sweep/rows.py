"""Digests as table rows with Chinese column names: what ``duban outbox`` lists and what the sweep
flow's artifact shows (shared by the CLI and flows/sweep.py, so it lives with the ledger)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, func, select

from duban.db import session_scope
from duban.models import Department, Digest, Person
from duban.sweep.delivery import AUDIENCE_NAMES
from duban.vocabulary import LedgerStatus
from notifications.channel import LABELS


def digest_rows(
    engine: Engine, *, run_on: dt.date | None = None, status: str | None = None, person: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Digests as table rows (Chinese column names), newest first: what `duban outbox` lists."""
    with session_scope(engine, readonly=True) as session:
        q = (
            select(
                Digest.id,
                Digest.run_on,
                func.coalesce(Person.name, Department.name + "（群）", Digest.audience).label("name"),
                Digest.items,
                Digest.status,
                Digest.attempts,
                Digest.last_error,
                Digest.subject,
                Digest.delivered_via,
            )
            .outerjoin(Person, Person.id == Digest.recipient_id)
            .outerjoin(Department, Department.id == Digest.department_id)
            .order_by(Digest.id.desc())
        )
        if run_on is not None:
            q = q.where(Digest.run_on == run_on)
        if status is not None:
            q = q.where(Digest.status == status)
        if person is not None:
            q = q.where(Person.name == person)
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
