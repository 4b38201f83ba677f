"""Real servers for tests: an SMTP server, a webhook receiver, a browser and the live web app.

Registered as a pytest plugin from ``tests/conftest.py`` (``pytest_plugins = ["tests.servers"]``),
so every test can ask for the fixtures ``smtp_server``, ``webhook``, ``chromium``, ``page`` and
``live_server``; the helpers (``smtp_url``, ``screenshot``…) are imported from ``tests.servers``.

SMTP (``smtp_server`` → :class:`SMTPServer`)
    An aiosmtpd server on 127.0.0.1 and a free port, no AUTH, plain SMTP unless built with
    ``SMTPServer(tls="starttls")`` or ``SMTPServer(tls="ssl")`` (a self-signed certificate made
    for the run; :attr:`SMTPServer.relay_url` then says ``mailtos://…&verify=no``).  The apprise
    URL that sends to it (apprise 1.13, ``apprise/plugins/email/base.py``)::

        mailto://127.0.0.1:{port}?from=duban@example.org&mode=insecure&to=someone@example.org

    - ``mailto://`` (not ``mailtos://``) with ``mode=insecure``: plain SMTP, no STARTTLS.  (Plain
      ``mailto://`` already defaults to insecure; ``mode=insecure`` says it explicitly.  There is
      no ``secure=`` argument: apprise silently ignores it.)
    - no ``user:password@``: without both, apprise does not log in (our server offers no AUTH
      over plain text, so a URL with credentials fails with "SMTP AUTH extension not supported").
    - ``from=`` is needed: with neither a user nor ``from=`` apprise has no sender address.
    - recipients: ``&to=a@x.org`` (repeat, or comma-separate: ``to=a@x.org,b@x.org``), or as path
      segments ``mailto://127.0.0.1:{port}/a@x.org/b@x.org?from=…``; also ``cc=`` and ``bcc=``.
    - ``cto=<seconds>`` sets apprise's socket timeout (apprise's own sender, smtplib, uses it for
      connect *and* every reply; default 15 s): use e.g. ``cto=1`` together with
      :meth:`SMTPServer.timeout`.  duban's ``AppriseChannel`` reads it as the connect and command
      timeout only; the answer to the end of a message has its own ``smtp_final_timeout``.

    :func:`smtp_url` gives the relay URL without recipients (the form for ``DUBAN_SMTP_URL``);
    the sender appends ``&to=<address>`` per message.

    Modes, switchable at run time (each applies to the next SMTP step that checks it, also on a
    connection already open):

    - ``server.ok()`` accept everything (and release a stall).
    - ``server.refuse()`` answer ``554`` to DATA (the message is rejected after the envelope);
      ``server.refuse(at="rcpt")`` answer ``550`` to each RCPT TO (the recipient is rejected).
    - ``server.fail_next(n)`` refuse the next *n* messages with 554, then accept.
    - ``server.slow(s)``, or its alias ``server.late(s)``: record the message, then wait *s*
      seconds before answering 250 to the final "." (so a client that gives up earlier has
      still delivered it — the real-world case where a naive retry duplicates a message).
    - ``server.timeout(s)`` wait *s* seconds before answering the final ".", then answer 451 and
      record nothing.
    - ``server.stall()`` accept TCP connections but never answer: no greeting on a new
      connection, no reply to the next command on an open one (a hung relay), until ``ok()``.
    - ``server.drop()`` close the connection in the middle of DATA (after 354 and the first
      line of the message): nothing recorded; ``server.dropped`` lists the envelopes' recipients.

    What arrived: ``server.received`` lists :class:`ReceivedMail` (envelope + parsed
    ``email.message.EmailMessage`` with ``policy=email.policy.default``); ``server.wait_for(n)``;
    ``server.count_by_recipient()`` → ``{address: number of messages}`` (envelope recipients,
    to spot a duplicate).

Webhooks (``webhook`` → :class:`WebhookReceiver`, in tests/local_http.py with the local HTTP server every fake runs on)
    A ``ThreadingHTTPServer`` on 127.0.0.1 and a free port; ``webhook.url("/robot/send")``.  It
    records every request in order (:class:`ReceivedRequest`) and answers 200 with
    ``{"errcode":0,"errmsg":"ok","code":0,"StatusCode":0}`` (a success answer for WeCom, DingTalk
    and Feishu bots alike) unless told otherwise with ``webhook.respond(path, status, body)``.

Browser (``chromium`` session fixture, ``page`` fixture, :func:`screenshot`)
    Playwright's sync API driving the system Chromium (``$DUBAN_TEST_CHROMIUM``, default
    ``/usr/bin/chromium``; never ``playwright install``: its download does not work here).
    Without the executable the browser tests are skipped — unless ``CI`` or
    ``DUBAN_TEST_REQUIRE_BROWSER`` is set, then they fail.  ``page`` is a fresh context with a
    phone-sized viewport (390×844) and ``zh-CN`` locale.  Screenshots go to
    ``$DUBAN_TEST_ARTIFACTS`` or ``<repo>/test-artifacts/``.

Live web app (``live_server``)
    ``duban.web.app:create_app()`` under uvicorn in a background thread on a free port, using
    the test database (``use_database``) and with ``DUBAN_BASE_URL`` set to its own URL, so the
    links it makes point at itself.  Yields the base URL (no trailing slash).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

# the local HTTP server and the webhook receiver (and its fixture ``webhook``) live in tests/local_http.py
from tests.local_http import (  # noqa: F401 - re-exported, and the fixture registered by this plugin
    DEFAULT_WEBHOOK_REPLY,
    LOCALHOST,
    JsonFake,
    ReceivedRequest,
    Reply,
    Serving,
    WebhookReceiver,
    webhook,
)

REPO = Path(__file__).resolve().parent.parent

# Read once at start-up: the autouse fixture in conftest.py removes every DUBAN_ variable
# while a test runs (so settings stay isolated), which would hide these from the fixtures.
_TEST_ENV = {name: os.environ.get(name) for name in ("DUBAN_TEST_CHROMIUM", "DUBAN_TEST_REQUIRE_BROWSER", "DUBAN_TEST_ARTIFACTS", "CI")}


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port that was free a moment ago (prefer passing a bound socket where possible)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# SMTP
# ---------------------------------------------------------------------------------------------


def smtp_url(port: int, sender: str = "duban@example.org", host: str = LOCALHOST, tls: str | None = None) -> str:
    """The apprise relay URL for the local test server, without recipients.

    Add recipients with ``&to=<address>`` (or ``/<address>`` path segments before the ``?``).
    ``tls``: ``"starttls"`` or ``"ssl"`` for a server built with that ``tls`` (its certificate is
    self-signed, hence ``verify=no``).
    """
    if tls:
        return f"mailtos://{host}:{port}?from={sender}&mode={tls}&verify=no"
    return f"mailto://{host}:{port}?from={sender}&mode=insecure"


def smtp_mailto(port: int, *recipients: str, sender: str = "duban@example.org", tls: str | None = None, **params: Any) -> str:
    """A complete apprise URL to the local server: ``smtp_mailto(port, "a@x.org", cto=1)``."""
    url = smtp_url(port, sender, tls=tls)
    if recipients:
        url += "&to=" + ",".join(recipients)
    for key, value in params.items():
        url += f"&{key}={value}"
    return url


@dataclass
class ReceivedMail:
    """One message the server accepted: the SMTP envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def to(self) -> str:
        return str(self.message["To"] or "")

    def text(self) -> str:
        """The plain-text body (or the HTML one when there is no plain-text part)."""
        part = self.message.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part is not None else ""

    def html(self) -> str | None:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else None


