"""A running assistant serves what the owner publishes without a restart: a new index bundle from
`shopbot reindex` (as a nightly cron job runs it), a newly activated intents version, and a damaged
version or bundle is said in the log while the previous one keeps serving (hashing encoder, SQLite)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.app import Assistant, build_assistant
from bot.dialogue.nlu.intents import IntentRow, train_intents
from bot.dialogue.replies import Event
from bot.services import reindex
from bot.settings import Settings
from model.training.intents import MODEL_FILE
from model.training.registry import Registry
from retrieval.bundle import current_dir
from retrieval.encoders import HashingEncoder
from retrieval.indexer import PRODUCTS_FILE
from tests.conftest import ROWS, write_catalog

RACKET = ("TEN-1", "Wilson Pro Staff Tennis Racket", "威尔胜网球拍", "Graphite tennis racket.", "Sports > Tennis",
          "Wilson", "189.00", "7", "black", "", "graphite")


@pytest.fixture
def shop(tmp_path: Path):  # type: ignore[no-untyped-def]
    catalog = write_catalog(tmp_path / "catalog.csv")
    s = Settings(data_dir=tmp_path / "data", catalog=catalog, encoder="hashing", multilingual_encoder="hashing",
                 body_view=False, reload_seconds=0.05)
    a = build_assistant(s, llm=False)
    yield s, a
    a.close()


def _skus(a: Assistant, text: str, user: str = "u1") -> list[str]:
    return [c.sku for r in a.handle(Event(user=user, channel="test", text=text)) for c in r.cards]


def test_a_reindex_from_cron_is_served_without_a_restart(shop) -> None:  # type: ignore[no-untyped-def]
    s, a = shop
    assert a.reload() == []  # nothing new published
    assert "TEN-1" not in _skus(a, "tennis racket")
    write_catalog(s.catalog, [*ROWS, RACKET])
    reindex(s, s.catalog, full=False)  # what `shopbot reindex` does, in another process
    assert a.reload() == ["index"]
    assert a.engine.bundle == current_dir(s.index_root)
    assert "TEN-1" in _skus(a, "tennis racket", user="u2")
    assert "wilson" in a.nlu.brands  # the catalog's vocabulary came with it
    assert a.reload() == []


def test_the_watch_picks_up_a_new_index_on_its_own(shop) -> None:  # type: ignore[no-untyped-def]
    s, a = shop

    async def go() -> bool:
        watch = asyncio.create_task(a.watch(s.reload_seconds))
        write_catalog(s.catalog, [*ROWS, RACKET])
        await asyncio.to_thread(reindex, s, s.catalog, full=False)
        for _ in range(200):
            if a.engine.bundle == current_dir(s.index_root):
                break
            await asyncio.sleep(0.05)
        watch.cancel()
        return a.engine.product("TEN-1") is not None

    assert asyncio.run(go())


def test_a_broken_bundle_is_said_once_and_the_old_index_keeps_serving(shop, caplog) -> None:  # type: ignore[no-untyped-def]
    s, a = shop
    old = a.engine
    write_catalog(s.catalog, [*ROWS, RACKET])
    reindex(s, s.catalog, full=False)
    (current_dir(s.index_root) / PRODUCTS_FILE).write_text("{not json\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="bot.app"):
        assert a.reload() == []
        assert a.reload() == []
    said = [r for r in caplog.records if "cannot be served" in r.getMessage()]
    assert len(said) == 1 and a.engine is old
    assert "COA-1" in _skus(a, "red winter coat")


def test_a_newly_activated_intents_version_is_served(shop) -> None:  # type: ignore[no-untyped-def]
    s, a = shop
    rows = [IntentRow(u, i, "en") for i, us in {
        "search": ["red winter coat", "running shoes", "a laptop", "phone case"],
        "track_order": ["where is my parcel", "track my order", "order status"],
        "greet": ["hello", "hi there", "good morning"],
    }.items() for u in us]
    reg = Registry(s.models_dir)
    with reg.stage("intents") as staged:
        train_intents(rows, [HashingEncoder()], c=10.0).save(staged / MODEL_FILE)
        version = reg.commit("intents", staged, {"note": "test"}, promote=True)
    assert a.reload() == ["intents"]
    assert a.dialogue.versions["intent"] == version.name == a.store.versions["intent"]
    assert a.nlu.model.labels != () and set(a.nlu.model.labels) == {"search", "track_order", "greet"}
    assert a.reload() == []


def test_a_damaged_recommender_version_falls_back_to_the_built_in_scoring(shop, caplog) -> None:  # type: ignore[no-untyped-def]
    s, a = shop
    reg = Registry(s.models_dir)
    with reg.stage("recommender") as staged:
        (staged / "model.pt").write_bytes(b"not a model")
        reg.commit("recommender", staged, {"note": "test"}, promote=True)
    with caplog.at_level(logging.WARNING):
        assert a.reload() == ["recommender"]
    assert a.dialogue.sequential is None and "recommender" not in a.dialogue.versions
    assert any("cannot be loaded" in r.getMessage() for r in caplog.records)
    assert a.reload() == []
    assert [r for r in a.handle(Event(user="u3", channel="test", text="recommend something")) if r.cards]
