"""The ``duban`` command: a thin layer over the library (typer + rich)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from duban.settings import ConfigurationError, Settings, get_settings

app = typer.Typer(
    help="督办（duban）：把改革任务清单（任务书·路线图·时间表·责任人）变成按期提醒、逐级督办、汇总通报的流程。",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="数据库：升级结构、查看版本。", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

EXAMPLE_PLAN = Path(__file__).resolve().parent.parent / "definitions" / "plans" / "sanquan-yuren.yaml"


def _fail(message: str, code: int = 1) -> None:
    err_console.print(message, markup=False, highlight=False)
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        return get_settings()
    except ConfigurationError as err:
        _fail(f"无法启动：{err}", 2)
        raise  # unreachable


def _engine():
    from duban.db import get_engine

    settings = _settings()
    try:
        return get_engine(settings.database_url)
    except Exception as err:  # noqa: BLE001 - any driver error becomes one clear message
        _fail(f"无法连接数据库 {_safe_url(settings.database_url)}：{err.__class__.__name__}: {err}", 2)
        raise


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return "（无法解析的地址）"


def _runtime():
    """The run's calendar, time zone and channel; a bad institution calendar file is one message."""
    from duban.rules.calendar import CalendarFileError
    from duban.runtime import runtime

    rt = runtime()
    try:
        rt.calendar  # noqa: B018 - load the institution file now, not in the middle of a run
    except CalendarFileError as err:
        _fail(f"无法读取单位日历文件：{err}", 2)
    return rt


@contextlib.contextmanager
def _prefect_api(settings: Settings) -> Iterator[Callable[[], None]]:
    """Where the flows of a command run: the configured Prefect server (PREFECT_API_URL), else the
    one `duban run` serves on this data folder, else a temporary server started now, in the
    background, while the command imports its flows. Call the yielded ``ready()`` right before
    running a flow; enter this before importing Prefect or the flows."""
    from duban.prefect_server import PrefectServerError, running_api_url, temporary_prefect_server

    with contextlib.ExitStack() as stack:
        api_url = running_api_url(settings)
        wait = (lambda: api_url) if api_url else temporary_prefect_server(settings)

        def ready() -> None:
            from prefect.settings import PREFECT_API_URL, temporary_settings

            try:
                url = wait()
            except PrefectServerError as err:
                _fail(f"{err}。可先运行 duban run，或设置 PREFECT_API_URL 使用已有的 Prefect 服务。", 1)
            stack.enter_context(temporary_settings(updates={PREFECT_API_URL: url}))

        yield ready


def _parse_day(value: Optional[str]) -> dt.date:
    if not value:
        from zoneinfo import ZoneInfo

        return dt.datetime.now(ZoneInfo(_settings().timezone)).date()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        _fail(f"日期“{value}”格式不正确，请写作 YYYY-MM-DD，如 2026-11-23", 2)
        raise


@app.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="方案文件：YAML（.yaml）、Excel（.xlsx）或 CSV（.csv）")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只显示将要发生的变更，不写入数据库")] = False,
    plan: Annotated[Optional[str], typer.Option("--plan", help="方案编号：覆盖文件中的编号（Excel/CSV 没有“方案”表时缺省为文件名）")] = None,
    actor: Annotated[Optional[str], typer.Option("--actor", help="记入操作记录的操作人（缺省为当前系统用户）")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="以 JSON 输出变更")] = False,
) -> None:
    """导入或更新一个方案：新增任务、变更时间和责任人、归档删除的任务，已有进展不丢失。"""
    from definitions.problems import PlanProblems
    from duban.plans.importer import import_plan

    from sqlalchemy.exc import DBAPIError

    engine = _engine()
    try:
        diff = import_plan(engine, path, dry_run=dry_run, actor=actor, plan_code=plan)
    except DBAPIError as err:
        _fail(f"写入数据库时出错，本次导入未写入任何内容（{err.__class__.__name__}：{err.orig}）。如有其他导入正在进行，请稍后重试。", 1)
    except PlanProblems as err:
        if as_json:
            print(json.dumps({"ok": False, "problems": [{"where": p.where, "message": p.message} for p in err.problems]}, ensure_ascii=False, indent=2))
            raise typer.Exit(1)
        _fail(err.render(), 1)
    if as_json:
        print(json.dumps({"ok": True, "dry_run": dry_run, **diff.to_dict()}, ensure_ascii=False, indent=2))
        return
    console.print(diff.render(), markup=False, highlight=False)
    if dry_run:
        console.print("（预览：以上变更尚未写入。去掉 --dry-run 即可导入。）", markup=False)
    else:
        console.print("导入完成。", markup=False)


