"""The Redis Streams queue against the real Redis on 127.0.0.1:6379: shards by chat, leases and their
take-over, fair shares, pending entries first after a take-over, counted redeliveries, depth.

Every test uses its own key prefix and deletes its keys afterwards, so parallel runs never meet."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest

from bot.channels.telegram.queue import RedisShardConsumer, RedisUpdateQueue, shard_of
from tests.fakes.redis_queue import redis_up, temp_queue

pytestmark = pytest.mark.skipif(not redis_up(), reason="Redis is not reachable at 127.0.0.1:6379")


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())  # type: ignore[arg-type]


def update(update_id: int, chat: int, text: str = "hi") -> bytes:
    return json.dumps({"update_id": update_id, "message": {"message_id": update_id, "date": 0, "text": text,
                                                            "chat": {"id": chat, "type": "private"}}}).encode()


async def publish(q: RedisUpdateQueue, update_id: int, chat: int | None) -> bool:
    return await q.publish(update(update_id, chat or 0), chat, f"turn{update_id}", update_id=update_id)


async def settle(*consumers: RedisShardConsumer, rounds: int = 4) -> None:
    """Balancing rounds for every consumer, as their workers' ticks would run them."""
    for _ in range(rounds):
        for c in consumers:
            await c.balance()


def test_a_chat_always_lands_on_the_same_shard_and_updates_without_a_chat_on_shard_0() -> None:
    assert shard_of(None, 16) == 0
    assert shard_of(123456789, 16) == shard_of(123456789, 16) == 6  # stable: crc32, not Python's salted hash()
    assert len({shard_of(chat, 16) for chat in range(1000, 1200)}) == 16  # and spread over every shard

    async def test() -> None:
        async with temp_queue(shards=4) as q:
            for i, chat in enumerate([7, 7, 8, 9, 7, -100123]):
                assert await publish(q, i + 1, chat)
            assert await q.publish(b'{"update_id": 99}', None, "t", update_id=99)
            depth = await q.depth()
            expected = {s: 0 for s in range(4)}
            for chat in [7, 7, 8, 9, 7, -100123]:
                expected[shard_of(chat, 4)] += 1
            expected[0] += 1
            assert depth == expected
            entries = await q.redis.xrange(q.stream(shard_of(7, 4)))
            ids = [int(f[b"update_id"]) for _, f in entries if f[b"chat"] == b"7"]
            assert ids == [1, 2, 5]  # in the order they came
            assert entries[0][1][b"turn"] == b"turn1" and json.loads(entries[0][1][b"update"])["update_id"] == 1

    run(test)


def test_the_same_update_id_is_queued_once() -> None:
    async def test() -> None:
        async with temp_queue() as q:
            assert await publish(q, 5, 42)
            assert not await publish(q, 5, 42)
            assert sum((await q.depth()).values()) == 1

    run(test)


def test_a_lease_is_taken_over_only_after_it_expires() -> None:
    async def test() -> None:
        async with temp_queue(shards=4, lease=0.4) as q:
            a, b = q.consumer("a"), q.consumer("b")
            started = (await a.balance()).started
            assert sorted(started) == [0, 1, 2, 3]  # alone, a takes every shard
            assert (await b.balance()).started == []  # a's leases are live: b gets nothing yet
            await asyncio.sleep(0.6)  # a stops renewing (it died): its leases and heartbeat expire
            assert sorted((await b.balance()).started) == [0, 1, 2, 3]
            assert await a.renew() == [0, 1, 2, 3]  # a, back from a long pause, learns it lost them all
            assert not any(a.holds(s) for s in range(4))

    run(test)


def test_a_clean_stop_gives_the_shards_back_at_once() -> None:
    async def test() -> None:
        async with temp_queue(shards=4, lease=30) as q:
            a, b = q.consumer("a"), q.consumer("b")
            await a.balance()
            await a.close()
            assert sorted((await b.balance()).started) == [0, 1, 2, 3]

    run(test)


