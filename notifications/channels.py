"""Deliver a digest through apprise: a person's own channels, the institution's mail relay, group bots.

Routing is configuration, not code.  A person's ``notify`` list (人员表「通知地址」) holds apprise
URLs in order of preference; the word ``email`` (or 邮件) stands for the institution's relay
(``DUBAN_SMTP_URL``) sending to the person's 邮箱, and is appended last when not listed and the
person has an address.  The first channel that takes a message ends the round ("fallback");
an entry written ``always=<url>`` (apprise's tag syntax; 总是=<url> also works) receives every
message regardless.  A department's group bot and the plan's leading-group / office channels
are lists of the same URLs, used for group messages (escalation copies, bulletins).

Formats: an email carries an HTML part and a plain-text part (our own, not apprise's conversion);
chat services get plain text (the apprise plugins for WeCom, DingTalk, Feishu and Lark post
``text`` messages), split between items under each service's documented size limit, so a link
is never cut.  Mail is sent over one reused SMTP connection per relay and thread (a new
connection per message caps a relay at ~26 messages/s, see DESIGN.md); apprise parses and
validates every mail URL and renders it redacted.  URLs are never shown with their secrets:
``redact`` uses apprise's privacy mode.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import hashlib
import hmac
import logging
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.charset import BASE64, Charset
from email.header import Header, decode_header, make_header
from email.mime.multipart import MIMEMultipart
from email.policy import compat32
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import unquote

EMAIL_WORDS = {"email", "mail", "邮件", "邮箱", "电子邮件"}
ALWAYS_TAGS = {"always", "总是", "始终", "全部"}
KINDS = {
    "NotifyEmail": "email",
    "NotifyWeComBot": "wecom",
    "NotifyDingTalk": "dingtalk",
    "NotifyFeishu": "feishu",
    "NotifyLark": "lark",
}
LABELS = {"email": "邮件", "wecom": "企业微信", "dingtalk": "钉钉", "feishu": "飞书", "lark": "Lark", "outbox": "本地发件箱", "other": "其他"}
# Size limits of one chat message, in UTF-8 bytes, from each service's documentation:
# WeCom group bot text content ≤ 2048 bytes; Feishu/Lark request body ≤ 20 KB (we keep room for
# the JSON around it); DingTalk documents no byte limit for a bot's text but shows long messages
# poorly on a phone, so we keep its parts short.
CHAT_LIMITS = {"wecom": 2048, "dingtalk": 4000, "feishu": 18000, "lark": 18000}
OTHER_CHAT_LIMIT = 4000


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

    with _quiet_apprise():
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
        def get_signature(self):
            timestamp = str(round(time.time() * 1000))
            digest = hmac.new(self.secret.encode("utf-8"), f"{timestamp}\n{self.secret}".encode(), hashlib.sha256).digest()
            return timestamp, base64.b64encode(digest).decode()

    SignedDingTalk.__name__ = "NotifyDingTalk"
    return SignedDingTalk


def kind_of(plugin) -> str:
    return KINDS.get(type(plugin).__name__, "other")


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
    if kind == "dingtalk":
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
    if kind_of(plugin) != "email":
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

    kind: str  # email | wecom | dingtalk | feishu | lark | other | outbox
    url: str  # the secret URL (never stored or shown)
    redacted: str
    always: bool = False
    to: str | None = None  # an email address (relay)
    plugin: Any = None

    @property
    def label(self) -> str:
        return LABELS.get(self.kind, self.kind)


class NoChannel(Exception):
    pass


def _relay_target(relay_url: str, email: str, always: bool) -> Target:
    sep = "&" if "?" in relay_url else "?"
    url = f"{relay_url}{sep}to={email}"
    plugin = _instantiate(url)
    return Target("email", url, _redacted(plugin) if plugin else f"{email}", always, email, plugin)


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
            out.append(Target("other", url, scheme_hint(url), always))
            continue
        out.append(Target(kind_of(plugin), url, _redacted(plugin), always, plugin=plugin))
    if email and relay_url and not relay_listed:
        out.append(_relay_target(relay_url, email, False))
    return out


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class Attempt:
    channel: str
    target: str
    ok: bool
    error: str | None = None
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    parts: int = 1


@dataclass
class Report:
    """What happened to one message: an attempt per channel tried."""

    attempts: list[Attempt] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return any(a.ok for a in self.attempts)

    @property
    def via(self) -> str:
        return ",".join(dict.fromkeys(a.channel for a in self.attempts if a.ok))

    @property
    def reason(self) -> str:
        failed = [f"{LABELS.get(a.channel, a.channel)} {a.target}：{a.error}" for a in self.attempts if not a.ok]
        return "；".join(failed) or "没有可用的通知渠道"


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
def _quiet_apprise():
    _install_capture()
    prev = getattr(_capture.local, "buf", None)
    _capture.local.buf = []
    try:
        yield _capture.local.buf
    finally:
        _capture.local.buf = prev


# ---------------------------------------------------------------------------------------------
# SMTP with connection reuse


class SMTPPool:
    """One open SMTP connection per relay and thread, reused for every message.

    A message is sent once: a connection that failed in the middle is dropped, never retried on
    the spot (the server may have taken the message); the digest's own retry comes later.  An
    idle connection is checked with NOOP before reuse, since servers close idle sessions.
    """

    IDLE_CHECK = 20.0  # seconds

    def __init__(self):
        self._local = threading.local()
        self._all: list[smtplib.SMTP] = []
        self._lock = threading.Lock()

    def _conns(self) -> dict:
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        return conns

    def _connect(self, p, timeout: float) -> smtplib.SMTP:
        from apprise.plugins.email.common import SecureMailMode

        context = ssl.create_default_context()
        if not p.verify_certificate:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if p.secure_mode == SecureMailMode.SSL:
            conn = smtplib.SMTP_SSL(p.smtp_host, p.port, None, timeout=timeout, context=context)
        else:
            conn = smtplib.SMTP(p.smtp_host, p.port, None, timeout=timeout)
            if p.secure_mode == SecureMailMode.STARTTLS:
                conn.starttls(context=context)
        if p.user and p.password:
            conn.login(p.user, p.password)
        with self._lock:
            self._all.append(conn)
        return conn

    def send(self, p, from_addr: str, to_addrs: list[str], message: bytes, timeout: float) -> None:
        key = (p.smtp_host, p.port, str(p.secure_mode), p.user)
        conns = self._conns()
        entry = conns.get(key)
        if entry is not None and time.monotonic() - entry[1] > self.IDLE_CHECK:
            try:
                if entry[0].noop()[0] != 250:
                    raise smtplib.SMTPServerDisconnected("noop")
            except (OSError, smtplib.SMTPException):
                self._drop(key)
                entry = None
        if entry is None:
            try:
                entry = conns[key] = [self._connect(p, timeout), time.monotonic()]
            except Exception:
                conns.pop(key, None)
                raise
        conn = entry[0]
        try:
            conn.sendmail(from_addr, to_addrs, message)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError):
            entry[1] = time.monotonic()  # the server answered: the session is still good
            raise
        except BaseException:
            self._drop(key)
            raise
        entry[1] = time.monotonic()

    def _drop(self, key) -> None:
        entry = self._conns().pop(key, None)
        if entry is not None:
            with contextlib.suppress(Exception):
                entry[0].close()

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.quit()
            with contextlib.suppress(Exception):
                conn.close()
        self._local = threading.local()


def smtp_reason(err: BaseException, host: str, port: int, timeout: float) -> str:
    """A failure of the mail server, as the office reads it (Chinese, with the server's words)."""
    def said(code, msg) -> str:
        text = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)
        return f"{code} {text}".strip()

    if isinstance(err, smtplib.SMTPRecipientsRefused):
        return "；".join(f"邮件服务器拒绝收件人 {addr}（{said(*r)}）" for addr, r in err.recipients.items())
    if isinstance(err, smtplib.SMTPAuthenticationError):
        return f"邮件服务器登录失败，请检查 DUBAN_SMTP_URL 中的用户名和密码（{said(err.smtp_code, err.smtp_error)}）"
    if isinstance(err, smtplib.SMTPResponseException):
        return f"邮件服务器拒收（{said(err.smtp_code, err.smtp_error)}）"
    if isinstance(err, (socket.timeout, TimeoutError)) or "timed out" in str(err):
        return f"邮件服务器 {host}:{port} 无响应（等待超过 {timeout:g} 秒）"
    if isinstance(err, smtplib.SMTPServerDisconnected):
        return f"邮件服务器 {host}:{port} 断开了连接（{err}）"
    if isinstance(err, ConnectionRefusedError):
        return f"无法连接邮件服务器 {host}:{port}（连接被拒绝）"
    if isinstance(err, OSError):
        return f"无法连接邮件服务器 {host}:{port}（{err.__class__.__name__}: {err}）"
    return f"{err.__class__.__name__}: {err}"


