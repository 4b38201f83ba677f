"""任务下达 (duban.announce, ``duban announce``): each owner is told once, in one message listing all
their tasks; 已线下下达 marks without sending; a re-import's new tasks are announced later on their
own; a dry run writes nothing; the ledger item carries the task book and its timetable."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from duban.announce import AnnounceError, announce, announce_now
from duban.db import session_scope
from duban.models import Event, Notification, Task
from duban.plans.importer import import_plan
from duban.runtime import runtime
from duban.vocabulary import EventKind, MessageKind
from tests.conftest import PINNED, PINNED_DAY
from tests.factories import small_plan, task_of, write_yaml

pytestmark = pytest.mark.usefixtures("clock")  # delivery reads the clock: pinned (tests/conftest.py)

TZ = ZoneInfo("Asia/Shanghai")
IMPORTED = dt.datetime(2026, 11, 2, 9, 0, tzinfo=TZ)
NOW = PINNED  # Monday 2026-11-30 10:00 in Beijing
runner = CliRunner()


@pytest.fixture
def rt(use_database, engine, tmp_path):
    import_plan(engine, write_yaml(tmp_path / "plan.yaml", small_plan()), now=IMPORTED)
    return runtime()


def outbox(rt, day: dt.date = PINNED_DAY) -> dict[str, str]:
    """The messages of a day in the local outbox: recipient -> text (one file per digest)."""
    folder = rt.settings.outbox_path / day.isoformat()
    files = sorted(folder.glob("*.txt")) if folder.exists() else []
    out: dict[str, str] = {}
    for f in files:
        name = f.stem.split("-", 1)[1]
        assert name not in out, f"two messages to {name}"
        out[name] = f.read_text(encoding="utf-8")
    return out


def announced(engine) -> dict[str, dt.datetime | None]:
    with session_scope(engine) as s:
        return dict(s.execute(select(Task.code, Task.announced_at).order_by(Task.code)).all())


def rows(engine, model, kind) -> list:
    with session_scope(engine) as s:
        return list(s.scalars(select(model).where(model.kind == kind).order_by(model.id)))


def test_one_message_per_owner_listing_all_their_tasks_then_nothing_more(rt, engine):
    result = announce_now(rt, today=PINNED_DAY, now=NOW, actor="督办员")
    assert (result.announced, result.owners, result.already) == (4, 3, 0)
    got = outbox(rt)
    assert sorted(got) == ["宣传部部长", "教务处副处长", "教务处处长"]
    assert "开设选修课" in got["宣传部部长"] and "文明校园创建" in got["宣传部部长"]
    assert "集体备课" in got["教务处处长"] and "开设选修课" not in got["教务处处长"]
    assert "主题：【任务下达】2026-11-30 教务处副处长：新下达任务 1 项" in got["教务处副处长"]
    assert "现将以下 1 项任务下达给您（测试方案），任务书和时间表如下。" in got["教务处副处长"]
    assert all(v is not None for v in announced(engine).values())
    events = rows(engine, Event, EventKind.TASK_ANNOUNCED)
    assert [(e.actor, e.channel, e.data) for e in events][:1] == [("督办员", "cli", {"owner": "教务处处长", "notice": True})]
    assert len(events) == 4

    again = announce_now(rt, today=PINNED_DAY, now=NOW + dt.timedelta(hours=1), actor="督办员")
    assert (again.announced, again.already) == (0, 4)
    assert len(outbox(rt)) == 3 and len(rows(engine, Notification, MessageKind.ASSIGNMENT)) == 4


def test_the_notice_carries_the_task_book_its_timetable_and_the_grace(rt, engine):
    announce(engine, today=PINNED_DAY, now=NOW, actor="督办员", task_codes=["1"])
    [n] = rows(engine, Notification, MessageKind.ASSIGNMENT)
    assert n.key == "assignment:t1:2026-11-30T02:00:00+00:00"  # announced_at, in UTC
    assert (n.due_date, n.decided_on, n.level) == (dt.date(2026, 12, 31), PINNED_DAY, 0)
    assert n.data == {
        "code": "1",
        "title": "集体备课",
        "statement": "",
        "done_criteria": "",
        "deadline": "2026年12月底前",
        "milestones": [
            # announced on Monday 11-30: five working days of grace run to Monday 12-07
            {"seq": 1, "title": "制定方案", "due": "2026-11-20", "final": False, "grace_until": "2026-12-07"},
            {"seq": 2, "title": "中期检查", "due": "2026-12-15", "final": False},
            {"seq": 3, "title": "全部完成（达到完成标志）", "due": "2026-12-31", "final": True},
        ],
        "owner": "教务处处长",
        "department": "教务处",
        "supervisor": "分管教学副校长",
        "partners": ["宣传部"],
        "announced_on": "2026-11-30",
        "ack_within": 3,
        "grace_until": "2026-12-07",
        "milestone": "制定方案",
    }
    assert list(announced(engine).values()).count(None) == 3  # only task 1


def test_offline_announcement_marks_and_sends_nothing(rt, engine):
    result = announce_now(rt, today=PINNED_DAY, now=NOW, actor="督办员", notify=False)
    assert (result.announced, result.owners, result.recipients) == (4, 3, set())
    assert outbox(rt) == {} and rows(engine, Notification, MessageKind.ASSIGNMENT) == []
    assert all(announced(engine).values())
    assert [e.data["notice"] for e in rows(engine, Event, EventKind.TASK_ANNOUNCED)] == [False] * 4


def test_tasks_a_reimport_adds_are_announced_later_on_their_own(rt, engine, tmp_path):
    announce(engine, today=PINNED_DAY, now=NOW, actor="t", notify=False)
    plan = small_plan()
    plan["systems"][0]["projects"][0]["tasks"].append(
        {"code": "5", "title": "编写校本教材", "owner": "教务处处长", "lead_department": "教务处", "deadline": "2027-06-30"}
    )
    import_plan(engine, write_yaml(tmp_path / "plan.yaml", plan), now=NOW)
    would = announce(engine, today=PINNED_DAY, now=NOW, actor="t", dry_run=True)
    assert [(t.owner, t.code) for t in would.tasks] == [("教务处处长", "5")] and would.already == 4
    assert announced(engine)["5"] is None  # the dry run wrote nothing

    result = announce_now(rt, today=PINNED_DAY, now=NOW, actor="督办员")
    assert (result.announced, result.owners, result.already) == (1, 1, 4)
    got = outbox(rt)
    assert list(got) == ["教务处处长"] and "编写校本教材" in got["教务处处长"] and "集体备课" not in got["教务处处长"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"plan_code": "nope"}, "没有编号为“nope”的方案。已有方案：demo"),
        ({"task_codes": ["1", "99", "98"]}, "没有找到任务编号“99、98”（或该任务已从清单中删除）。请核对任务编号。"),
    ],
)
def test_unknown_plan_or_task_writes_nothing(rt, engine, options, message):
    with pytest.raises(AnnounceError) as err:
        announce(engine, today=PINNED_DAY, now=NOW, actor="t", **options)
    assert str(err.value) == message
    assert set(announced(engine).values()) == {None}


# -- the command --------------------------------------------------------------------------------------


def run(*args):
    from duban.cli.main import app

    return runner.invoke(app, [str(a) for a in args])


def test_cli_dry_run_then_announce_then_nothing_left(rt, engine):
    result = run("announce", "--plan", "demo", "--dry-run", "--today", "2026-11-30")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "  宣传部部长：3 开设选修课；4 文明校园创建",
        "  教务处副处长：2 建设课程资源库",
        "  教务处处长：1 集体备课",
        "将下达 4 项任务，涉及责任人 3 位。",
        "（预览：以上任务尚未下达。去掉 --dry-run 即可下达。）",
    ]
    assert outbox(rt) == {}
    result = run("announce", "--plan", "demo", "--task", "1", "--task", "2", "--today", "2026-11-30")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "已下达 2 项任务，向 2 位责任人各发出一份下达通知。"
    assert sorted(outbox(rt)) == ["教务处副处长", "教务处处长"]
    result = run("announce", "--no-notice", "--today", "2026-11-30")
    assert result.stdout.splitlines()[-1] == "已将 2 项任务记为线下下达（涉及责任人 1 位），未发送通知；另有 2 项此前已下达。"
    result = run("announce")
    assert (result.exit_code, result.stdout) == (0, "没有需要下达的任务（4 项任务此前已下达）。\n")


def test_cli_unknown_plan_is_one_message(rt):
    result = run("announce", "--plan", "nope")
    assert (result.exit_code, result.stderr.strip()) == (1, "没有编号为“nope”的方案。已有方案：demo")


@pytest.mark.parametrize("on_import", [True, False])
def test_import_announces_when_the_plan_says_so(use_database, engine, tmp_path: Path, on_import):
    plan = small_plan()
    plan["plan"]["announce_on_import"] = on_import
    result = run("import", write_yaml(tmp_path / "p.yaml", plan))
    assert result.exit_code == 0, result.output
    last = result.stdout.splitlines()[-1]
    if on_import:
        assert last == "已按方案设置（导入即下达）下达 4 项任务，并向责任人发出下达通知。"
        assert all(announced(engine).values())
        assert len(rows(engine, Notification, MessageKind.ASSIGNMENT)) == 4
    else:
        assert last == "导入完成。"
        assert set(announced(engine).values()) == {None}
    # a re-import that adds nothing new announces nothing
    task_of(plan, "2")["deadline"] = "2027年下半年"
    result = run("import", write_yaml(tmp_path / "p.yaml", plan), "--json")
    assert ('"announced": 0' in result.stdout) is on_import
