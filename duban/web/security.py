"""Protections of the link pages: security headers, a request-size limit, rate limits, CSRF.

Pure ASGI middleware (no per-request task overhead), and an in-memory sliding-window rate
limiter: one process serves the links of an institution; behind several processes each keeps
its own count (docs/web.md).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import quote

from fastapi.responses import FileResponse
from starlette.types import ASGIApp, Scope

CSRF_FIELD = "csrf"

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),  # a token in the address never leaks to another site
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
NO_STORE = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
CACHEABLE = ("/static/",)  # the only paths a browser or proxy may keep (style sheets, icons)


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response, and ``Cache-Control: no-store`` (with
    ``Pragma: no-cache`` for old proxies) to every page but the static files: the link pages
    (/l/, /rv/), read-only links (/d/), the dashboard and sign-in carry a token or the
    institution's data, and a shared phone, browser or proxy must keep no copy of them."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        private = not scope.get("path", "").startswith(CACHEABLE)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in present]
                if private:
                    headers += [h for h in NO_STORE if h[0] not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(Exception):  # noqa: N818  a signal to BodyLimit (answered 413), not an error
    pass


class BodyLimit:
    """Refuses a request body larger than ``limit()`` bytes: at once from its Content-Length,
    or while it streams in (chunked uploads), before anything is parsed or stored."""

    def __init__(self, app, limit: Callable[[], int], too_large: Callable[[Scope], ASGIApp]):
        self.app = app
        self.limit = limit
        self.too_large = too_large  # scope -> an ASGI app that answers 413

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        limit = self.limit()
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > limit
            except ValueError:
                too_big = True
            if too_big:
                await _drain(receive, limit)
                return await self.too_large(scope)(scope, receive, send)
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self.too_large(scope)(scope, receive, send)


async def _drain(receive, limit: int) -> None:
    """Read (and drop) a little of a refused body, so the client sees our answer, not a reset."""
    seen = 0
    while seen < min(limit, 1 << 20):
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body"):
            return


class RateLimiter:
    """Sliding-window counts per key (a client address, a link): at most ``limit`` hits in
    ``window`` seconds.  ``hit`` returns 0 when allowed, else the seconds to wait."""

    def __init__(self, limit: int, window: float, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> int:
        now = self.clock()
        with self._lock:
            q = self._hits.get(key)
            if q is None:
                if len(self._hits) >= self.max_keys:
                    self._prune(now)
                q = self._hits[key] = deque()
            while q and q[0] <= now - self.window:
                q.popleft()
            if len(q) >= self.limit:
                return max(1, int(q[0] + self.window - now + 0.999))
            q.append(now)
            return 0

    def _prune(self, now: float) -> None:
        for key in [k for k, q in self._hits.items() if not q or q[-1] <= now - self.window]:
            del self._hits[key]
        if len(self._hits) >= self.max_keys:  # still full: forget the oldest half
            for key in list(self._hits)[: self.max_keys // 2]:
                del self._hits[key]


def new_csrf_cookie() -> str:
    return secrets.token_urlsafe(24)


def csrf_token(secret: str, cookie: str, link_id: int) -> str:
    """The hidden form field: bound to the browser's cookie and to one link."""
    return hmac.new(secret.encode(), f"csrf:{cookie}:{link_id}".encode(), hashlib.sha256).hexdigest()[:40]


def csrf_ok(secret: str, cookie: str | None, field: str | None, link_id: int) -> bool:
    if not cookie or not field:
        return False
    return hmac.compare_digest(csrf_token(secret, cookie, link_id), field)


def attachment(path, name: str, ctype: str):
    """A stored file as a download: never shown in the browser (no sniffing), never cached, and
    named as uploaded (RFC 6266: an ASCII fallback and the UTF-8 name)."""
    ascii_name = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in name) or "file"
    headers = {
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }
    return FileResponse(path, media_type=ctype, headers=headers)
