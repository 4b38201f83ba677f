"""Signed action links (签收, 反馈, 提交办结, 申请延期, 查看).

A link names one action, one task (and milestone) and one person, expires, and is signed with
``DUBAN_SECRET_KEY`` (HMAC-SHA256).  Each issued link is a ``links`` row (who, what, until when,
used or void) holding only the SHA-256 of its token; the token carries the row id and is derived
again from the row and the secret key whenever a message is rendered.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session, aliased

from duban.db import executemany, rowcount
from duban.link_tokens import LinkError, link_token, link_url, token_hash, verify
from duban.models import Department, Link, Milestone, Person, Plan, Request, Task, table_of, utcnow
from duban.roles import holder_refusal
from duban.roles import reviewers as reviewers  # re-exported (who approves: duban.actions, the sweep)
from duban.values import chunks
from duban.vocabulary import OWNER_ACTIONS, REVIEW_MESSAGE_KINDS, LinkAction, MessageKind, MilestoneState
from duban.vocabulary import REUSABLE_ACTIONS as REUSABLE_ACTIONS  # re-exported (duban.actions)
from duban.vocabulary import REVIEWER_ACTIONS as REVIEW_ACTIONS  # noqa: F401  re-exported (duban.actions)

# OWNER_ACTIONS: only the task's current owner; REVIEW_ACTIONS: only the plan's reviewers (the
# office); REUSABLE_ACTIONS: never "used up".  An action's label is ``LinkAction.label``; ACTIONS
# maps the actions a message carries to their labels (a digest's link lines).
ACTIONS: dict[str, str] = {a: a.label for a in LinkAction if a is not LinkAction.DASHBOARD}


@dataclass(frozen=True)
class LinkSpec:
    """A link to issue: one action, one person, one task (and milestone or request)."""

    plan_id: int
    person_id: int
    action: str
    task_id: int | None
    milestone_id: int | None
    expires: dt.date
    request_id: int | None = None
    review_id: int | None = None
    review_item_id: int | None = None

    @functools.cached_property
    def reuse_key(self) -> tuple:  # computed once: a sweep looks it up several times per link
        return (self.person_id, self.task_id, self.milestone_id, self.request_id, self.action, self.review_id, self.review_item_id)


def issue(session: Session, specs: list[LinkSpec], *, secret: str, today: dt.date, now: dt.datetime | None = None) -> list[int]:
    """Link ids for ``specs`` (in order): an unused, valid link for the same action, person, task
    and milestone is reused when it lasts at least as long; otherwise a new one is stored (hash only)."""

    if not specs:
        return []
    existing = _reusable(session, specs, today=today)
    ids: list[int | None] = []
    new: dict[tuple, int] = {}  # reuse_key -> index into fresh
    fresh: list[LinkSpec] = []
    for spec in specs:
        found = existing.get(spec.reuse_key)
        if found and found[1] >= spec.expires:
            ids.append(found[0])
        else:
            if spec.reuse_key not in new:
                new[spec.reuse_key] = len(fresh)
                fresh.append(spec)
            ids.append(None)
    fresh_ids = _store(session, fresh, secret=secret, now=now or utcnow())
    # a spec without a reusable link has a fresh one (ids[i] is None only then)
    return [i if i is not None else fresh_ids[new[spec.reuse_key]] for i, spec in zip(ids, specs, strict=True)]


def _reusable(session: Session, specs: list[LinkSpec], *, today: dt.date) -> dict[tuple, tuple[int, dt.date]]:
    """The unused, valid links of the specs' people and actions: the longest lasting by reuse key."""
    table = table_of(Link)
    existing: dict[tuple, tuple[int, dt.date]] = {}
    people = sorted({s.person_id for s in specs})
    actions = sorted({str(s.action) for s in specs})  # only the links that could be reused
    for chunk in chunks(people, 5000):
        rows = session.execute(
            select(
                table.c.id,
                table.c.person_id,
                table.c.task_id,
                table.c.milestone_id,
                table.c.request_id,
                table.c.action,
                table.c.expires_on,
                table.c.review_id,
                table.c.review_item_id,
            ).where(
                table.c.person_id.in_(chunk),
                table.c.action.in_(actions),
                table.c.used_at.is_(None),
                table.c.void_at.is_(None),
                table.c.expires_on >= today,
            )
        )
        for r in rows:
            key = (r.person_id, r.task_id, r.milestone_id, r.request_id, r.action, r.review_id, r.review_item_id)
            if key not in existing or existing[key][1] < r.expires_on:
                existing[key] = (r.id, r.expires_on)
    return existing


