"""Store-level actions (duban.actions, duban.approvals, duban.relink) on SQLite and PostgreSQL: what
each one writes, and the milestone life cycle: ack → in progress → submitted → done / returned;
extensions."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from duban import actions, approvals, relink
from duban.action_common import ActionError, Origin
from duban.db import session_scope
from duban.evidence import StoredFile
from duban.links import LinkMaker, LinkRefused, resolve
from duban.models import Evidence, Link, Milestone, Task
from duban.rules.calendar import WorkCalendar
from duban.sweep.decisions import decide
from duban.vocabulary import EventKind
from tests.factories import import_announced
from tests.web_helpers import (
    SECRET,
    TZ,
    events,
    import_small,
    ledger,
    make_link,
    milestone,
    milestone_id,
    plan_definition,
    requests,
)

NOW = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 11, 30)
ORIGIN = Origin(ip="10.1.2.3", user_agent="Mozilla/5.0 wxwork/4.1")


@pytest.fixture
def db(engine, tmp_path):
    import_small(engine, tmp_path)
    return engine


def act(engine, token, fn, **kw):
    with session_scope(engine) as s:
        r = resolve(s, token, secret=SECRET, today=TODAY, for_update=True)
        return fn(s, r, ORIGIN, now=NOW, **kw)


def test_acknowledge_marks_task_and_open_milestones(db):
    tok = make_link(db, "教务处处长", "ack", "1")
    out = act(db, tok, actions.acknowledge)
    assert out.message.startswith("已签收")
    with session_scope(db) as s:
        task = s.scalar(select(Task).where(Task.code == "1"))
        assert task.acknowledged_at is not None
        states = s.scalars(select(Milestone.status).where(Milestone.task_id == task.id).order_by(Milestone.seq)).all()
        assert states == ["in_progress", "in_progress", "in_progress"]
        link = s.scalar(select(Link).where(Link.action == "ack"))
        assert link.used_at is not None
    [ev] = events(db, "acknowledged")
    assert (ev.actor, ev.channel) == ("教务处处长", "link")
    assert ev.data == {"link": link.id, "action": "ack", "ip": "10.1.2.3", "agent": "Mozilla/5.0 wxwork/4.1"}
    # the same link again: refused as used
    with pytest.raises(LinkRefused) as err, session_scope(db) as s:
        resolve(s, tok, secret=SECRET, today=TODAY)
    assert err.value.reason == "used" and err.value.renewable


def test_progress_report_with_evidence_counts_for_the_sweep(db):
    tok = make_link(db, "教务处处长", "progress", "1")
    f = StoredFile("记录.pdf", "ab/" + "ab" * 32, "application/pdf", 123, "ab" * 32)
    act(db, tok, actions.report_progress, text="已完成第一次集体备课", urls=["https://example.edu.cn/a"], files=[f])
    [ev] = events(db, EventKind.PROGRESS_REPORTED)
    assert ev.data["text"] == "已完成第一次集体备课" and ev.data["acknowledged"] is True
    with session_scope(db) as s:
        rows = s.scalars(select(Evidence).order_by(Evidence.id)).all()
        assert [(e.kind, e.url, e.filename, e.event_id) for e in rows] == [
            ("url", "https://example.edu.cn/a", None, ev.id),
            ("file", None, "记录.pdf", ev.id),
        ]
    with pytest.raises(ActionError, match="请填写工作进展"):
        act(db, make_link(db, "教务处处长", "progress", "1"), actions.report_progress, text="   ")


def test_submit_waits_for_the_office_then_approval_closes_it(db):
    mid = milestone_id(db, "1", 1)
    tok = make_link(db, "教务处处长", "done", "1", milestone=mid)
    out = act(db, tok, actions.submit_done, today=TODAY, note="方案已印发")
    assert out.notify == {__import__("tests.web_helpers", fromlist=["person_id"]).person_id(db, "督办员")}
    [req] = requests(db)
    assert (req.kind, req.status, req.note, req.milestone_id) == ("completion", "pending", "方案已印发", mid)
    assert milestone(db, mid).status == "submitted"
    [item] = ledger(db, "approval")
    assert item.key == f"approval:r{req.id}:p{item.recipient_id}"
    assert item.data["owner"] == "教务处处长" and item.data["request_kind"] == "completion"
    # the sweep's LinkMaker gives the reviewer a review link for this request and the queue
    specs = LinkMaker("https://x", SECRET, TODAY).specs(item, 1)
    assert [(s.action, s.request_id, s.task_id is None) for s in specs] == [("review", req.id, False), ("queue", None, True)]
    # the rules skip a submitted milestone: no overdue reminder for it any more
    decided = decide(db, today=TODAY, cal=WorkCalendar(), tz=TZ)
    assert not [n for n in ledger(db, "overdue") if n.milestone_id == mid]
    assert decided.decided >= 1

    review = make_link(db, "督办员", "review", "1", milestone=mid, request=req.id)
    out = act(db, review, approvals.decide, today=TODAY, request_id=None, decision="approve")
    assert out.message == "已审核通过，里程碑「制定方案」办结。"
    m = milestone(db, mid)
    assert m.status == "done" and m.completed_at is not None
    [req] = requests(db)
    assert req.status == "approved" and req.decided_by_id is not None
    [notice] = ledger(db, "approved")
    assert notice.data["reviewer"] == "督办员"
    # the owner's other links of that milestone stop working
    extend = make_link(db, "教务处处长", "extend", "1", milestone=milestone_id(db, "1", 2))
    with pytest.raises(LinkRefused) as err, session_scope(db) as s:
        resolve(s, make_link(db, "教务处处长", "done", "1", milestone=mid), secret=SECRET, today=TODAY)
    assert err.value.reason == "closed"
    with session_scope(db) as s:
        assert resolve(s, extend, secret=SECRET, today=TODAY).milestone.seq == 2


def test_return_reaches_the_owner_and_reminders_resume(db):
    mid = milestone_id(db, "1", 1)
    act(db, make_link(db, "教务处处长", "done", "1", milestone=mid), actions.submit_done, today=TODAY, note="已完成")
    [req] = requests(db)
    queue = make_link(db, "督办员", "queue", None)
    with pytest.raises(ActionError, match="请填写退回原因"):
        act(db, queue, approvals.decide, today=TODAY, request_id=req.id, decision="return", note="")
    act(db, queue, approvals.decide, today=TODAY, request_id=req.id, decision="return", note="缺少印发文件")
    m = milestone(db, mid)
    assert (m.status, m.submitted_at) == ("in_progress", None)
    [notice] = ledger(db, "returned")
    assert notice.data["reason"] == "缺少印发文件"
    assert notice.recipient_id == __import__("tests.web_helpers", fromlist=["person_id"]).person_id(db, "教务处处长")
    from notifications.digest import describe

    assert describe("returned", 0, m.due_date, 0, notice.data) == (
        "您提交的办结已被督办员退回，退回原因：缺少印发文件。请补充完善后重新提交（完成时间 2026-11-20）"
    )
    decide(db, today=TODAY, cal=WorkCalendar(), tz=TZ)
    assert [n.milestone_id for n in ledger(db, "overdue")].count(mid) == 1
    # the queue link is not used up; the decided request cannot be decided again
    with pytest.raises(ActionError, match="无需重复审核"):
        act(db, queue, approvals.decide, today=TODAY, request_id=req.id, decision="approve")


def test_extension_approved_moves_the_date_and_keeps_the_baseline(db):
    mid = milestone_id(db, "1", 2)
    tok = make_link(db, "教务处处长", "extend", "1", milestone=mid)
    with pytest.raises(ActionError, match="须晚于目前的完成时间 2026-12-15"):
        act(db, tok, actions.request_extension, today=TODAY, new_due=dt.date(2026, 12, 10), reason="x")
    act(db, tok, actions.request_extension, today=TODAY, new_due=dt.date(2027, 1, 15), reason="寒假前无法集中备课")
    [req] = requests(db)
    assert (req.kind, req.new_due_date, req.note) == ("extension", dt.date(2027, 1, 15), "寒假前无法集中备课")
    [item] = ledger(db, "approval")
    from notifications.digest import describe

    assert describe(item.kind, 0, item.due_date, 0, item.data) == (
        "责任人 教务处处长（教务处） 申请将完成时间由 2026-12-15 延至 2027-01-15，理由：寒假前无法集中备课。请审批（批准或不予批准）"
    )
    # a second request while one waits is refused
    with pytest.raises(ActionError, match="正在审批中"):
        act(
            db,
            make_link(db, "教务处处长", "extend", "1", milestone=mid),
            actions.request_extension,
            today=TODAY,
            new_due=dt.date(2027, 2, 1),
            reason="再延",
        )
    review = make_link(db, "督办员", "review", "1", milestone=mid, request=req.id)
    act(db, review, approvals.decide, today=TODAY, request_id=None, decision="approve")
    m = milestone(db, mid)
    assert (m.due_date, m.baseline_due_date, m.due_version, m.status) == (dt.date(2027, 1, 15), dt.date(2026, 12, 15), 2, "in_progress")
    [notice] = ledger(db, "extension_decided")
    assert describe(notice.kind, 0, notice.due_date, 0, notice.data) == (
        "您的延期申请已获批准，完成时间调整为 2027-01-15（原定 2026-12-15），请按新的时间完成"
    )
    [ev] = events(db, "extension_approved")
    assert ev.data["from"] == "2026-12-15" and ev.data["to"] == "2027-01-15" and ev.data["version"] == 2


def test_extension_refused_keeps_the_date(db):
    mid = milestone_id(db, "1", 2)
    act(
        db,
        make_link(db, "教务处处长", "extend", "1", milestone=mid),
        actions.request_extension,
        today=TODAY,
        new_due=dt.date(2027, 1, 15),
        reason="人手不足",
    )
    [req] = requests(db)
    act(
        db,
        make_link(db, "督办员", "review", "1", milestone=mid, request=req.id),
        approvals.decide,
        today=TODAY,
        request_id=None,
        decision="refuse",
        note="请按原计划完成",
    )
    m = milestone(db, mid)
    assert (m.due_date, m.due_version) == (dt.date(2026, 12, 15), 1)
    [notice] = ledger(db, "extension_decided")
    assert notice.data["approved"] is False and notice.data["reason"] == "请按原计划完成"


def test_plan_without_approval_closes_on_submit(engine, tmp_path):
    import_small(engine, tmp_path, approval=False)
    mid = milestone_id(engine, "1", 1)
    out = act(engine, make_link(engine, "教务处处长", "done", "1", milestone=mid), actions.submit_done, today=TODAY, note="完成")
    assert out.message == "里程碑「制定方案」已办结。感谢您的辛勤工作！"
    assert milestone(engine, mid).status == "done"
    assert requests(engine) == [] and ledger(engine, "approval") == []
    [ev] = events(engine, "milestone_done")
    assert ev.data["approval"] == "not_required"


def test_reassignment_and_removal_void_links(db, tmp_path):
    from tests.factories import task_of, write_yaml

    ack = make_link(db, "教务处处长", "ack", "1")
    head_view = make_link(db, "教务处处长", "view", "2")
    other = make_link(db, "宣传部部长", "progress", "3")
    data = plan_definition()
    task_of(data, "1")["owner"] = "教务处副处长"
    for s in data["systems"]:
        for p in s["projects"]:
            p["tasks"] = [t for t in p["tasks"] if t["code"] != "3"]
    import_announced(db, write_yaml(tmp_path / "p2.yaml", data))
    with session_scope(db) as s:
        with pytest.raises(LinkRefused) as err:
            resolve(s, ack, secret=SECRET, today=TODAY)
        assert err.value.reason == "reassigned" and not err.value.renewable
        with pytest.raises(LinkRefused) as err:
            resolve(s, other, secret=SECRET, today=TODAY)
        assert err.value.reason in ("void", "closed")
        assert resolve(s, head_view, secret=SECRET, today=TODAY).action == "view"
        voided = {(link.action, link.void_reason) for link in s.scalars(select(Link).where(Link.void_at.is_not(None)))}
    assert voided == {("ack", "任务已改由他人负责"), ("progress", "任务已从清单中删除")}


def test_relink_writes_one_message_per_link_and_day(db):
    tok = make_link(db, "教务处处长", "ack", "1", expires=dt.date(2026, 11, 1))
    with session_scope(db) as s, pytest.raises(LinkRefused) as err:
        resolve(s, tok, secret=SECRET, today=TODAY)
    assert err.value.reason == "expired" and err.value.renewable
    for expected in ("新的「签收」链接将通过消息发送给教务处处长", "今天已经为您发送过新链接"):
        with session_scope(db) as s:
            out = relink.request_new_link(s, s.get(Link, err.value.link_id), ORIGIN, now=NOW, today=TODAY)
        assert out.message.startswith(expected)
    [item] = ledger(db, "relink")
    assert item.data["action"] == "ack"
    [spec] = LinkMaker("https://x", SECRET, TODAY).specs(item, 1)
    assert (spec.action, spec.person_id) == ("ack", item.recipient_id)


def test_two_submissions_of_one_link_at_once_apply_once(db):
    mid = milestone_id(db, "1", 1)
    tok = make_link(db, "教务处处长", "done", "1", milestone=mid)
    barrier = threading.Barrier(4)
    results: list[str] = []

    def go():
        barrier.wait()
        try:
            act(db, tok, actions.submit_done, today=TODAY, note="并发提交")
            results.append("ok")
        except (ActionError, LinkRefused) as err:
            results.append(type(err).__name__)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["LinkRefused", "LinkRefused", "LinkRefused", "ok"]
    assert len(requests(db)) == 1 and len(events(db, "completion_submitted")) == 1