@app.command("status")
def status_command(
    plan: Annotated[Optional[str], typer.Option("--plan", help="只看这个方案（方案编号）")] = None,
    today: Annotated[Optional[str], typer.Option("--today", help="按这一天统计（YYYY-MM-DD，缺省为今天）")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="输出 JSON（格式见 docs/status-json.md）")] = False,
) -> None:
    """任务进展统计：按状态、按育人体系、按牵头单位。"""
    from duban.db import session_scope
    from duban.status import collect_status, render_status

    day = _parse_day(today)
    engine = _engine()
    with session_scope(engine, readonly=True) as session:
        _require_plan(session, plan)
        data = collect_status(session, today=day, plan_code=plan)
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return
    if not data["by_plan"]:
        console.print("库中还没有方案。请先导入：duban import 方案文件.xlsx", markup=False)
        return
    for item in render_status(data):
        console.print(item)


def _require_plan(session, plan: str | None) -> None:
    """A --plan that names no plan is one clear message listing the plans there are."""
    if plan is None:
        return
    from sqlalchemy import select

    from duban.models import Plan

    if session.scalar(select(Plan.id).where(Plan.code == plan)) is None:
        known = "、".join(session.scalars(select(Plan.code).order_by(Plan.code))) or "（暂无，请先用 duban import 导入）"
        _fail(f"没有编号为“{plan}”的方案。已有方案：{known}", 1)


@app.command("plans")
def plans_command() -> None:
    """列出库中的方案。"""
    from rich.table import Table
    from sqlalchemy import func, select

    from duban.db import session_scope
    from duban.models import Plan, Task

    with session_scope(_engine()) as session:
        rows = session.execute(
            select(Plan.code, Plan.name, Plan.organization, Plan.updated_at, func.count(Task.id))
            .outerjoin(Task, (Task.plan_id == Plan.id) & Task.archived_at.is_(None))
            .group_by(Plan.id)
            .order_by(Plan.code)
        ).all()
    if not rows:
        console.print("库中还没有方案。请先导入：duban import 方案文件.xlsx", markup=False)
        return
    table = Table()
    for col in ("方案编号", "方案名称", "单位", "在办任务", "最近更新"):
        table.add_column(col)
    for code, name, org, updated, n in rows:
        table.add_row(code, name, org or "", str(n), updated.strftime("%Y-%m-%d %H:%M") if updated else "")
    console.print(table)


@app.command("report")
def report_command(
    out: Annotated[Optional[Path], typer.Option("--out", help="报告保存到这个文件夹（缺省为数据目录下的 reports）")] = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="按这一天统计（YYYY-MM-DD，缺省为今天）")] = None,
    plan: Annotated[Optional[str], typer.Option("--plan", help="只统计这个方案（方案编号）；缺省为全部方案")] = None,
    snapshot: Annotated[bool, typer.Option("--snapshot/--no-snapshot", help="同时记录当日快照（趋势图的数据），缺省记录")] = True,
) -> None:
    """督办汇总报告：完成率、按期率、红黄绿灯、逾期和待审核事项、延期、趋势和单位考核，生成 HTML 报告和 Excel 工作簿。"""
    from duban import rollup
    from duban.report import write_report
    from duban.rollup.compute import compute
    from duban.rollup.snapshots import snapshot as store_snapshot

    day = _parse_day(as_of)
    engine = _engine()
    rt = _runtime()
    try:
        r = compute(engine, as_of=day, plan_code=plan, tz=rt.tz, cal=rt.calendar)
    except rollup.RollupError as err:
        _fail(str(err), 1)
    if r.plans.empty:
        _fail("库中还没有方案。请先导入：duban import 方案文件.xlsx", 1)
    if snapshot:
        store_snapshot(engine, r)
    folder = out or _settings().data_dir / "reports"
    try:
        files = write_report(r, folder)
    except OSError as err:
        _fail(f"无法写入报告文件夹 {folder}：{err.strerror or err}", 1)
    console.print(rollup.headline(r), markup=False, highlight=False)
    worst = r.assessment.sort_values("score").head(3)
    if len(worst):
        console.print("考核得分较低的单位：" + "；".join(
            (f"{a.department}（{a.plan}）" if plan is None and len(r.plans) > 1 else a.department) + f" {a.score:.1f} 分"
            for a in worst.itertuples()), markup=False, highlight=False)
    for w in r.warnings:
        console.print(f"提示：{w}", markup=False, highlight=False)
    console.print(f"HTML 报告：{files.html}", markup=False, highlight=False)
    console.print(f"Excel 工作簿：{files.xlsx}", markup=False, highlight=False)


@app.command("export")
def export_command(
    plan: Annotated[str, typer.Argument(help="方案编号")],
    out: Annotated[Path, typer.Option("--out", "-o", help="输出文件（.xlsx 或 .yaml）")],
) -> None:
    """把库中的方案导出为 Excel 或 YAML（格式与导入相同，可修改后再导入）。"""
    from definitions.export import write_plan_file
    from duban.db import session_scope
    from duban.plans.export import plan_file_from_store

    with session_scope(_engine()) as session:
        plan_file = plan_file_from_store(session, plan)
    if plan_file is None:
        _fail(f"没有编号为“{plan}”的方案。", 1)
    try:
        write_plan_file(plan_file, out)
    except ValueError as err:
        _fail(str(err), 2)
    console.print(f"已导出到 {out}", markup=False)


