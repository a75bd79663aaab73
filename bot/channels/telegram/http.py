"""A lean HTTP/1.1 backend for python-telegram-bot: keep-alive connections on asyncio streams.

Why it exists: the bot's CPU per shopper message was mostly its HTTP client. Through httpx and
httpcore one Bot API call cost 1.5-3 ms of CPU on the 2-core load-test machine (about 5,000 Python
calls per request through httpx, httpcore, anyio and h11; and httpcore's pool looks at every open
connection, with a ``getpeername`` and a ``poll`` system call each, for every request, which grows with
the number of chats being answered at once). A shopper message makes about four calls (a heading and
product cards). The same exchange here costs about 0.15 ms: the request is written in one piece, the
response is read with two stream calls, and idle connections wait in a list behind a semaphore, so a
request never queues inside the pool.

It implements python-telegram-bot's documented extension point (:class:`telegram.request.BaseRequest`),
so everything above it stays the library's: status codes to exceptions, 429 ``retry_after`` (the rate
limiter), JSON parsing. It speaks what the Bot API needs and no more: POST with a JSON body
(``multipart/form-data`` when a file is uploaded), GET for file downloads, responses with
Content-Length, chunked or read to the end, TLS with certifi's certificates as httpx uses, and the
connect / write / read / pool timeouts of :class:`~telegram.request.HTTPXRequest` with the same errors.
Proxies stay httpx's job: :func:`telegram_request` returns an ``HTTPXRequest`` when the environment
configures a proxy for the API's URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import ssl
import time
import urllib.request
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, HTTPXRequest, RequestData

__all__ = ["BotAPIRequest", "telegram_request"]

KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept (httpx's default): servers close idle ones too
_HEADER_LIMIT = 1 << 20  # bytes of response head accepted


class _Origin(NamedTuple):
    scheme: str
    host: str
    port: int


class _Target(NamedTuple):
    origin: _Origin
    host_header: str
    path: str  # path and query, percent-encoded ASCII


@lru_cache(maxsize=512)
def _target(url: str) -> _Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise NetworkError(f"Cannot request {url!r}: only http(s) URLs are supported.")
    default = 443 if scheme == "https" else 80
    port = parts.port or default
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(_Origin(scheme, host, port), shown if port == default else f"{shown}:{port}",
                   quote(path, safe="/:@!$&'()*+,;=?%~-._"))


class _Stale(Exception):
    """A kept-alive connection was closed by the server before it answered: the request was not read."""


class _Connection:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def usable(self, now: float) -> bool:
        return (not self.writer.is_closing() and not self.reader.at_eof()
                and now - self.idle_since < KEEPALIVE_EXPIRY)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class BotAPIRequest(BaseRequest):
    """HTTP/1.1 keep-alive requests to the Bot API (see the module docstring for why and what).

    ``connection_pool_size`` bounds the requests in flight (and the open connections); a request that
    finds them all busy waits up to ``pool_timeout`` and then fails with :class:`TimedOut`, as with
    :class:`~telegram.request.HTTPXRequest`."""

    __slots__ = ("_connect_timeout", "_idle", "_media_write_timeout", "_open", "_pool_timeout",
                 "_read_timeout", "_slots", "_ssl", "_write_timeout", "size")

    def __init__(self, connection_pool_size: int = 32, *, read_timeout: float | None = 5.0,
                 write_timeout: float | None = 5.0, connect_timeout: float | None = 5.0,
                 pool_timeout: float | None = 1.0, media_write_timeout: float | None = 20.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        if connection_pool_size < 1:
            raise ValueError("connection_pool_size must be at least 1")
        self.size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._ssl = ssl_context
        self._slots: asyncio.Semaphore | None = None  # made on first use, inside the running loop
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._open: set[_Connection] = set()

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.size)

    async def shutdown(self) -> None:
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()
        self._slots = None  # a later initialize() may run in another event loop

    @property
    def open_connections(self) -> int:
        return len(self._open)

    # ----------------------------------------------------------------------------- requests

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        files = request_data is not None and request_data.contains_files
        read_t = self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout
        connect_t = self._connect_timeout if isinstance(connect_timeout, DefaultValue) else connect_timeout
        pool_t = self._pool_timeout if isinstance(pool_timeout, DefaultValue) else pool_timeout
        if isinstance(write_timeout, DefaultValue):
            write_t = self._media_write_timeout if files else self._write_timeout
        else:
            write_t = write_timeout
        target = _target(url)
        message = self._message(target, method, request_data)
        if self._slots is None:
            await self.initialize()
        slots = self._slots
        assert slots is not None
        if slots.locked():  # (a free slot is taken at once: no timer to arm and cancel)
            try:
                async with asyncio.timeout(pool_t):
                    await slots.acquire()
            except TimeoutError:
                raise TimedOut("Pool timeout: all connections are busy. The request was not sent to Telegram.") from None
        else:
            await slots.acquire()
        try:
            return await self._exchange(target.origin, message, method, read_t, write_t, connect_t)
        finally:
            slots.release()

    def _message(self, target: _Target, method: str, data: RequestData | None) -> bytes:
        """The whole request (head and body) as bytes: it goes out in one write."""
        head = [f"{method} {target.path} HTTP/1.1\r\nHost: {target.host_header}\r\n"
                f"User-Agent: {self.USER_AGENT}\r\nAccept: application/json\r\nConnection: keep-alive\r\n"]
        body = b""
        if data is not None:
            if data.contains_files:
                boundary = secrets.token_hex(16)
                body = _multipart(boundary, data)
                head.append(f"Content-Type: multipart/form-data; boundary={boundary}\r\n")
            else:
                body = json.dumps(data.parameters, ensure_ascii=False, separators=(",", ":")).encode()
                head.append("Content-Type: application/json\r\n")
        if body or method != "GET":
            head.append(f"Content-Length: {len(body)}\r\n")
        head.append("\r\n")
        return "".join(head).encode("latin-1") + body

    async def _exchange(self, origin: _Origin, message: bytes, method: str, read_t: float | None,
                        write_t: float | None, connect_t: float | None) -> tuple[int, bytes]:
        while True:
            conn = self._checkout(origin)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(origin, connect_t)
            done = False
            try:
                try:
                    conn.writer.write(message)
                    if conn.writer.transport.get_write_buffer_size():  # the socket did not take it all at once
                        async with asyncio.timeout(write_t):
                            await conn.writer.drain()
                except TimeoutError:
                    raise TimedOut("Timed out writing the request to Telegram.") from None
                except (BrokenPipeError, ConnectionResetError):
                    raise _Stale from None
                try:
                    async with asyncio.timeout(read_t):
                        status, body, keep = await _read_response(conn.reader, method)
                except TimeoutError:
                    raise TimedOut("Timed out waiting for Telegram's answer.") from None
                done = True
            except _Stale:
                if reused:
                    continue  # the server had closed this idle connection unread: the request goes on a new one
                raise NetworkError("Telegram closed the connection without answering.") from None
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                raise NetworkError(f"Connection to Telegram failed: {exc!r}") from exc
            finally:
                if done and keep:
                    self._checkin(origin, conn)
                else:  # failed, cancelled halfway, or the server said close: never reused
                    self._discard(conn)
            return status, body

    def _checkout(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to have been closed
            if conn.usable(now):
                return conn
            self._discard(conn)
        return None

    def _checkin(self, origin: _Origin, conn: _Connection) -> None:
        conn.idle_since = time.monotonic()
        idle = self._idle.setdefault(origin, [])
        idle.append(conn)
        # more idle connections than slots can only come from several origins; drop the oldest
        while len(self._open) > self.size and idle:
            self._discard(idle.pop(0))

    def _discard(self, conn: _Connection) -> None:
        conn.close()
        self._open.discard(conn)

    async def _connect(self, origin: _Origin, timeout: float | None) -> _Connection:
        ctx = None
        if origin.scheme == "https":
            if self._ssl is None:
                self._ssl = _ssl_context()
            ctx = self._ssl
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    origin.host, origin.port, ssl=ctx, server_hostname=origin.host if ctx else None,
                    limit=_HEADER_LIMIT)
        except TimeoutError:
            raise TimedOut(f"Timed out connecting to {origin.host}:{origin.port}.") from None
        except OSError as exc:
            raise NetworkError(f"Cannot connect to {origin.host}:{origin.port}: {exc}") from exc
        conn = _Connection(reader, writer)
        self._open.add(conn)
        return conn


async def _read_response(reader: asyncio.StreamReader, method: str) -> tuple[int, bytes, bool]:
    """(status, body, keep the connection) of one HTTP/1.x response."""
    first = True
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if first and not exc.partial:
                raise _Stale from None
            raise
        except ConnectionResetError:
            if first:  # reset before a byte of the answer: the server had closed the connection
                raise _Stale from None
            raise
        first = False
        lines = head[:-4].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1 response: {lines[0][:80]!r}")
        status = int(rest[:3])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if not 100 <= status < 200:  # an interim response (100 Continue): the real one follows
            break
    connection = headers.get("connection", "").lower()
    keep = "close" not in connection and (version != "HTTP/1.0" or "keep-alive" in connection)
    if method == "HEAD" or status in (204, 304):
        return status, b"", keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                break
            chunks.append(await reader.readexactly(size + 2))
        return status, b"".join(c[:-2] for c in chunks), keep
    length = headers.get("content-length")
    if length is not None:
        return status, await reader.readexactly(int(length)), keep
    return status, await reader.read(), False  # delimited by the end of the connection


def _multipart(boundary: str, data: RequestData) -> bytes:
    """``multipart/form-data`` as Telegram takes uploads: the parameters as fields, then the files."""
    out: list[bytes] = []
    for name, value in data.json_parameters.items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"\r\n\r\n'.encode()
                   + value.encode() + b"\r\n")
    for name, (filename, content, mimetype) in data.multipart_data.items():
        raw = content if isinstance(content, bytes) else content.read()
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"; '
                   f'filename="{_quoted(filename)}"\r\nContent-Type: {mimetype}\r\n\r\n'.encode() + raw + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


def _quoted(value: str) -> str:
    """A form-data name or filename as browsers (and httpx) write it: quotes and line breaks escaped."""
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _ssl_context() -> ssl.SSLContext:
    try:
        import certifi
    except ImportError:  # pragma: no cover - httpx depends on certifi
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def _proxied(url: str) -> bool:
    """Whether the environment (HTTPS_PROXY, ALL_PROXY, ... and NO_PROXY) sends ``url`` through a proxy."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


def telegram_request(base_url: str, *, connection_pool_size: int, read_timeout: float | None,
                     write_timeout: float | None, connect_timeout: float | None,
                     pool_timeout: float | None, **_: Any) -> BaseRequest:
    """The backend for a bot talking to ``base_url``: :class:`BotAPIRequest`, or python-telegram-bot's
    httpx one when a proxy is configured for that URL (httpx knows proxies; this backend does not)."""
    if _proxied(base_url):
        return HTTPXRequest(connection_pool_size=connection_pool_size, read_timeout=read_timeout,
                            write_timeout=write_timeout, connect_timeout=connect_timeout, pool_timeout=pool_timeout)
    return BotAPIRequest(connection_pool_size, read_timeout=read_timeout, write_timeout=write_timeout,
                         connect_timeout=connect_timeout, pool_timeout=pool_timeout)
