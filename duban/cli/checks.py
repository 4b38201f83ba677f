"""``duban check / deliver / outbox``: the daily check, delivering what is due, and what went out."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from duban.cli.common import (
    _engine,
    _fail,
    _parse_day,
    _prefect_api,
    _require_plan,
    _runtime,
    app,
    console,
    err_console,
)


@app.command("check")
def check_command(
    today: Annotated[str | None, typer.Option("--today", help="按这一天检查（YYYY-MM-DD，缺省为今天）")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只列出今天谁会收到什么，不记录、不发送")] = False,
    task: Annotated[str | None, typer.Option("--task", help="只检查这一项任务（任务编号）")] = None,
    plan: Annotated[str | None, typer.Option("--plan", help="只检查这个方案（方案编号）")] = None,
    force: Annotated[bool, typer.Option("--force", help="非工作日也检查")] = False,
    institution: Annotated[str | None, typer.Option("--institution", help="只检查这个单位（单位编号），按本单位的校历和渠道")] = None,
) -> None:
    """督办检查：按期提醒责任人，逾期逐级督办，每人汇总成一份通知发出（通过 Prefect 运行）。"""

    day = _parse_day(today)
    _engine()
    rt = _scoped_runtime(_runtime(), institution)
    from duban.db import session_scope

    with session_scope(rt.engine, readonly=True) as session:
        _require_plan(session, plan)
    # decided before Prefect is imported or any server started: a holiday costs about a second
    if not force and not _anyone_working(rt, day, institution=institution, plan=plan):  # one task too: nothing to send today
        if dry_run:
            console.print(f"{day.isoformat()} 不是工作日，每日检查不会发送任何通知（可加 --force 强制检查）。", markup=False)
        else:
            console.print(f"{day.isoformat()} 不是工作日，未检查（可加 --force 强制检查）。", markup=False)
        return
    if dry_run:
        _check_preview(rt, day, plan=plan, task=task, institution=institution)
        return

    from duban import orchestration

    with _prefect_api(rt.settings) as ready:
        if task:
            try:
                summary = orchestration.run_task_check(ready, task, plan=plan, today=day)
            except orchestration.TaskNotFound as err:
                _fail(str(err), 1)
        else:
            summary = orchestration.run_daily_sweep(ready, today=day, plan=plan, force=force, institution=institution)
    if summary.get("skipped"):
        console.print(f"{day.isoformat()} 不是工作日，未检查（可加 --force 强制检查）。", markup=False)
        return
    console.print(
        f"{day.isoformat()} 检查完成：应发事项 {summary['decided']} 项（新增 {summary['new']} 项），"
        f"生成通知 {summary['digests']} 份，发送成功 {summary['sent']} 份，失败 {summary['failed']} 份。",
        markup=False,
    )
    for line in summary["notes"]:
        console.print(line, markup=False)
    _where_it_went(rt, summary["sent"])
    failed = [r for r in summary.get("institutions", []) if r["code"] in summary.get("failed_institutions", [])]
    for r in failed:
        err_console.print(f"{r['name']}（{r['code']}）的检查未完成：{r.get('note') or '原因见 Prefect 运行日志'}", markup=False)
    if failed:
        raise typer.Exit(SWEEP_INCOMPLETE)
    if summary["failed"] or summary["sending"] or summary["paused"]:
        raise typer.Exit(DELIVERY_PROBLEMS)


SWEEP_INCOMPLETE = 4  # exit status: some institutions' checks did not finish (the others did)


def _scoped_runtime(rt, institution: str | None):
    """The runtime of the institution named (``--institution``), else the installation's."""
    if institution is None:
        return rt
    from duban.institutions import InstitutionError

    try:
        return rt.for_institution(institution)
    except InstitutionError as err:
        _fail(str(err), 2)


def _anyone_working(rt, day: dt.date, *, institution: str | None, plan: str | None) -> bool:
    """Whether ``day`` is a working day for any institution the check covers (each by its own
    calendar); the calendars' warnings are shown once each."""
    from duban.db import session_scope
    from duban.institutions import sweep_scopes

    with session_scope(rt.engine, readonly=True) as session:
        codes = [s.code for s in sweep_scopes(session, [institution] if institution else None, plan=plan)]
    if institution or not codes:
        working = rt.calendar.is_workday(day)
        warnings = rt.calendar.warnings
    else:
        working, warnings = _any_calendar_working(rt, codes, day)
    for w in dict.fromkeys(warnings):
        err_console.print(f"提示：{w}", markup=False)
    return working


