"""Watchlists in the conversation (bot/dialogue/watch.py): the real assistant over the demo catalog, SQLite,
templates only. A shopper asks in English or Chinese, lists, cancels by button; limits, expiry, "forget me"."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import Assistant, build_assistant
from bot.dialogue.replies import Event, Reply
from bot.settings import Settings


@pytest.fixture
def assistant(shared, tmp_path: Path) -> Iterator[Assistant]:  # type: ignore[no-untyped-def]
    engine, nlu, policy = shared
    a = build_assistant(Settings(data_dir=tmp_path, llm="off"), engine=engine, nlu=nlu, policy=policy)
    yield a
    a.close()


def say(a: Assistant, text: str, user: str = "ann") -> list[Reply]:
    return a.handle(Event(user=user, channel="cli", text=text))


def press(a: Assistant, payload: str, user: str = "ann") -> list[Reply]:
    return a.handle(Event(user=user, channel="cli", payload=payload))


def test_english_watch_reads_the_filters_like_a_search(assistant: Assistant) -> None:
    replies = say(assistant, "tell me when a red winter coat under $80 is in stock")
    assert replies[0].intent == "watch"
    assert "watching for" in replies[0].text and "winter coat" in replies[0].text
    assert "red" in replies[0].text and "under 80" in replies[0].text
    [w] = assistant.store.watches("cli:ann")
    assert "winter coat" in w.query and "red" not in w.query
    assert w.filters["colors"] == ["red"] and w.filters["max_price"] == 80
    assert w.channel == "cli" and w.chat_id == "ann" and w.language == "en"
    assert abs(w.expires_at - w.created_at - timedelta(days=30)) < timedelta(minutes=1)
    nike = say(assistant, "let me know if you get Nike running shoes in size 42", user="bo")
    assert nike[0].intent == "watch"
    [n] = assistant.store.watches("cli:bo")
    assert n.filters["sizes"] == ["42"] and [b.lower() for b in n.filters["brands"]] == ["nike"]
    assert "running shoes" in n.query
    # products that match already are shown now and recorded, so they are never announced later
    shown = [c.sku for r in nike for c in r.cards]
    assert set(shown) <= set(n.notified_skus)


def test_chinese_watch(assistant: Assistant) -> None:
    replies = say(assistant, "有500元以下的蓝牙耳机就通知我")
    assert replies[0].intent == "watch" and "我会关注" in replies[0].text and "蓝牙耳机" in replies[0].text
    [w] = assistant.store.watches("cli:ann")
    assert w.query == "蓝牙耳机" and w.filters["max_price"] == 500 and w.language == "zh"


@pytest.mark.parametrize(("text", "asks"), [("notify me", "What should I watch for?"), ("通知我", "要我关注什么")])
def test_no_product_words_asks_what_to_watch(assistant: Assistant, text: str, asks: str) -> None:
    replies = say(assistant, text)
    assert asks in replies[0].text
    assert assistant.store.watches("cli:ann") == []


def test_limit_refuses_politely(assistant: Assistant) -> None:
    assistant.dialogue.watch_limit = 2
    say(assistant, "notify me when running shoes are back in stock")
    say(assistant, "alert me when blue jeans are in stock")
    third = say(assistant, "tell me when a laptop under $500 is in stock")
    assert "already have 2 active watches" in third[0].text
    assert len(assistant.store.watches("cli:ann")) == 2


def test_list_and_cancel_by_button(assistant: Assistant) -> None:
    say(assistant, "watch for blue jeans")
    say(assistant, "有500元以下的蓝牙耳机就通知我")
    listed = say(assistant, "my watchlist")
    assert listed[0].intent == "watchlist"
    text = listed[0].text
    assert "1. " in text and "jeans" in text and "2. " in text and "蓝牙耳机" in text
    assert [b.payload.split(":")[0] for b in listed[0].buttons] == ["unwatch", "unwatch"]
    zh = say(assistant, "我的关注")
    assert zh[0].text.startswith("您的关注")
    cancelled = press(assistant, listed[0].buttons[0].payload)
    assert cancelled[0].text.startswith("已取消") and "jeans" in cancelled[0].text  # the conversation's language
    assert [w.query for w in assistant.store.watches("cli:ann")] == ["蓝牙耳机"]
    # another shopper's button press, and a second press, cancel nothing
    assert "already cancelled" in press(assistant, listed[0].buttons[1].payload, user="bo")[0].text
    assert "已取消或不存在" in press(assistant, listed[0].buttons[0].payload)[0].text
    assert len(assistant.store.watches("cli:ann")) == 1


def test_expired_watches_are_listed_as_expired_never_rerun_then_pruned(assistant: Assistant) -> None:
    assistant.dialogue.watch_days = 1 / 86400  # one second
    say(assistant, "watch for blue jeans")
    assert len(assistant.store.due_watches()) == 1
    time.sleep(1.2)
    assert assistant.store.due_watches() == []
    listed = say(assistant, "my watchlist")
    assert "expired on" in listed[0].text and listed[0].buttons == []
    assert assistant.store.prune_watches(datetime.now(UTC)) == 1
    assert assistant.store.watches("cli:ann") == []


def test_forget_me_deletes_watches(assistant: Assistant) -> None:
    say(assistant, "watch for blue jeans")
    counts = assistant.store.forget_user("cli:ann")
    assert counts["watches"] == 1
    assert assistant.store.watches("cli:ann") == []