class _SMTPHandler:
    def __init__(self, server: SMTPServer):
        self.server = server

    async def hold_while_stalled(self) -> None:
        """In stall mode, wait (without answering) until the mode changes or the client hangs up
        (aiosmtpd then cancels the session's coroutine)."""
        while self.server.mode == "stall":
            await asyncio.sleep(0.02)

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):  # noqa: N802
        if self.server.mode == "refuse" and self.server.refuse_at == "rcpt":
            self.server._note_refused(address)
            return f"550 5.1.1 <{address}>: recipient refused (test server in refuse mode)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp, session, envelope):  # noqa: N802
        srv = self.server
        mode, delay = srv.mode, srv.delay
        if mode == "timeout":
            # aiosmtpd cancels this coroutine when the client hangs up, so nothing after the
            # sleep happens for a client that gave up
            await asyncio.sleep(delay)
            srv._note_refused(envelope.rcpt_tos)
            return "451 4.3.0 too slow (test server in timeout mode)"
        if srv._take_failure() or (mode == "refuse" and srv.refuse_at == "data"):
            srv._note_refused(envelope.rcpt_tos)
            return "554 5.7.1 message refused (test server in refuse mode)"
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        # recorded before a slow answer: a client that gives up waiting has still delivered it
        srv._add(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message, raw))
        if mode == "slow":
            await asyncio.sleep(delay)
        return "250 2.0.0 OK: queued"


