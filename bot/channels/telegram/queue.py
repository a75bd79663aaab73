"""The durable queue between webhook receivers (``shopbot receiver``) and workers (``shopbot worker``).

Telegram posts each update once and retries only when it does not get a 2xx, so an update must be on
durable storage before the receiver answers, and it must survive the worker that handles it. The queue
is Redis Streams behind two small interfaces (:class:`UpdateQueue`, :class:`ShardConsumer`), so that
another broker could replace it without the receiver or the worker changing:

* **Shards by chat.** ``queue_shards`` streams ``{prefix}:updates:{i}``; a chat always lands on the same
  shard (:func:`shard_of`, a stable hash), so its updates stay in the order they arrived.
* **One worker per shard at a time.** A worker serves a shard only while it holds its lease
  (``SET {prefix}:lease:{i} <worker> NX PX``), renews it with a compare-and-set script and deletes it
  when it stops cleanly. Workers announce themselves with heartbeat keys (``{prefix}:worker:<id>``,
  TTL = the lease) and each takes free shards up to ``ceil(shards / live workers)``, giving back what is
  above that share, so the shards spread evenly and a dead worker's shards are taken over once its
  leases expire.
* **At least once, in order.** One consumer group per shard; an update is acknowledged (and deleted
  from the stream) only after the worker has fully handled it. A worker that takes a shard over first
  claims the shard's pending entries (XPENDING, then XCLAIM: the redelivery is counted) and handles
  them before any new one.
* **Exactly once on top** is the worker's job (``bot/channels/telegram/worker.py``): the update id is
  recorded in SQL when it is handled; the receiver also drops a repeated update id cheaply
  (``SET {prefix}:seen:<update_id> NX`` in the same script as the XADD, so a failed XADD never leaves a
  "seen" mark behind that would drop Telegram's retry).
* **A journal of sent messages** per update (``{prefix}:sent:<update_id>``, a hash): what a worker
  killed halfway through a reply had already sent, so that the worker that handles the update again
  does not send it twice. Deleted with the acknowledgement.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from redis.retry import Retry

__all__ = [
    "DEFAULT_PREFIX",
    "GROUP",
    "Balance",
    "Delivery",
    "RedisShardConsumer",
    "RedisUpdateQueue",
    "ShardConsumer",
    "UpdateQueue",
    "connect",
    "default_worker_id",
    "key_patterns",
    "shard_of",
]

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "shopbot"
GROUP = "workers"
SEEN_SECONDS = 600  # Telegram retries a failed webhook within minutes; the SQL record catches anything later
JOURNAL_SECONDS = 86_400  # a journal outlives any redelivery; deleted with the acknowledgement anyway
CLAIM_BATCH = 100

# the "seen" mark and the XADD in one step: either both happen or neither (a retry must not look like a repeat)
_PUBLISH = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], '*', 'update', ARGV[2], 'update_id', ARGV[3], 'turn', ARGV[4], 'chat', ARGV[5])
end
return false
"""
# renew each lease still ours; 1 per key renewed, 0 per key lost to another worker (or expired)
_RENEW = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def shard_of(chat_key: int | None, shards: int) -> int:
    """The shard of a chat: a stable hash (the same in every process and after a restart); 0 without a chat."""
    if chat_key is None:
        return 0
    return zlib.crc32(str(int(chat_key)).encode()) % shards


def connect(url: str, *, timeout: float = 2.0, block_seconds: float = 0.0) -> Redis:
    """A Redis client that fails fast: a broker that is down must turn into a 503 or a clear start-up
    error within ``timeout`` seconds, not after redis-py's default retries with backoff. A client that
    blocks on reads (XREADGROUP BLOCK) needs a socket timeout above ``block_seconds``."""
    return Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout + block_seconds,
                          retry=Retry(NoBackoff(), 1), health_check_interval=30)


@dataclass(frozen=True)
class Delivery:
    """One queued update handed to a worker. ``attempt`` counts deliveries (1 the first time): above 1,
    an earlier worker may have answered part of it, so its journal is worth reading."""

    shard: int
    entry_id: str
    update_id: int
    update_json: bytes
    turn_id: str
    attempt: int = 1


@dataclass
class Balance:
    """What a worker must change after a balancing round: start serving ``started``, stop serving
    ``stopping`` (leases lost, or shards above its share, to give back once their current update is done)."""

    started: list[int] = field(default_factory=list)
    stopping: list[int] = field(default_factory=list)


