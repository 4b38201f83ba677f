"""The mail relay under faults: a slow answer to the end of a message is waited for (its own
timeout), a relay that stops answering is paused (circuit breaker), and a refusal is an answer.

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
from notifications.smtp import RelayBreaker, RelayPaused, SMTPPool
from tests.servers import SMTPServer, WebhookReceiver

TZ = ZoneInfo("Asia/Shanghai")
DAY = dt.date(2026, 11, 23)


class Clock:
    """A monotonic clock that moves only when told (the breaker's cool-down without sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def outgoing(n: int, email: str, channels: list[str] | None = None) -> Outgoing:
    payload = {"kind": MessageKind.TEST, "recipient": f"人员{n}", "now": "2026-11-23 09:00", "office": "督办员", "items": []}
    return Outgoing(n, n, f"人员{n}", email, DAY, "【督办系统】通知渠道测试", payload, 0, channels=channels or [])


def summary(report) -> list[tuple[str, bool, bool, str | None]]:
    return [(a.channel, a.ok, a.skipped, a.error) for a in report.attempts]


MakeChannel = Callable[..., AppriseChannel]


@pytest.fixture
def make_channel() -> Iterator[MakeChannel]:
    made: list[AppriseChannel] = []

    def make(relay_url: str, *, timeout: float = 0.5, final: float = 10.0, cool_down: float = 60.0, clock=time.monotonic):
        pool = SMTPPool(trip_after=3, cool_down=cool_down, clock=clock)
        channel = AppriseChannel(relay_url, smtp_timeout=timeout, smtp_final_timeout=final, tz=TZ, pool=pool)
        made.append(channel)
        return channel

    yield make
    for channel in made:
        channel.close()


def timed(send: AppriseChannel, out: Outgoing):
    started = time.monotonic()
    report = send.send(out)
    return report, time.monotonic() - started


def stall_three_times(smtp_server: SMTPServer, send: AppriseChannel) -> None:
    smtp_server.stall()
    for n in (1, 2, 3):
        report, took = timed(send, outgoing(n, f"p{n}@example.org"))
        assert summary(report) == [("email", False, False, f"邮件服务器 127.0.0.1:{smtp_server.port} 无响应（等待超过 0.5 秒）")]
        assert took < 2.0  # the command timeout (0.5 s), not the final one


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
    # an unconfirmed message counts as "no answer": the relay is paused after three
    assert summary(send.send(outgoing(4, "p4@example.org"))) == [
        ("email", False, True, f"邮件服务器 127.0.0.1:{smtp_server.port} 连续 3 次无响应，暂停发送，稍后自动重试")
    ]


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
# The circuit breaker


def test_a_stalled_relay_is_paused_after_three_messages(smtp_server, make_channel):
    send = make_channel(smtp_server.relay_url)
    stall_three_times(smtp_server, send)
    report, took = timed(send, outgoing(4, "p4@example.org"))
    assert took < 0.2  # nothing tried
    assert summary(report) == [("email", False, True, f"邮件服务器 127.0.0.1:{smtp_server.port} 连续 3 次无响应，暂停发送，稍后自动重试")]
    assert report.paused is True and report.ok is False
    assert smtp_server.received == []


def test_after_the_cool_down_one_message_probes_the_relay(smtp_server, make_channel):
    clock = Clock()
    send = make_channel(smtp_server.relay_url, cool_down=60.0, clock=clock)
    stall_three_times(smtp_server, send)
    clock.advance(59)
    assert send.send(outgoing(4, "p4@example.org")).paused is True
    # the pause is over, the relay still hangs: the probe fails and the relay is paused again
    clock.advance(2)
    assert summary(send.send(outgoing(5, "p5@example.org"))) == [
        ("email", False, False, f"邮件服务器 127.0.0.1:{smtp_server.port} 无响应（等待超过 0.5 秒）")
    ]
    report, took = timed(send, outgoing(6, "p6@example.org"))
    assert took < 0.2
    assert summary(report) == [("email", False, True, f"邮件服务器 127.0.0.1:{smtp_server.port} 连续 4 次无响应，暂停发送，稍后自动重试")]
    # the relay answers again: the next probe closes the breaker, and everything goes through
    smtp_server.ok()
    clock.advance(61)
    assert [summary(send.send(outgoing(n, f"p{n}@example.org"))) for n in (7, 8)] == [[("email", True, False, None)]] * 2
    assert smtp_server.count_by_recipient() == {"p7@example.org": 1, "p8@example.org": 1}


def test_only_one_message_probes_a_paused_relay():
    clock = Clock()
    breaker = RelayBreaker(trip_after=3, cool_down=60.0, clock=clock)
    key = ("smtp.example.edu.cn", 25, "insecure", None)
    for _ in range(3):
        assert breaker.admit(key) is False
        breaker.record(key, down=True, probe=False)
    with pytest.raises(RelayPaused):
        breaker.admit(key)
    clock.advance(60)
    assert breaker.admit(key) is True  # this message probes
    with pytest.raises(RelayPaused):
        breaker.admit(key)  # the others wait for its verdict
    breaker.record(key, down=False, probe=True)
    assert (breaker.admit(key), breaker.paused(key)) == (False, False)
    # another relay was never affected
    assert breaker.admit(("smtp.example.edu.cn", 465, "ssl", None)) is False


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        ("data", "邮件服务器拒收（554 5.7.1 message refused (test server in refuse mode)）"),
        ("rcpt", "邮件服务器拒绝收件人 p{n}@example.org（550 5.1.1 <p{n}@example.org>: recipient refused (test server in refuse mode)）"),
    ],
)
def test_a_refusal_is_an_answer_and_never_pauses_the_relay(smtp_server, make_channel, at, reason):
    smtp_server.refuse(at=at)
    send = make_channel(smtp_server.relay_url)
    reports = [summary(send.send(outgoing(n, f"p{n}@example.org"))) for n in range(1, 6)]
    assert reports == [[("email", False, False, reason.format(n=n))] for n in range(1, 6)]
    smtp_server.ok()
    assert summary(send.send(outgoing(6, "p6@example.org"))) == [("email", True, False, None)]
    assert smtp_server.count_by_recipient() == {"p6@example.org": 1}


