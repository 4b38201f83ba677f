"""The real-server fixtures of tests/servers.py work: SMTP, webhooks, browser, live web app."""

from __future__ import annotations

import smtplib
import socket
import time
import urllib.request

import apprise
import pytest

from tests.servers import SMTPServer, WebhookReceiver, screenshot, smtp_url


def send(url: str, title: str = "【催办】任务即将到期", body: str = "请于 3 个工作日内反馈进展。") -> bool:
    notifier = apprise.Apprise()
    assert notifier.add(url), f"apprise refused the URL {url}"
    # apprise 1.x answers True/False, 2.x an AppriseResult whose truth is the same
    return bool(notifier.notify(title=title, body=body))


# -- SMTP -------------------------------------------------------------------------------------


def test_apprise_mail_arrives_parsed(smtp_server: SMTPServer):
    url = smtp_server.url("someone@example.org")
    assert url == f"mailto://127.0.0.1:{smtp_server.port}?from=duban@example.org&mode=insecure&to=someone@example.org"
    assert send(url) is True

    [mail] = smtp_server.wait_for(1)
    assert mail.mail_from == "duban@example.org"
    assert mail.rcpt_tos == ["someone@example.org"]
    assert mail.subject == "【催办】任务即将到期"
    assert mail.to == "someone@example.org"
    assert "请于 3 个工作日内反馈进展" in mail.text()
    assert smtp_server.messages[0]["From"] == "duban@example.org"


def test_relay_url_takes_recipients_from_to(smtp_server: SMTPServer):
    relay = smtp_url(smtp_server.port)
    assert relay == smtp_server.relay_url
    assert "to=" not in relay
    assert send(relay + "&to=a@example.org,b@example.org") is True
    # apprise sends one message per recipient (cc/bcc would share one)
    mails = smtp_server.wait_for(2)
    assert len(mails) == 2
    assert sorted(r for m in mails for r in m.rcpt_tos) == ["a@example.org", "b@example.org"]
    assert sorted(m.to for m in mails) == ["a@example.org", "b@example.org"]


@pytest.mark.parametrize("at", ["data", "rcpt"])
def test_refuse_mode_makes_apprise_fail(smtp_server: SMTPServer, at):
    smtp_server.refuse(at=at)
    assert send(smtp_server.url("someone@example.org")) is False
    assert smtp_server.received == []
    assert smtp_server.refused  # the attempt reached the server and was refused
    smtp_server.ok()
    assert send(smtp_server.url("someone@example.org")) is True
    assert len(smtp_server.wait_for(1)) == 1


def test_fail_next_refuses_then_accepts(smtp_server: SMTPServer):
    smtp_server.fail_next(2)
    url = smtp_server.url("someone@example.org")
    assert [send(url), send(url), send(url)] == [False, False, True]
    assert len(smtp_server.wait_for(1)) == 1


def test_timeout_mode_makes_a_short_timeout_client_give_up(smtp_server: SMTPServer):
    smtp_server.timeout(3)
    started = time.monotonic()
    assert send(smtp_server.url("someone@example.org", cto=1)) is False
    assert time.monotonic() - started < 2.5

    with (
        pytest.raises((TimeoutError, socket.timeout, smtplib.SMTPServerDisconnected)),
        smtplib.SMTP("127.0.0.1", smtp_server.port, timeout=0.5) as client,
    ):
        client.sendmail("duban@example.org", ["someone@example.org"], b"Subject: x\r\n\r\nbody\r\n")
    assert smtp_server.received == []


def test_slow_mode_delivers_late_even_when_the_client_gave_up(smtp_server: SMTPServer):
    smtp_server.slow(1.5)
    assert send(smtp_server.url("someone@example.org", cto=0.5)) is False
    # the server still accepted it: a naive retry would now send a duplicate
    assert len(smtp_server.wait_for(1, timeout=5)) == 1
    assert send(smtp_server.url("someone@example.org", cto=5)) is True
    assert len(smtp_server.received) == 2


def test_stall_mode_answers_nothing_until_ok(smtp_server: SMTPServer):
    # an open session stops answering at its next command
    with smtplib.SMTP("127.0.0.1", smtp_server.port, timeout=0.5) as client:
        assert client.noop()[0] == 250
        smtp_server.stall()
        with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
            client.noop()
    # a new connection is accepted but never greeted
    with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
        smtplib.SMTP("127.0.0.1", smtp_server.port, timeout=0.5)
    smtp_server.ok()
    with smtplib.SMTP("127.0.0.1", smtp_server.port, timeout=5) as client:
        assert client.sendmail("duban@example.org", ["someone@example.org"], b"Subject: x\r\n\r\nbody\r\n") == {}
    assert smtp_server.count_by_recipient() == {"someone@example.org": 1}


