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
    def add_workdays(self, d: dt.date, n: int) -> dt.date: ...


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
    # the day the task was announced (任务下达) to its owner; None: not yet, nothing is sent about it
    announced_on: dt.date | None = dt.date.min
    # the last day a recurring or ongoing task reports (its own end, else the plan's); None: no end
    ends_on: dt.date | None = None

    @property
    def started_on(self) -> dt.date:
        """When the owner's clock started: the announcement, or a later reassignment."""
        return max(self.assigned_on, self.announced_on or dt.date.min)

    @property
    def done(self) -> bool:
        """The final step is done or submitted for approval: the task asks nothing more of its steps."""
        return any(m.is_final and m.status in (MilestoneState.DONE, MilestoneState.SUBMITTED) for m in self.milestones)


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
    """Reminders before ``due``; after it (plus ``grace`` working days) nags and escalations.

    A due date on a day off is met on the last working day before it: the reminders count down to
    that day (its date is in the data as ``due_workday``), and lateness counts from the due date.
    An item already late (or nearly) when the task was announced starts its ladder only after the
    announcement's grace (``announce_grace`` working days), so nothing climbs on announcement day.
    """
    last = due if cal.is_workday(due) else cal.add_workdays(due, -1)  # the last working day before it
    if last != due:
        data = {**data, "due_workday": last.isoformat()}
    common: dict[str, Any] = {"task_id": task.id, "milestone_id": milestone_id, "due": due, "data": data}
    if today <= due:
        left = max(cal.workdays_between(today, last), 0)  # 0 on the weekend before a Sunday deadline
        steps = [step for step in before if left <= step]
        if not steps:
            return []
        step = min(steps)
        return [
            Decision(key=f"{soon_kind}:{tag}:p{task.owner_id}:d{step}", kind=soon_kind, recipient_id=task.owner_id, days=left, **common)
        ]
    late = cal.workdays_between(due, today) - grace
    climbed = late - _announcement_grace(task, due, grace, policy, cal)
    if climbed < 1:
        return []
    nag = min((climbed - 1) // policy.overdue_every + 1, policy.overdue_cap)
    out = [Decision(key=f"{late_kind}:{tag}:p{task.owner_id}:n{nag}", kind=late_kind, recipient_id=task.owner_id, days=-late, **common)]
    # each recipient is escalated to at the highest level reached (a head who is also the
    # supervising leader gets one message, at the higher level)
    reached: dict[int, int] = {}
    for level, after in ((1, policy.escalate_head_after), (2, policy.escalate_supervisor_after), (3, policy.escalate_office_after)):
        if climbed >= after:
            for r in escalation_recipients(task, level):
                reached[r] = level
    for r, level in reached.items():
        key = f"{MessageKind.ESCALATION}:{tag}:L{level}:p{r}"
        out.append(Decision(key=key, kind=MessageKind.ESCALATION, recipient_id=r, level=level, days=-late, **common))
    return out + _renotices(task, tag, climbed, reached, policy, late=late, common=common, late_kind=late_kind)


def _renotices(
    task: TaskView,
    tag: str,
    climbed: int,
    reached: dict[int, int],
    policy: DeadlinePolicy,
    *,
    late: int,
    common: dict[str, Any],
    late_kind: MessageKind,
) -> list[Decision]:
    """After the last level: every ``renotice_every`` working days, the owner and everyone on the
    ladder hear again (持续督办, the k-th time) until the item is resolved."""
    k = (climbed - policy.escalate_office_after) // policy.renotice_every
    if k < 1:
        return []
    data = {**common["data"], "renotice": k}
    common = {**common, "data": data}
    out = [Decision(key=f"{late_kind}:{tag}:p{task.owner_id}:R{k}", kind=late_kind, recipient_id=task.owner_id, days=-late, **common)]
    for r, level in reached.items():
        key = f"{MessageKind.ESCALATION}:{tag}:L{level}:p{r}:R{k}"
        out.append(Decision(key=key, kind=MessageKind.ESCALATION, recipient_id=r, level=level, days=-late, **common))
    return out


def _announcement_grace(task: TaskView, due: dt.date, grace: int, policy: DeadlinePolicy, cal: Calendar) -> int:
    """Working days of lateness that do not count because the owner learned of the task late:
    an item due before the announcement's grace ends climbs only from the end of that grace (and
    never on announcement day itself)."""
    start = task.announced_on
    if start is None or start == dt.date.min:
        return 0
    late_at_start = cal.workdays_between(due, start) - grace  # may be negative: due after the announcement
    allowance = late_at_start + policy.announce_grace
    return max(allowance, 0)


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
    """Every message this task calls for today (the ledger drops the ones already decided).

    Nothing before the task is announced, nor on the day it is (the announcement was the message);
    nothing about its steps once the final step is done or submitted; nothing for a recurring or
    ongoing task after its end."""
    if task.archived or task.announced_on is None or today <= task.announced_on:
        return []
    ongoing = task.schedule in (Schedule.RECURRING, Schedule.ONGOING)
    if ongoing and task.ends_on is not None and today > task.ends_on:
        return []
    open_ms = [] if task.done else [m for m in task.milestones if m.status in OPEN_STATES]
    if not open_ms and not ongoing:
        return []  # done, submitted for review or nothing dated
    base = {"code": task.code, "title": task.title}
    out = _ack_decisions(task, policy, cal, today, base) if not task.acknowledged else []
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


def _ack_decisions(task: TaskView, policy: DeadlinePolicy, cal: Calendar, today: dt.date, base: dict[str, Any]) -> list[Decision]:
    """Not yet acknowledged (签收): a reminder to the owner, then the head (the clock starts at the
    announcement, or at a later reassignment)."""
    start = task.started_on
    waited = cal.workdays_between(start, today)
    tag = f"t{task.id}:{start.isoformat()}"
    ack_data = {**base, "assigned_on": start.isoformat(), "waited": waited}
    out: list[Decision] = []
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
    if task.ends_on is not None and end > task.ends_on:
        end = max(task.ends_on, start)  # the last period is due at the task's (or plan's) end
    last = task.last_report_on

    def done(period: tuple[dt.date, dt.date]) -> bool:
        return (last is not None and last >= period[0]) or task.started_on > period[1]

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
    if not current_done and task.started_on <= end:
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
