"""The `duban` command: help everywhere, clear messages, exit codes, JSON that scripts read."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from duban.cli.main import app
from duban.settings import get_settings
from tests.conftest import EXAMPLE_XLSX, EXAMPLE_YAML
from tests.factories import small_plan, task_of, write_yaml

runner = CliRunner()

SITEHOOK = Path(__file__).resolve().parents[1] / "sitehook"
COMMANDS = [[], ["import"], ["status"], ["plans"], ["export"], ["secret"], ["demo"], ["db"], ["db", "upgrade"], ["db", "current"]]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "duban")
def test_every_command_has_chinese_help(cmd):
    result = run(*cmd, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert any("\u4e00" <= ch <= "\u9fff" for ch in result.output)


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "duban.cli", "--help"], capture_output=True, text=True, check=True)
    assert "督办" in out.stdout


def test_import_status_and_plans(use_database, tmp_path):
    path = write_yaml(tmp_path / "p.yaml", small_plan())
    result = run("import", path, "--dry-run")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "新建方案「测试方案」（demo）"
    assert result.stdout.splitlines()[-1] == "（预览：以上变更尚未写入。去掉 --dry-run 即可导入。）"
    assert json.loads(run("status", "--json", "--today", "2026-11-23").stdout)["totals"]["tasks"] == 0

    result = run("import", path)
    assert result.exit_code == 0 and result.stdout.splitlines()[-1] == "导入完成。"
    data = json.loads(run("status", "--json", "--today", "2026-11-23").stdout)
    assert (data["totals"]["tasks"], data["totals"]["overdue_tasks"]) == (4, 1)
    text = run("status", "--today", "2026-11-23").stdout
    assert "截至 2026-11-23：任务 4 项（在办 4 项，节点 4 个），已逾期 1 项，14 天内到期 0 项，待审核事项 0 件" in text
    assert "按育人体系" in text and "课程育人" in text and "按牵头单位" in text
    assert "demo" in run("plans").stdout


def test_import_json_reports_diff(use_database, tmp_path):
    path = write_yaml(tmp_path / "p.yaml", small_plan())
    run("import", path)
    plan = small_plan()
    task_of(plan, "1")["owner"] = "教务处副处长"
    result = run("import", write_yaml(tmp_path / "p.yaml", plan), "--json", "--dry-run")
    data = json.loads(result.stdout)
    assert data["ok"] and data["dry_run"]
    assert data["tasks"]["changed"] == [
        {"code": "1", "title": "集体备课", "details": ["责任人：教务处处长 → 教务处副处长（将向新责任人重新下达）"]}
    ]


def test_invalid_file_exit_status_and_message(use_database, tmp_path):
    plan = small_plan()
    task_of(plan, "1")["deadline"] = "尽快"
    task_of(plan, "2")["owner"] = "无名氏"
    path = write_yaml(tmp_path / "bad.yaml", plan)
    result = run("import", path)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "文件 bad.yaml 有 2 处问题，未导入任何内容，请修改后重新导入："
    assert lines[1].startswith("  1. bad.yaml · systems[0].projects[0].tasks[0].deadline（任务 1）：完成时限“尽快”无法识别")
    assert (
        lines[2]
        == "  2. bad.yaml · systems[0].projects[0].tasks[1].owner（任务 2）：责任人“无名氏”不在人员表中：请先在人员表中登记，或改为人员表中已有的姓名"
    )
    data = json.loads(run("import", path, "--json").stdout)
    assert data["ok"] is False and len(data["problems"]) == 2
    assert json.loads(run("status", "--json").stdout)["by_plan"] == []


def test_status_errors(use_database):
    result = run("status", "--plan", "nope")
    assert result.exit_code == 1 and result.stderr.strip() == "没有编号为“nope”的方案。已有方案：（暂无，请先用 duban import 导入）"
    result = run("status", "--today", "2026/11/23")
    assert result.exit_code == 2 and "日期“2026/11/23”格式不正确，请写作 YYYY-MM-DD" in result.stderr
    assert run("status").stdout.strip() == "库中还没有方案。请先导入：duban import 方案文件.xlsx"


@pytest.mark.parametrize("suffix", [".xlsx", ".yaml"])
def test_export_round_trip(use_database, tmp_path, suffix):
    run("import", EXAMPLE_YAML)
    out = tmp_path / f"exported{suffix}"
    result = run("export", "sanquan-yuren-2026", "--out", out)
    assert result.exit_code == 0, result.output
    again = json.loads(run("import", out, "--json", "--dry-run").stdout)
    assert again["tasks"]["unchanged"] == 176
    assert again["tasks"]["added"] == again["tasks"]["changed"] == again["tasks"]["archived"] == []


def test_export_errors(use_database, tmp_path):
    assert run("export", "nope", "--out", tmp_path / "x.xlsx").exit_code == 1
    run("import", EXAMPLE_YAML)
    result = run("export", "sanquan-yuren-2026", "--out", tmp_path / "x.pdf")
    assert result.exit_code == 2 and result.stderr.strip() == "无法导出为“.pdf”：请使用 .xlsx 或 .yaml 文件名"
    nowhere = tmp_path / "no-such-folder" / "x.xlsx"
    result = run("export", "sanquan-yuren-2026", "--out", nowhere)
    assert result.exit_code == 1
    assert result.stderr == (
        f"无法写入 {nowhere}：No such file or directory。请检查文件夹是否存在、是否有写入权限，以及该文件是否正在 Excel 中打开。\n"
    )


def test_import_of_a_hostile_file_is_one_message(use_database, tmp_path):
    (tmp_path / "x.yaml").mkdir()
    result = run("import", tmp_path / "x.yaml")
    assert result.exit_code == 1
    assert result.stderr == (
        "文件 x.yaml 有 1 处问题，未导入任何内容，请修改后重新导入：\n"
        f"  1. {tmp_path / 'x.yaml'}：这是一个文件夹，不是方案文件：请指定文件夹中的 .xlsx、.yaml 或 .csv 文件\n"
    )
    (tmp_path / "p.yaml").write_text("plan:\n  code: a\n  name: b\n  code: c\n", encoding="utf-8")
    result = run("import", tmp_path / "p.yaml", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["problems"] == [
        {"where": "p.yaml · 第 4 行第 3 列", "message": "键“code”重复（第 2 行已写过）：同一层中每个键只能写一次，请删除或合并其中一处"}
    ]


def test_xlsx_template_imports(use_database):
    result = run("import", EXAMPLE_XLSX)
    assert result.exit_code == 0 and "新增任务 176 项" in result.stdout


@pytest.mark.slow
def test_demo_is_repeatable(prefect_server, use_database, tmp_path):
    """`duban demo` as a user runs it: its own process, against the session's Prefect server."""
    import os

    from prefect.settings import PREFECT_API_URL

    from duban.accounts import authenticate
    from duban.db import make_engine, session_scope

    netlog = tmp_path / "net.log"  # tests/sitehook/sitecustomize.py records any address off this machine
    env = {
        **os.environ,
        "DUBAN_DEMO": "1",
        "DUBAN_DATABASE_URL": use_database,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "COLUMNS": "200",
        "PYTHONPATH": os.pathsep.join([str(SITEHOOK), os.environ.get("PYTHONPATH", "")]),
        "NETGUARD_LOG": str(netlog),
        "DUBAN_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    duban = [sys.executable, "-m", "duban.cli", "demo", "--today", "2026-11-23"]
    first = subprocess.run(duban, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "新建方案「“三全育人”综合改革实施方案（示例）」" in first.stdout
    # whatever the hour: every digest is in the local outbox at once, and nothing left the machine
    # the demo announces its plan (任务下达): each owner's notice goes out in their one message of the day
    assert "任务下达（duban announce）：新下达 176 项任务，涉及责任人 44 位。" in first.stdout
    assert (
        "应发事项 0 项（新增 0 项，其余此前已发），生成通知 44 份，发送成功 44 份。" in first.stdout
    )  # announcement day: the notices only
    assert len(list((tmp_path / "outbox" / "2026-11-23").glob("*.txt"))) == 44
    assert "演示模式下所有通知只写入本地发件箱，不会发给任何人。" in first.stdout
    assert not netlog.exists(), netlog.read_text(encoding="utf-8")
    assert "截至 2026-11-23：任务 176 项（在办 176 项" in first.stdout
    assert "要让系统每天 08:30 自动检查并提供网页服务，请运行：duban run" in first.stdout
    assert "截至 2026-11-23，任务 176 项，其中在办 176 项、已办结 0 项；" in first.stdout
    reports = re.search(r"HTML 报告：(\S+\.html)", first.stdout)
    assert reports and "督办工作汇总报告" in Path(reports.group(1)).read_text(encoding="utf-8")
    login = re.search(r"工作台：http://127\.0\.0\.1:8000/login  演示账户 demo，密码 (\S+)（", first.stdout)
    assert login, first.stdout
    with session_scope(make_engine(use_database)) as s:  # the printed password signs in
        now = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # the demo's day (a fresh account is never locked)
        assert authenticate(s, "demo", login.group(1), now=now, max_failures=5, lock_minutes=15).ok
    second = subprocess.run(duban, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "与库中现有内容相同，没有需要更新的内容。" in second.stdout
    assert "任务下达（duban announce）：新下达 0 项任务，涉及责任人 0 位。" in second.stdout
    assert "应发事项 0 项（新增 0 项，其余此前已发），生成通知 0 份，发送成功 0 份。" in second.stdout
    assert second.stdout.count("，已发送") == 10  # today's notices, sent by the first run, listed (10 of 44)
    assert not netlog.exists(), netlog.read_text(encoding="utf-8")


def test_db_commands(use_database):
    assert "已是最新结构（版本 0011）" in run("db", "upgrade").stdout
    assert run("db", "current").stdout.strip().endswith("：0011")


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (None, "无法启动：DUBAN_SECRET_KEY 未设置。"),
        ("changeme", "无法启动：DUBAN_SECRET_KEY 是示例占位值，不安全。"),
        ("short-secret", "无法启动：DUBAN_SECRET_KEY 太短（12 个字符）。"),
        ("a" * 40, "无法启动：DUBAN_SECRET_KEY 过于简单（重复字符太多）。"),
    ],
)
def test_unsafe_secret_refuses_to_start(monkeypatch, secret, message):
    monkeypatch.delenv("DUBAN_DEMO")
    if secret:
        monkeypatch.setenv("DUBAN_SECRET_KEY", secret)
    get_settings.cache_clear()
    result = run("status")
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert "duban secret" in result.stderr and "DUBAN_DEMO=1" in result.stderr


def test_good_secret_starts(monkeypatch, use_database):  # a store with duban's tables: a missing one is refused
    monkeypatch.delenv("DUBAN_DEMO")
    monkeypatch.setenv("DUBAN_SECRET_KEY", run("secret").stdout.strip())
    get_settings.cache_clear()
    assert run("status").exit_code == 0


def test_unreachable_database_is_one_clear_message(monkeypatch):
    monkeypatch.setenv("DUBAN_DATABASE_URL", "postgresql+psycopg://nobody:secret-pw@127.0.0.1:1/none")
    get_settings.cache_clear()
    result = run("status")
    assert result.exit_code == 2
    assert result.stderr == (
        "无法连接数据库 127.0.0.1:1：连接被拒绝。请检查数据库服务是否已启动、端口是否正确。"
        "（DUBAN_DATABASE_URL：postgresql+psycopg://nobody:***@127.0.0.1:1/none）\n"
    )
    assert "secret-pw" not in result.stderr


def test_bad_calendar_file_is_one_message(use_database, monkeypatch, tmp_path):
    (tmp_path / "cal.yaml").write_text("holidays: [2027-02-30]\n", encoding="utf-8")
    monkeypatch.setenv("DUBAN_CALENDAR_FILE", str(tmp_path / "cal.yaml"))
    get_settings.cache_clear()
    result = run("check", "--dry-run", "--today", "2026-11-23")
    assert result.exit_code == 2
    assert result.stderr.startswith("无法读取单位日历文件：") and "cal.yaml" in result.stderr and "holidays" in result.stderr


def test_institution_calendar_makes_a_saturday_a_working_day(use_database, monkeypatch, tmp_path):
    (tmp_path / "cal.yaml").write_text("workdays: [2026-11-28]\n", encoding="utf-8")
    monkeypatch.setenv("DUBAN_CALENDAR_FILE", str(tmp_path / "cal.yaml"))
    get_settings.cache_clear()
    run("import", write_yaml(tmp_path / "p.yaml", small_plan()))
    saturday = run("check", "--dry-run", "--today", "2026-11-28")
    assert saturday.exit_code == 0 and "不是工作日" not in saturday.stdout
    sunday = run("check", "--dry-run", "--today", "2026-11-29")
    assert sunday.stdout.strip().startswith("2026-11-29 不是工作日")
