"""Store tables of reviews (督查): a coordinator asks every owner in a scope to report, then gives a
verdict per task (duban.reviews, flows/review.py, docs/reviews.md).  Import them from
:mod:`duban.models`, which gathers every table."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from duban.model_base import Base, utcnow
from duban.vocabulary import ItemState, ReviewState


class Review(Base):
    """One 督查: a scope of tasks of a plan, what is asked, a reply-by date; its items are the tasks."""

    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_status_plan", "status", "plan_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    title: Mapped[str] = mapped_column(String(300))
    ask: Mapped[str] = mapped_column(Text, default="")  # what is asked (shown on every request)
    scope_kind: Mapped[str] = mapped_column(String(20))  # plan | system | department | supervisor | tasks
    scope_values: Mapped[list[str]] = mapped_column(default=list)
    reply_by: Mapped[dt.date] = mapped_column(Date)
    started_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default=ReviewState.OPEN)
    started_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    requests_sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    answers_closed_on: Mapped[dt.date | None] = mapped_column(Date, default=None)  # entered waiting_verdicts
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    cancelled_by: Mapped[str | None] = mapped_column(String(200), default=None)
    cancel_reason: Mapped[str] = mapped_column(Text, default="")
    # the Prefect flow run that drives it (None: run in-process / by the sweep); bumped on each wake-up
    flow_run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    wake_round: Mapped[int] = mapped_column(Integer, default=0)
    report_html: Mapped[str | None] = mapped_column(String(1000), default=None)
    report_xlsx: Mapped[str | None] = mapped_column(String(1000), default=None)


class ReviewItem(Base):
    """One task of a review: the owner's answer, then the coordinator's verdict."""

    __tablename__ = "review_items"
    __table_args__ = (UniqueConstraint("review_id", "task_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id"), index=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("people.id"))  # the owner when the review started
    status: Mapped[str] = mapped_column(String(20), default=ItemState.REQUESTED)
    done: Mapped[str] = mapped_column(Text, default="")  # 已完成工作
    problems: Mapped[str] = mapped_column(Text, default="")  # 存在问题
    next_steps: Mapped[str] = mapped_column(Text, default="")  # 下一步计划
    answered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    answered_by: Mapped[str | None] = mapped_column(String(200), default=None)
    verdict: Mapped[str | None] = mapped_column(String(20), default=None)  # 达标 | 基本达标 | 需整改
    verdict_note: Mapped[str] = mapped_column(Text, default="")
    verdict_by: Mapped[str | None] = mapped_column(String(200), default=None)
    verdict_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    follow_up_milestone_id: Mapped[int | None] = mapped_column(ForeignKey("milestones.id"), default=None)
    follow_up_owner_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
