"""Deadline rules: pure functions of (task and its milestones, policy, calendar, today).

``decide`` says who gets what today; ``colour`` derives the red/yellow/green light.  Nothing
here reads the clock, the database or the network, so every rule is a table-driven test.

Decisions carry a unique ``key``.  A key names the message, not the day: the same reminder
decided again tomorrow (a missed run, a retry, a second sweep) has the same key, and the ledger
keeps it once.  Reminders pick the latest step already reached, so a day without a sweep never
loses a message and never sends a stale one; moving a due date bumps its version, which restarts
its reminders.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

from duban.rules.policy import DeadlinePolicy
from duban.vocabulary import OPEN_STATES, Light, MessageKind, MilestoneState, Period, Schedule


class Calendar(Protocol):
    def workdays_between(self, start: dt.date, end: dt.date) -> int: ...
    def is_workday(self, d: dt.date) -> bool: ...


@dataclass(frozen=True)
class MilestoneView:
    id: int
    seq: int
    title: str
    due: dt.date
    due_version: int
    status: str
    is_final: bool = False


@dataclass(frozen=True)
class TaskView:
    id: int
    plan_id: int
    code: str
    title: str
    owner_id: int
    schedule: str = Schedule.ONCE
    period: str | None = None
    period_month: int | None = None
    head_id: int | None = None  # head of the lead department
    owner_manager_id: int | None = None
    supervisor_id: int | None = None  # 分管校领导
    office_ids: tuple[int, ...] = ()
    assigned_on: dt.date = dt.date.min
    acknowledged: bool = False
    last_report_on: dt.date | None = None
    milestones: tuple[MilestoneView, ...] = ()
    archived: bool = False


@dataclass(frozen=True)
class Decision:
    key: str
    kind: MessageKind
    task_id: int
    recipient_id: int
    milestone_id: int | None = None
    level: int = 0
    due: dt.date | None = None
    days: int = 0  # working days left (>= 0) or late (< 0)
    data: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def escalation_recipients(task: TaskView, level: int) -> tuple[int, ...]:
    """Level 1: the department head (the owner's manager when the owner is the head);
    level 2: the supervising leader; level 3: the office (领导小组办公室)."""
    if level == 1:
        who = task.head_id if task.head_id not in (None, task.owner_id) else task.owner_manager_id
        return (who,) if who not in (None, task.owner_id) else ()
    if level == 2:
        return (task.supervisor_id,) if task.supervisor_id not in (None, task.owner_id) else ()
    return tuple(p for p in task.office_ids if p != task.owner_id)


def _ladder(
    task: TaskView,
    tag: str,
    due: dt.date,
    policy: DeadlinePolicy,
    cal: Calendar,
    today: dt.date,
    *,
    before: tuple[int, ...],
    soon_kind: MessageKind,
    late_kind: MessageKind,
    grace: int = 0,
    milestone_id: int | None = None,
    data: dict[str, Any],
) -> list[Decision]:
    """Reminders before ``due``; after it (plus ``grace`` working days) nags and escalations."""
    out: list[Decision] = []
    common: dict[str, Any] = {"task_id": task.id, "milestone_id": milestone_id, "due": due, "data": data}
    if today <= due:
        left = cal.workdays_between(today, due)
        steps = [step for step in before if left <= step]
        if steps:
            step = min(steps)
            out.append(
                Decision(key=f"{soon_kind}:{tag}:p{task.owner_id}:d{step}", kind=soon_kind, recipient_id=task.owner_id, days=left, **common)
            )
        return out
    late = cal.workdays_between(due, today) - grace
    if late < 1:
        return out
    nag = min((late - 1) // policy.overdue_every + 1, policy.overdue_cap)
    out.append(Decision(key=f"{late_kind}:{tag}:p{task.owner_id}:n{nag}", kind=late_kind, recipient_id=task.owner_id, days=-late, **common))
    # each recipient is escalated to at the highest level reached (a head who is also the
    # supervising leader gets one message, at the higher level)
    reached: dict[int, int] = {}
    for level, after in ((1, policy.escalate_head_after), (2, policy.escalate_supervisor_after), (3, policy.escalate_office_after)):
        if late >= after:
            for r in escalation_recipients(task, level):
                reached[r] = level
    for r, level in reached.items():
        out.append(
            Decision(
                key=f"{MessageKind.ESCALATION}:{tag}:L{level}:p{r}",
                kind=MessageKind.ESCALATION,
                recipient_id=r,
                level=level,
                days=-late,
                **common,
            )
        )
    return out


def approval_reminder(submitted_on: dt.date, policy: DeadlinePolicy, cal: Calendar, today: dt.date) -> tuple[int, int] | None:
    """A completion or extension waiting for the office: (reminder step, working days waited), or
    None while it is younger than ``approval_remind_after`` working days.  Steps follow the overdue
    nag (every ``overdue_every`` working days, at most ``overdue_cap``); the step is part of the
    ledger key, so each is sent once and a missed day sends only the latest."""
    waited = cal.workdays_between(submitted_on, today)
    late = waited - policy.approval_remind_after + 1
    if late < 1:
        return None
    return min((late - 1) // policy.overdue_every + 1, policy.overdue_cap), waited


def period_bounds(cal: Any, day: dt.date, period: str, month: int | None = None) -> tuple[dt.date, dt.date]:
    """The reporting period containing ``day``: (first day, due day)."""
    if period == Period.WEEK:
        start = day - dt.timedelta(days=day.weekday())
        return start, start + dt.timedelta(days=4)
    if period == Period.MONTH:
        start = day.replace(day=1)
        return start, (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    if period == Period.QUARTER:
        q0 = (day.month - 1) // 3 * 3 + 1
        start = day.replace(month=q0, day=1)
        return start, (start + dt.timedelta(days=95)).replace(day=1) - dt.timedelta(days=1)
    if period == Period.YEAR:
        m = month or 12
        end = _month_end(day.year, m)
        if day > end:
            end = _month_end(day.year + 1, m)
        return _month_end(end.year - 1, m) + dt.timedelta(days=1), end
    # semester: the calendar's semesters (institution file, or the defaults), contiguous: a
    # vacation belongs to the coming semester
    return cal.semester_period(day)


def _month_end(year: int, month: int) -> dt.date:
    first_next = dt.date(year + (month == 12), month % 12 + 1, 1)
    return first_next - dt.timedelta(days=1)


def decide(task: TaskView, policy: DeadlinePolicy, cal: Calendar, today: dt.date) -> list[Decision]:
    """Every message this task calls for today (the ledger drops the ones already decided)."""
    if task.archived:
        return []
    open_ms = [m for m in task.milestones if m.status in OPEN_STATES]
    ongoing = task.schedule in (Schedule.RECURRING, Schedule.ONGOING)
    if not open_ms and not ongoing:
        return []  # done, submitted for review or nothing dated
    out: list[Decision] = []
    base = {"code": task.code, "title": task.title}

    if not task.acknowledged:
        waited = cal.workdays_between(task.assigned_on, today)
        tag = f"t{task.id}:{task.assigned_on.isoformat()}"
        ack_data = {**base, "assigned_on": task.assigned_on.isoformat(), "waited": waited}
        if waited >= policy.ack_within:
            out.append(
                Decision(
                    key=f"{MessageKind.ACK}:{tag}:p{task.owner_id}",
                    kind=MessageKind.ACK,
                    recipient_id=task.owner_id,
                    task_id=task.id,
                    days=-waited,
                    data=ack_data,
                )
            )
        if waited >= policy.ack_escalate_after:
            for r in escalation_recipients(task, 1):
                out.append(
                    Decision(
                        key=f"{MessageKind.ESCALATION}:ack:{tag}:p{r}",
                        kind=MessageKind.ESCALATION,
                        recipient_id=r,
                        task_id=task.id,
                        level=1,
                        days=-waited,
                        data={**ack_data, "ack": True},
                    )
                )

    for m in open_ms:
        data = {**base, "milestone": m.title, "seq": m.seq, "final": m.is_final}
        out += _ladder(
            task,
            f"m{m.id}v{m.due_version}",
            m.due,
            policy,
            cal,
            today,
            before=policy.remind_before,
            soon_kind=MessageKind.DUE,
            late_kind=MessageKind.OVERDUE,
            milestone_id=m.id,
            data=data,
        )

    if ongoing and task.period:
        out += _report_decisions(task, policy, cal, today, base)
    return out


def _report_state(task: TaskView, cal: Any, today: dt.date):
    """The current period, the two completed periods before it, and which have a report.

    Two completed periods, not one: while the last one is still within its grace days, the one
    before it may still be missing and must stay red and keep escalating.
    """
    if task.period is None:  # only ongoing and recurring tasks have periods
        raise ValueError(f"task {task.code} ({task.schedule}) has no report period")
    start, end = period_bounds(cal, today, task.period, task.period_month)
    prev = period_bounds(cal, start - dt.timedelta(days=1), task.period, task.period_month)
    older = period_bounds(cal, prev[0] - dt.timedelta(days=1), task.period, task.period_month)
    last = task.last_report_on

    def done(period: tuple[dt.date, dt.date]) -> bool:
        return (last is not None and last >= period[0]) or task.assigned_on > period[1]

    current_done = last is not None and last >= start
    return (start, end), [p for p in (older, prev) if not done(p)], current_done


def _report_decisions(task, policy, cal, today, base) -> list[Decision]:
    (start, end), missing, current_done = _report_state(task, cal, today)
    out: list[Decision] = []
    for pstart, pend in missing:
        out += _ladder(
            task,
            f"r{task.id}:{pend.isoformat()}",
            pend,
            policy,
            cal,
            today,
            before=(),
            soon_kind=MessageKind.REPORT_DUE,
            late_kind=MessageKind.REPORT_OVERDUE,
            grace=policy.report_grace,
            data={**base, "period_start": pstart.isoformat(), "period_end": pend.isoformat(), "report": True},
        )
    if not current_done and task.assigned_on <= end:
        out += _ladder(
            task,
            f"r{task.id}:{end.isoformat()}",
            end,
            policy,
            cal,
            today,
            before=policy.report_remind_before,
            soon_kind=MessageKind.REPORT_DUE,
            late_kind=MessageKind.REPORT_OVERDUE,
            grace=policy.report_grace,
            data={**base, "period_start": start.isoformat(), "period_end": end.isoformat(), "report": True},
        )
    return out


def colour(task: TaskView, policy: DeadlinePolicy, cal: Calendar, today: dt.date) -> str | None:
    """Red: past due and open (or a periodic report overdue); yellow: due within the reminder window,
    not acknowledged in time, behind its roadmap or a report due; green otherwise; None when done
    or archived."""
    if task.archived:
        return None
    live = [m for m in task.milestones if m.status != MilestoneState.ARCHIVED]
    open_ms = [m for m in live if m.status in OPEN_STATES]
    ongoing = task.schedule in (Schedule.RECURRING, Schedule.ONGOING)
    if not ongoing and live and all(m.status == MilestoneState.DONE for m in live):
        return None
    if not ongoing and not live:
        return None
    if any(m.due < today for m in open_ms):
        return Light.RED
    yellow = any(cal.workdays_between(today, m.due) <= policy.window for m in open_ms)
    if not task.acknowledged and cal.workdays_between(task.assigned_on, today) >= policy.ack_within:
        yellow = True
    if open_ms:
        first_open = min(m.seq for m in open_ms)
        if any(m.seq > first_open and m.status in (MilestoneState.SUBMITTED, MilestoneState.DONE) for m in live):
            yellow = True  # a later step moved on while an earlier one is still open
    if ongoing and task.period:
        (start, end), missing, current_done = _report_state(task, cal, today)
        for _pstart, pend in missing:
            if cal.workdays_between(pend, today) - policy.report_grace >= 1:
                return Light.RED
            yellow = True
        if not current_done and cal.workdays_between(today, end) <= max(policy.report_remind_before, default=0):
            yellow = True
    return Light.YELLOW if yellow else Light.GREEN
