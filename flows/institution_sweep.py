"""The schools' daily sweep, a batch of them as one flow run (``institution-sweep``).

The day's work — decide (rules → ledger), the review tick, assemble, deliver — is done once for
all the schools of the batch that share the installation's runtime (no settings of their own):
one Prefect task run over all their plans, tagged with each school's ``institution:<code>`` (up to
``MOST_TAGGED`` schools).  Each school with settings of its own (calendar, time zone, templates,
channel, chat apps: ``Runtime.for_institution``) is its own task run named after the school and
tagged, with a markdown artifact ``sweep-<code>``.  Each school is a row of the run's summary
table either way.  Then the roll-up snapshot of the batch's schools at once.  A school that fails
is retried, then reported; the other schools go on (should the schools swept together fail, they
are swept again one by one, so that the one at fault is found).

Sweeping the schools together is what keeps a province's sweep close to the cost of its work:
per school, a task run of its own costs ≈ 0.2 s of Prefect calls and each step's fixed queries
(benchmarks/README.md, "The sweep at 150 institutions").

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
from duban.sweep.decisions import DecideResult, decide
from duban.sweep.digests import assemble
from duban.sweep.sending import DayOutcome, deliver_due, outcomes_by_plan, paused_line, runtime_groups
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


# Prefect attaches a run's tags to each of its events, and refuses an event with more than 100
# related resources: a run of more schools than this is tagged by none of them (its name, the
# summary table and the schools' rows say which they are)
MOST_TAGGED = 40


def institution_tag(code: str) -> str:
    return f"institution:{code}"


def institution_tags(codes: list[str]) -> list[str]:
    """The tags of a run of these schools: each school's, unless they are too many to tag."""
    return [institution_tag(c) for c in codes] if len(codes) <= MOST_TAGGED else []


def artifact_key(code: str) -> str:
    """A Prefect artifact key for the school (lower-case letters, digits and dashes only)."""
    return "sweep-" + (re.sub(r"[^a-z0-9-]+", "-", code.lower()).strip("-") or "x")


def _decide_and_tick(rt: Runtime, plan_ids: list[int], label: str, day: dt.date) -> DecideResult:
    """Decide the plans (one school's, or the schools' swept together), then their reviews'
    reminders (a review whose reply-by date passed is woken or advanced)."""
    from duban import orchestration
    from duban.reviews import api as reviews

    logger = get_run_logger()
    result = decide(rt.engine, today=day, cal=rt.calendar, tz=rt.tz, plan_ids=plan_ids)
    tick = reviews.tick(rt.engine, today=day, cal=rt.calendar, tz=rt.tz, plan_ids=plan_ids)
    for review_id in tick.changed:
        how, _ = orchestration.wake_or_advance(rt.engine, review_id, today=day, reports_dir=rt.settings.data_dir / "reports")
        logger.info("%s：督查 %s 填报已截止，进入评定（%s）", label, review_id, how)
    for w in result.warnings:
        logger.warning("%s：%s", label, w)
    return result


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
    (row,) = _sweep(runtime().for_institution(scope.code), [scope], scope.name, day, force)
    if row["outcome"] == SweepOutcome.DONE:
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


@task(name="institutions", task_run_name="{label}")
def sweep_together(label: str, scopes: list[SweepScope], day: dt.date, force: bool = False) -> list[dict[str, Any]]:
    """The day's work of schools without settings of their own (they share the installation's
    runtime) at once: what each school's own task run would do, with each step's fixed cost paid
    once instead of once per school.  No markdown artifact per school (the summary table of the
    run is their history): each would cost a call to the Prefect server, ≈ 0.1 s — as much as the
    school's share of the sweep."""
    return _sweep(runtime(), scopes, label, day, force)


