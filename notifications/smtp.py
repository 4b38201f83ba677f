"""Mail: one reused SMTP connection per relay and thread, the message we build (our own plain-text and
HTML parts, not apprise's conversion), and a failure as the office reads it.

A new connection per message caps a relay at ~26 messages/s (see DESIGN.md).

Two waits: connecting and each command use the short ``timeout`` (``DUBAN_SMTP_TIMEOUT``); the
answer to the end of a message (the final ".") gets ``final_timeout`` (``DUBAN_SMTP_FINAL_TIMEOUT``,
RFC 5321 4.5.3.2.6 recommends 10 minutes), since a relay that takes its time there has usually
already taken the message.  A relay that stops answering is paused for a while
(:class:`RelayBreaker`) instead of costing a timeout per message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.charset import BASE64, Charset
from email.header import Header, decode_header, make_header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, make_msgid

from notifications.addresses import AddressError, header_text, mailbox


class FinalReplyTimeout(smtplib.SMTPServerDisconnected):
    """The relay took the whole message but did not answer the final "." in time: it may have
    delivered it (and sending it again may duplicate it)."""

    def __init__(self, seconds: float):
        super().__init__(f"no answer to the end of the message within {seconds:g} s")
        self.seconds = seconds


class RelayPaused(smtplib.SMTPException):
    """Not sent: the relay failed ``failures`` times in a row and is paused (nothing was tried)."""

    def __init__(self, failures: int):
        super().__init__(f"relay paused after {failures} consecutive failures")
        self.failures = failures


class _LongFinalReply(smtplib.SMTP):
    """``smtplib.SMTP`` that waits ``final_timeout`` (not the command timeout) for the answer to
    the end of DATA; every other reply keeps the socket's timeout."""

    final_timeout: float | None = None

    def data(self, msg):
        # CPython 3.11's smtplib.SMTP.data, but for the wait in _final_reply
        self.putcmd("data")
        (code, repl) = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, repl)
        if isinstance(msg, str):
            msg = smtplib._fix_eols(msg).encode("ascii")  # type: ignore[attr-defined]  # private helper, not in typeshed
        q = smtplib._quote_periods(msg)  # type: ignore[attr-defined]  # private helper, not in typeshed
        if q[-2:] != smtplib.bCRLF:
            q = q + smtplib.bCRLF
        q = q + b"." + smtplib.bCRLF
        self.send(q)
        return self._final_reply()

    def _final_reply(self) -> tuple[int, bytes]:
        sock = self.sock
        command_timeout = sock.gettimeout() if sock is not None else None
        wait = self.final_timeout if self.final_timeout is not None else command_timeout
        if sock is not None:
            sock.settimeout(wait)
        try:
            return self.getreply()
        except smtplib.SMTPServerDisconnected as err:
            # getreply turns the socket's timeout into "Connection unexpectedly closed: timed out"
            if isinstance(err.__context__, TimeoutError):
                raise FinalReplyTimeout(wait or 0.0) from err
            raise
        finally:
            if self.sock is not None:  # getreply closes the connection when it fails
                self.sock.settimeout(command_timeout)


class _SMTP(_LongFinalReply):
    """Plain SMTP, or STARTTLS (the wrapped socket keeps the timeout that ``data`` changes)."""


class _SMTPSSL(_LongFinalReply, smtplib.SMTP_SSL):
    """SMTPS (implicit TLS)."""


def relay_down(err: BaseException) -> bool:
    """Whether a failure says the relay itself is not answering (no connection, no greeting, a
    command or the final reply timed out, the connection dropped, 421 "service not available"),
    as opposed to an answer about this message or recipient, which proves the relay is alive."""
    if isinstance(err, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError)):
        return True
    if isinstance(err, smtplib.SMTPResponseException):
        return err.smtp_code == 421
    if isinstance(err, smtplib.SMTPException):  # refused recipients, no AUTH offered…: an answer
        return False
    return isinstance(err, OSError)


@dataclass
class _RelayState:
    failures: int = 0  # connection-level failures in a row
    paused_until: float | None = None  # clock time; None: the relay is not paused
    probing: bool = False  # after the pause, one message is trying the relay


