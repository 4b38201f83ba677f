"""Notifications end to end: the sweep sends real emails to a local SMTP server and real webhook
requests (through apprise) to a local HTTP receiver standing in for WeCom, DingTalk and Feishu."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re

import pytest
import time_machine
from sqlalchemy import select

from duban.db import session_scope
from duban.links import LinkMaker
from duban.models import Delivery, Digest, Notification
from duban.rules.calendar import WorkCalendar
from duban.rules.quiet import QuietHours
from duban.sweep.decisions import decide
from duban.sweep.delivery import deliver
from duban.sweep.digests import assemble
from duban.sweep.rows import digest_rows
from notifications.channels import AppriseChannel
from notifications.smtp import SMTPPool
from tests.factories import BASE, IMPORTED, LINK_SECRET, MON, TZ, import_announced, small_plan, write_yaml

NOW = dt.datetime(2026, 11, 23, 8, 30, tzinfo=TZ)
SECRET = LINK_SECRET
LINK = re.compile(r"https://duban\.example\.edu\.cn/l/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")
ANY_LINK = re.compile(r"https://duban\.example\.edu\.cn/(?:l|me)/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")  # action links and 我的督办
DING_SECRET = "SEC0123456789abcdef"


def links(day=MON):
    return LinkMaker(BASE, SECRET, day)


def import_small(engine, tmp_path, change=None):
    plan = small_plan()
    if change:
        change(plan)
    import_announced(engine, write_yaml(tmp_path / "p.yaml", plan), now=IMPORTED)


def sweep_day(engine, send, *, day=MON, now=NOW, **options):
    decide(engine, today=day, cal=WorkCalendar(), tz=TZ)
    assemble(engine, today=day, links=links(day), channel="dispatch", now=now)
    return deliver(engine, send, now=now, links=links(day), **options)


def deliveries(engine):
    with session_scope(engine) as s:
        return [(d.channel, d.target, d.ok, d.error) for d in s.scalars(select(Delivery).order_by(Delivery.id))]


# ---------------------------------------------------------------------------------------------
# Email


def test_sweep_sends_real_emails_per_person(engine, tmp_path, smtp_server):
    import_small(engine, tmp_path)
    send = AppriseChannel(smtp_server.relay_url, tz=TZ)
    result = sweep_day(engine, send, workers=4)
    assert (result.sent, result.failed) == (5, 0)
    mails = {m.rcpt_tos[0]: m for m in smtp_server.wait_for(5)}
    assert sorted(mails) == ["fx@example.org", "jwc2@example.org", "jwc@example.org", "sj@example.org", "xcb@example.org"]
    head = mails["jwc@example.org"]
    assert head.subject == "【督办提醒】2026-11-23 教务处处长：已逾期 1 项，请督促落实 1 项"
    assert head.to == "教务处处长 <jwc@example.org>"
    assert head.mail_from == "duban@example.org"
    assert head.message.get_content_type() == "multipart/alternative"
    text, html = head.text(), head.html()
    assert text.startswith("教务处处长，您好：\n\n截至 2026-11-23，请您关注以下 2 项督办事项（测试方案）。")
    assert "[1] 集体备课\n   · 第 1 步「制定方案」完成时间 2026-11-20，已逾期 1 个工作日，请尽快办理或申请延期\n" in text
    # the same links in both parts, whole, each once: ack, progress, done, extend (task 1), view (task 2)
    text_links = LINK.findall(text)
    assert len(text_links) == 5 and len(set(text_links)) == 5 and sorted(set(LINK.findall(html))) == sorted(set(text_links))
    assert "<h2" in html and "已逾期，请尽快办理（1 项）" in html and "完成时间 2026-11-20 · " in html
    assert 'href="https://' in html and "http://" not in html.replace('href="https://', "")  # no external resources
    assert ">签收</a>" in html and ">提交办结</a>" in html
    # the owner's reminder carries their own four links, the supervisor's escalation one view link
    assert len(LINK.findall(mails["jwc2@example.org"].text())) == 2
    with session_scope(engine) as s:
        vias = sorted(s.scalars(select(Digest.delivered_via)))
    assert vias == ["email"] * 5
    rows = deliveries(engine)
    assert len(rows) == 5 and all(ok and err is None for _c, _t, ok, err in rows)
    assert sorted(t for _c, t, _o, _e in rows)[0] == f"mailto://127.0.0.1:{smtp_server.port}/fx@example.org"


def test_email_is_html_escaped_and_every_link_intact(engine, tmp_path, smtp_server):
    def risky(plan):
        plan["systems"][0]["projects"][0]["tasks"][0]["title"] = "集体备课 <script>alert(1)</script> & 教研"

    import_small(engine, tmp_path, risky)
    sweep_day(engine, AppriseChannel(smtp_server.relay_url, tz=TZ))
    mail = next(m for m in smtp_server.wait_for(5) if m.rcpt_tos == ["jwc@example.org"])
    assert "集体备课 &lt;script&gt;alert(1)&lt;/script&gt; &amp; 教研" in mail.html()
    assert "集体备课 <script>alert(1)</script> & 教研" in mail.text()


@pytest.mark.parametrize("mode", ["refuse", "refuse_rcpt", "timeout"])
def test_smtp_failure_is_kept_and_retried_later(engine, tmp_path, smtp_server, mode):
    import_small(engine, tmp_path)
    relay = smtp_server.relay_url + ("&cto=1" if mode == "timeout" else "")
    if mode == "refuse":
        smtp_server.refuse()
    elif mode == "refuse_rcpt":
        smtp_server.refuse(at="rcpt")
    else:
        smtp_server.timeout(5)
    # the timeout case: no answer to the end of the message within the final timeout; the
    # breaker (tests/notifications/test_relay.py) is out of the way, this is about the retry
    send = AppriseChannel(relay, tz=TZ, smtp_final_timeout=1, pool=SMTPPool(trip_after=10))
    result = sweep_day(engine, send, workers=2)
    assert (result.sent, result.failed) == (0, 5)
    assert smtp_server.received == []
    with session_scope(engine) as s:
        digests = s.execute(select(Digest.status, Digest.attempts, Digest.last_error, Digest.next_attempt_at)).all()
        items = set(s.scalars(select(Notification.status)))
    assert {d.status for d in digests} == {"failed"} and {d.attempts for d in digests} == {1} and items == {"queued"}
    expected = {
        "refuse": "邮件服务器拒收（554 5.7.1 message refused (test server in refuse mode)）",
        "refuse_rcpt": "邮件服务器拒绝收件人 jwc@example.org（550 5.1.1 <jwc@example.org>: recipient refused (test server in refuse mode)）",
        "timeout": f"邮件服务器 127.0.0.1:{smtp_server.port} 收到全文后 1 秒内未确认（可能已送达）",
    }[mode]
    errors = [e for _c, _t, ok, e in deliveries(engine) if not ok]
    assert len(errors) == 5 and (expected in errors if mode != "refuse_rcpt" else any(expected == e for e in errors))
    assert {d.last_error.split("：", 1)[1] for d in digests} == set(errors)
    # the server is back: nothing is sent before the backoff, everything after it, once
    smtp_server.ok()
    smtp_server.clear()
    assert deliver(engine, send, now=NOW + dt.timedelta(minutes=2), links=links()).sent == 0
    assert deliver(engine, send, now=NOW + dt.timedelta(minutes=6), links=links()).sent == 5
    assert sorted(m.rcpt_tos[0] for m in smtp_server.wait_for(5)) == [
        "fx@example.org",
        "jwc2@example.org",
        "jwc@example.org",
        "sj@example.org",
        "xcb@example.org",
    ]
    with session_scope(engine) as s:
        assert set(s.scalars(select(Notification.status))) == {"sent"}


def test_fail_next_retries_only_the_refused_one(engine, tmp_path, smtp_server):
    import_small(engine, tmp_path)
    smtp_server.fail_next(1)
    send = AppriseChannel(smtp_server.relay_url, tz=TZ)
    assert (lambda r: (r.sent, r.failed))(sweep_day(engine, send)) == (4, 1)
    assert deliver(engine, send, now=NOW + dt.timedelta(minutes=6), links=links()).sent == 1
    recipients = [m.rcpt_tos[0] for m in smtp_server.wait_for(5)]
    assert len(recipients) == 5 and len(set(recipients)) == 5  # nobody got two


# ---------------------------------------------------------------------------------------------
# Chat webhooks through apprise


@pytest.fixture
def chat_services(monkeypatch, webhook):
    """Point apprise's WeCom, DingTalk and Feishu plugins at the local receiver."""
    from apprise.plugins.dingtalk import NotifyDingTalk
    from apprise.plugins.feishu import NotifyFeishu
    from apprise.plugins.wecombot import NotifyWeComBot

    monkeypatch.setattr(NotifyWeComBot, "notify_url", webhook.url("/cgi-bin/webhook/send") + "?key={key}")
    monkeypatch.setattr(NotifyDingTalk, "notify_url", webhook.url("/robot/send") + "?access_token={token}")
    monkeypatch.setattr(NotifyFeishu, "notify_url", webhook.url("/open-apis/bot/v2/hook/{token}"))
    for plugin in (NotifyWeComBot, NotifyDingTalk, NotifyFeishu):
        # apprise waits 5.5 s between two requests of one bot (the services' rate limits); the
        # local receiver has none
        monkeypatch.setattr(plugin, "request_rate_per_sec", 0)
    return webhook


