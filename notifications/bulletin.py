"""The 督办通报 (bulletin) for the leading group, as messages: what is overdue, and what is overdue
long enough to be listed by name (the office level of the ladder, ``escalate_office_after``
working days) — :func:`collect` — and who receives it and its digests — :func:`recipients`,
:func:`queue_digests`.

Issuing a numbered bulletin (周通报 / 月通报 with its 期号, the roll-up's figures and the 考核
ranking) is ``duban.rollup.bulletins.issue_bulletins``, which calls these in the transaction that
records the issue.  The digests go through the outbox like any other (quiet hours, retries,
delivery records and the outbox listing apply): one message to each group channel of the plan
(``plans.channels``: leading_group, office) and one to each member of the leading group and the
office through their own channels.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from duban.models import Department, Digest, Milestone, Person, PlanRole, Task
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


def subject(payload: dict[str, Any]) -> str:
    """The message's subject: the issue's title and period with its headline figures."""
    items = payload["items"]
    issue = payload.get("bulletin")
    if issue is None:  # a message queued before bulletins had issue numbers
        serious = sum(1 for i in items if i.get("serious"))
        return f"【督办通报】{payload['today']} {payload['plan_name']}：逾期 {len(items)} 项，其中列入通报 {serious} 项"
    figures = payload.get("figures") or {}
    rate = f"按期完成率 {figures['on_time_rate']}，" if figures else ""
    which = f"{issue['kind_label']}·第 {issue['number']} 期，{issue['period']}"
    return f"【督办通报】{payload['plan_name']}（{which}）：{rate}逾期 {len(items)} 项"


@dataclass
class Queued:
    plan: str
    audience: str  # "领导小组（群）", a person's name …
    digest_id: int | None
    subject: str


def recipients(session, plan: Any) -> list[tuple[str, int | None, str]]:
    """Who receives a plan's bulletin: (audience, person id or None, name) for each group channel
    of the plan (leading group, office) and each active member of the leading group and the office."""
    targets: list[tuple[str, int | None, str]] = []
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
    return targets


def queue_digests(
    session,
    plan: Any,
    payload: dict[str, Any],
    targets: list[tuple[str, int | None, str]],
    *,
    today: dt.date,
    channel: str,
    now: dt.datetime,
    dry_run: bool = False,
) -> list[Queued]:
    """One pending digest per target carrying the bulletin (none written in a ``dry_run``)."""
    title = subject(payload)
    queued: list[Queued] = []
    for audience, person_id, name in targets:
        greeting = f"{name}同志" if person_id else ("领导小组各位领导" if audience == Audience.LEADING_GROUP else "办公室各位同事")
        digest_id = None
        if not dry_run:
            digest = Digest(
                plan_id=plan.id,
                audience=audience,
                recipient_id=person_id,
                channel=channel,
                run_on=today,
                subject=title[:300],
                payload={**payload, "audience_name": greeting, "recipient": name},
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
    return queued
