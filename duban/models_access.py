"""Store tables of who signs in and how (docs/web.md, "Dashboard"): dashboard accounts, read-only
links and their sessions, sign-in throttles, and a person's own session (我的督办).  Import them
from :mod:`duban.models`, which gathers every table."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from duban.model_base import Base, utcnow


class Account(Base):
    """Someone who signs in to the dashboard: a coordinator (office), a leader, or a viewer.

    ``plan_id`` None: every plan of ``institution_id``; both None: a province account, which sees
    every institution and acts on none.  The password is kept as a salted scrypt
    hash; ``session_version`` is bumped by logout, a new password or disabling, which ends every
    session of the account."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20))  # office | leader | viewer
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institutions.id"), default=None)  # None: the province
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"), default=None)  # None: all plans (of the institution)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)  # consecutive failures
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    session_version: Mapped[int] = mapped_column(Integer, default=0)


class DashboardLink(Base):
    """A signed read-only link to the dashboard of one plan (or all plans), for a leader who does
    not want an account.  Only the token's SHA-256 is kept; revoked or expired links stop working."""

    __tablename__ = "dashboard_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institutions.id"), default=None)  # None: the province
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"), default=None)  # None: all plans (of the institution)
    note: Mapped[str] = mapped_column(String(200), default="")  # for whom (shown in the list)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_on: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class LoginThrottle(Base):
    """Sign-in failures of one account from one client address (duban.accounts.authenticate):
    the pair is locked after ``DUBAN_LOGIN_MAX_FAILURES`` in a row, so an attacker cannot lock
    the owner out from another address; ``last_success_at`` marks an address the owner used."""

    __tablename__ = "login_throttles"
    __table_args__ = (UniqueConstraint("account_id", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    address: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row, since the last success or lock
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class DashboardSession(Base):
    """One browser's session opened by a read-only link (``/d/<token>``): logout ends it, and
    revoking the link ends all of them."""

    __tablename__ = "dashboard_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("dashboard_links.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class PersonSession(Base):
    """A person signed in to their own page (我的督办) through the institution's sign-in (CAS,
    OIDC, WeCom or DingTalk OAuth): logout ends it."""

    __tablename__ = "person_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    method: Mapped[str] = mapped_column(String(20))  # cas | oidc | wecom | dingtalk
    subject: Mapped[str] = mapped_column(String(200), default="")  # the account the provider named
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