def with_chat(plan):
    people = {p["name"]: p for p in plan["people"]}
    people["教务处处长"]["notify"] = [f"dingtalk://{DING_SECRET}@dtoken123/13800000001", "email"]
    people["教务处副处长"]["notify"] = ["wecombot://wkey-456"]
    people["党委书记"]["notify"] = ["feishu://fstoken789", "always=wecombot://wkey-sj"]
    plan["departments"][0]["notify"] = ["wecombot://wkey-jwc-group"]


def test_chat_payloads_arrive_as_each_service_documents(engine, tmp_path, chat_services, smtp_server):
    import_small(engine, tmp_path, with_chat)
    with time_machine.travel(NOW, tick=True):  # DingTalk signs the time of sending
        result = sweep_day(engine, AppriseChannel(smtp_server.relay_url, tz=TZ))
    assert (result.sent, result.failed) == (6, 0)  # five people and the 教务处 group bot
    requests = chat_services.wait_for(5)
    by_target = {}
    for r in requests:
        key = r.query.get("key") or r.query.get("access_token") or r.path.rsplit("/", 1)[-1]
        by_target.setdefault(key, []).append(r)
    assert sorted(by_target) == ["dtoken123", "fstoken789", "wkey-456", "wkey-jwc-group", "wkey-sj"]
    # DingTalk: signed (timestamp + HMAC-SHA256 of "timestamp\nsecret", base64), @ the owner by mobile
    (ding,) = by_target["dtoken123"]
    assert ding.path == "/robot/send" and ding.method == "POST"
    expected = base64.b64encode(
        hmac.new(DING_SECRET.encode(), f"{ding.query['timestamp']}\n{DING_SECRET}".encode(), hashlib.sha256).digest()
    ).decode()
    assert ding.query["sign"] == expected
    assert 0 <= int(ding.query["timestamp"]) / 1000 - NOW.timestamp() < 60  # milliseconds, at the time of sending
    assert ding.json["msgtype"] == "text" and ding.json["at"] == {"atMobiles": ["13800000001"], "isAtAll": False}
    # a bot posts to a group: a person's digest arrives there as a summary, without a signed link
    content = ding.json["text"]["content"]
    assert content == (
        "【督办提醒】教务处处长，您好：截至 2026-11-23，您有 2 项督办事项（测试方案）：已逾期 1 项，请督促落实 1 项。\n"
        "· [1] 集体备课\n· [2] 建设课程资源库\n\n"
        "为保护办理链接，群消息不含办理链接，请查看邮件或个人督办页面办理。\n"
        "如有疑问，请联系领导小组办公室：督办员。\n@13800000001"
    )
    # WeCom: text message, within 2048 bytes, no link
    (wecom,) = by_target["wkey-456"]
    assert wecom.path == "/cgi-bin/webhook/send" and wecom.json["msgtype"] == "text"
    assert len(wecom.json["text"]["content"].encode()) <= 2048
    assert "· [2] 建设课程资源库\n" in wecom.json["text"]["content"] and "https://duban" not in wecom.json["text"]["content"]
    # Feishu: msg_type text
    (feishu,) = by_target["fstoken789"]
    assert feishu.path == "/open-apis/bot/v2/hook/fstoken789" and feishu.json["msg_type"] == "text"
    assert "党委书记，您好" in feishu.json["content"]["text"]
    # "always=" receives it too, although Feishu took it first
    assert "党委书记，您好" in by_target["wkey-sj"][0].json["text"]["content"]
    # the department's group bot: today's escalations about its tasks, without personal links
    group = by_target["wkey-jwc-group"][0].json["text"]["content"]
    assert "教务处各位同事" in group and "部门负责人督办：责任人 教务处副处长（教务处）" in group and "https://duban" not in group
    assert "以上为今日督办事项的抄送，请协助责任人按时落实；办理请使用责任人本人收到的链接。" in group
    # the digests with their links went by email to everyone; the bots got the summaries after
    smtp_server.wait_for(5)
    mailed = sorted(m.rcpt_tos[0] for m in smtp_server.received)
    assert mailed == ["fx@example.org", "jwc2@example.org", "jwc@example.org", "sj@example.org", "xcb@example.org"]
    with session_scope(engine) as s:
        via = dict(s.execute(select(Digest.subject, Digest.delivered_via)).all())
    assert via["【请督促落实】2026-11-23 党委书记：请督促落实 2 项"] == "email,feishu,wecom"


