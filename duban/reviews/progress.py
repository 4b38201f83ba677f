"""Moving reviews on: starting one, the daily tick (reminders, escalations, the reply-by date),
advancing a review (the flow's step; also run in-process when no flow run can be resumed), and
delivering what a step wrote to the ledger."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from duban.db import session_scope
from duban.models import Link, Person, Plan, Review, ReviewItem, utcnow
from duban.reviews.answers import _close_answers, send_requests
from duban.reviews.common import ReviewError, _counts, _ledger, _plan, report_readers
from duban.reviews.queries import report_data
from duban.reviews.scope import attach_flow_run, create
from duban.rules.reviews import ReviewItemView, answers_closed, decide_item
from duban.sweep.decisions import load
from duban.sweep.ledger import existing_keys, insert_ignore
from duban.sweep.sending import send_to
from duban.vocabulary import LedgerStatus, LinkAction, MessageKind, ReviewState

log = logging.getLogger("duban.reviews")


@dataclass
class Started:
    review_id: int
    title: str
    tasks: int
    reply_by: dt.date
    how: str  # "deployment": a flow run of the review deployment drives it | "inline": the sweep and the web do
    flow_run_id: str | None = None
    recipients: set[int] = field(default_factory=set)  # who has new ledger items (the caller delivers them)


def start(
    engine: Engine,
    *,
    plan_code: str | None,
    scope_kind: str,
    scope_values: list[str],
    reply_by: dt.date,
    ask: str,
    today: dt.date,
    started_by: str,
    reports_dir: Path,
    title: str | None = None,
    launch: Callable[[dict[str, Any]], str | None] | None = None,
) -> Started:
    """Start a review: check and create it (a ReviewError and nothing is written when the plan, the
    scope or the date is wrong), send the owners' requests to the ledger at once, and hand it to a
    flow run: ``launch(parameters)`` starts one of the ``review`` flow and returns its id, or None
    when there is nowhere to run it (duban.orchestration.run_review_deployment).

    The requests do not wait for a worker: they are in the ledger when this returns (the caller
    delivers them to ``recipients``); the flow run, started with the review's id, finds them sent
    and suspends until the review moves on.  Without a flow run the daily sweep, the web answers
    and the verdicts advance the review in-process (docs/reviews.md)."""
    with session_scope(engine) as s:
        review = create(
            s,
            plan_code=plan_code,
            scope_kind=scope_kind,
            scope_values=list(scope_values),
            reply_by=reply_by,
            ask=ask,
            today=today,
            started_by=started_by,
            title=title,
        )
        plan_code = _plan(s, review.plan_id).code
        started = Started(review.id, review.title, _counts(s, review.id)["items"], review.reply_by, "inline")
    started.recipients = advance(engine, started.review_id, today=today, reports_dir=reports_dir).recipients
    if launch is None:
        return started
    request = {
        "plan": plan_code,
        "scope": scope_kind,
        "values": list(scope_values),
        "reply_by": reply_by.isoformat(),
        "ask": ask,
        "title": started.title,
        "started_by": started_by,
    }
    try:
        run_id = launch({"request": request, "today": today.isoformat(), "review_id": started.review_id})
    except Exception as err:  # noqa: BLE001 - the review is in the store and its requests are out: it goes on in-process
        log.warning(
            "review %s: the review deployment could not be run (%s: %s); advancing in-process",
            started.review_id,
            err.__class__.__name__,
            err,
        )
        return started
    if run_id is None:
        return started
    attach_flow_run(engine, started.review_id, run_id)
    started.how, started.flow_run_id = "deployment", run_id
    return started


@dataclass
class TickResult:
    decided: int = 0
    new: int = 0
    changed: list[int] = field(default_factory=list)  # reviews that moved to waiting_verdicts today
    recipients: set[int] = field(default_factory=set)


def item_views(
    session: Session, *, tz, plan_code: str | None = None, review_id: int | None = None, plan_ids: Collection[int] | None = None
):
    """(ReviewItemView, policy) of every unanswered item of the open or waiting reviews (of one
    plan, of ``plan_ids``, of one review)."""

    q = (
        select(
            ReviewItem.id,
            ReviewItem.review_id,
            ReviewItem.task_id,
            ReviewItem.owner_id,
            ReviewItem.answered_at,
            Review.title,
            Review.reply_by,
            Review.started_on,
            Review.plan_id,
            Plan.code,
        )
        .join(Review, Review.id == ReviewItem.review_id)
        .join(Plan, Plan.id == Review.plan_id)
        .where(Review.status.in_((ReviewState.OPEN, ReviewState.WAITING)), ReviewItem.answered_at.is_(None))
    )
    if plan_code is not None:
        q = q.where(Plan.code == plan_code)
    if plan_ids is not None:
        q = q.where(Review.plan_id.in_(list(plan_ids)))
    if review_id is not None:
        q = q.where(Review.id == review_id)
    rows = session.execute(q).all()
    out = []
    for code in sorted({r.code for r in rows}):
        tasks = {view.id: (view, policy) for view, policy in load(session, tz=tz, plan_code=code).tasks}
        plan_id = next(r.plan_id for r in rows if r.code == code)
        people = dict(session.execute(select(Person.id, Person.manager_id).where(Person.plan_id == plan_id)).all())
        for r in rows:
            if r.code != code or r.task_id not in tasks:
                continue
            view, policy = tasks[r.task_id]
            task_view = dataclasses.replace(view, owner_id=r.owner_id, owner_manager_id=people.get(r.owner_id), milestones=())
            out.append(
                (
                    ReviewItemView(
                        item_id=r.id,
                        review_id=r.review_id,
                        review_title=r.title,
                        task=task_view,
                        requested_on=r.started_on,
                        reply_by=r.reply_by,
                    ),
                    policy,
                )
            )
    return out


def tick(
    engine: Engine,
    *,
    today: dt.date,
    cal,
    tz,
    plan_code: str | None = None,
    now: dt.datetime | None = None,
    plan_ids: Collection[int] | None = None,
) -> TickResult:
    """Decide today's review reminders and escalations, and close the answers of reviews whose
    reply-by date passed (the office is then asked for verdicts).  Idempotent; the daily sweep
    runs it (``plan_code``, ``plan_ids``: of that plan, of these plans only)."""
    now = now or utcnow()
    result = TickResult()
    with session_scope(engine) as session:
        views = item_views(session, tz=tz, plan_code=plan_code, plan_ids=plan_ids)
        owners = {v.task.owner_id for v, _ in views}
        people = dict(session.execute(select(Person.id, Person.name).where(Person.id.in_(owners))).all()) if owners else {}
        decisions = [d for view, policy in views for d in decide_item(view, policy, cal, today)]
        owner_names = {v.item_id: people.get(v.task.owner_id, "") for v, _ in views}
        existing = existing_keys(session, [d.key for d in decisions])
        rows: list[dict[str, Any]] = [
            {
                "key": d.key,
                "plan_id": view_plan,
                "task_id": d.task_id,
                "milestone_id": None,
                "recipient_id": d.recipient_id,
                "kind": d.kind,
                "level": d.level,
                "due_date": d.due,
                "days": d.days,
                "decided_on": today,
                "status": LedgerStatus.PENDING,
                "data": {**d.data, "owner": owner_names.get(d.data["item"], "")},
                "created_at": now,
                "digest_id": None,
            }
            for d in decisions
            if d.key not in existing
            for view_plan in [_plan_of(views, d.data["item"])]
        ]
        result.decided = len(decisions)
        result.new = insert_ignore(session, rows)
        result.recipients |= {r["recipient_id"] for r in rows}
        q = select(Review).where(Review.status == ReviewState.OPEN).with_for_update()
        if plan_code is not None:
            q = q.join(Plan, Plan.id == Review.plan_id).where(Plan.code == plan_code)
        if plan_ids is not None:
            q = q.where(Review.plan_id.in_(list(plan_ids)))
        for review in session.scalars(q).all():
            counts = _counts(session, review.id)
            if answers_closed(today=today, reply_by=review.reply_by, unanswered=counts["items"] - counts["answered"]):
                result.recipients |= _close_answers(session, review, today=today, now=now)
                result.changed.append(review.id)
    return result


def _plan_of(views, item_id: int) -> int:
    for v, _ in views:
        if v.item_id == item_id:
            return v.task.plan_id
    raise KeyError(item_id)


@dataclass
class Advance:
    status: str
    recipients: set[int] = field(default_factory=set)
    report: dict[str, str] = field(default_factory=dict)


def advance(engine: Engine, review_id: int, *, today: dt.date, reports_dir: Path, now: dt.datetime | None = None) -> Advance:
    """Do whatever the review is ready for, once: send the requests and close the answers (everyone
    answered or the reply-by date passed).  Closing the review (the report written and sent) is
    the office's explicit step, :func:`duban.reviews.closing.close_review`, never this one."""
    now = now or utcnow()
    with session_scope(engine) as session:
        review = session.get(Review, review_id, with_for_update=True)
        if review is None:
            raise ReviewError(f"没有编号为 {review_id} 的督查。")
        result = Advance(review.status)
        if review.status in (ReviewState.CLOSED, ReviewState.CANCELLED):
            return result
        result.recipients |= send_requests(session, review, today=today, now=now)
        counts = _counts(session, review.id)
        if review.status == ReviewState.OPEN and answers_closed(
            today=today, reply_by=review.reply_by, unanswered=counts["items"] - counts["answered"]
        ):
            result.recipients |= _close_answers(session, review, today=today, now=now)
        result.status = review.status
        return result