class RelayBreaker:
    """A circuit breaker per relay, shared by every thread of a pool.

    After ``trip_after`` connection-level failures in a row (:func:`relay_down`) the relay is
    paused for ``cool_down`` seconds: :meth:`admit` refuses at once (:class:`RelayPaused`), without
    touching the network.  After the pause one message probes the relay (the others are still
    refused): its success closes the breaker, its failure pauses the relay again.  ``clock`` is
    ``time.monotonic`` unless a test passes its own.
    """

    def __init__(self, trip_after: int = 3, cool_down: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.trip_after = trip_after
        self.cool_down = cool_down
        self.clock = clock
        self._lock = threading.Lock()
        self._relays: dict[tuple, _RelayState] = {}

    def admit(self, key: tuple) -> bool:
        """Raise :class:`RelayPaused` while the relay is paused; True when this message is the probe."""
        with self._lock:
            state = self._relays.get(key)
            if state is None or state.paused_until is None:
                return False
            if state.probing or self.clock() < state.paused_until:
                raise RelayPaused(state.failures)
            state.probing = True
            return True

    def record(self, key: tuple, *, down: bool, probe: bool) -> None:
        """The outcome of one message: ``down`` when the relay did not answer (see :func:`relay_down`)."""
        with self._lock:
            state = self._relays.setdefault(key, _RelayState())
            if probe:
                state.probing = False
            if not down:
                state.failures, state.paused_until = 0, None
                return
            state.failures += 1
            if state.failures >= self.trip_after:
                state.paused_until = self.clock() + self.cool_down

    def release(self, key: tuple) -> None:
        """A probe ended without a verdict (interrupted): the next message probes again."""
        with self._lock:
            state = self._relays.get(key)
            if state is not None:
                state.probing = False

    def paused(self, key: tuple) -> bool:
        with self._lock:
            state = self._relays.get(key)
            return state is not None and state.paused_until is not None


class SMTPPool:
    """One open SMTP connection per relay and thread, reused for every message.

    A message is sent once: a connection that failed in the middle is dropped, never retried on
    the spot (the server may have taken the message); the digest's own retry comes later.  An
    idle connection is checked with NOOP before reuse, since servers close idle sessions.

    A relay (host, port, security mode, user) that stops answering is paused by a
    :class:`RelayBreaker` shared by all threads: ``trip_after`` connection-level failures in a
    row pause it for ``cool_down`` seconds, during which :meth:`send` raises :class:`RelayPaused`
    at once.
    """

    IDLE_CHECK = 20.0  # seconds

    def __init__(self, *, trip_after: int = 3, cool_down: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self._local = threading.local()
        self._all: list[smtplib.SMTP] = []
        self._lock = threading.Lock()
        self.breaker = RelayBreaker(trip_after, cool_down, clock)

    @staticmethod
    def relay_key(p) -> tuple:
        return (p.smtp_host, p.port, str(p.secure_mode), p.user)

    def _conns(self) -> dict:
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        return conns

    def _connect(self, p, timeout: float) -> _LongFinalReply:
        from apprise.plugins.email.common import SecureMailMode

        context = ssl.create_default_context()
        if not p.verify_certificate:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        conn: _LongFinalReply
        if p.secure_mode == SecureMailMode.SSL:
            conn = _SMTPSSL(p.smtp_host, p.port, None, timeout=timeout, context=context)
        else:
            conn = _SMTP(p.smtp_host, p.port, None, timeout=timeout)
        try:
            if p.secure_mode == SecureMailMode.STARTTLS:
                conn.starttls(context=context)
            if p.user and p.password:
                conn.login(p.user, p.password)
        except BaseException:
            conn.close()
            raise
        with self._lock:
            self._all.append(conn)
        return conn

    def send(self, p, from_addr: str, to_addrs: list[str], message: bytes, timeout: float, final_timeout: float | None = None) -> None:
        """Send one message through the relay of the apprise email plugin ``p``.

        ``timeout``: connecting and each command; ``final_timeout``: the answer to the end of the
        message (default: ``timeout``).  Raises :class:`RelayPaused` (nothing tried) while the
        relay is paused, :class:`FinalReplyTimeout` when the relay took the message but did not
        confirm it in time, and smtplib's or the socket's errors otherwise.
        """
        key = self.relay_key(p)
        probe = self.breaker.admit(key)
        try:
            self._send(key, p, from_addr, to_addrs, message, timeout, final_timeout)
        except Exception as err:
            self.breaker.record(key, down=relay_down(err), probe=probe)
            raise
        except BaseException:
            if probe:
                self.breaker.release(key)
            raise
        self.breaker.record(key, down=False, probe=probe)

    def _send(
        self, key: tuple, p, from_addr: str, to_addrs: list[str], message: bytes, timeout: float, final_timeout: float | None
    ) -> None:
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
        conn.final_timeout = final_timeout
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

    if isinstance(err, RelayPaused):
        return f"邮件服务器 {host}:{port} 连续 {err.failures} 次无响应，暂停发送，稍后自动重试"
    if isinstance(err, FinalReplyTimeout):
        return f"邮件服务器 {host}:{port} 收到全文后 {err.seconds:g} 秒内未确认（可能已送达）"
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
    if isinstance(err, AddressError):  # said in Chinese already
        return str(err)
    return f"{err.__class__.__name__}: {err}"


def _decode(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # noqa: BLE001 - keep what we have
        return value


def _text_part(body: str, subtype: str, charset: Charset) -> MIMEText:
    """A text part in ``charset`` (a ``Charset``, so that its body encoding is the one we set)."""
    return MIMEText(body, subtype, charset)  # type: ignore[arg-type]  # MIMEText hands _charset to set_payload, which takes a Charset (typeshed: str only)


def build_email(
    *,
    subject: str,
    text: str,
    html: str | None,
    from_addr: tuple[str, str],
    to: str,
    to_name: str | None,
    smtp_host: str,
    tz: dt.tzinfo | None = None,
) -> bytes:
    """A multipart/alternative message: our plain-text part first, then the HTML part."""
    utf8 = Charset("utf-8")
    utf8.body_encoding = BASE64  # explicit: apprise registers quoted-printable for utf-8 process-wide
    msg: MIMEMultipart | MIMEText
    if html is not None:
        msg = MIMEMultipart("alternative")
        msg.attach(_text_part(text, "plain", utf8))
        msg.attach(_text_part(html, "html", utf8))
    else:
        msg = _text_part(text, "plain", utf8)
    name, addr = from_addr
    subject = header_text(subject)
    if subject.isascii():
        msg["Subject"] = subject
    else:
        msg["Subject"] = Header(subject, "utf-8")  # type: ignore[assignment]  # compat32 takes a Header (typeshed: str only)
    # names and addresses through mailbox(): a CR/LF in a person's name never starts a header
    msg["From"] = mailbox(_decode(name) if name else None, addr)
    msg["To"] = mailbox(to_name, to)
    msg["Date"] = format_datetime(dt.datetime.now(tz or dt.UTC))
    msg["Message-ID"] = make_msgid(domain=smtp_host or addr.split("@")[-1])
    msg["X-Application"] = "duban"
    msg["Auto-Submitted"] = "auto-generated"
    return msg.as_bytes(policy=compat32.clone(linesep="\r\n"))  # smtplib sends bytes as they are: CRLF here