KIND_LABELS = {
    "overdue": "逾期提醒",
    "report_overdue": "催报",
    "escalation": "督办",
    "due": "到期提醒",
    "report_due": "反馈提醒",
    "ack": "签收提醒",
}


@app.command("check")
def check_command(
    today: Annotated[Optional[str], typer.Option("--today", help="按这一天检查（YYYY-MM-DD，缺省为今天）")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只列出今天谁会收到什么，不记录、不发送")] = False,
    task: Annotated[Optional[str], typer.Option("--task", help="只检查这一项任务（任务编号）")] = None,
    plan: Annotated[Optional[str], typer.Option("--plan", help="只检查这个方案（方案编号）")] = None,
    force: Annotated[bool, typer.Option("--force", help="非工作日也检查")] = False,
) -> None:
    """督办检查：按期提醒责任人，逾期逐级督办，每人汇总成一份通知发出（通过 Prefect 运行）。"""

    day = _parse_day(today)
    _engine()
    rt = _runtime()
    from duban.db import session_scope

    with session_scope(rt.engine, readonly=True) as session:
        _require_plan(session, plan)
    # decided before Prefect is imported or any server started: a holiday costs about a second
    if not force and not task and not rt.calendar.is_workday(day):
        for w in rt.calendar.warnings:
            err_console.print(f"提示：{w}", markup=False)
        if dry_run:
            console.print(f"{day.isoformat()} 不是工作日，每日检查不会发送任何通知（可加 --force 强制检查）。", markup=False)
        else:
            console.print(f"{day.isoformat()} 不是工作日，未检查（可加 --force 强制检查）。", markup=False)
        return
    if dry_run:
        _check_preview(rt, day, plan=plan, task=task)
        return

    with _prefect_api(rt.settings) as ready:
        if task:
            from flows.task_check import TaskNotFound, task_check, task_tags

            try:
                task_tags(task, plan)
            except TaskNotFound as err:
                _fail(str(err), 1)
            ready()
            summary = task_check(task, plan=plan, today=day)
        else:
            from flows.sweep import daily_sweep

            ready()
            summary = daily_sweep(today=day, plan=plan, force=force)
    if summary.get("skipped"):
        console.print(f"{day.isoformat()} 不是工作日，未检查（可加 --force 强制检查）。", markup=False)
        return
    console.print(
        f"{day.isoformat()} 检查完成：应发事项 {summary['decided']} 项（新增 {summary['new']} 项），"
        f"生成通知 {summary['digests']} 份，发送成功 {summary['sent']} 份，失败 {summary['failed']} 份。",
        markup=False,
    )
    if summary.get("deferred"):
        console.print(f"其中 {summary['deferred']} 份不在发送时段（DUBAN_SEND_HOURS）内，将于下一个工作时段发出。", markup=False)
    if summary["sent"]:
        from notifications.outbox import OutboxChannel

        if isinstance(rt.channel, OutboxChannel):
            console.print(f"通知已写入本地发件箱：{rt.settings.outbox_path}（也可用 duban outbox 查看）", markup=False)
        else:
            console.print("通知已按各人的通知渠道发出（发送记录见 duban outbox）。", markup=False)


def _check_preview(rt, day: dt.date, *, plan: str | None, task: str | None) -> None:
    """`duban check --dry-run`: who would get what today, by recipient; nothing recorded or sent."""
    from duban.sweep import preview

    if task:
        from flows.task_check import TaskNotFound, task_tags

        try:
            plan, _ = task_tags(task, plan)
        except TaskNotFound as err:
            _fail(str(err), 1)
    items = preview(rt.engine, today=day, cal=rt.calendar, tz=rt.tz, plan_code=plan, task_code=task)
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
            console.print(f"  - [{KIND_LABELS.get(i.kind, i.kind)}] {i.code} {i.title}：{i.line}", markup=False)
    recipients = len({i.recipient for i in items})
    console.print(f"共 {len(items)} 项，{recipients} 位收件人（每人一份汇总通知）。", markup=False)


@app.command("outbox")
def outbox_command(
    day: Annotated[Optional[str], typer.Option("--date", help="只看这一天的通知（YYYY-MM-DD）")] = None,
    person: Annotated[Optional[str], typer.Option("--person", help="只看这位收件人（姓名）")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="只看发送失败、等待重试的通知")] = False,
    show: Annotated[Optional[int], typer.Option("--show", help="显示这份通知的全文（编号）")] = None,
    limit: Annotated[int, typer.Option("--limit", help="最多列出几份")] = 50,
) -> None:
    """发件箱：查看已生成的通知、发送状态和失败原因。"""
    from rich.table import Table
    from sqlalchemy import select

    from duban.db import session_scope
    from duban.models import Digest, Person
    from duban.sweep import digest_rows

    engine = _engine()
    if show is not None:
        with session_scope(engine) as s:
            row = s.execute(select(Digest, Person.name).outerjoin(Person, Person.id == Digest.recipient_id).where(Digest.id == show)).first()
        if row is None:
            _fail(f"没有编号为 {show} 的通知。", 1)
        digest, name = row
        from duban.sweep import AUDIENCE_NAMES, Outgoing
        from notifications.render import render_text

        rt = _runtime()
        with session_scope(engine) as s:
            urls = rt.links().urls(s, [lid for item in digest.payload.get("items", ()) for _, lid in item.get("links", ())])
        name = name or AUDIENCE_NAMES.get(digest.audience, digest.payload.get("recipient", ""))
        out = Outgoing(digest.id, digest.recipient_id, name, None, digest.run_on, digest.subject, digest.payload, digest.attempts, urls=urls)
        console.print(f"收件人：{name}\n主题：{digest.subject}\n", markup=False)
        console.print(render_text(out, template_dir=rt.settings.template_dir), markup=False)
        return
    rows = digest_rows(engine, run_on=_parse_day(day) if day else None, status="failed" if failed else None, person=person, limit=limit)
    if not rows:
        console.print("发件箱中没有符合条件的通知。", markup=False)
        return
    table = Table()
    for col in ("编号", "日期", "收件人", "事项", "状态", "尝试次数", "失败原因"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r[c]) for c in ("编号", "日期", "收件人", "事项", "状态", "尝试次数", "失败原因")))
    console.print(table)


