"""Dashboard passwords: how they are stored and checked, and which ones are accepted.

- Stored as ``hashlib.scrypt`` with a per-account random salt, compared in constant time; the
  stored form carries its parameters (``scrypt$n$r$p$salt$hash``) so they can be raised later.
- Accepted (:func:`password_problem`): at least ``MIN_PASSWORD_LENGTH`` characters, of at least
  two kinds (lower-case letters, capitals, digits, other signs), with at least 4 different
  characters, not containing the login, and not one of the common passwords shipped in
  ``duban/data/common_passwords.txt`` (compared ignoring case, also with trailing digits and
  signs taken off, so ``password2026!`` counts as ``password``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from importlib import resources

MIN_PASSWORD_LENGTH = 10
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**15, 8, 1, 32
PASSWORD_RULE = (
    f"可接受的密码：至少 {MIN_PASSWORD_LENGTH} 个字符，至少包含小写字母、大写字母、数字、符号（或汉字）中的两类，"
    "不含登录名，且不是常见密码（如 password、12345678、woaini1314）。"
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=256 * r * n + (1 << 20))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p), len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


@functools.cache
def dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(12))


def dummy_check(password: str) -> None:
    """Spend the same time as a real check (an unknown name or a throttled attempt must not
    answer faster than a wrong password)."""
    check_password(password, dummy_hash())


@functools.cache
def common_passwords() -> frozenset[str]:
    text = resources.files("duban").joinpath("data/common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def _kinds(password: str) -> int:
    return sum(
        (
            any("a" <= c <= "z" for c in password),
            any("A" <= c <= "Z" for c in password),
            any("0" <= c <= "9" for c in password),
            any(not (c.isascii() and c.isalnum()) for c in password),  # signs, and Chinese characters
        )
    )


def password_problem(password: str, login: str = "") -> str | None:
    """Why a new password is refused (Chinese, with what is accepted), or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"密码太短（{len(password)} 个字符）。{PASSWORD_RULE}"
    lowered = password.lower()
    if len(login) >= 3 and login.lower() in lowered:
        return f"密码不能包含登录名。{PASSWORD_RULE}"
    if _kinds(password) < 2 or len(set(password)) < 4:
        return f"密码过于简单（只有一类字符或重复字符）。{PASSWORD_RULE}"
    common = common_passwords()
    if lowered in common or lowered.rstrip("0123456789!@#$%^&*.?_-~ ") in common:
        return f"密码过于常见，容易被猜中。{PASSWORD_RULE}"
    return None


def new_random_password() -> str:
    """A random password that passes :func:`password_problem` (for the demo account)."""
    while True:
        password = secrets.token_urlsafe(12)
        if password_problem(password) is None:
            return password
