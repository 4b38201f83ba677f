"""Delivery through the day: every 5 minutes, send what the ledger holds that is due — a retry
whose backoff ran out, a message held back until the send window opened, what a crashed run
left — and nothing else (no rules are applied here: the daily sweep decides, this only sends).

So a send window that opens at 09:00 after the 08:30 sweep, a 5-minute backoff and the notice
that someone cannot be reached happen when they say, not on the next working day.  A run that
finds nothing due returns at once without touching the store's write lock.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow

from duban.runtime import runtime
from duban.sweep.sending import deliver_due
from flows.sweep import log_delivery


def _run_name() -> str:
    return f"deliver {dt.datetime.now(runtime().tz):%Y-%m-%d %H:%M}"


@flow(name="deliver-due", flow_run_name=_run_name)
def deliver_due_flow() -> dict:
    """发送到期的通知：失败后到了重试时间的、因不在发送时段而延后的，以及上次发送中断的（每 5 分钟一次）。"""
    result = deliver_due(runtime())
    log_delivery(result)
    return {
        "sent": result.sent,
        "failed": result.failed,
        "deferred": result.deferred,
        "paused": result.paused,
        "recovered": result.recovered,
        "interrupted": result.interrupted,
    }
