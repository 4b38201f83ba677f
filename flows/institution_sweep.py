"""One institution's daily sweep, and a batch of them as one flow run (``institution-sweep``).

The day's work for a school — decide (each plan of the school), the review tick, assemble,
deliver — with the school's own runtime (calendar, time zone, templates, channel, chat apps:
``Runtime.for_institution``), as one Prefect task run named after the school and tagged
``institution:<code>``, with a markdown artifact ``sweep-<code>`` (the school's history in the
UI); then the roll-up snapshot of the batch's schools at once (its cost is mostly fixed: one
computation per school would cost more than the school's sweep).  A school that fails is retried,
then reported; the other schools of the batch go on.

The daily sweep (flows/sweep.py) runs batches of schools here: in its own process without a
deployment (`duban check`, `duban run`), or as flow runs of the ``institution-sweep`` deployment
that process workers pick up, on any number of machines sharing the store and the Prefect server.
The ledger keys and the delivery claims make a repeated or concurrent run of a school harmless.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

from prefect import flow, get_run_logger, tags, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from duban.db import session_scope
from duban.institutions import SweepScope, school_names, sweep_scopes
from duban.runtime import Runtime, runtime
from duban.sweep.decisions import decide
from duban.sweep.digests import assemble
from duban.sweep.sending import day_outcome, deliver_due, paused_line, runtime_groups
from duban.vocabulary import SweepOutcome

# a school's row in the summary table of a batch (the daily sweep reads them back: same keys)
COLUMNS = {
    "code": "单位编号",
    "name": "单位",
    "outcome": "结果",
    "decided": "应发事项",
    "new": "新增事项",
    "digests": "生成通知",
    "sent": "发送成功",
    "failed": "发送失败",
    "seconds": "用时（秒）",
    "note": "说明",
}
SUMMARY_DESCRIPTION = "本批各单位的督办检查结果"
# between a school's notes in its summary row: a line break, which no note contains (a note may
# well contain "；", as the calendar's warnings do)
NOTE_SEP = "\n"


def institution_tag(code: str) -> str:
    return f"institution:{code}"


def artifact_key(code: str) -> str:
    """A Prefect artifact key for the school (lower-case letters, digits and dashes only)."""
    return "sweep-" + (re.sub(r"[^a-z0-9-]+", "-", code.lower()).strip("-") or "x")


def _decide_and_tick(rt: Runtime, scope: SweepScope, day: dt.date) -> dict[str, Any]:
    """Decide each plan of the school, then its reviews' reminders (a review whose reply-by date
    passed is woken or advanced)."""
    from duban import orchestration
    from duban.reviews import api as reviews

    logger = get_run_logger()
    decided = new = 0
    warnings: list[str] = []
    for code in scope.plan_codes:
        result = decide(rt.engine, today=day, cal=rt.calendar, tz=rt.tz, plan_code=code)
        decided, new = decided + result.decided, new + result.new
        warnings = list(dict.fromkeys([*warnings, *result.warnings]))
        tick = reviews.tick(rt.engine, today=day, cal=rt.calendar, tz=rt.tz, plan_code=code)
        for review_id in tick.changed:
            how, _ = orchestration.wake_or_advance(rt.engine, review_id, today=day, reports_dir=rt.settings.data_dir / "reports")
            logger.info("%s：督查 %s 填报已截止，进入评定（%s）", scope.name, review_id, how)
    for w in warnings:
        logger.warning("%s：%s", scope.name, w)
    return {"decided": decided, "new": new, "warnings": warnings}


@task(name="rollup-snapshot")
def snapshot_schools(scopes: list[SweepScope], day: dt.date) -> int:
    """The day's roll-up snapshot of the schools swept (one computation for those on the
    installation's calendar, one per school with its own): the trend in the reports."""
    from duban.rollup.snapshots import take_snapshot

    rows = 0
    for group in runtime_groups(runtime(), scopes):
        try:
            rows += take_snapshot(group.rt.engine, as_of=day, tz=group.rt.tz, cal=group.rt.calendar, plan_ids=group.plan_ids)
        except Exception as err:  # noqa: BLE001 - the day's reminders are out; a missing trend point is not worth failing for
            get_run_logger().warning("今日汇总快照未能保存（不影响提醒和督办）：%s: %s", err.__class__.__name__, err)
    return rows


def _worth_retrying(task: Any, task_run: Any, state: Any) -> bool:
    """Retry what may pass (the store busy, a network error), not a school's wrong settings."""
    from duban.institutions import InstitutionError
    from duban.rules.calendar import CalendarFileError
    from duban.settings import ConfigurationError

    return not isinstance(state.data, (InstitutionError, CalendarFileError, ConfigurationError))


