"""``duban run / serve / secret / db / demo``: running the system (the scheduler, the web app, the store's schema, the demo)."""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import sys
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer

from duban.cli.common import (
    EXAMPLE_PLAN,
    _engine,
    _fail,
    _parse_day,
    _prefect_api,
    _runtime,
    _safe_url,
    _settings,
    app,
    console,
    db_app,
)
from duban.cli.plans import report_command, status_command
from duban.settings import Settings


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
    _check_ports("duban run", web=(host, port) if web else None, prefect_port=prefect_port)
    with _local_prefect(settings, prefect_port) as api_url:
        _serve_forever(settings, api_url, host=host, port=port, web=web)


def _port_taken(host: str, port: int) -> bool:
    """Whether another program listens on ``host:port`` (tried by binding it, as uvicorn and
    Prefect will: SO_REUSEADDR, so a port that only lingers after a stopped server is free)."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except OSError:
        return False  # an address that does not resolve: the server says so itself
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError:
            return True
    return False


def _check_ports(command: str, *, web: tuple[str, int] | None, prefect_port: int | None = None) -> None:
    """Before anything starts: a web port or a Prefect port another program holds is one message
    (which port, and the option that picks another). A Prefect server already on the Prefect port
    is used, not refused; with PREFECT_API_URL set, no Prefect server is started here."""
    if web is not None and _port_taken(*web):
        _fail(
            f"无法启动网页服务：端口 {web[1]}（{web[0]}）已被占用，可能已有 duban run、duban serve 或其他程序在使用。"
            f"请先停止占用该端口的程序，或用 --port 指定其他端口，如 {command} --port {web[1] + 1}。",
            1,
        )
    if prefect_port is None:
        return
    from duban.prefect_server import configured_api_url, healthy

    if configured_api_url() or healthy(f"http://127.0.0.1:{prefect_port}/api"):
        return
    if _port_taken("127.0.0.1", prefect_port):
        _fail(
            f"无法启动本机 Prefect 服务：端口 {prefect_port} 已被其他程序占用（不是 Prefect 服务）。"
            f"请先停止占用该端口的程序，或用 --prefect-port 指定其他端口，如 {command} --prefect-port {prefect_port + 1}。",
            1,
        )


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

    from duban import orchestration

    console.print(f"Prefect：{api_url.removesuffix('/api')}（可在此查看运行记录、手动运行检查）", markup=False)
    if web:
        import uvicorn

        from duban.web.app import create_app

        server = uvicorn.Server(uvicorn.Config(create_app(), host=host, port=port, log_level="warning", **web_server_options(settings)))
        threading.Thread(target=server.run, name="duban-web", daemon=True).start()
        console.print(f"网页服务：http://{host}:{port}/", markup=False)
    console.print(f"每日督办检查：每天 08:30（{settings.timezone}），非工作日自动跳过。按 Ctrl+C 停止。", markup=False)
    orchestration.serve(api_url, settings.timezone)


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
    _check_ports("duban serve", web=(host, port))
    console.print(
        f"网页服务：http://{host}:{port}/（通知中的链接以 {settings.base_url} 开头，请确认二者指向同一服务）。按 Ctrl+C 停止。",
        markup=False,
    )
    uvicorn.run(
        "duban.web.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        **web_server_options(settings),
    )


def web_server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy options for ``duban serve`` and ``duban run``: ``X-Forwarded-For`` is
    believed only from the reverse proxies of ``DUBAN_TRUSTED_PROXIES``; with none (the default)
    it is ignored, and every client is the address it connects from (rate limits, the audit
    trail). uvicorn's own default would believe any local client (127.0.0.1)."""
    proxies = settings.trusted_proxies.strip()
    if not proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": proxies}


@app.command("secret")
def secret_command() -> None:
    """生成一个可用作 DUBAN_SECRET_KEY 的随机密钥。"""
    print(secrets.token_urlsafe(48))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """把数据库结构升级到最新版本（其他命令也会自动执行）。"""
    from duban.db import current_revision

    engine = _engine(create=True)
    console.print(f"数据库 {_safe_url(_settings().database_url)} 已是最新结构（版本 {current_revision(engine)}）。", markup=False)


@db_app.command("current")
def db_current() -> None:
    """显示数据库结构版本。"""
    from duban.cli.common import _connect_problem, _no_tables_message
    from duban.db import NoDubanTables, _missing_sqlite_file, current_revision, make_engine

    settings = _settings()
    if missing := _missing_sqlite_file(settings.database_url):  # never create a file only to say it is empty
        _fail(_no_tables_message(NoDubanTables(settings.database_url, missing_file=missing)), 2)
    try:
        rev = current_revision(make_engine(settings.database_url, connect_timeout=settings.db_connect_timeout))
    except Exception as err:  # noqa: BLE001 - any driver error becomes one clear message
        _fail(_connect_problem(settings, err), 2)
    console.print(f"{_safe_url(settings.database_url)}：{rev or '尚未初始化'}", markup=False)


@app.command("demo")
def demo_command(
    today: Annotated[str | None, typer.Option("--today", help="演示用的“今天”（YYYY-MM-DD，缺省为今天）")] = None,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="演示后持续运行（每日检查 + 网页服务，Ctrl+C 停止）")] = False,
    port: Annotated[int, typer.Option("--port", help="持续运行时的网页服务端口")] = 8000,
    prefect_port: Annotated[int, typer.Option("--prefect-port", help="持续运行时本机 Prefect 服务端口")] = 4200,
) -> None:
    """演示：导入示例“三全育人”方案，运行今天的督办检查，查看发出的通知和进展统计（可重复运行）。"""
    settings = _settings()
    engine = _engine(create=True)
    _runtime()
    day = _parse_day(today)
    if serve_after:
        _check_ports("duban demo --serve", web=("127.0.0.1", port), prefect_port=prefect_port)
        # the demo's own sweep runs on the Prefect server that `duban run` then serves with: one
        # server, not a temporary one left running beside it
        with _local_prefect(settings, prefect_port) as api_url:
            with _prefect_api(settings) as ready:  # finds the server just started (its recorded address)
                _demo_steps(engine, day, ready)
            console.rule("6. 持续运行（duban run）")
            _serve_forever(settings, api_url, host="127.0.0.1", port=port, web=True)
        return
    with _prefect_api(settings) as ready:
        _demo_steps(engine, day, ready)
    console.print("\n要让系统每天 08:30 自动检查并提供网页服务，请运行：duban run", markup=False)


def _demo_steps(engine, day: dt.date, ready: Callable[[], None]) -> None:
    from duban.accounts import ensure_demo_account
    from duban.announce import announce, moment
    from duban.db import session_scope
    from duban.orchestration import run_daily_sweep
    from duban.plans.importer import import_plan
    from duban.runtime import runtime
    from duban.sweep.rows import digest_rows

    console.rule("1. 导入示例方案 definitions/plans/sanquan-yuren.yaml")
    diff = import_plan(engine, EXAMPLE_PLAN, actor="demo")
    console.print(diff.render(limit=5), markup=False, highlight=False)
    # 任务下达: the notices go out with the sweep below, in each owner's one message of the day
    rt = runtime()
    announced = announce(engine, today=day, now=moment(day, rt.tz), actor="demo", plan_code=diff.plan_code, cal=rt.calendar)
    console.print(f"任务下达（duban announce）：新下达 {announced.announced} 项任务，涉及责任人 {announced.owners} 位。", markup=False)

    console.rule(f"2. 今天（{day.isoformat()}）的督办检查：Prefect 流程 daily-sweep")
    summary = run_daily_sweep(ready, today=day, force=True)
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