def _any_calendar_working(rt, codes: list[str], day: dt.date) -> tuple[bool, list[str]]:
    """Each institution by its own calendar; one whose settings or calendar cannot be read counts
    as working (its check fails and says why, the others go on)."""
    from duban.institutions import InstitutionError
    from duban.rules.calendar import CalendarFileError

    working, warnings = False, []
    for code in codes:
        try:
            cal = rt.for_institution(code).calendar
            working = working or cal.is_workday(day)
        except (InstitutionError, CalendarFileError):
            working = True
            continue
        warnings += cal.warnings
    return working, warnings


DELIVERY_PROBLEMS = 3  # exit status: the check ran, but some messages did not go out (failed, paused, or held by a run)


def _where_it_went(rt, sent: int) -> None:
    if not sent:
        return
    from notifications.outbox import OutboxChannel

    if isinstance(rt.channel, OutboxChannel):
        console.print(f"通知已写入本地发件箱：{rt.settings.outbox_path}（也可用 duban outbox 查看）", markup=False)
    else:
        console.print("通知已按各人的通知渠道发出（发送记录见 duban outbox）。", markup=False)


@app.command("deliver")
def deliver_command(
    institution: Annotated[str | None, typer.Option("--institution", help="只发送这个单位的通知（单位编号），按本单位的渠道")] = None,
) -> None:
    """发送到期的通知：失败后到了重试时间的、因不在发送时段而延后的，以及上次发送中断的（duban run 每 5 分钟自动执行）。"""
    from duban.institutions import InstitutionError
    from duban.sweep.sending import delivery_groups

    _engine()
    now = dt.datetime.now(dt.UTC)
    try:
        groups = delivery_groups(_runtime(), [institution] if institution else None)
    except InstitutionError as err:
        _fail(str(err), 2)
    problems = False
    for group in groups:
        if len(groups) > 1:
            console.print(f"【{group.label}】", markup=False)
        problems = _deliver_group(group, now) or problems
    if problems:
        raise typer.Exit(DELIVERY_PROBLEMS)


def _deliver_group(group, now: dt.datetime) -> bool:
    """Deliver one group of institutions with its runtime; whether something did not go out."""
    from duban.sweep.sending import day_outcome, deliver_due, outcome_lines, paused_line

    rt = group.rt
    result = deliver_due(rt, now=now, plan_ids=group.plan_ids)
    if result.recovered or result.interrupted:
        console.print(f"上次发送中断：{result.recovered} 份已确认发出（不再重发），{result.interrupted} 份已重新发送或排队。", markup=False)
    for e in result.errors[:20]:
        err_console.print(f"发送失败（将自动重试）：{e}", markup=False)
    outcome = day_outcome(rt.engine, run_on=now.astimezone(rt.tz).date(), since=now, now=now, plan_ids=group.plan_ids)
    console.print(f"发送成功 {result.sent} 份，失败 {result.failed} 份。", markup=False)
    for line in [paused_line(result), *outcome_lines(outcome)]:
        if line:
            console.print(line, markup=False)
    _where_it_went(rt, result.sent)
    _sync_todos(rt, now, group.plan_ids)
    return bool(result.failed or result.paused or outcome.sending)


def _sync_todos(rt, now: dt.datetime, plan_ids: list[int] | None = None) -> None:
    """DingTalk 待办, when a DingTalk app is configured (``duban.chat_todos``)."""
    from duban.chat_todos import sync_configured

    todos = sync_configured(rt, now=now, plan_ids=plan_ids)
    if todos is None:
        return
    console.print(f"钉钉待办：新建 {todos.created} 项，改期 {todos.updated} 项，关闭 {todos.closed} 项。", markup=False)
    for e in todos.errors[:20]:
        err_console.print(f"钉钉待办同步失败（下次发送时重试）：{e}", markup=False)


