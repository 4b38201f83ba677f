"""我的督办: a person's own list of the tasks they hold, and 批量签收 (acknowledge many at once).

Every digest to a person carries one reusable link to this list (``LinkAction.MINE``, issued by
:meth:`duban.links.LinkMaker.mine`), so a 处长 with fifteen tasks opens one page instead of
reading fifteen links.  The list reads the store as the deadline rules do
(:func:`duban.sweep.decisions.load`, :func:`duban.rules.deadlines.decide`): what is asked of each
task now (待签收, 待反馈, 即将到期, 已逾期 N 个工作日, 待审核), its step and due date (the
approved extension shown against the baseline).  Each task's buttons are the person's own action
links, issued or reused the way a message does (:func:`duban.links.issue`).  A human listed in two
plans of their institution (one person row each, :mod:`duban.person_rows`) sees both plans' tasks
in one list (:func:`tasks_of`), each labelled with its plan.

:func:`acknowledge_many` acknowledges several tasks in one transaction through the single 签收
(:func:`duban.actions.acknowledge`, each with the 签收 link of the task for the person row that
holds it), so the history reads exactly as if each had been signed from its message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.orm import Session

from duban import actions
from duban.action_common import ActionError, Origin, label
from duban.link_tokens import link_token
from duban.links import LinkMaker, LinkRefused, LinkSpec, issue, resolve
from duban.models import Link, Milestone, Plan, Task
from duban.person_rows import PersonRow
from duban.rules.deadlines import TaskView
from duban.rules.deadlines import decide as decide_task
from duban.rules.policy import DeadlinePolicy
from duban.status import ONGOING, RANKS
from duban.sweep.decisions import load
from duban.vocabulary import OPEN_STATES, LinkAction, MessageKind, MilestoneState

ACK_ASK = "待签收"
REPORT_ASK = "待反馈"
SOON_ASK = "即将到期"
REVIEW_ASK = "待审核"


@dataclass
class MyTask:
    """One task of the person's list, as the page shows it."""

    id: int
    code: str
    title: str
    state: str  # the task's state (MilestoneState), derived like duban.status
    step: str  # the current step's name
    milestone_id: int | None  # the current open step (the 提交办结 and 申请延期 links name it)
    due: dt.date | None  # the current step's due date (or the report's, for a periodic task)
    baseline: dt.date | None  # the first due date, when an approved extension moved it
    asks: list[str]
    overdue_days: int  # working days late (0: not late)
    acknowledged: bool
    finished: bool
    due_is_report: bool = False  # ``due`` is a periodic report's (反馈截止), not a step's
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, path) of the action pages
    view: str = ""  # the task's page (/l/<view token>)
    owner_id: int = 0  # the person row that holds it (one per plan of the human)
    plan_id: int = 0
    plan_name: str = ""

    @property
    def state_label(self) -> str:
        return MilestoneState(self.state).label

    @property
    def sort_key(self) -> tuple:
        """Overdue first (the latest first), then by due date."""
        return (self.overdue_days == 0, -self.overdue_days, self.due or dt.date.max, self.code, self.plan_id)


def _state(view: TaskView, live: list[Any]) -> str:
    """The task's state, as duban.status derives it (the least advanced live step)."""
    if view.schedule in ONGOING or not live:
        return MilestoneState.IN_PROGRESS if view.acknowledged else MilestoneState.ASSIGNED
    return min((m.status for m in live), key=lambda s: RANKS.get(s, 0))


def _asks(view: TaskView, policy: DeadlinePolicy, cal: Any, today: dt.date, current: Any, live: list[Any]) -> tuple[list[str], int, Any]:
    """What the task asks of its owner now, the working days it is late, and a report's due date."""
    asks = [] if view.acknowledged else [ACK_ASK]
    late, report_due = 0, None
    if current is not None and current.due_date < today:
        late = max(cal.workdays_between(current.due_date, today), 1)
        asks.append(f"已逾期 {late} 个工作日")
    elif current is not None and cal.workdays_between(today, current.due_date) <= policy.window:
        asks.append(SOON_ASK)
    reports = [d for d in decide_task(view, policy, cal, today) if d.kind in (MessageKind.REPORT_DUE, MessageKind.REPORT_OVERDUE)]
    if reports:
        asks.append(REPORT_ASK)
        report_due = min((d.due for d in reports if d.due is not None), default=None)
        if current is None and report_due is not None and report_due < today:
            late = max(late, cal.workdays_between(report_due, today))
    if any(m.status == MilestoneState.SUBMITTED for m in live):
        asks.append(REVIEW_ASK)
    return asks, late, report_due


