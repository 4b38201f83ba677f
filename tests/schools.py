"""Two schools in one installation (issue 18's isolation tests): school ``a`` with two plans,
school ``b`` with one plan that has a task, a person and a plan name no one else has, so that a
leak shows as text on a page; helpers to issue links in a named plan and to read what the store
holds (to show that a refused request changed nothing)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from duban.db import session_scope
from duban.link_tokens import link_token
from duban.links import LinkSpec, issue
from duban.models import Digest, Institution, Milestone, Person, Plan, Review, ReviewItem, SupervisionNotice, Task
from duban.reviews import api as reviews
from duban.vocabulary import LedgerStatus
from tests.conftest import PINNED_DAY
from tests.factories import import_announced, small_plan, write_yaml
from tests.web_helpers import snapshot

# words only school b's data holds: none of them may reach school a's pages or output
B_WORDS = ["乙学院方案", "乙校专属任务", "乙校处长", "乙校实践育人"]
A_WORDS = ["甲大学方案", "甲大学专项方案"]


def school_a() -> dict[str, Any]:
    d = small_plan()
    d["plan"].update(code="a-2026", name="甲大学方案", organization="甲大学")
    return d


def school_a_extra() -> dict[str, Any]:
    """School a's second plan: its office person is 甲校督办员 (so 督办员 names one person in school a)."""
    d = small_plan()
    d["plan"].update(code="a-extra", name="甲大学专项方案", organization="甲大学", office=["甲校督办员"])
    for p in d["people"]:
        if p["name"] == "督办员":
            p["name"] = "甲校督办员"
    return d


def school_b() -> dict[str, Any]:
    d = small_plan()
    d["plan"].update(code="b-2026", name="乙学院方案", organization="乙学院")
    d["people"].append({"name": "乙校处长", "department": "教务处", "email": "yx@example.org"})
    d["systems"].append(
        {
            "name": "乙校实践育人",
            "projects": [
                {
                    "name": "社会实践",
                    "tasks": [
                        {
                            "code": "9",
                            "title": "乙校专属任务",
                            "owner": "乙校处长",
                            "lead_department": "教务处",
                            "deadline": "2026年11月10日",
                        }
                    ],
                }
            ],
        }
    )
    return d


def import_schools(engine, folder: Path, *, announced: bool = True) -> None:
    """a-2026 and a-extra (school a), b-2026 (school b); announced as at a launch meeting unless not."""
    from duban.plans.importer import import_plan

    load = import_announced if announced else import_plan
    for name, data, inst in (("a", school_a(), "a"), ("a2", school_a_extra(), "a"), ("b", school_b(), "b")):
        load(engine, write_yaml(folder / f"{name}.yaml", data), institution=inst)


def ids(engine, plan: str, *, task: str | None = None, person: str | None = None) -> dict[str, int]:
    """The ids of a plan, one of its tasks (and its first step), one of its people."""
    with session_scope(engine, readonly=True) as s:
        out = {"plan": s.scalar(select(Plan.id).where(Plan.code == plan))}
        if task is not None:
            out["task"] = s.scalar(select(Task.id).where(Task.plan_id == out["plan"], Task.code == task))
            out["step"] = s.scalar(select(Milestone.id).where(Milestone.task_id == out["task"]).order_by(Milestone.seq).limit(1))
        if person is not None:
            out["person"] = s.scalar(select(Person.id).where(Person.plan_id == out["plan"], Person.name == person))
    return out


def link(engine, secret: str, plan: str, person: str, action: str, task: str | None = None, *, step: bool = False) -> str:
    """A signed action link of ``person`` in ``plan`` (as the sweep issues it)."""
    i = ids(engine, plan, task=task, person=person)
    expires = PINNED_DAY + dt.timedelta(days=60)
    spec = LinkSpec(i["plan"], i["person"], action, i.get("task"), i.get("step") if step else None, expires)
    with session_scope(engine) as s:
        [lid] = issue(s, [spec], secret=secret, today=PINNED_DAY)
    return link_token(secret, lid, action, expires)


def store(engine) -> dict[str, Any]:
    """Everything a dashboard or link action could change (to show a refusal changed nothing)."""
    out = snapshot(engine)
    with session_scope(engine, readonly=True) as s:
        out["reviews"] = [(r.id, r.status) for r in s.scalars(select(Review).order_by(Review.id))]
        out["items"] = [(i.id, i.status, i.verdict) for i in s.scalars(select(ReviewItem).order_by(ReviewItem.id))]
        out["notices"] = s.scalars(select(SupervisionNotice.id).order_by(SupervisionNotice.id)).all()
        out["owners"] = [(t.id, t.owner_id, t.archived_at) for t in s.scalars(select(Task).order_by(Task.id))]
    return out


def start_b_review(engine, *, ask: str, reports_dir: Path) -> int:
    """School b's 专项督查 of its own task 9 (乙校专项督查), started on the pinned day; its id."""
    return reviews.start(
        engine,
        plan_code="b-2026",
        scope_kind="tasks",
        scope_values=["9"],
        reply_by=PINNED_DAY + dt.timedelta(days=10),
        ask=ask,
        today=PINNED_DAY,
        started_by="督办员",
        reports_dir=reports_dir,
        title="乙校专项督查",
    ).review_id


def sent_by_institution(engine) -> Counter:
    """Messages sent, by (institution code, recipient name)."""
    with session_scope(engine, readonly=True) as session:
        rows = session.execute(
            select(Institution.code, Person.name, func.count())
            .select_from(Digest)
            .join(Plan, Plan.id == Digest.plan_id)
            .join(Institution, Institution.id == Plan.institution_id)
            .join(Person, Person.id == Digest.recipient_id)
            .where(Digest.status == LedgerStatus.SENT)
            .group_by(Institution.code, Person.name)
        ).all()
    return Counter({(code, name): n for code, name, n in rows})