def _faulty_smtp(handler: _SMTPHandler, **kwargs: Any):
    """An aiosmtpd ``SMTP`` session that can stall (no reply at all) and drop (hang up in DATA)."""
    from aiosmtpd.smtp import SMTP, syntax

    class FaultySMTP(SMTP):
        async def push(self, status):
            # every reply goes through here, the greeting included: a stall holds them all
            await handler.hold_while_stalled()
            await super().push(status)

        @syntax("DATA")
        async def smtp_DATA(self, arg):  # noqa: N802 - aiosmtpd's name for the DATA command
            if handler.server.mode != "drop" or self.envelope is None or not self.envelope.rcpt_tos:
                return await super().smtp_DATA(arg)
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.readuntil(b"\r\n")  # the first line of the message, then hang up
            handler.server._note_dropped(list(self.envelope.rcpt_tos))
            self.transport.close()
            return None

    return FaultySMTP(handler, **kwargs)


def _self_signed_context(host: str) -> ssl.SSLContext:
    """A server TLS context with a throw-away self-signed certificate for ``host`` (fixed validity
    dates: nothing here reads the clock; clients connect with ``verify=no``)."""
    import datetime as dt
    import ipaddress
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2099, 12, 31, tzinfo=dt.UTC))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:
        cert_file, key_file = Path(folder, "cert.pem"), Path(folder, "key.pem")
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        context.load_cert_chain(cert_file, key_file)
    return context


