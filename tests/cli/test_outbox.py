"""`duban outbox --failed`: what did not go out, and why, as the office reads it in a terminal."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from duban.cli.main import app, console
from tests.conftest import PINNED
from tests.sweep.test_delivery_problems import PAUSED, REASON, add_digests
from tests.web_helpers import import_small

runner = CliRunner()


def table_rows(text: str) -> list[list[str]]:
    """The rows of a rich table, the header first (cells stripped)."""
    lines = [line.replace("┃", "│") for line in text.splitlines()]
    return [[c.strip() for c in line.strip("│").split("│")] for line in lines if line.startswith("│")]


@pytest.mark.usefixtures("clock")
def test_failed_lists_failed_and_interrupted_messages_only(use_database, engine, tmp_path, monkeypatch):
    monkeypatch.setattr(console, "_width", 200)  # a wide terminal: no cell is cut (whatever COLUMNS said at import)
    import_small(engine, tmp_path)
    add_digests(engine, PINNED)
    result = runner.invoke(app, ["outbox", "--failed"])
    assert result.exit_code == 0, result.output
    assert table_rows(result.stdout) == [
        ["编号", "日期", "收件人", "状态", "尝试次数", "原因", "下次重试"],
        ["5", "2026-11-30", "分管教学副校长", "暂缓发送", "0", PAUSED, "2026-11-30 10:05"],
        ["2", "2026-11-30", "宣传部部长", "发送中断", "1", "发送中断，将自动重发", "下次发送时"],
        ["1", "2026-11-30", "教务处处长", "发送失败", "2", REASON, "2026-11-30 11:00"],
    ]
    one = runner.invoke(app, ["outbox", "--failed", "--person", "教务处处长"])
    assert [r[2] for r in table_rows(one.stdout)] == ["收件人", "教务处处长"]


@pytest.mark.usefixtures("clock")
def test_failed_with_nothing_wrong(use_database, engine, tmp_path):
    import_small(engine, tmp_path)
    result = runner.invoke(app, ["outbox", "--failed"])
    assert result.exit_code == 0 and result.stdout == "发件箱中没有符合条件的通知。\n"