def _store(session: Session, fresh: list[LinkSpec], *, secret: str, now: dt.datetime) -> list[int]:
    """Store new links (their ids, in order): the ids are taken first, so each row is written once
    with its final hash (a province's sweep stores ~90,000 links)."""
    if not fresh:
        return []
    table = table_of(Link)
    fresh_ids = _next_ids(session, len(fresh))
    values = [
        {
            "id": lid,
            "plan_id": s.plan_id,
            "person_id": s.person_id,
            "task_id": s.task_id,
            "milestone_id": s.milestone_id,
            "request_id": s.request_id,
            "review_id": s.review_id,
            "review_item_id": s.review_item_id,
            "action": s.action,
            "expires_on": s.expires,
            "created_at": now,
            "token_hash": token_hash(link_token(secret, lid, s.action, s.expires)),
        }
        for lid, s in zip(fresh_ids, fresh, strict=True)
    ]
    if session.get_bind().dialect.name == "sqlite":
        executemany(session, table, _LINK_INSERT, _LINK_COLUMNS, values)
        return fresh_ids
    for chunk in chunks(values, 2000):
        session.execute(insert(table), chunk)
    return fresh_ids


_LINK_COLUMNS = (
    "id",
    "plan_id",
    "person_id",
    "task_id",
    "milestone_id",
    "request_id",
    "review_id",
    "review_item_id",
    "action",
    "expires_on",
    "created_at",
    "token_hash",
)
# SQLite (``duban.db.executemany``): built from the constant column list above, never from input
_LINK_INSERT = f"INSERT INTO links ({', '.join(_LINK_COLUMNS)}) VALUES ({', '.join('?' for _ in _LINK_COLUMNS)})"  # noqa: S608


def _next_ids(session: Session, n: int) -> list[int]:
    """``n`` ids for new links, increasing.  PostgreSQL: from the table's sequence (as a plain
    INSERT would take them).  SQLite: after the highest id, as SQLite itself numbers rows; a
    writing transaction holds the database from its start (``BEGIN IMMEDIATE``, duban.db), so no
    one else inserts in between."""
    if session.get_bind().dialect.name == "postgresql":
        taken = session.scalars(text("SELECT nextval(pg_get_serial_sequence('links', 'id')) FROM generate_series(1, :n)"), {"n": n})
        return sorted(int(i) for i in taken)
    top = int(session.scalar(select(func.max(table_of(Link).c.id))) or 0)
    return list(range(top + 1, top + n + 1))


def urls(session: Session, ids: list[int], *, base_url: str, secret: str) -> dict[int, str]:
    """The URLs of issued links, by id (for rendering a message)."""
    table = table_of(Link)
    out: dict[int, str] = {}
    ids = sorted(set(ids))
    for start in range(0, len(ids), 5000):
        for r in session.execute(select(table.c.id, table.c.action, table.c.expires_on).where(table.c.id.in_(ids[start : start + 5000]))):
            out[r.id] = link_url(base_url, secret, r.id, r.action, r.expires_on)
    return out


# ---------------------------------------------------------------------------------------------
# Resolving a link that was opened (the web app)

# why a link cannot be used: reason -> the page's headline (the page adds the details)


