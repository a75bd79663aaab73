"""``shopbot receiver``: Telegram's webhook, answered at once, with every accepted update on the queue.

Telegram posts an update and waits for a 2xx; anything else (or no answer) makes it post the same
update again later. So the receiver answers 200 only after the update is on the durable queue
(bot/channels/telegram/queue.py), and does nothing slow: no dialogue, no database. What it answers:

* 200: queued, or the same update id was queued a moment ago (Telegram retried, or two receivers got it);
* 403: the secret token header is missing or wrong (not Telegram; nothing is queued);
* 400: the body is not an update (not a JSON object with an integer ``update_id``); logged once;
* 413: the body is larger than ``MAX_BODY`` (1 MiB; a real update is a few kilobytes); nothing is read past it;
* 503: the broker cannot take the update; Telegram retries, so nothing accepted is lost.

The same port answers /healthz, /readyz (the broker answers) and /metrics (bot/observability/http.py).
A turn id is made for every update here and travels with it, so the receiver's and the worker's log
lines about one message can be joined.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Callable, Mapping
from http.client import responses
from typing import Any

import tornado.web
from redis.exceptions import RedisError

from bot.channels.telegram.queue import UpdateQueue
from bot.observability.http import OPS_PATHS, ops_response
from bot.observability.logs import bind_turn_id, new_turn_id
from bot.observability.metrics import ERRORS, UPDATES

__all__ = ["SECRET_HEADER", "BadUpdate", "Receiver", "chat_key", "parse_update"]

log = logging.getLogger(__name__)

# bandit B105 is a false positive: a header name, not a secret
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # nosec B105
MAX_BODY = 1024 * 1024  # bytes; an update is a few kilobytes (Telegram sends file ids, never files)


class BadUpdate(ValueError):
    """A body that is not a Telegram update, in one phrase for the log."""


def chat_key(update: Mapping[str, Any]) -> int | None:
    """The chat an update belongs to, which decides its shard (and so its order): the chat of a message,
    an edit, a channel post or a member change; the chat under a pressed button; else the user (an inline
    button, a query), whose private chat has the same id. None when the update names neither."""
    user: int | None = None
    for name, value in update.items():
        if name == "update_id" or not isinstance(value, dict):
            continue
        for holder in (value, value.get("message")):
            chat = holder.get("chat") if isinstance(holder, dict) else None
            if isinstance(chat, dict) and _is_int(chat.get("id")):
                return int(chat["id"])
        sender = value.get("from") or value.get("user")
        if user is None and isinstance(sender, dict) and _is_int(sender.get("id")):
            user = int(sender["id"])
    return user


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_update(body: bytes) -> tuple[int, int | None]:
    """(update_id, chat key) of a webhook body; BadUpdate when it is not an update."""
    try:
        update = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: arrays nested 100,000 deep
        raise BadUpdate("the body is not JSON") from None
    if not isinstance(update, dict):
        raise BadUpdate("the body is not a JSON object")
    update_id = update.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool) or update_id < 0:
        raise BadUpdate("no integer update_id")
    return update_id, chat_key(update)


class Receiver:
    """The webhook's decisions, apart from HTTP (:meth:`accept`), and the tornado application serving them."""

    def __init__(self, queue: UpdateQueue, secret: str, *, path: str = "/telegram",
                 ready: Callable[[], Mapping[str, bool]] | None = None) -> None:
        if not secret:
            raise ValueError("a webhook receiver needs a secret token")
        self.queue = queue
        self.secret = secret.encode()
        self.path = "/" + path.strip("/")
        self.ready = ready or (lambda: {})
        self.broker_down = False

    async def accept(self, body: bytes, secret: str | None) -> int:
        """The HTTP status for one webhook call; the update is queued exactly when this returns 200 for it."""
        if secret is None or not hmac.compare_digest(secret.encode(), self.secret):
            UPDATES.labels("rejected").inc()
            log.info("Refused a webhook call without the right secret token (403).")
            return 403
        try:
            update_id, chat = parse_update(body)
        except BadUpdate as exc:
            UPDATES.labels("rejected").inc()
            ERRORS.labels("bad_update").inc()
            log.warning("Refused a webhook call whose body is not an update: %s (%d bytes; 400).", exc, len(body))
            return 400
        turn_id = new_turn_id()
        with bind_turn_id(turn_id):
            try:
                queued = await self.queue.publish(body, chat, turn_id, update_id=update_id)
            except (RedisError, OSError) as exc:
                ERRORS.labels("broker_down").inc()
                if not self.broker_down:  # said once per outage, not once per retried update
                    log.error("The broker cannot take updates (%s); answering 503 so that Telegram retries.", exc)
                self.broker_down = True
                return 503
            if self.broker_down:
                log.warning("The broker takes updates again.")
                self.broker_down = False
            UPDATES.labels("queued" if queued else "duplicate").inc()
            if not queued:
                log.info("Update %s arrived again; it is queued once.", update_id)
        return 200

    def application(self) -> tornado.web.Application:
        """The tornado app: POST the update to :attr:`path`; GET /healthz, /readyz and /metrics."""
        routes: list[Any] = [(self.path, _UpdateHandler, {"receiver": self})]
        routes += [(p, _OpsHandler, {"ready": self.ready}) for p in OPS_PATHS]
        # tornado's access log would say every 4xx again; what matters is logged once, above
        return tornado.web.Application(routes, log_function=lambda _handler: None)

    def listen(self, address: str, port: int) -> Any:
        """Start serving on the running event loop; returns tornado's HTTPServer (``stop()`` it to close)."""
        # the connection's own limit only backs the handler's (tornado answers a plain 400 past it)
        return self.application().listen(port, address=address, max_body_size=_CONNECTION_LIMIT)


_CONNECTION_LIMIT = 8 * MAX_BODY


@tornado.web.stream_request_body
class _UpdateHandler(tornado.web.RequestHandler):
    """Reads the body itself, so that one over ``MAX_BODY`` gets a clear 413 (tornado's own limit closes the
    connection with a bare 400, which tells the sender nothing) and is never held in memory: the rest of
    it is read and dropped, so that the sender is still reading when the 413 comes."""

    def initialize(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.chunks: list[bytes] = []
        self.size = 0

    def data_received(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > MAX_BODY:
            self.chunks.clear()
        else:
            self.chunks.append(chunk)

    async def post(self) -> None:
        if self.size > MAX_BODY:
            UPDATES.labels("rejected").inc()
            ERRORS.labels("bad_update").inc()
            log.warning("Refused a webhook call whose body is over %d bytes (%d bytes; 413).", MAX_BODY, self.size)
            self.set_status(413)
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(f"The update is larger than {MAX_BODY} bytes.")
            return
        status = await self.receiver.accept(b"".join(self.chunks), self.request.headers.get(SECRET_HEADER))
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(responses.get(status, "") if status != 200 else "")


class _OpsHandler(tornado.web.RequestHandler):
    def initialize(self, ready: Callable[[], Mapping[str, bool]]) -> None:
        self.ready = ready

    async def get(self) -> None:
        # readiness checks block (each in a thread, with a timeout): never on the loop that takes updates
        answer = await asyncio.to_thread(ops_response, self.request.path, self.ready)
        status, content_type, body = answer or (404, "application/json", b'{"error": "not found"}')
        self.set_status(status)
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "no-store")
        self.finish(body)
