"""The 督办通报 (bulletin) for the leading group: what is overdue, and what is overdue long enough
to be listed by name (the office level of the ladder, ``escalate_office_after`` working days).

``queue_bulletins`` writes the bulletin into the outbox like any digest (so quiet hours, retries,
delivery records and the outbox listing apply): one message to each group channel of the plan
(``plans.channels``: leading_group, office) and one to each member of the leading group and the
office through their own channels.  Once per plan and day; ``force`` sends another.

The weekly 通报 (``flows/rollup.py: weekly_bulletin``, Fridays) is the same message with the
roll-up's headline figures added (``rollup=``: completion and on-time rate, lights, the most
serious overdue items with the 督办 level reached, department scores): :func:`weekly_figures`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select

from duban.db import session_scope
from duban.models import Department, Digest, Milestone, Person, Plan, PlanRole, Task, utcnow
from duban.rules.calendar import WorkCalendar
from duban.rules.policy import effective_policy
from duban.vocabulary import OPEN_STATES, Audience, LedgerStatus, MessageKind, PlanRoleKind


class BulletinError(ValueError):
    """A bulletin that cannot be made (message in Chinese)."""


def collect(session, plan: Any, *, today: dt.date, cal: WorkCalendar) -> dict[str, Any]:
    """The bulletin's content for one plan (a payload: data only, rendered when sent)."""
    policy = effective_policy(plan.policy)
    depts = dict(session.execute(select(Department.id, Department.name).where(Department.plan_id == plan.id)).all())
    people = dict(session.execute(select(Person.id, Person.name).where(Person.plan_id == plan.id)).all())
    open_tasks = session.scalar(select(func.count(Task.id)).where(Task.plan_id == plan.id, Task.archived_at.is_(None)))
    rows = session.execute(
        select(
            Task.code,
            Task.title,
            Task.owner_id,
            Task.lead_department_id,
            Task.policy,
            Milestone.title.label("step"),
            Milestone.due_date,
            Milestone.is_final,
        )
        .join(Milestone, Milestone.task_id == Task.id)
        .where(Task.plan_id == plan.id, Task.archived_at.is_(None), Milestone.status.in_(OPEN_STATES), Milestone.due_date < today)
        .order_by(Milestone.due_date, Task.position)
    ).all()
    items = []
    for r in rows:
        late = cal.workdays_between(r.due_date, today)
        if late < 1:
            continue  # due on a day off: not late yet in working days
        office_after = effective_policy(plan.policy, r.policy).escalate_office_after if r.policy else policy.escalate_office_after
        items.append(
            {
                "code": r.code,
                "title": r.title,
                "milestone": "" if r.is_final else (r.step or ""),
                "owner": people.get(r.owner_id, ""),
                "department": depts.get(r.lead_department_id, ""),
                "due": r.due_date.isoformat(),
                "days": -late,
                "serious": late >= office_after,
            }
        )
    items.sort(key=lambda i: (not i["serious"], i["days"], i["code"]))
    by_department = Counter(i["department"] or "未指定单位" for i in items)
    office = [
        n
        for (n,) in session.execute(
            select(Person.name)
            .join(PlanRole, PlanRole.person_id == Person.id)
            .where(PlanRole.plan_id == plan.id, PlanRole.role == PlanRoleKind.OFFICE)
            .order_by(PlanRole.position)
        )
    ]
    return {
        "kind": MessageKind.BULLETIN,
        "today": today.isoformat(),
        "plan_name": plan.name,
        "organization": plan.organization,
        "open_tasks": open_tasks or 0,
        "office_after": policy.escalate_office_after,
        "items": items,
        "by_department": [[name, n] for name, n in by_department.most_common(5)],
        "office": "、".join(office),
        "office_name": f"{plan.organization}领导小组办公室" if plan.organization else "领导小组办公室",
    }


def weekly_figures(r: Any, plan_code: str, *, top: int = 10) -> dict[str, Any] | None:
    """The roll-up's headline figures for one plan (``duban.rollup.Rollup``), as payload data."""
    from duban.rollup import pct

    row = r.by_plan[r.by_plan["plan"] == plan_code]
    if row.empty:
        return None
    g = row.iloc[0]
    overdue = r.overdue[r.overdue["plan"] == plan_code].head(top)
    scores = r.assessment[r.assessment["plan"] == plan_code]
    return {
        "as_of": r.as_of.isoformat(),
        "tasks": int(g["tasks"]),
        "done_tasks": int(g["done_tasks"]),
        "completion_rate": pct(g["completion_rate"]),
        "on_time_rate": pct(g["on_time_rate"]),
        "red": int(g["red"]),
        "yellow": int(g["yellow"]),
        "green": int(g["green"]),
        "overdue_tasks": int(g["overdue_tasks"]),
        "due_soon_tasks": int(g["due_soon_tasks"]),
        "due_soon_days": r.due_soon_days,
        "awaiting": int((r.awaiting_approval["plan"] == plan_code).sum()),
        "top_overdue": [
            {
                "code": o.code,
                "title": o.title,
                "milestone": o.milestone or "",
                "department": o.department,
                "owner": o.owner,
                "due": o.due.isoformat(),
                "days": int(o.days_late),
                "level": o.level_label,
            }
            for o in overdue.itertuples()
        ],
        "departments": [
            {
                "rank": int(a.rank),
                "department": a.department,
                "score": f"{a.score:.1f}",
                "on_time_rate": pct(a.on_time_rate),
                "late_days": int(a.late_days),
                "escalations": int(a.escalations),
                "returns": int(a.returns),
            }
            for a in scores.itertuples()
        ],
    }


