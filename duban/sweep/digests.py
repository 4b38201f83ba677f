"""Digests: gather each recipient's pending ledger items into one digest (the outbox), in the
same transaction that marks the items as queued; a copy of today's escalations for each lead
department's group bot.  Personal and department digests share one entry builder: one entry
per task, its items as asks under it, its links once each (``notifications.digest`` renders them).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from duban.db import executemany, session_scope
from duban.links import ACTIONS, LinkMaker, LinkSpec
from duban.links import issue as issue_links
from duban.models import Department, Digest, Notification, Person, Plan, PlanRole, Task, table_of, utcnow
from duban.sweep.kinds import facts
from duban.values import bulk_work, chunks
from duban.vocabulary import Audience, LedgerStatus, LinkAction, MessageKind, PlanRoleKind
from notifications.digest import describe, render_subject, urgency
from notifications.lines import step_of

ESCALATION_SHORT = {1: "部门负责人督办", 2: "分管校领导督办", 3: "领导小组办公室督办"}


LinkRef = tuple[str, int, int | None]  # a ledger item's link: action, link id, milestone id
# what an ask keeps of its item's data besides its line (the facts the templates show)
FACT_KEYS = ("due_workday", "renotice", "waited", "submitted_on", "reply_by", "assigned_on", "ack", "report")
# what a 任务下达 notice keeps (notifications.lines.assignment_notice lays it out)
NOTICE_KEYS = ("statement", "done_criteria", "deadline", "milestones", "owner", "department", "supervisor", "partners", "grace_until")
_ACTION_ORDER: dict[str, int] = {a: i for i, a in enumerate(LinkAction)}


def _rank(n: Any) -> tuple:
    """Most urgent first: the group of the kind, its place in the group, the nearest date."""
    return (urgency(n.kind), facts(n.kind).order, n.days, n.id)


@dataclass
class _Run:
    """What every digest of one assembly shares."""

    today: dt.date
    channel: str
    now: dt.datetime | None
    plan_names: dict[int, str]
    office_contacts: dict[int, list[list[str]]]
    history: dict[int, list[str]]

    def entries(self, items: Iterable[Any], links: Callable[[Any], list[LinkRef]]) -> list[dict[str, Any]]:
        """The digest's entries, one per task (a notice without a task is its own entry), in
        reading order: the one builder of both digests."""
        by_task: dict[tuple, list[Any]] = defaultdict(list)
        for n in items:
            by_task[("task", n.task_id) if n.task_id is not None and not facts(n.kind).notice else ("item", n.id)].append(n)
        return sorted((self._entry(sorted(group, key=_rank), links) for group in by_task.values()), key=lambda e: e["sort"])

    def _entry(self, items: list[Any], links: Callable[[Any], list[LinkRef]]) -> dict[str, Any]:
        """One task's entry: the most urgent item heads it, each item is an ask, each link comes once."""
        head, asks = items[0], [self._ask(n) for n in items]
        code = head.data.get("code", "")
        pairs, actions = _entry_links(items, links)
        return {
            "kind": head.kind,
            "level": head.level,
            "code": code,
            "title": head.data.get("title", ""),
            "milestone": "",  # the asks name their milestones
            "task_id": head.task_id,
            "due": asks[0]["due"],
            "days": head.days,
            "line": asks[0]["line"],
            "links": pairs,
            "actions": actions,
            "sort": [facts(head.kind).order, head.days, code, head.id],
            "asks": asks,
        }

    def _ask(self, n: Any) -> dict[str, Any]:
        data = n.data
        line = (
            notice_line(n.kind, data)
            if facts(n.kind).notice
            else describe(n.kind, n.level, n.due_date, n.days, data, today=self.today, step=True)
        )
        fact = {k: data[k] for k in FACT_KEYS if data.get(k) is not None}
        if n.kind == MessageKind.APPROVAL:
            fact.setdefault("submitted_on", n.decided_on.isoformat())
        return {
            "kind": n.kind,
            "level": n.level,
            "due": n.due_date.isoformat() if n.due_date else None,
            "days": n.days,
            "line": line,
            "facts": fact,
            **({"history": self.history[n.id]} if self.history.get(n.id) else {}),
            **({"notice": {k: data[k] for k in NOTICE_KEYS if k in data}} if n.kind == MessageKind.ASSIGNMENT else {}),
        }

    def digest(
        self,
        *,
        plan_id: int,
        audience: Audience,
        recipient: str,
        entries: list[dict[str, Any]],
        recipient_id: int | None = None,
        department_id: int | None = None,
        mine: int | None = None,
    ) -> dict[str, Any]:
        """A digest row (Core insert) for ``entries`` (``mine``: the link of the person's own page)."""
        payload = {
            "recipient": recipient,
            "today": self.today.isoformat(),
            "plan_name": self.plan_names.get(plan_id, ""),
            "office": "、".join(name for name, _ in self.office_contacts.get(plan_id, [])),
            "office_contacts": self.office_contacts.get(plan_id, []),
            "audience": audience,
            "items": entries,
            **({"mine": mine} if mine is not None else {}),
        }
        return {
            "plan_id": plan_id,
            "audience": audience,
            "recipient_id": recipient_id,
            "department_id": department_id,
            "channel": self.channel,
            "run_on": self.today,
            "subject": render_subject(payload),
            "body": "",
            "payload": payload,
            "items": len(entries),
            "status": LedgerStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": self.now or utcnow(),
            "created_at": utcnow(),
        }


