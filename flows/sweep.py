"""The daily sweep: deadline checks for every task that has something to do today.

Scheduled at 08:30 Asia/Shanghai every day (prefect.yaml); the flow itself skips days that are
not working days, so a 调休 Saturday gets its run and a holiday Monday does not.  All tasks are
checked inside one flow run with a few Prefect task runs (decide → assemble → deliver): a
subflow per reform task would cost about a second each in embedded mode (see benchmarks).
"""

from __future__ import annotations

import datetime as dt

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from duban.runtime import runtime
from duban.sweep.decisions import decide
from duban.sweep.delivery import DeliverResult
from duban.sweep.digests import assemble
from duban.sweep.rows import digest_rows
from duban.sweep.sending import day_outcome, deliver_due, outcome_lines, paused_line


@task(name="decide", retries=2, retry_delay_seconds=5)
def decide_step(today: dt.date, plan: str | None, task_code: str | None = None) -> dict:
    rt = runtime()
    result = decide(rt.engine, today=today, cal=rt.calendar, tz=rt.tz, plan_code=plan, task_code=task_code)
    for w in result.warnings:
        get_run_logger().warning(w)
    return {"decided": result.decided, "new": result.new, "warnings": result.warnings}


@task(name="review-tick", retries=2, retry_delay_seconds=5)
def review_tick_step(today: dt.date, plan: str | None) -> dict:
    """Reviews (督查): today's reminders and escalations of missing answers; a review whose reply-by
    date passed stops waiting for answers, and its flow run is woken (or it advances here)."""
    from duban import orchestration
    from duban.reviews import api as reviews

    rt = runtime()
    result = reviews.tick(rt.engine, today=today, cal=rt.calendar, tz=rt.tz, plan_code=plan)
    for review_id in result.changed:
        how, _ = orchestration.wake_or_advance(rt.engine, review_id, today=today, reports_dir=rt.settings.data_dir / "reports")
        get_run_logger().info("督查 %s 填报已截止，进入评定（%s）", review_id, how)
    return {"decided": result.decided, "new": result.new, "closed_answers": result.changed}


@task(name="assemble-digests", retries=2, retry_delay_seconds=5)
def assemble_step(today: dt.date, recipients: list[int] | None = None) -> int:
    rt = runtime()
    return assemble(
        rt.engine, today=today, links=rt.links(today), channel=rt.channel.name, template_dir=rt.settings.template_dir, recipients=recipients
    )


@task(name="deliver", retries=2, retry_delay_seconds=5)
def deliver_step(recipients: list[int] | None = None) -> dict:
    """Send what is due; the counts of the day come from the store (``day_outcome``), so a retry
    of this task after a crash still reports every message of the day."""
    rt = runtime()
    result = deliver_due(rt, recipients)
    log_delivery(result)
    return {"sent_now": result.sent, "failed_now": result.failed, "paused_now": result.paused, "paused": paused_line(result)}


def log_delivery(result: DeliverResult) -> None:
    logger = get_run_logger()
    if result.recovered or result.interrupted:
        logger.warning("上次发送中断：%s 份已确认发出（不再重发），%s 份重新排队发送", result.recovered, result.interrupted)
    for e in result.errors[:20]:
        logger.error("发送失败（将稍后重试）：%s", e)
    if result.deferred:
        logger.info("%s 份通知不在发送时段内，将于发送时段开始后由每 5 分钟一次的发送流程发出", result.deferred)
    if result.paused:
        logger.warning("%s 份通知的渠道暂时无响应，已暂停发送，稍后自动重试", result.paused)


def outcome(today: dt.date, since: dt.datetime) -> dict:
    """What the run sent and where today's digests are, as the store has them now."""
    o = day_outcome(runtime().engine, run_on=today, since=since, now=dt.datetime.now(dt.UTC))
    counts = {"sent": o.sent, "failed": o.failed, "deferred": o.deferred, "sending": o.sending, "older_failed": o.older_failed}
    return {**counts, "notes": outcome_lines(o)}


def report(today: dt.date, summary: dict, key: str) -> None:
    """A markdown artifact that says what this run did, and a table of today's digests."""
    rt = runtime()
    rows = digest_rows(rt.engine, run_on=today)
    lines = [
        f"## 督办检查 {today.isoformat()}",
        "",
        f"- 今日应发事项 {summary['decided']} 项，其中新增 {summary['new']} 项（其余此前已发或已在发送队列中）",
        f"- 生成通知 {summary['digests']} 份；发送成功 {summary['sent']} 份，失败 {summary['failed']} 份",
    ]
    lines += [f"- {n}" for n in summary.get("notes", [])]
    lines += [f"- 提示：{w}" for w in summary.get("warnings", [])]
    create_markdown_artifact(key=key, markdown="\n".join(lines), description=f"督办检查 {today.isoformat()}")
    if rows:
        create_table_artifact(key=f"{key}-digests", table=rows[:500], description=f"{today.isoformat()} 的通知")


@flow(name="daily-sweep", flow_run_name="sweep {today}")
def daily_sweep(today: dt.date | None = None, plan: str | None = None, force: bool = False) -> dict:
    """每日督办检查：提醒、催办、逐级督办，并发出每人一份的汇总通知。"""
    rt = runtime()
    day = today or rt.today()
    if not force and not rt.calendar.is_workday(day):
        get_run_logger().info("%s 不是工作日，今天不检查", day)
        return {"today": day.isoformat(), "skipped": True}
    started = dt.datetime.now(dt.UTC)
    decided = decide_step(day, plan)
    review_tick_step(day, plan)  # 督查: reminders and escalations of missing answers (duban.reviews)
    digests = assemble_step(day)
    delivered = deliver_step()
    summary = {"today": day.isoformat(), "skipped": False, **decided, "digests": digests, **outcome(day, started)}
    summary["paused"] = delivered["paused_now"]
    if delivered["paused"]:
        summary["notes"].append(delivered["paused"])
    summary["snapshot"] = snapshot_step(day)
    report(day, summary, key="daily-sweep")
    return summary


@task(name="rollup-snapshot")
def snapshot_step(today: dt.date) -> int:
    """Store the day's roll-up counts of every plan (the trend in the report and the dashboard)."""
    from duban.rollup.snapshots import take_snapshot

    rt = runtime()
    try:
        return take_snapshot(rt.engine, as_of=today, tz=rt.tz, cal=rt.calendar)
    except Exception as err:  # noqa: BLE001 - the day's reminders are out; a missing trend point is not worth failing for
        get_run_logger().warning("今日汇总快照未能保存（不影响提醒和督办）：%s: %s", err.__class__.__name__, err)
        return 0
