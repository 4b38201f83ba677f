"""``duban import / status / plans / report / export``: plans in and out of the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from duban.cli.common import (
    InstitutionOption,
    _engine,
    _fail,
    _parse_day,
    _plan_scope,
    _runtime,
    _settings,
    app,
    console,
    err_console,
)


@app.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="方案文件：YAML（.yaml）、Excel（.xlsx）或 CSV（.csv）")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只显示将要发生的变更，不写入数据库")] = False,
    plan: Annotated[str | None, typer.Option("--plan", help="方案编号：覆盖文件中的编号（Excel/CSV 没有“方案”表时缺省为文件名）")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="记入操作记录的操作人（缺省为“领导小组办公室（导入）”）")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="以 JSON 输出变更")] = False,
    institution: Annotated[
        str | None, typer.Option("--institution", help="方案所属单位（学校）编号：新单位随导入建立；只有一个单位时可省略")
    ] = None,
    institution_name: Annotated[str | None, typer.Option("--institution-name", help="单位名称（缺省为方案中的“单位”）")] = None,
    accept: Annotated[
        list[str] | None,
        typer.Option("--accept", help="任务编号：该任务与系统中已有决定（如已批准的延期）冲突的变更以表格为准（可重复，或用逗号分隔）"),
    ] = None,
    accept_sheet: Annotated[
        bool, typer.Option("--accept-sheet", help="所有与系统中已有决定冲突的变更都以表格为准（慎用：会覆盖已批准的延期等决定）")
    ] = False,
) -> None:
    """导入或更新一个方案：新增任务、变更时间和责任人、归档删除的任务，已有进展不丢失；
    与系统中已有决定（已批准的延期、已办结或有佐证材料的里程碑）冲突的变更须确认后才应用。"""
    from zoneinfo import ZoneInfo

    from sqlalchemy.exc import DBAPIError

    from definitions.problems import PlanProblems
    from duban.plans.importer import import_plan

    codes = [c.strip() for item in accept or () for c in item.replace("，", ",").split(",") if c.strip()]
    engine = _engine(create=True)  # the first import creates the tables
    tz = ZoneInfo(_settings().timezone)
    try:
        diff = import_plan(
            engine,
            path,
            dry_run=dry_run,
            actor=actor,
            plan_code=plan,
            accept=codes,
            accept_sheet=accept_sheet,
            tz=tz,
            institution=institution,
            institution_name=institution_name,
        )
    except DBAPIError as err:
        _fail(f"写入数据库时出错，本次导入未写入任何内容（{err.__class__.__name__}：{err.orig}）。如有其他导入正在进行，请稍后重试。", 1)
    except PlanProblems as err:
        if as_json:
            problems = [{"where": p.where, "message": p.message} for p in err.problems]
            print(json.dumps({"ok": False, "problems": problems}, ensure_ascii=False, indent=2))
            raise typer.Exit(1) from err
        _fail(err.render(), 1)
    announced = None if dry_run else _announce_imported(diff.plan_code, actor)
    _print_imported(diff, announced, dry_run=dry_run, as_json=as_json)


def _print_imported(diff, announced: int | None, *, dry_run: bool, as_json: bool) -> None:
    """What ``duban import`` changed (or would change), as text or JSON."""
    if as_json:
        extra = {"announced": announced} if announced is not None else {}
        print(json.dumps({"ok": True, "dry_run": dry_run, **diff.to_dict(), **extra}, ensure_ascii=False, indent=2))
        return
    console.print(diff.render(), markup=False, highlight=False)
    if dry_run:
        console.print("（预览：以上变更尚未写入。去掉 --dry-run 即可导入。）", markup=False)
    elif diff.conflicts:
        console.print(f"导入完成；{len(diff.conflicts)} 项任务与系统中已有决定冲突的变更未应用（见上）。", markup=False)
    else:
        console.print("导入完成。", markup=False)
        if announced:
            console.print(f"已按方案设置（导入即下达）下达 {announced} 项任务，并向责任人发出下达通知。", markup=False)


def _announce_imported(plan_code: str, actor: str | None) -> int | None:
    """A plan that announces on import (下达方式：导入即下达): announce what the import added or
    reassigned; how many tasks (None: the plan does not announce on import)."""
    import datetime as dt

    from duban.announce import announce_imported
    from duban.plans.sync import default_actor

    rt = _runtime()
    result = announce_imported(rt, plan_code, today=rt.today(), now=dt.datetime.now(dt.UTC), actor=actor or default_actor())
    return None if result is None else result.announced


@app.command("status")
def status_command(
    plan: Annotated[str | None, typer.Option("--plan", help="只看这个方案（方案编号）")] = None,
    today: Annotated[str | None, typer.Option("--today", help="按这一天统计（YYYY-MM-DD，缺省为今天）")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="输出 JSON（格式见 docs/status-json.md）")] = False,
    institution: InstitutionOption = None,
) -> None:
    """任务进展统计：按状态、按育人体系、按牵头单位。"""
    from duban.db import session_scope
    from duban.status import collect_status, render_status

    day = _parse_day(today)
    engine = _engine()
    with session_scope(engine, readonly=True) as session:
        scope = _plan_scope(session, institution, plan)
        data = collect_status(session, today=day, plan_code=plan, plan_ids=scope.plan_ids)
    if institution is not None:
        data["institution"] = institution.strip()
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return
    if not data["by_plan"]:
        console.print(_no_plans(institution), markup=False)
        return
    for item in render_status(data):
        console.print(item)


def _no_plans(institution: str | None) -> str:
    if institution is not None:
        return f"单位“{institution.strip()}”还没有方案。请先导入：duban import 方案文件.xlsx --institution {institution.strip()}"
    return "库中还没有方案。请先导入：duban import 方案文件.xlsx"


@app.command("plans")
def plans_command(institution: InstitutionOption = None) -> None:
    """列出库中的方案（及所属单位）。"""
    from rich.table import Table
    from sqlalchemy import func, select

    from duban.db import session_scope
    from duban.models import Institution, Plan, Task

    with session_scope(_engine(), readonly=True) as session:
        scope = _plan_scope(session, institution, None)
        q = (
            select(Plan.code, Plan.name, Plan.organization, Institution.code, Plan.updated_at, func.count(Task.id))
            .join(Institution, Institution.id == Plan.institution_id)
            .outerjoin(Task, (Task.plan_id == Plan.id) & Task.archived_at.is_(None))
            .group_by(Plan.id, Institution.code)
            .order_by(Plan.code)
        )
        rows = session.execute(q if scope.plan_ids is None else q.where(Plan.id.in_(scope.plan_ids or [-1]))).all()
    if not rows:
        console.print(_no_plans(institution), markup=False)
        return
    table = Table()
    for col in ("方案编号", "方案名称", "单位", "单位编号", "任务数", "最近更新"):
        table.add_column(col)
    for code, name, org, inst, updated, n in rows:
        table.add_row(code, name, org or "", inst, str(n), updated.strftime("%Y-%m-%d %H:%M") if updated else "")
    console.print(table)


@app.command("report")
def report_command(
    out: Annotated[Path | None, typer.Option("--out", help="报告保存到这个文件夹（缺省为数据目录下的 reports）")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="按这一天统计（YYYY-MM-DD，缺省为今天）")] = None,
    plan: Annotated[str | None, typer.Option("--plan", help="只统计这个方案（方案编号）；缺省为全部方案")] = None,
    snapshot: Annotated[bool, typer.Option("--snapshot/--no-snapshot", help="同时记录当日快照（趋势图的数据），缺省记录")] = True,
    pdf: Annotated[bool, typer.Option("--pdf", help="同时保存各方案最近一期督办通报的 PDF（公文格式，可直接打印）")] = False,
    province: Annotated[
        bool, typer.Option("--province", help="省级汇总：按单位（学校）统计、排名及名次变化，不能与 --plan、--institution 同用")
    ] = False,
    institution: InstitutionOption = None,
) -> None:
    """督办汇总报告：完成率、按期率、红黄绿灯、逾期和待审核事项、延期、趋势和单位考核，生成 HTML 报告和 Excel 工作簿。"""
    from duban.db import session_scope
    from duban.report import write_report
    from duban.rollup import RollupError, headline
    from duban.rollup.compute import compute

    day = _parse_day(as_of)
    engine = _engine()
    if province:
        if plan is not None or institution is not None:
            _fail("--province 统计全部单位，不能同时指定 --plan 或 --institution。", 2)
        _province_report(engine, _runtime(), day, out, snapshot=snapshot)
        return
    with session_scope(engine, readonly=True) as session:
        scope = _plan_scope(session, institution, plan)
    rt = _runtime(institution)
    try:
        r = compute(engine, as_of=day, plan_code=plan, tz=rt.tz, cal=rt.calendar, plan_ids=scope.plan_ids)
    except RollupError as err:
        _fail(str(err), 1)
    if r.plans.empty:
        _fail(_no_plans(institution), 1)
    if snapshot:
        _snapshot(engine, r)
    folder = out or _settings().data_dir / "reports"
    files = _written(write_report, r, folder, rt.tz)
    console.print(headline(r), markup=False, highlight=False)
    worst = r.assessment.dropna(subset=["score"]).sort_values("score").head(3)  # departments with nothing due are not scored
    if len(worst):
        console.print(
            "考核得分较低的单位："
            + "；".join(
                (f"{a.department}（{a.plan}）" if plan is None and len(r.plans) > 1 else f"{a.department}") + f" {a.score:.1f} 分"
                for a in worst.itertuples()
            ),
            markup=False,
            highlight=False,
        )
    for w in r.warnings:
        console.print(f"提示：{w}", markup=False, highlight=False)
    _print_files(files)
    if pdf:
        from duban.cli.paper import save_bulletins

        save_bulletins(engine, [str(c) for c in r.plans["plan"]], folder)


def _province_report(engine, rt, day, out: Path | None, *, snapshot: bool) -> None:
    """``duban report --province``: one row per institution, ranked, as HTML and XLSX."""
    from duban.report_province import headline, write_report
    from duban.rollup.institutions import province_rollup

    p = province_rollup(engine, as_of=day, tz=rt.tz, cal=rt.calendar)
    if p.institutions.empty:
        _fail("库中还没有单位。请先导入各单位的方案：duban import 方案文件.xlsx --institution 单位编号", 1)
    if snapshot:
        _snapshot(engine, p.rollup)
    folder = out or _settings().data_dir / "reports"
    files = _written(write_report, p, folder, rt.tz)
    console.print(headline(p), markup=False, highlight=False)
    console.print(p.comparison(), markup=False, highlight=False)
    _print_files(files)


def _written(write_report, rollup, folder: Path, tz):
    """The report files ``write_report`` made of ``rollup`` in ``folder``; a clear failure when it cannot."""
    try:
        return write_report(rollup, folder, tz=tz)
    except OSError as err:
        _fail(f"无法写入报告文件夹 {folder}：{err.strerror or err}", 1)


def _print_files(files) -> None:
    console.print(f"HTML 报告：{files.html}", markup=False, highlight=False)
    console.print(f"Excel 工作簿：{files.xlsx}", markup=False, highlight=False)


SNAPSHOT_WAIT = 2.0  # seconds `duban report` waits for another writer before it goes without its snapshot


def _snapshot(engine, r) -> None:
    """The day's snapshot (the trend's data points). The report does not need it, so while
    another task writes (a sweep, an import) it is left to the daily check rather than waited for."""
    from sqlalchemy.exc import DBAPIError

    from duban.db import is_transient
    from duban.rollup.snapshots import snapshot

    try:
        snapshot(engine, r, wait=SNAPSHOT_WAIT)
    except DBAPIError as err:
        if not is_transient(err):
            raise
        err_console.print(
            "提示：数据库正忙（另一项任务正在写入），本次未记录当日快照（趋势图的数据），报告不受影响；每日督办检查会记录当日快照。",
            markup=False,
            highlight=False,
        )


@app.command("export")
def export_command(
    plan: Annotated[str, typer.Argument(help="方案编号")],
    out: Annotated[Path, typer.Option("--out", "-o", help="输出文件（.xlsx 或 .yaml）")],
    institution: InstitutionOption = None,
) -> None:
    """把库中的方案导出为 Excel 或 YAML（格式与导入相同，可修改后再导入）。"""
    from definitions.export import write_plan_file
    from duban.db import session_scope
    from duban.plans.export import plan_file_from_store

    with session_scope(_engine(), readonly=True) as session:
        if institution is not None:
            _plan_scope(session, institution, plan)  # the plan must be the institution's
        plan_file = plan_file_from_store(session, plan)
    if plan_file is None:
        _fail(f"没有编号为“{plan}”的方案。", 1)
    try:
        write_plan_file(plan_file, out)
    except ValueError as err:
        _fail(str(err), 2)
    except OSError as err:
        _fail(f"无法写入 {out}：{err.strerror or err}。请检查文件夹是否存在、是否有写入权限，以及该文件是否正在 Excel 中打开。", 1)
    console.print(f"已导出到 {out}", markup=False)