@app.command("run")
def run_command(
    host: Annotated[str, typer.Option("--host", help="网页服务监听地址")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="网页服务端口")] = 8000,
    web: Annotated[bool, typer.Option("--web/--no-web", help="同时启动网页服务")] = True,
    prefect_port: Annotated[int, typer.Option("--prefect-port", help="本机 Prefect 服务端口（未设置 PREFECT_API_URL 时自动启动）")] = 4200,
) -> None:
    """在本机持续运行：每个工作日 08:30 自动督办检查，并提供网页服务（无需另装服务器）。"""
    settings = _settings()
    _engine()
    _runtime()
    with _local_prefect(settings, prefect_port) as api_url:
        _serve_forever(settings, api_url, host=host, port=port, web=web)


@contextlib.contextmanager
def _local_prefect(settings: Settings, prefect_port: int) -> Iterator[str]:
    """The Prefect server `duban run` uses (started here unless PREFECT_API_URL is set), its address
    recorded for `duban check`; stopped on exit, also when a service manager sends SIGTERM."""
    import signal

    from duban.prefect_server import PrefectServerError, local_prefect_server, recorded_address

    # a service manager stops us with SIGTERM: exit normally, so the Prefect server we started
    # is stopped too (its context manager only runs on a normal exit)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        with local_prefect_server(settings, port=prefect_port) as api_url, recorded_address(settings, api_url):
            yield api_url
    except PrefectServerError as err:
        _fail(str(err), 1)


def _serve_forever(settings: Settings, api_url: str, *, host: str, port: int, web: bool) -> None:
    import threading

    from prefect import serve
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.deployments import deployments

    console.print(f"Prefect：{api_url.removesuffix('/api')}（可在此查看运行记录、手动运行检查）", markup=False)
    if web:
        import uvicorn

        from duban.web.app import create_app

        server = uvicorn.Server(uvicorn.Config(create_app(), host=host, port=port, log_level="warning", proxy_headers=True,
                                               forwarded_allow_ips=settings.trusted_proxies))
        threading.Thread(target=server.run, name="duban-web", daemon=True).start()
        console.print(f"网页服务：http://{host}:{port}/", markup=False)
    console.print(f"每日督办检查：每天 08:30（{settings.timezone}），非工作日自动跳过。按 Ctrl+C 停止。", markup=False)
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        serve(*deployments(settings.timezone))


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option("--host", help="网页服务监听地址（内网访问可设为 0.0.0.0）")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="网页服务端口")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=32, help="工作进程数（每个进程各自计算访问频率限制）")] = 1,
) -> None:
    """网页服务：通知中链接的办理页面（签收、反馈进展、提交办结、申请延期、审核），不运行定时检查。"""
    import uvicorn

    settings = _settings()
    _engine()
    console.print(f"网页服务：http://{host}:{port}/（通知中的链接以 {settings.base_url} 开头，请确认二者指向同一服务）。按 Ctrl+C 停止。",
                  markup=False)
    uvicorn.run("duban.web.app:create_app", factory=True, host=host, port=port, workers=workers, log_level="warning",
                proxy_headers=True, forwarded_allow_ips=settings.trusted_proxies, access_log=False)