def _check_preview(rt, day: dt.date, *, plan: str | None, task: str | None, institution: str | None = None) -> None:
    """`duban check --dry-run`: who would get what today, by recipient; nothing recorded or sent."""
    from duban.sweep.decisions import preview
    from duban.sweep.kinds import facts

    if task:
        from duban.orchestration import TaskNotFound, task_tags

        try:
            plan, _ = task_tags(task, plan)
        except TaskNotFound as err:
            _fail(str(err), 1)
    plans: list[str | None] = [plan]
    if institution is not None and plan is None:
        from duban.db import session_scope
        from duban.institutions import sweep_scopes

        with session_scope(rt.engine, readonly=True) as session:
            plans = [code for scope in sweep_scopes(session, [institution]) for code in scope.plan_codes]
    items = [i for p in plans for i in preview(rt.engine, today=day, cal=rt.calendar, tz=rt.tz, plan_code=p, task_code=task)]
    for w in rt.calendar.warnings:
        err_console.print(f"提示：{w}", markup=False)
    if not items:
        console.print(f"{day.isoformat()}：没有需要发送的提醒或督办（已发过的不会重复发送）。", markup=False)
        return
    console.print(f"{day.isoformat()} 将发送的事项（预览，未记录、未发送）：", markup=False)
    by_recipient: dict[str, list] = {}
    for i in items:
        by_recipient.setdefault(i.recipient, []).append(i)
    for name, its in by_recipient.items():
        console.print(f"\n{name}（{len(its)} 项）", markup=False)
        for i in its:
            console.print(f"  - [{facts(i.kind).label or i.kind}] {i.code} {i.title}：{i.line}", markup=False)
    recipients = len({i.recipient for i in items})
    console.print(f"共 {len(items)} 项，{recipients} 位收件人（每人一份汇总通知）。", markup=False)


@app.command("outbox")
def outbox_command(
    day: Annotated[str | None, typer.Option("--date", help="只看这一天的通知（YYYY-MM-DD）")] = None,
    person: Annotated[str | None, typer.Option("--person", help="只看这位收件人（姓名）")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="只看发送失败（等待重试）和发送中断（将自动重发）的通知")] = False,
    show: Annotated[int | None, typer.Option("--show", help="显示这份通知的全文（编号）")] = None,
    limit: Annotated[int, typer.Option("--limit", help="最多列出几份")] = 50,
) -> None:
    """发件箱：查看已生成的通知、发送状态和失败原因。"""

    from duban.sweep.rows import digest_rows

    engine = _engine()
    if show is not None:
        _show_digest(engine, show)
        return
    run_on = _parse_day(day) if day else None
    if failed:
        _list_problems(engine, run_on=run_on, person=person, limit=limit)
        return
    rows = digest_rows(engine, run_on=run_on, person=person, limit=limit)
    if not rows:
        console.print("发件箱中没有符合条件的通知。", markup=False)
        return
    columns = ("编号", "日期", "收件人", "事项", "状态", "尝试次数", "失败原因")
    _print_table(columns, [[str(r[c]) for c in columns] for r in rows])


def _print_table(columns: tuple[str, ...], rows: list[list[str]]) -> None:
    from rich.table import Table

    table = Table()
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _show_digest(engine, digest_id: int) -> None:
    """`duban outbox --show`: one message in full, as its recipient reads it."""
    from sqlalchemy import select

    from duban.db import session_scope
    from duban.models import Digest, Person

    with session_scope(engine, readonly=True) as s:
        q = select(Digest, Person.name).outerjoin(Person, Person.id == Digest.recipient_id).where(Digest.id == digest_id)
        row = s.execute(q).first()
    if row is None:
        _fail(f"没有编号为 {digest_id} 的通知。", 1)
    digest, name = row
    from duban.sweep.delivery import AUDIENCE_NAMES
    from notifications.channel import Outgoing
    from notifications.digest import link_ids, page_url
    from notifications.render import render_text

    rt = _runtime()
    with session_scope(engine, readonly=True) as s:
        urls = rt.links().urls(s, link_ids(digest.payload))
    name = name or AUDIENCE_NAMES.get(digest.audience, digest.payload.get("recipient", ""))
    out = Outgoing(
        digest.id, digest.recipient_id, name, None, digest.run_on, digest.subject, digest.payload, digest.attempts,
        urls=urls, page_url=page_url(digest.payload, urls),
    )  # fmt: skip
    console.print(f"收件人：{name}\n主题：{digest.subject}\n", markup=False)
    console.print(render_text(out, template_dir=rt.settings.template_dir), markup=False)


def _list_problems(engine, *, run_on: dt.date | None, person: str | None, limit: int) -> None:
    """`duban outbox --failed`: messages that failed (waiting for a retry) or were interrupted."""

    from duban.sweep.rows import delivery_problems

    rt = _runtime()
    problems = delivery_problems(
        engine, now=dt.datetime.now(dt.UTC), lease_seconds=rt.settings.deliver_lease, run_on=run_on, person=person, tz=rt.tz, limit=limit
    )
    if not problems:
        console.print("发件箱中没有符合条件的通知。", markup=False)
        return
    _print_table(
        ("编号", "日期", "收件人", "状态", "尝试次数", "原因", "下次重试"),
        [[str(p.digest_id), p.run_on.isoformat(), p.recipient, p.state, str(p.attempts), p.reason, p.next_text] for p in problems],
    )
