"""Paper (duban/paper.py, duban/report_xlsx.py, duban/web/dashboard_paper.py): the numbered 督办单
(numbers per plan and year, the same number on a reprint, concurrent printing), the 督办通报 in the
official layout, both as PDF read back with poppler (pdftotext: the Chinese text; pdffonts: every
font embedded; pdfinfo: A4) and rendered to PNG in test-artifacts/; the workbook's 台账 columns,
widths and page setup; and the same numbers on the dashboard, `duban status --json`, the HTML
report, the workbook and the printed 通报.

The plan and its history are tests/rollup/test_rollup.py's, plus one pending extension request
(task 5), looked at on Monday 2026-11-30 (the pinned clock)."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from typer.testing import CliRunner

from duban import paper
from duban.db import session_scope
from duban.models import Milestone, Plan, Request, SupervisionNotice, Task
from duban.report import write_report
from duban.report_xlsx import display_width
from duban.rollup.bulletins import issue_bulletins
from duban.rules.calendar import WorkCalendar
from duban.settings import get_settings
from duban.vocabulary import RequestKind, RequestStatus
from tests.conftest import PINNED_DAY
from tests.rollup.test_rollup import TZ, at, build_scenario, compute
from tests.servers import artifacts_dir

runner = CliRunner()
CAL = WorkCalendar()
POPPLER = all(shutil.which(t) for t in ("pdftotext", "pdffonts", "pdftoppm", "pdfinfo"))
needs_poppler = pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdftotext, pdffonts, pdftoppm) not installed")
PASSWORD = "Dubanban-2026!"


def add_pending_extension(engine) -> None:
    """Task 5 asks to move its date: a second 待审核事项 (a request), while only task 4 is 待审核 by status."""
    with session_scope(engine) as s:
        task = s.scalars(select(Task).where(Task.code == "5")).one()
        m = s.scalars(select(Milestone).where(Milestone.task_id == task.id)).first()
        s.add(
            Request(
                plan_id=task.plan_id,
                task_id=task.id,
                milestone_id=m.id,
                person_id=task.owner_id,
                kind=RequestKind.EXTENSION,
                status=RequestStatus.PENDING,
                note="",
                new_due_date=dt.date(2026, 12, 31),
                created_at=at("2026-11-27"),
            )
        )


@pytest.fixture
def scenario(engine, tmp_path):
    build_scenario(engine, tmp_path)
    add_pending_extension(engine)
    return engine


def notices(engine) -> list[tuple[str, int, int]]:
    with session_scope(engine, readonly=True) as s:
        rows = s.execute(
            select(Task.code, SupervisionNotice.year, SupervisionNotice.number).join(Task, Task.id == SupervisionNotice.task_id)
        ).all()
    return sorted((c, y, n) for c, y, n in rows)


def issue(engine, code: str, day: dt.date = PINNED_DAY, by: str = "督办员"):
    return paper.issue_notice(engine, "rollup", code, today=day, cal=CAL, issued_by=by)


# -- 督办单 numbers ------------------------------------------------------------------------------------


def test_notice_numbers_per_plan_and_year_and_the_same_on_reprint(scenario):
    engine = scenario
    first = issue(engine, "5")
    assert (first.year, first.number, first.data["number"]) == (2026, 1, "督办〔2026〕1号")
    assert issue(engine, "1").number == 2
    again = issue(engine, "5", by="另一位督办员")
    assert (again.id, again.number, again.issued_by, again.data) == (first.id, 1, "督办员", first.data)
    assert issue(engine, "5", dt.date(2027, 1, 6)).number == 1  # a new year starts again at 1
    assert notices(engine) == [("1", 2026, 2), ("5", 2026, 1), ("5", 2027, 1)]
    # what the notice asks: the late step, the reply-by date three working days on
    assert first.data["asks"] == ["节点「全部完成（达到完成标志）」应于 2026年10月30日完成，已逾期 21 个工作日，请抓紧办理。"]
    assert (first.data["reply_by"], first.data["department"], first.data["owner"]) == ("2026-12-03", "教务处", "教务处处长")


@pytest.mark.parametrize(
    ("plan", "code", "message"),
    [("nope", "1", "没有编号为“nope”的方案。"), ("rollup", "99", "方案“汇总测试方案”中没有编号为“99”的在办任务。")],
)
def test_notice_for_an_unknown_plan_or_task_writes_nothing(scenario, plan, code, message):
    with pytest.raises(paper.PaperError) as err:
        paper.issue_notice(scenario, plan, code, today=PINNED_DAY, cal=CAL, issued_by="督办员")
    assert str(err.value) == message and notices(scenario) == []


def test_concurrent_printing_never_shares_or_skips_a_number(scenario):
    """Eight offices print at once (PostgreSQL: real concurrency; SQLite: one writer at a time):
    five tasks, task 2 three times over, get the numbers 1–5, one each."""
    engine = scenario
    codes = ["1", "2", "3", "4", "5", "2", "2", "1"]
    barrier = threading.Barrier(len(codes))
    results: dict[int, int] = {}
    errors: list[BaseException] = []

    def work(i: int, code: str) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = issue(engine, code).number
        except BaseException as err:  # noqa: BLE001  reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(codes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(n for _c, _y, n in notices(engine)) == [1, 2, 3, 4, 5]
    by_code = {c: n for c, _y, n in notices(engine)}
    assert all(results[i] == by_code[c] for i, c in enumerate(codes))


# -- PDFs -----------------------------------------------------------------------------------------------


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


def pdf_fonts(path: Path) -> list[tuple[str, str]]:
    """(font name, embedded yes/no) of every font in the PDF."""
    out = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True).stdout.splitlines()[2:]
    return [(line.split()[0], line.split()[-5]) for line in out if line.strip()]


def pdf_pages(path: Path) -> tuple[int, str]:
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    return int(re.search(r"Pages:\s+(\d+)", info).group(1)), re.search(r"Page size:\s+(.+)", info).group(1).strip()


def keep_png(path: Path, name: str) -> list[Path]:
    """Every page of the PDF as PNG in test-artifacts/ (for a person to look at)."""
    prefix = artifacts_dir() / f"test_paper--{name}"
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(path), str(prefix)], check=True)
    pages = sorted(artifacts_dir().glob(f"test_paper--{name}*.png"))
    assert pages and all(p.stat().st_size > 5_000 for p in pages)
    return pages


def save(doc: paper.Document, folder: Path) -> Path:
    path = folder / doc.name
    path.write_bytes(doc.pdf)
    return path


@needs_poppler
def test_notice_pdf_has_the_task_the_asks_and_a_receipt(scenario, tmp_path):
    doc = paper.notice_pdf(issue(scenario, "5"))
    assert doc.name == "汇总测试方案-督办单-2026年第1号-5.pdf"
    assert doc.content_disposition == (
        "attachment; filename=\"duban-notice-2026-1-5.pdf\"; filename*=UTF-8''"
        "%E6%B1%87%E6%80%BB%E6%B5%8B%E8%AF%95%E6%96%B9%E6%A1%88-%E7%9D%A3%E5%8A%9E%E5%8D%95-2026%E5%B9%B4%E7%AC%AC1%E5%8F%B7-5.pdf"
    )
    path = save(doc, tmp_path)
    text = re.sub(r"\s+", "", pdf_text(path))
    for words in (
        "督办〔2026〕1号",
        "督办单",
        "教务处处长",
        "已逾期21个工作日",
        "请于2026年12月3日前",
        "回执",
        "签收人",
        "办理情况",
        "沿此线剪下",
    ):
        assert words in text, words
    fonts = pdf_fonts(path)
    assert sorted((name.split("+")[-1], emb) for name, emb in fonts) == [("Noto-Serif-CJK-SC", "yes"), ("Noto-Serif-CJK-SC-Bold", "yes")]
    assert pdf_pages(path)[1].startswith("595.") and "841.8" in pdf_pages(path)[1]  # A4 in points
    keep_png(path, "notice")


@needs_poppler
def test_bulletin_pdf_in_the_official_layout(scenario, tmp_path):
    run = issue_bulletins(scenario, today=PINNED_DAY, cal=CAL, tz=TZ, scheduled=False, kinds=["week"], channel="outbox")
    assert [i.number for i in run.issued] == [1]
    plan, bulletin = paper.find_bulletin(scenario, "rollup")
    doc = paper.bulletin_pdf(plan, bulletin)
    assert doc.name == "汇总测试方案-督办通报-第1期.pdf"
    path = save(doc, tmp_path)
    raw = pdf_text(path)
    text = re.sub(r"\s+", "", raw)
    for words in ("督办通报", "周通报第1期", "关于《汇总测试方案》推进情况的通报", "一、总体情况", "二、逾期事项", "三、单位考核", "印发"):
        assert words in text, words
    assert "—1—" in text and "—2—" in text  # page numbers (pdftotext drops the thin spaces)
    fonts = pdf_fonts(path)
    assert fonts and all(emb == "yes" for _name, emb in fonts)
    pages, size = pdf_pages(path)
    assert pages >= 1 and size.startswith("595.")
    keep_png(path, "bulletin")
    with pytest.raises(paper.PaperError, match="尚未印发第 9 期督办通报"):
        paper.find_bulletin(scenario, "rollup", number=9)


# -- the workbook -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "width"), [("责任人", 6), ("分管校领导", 10), ("abc", 3), ("A组（１）", 9), ("", 0)])
def test_display_width_counts_full_width_as_two(text, width):
    assert display_width(text) == width


def test_workbook_ledger_columns_widths_and_page_setup(scenario, tmp_path):
    r = compute(scenario, as_of=PINNED_DAY, plan_code="rollup")
    files = write_report(r, tmp_path, generated_at=dt.datetime(2026, 11, 30, 1, 30, tzinfo=dt.UTC), tz=TZ)
    wb = load_workbook(files.xlsx)
    ws = wb["任务明细"]
    head = [c.value for c in ws[1]]
    assert head[-4:] == ["完成时限", "当前节点", "最近进展", "签收时间"]
    rows = {row[0]: dict(zip(head, row, strict=True)) for row in ws.iter_rows(min_row=2, values_only=True)}
    assert rows["1"]["完成时限"] == dt.datetime(2026, 12, 31) and rows["1"]["当前节点"] == "中期检查"
    assert rows["1"]["签收时间"] == "2026-10-02 10:00"  # Beijing time
    assert rows["2"]["当前节点"] is None  # done: no step left
    widths = {c.value: ws.column_dimensions[c.column_letter].width for c in ws[1]}
    assert widths["责任人"] == 14 and widths["分管校领导"] == 16  # 教务处副处长 (6 characters) / 分管教学副校长 (7): 2 each + 2
    for sheet in wb.worksheets:
        assert sheet.page_setup.paperSize == 9 and sheet.page_setup.fitToWidth == 1, sheet.title
        assert sheet.sheet_properties.pageSetUpPr.fitToPage is True and sheet.print_title_rows == "$1:$1", sheet.title
        assert sheet.page_margins.left == 0.5 and sheet.oddFooter.center.text == "第 &P 页，共 &N 页", sheet.title
    assert wb["说明"].page_setup.orientation == "portrait" and ws.page_setup.orientation == "landscape"
    # the HTML report says when it was made in Beijing time, next to the local 截至
    assert "截至 2026-11-30 · 生成于 2026-11-30 09:30" in files.html.read_text(encoding="utf-8")


# -- the same numbers everywhere ---------------------------------------------------------------------------------


def test_the_numbers_agree_on_dashboard_status_report_workbook_and_pdf(scenario, tmp_path, monkeypatch, use_database, clock):
    """在办任务 4 (5 tasks, 1 done), 待审核事项 2 (task 4's completion, task 5's extension: requests,
    not task 4 alone), 逾期任务 2, 红灯 2 — the same on every surface, as of 2026-11-30."""
    from fastapi.testclient import TestClient

    from duban import accounts
    from duban.cli.main import app
    from duban.web.app import create_app
    from tests.web.test_dashboard import login

    engine = scenario
    expected = {"tasks": 5, "open_tasks": 4, "awaiting_approval": 2, "overdue_tasks": 2}
    # `duban status --json`
    out = runner.invoke(app, ["status", "--json", "--plan", "rollup", "--today", "2026-11-30"])
    status = json.loads(out.output)["totals"]
    assert {k: status[k] for k in expected} == expected
    # /dashboard.json of an office account
    monkeypatch.setenv("DUBAN_SECRET_KEY", "x" * 40)
    get_settings.cache_clear()
    with session_scope(engine) as s:
        accounts.create_account(s, "dby", PASSWORD, role="office", plan_code="rollup")
    with TestClient(create_app(), follow_redirects=False) as web:
        login(web, "dby", PASSWORD)
        totals = web.get("/dashboard.json?plan=rollup").json()["totals"]
        page = web.get("/dashboard?plan=rollup").text
    assert {k: totals[k] for k in expected} == expected and totals["red"] == 2
    assert re.search(r'<span class="n">2</span><span class="l">待审核事项</span>', page)
    assert re.search(r'<span class="n">4</span><span class="l">在办任务</span>', page)
    # the HTML report and the workbook
    files = write_report(compute(engine, as_of=PINNED_DAY, plan_code="rollup"), tmp_path, tz=TZ)
    html = files.html.read_text(encoding="utf-8")
    for key, value in (("open_tasks", 4), ("tasks", 5), ("awaiting_approval", 2), ("overdue_tasks", 2), ("red", 2)):
        assert f'data-figure="{key}">{value}<' in html, key
    summary = {row[0]: row[1] for row in load_workbook(files.xlsx, read_only=True)["说明"].iter_rows(values_only=True) if len(row) > 1}
    assert (summary["在办任务"], summary["任务总数"], summary["待审核事项"], summary["逾期任务"], summary["红灯"]) == (4, 5, 2, 2, 2)
    # the printed 通报
    issue_bulletins(engine, today=PINNED_DAY, cal=CAL, tz=TZ, scheduled=False, kinds=["week"], channel="outbox")
    plan, bulletin = paper.find_bulletin(engine, "rollup")
    assert (bulletin.data["figures"]["open_tasks"], bulletin.data["figures"]["awaiting"]) == (4, 2)
    if POPPLER:
        text = re.sub(r"\s+", "", pdf_text(save(paper.bulletin_pdf(plan, bulletin), tmp_path)))
        assert "共有任务5项，其中在办任务4项、已办结任务1项" in text and "逾期任务2项" in text and "待审核事项2件" in text
    with session_scope(engine, readonly=True) as s:
        assert s.scalar(select(Plan.name).where(Plan.code == "rollup")) == "汇总测试方案"


# -- downloads from the dashboard, and the CLI ---------------------------------------------------------------


@pytest.fixture
def web(scenario, use_database, monkeypatch, clock):
    from fastapi.testclient import TestClient

    from duban import accounts
    from duban.web.app import create_app

    monkeypatch.setenv("DUBAN_SECRET_KEY", "x" * 40)
    get_settings.cache_clear()
    with session_scope(scenario) as s:
        for login_name, role in (("dby", "office"), ("leader", "leader"), ("viewer", "viewer")):
            accounts.create_account(s, login_name, PASSWORD, role=role, plan_code="rollup")
    with TestClient(create_app(), follow_redirects=False) as client:
        yield client


def test_office_issues_a_notice_and_leaders_download_the_bulletin(web, scenario):
    from tests.web.test_dashboard import csrf, login

    login(web, "dby", PASSWORD)
    assert web.get("/dashboard/paper/bulletin.pdf?plan=rollup").status_code == 404  # nothing issued yet
    page = web.get("/dashboard?plan=rollup").text
    token = re.search(r'name="csrf" value="([0-9a-f]+)"><input type="hidden" name="plan"', page).group(1)
    assert web.post("/dashboard/paper/notice", data={"csrf": "forged", "plan": "rollup", "code": "5"}).status_code == 403
    assert notices(scenario) == []
    sent = web.post("/dashboard/paper/notice", data={"csrf": token, "plan": "rollup", "code": "5"})
    assert sent.status_code == 303 and sent.headers["location"] == "/dashboard/paper/notice.pdf?plan=rollup&year=2026&number=1"
    pdf = web.get(sent.headers["location"])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and pdf.headers["cache-control"] == "no-store, private"
    assert "filename*=UTF-8''%E6%B1%87%E6%80%BB" in pdf.headers["content-disposition"]
    again = web.post("/dashboard/paper/notice", data={"csrf": token, "plan": "rollup", "code": "5"})
    assert again.headers["location"].endswith("number=1") and notices(scenario) == [("5", 2026, 1)]

    issue_bulletins(scenario, today=PINNED_DAY, cal=CAL, tz=TZ, scheduled=False, kinds=["week"], channel="outbox")
    web.cookies.clear()
    login(web, "leader", PASSWORD)
    page = web.get("/dashboard?plan=rollup").text
    assert 'href="/dashboard/paper/bulletin.pdf?plan=rollup"' in page and "印发督办单" not in page
    got = web.get("/dashboard/paper/bulletin.pdf?plan=rollup")
    assert got.status_code == 200 and got.content.startswith(b"%PDF")
    assert got.headers["content-disposition"].startswith('attachment; filename="duban-bulletin-rollup-week-1.pdf"')
    assert web.get("/dashboard/paper/notice.pdf?plan=rollup&year=2026&number=1").status_code == 403
    refused = web.post("/dashboard/paper/notice", data={"csrf": csrf(page), "plan": "rollup", "code": "1"})
    assert refused.status_code == 403 and "只有领导小组办公室的账户可以印发督办单" in refused.text and notices(scenario) == [("5", 2026, 1)]
    web.cookies.clear()
    login(web, "viewer", PASSWORD)
    assert web.get("/dashboard/paper/bulletin.pdf?plan=rollup").status_code == 403


def test_cli_notice_and_report_pdf(scenario, use_database, tmp_path, clock):
    from duban.cli.main import app

    out = runner.invoke(app, ["notice", "5", "--plan", "rollup", "--out", str(tmp_path / "n")])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("督办〔2026〕1号：") and (tmp_path / "n" / "汇总测试方案-督办单-2026年第1号-5.pdf").is_file()
    missing = runner.invoke(app, ["notice", "99", "--plan", "rollup"])
    assert missing.exit_code == 1 and "方案“汇总测试方案”中没有编号为“99”的在办任务。" in missing.output
    report = runner.invoke(app, ["report", "--pdf", "--plan", "rollup", "--out", str(tmp_path / "r"), "--no-snapshot"])
    assert report.exit_code == 0 and "提示：方案“汇总测试方案”尚未印发督办通报。" in report.output
    issue_bulletins(scenario, today=PINNED_DAY, cal=CAL, tz=TZ, scheduled=False, kinds=["week"], channel="outbox")
    report = runner.invoke(app, ["report", "--pdf", "--plan", "rollup", "--out", str(tmp_path / "r"), "--no-snapshot"])
    assert report.exit_code == 0 and (tmp_path / "r" / "汇总测试方案-督办通报-第1期.pdf").is_file()
    assert (tmp_path / "r" / "督办汇总-汇总测试方案-2026-11-30.xlsx").is_file()
