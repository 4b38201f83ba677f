"""Issuing the numbered 督办通报 (周通报 / 月通报) of each plan.

``issue_bulletins`` decides, per plan, which bulletins are due (``duban.rollup.schedule``: the
last working day of the week or month, per ``plans.bulletin_every``), and issues each in one
transaction: a ``bulletins`` row (kind, 期号 = the plan's previous of that kind + 1, period,
issue day, and ``data``: the figures and the 考核 ranking it published) and the digests that
carry it to the leading group and the office (``notifications.bulletin``).  The ranking shows
each department's change since the plan's previous bulletin of the same kind.

A bulletin of a kind is issued once per period: running again the same day (or later in the same
week or month) issues nothing unless ``force``.  A plan without anyone to receive it issues
nothing (its 期号 is not used up).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from duban.db import session_scope
from duban.models import Bulletin, Department, Milestone, Plan, Task, utcnow
from duban.rollup import Rollup, pct
from duban.rollup.assessment import NOTHING_DUE, explanation, rank_change
from duban.rollup.frames import published_ranks
from duban.rollup.schedule import issue_name, kinds_due, kinds_of, period_of, period_text, title
from duban.rules.calendar import WorkCalendar
from duban.rules.policy import assessment_policy
from duban.values import local_date
from duban.vocabulary import BulletinKind, MilestoneState
from notifications.bulletin import BulletinError, Queued, collect, queue_digests, recipients

TOP_OVERDUE = 10  # the most serious overdue items listed with the 督办 level reached
COMPLETED_ROWS = 30  # completions in the period listed by name (all are counted)


@dataclass
class Issued:
    """One bulletin issued (or, in a dry run, that would be issued)."""

    plan: str
    kind: BulletinKind
    number: int
    title: str
    period: str
    payload: dict[str, Any]
    queued: list[Queued]


@dataclass
class BulletinRun:
    """What a run issued, and what it did not: already issued this period, or nobody to send to."""

    issued: list[Issued] = field(default_factory=list)
    already: list[str] = field(default_factory=list)  # "rollup 第 3 期周通报（2026-11-20）"
    no_recipients: list[str] = field(default_factory=list)  # plan codes

    @property
    def queued(self) -> list[Queued]:
        return [q for i in self.issued for q in i.queued]


def plans_due(engine: Engine, *, today: dt.date, cal: WorkCalendar, plan_code: str | None = None) -> list[str]:
    """The plans (codes) with a bulletin due ``today`` by their setting and the calendar."""
    with session_scope(engine, readonly=True) as session:
        rows = session.execute(_plans_query(plan_code).with_only_columns(Plan.code, Plan.bulletin_every)).all()
        if plan_code is not None and not rows:
            _unknown(session, plan_code)
    return [code for code, every in rows if kinds_due(every, today, cal)]


def _unknown(session, plan_code: str) -> NoReturn:
    known = "、".join(session.scalars(select(Plan.code).order_by(Plan.code))) or "（暂无）"
    raise BulletinError(f"没有编号为“{plan_code}”的方案。已有方案：{known}")


def issue_bulletins(
    engine: Engine,
    *,
    today: dt.date,
    cal: WorkCalendar,
    tz: Any,
    plan_code: str | None = None,
    kinds: Sequence[str] | None = None,
    scheduled: bool = True,
    channel: str = "dispatch",
    dry_run: bool = False,
    force: bool = False,
    now: dt.datetime | None = None,
    rollup: Rollup | None = None,
) -> BulletinRun:
    """Issue the bulletins of each plan (or ``plan_code``).

    ``scheduled``: the kinds due ``today`` by the plan's setting and the calendar (limited to
    ``kinds`` when given); otherwise ``kinds``, or the plan's own kinds, whatever the day.
    ``force`` issues again a kind already issued for this period.  ``dry_run`` writes nothing.
    ``rollup`` (as of ``today``, covering the plans) is computed when not given.
    """
    now = now or utcnow()
    run = BulletinRun()
    with session_scope(engine, readonly=True) as session:
        plans = session.scalars(_plans_query(plan_code)).all()
        if plan_code is not None and not plans:
            _unknown(session, plan_code)
        wanted = {p.code: _kinds(p.bulletin_every, today, cal, kinds=kinds, scheduled=scheduled) for p in plans}
    if not any(wanted.values()):
        return run
    if rollup is None:
        from duban.rollup.compute import compute

        rollup = compute(engine, as_of=today, plan_code=plan_code, tz=tz, cal=cal)
    for code, plan_kinds in wanted.items():
        for kind in plan_kinds:
            try:
                _issue_one(
                    engine, run, code, kind, today=today, cal=cal, tz=tz, r=rollup, channel=channel, dry_run=dry_run, force=force, now=now
                )
            except IntegrityError:  # another run issued this 期号 at the same moment: that one stands
                run.already.append(f"{code} {kind.label}（同时运行的另一次已印发）")
    return run


def _plans_query(plan_code: str | None):
    q = select(Plan).order_by(Plan.code)
    return q if plan_code is None else q.where(Plan.code == plan_code)


def _kinds(every: str | None, today: dt.date, cal: WorkCalendar, *, kinds: Sequence[str] | None, scheduled: bool) -> list[BulletinKind]:
    if scheduled:
        return [k for k in kinds_due(every, today, cal) if kinds is None or k in kinds]
    return [BulletinKind(k) for k in kinds] if kinds else list(kinds_of(every))


def _issue_one(engine: Engine, run: BulletinRun, code: str, kind: BulletinKind, *, today, cal, tz, r, channel, dry_run, force, now) -> None:
    """One plan's bulletin of one kind: its row and its digests, in one transaction."""
    start, end = period_of(kind, today)
    with session_scope(engine, readonly=dry_run) as session:
        plan = session.scalars(select(Plan).where(Plan.code == code)).one()
        mine = select(Bulletin).where(Bulletin.plan_id == plan.id, Bulletin.kind == kind).order_by(Bulletin.number.desc()).limit(1)
        done = session.scalars(mine.where(Bulletin.period_start == start)).first()
        if done is not None and not force:
            run.already.append(f"{code} {issue_name(done.kind, done.number, done.issued_on)}")
            return
        last = session.scalars(mine).first()
        targets = recipients(session, plan)
        if not targets:
            run.no_recipients.append(code)
            return
        number = (last.number if last else 0) + 1
        payload = _payload(session, plan, kind, number, (start, end), last, today=today, cal=cal, tz=tz, r=r)
        queued = queue_digests(session, plan, payload, targets, today=today, channel=channel, now=now, dry_run=dry_run)
        if not dry_run:
            session.add(
                Bulletin(
                    plan_id=plan.id,
                    kind=kind,
                    number=number,
                    period_start=start,
                    period_end=end,
                    issued_on=today,
                    data=_record(payload),
                    created_at=now,
                )
            )
        issue = payload["bulletin"]
        run.issued.append(Issued(code, kind, number, issue["title"], issue["period"], payload, queued))


def _payload(session, plan: Plan, kind: BulletinKind, number: int, period, last: Bulletin | None, *, today, cal, tz, r) -> dict[str, Any]:
    """The message's data: the overdue items, the roll-up's figures, the completions of the period
    and the ranking with its change since ``last`` (the previous bulletin of this kind)."""
    start, end = period
    payload = collect(session, plan, today=today, cal=cal)
    ranking, unranked = ranking_of(r.assessment, plan.code, published_ranks(last.data) if last else None)
    completed = completions(session, plan.id, start, min(end, today), tz)
    payload.update(
        bulletin={
            "kind": str(kind),
            "kind_label": kind.label,
            "number": number,
            "title": title(kind, number),
            "period": period_text(kind, start, end),
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
            "compared_with": issue_name(last.kind, last.number, last.issued_on) if last else "",
        },
        figures=figures(r, plan.code),
        ranking=ranking,
        unranked=unranked,
        nothing_due=NOTHING_DUE,
        completed=completed[:COMPLETED_ROWS],
        completed_total=len(completed),
        explanation=explanation(assessment_policy(plan.policy)),
    )
    return payload


def _record(payload: dict[str, Any]) -> dict[str, Any]:
    """What the ``bulletins`` row keeps of what it published (the next issue compares with it)."""
    items = payload["items"]
    return {
        "title": payload["bulletin"]["title"],
        "period": payload["bulletin"]["period"],
        "figures": payload["figures"],
        "overdue": len(items),
        "serious": sum(1 for i in items if i.get("serious")),
        "completed": payload["completed_total"],
        "ranking": [{k: e[k] for k in ("rank", "department", "score", "change")} for e in payload["ranking"]],
        "unranked": payload["unranked"],
        "compared_with": payload["bulletin"]["compared_with"],
    }


def ranking_of(a: pd.DataFrame, plan_code: str, previous: dict[str, int] | None) -> tuple[list[dict[str, Any]], list[str]]:
    """The plan's ranked departments (with the change since ``previous``: None = nothing to
    compare with) and the names of those with nothing due yet."""
    rows: Any = a[a["plan"] == plan_code]
    ranking, unranked = [], []
    for x in rows.itertuples():
        if x.rank is None:
            unranked.append(str(x.department))
            continue
        ranking.append(
            {
                "rank": int(x.rank),
                "department": str(x.department),
                "score": round(float(x.score), 1),
                "change": rank_change((previous or {}).get(str(x.department)), int(x.rank), compared=previous is not None),
                "on_time_rate": pct(x.on_time_rate),
                "late_days": int(x.late_days),
                "escalations": int(x.escalations),
                "returns": int(x.returns),
            }
        )
    return ranking, unranked


def figures(r: Rollup, plan_code: str, *, top: int = TOP_OVERDUE) -> dict[str, Any]:
    """The roll-up's headline figures for one plan, and its most serious overdue items."""
    row = r.by_plan[r.by_plan["plan"] == plan_code]
    if row.empty:
        return {}
    g = row.iloc[0]
    overdue: Any = r.overdue[r.overdue["plan"] == plan_code].head(top)
    return {
        "as_of": r.as_of.isoformat(),
        "tasks": int(g["tasks"]),
        "open_tasks": int(g["tasks"]) - int(g["done_tasks"]),
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
    }


def completions(session, plan_id: int, start: dt.date, end: dt.date, tz: Any) -> list[dict[str, Any]]:
    """Milestones of the plan's live tasks approved as done from ``start`` to ``end`` (local days)."""
    since = dt.datetime.combine(start, dt.time(), tzinfo=tz).astimezone(dt.UTC)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=tz).astimezone(dt.UTC)
    rows = session.execute(
        select(Task.code, Task.title, Milestone.title.label("step"), Milestone.is_final, Milestone.completed_at, Department.name)
        .join(Milestone, Milestone.task_id == Task.id)
        .outerjoin(Department, Department.id == Task.lead_department_id)
        .where(
            Task.plan_id == plan_id,
            Task.archived_at.is_(None),
            Milestone.status == MilestoneState.DONE,
            Milestone.completed_at >= since,
            Milestone.completed_at < until,
        )
        .order_by(Milestone.completed_at, Task.position)
    ).all()
    return [
        {
            "code": x.code,
            "title": x.title,
            "milestone": "" if x.is_final else (x.step or ""),
            "department": x.name or "",
            "on": (local_date(x.completed_at, tz) or start).isoformat(),
        }
        for x in rows
    ]
