"""``/forget`` leaves nothing of the shopper in any table of the schema: every table is named below with how it
refers to a shopper, or why it holds no shopper data, so a table added later without a rule fails this test
instead of silently keeping data a shopper asked to delete."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import String, Text, func, select
from sqlalchemy.orm import Session

from bot.store.database import Store
from bot.store.records import TurnRecord
from bot.store.schema import Base
from tests.fakes.clock import Clock

#: table -> the columns that hold a shopper's id, or a string saying why the table holds no shopper data
RULES: dict[str, tuple[str, ...] | str] = {
    "users": ("id",),
    "conversation_state": ("user_id",),
    "turns": ("user_id",),
    "impressions": ("user_id",),
    "feedback": ("user_id",),
    "handoffs": ("user_id",),
    "watches": ("user_id",),
    "button_payloads": "keyed by a hash of the button's own payload (a SKU, a page, a suggested search), shared by "
                       "every shopper shown that button; no column names a shopper",
    "handled_updates": "only Telegram's update number and when it was answered, never who sent it",
    "update_inbox": ("user_id",),
    "handled_gaps": "the owner's marks on casefolded search themes from the console; handled_by is the owner",
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'shop.db'}", tmp_path / "buffer", clock=Clock(), retry_interval=0)
    yield s
    s.close()


def _everything(store: Store, external: str) -> str:
    """One shopper with rows in every table the schema has."""
    user = store.touch_user("telegram", external, "en").user_id
    tid = store.log(TurnRecord(f"turn{external}", user, "red coat", "Here are 2", intent="search", query="red coat",
                               shown=[("APP-00001", 1, 0.9), ("APP-00002", 2, 0.8)], state={"query": "red coat"}))
    store.log_feedback(user, "thumb_up", turn_id=tid, sku="APP-00001")
    store.log_feedback(user, "click", sku="APP-00002")
    store.handoff(user, "wants a person")
    store.release(user)
    store.handoff(user, "again")
    store.add_watch(user, channel="telegram", chat_id=external, language="en", query="red coat", filters={},
                    expires_at=store.clock() + timedelta(days=30))
    store.save_payload(f"h:{external}", "search:" + "waterproof running shoes " * 4)
    store.mark_update_handled(int(external))
    store.keep_updates([(int(external) + 1, user, f'{{"update_id": {int(external) + 1}, "message": {{"text": "red coat"}}}}')])
    store.mark_gaps_handled(["tent for ten"], theme="tents")
    store.log_shop_reply(user, "A person will call you.")
    return user


def _rows(store: Store, table: str, columns: tuple[str, ...], user: str) -> int:
    t = Base.metadata.tables[table]
    with Session(store.engine) as s:
        return sum(int(s.execute(select(func.count()).select_from(t).where(t.c[c] == user)).scalar_one()) for c in columns)


def _text_mentions(store: Store, user: str) -> list[str]:
    """Every table and text column of the whole schema whose value contains the shopper's id."""
    found: list[str] = []
    with Session(store.engine) as s:
        for t in Base.metadata.sorted_tables:
            for c in t.columns:
                if isinstance(c.type, String | Text):
                    n = s.execute(select(func.count()).select_from(t).where(c.contains(user))).scalar_one()
                    if n:
                        found.append(f"{t.name}.{c.name}")
    return found


def test_every_table_of_the_schema_has_a_rule() -> None:
    tables = {t.name for t in Base.metadata.sorted_tables}
    assert tables - set(RULES) == set(), "a new table: say in RULES how it refers to a shopper (and forget it)"
    assert set(RULES) - tables == set(), "RULES names a table the schema no longer has"
    for name, rule in RULES.items():
        if isinstance(rule, tuple):
            assert all(c in Base.metadata.tables[name].c for c in rule), name


def test_forget_leaves_no_row_of_the_shopper_in_any_table(store: Store) -> None:
    alice = _everything(store, "111")
    bob = _everything(store, "222")
    with Session(store.engine) as s:  # the fixture really filled every table
        for t in Base.metadata.sorted_tables:
            assert s.execute(select(func.count()).select_from(t)).scalar_one() > 0, t.name
    keyed = {name: cols for name, cols in RULES.items() if isinstance(cols, tuple)}
    before_bob = {name: _rows(store, name, cols, bob) for name, cols in keyed.items()}
    assert all(_rows(store, name, cols, alice) > 0 for name, cols in keyed.items())

    store.forget_user(alice)

    assert {name: _rows(store, name, cols, alice) for name, cols in keyed.items()} == dict.fromkeys(keyed, 0)
    assert _text_mentions(store, alice) == []  # not in any other column of any table either
    assert {name: _rows(store, name, cols, bob) for name, cols in keyed.items()} == before_bob
    assert store.watches(alice) == [] and store.load_state(alice) is None and store.recent_turns(alice) == []
    assert len(store.watches(bob)) == 1
