"""The deadline sweep as library steps; the Prefect flows in ``flows/`` only call these.

1. ``decide``: load open tasks and milestones, apply the rules, and write each decision to the
   ledger (``notifications``) under its unique key, before anything is sent.  Re-running, a
   retry or a second sweep at the same time adds nothing that is already there.
2. ``assemble``: gather each recipient's pending items into one digest (the outbox), in the same
   transaction that marks the items as queued.
3. ``deliver``: claim pending digests (a lease protects against two senders), send them through
   the channel, mark them sent; failures are kept with their reason and retried with backoff.
   A crash between sending and marking re-sends at most that one digest when its lease expires.

``preview`` runs step 1 without writing: who would receive what today.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session

from duban.db import session_scope
from duban.links import ACTIONS, LinkSpec, issue as issue_links, urls as link_urls
from duban.models import (
    ARCHIVED,
    ASSIGNED,
    FAILED,
    PENDING,
    QUEUED,
    REQUEST_PENDING,
    SENDING,
    SENT,
    Department,
    Digest,
    Delivery,
    Event,
    Milestone,
    Notification,
    Person,
    Plan,
    PlanRole,
    Request,
    Task,
    utcnow,
)
from duban.rules.calendar import WorkCalendar
from duban.rules.deadlines import (
    APPROVAL_WAITING,
    ESCALATION,
    Decision,
    MilestoneView,
    TaskView,
    approval_reminder,
    decide as decide_task,
)
from duban.rules.policy import DeadlinePolicy, effective_policy
from notifications.digest import describe, render_subject

PROGRESS_REPORTED = "progress_reported"
# events that count as the period's report (反馈): a progress report, and an answer to a 督查
REPORT_EVENTS = (PROGRESS_REPORTED, "review_answered")
LEASE = dt.timedelta(minutes=10)
MAX_BACKOFF = dt.timedelta(hours=6)
FIRST_BACKOFF = dt.timedelta(minutes=5)
KIND_ORDER = {"overdue": 0, "report_overdue": 1, "escalation": 2, "due": 3, "report_due": 4, "ack": 5}


@dataclass
class Loaded:
    """What the rules need, loaded in a handful of queries."""

    tasks: list[tuple[TaskView, DeadlinePolicy]]
    people: dict[int, tuple[str, str | None]]  # id -> (name, department name)


def _local_date(value: dt.datetime | None, tz) -> dt.date | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(tz).date()


def load(session: Session, *, tz, plan_code: str | None = None, task_code: str | None = None) -> Loaded:
    plans = {p.id: p for p in session.execute(select(Plan.id, Plan.code, Plan.name, Plan.policy))}
    if plan_code is not None:
        plans = {k: v for k, v in plans.items() if v.code == plan_code}
    plan_ids = list(plans)
    task_q = (
        select(
            Task.id, Task.plan_id, Task.code, Task.title, Task.owner_id, Task.schedule, Task.period, Task.period_month,
            Task.supervisor_id, Task.lead_department_id, Task.assigned_at, Task.acknowledged_at, Task.policy,
        )
        .where(Task.archived_at.is_(None), Task.plan_id.in_(plan_ids))
    )
    if task_code is not None:
        task_q = task_q.where(Task.code == task_code)
    task_rows = session.execute(task_q).all()
    task_ids = [t.id for t in task_rows]

    depts = {d.id: d for d in session.execute(select(Department.id, Department.name, Department.head_id, Department.supervisor_id).where(Department.plan_id.in_(plan_ids)))}
    people_rows = session.execute(select(Person.id, Person.name, Person.manager_id, Person.department_id).where(Person.plan_id.in_(plan_ids))).all()
    people = {p.id: (p.name, depts[p.department_id].name if p.department_id in depts else None) for p in people_rows}
    managers = {p.id: p.manager_id for p in people_rows}
    office: dict[int, list[int]] = defaultdict(list)
    for r in session.execute(select(PlanRole.plan_id, PlanRole.person_id).where(PlanRole.role == "office", PlanRole.plan_id.in_(plan_ids)).order_by(PlanRole.position)):
        office[r.plan_id].append(r.person_id)

    ms: dict[int, list[MilestoneView]] = defaultdict(list)
    started: set[int] = set()
    last_report: dict[int, dt.date] = {}
    for chunk in _chunks(task_ids, 20000):
        for m in session.execute(
            select(Milestone.id, Milestone.task_id, Milestone.seq, Milestone.title, Milestone.due_date, Milestone.due_version, Milestone.status, Milestone.is_final)
            .where(Milestone.task_id.in_(chunk), Milestone.status != ARCHIVED)
        ):
            ms[m.task_id].append(MilestoneView(m.id, m.seq, m.title, m.due_date, m.due_version, m.status, m.is_final))
            if m.status != ASSIGNED:
                started.add(m.task_id)
        for tid, at in session.execute(
            select(Event.task_id, func.max(Event.at)).where(Event.task_id.in_(chunk), Event.kind.in_(REPORT_EVENTS)).group_by(Event.task_id)
        ):
            last_report[tid] = _local_date(at, tz)

    plan_policy = {pid: effective_policy(p.policy) for pid, p in plans.items()}
    out = []
    for t in task_rows:
        dept = depts.get(t.lead_department_id)
        supervisor = t.supervisor_id or (dept.supervisor_id if dept else None)
        view = TaskView(
            id=t.id, plan_id=t.plan_id, code=t.code, title=t.title, owner_id=t.owner_id, schedule=t.schedule,
            period=t.period, period_month=t.period_month, head_id=dept.head_id if dept else None,
            owner_manager_id=managers.get(t.owner_id), supervisor_id=supervisor, office_ids=tuple(office.get(t.plan_id, ())),
            assigned_on=_local_date(t.assigned_at, tz), acknowledged=t.acknowledged_at is not None or t.id in started,
            last_report_on=last_report.get(t.id), milestones=tuple(sorted(ms.get(t.id, ()), key=lambda m: m.seq)),
        )
        policy = effective_policy(plans[t.plan_id].policy, t.policy) if t.policy else plan_policy[t.plan_id]
        out.append((view, policy))
    return Loaded(out, people)


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def decisions_for(loaded: Loaded, cal: WorkCalendar, today: dt.date) -> list[Decision]:
    out: list[Decision] = []
    for view, policy in loaded.tasks:
        for d in decide_task(view, policy, cal, today):
            owner, dept = loaded.people.get(view.owner_id, ("", None))
            d.data.update(owner=owner, department=dept, plan=view.plan_id)
            out.append(d)
    return out


def approval_decisions(session: Session, cal: WorkCalendar, today: dt.date, *, tz, plan_code: str | None = None,
                       task_code: str | None = None) -> list[Decision]:
    """Completions and extensions waiting too long for the office: a reminder to each reviewer
    (rules: ``approval_reminder``), carrying what the original request said and its links."""
    from duban.links import reviewers

    q = (
        select(Request.id, Request.plan_id, Request.task_id, Request.milestone_id, Request.person_id, Request.kind,
               Request.created_at, Task.code, Task.title, Task.policy.label("task_policy"), Plan.policy.label("plan_policy"),
               Milestone.due_date)
        .join(Task, Task.id == Request.task_id).join(Plan, Plan.id == Request.plan_id)
        .outerjoin(Milestone, Milestone.id == Request.milestone_id)
        .where(Request.status == REQUEST_PENDING, Task.archived_at.is_(None))
    )
    if plan_code is not None:
        q = q.where(Plan.code == plan_code)
    if task_code is not None:
        q = q.where(Task.code == task_code)
    waiting = []
    for r in session.execute(q):
        reached = approval_reminder(_local_date(r.created_at, tz), effective_policy(r.plan_policy, r.task_policy), cal, today)
        if reached is not None:
            waiting.append((r, *reached))
    if not waiting:
        return []
    asked = {r.id: reviewers(session, r.plan_id, exclude=r.person_id) for r, _, _ in waiting}
    originals = dict(session.execute(select(Notification.key, Notification.data).where(
        Notification.key.in_([f"approval:r{rid}:p{pid}" for rid, pids in asked.items() for pid in pids]))).all())
    out = []
    for r, step, waited in waiting:
        for pid in asked[r.id]:
            data = dict(originals.get(f"approval:r{r.id}:p{pid}") or {"code": r.code, "title": r.title, "request": r.id,
                                                                         "request_kind": r.kind})
            data.update(waited=waited, submitted_on=_local_date(r.created_at, tz).isoformat(), plan=r.plan_id)
            out.append(Decision(key=f"{APPROVAL_WAITING}:r{r.id}:p{pid}:n{step}", kind=APPROVAL_WAITING, recipient_id=pid,
                                task_id=r.task_id, milestone_id=r.milestone_id, due=r.due_date, days=-waited, data=data))
    return out


@dataclass
class DecideResult:
    decided: int  # decisions the rules made today
    new: int  # of those, not in the ledger before (written now)
    warnings: list[str]


def _insert_ignore(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert ledger rows, skipping keys already there (two sweeps at once included).

    Core ``INSERT … ON CONFLICT DO NOTHING RETURNING id`` in batches: the returned rows are the
    new ones. (The ORM bulk path splits rows into many small batches by which columns are None
    and merges their results quadratically: 15 s instead of 1 s for 45,000 decisions.)
    """
    if not rows:
        return 0
    table = Notification.__table__
    if session.bind.dialect.name == "postgresql":
        return _insert_ignore_postgresql(session, rows)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    stmt = sqlite_insert(table).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.id)
    inserted = 0
    for chunk in _chunks(rows, 5000):
        inserted += len(session.execute(stmt, chunk).all())
    return inserted