@task(
    name="institution",
    task_run_name="{scope.name}（{scope.code}）",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=_worth_retrying,
)
def sweep_institution(scope: SweepScope, day: dt.date, force: bool = False) -> dict[str, Any]:
    """The day's work of one school with its own runtime; its row of the summary."""
    logger = get_run_logger()
    started, clock = dt.datetime.now(dt.UTC), time.perf_counter()
    rt = runtime().for_institution(scope.code)
    row: dict[str, Any] = {"code": scope.code, "name": scope.name, "decided": 0, "new": 0, "digests": 0, "sent": 0, "failed": 0}
    if not force and not rt.calendar.is_workday(day):
        logger.info("%s：%s 不是本单位的工作日，今天不检查", scope.name, day)
        return {**row, "outcome": SweepOutcome.SKIPPED, "seconds": 0.0, "note": ""}
    plans = list(scope.plan_ids)
    row.update(_decide_and_tick(rt, scope, day))
    row["digests"] = assemble(
        rt.engine, today=day, links=rt.links(day), channel=rt.channel.name, template_dir=rt.settings.template_dir, plan_ids=plans
    )
    delivered = deliver_due(rt, plan_ids=plans)
    outcome = day_outcome(rt.engine, run_on=day, since=started, now=dt.datetime.now(dt.UTC), plan_ids=plans)
    row.update(sent=outcome.sent, failed=outcome.failed, paused=delivered.paused)
    for e in delivered.errors[:20]:
        logger.error("%s：发送失败（将稍后重试）：%s", scope.name, e)
    notes = [n for n in [paused_line(delivered), *row.pop("warnings")] if n]
    row.update(outcome=SweepOutcome.DONE, seconds=round(time.perf_counter() - clock, 2), note=NOTE_SEP.join(notes))
    logger.info(
        "%s：应发事项 %s 项（新增 %s 项），生成通知 %s 份，发送成功 %s 份，失败 %s 份",
        scope.name, row["decided"], row["new"], row["digests"], row["sent"], row["failed"],
    )  # fmt: skip
    _school_artifact(row, day)
    return row


def _school_artifact(row: dict[str, Any], day: dt.date) -> None:
    lines = [
        f"## {row['name']}（{row['code']}）督办检查 {day.isoformat()}",
        "",
        f"- 应发事项 {row['decided']} 项，其中新增 {row['new']} 项",
        f"- 生成通知 {row['digests']} 份；发送成功 {row['sent']} 份，失败 {row['failed']} 份",
    ]
    lines += [f"- {n}" for n in row["note"].split(NOTE_SEP) if n]
    create_markdown_artifact(key=artifact_key(row["code"]), markdown="\n".join(lines), description=f"{row['name']} {day.isoformat()}")


def sweep_schools(scopes: list[SweepScope], day: dt.date, force: bool) -> list[dict[str, Any]]:
    """Each school as its own task run, one after the other; a school that fails after its
    retries is a row with outcome ``failed`` and the reason, and the next school goes on.  Then
    the roll-up snapshot of the schools swept (once for the batch: its cost is mostly fixed)."""
    rows = []
    for scope in scopes:
        with tags(institution_tag(scope.code)):
            state = sweep_institution(scope, day, force, return_state=True)
        if state.is_completed():
            rows.append(state.result())
            continue
        reason = state.message or state.name
        get_run_logger().error("%s（%s）的督办检查未完成：%s", scope.name, scope.code, reason)
        rows.append({"code": scope.code, "name": scope.name, "outcome": SweepOutcome.FAILED, "note": reason})
    done = {r["code"] for r in rows if r["outcome"] == SweepOutcome.DONE}
    if done:
        snapshot_schools([s for s in scopes if s.code in done], day)
    return rows


def table_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows as the summary table shows them (Chinese column names, the outcome's label)."""
    return [{label: (SweepOutcome(r[key]).label if key == "outcome" else r.get(key, "")) for key, label in COLUMNS.items()} for r in rows]


def rows_of_table(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows back from the summary table (what the daily sweep reads of a child run)."""
    outcomes = {o.label: o for o in SweepOutcome}
    back = {label: key for key, label in COLUMNS.items()}
    out = []
    for r in table:
        row = {back[k]: v for k, v in r.items() if k in back}
        row["outcome"] = outcomes.get(row.get("outcome", ""), SweepOutcome.FAILED)
        out.append(row)
    return out


class IncompleteSweepError(RuntimeError):
    """Some schools' sweeps did not finish (after their retries); the others did.  ``summary``:
    what the run did all the same (the daily sweep's summary, for `duban check`)."""

    def __init__(self, message: str, summary: dict[str, Any] | None = None):
        super().__init__(message)
        self.summary = summary


def failed_names(rows: list[dict[str, Any]]) -> list[str]:
    return [f"{r['name']}（{r['code']}）" for r in rows if r["outcome"] == SweepOutcome.FAILED]


def _run_name() -> str:
    """``sweep <day> <schools>``: the name the daily sweep gives its child runs (Prefect names a
    run again when a worker starts it)."""
    params = flow_run.parameters
    codes = list(params.get("institutions") or [])
    with session_scope(runtime().engine, readonly=True) as session:
        names = {s.code: s.name for s in sweep_scopes(session, codes)}
    day = params.get("today") or runtime().today()
    return f"sweep {day} {school_names([names.get(c, c) for c in codes])}".strip()


@flow(name="institution-sweep", flow_run_name=_run_name)
def institution_sweep(institutions: list[str], today: dt.date | None = None, force: bool = False, plan: str | None = None) -> dict:
    """各单位的每日督办检查（由每日检查按批分派）：按各单位的校历、渠道和模板检查并发送通知。"""
    rt = runtime()
    with session_scope(rt.engine, readonly=True) as session:
        scopes = sweep_scopes(session, institutions, plan=plan)
    day = today or rt.today()
    rows = sweep_schools(scopes, day, force)
    create_table_artifact(table=table_rows(rows), description=SUMMARY_DESCRIPTION)
    failed = failed_names(rows)
    if failed:
        raise IncompleteSweepError(f"以下单位的督办检查未完成：{'、'.join(failed)}（其余单位已完成）")
    return {"today": day.isoformat(), "institutions": rows}
