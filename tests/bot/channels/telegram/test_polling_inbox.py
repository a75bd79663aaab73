"""The polling inbox (bot/channels/telegram/inbox.py): fetched updates kept in SQL before python-telegram-bot confirms
them, recorded when answered, replayed on start, and a redelivered update not answered twice. The whole bot killed
with updates in flight is tests/e2e/test_polling_kill.py."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from telegram import Update

from bot.channels.telegram.bot import ShopBot
from bot.channels.telegram.inbox import PollingInbox, inbox_row
from bot.dialogue.replies import Event, Reply
from bot.settings import Settings
from bot.store.database import Store
from bot.store.records import StoreUnavailable
from bot.store.schema import HANDLED, INBOX
from tests.fakes.clock import Clock
from tests.fakes.telegram_harness import Running, running
from tests.fakes.telegram_server import FakeTelegram, _Pending


class Echo:
    """The assistant: answers every text with ``echo: <text>``."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.events: list[Event] = []

    async def handle_async(self, event: Event) -> list[Reply]:
        self.events.append(event)
        return [Reply(f"echo: {event.text}")]

    async def aclose(self) -> None:
        pass


def _run(store: Any, test: Any) -> Echo:
    assistant = Echo(store)

    async def main() -> None:
        shop = ShopBot(assistant, Settings(llm="off", telegram_max_rate=0))  # type: ignore[arg-type]
        async with FakeTelegram() as tg, running(shop, tg) as bot:
            await test(bot)

    asyncio.run(main())
    return assistant


def _update(update_id: int, user: int, text: str) -> dict[str, Any]:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": int(time.time()), "text": text,
        "from": {"id": user, "is_bot": False, "first_name": "Ann", "language_code": "en"},
        "chat": {"id": user, "type": "private", "first_name": "Ann"}}}


def _texts(bot: Running, chat: int) -> list[str]:
    return [c.text for c in bot.fake.sent(chat)]


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store(f"sqlite:///{tmp_path / 'shop.db'}", tmp_path / "buffer", retry_interval=0)
    yield s
    s.close()


def test_an_update_telegram_sends_again_is_answered_once(store: Store) -> None:
    async def test(bot: Running) -> None:
        await bot.say(5, "red coat")
        first = next(c for c in bot.fake.requests("getUpdates") if c.result)  # the batch that carried it
        again = copy.deepcopy(first.result[0])
        # Telegram hands the same update (same update_id) out again: a confirming poll that never reached it
        bot.fake._pending.append(_Pending(again, time.monotonic()))
        bot.fake._new_update.set()
        bot.injected += 1
        await bot.idle()
        await bot.fake.settle()
        assert _texts(bot, 5) == ["echo: red coat"]
        assert bot.shop.inbox.skipped == 1
        assert bot.fake.deliveries[again["update_id"]] == 2

    assistant = _run(store, test)
    assert [e.text for e in assistant.events] == ["red coat"]
    with store.engine.connect() as c:  # recorded as handled; the inbox keeps only the digest
        assert c.execute(select(func.count()).select_from(HANDLED)).scalar_one() == 1
        assert c.execute(select(INBOX.c.body, INBOX.c.answered_at.is_not(None))).all() == [(None, True)]


def test_an_update_answered_before_a_restart_and_sent_again_after_it_is_not_answered_again(store: Store) -> None:
    holder: dict[str, Any] = {}

    async def first(bot: Running) -> None:
        await bot.say(5, "red coat")
        holder["update"] = copy.deepcopy(next(c for c in bot.fake.requests("getUpdates") if c.result).result[0])

    _run(store, first)

    async def second(bot: Running) -> None:  # a new process: only the SQL record knows it was answered
        bot.fake._pending.append(_Pending(copy.deepcopy(holder["update"]), time.monotonic()))
        bot.fake._new_update.set()
        bot.injected += 1
        await bot.idle()
        await bot.fake.settle()
        assert _texts(bot, 5) == []
        assert bot.shop.inbox.skipped == 1

    assistant = _run(store, second)
    assert assistant.events == []


def test_updates_a_killed_run_fetched_and_never_answered_are_answered_on_start_in_order(store: Store) -> None:
    # a run killed after fetching four updates: it answered the first one only
    kept = [_update(101, 7, "one"), _update(102, 8, "alpha"), _update(103, 7, "two"), _update(104, 7, "three")]
    assert store.keep_updates([inbox_row(Update.de_json(u, None)) for u in kept]) == set()
    store.finish_updates([101])
    assert [u for u, _ in store.unanswered_updates()] == [102, 103, 104]

    async def test(bot: Running) -> None:
        assert await bot.shop.inbox.replay(bot.app) == 3  # what ShopBot's post_init does before polling starts
        # the kill came before the poll that confirms the batch: Telegram hands all four out again meanwhile
        for u in kept:
            bot.fake._pending.append(_Pending(copy.deepcopy(u), time.monotonic()))
        bot.fake._new_update.set()
        bot.injected += 3 + 4
        await bot.idle()
        await bot.fake.settle()
        assert _texts(bot, 7) == ["echo: two", "echo: three"]
        assert _texts(bot, 8) == ["echo: alpha"]
        assert bot.shop.inbox.skipped == 4  # 101 answered before the kill, the others being answered from the inbox

    assistant = _run(store, test)
    assert sorted(e.text or "" for e in assistant.events) == ["alpha", "three", "two"]  # each once
    assert store.unanswered_updates() == []
    # the same updates fetched again later: all answered, none kept again
    assert store.keep_updates([inbox_row(Update.de_json(u, None)) for u in kept]) == {101, 102, 103, 104}


