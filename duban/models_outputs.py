"""Store tables of what duban produces besides messages: the roll-up's daily snapshots and the issued
督办通报 (duban.rollup, docs/rollup.md), DingTalk 待办 (duban.chat_todos) and numbered 督办单
(duban.paper).  Import them from :mod:`duban.models`, which gathers every table."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Date, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from duban.model_base import Base, utcnow

# ---------------------------------------------------------------------------------------------
# Roll-up snapshots (duban.rollup, docs/rollup.md): the trend reads these; and the issued 通报


class RollupSnapshot(Base):
    """One day's counts of one plan, or of one of its systems or lead departments.

    Written idempotently (upsert on plan, day, scope, key) by the roll-up flow and the daily sweep;
    ``key`` is "" for the plan itself, else the system's or department's name.
    """

    __tablename__ = "rollup_snapshots"
    __table_args__ = (UniqueConstraint("plan_id", "day", "scope", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    day: Mapped[dt.date] = mapped_column(Date, index=True)
    scope: Mapped[str] = mapped_column(String(20))  # plan | system | department
    key: Mapped[str] = mapped_column(String(300), default="")
    tasks: Mapped[int] = mapped_column(Integer, default=0)
    done_tasks: Mapped[int] = mapped_column(Integer, default=0)
    overdue_tasks: Mapped[int] = mapped_column(Integer, default=0)
    due_soon_tasks: Mapped[int] = mapped_column(Integer, default=0)
    red: Mapped[int] = mapped_column(Integer, default=0)
    yellow: Mapped[int] = mapped_column(Integer, default=0)
    green: Mapped[int] = mapped_column(Integer, default=0)
    milestones: Mapped[int] = mapped_column(Integer, default=0)
    done_milestones: Mapped[int] = mapped_column(Integer, default=0)
    due_milestones: Mapped[int] = mapped_column(Integer, default=0)
    on_time_milestones: Mapped[int] = mapped_column(Integer, default=0)
    overdue_milestones: Mapped[int] = mapped_column(Integer, default=0)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Bulletin(Base):
    """One issued 督办通报 of a plan: its kind (weekly or monthly), its issue number (期号) and
    the ranking it published (the next one shows the change since this one)."""

    __tablename__ = "bulletins"
    __table_args__ = (UniqueConstraint("plan_id", "kind", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # BulletinKind: week | month
    number: Mapped[int] = mapped_column(Integer)  # 期号, 1, 2, … per plan and kind
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    issued_on: Mapped[dt.date] = mapped_column(Date)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the figures and ranking it published
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# ---------------------------------------------------------------------------------------------
# Chat apps and numbered paper notices


class ChatTodo(Base):
    """A to-do created in a person's chat app (DingTalk 待办) for one milestone: closed when the
    milestone is done, so the person's to-do list stays true."""

    __tablename__ = "chat_todos"
    __table_args__ = (UniqueConstraint("vendor", "milestone_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    milestone_id: Mapped[int] = mapped_column(ForeignKey("milestones.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    vendor: Mapped[str] = mapped_column(String(20))  # dingtalk
    external_id: Mapped[str | None] = mapped_column(String(200), default=None)  # the vendor's id
    due_date: Mapped[dt.date | None] = mapped_column(Date, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


class SupervisionNotice(Base):
    """A numbered 督办单 issued for one task (督办〔year〕N号): printing it again keeps its number."""

    __tablename__ = "supervision_notices"
    __table_args__ = (UniqueConstraint("plan_id", "year", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    issued_by: Mapped[str] = mapped_column(String(200), default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)  # what the notice asked, as printed
