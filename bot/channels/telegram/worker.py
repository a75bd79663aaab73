"""``shopbot worker``: Telegram updates from the queue, answered by the bot's own handlers, exactly once.

The queue (bot/channels/telegram/queue.py) delivers each update at least once and keeps one chat's
updates in order on one shard. This module adds the rest of "exactly one answer per update":

* **The same bot as polling.** The worker runs the real python-telegram-bot ``Application`` of
  :class:`~bot.channels.telegram.bot.ShopBot` (initialised and started, no polling, no webhook server)
  and hands it each update with ``process_update``, so handlers, rendering, flood control and the Bot
  API calls are exactly those of ``shopbot telegram``.
* **Acknowledged only when every reply is out.** ``process_update`` returns when the handler returns;
  a handler may leave work in tasks (a handoff's notice to the admins). Every task created while an
  update is handled is tracked (a task factory reads a context variable) and awaited before the update
  is recorded and acknowledged.
* **Recorded in SQL, keyed on update_id.** Before handling, an update already recorded is acknowledged
  and skipped (Telegram sent it twice, or a worker died after answering and before acknowledging).
  After handling, it is recorded, and only then acknowledged.
* **A journal against a half-sent reply.** A worker killed between sending a reply and recording the
  update leaves an unrecorded update that another worker handles again; a reply is often several
  messages, and the kill may come after some of them. So every Bot API call made for an update is
  journaled in Redis the moment its answer arrives, before the handler goes on; the worker that handles
  the update again answers a call that is the same as one already made (same method, chat and text;
  button data may differ, since it carries the new turn's id) from the journal instead of sending it.
  The window in which a kill doubles a message is therefore one Redis write after one Bot API answer,
  however long the turn or the SQL record takes (the record runs in a thread: a PostgreSQL commit took
  10 ms under load, and on the event loop it would stall every other shard of the worker). A kill in
  that window, or a re-run that words a message differently (the language model's text), sends it
  again; nothing is ever lost for it.
* **Errors.** A failure the next try may not have (the Bot API or the database unreachable, a timeout)
  leaves the update unacknowledged and retries it with backoff (the journal keeps what was sent); any
  other failure (a bug, a refused request) is logged, recorded and acknowledged as failed, so that one
  bad update cannot block its shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Generator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.exceptions import RedisError
from telegram import Update
from telegram._utils.defaultvalue import DEFAULT_NONE
from telegram._utils.types import ODVInput
from telegram.error import BadRequest, ChatMigrated, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter
from telegram.ext import Application, ContextTypes
from telegram.request import BaseRequest, RequestData

from bot.channels.telegram.queue import Delivery, ShardConsumer
from bot.observability.logs import bind_turn_id
from bot.observability.metrics import ERRORS, QUEUE_DEPTH, QUEUE_REDELIVERIES, UPDATES
from bot.store.records import StoreUnavailable

__all__ = ["HandledLog", "JournalRequest", "Worker", "request_key"]

log = logging.getLogger(__name__)

READ_BLOCK = 1.0  # seconds a shard's read waits for new updates (also how soon a stop is noticed)
BATCH = 4  # updates read from a shard at once (all are handled before the shard can be given back)
BACKGROUND_WAIT = 30.0  # seconds to wait for tasks an update left running (a reindex note may take long)
# seconds an update that keeps failing in a way that may pass (the Bot API unreachable) is tried again before
# it is given up as failed: long enough for an outage, short enough that a misjudged bug cannot stall a shard
GIVE_UP_SECONDS = 300.0
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)
DRAIN_SECONDS = 30.0  # on SIGTERM, how long updates being handled may take to finish
# Bot API methods worth no journal entry: reads, the typing action, the bot's own set-up
_NOT_JOURNALED = {"sendChatAction", "setMyCommands", "deleteMyCommands", "setWebhook", "deleteWebhook", "logOut",
                  "close"}


class HandledLog(Protocol):
    """The SQL record of answered updates (:class:`bot.store.database.Store` has it)."""

    def update_handled(self, update_id: int) -> bool: ...

    def mark_update_handled(self, update_id: int) -> bool: ...


@dataclass
class _Run:
    """One try at one update: what the journal already holds, and what happened meanwhile."""

    delivery: Delivery
    sent: dict[str, bytes]
    consumer: ShardConsumer
    calls: Counter[str] = field(default_factory=Counter)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    replayed: int = 0

    def key(self, endpoint: str, data: RequestData | None) -> str | None:
        k = request_key(endpoint, data)
        if k is None:
            return None
        self.calls[k] += 1
        return f"{k}:{self.calls[k]}"  # the second identical call of one reply is a message of its own

    async def record(self, key: str, answer: bytes) -> None:
        self.sent[key] = answer
        await self.consumer.record_sent(self.delivery.update_id, key, answer)

    async def settle(self, timeout: float) -> None:
        """Wait for the tasks this update started (and the tasks they started) to finish."""
        deadline = time.monotonic() + timeout
        while True:
            running = [t for t in self.tasks if not t.done()]
            left = deadline - time.monotonic()
            if not running:
                return
            if left <= 0:
                log.warning("Update %s left %d task(s) running after %.0f s; acknowledging it anyway.",
                            self.delivery.update_id, len(running), timeout)
                return
            await asyncio.wait(running, timeout=left)


_RUN: ContextVar[_Run | None] = ContextVar("shopbot_update_run", default=None)


def request_key(endpoint: str, data: RequestData | None) -> str | None:
    """What makes two Bot API calls the same message to the shopper: the method and its parameters, with
    the buttons' callback data left out (it carries the turn's id, new on every try; the labels stay).
    None for calls that are never journaled (uploads of a file, whose parts are named at random)."""
    if endpoint in _NOT_JOURNALED or endpoint.startswith("get") or (data is not None and data.contains_files):
        return None
    params = dict(data.parameters) if data is not None else {}
    markup = params.get("reply_markup")
    if isinstance(markup, dict) and isinstance(markup.get("inline_keyboard"), list):
        params["reply_markup"] = [[b.get("text") if isinstance(b, dict) else b for b in row]
                                  for row in markup["inline_keyboard"] if isinstance(row, list)]
    blob = json.dumps([endpoint, params], sort_keys=True, ensure_ascii=False, default=str).encode()
    return f"{endpoint}:{hashlib.sha256(blob).hexdigest()[:24]}"


class JournalRequest(BaseRequest):
    """The bot's HTTP backend with the journal in front: inside an update, a call already answered on an
    earlier try is answered from the journal, and every new answer is journaled before the handler goes on."""

    __slots__ = ("inner",)

    def __init__(self, inner: BaseRequest) -> None:
        self.inner = inner

    @property
    def read_timeout(self) -> float | None:
        return self.inner.read_timeout

    async def initialize(self) -> None:
        await self.inner.initialize()

    async def shutdown(self) -> None:
        await self.inner.shutdown()

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: ODVInput[float] = DEFAULT_NONE, write_timeout: ODVInput[float] = DEFAULT_NONE,
                         connect_timeout: ODVInput[float] = DEFAULT_NONE,
                         pool_timeout: ODVInput[float] = DEFAULT_NONE) -> tuple[int, bytes]:
        run = _RUN.get()
        key = run.key(url.rsplit("/", 1)[-1], request_data) if run is not None and method == "POST" else None
        if run is not None and key is not None and key in run.sent:
            run.replayed += 1
            return 200, run.sent[key]
        status, payload = await self.inner.do_request(url, method, request_data, read_timeout, write_timeout,
                                                      connect_timeout, pool_timeout)
        if run is not None and key is not None and 200 <= status < 300:
            await run.record(key, payload)  # first thing after the answer: the window for a double is this call
        return status, payload


def _may_pass(exc: BaseException) -> bool:
    """Whether trying the update again may succeed (an outage), rather than fail the same way (a bug, a refusal)."""
    if isinstance(exc, BadRequest | Forbidden | InvalidToken | ChatMigrated | Conflict):
        return False
    return isinstance(exc, NetworkError | RetryAfter | StoreUnavailable | RedisError | TimeoutError | ConnectionError)


def track_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Make every task created while an update is handled known to that update's run (see :class:`_Run`)."""
    previous = loop.get_task_factory()

    def factory(loop: asyncio.AbstractEventLoop, coro: Generator[Any, None, Any] | Coroutine[Any, Any, Any],
                **kwargs: Any) -> asyncio.Future[Any]:
        task = previous(loop, coro, **kwargs) if previous is not None else asyncio.Task(coro, loop=loop, **kwargs)
        run = _RUN.get()
        if run is not None and isinstance(task, asyncio.Task):
            run.tasks.append(task)
        return task

    loop.set_task_factory(factory)


