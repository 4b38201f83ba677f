"""Delivery through the day: every 5 minutes, send what the ledger holds that is due — a retry
whose backoff ran out, a message held back until the send window opened, what a crashed run
left — and nothing else (no rules are applied here: the daily sweep decides, this only sends).

So a send window that opens at 09:00 after the 08:30 sweep, a 5-minute backoff and the notice
that someone cannot be reached happen when they say, not on the next working day.  With a DingTalk
app configured it also keeps the owners' DingTalk 待办 in step with their open milestones
(``duban.chat_todos``).  Each institution with settings of its own (channel, chat apps, send
hours) is delivered with its own runtime; the others together with the installation's.  A run that
finds nothing due returns at once without touching the store's write lock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow, get_run_logger

from duban.chat_todos import sync_configured
from duban.runtime import runtime
from duban.sweep.sending import DeliveryGroup, deliver_due, delivery_groups
from flows.sweep import log_delivery


def _run_name() -> str:
    return f"deliver {dt.datetime.now(runtime().tz):%Y-%m-%d %H:%M}"


@flow(name="deliver-due", flow_run_name=_run_name)
def deliver_due_flow(institution: str | None = None) -> dict:
    """发送到期的通知：失败后到了重试时间的、因不在发送时段而延后的，以及上次发送中断的（每 5 分钟一次，各单位按本单位的渠道发送）。"""
    logger = get_run_logger()
    summary: dict[str, Any] = dict.fromkeys(("sent", "failed", "deferred", "paused", "recovered", "interrupted"), 0)
    failed: list[str] = []
    for group in delivery_groups(runtime(), [institution] if institution else None):
        try:
            deliver_group(group, summary)
        except Exception as err:  # noqa: BLE001 - one school's channel must not hold back the others' messages
            logger.error("%s 的通知发送出错（5 分钟后重试）：%s: %s", group.label, err.__class__.__name__, err)
            failed.append(group.label)
    if failed:
        raise DeliveryGroupError(f"以下单位的通知发送出错：{'；'.join(failed)}（其余单位已发送）")
    return summary


class DeliveryGroupError(RuntimeError):
    pass


def deliver_group(group: DeliveryGroup, summary: dict[str, Any]) -> None:
    """Send what is due of the group's institutions with their runtime, and keep their DingTalk
    待办 in step (their own DingTalk app); the counts are added to ``summary``."""
    logger = get_run_logger()
    result = deliver_due(group.rt, plan_ids=group.plan_ids)
    if result.sent or result.failed or result.deferred or result.paused:
        logger.info("%s：发送成功 %s 份，失败 %s 份", group.label or "全部单位", result.sent, result.failed)
    log_delivery(result)
    for key in ("sent", "failed", "deferred", "paused", "recovered", "interrupted"):
        summary[key] += getattr(result, key)
    todos = sync_configured(group.rt, plan_ids=group.plan_ids)
    if todos is not None:
        logger.info("%s 钉钉待办：新建 %s，改期 %s，关闭 %s", group.label, todos.created, todos.updated, todos.closed)
        for e in todos.errors[:20]:
            logger.error("钉钉待办同步失败（下次发送时重试）：%s", e)
        counts = summary.setdefault("todos", dict.fromkeys(("created", "updated", "closed", "failed"), 0))
        for key in counts:
            counts[key] += getattr(todos, key)
