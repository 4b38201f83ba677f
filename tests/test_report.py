"""The report (duban/report.py): the HTML, the workbook, `duban status --json` and the roll-up agree
with each other and with the hand-computed numbers of tests/test_rollup.py; the HTML renders
Chinese with a CJK font and its charts in headless Chromium; the flows make artifacts and the 通报."""

from __future__ import annotations

import datetime as dt
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from duban import rollup
from duban.report import write_report
from duban.rollup.trend import trend
from tests.rollup.test_rollup import AS_OF, build_scenario, compute

runner = CliRunner()


class ReportParser(HTMLParser):
    """Headline figures (``data-figure``) and tables (``data-view`` / ``data-col``) of the report."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self.tables: dict[str, list[dict[str, str]]] = {}
        self.svgs = 0
        self.external: list[str] = []
        self._figure: str | None = None
        self._view: str | None = None
        self._col: str | None = None
        self._row: dict[str, str] | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg":
            self.svgs += 1
        for key in ("src", "href"):
            if a.get(key):
                self.external.append(a[key])
        if tag == "link" or tag == "script":
            self.external.append(tag)
        if "data-figure" in a:
            self._figure, self._text = a["data-figure"], ""
        if tag == "table" and "data-view" in a:
            self._view = a["data-view"]
            self.tables[self._view] = []
        if tag == "tr" and self._view:
            self._row = {}
        if tag == "td" and self._row is not None:
            self._col, self._text = a.get("data-col"), ""

    def handle_data(self, data):
        self._text += data

    def handle_endtag(self, tag):
        if self._figure and tag in ("div", "strong"):
            self.figures.setdefault(self._figure, self._text.strip())
            self._figure = None
        if tag == "td" and self._col:
            self._row[self._col] = self._text.strip()
            self._col = None
        if tag == "tr" and self._row:
            self.tables[self._view].append(self._row)
            self._row = None
        if tag == "table":
            self._view = None


def parse(html: str) -> ReportParser:
    p = ReportParser()
    p.feed(html)
    return p


def sheet_rows(path: Path, title: str) -> list[dict]:
    wb = load_workbook(path, read_only=True)
    rows = list(wb[title].iter_rows(values_only=True))
    head = rows[0]
    return [dict(zip(head, r, strict=False)) for r in rows[1:]]  # a sheet row may stop before its last empty cells


@pytest.fixture
def report(engine, tmp_path):
    build_scenario(engine, tmp_path)
    r = compute(engine, plan_code="rollup")
    files = write_report(r, tmp_path / "out", generated_at=dt.datetime(2026, 11, 23, 17, 0))
    return engine, r, files


def test_html_workbook_status_and_rollup_agree(report, use_database):
    engine, r, files = report
    html = parse(files.html.read_text(encoding="utf-8"))
    # headline figures: hand-computed (tests/test_rollup.py) == roll-up == HTML
    assert html.figures["tasks"] == "5" == str(r.totals["tasks"])
    assert html.figures["done_tasks"] == "1"
    assert html.figures["completion_rate"] == "28.6%"  # 2 of 7 milestones
    assert html.figures["on_time_rate"] == "25.0%"  # 1 of 4 due
    assert (html.figures["red"], html.figures["yellow"], html.figures["green"]) == ("2", "0", "2")
    assert html.figures["overdue_tasks"] == "2" and html.figures["due_soon_tasks"] == "1" and html.figures["awaiting_approval"] == "1"

    # the workbook's 说明 sheet has the same figures, as numbers
    wb = load_workbook(files.xlsx, read_only=True)
    summary = {row[0]: row[1] for row in wb["说明"].iter_rows(values_only=True) if len(row) > 1 and row[0]}
    assert summary["任务总数"] == 5 and summary["在办任务"] == 4 and summary["红灯"] == 2 and summary["逾期任务"] == 2
    assert summary["按期完成率"] == pytest.approx(0.25) and summary["节点完成率"] == pytest.approx(2 / 7)

    # the department view: HTML text == workbook numbers == roll-up == hand-computed
    html_depts = {row["department"]: row for row in html.tables["by_department"]}
    xlsx_depts = {row["牵头单位"]: row for row in sheet_rows(files.xlsx, "按牵头单位")}
    expected = {"教务处": (3, 1, 2, 0, 2, 0, 0, 5, 2, 4, 1), "宣传部": (2, 0, 0, 1, 0, 0, 2, 2, 0, 0, 0)}
    cols = [
        "tasks",
        "done_tasks",
        "overdue_tasks",
        "due_soon_tasks",
        "red",
        "yellow",
        "green",
        "milestones",
        "done_milestones",
        "due_milestones",
        "on_time_milestones",
    ]
    heads = [rollup.header(c) for c in cols]
    for dept, numbers in expected.items():
        assert tuple(int(html_depts[dept][c]) for c in cols) == numbers
        assert tuple(xlsx_depts[dept][h] for h in heads) == numbers
        mine = r.by_department[r.by_department["department"] == dept].iloc[0]
        assert tuple(int(mine[c]) for c in cols) == numbers
    assert html_depts["教务处"]["on_time_rate"] == "25.0%" and xlsx_depts["教务处"]["按期完成率"] == pytest.approx(0.25)
    assert html_depts["宣传部"]["on_time_rate"] == "—" and xlsx_depts["宣传部"].get("按期完成率") is None  # an empty cell

    # and `duban status --json` (the shared numbers)
    from duban.cli.main import app

    out = runner.invoke(app, ["status", "--json", "--today", AS_OF.isoformat(), "--plan", "rollup"])
    status = json.loads(out.output)
    assert status["totals"]["tasks"] == int(html.figures["tasks"])
    assert status["totals"]["overdue_tasks"] == int(html.figures["overdue_tasks"])
    assert status["totals"]["due_soon_tasks"] == int(html.figures["due_soon_tasks"])
    for entry in status["by_department"]:
        assert entry["tasks"] == int(html_depts[entry["department"]]["tasks"]) == xlsx_depts[entry["department"]]["任务总数"]
        assert entry["overdue_tasks"] == int(html_depts[entry["department"]]["overdue_tasks"])
        assert entry["tasks_by_status"]["done"] == int(html_depts[entry["department"]]["done_tasks"])
    for entry in status["by_system"]:
        html_sys = {row["system"]: row for row in html.tables["by_system"]}
        assert entry["tasks"] == int(html_sys[entry["system"]]["tasks"])
        assert entry["overdue_tasks"] == int(html_sys[entry["system"]]["overdue_tasks"])

    # assessment: every component shown, in both
    html_a = {row["department"]: row for row in html.tables["assessment"]}
    xlsx_a = {row["牵头单位"]: row for row in sheet_rows(files.xlsx, "单位考核")}
    assert (
        html_a["教务处"]["p_on_time"],
        html_a["教务处"]["p_overdue"],
        html_a["教务处"]["p_escalations"],
        html_a["教务处"]["p_returns"],
        html_a["教务处"]["score"],
    ) == ("12.5", "10.5", "5.0", "5.0", "33.0")
    assert (
        xlsx_a["教务处"]["按期完成得分"],
        xlsx_a["教务处"]["逾期得分"],
        xlsx_a["教务处"]["督办得分"],
        xlsx_a["教务处"]["退回得分"],
        xlsx_a["教务处"]["考核得分"],
    ) == (12.5, 10.5, 5.0, 5.0, 33.0)
    assert (xlsx_a["教务处"]["排名"], html_a["教务处"]["rank"]) == (1, "1")
    # 宣传部 has nothing due yet: not scored, not ranked, listed last
    assert (xlsx_a["宣传部"]["考核得分"], xlsx_a["宣传部"]["排名"], xlsx_a["宣传部"]["名次变化"]) == ("暂无到期事项", None, None)
    assert (html_a["宣传部"]["score"], html_a["宣传部"]["rank"], html_a["宣传部"]["p_on_time"]) == ("暂无到期事项", "", "")
    assert [row["department"] for row in html.tables["assessment"]] == ["教务处", "宣传部"]
    # how the score is made, from the plan's settings, in both (no file paths in what the office reads)
    text = files.html.read_text(encoding="utf-8")
    notes = [str(row[1] or "") for row in load_workbook(files.xlsx, read_only=True)["说明"].iter_rows(values_only=True) if len(row) > 1]
    for line in (
        "按期完成 50 分：按期完成节点 ÷ 应完成节点 × 50；批准延期的，按延期后的完成时间计。",
        "逾期 20 分：应完成节点平均逾期 10 个工作日及以上得 0 分",
        "名次变化：尚未印发过督办通报，暂无比较。",
    ):
        assert line in text and any(line in n for n in notes), line
    assert "docs/" not in text and not any("docs/" in n for n in notes)

    # lists: overdue (with the 督办 level), awaiting approval, extensions
    assert [(o["code"], o["days_late"], o["level_label"]) for o in html.tables["overdue"]] == [
        ("5", "16", "已报领导小组办公室"),
        ("1", "1", "未督办"),
    ]
    xo = sheet_rows(files.xlsx, "逾期事项")
    assert [(o["任务编号"], o["逾期工作日"], o["督办情况"]) for o in xo] == [("5", 16, "已报领导小组办公室"), ("1", 1, "未督办")]
    assert xo[0]["完成时间"] == dt.datetime(2026, 10, 30)
    assert [row["code"] for row in html.tables["awaiting_approval"]] == ["4"]
    (ext,) = sheet_rows(files.xlsx, "延期与调整")
    assert (ext["原定时间"], ext["完成时间"], ext["推迟天数"], ext["推迟工作日"]) == (
        dt.datetime(2026, 11, 13),
        dt.datetime(2026, 12, 4),
        21,
        15,
    )


def test_html_is_self_contained_and_printable(report):
    _engine, r, files = report
    text = files.html.read_text(encoding="utf-8")
    parsed = parse(text)
    assert parsed.external == []  # no link, script, image or font from anywhere
    assert "http://" not in text and "https://" not in text and "@import" not in text and "url(" not in text
    assert parsed.svgs >= 3
    assert '"Noto Sans CJK SC"' in text and "Microsoft YaHei" in text and "@media print" in text and "@page" in text
    assert "督办工作汇总报告" in text and "汇总测试方案" in text


def test_workbook_is_formatted_for_print(report):
    _engine, r, files = report
    wb = load_workbook(files.xlsx)  # not read-only: print settings are visible
    titles = wb.sheetnames
    assert titles[0] == "说明" and titles[-1] == "任务明细"
    for _key, title, _frame in r.views():
        assert title in titles
    ws = wb["按牵头单位"]
    assert ws.freeze_panes == "A2"
    assert ws.print_title_rows == "$1:$1"
    assert ws.page_setup.orientation == "landscape" and ws.page_setup.fitToWidth == 1
    assert ws.sheet_properties.pageSetUpPr.fitToPage is True
    assert ws["A1"].value == "牵头单位" and ws["A1"].font.bold
    rate_col = [c.column_letter for c in ws[1] if c.value == "按期完成率"][0]
    assert ws[f"{rate_col}2"].number_format == "0.0%"
    assert ws.column_dimensions["A"].width == 10  # 牵头单位: four full-width characters (8) and a margin


def test_cli_report_writes_both_and_prints_the_headline(engine, tmp_path, use_database):
    from duban.cli.main import app

    build_scenario(engine, tmp_path)
    out = runner.invoke(app, ["report", "--out", str(tmp_path / "r"), "--as-of", "2026-11-23"])
    assert out.exit_code == 0, out.output
    assert "任务 5 项，其中在办 4 项、已办结 1 项" in out.output and "按期完成率 25.0%" in out.output and "红灯 2 项" in out.output
    assert "教务处 33.0 分" in out.output
    html = tmp_path / "r" / "督办汇总-全部方案-2026-11-23.html"
    assert html.exists() and (tmp_path / "r" / "督办汇总-全部方案-2026-11-23.xlsx").exists()
    assert f"HTML 报告：{html}" in out.output
    # the run stored the day's snapshot
    assert list(trend(engine)["day"]) == [AS_OF]

    bad = runner.invoke(app, ["report", "--plan", "nope"])
    assert bad.exit_code == 1 and "没有编号为“nope”的方案" in bad.output
    bad = runner.invoke(app, ["report", "--as-of", "23/11/2026"])
    assert bad.exit_code == 2 and "格式不正确" in bad.output
    helped = runner.invoke(app, ["report", "--help"])
    assert helped.exit_code == 0 and "督办汇总报告" in helped.output


def test_a_bulletin_carries_the_rollup_figures(engine, tmp_path):
    from duban.rollup.bulletins import issue_bulletins
    from duban.rules.calendar import WorkCalendar
    from notifications.channel import Outgoing
    from notifications.render import render_message
    from tests.rollup.test_rollup import TZ

    build_scenario(engine, tmp_path)
    r = compute(engine)
    run = issue_bulletins(engine, today=AS_OF, cal=WorkCalendar(), tz=TZ, rollup=r, scheduled=False, dry_run=True)
    (issued,) = run.issued
    payload = issued.payload
    figures = payload["figures"]
    assert (figures["completion_rate"], figures["on_time_rate"], figures["red"], figures["awaiting"]) == ("28.6%", "25.0%", 2, 1)
    assert [(d["rank"], d["department"], d["score"], d["change"]) for d in payload["ranking"]] == [(1, "教务处", 33.0, "")]
    assert payload["unranked"] == ["宣传部"]
    assert figures["top_overdue"][0]["level"] == "已报领导小组办公室"
    subject = issued.queued[0].subject
    assert subject == "【督办通报】汇总测试方案（周通报·第 1 期，2026年11月23日至29日）：按期完成率 25.0%，逾期 2 项"
    out = Outgoing(0, None, "领导小组（群）", None, AS_OF, subject, {**payload, "audience_name": "领导小组各位领导"}, 0)
    msg = render_message(out)
    for text in (msg.text, msg.html, msg.chat):
        assert "25.0%" in text and "单位考核排名" in text and "教务处" in text and "33.0" in text and "暂无到期事项" in text
    assert "重点督办事项" in msg.text and "已报领导小组办公室" in msg.text
    assert "【单位考核排名】（满分 100；本期为首期，暂无名次变化）\n1. 教务处 33.0 分（按期完成率 25.0%" in msg.text


# -- the report in a real browser -------------------------------------------------------------


def test_report_in_chromium_shows_chinese_and_charts(report, page):
    from tests.servers import screenshot
    from tests.test_servers import platform_fonts

    _engine, _r, files = report
    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto(files.html.resolve().as_uri())
    assert page.locator("h1").inner_text() == "督办工作汇总报告"
    for selector in ("h1", "h2", "table[data-view=by_department] td", "svg.chart text"):
        fonts = platform_fonts(page, selector)
        cjk = [f for f in fonts if "CJK" in f["familyName"] or "Han" in f["familyName"] or "WenQuanYi" in f["familyName"]]
        assert cjk, (selector, fonts)
    # every chart is drawn and visible, with bars
    charts = page.locator("svg.chart")
    assert charts.count() >= 3
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box and box["width"] > 300 and box["height"] > 50
        assert charts.nth(i).is_visible()
    assert page.locator("svg.chart rect").count() > 10
    # a Chinese chart label takes full-width glyphs (not boxes of a missing font)
    label = page.locator("svg.chart text", has_text="教务处").first
    assert label.bounding_box()["width"] > 30
    path = screenshot(page, "report")
    assert path.exists() and path.stat().st_size > 30_000
    page.locator("#charts").screenshot(path=str(path.with_name(path.stem + "-charts.png")))


# Text that a spreadsheet program takes for a formula (OWASP "CSV injection"): each starts differently.
FORMULA_TEXTS = ['=HYPERLINK("http://evil.example","click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)", "\t=1+1", "\r=1+1"]


STORED_TEXTS = [*FORMULA_TEXTS[:4], "=1+2"]  # an import trims leading tabs and line ends


def all_cells(path: Path) -> list:
    wb = load_workbook(path)
    return [cell for ws in wb.worksheets for row in ws.iter_rows() for cell in row]


def formula_plan() -> dict:
    from tests.factories import rollup_plan

    plan = rollup_plan()
    tasks = [t for s in plan["systems"] for p in s["projects"] for t in p["tasks"]]
    for task, text in zip(tasks, STORED_TEXTS, strict=True):
        task["title"] = text
    plan["systems"][1]["name"] = "@文化育人"
    return plan


def test_report_workbook_writes_formula_like_text_as_text(engine, tmp_path):
    build_scenario(engine, tmp_path, formula_plan())
    files = write_report(compute(engine, plan_code="rollup"), tmp_path / "out", generated_at=dt.datetime(2026, 11, 23, 17, 0))
    cells = all_cells(files.xlsx)
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    titles = [r["任务名称"] for r in sheet_rows(files.xlsx, "任务明细")]
    assert sorted(titles) == sorted(STORED_TEXTS)
    assert {c.value for c in cells if c.quotePrefix} >= {*STORED_TEXTS, "@文化育人"}


def review_data(answer: str) -> dict:
    """What :func:`duban.reviews.report_data` gives, with one owner's answer in every text field."""
    item = {
        "code": "1",
        "title": answer,
        "system": "课程育人",
        "department": "教务处",
        "owner": answer,
        "answered_at": "2026-11-20 10:00",
        "late": False,
        "done": answer,
        "evidence": [answer],
        "problems": answer,
        "next_steps": answer,
        "verdict": "达标",
        "verdict_note": answer,
    }
    return {
        "id": 7,
        "title": answer,
        "plan": "测试方案",
        "scope": "全部任务",
        "ask": answer,
        "started_on": "2026-11-16",
        "reply_by": "2026-11-23",
        "started_by": "督办员",
        "counts": {"items": 1, "answered": 1, "late": 0, "verdicts": {"达标": 1}},
        "items": [item],
        "non_responders": [{"code": "1", "title": answer, "department": "教务处", "owner": answer}],
        "follow_ups": [{"code": "1", "title": answer, "milestone": answer, "owner": answer, "due": "2026-12-31", "note": answer}],
        "escalations": [{"on": "2026-11-24", "code": "1", "owner": answer, "level": "部门负责人", "to": answer}],
        "generated_at": "2026-11-24 09:00",
    }


@pytest.mark.parametrize("answer", FORMULA_TEXTS)
def test_review_report_workbook_keeps_an_answer_as_the_text_written(tmp_path, answer):
    from duban.reviews.report import write_workbook

    path = write_workbook(review_data(answer), tmp_path / "review.xlsx")
    cells = all_cells(path)
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    wb = load_workbook(path)
    shown = answer.replace("\r", "\n")  # XML reads a bare CR as a line end
    assert wb["填报与评定"]["H2"].value == shown  # 已完成工作, as the owner wrote it
    assert wb["概况"]["B1"].value == shown
    # 概况 2 (title, ask), 填报与评定 7, 未填报 2, 整改事项 4, 督办记录 2
    assert sum(1 for c in cells if c.value == shown) == 17
    assert all(c.quotePrefix for c in cells if c.value == shown)  # marked as text: editing it in Excel keeps it text


@pytest.mark.parametrize(
    ("value", "written"),
    [*((t, "'" + t) for t in FORMULA_TEXTS), ("教务处", "教务处"), ("2026-12-31", "2026-12-31"), (5, 5), (None, None)],
)
def test_csv_text_prefixes_formula_like_text_with_a_quote(value, written):
    from duban.values import csv_text

    assert csv_text(value) == written