def test_long_chat_message_is_split_between_items(engine, tmp_path, chat_services, smtp_server):
    def many(plan):
        with_chat(plan)
        tasks = plan["systems"][0]["projects"][0]["tasks"]
        for n in range(5, 17):
            tasks.append(
                {
                    "code": str(n),
                    "title": f"第 {n} 项工作：" + "落实立德树人根本任务" * 6,
                    "owner": "教务处副处长",
                    "lead_department": "教务处",
                    "deadline": "2026-11-20",
                }
            )

    import_small(engine, tmp_path, many)
    sweep_day(engine, AppriseChannel(None, tz=TZ))
    parts = [r.json["text"]["content"] for r in chat_services.requests if r.query.get("key") == "wkey-456"]
    assert len(parts) == 2
    assert all(len(p.encode()) <= 2048 for p in parts)
    assert parts[0].startswith(f"（1/{len(parts)}）\n【督办提醒】教务处副处长") and parts[1].startswith(f"（续 2/{len(parts)}）\n")
    # his only channel is a group bot: the summary is his delivery, every task named once, whole, no link
    joined = "\n".join(parts)
    for n in range(5, 17):
        assert joined.count(f"· [{n}] 第 {n} 项工作：" + "落实立德树人根本任务" * 6 + "\n") == 1
    assert "https://duban" not in joined and "请查看邮件或个人督办页面办理" in parts[-1]


