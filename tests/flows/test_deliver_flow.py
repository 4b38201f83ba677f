"""Delivery through the day (flows/deliver.py): the send window opening after the 08:30 sweep, a
retry whose backoff ran out, and the summary and exit status of `duban check` / `duban deliver`
when messages did not go out — with real mail to the local SMTP server and real flow runs."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
import time_machine
from typer.testing import CliRunner

from duban.cli.main import app
from duban.runtime import runtime
from flows.deliver import deliver_due_flow
from flows.sweep import daily_sweep
from tests.factories import import_announced, small_plan, write_yaml

pytestmark = pytest.mark.slow
TZ = ZoneInfo("Asia/Shanghai")
MON = dt.date(2026, 11, 23)
IMPORTED = dt.datetime(2026, 11, 2, 9, 0, tzinfo=TZ)
PEOPLE = ["fx@example.org", "jwc2@example.org", "jwc@example.org", "sj@example.org", "xcb@example.org"]
runner = CliRunner()


@pytest.fixture
def office(prefect_server, use_database, monkeypatch, tmp_path, smtp_server):
    """The small plan, mail through the local relay, and a send window that opens at 09:00."""
    monkeypatch.setenv("DUBAN_DEMO", "0")
    monkeypatch.setenv("DUBAN_SECRET_KEY", "k" * 8 + "0123456789abcdefghijklmnopqrstuv")
    monkeypatch.setenv("DUBAN_SMTP_URL", smtp_server.relay_url)
    monkeypatch.setenv("DUBAN_SEND_HOURS", "09:00-17:00")
    import_announced(runtime().engine, write_yaml(tmp_path / "p.yaml", small_plan()), now=IMPORTED)
    return smtp_server


def at(hour: int, minute: int):
    return time_machine.travel(dt.datetime(2026, 11, 23, hour, minute, tzinfo=TZ), tick=True)


def test_a_send_window_opening_after_the_sweep_is_kept_by_the_delivery_flow(office):
    with at(8, 30):
        swept = daily_sweep(today=MON)
    assert (swept["digests"], swept["sent"], swept["deferred"]) == (5, 0, 5)
    assert "其中 5 份不在发送时段内或通知渠道暂时无响应，将稍后自动发出。" in swept["notes"]
    with at(8, 55):
        assert deliver_due_flow()["sent"] == 0
    assert office.received == []
    with at(9, 0):
        assert deliver_due_flow()["sent"] == 5
    assert sorted(m.rcpt_tos[0] for m in office.received) == PEOPLE
    with at(9, 5):
        assert deliver_due_flow() == {"sent": 0, "failed": 0, "deferred": 0, "paused": 0, "recovered": 0, "interrupted": 0}


def test_a_retry_goes_out_when_its_backoff_runs_out_not_the_next_day(office):
    office.fail_next(5)  # the relay refuses the first five messages (554)
    with at(9, 30):
        swept = daily_sweep(today=MON)
    assert (swept["sent"], swept["failed"]) == (0, 5)
    with at(9, 34):
        assert deliver_due_flow()["sent"] == 0  # backing off: the first retry is due after 5 minutes
    with at(9, 36):  # the 09:35 run (five minutes after the failure, give or take the run's own seconds) or this one
        assert deliver_due_flow()["sent"] == 5
    assert Counter(m.rcpt_tos[0] for m in office.received) == Counter(dict.fromkeys(PEOPLE, 1))


def test_check_and_deliver_say_what_did_not_go_out_and_exit_non_zero(office):
    office.refuse()
    with at(9, 30):
        checked = runner.invoke(app, ["check", "--today", "2026-11-23"])
    assert checked.exit_code == 3, checked.output
    assert "2026-11-23 检查完成：应发事项 9 项（新增 9 项），生成通知 5 份，发送成功 0 份，失败 5 份。" in checked.stdout
    assert "发送失败的 5 份将自动重试，原因可用 duban outbox --failed 查看。" in checked.stdout
    office.ok()
    with at(9, 36):
        delivered = runner.invoke(app, ["deliver"])
    assert delivered.exit_code == 0, delivered.output
    assert "发送成功 5 份，失败 0 份。" in delivered.stdout
    assert "通知已按各人的通知渠道发出（发送记录见 duban outbox）。" in delivered.stdout
    with at(9, 40):
        again = runner.invoke(app, ["deliver"])
    assert (again.exit_code, again.stdout.splitlines()[0]) == (0, "发送成功 0 份，失败 0 份。")


def test_a_relay_that_stopped_answering_is_paused_and_said_so(office, monkeypatch):
    monkeypatch.setenv("DUBAN_SMTP_TIMEOUT", "0.5")
    monkeypatch.setenv("DUBAN_DELIVER_WORKERS", "1")
    office.stall()  # the relay accepts the connection and never greets
    with at(9, 30):
        checked = runner.invoke(app, ["check", "--today", "2026-11-23"])
    assert checked.exit_code == 3, checked.output
    assert "生成通知 5 份，发送成功 0 份，失败 3 份。" in checked.stdout
    pause = f"邮件服务器 127.0.0.1:{office.port} 连续 3 次无响应，暂停发送，稍后自动重试"
    assert f"2 份因通知渠道暂时无响应而暂停发送，将于 5 分钟后自动重试（邮件 mailto://127.0.0.1:{office.port}" in checked.stdout
    assert pause in checked.stdout
    office.ok()
    with at(9, 36):
        delivered = runner.invoke(app, ["deliver"])
    assert delivered.exit_code == 0, delivered.output
    assert Counter(m.rcpt_tos[0] for m in office.received) == Counter(dict.fromkeys(PEOPLE, 1))