# Which action links a ledger item carries, by message kind: (action, what the link names).
# "task": the item's task; "milestone": its task and milestone; "milestone?": the same, left out
# when the item has no milestone; "request": the request under review (and its milestone);
# "plan": no task (a list of the plan's); "review": a review (督查), no task; "review_item": one
# task of a review.
_OWNER_STEPS = ((LinkAction.PROGRESS, "task"), (LinkAction.DONE, "milestone?"), (LinkAction.EXTEND, "milestone?"))
_REVIEWER = ((LinkAction.REVIEW, "request"), (LinkAction.QUEUE, "plan"))
_VIEW = ((LinkAction.VIEW, "task"),)
KIND_LINKS: dict[str, tuple[tuple[LinkAction, str], ...]] = {
    MessageKind.REVIEW_REQUEST: ((LinkAction.REVIEW_ANSWER, "review_item"),),
    MessageKind.REVIEW_REMINDER: ((LinkAction.REVIEW_ANSWER, "review_item"),),
    MessageKind.REVIEW_OVERDUE: ((LinkAction.REVIEW_ANSWER, "review_item"),),
    MessageKind.REVIEW_VERDICTS: ((LinkAction.REVIEW_VERDICT, "review"),),
    MessageKind.REVIEW_REPORT: ((LinkAction.REVIEW_REPORT, "review"),),
    # to the task's owner; a follow-up owner who is someone else only views the task (see ``links_for``)
    MessageKind.REVIEW_FOLLOW_UP: ((LinkAction.PROGRESS, "task"), (LinkAction.DONE, "milestone"), (LinkAction.EXTEND, "milestone")),
    MessageKind.ESCALATION: _VIEW,
    MessageKind.APPROVED: _VIEW,
    MessageKind.APPROVAL: _REVIEWER,  # to a reviewer: this request, and the list of all that wait
    MessageKind.APPROVAL_WAITING: _REVIEWER,
    MessageKind.ACK: ((LinkAction.ACK, "task"), *_OWNER_STEPS),
    # 任务下达: what an owner does on day one (the item names the task's next open step)
    MessageKind.ASSIGNMENT: ((LinkAction.ACK, "task"), (LinkAction.PROGRESS, "task"), (LinkAction.EXTEND, "milestone?"), *_VIEW),
    # the dashboard's task page (duban.office_edits): 领导批示 and 催办 to the owner
    MessageKind.INSTRUCTION: ((LinkAction.PROGRESS, "task"), *_VIEW),
    MessageKind.URGED: (*_OWNER_STEPS, *_VIEW),
}
RELINK_LINKS = {LinkAction.QUEUE: ((LinkAction.QUEUE, "plan"),), LinkAction.REVIEW: _REVIEWER}


def links_for(kind: str, data: dict[str, Any], *, task_id: Any) -> tuple[tuple[str, str], ...]:
    """The (action, what it names) pairs of a ledger item: ``KIND_LINKS``, with the few cases that
    depend on the item's data."""
    if kind == MessageKind.RELINK and task_id is not None:
        action = data.get("action", LinkAction.VIEW)
        return RELINK_LINKS.get(action, ((action, "milestone" if action in (LinkAction.DONE, LinkAction.EXTEND) else "task"),))
    if kind == MessageKind.REVIEW_FOLLOW_UP and not data.get("task_owner", True):
        kind = ""  # like any other review message
    if kind in KIND_LINKS and (task_id is not None or kind in REVIEW_MESSAGE_KINDS):
        return KIND_LINKS[kind]
    if task_id is None:  # a notice about no task (e.g. someone unreachable): nothing to act on
        return ()
    return _VIEW if kind in REVIEW_MESSAGE_KINDS or not kind else _OWNER_STEPS