class UpdateQueue(Protocol):
    """What the receiver and the operators need of the queue."""

    shards: int

    async def publish(self, update_json: bytes, chat_key: int | None, turn_id: str, *, update_id: int) -> bool:
        """Queue an update durably; False when the same update id was queued a moment ago (not queued again).
        Raises when the broker cannot take it (the receiver answers 503 and Telegram retries)."""
        ...

    def consumer(self, worker_id: str) -> ShardConsumer: ...

    async def depth(self) -> dict[int, int]:
        """Updates not yet acknowledged, per shard."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class ShardConsumer(Protocol):
    """What a worker needs: which shards to serve, their updates in order, and the acknowledgement."""

    worker_id: str
    redeliveries: int

    def holds(self, shard: int) -> bool: ...

    async def balance(self) -> Balance:
        """Announce this worker, renew its leases, take free shards up to its share, name the surplus."""
        ...

    async def renew(self) -> list[int]:
        """Renew the leases held; returns the shards lost (stop serving them at once)."""
        ...

    async def fetch(self, shard: int, *, count: int, block_seconds: float) -> list[Delivery]:
        """The shard's next updates in order: first what another worker left unacknowledged, then new ones."""
        ...

    async def journal(self, update_id: int) -> dict[str, bytes]:
        """What was sent for this update before (field -> the Bot API's answer)."""
        ...

    async def record_sent(self, update_id: int, key: str, answer: bytes) -> None: ...

    async def ack(self, delivery: Delivery) -> None:
        """The update is fully handled: gone from the queue (and its journal with it)."""
        ...

    async def release(self, shard: int) -> None: ...

    async def close(self) -> None:
        """Release every lease and stop announcing this worker."""
        ...


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def _delivery(shard: int, entry_id: Any, fields: Mapping[Any, Any], attempt: int) -> Delivery | None:
    f = {_text(k): v for k, v in fields.items()}
    try:
        return Delivery(shard, _text(entry_id), int(_text(f["update_id"])), bytes(f["update"]),
                        _text(f.get("turn") or b""), attempt)
    except (KeyError, ValueError, TypeError):
        return None