_LEDGER_COLUMNS = (
    ("key", "text"), ("plan_id", "int"), ("task_id", "int"), ("milestone_id", "int"), ("recipient_id", "int"),
    ("kind", "text"), ("level", "int"), ("due_date", "date"), ("days", "int"), ("decided_on", "date"),
    ("created_at", "timestamptz"), ("status", "text"), ("data", "json"),
)
_LEDGER_UNNEST = text(
    f"INSERT INTO notifications ({', '.join(c for c, _ in _LEDGER_COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'CAST(:{c} AS {t}[])' for c, t in _LEDGER_COLUMNS)}) "
    "ON CONFLICT (key) DO NOTHING RETURNING id"
)


def _insert_ignore_postgresql(session: Session, rows: list[dict[str, Any]]) -> int:
    """PostgreSQL: one statement per 20,000 rows, the values as arrays (``unnest``): psycopg
    otherwise spends most of a province sweep rewriting 1,000-row multi-VALUES statements."""
    import json

    inserted = 0
    for chunk in _chunks(rows, 20000):
        params = {c: [r[c] for r in chunk] for c, _ in _LEDGER_COLUMNS if c != "data"}
        params["data"] = [json.dumps(r["data"], ensure_ascii=False) for r in chunk]
        inserted += len(session.execute(_LEDGER_UNNEST, params).all())
    return inserted