def _finish(session: Session, review: Review, *, today: dt.date, now: dt.datetime, reports_dir: Path) -> dict[str, str]:
    from duban.reviews.report import write_report

    data = report_data(session, review, generated_at=now)
    files = write_report(data, reports_dir / "reviews" / str(review.id))
    review.report_html, review.report_xlsx = str(files.html), str(files.xlsx)
    review.status, review.closed_at = ReviewState.CLOSED, now
    for person in report_readers(session, review.plan_id):
        _ledger(
            session,
            key=f"{MessageKind.REVIEW_REPORT}:rv{review.id}:p{person}",
            review=review,
            recipient=person,
            kind=MessageKind.REVIEW_REPORT,
            today=today,
            now=now,
            due=today,
            data={
                "items": data["counts"]["items"],
                "answered": data["counts"]["answered"],
                "verdicts": data["counts"]["verdicts"],
                "follow_ups": len(data["follow_ups"]),
                "non_responders": len(data["non_responders"]),
            },
        )
    # a link that asked for an answer has nothing left to do
    session.execute(
        update(Link)
        .where(Link.review_id == review.id, Link.void_at.is_(None), Link.action == LinkAction.REVIEW_ANSWER)
        .values(void_at=now, void_reason="督查已完成")
    )
    session.execute(
        update(Link)
        .where(
            Link.review_item_id.in_(select(ReviewItem.id).where(ReviewItem.review_id == review.id)),
            Link.void_at.is_(None),
            Link.action == LinkAction.REVIEW_ANSWER,
        )
        .values(void_at=now, void_reason="督查已完成")
    )
    return {"html": str(files.html), "xlsx": str(files.xlsx)}


def next_wake_round(engine: Engine, review_id: int) -> str | None:
    """Count one more wake-up of the review; the id of its flow run to wake, if it has one."""
    with session_scope(engine) as s:
        review = s.get(Review, review_id, with_for_update=True)
        if review is None or not review.flow_run_id:
            return None
        review.wake_round += 1
        return review.flow_run_id


def deliver(rt, recipients: set[int], today: dt.date) -> None:
    """Assemble and send what a step wrote to the ledger, for just those people."""
    send_to(rt, recipients, today=today)
