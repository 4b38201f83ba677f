"""``duban report --province``: the province's roll-up by institution as HTML and XLSX
(four institutions with a known history: tests/rollup/province_schools.py)."""

from __future__ import annotations

import re

from openpyxl import load_workbook
from typer.testing import CliRunner

from duban.cli.main import app
from tests.rollup.province_schools import build_schools

runner = CliRunner()


def test_the_province_report_ranks_every_school(use_database, engine, tmp_path):
    build_schools(engine, tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["report", "--province", "--as-of", "2026-11-23", "--out", str(out), "--no-snapshot"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        "截至 2026-11-23，4 个单位、4 个方案，任务 16 项，其中在办 11 项；节点完成率 36.4%，按期完成率 43.8%；"
        "红灯 7 项、黄灯 3 项、绿灯 1 项；逾期任务 7 项。"
    )
    assert lines[1] == "名次变化：与 2026-11-16 的统计快照相比。"
    html = (out / "各单位督办情况汇总-2026-11-23.html").read_text(encoding="utf-8")
    names = re.findall(r'<td data-col="institution_name"[^>]*>([^<]*)</td>', html)
    changes = re.findall(r'<td data-col="change"[^>]*>([^<]*)</td>', html)
    ranks = re.findall(r'<td data-col="rank"[^>]*>([^<]*)</td>', html)
    assert list(zip(ranks, changes, names, strict=True)) == [
        ("1", "↑1", "乙学院"),
        ("2", "↓1", "甲大学"),
        ("3", "新上榜", "丙学院"),
        ("暂无到期事项", "", "丁学院"),
    ]
    sheet = load_workbook(out / "各单位督办情况汇总-2026-11-23.xlsx")["各单位"]
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][:6] == ["单位编号", "排名", "名次变化", "学校（单位）", "方案数", "任务总数"]
    assert [row[:6] for row in values[1:]] == [
        ["b", 1, "↑1", "乙学院", 1, 5],
        ["a", 2, "↓1", "甲大学", 2, 10],
        ["c", 3, "新上榜", "丙学院", 1, 1],
        ["d", "暂无到期事项", None, "丁学院", 0, 0],
    ]


def test_province_and_plan_together_are_refused(use_database, engine, tmp_path):
    result = runner.invoke(app, ["report", "--province", "--plan", "a-1", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "--province 统计全部单位，不能同时指定 --plan 或 --institution。" in result.output
    assert not (tmp_path / "out").exists()