def tasks_of(session: Session, rows: Sequence[PersonRow], *, cal: Any, today: dt.date, tz: Any) -> list[MyTask]:
    """Every announced, live task the human owns through any of their person rows
    (:func:`duban.person_rows.same_person_rows`: one per plan of their institution), in one reading
    order (:func:`in_order`), each task knowing its row and plan."""
    out: list[MyTask] = []
    for row in rows:
        for t in _tasks_of(session, row.person_id, row.plan_id, cal=cal, today=today, tz=tz):
            t.plan_name = row.plan_name
            out.append(t)
    return in_order(out)


def in_order(tasks: list[MyTask]) -> list[MyTask]:
    """Open tasks in reading order (overdue first, then by due date), then the finished ones."""
    return sorted((t for t in tasks if not t.finished), key=lambda t: t.sort_key) + sorted(
        (t for t in tasks if t.finished), key=lambda t: (t.code, t.plan_id)
    )


def _tasks_of(session: Session, person_id: int, plan_id: int, *, cal: Any, today: dt.date, tz: Any) -> list[MyTask]:
    code = session.scalar(select(Plan.code).where(Plan.id == plan_id))
    loaded = load(session, tz=tz, plan_code=code, owner_id=person_id)
    views = [(v, p) for v, p in loaded.tasks if v.announced_on is not None]
    steps: dict[int, list[Any]] = {}
    if views:
        rows = session.execute(
            select(Milestone.id, Milestone.task_id, Milestone.seq, Milestone.title, Milestone.is_final, Milestone.status)
            .add_columns(Milestone.due_date, Milestone.baseline_due_date)
            .where(Milestone.task_id.in_([v.id for v, _ in views]), Milestone.status != MilestoneState.ARCHIVED)
            .order_by(Milestone.seq, Milestone.id)
        )
        for m in rows:
            steps.setdefault(m.task_id, []).append(m)
    out = [_one(view, policy, steps.get(view.id, []), cal, today) for view, policy in views]
    for t in out:
        t.owner_id, t.plan_id = person_id, plan_id
    return out


def _one(view: TaskView, policy: DeadlinePolicy, live: list[Any], cal: Any, today: dt.date) -> MyTask:
    open_steps = sorted((m for m in live if m.status in OPEN_STATES), key=lambda m: (m.due_date, m.seq))
    ongoing = view.schedule in ONGOING
    finished = (ongoing and view.ends_on is not None and today > view.ends_on) or (
        not ongoing and bool(live) and all(m.status == MilestoneState.DONE for m in live)
    )
    current = open_steps[0] if open_steps and not finished else None
    shown = current or next((m for m in live if m.status == MilestoneState.SUBMITTED), None)
    asks, late, report_due = _asks(view, policy, cal, today, current, live) if not finished else ([], 0, None)
    due = shown.due_date if shown is not None else report_due
    moved = shown is not None and shown.baseline_due_date != shown.due_date
    return MyTask(
        id=view.id,
        code=view.code,
        title=view.title,
        state=MilestoneState.DONE if finished else _state(view, live),
        step=label(shown) if shown is not None else "",
        milestone_id=current.id if current is not None else None,
        due=due,
        baseline=shown.baseline_due_date if moved and shown is not None else None,
        asks=asks,
        overdue_days=late,
        acknowledged=view.acknowledged,
        finished=finished,
        due_is_report=shown is None and report_due is not None,
    )


# -- the person's links -----------------------------------------------------------------------------


def _task_specs(t: MyTask, maker: LinkMaker) -> list[LinkSpec]:
    """A task's action links for its owner, as a message carries them: 签收 while unsigned, then
    反馈进展, and 提交办结 and 申请延期 for the current step; always 查看任务."""
    expires = max(maker.today, t.due or maker.today) + dt.timedelta(days=maker.days_after_due)
    wanted: list[tuple[LinkAction, int | None]] = []
    if not t.finished:
        if not t.acknowledged:
            wanted.append((LinkAction.ACK, None))
        wanted.append((LinkAction.PROGRESS, None))
        if t.milestone_id is not None:
            wanted += [(LinkAction.DONE, t.milestone_id), (LinkAction.EXTEND, t.milestone_id)]
    wanted.append((LinkAction.VIEW, None))
    return [LinkSpec(t.plan_id, t.owner_id, action, t.id, mid, expires) for action, mid in wanted]


