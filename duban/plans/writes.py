"""Rows for the audit trail and bulk UPDATEs, shared by the plan sync steps."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from duban.vocabulary import EventKind

# who an import or a command run by the office is recorded as, when no one is named (never an
# operating-system account such as "root": the 办理记录 shows it to owners and leaders)
IMPORT_ACTOR = "领导小组办公室（导入）"
OFFICE_ACTOR = "领导小组办公室"


def event_row(
    plan_id: int,
    task_id: int | None,
    kind: EventKind,
    data: dict[str, Any],
    *,
    actor: str,
    at: dt.datetime,
    milestone_id: int | None = None,
    channel: str = "import",
) -> dict[str, Any]:
    """One ``events`` row, for a bulk insert."""
    return {
        "plan_id": plan_id,
        "task_id": task_id,
        "milestone_id": milestone_id,
        "at": at,
        "actor": actor,
        "channel": channel,
        "kind": kind,
        "data": data,
    }


def bulk_update(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    """ORM bulk UPDATE by primary key, grouped by the set of columns each row changes."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(sorted(row))].append(row)
    for batch in groups.values():
        session.execute(update(model), batch)