def test_drop_mode_hangs_up_in_the_middle_of_data(smtp_server: SMTPServer):
    smtp_server.drop()
    assert send(smtp_server.url("someone@example.org")) is False
    with pytest.raises(smtplib.SMTPServerDisconnected), smtplib.SMTP("127.0.0.1", smtp_server.port, timeout=5) as client:
        client.sendmail("duban@example.org", ["other@example.org"], b"Subject: x\r\n\r\nline 1\r\nline 2\r\n")
    assert smtp_server.received == []
    assert smtp_server.dropped == [["someone@example.org"], ["other@example.org"]]


def test_late_is_slow_and_count_by_recipient_shows_the_duplicate(smtp_server: SMTPServer):
    smtp_server.late(1.5)
    assert (smtp_server.mode, smtp_server.delay) == ("slow", 1.5)
    assert send(smtp_server.url("someone@example.org", cto=0.5)) is False  # apprise gave up…
    smtp_server.ok()
    assert send(smtp_server.url("someone@example.org", "other@example.org")) is True  # …and sent again
    smtp_server.wait_for(3)
    assert smtp_server.count_by_recipient() == {"someone@example.org": 2, "other@example.org": 1}


# -- webhooks ---------------------------------------------------------------------------------


def test_webhook_records_apprise_json_post(webhook: WebhookReceiver):
    # apprise's json:// turns "-name=value" into a query parameter and "+Name=value" into a header
    url = f"json://127.0.0.1:{webhook.port}/robot/send?-token=abc&+X-Test=1"
    assert send(url, title="督办", body="逾期 3 天") is True
    [req] = webhook.wait_for(1)
    assert (req.method, req.path, req.query) == ("POST", "/robot/send", {"token": "abc"})
    assert req.header("Content-Type").startswith("application/json")
    assert req.header("x-test") == "1"
    assert req.json["title"] == "督办"
    assert req.json["message"] == "逾期 3 天"
    assert req.text.startswith("{")  # raw body kept as sent (apprise escapes non-ASCII)


def test_webhook_answers_configured_status(webhook: WebhookReceiver):
    webhook.respond("/robot/send", 500, {"errcode": 500, "errmsg": "boom"})
    url = f"json://127.0.0.1:{webhook.port}/robot/send"
    assert send(url) is False
    # other paths keep the default success answer
    assert send(f"json://127.0.0.1:{webhook.port}/other") is True
    # an answer for the next request only
    webhook.respond("/robot/send", 200, times=1)
    assert send(url) is True
    assert send(url) is False
    assert [r.path for r in webhook.requests] == ["/robot/send", "/other", "/robot/send", "/robot/send"]


def test_webhook_default_reply_body(webhook: WebhookReceiver):
    with urllib.request.urlopen(webhook.url("/x?a=1"), timeout=5) as resp:
        assert resp.status == 200
        assert resp.read() == b'{"errcode": 0, "errmsg": "ok", "code": 0, "StatusCode": 0}'
    assert webhook.requests[0].query == {"a": "1"}


# -- browser and live server ------------------------------------------------------------------


def platform_fonts(page, selector: str) -> list[dict]:
    """The fonts Chromium really used to draw the text of ``selector`` (DevTools protocol)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    return cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]


def test_browser_opens_live_start_page(live_server, page):
    with urllib.request.urlopen(live_server + "/healthz", timeout=5) as resp:
        assert resp.status == 200
    page.goto(live_server + "/")
    assert page.title() == "督办"
    assert page.locator("h1").inner_text() == "督办系统"
    fonts = platform_fonts(page, "h1")
    assert any("CJK" in f["familyName"] for f in fonts), fonts
    path = screenshot(page, "start")
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5_000


def test_browser_has_a_cjk_font(page):
    text = "督办系统领导小组办公室"
    page.set_content(
        f'<html lang="zh-CN"><body style="margin:0">'
        f'<span id="zh" style="font: 20px sans-serif">{text}</span>'
        f'<span id="ascii" style="font: 20px sans-serif">iiiiiiiiiii</span></body></html>'
    )
    # the glyphs come from a real CJK font, not a fallback box
    fonts = platform_fonts(page, "#zh")
    cjk = [f for f in fonts if "CJK" in f["familyName"]]
    assert cjk and sum(f["glyphCount"] for f in cjk) == len(text), fonts
    # and they are full-width: 11 ideographs at 20px are 220px wide, unlike narrow Latin text
    widths = page.evaluate("() => ['zh', 'ascii'].map(id => document.getElementById(id).getBoundingClientRect().width)")
    assert widths[0] == pytest.approx(20 * len(text), abs=2)
    assert widths[1] < widths[0] / 2
    assert page.evaluate("() => document.fonts.check('20px \"Noto Sans CJK SC\"', '督办')") is True
