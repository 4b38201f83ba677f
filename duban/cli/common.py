"""What the ``duban`` commands share: the app, the consoles, settings, the database, the run's
calendar, the Prefect server a command's flows run on, and dates and plans given as options."""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

from duban.settings import ConfigurationError, Settings, get_settings


class _Commands(TyperGroup):
    """The ``duban`` group: a store that stays busy (another task holding SQLite's write lock past
    the busy timeout, a PostgreSQL lock or a lost connection) ends any command with one message,
    not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as err:
            message = _store_busy_message(err)
            if message is None:
                raise
            _fail(message, 1)


app = typer.Typer(
    cls=_Commands,
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


def _engine(*, create: bool = False):
    """The store, migrated; a database without duban's tables is refused (a mistyped path would
    otherwise become a new, empty store) unless ``create`` (duban db upgrade, import, demo)."""
    from duban.db import NoDubanTables, get_engine

    settings = _settings()
    try:
        return get_engine(settings.database_url, create=create)
    except NoDubanTables as err:
        _fail(_no_tables_message(err), 2)
    except Exception as err:  # noqa: BLE001 - any driver error becomes one clear message
        _fail(_store_busy_message(err) or _connect_problem(settings, err), 2)


def _no_tables_message(err) -> str:
    """A database without duban's tables: which one, and what to do."""
    import os

    what = f"数据库文件 {err.missing_file} 不存在" if err.missing_file else f"数据库 {_safe_url(err.url)} 中没有 duban 的数据表"
    configured = "DUBAN_DATABASE_URL" in os.environ
    check = (
        "请检查 DUBAN_DATABASE_URL 是否写错"
        if configured
        else "未设置 DUBAN_DATABASE_URL，使用的是当前文件夹下的数据库；请确认在正确的文件夹中运行，或设置 DUBAN_DATABASE_URL"
    )
    return f"{what}，未创建新数据库。{check}。如确是新建的数据库，请先运行 duban db upgrade 建立数据表，或用 duban import 导入第一个方案。"


def _connect_problem(settings: Settings, err: BaseException) -> str:
    """Why the database cannot be reached, in one line: where (host:port, no password) and what
    to check."""
    from sqlalchemy.engine import make_url

    url = settings.database_url
    orig = getattr(err, "orig", None) or err
    detail = str(orig).strip().splitlines()[0] if str(orig).strip() else err.__class__.__name__
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001
        return f"无法连接数据库（DUBAN_DATABASE_URL 无法解析）：{detail}"
    if parsed.get_backend_name() == "sqlite":
        return f"无法打开数据库 {parsed.database or '（内存）'}：{detail}。请检查 DUBAN_DATABASE_URL 和该文件夹的读写权限。"
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    low = detail.lower()
    if "timeout" in low:
        why = f"等待 {settings.db_connect_timeout} 秒仍无响应。请检查数据库服务是否正常运行、地址和端口是否正确、网络和防火墙是否放行"
        why += "（等待时间可用 DUBAN_DB_CONNECT_TIMEOUT 调整）"
    elif "refused" in low:
        why = "连接被拒绝。请检查数据库服务是否已启动、端口是否正确"
    elif "resolve" in low or "name or service" in low:
        why = f"找不到主机“{parsed.host}”。请检查 DUBAN_DATABASE_URL 中的主机名"
    else:
        why = f"{detail.rpartition(' failed: ')[2].removeprefix('FATAL:').strip()}。请检查 DUBAN_DATABASE_URL 中的用户名、密码和数据库名"
    return f"无法连接数据库 {where}：{why}。（DUBAN_DATABASE_URL：{_safe_url(url)}）"


def _store_busy_message(err: BaseException) -> str | None:
    """The message for a store that stayed busy (:func:`duban.db.is_transient`), else None."""
    if "sqlalchemy" not in sys.modules:  # no store was used: not a store error (and no import for --help)
        return None
    from duban.db import SQLITE_BUSY_TIMEOUT, is_transient

    if not is_transient(err):
        return None
    if getattr(err, "connection_invalidated", False):
        return "与数据库的连接中断，本次操作未能完成。请检查数据库服务后重试。"
    waited = f"等待 {SQLITE_BUSY_TIMEOUT} 秒后仍未结束" if type(getattr(err, "orig", None)).__module__.startswith("sqlite3") else "与之冲突"
    return f"数据库正忙：另一项任务（如每日督办检查、导入或网页上的办理）正在写入，{waited}，本次操作未能完成。请稍后重试。"


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return "（无法解析的地址）"


def _runtime(institution: str | None = None):
    """The run's calendar, time zone and channel (``institution``: with that institution's own
    settings applied); a bad institution calendar file is one message."""
    from duban.institutions import InstitutionError
    from duban.rules.calendar import CalendarFileError
    from duban.runtime import runtime

    rt = runtime()
    if institution is not None:
        try:
            rt = rt.for_institution(institution.strip())
        except (InstitutionError, ConfigurationError) as err:
            _fail(f"无法使用单位“{institution.strip()}”的设置：{err}", 2)
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


INSTITUTION_HELP = "只看这个单位（学校）的方案（单位编号，见 duban institution list）；缺省为全部单位"
InstitutionOption = Annotated[str | None, typer.Option("--institution", help=INSTITUTION_HELP)]


@dataclass(frozen=True)
class PlanScope:
    """What a reading command covers: ``plan`` (one plan), else ``plan_ids`` (an institution's
    plans; None: every plan of the installation)."""

    plan: str | None
    plan_ids: list[int] | None
    plan_codes: list[str] | None  # the institution's plans, by code (None: no --institution)

    def covers(self, plan_id: int) -> bool:
        return self.plan_ids is None or plan_id in self.plan_ids


def _plan_scope(session, institution: str | None, plan: str | None) -> PlanScope:
    """``--institution`` and ``--plan`` resolved: an unknown institution or plan is one message
    listing what there is; a plan of another institution names both."""
    _require_plan(session, plan)
    if institution is None:
        return PlanScope(plan, None, None)
    from sqlalchemy import select

    from duban import institutions
    from duban.models import Institution as InstitutionRow
    from duban.models import Plan

    try:
        inst = institutions.get(session, institution.strip())
    except institutions.InstitutionError as err:
        _fail(str(err), 1)
    rows = session.execute(select(Plan.id, Plan.code).where(Plan.institution_id == inst.id).order_by(Plan.code)).all()
    if plan is not None and plan not in {r.code for r in rows}:
        owner = session.scalar(select(InstitutionRow.code).join(Plan, Plan.institution_id == InstitutionRow.id).where(Plan.code == plan))
        mine = "、".join(r.code for r in rows) or "（暂无）"
        _fail(f"方案“{plan}”属于单位“{owner}”，不属于 --institution 指定的单位“{inst.code}”。单位“{inst.code}”的方案：{mine}", 1)
    chosen = [r for r in rows if plan is None or r.code == plan]
    return PlanScope(plan, [r.id for r in chosen], [r.code for r in chosen])