def subject(payload: dict[str, Any]) -> str:
    serious = sum(1 for i in payload["items"] if i.get("serious"))
    weekly = payload.get("weekly")
    if weekly:
        return (
            f"【督办通报】{payload['today']} {payload['plan_name']}（周报）：按期完成率 {weekly['on_time_rate']}，"
            f"红灯 {weekly['red']} 项，逾期 {len(payload['items'])} 项"
        )
    return f"【督办通报】{payload['today']} {payload['plan_name']}：逾期 {len(payload['items'])} 项，其中列入通报 {serious} 项"


@dataclass
class Queued:
    plan: str
    audience: str  # "领导小组（群）", a person's name …
    digest_id: int | None
    subject: str


def queue_bulletins(
    engine: Engine,
    *,
    today: dt.date,
    cal: WorkCalendar,
    plan_code: str | None = None,
    channel: str = "dispatch",
    dry_run: bool = False,
    force: bool = False,
    now: dt.datetime | None = None,
    rollup: Any = None,
) -> tuple[list[Queued], list[dict[str, Any]]]:
    """Queue today's bulletin of each plan (or ``plan_code``); return what was queued and the payloads.

    ``dry_run`` writes nothing.  A plan whose bulletin was already queued today is skipped unless ``force``.
    ``rollup`` (a ``duban.rollup.Rollup`` covering the plans) makes it the weekly 通报 with its figures.
    """
    now = now or utcnow()
    queued: list[Queued] = []
    payloads: list[dict[str, Any]] = []
    with session_scope(engine) as session:
        q = select(Plan)
        if plan_code is not None:
            q = q.where(Plan.code == plan_code)
        plans = session.scalars(q.order_by(Plan.code)).all()
        if plan_code is not None and not plans:
            known = "、".join(session.scalars(select(Plan.code).order_by(Plan.code))) or "（暂无）"
            raise BulletinError(f"没有编号为“{plan_code}”的方案。已有方案：{known}")
        for plan in plans:
            if (
                not force
                and not dry_run
                and session.scalar(
                    select(Digest.id)
                    .where(Digest.plan_id == plan.id, Digest.run_on == today, Digest.subject.like("【督办通报】%"))
                    .limit(1)
                )
            ):
                continue
            payload = collect(session, plan, today=today, cal=cal)
            if rollup is not None:
                payload["weekly"] = weekly_figures(rollup, plan.code)
            payloads.append(payload)
            title = subject(payload)
            targets: list[tuple[str, int | None, str]] = []  # (audience, person id, display name)
            for key, name in ((Audience.LEADING_GROUP, "领导小组（群）"), (Audience.OFFICE, "领导小组办公室（群）")):
                if (plan.channels or {}).get(key):
                    targets.append((key, None, name))
            members = session.execute(
                select(Person.id, Person.name, PlanRole.role)
                .join(PlanRole, PlanRole.person_id == Person.id)
                .where(
                    PlanRole.plan_id == plan.id,
                    PlanRole.role.in_((PlanRoleKind.LEADING_GROUP, PlanRoleKind.OFFICE)),
                    Person.active.is_(True),
                )
                .order_by(PlanRole.role, PlanRole.position)
            ).all()
            seen: set[int] = set()
            for m in members:
                if m.id not in seen:
                    seen.add(m.id)
                    targets.append((Audience.PERSON, m.id, m.name))
            for audience, person_id, name in targets:
                greeting = f"{name}同志" if person_id else ("领导小组各位领导" if audience == Audience.LEADING_GROUP else "办公室各位同事")
                body = {**payload, "audience_name": greeting, "recipient": name}
                digest_id = None
                if not dry_run:
                    digest = Digest(
                        plan_id=plan.id,
                        audience=audience,
                        recipient_id=person_id,
                        channel=channel,
                        run_on=today,
                        subject=title[:300],
                        payload=body,
                        items=len(payload["items"]),
                        status=LedgerStatus.PENDING,
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                    session.add(digest)
                    session.flush()
                    digest_id = digest.id
                queued.append(Queued(plan.code, name, digest_id, title))
    return queued, payloads
