"""Retraining the next-item recommender from the store's interaction log (model/training/recommender.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.store.database import Store
from model.training.common import TrainDataError
from model.training.recommender import (
    MIN_TEST_USERS,
    MIN_TRAIN_USERS,
    auto_config,
    shopper_sequences,
    split_log,
    train_recommender,
)
from model.training.registry import Registry
from retrieval.catalog import Product, load_catalog
from retrieval.recommend.sequential import SeqConfig
from tests.fakes.shop_log import START, Shop, clocked_store, journeys, write_log


@pytest.fixture
def shop() -> Shop:
    return Shop()


@pytest.fixture
def products(shop: Shop, tmp_path: Path) -> list[Product]:
    return load_catalog(shop.write_catalog(tmp_path / "catalog.csv")).products


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    (tmp_path / "db").mkdir()
    s, _ = clocked_store(tmp_path / "db" / "shop.db", tmp_path / "buffer")
    yield s
    s.close()


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, str, datetime]]:
    """300 synthetic shoppers' journeys, written through a real SQLite store and read back."""
    d = tmp_path_factory.mktemp("log")
    s, clock = clocked_store(d / "shop.db", d / "buffer")
    write_log(s, clock, journeys(Shop(), 300))
    rows = s.interactions(limit=1_000_000)
    s.close()
    return rows


def test_sequences_keep_positive_kinds_in_time_order_and_merge_back_to_back_repeats() -> None:
    t = [START + timedelta(minutes=i) for i in range(8)]
    rows = [("a", "X", "details", t[0]), ("a", "X", "click", t[1]), ("a", "Y", "thumb_down", t[2]),
            ("a", "Z", "add_to_cart", t[4]), ("a", "Y", "search-shown", t[3]), ("a", "W", "rating", t[5]),
            ("a", "X", "thumb_up", t[6]), ("b", "Y", "purchase", t[7])]
    seqs = shopper_sequences(reversed(rows))
    assert [s for s, _ in seqs["a"]] == ["X", "Z", "X"]  # X twice in a row is one step; Y was only disliked or shown
    assert seqs["a"][0][1] == t[0].timestamp()
    assert [s for s, _ in seqs["b"]] == ["Y"]


def test_split_holds_out_recent_shoppers_last_product_and_never_trains_on_the_newest_fifth(
        logged: list[tuple[str, str, str, datetime]], products: list[Product]) -> None:
    split = split_log(logged, products)
    assert split.n_catalog == len(products) and split.items[: len(products)] == [p.sku for p in products]
    seqs = shopper_sequences(logged)
    times = sorted(t for s in seqs.values() for _, t in s)
    assert split.cutoff == times[len(times) - round(len(times) * 0.2)]
    assert len(split.targets) >= MIN_TEST_USERS and split.train_users >= MIN_TRAIN_USERS
    # training holds exactly the interactions before the cut-off: no target, nothing newer
    assert split.train_events == sum(1 for t in times if t < split.cutoff)
    assert all(r.time < split.cutoff for r in split.train_rows)
    for user, hist, target in zip(split.test_users, split.histories, split.targets, strict=True):
        seq = seqs[user]
        assert seq[-1][1] >= split.cutoff and split.items[target] == seq[-1][0]
        assert [split.items[i] for i in hist] == [s for s, _ in seq[:-1]]