@app.command("secret")
def secret_command() -> None:
    """生成一个可用作 DUBAN_SECRET_KEY 的随机密钥。"""
    print(secrets.token_urlsafe(48))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """把数据库结构升级到最新版本（其他命令也会自动执行）。"""
    from duban.db import current_revision

    engine = _engine()
    console.print(f"数据库 {_safe_url(_settings().database_url)} 已是最新结构（版本 {current_revision(engine)}）。", markup=False)


@db_app.command("current")
def db_current() -> None:
    """显示数据库结构版本。"""
    from duban.db import current_revision, make_engine

    settings = _settings()
    rev = current_revision(make_engine(settings.database_url))
    console.print(f"{_safe_url(settings.database_url)}：{rev or '尚未初始化'}", markup=False)


@app.command("demo")
def demo_command(
    today: Annotated[Optional[str], typer.Option("--today", help="演示用的“今天”（YYYY-MM-DD，缺省为今天）")] = None,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="演示后持续运行（每日检查 + 网页服务，Ctrl+C 停止）")] = False,
) -> None:
    """演示：导入示例“三全育人”方案，运行今天的督办检查，查看发出的通知和进展统计（可重复运行）。"""
    settings = _settings()
    engine = _engine()
    _runtime()
    day = _parse_day(today)
    if serve_after:
        # the demo's own sweep runs on the Prefect server that `duban run` then serves with: one
        # server, not a temporary one left running beside it
        with _local_prefect(settings, 4200) as api_url:
            with _prefect_api(settings) as ready:  # finds the server just started (its recorded address)
                _demo_steps(engine, day, ready)
            console.rule("6. 持续运行（duban run）")
            _serve_forever(settings, api_url, host="127.0.0.1", port=8000, web=True)
        return
    with _prefect_api(settings) as ready:
        _demo_steps(engine, day, ready)
    console.print("\n要让系统每天 08:30 自动检查并提供网页服务，请运行：duban run", markup=False)


def _demo_steps(engine, day: dt.date, ready: Callable[[], None]) -> None:
    from duban.accounts import ensure_demo_account
    from duban.db import session_scope
    from duban.plans.importer import import_plan
    from duban.runtime import runtime
    from duban.sweep import digest_rows
    from flows.sweep import daily_sweep

    console.rule("1. 导入示例方案 definitions/plans/sanquan-yuren.yaml")
    diff = import_plan(engine, EXAMPLE_PLAN, actor="demo")
    console.print(diff.render(limit=5), markup=False, highlight=False)

    console.rule(f"2. 今天（{day.isoformat()}）的督办检查：Prefect 流程 daily-sweep")
    ready()
    summary = daily_sweep(today=day, force=True)
    console.print(
        f"应发事项 {summary['decided']} 项（新增 {summary['new']} 项，其余此前已发），"
        f"生成通知 {summary['digests']} 份，发送成功 {summary['sent']} 份。",
        markup=False,
    )

    console.rule("3. 发出的通知（本地发件箱）")
    rows = digest_rows(engine, run_on=day)
    outbox = runtime().settings.outbox_path / day.isoformat()
    if rows:
        for r in rows[:10]:
            console.print(f"  {r['收件人']}：{r['事项']} 项，{r['状态']}", markup=False)
        if len(rows) > 10:
            console.print(f"  …… 共 {len(rows)} 份", markup=False)
        console.print(f"全文见 {outbox}，或 duban outbox --show {rows[-1]['编号']}", markup=False)
        console.print("演示模式下所有通知只写入本地发件箱，不会发给任何人。", markup=False)
    else:
        console.print("今天没有新的通知（同一事项同一阶段只提醒一次）。", markup=False)

    console.rule("4. 进展统计（duban status）")
    status_command(plan=None, today=day.isoformat(), as_json=False)

    console.rule("5. 汇总报告（duban report）与工作台账户")
    report_command(out=None, as_of=day.isoformat(), plan=None, snapshot=True)
    with session_scope(engine) as s:
        login, password = ensure_demo_account(s)
    base = runtime().settings.base_url.rstrip("/")
    console.print(f"工作台：{base}/login  演示账户 {login}，密码 {password}（每次运行演示都会重新生成）", markup=False, highlight=False)


notify_app = typer.Typer(help="通知：测试个人的通知渠道、发送督办通报。", no_args_is_help=True)
app.add_typer(notify_app, name="notify")


