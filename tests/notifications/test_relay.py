"""The mail relay under faults: a slow answer to the end of a message is waited for (its own
timeout), and a relay that stops answering costs the command timeout, not the final one.

Every test sends through a real ``AppriseChannel`` to the local SMTP server of tests/servers.py.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from zoneinfo import ZoneInfo

import pytest

from duban.vocabulary import MessageKind
from notifications.channel import Outgoing
from notifications.channels import AppriseChannel
from tests.servers import SMTPServer

TZ = ZoneInfo("Asia/Shanghai")
DAY = dt.date(2026, 11, 23)


def outgoing(n: int, email: str, channels: list[str] | None = None) -> Outgoing:
    payload = {"kind": MessageKind.TEST, "recipient": f"人员{n}", "now": "2026-11-23 09:00", "office": "督办员", "items": []}
    return Outgoing(n, n, f"人员{n}", email, DAY, "【督办系统】通知渠道测试", payload, 0, channels=channels or [])


def summary(report) -> list[tuple[str, bool, bool, str | None]]:
    return [(a.channel, a.ok, a.skipped, a.error) for a in report.attempts]


MakeChannel = Callable[..., AppriseChannel]


@pytest.fixture
def make_channel() -> Iterator[MakeChannel]:
    made: list[AppriseChannel] = []

    def make(relay_url: str, *, timeout: float = 0.5, final: float = 10.0):
        channel = AppriseChannel(relay_url, smtp_timeout=timeout, smtp_final_timeout=final, tz=TZ)
        made.append(channel)
        return channel

    yield make
    for channel in made:
        channel.close()


def timed(send: AppriseChannel, out: Outgoing):
    started = time.monotonic()
    report = send.send(out)
    return report, time.monotonic() - started


# ---------------------------------------------------------------------------------------------
# Two timeouts


@pytest.mark.parametrize(("cto", "timeout"), [("", 0.5), ("&cto=0.5", 15.0)], ids=["setting", "cto"])
def test_a_late_answer_to_the_end_of_a_message_is_waited_for(smtp_server, make_channel, cto, timeout):
    """The relay answers the final "." after 2 s: beyond the command timeout (0.5 s, from the
    setting or from cto= in the URL), within the final one (10 s): one mail, one good attempt."""
    smtp_server.late(2)
    send = make_channel(smtp_server.relay_url + cto, timeout=timeout)
    report = send.send(outgoing(1, "a@example.org"))
    assert summary(report) == [("email", True, False, None)]
    assert smtp_server.count_by_recipient() == {"a@example.org": 1}
    # the command timeout is back after the long wait: a stalled command fails in about 0.5 s
    smtp_server.stall()
    report, took = timed(send, outgoing(2, "b@example.org"))
    assert summary(report) == [("email", False, False, f"邮件服务器 127.0.0.1:{smtp_server.port} 无响应（等待超过 0.5 秒）")]
    assert took < 2.0


def test_no_answer_within_the_final_timeout_says_the_relay_may_have_the_message(smtp_server, make_channel):
    smtp_server.late(3)
    send = make_channel(smtp_server.relay_url, timeout=0.5, final=1.0)
    reasons = [summary(send.send(outgoing(n, f"p{n}@example.org"))) for n in (1, 2, 3)]
    maybe = f"邮件服务器 127.0.0.1:{smtp_server.port} 收到全文后 1 秒内未确认（可能已送达）"
    assert reasons == [[("email", False, False, maybe)]] * 3
    # the relay kept every one of them (a retry would duplicate): that is what the reason warns of
    smtp_server.wait_for(3)
    assert smtp_server.count_by_recipient() == {"p1@example.org": 1, "p2@example.org": 1, "p3@example.org": 1}


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_the_final_timeout_holds_over_tls(make_channel, tls):
    with SMTPServer(tls=tls) as server:
        assert server.relay_url == f"mailtos://127.0.0.1:{server.port}?from=duban@example.org&mode={tls}&verify=no"
        server.late(1.5)
        send = make_channel(server.relay_url, timeout=0.5, final=10.0)
        assert summary(send.send(outgoing(1, "a@example.org"))) == [("email", True, False, None)]
        server.late(3)
        send.smtp_final_timeout = 1.0
        assert summary(send.send(outgoing(2, "b@example.org"))) == [
            ("email", False, False, f"邮件服务器 127.0.0.1:{server.port} 收到全文后 1 秒内未确认（可能已送达）")
        ]
        server.wait_for(2)
        assert server.count_by_recipient() == {"a@example.org": 1, "b@example.org": 1}


# ---------------------------------------------------------------------------------------------
# Wiring


def test_runtime_and_settings_give_the_channel_both_timeouts(monkeypatch, smtp_server):
    from duban.runtime import Runtime
    from duban.settings import Settings

    monkeypatch.setenv("DUBAN_DEMO", "0")  # demo mode sends to the local outbox only
    monkeypatch.setenv("DUBAN_SECRET_KEY", "k" * 8 + "0123456789abcdefghijklmnopqrstuv")
    monkeypatch.setenv("DUBAN_SMTP_URL", smtp_server.relay_url)
    monkeypatch.setenv("DUBAN_SMTP_TIMEOUT", "7")
    monkeypatch.setenv("DUBAN_SMTP_FINAL_TIMEOUT", "300")
    channel = Runtime(Settings()).channel
    assert isinstance(channel, AppriseChannel)
    assert (channel.smtp_timeout, channel.smtp_final_timeout) == (7.0, 300.0)