def test_webhook_500_falls_back_and_is_recorded(engine, tmp_path, chat_services, smtp_server):
    import_small(engine, tmp_path, with_chat)
    chat_services.respond("/robot/send", 500, {"errcode": 500, "errmsg": "internal error"})
    sweep_day(engine, AppriseChannel(smtp_server.relay_url, tz=TZ))
    # the relay took 教务处处长's digest; the summary for his DingTalk bot then failed
    assert "jwc@example.org" in [m.rcpt_tos[0] for m in smtp_server.wait_for(3)]
    ding = [r for r in deliveries(engine) if r[0] == "dingtalk"]
    assert len(ding) == 1 and ding[0][2] is False
    assert ding[0][1] == "dingtalk://****@d...3/13800000001"
    assert ding[0][3] == "钉钉发送失败：钉钉服务器返回 HTTP 500（500 internal error）"
    with session_scope(engine) as s:
        assert s.scalar(select(Digest.delivered_via).where(Digest.subject.like("%教务处处长%"))) == "email"


def test_webhook_500_without_fallback_is_retried_and_nothing_lost(engine, tmp_path, chat_services, smtp_server, monkeypatch):
    from apprise.plugins.wecombot import NotifyWeComBot

    monkeypatch.setattr(NotifyWeComBot, "notify_url", chat_services.url("/wecom/{key}"))  # one path per bot
    import_small(engine, tmp_path, with_chat)
    chat_services.respond("/wecom/wkey-jwc-group", 500, "busy", times=1)  # the group bot fails once
    send = AppriseChannel(smtp_server.relay_url, tz=TZ)
    result = sweep_day(engine, send)
    failed = digest_rows(engine, status="failed")
    assert (result.sent, result.failed) == (5, 1)
    assert [(r["收件人"], r["尝试次数"]) for r in failed] == [("教务处（群）", 1)]
    assert failed[0]["失败原因"] == "企业微信 wecombot://w...p：企业微信发送失败：企业微信服务器返回 HTTP 500"
    assert deliver(engine, send, now=NOW + dt.timedelta(minutes=6), links=links()).sent == 1
    assert digest_rows(engine, status="failed") == []
    group = [r for r in chat_services.requests if r.path == "/wecom/wkey-jwc-group"]
    assert len(group) == 2 and group[0].json == group[1].json  # the same message, sent again


