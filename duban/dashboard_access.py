"""Who is looking at the dashboard: session cookies, the :class:`Viewer`, read-only links and their sessions.

- Sessions: a cookie signed with HMAC-SHA256 (a key derived from ``DUBAN_SECRET_KEY``, so a
  session can never pass for an action link or the other way round) naming the account (or the
  read-only link), its version and an expiry.  An account's version is its ``session_version``
  (:func:`duban.accounts.end_sessions` bumps it); a link's is its browser's ``dashboard_sessions`` row.
- Read-only links (``/d/<token>``): a ``dashboard_links`` row holding only the token's SHA-256;
  the token is signed like the action links (:func:`duban.link_tokens.sign`) and expires.  Each browser
  that opens it gets a ``dashboard_sessions`` row (the cookie's version): logout ends that row,
  revoking the link ends all of them.

Library functions take a session and never commit (the caller owns the transaction).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from duban import institutions
from duban.accounts import AccountError, resolve_scope
from duban.link_tokens import LinkError, sign, token_hash, verify
from duban.models import Account, DashboardLink, DashboardSession, Institution, Plan, utcnow
from duban.vocabulary import AccountRole, LinkAction

LINK_LABEL = "只读链接"  # what a read-only link's viewer is called where an account shows its role
SESSION_COOKIE = "duban_session"


# -- session cookies ----------------------------------------------------------------------------


def _session_key(secret: str) -> str:
    return hmac.new(secret.encode(), b"duban-dashboard-session", hashlib.sha256).hexdigest()


def session_cookie(secret: str, *, kind: str, ident: int, version: int, expires: dt.datetime) -> str:
    """``kind`` "a" (an account) or "d" (a read-only dashboard link)."""
    return sign(_session_key(secret), {"l": ident, "a": kind, "e": "9999-12-31", "v": version, "x": int(expires.timestamp())})


def read_session_cookie(secret: str, value: str | None, *, now: dt.datetime) -> tuple[str, int, int] | None:
    """(kind, id, version) of a valid, unexpired cookie, else None."""
    if not value or len(value) > 500:
        return None
    try:
        payload = verify(_session_key(secret), value, today=dt.date.min)
        kind, ident, version, expiry = str(payload["a"]), int(payload["l"]), int(payload["v"]), int(payload["x"])
    except (LinkError, KeyError, TypeError, ValueError):
        return None
    if kind not in ("a", "d") or expiry <= now.timestamp():
        return None
    return kind, ident, version


@dataclass(frozen=True)
class Viewer:
    """Who is looking at the dashboard, and what they may see."""

    kind: str  # "account" | "link"
    ident: int
    name: str
    role: AccountRole  # a read-only link sees what a leader sees
    plan_id: int | None  # None: every plan (of the institution)
    person_id: int | None = None
    expires_on: dt.date | None = None  # a link's last day
    session_id: int | None = None  # a link's: the browser's session (logout ends it)
    institution_id: int | None = None  # None: the province (every institution, read-only)
    plan_ids: frozenset[int] | None = None  # the plans in scope (None: every plan there is)

    @property
    def province(self) -> bool:
        """A provincial department's viewer: sees every institution, acts on none."""
        return self.institution_id is None and self.plan_id is None

    @property
    def sees_all_plans(self) -> bool:
        """Sees more than one plan (a plan picker, an 'all plans' view)."""
        return self.plan_id is None

    @property
    def role_label(self) -> str:
        return LINK_LABEL if self.kind == "link" else AccountRole(self.role).label

    @property
    def sees_items(self) -> bool:
        """Lists of tasks with their owners (overdue, due soon, extensions): office and leaders."""
        return self.role in (AccountRole.OFFICE, AccountRole.LEADER)

    @property
    def sees_approvals(self) -> bool:
        return self.role == AccountRole.OFFICE

    def may_see(self, plan_id: int | None) -> bool:
        if self.plan_ids is None:
            return True
        return plan_id in self.plan_ids

    def may_act(self, plan_id: int | None) -> bool:
        """May change something of ``plan_id`` (decide, remind, edit): in scope, and not the province."""
        return not self.province and self.may_see(plan_id)


def viewer_of(session: Session, cookie: tuple[str, int, int] | None, *, today: dt.date) -> Viewer | None:
    """The viewer behind a verified cookie, checked against the store (disabled, logged out,
    revoked and expired are refused)."""
    if cookie is None:
        return None
    kind, ident, version = cookie
    if kind == "a":
        a = session.get(Account, ident)
        if a is None or not a.active or a.session_version != version:
            return None
        scope = _plan_scope(session, a.institution_id, a.plan_id)
        return Viewer(
            "account", a.id, a.display_name, AccountRole(a.role), a.plan_id, a.person_id, institution_id=a.institution_id, plan_ids=scope
        )
    link = session.get(DashboardLink, ident)
    if link is None or link.revoked_at is not None or link.expires_on < today:
        return None
    opened = session.get(DashboardSession, version)
    if opened is None or opened.link_id != link.id or opened.ended_at is not None:
        return None
    name = link.note or LINK_LABEL
    scope = _plan_scope(session, link.institution_id, link.plan_id)
    return Viewer(
        "link",
        link.id,
        name,
        AccountRole.LEADER,
        link.plan_id,
        expires_on=link.expires_on,
        session_id=opened.id,
        institution_id=link.institution_id,
        plan_ids=scope,
    )


