"""The password rule (issue 17): weak, common and login-containing passwords are refused with a
message saying what is accepted, by the library and by ``duban account add`` / ``passwd``."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from duban import accounts
from duban.db import session_scope
from duban.passwords import PASSWORD_RULE, common_passwords, password_problem
from duban.settings import get_settings
from tests.web_helpers import SECRET

GOOD = "Dubanban-2026!"


@pytest.mark.parametrize(
    ("password", "login", "problem"),
    [
        ("password", "", "密码太短（8 个字符）"),
        ("12345678", "", "密码太短（8 个字符）"),
        ("1234567890", "", "密码过于简单"),
        ("abcdefghij", "", "密码过于简单"),
        ("aaaaaaaaa1", "", "密码过于简单"),
        ("woaini1314", "", "密码过于常见"),
        ("Qwe123456789", "", "密码过于常见"),
        ("A123456789", "", "密码过于常见"),
        ("1qaz2wsx3edc", "", "密码过于常见"),
        ("Zxcvbnm123", "", "密码过于常见"),
        ("Password2026!", "", "密码过于常见"),
        ("zhangsan-2026", "zhangsan", "密码不能包含登录名"),
        (GOOD, "", None),
        ("correct horse battery", "", None),
        ("督办办公室工作2026", "", None),
    ],
)
def test_password_rule(password, login, problem):
    found = password_problem(password, login)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem) and found.endswith(PASSWORD_RULE)


def test_the_common_list_ships_with_the_package():
    common = common_passwords()
    assert len(common) >= 300
    assert {"woaini1314", "5201314", "qwe123456", "a123456789", "1qaz2wsx", "zxcvbnm", "password", "12345678"} <= common


def test_demo_password_passes_the_rule(engine):
    for _ in range(20):
        with session_scope(engine) as s:
            _, password = accounts.ensure_demo_account(s)
        assert password_problem(password, "demo") is None


def cli(*args, input: str | None = None):  # noqa: A002 - named like CliRunner.invoke's input
    from duban.cli.main import app

    return CliRunner().invoke(app, [str(a) for a in args], input=input)


@pytest.mark.parametrize("weak", ["password", "12345678", "woaini1314", "qwe123456", "dby-2026-dby"])
def test_cli_refuses_weak_passwords(use_database, engine, monkeypatch, weak):
    monkeypatch.setenv("DUBAN_SECRET_KEY", SECRET)
    get_settings.cache_clear()
    result = cli("account", "add", "dby", "--role", "office", "--password-stdin", input=weak + "\n")
    assert result.exit_code == 1 and "可接受的密码：至少 10 个字符" in result.output
    with session_scope(engine, readonly=True) as s:
        assert accounts.get_account(s, "dby") is None
    assert cli("account", "add", "dby", "--role", "office", "--password-stdin", input=GOOD + "\n").exit_code == 0
    result = cli("account", "passwd", "dby", "--password-stdin", input=weak + "\n")
    assert result.exit_code == 1 and "可接受的密码" in result.output
    with session_scope(engine, readonly=True) as s:
        assert accounts.check_password(GOOD, accounts.get_account(s, "dby").password_hash)
