"""The webhook receiver over real HTTP (tornado on 127.0.0.1) and the real Redis: what Telegram gets back
for each kind of call, and what is on the queue afterwards."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import ClientSession

from bot.channels.telegram.queue import RedisUpdateQueue, shard_of
from bot.channels.telegram.receiver import SECRET_HEADER, BadUpdate, Receiver, chat_key, parse_update
from tests.fakes.redis_queue import redis_up, temp_queue
from tests.fakes.telegram_harness import free_port

SECRET = "s3cret-token_for-tests"

pytestmark = pytest.mark.skipif(not redis_up(), reason="Redis is not reachable at 127.0.0.1:6379")


@asynccontextmanager
async def serving(queue: RedisUpdateQueue, ready: Callable[[], dict[str, bool]] | None = None
                  ) -> AsyncIterator[tuple[str, ClientSession]]:
    port = free_port()
    server = Receiver(queue, SECRET, path="/telegram", ready=ready).listen("127.0.0.1", port)
    try:
        async with ClientSession() as http:
            yield f"http://127.0.0.1:{port}", http
    finally:
        server.stop()
        await server.close_all_connections()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())  # type: ignore[arg-type]


def message(update_id: int, chat: int = 42) -> dict[str, Any]:
    return {"update_id": update_id, "message": {"message_id": 1, "date": 0, "text": "running shoes",
                                                "chat": {"id": chat, "type": "private"},
                                                "from": {"id": chat, "is_bot": False, "first_name": "Ann"}}}


async def post(http: ClientSession, base: str, body: bytes | dict[str, Any], secret: str | None = SECRET) -> int:
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    async with http.post(f"{base}/telegram", data=data, headers={"Content-Type": "application/json", **headers}) as r:
        return r.status


def test_an_update_with_the_right_secret_is_queued_on_its_chats_shard_with_a_turn_id() -> None:
    async def test() -> None:
        async with temp_queue() as q, serving(q) as (base, http):
            assert await post(http, base, message(10, chat=42)) == 200
            entries = await q.redis.xrange(q.stream(shard_of(42, 4)))
            assert len(entries) == 1
            fields = entries[0][1]
            assert json.loads(fields[b"update"]) == message(10, chat=42)  # Telegram's body, as it came
            assert fields[b"update_id"] == b"10" and len(fields[b"turn"]) == 32
            assert sum((await q.depth()).values()) == 1

    run(test)


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x"])
def test_a_call_without_the_right_secret_gets_403_and_nothing_is_queued(secret: str | None) -> None:
    async def test() -> None:
        async with temp_queue() as q, serving(q) as (base, http):
            assert await post(http, base, message(11), secret=secret) == 403
            assert sum((await q.depth()).values()) == 0

    run(test)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"message": {}}', b'{"update_id": "7"}',
                                  b'{"update_id": true}', b'{"update_id": -1}', b"\xff\xfe"])
def test_a_malformed_body_gets_400_is_logged_once_and_not_queued(body: bytes, caplog: pytest.LogCaptureFixture) -> None:
    async def test() -> None:
        async with temp_queue() as q, serving(q) as (base, http):
            with caplog.at_level(logging.DEBUG):
                assert await post(http, base, body) == 400
            assert sum((await q.depth()).values()) == 0

    run(test)
    said = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1 and "not an update" in said[0].getMessage()
    assert "running" not in said[0].getMessage()  # a shopper's words are not logged


def test_a_broker_that_is_down_gets_503_so_telegram_retries_and_nothing_is_queued(caplog: pytest.LogCaptureFixture) -> None:
    async def test() -> None:
        prefix = f"shopbot-test-{uuid.uuid4().hex[:10]}"
        down = RedisUpdateQueue.from_url(f"redis://127.0.0.1:{free_port()}/0", shards=4, prefix=prefix, timeout=0.5)
        try:
            async with serving(down) as (base, http):
                assert await post(http, base, message(12)) == 503
                assert await post(http, base, message(13)) == 503
        finally:
            await down.close()
        async with temp_queue() as q:  # the same keys on the real Redis: nothing arrived there
            q.prefix = prefix
            assert sum((await q.depth()).values()) == 0

    run(test)
    assert sum("cannot take updates" in r.getMessage() for r in caplog.records) == 1  # once per outage


def test_an_update_posted_twice_to_two_receivers_is_queued_once() -> None:
    async def test() -> None:
        async with temp_queue() as q, serving(q) as (one, http), serving(q) as (two, _):
            assert await post(http, one, message(20)) == 200
            assert await post(http, two, message(20)) == 200  # Telegram got no answer in time and sent it again
            assert await post(http, one, message(21)) == 200
            assert sum((await q.depth()).values()) == 2

    run(test)


def test_the_same_port_answers_health_readiness_and_metrics() -> None:
    checks = {"broker": True}

    async def test() -> None:
        async with temp_queue() as q, serving(q, ready=lambda: dict(checks)) as (base, http):
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 200
            async with http.get(f"{base}/readyz") as r:
                assert r.status == 200 and (await r.json())["checks"] == {"broker": "ok"}
            checks["broker"] = False
            async with http.get(f"{base}/readyz") as r:
                assert r.status == 503
            await post(http, base, message(30))
            async with http.get(f"{base}/metrics") as r:
                text = await r.text()
                assert r.status == 200 and 'shopbot_updates_total{outcome="queued"}' in text
            async with http.get(f"{base}/telegram") as r:
                assert r.status == 405  # Telegram only posts

    run(test)


def test_the_chat_of_each_kind_of_update_decides_its_shard() -> None:
    assert chat_key(message(1, chat=-100500)) == -100500
    press = {"update_id": 2, "callback_query": {"id": "9", "from": {"id": 7}, "data": "x",
                                                "message": {"message_id": 3, "chat": {"id": 8}}}}
    assert chat_key(press) == 8
    inline = {"update_id": 3, "callback_query": {"id": "9", "from": {"id": 7}, "inline_message_id": "a", "data": "x"}}
    assert chat_key(inline) == 7  # no chat: the user's own, so one shopper's updates stay in order
    assert chat_key({"update_id": 4, "poll": {"id": "p"}}) is None
    assert parse_update(json.dumps(message(5)).encode()) == (5, 42)
    with pytest.raises(BadUpdate):
        parse_update(b"{}")