# ---------------------------------------------------------------------------------------------
# Unreachable, quiet hours


def test_office_is_told_once_a_day_when_someone_stays_unreachable(engine, tmp_path, smtp_server):
    import_small(engine, tmp_path)
    smtp_server.refuse(at="rcpt")
    send = AppriseChannel(smtp_server.relay_url, tz=TZ)
    sweep_day(engine, send, unreachable_after=3)
    now = NOW
    told = []
    for minutes in (6, 20):  # attempts 2 and 3 (backoff 5, then 10 minutes)
        now = NOW + dt.timedelta(minutes=minutes)
        told.append(deliver(engine, send, now=now, links=links(), unreachable_after=3, today=MON).unreachable)
    with session_scope(engine) as s:
        office_id = s.scalar(select(Notification.recipient_id).where(Notification.kind == "unreachable"))
        notices = s.execute(
            select(Notification.key, Notification.data).where(Notification.kind == "unreachable").order_by(Notification.key)
        ).all()
    assert told == [[], [office_id]]
    assert len(notices) == 5 and {n.key.split(":")[2] for n in notices} == {f"to{office_id}"}
    assert notices[0].data["attempts"] == 3
    # the notice is delivered through the ledger like anything else: the office reads who and why
    smtp_server.ok()
    assemble(engine, today=MON, links=links(), channel="dispatch", recipients=[office_id], now=now)
    deliver(engine, send, now=now, links=links(), recipients=[office_id])
    (mail,) = [m for m in smtp_server.wait_for(1) if m.rcpt_tos == ["db@example.org"]]
    assert mail.subject == "【督办提醒】2026-11-23 督办员：系统提示 5 项"
    assert "教务处处长（教务处）的督办通知已连续 3 次发送失败，目前无法送达：邮件 mailto://127.0.0.1:" in mail.text()
    # a fourth failure the same day adds no second notice
    deliver(engine, send, now=now + dt.timedelta(hours=1), links=links(), unreachable_after=3, today=MON)
    with session_scope(engine) as s:
        assert len(s.scalars(select(Notification.id).where(Notification.kind == "unreachable")).all()) == 5


def test_quiet_hours_defer_without_counting_an_attempt(engine, tmp_path, smtp_server):
    import_small(engine, tmp_path)
    quiet = QuietHours(WorkCalendar(), TZ)
    send = AppriseChannel(smtp_server.relay_url, tz=TZ)
    evening = dt.datetime(2026, 11, 27, 19, 0, tzinfo=TZ)  # a Friday evening
    result = sweep_day(engine, send, now=evening, quiet=quiet)
    assert (result.sent, result.deferred) == (0, 5) and smtp_server.received == []
    with session_scope(engine) as s:
        rows = s.execute(select(Digest.status, Digest.attempts, Digest.next_attempt_at)).all()
    monday_8 = dt.datetime(2026, 11, 30, 8, 0, tzinfo=TZ)
    assert {(r.status, r.attempts) for r in rows} == {("pending", 0)}
    assert {r.next_attempt_at.astimezone(TZ) for r in rows} == {monday_8}
    saturday = dt.datetime(2026, 11, 28, 10, 0, tzinfo=TZ)
    assert deliver(engine, send, now=saturday, links=links(), quiet=quiet).sent == 0
    assert deliver(engine, send, now=monday_8, links=links(), quiet=quiet).sent == 5
    # a plan may send at any time
    assert QuietHours(WorkCalendar(), TZ, per_plan={1: None}).next_allowed(evening, 1) is None
