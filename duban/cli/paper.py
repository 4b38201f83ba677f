"""``duban notice``: a task's numbered 督办单 as PDF; and the 通报 PDFs of ``duban report --pdf``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from duban.cli.common import InstitutionOption, _engine, _fail, _plan_scope, _runtime, app, console


def save_bulletins(engine, plan_codes: list[str], folder: Path) -> None:
    """Save the latest issued 督办通报 of each plan as PDF in ``folder`` (a plan without one is named)."""
    from duban import paper
    from duban.files import private_file

    for code in plan_codes:
        try:
            plan, bulletin = paper.find_bulletin(engine, code)
        except paper.PaperError as err:
            console.print(f"提示：{err}", markup=False, highlight=False)
            continue
        doc = paper.bulletin_pdf(plan, bulletin)
        path = private_file(Path(folder) / doc.name)
        path.write_bytes(doc.pdf)
        console.print(f"督办通报 PDF：{path}", markup=False, highlight=False)


@app.command("notice")
def notice_command(
    task: Annotated[str, typer.Argument(help="任务编号")],
    plan: Annotated[str, typer.Option("--plan", help="方案编号")],
    out: Annotated[Path, typer.Option("--out", help="督办单保存到这个文件夹")] = Path("."),
    by: Annotated[str, typer.Option("--by", help="印发人（记入督办单台账）")] = "领导小组办公室",
    institution: InstitutionOption = None,
) -> None:
    """印发督办单：为任务编号（当年首次印发时编号 督办〔年〕N号，再次印发沿用原编号），保存为可打印的 PDF（附回执）。"""
    from duban import paper
    from duban.db import session_scope
    from duban.files import private_file

    if institution is not None:
        with session_scope(_engine(), readonly=True) as session:
            _plan_scope(session, institution, plan)  # the plan must be the institution's
    rt = _runtime(institution)
    try:
        notice = paper.issue_notice(_engine(), plan, task, today=rt.today(), cal=rt.calendar, issued_by=by)
    except paper.PaperError as err:
        _fail(str(err), 1)
    doc = paper.notice_pdf(notice)
    try:
        out.mkdir(parents=True, exist_ok=True)
        path = private_file(out / doc.name)
        path.write_bytes(doc.pdf)
    except OSError as err:
        _fail(f"无法写入文件夹 {out}：{err.strerror or err}", 1)
    console.print(f"{paper.notice_number(notice.year, notice.number)}：{path}", markup=False, highlight=False)