def test_auto_config_gives_small_logs_enough_steps_and_keeps_games_defaults() -> None:
    small = auto_config(240)
    assert small.batch_size == 32 and small.epochs * -(-240 // 32) >= 200 and small.lr == 1e-2
    games = auto_config(50_546)  # early stopping: Games-sized data keeps SeqConfig's cap and patience
    assert games.batch_size == 512 and games.lr == 3e-3
    assert (games.epochs, games.patience) == (SeqConfig().epochs, SeqConfig().patience)
    assert small.patience * -(-240 // 32) >= 50  # a small log's patience is counted in steps, not two epochs
    assert auto_config(240, epochs=4).epochs == 4


def test_too_little_data_is_one_sentence_and_nothing_is_registered(
        store: Store, products: list[Product], tmp_path: Path) -> None:
    store.feedback("a", "click", sku="C0-START0")
    store.feedback("a", "click", sku="C0-HUB0")
    reg = Registry(tmp_path / "models")
    with pytest.raises(TrainDataError) as err:
        train_recommender(store.interactions(), products, reg, progress=False)
    msg = str(err.value)
    assert f"at least {MIN_TRAIN_USERS} shoppers" in msg and f"{MIN_TEST_USERS} shoppers" in msg
    assert "the log has 0 and 1 (2 interactions from 1 shoppers)" in msg and "\n" not in msg
    assert reg.versions("recommender") == [] and reg.active("recommender") is None
    assert not any((tmp_path / "models" / "recommender").glob(".staging-*"))


def test_candidate_beats_popularity_and_builtin_is_promoted_and_a_weaker_one_stays_inactive(
        logged: list[tuple[str, str, str, datetime]], products: list[Product], tmp_path: Path) -> None:
    reg = Registry(tmp_path / "models")
    report = train_recommender(logged, products, reg, epochs=6, progress=False)
    meta = reg.get("recommender", str(report.version)).meta
    m = meta["metrics"]
    # the built-in scoring cannot see four steps back; popularity only knows the bestsellers (history); the
    # model beats both alone and as served (added to the built-in scoring: what decides)
    assert report.baseline_name == "built-in" and m["baseline"] == m["built-in"]
    assert m["candidate"]["ndcg@10"] > m["built-in"]["ndcg@10"] + 0.2
    assert m["model_alone"]["ndcg@10"] > m["built-in"]["ndcg@10"] + 0.2
    assert m["built-in"]["ndcg@10"] > m["popularity"]["ndcg@10"]
    assert report.promoted and reg.active_name("recommender") == report.version
    assert meta["trained_on"]["test_shoppers"] == report.test_examples >= MIN_TEST_USERS
    assert meta["trained_on"]["kinds"] == ["add_to_cart", "click", "details", "purchase", "thumb_up"]
    assert (reg.get("recommender", str(report.version)).path / "model.pt").is_file()
    assert "The model alone: ndcg@10" in report.summary() and "popularity" in report.summary()

    # one epoch from the warm start is worse than the active model: kept, not activated
    weak = train_recommender(logged, products, reg, epochs=1, progress=False)
    assert weak.baseline_name == report.version
    assert weak.baseline["ndcg@10"] == pytest.approx(report.candidate["ndcg@10"])  # the active model, re-measured
    assert not weak.promoted and weak.candidate["ndcg@10"] < weak.baseline["ndcg@10"]
    assert reg.active_name("recommender") == report.version
    assert {v.name for v in reg.versions("recommender")} == {report.version, weak.version}
    assert reg.get("recommender", str(weak.version)).meta["promoted"] is False


def test_a_damaged_active_version_is_reported_and_the_builtin_is_the_baseline(
        logged: list[tuple[str, str, str, datetime]], products: list[Product], tmp_path: Path) -> None:
    reg = Registry(tmp_path / "models")
    first = train_recommender(logged, products, reg, epochs=2, progress=False)
    (reg.get("recommender", str(first.version)).path / "model.pt").write_bytes(b"not a model")
    again = train_recommender(logged, products, reg, epochs=2, progress=False)
    assert again.baseline_name == "built-in"
    assert any("could not be loaded" in n and str(first.version) in n for n in again.notes)


def test_targets_missing_from_the_catalog_are_left_out(products: list[Product]) -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [(f"u{u}", sku, "click", t + timedelta(hours=u, minutes=k))
            for u in range(10) for k, sku in enumerate(["C0-START0", "C0-HUB0", "GONE-1" if u == 9 else "C0-PICK0"])]
    split = split_log(rows, products)
    assert "GONE-1" in split.items and split.items.index("GONE-1") >= split.n_catalog
    assert "u9" not in split.test_users and split.skipped_targets == 1


def test_builtin_scores_rank_like_the_served_recommender_with_and_without_a_model(
        logged: list[tuple[str, str, str, datetime]], products: list[Product], tmp_path: Path) -> None:
    """The evaluation's copy of Recommender.for_user's scoring must not drift from the real one."""
    import numpy as np

    from model.training.recommender import builtin_scores
    from retrieval.recommend.recommender import Recommender, as_interactions

    reg = Registry(tmp_path / "models")
    report = train_recommender(logged, products, reg, epochs=3, progress=False)
    from retrieval.recommend.sequential import SequentialRecommender

    model, skus = SequentialRecommender.load(reg.get("recommender", str(report.version)).path)
    assert skus is not None
    rows = as_interactions(logged)
    users = sorted({r.user for r in rows})[:25]
    histories = [[r for r in rows if r.user == u and r.kind != "purchase"][:4] for u in users]
    everything = np.tile(np.arange(len(products)), (len(users), 1))
    for seq in (None, (model, skus)):
        rec = Recommender(products, rows)
        if seq is not None:
            rec.attach_sequential(*seq)
        scores = builtin_scores(rec, histories, everything, None, seq)
        for u, hist in enumerate(histories):
            liked = {rec.by_sku[r.sku] for r in hist}
            masked = np.where(np.isin(np.arange(len(products)), list(liked)), -np.inf, scores[u])
            [top] = rec.for_user(hist, k=1)
            assert top.sku == products[int(np.argmax(masked))].sku
            assert top.score == pytest.approx(masked.max())


def test_epochs_are_chosen_by_early_stopping_on_training_shoppers_never_on_the_held_out_ones(
        logged: list[tuple[str, str, str, datetime]], products: list[Product], tmp_path: Path) -> None:
    small = SeqConfig(dim=32, epochs=4, patience=1, batch_size=32, lr=1e-2, dropout=0.1, threads=1)
    report = train_recommender(logged, products, Registry(tmp_path / "a"), config=small, progress=False)
    meta = Registry(tmp_path / "a").get("recommender", str(report.version)).meta["model"]
    assert meta["early_stopping"] is True and meta["validation_shoppers"] == 50
    assert 1 <= meta["epochs_chosen"] <= meta["epochs_run"] <= 4 and len(meta["validation_ndcg@10"]) == meta["epochs_run"]
    assert f"chose epoch {meta['epochs_chosen']} of {meta['epochs_run']} run" in report.summary()
    # every held-out shopper's last product (the target) is another one: the same training part, the same epochs
    cutoff = split_log(logged, products).cutoff
    last = {u: seq[-2:] for u, seq in shopper_sequences(logged).items() if seq[-1][1] >= cutoff}
    other = {u: next(p.sku for p in products if p.sku not in {s for s, _ in pair}) for u, pair in last.items()}
    moved = [(u, other[u] if u in last and sku == last[u][-1][0] and ts.timestamp() >= last[u][-1][1] else sku,
              kind, ts) for u, sku, kind, ts in logged]
    again = train_recommender(moved, products, Registry(tmp_path / "b"), config=small, progress=False)
    meta2 = Registry(tmp_path / "b").get("recommender", str(again.version)).meta["model"]
    assert meta2["validation_ndcg@10"] == meta["validation_ndcg@10"] and meta2["epochs_chosen"] == meta["epochs_chosen"]
    assert again.candidate != report.candidate
    # --epochs: exactly that many, on every training shopper
    fixed = train_recommender(logged, products, Registry(tmp_path / "c"), config=small, epochs=2, progress=False)
    meta3 = Registry(tmp_path / "c").get("recommender", str(fixed.version)).meta["model"]
    assert meta3["early_stopping"] is False and meta3["epochs_run"] == meta3["epochs_chosen"] == 2
    assert "Trained for 2 epochs as asked" in fixed.summary()


def test_too_few_shoppers_to_stop_on_train_the_fixed_budget(
        logged: list[tuple[str, str, str, datetime]], products: list[Product], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import model.training.recommender as trainer

    monkeypatch.setattr(trainer, "carve_validation", lambda seqs, n_items, **kw: (seqs, None))
    small = SeqConfig(dim=16, epochs=50, patience=1, batch_size=128, lr=1e-2, dropout=0.1, threads=1)
    report = train_recommender(logged, products, Registry(tmp_path / "m"), config=small, progress=False)
    meta = Registry(tmp_path / "m").get("recommender", str(report.version)).meta
    # about 200 optimizer steps of 128 histories, not the cap of 50 epochs
    steps_per_epoch = -(-meta["trained_on"]["train_shoppers"] // 128)
    assert meta["model"]["early_stopping"] is False and meta["model"]["epochs_run"] == -(-200 // steps_per_epoch) != 50
    assert "Too few training shoppers to stop early on" in report.summary()
