"""The local HTTP server every fake of the tests runs on, and the webhook receiver.

:class:`Serving` is a threaded HTTP server on 127.0.0.1 and a free port that turns each request
into a :class:`ReceivedRequest` (method, path, query, lower-case headers, body, parsed JSON,
``form``) and answers what its ``handle`` gives (:class:`Reply`).  :class:`JsonFake` is the base of
the vendors' fakes (tests/vendors.py, tests/vendor_bots.py): it records ``calls`` and answers JSON.
tests/idp.py and :class:`WebhookReceiver` (fixture ``webhook``, re-exported by tests/servers.py)
run on :class:`Serving` too.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import pytest

LOCALHOST = "127.0.0.1"


# ---------------------------------------------------------------------------------------------
# Webhooks
# ---------------------------------------------------------------------------------------------

DEFAULT_WEBHOOK_REPLY = {"errcode": 0, "errmsg": "ok", "code": 0, "StatusCode": 0}


@dataclass
class ReceivedRequest:
    """One HTTP request: ``headers`` has lower-case names; ``json`` is None unless JSON."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def form(self) -> dict[str, str]:
        """A form body's fields (the first value of each), or the JSON object."""
        if isinstance(self.json, dict):
            return self.json
        return {k: v[0] for k, v in parse_qs(self.text).items()}


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str
    delay: float = 0.0
    times: int | None = None  # None: for ever; n: only the next n requests


@dataclass
class Reply:
    """An answer of a local server: ``body`` bytes with its content type, after ``delay`` seconds."""

    status: int
    body: bytes
    content_type: str
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, status: int, body: Any, headers: dict[str, str] | None = None, kind: str = "application/json") -> Reply:
        """``body`` as JSON (a dict or list) or text (a str, as ``kind``)."""
        data = body.encode("utf-8") if isinstance(body, str) else json.dumps(body, ensure_ascii=False).encode("utf-8")
        return cls(status, data, f"{kind}; charset=utf-8", headers=headers or {})


class Serving:
    """A threaded HTTP server on ``host`` and a free port: each request becomes a
    :class:`ReceivedRequest` and ``handle(request)`` gives its :class:`Reply`.  The fakes of
    tests/vendors.py, tests/vendor_bots.py, tests/idp.py and :class:`WebhookReceiver` run on it."""

    def __init__(self, handle: Callable[[ReceivedRequest], Reply], host: str = LOCALHOST, port: int = 0, name: str = "fake-http"):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                parsed = None
                if body and ("json" in headers.get("content-type", "") or body[:1] in (b"{", b"[")):
                    try:
                        parsed = json.loads(body)
                    except ValueError:
                        parsed = None
                query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
                reply = handle(ReceivedRequest(self.command, split.path, query, headers, body, parsed))
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for key, value in {"Content-Type": reply.content_type, **reply.headers}.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:  # the client gave up (timeout tests)
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

            def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.host, self.port = host, self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name=name, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class JsonFake:
    """A fake vendor API on :class:`Serving`: ``calls`` records every request; a subclass answers
    ``answer(request) -> (status, JSON body)``."""

    def __init__(self) -> None:
        self.calls: list[ReceivedRequest] = []
        self.lock = threading.RLock()
        self._serving: Serving | None = None

    def answer(self, call: ReceivedRequest) -> tuple[int, Any]:
        raise NotImplementedError

    def _handle(self, call: ReceivedRequest) -> Reply:
        with self.lock:
            self.calls.append(call)
            status, body = self.answer(call)
        return Reply.of(status, body)

    def start(self) -> Self:
        self._serving = Serving(self._handle, name=type(self).__name__)
        return self

    def stop(self) -> None:
        if self._serving is not None:
            self._serving.stop()
            self._serving = None

    @property
    def base_url(self) -> str:
        assert self._serving is not None
        return self._serving.base_url


@dataclass
class WebhookReceiver:
    """A local HTTP server that records requests and answers as configured per path."""

    host: str = LOCALHOST
    port: int = 0
    _requests: list[ReceivedRequest] = field(default_factory=list)
    _replies: dict[str, list[_Reply]] = field(default_factory=dict)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _serving: Serving | None = None

    def start(self) -> WebhookReceiver:
        self._serving = Serving(self._handle, self.host, self.port, name="webhook-receiver")
        self.port = self._serving.port
        return self

    def _handle(self, request: ReceivedRequest) -> Reply:
        self._record(request)
        reply = self._reply_for(request.path)
        return Reply(reply.status, reply.body, reply.content_type, reply.delay)

    def stop(self) -> None:
        if self._serving is not None:
            self._serving.stop()
            self._serving = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def respond(
        self,
        path: str,
        status: int = 200,
        body: Any = None,
        *,
        content_type: str | None = None,
        delay: float = 0.0,
        times: int | None = None,
    ) -> None:
        """Answer requests to ``path`` with ``status`` and ``body`` (dict/list → JSON; str; bytes).

        ``body=None`` keeps the default JSON success body.  ``delay`` sleeps before answering;
        ``times=n`` applies the answer to the next ``n`` requests only, then the previous one.
        """
        if body is None:
            body = DEFAULT_WEBHOOK_REPLY
        if isinstance(body, (dict, list)):
            data, ctype = json.dumps(body, ensure_ascii=False).encode("utf-8"), "application/json"
        elif isinstance(body, str):
            data, ctype = body.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            data, ctype = bytes(body), "application/octet-stream"
        with self._cond:
            self._replies.setdefault(path, []).append(_Reply(status, data, content_type or ctype, delay, times))

    def reset_replies(self) -> None:
        with self._cond:
            self._replies.clear()

    def _reply_for(self, path: str) -> _Reply:
        with self._cond:
            stack = self._replies.get(path) or []
            while stack:
                reply = stack[-1]
                if reply.times is None:
                    return reply
                if reply.times > 0:
                    reply.times -= 1
                    if reply.times == 0:
                        stack.pop()
                    return reply
                stack.pop()
        return _Reply(200, json.dumps(DEFAULT_WEBHOOK_REPLY).encode(), "application/json")

    def _record(self, request: ReceivedRequest) -> None:
        with self._cond:
            self._requests.append(request)
            self._cond.notify_all()

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._cond:
            return list(self._requests)

    def clear(self) -> None:
        with self._cond:
            self._requests.clear()

    def wait_for(self, n: int = 1, timeout: float = 5.0) -> list[ReceivedRequest]:
        """Wait until at least ``n`` requests arrived; return them (AssertionError on timeout)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._requests) >= n, timeout):
                raise AssertionError(f"expected {n} request(s) within {timeout} s, got {len(self._requests)}")
            return list(self._requests)


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver
