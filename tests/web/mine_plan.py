"""A literal plan for 我的督办: the 教务处处长 holds nine tasks in every state a page shows
(overdue, due soon, a report due, waiting for review, an approved extension, finished), and the
教务处副处长 one of their own (tests/web/test_my_pages.py, tests/web/test_browser_mine.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select, update

from duban.db import session_scope
from duban.link_tokens import link_token
from duban.links import LinkMaker, issue
from duban.models import Milestone, Person, Plan, Task
from duban.vocabulary import MilestoneState
from tests.conftest import PINNED_DAY
from tests.factories import import_announced, small_plan, write_yaml
from tests.web_helpers import IMPORTED, SECRET

OWNER = "教务处处长"
MORE = [
    ("5", "修订人才培养方案", "2026年11月10日前", None),
    ("6", "课堂教学质量评价", "2026年12月3日前", None),
    ("7", "教材选用审查", "2027年3月底前", None),
    ("8", "实验室安全检查", "长期坚持", "每月"),
    ("9", "教学督导工作总结", "2027年6月底前", None),
    ("10", "课程思政示范课", "2026年12月20日前", None),
    ("11", "教学档案整理", "2026年10月31日前", None),
    ("12", "毕业论文抽检", "2027年5月底前", None),
]
# the open tasks in the page's order: overdue first (the latest first), then by due date
OPEN_ORDER = ["5", "1", "8", "6", "10", "7", "12", "9"]
WAITING = ["1", "5", "6", "7", "8", "10", "12"]  # 待签收 (7)
EXTENDED_TO = dt.date(2027, 1, 15)


def definition() -> dict:
    d = small_plan()
    tasks = d["systems"][0]["projects"][0]["tasks"]
    for code, title, deadline, every in MORE:
        t = {"code": code, "title": title, "owner": OWNER, "lead_department": "教务处", "deadline": deadline}
        if every:
            t["report_every"] = every
        tasks.append(t)
    return d


def import_mine(engine, folder: Path) -> None:
    """Import the plan (announced on 2026-11-02), then as the office and the owner would have
    left it: 9 signed and submitted for review, 10's date moved by an approved extension, 11 done."""
    import_announced(engine, write_yaml(folder / "plan.yaml", definition()), now=IMPORTED)
    with session_scope(engine) as s:
        ids = dict(s.execute(select(Task.code, Task.id)).all())
        at = IMPORTED + dt.timedelta(days=3)
        s.execute(update(Task).where(Task.id.in_([ids["9"], ids["11"]])).values(acknowledged_at=at))
        s.execute(update(Milestone).where(Milestone.task_id == ids["9"]).values(status=MilestoneState.SUBMITTED, submitted_at=at))
        s.execute(update(Milestone).where(Milestone.task_id == ids["11"]).values(status=MilestoneState.DONE, completed_at=at))
        s.execute(update(Milestone).where(Milestone.task_id == ids["10"]).values(due_date=EXTENDED_TO, due_version=2))


def mine_token(engine, name: str = OWNER, *, today: dt.date = PINNED_DAY) -> str:
    """The person's 我的督办 link, issued as a digest issues it."""
    maker = LinkMaker("http://testserver", SECRET, today)
    with session_scope(engine) as s:
        pid, plan_id = s.execute(select(Person.id, Person.plan_id).where(Person.name == name)).one()
        spec = maker.mine(pid, plan_id)
        (lid,) = issue(s, [spec], secret=SECRET, today=today)
        return link_token(SECRET, lid, spec.action, spec.expires)


def plan_id(engine) -> int:
    with session_scope(engine) as s:
        return s.scalar(select(Plan.id))
