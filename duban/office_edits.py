"""What the office and leaders do on a task from the dashboard's task page, as library functions
(the web is thin over them; the CLI may call them too).

- :func:`instruct` (领导批示, a leader or the office): an ``INSTRUCTION`` event and a ledger item
  to the owner ("XX 同志对该任务作出批示：…");
- :func:`urge` (催办, the office): an ``URGED`` event and a reminder to the owner out of the
  sweep's cycle; once per task a day (a second press the same day is refused politely: the owner
  was just told, and two presses by two colleagues must not send two messages);
- :func:`reassign` (更换责任人): the new owner is announced the task (任务下达) afresh, as a
  re-import's reassignment is; the old owner's action links stop working;
- :func:`move_due` (调整完成时间, reason required): the date moves, ``baseline_due_date`` and
  ``sheet_due_date`` stay, ``due_version`` is bumped like an approved extension;
- :func:`archive` (归档, reason required): the task and its open steps are archived.

Each writes one event with the account's name as actor and channel ``web`` in the caller's
transaction and returns an :class:`Edit`: the message for the page and whom to send to now
(``duban.sweep.sending.send_to``).  A re-import treats a reassignment, a date move and an
archiving as decisions (``duban.plans.decided``): a sheet that differs shows them as conflicts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.action_common import label, ledger_item
from duban.announce import announce_in
from duban.links import OWNER_ACTIONS
from duban.links import void as void_links
from duban.models import Event, Milestone, Person, Plan, Task
from duban.rules.calendar import WorkCalendar
from duban.values import aware, clean_text
from duban.vocabulary import OPEN_STATES, EventKind, MessageKind, MilestoneState, Schedule

INSTRUCTION_LIMIT = 500
REASON_LIMIT = 500
CHANNEL = "web"


class EditError(Exception):
    """An edit that cannot be made; the message is for the person who tried."""


@dataclass
class Edit:
    message: str
    notify: set[int] = field(default_factory=set)  # people to send to now
    event_id: int | None = None


def _event(
    session: Session, task: Task, kind: EventKind, data: dict[str, Any], *, by: str, now: dt.datetime, milestone_id: int | None = None
) -> Event:
    ev = Event(plan_id=task.plan_id, task_id=task.id, milestone_id=milestone_id, at=now, actor=by, channel=CHANNEL, kind=kind, data=data)
    session.add(ev)
    session.flush()
    return ev


def _next_step(session: Session, task: Task) -> Milestone | None:
    return session.scalars(
        select(Milestone).where(Milestone.task_id == task.id, Milestone.status.in_(OPEN_STATES)).order_by(Milestone.due_date, Milestone.seq)
    ).first()


def _live(task: Task, what: str) -> None:
    if task.archived_at is not None:
        raise EditError(f"该任务已归档，无法{what}。")
    if task.announced_at is None:
        raise EditError(f"该任务尚未下达，责任人还未收到任务书，暂不能{what}。请先下达任务。")


def _tell_owner(
    session: Session,
    task: Task,
    step: Milestone | None,
    kind: MessageKind,
    key: str,
    data: dict[str, Any],
    today: dt.date,
    now: dt.datetime,
) -> None:
    """A ledger item to the task's owner, under a key no earlier item has (it names this edit's event)."""
    ledger_item(
        session,
        key=key,
        r_plan=task.plan_id,
        task=task,
        milestone=step,
        recipient=task.owner_id,
        kind=kind,
        today=today,
        now=now,
        data=data,
        checked=True,
    )


def instruct(session: Session, task: Task, *, text: str, by: str, now: dt.datetime, today: dt.date) -> Edit:
    """领导批示: recorded, and the owner told at once (the ledger item; the caller sends it)."""
    now = now.astimezone(dt.UTC)  # stored in UTC: SQLite keeps the wall time and drops the offset
    text = clean_text(text, what="批示内容", required=True, limit=INSTRUCTION_LIMIT, error=EditError)
    _live(task, "作出批示")
    ev = _event(session, task, EventKind.INSTRUCTION, {"text": text}, by=by, now=now)
    step = _next_step(session, task)
    _tell_owner(
        session, task, step, MessageKind.INSTRUCTION, f"{MessageKind.INSTRUCTION}:{task.id}:{ev.id}", {"by": by, "text": text}, today, now
    )
    return Edit("批示已记录，并已通知责任人。", {task.owner_id}, ev.id)


def urged_today(session: Session, task_id: int, *, now: dt.datetime, tz: Any) -> Event | None:
    """Today's 催办 of the task, if there was one (the local day of ``now``)."""
    start = dt.datetime.combine(now.astimezone(tz).date(), dt.time(), tzinfo=tz).astimezone(dt.UTC)
    return session.scalars(
        select(Event).where(Event.task_id == task_id, Event.kind == EventKind.URGED, Event.at >= start).order_by(Event.id)
    ).first()


