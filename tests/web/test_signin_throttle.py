"""Sign-in throttling at the library level (``duban.accounts.authenticate``), issue 17: parallel
wrong passwords are counted one after the other (the account's row is locked), the lock applies
to the (account, client address) pair, and every refusal answers the same after the same work.
On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from duban import accounts, passwords
from duban.db import session_scope
from duban.models import Account, LoginThrottle
from duban.values import aware

NOW = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)
PASSWORD = "Dubanban-2026!"
ATTACKER, OWNER = "203.0.113.7", "198.51.100.20"


def _add(engine, login: str = "dby", *, active: bool = True) -> str:
    with session_scope(engine) as s:
        a = accounts.create_account(s, login, PASSWORD, role="office")
        a.active = active
        return a.password_hash


def _try(engine, password: str, *, address: str = ATTACKER, login: str = "dby", now: dt.datetime = NOW, **limits):
    limits = {"max_failures": 5, "lock_minutes": 15, **limits}
    with session_scope(engine) as s:
        return accounts.authenticate(s, login, password, now=now, address=address, **limits)


@pytest.fixture
def checks(monkeypatch):
    """Every password check run: True for the account's own hash, False for the dummy one."""
    seen: list[bool] = []
    real = passwords.check_password

    def counting(password: str, stored: str) -> bool:
        seen.append(stored != passwords.dummy_hash())
        return real(password, stored)

    monkeypatch.setattr(accounts, "check_password", counting)
    monkeypatch.setattr(passwords, "check_password", counting)
    return seen


def _pair(engine, address: str = ATTACKER) -> tuple[int, dt.datetime | None]:
    with session_scope(engine, readonly=True) as s:
        row = s.scalar(select(LoginThrottle).where(LoginThrottle.address == address))
        return (row.failures, row.locked_until) if row else (0, None)


def test_parallel_wrong_passwords_check_exactly_max_failures(engine, checks):
    """40 wrong passwords at once from one address: 5 real checks, then the pair is locked
    (before the fix, PostgreSQL checked 32 of them)."""
    _add(engine)
    passwords.dummy_hash()  # computed before the race, so every thread finds it
    checks.clear()
    start = threading.Barrier(40)
    results: list[accounts.SignIn] = []
    errors: list[BaseException] = []

    def attempt(i: int) -> None:
        try:
            start.wait()
            results.append(_try(engine, f"wrong-{i}"))
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == [] and len(results) == 40
    assert checks.count(True) == 5 and checks.count(False) == 35  # the rest cost a dummy check
    assert {r.message for r in results} == {accounts.WRONG} and not any(r.ok for r in results)
    failures, locked_until = _pair(engine)
    assert failures == 5 and aware(locked_until) == NOW + dt.timedelta(minutes=15)
    with session_scope(engine, readonly=True) as s:
        assert s.scalar(select(Account.failed_logins)) == 5 and s.scalar(select(Account.locked_until)) is None


def test_the_lock_is_the_pairs_the_owner_signs_in_from_elsewhere(engine, checks):
    _add(engine)
    for i in range(5):
        assert _try(engine, f"wrong-{i}").message == accounts.WRONG
    # locked from the attacker's address: even the right password is refused, without a check
    checks.clear()
    assert not _try(engine, PASSWORD).ok and checks == [False]
    # the owner, from another address, signs in
    owner = _try(engine, PASSWORD, address=OWNER)
    assert owner.ok and owner.account_id is not None
    # the attacker's pair stays locked until its time is up, then the right password passes
    assert not _try(engine, PASSWORD, now=NOW + dt.timedelta(minutes=14)).ok
    assert _try(engine, PASSWORD, now=NOW + dt.timedelta(minutes=15, seconds=1)).ok
    assert _pair(engine) == (0, None)


def test_every_refusal_answers_the_same_after_one_check(engine, checks):
    _add(engine)
    _add(engine, "old", active=False)
    for i in range(5):
        _try(engine, f"wrong-{i}", login="dby")
    cases = {
        "unknown name": ("nobody", "wrong-password", False),
        "wrong password": ("old", "wrong-password", True),
        "locked pair": ("dby", PASSWORD, False),
        "disabled account, right password": ("old", PASSWORD, True),
        "name too long": ("x" * 101, PASSWORD, False),
    }
    for what, (login, password, real) in cases.items():
        checks.clear()
        result = _try(engine, password, login=login)
        assert (result.ok, result.message, result.account_id) == (False, accounts.WRONG, None), what
        assert checks == [real], what  # one scrypt, real or dummy: the same time
    assert accounts.WRONG == "用户名或密码不正确，或尝试次数过多，请稍后再试。"


def test_account_wide_ceiling_spares_addresses_the_owner_used(engine):
    _add(engine)
    assert _try(engine, PASSWORD, address=OWNER, now=NOW - dt.timedelta(days=3)).ok  # the owner's office
    # distributed guessing: 4 tries from each of many addresses never locks a pair
    for n in range(3):
        for _ in range(4):
            assert not _try(engine, "wrong", address=f"192.0.2.{n}", account_max_failures=12).ok
    with session_scope(engine, readonly=True) as s:
        locked_until = aware(s.scalar(select(Account.locked_until)))
    assert locked_until == NOW + dt.timedelta(minutes=15)
    # the right password from a new address is refused; from the owner's office it passes
    assert not _try(engine, PASSWORD, address="192.0.2.99", account_max_failures=12).ok
    assert _try(engine, PASSWORD, address=OWNER, account_max_failures=12).ok


def test_a_new_password_unlocks_every_address(engine):
    _add(engine)
    for i in range(5):
        _try(engine, f"wrong-{i}")
    assert _pair(engine)[1] is not None
    with session_scope(engine) as s:
        accounts.set_password(s, "dby", "Another-pass-2026")
    assert _pair(engine) == (0, None)
    assert _try(engine, "Another-pass-2026").ok