def decide(engine: Engine, *, today: dt.date, cal: WorkCalendar, tz, plan_code: str | None = None, task_code: str | None = None) -> DecideResult:
    """Apply the rules and write new decisions to the ledger (one transaction)."""
    now = utcnow()
    with session_scope(engine) as session:
        loaded = load(session, tz=tz, plan_code=plan_code, task_code=task_code)
        decisions = decisions_for(loaded, cal, today) + approval_decisions(session, cal, today, tz=tz, plan_code=plan_code, task_code=task_code)
        existing = _existing_keys(session, [d.key for d in decisions])
        rows = [
            {
                "key": d.key, "plan_id": d.data["plan"], "task_id": d.task_id, "milestone_id": d.milestone_id,
                "recipient_id": d.recipient_id, "kind": d.kind, "level": d.level, "due_date": d.due, "days": d.days,
                "decided_on": today, "status": PENDING, "data": {k: v for k, v in d.data.items() if k != "plan"},
                "created_at": now, "digest_id": None,
            }
            for d in decisions
            if d.key not in existing
        ]
        new = _insert_ignore(session, rows)
    return DecideResult(decided=len(decisions), new=new, warnings=cal.warnings)


def _existing_keys(session: Session, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(keys, 5000):
        found.update(session.scalars(select(Notification.key).where(Notification.key.in_(chunk))))
    return found


@dataclass
class PreviewItem:
    recipient: str
    kind: str
    code: str
    title: str
    line: str


def preview(engine: Engine, *, today: dt.date, cal: WorkCalendar, tz, plan_code: str | None = None, task_code: str | None = None) -> list[PreviewItem]:
    """Who would receive what today (decisions not yet in the ledger), writing nothing."""
    factory_session = Session(engine.execution_options(duban_readonly=True))
    try:
        loaded = load(factory_session, tz=tz, plan_code=plan_code, task_code=task_code)
        decisions = decisions_for(loaded, cal, today) + approval_decisions(factory_session, cal, today, tz=tz, plan_code=plan_code,
                                                                           task_code=task_code)
        existing = _existing_keys(factory_session, [d.key for d in decisions])
    finally:
        factory_session.rollback()
        factory_session.close()
    items = [
        PreviewItem(loaded.people.get(d.recipient_id, ("?", None))[0], d.kind, d.data["code"], d.data["title"],
                    describe(d.kind, d.level, d.due, d.days, d.data))
        for d in decisions
        if d.key not in existing
    ]
    return sorted(items, key=lambda i: (i.recipient, KIND_ORDER.get(i.kind, 9), i.code))


# ---------------------------------------------------------------------------------------------
# Digests (outbox)


@dataclass
class LinkMaker:
    """Which action links each ledger item carries, and how long they last (the links issue)."""

    base_url: str
    secret: str
    today: dt.date
    days_after_due: int = 60

    def specs(self, n: Any, plan_id: int) -> list[LinkSpec]:
        expires = max(self.today, n.due_date or self.today) + dt.timedelta(days=self.days_after_due)
        data = n.data or {}

        def spec(action: str, milestone: int | None = None, *, request: int | None = None, task: Any = n.task_id,
                 review: int | None = None, review_item: int | None = None) -> LinkSpec:
            return LinkSpec(plan_id=plan_id, person_id=n.recipient_id, action=action, task_id=task, milestone_id=milestone,
                            expires=expires, request_id=request, review_id=review, review_item_id=review_item)

        if n.kind.startswith("review_"):  # reviews (督查, duban.reviews)
            if n.kind in ("review_request", "review_reminder", "review_overdue"):
                return [spec("review_answer", review_item=data.get("item"))]
            if n.kind == "review_verdicts":
                return [spec("review_verdict", task=None, review=data.get("review"))]
            if n.kind == "review_report":
                return [spec("review_report", task=None, review=data.get("review"))]
            if n.kind == "review_follow_up" and data.get("task_owner", True):
                return [spec("progress"), spec("done", n.milestone_id), spec("extend", n.milestone_id)]
            return [spec("view")] if n.task_id is not None else []
        if n.task_id is None:  # a notice about no task (e.g. someone unreachable): nothing to act on
            return []
        if n.kind == ESCALATION or n.kind == "approved":
            return [spec("view")]
        if n.kind in ("approval", APPROVAL_WAITING):  # to a reviewer: this request, and the list of all that wait
            return [spec("review", n.milestone_id, request=data.get("request")), spec("queue", task=None)]
        if n.kind == "relink":
            action = data.get("action", "view")
            if action == "queue":
                return [spec("queue", task=None)]
            if action == "review":
                return [spec("review", n.milestone_id, request=data.get("request")), spec("queue", task=None)]
            return [spec(action, n.milestone_id if action in ("done", "extend") else None)]
        out = []
        if n.kind == "ack":
            out.append(spec("ack"))
        out.append(spec("progress"))
        if n.milestone_id is not None:
            out += [spec("done", n.milestone_id), spec("extend", n.milestone_id)]
        return out

    def urls(self, session: Session, ids: list[int]) -> dict[int, str]:
        return link_urls(session, ids, base_url=self.base_url, secret=self.secret)


def assemble(engine: Engine, *, today: dt.date, links: LinkMaker, channel: str = "outbox", template_dir: Path | None = None,
             recipients: Iterable[int] | None = None, now: dt.datetime | None = None) -> int:
    """One digest per recipient for their pending ledger items; returns digests created.

    Core statements throughout (no ORM objects): a province run assembles ~15,000 digests, and
    an ORM session holding every item would re-check them all on each flush.
    """
    n_tab, d_tab = Notification.__table__, Digest.__table__
    with session_scope(engine) as session:
        q = select(
            n_tab.c.id, n_tab.c.recipient_id, n_tab.c.task_id, n_tab.c.milestone_id, n_tab.c.kind, n_tab.c.level,
            n_tab.c.due_date, n_tab.c.days, n_tab.c.data,
        ).where(n_tab.c.status == PENDING, n_tab.c.digest_id.is_(None))
        if recipients is not None:
            q = q.where(n_tab.c.recipient_id.in_(list(recipients)))
        pending = session.execute(q.order_by(n_tab.c.recipient_id, n_tab.c.id).with_for_update(skip_locked=True)).all()
        if not pending:
            return 0
        by_recipient: dict[int, list[Any]] = defaultdict(list)
        for n in pending:
            by_recipient[n.recipient_id].append(n)
        people = {p.id: p for p in session.execute(select(Person.id, Person.name, Person.plan_id).where(Person.id.in_(list(by_recipient))))}
        plan_names = dict(session.execute(select(Plan.id, Plan.name)).all())
        office_names = defaultdict(list)
        for plan_id, name in session.execute(select(PlanRole.plan_id, Person.name).join(Person, Person.id == PlanRole.person_id).where(PlanRole.role == "office").order_by(PlanRole.position)):
            office_names[plan_id].append(name)
        specs: list[LinkSpec] = []
        spans: dict[int, tuple[int, int]] = {}
        for n in pending:
            plan_id = people[n.recipient_id].plan_id
            start = len(specs)
            specs += links.specs(n, plan_id)
            spans[n.id] = (start, len(specs))
        link_ids = issue_links(session, specs, secret=links.secret, today=today, now=now)
        history = _history(session, [n for n in pending if n.kind == ESCALATION])
        digests, members = [], []
        for rid, items in by_recipient.items():
            person = people[rid]
            entries = sorted(
                (
                    {"kind": n.kind, "level": n.level, "code": n.data.get("code", ""), "title": n.data.get("title", ""),
                     "milestone": n.data.get("milestone", "") if n.milestone_id else "", "task_id": n.task_id,
                     "due": n.due_date.isoformat() if n.due_date else None, "days": n.days,
                     "line": notice_line(n.kind, n.data) if n.kind in NOTICE_KINDS else describe(n.kind, n.level, n.due_date, n.days, n.data),
                     "links": [[ACTIONS[specs[i].action], link_ids[i]] for i in range(*spans[n.id])],
                     "sort": [KIND_ORDER.get(n.kind, 9), n.days, n.data.get("code", ""), n.id],
                     **({"history": history[n.id]} if history.get(n.id) else {})}
                    for n in items
                ),
                key=lambda e: e["sort"],
            )
            payload = {"recipient": person.name, "today": today.isoformat(), "plan_name": plan_names.get(person.plan_id, ""),
                       "office": "、".join(office_names.get(person.plan_id, [])), "items": entries}
            digests.append({"plan_id": person.plan_id, "audience": "person", "recipient_id": rid, "department_id": None, "channel": channel,
                            "run_on": today, "subject": render_subject(payload), "body": "", "payload": payload, "items": len(items),
                            "status": PENDING, "attempts": 0, "next_attempt_at": now or utcnow(), "created_at": utcnow()})
            members.append([n.id for n in items])
        for group in _department_digests(session, pending, history, people, plan_names, office_names, today=today, channel=channel, now=now):
            digests.append(group)
            members.append([])  # a copy for a group bot: the ledger items belong to the person's digest
        for start in range(0, len(digests), 2000):
            chunk = digests[start : start + 2000]
            ids = session.execute(d_tab.insert().returning(d_tab.c.id, sort_by_parameter_order=True), chunk).scalars().all()
            session.execute(
                n_tab.update().where(n_tab.c.id == bindparam("nid")).values(digest_id=bindparam("did"), status=QUEUED),
                [{"nid": nid, "did": did} for did, group in zip(ids, members[start : start + 2000]) for nid in group],
            )
    return len(digests)


HISTORY_LABELS = {"overdue": "逾期提醒", "report_overdue": "催报", "due": "到期提醒", "report_due": "反馈提醒", "ack": "签收提醒"}
ESCALATION_SHORT = {1: "部门负责人督办", 2: "分管校领导督办", 3: "领导小组办公室督办"}
UNREACHABLE = "unreachable"
NOTICE_KINDS = {UNREACHABLE}


def notice_line(kind: str, data: dict[str, Any]) -> str:
    """The line of a notice about the system itself (not about a task)."""
    who = data.get("person", "")
    if data.get("department"):
        who += f"（{data['department']}）"
    return (f"{who}的督办通知已连续 {data.get('attempts', 0)} 次发送失败，目前无法送达：{data.get('reason', '')}。"
            "请核实其邮箱和通知地址（在人员表中改正后重新导入），并电话告知待办事项")


def _history(session: Session, escalations: list[Any]) -> dict[int, list[str]]:
    """For each escalation item, what was already sent about the same task and step (oldest first)."""
    if not escalations:
        return {}
    n_tab = Notification.__table__
    task_ids = sorted({n.task_id for n in escalations if n.task_id is not None})
    rows: dict[int, list[Any]] = defaultdict(list)
    for chunk in _chunks(task_ids, 5000):
        for r in session.execute(
            select(n_tab.c.task_id, n_tab.c.milestone_id, n_tab.c.kind, n_tab.c.level, n_tab.c.decided_on, Person.name)
            .join(Person, Person.id == n_tab.c.recipient_id)
            .where(n_tab.c.task_id.in_(chunk), n_tab.c.status == SENT)
            .order_by(n_tab.c.decided_on, n_tab.c.id)
        ):
            rows[r.task_id].append(r)
    out: dict[int, list[str]] = {}
    for n in escalations:
        lines = [
            f"{r.decided_on.month}月{r.decided_on.day}日 "
            + (ESCALATION_SHORT.get(r.level, "督办") if r.kind == ESCALATION else HISTORY_LABELS.get(r.kind, r.kind))
            + f"（{r.name}）"
            for r in rows.get(n.task_id, ())
            if n.milestone_id is None or r.milestone_id in (None, n.milestone_id)
        ]
        if lines:
            out[n.id] = lines[-8:]
    return out


def _department_digests(session: Session, pending: list[Any], history: dict[int, list[str]], people, plan_names, office_names, *,
                        today: dt.date, channel: str, now: dt.datetime | None) -> list[dict[str, Any]]:
    """A copy of today's escalations for the group bot of each lead department that has one.

    Without action links: a link is signed for one person, and anyone in a group could use it.
    """
    escalations = [n for n in pending if n.kind == ESCALATION and n.task_id is not None]
    if not escalations:
        return []
    tasks = dict(session.execute(select(Task.id, Task.lead_department_id).where(Task.id.in_(sorted({n.task_id for n in escalations})))).all())
    depts = {
        d.id: d for d in session.execute(
            select(Department.id, Department.name, Department.plan_id, Department.notify_urls)
            .where(Department.id.in_(sorted({v for v in tasks.values() if v is not None})))
        ) if d.notify_urls
    }
    by_dept: dict[int, dict[tuple, Any]] = defaultdict(dict)
    for n in escalations:
        did = tasks.get(n.task_id)
        if did in depts:
            by_dept[did].setdefault((n.task_id, n.milestone_id, n.level, bool(n.data.get("ack")), bool(n.data.get("report"))), n)
    out = []
    for did, chosen in by_dept.items():
        d = depts[did]
        entries = sorted(
            ({"kind": n.kind, "level": n.level, "code": n.data.get("code", ""), "title": n.data.get("title", ""),
              "milestone": n.data.get("milestone", "") if n.milestone_id else "", "task_id": n.task_id,
              "due": n.due_date.isoformat() if n.due_date else None, "days": n.days,
              "line": describe(n.kind, n.level, n.due_date, n.days, n.data), "links": [],
              "sort": [KIND_ORDER.get(n.kind, 9), n.days, n.data.get("code", ""), n.id],
              **({"history": history[n.id]} if history.get(n.id) else {})}
             for n in chosen.values()),
            key=lambda e: e["sort"],
        )
        payload = {"recipient": f"{d.name}各位同事", "today": today.isoformat(), "plan_name": plan_names.get(d.plan_id, ""),
                   "office": "、".join(office_names.get(d.plan_id, [])), "items": entries}
        out.append({"plan_id": d.plan_id, "audience": "department", "recipient_id": None, "department_id": did, "channel": channel,
                    "run_on": today, "subject": render_subject(payload), "body": "", "payload": payload, "items": len(entries),
                    "status": PENDING, "attempts": 0, "next_attempt_at": now or utcnow(), "created_at": utcnow()})
    return out


# ---------------------------------------------------------------------------------------------
# Delivery


@dataclass
class Outgoing:
    """A claimed digest, ready for a channel: its payload and the URLs of its links."""

    id: int
    recipient_id: int | None
    recipient: str
    email: str | None
    run_on: dt.date
    subject: str
    payload: dict[str, Any]
    attempts: int
    urls: dict[int, str] = field(default_factory=dict)
    template_dir: Path | None = None
    plan_id: int | None = None
    audience: str = "person"  # person | department | leading_group | office
    channels: list[str] = field(default_factory=list)  # the person's (or group's) apprise URLs: secrets, never shown
    mobile: str | None = None

    @property
    def body(self) -> str:
        """The plain-text message (what the outbox writes and an email's text part carries)."""
        from notifications.render import render_text as render_any

        return render_any(self, template_dir=self.template_dir)


# A channel sends one message: it raises on failure, or returns a report of its attempts
# (``notifications.channels.Report``: ``ok``, ``via``, ``reason``, ``attempts``).
Sender = Callable[[Outgoing], Any]


@dataclass
class DeliverResult:
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    deferred: int = 0  # waiting for working hours (not an attempt)
    unreachable: list[int] = field(default_factory=list)  # office members who were told someone is unreachable


def backoff(attempts: int) -> dt.timedelta:
    return min(FIRST_BACKOFF * 2 ** max(attempts - 1, 0), MAX_BACKOFF)


AUDIENCE_NAMES = {"leading_group": "领导小组", "office": "领导小组办公室"}


def claim(engine: Engine, *, now: dt.datetime, links: LinkMaker, limit: int = 500, recipients: Iterable[int] | None = None,
          template_dir: Path | None = None) -> list[Outgoing]:
    """Take up to ``limit`` digests that are due for (re)delivery, marking them as being sent."""
    with session_scope(engine) as session:
        due = or_(
            and_(Digest.status.in_((PENDING, FAILED)), Digest.next_attempt_at <= now),
            and_(Digest.status == SENDING, Digest.claimed_at < now - LEASE),  # a sender died mid-way
        )
        q = select(Digest.id).where(due)
        if recipients is not None:
            q = q.where(Digest.recipient_id.in_(list(recipients)))
        ids = list(session.scalars(q.order_by(Digest.id).limit(limit).with_for_update(skip_locked=True)))
        if not ids:
            return []
        session.execute(
            update(Digest).where(Digest.id.in_(ids), due).values(status=SENDING, claimed_at=now, attempts=Digest.attempts + 1)
        )
        rows = session.execute(
            select(Digest.id, Digest.recipient_id, Person.name, Person.email, Digest.run_on, Digest.subject, Digest.payload, Digest.attempts,
                   Digest.plan_id, Digest.audience, Digest.department_id, Person.notify_urls, Person.mobile)
            .outerjoin(Person, Person.id == Digest.recipient_id)
            .where(Digest.id.in_(ids), Digest.status == SENDING, Digest.claimed_at == now)
        ).all()
        dept_ids = sorted({r.department_id for r in rows if r.department_id is not None})
        depts = {d.id: d for d in session.execute(select(Department.id, Department.name, Department.notify_urls).where(Department.id.in_(dept_ids)))} if dept_ids else {}
        plan_ids = sorted({r.plan_id for r in rows if r.audience in AUDIENCE_NAMES})
        plan_channels = dict(session.execute(select(Plan.id, Plan.channels).where(Plan.id.in_(plan_ids))).all()) if plan_ids else {}
        urls = links.urls(session, [lid for r in rows for item in r.payload.get("items", ()) for _, lid in item.get("links", ())])
    out = []
    for r in rows:
        if r.audience == "person":
            name, channels = r.name, list(r.notify_urls or ())
        elif r.audience == "department":
            d = depts.get(r.department_id)
            name, channels = (f"{d.name}（群）", list(d.notify_urls or ())) if d else ("（部门已删除）", [])
        else:
            name, channels = f"{AUDIENCE_NAMES.get(r.audience, r.audience)}（群）", list((plan_channels.get(r.plan_id) or {}).get(r.audience, ()))
        out.append(Outgoing(r.id, r.recipient_id, name, r.email, r.run_on, r.subject, r.payload, r.attempts, urls=urls,
                            template_dir=template_dir, plan_id=r.plan_id, audience=r.audience, channels=channels, mobile=r.mobile))
    return out


_MARK_DIGEST = Digest.__table__.update().where(Digest.__table__.c.id == bindparam("did")).values(
    status=SENT, sent_at=bindparam("at"), last_error=None, delivered_via=bindparam("via"))
_MARK_ITEMS = Notification.__table__.update().where(Notification.__table__.c.digest_id == bindparam("did")).values(status=SENT)


def _delivery_rows(out: Outgoing, report: Any, error: str | None, channel_name: str, now: dt.datetime) -> list[dict[str, Any]]:
    attempts = getattr(report, "attempts", None)
    if attempts:
        return [{"digest_id": out.id, "channel": a.channel[:30], "target": (a.target or "")[:500], "at": a.at, "ok": a.ok,
                 "error": (a.error or None) and a.error[:2000]} for a in attempts]
    return [{"digest_id": out.id, "channel": channel_name[:30], "target": "", "at": now, "ok": error is None, "error": error and error[:2000]}]


def mark_sent(engine: Engine, ids: list[int], *, now: dt.datetime, via: dict[int, str] | None = None,
              deliveries: list[dict[str, Any]] | None = None) -> None:
    """Mark digests and their items sent, in one short transaction (Core: called per message)."""
    if not ids:
        return
    via = via or {}
    with engine.begin() as conn:
        conn.execute(_MARK_DIGEST, [{"did": i, "at": now, "via": (via.get(i) or None) and via[i][:200]} for i in ids])
        conn.execute(_MARK_ITEMS, [{"did": i} for i in ids])
        if deliveries:
            conn.execute(Delivery.__table__.insert(), deliveries)


def mark_failed(engine: Engine, failures: list[tuple[Outgoing, str]], *, now: dt.datetime,
                deliveries: list[dict[str, Any]] | None = None) -> None:
    if not failures:
        return
    with session_scope(engine) as session:
        for out, reason in failures:
            session.execute(
                update(Digest).where(Digest.id == out.id).values(status=FAILED, last_error=reason[:2000], next_attempt_at=now + backoff(out.attempts))
            )
        if deliveries:
            session.execute(Delivery.__table__.insert(), deliveries)


def defer_quiet(engine: Engine, quiet: Any, *, now: dt.datetime, recipients: list[int] | None = None) -> int:
    """Push digests that come due outside the allowed hours to the next allowed moment (per plan).

    Not an attempt: ``attempts`` and the backoff are untouched.  ``quiet`` is a
    ``notifications.quiet.QuietHours``.
    """
    due = and_(Digest.status.in_((PENDING, FAILED)), Digest.next_attempt_at <= now)
    if recipients is not None:
        due = and_(due, Digest.recipient_id.in_(recipients))
    moved = 0
    with session_scope(engine) as session:
        for plan_id in list(session.scalars(select(Digest.plan_id).where(due).distinct())):
            later = quiet.next_allowed(now, plan_id)
            if later is not None:
                moved += session.execute(update(Digest).where(due, Digest.plan_id == plan_id).values(next_attempt_at=later)).rowcount or 0
    return moved


def notify_unreachable(engine: Engine, outs: list[tuple[Outgoing, str]], *, today: dt.date) -> list[int]:
    """Tell the plan's office that a person cannot be reached: a ledger item for each office member
    (once per person and day), delivered like any other item in their next digest."""
    people = [(o, r) for o, r in outs if o.audience == "person" and o.recipient_id is not None]
    if not people:
        return []
    now = utcnow()
    with session_scope(engine) as session:
        office: dict[int, list[int]] = defaultdict(list)
        plan_ids = sorted({o.plan_id for o, _ in people})
        for r in session.execute(select(PlanRole.plan_id, PlanRole.person_id).where(PlanRole.role == "office", PlanRole.plan_id.in_(plan_ids)).order_by(PlanRole.position)):
            office[r.plan_id].append(r.person_id)
        depts = dict(session.execute(
            select(Person.id, Department.name).join(Department, Department.id == Person.department_id)
            .where(Person.id.in_([o.recipient_id for o, _ in people]))
        ).all())
        rows = [
            {"key": f"unreachable:p{o.recipient_id}:to{member}:{today.isoformat()}", "plan_id": o.plan_id, "task_id": None,
             "milestone_id": None, "recipient_id": member, "kind": UNREACHABLE, "level": 0, "due_date": None, "days": 0,
             "decided_on": today, "status": PENDING, "created_at": now, "digest_id": None,
             "data": {"person": o.recipient, "department": depts.get(o.recipient_id), "attempts": o.attempts, "reason": reason[:500],
                      "code": "", "title": f"{o.recipient}的通知无法送达"}}
            for o, reason in people
            for member in office.get(o.plan_id, ())
            if member != o.recipient_id
        ]
        if not rows:
            return []
        existing = _existing_keys(session, [r["key"] for r in rows])
        fresh = [r for r in rows if r["key"] not in existing]
        _insert_ignore(session, fresh)
    return sorted({r["recipient_id"] for r in fresh})


def _attempt(send: Sender, out: Outgoing) -> tuple[Outgoing, Any, str | None]:
    """Send one message: (out, report or None, reason of failure or None)."""
    try:
        report = send(out)
    except Exception as err:  # noqa: BLE001 - a channel failure is data, not a crash
        return out, None, f"{err.__class__.__name__}: {err}"
    if report is not None and not report.ok:
        return out, report, report.reason
    return out, report, None


def deliver(engine: Engine, send: Sender, *, now: dt.datetime, links: LinkMaker, batch: int = 500, recipients: Iterable[int] | None = None,
            template_dir: Path | None = None, workers: int = 1, quiet: Any = None, unreachable_after: int | None = None,
            today: dt.date | None = None) -> DeliverResult:
    """Send every digest that is due; a failure never stops the others.

    Each digest is marked sent right after it went out, so a crash repeats at most the messages
    in flight (their lease expires and a later run sends them again): one with ``workers=1``,
    at most ``workers`` with a thread pool.  ``quiet`` (``QuietHours``) holds back what comes due
    outside working hours; ``unreachable_after``: after that many failed attempts of a person's
    digest, the plan's office is told (a ledger item; see ``notify_unreachable``).
    """
    result = DeliverResult()
    recipients = list(recipients) if recipients is not None else None
    if quiet is not None:
        result.deferred = defer_quiet(engine, quiet, now=now, recipients=recipients)
    # A channel whose repeat is harmless (the outbox rewrites the same file) is marked per batch;
    # any other is marked right after each message, so a crash repeats at most the one in flight.
    per_message = not getattr(send, "idempotent", False)
    channel_name = getattr(send, "name", "channel")
    pool = ThreadPoolExecutor(workers, thread_name_prefix="deliver") if workers > 1 else None
    try:
        while True:
            claimed = claim(engine, now=now, links=links, limit=batch, recipients=recipients, template_dir=template_dir)
            if not claimed:
                break
            if pool is None:
                outcomes = (_attempt(send, out) for out in claimed)
            else:
                outcomes = (f.result() for f in as_completed([pool.submit(_attempt, send, out) for out in claimed]))
            failures, sent, via, rows, fail_rows = [], [], {}, [], []
            for out, report, error in outcomes:
                if error is not None:
                    failures.append((out, error))
                    fail_rows += _delivery_rows(out, report, error, channel_name, now)
                    continue
                if per_message:
                    mark_sent(engine, [out.id], now=now, via={out.id: getattr(report, "via", channel_name)},
                              deliveries=_delivery_rows(out, report, None, channel_name, now))
                else:
                    sent.append(out.id)
                    via[out.id] = getattr(report, "via", channel_name)
                    rows += _delivery_rows(out, report, None, channel_name, now)
                result.sent += 1
            mark_sent(engine, sent, now=now, via=via, deliveries=rows)
            mark_failed(engine, failures, now=now, deliveries=fail_rows)
            result.failed += len(failures)
            result.errors += [f"{o.recipient}：{r}" for o, r in failures]
            if unreachable_after:
                hopeless = [(o, r) for o, r in failures if o.attempts >= unreachable_after]
                if hopeless:
                    told = notify_unreachable(engine, hopeless, today=today or now.date())
                    result.unreachable = sorted(set(result.unreachable) | set(told))
            if len(claimed) < batch:
                break
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        close = getattr(send, "close", None)
        if callable(close):
            close()
    return result


def digest_rows(engine: Engine, *, run_on: dt.date | None = None, status: str | None = None, person: str | None = None,
                limit: int | None = None) -> list[dict[str, Any]]:
    """Digests as table rows (Chinese column names), newest first: what `duban outbox` lists."""
    with session_scope(engine) as session:
        q = (
            select(Digest.id, Digest.run_on, func.coalesce(Person.name, Department.name + "（群）", Digest.audience).label("name"), Digest.items,
                   Digest.status, Digest.attempts, Digest.last_error, Digest.subject, Digest.delivered_via)
            .outerjoin(Person, Person.id == Digest.recipient_id)
            .outerjoin(Department, Department.id == Digest.department_id)
            .order_by(Digest.id.desc())
        )
        if run_on is not None:
            q = q.where(Digest.run_on == run_on)
        if status is not None:
            q = q.where(Digest.status == status)
        if person is not None:
            q = q.where(Person.name == person)
        if limit:
            q = q.limit(limit)
        return [
            {"编号": r.id, "日期": r.run_on.isoformat(), "收件人": AUDIENCE_NAMES.get(r.name, r.name), "事项": r.items,
             "状态": STATUS_LABELS.get(r.status, r.status), "尝试次数": r.attempts, "失败原因": r.last_error or "", "主题": r.subject,
             "渠道": _via_label(r.delivered_via)}
            for r in session.execute(q)
        ]


def _via_label(via: str | None) -> str:
    from notifications.channels import LABELS

    return "、".join(LABELS.get(v, v) for v in (via or "").split(",") if v)


STATUS_LABELS = {PENDING: "待发送", SENDING: "发送中", SENT: "已发送", FAILED: "发送失败（将重试）"}
