"""Assembling digests from the ledger: one entry per task for each recipient, each distinct action
link issued once, the office's contacts on every digest."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from duban.db import session_scope
from duban.links import LinkMaker
from duban.models import Digest, Link, Notification
from duban.plans.importer import import_plan
from duban.sweep.delivery import deliver
from duban.sweep.digests import assemble
from duban.vocabulary import LedgerStatus, MessageKind
from tests.factories import small_plan, write_yaml
from tests.web_helpers import milestone_id, person_id, task_id

TZ = ZoneInfo("Asia/Shanghai")
MON = dt.date(2026, 11, 23)
NOW = dt.datetime(2026, 11, 23, 8, 30, tzinfo=TZ)
SECRET = "k" * 8 + "0123456789abcdefghijklmnopqrstuv"
LINKS = LinkMaker("https://duban.example.edu.cn", SECRET, MON)
OWNER = {"owner": "教务处处长", "department": "教务处"}


def _plan(engine, tmp_path):
    plan = small_plan()
    next(p for p in plan["people"] if p["name"] == "督办员")["mobile"] = "13900000009"
    import_plan(engine, write_yaml(tmp_path / "p.yaml", plan), now=dt.datetime(2026, 11, 2, 9, 0, tzinfo=TZ))


def _item(engine, key, kind, recipient, code, *, seq=None, level=0, due=None, days=0, **data):
    base = {"code": code, "title": {"1": "集体备课", "2": "建设课程资源库"}[code]}
    if seq is not None:
        base.update(milestone={1: "制定方案", 2: "中期检查"}[seq], seq=seq, final=False)
    with session_scope(engine) as s:
        s.add(
            Notification(
                key=key,
                plan_id=1,
                task_id=task_id(engine, code),
                milestone_id=milestone_id(engine, code, seq) if seq else None,
                recipient_id=person_id(engine, recipient),
                kind=kind,
                level=level,
                due_date=due,
                days=days,
                decided_on=MON,
                status=LedgerStatus.PENDING,
                data={**base, **data},
            )
        )


def test_three_items_on_one_task_are_one_entry_with_each_link_once(engine, tmp_path):
    _plan(engine, tmp_path)
    _item(engine, "o1", MessageKind.OVERDUE, "教务处处长", "1", seq=1, due=dt.date(2026, 11, 20), days=-1)
    _item(engine, "d2", MessageKind.DUE, "教务处处长", "1", seq=2, due=dt.date(2026, 11, 25), days=2)
    _item(engine, "a1", MessageKind.ACK, "教务处处长", "1", days=-15, assigned_on="2026-11-02", waited=15)
    _item(engine, "e2", MessageKind.ESCALATION, "教务处处长", "2", level=1, days=-15, ack=True, assigned_on="2026-11-02", **OWNER)
    assert assemble(engine, today=MON, links=LINKS, now=NOW) == 1
    sent = []
    assert deliver(engine, sent.append, now=NOW, links=LINKS).sent == 1
    [out] = sent
    assert out.subject == "【督办提醒】2026-11-23 教务处处长：已逾期 1 项，请督促落实 1 项"
    body = out.body
    first = body.index("1. [1] 集体备课\n")
    lines = body[first : body.index("\n\n", first)].splitlines()
    assert [line.split("：https://")[0] for line in lines] == [
        "1. [1] 集体备课",
        "   · 第 1 步「制定方案」完成时间 2026-11-20，已逾期 1 个工作日，请尽快办理或申请延期",
        "   · 第 2 步「中期检查」完成时间 2026-11-25，还有 2 个工作日",
        "   · 该任务于 2026-11-02 下达给您，已 15 个工作日仍未签收，请及时签收",
        "   签收",
        "   反馈进展",
        "   提交办结（制定方案）",
        "   提交办结（中期检查）",
        "   申请延期（制定方案）",
        "   申请延期（中期检查）",
    ]
    assert len(set(lines[4:])) == 6  # six distinct links
    assert body.endswith(
        "以上事项中，您负责办理的任务，请点击链接直接办理（签收、反馈进展、提交办结、申请延期）；"
        "本部门的督办任务，请督促责任人按时落实，点击“查看任务”可了解任务详情和办理情况。链接无需登录。\n"
        "如有疑问，请联系领导小组办公室：督办员 13900000009。\n本通知由督办系统自动发送，同一事项同一阶段只提醒一次。\n"
    )
    with session_scope(engine) as s:
        digest = s.scalars(select(Digest)).one()
        links = s.scalar(select(func.count()).select_from(Link))
        queued = sorted(s.scalars(select(Notification.status)))
    assert links == 8  # six for task 1, one 查看任务 for task 2: each issued once; and the reader's own page (我的督办)
    assert digest.items == 2 and [len(e["asks"]) for e in digest.payload["items"]] == [3, 1]
    assert digest.payload["office_contacts"] == [["督办员", "13900000009"]]
    assert queued == ["sent"] * 4


def test_an_approval_waiting_in_a_digest_says_how_long(engine, tmp_path):
    _plan(engine, tmp_path)
    _item(
        engine,
        "w1",
        MessageKind.APPROVAL_WAITING,
        "督办员",
        "1",
        seq=1,
        due=dt.date(2026, 11, 20),
        days=-4,
        waited=4,
        submitted_on="2026-11-17",
        request_kind="completion",
        note="方案已印发",
        **OWNER,
    )
    assemble(engine, today=MON, links=LINKS, now=NOW)
    sent = []
    deliver(engine, sent.append, now=NOW, links=LINKS)
    [out] = sent
    assert out.subject == "【待审核】2026-11-23 督办员：待您审核 1 项"
    assert (
        "1. [1] 集体备课\n   第 1 步「制定方案」：办结申请已于 2026-11-17 提交，已等待审核 4 个工作日，请尽快办理。"
        "责任人 教务处处长（教务处） 已提交办结，办结说明：方案已印发。请审核佐证材料后办结或退回\n" in out.body
    )
    assert "今天到期" not in out.body and "已逾期" not in out.body
