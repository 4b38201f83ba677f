"""``duban review …``: start, list, show, cancel reviews (督查) and give verdicts (thin over duban.reviews)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from duban.cli.common import InstitutionOption, _date, _engine, _fail, _parse_day, _plan_scope, _runtime, console
from duban.vocabulary import ReviewState

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from duban.reviews import api as reviews
    from duban.runtime import Runtime

review_app = typer.Typer(help="督查：按范围发起督查、查看进度、评定、撤销。", no_args_is_help=True)


@review_app.command("start")
def start_command(
    reply_by: Annotated[str, typer.Option("--reply-by", help="填报截止日期（YYYY-MM-DD）")],
    ask: Annotated[
        str, typer.Option("--ask", help="督查要求（随通知发给责任人）")
    ] = "请报告各项任务的已完成工作、佐证材料、存在问题和下一步计划。",
    plan: Annotated[str | None, typer.Option("--plan", help="方案编号（只有一个方案时可省略）")] = None,
    system: Annotated[list[str] | None, typer.Option("--system", help="育人体系名称（可多次）")] = None,
    department: Annotated[list[str] | None, typer.Option("--department", help="牵头单位名称（可多次）")] = None,
    supervisor: Annotated[list[str] | None, typer.Option("--supervisor", help="分管校领导姓名（可多次）")] = None,
    tasks: Annotated[str | None, typer.Option("--tasks", help="任务编号，逗号分隔，如 01.1.1,01.1.2")] = None,
    all_tasks: Annotated[bool, typer.Option("--all", help="方案的全部任务")] = False,
    title: Annotated[str | None, typer.Option("--title", help="督查名称（缺省按范围生成）")] = None,
    by: Annotated[str, typer.Option("--by", help="发起人")] = "领导小组办公室",
    today: Annotated[str | None, typer.Option("--today", help="按这一天发起（YYYY-MM-DD，缺省为今天）")] = None,
    local: Annotated[bool, typer.Option("--local", help="不经 Prefect 部署，在本进程中运行")] = False,
) -> None:
    """发起督查：通知范围内各任务责任人按期填报（有 Prefect 服务和 review 部署时通过部署运行）。"""
    scopes = [
        (k, v)
        for k, v in (
            ("system", system),
            ("department", department),
            ("supervisor", supervisor),
            ("tasks", [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None),
            ("plan", [] if all_tasks else None),
        )
        if v is not None
    ]
    if len(scopes) != 1:
        _fail("请指定一种督查范围：--system、--department、--supervisor、--tasks 或 --all（只能选一种）。", 2)
    kind, values = scopes[0]
    day = _parse_day(today)
    due = _date(reply_by, "填报截止日期")
    _engine()
    rt = _runtime()
    from duban import orchestration
    from duban.reviews import api as reviews

    if due <= day:
        _fail(f"填报截止日期 {due.isoformat()} 应晚于今天（{day.isoformat()}）。", 2)
    try:  # the scope is checked first: a mistake is one clear message, and nothing is written
        started = orchestration.start_review(
            rt.engine,
            plan_code=plan,
            scope_kind=kind,
            scope_values=values,
            reply_by=due,
            ask=ask,
            title=title,
            started_by=by,
            today=day,
            reports_dir=rt.settings.data_dir / "reports",
            local=local,
        )
    except reviews.ReviewError as err:
        _fail(str(err), 1)
    _deliver(rt, started.recipients, day)
    if started.how == "deployment":
        console.print(
            f"已通过 Prefect 部署发起督查（{started.tasks} 项任务），督查编号 {started.review_id}，运行编号 {started.flow_run_id}。"
            "已通知各责任人；可在 Prefect 界面查看进度，duban review list 查看督查。",
            markup=False,
        )
        return
    console.print(
        f"已发起督查 {started.review_id}：{started.tasks} 项任务，填报截止 {due.isoformat()}，已通知各责任人。"
        "逾期未报将逐级督办（每日督办检查）；评定：duban review verdict。",
        markup=False,
    )


@review_app.command("list")
def list_command(
    plan: Annotated[str | None, typer.Option("--plan", help="只看这个方案")] = None,
    status: Annotated[str | None, typer.Option("--status", help="open / waiting_verdicts / closed / cancelled")] = None,
    institution: InstitutionOption = None,
) -> None:
    """列出督查及其进度。"""
    from rich.table import Table

    from duban.db import session_scope
    from duban.reviews import api as reviews

    with session_scope(_engine(), readonly=True) as s:
        scope = _plan_scope(s, institution, plan)
        rows = reviews.summaries(s, plan_code=plan, status=status)
    if scope.plan_codes is not None:  # --institution: its plans only
        rows = [r for r in rows if r["plan"] in scope.plan_codes]
    if not rows:
        console.print("还没有督查。发起：duban review start --system 名称 --reply-by YYYY-MM-DD", markup=False)
        return
    table = Table()
    for col in ("编号", "方案", "督查", "状态", "发起", "填报截止", "已填报", "已评定"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["plan"],
            r["title"],
            ReviewState.label_of(r["status"]),
            r["started_on"],
            r["reply_by"],
            f"{r['answered']}/{r['items']}",
            f"{r['judged']}/{r['items']}",
        )
    console.print(table)


@review_app.command("show")
def show_command(review_id: Annotated[int, typer.Argument(help="督查编号")], institution: InstitutionOption = None) -> None:
    """查看一次督查：各任务的填报、评定、未填报和整改事项。"""
    from duban.db import session_scope
    from duban.models import Review
    from duban.reviews import api as reviews

    rt = _runtime(institution)
    with session_scope(_engine(), readonly=True) as s:
        scope = _plan_scope(s, institution, None)
        review = s.get(Review, review_id)
        if review is None:
            _fail(f"没有编号为 {review_id} 的督查。", 1)
        if not scope.covers(review.plan_id):
            hint = f"可用 duban review list --institution {institution} 查看该单位的督查。"
            _fail(f"督查 {review_id} 不属于 --institution 指定的单位“{institution}”。{hint}", 1)
        d = reviews.report_data(s, review, tz=rt.tz)
        status = ReviewState.label_of(review.status)
        paths = (review.report_html, review.report_xlsx)
    out = console.print
    out(
        f"督查 {d['id']}：{d['title']}（{status}）\n方案：{d['plan']}\n范围：{d['scope']}\n要求：{d['ask']}\n"
        f"发起：{d['started_on']}（{d['started_by']}） 填报截止：{d['reply_by']}\n"
        f"已填报 {d['counts']['answered']}/{d['counts']['items']}（逾期 {d['counts']['late']}），评定："
        + "，".join(f"{k} {v}" for k, v in d["counts"]["verdicts"].items()),
        markup=False,
    )
    for i in d["items"]:
        state = (f"{i['answered_at']} 填报" + ("（逾期）" if i["late"] else "")) if i["answered"] else "未填报"
        out(
            f"\n[{i['code']}] {i['title']} — {i['department']} {i['owner']}：{state}；评定：{i['verdict'] or '未评定'}"
            + (f"（{i['verdict_note']}）" if i["verdict_note"] else ""),
            markup=False,
        )
        if i["answered"]:
            out(f"  已完成工作：{i['done']}\n  存在问题：{i['problems'] or '—'}\n  下一步计划：{i['next_steps']}", markup=False)
            if i["evidence"]:
                out("  佐证材料：" + "；".join(i["evidence"]), markup=False)
    if d["follow_ups"]:
        out("\n整改事项：", markup=False)
        for f in d["follow_ups"]:
            out(f"  [{f['code']}] {f['milestone']} — {f['owner']}，{f['due']} 前完成", markup=False)
    if paths[0]:
        out(f"\n督查报告：{paths[0]}\n        {paths[1]}", markup=False)


def _deliver(rt, recipients: set[int], day: dt.date) -> None:
    from duban.reviews import api as reviews

    reviews.deliver(rt, recipients, day)


def _in_review(change: Callable[[Session], reviews.Outcome]) -> tuple[Runtime, reviews.Outcome]:
    """The run's runtime, and ``change`` done in one transaction; a ReviewError is one message."""
    from duban.db import session_scope
    from duban.reviews import api as reviews

    _engine()
    rt = _runtime()
    try:
        with session_scope(rt.engine) as s:
            out = change(s)
    except reviews.ReviewError as err:
        _fail(str(err), 1)
    return rt, out