def urge(session: Session, task: Task, *, by: str, now: dt.datetime, today: dt.date, tz: Any, text: str = "") -> Edit:
    """催办: a reminder to the owner now, once per task a day."""
    now = now.astimezone(dt.UTC)  # stored in UTC: SQLite keeps the wall time and drops the offset
    text = clean_text(text, what="催办说明", required=False, limit=INSTRUCTION_LIMIT, error=EditError)
    _live(task, "催办")
    step = _next_step(session, task)
    if step is None and task.schedule == Schedule.ONCE:
        raise EditError("该任务的各项节点均已办结或已提交审核，无需催办。")
    # two colleagues pressing at once: the second waits for the first's row lock (PostgreSQL), then sees its press
    session.execute(select(Task.id).where(Task.id == task.id).with_for_update())
    earlier = urged_today(session, task.id, now=now, tz=tz)
    if earlier is not None:
        when = aware(earlier.at).astimezone(tz)
        raise EditError(f"今天 {when:%H:%M} 已由{earlier.actor}催办过该任务，责任人已收到提醒。同一任务每天只催办一次，请明天再催办。")
    ev = _event(session, task, EventKind.URGED, {"text": text}, by=by, now=now, milestone_id=step.id if step else None)
    data = {"by": by, "text": text, "seq": step.seq if step else None, "final": step.is_final if step else False}
    _tell_owner(session, task, step, MessageKind.URGED, f"urge:{task.id}:{ev.id}", data, today, now)
    return Edit("已向责任人发出催办提醒。", {task.owner_id}, ev.id)


def _sheet_owner(session: Session, task: Task, current: str) -> str:
    """The owner the plan file named at the last import: an earlier office reassignment still in
    force remembers it; otherwise the current owner is the sheet's."""
    last = session.scalars(
        select(Event)
        .where(Event.task_id == task.id, Event.kind.in_((EventKind.OWNER_CHANGED, EventKind.OFFICE_REASSIGNED)))
        .order_by(Event.id.desc())
    ).first()
    if last is not None and last.kind == EventKind.OFFICE_REASSIGNED:
        return str((last.data or {}).get("sheet_owner") or current)
    return current