@notify_app.command("test")
def notify_test_command(
    person: Annotated[str, typer.Argument(help="人员姓名（人员表中的姓名）")],
    plan: Annotated[Optional[str], typer.Option("--plan", help="方案编号（同名人员在多个方案中时必填）")] = None,
) -> None:
    """向一位人员的每个通知渠道发送一条测试消息，并逐一报告结果（地址中的密钥不显示）。"""
    from rich.table import Table
    from sqlalchemy import select

    from duban.db import session_scope
    from duban.models import Person, Plan, PlanRole
    from duban.sweep import Outgoing
    from notifications.channels import LABELS, Dispatcher
    from notifications.render import now_text

    settings = _settings()
    engine = _engine()
    rt = _runtime()
    with session_scope(engine) as s:
        q = select(Person, Plan.code).join(Plan, Plan.id == Person.plan_id).where(Person.name == person)
        if plan is not None:
            q = q.where(Plan.code == plan)
        found = s.execute(q).all()
        if not found:
            _fail(f"没有找到人员“{person}”" + (f"（方案 {plan}）" if plan else "") + "。请检查姓名，或先用 duban import 导入人员表。", 1)
        if len(found) > 1:
            _fail(f"有 {len(found)} 个方案中都有“{person}”（{'、'.join(c for _, c in found)}），请用 --plan 指定方案编号。", 1)
        p, code = found[0]
        office = "、".join(s.scalars(select(Person.name).join(PlanRole, PlanRole.person_id == Person.id)
                                     .where(PlanRole.plan_id == p.plan_id, PlanRole.role == "office").order_by(PlanRole.position)))
    out = Outgoing(0, p.id, p.name, p.email, rt.today(), "【督办系统】通知渠道测试", {"kind": "test", "recipient": p.name, "now": now_text(rt.tz), "office": office, "items": []},
                   0, plan_id=p.plan_id, channels=list(p.notify_urls or ()), mobile=p.mobile)
    dispatcher = Dispatcher(settings.smtp_url, template_dir=settings.template_dir, smtp_timeout=settings.smtp_timeout, tz=rt.tz)
    try:
        targets = dispatcher.targets(out)
        if not targets:
            hint = "未设置 DUBAN_SMTP_URL（单位邮件服务器）" if p.email else "人员表中没有邮箱"
            _fail(f"{p.name} 没有可用的通知渠道：{hint}，通知地址也为空。请在人员表中填写邮箱或通知地址后重新导入。", 1)
        report = dispatcher.send(out, every=True)
    finally:
        dispatcher.close()
    table = Table(title=f"{p.name}（方案 {code}）的通知渠道测试")
    for col in ("顺序", "渠道", "地址（已隐藏密钥）", "结果", "说明"):
        table.add_column(col)
    for i, (t, a) in enumerate(zip(targets, report.attempts), 1):
        note = a.error or ("每次都发" if t.always else ("分 %d 段发出" % a.parts if a.parts > 1 else ""))
        table.add_row(str(i), LABELS.get(a.channel, a.channel), a.target, "成功" if a.ok else "失败", note)
    console.print(table)
    failed = sum(1 for a in report.attempts if not a.ok)
    if failed:
        _fail(f"{len(report.attempts)} 个渠道中有 {failed} 个发送失败，请核对上表中的地址后重试。", 1)
    console.print(f"全部 {len(report.attempts)} 个渠道发送成功。请向 {p.name} 确认已收到测试消息。", markup=False)


