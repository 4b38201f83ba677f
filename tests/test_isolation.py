"""``--institution`` on the reading and reporting commands (issue 18): an office operator limits
the output to one school; a ``--plan`` of another school with it is refused, naming both; an
unknown institution lists the ones there are.  Two schools as in tests/schools.py, on SQLite and
PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from duban.cli.main import app
from duban.db import session_scope
from duban.models import SupervisionNotice
from tests.schools import B_WORDS, import_schools, start_b_review

runner = CliRunner()
MIXED = "方案“b-2026”属于单位“b”，不属于 --institution 指定的单位“a”。单位“a”的方案：a-2026、a-extra"


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def schools(use_database, engine, tmp_path):
    """Two schools, nothing announced yet; a review in school b."""
    import_schools(engine, tmp_path, announced=False)
    review = start_b_review(engine, ask="请报告进展", reports_dir=tmp_path / "reports")
    return {"engine": engine, "review": review}


def status_plans(*options) -> list[str]:
    result = run("status", "--json", "--today", "2026-11-30", *options)
    assert result.exit_code == 0, result.output
    return [p["plan"] for p in json.loads(result.stdout)["by_plan"]]


def test_status_of_one_institution(schools):
    assert status_plans() == ["a-2026", "a-extra", "b-2026"]
    assert status_plans("--institution", "a") == ["a-2026", "a-extra"]
    assert status_plans("--institution", "b") == ["b-2026"]
    assert status_plans("--institution", "a", "--plan", "a-extra") == ["a-extra"]
    data = json.loads(run("status", "--json", "--today", "2026-11-30", "--institution", "b").stdout)
    assert (data["institution"], data["totals"]["tasks"]) == ("b", 5)
    text = run("status", "--today", "2026-11-30", "--institution", "a").output
    assert [w for w in B_WORDS if w in text] == []


@pytest.mark.parametrize(
    "command",
    [
        ["status", "--plan", "b-2026"],
        ["report", "--plan", "b-2026", "--as-of", "2026-11-30"],
        ["announce", "--plan", "b-2026", "--dry-run"],
        ["review", "list", "--plan", "b-2026"],
        ["export", "b-2026", "-o", "out.xlsx"],
        ["notice", "9", "--plan", "b-2026"],
    ],
    ids=lambda c: c[0] if c[0] != "review" else "review list",
)
def test_a_plan_of_another_institution_is_refused_naming_both(schools, command):
    result = run(*command, "--institution", "a")
    assert result.exit_code == 1
    assert result.output.strip() == MIXED
    with session_scope(schools["engine"], readonly=True) as s:
        assert s.scalars(select(SupervisionNotice.id)).all() == []  # nothing issued


@pytest.mark.parametrize("command", [["status"], ["plans"], ["report", "--as-of", "2026-11-30"], ["review", "list"]])
def test_an_unknown_institution_lists_the_ones_there_are(schools, command):
    result = run(*command, "--institution", "zz")
    assert result.exit_code == 1
    assert result.output.strip() == "没有编号为“zz”的单位。已有单位：a、b"


def test_plans_of_one_institution(schools):
    out = run("plans", "--institution", "b").stdout
    assert "b-2026" in out and "乙学院方案" in out and "a-2026" not in out and "a-extra" not in out
    every = run("plans").stdout
    assert all(code in every for code in ("a-2026", "a-extra", "b-2026"))


def test_report_of_one_institution(schools, tmp_path):
    result = run("report", "--as-of", "2026-11-30", "--institution", "a", "--out", tmp_path / "out", "--no-snapshot")
    assert result.exit_code == 0, result.output
    html = next((tmp_path / "out").glob("*.html")).read_text(encoding="utf-8")
    assert "甲大学方案" in html and "甲大学专项方案" in html
    assert [w for w in B_WORDS if w in html + result.output] == []


def test_announce_of_one_institution(schools):
    result = run("announce", "--dry-run", "--institution", "b", "--today", "2026-11-30")
    assert result.exit_code == 0, result.output
    assert "将下达 5 项任务" in result.output and "乙校处长：9 乙校专属任务" in result.output
    every = run("announce", "--dry-run", "--today", "2026-11-30")
    assert "将下达 13 项任务" in every.output


def test_reviews_of_one_institution(schools):
    rid = schools["review"]
    theirs = run("review", "list", "--institution", "b").stdout
    assert "b-2026" in theirs and "0/1" in theirs  # one review, its one task not answered yet
    mine = run("review", "list", "--institution", "a")
    assert mine.exit_code == 0 and "b-2026" not in mine.output and "还没有督查" in mine.output
    shown = run("review", "show", rid, "--institution", "a")
    assert shown.exit_code == 1
    assert shown.output.strip() == (
        f"督查 {rid} 不属于 --institution 指定的单位“a”。可用 duban review list --institution a 查看该单位的督查。"
    )
    assert "乙校专项督查" in run("review", "show", rid, "--institution", "b").stdout


def test_export_within_the_institution(schools, tmp_path):
    result = run("export", "a-extra", "-o", tmp_path / "a.yaml", "--institution", "a")
    assert result.exit_code == 0, result.output
    assert "甲大学专项方案" in (tmp_path / "a.yaml").read_text(encoding="utf-8")
