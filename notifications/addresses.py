"""Notification addresses: parse a ``notify`` entry, validate and redact apprise URLs, and route a
person (or a group) to their channels in order of preference.

A person's ``notify`` list (人员表「通知地址」) holds apprise URLs in order of preference; the word
``email`` (or 邮件) stands for the institution's relay (``DUBAN_SMTP_URL``) sending to the person's
邮箱, and is appended last when not listed and the person has an address.  An entry written
``always=<url>`` (apprise's tag syntax; 总是=<url> also works) receives every message regardless.
URLs are never shown with their secrets: ``redact`` uses apprise's privacy mode.  apprise's
warnings (the only reason it gives for a failure) are captured per thread (``quiet_apprise``).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import formataddr
from typing import Any
from urllib.parse import unquote

from notifications.channel import KIND_FACTS, ChannelKind

EMAIL_WORDS = {"email", "mail", "邮件", "邮箱", "电子邮件"}
ALWAYS_TAGS = {"always", "总是", "始终", "全部"}
_KIND_OF_PLUGIN = {facts.plugin: kind for kind, facts in KIND_FACTS.items() if facts.plugin}


# ---------------------------------------------------------------------------------------------
# Header text: a name or subject never starts another header line

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class AddressError(ValueError):
    """An e-mail address that cannot be written in a header (the message is not sent)."""


def header_text(value: str | None) -> str:
    """``value`` on one line: control characters (CR, LF, tab, …) become a space, runs of spaces
    one. A name imported with a line break in it stays a name, never a second header."""
    return " ".join(CONTROL.sub(" ", value or "").split())


def mailbox(name: str | None, addr: str) -> str:
    """The ``To``/``From`` value ``name <addr>``: the name on one line and encoded (RFC 2047 when
    not ASCII, quoted when it holds specials) by :func:`email.utils.formataddr`; the address
    checked by :class:`email.headerregistry.Address` (one plain address, nothing after it)."""
    try:
        if CONTROL.search(addr):
            raise HeaderParseError(addr)
        parsed = Address(addr_spec=addr.strip())
    except (HeaderParseError, ValueError, IndexError):
        raise AddressError(
            f"邮箱地址「{header_text(addr)}」格式不正确（含有换行等控制字符或多余内容），未发送。请在人员表中改正后重新导入。"
        ) from None
    return formataddr((header_text(name) or None, parsed.addr_spec), charset="utf-8")


# ---------------------------------------------------------------------------------------------
# URLs: parse, validate, redact


def split_entry(entry: str) -> tuple[set[str], str]:
    """``"always=wecombot://k"`` → ({"always"}, "wecombot://k"): apprise's ``tag=url`` syntax."""
    entry = entry.strip()
    head, sep, rest = entry.partition("=")
    if sep and "://" not in head and "://" in rest and head.strip():
        return {t.strip().lower() for t in head.replace("，", ",").split(",") if t.strip()}, rest.strip()
    return set(), entry


def is_email_word(entry: str) -> bool:
    return split_entry(entry)[1].strip().lower() in EMAIL_WORDS


def _instantiate(url: str):
    import apprise

    with quiet_apprise():
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is not None and type(plugin).__name__ == "NotifyDingTalk":
        plugin.__class__ = _signed_dingtalk_class()
    return plugin