def _plan_scope(session: Session, institution_id: int | None, plan_id: int | None) -> frozenset[int] | None:
    if plan_id is not None:
        return frozenset((plan_id,))
    if institution_id is None:
        return None
    return frozenset(institutions.plan_ids(session, institution_id))


def start_link_session(session: Session, link_id: int, *, now: dt.datetime, until: dt.datetime) -> int:
    """A browser's session opened by a read-only link; its id is the cookie's version."""
    row = DashboardSession(link_id=link_id, created_at=now, expires_at=until)
    session.add(row)
    session.flush()
    return row.id


def end_link_session(session: Session, link_id: int, session_id: int, *, now: dt.datetime) -> None:
    """Logout of a read-only link's session (a copied cookie stops working too)."""
    session.execute(
        update(DashboardSession)
        .where(DashboardSession.id == session_id, DashboardSession.link_id == link_id, DashboardSession.ended_at.is_(None))
        .values(ended_at=now)
    )


# -- read-only dashboard links ------------------------------------------------------------------


def dashboard_token(secret: str, link_id: int, expires: dt.date) -> str:
    return sign(secret, {"l": link_id, "a": LinkAction.DASHBOARD, "e": expires.isoformat()})


def issue_dashboard_link(
    session: Session,
    *,
    secret: str,
    plan_code: str | None,
    days: int,
    today: dt.date,
    note: str = "",
    created_by: str = "",
    institution: str | None = None,
    province: bool = False,
) -> tuple[DashboardLink, str]:
    """A new read-only link (row + token); the token is shown once and stored as a hash."""
    if days < 1 or days > 366:
        raise AccountError("有效天数应在 1 到 366 天之间")
    plan, institution_id = resolve_scope(session, plan_code, institution, province)
    expires = today + dt.timedelta(days=days)
    row = DashboardLink(
        institution_id=institution_id,
        plan_id=plan.id if plan else None,
        note=note[:200],
        token_hash="new-" + secrets.token_hex(20),
        expires_on=expires,
        created_at=utcnow(),
        created_by=created_by[:200],
    )
    session.add(row)
    session.flush()
    token = dashboard_token(secret, row.id, expires)
    row.token_hash = token_hash(token)
    return row, token


def dashboard_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/d/{token}"


def open_dashboard_link(session: Session, token: str, *, secret: str, today: dt.date) -> DashboardLink:
    """The link behind a token, checked (signature, stored hash, revoked, expiry)."""
    try:
        payload = verify(secret, token, today=dt.date.min)
        link_id, action = int(payload["l"]), payload["a"]
    except (LinkError, TypeError, ValueError):
        raise AccountError("链接无效或已被修改。请使用完整的链接（复制时请勿遗漏字符）。") from None
    row = session.get(DashboardLink, link_id) if action == LinkAction.DASHBOARD else None
    if row is None or not hmac.compare_digest(row.token_hash, token_hash(token)):
        raise AccountError("链接无效或已被修改。请使用完整的链接（复制时请勿遗漏字符）。")
    if row.revoked_at is not None:
        raise AccountError("该链接已被撤销。如需继续查看，请联系领导小组办公室。")
    if row.expires_on < today:
        raise AccountError(f"该链接的有效期到 {row.expires_on.isoformat()} 为止，现已过期。如需继续查看，请联系领导小组办公室。")
    return row


def revoke_dashboard_link(session: Session, link_id: int, *, now: dt.datetime) -> DashboardLink:
    row = session.get(DashboardLink, link_id)
    if row is None:
        raise AccountError(f"没有编号为 {link_id} 的只读链接（可用 duban dashboard-link --list 查看）")
    if row.revoked_at is None:
        row.revoked_at = now
    session.execute(
        update(DashboardSession).where(DashboardSession.link_id == row.id, DashboardSession.ended_at.is_(None)).values(ended_at=now)
    )
    return row


def list_dashboard_links(session: Session) -> list[dict]:
    rows = session.execute(
        select(DashboardLink, Plan.code, Institution.code)
        .outerjoin(Plan, Plan.id == DashboardLink.plan_id)
        .outerjoin(Institution, Institution.id == DashboardLink.institution_id)
        .order_by(DashboardLink.id)
    ).all()
    return [
        {
            "id": r.id,
            "institution": inst,  # None: the province
            "plan": code,
            "note": r.note,
            "expires_on": r.expires_on,
            "created_at": r.created_at,
            "created_by": r.created_by,
            "revoked_at": r.revoked_at,
            "last_used_at": r.last_used_at,
        }
        for r, code, inst in rows
    ]
