"""The province's roll-up as documents: a self-contained HTML page and an Excel workbook, one row
per institution (:mod:`duban.rollup.institutions`), beside the report of every plan.

The same formats as :mod:`duban.report` and :mod:`duban.report_xlsx` (cells, fonts, charts,
sheets ready to print): this module only chooses the table and the words around it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from duban.files import private_file, write_private_text
from duban.report import FONT_STACK, ReportFiles, cell_text, chart_rag, chart_rates, chart_trend, environment, local_time, safe_file_name
from duban.report_charts import RAG_COLOURS
from duban.report_xlsx import _sheet, _wrapped, page_setup
from duban.rollup import header, rates_and_lights
from duban.rollup.assessment import NOTHING_DUE
from duban.rollup.institutions import COLUMNS, RANKED_BY, ProvinceRollup

TITLE = "各单位督办情况汇总"


def ranking_note(p: ProvinceRollup) -> str:
    return (
        f"排名按{RANKED_BY}（按期完成节点 ÷ 应完成节点，精确到 0.1%）由高到低，相同者并列；"
        f"尚无应完成节点的单位暂不排名，列于最后（{NOTHING_DUE}）。{p.comparison()}"
    )


def headline(p: ProvinceRollup) -> str:
    """One Chinese sentence with the province's figures (CLI, report)."""
    t = p.totals
    return (
        f"截至 {p.as_of.isoformat()}，{t['institutions']} 个单位、{t['plans']} 个方案，任务 {t['tasks']} 项，"
        f"其中在办 {t['open_tasks']} 项；{rates_and_lights(t)}。"
    )


def _rows(p: ProvinceRollup) -> list[list[tuple[str, str]]]:
    return [
        [(c, cell_text(c, v) or (NOTHING_DUE if c == "rank" else "")) for c, v in zip(COLUMNS, values, strict=True)]
        for values in p.institutions[COLUMNS].itertuples(index=False, name=None)
    ]


def charts(p: ProvinceRollup, limit: int = 30) -> list[str]:
    """Lights and rates of the institutions with the lowest on-time rate, and the province's trend."""
    worst = p.institutions.sort_values(["on_time_rate", "tasks"], ascending=[True, False], na_position="last").head(limit)
    note = f"（按期完成率最低的 {limit} 个）" if len(p.institutions) > limit else ""
    rows = [(str(row["institution_name"]), row) for row in worst.to_dict(orient="records")]
    out = [
        chart_rag(f"各单位任务状态灯{note}", [(n, {k: int(row[k]) for k in RAG_COLOURS}) for n, row in rows]),
        chart_rates(f"各单位完成情况{note}", [(n, _rate(row["completion_rate"]), _rate(row["on_time_rate"])) for n, row in rows]),
        chart_trend("全省趋势（每日快照）", p.rollup.trend),
    ]
    return [c for c in out if c]


def _rate(v: Any) -> float | None:
    return None if v is None or v != v else float(v)


def render_html(p: ProvinceRollup, *, generated_at: dt.datetime | None = None, tz: Any = None) -> str:
    return (
        environment()
        .get_template("province.html.j2")
        .render(
            title=TITLE,
            as_of=p.as_of.isoformat(),
            generated_at=local_time(generated_at, tz),
            headline=headline(p),
            columns=[(c, header(c)) for c in COLUMNS],
            numeric={c for c in COLUMNS if c not in ("change", "institution_name")},
            rows=_rows(p),
            charts=charts(p),
            note=ranking_note(p),
            font_stack=FONT_STACK,
        )
    )


def write_workbook(p: ProvinceRollup, path: str | Path) -> Path:
    """说明 (the headline, the ranking rule) and 各单位 (every institution, every count)."""
    path = Path(path)
    wb = Workbook(write_only=True)
    _notes(wb, f"{TITLE}（截至 {p.as_of.isoformat()}）", [headline(p), ranking_note(p)])
    extra = ["milestones", "done_milestones", "due_milestones", "on_time_milestones", "overdue_milestones", "due_soon_tasks"]
    cols = ["institution", *COLUMNS, *extra]
    frame = p.institutions.assign(rank=p.institutions["rank"].map(lambda r: NOTHING_DUE if r is None else r))
    _sheet(wb, f"{TITLE}（截至 {p.as_of.isoformat()}）", "各单位", cols, frame)
    wb.save(private_file(path))
    return path


def _notes(wb: Workbook, title: str, lines: list[str]) -> None:
    ws = wb.create_sheet("说明")
    ws.column_dimensions["A"].width = 100
    page_setup(ws, title=title, landscape=False, header_rows="1:1")
    cell = WriteOnlyCell(ws, value=title)
    cell.font = Font(bold=True, size=14)
    ws.append([cell])
    for line in lines:
        ws.append([_wrapped(ws, line)])


def write_report(p: ProvinceRollup, out_dir: str | Path, *, generated_at: dt.datetime | None = None, tz: Any = None) -> ReportFiles:
    """Write ``各单位督办情况汇总-<day>.html`` and ``.xlsx`` into ``out_dir`` (created if needed)."""
    out = Path(out_dir)
    name = safe_file_name(f"{TITLE}-{p.as_of.isoformat()}")
    html = write_private_text(out / f"{name}.html", render_html(p, generated_at=generated_at, tz=tz))
    return ReportFiles(html, write_workbook(p, out / f"{name}.xlsx"))
