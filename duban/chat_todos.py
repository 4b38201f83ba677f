"""DingTalk 待办 for each open milestone: the store says which to-dos should exist, and
:func:`sync_todos` makes DingTalk agree (docs/notifications.md, "DingTalk 待办").

A to-do is wanted for every milestone that is not done or archived, of an announced task that is
not archived, for the task's owner when the person has a ``dingtalk_userid``.  Each run:

1. in one transaction, a ``chat_todos`` row is written for every wanted to-do that has none (the
   intent, before any call) and a closed row wanted again (a task handed back) is reopened;
2. each open row without a DingTalk id is created (its link: the owner's signed 查看任务 link),
   each whose due date moved gets the new ``dueTime``, and each no longer wanted (milestone done or
   archived, task archived or reassigned, userid removed) is closed (``done: true``);
3. each call's outcome is written at once in a short transaction of its own: the vendor id as
   ``"<unionId>/<to-do id>"`` (closing needs both, even after the userid is gone), the due date
   DingTalk now has, ``closed_at``, or ``last_error`` — a failed call is simply tried again on the
   next run, so the function is idempotent: a second run with nothing changed calls nothing.

A run that dies between DingTalk's answer to a create and step 3 leaves the row without an id,
and the next run creates the to-do again (DingTalk's API has no idempotency key; ``sourceId``
carries the row's id so a duplicate can be recognised).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Engine, select, true, update

from duban.db import session_scope
from duban.links import LinkMaker, LinkSpec, issue
from duban.models import ChatTodo, Milestone, Person, Plan, Task
from duban.vocabulary import LinkAction, MilestoneState

log = logging.getLogger("duban.chat_todos")

VENDOR = "dingtalk"
TODO_STATES = (MilestoneState.ASSIGNED, MilestoneState.IN_PROGRESS, MilestoneState.SUBMITTED)


class TodoService(Protocol):
    """What :func:`sync_todos` needs of a vendor's client (``notifications.dingtalk_todo.TodoClient``)."""

    vendor: str

    def union_id(self, userid: str) -> str: ...

    def create(self, union_id: str, *, subject: str, description: str, due_ms: int, url: str, source_id: str) -> str: ...

    def set_due(self, union_id: str, task_id: str, due_ms: int) -> None: ...

    def close(self, union_id: str, task_id: str) -> None: ...


@dataclass
class TodoResult:
    created: int = 0
    updated: int = 0
    closed: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Want:
    plan_id: int
    plan_name: str
    task_id: int
    code: str
    title: str
    seq: int
    step: str
    due: dt.date
    userid: str


def _wanted(session: Any, plan_ids: list[int] | None = None) -> dict[tuple[int, int], _Want]:
    q = (
        select(
            Milestone.id,
            Milestone.seq,
            Milestone.title,
            Milestone.due_date,
            Task.id.label("task_id"),
            Task.plan_id,
            Task.code,
            Task.title.label("task_title"),
            Task.owner_id,
            Person.dingtalk_userid,
            Plan.name.label("plan_name"),
        )
        .join(Task, Task.id == Milestone.task_id)
        .join(Person, Person.id == Task.owner_id)
        .join(Plan, Plan.id == Task.plan_id)
        .where(
            Milestone.status.in_(TODO_STATES),
            Milestone.archived_at.is_(None),
            Task.announced_at.is_not(None),
            Task.archived_at.is_(None),
            Person.active.is_(True),
            Person.dingtalk_userid.is_not(None),
            Person.dingtalk_userid != "",
        )
        .order_by(Milestone.id)
    )
    rows = session.execute(q if plan_ids is None else q.where(Task.plan_id.in_(plan_ids)))
    return {
        (r.id, r.owner_id): _Want(r.plan_id, r.plan_name, r.task_id, r.code, r.task_title, r.seq, r.title, r.due_date, r.dingtalk_userid)
        for r in rows
    }


def _record_intent(engine: Engine, *, vendor: str, now: dt.datetime, plan_ids: list[int] | None = None) -> dict[tuple[int, int], _Want]:
    """Step 1: a row for every wanted to-do (reopening one handed back); what is wanted."""
    with session_scope(engine) as session:
        want = _wanted(session, plan_ids)
        rows = {(r.milestone_id, r.person_id): r for r in session.scalars(select(ChatTodo).where(ChatTodo.vendor == vendor, _of(plan_ids)))}
        for (mid, pid), w in want.items():
            row = rows.get((mid, pid))
            if row is None:
                session.add(ChatTodo(plan_id=w.plan_id, milestone_id=mid, person_id=pid, vendor=vendor, due_date=w.due, created_at=now))
            elif row.closed_at is not None:
                row.closed_at, row.external_id, row.due_date, row.last_error = None, None, w.due, None
    return want


def _of(plan_ids: list[int] | None) -> Any:
    """The to-dos of these plans (None: every plan's)."""
    return true() if plan_ids is None else ChatTodo.plan_id.in_(plan_ids)


