"""SHOPBOT_RETENTION_DAYS: conversations older than the period are deleted (turns with their shown products and
feedback, released handoffs, handled updates, old payloads, long-expired watches, idle shoppers' state and rows),
recent ones are kept whole, ``--dry-run`` counts exactly what a real prune then deletes, and the long-running
commands prune once a day."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.app import Assistant
from bot.cli.main import cli
from bot.store.database import Store
from bot.store.records import TurnRecord
from bot.store.schema import Base
from tests.fakes.clock import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'shop.db'}", tmp_path / "buffer", clock=clock, retry_interval=0)
    yield s
    s.close()


def _counts(store: Store) -> dict[str, int]:
    with Session(store.engine) as s:
        return {t.name: int(s.execute(select(func.count()).select_from(t)).scalar_one()) for t in Base.metadata.sorted_tables}


def _shopper(store: Store, external: str, n: int) -> str:
    user = store.touch_user("telegram", external, "en").user_id
    for i in range(n):
        tid = store.log(TurnRecord(f"{external}-{i}", user, "red coat", "Here are 2", intent="search", query="red coat",
                                   shown=[("APP-00001", 1, 0.9), ("APP-00002", 2, 0.8)], state={"query": "red coat"}))
        store.log_feedback(user, "thumb_up", turn_id=tid, sku="APP-00001")
    store.log_feedback(user, "click", sku="APP-00002")
    store.handoff(user, "a person please")
    store.release(user)
    store.add_watch(user, channel="telegram", chat_id=external, language="en", query="red coat", filters={},
                    expires_at=store.clock() + timedelta(days=7))
    store.save_payload(f"h:{external}", "search:" + "waterproof running shoes " * 4)
    store.mark_update_handled(int(external))
    return user


def _old_and_new(store: Store, clock: Clock) -> tuple[str, str]:
    old = _shopper(store, "111", 3)
    clock.now += timedelta(days=40)  # old's watch expired 33 days ago
    new = _shopper(store, "222", 2)
    clock.now += timedelta(days=1)
    return old, new


def test_old_conversations_go_and_recent_ones_stay_whole(store: Store, clock: Clock) -> None:
    old, new = _old_and_new(store, clock)
    before = _counts(store)

    counts = store.prune(30)

    assert counts == {"impressions": 6, "feedback": 4, "turns": 3, "handoffs": 1, "handled_updates": 1,
                      "button_payloads": 1, "watches": 1, "conversation_state": 1, "users": 1}
    after = _counts(store)
    assert {k: before[k] - after[k] for k in before if before[k] != after[k]} == {k: v for k, v in counts.items() if v}
    assert store.recent_turns(old) == [] and store.load_state(old) is None and store.watches(old) == []
    # the recent shopper is untouched
    assert len(store.recent_turns(new)) == 2 and store.load_state(new) == {"query": "red coat"}
    assert len(store.watches(new)) == 1
    with Session(store.engine) as s:
        users = {u for (u,) in s.execute(select(Base.metadata.tables["users"].c.id))}
    assert users == {new}
    assert sum(store.prune(30).values()) == 0  # nothing left to prune


def test_a_shopper_handed_to_a_person_keeps_the_user_row(store: Store, clock: Clock) -> None:
    user = _shopper(store, "111", 1)
    store.handoff(user, "still waiting for a person")
    clock.now += timedelta(days=40)
    counts = store.prune(30)
    assert counts["turns"] == 1 and counts["users"] == 0 and store.is_handed_over(user)


def test_a_dry_run_counts_exactly_what_a_prune_deletes_and_deletes_nothing(store: Store, clock: Clock) -> None:
    _old_and_new(store, clock)
    before = _counts(store)
    dry = store.prune(30, dry_run=True)
    assert _counts(store) == before
    assert store.prune(30) == dry


def test_shopbot_prune_command(tmp_path: Path, clock: Clock) -> None:
    env = {"SHOPBOT_DATA_DIR": str(tmp_path / "data")}
    runner = CliRunner()
    no_period = runner.invoke(cli, ["prune"], env=env)
    assert no_period.exit_code == 1 and "SHOPBOT_RETENTION_DAYS" in no_period.output

    from bot.settings import Settings

    s = Settings(data_dir=tmp_path / "data")
    with Store(s.db_url, s.buffer_dir, clock=clock) as store:
        _old_and_new(store, clock)
    # the command's clock is the real one: everything the fake clock wrote (in 2026) is "recent" today,
    # so a short period keeps all of it; what matters here is the wiring and the dry-run/JSON output
    dry = runner.invoke(cli, ["prune", "--dry-run", "--json"], env={**env, "SHOPBOT_RETENTION_DAYS": "30"})
    assert dry.exit_code == 0, dry.output
    out = json.loads(dry.output.strip().splitlines()[-1])
    assert out["days"] == 30 and out["dry_run"] is True and set(out["rows"]) >= {"turns", "users"}
    text = runner.invoke(cli, ["prune", "--days", "7"], env=env)
    assert text.exit_code == 0 and "Older than 7 days" in text.output


def test_the_long_running_commands_prune_once_a_day(store: Store, clock: Clock, tmp_path: Path) -> None:
    old, _new = _old_and_new(store, clock)
    off = Assistant(SimpleNamespace(), store, SimpleNamespace(), SimpleNamespace(), SimpleNamespace(),  # type: ignore[arg-type]
                    settings=SimpleNamespace(retention_days=None))  # type: ignore[arg-type]
    assert off.prune_if_due() is None and len(store.recent_turns(old)) == 3

    on = Assistant(SimpleNamespace(), store, SimpleNamespace(), SimpleNamespace(), SimpleNamespace(),  # type: ignore[arg-type]
                   settings=SimpleNamespace(retention_days=30))  # type: ignore[arg-type]
    first = on.prune_if_due()
    assert first is not None and first["turns"] == 3
    assert on.prune_if_due() is None  # not again within the day
    assert on._pruned_at is not None
    on._pruned_at -= Assistant.PRUNE_EVERY
    assert on.prune_if_due() is not None