def test_an_id_telegram_reuses_for_a_new_update_is_not_mistaken_for_the_answered_one(store: Store) -> None:
    store.keep_updates([(1, "telegram:5", json.dumps(_update(1, 5, "hi")))])
    store.finish_updates([1])
    assert store.keep_updates([(1, "telegram:6", json.dumps(_update(1, 6, "another")))]) == set()
    assert [u for u, _ in store.unanswered_updates()] == [1]


def test_the_inbox_is_forgotten_with_the_shopper_and_pruned(tmp_path: Path) -> None:
    clock = Clock()
    store = Store(f"sqlite:///{tmp_path / 'shop.db'}", tmp_path / "buffer", clock=clock, retry_interval=0)
    try:
        store.keep_updates([(1, "telegram:5", json.dumps(_update(1, 5, "my address is 1 Main St"))),
                            (2, "telegram:6", json.dumps(_update(2, 6, "hi")))])
        store.touch_user("telegram", "5")
        assert store.forget_user("telegram:5")["update_inbox"] == 1
        assert [u for u, _ in store.unanswered_updates()] == [2]
        clock.now += timedelta(days=40)
        assert store.prune(30)["update_inbox"] == 1
        assert store.unanswered_updates() == []
        # stale updates are not answered a day later: the replay drops them
        store.keep_updates([(3, None, json.dumps(_update(3, 6, "old")))])
        assert store.unanswered_updates(since=clock() + timedelta(seconds=1)) == []
    finally:
        store.close()


def test_a_dead_database_never_stops_the_bot_answering(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    def down(*_a: Any, **_k: Any) -> Any:
        raise StoreUnavailable("The database at sqlite:///x cannot be reached; start it.")

    store.keep_updates = down  # type: ignore[method-assign]
    store.finish_updates = down  # type: ignore[method-assign]
    store.unanswered_updates = down  # type: ignore[method-assign]

    async def test(bot: Running) -> None:
        assert await bot.shop.inbox.replay(bot.app) == 0
        for text in ("one", "two", "three"):
            await bot.say(5, text)
        assert _texts(bot, 5) == ["echo: one", "echo: two", "echo: three"]

    with caplog.at_level(logging.WARNING, logger="bot.channels.telegram.inbox"):
        _run(store, test)
    said = [r for r in caplog.records if "polling inbox cannot" in r.getMessage()]
    assert len(said) == 1  # once, not once per update


def test_a_store_without_the_inbox_leaves_polling_as_it_was() -> None:
    assert not PollingInbox(object()).enabled


def test_a_queue_worker_replays_nothing_a_polling_run_left(store: Store) -> None:
    """`shopbot worker` gets its updates from the queue; every worker over the same database replaying a polling
    run's leftovers would answer them once per worker."""
    store.keep_updates([inbox_row(Update.de_json(_update(201, 7, "left over"), None))])
    shop = ShopBot(Echo(store), Settings(llm="off", telegram_max_rate=0), polling_inbox=False)  # type: ignore[arg-type]
    assert not shop.inbox.enabled
    assert asyncio.run(shop.inbox.replay(None)) == 0
    assert [u for u, _ in store.unanswered_updates()] == [201]
    assert ShopBot(Echo(store), Settings(llm="off", telegram_max_rate=0)).inbox.enabled  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_inbox_store_methods_on_both_databases(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if backend == "postgresql":
        from tests.conftest import _pg_url

        url = _pg_url(request.getfixturevalue("pg_schema"))
    else:
        url = f"sqlite:///{tmp_path / 'shop.db'}"
    store = Store(url, tmp_path / "buffer", retry_interval=0)
    try:
        rows = [inbox_row(Update.de_json(_update(i, 5 + i % 2, f"m{i}"), None)) for i in (11, 12, 13)]
        assert store.keep_updates(rows) == set()
        assert store.keep_updates(rows[:2]) == set()  # fetched again before answered: kept once
        store.finish_updates([11])
        store.finish_updates([11])  # twice is harmless
        assert [u for u, _ in store.unanswered_updates()] == [12, 13]
        assert store.keep_updates(rows) == {11}
        assert json.loads(store.unanswered_updates()[0][1])["message"]["text"] == "m12"
        store.finish_updates([12, 13])
        assert store.unanswered_updates() == [] and store.update_handled(13)
        assert store.forget_user("telegram:6").get("update_inbox") == 2  # 11 and 13 (answered: digests kept until then)
    finally:
        store.close()