@notify_app.command("bulletin")
def notify_bulletin_command(
    plan: Annotated[Optional[str], typer.Option("--plan", help="只发这个方案的通报（方案编号）；缺省为全部方案")] = None,
    today: Annotated[Optional[str], typer.Option("--today", help="按这一天统计（YYYY-MM-DD，缺省为今天）")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只显示通报内容和收件对象，不记录、不发送")] = False,
    force: Annotated[bool, typer.Option("--force", help="今天已发过通报时再发一次")] = False,
) -> None:
    """督办通报：把逾期事项（逾期较久的列入通报）发给领导小组、领导小组办公室（群和个人）。"""
    from duban import sweep
    from notifications.bulletin import BulletinError, queue_bulletins
    from notifications.digest import environment
    from notifications.render import bulletin_context

    day = _parse_day(today)
    engine = _engine()
    rt = _runtime()
    try:
        queued, payloads = queue_bulletins(engine, today=day, cal=rt.calendar, plan_code=plan, channel=rt.channel.name, dry_run=dry_run, force=force)
    except BulletinError as err:
        _fail(str(err), 1)
    if not queued:
        if payloads:
            console.print("通报没有收件对象：请在方案表中填写领导小组、领导小组办公室成员或其群通知地址。", markup=False)
        else:
            console.print(f"{day.isoformat()} 的通报已发过（可加 --force 再发一次）。", markup=False)
        return
    if dry_run:
        for payload in payloads:
            ctx = bulletin_context({**payload, "audience_name": "各位领导"})
            console.print(environment(rt.settings.template_dir).get_template("bulletin.txt.j2").render(**ctx, subject="", cut=""), markup=False)
        console.print("收件对象：" + "、".join(q.audience for q in queued), markup=False)
        console.print("（预览：以上通报尚未记录、未发送。去掉 --dry-run 即可发送。）", markup=False)
        return
    from flows.sweep import deliver_now

    ids = {q.digest_id for q in queued}
    deliver_now(rt)
    rows = [r for r in sweep.digest_rows(engine, run_on=day) if r["编号"] in ids]
    for r in rows:
        console.print(f"  {r['收件人']}：{r['状态']}" + (f"（{r['渠道']}）" if r["渠道"] else "") + (f"，{r['失败原因']}" if r["失败原因"] else ""), markup=False)
    waiting = sum(1 for r in rows if r["状态"] == "待发送")
    console.print(f"通报已生成 {len(queued)} 份" + (f"，其中 {waiting} 份不在发送时段内，将于下一个工作时段发出" if waiting else "") + "。", markup=False)


account_app = typer.Typer(help="看板账户：领导小组办公室、领导和只读账户的登录名与密码。", no_args_is_help=True)
app.add_typer(account_app, name="account")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            _fail("没有从标准输入读到密码。", 2)
        return password
    return typer.prompt("密码", hide_input=True, confirmation_prompt="再次输入密码")


@account_app.command("add")
def account_add(
    login: Annotated[str, typer.Argument(help="登录名（不含空格）")],
    role: Annotated[str, typer.Option("--role", help="角色：office（领导小组办公室）、leader（领导）或 viewer（只读，仅统计数字）")],
    plan: Annotated[Optional[str], typer.Option("--plan", help="只能查看这个方案（方案编号）；缺省为全部方案")] = None,
    person: Annotated[Optional[str], typer.Option("--person", help="对应人员表中的姓名（办公室账户据此打开审核页面）")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="显示名称（缺省为人员姓名或登录名）")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="从标准输入读取密码（供脚本使用）")] = False,
) -> None:
    """新建看板账户（密码输入两次，或用 --password-stdin）。"""
    from duban.accounts import ROLE_LABELS, AccountError, create_account
    from duban.db import session_scope

    engine = _engine()
    password = _read_password(password_stdin)
    try:
        with session_scope(engine) as s:
            a = create_account(s, login, password, role=role, display_name=name, plan_code=plan, person=person)
            scope = f"方案 {plan}" if plan else "全部方案"
            label = ROLE_LABELS[a.role]
    except AccountError as err:
        _fail(str(err), 1)
    console.print(f"已新建账户 {login}（{label}，{scope}）。登录地址：{_settings().base_url.rstrip('/')}/login", markup=False)


@account_app.command("list")
def account_list() -> None:
    """列出看板账户。"""
    from rich.table import Table

    from duban.accounts import ROLE_LABELS, list_accounts
    from duban.db import session_scope

    with session_scope(_engine(), readonly=True) as s:
        rows = list_accounts(s)
    if not rows:
        console.print("还没有看板账户。可用 duban account add 登录名 --role office 新建。", markup=False)
        return
    rt = _runtime()
    table = Table()
    for col in ("登录名", "显示名称", "角色", "方案", "人员", "状态", "最近登录"):
        table.add_column(col)
    for r in rows:
        from duban.links import local_time

        table.add_row(r["login"], r["name"], ROLE_LABELS.get(r["role"], r["role"]), r["plan"] or "全部方案", r["person"] or "",
                      "启用" if r["active"] else "已停用", local_time(r["last_login_at"], rt.tz) or "从未登录")
    console.print(table)


@account_app.command("disable")
def account_disable(login: Annotated[str, typer.Argument(help="登录名")]) -> None:
    """停用账户（立即退出其所有登录）。"""
    from duban.accounts import AccountError, set_active
    from duban.db import session_scope

    try:
        with session_scope(_engine()) as s:
            set_active(s, login, False)
    except AccountError as err:
        _fail(str(err), 1)
    console.print(f"已停用账户 {login}，其所有登录已失效。", markup=False)


@account_app.command("enable")
def account_enable(login: Annotated[str, typer.Argument(help="登录名")]) -> None:
    """重新启用账户（并解除密码错误造成的锁定）。"""
    from duban.accounts import AccountError, set_active
    from duban.db import session_scope

    try:
        with session_scope(_engine()) as s:
            set_active(s, login, True)
    except AccountError as err:
        _fail(str(err), 1)
    console.print(f"已启用账户 {login}。", markup=False)


@account_app.command("passwd")
def account_passwd(
    login: Annotated[str, typer.Argument(help="登录名")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="从标准输入读取新密码（供脚本使用）")] = False,
) -> None:
    """重设账户密码（解除锁定，并使其所有登录失效）。"""
    from duban.accounts import AccountError, get_account, set_password
    from duban.db import session_scope

    engine = _engine()
    with session_scope(engine, readonly=True) as s:
        if get_account(s, login) is None:
            _fail(f"没有登录名为“{login}”的账户（可用 duban account list 查看）", 1)
    password = _read_password(password_stdin)
    try:
        with session_scope(engine) as s:
            set_password(s, login, password)
    except AccountError as err:
        _fail(str(err), 1)
    console.print(f"已重设账户 {login} 的密码，其原有登录已失效。", markup=False)