def _decode(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # noqa: BLE001 - keep what we have
        return value


def build_email(*, subject: str, text: str, html: str | None, from_addr: tuple[str, str], to: str, to_name: str | None,
                smtp_host: str, tz: dt.tzinfo | None = None) -> bytes:
    """A multipart/alternative message: our plain-text part first, then the HTML part."""
    utf8 = Charset("utf-8")
    utf8.body_encoding = BASE64  # explicit: apprise registers quoted-printable for utf-8 process-wide
    if html is not None:
        msg = MIMEMultipart("alternative")
        msg.attach(MIMEText(text, "plain", utf8))
        msg.attach(MIMEText(html, "html", utf8))
    else:
        msg = MIMEText(text, "plain", utf8)
    name, addr = from_addr
    msg["Subject"] = Header(subject, "utf-8") if not subject.isascii() else subject
    msg["From"] = formataddr((_decode(name) if name else False, addr), charset="utf-8")
    msg["To"] = formataddr((to_name or False, to), charset="utf-8")
    msg["Date"] = format_datetime(dt.datetime.now(tz or dt.timezone.utc))
    msg["Message-ID"] = make_msgid(domain=smtp_host or addr.split("@")[-1])
    msg["X-Application"] = "duban"
    msg["Auto-Submitted"] = "auto-generated"
    return msg.as_bytes(policy=compat32.clone(linesep="\r\n"))  # smtplib sends bytes as they are: CRLF here


# ---------------------------------------------------------------------------------------------
# Chat: split between items, never inside a line


def split_chat(text: str, limit: int, cut: str) -> list[str]:
    """Pack the units of ``text`` (separated by ``cut``) into parts of at most ``limit`` UTF-8 bytes.

    A unit longer than a part is split between its lines; a line is never cut (a link stays
    whole even in the rare case that it alone exceeds the limit).  Parts after the first are
    numbered.
    """
    units = [u.strip("\n") for u in text.split(cut)]
    units = [u for u in units if u.strip()]
    room = limit - 24  # the "（续 2/9）" label
    size = lambda s: len(s.encode("utf-8"))  # noqa: E731
    pieces: list[str] = []
    for u in units:
        if size(u) <= room:
            pieces.append(u)
        else:
            pieces.extend(line for line in u.split("\n") if line.strip())
    parts: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}\n\n{piece}" if current else piece
        if current and size(candidate) > room:
            parts.append(current)
            current = piece
        else:
            current = candidate
    if current:
        parts.append(current)
    if len(parts) > 1:
        parts = [p if i == 0 else f"（续 {i + 1}/{len(parts)}）\n{p}" for i, p in enumerate(parts)]
        parts[0] = f"（1/{len(parts)}）\n{parts[0]}"
    return parts


