"""The queue worker with the real python-telegram-bot Application of ShopBot, the real Redis, a SQLite
store (and PostgreSQL for the SQL record) and the fake Bot API server: each update answered once,
recorded, acknowledged only when everything it sent is out, a half-sent reply not sent twice."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.app import Assistant, build_assistant
from bot.channels.telegram.bot import ShopBot
from bot.channels.telegram.queue import Delivery, RedisShardConsumer, RedisUpdateQueue
from bot.channels.telegram.receiver import chat_key
from bot.channels.telegram.worker import Worker, request_key
from bot.settings import Settings
from bot.store.database import Store
from bot.store.records import StoreUnavailable
from tests.conftest import _pg_url
from tests.fakes.redis_queue import BROKER_URL, drop_keys, new_prefix, redis_up
from tests.fakes.telegram_server import SEND_METHODS, FakeTelegram

pytestmark = pytest.mark.skipif(not redis_up(), reason="Redis is not reachable at 127.0.0.1:6379")
ADMIN, ANN, BO = 1000, 2001, 2002


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, llm="off", telegram_admins=[ADMIN], telegram_max_rate=0,
                    telegram_edit_interval=0, reload_seconds=0)


@pytest.fixture
def assistant(engine: Any, settings: Settings) -> Iterator[Assistant]:
    a = build_assistant(settings, engine=engine)
    yield a
    a.close()


_ids = iter(range(1, 1_000_000))


def text_update(user: int, text: str, update_id: int | None = None) -> dict[str, Any]:
    uid = update_id if update_id is not None else next(_ids)
    msg: dict[str, Any] = {"message_id": uid, "date": int(time.time()), "text": text,
                           "from": {"id": user, "is_bot": False, "first_name": "Ann", "language_code": "en"},
                           "chat": {"id": user, "type": "private", "first_name": "Ann"}}
    if text.startswith("/"):
        msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": uid, "message": msg}


@dataclass
class Stack:
    queue: RedisUpdateQueue
    fake: FakeTelegram
    assistant: Assistant
    settings: Settings
    apps: list[Any]

    async def publish(self, update: dict[str, Any]) -> int:
        await self.queue.publish(json.dumps(update).encode(), chat_key(update), uuid.uuid4().hex, update_id=update["update_id"])
        return int(update["update_id"])

    async def worker(self, name: str, *, handled: Any = None, consumer: Any = None, max_retries: int = 10,
                     **kw: Any) -> Worker:
        app = ShopBot(self.assistant, self.settings).application(token=self.fake.token, base_url=self.fake.base_url,
                                                                 max_retries=max_retries)
        w = Worker(app, handled or self.assistant.store, consumer or self.queue.consumer(name),
                   lease_seconds=self.queue.lease_seconds, read_block=0.1, backoff=(0.05,), **kw)
        w.install()
        await app.initialize()
        await app.start()
        self.apps.append(app)
        return w

    async def take(self, w: Worker, shard: int | None = None) -> list[Delivery]:
        await w.consumer.balance()
        shards = [shard] if shard is not None else range(self.queue.shards)
        out: list[Delivery] = []
        for s in shards:
            out += await w.consumer.fetch(s, count=10, block_seconds=0.05)
        return out

    def sent_to(self, chat: int) -> list[str]:
        return [c.text for c in self.fake.calls if c.chat_id == chat and c.status == 200 and c.method in SEND_METHODS]


@asynccontextmanager
async def stack(assistant: Assistant, settings: Settings, *, shards: int = 1, lease: float = 5.0) -> AsyncIterator[Stack]:
    prefix = new_prefix()
    q = RedisUpdateQueue.from_url(BROKER_URL, shards=shards, prefix=prefix, lease_seconds=lease, block_seconds=1.0)
    async with FakeTelegram() as fake:
        st = Stack(q, fake, assistant, settings, [])
        try:
            yield st
        finally:
            for app in st.apps:
                if app.running:
                    await app.stop()
                await app.shutdown()
            await drop_keys(q.redis, prefix)
            await q.close()


def test_an_update_is_answered_recorded_and_acknowledged(assistant: Assistant, settings: Settings) -> None:
    async def test() -> None:
        async with stack(assistant, settings) as st:
            uid = await st.publish(text_update(ANN, "hi"))
            w = await st.worker("w")
            [d] = await st.take(w)
            assert await w.handle(d) == "handled"
            assert len(st.sent_to(ANN)) == 1 and "shop assistant" in st.sent_to(ANN)[0]
            assert assistant.store.update_handled(uid)
            assert await st.queue.depth() == {0: 0} and await st.queue.pending() == {0: 0}

    asyncio.run(test())


def test_an_update_already_answered_is_acknowledged_and_not_answered_again(assistant: Assistant, settings: Settings) -> None:
    async def test() -> None:
        async with stack(assistant, settings) as st:
            uid = await st.publish(text_update(ANN, "hi"))
            assistant.store.mark_update_handled(uid)  # a worker answered it and died before acknowledging
            w = await st.worker("w")
            [d] = await st.take(w)
            assert await w.handle(d) == "duplicate"
            assert st.sent_to(ANN) == [] and await st.queue.depth() == {0: 0}

    asyncio.run(test())


class Killed(BaseException):
    """The worker process dies here (nothing after this line of its runs)."""


class DiesAfter(RedisShardConsumer):
    """A consumer whose worker dies right after the n-th Bot API answer was journaled."""

    def __init__(self, queue: RedisUpdateQueue, worker_id: str, n: int) -> None:
        super().__init__(queue, worker_id)
        self.n = n

    async def record_sent(self, update_id: int, key: str, answer: bytes) -> None:
        await super().record_sent(update_id, key, answer)
        self.n -= 1
        if self.n == 0:
            raise Killed


def test_a_reply_half_sent_by_a_worker_that_died_is_completed_by_the_next_without_doubles(
        assistant: Assistant, settings: Settings) -> None:
    async def test() -> None:
        async with stack(assistant, settings, lease=0.3) as st:
            # the whole reply to a search, from a chat nobody killed: a heading and product cards
            w0 = await st.worker("w0")
            await st.publish(text_update(BO, "winter coat"))
            [d0] = await st.take(w0)
            await w0.handle(d0)
            reference = st.sent_to(BO)
            assert len(reference) >= 3
            await w0.consumer.close()

            uid = await st.publish(text_update(ANN, "winter coat"))
            a = await st.worker("a", consumer=DiesAfter(st.queue, "a", 2))
            [d] = await st.take(a)
            with pytest.raises(Killed):
                await a.handle(d)
            assert st.sent_to(ANN) == reference[:2]  # two messages out, then the kill
            await asyncio.sleep(0.5)  # a's lease runs out

            b = await st.worker("b")
            [again] = await st.take(b)
            assert (again.update_id, again.attempt) == (uid, 2) and b.consumer.redeliveries == 1
            assert await b.handle(again) == "handled"
            assert st.sent_to(ANN) == reference  # each message once, in order
            assert b.replayed == 2
            assert await st.queue.redis.exists(st.queue.journal_key(uid)) == 0

    asyncio.run(test())


class AckSpy(RedisShardConsumer):
    """Notes what the admin had received when the update was acknowledged."""

    def __init__(self, queue: RedisUpdateQueue, worker_id: str, fake: FakeTelegram) -> None:
        super().__init__(queue, worker_id)
        self.fake = fake
        self.admin_messages_at_ack: int | None = None

    async def ack(self, delivery: Delivery) -> None:
        self.admin_messages_at_ack = sum(1 for c in self.fake.calls if c.chat_id == ADMIN and c.method in SEND_METHODS)
        await super().ack(delivery)


def test_an_update_is_acknowledged_only_after_the_tasks_it_started_have_sent_their_messages(
        assistant: Assistant, settings: Settings) -> None:
    async def test() -> None:
        async with stack(assistant, settings) as st:
            await st.publish(text_update(ANN, "/human"))
            spy = AckSpy(st.queue, "w", st.fake)
            w = await st.worker("w", consumer=spy)
            [d] = await st.take(w)
            assert await w.handle(d) == "handled"
            assert spy.admin_messages_at_ack == 1  # the handoff notice (a background task) went out first

    asyncio.run(test())


class FlakyLog:
    """The SQL record, with the database away for the first ``down`` calls."""

    def __init__(self, store: Store, down: int) -> None:
        self.store = store
        self.down = down

    def update_handled(self, update_id: int) -> bool:
        if self.down > 0:
            self.down -= 1
            raise StoreUnavailable("The database at test cannot be reached.")
        return self.store.update_handled(update_id)

    def mark_update_handled(self, update_id: int) -> bool:
        if self.down > 0:
            self.down -= 1
            raise StoreUnavailable("The database at test cannot be reached.")
        return self.store.mark_update_handled(update_id)


def test_outages_are_waited_out_and_a_broken_update_is_given_up(assistant: Assistant, settings: Settings) -> None:
    async def test() -> None:
        async with stack(assistant, settings) as st:
            # the database away before the update: it waits; the Bot API refusing (429 beyond the rate
            # limiter's retries): the update is tried again, and answered once
            uid = await st.publish(text_update(ANN, "hi"))
            w = await st.worker("w", handled=FlakyLog(assistant.store, 2), max_retries=1)
            st.fake.flood(3, retry_after=1, methods={"sendMessage"})
            [d] = await st.take(w)
            assert await w.handle(d) == "handled"
            assert len(st.sent_to(ANN)) == 1 and assistant.store.update_handled(uid)
            # a body python-telegram-bot cannot read: failed, recorded, acknowledged (it would never pass)
            bad = await st.publish({"update_id": 777, "message": "not a message"})
            [d2] = await st.take(w)
            assert d2.update_id == bad and await w.handle(d2) == "failed"
            assert assistant.store.update_handled(bad) and await st.queue.depth() == {0: 0}

    asyncio.run(test())


def test_a_running_worker_serves_its_shards_and_a_stop_drains_and_gives_them_back(
        assistant: Assistant, settings: Settings) -> None:
    async def test() -> None:
        async with stack(assistant, settings, shards=4, lease=0.6) as st:
            users = [ANN + i for i in range(6)]
            for u in users:
                await st.publish(text_update(u, "hi"))
            w = await st.worker("w")
            running = asyncio.create_task(w.run())
            await st.fake.wait_for(lambda: all(st.sent_to(u) for u in users), 10)
            for u in users:  # more while it runs
                await st.publish(text_update(u, "thanks"))
            await st.fake.wait_for(lambda: all(len(st.sent_to(u)) == 2 for u in users), 10)
            w.stop()
            await asyncio.wait_for(running, 5)
            assert w.outcomes["handled"] == 12
            assert [k async for k in st.queue.redis.scan_iter(match=f"{st.queue.prefix}:lease:*")] == []
            assert await st.queue.redis.exists(st.queue.worker_key("w")) == 0
            assert sum((await st.queue.depth()).values()) == 0

    asyncio.run(test())


def test_the_journal_key_ignores_button_data_but_not_what_the_shopper_sees() -> None:
    from telegram.request import RequestData
    from telegram.request._requestparameter import RequestParameter

    def data(text: str, callback: str, label: str = "Details") -> RequestData:
        markup = {"inline_keyboard": [[{"text": label, "callback_data": callback}]]}
        return RequestData([RequestParameter.from_input("chat_id", 5), RequestParameter.from_input("text", text),
                            RequestParameter.from_input("reply_markup", markup)])

    same = request_key("sendMessage", data("A coat", "up:turn1:SKU")) == request_key("sendMessage", data("A coat", "up:turn2:SKU"))
    assert same  # a new try's turn id in the buttons is the same message to the shopper
    assert request_key("sendMessage", data("A coat", "x")) != request_key("sendMessage", data("A hat", "x"))
    assert request_key("sendMessage", data("A coat", "x")) != request_key("sendMessage", data("A coat", "x", "More"))
    assert request_key("sendChatAction", None) is None and request_key("getMe", None) is None


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_the_sql_record_of_handled_updates(db: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}" if db == "sqlite" else _pg_url(request.getfixturevalue("pg_schema"))
    with Store(url, tmp_path / "buffer") as store:
        big = 2**40  # Telegram's update ids outgrow 32 bits
        assert not store.update_handled(big)
        assert store.mark_update_handled(big) is True
        assert store.mark_update_handled(big) is False  # a second worker finds it recorded
        assert store.update_handled(big) and not store.update_handled(big + 1)
    down = Store("postgresql+psycopg://postgres@127.0.0.1:1/none", tmp_path / "buffer2", connect_timeout=1)
    with down, pytest.raises(StoreUnavailable):  # never answered from a guess or a buffer
        down.update_handled(1)
    with down, pytest.raises(StoreUnavailable):
        down.mark_update_handled(1)
