"""Digest wording, rendered from payloads built here: one entry per task, the subject and the footer
by who reads it (never an action that is not linked), facts per kind (approvals wait, a due date on
a weekend names its last working day), re-notices, 任务下达 notices, and payloads written before
entries were grouped."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from duban.vocabulary import Audience, LinkAction, MessageKind
from notifications.channel import Outgoing
from notifications.channels import split_chat
from notifications.digest import describe, render_subject
from notifications.render import CUT, render_message

BASE = "https://duban.example.edu.cn/l/"
FRI, SUN = dt.date(2026, 11, 13), dt.date(2026, 11, 15)
OWNER = {"owner": "教务处处长", "department": "教务处"}


def ask(kind: str, line: str, *, level: int = 0, due: str | None = None, days: int = 0, **facts: Any) -> dict[str, Any]:
    return {"kind": kind, "level": level, "due": due, "days": days, "line": line, "facts": facts}


def entry(code: str, title: str, asks: list[dict[str, Any]], links: dict[str, int] | None = None) -> dict[str, Any]:
    """A new-format entry; ``links``: action -> link id."""
    head, links = asks[0], links or {}
    return {
        "kind": head["kind"],
        "level": head["level"],
        "code": code,
        "title": title,
        "milestone": "",
        "task_id": int(code.replace(".", "")),
        "due": head["due"],
        "days": head["days"],
        "line": head["line"],
        "links": [[LinkAction(a).label, lid] for a, lid in links.items()],
        "actions": list(links),
        "sort": [0, head["days"], code, 1],
        "asks": asks,
    }


def payload(items: list[dict[str, Any]], recipient: str = "教务处处长", **extra: Any) -> dict[str, Any]:
    return {
        "recipient": recipient,
        "today": "2026-11-23",
        "plan_name": "测试方案",
        "office": "督办员",
        "office_contacts": [["督办员", "13900000009"], ["督办助理", ""]],
        "items": items,
        **extra,
    }


def outgoing(p: dict[str, Any]) -> Outgoing:
    lids = [lid for e in p["items"] for _, lid in e["links"]]
    return Outgoing(1, 1, p["recipient"], None, dt.date(2026, 11, 23), render_subject(p), p, 0, urls={lid: f"{BASE}{lid}" for lid in lids})


CONTACT = "如有疑问，请联系领导小组办公室：督办员 13900000009、督办助理。\n本通知由督办系统自动发送，同一事项同一阶段只提醒一次。\n"


def test_a_task_with_three_asks_is_one_entry_with_its_links_once():
    asks = [
        ask(
            MessageKind.OVERDUE,
            "第 1 步「制定方案」完成时间 2026-11-20，已逾期 1 个工作日，请尽快办理或申请延期",
            due="2026-11-20",
            days=-1,
        ),
        ask(MessageKind.DUE, "第 2 步「中期检查」完成时间 2026-11-25，还有 2 个工作日", due="2026-11-25", days=2),
        ask(MessageKind.ACK, "该任务于 2026-11-02 下达给您，已 15 个工作日仍未签收，请及时签收", days=-15, assigned_on="2026-11-02"),
    ]
    links = {LinkAction.ACK: 1, LinkAction.PROGRESS: 2, LinkAction.DONE: 3, LinkAction.EXTEND: 4}
    out = outgoing(payload([entry("1", "集体备课", asks, links)]))
    assert out.subject == "【督办提醒】2026-11-23 教务处处长：已逾期 1 项"
    assert out.body == (
        "教务处处长，您好：\n\n截至 2026-11-23，请您关注以下 1 项督办事项（测试方案）。\n\n"
        "【已逾期，请尽快办理】1 项\n1. [1] 集体备课\n"
        "   · 第 1 步「制定方案」完成时间 2026-11-20，已逾期 1 个工作日，请尽快办理或申请延期\n"
        "   · 第 2 步「中期检查」完成时间 2026-11-25，还有 2 个工作日\n"
        "   · 该任务于 2026-11-02 下达给您，已 15 个工作日仍未签收，请及时签收\n"
        f"   签收：{BASE}1\n   反馈进展：{BASE}2\n   提交办结：{BASE}3\n   申请延期：{BASE}4\n\n"
        "以上事项请点击链接直接办理（签收、反馈进展、提交办结、申请延期）。链接无需登录。\n" + CONTACT
    )
    html = render_message(out).html or ""
    assert html.count(f'href="{BASE}') == 4
    assert "完成时间 2026-11-20 · 已逾期 1 个工作日" in html and "完成时间 2026-11-25 · 还有 2 个工作日" in html
    assert "2026-11-02 下达 · 已 15 个工作日未签收" in html


def test_a_head_with_only_view_links_is_not_told_to_acknowledge_or_extend():
    line = "部门负责人督办：责任人 教务处副处长（教务处），第 1 步「建设方案」完成时间 2026-11-18，已逾期 3 个工作日，请督促落实"
    items = [entry("2", "建设课程资源库", [ask(MessageKind.ESCALATION, line, level=1, due="2026-11-18", days=-3)], {LinkAction.VIEW: 7})]
    out = outgoing(payload(items))
    assert out.subject == "【请督促落实】2026-11-23 教务处处长：请督促落实 1 项"
    body = out.body
    assert body.startswith("教务处处长，您好：\n\n截至 2026-11-23，以下 1 项任务需要您督促落实（测试方案）。\n")
    assert body.endswith("以上事项请督促责任人按时落实，点击“查看任务”可了解任务详情和办理情况。链接无需登录。\n" + CONTACT)
    assert "签收" not in body and "申请延期" not in body and "直接办理" not in body
    chat = render_message(out).chat
    assert "签收" not in chat and "申请延期" not in chat


@pytest.mark.parametrize("grouped", [True, False], ids=["new", "old payload"])
def test_approvals_say_how_long_they_waited_and_have_no_due_label(grouped):
    waiting = "第 1 步「制定方案」：办结申请已于 2026-11-17 提交，已等待审核 4 个工作日，请尽快办理。责任人 教务处处长（教务处） 已提交办结"
    asks = [
        ask(MessageKind.APPROVAL_WAITING, waiting, due="2026-11-20", days=-4, waited=4, submitted_on="2026-11-17"),
        ask(MessageKind.APPROVAL, "「中期检查」：责任人 教务处处长（教务处） 已提交办结", due="2026-11-23", submitted_on="2026-11-23"),
    ]
    links = {LinkAction.REVIEW: 5, LinkAction.QUEUE: 6}
    if grouped:
        items = [entry("1", "集体备课", asks, links)]
    else:  # one entry per item, as written before entries were grouped
        items = [{**entry("1", "集体备课", [a], links), "milestone": "制定方案"} for a in asks]
        for e in items:
            del e["asks"], e["actions"]
    out = outgoing(payload(items, recipient="督办员"))
    assert out.subject == "【待审核】2026-11-23 督办员：待您审核 " + ("1 项" if grouped else "2 项")
    html, text = render_message(out).html or "", out.body
    assert "今天到期" not in html + text and "已逾期" not in html + text
    if grouped:
        assert "2026-11-17 提交 · 已等待审核 4 个工作日" in html and "今天提交，等待审核" in html
    assert text.endswith("以上事项请及时审核：点击“审核”逐项办理，或点击“查看待审核事项”集中办理。链接无需登录。\n" + CONTACT)


@pytest.mark.parametrize(
    "kind, due, days, data, today, line",
    [
        (
            MessageKind.DUE,
            SUN,
            1,
            {"due_workday": "2026-11-13"},
            dt.date(2026, 11, 12),
            "完成时间 2026-11-15（星期日），最后一个工作日为 11月13日（星期五），还有 1 个工作日",
        ),
        (
            MessageKind.DUE,
            SUN,
            0,
            {"due_workday": "2026-11-13"},
            FRI,
            "完成时间 2026-11-15（星期日），最后一个工作日为今天（11月13日，星期五），请抓紧办理",
        ),
        (
            MessageKind.DUE,
            SUN,
            0,
            {"due_workday": "2026-11-13"},
            None,
            "完成时间 2026-11-15（星期日），最后一个工作日为今天（11月13日，星期五），请抓紧办理",
        ),
        (MessageKind.DUE, SUN, 0, {}, FRI, "完成时间 2026-11-15，最后一个工作日为今天（11月13日，星期五），请抓紧办理"),
        (MessageKind.DUE, SUN, 0, {"due_workday": "2026-11-13"}, SUN, "完成时间 2026-11-15（星期日），今天到期"),
        (MessageKind.DUE, FRI, 0, {}, FRI, "完成时间 2026-11-13，今天到期"),
        (MessageKind.DUE, FRI, 0, {}, None, "完成时间 2026-11-13，今天到期"),  # a preview without the day
        (
            MessageKind.OVERDUE,
            SUN,
            -2,
            {"due_workday": "2026-11-13"},
            dt.date(2026, 11, 17),
            "完成时间 2026-11-15（星期日），已逾期 2 个工作日，请尽快办理或申请延期",
        ),
    ],
)
def test_a_due_date_on_a_non_working_day(kind, due, days, data, today, line):
    assert describe(kind, 0, due, days, data, today=today) == line


def test_a_sunday_due_date_announced_on_friday():
    line = describe(MessageKind.DUE, 0, SUN, 0, {"due_workday": "2026-11-13", "milestone": "制定方案", "seq": 1}, today=FRI, step=True)
    assert line == "第 1 步「制定方案」完成时间 2026-11-15（星期日），最后一个工作日为今天（11月13日，星期五），请抓紧办理"
    p = payload([entry("1", "集体备课", [ask(MessageKind.DUE, line, due="2026-11-15", days=0, due_workday="2026-11-13")])])
    p["today"] = "2026-11-13"
    out = outgoing(p)
    assert "今天到期" not in out.body
    assert "完成时间 2026-11-15（星期日） · 最后一个工作日为今天（11月13日，星期五）" in (render_message(out).html or "")


def test_a_renotice_after_the_last_level():
    data = {**OWNER, "renotice": 2, "milestone": "制定方案", "seq": 1}
    line = describe(MessageKind.ESCALATION, 3, dt.date(2026, 10, 20), -25, data, step=True)
    assert (
        line == "持续督办（第 2 次）：责任人 教务处处长（教务处），第 1 步「制定方案」完成时间 2026-10-20，已逾期 25 个工作日，请督促落实"
    )
    items = [
        entry("1", "集体备课", [ask(MessageKind.ESCALATION, line, level=3, due="2026-10-20", days=-25, renotice=2)], {LinkAction.VIEW: 9})
    ]
    out = outgoing(payload(items, recipient="督办员"))
    assert out.subject == "【督办提醒】2026-11-23 督办员：请督促落实 1 项"
    assert "1. [1] 集体备课\n   持续督办（第 2 次）：" in out.body
    assert "\n以上事项请跟踪督办、协调推进，点击“查看任务”可了解任务详情和办理情况。链接无需登录。\n" in out.body


NOTICE = {
    "code": "01.2.2",
    "title": "集体备课",
    "statement": "每学期组织思政课教师集体备课不少于 4 次，形成教案集。",
    "done_criteria": "集体备课记录 4 份、教案集 1 册",
    "deadline": "2026年12月底前",
    "milestones": [
        {"seq": 1, "title": "制定方案", "due": "2026-11-20", "final": False},
        {"seq": 2, "title": "中期检查", "due": "2026-12-15", "final": False},
        {"seq": 3, "title": "", "due": "2026-12-31", "final": True},
    ],
    "owner": "教务处处长",
    "department": "教务处",
    "supervisor": "分管教学副校长",
    "partners": ["宣传部", "马克思主义学院"],
    "grace_until": "2026-11-30",
}


def _assignment(notice: dict[str, Any]) -> dict[str, Any]:
    a = ask(MessageKind.ASSIGNMENT, describe(MessageKind.ASSIGNMENT, 0, None, 0, notice))
    a["notice"] = {k: v for k, v in notice.items() if k not in ("code", "title")}
    return entry("01.2.2", "集体备课", [a], {LinkAction.ACK: 1, LinkAction.PROGRESS: 2})


def test_an_assignment_notice_in_plain_text():
    out = outgoing(payload([_assignment(NOTICE)]))
    assert out.subject == "【任务下达】2026-11-23 教务处处长：新下达任务 1 项"
    assert out.body == (
        "教务处处长，您好：\n\n现将以下 1 项任务下达给您（测试方案），任务书和时间表如下。\n\n"
        "【新下达任务，请及时签收】1 项\n1. [01.2.2] 集体备课\n"
        "   现将该任务下达给您，请及时签收，并按时间表推进落实。其中已到期事项，请于 2026-11-30 前办理或申请延期\n"
        "   任务书：每学期组织思政课教师集体备课不少于 4 次，形成教案集。\n"
        "   完成标志：集体备课记录 4 份、教案集 1 册\n"
        "   完成时限：2026年12月底前\n"
        "   牵头单位：教务处（责任人：教务处处长）\n"
        "   配合单位：宣传部、马克思主义学院\n"
        "   分管校领导：分管教学副校长\n"
        "   时间表：\n"
        "     第 1 步  2026-11-20  制定方案（已到期）\n"
        "     第 2 步  2026-12-15  中期检查\n"
        "     最终完成  2026-12-31  完成全部任务\n"
        "   其中已到期事项，请于 2026-11-30 前办理或申请延期。\n"
        f"   签收：{BASE}1\n   反馈进展：{BASE}2\n\n"
        "以上事项请点击链接直接办理（签收、反馈进展）。链接无需登录。\n" + CONTACT
    )


def test_an_assignment_notice_in_html_and_chat():
    long = {**NOTICE, "statement": "落实立德树人根本任务，" * 200, "grace_until": None}
    message = render_message(outgoing(payload([_assignment(long)])))
    html = message.html or ""
    assert "<title>【任务下达】2026-11-23 教务处处长：新下达任务 1 项</title>" in html
    assert '>完成标志</th><td style="padding:4px 0;">集体备课记录 4 份、教案集 1 册</td>' in html
    assert '<div>第 1 步 · 2026-11-20 · 制定方案 <span style="color:#b91c1c;">（已到期）</span></div>' in html
    assert "<div>最终完成 · 2026-12-31 · 完成全部任务</div>" in html
    assert "其中已到期事项" not in html  # no grace: nothing was due at the announcement
    assert long["statement"] in html  # the mail carries the task book whole
    # chat: the task book is shortened, every part within WeCom's 2048 bytes, the links whole
    assert message.chat.startswith("【任务下达】教务处处长，您好：现将以下 1 项任务下达给您（测试方案），任务书和时间表如下。")
    assert "…（全文见“查看任务”）" in message.chat
    parts = split_chat(message.chat, 2048, CUT)
    assert all(len(p.encode()) <= 2048 for p in parts) and sum(p.count(BASE) for p in parts) == 2


def test_a_payload_from_before_grouping_still_renders():
    old = {
        "recipient": "教务处处长",
        "today": "2026-11-23",
        "plan_name": "测试方案",
        "office": "督办员",
        "items": [
            {
                "kind": "overdue",
                "level": 0,
                "code": "1",
                "title": "集体备课",
                "milestone": "制定方案",
                "task_id": 1,
                "due": "2026-11-20",
                "days": -1,
                "line": "完成时间 2026-11-20，已逾期 1 个工作日，请尽快办理或申请延期",
                "links": [["反馈进展", 2], ["提交办结", 3], ["申请延期", 4]],
                "sort": [0, -1, "1", 1],
            },
            {
                "kind": "ack",
                "level": 0,
                "code": "1",
                "title": "集体备课",
                "milestone": "",
                "task_id": 1,
                "due": None,
                "days": -15,
                "line": "该任务于 2026-11-02 下达给您，已 15 个工作日仍未签收，请及时签收",
                "links": [["签收", 1], ["反馈进展", 2]],
                "sort": [5, -15, "1", 2],
            },
        ],
    }
    out = outgoing(old)
    assert out.subject == "【督办提醒】2026-11-23 教务处处长：已逾期 1 项，待签收、待反馈 1 项"
    assert out.body == (
        "教务处处长，您好：\n\n截至 2026-11-23，请您关注以下 2 项督办事项（测试方案）。\n\n"
        "【已逾期，请尽快办理】1 项\n1. [1] 集体备课——制定方案\n"
        "   完成时间 2026-11-20，已逾期 1 个工作日，请尽快办理或申请延期\n"
        f"   反馈进展：{BASE}2\n   提交办结：{BASE}3\n   申请延期：{BASE}4\n\n"
        "【待签收、待反馈】1 项\n1. [1] 集体备课\n"
        "   该任务于 2026-11-02 下达给您，已 15 个工作日仍未签收，请及时签收\n"
        f"   签收：{BASE}1\n   反馈进展：{BASE}2\n\n"
        "以上事项请点击链接直接办理（签收、反馈进展、提交办结、申请延期）。链接无需登录。\n"
        "如有疑问，请联系督办员。\n本通知由督办系统自动发送，同一事项同一阶段只提醒一次。\n"
    )
    html = render_message(out).html or ""
    assert "完成时间 2026-11-20 · 已逾期 1 个工作日" in html


L1 = (MessageKind.ESCALATION, 1)
L2 = (MessageKind.ESCALATION, 2)
L3 = (MessageKind.ESCALATION, 3)


@pytest.mark.parametrize(
    "kinds, subject, footer",
    [
        ([(MessageKind.OVERDUE, 0)], "【督办提醒】2026-11-23 某某：已逾期 1 项", "以上事项请点击链接直接办理（反馈进展）。"),
        (
            [(MessageKind.ASSIGNMENT, 0), (MessageKind.DUE, 0)],
            "【任务下达】2026-11-23 某某：新下达任务 1 项，即将到期 1 项",
            "以上事项请点击链接直接办理（反馈进展）。",
        ),
        ([L1], "【请督促落实】2026-11-23 某某：请督促落实 1 项", "以上事项请督促责任人按时落实。"),
        (
            [L1, L2],
            "【请督促落实】2026-11-23 某某：请督促落实 2 项",
            "以上事项中，本部门的督办任务，请督促责任人按时落实；您分管部门的督办任务，请督促分管部门按时落实。",
        ),
        ([L3], "【督办提醒】2026-11-23 某某：请督促落实 1 项", "以上事项请跟踪督办、协调推进。"),
        ([(MessageKind.APPROVAL, 0)], "【待审核】2026-11-23 某某：待您审核 1 项", "以上事项请及时审核。"),
        ([(MessageKind.REVIEW_VERDICTS, 0)], "【待审核】2026-11-23 某某：待您审核 1 项", "以上事项请及时审核。"),
        (
            [(MessageKind.APPROVAL, 0), L3],
            "【督办提醒】2026-11-23 某某：待您审核 1 项，请督促落实 1 项",
            "以上事项中，待您审核的申请，请及时审核；列入办公室督办的任务，请跟踪督办、协调推进。",
        ),
        ([(MessageKind.UNREACHABLE, 0)], "【督办提醒】2026-11-23 某某：系统提示 1 项", "以上事项请按提示处理。"),
    ],
)
def test_subject_and_footer_by_role(kinds, subject, footer):
    """Each item its own task; the owner's tasks carry a 反馈进展 link, the others none."""
    items = [
        entry(
            str(i + 1),
            f"任务{i + 1}",
            [ask(kind, "……", level=level)],
            {LinkAction.PROGRESS: i + 1} if level == 0 and kind in (MessageKind.OVERDUE, MessageKind.DUE, MessageKind.ASSIGNMENT) else {},
        )
        for i, (kind, level) in enumerate(kinds)
    ]
    out = outgoing(payload(items, recipient="某某"))
    assert out.subject == subject
    assert f"\n{footer}" in out.body


def test_a_group_bot_copy_says_it_is_a_copy():
    line = "部门负责人督办：责任人 教务处副处长（教务处），完成时间 2026-11-18，已逾期 3 个工作日，请督促落实"
    p = payload(
        [entry("2", "建设课程资源库", [ask(MessageKind.ESCALATION, line, level=1, due="2026-11-18", days=-3)])], recipient="教务处各位同事"
    )
    p["audience"] = Audience.DEPARTMENT
    assert "\n以上为今日督办事项的抄送，请协助责任人按时落实；办理请使用责任人本人收到的链接。\n" in outgoing(p).body