@app.command("dashboard-link")
def dashboard_link_command(
    plan: Annotated[Optional[str], typer.Option("--plan", help="只读链接可查看的方案（方案编号）；缺省为全部方案")] = None,
    days: Annotated[Optional[int], typer.Option("--days", help="有效天数（缺省 DUBAN_DASHBOARD_LINK_DAYS，30 天）")] = None,
    note: Annotated[str, typer.Option("--note", help="备注：发给谁（列表中显示）")] = "",
    list_links: Annotated[bool, typer.Option("--list", help="列出已发出的只读链接")] = False,
    revoke: Annotated[Optional[int], typer.Option("--revoke", help="撤销这个编号的只读链接")] = None,
) -> None:
    """生成看板只读链接（供不使用账户的领导查看，到期失效，可撤销）。"""
    from duban.accounts import AccountError, dashboard_url, issue_dashboard_link, list_dashboard_links, revoke_dashboard_link
    from duban.db import session_scope
    from duban.models import utcnow

    settings = _settings()
    engine = _engine()
    if list_links:
        from rich.table import Table

        with session_scope(engine, readonly=True) as s:
            rows = list_dashboard_links(s)
        if not rows:
            console.print("还没有发出只读链接。", markup=False)
            return
        table = Table()
        for col in ("编号", "方案", "备注", "有效期至", "状态", "最近使用"):
            table.add_column(col)
        today = _parse_day(None)
        from duban.links import local_time

        tz = _runtime().tz
        for r in rows:
            state = "已撤销" if r["revoked_at"] else ("已过期" if r["expires_on"] < today else "有效")
            table.add_row(str(r["id"]), r["plan"] or "全部方案", r["note"], r["expires_on"].isoformat(), state,
                          local_time(r["last_used_at"], tz) or "未使用")
        console.print(table)
        return
    if revoke is not None:
        try:
            with session_scope(engine) as s:
                revoke_dashboard_link(s, revoke, now=utcnow())
        except AccountError as err:
            _fail(str(err), 1)
        console.print(f"已撤销只读链接 {revoke}，该链接及用它打开的页面已不能再查看。", markup=False)
        return
    import getpass

    try:
        with session_scope(engine) as s:
            row, token = issue_dashboard_link(s, secret=settings.secret_key or "", plan_code=plan, days=days or settings.dashboard_link_days,
                                              today=_parse_day(None), note=note, created_by=getpass.getuser())
            link_id, expires = row.id, row.expires_on
    except AccountError as err:
        _fail(str(err), 1)
    console.print(f"只读链接（编号 {link_id}，{'方案 ' + plan if plan else '全部方案'}，有效期至 {expires.isoformat()}）：", markup=False)
    print(dashboard_url(settings.base_url, token))
    console.print(f"链接只显示一次，请妥善转交；如需收回：duban dashboard-link --revoke {link_id}", markup=False)


from duban.cli_review import review_app  # noqa: E402 - the review (督查) commands: duban review …

app.add_typer(review_app, name="review")


def main() -> None:
    # The temporary Prefect server that `duban check`, `demo` and `review start` run in would
    # otherwise try to send usage telemetry and, on an intranet, print an English error for it.
    # An operator who wants it sets the variable.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    _no_proxy_for_loopback()
    status = _end_without_teardown()
    try:
        app()
    except ConfigurationError as err:  # settings read outside a command
        err_console.print(f"无法启动：{err}", markup=False)
        status[0] = 2
        sys.exit(2)
    except SystemExit as done:
        status[0] = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        raise
    except KeyboardInterrupt:  # Ctrl+C: the status a shell expects (128 + SIGINT)
        status[0] = 130
        raise
    except BaseException:
        status[0] = 1
        raise


def _no_proxy_for_loopback() -> None:
    """An office machine often sets http_proxy without no_proxy: Prefect's client would then ask
    the Prefect server on this machine through the proxy and fail ("Failed to reach API"). Our
    servers are on loopback, which no proxy should carry."""
    local = ["127.0.0.1", "localhost", "::1"]
    for name in ("NO_PROXY", "no_proxy"):
        present = [h.strip() for h in os.environ.get(name, "").split(",") if h.strip()]
        os.environ[name] = ",".join(present + [h for h in local if h not in present])


def _end_without_teardown() -> list[int]:
    """Registered before duban's and Prefect's exit handlers, so it runs after them (Prefect's flush
    of a run's last logs and events, stopping a temporary server); then it shuts logging down itself
    (logging's own handler, registered earlier, would run later) and ends the process without the
    interpreter's teardown of every loaded module, ≈ 0.5 s once Prefect is loaded, paid by every
    `duban check`. Returns the cell the exit status is written to."""
    import atexit
    import logging

    status = [0]

    def finish() -> None:
        logging.shutdown()
        from duban import db

        for engine in list(db._engines.values()):  # close database connections cleanly
            engine.dispose()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status[0])

    atexit.register(finish)
    return status


if __name__ == "__main__":
    main()