class SMTPServer:
    """A local SMTP server (aiosmtpd) that records what it accepts; see the module docstring."""

    MODES = ("ok", "refuse", "slow", "timeout", "stall", "drop")

    def __init__(self, host: str = LOCALHOST, tls: str | None = None):
        if tls not in (None, "starttls", "ssl"):
            raise ValueError("SMTPServer(tls=...) takes None, 'starttls' or 'ssl'")
        self.host = host
        self.tls = tls
        self.port = 0
        self.mode = "ok"
        self.refuse_at = "data"  # "data" → 554 after DATA; "rcpt" → 550 on each RCPT TO
        self.delay = 0.0
        self.refused: list[Any] = []  # recipients of refused attempts, in order
        self.dropped: list[list[str]] = []  # recipients of the messages cut off in drop mode
        self._fail_next = 0
        self._received: list[ReceivedMail] = []
        self._cond = threading.Condition()
        self._controller = None

    # -- lifecycle -----------------------------------------------------------------------------
    def _build_controller(self, port: int):
        from aiosmtpd.controller import Controller

        class FaultyController(Controller):
            def factory(self):
                return _faulty_smtp(self.handler, **self.SMTP_kwargs)

        tls: dict[str, Any] = {}
        if self.tls == "starttls":
            tls["tls_context"] = _self_signed_context(self.host)
        elif self.tls == "ssl":
            tls["ssl_context"] = _self_signed_context(self.host)
        return FaultyController(_SMTPHandler(self), hostname=self.host, port=port, ready_timeout=10, **tls)

    def start(self) -> SMTPServer:
        last_error: Exception | None = None
        for _ in range(5):  # the free port can be taken between probing and binding
            port = free_port(self.host)
            controller = self._build_controller(port)
            try:
                controller.start()
            except Exception as err:  # noqa: BLE001
                last_error = err
                continue
            self._controller, self.port = controller, port
            return self
        raise RuntimeError(f"could not start the test SMTP server: {last_error!r}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SMTPServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- modes ---------------------------------------------------------------------------------
    def ok(self) -> None:
        """Accept everything again (also clears ``fail_next`` and releases a stall)."""
        with self._cond:
            self.mode, self.delay, self._fail_next = "ok", 0.0, 0

    def refuse(self, at: str = "data") -> None:
        """Refuse every message: ``at="data"`` → 554 to DATA, ``at="rcpt"`` → 550 to RCPT TO."""
        if at not in ("data", "rcpt"):
            raise ValueError("refuse(at=...) takes 'data' or 'rcpt'")
        self.mode, self.refuse_at = "refuse", at

    def slow(self, seconds: float) -> None:
        """Record each message, then wait ``seconds`` before answering 250 to DATA."""
        self.mode, self.delay = "slow", float(seconds)

    def late(self, seconds: float) -> None:
        """The same as :meth:`slow`: record each message, answer the final "." after ``seconds``."""
        self.slow(seconds)

    def timeout(self, seconds: float = 10.0) -> None:
        """Wait ``seconds`` before answering DATA, then answer 451 and record nothing."""
        self.mode, self.delay = "timeout", float(seconds)

    def stall(self) -> None:
        """Answer nothing (no greeting, no reply to any command) until :meth:`ok`."""
        self.mode = "stall"

    def drop(self) -> None:
        """Hang up in the middle of DATA (after 354 and one line of the message): nothing recorded."""
        self.mode = "drop"

    def fail_next(self, n: int = 1) -> None:
        """Refuse (554) the next ``n`` messages, then accept again."""
        with self._cond:
            self._fail_next = int(n)

    def _take_failure(self) -> bool:
        with self._cond:
            if self._fail_next > 0:
                self._fail_next -= 1
                return True
            return False

    # -- what arrived --------------------------------------------------------------------------
    def _add(self, mail: ReceivedMail) -> None:
        with self._cond:
            self._received.append(mail)
            self._cond.notify_all()

    def _note_refused(self, recipients: Any) -> None:
        with self._cond:
            self.refused.append(recipients)

    def _note_dropped(self, recipients: list[str]) -> None:
        with self._cond:
            self.dropped.append(recipients)

    @property
    def received(self) -> list[ReceivedMail]:
        with self._cond:
            return list(self._received)

    @property
    def messages(self) -> list[EmailMessage]:
        return [mail.message for mail in self.received]

    def count_by_recipient(self) -> dict[str, int]:
        """How many messages each envelope recipient got (more than 1: a duplicate, or a resend)."""
        counts: dict[str, int] = {}
        for mail in self.received:
            for address in mail.rcpt_tos:
                counts[address] = counts.get(address, 0) + 1
        return counts

    def clear(self) -> None:
        with self._cond:
            self._received.clear()
            self.refused.clear()
            self.dropped.clear()

    def wait_for(self, n: int = 1, timeout: float = 5.0) -> list[ReceivedMail]:
        """Wait until at least ``n`` messages arrived; return them (AssertionError on timeout)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._received) >= n, timeout):
                raise AssertionError(f"expected {n} message(s) within {timeout} s, got {len(self._received)}")
            return list(self._received)

    def url(self, *recipients: str, **params: Any) -> str:
        """A complete apprise URL to this server (see :func:`smtp_mailto`)."""
        return smtp_mailto(self.port, *recipients, tls=self.tls, **params)

    @property
    def relay_url(self) -> str:
        """The relay URL without recipients (for ``DUBAN_SMTP_URL``)."""
        return smtp_url(self.port, host=self.host, tls=self.tls)


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


# ---------------------------------------------------------------------------------------------
# Browser
# ---------------------------------------------------------------------------------------------

CHROMIUM_ENV = "DUBAN_TEST_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE_VIEWPORT = {"width": 390, "height": 844}


def browser_required() -> bool:
    return bool(_TEST_ENV["CI"] or _TEST_ENV["DUBAN_TEST_REQUIRE_BROWSER"])


@pytest.fixture(scope="module")
def chromium():
    """The system Chromium driven by Playwright, one browser per test module.

    Not per session: while Playwright's sync API is open it keeps an event loop running on the
    main thread, and a later test in the same worker that calls ``asyncio.run()`` (Prefect,
    apprise) would fail. Closing it with the module costs one browser start (≈ 1 s) per module."""
    executable = _TEST_ENV[CHROMIUM_ENV] or DEFAULT_CHROMIUM
    if not (os.path.isfile(executable) and os.access(executable, os.X_OK)):
        reason = f"browser tests need Chromium at {executable} (apt install chromium, or set {CHROMIUM_ENV})"
        if browser_required():
            pytest.fail(reason + "; CI/DUBAN_TEST_REQUIRE_BROWSER is set, so this is an error")
        pytest.skip(reason)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the test extra installs it
        reason = "browser tests need the playwright package (pip install -e '.[test]')"
        if browser_required():
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def browser_page(chromium, request, viewport: dict[str, int]) -> Iterator[Any]:
    """A fresh browser context and page at ``viewport``, zh-CN, Asia/Shanghai."""
    context = chromium.new_context(viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(15_000)
    pg = context.new_page()
    pg._duban_test_name = request.node.nodeid  # used by screenshot() for unique file names
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def page(chromium, request):
    """A fresh browser context and page: phone-sized viewport."""
    with browser_page(chromium, request, PHONE_VIEWPORT) as pg:
        yield pg


def artifacts_dir() -> Path:
    folder = Path(_TEST_ENV["DUBAN_TEST_ARTIFACTS"] or REPO / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:150]


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG of ``page`` as ``<artifacts>/<test id>--<name>.png`` and return its path.

    The test id (file, test name and parameters) keeps names unique across xdist workers.
    """
    test = getattr(page, "_duban_test_name", None) or os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    stem = _slug(f"{test}--{name}" if test else name)
    path = artifacts_dir() / f"{stem}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


# ---------------------------------------------------------------------------------------------
# The live web app
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def live_server(use_database, monkeypatch) -> Iterator[str]:
    """The duban web app served by uvicorn on a free port, on the test database; yields its URL."""
    import uvicorn

    from duban.settings import get_settings

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOCALHOST, 0))
    base_url = f"http://{LOCALHOST}:{sock.getsockname()[1]}"
    monkeypatch.setenv("DUBAN_BASE_URL", base_url)
    get_settings.cache_clear()

    from duban.web.app import create_app

    config = uvicorn.Config(
        create_app(),
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    thread = threading.Thread(target=serve, name="duban-live-server", daemon=True)
    thread.start()
    if not wait_until(lambda: server.started or errors or not thread.is_alive(), timeout=20):
        server.should_exit = True
        raise RuntimeError("the live server did not start within 20 s")
    if not server.started:
        raise RuntimeError(f"the live server failed to start: {errors[0] if errors else 'no error reported'}")
    try:
        yield base_url
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
