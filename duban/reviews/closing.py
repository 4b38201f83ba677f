"""Closing a review (完成评定并报送): an explicit step of the office, never a side effect of the
last verdict.  :func:`verdict_summary` is what the confirmation shows (the count per verdict, the
tasks still without one, which block it); :func:`close_review` writes the report, sends it to the
leading group and the office and closes the review, in the caller's transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.models import Event, Review, ReviewItem, Task
from duban.reviews.common import Outcome, ReviewError, report_readers
from duban.reviews.progress import _finish
from duban.vocabulary import EventKind, ReviewState, Verdict


@dataclass
class VerdictSummary:
    counts: dict[str, int]  # verdict → tasks, in the order of Verdict
    unjudged: list[str] = field(default_factory=list)  # "code title" of the tasks without a verdict
    status: str = ""

    @property
    def judged(self) -> int:
        return sum(self.counts.values())

    @property
    def ready(self) -> bool:
        """Every task judged, and the answers closed (the review waits for its verdicts)."""
        return not self.unjudged and self.status == ReviewState.WAITING


def verdict_summary(session: Session, review: Review) -> VerdictSummary:
    counts = {v.value: 0 for v in Verdict}
    out = VerdictSummary(counts, status=review.status)
    rows = session.execute(
        select(Task.code, Task.title, ReviewItem.verdict)
        .join(Task, Task.id == ReviewItem.task_id)
        .where(ReviewItem.review_id == review.id)
        .order_by(Task.code)
    ).all()
    for code, title, verdict in rows:
        if verdict in counts:
            counts[verdict] += 1
        else:
            out.unjudged.append(f"{code} {title}")
    return out


def close_refusal(summary: VerdictSummary) -> str | None:
    """Why the review cannot be closed now (Chinese), or None."""
    if summary.status == ReviewState.CLOSED:
        return "本次督查已完成评定并已报送，无需重复操作。"
    if summary.status == ReviewState.CANCELLED:
        return "本次督查已撤销，不能完成评定。"
    if summary.unjudged:
        shown = "、".join(summary.unjudged[:5]) + ("等" if len(summary.unjudged) > 5 else "")
        return f"还有 {len(summary.unjudged)} 项任务尚未评定（{shown}），请全部评定后再完成评定并报送。"
    if summary.status != ReviewState.WAITING:
        return "填报尚未截止，请在全部责任人填报或填报截止后再完成评定并报送。"
    return None


def close_review(
    session: Session, review_id: int, *, actor: str, now: dt.datetime, today: dt.date, reports_dir: Path, channel: str = "cli"
) -> Outcome:
    """完成评定并报送: the review locked, checked (every task judged), its report written and sent
    to the leading group and the office, the review closed.  A ReviewError says why not."""
    review = session.get(Review, review_id, with_for_update=True)
    if review is None:
        raise ReviewError(f"没有编号为 {review_id} 的督查。")
    summary = verdict_summary(session, review)
    if (why := close_refusal(summary)) is not None:
        raise ReviewError(why)
    _finish(session, review, today=today, now=now, reports_dir=reports_dir)
    session.add(
        Event(
            plan_id=review.plan_id,
            at=now,
            actor=actor[:200],
            channel=channel,
            kind=EventKind.REVIEW_CLOSED,
            data={"review": review.id, "review_title": review.title, "verdicts": summary.counts},
        )
    )
    counts = "，".join(f"{k} {n} 项" for k, n in summary.counts.items())
    return Outcome(
        f"督查「{review.title}」已完成评定（{counts}），督查报告已生成并报送领导小组和领导小组办公室。",
        set(report_readers(session, review.plan_id)),
        wake=True,
    )
