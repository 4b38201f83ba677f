"""The daily sweep: deadline checks for every task that has something to do today, institution
by institution.

Scheduled at 08:30 Asia/Shanghai every day (prefect.yaml).  Each institution (school) is swept
with its own runtime and calendar (flows/institution_sweep.py): a school skips the days that are
not working days in its calendar, so a 调休 Saturday gets its run and a holiday Monday does not.
From a deployment on a work pool, the schools go in batches (``DUBAN_SWEEP_BATCH`` per flow run)
to the ``institution-sweep`` deployment, which every process worker of the pool shares; without
one (`duban check`, `duban run`), they are swept here in the same way.  The
parent adds up what the schools did and names the ones that failed (then it fails, after all
the others are done).
"""

from __future__ import annotations

import datetime as dt
import math

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from duban import orchestration
from duban.db import session_scope
from duban.institutions import SweepScope, school_names, sweep_scopes
from duban.runtime import runtime
from duban.sweep.decisions import decide
from duban.sweep.digests import assemble
from duban.sweep.outcomes import DeliverResult
from duban.sweep.rows import digest_rows
from duban.sweep.sending import day_outcome, deliver_due, outcome_lines, paused_line
from duban.vocabulary import SweepOutcome
from flows.institution_sweep import (
    NOTE_SEP,
    IncompleteSweepError,
    failed_names,
    institution_tags,
    rows_of_table,
    sweep_schools,
    table_rows,
)


@task(name="decide", retries=2, retry_delay_seconds=5)
def decide_step(today: dt.date, plan: str | None, task_code: str | None = None) -> dict:
    rt = runtime()
    result = decide(rt.engine, today=today, cal=rt.calendar, tz=rt.tz, plan_code=plan, task_code=task_code)
    for w in result.warnings:
        get_run_logger().warning(w)
    return {"decided": result.decided, "new": result.new, "warnings": result.warnings}


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


def outcome(today: dt.date, since: dt.datetime, plan_ids: list[int] | None = None) -> dict:
    """What the run sent and where today's digests are, as the store has them now."""
    o = day_outcome(runtime().engine, run_on=today, since=since, now=dt.datetime.now(dt.UTC), plan_ids=plan_ids)
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
def daily_sweep(
    today: dt.date | None = None, plan: str | None = None, force: bool = False, institution: str | None = None, batch: int | None = None
) -> dict:
    """每日督办检查：各单位按本单位校历提醒、催办、逐级督办，并发出每人一份的汇总通知（可由多个工作进程分担）。"""
    rt = runtime()
    day = today or rt.today()
    with session_scope(rt.engine, readonly=True) as session:
        scopes = sweep_scopes(session, [institution] if institution else None, plan=plan)
    started = dt.datetime.now(dt.UTC)
    rows = sweep_here_or_on_workers(scopes, day, force=force, plan=plan, batch=batch)
    summary = summarise(day, rows, started, scopes if institution or plan else None)
    if summary["skipped"]:
        get_run_logger().info("%s 不是各单位的工作日，今天不检查", day)
        return summary
    report(day, summary, key="daily-sweep")
    if len(rows) > 1:
        create_table_artifact(key="daily-sweep-institutions", table=table_rows(rows), description=f"{day.isoformat()} 各单位的督办检查")
    failed = failed_names(rows)
    if failed:
        raise IncompleteSweepError(f"以下单位的督办检查未完成：{'、'.join(failed)}（其余单位已完成）", summary)
    return summary


def sweep_here_or_on_workers(scopes: list[SweepScope], day: dt.date, *, force: bool, plan: str | None, batch: int | None) -> list[dict]:
    """Every school's row of the day.  Without a deployment on a work pool: all swept here.  With
    a batch size (``batch``, DUBAN_SWEEP_BATCH): every batch a child run.  Otherwise one batch per
    online worker of the pool (a worker per CPU core: deploy/), this run's own worker's batch swept
    here while the others run (this run holds one of its slots anyway); with one worker, all here."""
    rt = runtime()
    target = orchestration.child_deployment()
    size = batch or rt.settings.sweep_batch
    if target is None:
        return sweep_schools(scopes, day, force)
    if size is not None:
        return on_workers(target, batches(scopes, size), day, force=force, plan=plan)
    workers = orchestration.online_workers()
    size = spread(len(scopes), workers)
    if size is None:
        get_run_logger().info("工作池只有 %s 个在线工作进程，由本流程检查全部单位", workers)
        return sweep_schools(scopes, day, force)
    own, *others = batches(scopes, size)
    return on_workers(target, others, day, force=force, plan=plan, own=own)


