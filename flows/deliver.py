"""Delivery through the day: every 5 minutes, send what the ledger holds that is due — a retry
whose backoff ran out, a message held back until the send window opened, what a crashed run
left — and nothing else (no rules are applied here: the daily sweep decides, this only sends).

So a send window that opens at 09:00 after the 08:30 sweep, a 5-minute backoff and the notice
that someone cannot be reached happen when they say, not on the next working day.  With a DingTalk
app configured it also keeps the owners' DingTalk 待办 in step with their open milestones
(``duban.chat_todos``).  A run that
finds nothing due returns at once without touching the store's write lock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow, get_run_logger

from duban.chat_todos import sync_configured
from duban.runtime import runtime
from duban.sweep.sending import deliver_due
from flows.sweep import log_delivery


def _run_name() -> str:
    return f"deliver {dt.datetime.now(runtime().tz):%Y-%m-%d %H:%M}"


@flow(name="deliver-due", flow_run_name=_run_name)
def deliver_due_flow() -> dict:
    """发送到期的通知：失败后到了重试时间的、因不在发送时段而延后的，以及上次发送中断的（每 5 分钟一次）。"""
    rt = runtime()
    result = deliver_due(rt)
    log_delivery(result)
    summary: dict[str, Any] = {
        "sent": result.sent,
        "failed": result.failed,
        "deferred": result.deferred,
        "paused": result.paused,
        "recovered": result.recovered,
        "interrupted": result.interrupted,
    }
    todos = sync_configured(rt)
    if todos is not None:
        logger = get_run_logger()
        logger.info("钉钉待办：新建 %s，改期 %s，关闭 %s", todos.created, todos.updated, todos.closed)
        for e in todos.errors[:20]:
            logger.error("钉钉待办同步失败（下次发送时重试）：%s", e)
        summary["todos"] = {"created": todos.created, "updated": todos.updated, "closed": todos.closed, "failed": todos.failed}
    return summary