@pytest.mark.parametrize("workers", [2, 3])
def test_live_workers_share_the_shards_fairly(workers: int) -> None:
    async def test() -> None:
        async with temp_queue(shards=16, lease=5) as q:
            consumers = [q.consumer(f"w{i}") for i in range(workers)]
            await consumers[0].balance()
            assert len(consumers[0].held) == 16  # the first one takes everything
            # the others announce themselves; the first gives back its surplus (its worker releases each
            # shard after the update in hand), and the newcomers take what is free
            for _ in range(3):
                for c in consumers:
                    change = await c.balance()
                    for shard in change.stopping:
                        await c.release(shard)
            held = [set(c.held) for c in consumers]
            share = -(-16 // workers)
            assert all(len(h) <= share for h in held), held
            assert set().union(*held) == set(range(16))  # every shard served ...
            assert sum(len(h) for h in held) == 16  # ... by exactly one worker

    run(test)


def test_after_a_take_over_the_pending_entries_come_first_in_order_and_count_as_redelivered() -> None:
    async def test() -> None:
        async with temp_queue(shards=1, lease=0.3) as q:
            for i in range(1, 6):
                await publish(q, i, 42)
            a = q.consumer("a")
            await a.balance()
            got = await a.fetch(0, count=2, block_seconds=0.1)
            assert [d.update_id for d in got] == [1, 2] and all(d.attempt == 1 for d in got)
            await a.ack(got[0])  # 1 is done; a dies holding 2
            for i in range(6, 8):
                await publish(q, i, 42)
            await asyncio.sleep(0.5)
            b = q.consumer("b")
            assert (await b.balance()).started == [0]
            first = await b.fetch(0, count=10, block_seconds=0.1)
            assert [(d.update_id, d.attempt) for d in first] == [(2, 2)]  # what a left, before anything new
            assert b.redeliveries == 1
            await b.ack(first[0])
            rest = await b.fetch(0, count=10, block_seconds=0.1)
            assert [d.update_id for d in rest] == [3, 4, 5, 6, 7]
            for d in rest:
                await b.ack(d)
            assert await q.depth() == {0: 0} and await q.pending() == {0: 0}
            # a's name is no longer listed in the group once it has nothing pending
            names = [c["name"] for c in await q.redis.xinfo_consumers(q.stream(0), "workers")]
            assert b"a" not in names

    run(test)


def test_a_worker_taking_its_own_shard_back_rereads_its_pending_entries_without_counting_them() -> None:
    async def test() -> None:
        async with temp_queue(shards=1, lease=30) as q:
            for i in range(1, 4):
                await publish(q, i, 42)
            a = q.consumer("a")
            await a.balance()
            assert [d.update_id for d in await a.fetch(0, count=3, block_seconds=0.1)] == [1, 2, 3]
            await a.release(0)
            await a.balance()
            again = await a.fetch(0, count=10, block_seconds=0.1)
            assert [d.update_id for d in again] == [1, 2, 3] and a.redeliveries == 0

    run(test)


def test_depth_counts_what_is_not_yet_acknowledged_and_the_journal_goes_with_the_ack() -> None:
    async def test() -> None:
        async with temp_queue(shards=2) as q:
            for i in range(1, 6):
                await publish(q, i, i)
            assert sum((await q.depth()).values()) == 5
            c = q.consumer("w")
            await c.balance()
            got = [d for s in (0, 1) for d in await c.fetch(s, count=10, block_seconds=0.1)]
            assert sorted(d.update_id for d in got) == [1, 2, 3, 4, 5]
            assert sum((await q.pending()).values()) == 5
            await c.record_sent(got[0].update_id, "sendMessage:abc:1", b'{"ok": true}')
            assert await c.journal(got[0].update_id) == {"sendMessage:abc:1": b'{"ok": true}'}
            for d in got[:3]:
                await c.ack(d)
            assert sum((await q.depth()).values()) == 2
            assert await c.journal(got[0].update_id) == {}

    run(test)


def test_a_deleted_stream_is_recreated_rather_than_stopping_its_reader() -> None:
    async def test() -> None:
        async with temp_queue(shards=1) as q:
            c = q.consumer("w")
            await c.balance()
            assert await c.fetch(0, count=1, block_seconds=0.05) == []
            await q.redis.delete(q.stream(0))
            assert await c.fetch(0, count=1, block_seconds=0.05) == []
            await publish(q, 1, 42)
            assert [d.update_id for d in await c.fetch(0, count=1, block_seconds=0.05)] == [1]

    run(test)