def released(n_tab: Any, now: dt.datetime) -> Any:
    """Ledger items that may go out at ``now``: not held, or held until a time that has passed (an
    approval request waits for the office's batch time: ``notifications.not_before``)."""
    return n_tab.c.not_before.is_(None) | (n_tab.c.not_before <= now)


def held_due(session: Session, now: dt.datetime, plan_ids: list[int] | None = None) -> list[int]:
    """Who has held ledger items whose time has come (the delivery run assembles their digests;
    ``plan_ids``: items of these plans only)."""
    n_tab = table_of(Notification)
    q = select(n_tab.c.recipient_id).where(
        n_tab.c.status == LedgerStatus.PENDING, n_tab.c.digest_id.is_(None), n_tab.c.not_before.is_not(None), n_tab.c.not_before <= now
    )
    if plan_ids is not None:
        q = q.where(n_tab.c.plan_id.in_(plan_ids))
    return sorted(set(session.scalars(q.distinct())))


@bulk_work()
def assemble(
    engine: Engine,
    *,
    today: dt.date,
    links: LinkMaker,
    channel: str = "outbox",
    template_dir: Path | None = None,
    recipients: Iterable[int] | None = None,
    now: dt.datetime | None = None,
    plan_ids: Iterable[int] | None = None,
) -> int:
    """One digest per recipient for their pending ledger items (those held until a later time stay:
    :func:`released`); returns digests created.  ``plan_ids``: only the items of these plans (one
    institution's sweep; None: every plan's).

    Core statements throughout (no ORM objects): a province run assembles ~15,000 digests, and
    an ORM session holding every item would re-check them all on each flush.
    """
    with session_scope(engine) as session:
        pending = _pending(session, now=now or utcnow(), recipients=recipients, plan_ids=plan_ids)
        if not pending:
            return 0
        by_recipient: dict[int, list[Any]] = defaultdict(list)
        for n in pending:
            by_recipient[n.recipient_id].append(n)
        people = {p.id: p for p in session.execute(select(Person.id, Person.name, Person.plan_id).where(Person.id.in_(list(by_recipient))))}
        run = _Run(
            today,
            channel,
            now,
            dict(session.execute(select(Plan.id, Plan.name)).all()),
            _office_contacts(session),
            _history(session, [n for n in pending if n.kind == MessageKind.ESCALATION]),
        )
        link_pairs = _issue_links(session, pending, people, links, today=today, now=now)
        mine = _issue_mine(session, people, links, today=today, now=now)
        digests, members = [], []
        for rid, items in by_recipient.items():
            person = people[rid]
            digests.append(
                run.digest(
                    plan_id=person.plan_id,
                    audience=Audience.PERSON,
                    recipient=person.name,
                    recipient_id=rid,
                    entries=run.entries(items, lambda n: link_pairs[n.id]),
                    mine=mine[rid],
                )
            )
            members.append([n.id for n in items])
        for group in _department_digests(session, pending, run):
            digests.append(group)
            members.append([])  # a copy for a group bot: the ledger items belong to the person's digest
        _insert_digests(session, digests, members)
    return len(digests)


def _pending(session: Session, *, now: dt.datetime, recipients: Iterable[int] | None, plan_ids: Iterable[int] | None) -> Sequence[Any]:
    """The pending ledger items released by ``now`` and not yet in a digest, by recipient, locked
    (items another worker holds are skipped)."""
    n_tab = table_of(Notification)
    q = select(
        n_tab.c.id,
        n_tab.c.recipient_id,
        n_tab.c.task_id,
        n_tab.c.milestone_id,
        n_tab.c.kind,
        n_tab.c.level,
        n_tab.c.due_date,
        n_tab.c.days,
        n_tab.c.data,
        n_tab.c.decided_on,
    ).where(n_tab.c.status == LedgerStatus.PENDING, n_tab.c.digest_id.is_(None), released(n_tab, now))
    if recipients is not None:
        q = q.where(n_tab.c.recipient_id.in_(list(recipients)))
    if plan_ids is not None:
        q = q.where(n_tab.c.plan_id.in_(list(plan_ids)))
    return session.execute(q.order_by(n_tab.c.recipient_id, n_tab.c.id).with_for_update(skip_locked=True)).all()