class RedisUpdateQueue:
    """:class:`UpdateQueue` on Redis Streams; every key starts with ``prefix`` (several bots, or test
    runs, can share one Redis)."""

    def __init__(self, redis: Redis, *, shards: int, prefix: str = DEFAULT_PREFIX, lease_seconds: float = 5.0,
                 seen_seconds: float = SEEN_SECONDS) -> None:
        self.redis = redis
        self.shards = shards
        self.prefix = prefix
        self.lease_seconds = lease_seconds
        self.seen_ms = int(seen_seconds * 1000)
        self._publish = redis.register_script(_PUBLISH)

    @classmethod
    def from_url(cls, url: str, *, shards: int, prefix: str = DEFAULT_PREFIX, lease_seconds: float = 5.0,
                 timeout: float = 2.0, block_seconds: float = 0.0) -> RedisUpdateQueue:
        return cls(connect(url, timeout=timeout, block_seconds=block_seconds), shards=shards, prefix=prefix,
                   lease_seconds=lease_seconds)

    def stream(self, shard: int) -> str:
        return f"{self.prefix}:updates:{shard}"

    def lease_key(self, shard: int) -> str:
        return f"{self.prefix}:lease:{shard}"

    def worker_key(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{worker_id}"

    def seen_key(self, update_id: int) -> str:
        return f"{self.prefix}:seen:{update_id}"

    def journal_key(self, update_id: int) -> str:
        return f"{self.prefix}:sent:{update_id}"

    async def publish(self, update_json: bytes, chat_key: int | None, turn_id: str, *, update_id: int) -> bool:
        shard = shard_of(chat_key, self.shards)
        entry = await self._publish(keys=[self.seen_key(update_id), self.stream(shard)],
                                    args=[self.seen_ms, update_json, update_id, turn_id,
                                          "" if chat_key is None else chat_key])
        return entry is not None

    def consumer(self, worker_id: str) -> RedisShardConsumer:
        return RedisShardConsumer(self, worker_id)

    async def depth(self) -> dict[int, int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for i in range(self.shards):
                pipe.xlen(self.stream(i))
            lengths = await pipe.execute()
        return {i: int(n) for i, n in enumerate(lengths)}

    async def pending(self) -> dict[int, int]:
        """Entries handed to a worker and not yet acknowledged, per shard (0 where no group exists yet)."""
        out: dict[int, int] = {}
        for i in range(self.shards):
            try:
                info = await self.redis.xpending(self.stream(i), GROUP)
            except ResponseError:  # no stream or no group yet: nothing pending
                out[i] = 0
                continue
            out[i] = int(info["pending"])
        return out

    async def ping(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        await self.redis.aclose()


class RedisShardConsumer:
    """:class:`ShardConsumer` on Redis: leases, fair share, pending-first reads, acknowledgements."""

    def __init__(self, queue: RedisUpdateQueue, worker_id: str) -> None:
        self.queue = queue
        self.redis = queue.redis
        self.worker_id = worker_id
        self.lease_ms = max(1, int(queue.lease_seconds * 1000))
        self.redeliveries = 0  # updates this worker took over from a worker that stopped before acknowledging
        self._held: set[int] = set()
        self._leaving: set[int] = set()
        self._recover: set[int] = set()  # shards whose pending entries must be claimed before new reads
        self._renew = self.redis.register_script(_RENEW)
        self._release = self.redis.register_script(_RELEASE)
        # workers race for free shards; starting each one's search elsewhere spreads the first grab
        self._offset = zlib.crc32(worker_id.encode()) % queue.shards

    @property
    def held(self) -> frozenset[int]:
        return frozenset(self._held)

    def holds(self, shard: int) -> bool:
        return shard in self._held

    async def live_workers(self) -> int:
        """Workers whose heartbeat has not expired (this one included)."""
        n = 0
        async for _ in self.redis.scan_iter(match=self.queue.worker_key("*"), count=1000):
            n += 1
        return max(1, n)

    async def renew(self) -> list[int]:
        if not self._held:
            return []
        shards = sorted(self._held)
        kept = await self._renew(keys=[self.queue.lease_key(s) for s in shards], args=[self.worker_id, self.lease_ms])
        lost = [s for s, ok in zip(shards, kept, strict=True) if not int(ok)]
        for s in lost:
            self._held.discard(s)
            self._leaving.discard(s)
            self._recover.discard(s)
        return lost

    async def balance(self) -> Balance:
        await self.redis.set(self.queue.worker_key(self.worker_id), "1", px=self.lease_ms)
        out = Balance(stopping=await self.renew())
        share = math.ceil(self.queue.shards / await self.live_workers())
        serving = self._held - self._leaving
        if len(serving) > share:  # give back the surplus, highest shards first (any choice is as good)
            surplus = sorted(serving, reverse=True)[: len(serving) - share]
            self._leaving.update(surplus)
            out.stopping.extend(surplus)
        elif len(self._held) < share:
            want = share - len(self._held)
            for i in range(self.queue.shards):
                if want == 0:
                    break
                shard = (self._offset + i) % self.queue.shards
                if shard in self._held:
                    continue
                if await self.redis.set(self.queue.lease_key(shard), self.worker_id, nx=True, px=self.lease_ms):
                    await self._ensure_group(shard)
                    self._held.add(shard)
                    self._recover.add(shard)
                    out.started.append(shard)
                    want -= 1
        return out

    async def _ensure_group(self, shard: int) -> None:
        try:
            # from the stream's start: entries queued before any worker existed are served too
            await self.redis.xgroup_create(self.queue.stream(shard), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def fetch(self, shard: int, *, count: int, block_seconds: float) -> list[Delivery]:
        if shard in self._recover:
            claimed = await self._claim_pending(shard)
            if claimed:
                return claimed
            self._recover.discard(shard)
        block_ms = max(1, int(block_seconds * 1000))
        try:
            answer: Any = await self.redis.xreadgroup(GROUP, self.worker_id, {self.queue.stream(shard): ">"},
                                                 count=count, block=block_ms)
        except ResponseError as exc:  # the stream was deleted (an operator's clean-up): make the group again
            if "NOGROUP" not in str(exc):
                raise
            await self._ensure_group(shard)
            return []
        except (RedisError, OSError):
            # the read may have been served and its answer lost (Redis stopped right after it, a timeout): the
            # entries it handed out are pending for this worker, and ">" never hands them out again
            self._lost_read(shard)
            raise
        out: list[Delivery] = []
        for _stream, entries in answer or []:
            for entry_id, fields in entries:
                d = _delivery(shard, entry_id, fields, 1)
                if d is None:
                    await self._drop(shard, entry_id)
                else:
                    out.append(d)
        return out

    async def _claim_pending(self, shard: int) -> list[Delivery]:
        """The shard's unacknowledged entries, oldest first, made this worker's: they come before anything new.
        Entries of another consumer count as redeliveries; this worker's own (read before it gave the shard
        back and took it again) do not."""
        stream = self.queue.stream(shard)
        pending: Any = await self.redis.xpending_range(stream, GROUP, min="-", max="+", count=CLAIM_BATCH)
        if not pending:
            return []
        ids = [p["message_id"] for p in pending]
        delivered = {_text(p["message_id"]): int(p["times_delivered"]) for p in pending}
        others = {_text(p["message_id"]) for p in pending if _text(p["consumer"]) != self.worker_id}
        claimed: Any = await self.redis.xclaim(stream, GROUP, self.worker_id, min_idle_time=0, message_ids=ids)
        out: list[Delivery] = []
        present: set[str] = set()
        for entry_id, fields in claimed:
            eid = _text(entry_id)
            present.add(eid)
            if fields is None:
                await self._drop(shard, entry_id)
                continue
            d = _delivery(shard, entry_id, fields, delivered.get(eid, 1) + 1)
            if d is None:
                await self._drop(shard, entry_id)
                continue
            out.append(d)
            if eid in others:
                self.redeliveries += 1
        for eid in delivered.keys() - present:  # deleted from the stream while pending: nothing to handle
            await self._drop(shard, eid)
        taken = sum(1 for d in out if d.entry_id in others)
        if taken:
            log.warning("Shard %d: %d update(s) a stopped worker left unacknowledged are handled again.", shard, taken)
        await self._forget_idle_consumers(stream)
        out.sort(key=lambda d: tuple(int(x) for x in d.entry_id.split("-")))
        return out

    async def _forget_idle_consumers(self, stream: str) -> None:
        """Consumers with nothing pending (workers that stopped) need not stay listed in the group."""
        consumers: Any = await self.redis.xinfo_consumers(stream, GROUP)
        for c in consumers:
            name = _text(c["name"])
            if name != self.worker_id and int(c["pending"]) == 0:
                await self.redis.xgroup_delconsumer(stream, GROUP, name)

    async def _drop(self, shard: int, entry_id: Any) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.queue.stream(shard), GROUP, entry_id)
            pipe.xdel(self.queue.stream(shard), entry_id)
            await pipe.execute()

    async def journal(self, update_id: int) -> dict[str, bytes]:
        raw: Any = await self.redis.hgetall(self.queue.journal_key(update_id))
        return {_text(k): v if isinstance(v, bytes) else str(v).encode() for k, v in raw.items()}

    async def record_sent(self, update_id: int, key: str, answer: bytes) -> None:
        name = self.queue.journal_key(update_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(name, key, answer)
            pipe.expire(name, JOURNAL_SECONDS)
            await pipe.execute()

    async def ack(self, delivery: Delivery) -> None:
        stream = self.queue.stream(delivery.shard)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xack(stream, GROUP, delivery.entry_id)
                pipe.xdel(stream, delivery.entry_id)  # acknowledged entries are of no further use; XLEN stays the backlog
                pipe.delete(self.queue.journal_key(delivery.update_id))
                await pipe.execute()
        except (RedisError, OSError):
            self._lost_read(delivery.shard)  # still pending, perhaps: the next read takes it again (SQL skips it)
            raise

    def _lost_read(self, shard: int) -> None:
        """Entries of a shard this worker holds may be pending for it unseen: claim them before the next new read."""
        if shard in self._held:
            self._recover.add(shard)

    async def release(self, shard: int) -> None:
        if shard in self._held:
            self._held.discard(shard)
            self._leaving.discard(shard)
            self._recover.discard(shard)
            await self._release(keys=[self.queue.lease_key(shard)], args=[self.worker_id])

    async def close(self) -> None:
        for shard in sorted(self._held):
            await self.release(shard)
        await self.redis.delete(self.queue.worker_key(self.worker_id))


def default_worker_id() -> str:
    """hostname-pid: unique among live workers, readable in XINFO and the logs."""
    return f"{socket.gethostname()}-{os.getpid()}"


def key_patterns(prefix: str) -> Iterable[str]:
    """The keys this queue writes under ``prefix``, as SCAN patterns (for clean-ups and the docs)."""
    return [f"{prefix}:{part}:*" for part in ("updates", "lease", "worker", "seen", "sent")]
