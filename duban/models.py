"""Store tables (SQLAlchemy 2 typed ORM).

Conventions: every table has an integer ``id``; plan-scoped tables carry ``plan_id``; nothing a
user entered is ever deleted: tasks, milestones, systems and projects are archived instead.
Constraint names follow a naming convention so that Alembic migrations are stable on SQLite and
PostgreSQL (:mod:`duban.model_base`).  The sign-in tables live in :mod:`duban.models_access`, the
review tables in :mod:`duban.models_reviews`, the roll-up snapshots, 通报, 督办单 and chat 待办 in
:mod:`duban.models_outputs`; this module gathers them, so every table is imported from here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from duban.model_base import NAMING_CONVENTION as NAMING_CONVENTION
from duban.model_base import Base as Base
from duban.model_base import table_of as table_of
from duban.model_base import utcnow as utcnow

# every table is importable from here, and in ``Base.metadata`` once this module is imported
# (Alembic's env.py and tests/test_db.py compare the migrations with it)
from duban.models_access import Account as Account
from duban.models_access import DashboardLink as DashboardLink
from duban.models_access import DashboardSession as DashboardSession
from duban.models_access import LoginThrottle as LoginThrottle
from duban.models_access import PersonSession as PersonSession
from duban.models_outputs import Bulletin as Bulletin
from duban.models_outputs import ChatTodo as ChatTodo
from duban.models_outputs import RollupSnapshot as RollupSnapshot
from duban.models_outputs import SupervisionNotice as SupervisionNotice
from duban.models_reviews import Review as Review
from duban.models_reviews import ReviewItem as ReviewItem
from duban.vocabulary import (
    Audience,
    BulletinEvery,
    LedgerStatus,
    MilestoneOrigin,
    MilestoneState,
    Period,
    RequestStatus,
    Schedule,
)


class Institution(Base):
    """A school (or any unit) above its plans: its own people and departments (through its plans),
    accounts, calendar file, templates and chat apps.  ``settings`` holds what the institution sets
    apart from the installation (``duban.institutions.OVERRIDABLE``: time zone, calendar file,
    template folder, send hours, mail relay, chat apps); everything else is the installation's."""

    __tablename__ = "institutions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Plan(Base):
    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"), index=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    organization: Mapped[str] = mapped_column(String(300), default="")
    approval_required: Mapped[bool] = mapped_column(Boolean, default=True)
    report_every: Mapped[str] = mapped_column(String(20), default=Period.SEMESTER)
    policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # group channels of the plan: {"leading_group": [urls], "office": [urls]} (bulletins, unreachable notices)
    channels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source: Mapped[str] = mapped_column(String(1000), default="")
    # the end of the reform period (实施期限): recurring and ongoing tasks ask for nothing after it
    # (None: the latest date of the plan's roadmap)
    ends_on: Mapped[dt.date | None] = mapped_column(Date, default=None)
    # announce (任务下达) what an import adds right away, instead of waiting for `duban announce`
    announce_on_import: Mapped[bool] = mapped_column(Boolean, default=False)
    # which 督办通报 the plan issues: week | month | both (BulletinEvery)
    bulletin_every: Mapped[str] = mapped_column(String(20), default=BulletinEvery.WEEK)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Department(Base):
    __tablename__ = "departments"
    __table_args__ = (UniqueConstraint("plan_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    head_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", use_alter=True), default=None)
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", use_alter=True), default=None)
    # the department's own channels (a group bot): escalations about its tasks are posted there too
    notify_urls: Mapped[list[str]] = mapped_column(default=list)