def _sweep(rt: Runtime, scopes: list[SweepScope], label: str, day: dt.date, force: bool) -> list[dict[str, Any]]:
    """The day's work of ``scopes`` with runtime ``rt`` (``label``: how the logs name them): one
    decide, one review tick, one assemble and one delivery over all their plans; a row per school,
    counted from the store."""
    logger = get_run_logger()
    started, clock = dt.datetime.now(dt.UTC), time.perf_counter()
    if not force and not rt.calendar.is_workday(day):
        logger.info("%s：%s 不是%s的工作日，今天不检查", label, day, "本单位" if len(scopes) == 1 else "各单位")
        return [_row(s, outcome=SweepOutcome.SKIPPED) for s in scopes]
    plans = [p for s in scopes for p in s.plan_ids]
    decided = _decide_and_tick(rt, plans, label, day)
    assemble(rt.engine, today=day, links=rt.links(day), channel=rt.channel.name, template_dir=rt.settings.template_dir, plan_ids=plans)
    delivered = deliver_due(rt, plan_ids=plans)
    counts = outcomes_by_plan(rt.engine, run_on=day, since=started, now=dt.datetime.now(dt.UTC), plan_ids=plans)
    for e in delivered.errors[:20]:
        logger.error("%s：发送失败（将稍后重试）：%s", label, e)
    note = NOTE_SEP.join(n for n in [paused_line(delivered), *decided.warnings] if n)
    share = round((time.perf_counter() - clock) / len(scopes), 2)  # each school's share of the run's time
    rows = [_counted(s, decided, counts, seconds=share, note=note, paused=delivered.paused) for s in scopes]
    made, sent, failed = (sum(r[k] for r in rows) for k in ("digests", "sent", "failed"))
    logger.info(
        "%s：应发事项 %s 项（新增 %s 项），生成通知 %s 份，发送成功 %s 份，失败 %s 份",
        label,
        decided.decided,
        decided.new,
        made,
        sent,
        failed,
    )
    return rows


def _counted(scope: SweepScope, decided: DecideResult, counts: dict[int, tuple[int, DayOutcome]], **values: Any) -> dict[str, Any]:
    """A school's row of a run that swept it with others: its plans' counts added up."""
    row = _row(scope, outcome=SweepOutcome.DONE, **values)
    for plan_id in scope.plan_ids:
        made, outcome = counts.get(plan_id, (0, DayOutcome()))
        fresh = decided.by_plan.get(plan_id, (0, 0))
        for key, value in zip(("decided", "new", "digests", "sent", "failed"), (*fresh, made, outcome.sent, outcome.failed), strict=True):
            row[key] += value
    return row


def _row(scope: SweepScope, **values: Any) -> dict[str, Any]:
    """A school's row of the summary, its counts at zero (``values``: the rest, and what to set)."""
    return {"code": scope.code, "name": scope.name, "decided": 0, "new": 0, "digests": 0, "sent": 0, "failed": 0} | {
        "seconds": 0.0, "note": "", **values
    }  # fmt: skip


def _one_by_one(scopes: list[SweepScope], day: dt.date, force: bool) -> list[dict[str, Any]]:
    """Each school as its own task run, one after the other; a school that fails after its
    retries is a row with outcome ``failed`` and the reason, and the next school goes on."""
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
    return rows


def sweep_schools(scopes: list[SweepScope], day: dt.date, force: bool) -> list[dict[str, Any]]:
    """The schools without settings of their own together (``sweep_together``), each school with
    its own runtime on its own (``sweep_institution``).  Should the schools swept together fail,
    they are swept again one by one (the ledger keeps that harmless), so that the one at fault is
    retried, then named, and the others go on.  Then the roll-up snapshot of the schools swept
    (once for the batch: its cost is mostly fixed).  The rows in the order of ``scopes``."""
    shared = [s for s in scopes if not s.own_settings]
    rows = []
    if len(shared) > 1:
        label = school_names([s.name for s in shared])
        with tags(*institution_tags([s.code for s in shared])):
            state = sweep_together(label, shared, day, force, return_state=True)
        if state.is_completed():
            rows, shared = state.result(), []
        else:
            get_run_logger().warning("%s 一并检查未完成（%s），改为逐个单位检查", label, state.message or state.name)
    rows += _one_by_one([s for s in scopes if s.own_settings or s in shared], day, force)
    order = {s.code: i for i, s in enumerate(scopes)}
    rows.sort(key=lambda r: order[r["code"]])
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
