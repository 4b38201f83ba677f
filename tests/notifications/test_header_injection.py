"""A CR/LF in an imported person's name never reaches an e-mail header (issue 17): the name is
put on one line and encoded, the message goes once to the right address, through a real SMTP
server (tests/servers.py); an address that is not one plain address is refused with a reason."""

from __future__ import annotations

import datetime as dt
from email.header import decode_header, make_header
from zoneinfo import ZoneInfo

import pytest

from duban.vocabulary import MessageKind
from notifications.addresses import AddressError, header_text, mailbox
from notifications.channel import Outgoing
from notifications.channels import AppriseChannel
from notifications.outbox import OutboxChannel

TZ = ZoneInfo("Asia/Shanghai")
DAY = dt.date(2026, 11, 23)


def outgoing(name: str, email: str, subject: str = "【督办系统】通知渠道测试") -> Outgoing:
    payload = {"kind": MessageKind.TEST, "recipient": name, "now": "2026-11-23 09:00", "office": "督办员", "items": []}
    return Outgoing(1, 1, name, email, DAY, subject, payload, 0)


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Evil\r\nBcc: victim@example.org", "Evil Bcc: victim@example.org"),
        ("张三\r\nBcc: victim@example.org", "张三 Bcc: victim@example.org"),
        ("李四\nX-Injected: yes\r\n\r\nbody", "李四 X-Injected: yes body"),
        ("王五\u2028Cc: victim@example.org", "王五 Cc: victim@example.org"),
        ("赵六", "赵六"),
    ],
)
def test_a_line_break_in_a_name_stays_in_the_name(smtp_server, name, shown):
    channel = AppriseChannel(smtp_server.relay_url, tz=TZ)
    try:
        report = channel.send(outgoing(name, "owner@example.org", subject="【督办系统】\r\nBcc: victim@example.org"))
    finally:
        channel.close()
    assert [(a.channel, a.ok, a.error) for a in report.attempts] == [("email", True, None)]
    [mail] = smtp_server.wait_for(1)
    assert smtp_server.count_by_recipient() == {"owner@example.org": 1}
    assert mail.rcpt_tos == ["owner@example.org"]
    [to] = mail.message["To"].addresses
    assert (to.display_name, to.addr_spec) == (shown, "owner@example.org")
    assert mail.subject == "【督办系统】 Bcc: victim@example.org"
    headers = [k.lower() for k in mail.message]
    assert "bcc" not in headers and "cc" not in headers and "x-injected" not in headers
    assert headers.count("to") == 1 and headers.count("subject") == 1


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        (
            "owner@example.org\r\nBcc: victim@example.org",
            "通知地址无法识别，请在人员表或部门表中改正后重新导入",
        ),  # apprise refuses it first
        ("owner@example.org, victim@example.org", "邮箱地址「owner@example.org, victim@example.org」格式不正确"),
        ("Owner <owner@example.org>", "邮箱地址「Owner <owner@example.org>」格式不正确"),
    ],
)
def test_an_address_that_is_not_one_plain_address_is_refused(smtp_server, email, reason):
    channel = AppriseChannel(smtp_server.relay_url, tz=TZ)
    try:
        report = channel.send(outgoing("张三", email))
    finally:
        channel.close()
    [attempt] = report.attempts
    assert attempt.ok is False and attempt.error is not None
    assert attempt.error.startswith(reason) and "改正后重新导入" in attempt.error
    assert smtp_server.received == []


def test_the_outbox_file_keeps_one_line_per_header(tmp_path):
    channel = OutboxChannel(tmp_path)
    out = outgoing("张三\r\n主题：伪造", "zs@example.org")
    channel.send(out)
    head = channel.path_for(out).read_text(encoding="utf-8").split("\n\n", 1)[0]
    assert head == "收件人：张三 主题：伪造 <zs@example.org>\n主题：【督办系统】通知渠道测试"


def test_helpers():
    assert header_text("a\r\n\tb\x00c\x7f d  ") == "a b c d"
    assert header_text(None) == ""
    assert str(make_header(decode_header(mailbox("张三\n", "zs@example.org")))) == "张三 <zs@example.org>"
    assert mailbox("Zhang, San", "zs@example.org") == '"Zhang, San" <zs@example.org>'
    assert mailbox(None, "zs@example.org") == "zs@example.org"
    with pytest.raises(AddressError):
        mailbox("x", "zs@example.org\nBcc: v@example.org")
