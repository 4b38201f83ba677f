"""Issuing numbered 督办通报 (duban/rollup/bulletins.py) against a plan with five departments.

| task | department | milestones (due) | history |
| --- | --- | --- | --- |
| 1 | 教务处 | 11-10 | submitted 11-09, approved 11-10: on time |
| 2 | 宣传部 | 11-16 | submitted 11-18, approved 11-19: 2 working days late |
| 3 | 学工部 | 11-13 (制定方案), 11-26 | 制定方案 submitted and approved 11-23 (6 late); the last step 11-25 (on time) |
| 4 | 团委 | 11-24 | open (nothing due until 11-24) |
| 5 | 后勤处 | 2027-06-30 | nothing due |

No 督办 and no returned completion: escalation and return parts are full (15 + 15).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from duban.db import session_scope
from duban.models import Bulletin, Digest, Milestone, Plan, Task
from duban.plans.importer import import_plan
from duban.rollup.bulletins import issue_bulletins, plans_due
from duban.rollup.compute import compute
from duban.rules.calendar import WorkCalendar
from duban.vocabulary import MilestoneState
from notifications.bulletin import BulletinError
from notifications.channel import Outgoing
from notifications.render import render_message
from tests.factories import small_plan, write_yaml

TZ = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()
D = dt.date.fromisoformat
DEPARTMENTS = [("教务处", "教务处处长"), ("宣传部", "宣传部部长"), ("学工部", "学工部部长"), ("团委", "团委书记"), ("后勤处", "后勤处处长")]
TASKS = [
    ("1", "集体备课", "教务处", "2026-11-10", None),
    ("2", "校园文化节", "宣传部", "2026-11-16", None),
    ("3", "资助育人", "学工部", "2026-11-26", "2026年11月13日 制定方案"),
    ("4", "志愿服务", "团委", "2026-11-24", None),
    ("5", "食堂育人", "后勤处", "2027-06-30", None),
]


def at(day: str) -> dt.datetime:
    """10:00 Beijing time on that day."""
    return dt.datetime.fromisoformat(day + "T02:00:00+00:00")


def bulletin_plan() -> dict:
    plan = small_plan()
    plan["plan"].update(code="bul", name="通报测试方案")
    plan["departments"] = [{"name": d, "head": h, "supervisor": "党委书记"} for d, h in DEPARTMENTS]
    keep = [p for p in plan["people"] if p["name"] in ("党委书记", "督办员")]
    plan["people"] = keep + [
        {"name": h, "department": d, "title": "负责人", "email": f"{i}@example.org"} for i, (d, h) in enumerate(DEPARTMENTS)
    ]
    tasks = []
    for code, name, dept, deadline, roadmap in TASKS:
        task = {"code": code, "title": name, "owner": dict(DEPARTMENTS)[dept], "lead_department": dept, "deadline": deadline}
        if roadmap:
            task["roadmap"] = roadmap
        tasks.append(task)
    plan["systems"] = [{"name": "十大育人", "projects": [{"name": "重点项目", "tasks": tasks}]}]
    return plan


@pytest.fixture
def imported(engine, tmp_path):
    """The plan as imported: nothing done yet."""
    import_plan(engine, write_yaml(tmp_path / "bul.yaml", bulletin_plan()), now=at("2026-09-01"))
    with session_scope(engine) as s:
        s.execute(update(Task).values(acknowledged_at=at("2026-09-02")))
    return engine


@pytest.fixture
def plan(imported):
    """Tasks 1 and 2 done (module docstring)."""
    finish(imported, "1", 1, "2026-11-09", "2026-11-10")
    finish(imported, "2", 1, "2026-11-18", "2026-11-19")
    return imported


def finish(engine, code: str, seq: int, submitted: str, approved: str) -> None:
    with session_scope(engine) as s:
        task_id = s.scalar(select(Task.id).where(Task.code == code))
        s.execute(
            update(Milestone)
            .where(Milestone.task_id == task_id, Milestone.seq == seq)
            .values(status=MilestoneState.DONE, submitted_at=at(submitted), completed_at=at(approved))
        )


def every(engine, value: str) -> None:
    with session_scope(engine) as s:
        s.execute(update(Plan).values(bulletin_every=value))


def issue(engine, day: str, **kw):
    return issue_bulletins(engine, today=D(day), cal=CAL, tz=TZ, **kw)


def stored(engine) -> list[tuple]:
    with session_scope(engine, readonly=True) as s:
        rows = s.scalars(select(Bulletin).order_by(Bulletin.id)).all()
        return [(b.kind, b.number, b.period_start.isoformat(), b.period_end.isoformat(), b.issued_on.isoformat()) for b in rows]


def digests(engine) -> list[tuple]:
    with session_scope(engine, readonly=True) as s:
        return [tuple(r) for r in s.execute(select(Digest.run_on, Digest.subject).order_by(Digest.id)).all()]


def ranking(engine, number: int, kind: str = "week") -> tuple[list[tuple], list[str], str]:
    with session_scope(engine, readonly=True) as s:
        data = s.scalars(select(Bulletin.data).where(Bulletin.number == number, Bulletin.kind == kind)).one()
    return [(e["rank"], e["department"], e["score"], e["change"]) for e in data["ranking"]], data["unranked"], data["compared_with"]


def test_the_change_in_rank_across_two_weekly_bulletins(plan):
    first = issue(plan, "2026-11-20")
    assert [(i.plan, i.title, i.period, len(i.queued)) for i in first.issued] == [
        ("bul", "督办通报（周通报·第 1 期）", "2026年11月16日至22日", 2)  # 党委书记 (leading group) and 督办员 (office)
    ]
    assert ranking(plan, 1) == (
        [(1, "教务处", 100.0, ""), (2, "宣传部", 46.0, ""), (3, "学工部", 40.0, "")],  # the first issue: nothing to compare with
        ["后勤处", "团委"],
        "",
    )
    finish(plan, "3", 1, "2026-11-23", "2026-11-23")
    finish(plan, "3", 2, "2026-11-25", "2026-11-25")
    second = issue(plan, "2026-11-27")
    assert [i.title for i in second.issued] == ["督办通报（周通报·第 2 期）"]
    assert ranking(plan, 2) == (
        [(1, "教务处", 100.0, "—"), (2, "学工部", 69.0, "↑1"), (3, "宣传部", 46.0, "↓1"), (4, "团委", 44.0, "新上榜")],
        ["后勤处"],
        "第 1 期周通报（2026-11-20）",
    )
    assert stored(plan) == [("week", 1, "2026-11-16", "2026-11-22", "2026-11-20"), ("week", 2, "2026-11-23", "2026-11-29", "2026-11-27")]
    assert digests(plan)[-1] == (
        D("2026-11-27"),
        "【督办通报】通报测试方案（周通报·第 2 期，2026年11月23日至29日）：按期完成率 40.0%，逾期 1 项",
    )  # 2 of 5 due on time

    # what the leading group reads
    (payload,) = [i.payload for i in second.issued]
    msg = render_message(
        Outgoing(0, None, "领导小组（群）", None, D("2026-11-27"), "", {**payload, "audience_name": "领导小组各位领导"}, 0)
    )
    assert "通报测试方案督办通报（周通报·第 2 期）\n2026年11月23日至29日（截至 2026-11-27）" in msg.text
    assert "本周完成节点 2 项（经审核确认）。" in msg.text
    assert "【本周完成】\n1. [3] 资助育人——制定方案：学工部，2026-11-23 确认完成\n2. [3] 资助育人：学工部，2026-11-25 确认完成" in msg.text
    assert "【单位考核排名】（满分 100；名次变化与第 1 期周通报（2026-11-20）相比）" in msg.text
    assert "2. 学工部 69.0 分 ↑1（按期完成率 50.0%，累计逾期 6 个工作日，被督办 0 次，被退回 0 次）" in msg.text
    assert "4. 团委 44.0 分 新上榜（" in msg.text
    assert "暂无到期事项，暂不计分、不排名：后勤处" in msg.text
    assert "按期完成 50 分：按期完成节点 ÷ 应完成节点 × 50" in msg.text
    for text in (msg.html, msg.chat):
        assert "学工部" in text and "↑1" in text and "新上榜" in text and "暂无到期事项" in text and "周通报·第 2 期" in text

    # the report made afterwards shows the change since the last issued 通报
    r = compute(plan, as_of=D("2026-11-30"), tz=TZ, cal=CAL)
    assert r.compared_with == {"bul": "第 2 期周通报（2026-11-27）"}
    assert [(x.department, x.rank, x.change) for x in r.assessment.itertuples()] == [
        ("教务处", 1, "—"),
        ("学工部", 2, "—"),
        ("宣传部", 3, "—"),
        ("团委", 4, "—"),
        ("后勤处", None, ""),
    ]


def test_a_rerun_issues_nothing_unless_forced(plan):
    issue(plan, "2026-11-20")
    before = digests(plan)
    again = issue(plan, "2026-11-20")
    assert (again.issued, again.already) == ([], ["bul 第 1 期周通报（2026-11-20）"])
    assert digests(plan) == before and len(before) == 2
    manual = issue(plan, "2026-11-19", scheduled=False)  # the office, by hand, in the same week
    assert (manual.issued, manual.already) == ([], ["bul 第 1 期周通报（2026-11-20）"])
    forced = issue(plan, "2026-11-20", force=True)
    assert [i.number for i in forced.issued] == [2] and len(digests(plan)) == 4
    assert [b[:2] for b in stored(plan)] == [("week", 1), ("week", 2)]


def test_issue_numbers_count_per_kind_through_holidays(imported):
    """Every day from 09-28 to 10-31 with ``both``: National Day moves the week's 通报 to Wednesday
    09-30 (also September's last working day), the worked Saturday 10-10 takes its week's."""
    every(imported, "both")
    issued = []
    day = D("2026-09-28")
    while day <= D("2026-10-31"):
        issued += [(day.isoformat(), i.kind, i.number) for i in issue(imported, day.isoformat()).issued]
        day += dt.timedelta(days=1)
    assert issued == [
        ("2026-09-30", "week", 1),
        ("2026-09-30", "month", 1),
        ("2026-10-10", "week", 2),
        ("2026-10-16", "week", 3),
        ("2026-10-23", "week", 4),
        ("2026-10-30", "week", 5),
        ("2026-10-30", "month", 2),
    ]
    assert len(digests(imported)) == 7 * 2
    assert [s for d, s in digests(imported) if d == D("2026-09-30")] == [
        "【督办通报】通报测试方案（周通报·第 1 期，2026年9月28日至10月4日）：按期完成率 —，逾期 0 项",
        "【督办通报】通报测试方案（周通报·第 1 期，2026年9月28日至10月4日）：按期完成率 —，逾期 0 项",
        "【督办通报】通报测试方案（月通报·第 1 期，2026年9月）：按期完成率 —，逾期 0 项",
        "【督办通报】通报测试方案（月通报·第 1 期，2026年9月）：按期完成率 —，逾期 0 项",
    ]
    # nothing was due yet: no department ranked, every one listed as 暂无到期事项
    assert ranking(imported, 1)[:2] == ([], ["后勤处", "团委", "学工部", "宣传部", "教务处"])


@pytest.mark.parametrize(
    ("setting", "day", "kinds"),
    [
        ("week", "2026-11-27", ["week"]),
        ("week", "2026-11-30", []),
        ("month", "2026-11-27", []),
        ("month", "2026-11-30", ["month"]),
        ("both", "2026-11-30", ["month"]),
        ("both", "2026-12-31", ["week", "month"]),
        ("week", "2026-10-02", []),  # the holiday Friday
    ],
)
def test_what_is_issued_on_a_day(plan, setting, day, kinds):
    every(plan, setting)
    assert [i.kind for i in issue(plan, day).issued] == kinds


def test_the_monthly_bulletin_covers_the_month(plan):
    every(plan, "month")
    finish(plan, "3", 1, "2026-11-23", "2026-11-23")
    finish(plan, "3", 2, "2026-11-25", "2026-11-25")
    (monthly,) = issue(plan, "2026-11-30").issued
    assert (monthly.title, monthly.period) == ("督办通报（月通报·第 1 期）", "2026年11月")
    p = monthly.payload
    assert [(c["code"], c["milestone"], c["on"]) for c in p["completed"]] == [
        ("1", "", "2026-11-10"),
        ("2", "", "2026-11-19"),
        ("3", "制定方案", "2026-11-23"),
        ("3", "", "2026-11-25"),
    ]
    assert [(i["code"], i["days"]) for i in p["items"]] == [("4", -4)]  # 团委, due 11-24, 4 working days late
    assert stored(plan) == [("month", 1, "2026-11-01", "2026-11-30", "2026-11-30")]
    with session_scope(plan, readonly=True) as s:
        data = s.scalars(select(Bulletin.data)).one()
    assert (data["title"], data["period"], data["overdue"], data["serious"], data["completed"]) == (
        "督办通报（月通报·第 1 期）",
        "2026年11月",
        1,
        0,
        4,
    )
    assert data["figures"]["on_time_rate"] == "40.0%"  # 2 of 5 due milestones on time
    msg = render_message(Outgoing(0, None, "督办员", None, D("2026-11-30"), "", {**p, "audience_name": "督办员同志"}, 0))
    assert "本月完成节点 4 项（经审核确认）。" in msg.text and "【本月完成】" in msg.text


def test_a_dry_run_writes_nothing_and_a_failure_writes_nothing(plan, monkeypatch):
    run = issue(plan, "2026-11-20", dry_run=True)
    assert [(i.number, [q.digest_id for q in i.queued]) for i in run.issued] == [(1, [None, None])]
    assert stored(plan) == [] and digests(plan) == []

    import duban.rollup.bulletins as bulletins

    def broken(payload):
        raise RuntimeError("disk full")

    monkeypatch.setattr(bulletins, "_record", broken)
    with pytest.raises(RuntimeError):
        issue(plan, "2026-11-20")
    assert stored(plan) == [] and digests(plan) == []  # the digests were queued in the same transaction: rolled back


def test_no_recipients_and_unknown_plan(engine, tmp_path):
    p = bulletin_plan()
    p["plan"]["leading_group"], p["plan"]["office"] = [], []
    import_plan(engine, write_yaml(tmp_path / "bul.yaml", p), now=at("2026-09-01"))
    run = issue(engine, "2026-11-20")
    assert (run.issued, run.no_recipients) == ([], ["bul"]) and stored(engine) == []
    with pytest.raises(BulletinError, match="没有编号为“nope”的方案。已有方案：bul"):
        issue(engine, "2026-11-20", plan_code="nope")
    with pytest.raises(BulletinError, match="没有编号为“nope”的方案"):
        plans_due(engine, today=D("2026-11-20"), cal=CAL, plan_code="nope")
    assert plans_due(engine, today=D("2026-11-20"), cal=CAL) == ["bul"]
    assert plans_due(engine, today=D("2026-11-19"), cal=CAL) == []
    with session_scope(engine, readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Bulletin)) == 0
