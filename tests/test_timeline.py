"""A task's timeline (duban.timeline): events, ledger items with their recipient, channel and
delivery outcome, requests, reviews; actors read as people and the office, never "root"."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from duban import office_edits
from duban.db import session_scope
from duban.models import Delivery, Digest, Event, Notification, Person, Request, Task
from duban.runtime import runtime
from duban.sweep.sending import send_to
from duban.timeline import actor_name, timeline
from duban.vocabulary import LedgerStatus, MessageKind, RequestKind
from tests.conftest import PINNED, PINNED_DAY
from tests.web_helpers import TZ, import_small

pytestmark = pytest.mark.usefixtures("clock")  # delivery reads the clock: pinned


@pytest.fixture
def rt(use_database, engine, tmp_path):
    import_small(engine, tmp_path)
    return runtime()


def task_one(s) -> Task:
    return s.scalar(select(Task).where(Task.code == "1"))


def rows(engine, *, for_person: str | None = None) -> list[tuple[str, str, str, str, str]]:
    with session_scope(engine, readonly=True) as s:
        pid = s.scalar(select(Person.id).where(Person.name == for_person)) if for_person else None
        return [
            (e.when, e.label, e.actor, e.detail, f"{e.recipient}|{e.channels}|{e.outcome}")
            for e in timeline(s, task_one(s), tz=TZ, for_person=pid)
        ]


def test_the_timeline_holds_events_messages_with_their_outcome_and_requests_in_time_order(rt, engine):
    with session_scope(engine) as s:
        office_edits.instruct(s, task_one(s), text="抓紧推进，年底前见成效", by="党委书记", now=PINNED, today=PINNED_DAY)
    send_to(rt, {_id(engine, "教务处处长")}, today=PINNED_DAY)  # the local outbox: sent
    later = (PINNED + dt.timedelta(hours=1)).astimezone(dt.UTC)
    with session_scope(engine) as s:
        t = task_one(s)
        owner = t.owner_id
        s.add(
            Request(
                plan_id=t.plan_id,
                task_id=t.id,
                person_id=owner,
                kind=RequestKind.EXTENSION,
                note="等待教材",
                new_due_date=dt.date(2027, 1, 15),
                created_at=later,
            )
        )
        # an escalation whose e-mail failed (what the office reads when someone says "I never got it")
        head = s.scalar(select(Person.id).where(Person.name == "分管教学副校长"))
        digest = Digest(
            plan_id=t.plan_id,
            recipient_id=head,
            channel="email",
            run_on=PINNED_DAY,
            subject="督办",
            status=LedgerStatus.FAILED,
            last_error="550",
        )
        s.add(digest)
        s.flush()
        s.add(Delivery(digest_id=digest.id, channel="email", target="fx@example.org", at=later, ok=False, error="550 mailbox unavailable"))
        s.add(
            Notification(
                key="t-esc",
                plan_id=t.plan_id,
                task_id=t.id,
                recipient_id=head,
                kind=MessageKind.ESCALATION,
                level=2,
                due_date=dt.date(2026, 11, 20),
                days=-6,
                decided_on=PINNED_DAY,
                created_at=later + dt.timedelta(minutes=1),
                status=LedgerStatus.QUEUED,
                digest_id=digest.id,
                data={"code": "1", "title": "集体备课", "owner": "教务处处长", "milestone": "制定方案", "seq": 1},
            )
        )
    got = rows(engine)
    assert got[0][1:] == ("下达任务", "领导小组办公室（导入）", "", "||")  # the import names the office, not the OS user
    labels = [(g[1], g[2], g[3]) for g in got]
    assert ("领导批示", "党委书记", "抓紧推进，年底前见成效") in labels
    sent = [g for g in got if g[1] == "领导批示" and g[4] != "||"]
    assert len(sent) == 1 and sent[0][3] == "党委书记 同志对该任务作出批示：抓紧推进，年底前见成效"
    assert sent[0][4].startswith("教务处处长|本地发件箱|已发送（2026-11-30 ")
    assert ("2026-11-30 11:00", "延期申请（待审核）", "教务处处长", "申请延至 2027-01-15", "||") in got
    escalation = [g for g in got if g[1] == "督办"]
    assert escalation == [
        (
            "2026-11-30 11:01",
            "督办",
            "",
            "分管校领导督办：责任人 教务处处长，完成时间 2026-11-20，已逾期 6 个工作日，请督促落实",
            "分管教学副校长|邮件|发送失败（邮件：550 mailbox unavailable），将自动重试",
        )
    ]
    assert [g[0] for g in got] == sorted(g[0] for g in got)  # oldest first


def _id(engine, name: str) -> int:
    with session_scope(engine, readonly=True) as s:
        return int(s.scalar(select(Person.id).where(Person.name == name)))


def test_the_owners_view_shows_only_what_was_sent_to_them(rt, engine):
    with session_scope(engine) as s:
        office_edits.urge(s, task_one(s), by="督办员", now=PINNED, today=PINNED_DAY, tz=TZ)
        t = task_one(s)
        s.add(
            Notification(
                key="t-esc2",
                plan_id=t.plan_id,
                task_id=t.id,
                recipient_id=_id(engine, "分管教学副校长"),
                kind=MessageKind.ESCALATION,
                level=2,
                due_date=dt.date(2026, 11, 20),
                days=-6,
                decided_on=PINNED_DAY,
                created_at=PINNED.astimezone(dt.UTC),
                data={"owner": "教务处处长"},
            )
        )
    mine = [g for g in rows(engine, for_person="教务处处长") if g[4] != "||"]
    assert mine == [
        (
            "2026-11-30 10:00",
            "催办",
            "",
            "督办员催办：请抓紧推进该任务，第 1 步「制定方案」完成时间 2026-11-20。如有困难，请及时反馈进展或申请延期",
            "教务处处长||待发送",
        )
    ]
    everyone = [g[4].split("|")[0] for g in rows(engine) if g[4] != "||"]
    assert sorted(everyone) == ["分管教学副校长", "教务处处长"]


@pytest.mark.parametrize(
    ("actor", "channel", "shown"),
    [
        ("root", "import", "领导小组办公室（导入）"),
        ("duban", "import", "领导小组办公室（导入）"),
        ("unknown", "import", "领导小组办公室（导入）"),
        ("root", "cli", "领导小组办公室"),
        ("张主任", "import", "张主任"),
        ("root", "web", "root"),  # a web account named root is somebody's display name: shown as it is
        ("教务处处长", "link", "教务处处长"),
    ],
)
def test_an_operating_system_account_reads_as_the_office(actor, channel, shown):
    assert actor_name(actor, channel) == shown


def test_old_rows_written_by_root_read_as_the_office_on_the_timeline(rt, engine):
    with session_scope(engine) as s:
        t = task_one(s)
        s.add(
            Event(
                plan_id=t.plan_id, task_id=t.id, at=PINNED.astimezone(dt.UTC), actor="root", channel="import", kind="task_updated", data={}
            )
        )
    assert ("2026-11-30 10:00", "任务内容调整", "领导小组办公室（导入）", "", "||") in rows(engine)
    assert all(g[2] != "root" for g in rows(engine))
