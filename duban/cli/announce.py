"""``duban announce``: 任务下达 — tell each owner, once, the tasks they are responsible for."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from duban.cli.common import InstitutionOption, _engine, _fail, _parse_day, _plan_scope, _runtime, app, console


@app.command("announce")
def announce_command(
    plan: Annotated[str | None, typer.Option("--plan", help="只下达这个方案的任务（方案编号）；缺省为全部方案")] = None,
    task: Annotated[list[str] | None, typer.Option("--task", help="只下达这项任务（任务编号，可重复写多次）")] = None,
    today: Annotated[str | None, typer.Option("--today", help="下达日期（YYYY-MM-DD，缺省为今天）")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只列出将向谁下达哪些任务，不记录、不发送")] = False,
    no_notice: Annotated[bool, typer.Option("--no-notice", help="已线下下达（如会上印发了任务书）：只记为已下达，不发通知")] = False,
    actor: Annotated[str | None, typer.Option("--actor", help="记入操作记录的操作人（缺省为“领导小组办公室”）")] = None,
    institution: InstitutionOption = None,
) -> None:
    """任务下达：向尚未下达的任务（首次下达、再次导入新增的、更换责任人的）的责任人发出任务书和时间表，每人一份通知。"""
    from duban.announce import AnnounceError, announce, announce_now, moment
    from duban.db import session_scope
    from duban.plans.writes import OFFICE_ACTOR

    day = _parse_day(today)
    with session_scope(_engine(), readonly=True) as session:
        scope = _plan_scope(session, institution, plan)
    rt = _runtime(institution)  # the institution's own calendar and channels
    now = moment(day, rt.tz)
    who = actor or OFFICE_ACTOR
    codes = list(task or ()) or None
    only: dict[str, Any] = {"plan_code": plan, "task_codes": codes, "plan_ids": scope.plan_ids}
    try:
        if dry_run:
            result = announce(rt.engine, today=day, now=now, actor=who, dry_run=True, **only)
        else:
            result = announce_now(rt, today=day, now=now, actor=who, notify=not no_notice, **only)
    except AnnounceError as err:
        _fail(str(err), 1)
    if not result.announced:
        console.print(f"没有需要下达的任务（{result.already} 项任务此前已下达）。", markup=False)
        return
    for owner, tasks in result.by_owner().items():
        console.print(f"  {owner}：" + "；".join(f"{t.code} {t.title}" for t in tasks), markup=False, highlight=False)
    already = f"；另有 {result.already} 项此前已下达" if result.already else ""
    if dry_run:
        console.print(f"将下达 {result.announced} 项任务，涉及责任人 {result.owners} 位{already}。", markup=False)
        console.print("（预览：以上任务尚未下达。去掉 --dry-run 即可下达。）", markup=False)
    elif no_notice:
        console.print(f"已将 {result.announced} 项任务记为线下下达（涉及责任人 {result.owners} 位），未发送通知{already}。", markup=False)
    else:
        console.print(f"已下达 {result.announced} 项任务，向 {result.owners} 位责任人各发出一份下达通知{already}。", markup=False)
