"""The sweep through the store: ledger before sending, digests per recipient, delivery that a
retry, a second sweep or a crash never loses or repeats."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from duban.db import session_scope
from duban.links import LinkMaker
from duban.models import Digest, Notification, table_of
from duban.rules.calendar import WorkCalendar
from duban.sweep import decisions
from duban.sweep.claims import backoff
from duban.sweep.decisions import decide
from duban.sweep.delivery import deliver
from duban.sweep.digests import assemble
from duban.sweep.ledger import insert_ignore
from duban.sweep.rows import digest_rows
from notifications.channel import Outgoing
from tests.factories import import_announced, small_plan, task_of, write_yaml

TZ = ZoneInfo("Asia/Shanghai")
IMPORTED = dt.datetime(2026, 11, 2, 9, 0, tzinfo=TZ)  # a Monday: the 签收 clock starts here
MON = dt.date(2026, 11, 23)
NOW = dt.datetime(2026, 11, 23, 8, 30, tzinfo=TZ)
SECRET = "k" * 8 + "0123456789abcdefghijklmnopqrstuv"
LINKS = LinkMaker("https://duban.example.edu.cn", SECRET, dt.date(2026, 11, 23))


class Recorder:
    """A channel that keeps what it was asked to send; can fail for some or crash."""

    def __init__(self, fail_for: set[str] = frozenset(), crash_at: int | None = None):
        self.sent: list[Outgoing] = []
        self.fail_for = set(fail_for)
        self.crash_at = crash_at

    def __call__(self, out: Outgoing) -> None:
        if self.crash_at is not None and len(self.sent) == self.crash_at:
            self.crash_at = None
            raise SystemExit("process killed")  # not an Exception: the run dies mid-way
        if out.recipient in self.fail_for:
            raise ConnectionError("connection refused")
        self.sent.append(out)

    def by_recipient(self) -> Counter:
        return Counter(o.recipient for o in self.sent)


@pytest.fixture
def plan_engine(engine, tmp_path):
    import_announced(engine, write_yaml(tmp_path / "p.yaml", small_plan()), now=IMPORTED)
    return engine


def run_day(engine, day, channel, now=None, cal=None):
    cal = cal or WorkCalendar()
    now = now or dt.datetime.combine(day, dt.time(8, 30), TZ)
    decided = decide(engine, today=day, cal=cal, tz=TZ)
    digests = assemble(engine, today=day, links=LinkMaker("https://duban.example.edu.cn", SECRET, day), now=now)
    delivered = deliver(engine, channel, now=now, links=LinkMaker("https://duban.example.edu.cn", SECRET, day))
    return decided.new, digests, delivered.sent


def ledger(engine):
    with session_scope(engine) as s:
        return sorted(s.scalars(select(Notification.key)))


def test_first_day_who_gets_what(plan_engine):
    channel = Recorder()
    assert run_day(plan_engine, MON, channel) == (9, 5, 5)
    got = {o.recipient: o for o in channel.sent}
    assert sorted(got) == sorted(["分管教学副校长", "宣传部部长", "教务处副处长", "教务处处长", "党委书记"])
    head = got["教务处处长"]
    assert head.subject == "【督办提醒】2026-11-23 教务处处长：已逾期 1 项，请督促落实 1 项"
    body = head.body
    assert body.startswith("教务处处长，您好：\n\n截至 2026-11-23，请您关注以下 2 项督办事项（测试方案）。")
    # task 1: the overdue step and the missing 签收 are one entry, with each of its links once
    assert (
        "【已逾期，请尽快办理】1 项\n1. [1] 集体备课\n"
        "   · 第 1 步「制定方案」完成时间 2026-11-20，已逾期 1 个工作日，请尽快办理或申请延期\n"
        "   · 该任务于 2026-11-02 下达给您，已 15 个工作日仍未签收，请及时签收\n"
        "   签收：https://" in body
    )
    assert [line.split("：")[0].strip() for line in body.splitlines() if "https://" in line] == [
        "查看我的全部督办事项",  # 我的督办, once, near the top
        "签收",
        "反馈进展",
        "提交办结",
        "申请延期",
        "查看任务",
    ]
    assert (
        "【请督促落实】1 项\n1. [2] 建设课程资源库\n   部门负责人督办：责任人 教务处副处长（教务处） 于 2026-11-02 收到任务，已 15 个工作日未签收，请督促签收\n"
        in body
    )
    assert "待签收、待反馈" not in body
    assert body.endswith(
        "\n以上事项中，您负责办理的任务，请点击链接直接办理（签收、反馈进展、提交办结、申请延期）；"
        "本部门的督办任务，请督促责任人按时落实，点击“查看任务”可了解任务详情和办理情况。链接无需登录。\n"
        "如有疑问，请联系领导小组办公室：督办员。\n本通知由督办系统自动发送，同一事项同一阶段只提醒一次。\n"
    )
    # the owner who is also the head is escalated to their manager, not to themselves
    assert "[1] 集体备课" in got["分管教学副校长"].body and "部门负责人督办" in got["分管教学副校长"].body
    # ack escalations for 宣传部's tasks go to the manager of its head (the head owns them)
    assert got["党委书记"].body.count("未签收，请督促签收") == 2


def test_same_day_twice_sends_nothing_new(plan_engine):
    channel = Recorder()
    run_day(plan_engine, MON, channel)
    keys = ledger(plan_engine)
    assert run_day(plan_engine, MON, channel) == (0, 0, 0)
    assert ledger(plan_engine) == keys and len(channel.sent) == 5


def test_ledger_rows_written_again_are_skipped_and_only_new_keys_are_counted(plan_engine):
    decide(plan_engine, today=MON, cal=WorkCalendar(), tz=TZ)
    table = table_of(Notification)
    columns = [c for c in table.c if c.name != "id"]
    with session_scope(plan_engine) as s:
        stored = [dict(r._mapping) for r in s.execute(select(*columns))]
    again = [{**r, "data": {"changed": True}} for r in stored]
    fresh = {**stored[0], "key": "due:test:fresh", "data": {"code": "T-1", "title": "新的一项", "seq": 2}}
    with session_scope(plan_engine) as s:
        assert insert_ignore(s, [*again, fresh]) == 1
    with session_scope(plan_engine) as s:
        rows = {r.key: r for r in s.execute(select(*columns))}
    assert [dict(rows[r["key"]]._mapping) for r in stored] == stored  # nothing already there changed
    assert rows["due:test:fresh"].data == {"code": "T-1", "title": "新的一项", "seq": 2}
    assert (rows["due:test:fresh"].decided_on, rows["due:test:fresh"].due_date) == (stored[0]["decided_on"], stored[0]["due_date"])


def test_next_day_only_what_is_new(plan_engine):
    channel = Recorder()
    run_day(plan_engine, MON, channel)
    # Tuesday: overdue day 2 is the same nag (every 3 working days), nothing else changes
    assert run_day(plan_engine, MON + dt.timedelta(days=1), channel) == (0, 0, 0)
    # Thursday: day 4 late → second nag to the owner; day 4 is below the head's 3? no: head escalation at 3 → Wed
    run_day(plan_engine, MON + dt.timedelta(days=2), channel)
    wed = [o for o in channel.sent[5:]]
    assert [(o.recipient, o.subject.split("：", 1)[1]) for o in wed] == [("分管教学副校长", "请督促落实 1 项")]
    assert "部门负责人督办：责任人 教务处处长（教务处），第 1 步「制定方案」完成时间 2026-11-20，已逾期 3 个工作日" in wed[0].body


def test_two_sweeps_at_once_send_each_item_once(plan_engine):
    channel = Recorder()

    def one(_):
        return run_day(plan_engine, MON, channel)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(one, range(2)))
    assert sum(r[0] for r in results) == 9  # each decision written once
    assert sum(r[2] for r in results) == 5
    assert channel.by_recipient() == Counter({"分管教学副校长": 1, "宣传部部长": 1, "教务处副处长": 1, "教务处处长": 1, "党委书记": 1})
    with session_scope(plan_engine) as s:
        assert s.scalar(select(func.count()).select_from(Notification).where(Notification.status == "sent")) == 9


def test_interrupted_run_gives_back_its_claims_and_repeats_at_most_the_message_in_flight(plan_engine):
    """Ctrl+C (or any exception the channel cannot catch) in the middle of a send: the run gives
    back what it still holds, at once, so nothing stays 发送中; the message whose send was
    interrupted may have gone out and is the only repeat.  (kill -9: tests/sweep/test_delivery_faults.py.)"""

    class InterruptedWhileSending(Recorder):
        def __call__(self, out):
            self.sent.append(out)
            if len(self.sent) == 3 and not getattr(self, "died", False):
                self.died = True
                raise KeyboardInterrupt("interrupted after sending, before marking it sent")

    channel = InterruptedWhileSending()
    with pytest.raises(KeyboardInterrupt):
        run_day(plan_engine, MON, channel)
    assert len(channel.sent) == 3
    with session_scope(plan_engine) as s:
        states = Counter(s.scalars(select(Digest.status)))
        attempts = sorted(s.scalars(select(Digest.attempts).where(Digest.status == "pending")))
    assert states == Counter({"sent": 2, "pending": 3})  # the one in flight and two claimed but not tried
    assert attempts == [0, 0, 0]  # given back: not an attempt
    # a run a minute later sends them; only the one in flight when the run was interrupted is a repeat
    assert run_day(plan_engine, MON, channel, now=NOW + dt.timedelta(minutes=1)) == (0, 0, 3)
    counts = channel.by_recipient()
    assert sorted(counts.values()) == [1, 1, 1, 1, 2]
    assert counts[channel.sent[2].recipient] == 2


def test_failed_delivery_is_kept_and_retried_with_backoff(plan_engine):
    channel = Recorder(fail_for={"党委书记"})
    assert run_day(plan_engine, MON, channel) == (9, 5, 4)
    rows = digest_rows(plan_engine, status="failed")
    assert [(r["收件人"], r["尝试次数"], r["失败原因"], r["状态"]) for r in rows] == [
        ("党委书记", 1, "ConnectionError: connection refused", "发送失败（将重试）")
    ]
    channel.fail_for.clear()
    assert deliver(plan_engine, channel, now=NOW + dt.timedelta(minutes=2), links=LINKS).sent == 0  # backing off
    assert deliver(plan_engine, channel, now=NOW + dt.timedelta(minutes=6), links=LINKS).sent == 1
    assert channel.by_recipient()["党委书记"] == 1 and digest_rows(plan_engine, status="failed") == []


def test_backoff_doubles_and_is_capped():
    assert [backoff(n).total_seconds() / 60 for n in (1, 2, 3, 4, 10)] == [5, 10, 20, 40, 360]


def test_preview_writes_nothing(plan_engine):
    items = decisions.preview(plan_engine, today=MON, cal=WorkCalendar(), tz=TZ)
    assert [(i.recipient, i.kind, i.code) for i in items] == [
        ("党委书记", "escalation", "3"),
        ("党委书记", "escalation", "4"),
        ("分管教学副校长", "escalation", "1"),
        ("宣传部部长", "ack", "3"),
        ("宣传部部长", "ack", "4"),
        ("教务处副处长", "ack", "2"),
        ("教务处处长", "overdue", "1"),
        ("教务处处长", "escalation", "2"),
        ("教务处处长", "ack", "1"),
    ]
    assert ledger(plan_engine) == []


def test_moved_due_date_restarts_reminders_and_reassignment_moves_them(plan_engine, tmp_path):
    channel = Recorder()
    run_day(plan_engine, MON, channel)
    plan = small_plan()
    task_of(plan, "1")["roadmap"] = "2026年11月27日 制定方案；2026年12月15日 中期检查"  # extension of step 1
    task_of(plan, "2")["owner"] = "教务处处长"  # reassigned
    import_announced(plan_engine, write_yaml(tmp_path / "p2.yaml", plan), now=dt.datetime(2026, 11, 23, 10, 0, tzinfo=TZ))
    channel.sent.clear()
    # Tuesday: step 1 now due Friday → a fresh "due in 3 days" reminder (version 2)
    run_day(plan_engine, dt.date(2026, 11, 24), channel)
    mine = {o.recipient: o.body for o in channel.sent}
    assert "[1] 集体备课\n   第 1 步「制定方案」完成时间 2026-11-27，还有 3 个工作日" in mine["教务处处长"]
    assert "教务处副处长" not in mine  # the previous owner is no longer reminded
    # the new owner must acknowledge afresh: reminder 3 working days after the reassignment
    assert "[2] 建设课程资源库\n   该任务于 2026-11-23 下达给您" not in mine["教务处处长"]
    channel.sent.clear()
    run_day(plan_engine, dt.date(2026, 11, 26), channel)
    assert (
        "[2] 建设课程资源库\n   该任务于 2026-11-23 下达给您，已 3 个工作日仍未签收"
        in {o.recipient: o.body for o in channel.sent}["教务处处长"]
    )


def test_nothing_for_done_submitted_or_archived(plan_engine, tmp_path):
    from sqlalchemy import update

    from duban.models import Milestone, Task

    with session_scope(plan_engine) as s:
        s.execute(update(Task).values(acknowledged_at=IMPORTED))
        t1 = s.scalar(select(Task.id).where(Task.code == "1"))
        s.execute(update(Milestone).where(Milestone.task_id == t1, Milestone.seq == 1).values(status="submitted"))
    smaller = small_plan()
    smaller["systems"].pop(1)  # tasks 3 and 4 removed → archived
    import_announced(plan_engine, write_yaml(tmp_path / "p2.yaml", smaller), now=IMPORTED)
    assert decisions.preview(plan_engine, today=MON, cal=WorkCalendar(), tz=TZ) == []


def test_plan_and_task_policy_change_the_ladder(engine, tmp_path):
    plan = small_plan()
    plan["plan"]["policy"] = {"escalate_head_after": 1}  # tell the head on the first day late
    task_of(plan, "2")["policy"] = {"ack_within": 20, "ack_escalate_after": 25}  # a patient task
    import_announced(engine, write_yaml(tmp_path / "p.yaml", plan), now=IMPORTED)
    previewed = decisions.preview(engine, today=MON, cal=WorkCalendar(), tz=TZ)
    items = {(i.recipient, i.kind, i.code) for i in previewed}
    # task 1 is one working day late: with the plan's policy its head (here: the owner's manager) is told
    assert [i.line for i in previewed if i.code == "1" and i.kind == "escalation" and "完成时间" in i.line] == [
        "部门负责人督办：责任人 教务处处长（教务处），完成时间 2026-11-20，已逾期 1 个工作日，请督促落实"
    ]
    assert ("教务处副处长", "ack", "2") not in items and ("教务处处长", "escalation", "2") not in items


def test_bulk_steps_hold_back_the_collector_and_give_its_threshold_back():
    import gc

    from duban.values import BULK_GC_THRESHOLD, bulk_work

    before = gc.get_threshold()
    with bulk_work():
        inside = gc.get_threshold()
        with bulk_work():  # a step inside a step (or another thread's) keeps it raised
            pass
        assert gc.get_threshold() == inside
    assert inside == (max(before[0], BULK_GC_THRESHOLD), *before[1:])
    assert gc.get_threshold() == before
