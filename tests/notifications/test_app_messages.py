"""Personal app messages (notifications.apps) against local fakes of the vendors' APIs (tests/vendors.py):
the exact requests duban makes (token, card, one button), and what it records for each answer."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from sqlalchemy import select

from duban.db import session_scope
from duban.models import Delivery, Digest, Notification
from duban.runtime import configured_apps
from duban.settings import ConfigurationError, Settings, get_settings
from duban.sweep.delivery import deliver
from notifications.apps.base import TokenCache
from notifications.channel import Outgoing
from notifications.channels import AppriseChannel
from tests.factories import small_plan
from tests.notifications.test_notify_e2e import NOW, TZ, import_small, links, sweep_day

LINK = re.compile(r"^https://duban\.example\.edu\.cn/l/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+$")
MINE = re.compile(r"^https://duban\.example\.edu\.cn/me/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+$")  # the person's 我的督办 page
OPEN_ID = "ou_7d8a6e6df7621556ce0d21922b676706"


def with_ids(plan):
    people = {p["name"]: p for p in plan["people"]}
    people["教务处处长"]["wecom_userid"] = "zhangsan"
    people["教务处副处长"]["dingtalk_userid"] = "0123456789"
    people["党委书记"]["feishu_open_id"] = OPEN_ID


def only_apps(plan):
    """教务处处长 has no e-mail: the WeCom app is the only way to reach them."""
    with_ids(plan)
    del next(p for p in plan["people"] if p["name"] == "教务处处长")["email"]


def dispatcher(relay_url=None):
    return AppriseChannel(relay_url, tz=TZ, apps=configured_apps(get_settings()))


def deliveries(engine, channel_prefix=""):
    with session_scope(engine) as s:
        rows = s.execute(select(Delivery.channel, Delivery.target, Delivery.ok, Delivery.error).order_by(Delivery.id)).all()
    return [tuple(r) for r in rows if r.channel.startswith(channel_prefix) and r.channel.endswith(("_app", "_work"))]


# ---------------------------------------------------------------------------------------------
# The requests, as each vendor documents them


def test_cards_reach_each_person_by_their_id(engine, tmp_path, app_vendors, smtp_server):
    import_small(engine, tmp_path, with_ids)
    result = sweep_day(engine, dispatcher(smtp_server.relay_url))
    assert (result.sent, result.failed) == (5, 0)
    assert len(smtp_server.wait_for(5)) == 5  # the e-mails still go: an app is one channel more

    wecom, ding, fs = app_vendors.wecom, app_vendors.dingtalk, app_vendors.feishu
    assert wecom.paths() == ["/cgi-bin/gettoken", "/cgi-bin/message/send"]
    assert wecom.calls[0].query == {"corpid": "ww0123456789abcdef", "corpsecret": "wecom-app-secret-XYZ"}
    (sent,) = wecom.sent
    assert sent.query == {"access_token": "wecom-token-1"}
    card = sent.json["textcard"]
    assert {k: v for k, v in sent.json.items() if k != "textcard"} == {
        "touser": "zhangsan", "msgtype": "textcard", "agentid": 1000002, "enable_duplicate_check": 0,
    }  # fmt: skip
    assert card["title"] == "【督办提醒】教务处处长，您有 2 项督办事项"
    assert card["description"] == (
        '<div class="highlight">已逾期 1 项、请督促落实 1 项</div><div class="normal">· 集体备课</div><div class="normal">· 建设课程资源库</div>'
    )
    assert MINE.match(card["url"]) and card["btntxt"] == "我的督办"

    assert ding.paths() == ["/gettoken", "/topapi/message/corpconversation/asyncsend_v2"]
    assert ding.calls[0].query == {"appkey": "dingappkey0123", "appsecret": "dingtalk-app-secret-XYZ"}
    (sent,) = ding.sent
    assert sent.query == {"access_token": "ding-token-1"}
    assert sent.json["agent_id"] == 2876543210 and sent.json["userid_list"] == "0123456789"
    action = sent.json["msg"]["action_card"]
    assert sent.json["msg"]["msgtype"] == "action_card"
    assert action["title"] == "【督办提醒】教务处副处长，您有 1 项督办事项"
    assert (
        action["markdown"] == "### 【督办提醒】教务处副处长，您有 1 项督办事项\n\n**待签收、待反馈 1 项**\n\n- 建设课程资源库\n\n2026-11-23"
    )
    assert action["single_title"] == "我的督办" and MINE.match(action["single_url"])

    assert fs.paths() == ["/open-apis/auth/v3/tenant_access_token/internal", "/open-apis/im/v1/messages"]
    assert fs.calls[0].json == {"app_id": "cli_a1b2c3d4e5f6", "app_secret": "feishu-app-secret-XYZ"}
    (sent,) = fs.sent
    assert sent.query == {"receive_id_type": "open_id"} and sent.headers["authorization"] == "Bearer t-feishu-1"
    assert sent.json["receive_id"] == OPEN_ID and sent.json["msg_type"] == "interactive"
    content = json.loads(sent.json["content"])
    assert content["header"]["title"] == {"tag": "plain_text", "content": "【请督促落实】党委书记，您有 2 项督办事项"}
    assert content["elements"][0]["text"] == {"tag": "lark_md", "content": "**请督促落实 2 项**\n· 开设选修课\n· 文明校园创建"}
    (button,) = content["elements"][1]["actions"]
    assert button["text"]["content"] == "我的督办" and MINE.match(button["url"])

    assert sorted(deliveries(engine)) == [
        ("dingtalk_work", "应用 2876543210 → 0123456789", True, None),
        ("feishu_app", f"应用 cli_a1b2c3d4e5f6 → {OPEN_ID}", True, None),
        ("wecom_app", "应用 1000002 → zhangsan", True, None),
    ]
    with session_scope(engine) as s:
        vias = sorted(v for v in s.scalars(select(Digest.delivered_via)))
    assert vias == ["dingtalk_work,email", "email", "email", "feishu_app,email", "wecom_app,email"]


def test_a_vendor_not_configured_is_not_used(engine, tmp_path, app_vendors, smtp_server, monkeypatch):
    for key in [k for k in app_vendors.env if k.startswith(("DUBAN_DINGTALK", "DUBAN_FEISHU"))]:
        monkeypatch.delenv(key)
    get_settings.cache_clear()
    import_small(engine, tmp_path, with_ids)
    assert sweep_day(engine, dispatcher(smtp_server.relay_url)).sent == 5
    assert len(app_vendors.wecom.sent) == 1 and app_vendors.dingtalk.calls == [] and app_vendors.feishu.calls == []


# ---------------------------------------------------------------------------------------------
# The one button, and long digests


def message(payload_items=0, page_url=None, link=True):
    items = [
        {"code": str(n), "title": f"第{n}项任务：" + "落实立德树人根本任务" * 3, "milestone": "", "kind": "overdue", "line": "已逾期",
         "level": 0, "links": [["签收", 100 + n]] if link else [], "sort": [n]}
        for n in range(1, payload_items + 1)
    ]  # fmt: skip
    payload = {"recipient": "教务处处长", "today": "2026-11-23", "items": items, "plan_name": "测试方案", "office": "督办员"}
    urls = {100 + n: f"https://duban.example.edu.cn/l/link{n}" for n in range(1, payload_items + 1)}
    return Outgoing(7, 1, "教务处处长", None, dt.date(2026, 11, 23), "s", payload, 0, urls=urls, page_url=page_url)


@pytest.mark.parametrize(
    ("page_url", "link", "expected"),
    [
        ("https://duban.example.edu.cn/me/abc", True, "https://duban.example.edu.cn/me/abc"),
        (None, True, "https://duban.example.edu.cn/l/link1"),
        (None, False, "https://duban.example.edu.cn"),
    ],
)
def test_the_one_button_opens_the_persons_page(page_url, link, expected):
    from notifications.apps.dingtalk import DingTalkApp
    from notifications.apps.feishu import FeishuApp
    from notifications.apps.wecom import WeComApp

    out = message(3, page_url, link)
    base = "https://duban.example.edu.cn"
    assert WeComApp("ww1", 1, None, base_url=base).message("u", out)["textcard"]["url"] == expected  # type: ignore[arg-type]
    assert DingTalkApp("k", 1, None, base_url=base).message("u", out)["msg"]["action_card"]["single_url"] == expected  # type: ignore[arg-type]
    (button,) = FeishuApp("cli_1", None, base_url=base).card(out)["elements"][1]["actions"]  # type: ignore[arg-type]
    assert button["url"] == expected


def test_a_long_digest_stays_within_each_limit_and_says_how_many():
    from notifications.apps.dingtalk import DingTalkApp
    from notifications.apps.wecom import WeComApp

    out = message(12)
    card = WeComApp("ww1", 1, None).message("u", out)["textcard"]  # type: ignore[arg-type]
    assert len(card["description"].encode()) <= 512 and len(card["title"].encode()) <= 128
    assert card["description"].startswith('<div class="highlight">已逾期 12 项</div><div class="normal">· 第1项任务：')
    assert card["description"].endswith('<div class="gray">等 12 项</div>')
    shown = card["description"].count('class="normal"')
    assert 1 <= shown < 5  # as many titles as fit in 512 bytes
    markdown = DingTalkApp("k", 1, None).message("u", out)["msg"]["action_card"]["markdown"]  # type: ignore[arg-type]
    assert markdown.count("\n- 第") == 5 and "\n\n等 12 项\n\n2026-11-23" in markdown


# ---------------------------------------------------------------------------------------------
# Tokens: fetched once, refreshed once when the vendor says it expired


@pytest.mark.parametrize(
    ("vendor", "token_path", "send_path"),
    [
        ("wecom", "/cgi-bin/gettoken", "/cgi-bin/message/send"),
        ("dingtalk", "/gettoken", "/topapi/message/corpconversation/asyncsend_v2"),
        ("feishu", "/open-apis/auth/v3/tenant_access_token/internal", "/open-apis/im/v1/messages"),
    ],
)
def test_token_is_cached_and_fetched_again_once_when_expired(app_vendors, vendor, token_path, send_path):
    fake = getattr(app_vendors, vendor)
    client = configured_apps(get_settings()).clients[vendor]
    userid = {"wecom": "zhangsan", "dingtalk": "0123456789", "feishu": OPEN_ID}[vendor]
    assert client.send(userid, message(1)).ok and client.send(userid, message(1)).ok
    assert fake.paths() == [token_path, send_path, send_path]
    fake.expire_tokens()
    answer = client.send(userid, message(1))
    assert answer.ok and answer.code == 0
    assert fake.paths()[3:] == [send_path, token_path, send_path]  # refused as expired, a new token, sent
    assert len(fake.issued) == 2 and len(fake.sent) == 3


def test_a_token_is_fetched_again_before_its_expiry(wecom_app):
    wecom = wecom_app
    from notifications.apps.base import Secret
    from notifications.apps.wecom import WeComApp

    now = [0.0]
    client = WeComApp(wecom.corp_id, wecom.agent_id, Secret(wecom.secret), api_base=wecom.base_url, tokens=TokenCache(lambda: now[0]))
    assert client.send("zhangsan", message(1)).ok
    now[0] = 7200 - 301  # the token lives 7200 s; it is replaced five minutes before
    assert client.send("zhangsan", message(1)).ok
    now[0] = 7200 - 299
    assert client.send("zhangsan", message(1)).ok
    assert wecom.paths().count("/cgi-bin/gettoken") == 2 and len(wecom.sent) == 3


# ---------------------------------------------------------------------------------------------
# Refusals: the vendor's reason and code recorded; retried, or the office told at once

REFUSALS = {
    ("wecom", "ip"): "企业微信拒绝：60020 服务器 IP 不在企业可信 IP 列表中（本机出口 IP：127.0.0.1）",
    ("wecom", "unknown"): "企业微信拒绝：81013 该成员不在企业或不在应用的可见范围内（请核对人员表中的账号后重新导入）",
    ("wecom", "rate"): "企业微信限流：45009 接口调用超过频率限制，稍后自动重发",
    ("dingtalk", "ip"): "钉钉拒绝：60020 服务器 IP 不在应用的出口 IP 白名单中",
    ("dingtalk", "unknown"): "钉钉拒绝：33012 钉钉中没有这个用户（userid 无效）（请核对人员表中的账号后重新导入）",
    ("dingtalk", "rate"): "钉钉限流：90018 接口调用超过每分钟调用上限，稍后自动重发",
    ("feishu", "ip"): "飞书拒绝：99991401 服务器 IP 不在应用的 IP 白名单中",
    ("feishu", "unknown"): "飞书拒绝：230013 机器人对该用户不可用（该用户不在应用的可用范围内或已离职）（请核对人员表中的账号后重新导入）",
    ("feishu", "rate"): "飞书限流：99991400 请求过于频繁，稍后自动重发",
}


def only_app(vendor):
    def change(plan):
        person = next(p for p in plan["people"] if p["name"] == "教务处处长")
        del person["email"]
        person[{"wecom": "wecom_userid", "dingtalk": "dingtalk_userid", "feishu": "feishu_open_id"}[vendor]] = {
            "wecom": "zhangsan", "dingtalk": "0123456789", "feishu": OPEN_ID,
        }[vendor]  # fmt: skip

    return change


@pytest.mark.parametrize(("vendor", "mode"), sorted(REFUSALS))
def test_refusal_is_a_failed_attempt_with_the_vendors_reason(engine, tmp_path, app_vendors, smtp_server, vendor, mode):
    fake = getattr(app_vendors, vendor)
    userid = {"wecom": "zhangsan", "dingtalk": "0123456789", "feishu": OPEN_ID}[vendor]
    if mode == "ip":
        fake.refuse_ip()
    elif mode == "unknown":
        fake.unknown_users.add(userid)
    else:
        fake.rate_limit(1)
    import_small(engine, tmp_path, only_app(vendor))
    result = sweep_day(engine, dispatcher(smtp_server.relay_url), unreachable_after=3)
    assert (result.sent, result.failed) == (4, 1)
    expected = REFUSALS[(vendor, mode)]
    ((channel, target, ok, error),) = deliveries(engine)
    assert channel.startswith(vendor) and userid in target and not ok and error == expected
    with session_scope(engine) as s:
        failed = s.execute(select(Digest.attempts, Digest.last_error, Digest.next_attempt_at).where(Digest.status == "failed")).one()
        told = list(s.scalars(select(Notification.data).where(Notification.kind == "unreachable")))
    assert failed.attempts == 1 and failed.last_error.endswith(expected)
    # a person the app does not know: the office is told at once (sending again cannot help)
    assert [d["person"] for d in told] == (["教务处处长"] if mode == "unknown" else [])
    assert result.unreachable != [] if mode == "unknown" else result.unreachable == []
    # the vendor answers again: the message goes after its backoff, once
    fake.refuse_ip(False)
    fake.unknown_users.clear()
    assert deliver(engine, dispatcher(), now=NOW + dt.timedelta(minutes=2), links=links()).sent == 0
    assert deliver(engine, dispatcher(), now=NOW + dt.timedelta(minutes=6), links=links()).sent == 1
    assert len(fake.sent) == 1


def test_a_network_failure_never_shows_the_token_or_secret(engine, tmp_path, app_vendors, monkeypatch):
    from tests.servers import free_port

    port = free_port()
    monkeypatch.setenv("DUBAN_WECOM_API_BASE", f"http://127.0.0.1:{port}")
    get_settings.cache_clear()
    import_small(engine, tmp_path, only_app("wecom"))
    sweep_day(engine, dispatcher())
    ((_c, _t, ok, error),) = deliveries(engine)
    assert not ok and error == f"企业微信服务器无法连接（127.0.0.1:{port}，ConnectionError），稍后自动重发"


def test_a_wrong_secret_is_named_without_showing_it(app_vendors, monkeypatch):
    monkeypatch.setenv("DUBAN_WECOM_SECRET", "wrong-secret-123")
    monkeypatch.setenv("DUBAN_FEISHU_APP_SECRET", "wrong-secret-456")
    get_settings.cache_clear()
    apps = configured_apps(get_settings())
    wecom = apps.clients["wecom"].attempt("zhangsan", message(1))
    assert (wecom.ok, wecom.error) == (False, "企业微信拒绝发放访问令牌：40001 应用 Secret 不正确（请核对 DUBAN_WECOM_SECRET）")
    assert wecom.answer == "errcode=40001 errmsg=invalid credential"
    feishu = apps.clients["feishu"].attempt(OPEN_ID, message(1))
    assert (feishu.ok, feishu.error) == (False, "飞书拒绝发放访问令牌：10014 App Secret 不正确")
    assert app_vendors.wecom.sent == [] and app_vendors.feishu.sent == []


# ---------------------------------------------------------------------------------------------
# Configuration


def test_secret_from_a_prefect_block_is_read_only_when_sending(app_vendors, monkeypatch):
    monkeypatch.delenv("DUBAN_WECOM_SECRET")
    monkeypatch.setenv("DUBAN_WECOM_SECRET_BLOCK", "wecom-app-secret")
    get_settings.cache_clear()
    asked: list[str] = []

    def resolve(name):
        asked.append(name)
        return app_vendors.wecom.secret

    apps = configured_apps(get_settings(), resolve=resolve)
    assert asked == []
    assert apps.clients["wecom"].send("zhangsan", message(1)).ok
    assert asked == ["wecom-app-secret"]
    assert "wecom-app-secret-XYZ" not in repr(get_settings()) and "wecom-app-secret-XYZ" not in repr(apps)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DUBAN_WECOM_CORP_ID": "ww1"}, "企业微信应用的配置不完整：缺少 DUBAN_WECOM_AGENT_ID、DUBAN_WECOM_SECRET"),
        ({"DUBAN_DINGTALK_APP_KEY": "k", "DUBAN_DINGTALK_APP_SECRET": "s"}, "钉钉应用的配置不完整：缺少 DUBAN_DINGTALK_AGENT_ID"),
        ({"DUBAN_FEISHU_APP_SECRET_BLOCK": "fs"}, "飞书应用的配置不完整：缺少 DUBAN_FEISHU_APP_ID"),
    ],
)
def test_an_incomplete_app_is_refused_by_name(monkeypatch, env, expected):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError) as err:
        Settings()
    assert str(err.value).startswith(expected)


def test_lark_switch_uses_the_lark_api(monkeypatch):
    monkeypatch.setenv("DUBAN_FEISHU_APP_ID", "cli_1")
    monkeypatch.setenv("DUBAN_FEISHU_APP_SECRET", "s")
    monkeypatch.setenv("DUBAN_FEISHU_LARK", "1")
    client = configured_apps(Settings()).clients["feishu"]
    assert (client.api_base, client.kind, client.vendor) == ("https://open.larksuite.com", "lark_app", "Lark")
    monkeypatch.delenv("DUBAN_FEISHU_LARK")
    assert configured_apps(Settings()).clients["feishu"].api_base == "https://open.feishu.cn"


# ---------------------------------------------------------------------------------------------
# duban notify test


def test_notify_test_prints_each_vendors_answer(use_database, tmp_path, monkeypatch, app_vendors, smtp_server):
    from typer.testing import CliRunner

    from duban.cli.common import console
    from duban.cli.main import app
    from tests.factories import write_yaml

    runner = CliRunner()
    monkeypatch.setenv("DUBAN_SMTP_URL", smtp_server.relay_url)
    plan = small_plan()
    person = next(p for p in plan["people"] if p["name"] == "教务处处长")
    person.update(wecom_userid="zhangsan", dingtalk_userid="0123456789", feishu_open_id=OPEN_ID)
    assert runner.invoke(app, ["import", str(write_yaml(tmp_path / "p.yaml", plan))]).exit_code == 0
    app_vendors.dingtalk.unknown_users.add("0123456789")
    monkeypatch.setattr(console, "width", 250)
    result = runner.invoke(app, ["notify", "test", "教务处处长"])
    out = result.output
    assert result.exit_code == 1, out
    assert "errcode=0 errmsg=ok" in out and "errcode=33012 errmsg=无效的USERID" in out and "errcode=0 errmsg=success" in out
    assert "企业微信应用消息" in out and "钉钉工作通知" in out and "飞书应用消息" in out
    assert "4 个渠道中有 1 个发送失败" in out
    assert "secret-XYZ" not in out and "token-1" not in out
    (sent,) = app_vendors.wecom.sent
    assert sent.json["textcard"]["title"] == "【督办系统】通知渠道测试"
    assert sent.json["textcard"]["url"].startswith("http://127.0.0.1:8000/me/")  # the button a card carries: 我的督办
    assert len(smtp_server.wait_for(1)) == 1