class Person(Base):
    __tablename__ = "people"
    __table_args__ = (UniqueConstraint("plan_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), default=None)
    title: Mapped[str | None] = mapped_column(String(200), default=None)
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    mobile: Mapped[str | None] = mapped_column(String(40), default=None)
    notify_urls: Mapped[list[str]] = mapped_column(default=list)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # the institution's own account of the person (工号 / 统一身份认证账号): how a CAS or OIDC
    # sign-in finds the person of the 人员 sheet
    staff_no: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    # per-person ids in the institution's chat apps (人员 sheet: 企业微信账号, 钉钉userid, 飞书open_id)
    wecom_userid: Mapped[str | None] = mapped_column(String(64), default=None)
    dingtalk_userid: Mapped[str | None] = mapped_column(String(64), default=None)
    feishu_open_id: Mapped[str | None] = mapped_column(String(64), default=None)


class PlanRole(Base):
    """Membership of the leading group (领导小组) or the office (领导小组办公室)."""

    __tablename__ = "plan_roles"
    __table_args__ = (UniqueConstraint("plan_id", "person_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    role: Mapped[str] = mapped_column(String(20))  # leading_group | office
    position: Mapped[int] = mapped_column(Integer, default=0)
    # an office member's line (督办条线): {"systems": [names], "departments": [names]}; empty: everything
    scope: Mapped[dict[str, Any]] = mapped_column(default=dict)


class System(Base):
    __tablename__ = "systems"
    __table_args__ = (UniqueConstraint("plan_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    code: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    archived_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("system_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("systems.id"), index=True)
    code: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(300))
    position: Mapped[int] = mapped_column(Integer, default=0)
    archived_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("plan_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    code: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(Text)
    statement: Mapped[str] = mapped_column(Text, default="")
    done_criteria: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    lead_department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True, default=None)
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    partners: Mapped[list[str]] = mapped_column(default=list)  # 配合单位 (department names)
    schedule: Mapped[str] = mapped_column(String(20), default=Schedule.ONCE)
    period: Mapped[str | None] = mapped_column(String(20), default=None)
    period_month: Mapped[int | None] = mapped_column(Integer, default=None)
    deadline_text: Mapped[str] = mapped_column(String(200), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    policy: Mapped[dict[str, Any]] = mapped_column(default=dict)  # per-task overrides
    # when the current owner was given the task (creation or reassignment): the 签收 clock starts here
    assigned_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # when the task was announced (任务下达) to its owner: nothing is sent about a task before it
    announced_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # the last day a recurring or ongoing task reports (its own end; None: the plan's end)
    ends_on: Mapped[dt.date | None] = mapped_column(Date, default=None)
    # acknowledgement (签收) by the current owner
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    archived_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Milestone(Base):
    """A step of the 路线图; the last one of a dated task is its final deadline."""

    __tablename__ = "milestones"
    __table_args__ = (
        Index("ix_milestones_task_id_seq", "task_id", "seq"),
        Index("ix_milestones_status_due", "status", "due_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"))
    seq: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text, default="")
    due_date: Mapped[dt.date] = mapped_column(Date)
    baseline_due_date: Mapped[dt.date] = mapped_column(Date)  # the first due date, never moved
    # the date the plan file gave at the last import (a re-import compares the file with it, so a
    # date decided in duban — an approved extension — is not undone by an unchanged sheet)
    sheet_due_date: Mapped[dt.date | None] = mapped_column(Date, default=None)
    # where the step comes from: plan (the 路线图) | review (a 需整改 follow-up) | office (added in duban)
    origin: Mapped[str] = mapped_column(String(20), default=MilestoneOrigin.PLAN)
    due_text: Mapped[str] = mapped_column(String(200), default="")
    due_version: Mapped[int] = mapped_column(Integer, default=1)  # bumped when due_date moves
    is_final: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default=MilestoneState.ASSIGNED)
    assigned_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    archived_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Event(Base):
    """The audit trail: every change to a task, who made it, when and through which channel."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"), index=True, default=None)
    milestone_id: Mapped[int | None] = mapped_column(ForeignKey("milestones.id"), default=None)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(20))  # import | cli | web | flow | link
    kind: Mapped[str] = mapped_column(String(50))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ImportRun(Base):
    """One applied import of a definition file."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(1000))
    sha256: Mapped[str] = mapped_column(String(64))
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Notification(Base):
    """The ledger: one row per decision ("send remind-3d for milestone M to person P, version V").

    ``key`` is unique, so re-running a day, a retry or two sweeps at once never decide the same
    message twice; a row is written before anything is sent.
    """

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_status_recipient", "status", "recipient_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    # None for a notice that concerns no task (e.g. "a person could not be reached")
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"), index=True, default=None)
    milestone_id: Mapped[int | None] = mapped_column(ForeignKey("milestones.id"), default=None)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    kind: Mapped[str] = mapped_column(String(30))
    level: Mapped[int] = mapped_column(Integer, default=0)
    due_date: Mapped[dt.date | None] = mapped_column(Date, default=None)
    days: Mapped[int] = mapped_column(Integer, default=0)  # working days left (>0) or late (<0)
    decided_on: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default=LedgerStatus.PENDING)
    digest_id: Mapped[int | None] = mapped_column(ForeignKey("digests.id"), index=True, default=None)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)  # what the message shows
    # held back until then (an approval request waits for the office's next batch time)
    not_before: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Digest(Base):
    """The outbox: one message per recipient per run and channel, holding that run's items."""

    __tablename__ = "digests"
    __table_args__ = (Index("ix_digests_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    # who reads it: a person (recipient_id), or a group channel with no person behind it:
    # "department" (its group bot, department_id), "leading_group" or "office" (plans.channels)
    audience: Mapped[str] = mapped_column(String(20), default=Audience.PERSON)
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True, default=None)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), default=None)
    channel: Mapped[str] = mapped_column(String(30))
    run_on: Mapped[dt.date] = mapped_column(Date)
    subject: Mapped[str] = mapped_column(String(300))
    # what the message says, as data: rendered per channel (text, HTML, markdown) when sent, so the
    # store never holds a usable link (only link ids; see duban.links)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    body: Mapped[str] = mapped_column(Text, default="")  # unused since 0003 (links lived here)
    items: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default=LedgerStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)  # renewed while it is being sent
    claim_token: Mapped[str | None] = mapped_column(String(64), default=None)  # the delivery run that holds it (host:pid:random)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    delivered_via: Mapped[str | None] = mapped_column(String(200), default=None)  # channel(s) that took it


