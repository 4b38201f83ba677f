"""Dashboard accounts (office, leader, viewer) and their sign-in.

- Passwords: duban/passwords.py (scrypt; the strength rule and the common-password list).
- Throttling (:func:`authenticate`, under a row lock on the account): ``DUBAN_LOGIN_MAX_FAILURES``
  (5) wrong passwords in a row from one client address lock that (account, address) pair for
  ``DUBAN_LOGIN_LOCK_MINUTES`` (15); ``DUBAN_LOGIN_ACCOUNT_MAX_FAILURES`` (50) failures from all
  addresses since the last success lock the account for new addresses (not for an address it
  signed in from in the last 30 days).  The web app also limits attempts per client address.
  Every refusal, unknown name included, costs one scrypt and gets the same answer.
- Sessions: :func:`end_sessions` bumps the account's ``session_version``, which ends every
  session of the account at once (logout, a new password, disabling the account).  The cookies,
  the :class:`~duban.dashboard_access.Viewer` and the read-only links are in
  :mod:`duban.dashboard_access`.

Library functions take a session and never commit (the caller owns the transaction).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from duban import institutions
from duban.models import Account, Institution, LoginThrottle, Person, Plan, utcnow
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
from duban.vocabulary import AccountRole

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


def resolve_scope(session: Session, plan_code: str | None, institution: str | None, province: bool) -> tuple[Plan | None, int | None]:
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
    plan, institution_id = resolve_scope(session, plan_code, institution, province)
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


def end_sessions(session: Session, account_id: int) -> None:
    account = session.get(Account, account_id)
    if account is not None:
        account.session_version += 1


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
