"""Group bots tell the truth: a refusal answered with HTTP 200 is a failure with the vendor's
reason (retried, and in the end reported to the office); and a group never receives a personal
action link.  Against the local fakes of tests/vendor_bots.py, through the real sweep."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from sqlalchemy import select

from duban.db import session_scope
from duban.links import LinkMaker
from duban.models import Delivery, Digest, Notification
from duban.rules.calendar import WorkCalendar
from duban.sweep.decisions import decide
from duban.sweep.delivery import deliver
from duban.sweep.digests import assemble
from notifications.bots import read_answer
from notifications.channel import ChannelKind
from notifications.channels import AppriseChannel
from tests.factories import BASE, IMPORTED, LINK_SECRET, MON, TZ, import_announced, small_plan, write_yaml
from tests.vendor_bots import group_bots_fixture  # noqa: F401 - the fixture group_bots

NOW = dt.datetime(2026, 11, 23, 8, 30, tzinfo=TZ)
SECRET = LINK_SECRET
PERSONAL_LINK = re.compile(r"/(l|rv)/")


def links(day=MON):
    return LinkMaker(BASE, SECRET, day)


def import_small(engine, tmp_path, change):
    plan = small_plan()
    change(plan)
    import_announced(engine, write_yaml(tmp_path / "p.yaml", plan), now=IMPORTED)


def sweep_day(engine, send, **options):
    decide(engine, today=MON, cal=WorkCalendar(), tz=TZ)
    assemble(engine, today=MON, links=links(), channel="dispatch", now=NOW)
    return deliver(engine, send, now=NOW, links=links(), **options)


def bot_rows(engine):
    with session_scope(engine) as s:
        return [
            (d.channel, d.ok, d.error)
            for d in s.scalars(select(Delivery).where(Delivery.channel.in_(["wecom", "dingtalk", "feishu", "lark"])).order_by(Delivery.id))
        ]


def group_digest(engine):
    with session_scope(engine) as s:
        return s.execute(select(Digest.status, Digest.attempts, Digest.last_error).where(Digest.audience == "department")).one()


# ---------------------------------------------------------------------------------------------
# Refusals answered with HTTP 200


# each kind of group bot: its apprise URL and the key/token the fake knows it by
GROUPS = {"wecom": ("wecombot://wkgrp", "wkgrp"), "dingtalk": ("dingtalk://dtgrp", "dtgrp"),
          "feishu": ("feishu://fsgrp", "fsgrp"), "lark": ("lark://lkgrp", "lkgrp")}  # fmt: skip
REFUSALS = [
    ("wecom", {"errcode": 93000, "errmsg": "invalid webhook url, hint: [1700000000_1_abc]"},
     "企业微信发送失败：企业微信拒绝：93000 机器人地址无效（webhook 地址错误或机器人已被移出群聊）"),
    ("wecom", {"errcode": 40058, "errmsg": "content exceed max length"}, "企业微信发送失败：企业微信拒绝：40058 消息内容不合法或超出长度"),
    ("dingtalk", {"errcode": 310000, "errmsg": "keywords not in content"}, "钉钉发送失败：钉钉拒绝：310000 关键词不匹配或签名错误"),
    ("dingtalk", {"errcode": 300001, "errmsg": "token is not exist"}, "钉钉发送失败：钉钉拒绝：300001 机器人令牌（access_token）无效"),
    ("dingtalk", {"errcode": 400102, "errmsg": "robot stopped"}, "钉钉发送失败：钉钉拒绝：400102 机器人已停用"),
    ("feishu", {"code": 19024, "msg": "Key Words Not Found", "data": {}}, "飞书发送失败：飞书拒绝：19024 关键词不匹配"),
    ("feishu", {"StatusCode": 19022, "StatusMessage": "Ip Not Allowed"}, "飞书发送失败：飞书拒绝：19022 请求来源 IP 不在机器人的白名单内"),
    ("lark", {"code": 9499, "msg": "Bad Request", "data": {}}, "Lark发送失败：Lark拒绝：9499 请求格式不正确"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "body", "reason"), REFUSALS, ids=[f"{r[0]}-{next(iter(r[1].values()))}" for r in REFUSALS])
def test_a_refusal_with_http_200_is_a_failure_with_the_vendors_reason_and_is_retried(
    engine, tmp_path, group_bots, smtp_server, kind, body, reason
):
    url, token = GROUPS[kind]
    import_small(engine, tmp_path, lambda plan: plan["departments"][0].update(notify=[url]))
    group_bots.refuse(token, body, times=1)
    send = AppriseChannel(smtp_server.relay_url, tz=TZ)
    result = sweep_day(engine, send)
    assert (result.sent, result.failed) == (5, 1)  # five people by email; the 教务处 group bot refused
    assert bot_rows(engine) == [(kind, False, reason)]
    status, attempts, error = group_digest(engine)
    assert (status, attempts) == ("failed", 1)
    assert error.endswith(reason)
    # the backoff runs out, the bot takes it now: the same text again, recorded as sent
    assert deliver(engine, send, now=NOW + dt.timedelta(minutes=6), links=links()).sent == 1
    assert group_digest(engine)[:2] == ("sent", 2)  # attempts counts the one that was refused too
    texts = group_bots.received(token)
    assert len(texts) == 2 and texts[0] == texts[1]


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("wecom", {"errcode": 45009, "errmsg": "api freq out of limit"}),
        ("dingtalk", {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}),
        ("feishu", {"code": 11232, "msg": "frequency limited psm", "data": {}}),
    ],
)
def test_a_rate_limited_bot_gives_the_message_back_without_counting_an_attempt(engine, tmp_path, group_bots, smtp_server, kind, body):
    url, token = GROUPS[kind]
    import_small(engine, tmp_path, lambda plan: plan["departments"][0].update(notify=[url]))
    group_bots.refuse(token, body, times=1)
    send = AppriseChannel(smtp_server.relay_url, tz=TZ)
    result = sweep_day(engine, send)
    assert (result.sent, result.failed, result.paused) == (5, 0, 1)
    assert "稍后自动重试" in result.paused_reason
    assert group_digest(engine)[:2] == ("pending", 0)
    assert deliver(engine, send, now=NOW + dt.timedelta(minutes=4), links=links()).sent == 0  # paused for 5 minutes
    assert deliver(engine, send, now=NOW + dt.timedelta(minutes=6), links=links()).sent == 1
    assert group_digest(engine)[:2] == ("sent", 1)  # the one that went out: the pause was not an attempt


def test_a_signed_dingtalk_bot_with_the_wrong_secret_is_refused(engine, tmp_path, group_bots, smtp_server):
    import_small(engine, tmp_path, lambda plan: plan["departments"][0].update(notify=["dingtalk://WRONGSECRET@dtgrp"]))
    group_bots.dingtalk_secret("dtgrp", "SECRIGHT0123")
    with time_machine.travel(NOW, tick=True):
        sweep_day(engine, AppriseChannel(smtp_server.relay_url, tz=TZ))
    assert bot_rows(engine) == [("dingtalk", False, "钉钉发送失败：钉钉拒绝：310000 关键词不匹配或签名错误")]


def test_a_person_whose_only_channel_is_a_refusing_bot_is_reported_to_the_office(engine, tmp_path, group_bots):
    def change(plan):
        people = {p["name"]: p for p in plan["people"]}
        people["教务处副处长"]["notify"] = ["wecombot://wk-jwc2"]

    import_small(engine, tmp_path, change)
    group_bots.refuse("wk-jwc2", {"errcode": 93000, "errmsg": "invalid webhook url"})
    send = AppriseChannel(None, tz=TZ)  # no mail relay: the bot is all he has
    sweep_day(engine, send, unreachable_after=2)
    told = deliver(engine, send, now=NOW + dt.timedelta(minutes=6), links=links(), unreachable_after=2, today=MON).unreachable
    assert len(told) == 1
    with session_scope(engine) as s:
        notices = s.scalars(select(Notification.data).where(Notification.kind == "unreachable")).all()
    (data,) = [d for d in notices if d["person"] == "教务处副处长"]  # the others have no channel at all here
    assert data["attempts"] == 2
    assert (
        data["reason"]
        == "企业微信 wecombot://w...2：企业微信发送失败：企业微信拒绝：93000 机器人地址无效（webhook 地址错误或机器人已被移出群聊）"
    )


@pytest.mark.parametrize(
    ("status", "body", "ok", "reason"),
    [
        (200, b'{"errcode":0,"errmsg":"ok"}', True, ""),
        (200, b"<html>gateway</html>", False, "企业微信的应答无法识别，无法确认已送达"),
        (502, b"bad gateway", False, "企业微信服务器返回 HTTP 502"),
        (
            200,
            b'{"errcode":"93000","errmsg":"invalid webhook url"}',
            False,
            "企业微信拒绝：93000 机器人地址无效（webhook 地址错误或机器人已被移出群聊）",
        ),
        (200, b'{"errcode":88888,"errmsg":"something new"}', False, "企业微信拒绝：88888 something new"),
    ],
)
def test_reading_an_answer(status, body, ok, reason):
    answer = read_answer(ChannelKind.WECOM, status, body)
    assert (answer.ok, answer.reason) == (ok, reason)


# ---------------------------------------------------------------------------------------------
# No personal link in a group


def test_group_bots_get_task_names_and_owners_never_a_personal_link(engine, tmp_path, group_bots, smtp_server):
    def change(plan):
        people = {p["name"]: p for p in plan["people"]}
        people["教务处处长"]["notify"] = ["dingtalk://dtjwc/13800000001", "email"]  # a group bot first, then mail
        people["教务处副处长"]["notify"] = ["feishu://fs-jwc2"]  # only a bot (and his email, appended last)
        plan["departments"][0]["notify"] = ["wecombot://wk-dept", "always=lark://lk-dept"]

    import_small(engine, tmp_path, change)
    result = sweep_day(engine, AppriseChannel(smtp_server.relay_url, tz=TZ))
    assert (result.sent, result.failed) == (6, 0)
    # the department's bots: the escalation copy names the tasks and the owners, no link
    for token in ("wk-dept", "lk-dept"):
        (text,) = group_bots.received(token)
        assert "教务处各位同事" in text and "[2] 建设课程资源库" in text and "责任人 教务处副处长" in text
        assert not PERSONAL_LINK.search(text) and BASE not in text
    # a person's bots: a summary with the task codes and names, where to act; no link
    (ding,) = group_bots.received("dtjwc")
    assert ding == (
        "【督办提醒】教务处处长，您好：截至 2026-11-23，您有 2 项督办事项（测试方案）：已逾期 1 项，请督促落实 1 项。\n"
        "· [1] 集体备课\n· [2] 建设课程资源库\n\n"
        "为保护办理链接，群消息不含办理链接，请查看邮件或个人督办页面办理。\n"
        "如有疑问，请联系领导小组办公室：督办员。\n@13800000001"
    )
    (feishu,) = group_bots.received("fs-jwc2")
    assert "[2] 建设课程资源库" in feishu and "请查看邮件或个人督办页面办理" in feishu and not PERSONAL_LINK.search(feishu)
    # the links went by email, to the person alone
    mails = {m.rcpt_tos[0]: m.text() for m in smtp_server.wait_for(5)}
    assert PERSONAL_LINK.search(mails["jwc@example.org"]) and PERSONAL_LINK.search(mails["jwc2@example.org"])
    with session_scope(engine) as s:
        via = dict(s.execute(select(Digest.recipient_id.is_(None), Digest.delivered_via).where(Digest.audience == "department")).all())
    assert via == {True: "wecom,lark"}


def test_a_bot_summary_waits_until_the_digest_itself_is_delivered(engine, tmp_path, group_bots, smtp_server):
    """The relay refuses: the digest is not delivered, so the bot says nothing yet (it would say
    "请查看邮件"); after the retry delivers the mail, the summary goes out once."""

    def change(plan):
        people = {p["name"]: p for p in plan["people"]}
        people["教务处处长"]["notify"] = ["wecombot://wk-jwc"]

    import_small(engine, tmp_path, change)
    smtp_server.refuse(at="rcpt")
    send = AppriseChannel(smtp_server.relay_url, tz=TZ)
    sweep_day(engine, send)
    assert group_bots.received("wk-jwc") == []
    smtp_server.ok()
    deliver(engine, send, now=NOW + dt.timedelta(minutes=6), links=links())
    deliver(engine, send, now=NOW + dt.timedelta(minutes=30), links=links())
    assert len(group_bots.received("wk-jwc")) == 1
    assert [m.rcpt_tos[0] for m in smtp_server.received].count("jwc@example.org") == 1


def test_a_template_override_cannot_print_a_personal_link_into_a_group(engine, tmp_path, group_bots, smtp_server):
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "digest.summary.chat.j2").write_text(
        "{% for g in groups %}{% for i in g.entries %}{% for label, url in i.links %}{{ url }}{% endfor %}{% endfor %}{% endfor %}{{ recipient }}",
        encoding="utf-8",
    )
    import_small(engine, tmp_path, lambda plan: plan["people"][2].update(notify=["wecombot://wk-jwc", "email"]))
    result = sweep_day(engine, AppriseChannel(smtp_server.relay_url, tz=TZ, template_dir=folder), template_dir=folder)
    assert result.failed == 0  # the mail delivered the digest
    assert group_bots.received("wk-jwc") == ["教务处处长"]  # rendered without the URLs: none to print
