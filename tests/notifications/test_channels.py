"""Channel configuration: URLs validated at import (secrets never shown), routing and splitting,
quiet hours, `duban notify test` and `duban notify bulletin`."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from definitions.loaders import load_plan
from definitions.problems import PlanProblems
from duban.cli.main import app
from duban.rules.calendar import WorkCalendar
from duban.rules.quiet import QuietHours, SendHoursError, parse_send_hours
from notifications.addresses import redact, relay_problem, targets_for
from notifications.channels import split_chat
from tests.factories import DEPARTMENT_ROWS, PEOPLE_ROWS, small_plan, write_xlsx, write_yaml

TZ = ZoneInfo("Asia/Shanghai")
runner = CliRunner()


def problems_of(path):
    with pytest.raises(PlanProblems) as err:
        load_plan(path)
    return [str(p) for p in err.value.problems]


def test_bad_channel_urls_are_named_with_secrets_hidden(tmp_path):
    plan = small_plan()
    plan["people"][0]["notify"] = ["wecombot://", "dingtalk://SECRETabc123@tokenxyz789/1380000"]
    plan["people"][5]["email"] = None
    plan["people"][5]["notify"] = ["email"]
    plan["people"][1]["notify"] = ["sometimes=feishu://tok123"]
    plan["departments"][0]["notify"] = ["email", "nonsense"]
    plan["plan"]["channels"] = {"leading_group": ["foo://bar"]}
    plan["plan"]["policy"] = {"send_hours": "8点到18点"}
    messages = problems_of(write_yaml(tmp_path / "plan.yaml", plan))
    assert messages == [
        "plan.yaml · plan.policy：督办规则“send_hours”：发送时段“8点到18点”无法识别：请写作 08:00-18:00（当地时间），或写 always（全天、不限工作日）",
        "plan.yaml · people[0].notify：第 1 个通知地址（wecombot://…）无法识别或格式不正确，请对照 apprise 的写法检查",
        "plan.yaml · people[0].notify：第 2 个钉钉通知地址（dingtalk://****@t...9）中的手机号不正确：@ 某人须写 11 位手机号，如 dingtalk://密钥@令牌/13800000000",
        "plan.yaml · people[1].notify：通知地址前的标记“sometimes”无法识别：只能写 always=（总是发送）",
        "plan.yaml · people[5].notify：写了“email”（经单位邮件服务器发到本人邮箱），但没有填写邮箱",
        "plan.yaml · departments[0].notify：第 1 个群通知地址应为群机器人等 apprise 地址，不能写 email",
        "plan.yaml · departments[0].notify：第 2 个不是通知地址（应形如 mailto://、wecombot://、dingtalk://、feishu://）",
        "plan.yaml · plan.channels.leading_group：通知地址（foo://…）无法识别或格式不正确，请对照 apprise 的写法检查",
    ]
    assert not any("SECRETabc123" in m or "tokenxyz789" in m for m in messages)


def test_spreadsheet_channels_are_read_and_checked(tmp_path):
    tasks = [
        ["序号", "育人体系", "重点项目", "具体任务", "牵头单位", "责任人", "完成时限"],
        ["1", "课程育人", "思政课", "集体备课", "教务处", "教务处处长", "2026-12-31"],
    ]
    depts = [[*DEPARTMENT_ROWS[0], "通知地址"], [*DEPARTMENT_ROWS[1], "wecombot://jwc-key"], [*DEPARTMENT_ROWS[2], ""]]
    people = [list(r) for r in PEOPLE_ROWS]
    people[3][5] = "always=feishu://fs-token email"
    sheet = [["方案编号", "x"], ["方案名称", "示例"], ["领导小组通知地址", "wecombot://lg-key"], ["通知发送时段", "07:30-21:00"]]
    good = write_xlsx(tmp_path / "p.xlsx", {"方案": sheet, "任务清单": tasks, "人员": people, "部门": depts})
    d = load_plan(good)
    assert d.channels == {"leading_group": ["wecombot://lg-key"]}
    assert d.policy == {"send_hours": "07:30-21:00"}
    assert [dep.notify for dep in d.departments] == [("wecombot://jwc-key",), ()]
    assert next(p for p in d.people if p.name == "教务处处长").notify == ("always=feishu://fs-token", "email")
    depts[2][3] = "dingtalk://tok/12"
    bad = write_xlsx(tmp_path / "bad.xlsx", {"方案": sheet, "任务清单": tasks, "人员": people, "部门": depts})
    assert problems_of(bad) == [
        "bad.xlsx · 工作表「部门」 · 第 3 行 · 「通知地址」列：钉钉通知地址（dingtalk://t...k）中的手机号不正确：@ 某人须写 11 位手机号，如 dingtalk://密钥@令牌/13800000000"
    ]


def test_routing_order_fallback_and_redaction():
    relay = "mailtos://duban:pa55word@smtp.example.edu.cn?from=duban@example.edu.cn"
    targets = targets_for(
        ["dingtalk://sec123@tok456/13800000001", "always=wecombot://key789", "email", "feishu://fs1"],
        email="zs@example.edu.cn",
        relay_url=relay,
    )
    assert [(t.kind, t.always, t.redacted) for t in targets] == [
        ("dingtalk", False, "dingtalk://****@t...6/13800000001"),
        ("wecom", True, "wecombot://k...9"),
        ("email", False, "mailtos://duban:****@smtp.example.edu.cn/zs@example.edu.cn"),
        ("feishu", False, "feishu://f...1"),
    ]
    # the relay is the last resort when "email" is not listed; nothing without an address
    assert [t.kind for t in targets_for(["wecombot://k1"], email="a@b.org", relay_url=relay)] == ["wecom", "email"]
    assert [t.kind for t in targets_for(["wecombot://k1"], email=None, relay_url=relay)] == ["wecom"]
    assert "pa55word" not in redact(relay) and redact(relay) == "mailtos://duban:****@smtp.example.edu.cn"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("smtp.example.edu.cn", "不是邮件服务器地址：应形如 mailtos://用户名:密码@smtp.example.edu.cn?from=duban@example.edu.cn"),
        ("wecombot://key123", "（wecombot://k...3）不是邮件地址：单位邮件服务器应写作 mailto:// 或 mailtos://"),
        (
            "mailtos://u:secretpw@smtp.x.org/a@x.org?from=d@x.org",
            "（mailtos://u:****@smtp.x.org/a@x.org）不应包含收件人：收件人按人员表中的邮箱逐人填写",
        ),
        ("mailtos://u:secretpw@smtp.x.org?from=d@x.org", None),
    ],
)
def test_relay_url_is_checked_at_start_up(monkeypatch, url, problem):
    assert relay_problem(url) == problem
    monkeypatch.setenv("DUBAN_SMTP_URL", url)
    from duban.settings import ConfigurationError, Settings

    if problem is None:
        assert Settings().smtp_url == url
    else:
        with pytest.raises(ConfigurationError) as err:
            Settings()
        assert str(err.value) == f"DUBAN_SMTP_URL {problem}" and "secretpw" not in str(err.value)


def test_split_never_cuts_a_line():
    cut = "\x1f"
    link = "https://duban.example.edu.cn/l/" + "x" * 120
    units = ["标题：督办提醒"] + [f"{n}. 任务 {n}\n说明文字" + "很长" * 40 + f"\n签收：{link}" for n in range(1, 30)]
    parts = split_chat(cut.join(units), 2048, cut)
    assert len(parts) > 3 and all(len(p.encode()) <= 2048 for p in parts)
    assert sum(p.count(link) for p in parts) == 29
    assert parts[0].startswith(f"（1/{len(parts)}）\n标题") and parts[-1].startswith(f"（续 {len(parts)}/{len(parts)}）")
    assert split_chat("短消息", 2048, cut) == ["短消息"]


def test_send_hours():
    assert parse_send_hours("08:00-18:00") == (dt.time(8), dt.time(18))
    assert parse_send_hours("全天") is None and parse_send_hours("always") is None
    with pytest.raises(SendHoursError, match="结束时间应晚于开始时间"):
        parse_send_hours("18:00-08:00")
    q = QuietHours(WorkCalendar(), TZ)
    at = lambda *a: dt.datetime(*a, tzinfo=TZ)  # noqa: E731
    assert q.next_allowed(at(2026, 11, 23, 9, 0)) is None
    assert q.next_allowed(at(2026, 11, 23, 7, 0)) == at(2026, 11, 23, 8, 0)
    assert q.next_allowed(at(2026, 11, 23, 18, 0)) == at(2026, 11, 24, 8, 0)
    # National Day holiday 2026: 10-01 … 10-07 off; the next working day is 10-08 (a Thursday)
    assert q.next_allowed(at(2026, 9, 30, 20, 0)) == at(2026, 10, 8, 8, 0)


@pytest.mark.parametrize(
    ("utc", "opens_beijing"),
    [
        # each side of the window, and each side of UTC midnight (08:00 in Beijing)
        ("2026-11-23T23:59:00+00:00", "2026-11-24T08:00"),  # Tue 07:59 Beijing, still Monday in UTC
        ("2026-11-24T00:00:00+00:00", None),  # Tue 08:00 Beijing: the window opens
        ("2026-11-24T09:59:00+00:00", None),  # Tue 17:59
        ("2026-11-24T10:00:00+00:00", "2026-11-25T08:00"),  # Tue 18:00: closed until Wednesday
        ("2026-11-24T15:59:00+00:00", "2026-11-25T08:00"),  # Tue 23:59
        ("2026-11-24T16:00:00+00:00", "2026-11-25T08:00"),  # Wed 00:00 Beijing, still Tuesday in UTC
        ("2026-11-24T19:30:00+00:00", "2026-11-25T08:00"),  # Wed 03:30
        ("2026-11-27T10:00:00+00:00", "2026-11-30T08:00"),  # Friday 18:00: Monday
        ("2026-11-28T02:00:00+00:00", "2026-11-30T08:00"),  # Saturday 10:00: Monday
    ],
)
def test_quiet_hours_at_every_side_of_the_window_and_of_utc_midnight(utc, opens_beijing):
    q = QuietHours(WorkCalendar(), TZ)
    opens = q.next_allowed(dt.datetime.fromisoformat(utc))
    assert (opens.astimezone(TZ).strftime("%Y-%m-%dT%H:%M") if opens else None) == opens_beijing


def test_settings_refuse_bad_send_hours(monkeypatch):
    from duban.settings import ConfigurationError, Settings

    monkeypatch.setenv("DUBAN_SEND_HOURS", "9-5")
    with pytest.raises(ConfigurationError, match="DUBAN_SEND_HOURS：发送时段“9-5”无法识别"):
        Settings()


# ---------------------------------------------------------------------------------------------
# CLI


def import_with_channels(tmp_path, chat_urls):
    plan = small_plan()
    people = {p["name"]: p for p in plan["people"]}
    people["教务处处长"]["notify"] = chat_urls
    path = write_yaml(tmp_path / "p.yaml", plan)
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 0, result.output
    # handed out at the launch meeting: the 签收 clock starts
    result = runner.invoke(app, ["announce", "--no-notice"])
    assert result.exit_code == 0, result.output


def test_notify_test_reports_each_channel(use_database, tmp_path, monkeypatch, smtp_server, webhook):
    from apprise.plugins.wecombot import NotifyWeComBot

    monkeypatch.setattr(NotifyWeComBot, "notify_url", webhook.url("/wecom/{key}"))
    monkeypatch.setenv("DUBAN_SMTP_URL", smtp_server.relay_url)
    webhook.respond("/wecom/badkey", 500, "no")
    import_with_channels(tmp_path, ["wecombot://goodkey", "wecombot://badkey"])
    from duban.cli.common import console

    monkeypatch.setattr(console, "width", 200)
    result = runner.invoke(app, ["notify", "test", "教务处处长"])
    assert result.exit_code == 1
    out = result.output
    assert "教务处处长（方案 demo）的通知渠道测试" in out
    assert "wecombot://g...y" in out and "wecombot://b...y" in out and f"mailto://127.0.0.1:{smtp_server.port}/jwc@example.org" in out
    assert out.count("成功") == 2 and "失败" in out and "HTTP 500" in out
    assert "3 个渠道中有 1 个发送失败，请核对上表中的地址后重试。" in out
    assert "goodkey" not in out and "badkey" not in out
    (mail,) = smtp_server.wait_for(1)
    assert mail.subject == "【督办系统】通知渠道测试" and "这是督办系统发送的测试消息" in mail.text()
    assert [r.path for r in webhook.requests] == ["/wecom/goodkey", "/wecom/badkey"]
    assert "教务处处长，您好" in webhook.requests[0].json["text"]["content"]
    # the person's own page (我的督办) was issued for the message's page_url: one reusable link
    from sqlalchemy import select

    from duban.db import session_scope
    from duban.models import Link, Person
    from duban.runtime import runtime

    with session_scope(runtime().engine) as s:
        mine = s.execute(select(Person.name, Link.task_id).join(Person, Person.id == Link.person_id).where(Link.action == "mine")).all()
    assert [tuple(r) for r in mine] == [("教务处处长", None)]


def test_notify_test_without_channels_and_unknown_person(use_database, tmp_path):
    import_with_channels(tmp_path, [])
    result = runner.invoke(app, ["notify", "test", "教务处处长"])
    assert result.exit_code == 1
    assert "教务处处长 没有可用的通知渠道：未设置 DUBAN_SMTP_URL（单位邮件服务器），通知地址也为空。" in result.output
    result = runner.invoke(app, ["notify", "test", "张三"])
    assert result.exit_code == 1 and "没有找到人员“张三”。请检查姓名，或先用 duban import 导入人员表。" in result.output


def test_notify_bulletin(use_database, tmp_path, monkeypatch, smtp_server):
    # outside demo mode (demo mode writes to the local outbox only), with a copy kept there too
    monkeypatch.setenv("DUBAN_DEMO", "0")
    monkeypatch.setenv("DUBAN_SECRET_KEY", "k" * 8 + "0123456789abcdefghijklmnopqrstuv")
    monkeypatch.setenv("DUBAN_OUTBOX_COPY", "1")
    monkeypatch.setenv("DUBAN_SMTP_URL", smtp_server.relay_url)
    monkeypatch.setenv("DUBAN_SEND_HOURS", "always")
    import_with_channels(tmp_path, [])
    preview = runner.invoke(app, ["notify", "bulletin", "--today", "2026-12-17", "--dry-run"])
    assert preview.exit_code == 0, preview.output
    # by hand on a Thursday: the plan's weekly 通报 (its setting), the first issue
    assert "测试方案督办通报（周通报·第 1 期）\n2026年12月14日至20日（截至 2026-12-17）" in preview.output
    assert "在办任务 4 项，逾期未完成 2 项，其中逾期超过 15 个工作日、列入通报 1 项。" in preview.output
    assert (
        "三、其他逾期事项\n1. [1] 集体备课——中期检查\n   牵头单位 教务处，责任人 教务处处长；完成时间 2026-12-15，已逾期 2 个工作日"
        in preview.output
    )
    assert "1. [1] 集体备课——制定方案\n   牵头单位 教务处，责任人 教务处处长；完成时间 2026-11-20，已逾期 19 个工作日" in preview.output
    assert (
        "1. 教务处 30.0 分（按期完成率 0.0%，累计逾期 21 个工作日，被督办 0 次，被退回 0 次）\n暂无到期事项，暂不计分、不排名：宣传部"
        in preview.output
    )
    assert "收件对象：党委书记、督办员" in preview.output and smtp_server.received == []
    assert "（预览：以上通报尚未印发、未发送，期号未占用。去掉 --dry-run 即可印发。）" in preview.output
    sent = runner.invoke(app, ["notify", "bulletin", "--today", "2026-12-17"])
    assert sent.exit_code == 0, sent.output
    assert "已印发方案 demo 的督办通报（周通报·第 1 期），2026年12月14日至20日：" in sent.output
    assert "党委书记：已发送（邮件、本地发件箱）" in sent.output  # DUBAN_OUTBOX_COPY keeps an outbox copy
    assert "通报已生成 2 份。" in sent.output
    mails = {m.rcpt_tos[0]: m for m in smtp_server.wait_for(2)}
    assert mails["sj@example.org"].subject == "【督办通报】测试方案（周通报·第 1 期，2026年12月14日至20日）：按期完成率 0.0%，逾期 2 项"
    assert mails["sj@example.org"].text().startswith("党委书记同志：")
    assert "<table" in mails["db@example.org"].html()
    again = runner.invoke(app, ["notify", "bulletin", "--today", "2026-12-17"])
    assert again.exit_code == 0 and "demo 第 1 期周通报（2026-12-17）已印发，本期不再印发（可加 --force 再印发一期）。" in again.output
    monthly = runner.invoke(app, ["notify", "bulletin", "--today", "2026-12-18", "--kind", "月"])
    assert "已印发方案 demo 的督办通报（月通报·第 1 期），2026年12月：" in monthly.output
    forced = runner.invoke(app, ["notify", "bulletin", "--today", "2026-12-18", "--force"])
    assert "已印发方案 demo 的督办通报（周通报·第 2 期），2026年12月14日至20日：" in forced.output
    bad = runner.invoke(app, ["notify", "bulletin", "--kind", "季"])
    assert bad.exit_code == 2 and "通报类别“季”不正确，可填 week（周通报）或 month（月通报）。" in bad.output
    unknown = runner.invoke(app, ["notify", "bulletin", "--plan", "nope", "--today", "2026-12-17"])
    assert unknown.exit_code == 1 and "没有编号为“nope”的方案。已有方案：demo" in unknown.output


@pytest.mark.parametrize("demo", ["1", "0"])
def test_demo_mode_delivers_everything_to_the_local_outbox_at_any_hour(use_database, tmp_path, monkeypatch, smtp_server, webhook, demo):
    """At 23:50 on a working day, with a relay and chat URLs configured: demo mode writes every digest to
    the outbox at once and reaches nobody; outside demo mode the same digests wait for the window."""
    import time_machine

    from duban.runtime import runtime
    from duban.sweep.decisions import decide
    from duban.sweep.delivery import deliver
    from duban.sweep.digests import assemble
    from notifications.outbox import OutboxChannel

    monkeypatch.setenv("DUBAN_DEMO", demo)
    monkeypatch.setenv("DUBAN_SECRET_KEY", "k" * 8 + "0123456789abcdefghijklmnopqrstuv")
    monkeypatch.setenv("DUBAN_SMTP_URL", smtp_server.relay_url)
    night = dt.datetime(2026, 11, 30, 23, 50, tzinfo=ZoneInfo("Asia/Shanghai"))
    with time_machine.travel(night - dt.timedelta(days=7), tick=False):  # imported and announced the week before
        import_with_channels(tmp_path, [f"json://127.0.0.1:{webhook.port}/hook"])
    with time_machine.travel(night, tick=False):
        rt = runtime()
        day = night.date()
        decide(rt.engine, today=day, cal=rt.calendar, tz=rt.tz)
        assembled = assemble(rt.engine, today=day, links=rt.links(day), channel=rt.channel.name)
        result = deliver(rt.engine, rt.channel, now=night, **rt.deliver_options(day))
    outbox = sorted(p.name for p in (rt.settings.outbox_path / "2026-11-30").glob("*.txt")) if demo == "1" else []
    if demo == "1":
        assert isinstance(rt.channel, OutboxChannel)
        assert (assembled, result.sent, result.deferred) == (5, 5, 0)
        assert [name.split("-", 1)[1] for name in outbox] == [
            "党委书记.txt",
            "分管教学副校长.txt",
            "教务处处长.txt",
            "教务处副处长.txt",
            "宣传部部长.txt",
        ]
    else:
        assert not isinstance(rt.channel, OutboxChannel)
        assert (assembled, result.sent, result.deferred) == (5, 0, 5)
    assert smtp_server.received == [] and webhook.requests == []