class Worker:
    """Serves the shards its consumer holds: one update at a time per shard, shards side by side."""

    def __init__(self, app: Application, handled: HandledLog, consumer: ShardConsumer, *,  # type: ignore[type-arg]
                 lease_seconds: float, concurrency: int = 8, depth: Callable[[], Coroutine[Any, Any, dict[int, int]]] | None = None,
                 read_block: float = READ_BLOCK, backoff: tuple[float, ...] = BACKOFF,
                 give_up_seconds: float = GIVE_UP_SECONDS,
                 drain_seconds: float = DRAIN_SECONDS) -> None:
        self.app = app
        self.handled = handled
        self.consumer = consumer
        self.tick = max(0.05, lease_seconds / 3)  # three renewals per lease: one missed renewal costs nothing
        self.read_block = min(read_block, self.tick)
        self.backoff = backoff
        self.give_up_seconds = give_up_seconds
        self.drain_seconds = drain_seconds
        self.depth = depth
        self.outcomes: Counter[str] = Counter()
        self.replayed = 0  # Bot API calls answered from the journal instead of being sent again
        self.doubled = 0  # updates another worker recorded while this one handled them too (a lease lost mid-update)
        self._slots = asyncio.Semaphore(concurrency)
        self._serving: dict[int, asyncio.Task[None]] = {}
        self._leaving: set[int] = set()
        self._stop = asyncio.Event()
        self._redeliveries_seen = 0
        self._installed = False
        self._tracked: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------------------ set-up

    def install(self) -> None:
        """Journal the bot's Bot API calls and hear about its errors (call once, before the app starts)."""
        if self._installed:
            return
        bot = self.app.bot
        # the bot's HTTP backend is fixed when the bot is built; python-telegram-bot freezes its objects,
        # and _unfrozen is how the library itself changes one afterwards
        with bot._unfrozen():
            bot._request = (bot._request[0], JournalRequest(bot._request[1]))
        self.app.add_error_handler(self._on_error)
        self._installed = True

    def _track(self) -> None:
        loop = asyncio.get_running_loop()
        if self._tracked is not loop:
            track_tasks(loop)
            self._tracked = loop

    @staticmethod
    async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        run = _RUN.get()
        if run is not None and context.error is not None:
            run.errors.append(context.error)

    def stop(self) -> None:
        """Stop taking updates; those being handled finish (``run`` then releases the leases and returns)."""
        self._stop.set()

    # ------------------------------------------------------------------------------ running

    async def run(self) -> None:
        """Balance shards every tick until :meth:`stop`, then drain and give every lease back."""
        self.install()
        self._track()
        try:
            while not self._stop.is_set():
                await self._balance()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.tick)
            await self._drain()
        finally:
            with contextlib.suppress(RedisError, OSError):
                await self.consumer.close()

    async def _balance(self) -> None:
        try:
            change = await self.consumer.balance()
        except (RedisError, OSError) as exc:
            log.warning("The broker did not answer (%s); retrying.", exc)
            return
        for shard in change.stopping:
            self._leaving.add(shard)
        for shard in change.started:
            self._leaving.discard(shard)
            if shard not in self._serving:
                self._serving[shard] = asyncio.create_task(self._serve(shard), name=f"shard-{shard}")
        fresh = self.consumer.redeliveries - self._redeliveries_seen
        if fresh > 0:
            QUEUE_REDELIVERIES.inc(fresh)
            self._redeliveries_seen = self.consumer.redeliveries
        if self.depth is not None:
            await self._report_depth()

    async def _report_depth(self) -> None:
        assert self.depth is not None
        with contextlib.suppress(RedisError, OSError):
            for shard, n in (await self.depth()).items():
                QUEUE_DEPTH.labels(str(shard)).set(n)

    async def _drain(self) -> None:
        deadline = time.monotonic() + self.drain_seconds
        while self._serving and time.monotonic() < deadline:
            await asyncio.wait(list(self._serving.values()), timeout=self.tick)
            with contextlib.suppress(RedisError, OSError):
                await self.consumer.renew()  # an update longer than a lease keeps its shard
        for task in list(self._serving.values()):  # past the deadline: its update stays queued for another worker
            task.cancel()
        if self._serving:
            await asyncio.wait(list(self._serving.values()), timeout=1.0)

    def _serving_shard(self, shard: int) -> bool:
        return self.consumer.holds(shard) and shard not in self._leaving and not self._stop.is_set()

    async def _serve(self, shard: int) -> None:
        try:
            while self._serving_shard(shard):
                try:
                    batch = await self.consumer.fetch(shard, count=BATCH, block_seconds=self.read_block)
                except (RedisError, OSError) as exc:
                    log.warning("Reading shard %d failed (%s); retrying.", shard, exc)
                    await asyncio.sleep(self.tick)
                    continue
                for delivery in batch:
                    if not self.consumer.holds(shard):
                        break  # the lease is gone: the worker that holds it now takes what is left
                    async with self._slots:
                        await self.handle(delivery)
        except Exception:  # a bug here: give the shard back, so that its next holder starts from what is pending
            log.exception("Serving shard %d failed; giving it back.", shard)
        finally:
            self._serving.pop(shard, None)
            if self.consumer.holds(shard):
                with contextlib.suppress(RedisError, OSError):
                    await self.consumer.release(shard)
            self._leaving.discard(shard)

    # ---------------------------------------------------------------------------- one update

    async def handle(self, delivery: Delivery) -> str:
        """Answer one delivered update exactly once; returns the outcome (handled, duplicate or failed)."""
        self._track()
        with bind_turn_id(delivery.turn_id or None):
            outcome = await self._handle(delivery)
        self.outcomes[outcome] += 1
        UPDATES.labels(outcome).inc()
        return outcome

    async def _handle(self, d: Delivery) -> str:
        sent: dict[str, bytes] | None = None
        tries = 0
        give_up_at = time.monotonic() + self.give_up_seconds
        while True:
            tries += 1
            try:
                if await asyncio.to_thread(self.handled.update_handled, d.update_id):
                    await self._ack(d)
                    return "duplicate"
                if sent is None:  # only a redelivered update can have sent something before
                    sent = await self.consumer.journal(d.update_id) if d.attempt > 1 else {}
            except (StoreUnavailable, RedisError, OSError) as exc:
                await self._pause(d, tries, exc)
                continue
            run = _Run(d, sent, self.consumer)
            await self._process(run)
            self.replayed += run.replayed
            failure = run.errors[0] if run.errors else None
            if failure is not None and _may_pass(failure) and time.monotonic() < give_up_at:
                await self._pause(d, tries, failure)
                continue
            await self._mark(d)
            if failure is not None:  # a handler's exception is counted by the bot's own error handler
                log.error("Update %s failed and is given up (%s: %s).", d.update_id, type(failure).__name__, failure)
            await self._ack(d)
            return "failed" if failure is not None else "handled"

    async def _process(self, run: _Run) -> None:
        token = _RUN.set(run)
        try:
            update = Update.de_json(json.loads(run.delivery.update_json), self.app.bot)
            await self.app.process_update(update)
        except Exception as exc:  # a body python-telegram-bot cannot read: no handler ever sees it
            ERRORS.labels("bad_update").inc()
            run.errors.append(exc)
        finally:
            _RUN.reset(token)
        await run.settle(BACKGROUND_WAIT)

    async def _mark(self, d: Delivery) -> None:
        """Record the update as answered; while the database is away, try again until it is back (an
        unrecorded update is never acknowledged; a stop leaves it queued, and the journal keeps its
        messages from going out twice). In a thread: a commit takes milliseconds (measured: 10 ms on
        PostgreSQL with other turns running), which would stall every other shard of this worker."""
        tries = 0
        while True:
            tries += 1
            try:
                first = await asyncio.to_thread(self.handled.mark_update_handled, d.update_id)
            except StoreUnavailable as exc:
                await self._pause(d, tries, exc)
                continue
            if not first:
                self.doubled += 1
                log.warning("Update %s was answered by another worker too (its lease ran out meanwhile).", d.update_id)
            return

    async def _ack(self, d: Delivery) -> None:
        for wait in (*self.backoff, None):
            try:
                await self.consumer.ack(d)
                return
            except (RedisError, OSError) as exc:
                if wait is None:  # left pending: the shard's next holder handles it (the SQL record skips it)
                    log.error("Cannot acknowledge update %s (%s).", d.update_id, exc)
                    return
                await asyncio.sleep(wait)

    async def _pause(self, d: Delivery, tries: int, exc: BaseException) -> None:
        wait = self.backoff[min(tries - 1, len(self.backoff) - 1)]
        log.warning("Update %s: %s (%s); trying again in %.1f s.", d.update_id, type(exc).__name__, exc, wait)
        await asyncio.sleep(wait)
