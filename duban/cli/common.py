"""What the ``duban`` commands share: the app, the consoles, settings, the database, the run's
calendar, the Prefect server a command's flows run on, and dates and plans given as options."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

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

EXAMPLE_PLAN = Path(__file__).resolve().parent.parent.parent / "definitions" / "plans" / "sanquan-yuren.yaml"


def _fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(message, markup=False, highlight=False)
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        return get_settings()
    except ConfigurationError as err:
        _fail(f"无法启动：{err}", 2)


def _engine():
    from duban.db import get_engine

    settings = _settings()
    try:
        return get_engine(settings.database_url)
    except Exception as err:  # noqa: BLE001 - any driver error becomes one clear message
        _fail(f"无法连接数据库 {_safe_url(settings.database_url)}：{err.__class__.__name__}: {err}", 2)


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
    from duban.orchestration import flow_api
    from duban.prefect_server import PrefectServerError

    with flow_api(settings) as wait:

        def ready() -> None:
            try:
                wait()
            except PrefectServerError as err:
                _fail(f"{err}。可先运行 duban run，或设置 PREFECT_API_URL 使用已有的 Prefect 服务。", 1)

        yield ready


def _parse_day(value: str | None) -> dt.date:
    if not value:
        from zoneinfo import ZoneInfo

        return dt.datetime.now(ZoneInfo(_settings().timezone)).date()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        _fail(f"日期“{value}”格式不正确，请写作 YYYY-MM-DD，如 2026-11-23", 2)


def _date(value: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        _fail(f"{what}“{value}”格式不正确，请写作 YYYY-MM-DD，如 2026-12-10", 2)


def _require_plan(session, plan: str | None) -> None:
    """A --plan that names no plan is one clear message listing the plans there are."""
    if plan is None:
        return
    from sqlalchemy import select

    from duban.models import Plan

    if session.scalar(select(Plan.id).where(Plan.code == plan)) is None:
        known = "、".join(session.scalars(select(Plan.code).order_by(Plan.code))) or "（暂无，请先用 duban import 导入）"
        _fail(f"没有编号为“{plan}”的方案。已有方案：{known}", 1)