def test_a_relay_that_hangs_up_in_the_middle_of_data_has_nothing(smtp_server, make_channel):
    smtp_server.drop()
    send = make_channel(smtp_server.relay_url)
    [(channel, ok, skipped, error)] = summary(send.send(outgoing(1, "p1@example.org")))
    assert (channel, ok, skipped) == ("email", False, False)
    assert error.startswith(f"邮件服务器 127.0.0.1:{smtp_server.port} 断开了连接（")
    assert smtp_server.received == [] and smtp_server.dropped == [["p1@example.org"]]
    # the broken connection is not reused: the next message gets a new one
    smtp_server.ok()
    assert summary(send.send(outgoing(2, "p2@example.org"))) == [("email", True, False, None)]
    assert smtp_server.count_by_recipient() == {"p2@example.org": 1}


def test_a_paused_relay_falls_back_to_the_next_channel(smtp_server, webhook: WebhookReceiver, make_channel):
    send = make_channel(smtp_server.relay_url)
    stall_three_times(smtp_server, send)
    hook = f"json://127.0.0.1:{webhook.port}/hook"
    report = send.send(outgoing(4, "p4@example.org", channels=["email", hook]))
    assert summary(report) == [
        ("email", False, True, f"邮件服务器 127.0.0.1:{smtp_server.port} 连续 3 次无响应，暂停发送，稍后自动重试"),
        ("other", True, False, None),
    ]
    assert (report.ok, report.paused, report.via) == (True, False, "other")
    [request] = webhook.wait_for(1)
    assert request.path == "/hook" and "人员4，您好" in request.json["message"]


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