@review_app.command("cancel")
def cancel_command(
    review_id: Annotated[int, typer.Argument(help="督查编号")],
    reason: Annotated[str, typer.Option("--reason", help="撤销原因（告知尚未填报的责任人）")] = "",
    by: Annotated[str, typer.Option("--by", help="操作人")] = "领导小组办公室",
    today: Annotated[str | None, typer.Option("--today", help="YYYY-MM-DD，缺省为今天")] = None,
) -> None:
    """撤销督查：尚未填报的责任人收到撤销通知，链接失效。"""
    from duban import orchestration
    from duban.models import utcnow
    from duban.reviews import api as reviews

    day = _parse_day(today)
    rt, out = _in_review(lambda s: reviews.cancel(s, review_id, actor=by, reason=reason, now=utcnow(), today=day))
    orchestration.wake(rt.engine, review_id)  # the suspended run ends itself (it finds the review cancelled)
    _deliver(rt, out.notify, day)
    console.print(out.message, markup=False)


@review_app.command("verdict")
def verdict_command(
    review_id: Annotated[int, typer.Argument(help="督查编号")],
    task: Annotated[str, typer.Option("--task", help="任务编号")],
    verdict: Annotated[str, typer.Option("--verdict", help="达标 / 基本达标 / 需整改")],
    note: Annotated[str, typer.Option("--note", help="评定意见（需整改时必填）")] = "",
    follow_up_title: Annotated[str, typer.Option("--follow-up-title", help="整改事项（需整改时必填）")] = "",
    follow_up_due: Annotated[str | None, typer.Option("--follow-up-due", help="整改完成日期 YYYY-MM-DD（需整改时必填）")] = None,
    follow_up_owner: Annotated[str, typer.Option("--follow-up-owner", help="整改责任人姓名（缺省为任务责任人）")] = "",
    by: Annotated[str, typer.Option("--by", help="评定人")] = "领导小组办公室",
    today: Annotated[str | None, typer.Option("--today", help="YYYY-MM-DD，缺省为今天")] = None,
) -> None:
    """评定督查中的一项任务（完成评定前可再次评定以修改）；全部评定后用 duban review close 完成评定并报送。"""
    from duban.models import Review, utcnow
    from duban.reviews import api as reviews

    day = _parse_day(today)
    due = _date(follow_up_due, "整改完成日期") if follow_up_due else None

    def judge(s):
        review = s.get(Review, review_id, with_for_update=True)
        if review is None:
            _fail(f"没有编号为 {review_id} 的督查。", 1)
        return reviews.give_verdict(
            s,
            review,
            reviews.TaskVerdict(task, verdict, note, follow_up_title, due, follow_up_owner),
            actor=by,
            now=utcnow(),
            today=day,
            channel="cli",
        )

    rt, out = _in_review(judge)
    _deliver(rt, out.notify, day)
    console.print(out.message, markup=False)


@review_app.command("close")
def close_command(
    review_id: Annotated[int, typer.Argument(help="督查编号")],
    by: Annotated[str, typer.Option("--by", help="操作人")] = "领导小组办公室",
    today: Annotated[str | None, typer.Option("--today", help="YYYY-MM-DD，缺省为今天")] = None,
) -> None:
    """完成评定并报送：全部任务评定后，生成督查报告并报送领导小组和领导小组办公室（此后评定不能再修改）。"""
    from duban import orchestration
    from duban.db import session_scope
    from duban.models import Review, utcnow
    from duban.reviews import api as reviews

    day = _parse_day(today)

    def close(s):
        reports = _runtime().settings.data_dir / "reports"
        return reviews.close_review(s, review_id, actor=by, now=utcnow(), today=day, reports_dir=reports, channel="cli")

    rt, out = _in_review(close)
    orchestration.wake(rt.engine, review_id)  # a suspended flow run ends itself (it finds the review closed)
    _deliver(rt, out.notify, day)
    console.print(out.message, markup=False)
    with session_scope(rt.engine, readonly=True) as s:
        r = s.get(Review, review_id)
        if r is not None:
            console.print(f"督查报告：{r.report_html}", markup=False)
