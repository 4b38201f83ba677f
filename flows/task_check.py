"""Deadline checks for one reform task, on demand (Prefect UI or `duban check --task CODE`).

Runs are named ``check <code>`` and tagged with the plan, system and lead department, so a
coordinator finds a task's history in the Prefect UI.
"""

from __future__ import annotations

import datetime as dt
import uuid

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from sqlalchemy import select

from duban.db import session_scope
from duban.models import Notification, Plan, Task
from duban.orchestration import TaskNotFound, task_tags  # noqa: F401 - TaskNotFound: what task_check raises
from duban.runtime import runtime
from duban.vocabulary import LedgerStatus
from flows.sweep import assemble_step, decide_step, deliver_step, report


def _tag_this_run(tags: list[str]) -> None:
    from prefect.client.orchestration import get_client

    run_id = flow_run.get_id()
    if not run_id:
        return
    run_uuid = uuid.UUID(run_id)
    with get_client(sync_client=True) as client:
        current = client.read_flow_run(run_uuid)
        client.update_flow_run(run_uuid, tags=sorted(set(current.tags) | set(tags)))


@flow(name="task-check", flow_run_name="check {task_code}")
def task_check(task_code: str, plan: str | None = None, today: dt.date | None = None) -> dict:
    """检查一项任务：按期提醒、逾期督办，发出相关人员的通知。"""
    rt = runtime()
    day = today or rt.today()
    plan_code, tags = task_tags(task_code, plan)
    _tag_this_run(tags)
    decided = decide_step(day, plan_code, task_code)
    with session_scope(rt.engine) as s:
        recipients = sorted(
            set(
                s.scalars(
                    select(Notification.recipient_id)
                    .join(Task, Task.id == Notification.task_id)
                    .join(Plan, Plan.id == Task.plan_id)
                    .where(Task.code == task_code, Plan.code == plan_code, Notification.status == LedgerStatus.PENDING)
                )
            )
        )
    digests = assemble_step(day, recipients) if recipients else 0
    delivered = deliver_step(recipients) if recipients else {"sent_now": 0, "failed_now": 0, "paused_now": 0, "paused": None}
    sent, failed = delivered["sent_now"], delivered["failed_now"]
    summary = {"today": day.isoformat(), "task": task_code, "plan": plan_code, **decided, "digests": digests}
    summary |= {"sent": sent, "failed": failed, "deferred": 0, "sending": 0, "older_failed": 0}
    summary |= {"paused": delivered["paused_now"], "notes": [delivered["paused"]] if delivered["paused"] else []}
    get_run_logger().info(
        "任务 %s 检查完成：应发事项 %d 项（新增 %d 项），发送成功 %d 份，失败 %d 份",
        task_code,
        summary["decided"],
        summary["new"],
        summary["sent"],
        summary["failed"],
    )
    report(day, summary, key="task-check")
    return summary
