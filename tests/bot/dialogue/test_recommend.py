"""Recommendations in the conversation: the shopper's history from the store, reasons on the cards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.dialogue.manager import DialogueManager
from bot.dialogue.replies import Event
from bot.dialogue.understanding import Understanding
from bot.store.database import Store
from bot.store.records import TurnRecord


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    (tmp_path / "db").mkdir()
    s = Store(f"sqlite:///{tmp_path / 'db' / 'shop.db'}", tmp_path / "buffer", retry_interval=0)
    yield s
    s.close()


def test_interactions_reads_feedback_on_products_and_details_views(store: Store) -> None:
    store.log(TurnRecord("t1", "alice", "running shoes", "...", intent="search", query="running shoes",
                         shown=[("SHO-1", 1, 1.0), ("SHO-2", 2, 0.5)]))
    store.log(TurnRecord("t2", "alice", "details 1", "...", intent="details", shown=[("SHO-1", 1, None)]))
    store.feedback("alice", "thumb_up", turn_id="t2", sku="SHO-1")
    store.feedback("alice", "not_what_i_meant", turn_id="t1")  # no product: not an interaction
    store.feedback("bob", "purchase", sku="LAP-1")
    rows = store.interactions("alice")
    assert [(u, sku, kind) for u, sku, kind, _ in rows] == [("alice", "SHO-1", "details"), ("alice", "SHO-1", "thumb_up")]
    assert {r[0] for r in store.interactions()} == {"alice", "bob"}


def _ask(dm: DialogueManager, user: str) -> list:  # type: ignore[type-arg]
    [reply] = dm.handle(Event(user=user, channel="test", text="recommend something", understood=Understanding("recommend")))
    return reply.cards


def test_recommendations_use_the_history_and_show_reasons(engine, store: Store) -> None:  # type: ignore[no-untyped-def]
    dm = DialogueManager(engine, store, lambda *a: None, lambda *a: None)  # type: ignore[arg-type]
    new = _ask(dm, "newcomer")
    assert new and all(c.reason and c.reason.startswith("popular in") for c in new)
    cats = [engine.product(c.sku).category for c in new]
    assert max(cats.count(c) for c in cats) <= 2
    # a shopper who bought the laptop is offered what goes with it, not another laptop
    store.feedback("test:carol", "purchase", sku="LAP-1")  # the dialogue's user ids are channel:id
    cards = _ask(dm, "carol")
    assert cards and "LAP-1" not in {c.sku for c in cards}
    assert cards[0].sku == "LAP-2" and "goes with your" in (cards[0].reason or "")
    assert all(c.reason for c in cards)
