"""Who may use the console, checked in one place for every route.

:class:`Guard` is a plain ASGI middleware that sits inside Starlette's ``SessionMiddleware`` (signed,
HttpOnly, SameSite=Strict cookie) and in front of every route, so a route added later is protected
without remembering to be:

* no login (or a login older than ``console_session_hours``): pages redirect to ``/login``, ``/api/*``
  answers 401;
* every POST, PUT, PATCH and DELETE, the login form included, must carry the session's CSRF token (form
  field ``csrf_token`` or header ``X-CSRF-Token``), else 403. The body is read here (up to the upload
  limit; a larger one is 413 before it is read) and replayed to the route unchanged;
* passwords are compared in constant time, and a client that fails too often is refused for a while (429).

Why a middleware rather than a check in each handler: the test in tests/console/test_access.py enumerates
the app's routes; a handler-level check would be one more thing a new route could forget.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSRF_FIELD", "Guard", "LoginLimiter", "csrf_token", "log_in", "password_ok"]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = b"x-csrf-token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPEN_PATHS = ("/login", "/static/")
FORM_OVERHEAD = 64 * 1024  # the other fields of an upload form


def csrf_token(session: dict[str, Any]) -> str:
    """The session's CSRF token, made on first use (an anonymous session gets one for the login form)."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def password_ok(given: str, expected: str) -> bool:
    """Constant-time comparison (of UTF-8 bytes, so any password works)."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def log_in(session: dict[str, Any], now: float) -> None:
    """Mark the session logged in, with a fresh CSRF token (a token seen before login is not reused)."""
    session.clear()
    session["auth_at"] = now
    session[CSRF_FIELD] = secrets.token_urlsafe(32)


class LoginLimiter:
    """At most ``attempts`` failed logins per client address in ``window`` seconds: enough for a person who
    mistypes, far too few to guess a password."""

    def __init__(self, attempts: int = 5, window: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts, self.window, self.clock = attempts, window, clock
        self._failed: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, client: str) -> deque[float]:
        q = self._failed[client]
        while q and q[0] <= self.clock() - self.window:
            q.popleft()
        return q

    def blocked(self, client: str) -> bool:
        with self._lock:
            return len(self._recent(client)) >= self.attempts

    def failed(self, client: str) -> None:
        with self._lock:
            self._recent(client).append(self.clock())

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failed.pop(client, None)


class Guard:
    """Authentication, session expiry, body size and CSRF for every request (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, max_age: float, max_body: int, clock: Callable[[], float] = time.time) -> None:
        self.app, self.max_age, self.max_body, self.clock = app, max_age, max_body, clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        session: dict[str, Any] = scope["session"]
        at = session.get("auth_at")
        fresh = isinstance(at, (int, float)) and 0 <= self.clock() - at < self.max_age
        if at is not None and not fresh:
            session.clear()  # expired: back to the login page, with a new anonymous session
        if not fresh and not path.startswith(OPEN_PATHS):
            if path.startswith("/api/"):
                await _plain(send, 401, "Log in to the console first.", json_body=True)
            else:
                await _redirect(send, "/login")
            return
        if scope["method"] not in UNSAFE:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        limit = self.max_body + FORM_OVERHEAD
        if length is not None and length.isdigit() and int(length) > limit:
            await _plain(send, 413, self._too_large())
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = bool(message.get("more_body"))
            if len(body) > limit:
                await _plain(send, 413, self._too_large())
                return
        data = bytes(body)

        async def replay() -> Message:
            nonlocal data
            chunk, data = data, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        expected = session.get(CSRF_FIELD)
        given = headers.get(CSRF_HEADER, b"").decode("latin-1")
        if not given:
            request = Request(scope, replay)
            try:
                form = await request.form(max_files=4, max_fields=2000)
                value = form.get(CSRF_FIELD)
                given = value if isinstance(value, str) else ""
                await form.close()
            except Exception:  # a body that is no form carries no token
                given = ""
            data = bytes(body)
        if not isinstance(expected, str) or not given or not hmac.compare_digest(given, expected):
            await _plain(send, 403, "The form expired or did not come from this console; reload the page and try again.")
            return
        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return (f"The upload is larger than {self.max_body / 2**20:g} MiB (SHOPBOT_CONSOLE_UPLOAD_MB); "
                "run `shopbot reindex FILE` on the server for a larger catalog.")


async def _plain(send: Send, status: int, text: str, *, json_body: bool = False) -> None:
    body = json.dumps({"error": text}).encode() if json_body else text.encode("utf-8")
    kind = b"application/json" if json_body else b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, to: str) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", to.encode()), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