def reassign(
    session: Session, task: Task, *, person_id: int, by: str, now: dt.datetime, today: dt.date, cal: WorkCalendar, reason: str = ""
) -> Edit:
    """更换责任人: the new owner gets the 任务下达 notice; the old owner's action links stop working."""
    now = now.astimezone(dt.UTC)  # stored in UTC: SQLite keeps the wall time and drops the offset
    reason = clean_text(reason, what="调整理由", required=False, limit=REASON_LIMIT, error=EditError)
    if task.archived_at is not None:
        raise EditError("该任务已归档，无法更换责任人。")
    new = session.get(Person, person_id)
    if new is None or new.plan_id != task.plan_id or not new.active:
        raise EditError("请从本方案的人员名单中选择新的责任人。")
    if new.id == task.owner_id:
        raise EditError(f"{new.name} 已是该任务的责任人，无需更换。")
    old = session.get(Person, task.owner_id)
    old_name = old.name if old else ""
    data = {"from": old_name, "to": new.name, "reason": reason, "sheet_owner": _sheet_owner(session, task, old_name)}
    ev = _event(session, task, EventKind.OFFICE_REASSIGNED, data, by=by, now=now)
    was_announced = task.announced_at is not None
    task.owner_id, task.acknowledged_at, task.assigned_at, task.announced_at, task.updated_at = new.id, None, now, None, now
    for m in session.scalars(select(Milestone).where(Milestone.task_id == task.id, Milestone.status.in_(OPEN_STATES))):
        m.status, m.assigned_at, m.acknowledged_at = MilestoneState.ASSIGNED, now, None
    session.flush()
    void_links(session, reason="任务已改由他人负责", now=now, task_ids=[task.id], actions=OWNER_ACTIONS)
    if not was_announced:  # the plan's tasks wait for 任务下达: this one waits with them
        return Edit(f"责任人已由 {old_name} 更换为 {new.name}；该任务尚未下达，下达时将通知新责任人。", set(), ev.id)
    code = session.scalar(select(Plan.code).where(Plan.id == task.plan_id))
    result = announce_in(session, today=today, now=now, actor=by, plan_code=code, task_codes=[task.code], cal=cal, channel=CHANNEL)
    return Edit(f"责任人已由 {old_name} 更换为 {new.name}，已向新责任人下达该任务。", result.recipients, ev.id)


def move_due(session: Session, task: Task, milestone_id: int, *, new_due: dt.date, reason: str, by: str, now: dt.datetime) -> Edit:
    """调整完成时间: the baseline (and the sheet's date) stay; ``due_version`` is bumped."""
    now = now.astimezone(dt.UTC)  # stored in UTC: SQLite keeps the wall time and drops the offset
    reason = clean_text(reason, what="调整理由", required=True, limit=REASON_LIMIT, error=EditError)
    m = session.get(Milestone, milestone_id)
    if m is None or m.task_id != task.id:
        raise EditError("没有找到该里程碑，请从路线图中选择。")
    if task.archived_at is not None or m.status not in OPEN_STATES:
        raise EditError(f"里程碑「{label(m)}」已办结、已提交审核或已归档，不能调整完成时间。")
    if new_due == m.due_date:
        raise EditError(f"里程碑「{label(m)}」的完成时间已是 {new_due.isoformat()}，无需调整。")
    old = m.due_date
    m.due_date, m.due_version = new_due, m.due_version + 1
    data = {"from": old.isoformat(), "to": new_due.isoformat(), "version": m.due_version, "reason": reason}
    ev = _event(session, task, EventKind.OFFICE_DUE_MOVED, data, by=by, now=now, milestone_id=m.id)
    task.updated_at = now
    return Edit(
        f"里程碑「{label(m)}」的完成时间已由 {old.isoformat()} 调整为 {new_due.isoformat()}（原定 {m.baseline_due_date.isoformat()}）。",
        set(),
        ev.id,
    )


def archive(session: Session, task: Task, *, reason: str, by: str, now: dt.datetime) -> Edit:
    """归档: the task and its open steps; done steps and evidence are kept."""
    now = now.astimezone(dt.UTC)  # stored in UTC: SQLite keeps the wall time and drops the offset
    reason = clean_text(reason, what="归档理由", required=True, limit=REASON_LIMIT, error=EditError)
    if task.archived_at is not None:
        raise EditError("该任务已归档。")
    task.archived_at, task.updated_at = now, now
    for m in session.scalars(select(Milestone).where(Milestone.task_id == task.id)):
        if m.status not in (MilestoneState.DONE, MilestoneState.ARCHIVED):
            m.status, m.archived_at = MilestoneState.ARCHIVED, now
    ev = _event(session, task, EventKind.OFFICE_ARCHIVED, {"reason": reason}, by=by, now=now)
    void_links(session, reason="任务已归档", now=now, task_ids=[task.id])
    return Edit("任务已归档，不再提醒。如需恢复，请在重新导入方案时确认恢复（duban import --accept 任务编号）。", set(), ev.id)
