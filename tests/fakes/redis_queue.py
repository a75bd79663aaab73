"""The real Redis on 127.0.0.1:6379 for the queue's tests: whether it answers, and a queue under a key prefix
of its own that is emptied afterwards, so that test runs (and parallel ones) never see each other's updates."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis

from bot.channels.telegram.queue import RedisUpdateQueue, key_patterns

__all__ = ["BROKER_URL", "drop_keys", "new_prefix", "redis_up", "temp_queue"]

BROKER_URL = "redis://127.0.0.1:6379/0"


def redis_up(url: str = BROKER_URL) -> bool:
    async def ping() -> bool:
        r = Redis.from_url(url, socket_connect_timeout=1)
        try:
            return bool(await r.ping())
        except Exception:
            return False
        finally:
            await r.aclose()

    return asyncio.run(ping())


def new_prefix(kind: str = "test") -> str:
    return f"shopbot-{kind}-{uuid.uuid4().hex[:10]}"


async def drop_keys(redis: Redis, prefix: str) -> None:
    """Every key the queue made under ``prefix``."""
    for pattern in key_patterns(prefix):
        async for key in redis.scan_iter(match=pattern, count=1000):
            await redis.delete(key)


@asynccontextmanager
async def temp_queue(shards: int = 4, lease: float = 5.0) -> AsyncIterator[RedisUpdateQueue]:
    prefix = new_prefix()
    q = RedisUpdateQueue.from_url(BROKER_URL, shards=shards, prefix=prefix, lease_seconds=lease, block_seconds=1.0)
    try:
        yield q
    finally:
        await drop_keys(q.redis, prefix)
        await q.close()