def _issue_links(
    session: Session, pending: Sequence[Any], people: dict[int, Any], links: LinkMaker, *, today: dt.date, now: dt.datetime | None
) -> dict[int, list[LinkRef]]:
    """Each ledger item's action links (issued in one batch, each distinct link once: the same
    action on the same task and milestone for the same person is one link, lasting as long as the
    latest item needs it)."""
    per_item = {n.id: links.specs(n, people[n.recipient_id].plan_id) for n in pending}
    distinct: dict[tuple, LinkSpec] = {}
    for specs in per_item.values():
        for spec in specs:
            if spec.reuse_key not in distinct or distinct[spec.reuse_key].expires < spec.expires:
                distinct[spec.reuse_key] = spec
    issued = issue_links(session, list(distinct.values()), secret=links.secret, today=today, now=now)
    ids = dict(zip(distinct, issued, strict=True))
    return {nid: [(spec.action, ids[spec.reuse_key], spec.milestone_id) for spec in specs] for nid, specs in per_item.items()}


def _issue_mine(session: Session, people: dict[int, Any], links: LinkMaker, *, today: dt.date, now: dt.datetime | None) -> dict[int, int]:
    """Each person's link to their own page (我的督办), which every digest to a person carries:
    one reusable link per person and month (:meth:`duban.links.LinkMaker.mine`)."""
    ids = list(people)
    specs = [links.mine(pid, people[pid].plan_id) for pid in ids]
    return dict(zip(ids, issue_links(session, specs, secret=links.secret, today=today, now=now), strict=True))


def _entry_links(items: list[Any], links: Callable[[Any], list[LinkRef]]) -> tuple[list[list[Any]], list[str]]:
    """A task's links as ``[label, link id]`` pairs, each once, in the order of the actions; an
    action linked for more than one milestone names its milestone.  Also the actions, in order."""
    seen: dict[int, tuple[str, int | None]] = {}
    for n in items:
        for action, lid, mid in links(n):
            seen.setdefault(lid, (action, mid))
    steps = {n.milestone_id: n.data.get("milestone") or step_of(n.data) for n in items if n.milestone_id is not None}
    ordered = sorted(seen.items(), key=lambda kv: _ACTION_ORDER.get(kv[1][0], len(_ACTION_ORDER)))
    count: dict[str, int] = {}  # a plain dict: ``Counter`` costs a second per province sweep here
    for action, _ in seen.values():
        count[action] = count.get(action, 0) + 1
    pairs = [
        [ACTIONS[action] + (f"（{steps[mid]}）" if count[action] > 1 and steps.get(mid) else ""), lid] for lid, (action, mid) in ordered
    ]
    return pairs, [action for _, (action, _) in ordered]


def _office_contacts(session: Session) -> dict[int, list[list[str]]]:
    """Each plan's office members as ``[name, mobile]`` (mobile empty when unknown), in order."""
    out: dict[int, list[list[str]]] = defaultdict(list)
    for plan_id, name, mobile in session.execute(
        select(PlanRole.plan_id, Person.name, Person.mobile)
        .join(Person, Person.id == PlanRole.person_id)
        .where(PlanRole.role == PlanRoleKind.OFFICE)
        .order_by(PlanRole.position)
    ):
        if [name, mobile or ""] not in out[plan_id]:
            out[plan_id].append([name, mobile or ""])
    return out


def _insert_digests(session: Session, digests: list[dict[str, Any]], members: list[list[int]]) -> None:
    """Write the digests and mark each one's ledger items as queued in it."""
    d_tab = table_of(Digest)
    sqlite = session.get_bind().dialect.name == "sqlite"
    pairs: list[tuple[int, int]] = []
    for start in range(0, len(digests), 2000):
        chunk = digests[start : start + 2000]
        # RETURNING matched by who each digest is for (one per person, one per department in a
        # run), not by parameter order: SQLite keeps that order only one row per statement
        returned = session.execute(d_tab.insert().returning(d_tab.c.id, d_tab.c.recipient_id, d_tab.c.department_id), chunk)
        by_reader = {(r.recipient_id, r.department_id): r.id for r in returned}
        ids = [by_reader[(d["recipient_id"], d["department_id"])] for d in chunk]
        pairs += [(nid, did) for did, group in zip(ids, members[start : start + 2000], strict=True) for nid in group]
        if not sqlite:
            _queue(session, pairs)
            pairs = []
    # SQLite: every item at the end, in the order of the ledger's rows (a digest's items are spread
    # over the table: in their digests' order each UPDATE would read another page of it)
    _queue(session, sorted(pairs))