def attach_links(session: Session, tasks: list[MyTask], maker: LinkMaker) -> None:
    """Issue (or reuse) each task's links for the row that holds it and set its buttons and its
    page (one batch)."""
    per_task = [_task_specs(t, maker) for t in tasks]
    ids = issue(session, [s for specs in per_task for s in specs], secret=maker.secret, today=maker.today)
    urls = maker.urls(session, ids)
    base = maker.base_url.rstrip("/")
    at = 0
    for t, specs in zip(tasks, per_task, strict=True):
        for spec in specs:
            path = urls[ids[at]].removeprefix(base)
            at += 1
            if spec.action == LinkAction.VIEW:
                t.view = path
            else:
                t.links.append((LinkAction(spec.action).label, path))


# -- 批量签收 ---------------------------------------------------------------------------------------


@dataclass
class Signed:
    """What 批量签收 did: the tasks it signed, those signed before (by then), those it could not."""

    signed: list[tuple[str, str]] = field(default_factory=list)  # (code, title)
    before: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (code, title, why)


def waiting_for_ack(tasks: Iterable[MyTask]) -> list[MyTask]:
    return [t for t in tasks if not t.finished and not t.acknowledged]


def holds(rows: Sequence[PersonRow]) -> ColumnElement[bool]:
    """The tasks one of the human's rows owns in that row's plan."""
    return or_(false(), *(and_(Task.owner_id == r.person_id, Task.plan_id == r.plan_id) for r in rows))


def shown_title(title: str, plan_name: str, rows: Sequence[PersonRow]) -> str:
    """A task's title as the 签收 lists show it: with its plan's name when the human has several."""
    return f"{title}（{plan_name}）" if len(rows) > 1 else title


def acknowledge_many(
    session: Session, rows: Sequence[PersonRow], task_ids: list[int], origin: Origin, *, maker: LinkMaker, now: dt.datetime
) -> Signed:
    """签收 each of ``task_ids`` one of the human's ``rows`` owns, in the caller's one transaction,
    through :func:`duban.actions.acknowledge` with the 签收 link of the task for the row that holds
    it (issued or reused): the same events, the same link used up, as 签收 from a message.  A task
    signed meanwhile is reported in ``before``; one no longer theirs (or archived, not announced)
    in ``refused``."""
    out = Signed()
    plans = {r.plan_id: r.plan_name for r in rows}
    owners = {(r.person_id, r.plan_id) for r in rows}
    tasks = {t.id: t for t in session.scalars(select(Task).where(Task.id.in_(task_ids), Task.plan_id.in_(plans)))}
    for tid in dict.fromkeys(task_ids):
        task = tasks.get(tid)
        if task is None or (task.owner_id, task.plan_id) not in owners or task.archived_at is not None or task.announced_at is None:
            out.refused.append((task.code if task else "", task.title if task else "（未找到该任务）", "该任务不由您负责或已归档"))
            continue
        title = shown_title(task.title, plans[task.plan_id], rows)
        if task.acknowledged_at is not None:
            out.before.append((task.code, title))
            continue
        expires = maker.today + dt.timedelta(days=maker.days_after_due)
        spec = LinkSpec(task.plan_id, task.owner_id, LinkAction.ACK, tid, None, expires)
        (lid,) = issue(session, [spec], secret=maker.secret, today=maker.today)
        link = session.get(Link, lid)
        if link is None:  # issued just now in this transaction
            raise LookupError(f"link {lid} was issued but is not in the store")
        token = link_token(maker.secret, lid, link.action, link.expires_on)
        try:
            with session.begin_nested():  # a refused one leaves nothing half-written, the others go on
                r = resolve(session, token, secret=maker.secret, today=maker.today, for_update=True)
                actions.acknowledge(session, r, origin, now=now)
        except (LinkRefused, ActionError) as err:
            out.refused.append((task.code, title, getattr(err, "message", None) or str(err)))
            continue
        out.signed.append((task.code, title))
    return out