def sync_todos(
    engine: Engine, *, now: dt.datetime, client: TodoService, links: LinkMaker, tz: dt.tzinfo, plan_ids: list[int] | None = None
) -> TodoResult:
    """Make the vendor's to-dos match the open milestones (module docstring); idempotent.
    ``plan_ids``: these plans' only (one institution's, with its own app; None: every plan's)."""
    result = TodoResult()
    now = now.astimezone(dt.UTC)
    want = _record_intent(engine, vendor=client.vendor, now=now, plan_ids=plan_ids)
    with session_scope(engine, readonly=True) as session:
        open_rows = session.execute(
            select(ChatTodo.id, ChatTodo.milestone_id, ChatTodo.person_id, ChatTodo.external_id, ChatTodo.due_date)
            .where(ChatTodo.vendor == client.vendor, ChatTodo.closed_at.is_(None), _of(plan_ids))
            .order_by(ChatTodo.id)
        ).all()
    for row in open_rows:
        w = want.get((row.milestone_id, row.person_id))
        try:
            if w is None:
                done = _close(engine, client, row, now=now)
            elif row.external_id is None:
                done = _create(engine, client, row, w, links=links, tz=tz)
            elif row.due_date != w.due:
                done = _move(engine, client, row, w, tz=tz)
            else:
                continue
        except Exception as err:  # noqa: BLE001 - a refusal is recorded and tried again next run
            _note_error(engine, row.id, str(err) or err.__class__.__name__)
            result.failed += 1
            result.errors.append(f"待办 {row.id}：{err}")
            continue
        setattr(result, done, getattr(result, done) + 1)
    if result.failed:
        log.warning("%d DingTalk to-do(s) not synchronised: %s", result.failed, "; ".join(result.errors[:5]))
    return result


def due_ms(due: dt.date, tz: dt.tzinfo) -> int:
    """The end of the due day in the institution's time zone, as DingTalk's milliseconds."""
    return int(dt.datetime.combine(due, dt.time(23, 59, 59), tzinfo=tz).timestamp() * 1000)


def _create(engine: Engine, client: TodoService, row: Any, w: _Want, *, links: LinkMaker, tz: dt.tzinfo) -> str:
    url = _view_url(engine, w, row.person_id, links)
    union = client.union_id(w.userid)
    subject = f"[{w.code}] {w.title}"[:200] + (f"——{w.step}"[:100] if w.step else "")
    description = f"{w.plan_name}：第 {w.seq} 步「{w.step}」，请于 {w.due.isoformat()} 前完成。点击查看任务并办理。"
    todo_id = client.create(union, subject=subject, description=description, due_ms=due_ms(w.due, tz), url=url, source_id=f"duban-{row.id}")
    _store(engine, row.id, external_id=f"{union}/{todo_id}", due_date=w.due, last_error=None)
    return "created"


def _move(engine: Engine, client: TodoService, row: Any, w: _Want, *, tz: dt.tzinfo) -> str:
    union, todo_id = row.external_id.split("/", 1)
    client.set_due(union, todo_id, due_ms(w.due, tz))
    _store(engine, row.id, due_date=w.due, last_error=None)
    return "updated"


def _close(engine: Engine, client: TodoService, row: Any, *, now: dt.datetime) -> str:
    if row.external_id is not None:  # never created (or its creation failed): nothing to close there
        union, todo_id = row.external_id.split("/", 1)
        client.close(union, todo_id)
    _store(engine, row.id, closed_at=now, last_error=None)
    return "closed"


def _view_url(engine: Engine, w: _Want, person_id: int, links: LinkMaker) -> str:
    """The owner's signed 查看任务 link (an unused one is reused)."""
    expires = max(links.today, w.due) + dt.timedelta(days=links.days_after_due)
    spec = LinkSpec(plan_id=w.plan_id, person_id=person_id, action=LinkAction.VIEW, task_id=w.task_id, milestone_id=None, expires=expires)
    with session_scope(engine) as session:
        (lid,) = issue(session, [spec], secret=links.secret, today=links.today)
        return links.urls(session, [lid])[lid]


def _store(engine: Engine, row_id: int, **values: Any) -> None:
    with session_scope(engine) as session:
        session.execute(update(ChatTodo).where(ChatTodo.id == row_id).values(**values))


def _note_error(engine: Engine, row_id: int, reason: str) -> None:
    _store(engine, row_id, last_error=reason[:2000])


def sync_configured(rt: Any, *, now: dt.datetime | None = None, plan_ids: list[int] | None = None) -> TodoResult | None:
    """:func:`sync_todos` with the runtime's DingTalk app (None: no DingTalk app configured).

    ``rt`` is a :class:`duban.runtime.Runtime`; called by the delivery run every few minutes."""
    from duban.runtime import dingtalk_app
    from notifications.dingtalk_todo import TodoClient

    app = dingtalk_app(rt.settings)
    if app is None:
        return None
    client = TodoClient(app)
    now = now or dt.datetime.now(dt.UTC)
    return sync_todos(rt.engine, now=now, client=client, links=rt.links(now.astimezone(rt.tz).date()), tz=rt.tz, plan_ids=plan_ids)