class Delivery(Base):
    """One attempt to hand a digest to one channel: what the office reads when someone says
    "I never got it" (the target is stored redacted, never with its secrets)."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest_id: Mapped[int] = mapped_column(ForeignKey("digests.id"), index=True)
    channel: Mapped[str] = mapped_column(String(30))  # email | wecom | dingtalk | feishu | outbox | ...
    target: Mapped[str] = mapped_column(String(500), default="")
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, default=None)


# ---------------------------------------------------------------------------------------------
# Signed action links and what they lead to (签收, 反馈, 提交办结 with 佐证, 申请延期, coordinator review)


class Link(Base):
    """An issued action link. Only a hash of the token is kept; the token itself is re-derived
    from the row and the secret key when a message is rendered (duban.links)."""

    __tablename__ = "links"
    __table_args__ = (Index("ix_links_person_task", "person_id", "task_id", "action"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"), default=None)  # None: a person-wide link (review queue)
    milestone_id: Mapped[int | None] = mapped_column(ForeignKey("milestones.id"), default=None)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"), default=None)
    review_id: Mapped[int | None] = mapped_column(ForeignKey("reviews.id"), default=None)  # review links (督查)
    review_item_id: Mapped[int | None] = mapped_column(ForeignKey("review_items.id"), default=None)
    action: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_on: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    void_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    void_reason: Mapped[str | None] = mapped_column(String(200), default=None)


class Request(Base):
    """Something an owner asked of the office: approve a completion, or extend a due date."""

    __tablename__ = "requests"
    __table_args__ = (Index("ix_requests_status_plan", "status", "plan_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    milestone_id: Mapped[int | None] = mapped_column(ForeignKey("milestones.id"), default=None)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))  # who asked
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default=RequestStatus.PENDING)
    note: Mapped[str] = mapped_column(Text, default="")
    new_due_date: Mapped[dt.date | None] = mapped_column(Date, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    decision_note: Mapped[str] = mapped_column(Text, default="")


class Evidence(Base):
    """佐证材料: a note, a URL or an uploaded file attached to a report or a completion."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    milestone_id: Mapped[int | None] = mapped_column(ForeignKey("milestones.id"), default=None)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"), default=None)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"), default=None)
    review_item_id: Mapped[int | None] = mapped_column(ForeignKey("review_items.id"), default=None)  # a 督查 answer
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    kind: Mapped[str] = mapped_column(String(10))  # url | file
    url: Mapped[str | None] = mapped_column(String(2000), default=None)
    filename: Mapped[str | None] = mapped_column(String(255), default=None)  # as uploaded (display only)
    stored_name: Mapped[str | None] = mapped_column(String(100), default=None)  # sha256-based, under the evidence folder
    content_type: Mapped[str | None] = mapped_column(String(100), default=None)
    size: Mapped[int | None] = mapped_column(Integer, default=None)
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