# PostgreSQL: every ledger item of a chunk of digests in one statement, the pairs as arrays
_QUEUE_UNNEST = text(
    "UPDATE notifications SET digest_id = q.did, status = :queued "
    "FROM unnest(CAST(:nids AS int[]), CAST(:dids AS int[])) AS q(nid, did) WHERE notifications.id = q.nid"
)


def _queue(session: Session, pairs: list[tuple[int, int]]) -> None:
    """Mark ledger items queued in their digests: ``(item id, digest id)`` pairs."""
    if not pairs:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_QUEUE_UNNEST, {"queued": LedgerStatus.QUEUED.value, "nids": [n for n, _ in pairs], "dids": [d for _, d in pairs]})
        return
    queued = LedgerStatus.QUEUED.value
    rows = [{"digest_id": did, "status": queued, "id": nid} for nid, did in pairs]
    executemany(session, table_of(Notification), _QUEUE_SQLITE, ("digest_id", "status", "id"), rows)


# SQLite: one driver executemany of this per chunk (``duban.db.executemany``)
_QUEUE_SQLITE = "UPDATE notifications SET digest_id = ?, status = ? WHERE id = ?"


def notice_line(kind: str, data: dict[str, Any]) -> str:
    """The line of a notice about the system itself (not about a task)."""
    who = data.get("person", "")
    if data.get("department"):
        who += f"（{data['department']}）"
    return (
        f"{who}的督办通知已连续 {data.get('attempts', 0)} 次发送失败，目前无法送达：{data.get('reason', '')}。"
        "请核实其邮箱和通知地址（在人员表中改正后重新导入），并电话告知待办事项"
    )


def _history(session: Session, escalations: list[Any]) -> dict[int, list[str]]:
    """For each escalation item, what was already sent about the same task and step (oldest first)."""
    if not escalations:
        return {}
    n_tab = table_of(Notification)
    task_ids = sorted({n.task_id for n in escalations if n.task_id is not None})
    rows: dict[int, list[Any]] = defaultdict(list)
    for chunk in chunks(task_ids, 5000):
        for r in session.execute(
            select(n_tab.c.task_id, n_tab.c.milestone_id, n_tab.c.kind, n_tab.c.level, n_tab.c.decided_on, Person.name)
            .join(Person, Person.id == n_tab.c.recipient_id)
            .where(n_tab.c.task_id.in_(chunk), n_tab.c.status == LedgerStatus.SENT)
            .order_by(n_tab.c.decided_on, n_tab.c.id)
        ):
            rows[r.task_id].append(r)
    out: dict[int, list[str]] = {}
    for n in escalations:
        lines = [
            f"{r.decided_on.month}月{r.decided_on.day}日 "
            + (ESCALATION_SHORT.get(r.level, "督办") if r.kind == MessageKind.ESCALATION else facts(r.kind).label or r.kind)
            + f"（{r.name}）"
            for r in rows.get(n.task_id, ())
            if n.milestone_id is None or r.milestone_id in (None, n.milestone_id)
        ]
        if lines:
            out[n.id] = lines[-8:]
    return out


def _department_digests(session: Session, pending: Sequence[Any], run: _Run) -> list[dict[str, Any]]:
    """A copy of today's escalations for the group bot of each lead department that has one.

    Without action links: a link is signed for one person, and anyone in a group could use it.
    """
    escalations = [n for n in pending if n.kind == MessageKind.ESCALATION and n.task_id is not None]
    if not escalations:
        return []
    tasks = dict(
        session.execute(select(Task.id, Task.lead_department_id).where(Task.id.in_(sorted({n.task_id for n in escalations})))).all()
    )
    depts = {
        d.id: d
        for d in session.execute(
            select(Department.id, Department.name, Department.plan_id, Department.notify_urls).where(
                Department.id.in_(sorted({v for v in tasks.values() if v is not None}))
            )
        )
        if d.notify_urls
    }
    by_dept: dict[int, dict[tuple, Any]] = defaultdict(dict)
    for n in escalations:
        did = tasks.get(n.task_id)
        if did is not None and did in depts:
            by_dept[did].setdefault((n.task_id, n.milestone_id, n.level, bool(n.data.get("ack")), bool(n.data.get("report"))), n)
    return [
        run.digest(
            plan_id=depts[did].plan_id,
            audience=Audience.DEPARTMENT,
            recipient=f"{depts[did].name}各位同事",
            department_id=did,
            entries=run.entries(chosen.values(), lambda n: []),
        )
        for did, chosen in by_dept.items()
    ]