def spread(schools: int, workers: int) -> int | None:
    """The batch size that gives each online worker of the pool one batch (this run's own worker:
    the batch this run sweeps itself); None with one worker (or the pool unknown): this run then
    sweeps every school, sparing a child run's process start for no gain."""
    return math.ceil(schools / workers) if workers > 1 and schools > 0 else None


def batches(scopes: list[SweepScope], size: int) -> list[list[SweepScope]]:
    return [scopes[i : i + size] for i in range(0, len(scopes), max(size, 1))]


def on_workers(
    target: str, groups: list[list[SweepScope]], day: dt.date, *, force: bool, plan: str | None, own: list[SweepScope] | None = None
) -> list[dict]:
    """Each batch of schools a flow run of the child deployment that any worker of the pool may
    pick up: all submitted, then (``own``: those schools swept here meanwhile) waited for; a batch
    whose run ended without its summary (crashed, cancelled, late) counts each of its schools as
    failed.  The rows of ``own`` first, then the batches' in order."""
    logger = get_run_logger()
    work = [
        {
            "name": f"sweep {day.isoformat()} {school_names([s.name for s in group])}",
            "tags": ["duban", "sweep", *institution_tags([s.code for s in group])],
            "parameters": {"institutions": [s.code for s in group], "today": day.isoformat(), "force": force, "plan": plan},
            "institutions": [s.code for s in group],
        }
        for group in groups
    ]
    runs = orchestration.submit_children(target, work)
    size = max(map(len, groups), default=0)
    logger.info("已分派 %s 个单位的检查：%s 个子流程（每个至多 %s 个单位）", sum(map(len, groups)), len(runs), size)
    rows: list[dict] = []
    if own:
        logger.info("本流程同时检查 %s 个单位：%s", len(own), school_names([s.name for s in own]))
        rows += sweep_schools(own, day, force)
    names = {s.code: s.name for g in groups for s in g}
    for run in orchestration.wait_children(runs):
        got = {r["code"]: r for r in rows_of_table(run.rows)}
        lost = f"子流程 {run.name}：{run.state} {run.message}".strip()
        for code in run.institutions:
            rows.append(got.get(code) or {"code": code, "name": names[code], "outcome": SweepOutcome.FAILED, "note": lost})
        if run.state != "Completed":
            logger.error("子流程 %s 结束于 %s：%s", run.name, run.state, run.message)
    return rows


def school_notes(rows: list[dict]) -> list[str]:
    """The schools' notes, each said once with the schools it concerns (a calendar warning of
    every school is one line, not one per school)."""
    by_note: dict[str, list[str]] = {}
    for r in rows:
        if r["outcome"] == SweepOutcome.DONE:
            for note in filter(None, str(r.get("note") or "").split(NOTE_SEP)):
                by_note.setdefault(note, []).append(r["name"])
    return [("" if len(names) == len(rows) else school_names(names) + "：") + note for note, names in by_note.items()]


def summarise(day: dt.date, rows: list[dict], started: dt.datetime, scopes: list[SweepScope] | None) -> dict:
    """The day's summary: the schools' counts added up, and where the digests are as the store has
    them now (``scopes``: of these schools' plans only; None: every plan's)."""
    done = [r for r in rows if r["outcome"] == SweepOutcome.DONE]
    plan_ids = None if scopes is None else [p for s in scopes for p in s.plan_ids]
    summary: dict = {"today": day.isoformat(), "skipped": bool(rows) and all(r["outcome"] == SweepOutcome.SKIPPED for r in rows)}
    for key in ("decided", "new", "digests", "paused"):
        summary[key] = sum(int(r.get(key) or 0) for r in done)
    summary.update(outcome(day, started, plan_ids))
    summary["notes"] += school_notes(rows)
    summary["institutions"] = rows
    summary["failed_institutions"] = [r["code"] for r in rows if r["outcome"] == SweepOutcome.FAILED]
    return summary