@functools.lru_cache(maxsize=1)
def _signed_dingtalk_class():
    """apprise 1.13's DingTalk plugin URL-quotes the signature and then hands it to ``requests``
    as a parameter, which quotes it again: DingTalk answers "sign not match".  This subclass
    returns the plain Base64 signature and lets ``requests`` encode it once, as DingTalk documents
    (timestamp + "\n" + secret, HMAC-SHA256, Base64, URL-encoded)."""
    from apprise.plugins.dingtalk import NotifyDingTalk

    class SignedDingTalk(NotifyDingTalk):
        def get_signature(self) -> tuple[str, str]:
            secret = self.secret
            if secret is None:  # apprise signs only when a secret is configured
                raise ValueError("DingTalk signature requested without a secret")
            timestamp = str(round(time.time() * 1000))
            digest = hmac.new(secret.encode("utf-8"), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
            return timestamp, base64.b64encode(digest).decode()

    SignedDingTalk.__name__ = "NotifyDingTalk"
    return SignedDingTalk


def kind_of(plugin) -> ChannelKind:
    return _KIND_OF_PLUGIN.get(type(plugin).__name__, ChannelKind.OTHER)


def scheme_hint(url: str) -> str:
    return url.split("://", 1)[0] + "://…" if "://" in url else "…"


def redact(url: str) -> str:
    """The URL without its secrets (apprise privacy mode, query left out); never the raw URL."""
    plugin = _instantiate(url) if "://" in url else None
    if not plugin:
        return scheme_hint(url)
    return _redacted(plugin)


def _redacted(plugin) -> str:
    text = plugin.url(privacy=True).split("?", 1)[0].rstrip("/")
    return unquote(text)


def channel_problem(entry: str, *, has_email: bool = True) -> str | None:
    """Why a ``notify`` entry cannot be used (Chinese, secrets hidden), or None."""
    tags, url = split_entry(entry)
    unknown = tags - ALWAYS_TAGS
    if unknown:
        return f"通知地址前的标记“{'、'.join(sorted(unknown))}”无法识别：只能写 always=（总是发送）"
    if url.strip().lower() in EMAIL_WORDS:
        return None if has_email else "写了“email”（经单位邮件服务器发到本人邮箱），但没有填写邮箱"
    if "://" not in url:
        return "不是通知地址（应形如 mailto://、wecombot://、dingtalk://、feishu://）"
    plugin = _instantiate(url)
    if not plugin:
        return f"通知地址（{scheme_hint(url)}）无法识别或格式不正确，请对照 apprise 的写法检查"
    kind = kind_of(plugin)
    if kind == ChannelKind.DINGTALK:
        wanted = [p for p in url.split("?", 1)[0].split("://", 1)[1].split("/")[1:] if p]
        if len(wanted) != len(plugin.targets):
            return f"钉钉通知地址（{_redacted(plugin)}）中的手机号不正确：@ 某人须写 11 位手机号，如 dingtalk://密钥@令牌/13800000000"
    return None


def relay_problem(url: str) -> str | None:
    """Why ``DUBAN_SMTP_URL`` is unusable (Chinese, secrets hidden), or None."""
    if "://" not in url:
        return "不是邮件服务器地址：应形如 mailtos://用户名:密码@smtp.example.edu.cn?from=duban@example.edu.cn"
    plugin = _instantiate(url)
    if not plugin:
        return f"（{scheme_hint(url)}）无法识别或格式不正确，请对照 apprise 邮件地址的写法检查"
    if kind_of(plugin) != ChannelKind.EMAIL:
        return f"（{_redacted(plugin)}）不是邮件地址：单位邮件服务器应写作 mailto:// 或 mailtos://"
    from apprise.plugins.email import NotifyEmail

    parsed = NotifyEmail.parse_url(url) or {}
    if parsed.get("targets") or parsed.get("qsd", {}).get("to"):
        return f"（{_redacted(plugin)}）不应包含收件人：收件人按人员表中的邮箱逐人填写"
    return None


# ---------------------------------------------------------------------------------------------
# Targets


@dataclass
class Target:
    """One channel a message goes to."""

    kind: ChannelKind
    url: str  # the secret URL (never stored or shown)
    redacted: str
    always: bool = False
    to: str | None = None  # an email address (relay)
    plugin: Any = None

    @property
    def label(self) -> str:
        return ChannelKind(self.kind).label


def _relay_target(relay_url: str, email: str, always: bool) -> Target:
    sep = "&" if "?" in relay_url else "?"
    url = f"{relay_url}{sep}to={email}"
    plugin = _instantiate(url)
    return Target(ChannelKind.EMAIL, url, _redacted(plugin) if plugin else f"{email}", always, email, plugin)


def targets_for(entries: list[str], *, email: str | None = None, relay_url: str | None = None) -> list[Target]:
    """The channels of a person (or a group, without ``email``) in order of preference."""
    out: list[Target] = []
    relay_listed = False
    for entry in entries or ():
        tags, url = split_entry(entry)
        always = bool(tags & ALWAYS_TAGS)
        if url.strip().lower() in EMAIL_WORDS:
            relay_listed = True
            if email and relay_url:
                out.append(_relay_target(relay_url, email, always))
            continue
        plugin = _instantiate(url)
        if not plugin:  # validated at import; a URL broken since is skipped, and reported below
            out.append(Target(ChannelKind.OTHER, url, scheme_hint(url), always))
            continue
        out.append(Target(kind_of(plugin), url, _redacted(plugin), always, plugin=plugin))
    if email and relay_url and not relay_listed:
        out.append(_relay_target(relay_url, email, False))
    return out


# ---------------------------------------------------------------------------------------------
# apprise logging: its warnings are the only reason it gives for a failure


class _ThreadCapture(logging.Handler):
    """Collects apprise's warnings per thread (several messages are sent at once)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        buf = getattr(self.local, "buf", None)
        if buf is not None:
            buf.append(record.getMessage())


_capture = _ThreadCapture()
_capture_lock = threading.Lock()


def _install_capture() -> None:
    with _capture_lock:
        logger = logging.getLogger("apprise")
        if _capture not in logger.handlers:
            logger.addHandler(_capture)
            logger.propagate = False  # apprise's English warnings never reach the user's terminal


@contextlib.contextmanager
def quiet_apprise() -> Iterator[list[str]]:
    _install_capture()
    prev = getattr(_capture.local, "buf", None)
    _capture.local.buf = []
    try:
        yield _capture.local.buf
    finally:
        _capture.local.buf = prev