# ---------------------------------------------------------------------------------------------
# The dispatcher


@dataclass
class Message:
    """One message rendered for every format a channel may need."""

    subject: str
    text: str
    html: str | None
    chat: str  # with ``CUT`` between units
    mobiles: tuple[str, ...] = ()


Renderer = Callable[[Any], Message]


class Dispatcher:
    """Sends a claimed digest (``duban.sweep.Outgoing``) through the recipient's channels.

    Returns a :class:`Report`; never raises for a channel failure (each is an attempt with its
    reason).  ``outbox``: a local outbox that takes the message when the recipient has no
    channel at all (the embedded demo), and ``outbox_copy`` writes every message there too.
    """

    name = "dispatch"

    def __init__(self, relay_url: str | None = None, *, template_dir: Path | None = None, outbox=None,
                 outbox_copy: bool = False, smtp_timeout: float = 15.0, tz: dt.tzinfo | None = None):
        self.relay_url = relay_url or None
        self.template_dir = template_dir
        self.outbox = outbox
        self.outbox_copy = outbox_copy and outbox is not None
        self.smtp_timeout = smtp_timeout
        self.tz = tz
        self.pool = SMTPPool()

    # -- targets ---------------------------------------------------------------------------
    def targets(self, out) -> list[Target]:
        if getattr(out, "audience", "person") == "person":
            return targets_for(list(out.channels or ()), email=out.email, relay_url=self.relay_url)
        return targets_for(list(out.channels or ()))

    # -- sending ---------------------------------------------------------------------------
    def __call__(self, out) -> Report:
        return self.send(out)

    def send(self, out, *, every: bool = False) -> Report:
        """Fallback: the first channel that takes the message ends the round (``always`` ones
        receive it regardless); ``every=True`` tries every channel (``duban notify test``)."""
        from notifications.render import render_message

        report = Report()
        targets = self.targets(out)
        message = render_message(out, template_dir=self.template_dir)
        delivered = False
        for t in targets:
            if delivered and not (t.always or every):
                continue
            attempt = self.send_to(t, out, message)
            report.attempts.append(attempt)
            if attempt.ok and not t.always:
                delivered = True
        if self.outbox is not None and (self.outbox_copy or not targets):
            report.attempts.append(self._to_outbox(out))
        return report

    def _to_outbox(self, out) -> Attempt:
        try:
            self.outbox(out)
        except Exception as err:  # noqa: BLE001
            return Attempt("outbox", str(self.outbox.folder), False, f"{err.__class__.__name__}: {err}")
        return Attempt("outbox", str(self.outbox.path_for(out)), True)

    def send_to(self, t: Target, out, message: Message) -> Attempt:
        if t.plugin is None:
            return Attempt(t.kind, t.redacted, False, "通知地址无法识别，请在人员表或部门表中改正后重新导入")
        if t.kind == "email":
            return self._email(t, out, message)
        return self._chat(t, message)

    def _email(self, t: Target, out, message: Message) -> Attempt:
        p = t.plugin
        recipients = [t.to] if t.to else [addr for _name, addr in p.targets]
        timeout = float(getattr(p, "socket_connect_timeout", 0) or 0) if "cto=" in t.url else self.smtp_timeout
        name = getattr(out, "recipient", None) if t.to else None
        try:
            for to in recipients:
                data = build_email(subject=message.subject, text=message.text, html=message.html, from_addr=p.from_addr,
                                   to=to, to_name=name, smtp_host=p.smtp_host, tz=self.tz)
                self.pool.send(p, p.from_addr[1], [to], data, timeout)
        except Exception as err:  # noqa: BLE001 - any failure is a reason on the attempt
            return Attempt("email", t.redacted, False, smtp_reason(err, p.smtp_host, p.port, timeout))
        return Attempt("email", t.redacted, True)

    def _chat(self, t: Target, message: Message) -> Attempt:
        from apprise import NotifyFormat

        from notifications.render import CUT

        limit = CHAT_LIMITS.get(t.kind) or min(int(getattr(t.plugin, "body_maxlen", OTHER_CHAT_LIMIT) or OTHER_CHAT_LIMIT), OTHER_CHAT_LIMIT)
        parts = split_chat(message.chat, limit, CUT)
        mention = ""
        if t.kind == "dingtalk" and getattr(t.plugin, "targets", None):
            # DingTalk highlights an @ only when the mobile number also appears in the text
            mention = "\n" + " ".join(f"@{m}" for m in t.plugin.targets)
        for n, part in enumerate(parts, 1):
            with _quiet_apprise() as said:
                try:
                    ok = t.plugin.notify(body=part + mention, title="", body_format=NotifyFormat.TEXT)
                except Exception as err:  # noqa: BLE001 - a plugin should not raise; if it does, it failed
                    ok, said = False, [*said, f"{err.__class__.__name__}: {err}"]
            if not ok:
                reason = "；".join(dict.fromkeys(s for s in said if s)) or "服务未接受该消息"
                prefix = f"第 {n}/{len(parts)} 段" if len(parts) > 1 else ""
                done = f"（前 {n - 1} 段已发出）" if n > 1 else ""
                return Attempt(t.kind, t.redacted, False, f"{LABELS.get(t.kind, t.kind)}{prefix}发送失败{done}：{reason}", parts=len(parts))
        return Attempt(t.kind, t.redacted, True, parts=len(parts))

    def close(self) -> None:
        self.pool.close()