@dataclass
class LinkMaker:
    """Which action links each ledger item carries (``links_for``), and how long they last."""

    base_url: str
    secret: str
    today: dt.date
    days_after_due: int = 60

    def specs(self, n: Any, plan_id: int) -> list[LinkSpec]:
        expires = max(self.today, n.due_date or self.today) + dt.timedelta(days=self.days_after_due)
        data = n.data or {}
        out = []
        for action, names in links_for(n.kind, data, task_id=n.task_id):
            if names == "milestone?" and n.milestone_id is None:
                continue
            task = None if names in ("plan", "review") else n.task_id
            milestone = n.milestone_id if names in ("milestone", "milestone?", "request") else None
            out.append(
                LinkSpec(
                    plan_id=plan_id,
                    person_id=n.recipient_id,
                    action=action,
                    task_id=task,
                    milestone_id=milestone,
                    expires=expires,
                    request_id=data.get("request") if names == "request" else None,
                    review_id=data.get("review") if names == "review" else None,
                    review_item_id=data.get("item") if names == "review_item" else None,
                )
            )
        return out

    def mine(self, person_id: int, plan_id: int) -> LinkSpec:
        """A person's own page (我的督办): no task, reusable, and the same link all month (it
        lasts from any day of this month to ``days_after_due`` days after the next one begins)."""
        next_month = (self.today.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        expires = next_month + dt.timedelta(days=self.days_after_due)
        return LinkSpec(plan_id=plan_id, person_id=person_id, action=LinkAction.MINE, task_id=None, milestone_id=None, expires=expires)

    def urls(self, session: Session, ids: list[int]) -> dict[int, str]:
        return urls(session, ids, base_url=self.base_url, secret=self.secret)


REFUSALS = {
    "invalid": "链接无效",
    "expired": "链接已过期",
    "used": "链接已使用",
    "void": "链接已失效",
    "reassigned": "任务不由您负责",
    "closed": "任务已办结或已归档",
    "not_reviewer": "您不是本方案的审核人员",
    "role": "链接已失效",
}


class LinkRefused(Exception):  # noqa: N818  a refusal shown to the link's holder, not an error
    """An opened link that cannot be used now; ``message`` is the Chinese explanation.

    ``link_id`` is set when the signature was valid (the link is ours), and ``renewable`` when the
    holder may ask for a fresh link by message (an expired or used link, the task still theirs).
    """

    def __init__(self, reason: str, message: str, *, link_id: int | None = None, renewable: bool = False):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.link_id = link_id
        self.renewable = renewable

    @property
    def title(self) -> str:
        return REFUSALS.get(self.reason, "链接无法使用")


@dataclass
class Resolved:
    """A valid link and what it names, loaded from the store."""

    link: Link
    person: Person
    plan: Plan
    task: Task | None  # None for a queue link
    milestone: Milestone | None
    request: Request | None  # review links
    owner: Person | None = None  # the task's owner (kept here so the session keeps it)
    department: Department | None = None  # the task's lead department

    @property
    def action(self) -> str:
        return self.link.action

    @property
    def used(self) -> bool:
        return self.link.used_at is not None


def local_time(value: dt.datetime | None, tz: Any = None) -> str:
    """A stored (UTC) time as the office reads it: ``2026-11-23 08:30`` in ``tz`` (default Asia/Shanghai)."""
    if value is None:
        return ""
    if tz is None:
        tz = ZoneInfo("Asia/Shanghai")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")


_STATEMENTS: dict[str, Any] = {}


def _lock_statement():
    stmt = _STATEMENTS.get("lock")
    if stmt is None:
        stmt = _STATEMENTS["lock"] = select(Link).where(Link.id == bindparam("link_id")).with_for_update()
    return stmt


def _resolve_statement():
    """Built once (saves building and hashing the statement on every request)."""
    stmt = _STATEMENTS.get("resolve")
    if stmt is None:
        owner = aliased(Person, name="owner")
        stmt = _STATEMENTS["resolve"] = (
            select(Link, Person, Plan, Task, Milestone, Request, owner, Department)
            .outerjoin(Person, Person.id == Link.person_id)
            .outerjoin(Plan, Plan.id == Link.plan_id)
            .outerjoin(Task, Task.id == Link.task_id)
            .outerjoin(Milestone, Milestone.id == Link.milestone_id)
            .outerjoin(Request, Request.id == Link.request_id)
            .outerjoin(owner, owner.id == Task.owner_id)
            .outerjoin(Department, Department.id == Task.lead_department_id)
            .where(Link.id == bindparam("link_id"))
        )
    return stmt


def resolve(
    session: Session, token: str, *, secret: str, today: dt.date, for_update: bool = False, allow_used: bool = False, tz: Any = None
) -> Resolved:
    """The link behind ``token``, checked: signature, the stored hash, void, expiry, used (unless
    ``allow_used``: reading the task page and files), and that the person may still act (owns the
    task, or reviews the plan).  Raises :class:`LinkRefused` with a clear reason otherwise.

    ``for_update`` locks the link row (PostgreSQL; SQLite's writer already holds the database),
    so two submissions of one link at the same moment are applied once.

    One query reads the link and everything it names (two with ``for_update`` on PostgreSQL:
    the lock, then the rest).
    """

    try:
        payload = verify(secret, token, today=dt.date.min)  # expiry is checked against the row
        link_id, action = int(payload["l"]), str(payload["a"])
    except (LinkError, TypeError, ValueError):
        raise LinkRefused("invalid", "链接无效或已被修改。请使用通知中的完整链接（复制时请勿遗漏字符）。") from None
    if for_update and session.get_bind().dialect.name != "sqlite":
        # lock the link row first, then read what it names in a statement of its own (a fresh
        # snapshot on PostgreSQL: what a concurrent submission of this link committed is seen)
        locked = session.scalars(_lock_statement(), {"link_id": link_id}).first()
        if locked is None:
            raise LinkRefused("invalid", "链接无效或已被修改。请使用通知中的完整链接（复制时请勿遗漏字符）。")
    # one query: the link, its person, plan, task, milestone and request, and the task's owner and
    # lead department (loaded into the session, so the page finds them without a query)
    row = session.execute(_resolve_statement(), {"link_id": link_id}).first()
    link = row[0] if row is not None else None
    if row is None or link is None or not hmac.compare_digest(link.token_hash, token_hash(token)) or link.action != action:
        raise LinkRefused("invalid", "链接无效或已被修改。请使用通知中的完整链接（复制时请勿遗漏字符）。")
    person, plan, task, milestone, request, owner, department = row[1:8]
    label = LinkAction.label_of(link.action)

    # who may use it: checked first, so a link of a task handed over never offers a fresh one
    if link.action in OWNER_ACTIONS and task is not None and task.owner_id != link.person_id:
        raise LinkRefused(
            "reassigned",
            "该任务目前不由您负责（可能已改由其他责任人办理），此办理链接已失效。如有疑问，请联系领导小组办公室。",
            link_id=link.id,
        )
    # a reviewer's, reader's or viewer's link lasts while its holder holds the role that earned it
    if (refused := holder_refusal(session, link, task, department, owner)) is not None:
        raise LinkRefused(*refused, link_id=link.id)
    if link.void_at is not None:
        raise LinkRefused("void", f"该链接已失效（{link.void_reason or '已被撤销'}）。如有疑问，请联系领导小组办公室。", link_id=link.id)
    if task is not None and task.archived_at is not None:
        raise LinkRefused("closed", "该任务已从任务清单中删除（已归档），无需再办理。历史记录仍然保留。", link_id=link.id)
    if link.action in OWNER_ACTIONS and milestone is not None and milestone.status in (MilestoneState.DONE, MilestoneState.ARCHIVED):
        state = "已办结" if milestone.status == MilestoneState.DONE else "已归档"
        raise LinkRefused("closed", f"里程碑「{milestone.title or '完成任务'}」{state}，无需再办理。", link_id=link.id)
    if link.expires_on < today:
        raise LinkRefused("expired", f"该链接的有效期到 {link.expires_on.isoformat()} 为止，现已过期。", link_id=link.id, renewable=True)
    if link.used_at is not None and not allow_used:
        raise LinkRefused(
            "used", f"该链接已于 {local_time(link.used_at, tz)} 办理过「{label}」，每个链接只能使用一次。", link_id=link.id, renewable=True
        )
    return Resolved(link, person, plan, task, milestone, request, owner, department)


def void(
    session: Session,
    *,
    reason: str,
    now: dt.datetime,
    task_ids: list[int] | None = None,
    milestone_ids: list[int] | None = None,
    person_id: int | None = None,
    except_person: int | None = None,
    actions: frozenset[str] | None = None,
) -> int:
    """Void the unused links of some tasks or milestones (optionally only one person's, or all but
    one person's, or only some actions); returns how many."""
    table = table_of(Link)
    conds: list[ColumnElement[bool]] = [table.c.void_at.is_(None), table.c.used_at.is_(None)]
    if task_ids is not None:
        conds.append(table.c.task_id.in_(task_ids))
    if milestone_ids is not None:
        conds.append(table.c.milestone_id.in_(milestone_ids))
    if person_id is not None:
        conds.append(table.c.person_id == person_id)
    if except_person is not None:
        conds.append(table.c.person_id != except_person)
    if actions is not None:
        conds.append(table.c.action.in_(sorted(actions)))
    if task_ids == [] or milestone_ids == []:
        return 0
    return rowcount(session.execute(update(table).where(*conds).values(void_at=now, void_reason=reason[:200])))
