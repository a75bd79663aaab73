"""`train ranker` from a real SQL log (SQLite, and PostgreSQL when it is up): attribution of later actions
to the search that showed the product, the promote rule, and the search using the promoted ranker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.store.database import Store
from bot.store.records import TurnRecord
from model.training.common import TrainDataError
from model.training.ranker import train_ranker
from model.training.registry import Registry
from tests.conftest import _pg_url, hashing_factory

ENC = {"en": "hashing", "multi": "hashing"}
QUERIES = ["running shoe", "running shoes", "shoe for running", "mesh running shoe"]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = (f"sqlite:///{tmp_path / 'shop.db'}" if request.param == "sqlite"
           else _pg_url(request.getfixturevalue("pg_schema")))
    s = Store(url, tmp_path / "buffer", clock=Clock(), retry_interval=0)
    yield s
    s.close()


def _search(store: Store, user: str, query: str, shown: list[str]) -> str:
    tid = uuid.uuid4().hex
    store.log(TurnRecord(tid, user, query, "results", intent="search", query=query,
                         shown=[(s, i + 1, None) for i, s in enumerate(shown)], shown_by="ranker:hybrid"))
    return tid


def _open(store: Store, user: str, sku: str) -> str:
    tid = uuid.uuid4().hex
    store.log(TurnRecord(tid, user, f"[button] details:{sku}", "details", intent="details",
                         shown=[(sku, 1, None)]))
    return tid


def _shoppers(store: Store, engine, n: int, favourite: str) -> None:  # type: ignore[no-untyped-def]
    """Shoppers who search for running shoes, open ``favourite`` wherever it is, like and sometimes buy it,
    and pass over the rest."""
    for i in range(n):
        user = f"sim:u{i}"
        q = QUERIES[i % len(QUERIES)]
        shown = engine.search(q, k=3).skus
        _search(store, user, q, shown)
        if favourite in shown:
            d = _open(store, user, favourite)
            store.feedback(user, "thumb_up", turn_id=d, sku=favourite)
            if i % 3 == 0:
                store.log_feedback(user, "purchase", sku=favourite)  # reported by the shop, no turn


def test_later_actions_count_for_the_search_that_showed_the_product(store: Store) -> None:
    t1 = _search(store, "sim:a", "running shoe", ["SHO-1", "SHO-2"])
    d = _open(store, "sim:a", "SHO-2")
    store.feedback("sim:a", "thumb_up", turn_id=d, sku="SHO-2")
    store.feedback("sim:a", "click", turn_id=t1, sku="SHO-1")
    t2 = _search(store, "sim:a", "coat", ["COA-1"])
    store.log_feedback("sim:a", "purchase", sku="SHO-2")  # after the next search: not the first search's doing
    store.log_feedback("sim:a", "purchase", sku="COA-1")
    _search(store, "sim:b", "running shoe", ["SHO-2"])  # someone else's search sees none of it
    logs = {r.turn_id: r for r in store.search_log()}
    assert [s for s, _r, _sc in logs[t1].shown] == ["SHO-1", "SHO-2"]
    got = sorted((sku, kind) for sku, kind, _v in logs[t1].feedback)
    assert got == [("SHO-1", "click"), ("SHO-2", "details"), ("SHO-2", "thumb_up")]
    assert sorted((sku, kind) for sku, kind, _v in logs[t2].feedback) == [("COA-1", "purchase")]
    other = next(r for r in logs.values() if r.user_id == "sim:b")
    assert other.feedback == []
    assert [r.turn_id for r in store.search_log()][:2] == [t1, t2]  # oldest first


def test_training_promotes_a_ranker_that_learned_what_shoppers_prefer(
        store: Store, engine, products, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from retrieval.indexer import build_bundle, load_engine
    from retrieval.rerank import RELEVANT_SHARE

    hits = engine.search("running shoe", k=3).hits
    # the words rank it below another clearly relevant product; shoppers want it
    favourite = [h.sku for h in hits if h.score >= RELEVANT_SHARE * hits[0].score][-1]
    assert favourite != hits[0].sku
    _shoppers(store, engine, 60, favourite)
    reg = Registry(tmp_path / "models")
    report = train_ranker(store.search_log(), engine, reg, min_searches=20)
    assert report.promoted, report.summary()
    assert report.candidate["ndcg@10"] > report.baseline["ndcg@10"]
    assert report.baseline_name == "built-in" and report.test_examples >= 5
    assert "ndcg@10" in report.summary() and "promoted" in report.summary()
    active = reg.active("ranker")
    assert active is not None and active.name == report.version
    assert active.meta["trained_on"]["with_actions"] >= 20 and "coec" in active.meta["weights"]

    # reindex carries it; the search now puts the shoppers' favourite first, also for a new wording
    root = tmp_path / "index"
    build_bundle(products, root, encoders=ENC, encoder_factory=hashing_factory, ranker_dir=active.path)
    after = load_engine(root, encoders=ENC, encoder_factory=hashing_factory)
    assert after.ranker_version == report.version
    assert after.search("running shoe", k=3).skus[0] == favourite
    assert after.search("running shoes for women", k=3).skus[0] == favourite

    # training again on the same log cannot beat the ranker that already gets it right: kept, not promoted
    again = train_ranker(store.search_log(), after, reg, min_searches=20)
    assert not again.promoted and again.baseline_name == report.version
    assert reg.active_name("ranker") == report.version
    assert len(reg.versions("ranker")) == 2


def test_too_little_feedback_is_one_clear_sentence_and_registers_nothing(
        store: Store, engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _shoppers(store, engine, 6, engine.search("running shoe", k=3).skus[-1])
    reg = Registry(tmp_path / "models")
    with pytest.raises(TrainDataError, match=r"has \d+ searches where the shopper clicked.*at least 30"):
        train_ranker(store.search_log(), engine, reg)
    assert reg.versions("ranker") == []
