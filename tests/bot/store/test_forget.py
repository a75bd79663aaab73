"""Store.forget_user: a shopper's "delete my data" removes every row about them and nothing about anyone
else, also rows that were still waiting in the on-disk buffer; while the database is down it refuses."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.store.database import Store
from bot.store.records import StoreUnavailable, TurnRecord
from bot.store.schema import ConversationState, Feedback, Handoff, Impression, Turn, User
from tests.fakes.clock import Clock


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'db' / 'shop.db'}", tmp_path / "buffer", clock=Clock(), retry_interval=0)
    yield s
    s.close()


def _fill(store: Store, channel: str, external: str, n: int) -> str:
    user = store.touch_user(channel, external, "en").user_id
    for i in range(n):
        tid = store.log(TurnRecord(f"{external}{i:04d}".ljust(8, "x"), user, f"running shoes {i}", "reply",
                                   intent="search", query="running shoes", shown=[("A", 1, 0.9), ("B", 2, 0.8)]))
        store.log_feedback(user, "thumb_down", turn_id=tid, sku="A")
    store.log_feedback(user, "click", sku="B")
    store.save_state(user, {"query": "running shoes", "shown": ["A", "B"]})
    store.handoff(user, "asked for a person")
    return user


def _count(store: Store, model: type, user: str) -> int:
    col = model.id if model is User else model.user_id  # type: ignore[attr-defined]
    with Session(store.engine) as s:
        return int(s.execute(select(func.count()).select_from(model).where(col == user)).scalar_one())


TABLES = (User, ConversationState, Turn, Impression, Feedback, Handoff)


def test_forget_deletes_every_row_of_the_user_and_only_theirs(store: Store) -> None:
    alice = _fill(store, "telegram", "111", 3)
    bob = _fill(store, "telegram", "222", 2)
    before = {m: _count(store, m, bob) for m in TABLES}

    counts = store.forget_user(alice)

    assert counts == {"impressions": 6, "feedback": 4, "handoffs": 1, "turns": 3, "conversation_state": 1, "users": 1}
    assert all(_count(store, m, alice) == 0 for m in TABLES)
    assert {m: _count(store, m, bob) for m in TABLES} == before
    # this process's caches forgot too: nothing comes back from memory
    assert store.load_state(alice) is None
    assert store.recent_turns(alice) == []
    assert not store.is_handed_over(alice)
    assert [h["user_id"] for h in store.open_handoffs()] == [bob]
    # a returning shopper starts afresh
    info = store.touch_user("telegram", "111")
    assert info.user_id == alice and not info.handed_over and store.load_state(alice) is None


def test_forgetting_an_unknown_user_deletes_nothing(store: Store) -> None:
    bob = _fill(store, "telegram", "222", 1)
    assert sum(store.forget_user("telegram:999").values()) == 0
    assert _count(store, Turn, bob) == 1


def test_buffered_rows_are_written_first_and_then_deleted(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    store = Store(f"sqlite:///{db_dir / 'shop.db'}", tmp_path / "buffer", clock=Clock(), retry_interval=0)
    try:
        alice = _fill(store, "telegram", "111", 1)
        moved = db_dir.with_name("db-away")
        store.engine.dispose()
        shutil.move(db_dir, moved)
        _fill(store, "telegram", "111", 2)  # buffered while the database is down
        assert store.down and store.pending() > 0
        with pytest.raises(StoreUnavailable, match="cannot be reached"):
            store.forget_user(alice)
        shutil.move(moved, db_dir)

        store.forget_user(alice)

        assert store.pending() == 0
        assert all(_count(store, m, alice) == 0 for m in TABLES)
    finally:
        store.close()
