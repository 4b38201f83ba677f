"""Dashboard access: accounts (office, leader, viewer), sign-in sessions and read-only links.

- Passwords: duban/passwords.py (scrypt; the strength rule and the common-password list).
- Throttling (:func:`authenticate`, under a row lock on the account): ``DUBAN_LOGIN_MAX_FAILURES``
  (5) wrong passwords in a row from one client address lock that (account, address) pair for
  ``DUBAN_LOGIN_LOCK_MINUTES`` (15); ``DUBAN_LOGIN_ACCOUNT_MAX_FAILURES`` (50) failures from all
  addresses since the last success lock the account for new addresses (not for an address it
  signed in from in the last 30 days).  The web app also limits attempts per client address.
  Every refusal, unknown name included, costs one scrypt and gets the same answer.
- Sessions: a cookie signed with HMAC-SHA256 (a key derived from ``DUBAN_SECRET_KEY``, so a
  session can never pass for an action link or the other way round) naming the account, its
  ``session_version`` and an expiry.  Logout, a new password or disabling the account bumps the
  version, which ends every session of the account at once.
- Read-only links (``/d/<token>``): a ``dashboard_links`` row holding only the token's SHA-256;
  the token is signed like the action links (:func:`duban.links.sign`) and expires.  Each browser
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
from duban.links import LinkError, sign, token_hash, verify
from duban.models import Account, DashboardLink, DashboardSession, Institution, LoginThrottle, Person, Plan, utcnow
from duban.passwords import (  # noqa: F401 - re-exported: the accounts' password functions
    MIN_PASSWORD_LENGTH,
    PASSWORD_RULE,
    check_password,
    dummy_check,
    hash_password,
    new_random_password,
    password_problem,
)
from duban.values import aware
from duban.vocabulary import AccountRole, LinkAction

LINK_LABEL = "只读链接"  # what a read-only link's viewer is called where an account shows its role
SESSION_COOKIE = "duban_session"
ACCOUNT_MAX_FAILURES = 50  # failures from all addresses since the last success before the account-wide lock
KNOWN_ADDRESS_DAYS = 30  # an address the owner signed in from this recently passes the account-wide lock


class AccountError(ValueError):
    """A domain error with a Chinese message for the operator or the sign-in page."""


# -- accounts -----------------------------------------------------------------------------------


def _plan_by_code(session: Session, code: str) -> Plan:
    plan = session.scalar(select(Plan).where(Plan.code == code))
    if plan is None:
        known = "、".join(session.scalars(select(Plan.code).order_by(Plan.code))) or "（暂无，请先用 duban import 导入）"
        raise AccountError(f"没有编号为“{code}”的方案。已有方案：{known}")
    return plan


def _scope(session: Session, plan_code: str | None, institution: str | None, province: bool) -> tuple[Plan | None, int | None]:
    """The plan and the institution an account or a read-only link is limited to: a plan's own
    institution, the one named, the only one there is; (None, None) for the province."""
    if province:
        if plan_code or institution:
            raise AccountError("省级账户（--province）查看全部单位，不能同时指定方案或单位。")
        return None, None
    try:
        if plan_code:
            plan = _plan_by_code(session, plan_code)
            if institution and institutions.get(session, institution).id != plan.institution_id:
                raise AccountError(f"方案“{plan_code}”不属于单位“{institution}”。")
            return plan, plan.institution_id
        inst = institutions.get(session, institution) if institution else institutions.default_for(session)
    except institutions.InstitutionError as err:
        raise AccountError(f"{err}（省级账户请用 --province）") from None
    return None, inst.id


def get_account(session: Session, login: str) -> Account | None:
    return session.scalar(select(Account).where(Account.login == login.strip()))


def create_account(
    session: Session,
    login: str,
    password: str,
    *,
    role: AccountRole | str,
    display_name: str | None = None,
    plan_code: str | None = None,
    person: str | None = None,
    institution: str | None = None,
    province: bool = False,
) -> Account:
    """A new account over one plan (``plan_code``), every plan of an institution (``institution``,
    or the only one there is), or, with ``province``, every institution, read-only (a provincial
    department's account)."""
    login = login.strip()
    if not login or len(login) > 100 or any(ch.isspace() for ch in login):
        raise AccountError("登录名不能为空、不能含空格，且不超过 100 个字符")
    if role not in tuple(AccountRole):
        raise AccountError(f"角色“{role}”无效，应为 office（领导小组办公室）、leader（领导）或 viewer（只读）")
    if get_account(session, login) is not None:
        raise AccountError(f"登录名“{login}”已存在")
    if problem := password_problem(password, login):
        raise AccountError(problem)
    plan, institution_id = _scope(session, plan_code, institution, province)
    person_id = None
    if person:
        q = select(Person).where(Person.name == person)
        if plan is not None:
            q = q.where(Person.plan_id == plan.id)
        elif institution_id is not None:
            q = q.where(Person.plan_id.in_(institutions.plan_ids(session, institution_id)))
        found = session.scalars(q).all()
        if not found:
            raise AccountError(f"没有找到人员“{person}”" + (f"（方案 {plan_code}）" if plan_code else "") + "。")
        if len(found) > 1:
            raise AccountError(f"有多个方案中都有“{person}”，请用 --plan 指定方案编号。")
        person_id = found[0].id
        display_name = display_name or found[0].name
    account = Account(
        login=login,
        display_name=(display_name or login)[:200],
        password_hash=hash_password(password),
        role=role,
        institution_id=institution_id,
        plan_id=plan.id if plan else None,
        person_id=person_id,
        active=True,
        created_at=utcnow(),
        failed_logins=0,
        session_version=0,
    )
    session.add(account)
    session.flush()
    return account


def set_password(session: Session, login: str, password: str) -> Account:
    account = _existing(session, login)
    if problem := password_problem(password, account.login):
        raise AccountError(problem)
    account.password_hash = hash_password(password)
    account.failed_logins = 0
    account.locked_until = None
    account.session_version += 1  # signed-in devices sign in again
    clear_throttles(session, account.id)
    return account


def set_active(session: Session, login: str, active: bool) -> Account:
    account = _existing(session, login)
    account.active = active
    account.session_version += 1
    if active:
        account.failed_logins, account.locked_until = 0, None
        clear_throttles(session, account.id)
    return account


def _existing(session: Session, login: str) -> Account:
    account = get_account(session, login)
    if account is None:
        raise AccountError(f"没有登录名为“{login}”的账户（可用 duban account list 查看）")
    return account


def list_accounts(session: Session) -> list[dict]:
    rows = session.execute(
        select(Account, Plan.code, Person.name, Institution.code)
        .outerjoin(Plan, Plan.id == Account.plan_id)
        .outerjoin(Person, Person.id == Account.person_id)
        .outerjoin(Institution, Institution.id == Account.institution_id)
        .order_by(Account.login)
    ).all()
    return [
        {
            "login": a.login,
            "name": a.display_name,
            "role": a.role,
            "institution": inst,  # None: the province
            "plan": code,
            "person": person,
            "active": a.active,
            "created_at": a.created_at,
            "last_login_at": a.last_login_at,
        }
        for a, code, person, inst in rows
    ]


# -- sign-in ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignIn:
    ok: bool
    message: str = ""  # why not (Chinese, shown on the page)
    account_id: int | None = None
    session_version: int = 0


# one answer for every refusal (unknown name, wrong password, throttled, disabled): nothing tells
# whether a name exists or is locked
WRONG = "用户名或密码不正确，或尝试次数过多，请稍后再试。"


def authenticate(
    session: Session,
    login: str,
    password: str,
    *,
    now: dt.datetime,
    max_failures: int,
    lock_minutes: int,
    address: str = "",
    account_max_failures: int = ACCOUNT_MAX_FAILURES,
) -> SignIn:
    """Check a sign-in from client ``address`` and record it.

    The account's row is locked (``SELECT … FOR UPDATE``) for the check and the count, so
    parallel attempts are counted one after the other.  ``max_failures`` wrong passwords in a
    row from one address lock that (account, address) pair for ``lock_minutes``; the owner
    still signs in from another address.  ``account_max_failures`` failures from all addresses
    since the last success lock the account for ``lock_minutes`` for every address except
    those it signed in from in the last ``KNOWN_ADDRESS_DAYS`` days.  Every refusal answers
    :data:`WRONG` after one password check's worth of work."""
    account = None
    if login and len(login) <= 100:
        account = session.scalar(select(Account).where(Account.login == login.strip()).with_for_update())
    if account is None:
        dummy_check(password)
        return SignIn(False, WRONG)
    pair = _pair(session, account.id, address[:64])
    if _throttled(account, pair, now):
        dummy_check(password)
        return SignIn(False, WRONG)
    if not check_password(password, account.password_hash):
        _count_failure(account, pair, now, max_failures, lock_minutes, account_max_failures)
        return SignIn(False, WRONG)
    if not account.active:
        return SignIn(False, WRONG)
    account.failed_logins, account.locked_until, account.last_login_at = 0, None, now
    pair.failures, pair.locked_until, pair.last_success_at = 0, None, now
    return SignIn(True, account_id=account.id, session_version=account.session_version)


def _pair(session: Session, account_id: int, address: str) -> LoginThrottle:
    """The (account, address) row (created under the account's row lock, so never twice)."""
    pair = session.scalar(select(LoginThrottle).where(LoginThrottle.account_id == account_id, LoginThrottle.address == address))
    if pair is None:
        pair = LoginThrottle(account_id=account_id, address=address, failures=0)
        session.add(pair)
        session.flush()
    return pair


def _throttled(account: Account, pair: LoginThrottle, now: dt.datetime) -> bool:
    pair_lock, account_lock = aware(pair.locked_until), aware(account.locked_until)
    if pair_lock is not None and pair_lock > now:
        return True
    if account_lock is None or account_lock <= now:
        return False
    known = aware(pair.last_success_at)
    return known is None or known < now - dt.timedelta(days=KNOWN_ADDRESS_DAYS)


def _count_failure(
    account: Account, pair: LoginThrottle, now: dt.datetime, max_failures: int, lock_minutes: int, account_max_failures: int
) -> None:
    lock = now + dt.timedelta(minutes=lock_minutes)
    if pair.locked_until is not None:  # an expired lock: a fresh count
        pair.failures, pair.locked_until = 0, None
    pair.failures += 1
    pair.last_failure_at = now
    if pair.failures >= max_failures:
        pair.locked_until = lock
    account.failed_logins = (account.failed_logins or 0) + 1
    if account.failed_logins >= account_max_failures:
        account.locked_until, account.failed_logins = lock, 0


def clear_throttles(session: Session, account_id: int) -> None:
    """A new password or re-enabling: every address may try again."""
    session.execute(update(LoginThrottle).where(LoginThrottle.account_id == account_id).values(failures=0, locked_until=None))


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


def end_sessions(session: Session, account_id: int) -> None:
    account = session.get(Account, account_id)
    if account is not None:
        account.session_version += 1


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
    plan, institution_id = _scope(session, plan_code, institution, province)
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


def ensure_demo_account(session: Session, *, login: str = "demo") -> tuple[str, str]:
    """For ``duban demo``: an office account over every plan with a fresh random password
    (created, or its password reset); returns (login, password) to print."""
    password = new_random_password()
    account = get_account(session, login)
    if account is None:
        create_account(session, login, password, role=AccountRole.OFFICE, display_name="演示账户（领导小组办公室）")
    else:
        account.password_hash = hash_password(password)
        account.active, account.failed_logins, account.locked_until = True, 0, None
        account.session_version += 1
        clear_throttles(session, account.id)
    return login, password
