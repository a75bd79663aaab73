"""Recommendations: complements, new shoppers, filtering, reasons, the next-item model and the eval metric."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from retrieval.catalog import Product
from retrieval.recommend.cooccurrence import cooccurrence, cooccurrence_scores
from retrieval.recommend.evaluation import load_recbole, ndcg_recall, ranks_of_first, sample_candidates
from retrieval.recommend.recommender import COMPLEMENTS, Recommender, complement_categories


def _p(sku: str, category: str, brand: str = "B", rating: float = 4.0, stock: int = 5) -> Product:
    return Product(sku=sku, title=f"{category.split(' > ')[-1]} {sku}", price=10.0, category=tuple(category.split(" > ")),
                   brand=brand, stock=stock, attributes={"rating": (str(rating),)})


@pytest.fixture
def shop() -> list[Product]:
    out = []
    for cat, n in [("Laptops > Notebooks", 4), ("Computer Accessories > Mice", 3), ("Computer Accessories > Laptop Bags", 3),
                   ("Phones > Chargers", 3), ("Phones > Smartphones", 3), ("Phones > Cases", 3), ("Books > Fiction", 3),
                   ("Apparel > Coats", 3)]:
        prefix = cat.split(" > ")[-1][:3].upper()
        out += [_p(f"{prefix}-{i}", cat, rating=3.0 + i * 0.3) for i in range(n)]
    return out


def test_complements_after_a_laptop_purchase_are_accessories(shop: list[Product]) -> None:
    rec = Recommender(shop)
    history = [("u", "NOT-0", "details", 1), ("u", "NOT-1", "details", 2), ("u", "NOT-1", "purchase", 3)]
    picks = rec.for_user(history, k=5)
    assert picks
    cats = [p.product.category for p in picks]
    assert all(c[0] != "Laptops" for c in cats), cats
    first = {p.product.category[-1] for p in picks[:3]}
    assert first <= {"Mice", "Laptop Bags", "Chargers"}
    assert all(p.reason for p in picks)
    assert any("goes with your" in p.reason for p in picks)
    assert set(complement_categories(shop[0])) == set(COMPLEMENTS["Laptops"])


def test_learned_copurchase_rules_come_first(shop: list[Product]) -> None:
    # three shoppers bought a phone and then a book: the log's rule beats the table
    log = []
    for u in range(3):
        log += [(f"s{u}", f"SMA-{u}", "purchase", 1), (f"s{u}", f"FIC-{u}", "purchase", 2)]
    rec = Recommender(shop, log)
    assert rec.rules["Phones > Smartphones"] == ("Books > Fiction",)
    picks = rec.complements("SMA-0", k=3)
    assert picks[0].product.category[0] == "Books" and "often bought with" in picks[0].reason


def test_new_shopper_gets_popular_diverse_products(shop: list[Product]) -> None:
    log = [(f"u{i}", "NOT-0", "click", i) for i in range(5)] + [(f"u{i}", "NOT-1", "click", i) for i in range(4)]
    log += [(f"u{i}", "NOT-2", "click", i) for i in range(3)] + [("x", "FIC-0", "purchase", 1)]
    rec = Recommender(shop, log)
    picks = rec.for_user([], k=6)
    assert len(picks) == 6
    assert [p.sku for p in picks[:2]] == ["NOT-0", "NOT-1"]  # the most popular, but only two laptops
    cats = [p.product.category for p in picks]
    assert max(cats.count(c) for c in cats) <= 2
    assert all(p.reason.startswith("popular in") for p in picks)


def test_already_bought_and_disliked_are_filtered(shop: list[Product]) -> None:
    rec = Recommender(shop)
    history = [("u", "FIC-0", "purchase", 1), ("u", "FIC-1", "thumb_down", 2), ("u", "COA-0", "details", 3)]
    skus = {p.sku for p in rec.for_user(history, k=10)}
    assert skus and not skus & {"FIC-0", "FIC-1", "COA-0"}
    out_of_stock = Recommender([*shop, _p("ZZZ-0", "Toys > Dolls", rating=5.0, stock=0)])
    assert "ZZZ-0" not in {p.sku for p in out_of_stock.popular(k=20)}


def test_co_occurrence_drives_reasons(shop: list[Product]) -> None:
    log = []
    for u in range(4):  # shoppers who look at a coat then at a given book
        log += [(f"s{u}", "COA-0", "details", 1), (f"s{u}", "FIC-2", "details", 2)]
    rec = Recommender(shop, log)
    picks = rec.for_user([("me", "COA-0", "details", 1)], k=3)
    assert picks[0].sku == "FIC-2"
    assert "also looked at" in picks[0].reason and "COA-0" in picks[0].reason


def test_content_similarity_through_the_search_engine(engine) -> None:  # type: ignore[no-untyped-def]
    rec = Recommender(engine.products, engine=engine)
    picks = rec.for_user([("me", "SHO-1", "details", 1)], k=3)
    assert picks and picks[0].sku == "SHO-2"  # the other running shoe
    assert picks[0].reason.startswith("because you looked at")


def test_sequential_model_learns_a_toy_pattern(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from retrieval.recommend.sequential import SeqConfig, SequentialRecommender

    # item i is always followed by i + 1 (mod 12)
    rng = np.random.default_rng(0)
    seqs = []
    for _ in range(200):
        s = int(rng.integers(12))
        seqs.append([(s + j) % 12 for j in range(int(rng.integers(3, 7)))])
    model = SequentialRecommender(12, SeqConfig(dim=16, layers=1, heads=1, epochs=30, batch_size=64, dropout=0.0,
                                                lr=5e-3, negatives=0, threads=1), device="cpu")
    losses = model.fit(seqs)
    assert losses[-1] < losses[0] * 0.5
    scores = model.score([[3, 4, 5], [10, 11]])
    assert scores.argmax(axis=1).tolist() == [6, 0]
    model.save(tmp_path / "m", item_keys=[f"S{i}" for i in range(12)])
    again, keys = SequentialRecommender.load(tmp_path / "m", device="cpu")
    assert keys == [f"S{i}" for i in range(12)]
    np.testing.assert_allclose(again.score([[3, 4, 5]]), scores[:1], rtol=1e-4, atol=1e-4)


def test_metrics_on_a_hand_checked_example() -> None:
    # three users, candidates in column 0 = true item
    scores = np.array([
        [0.9, 0.1, 0.2, 0.3],  # true item first -> rank 0
        [0.5, 0.6, 0.7, 0.1],  # two above -> rank 2
        [0.2, 0.2, 0.9, 0.1],  # one tie and one above -> rank 2 (ties count against)
    ])
    ranks = ranks_of_first(scores)
    assert ranks.tolist() == [0, 2, 2]
    ndcg, recall = ndcg_recall(ranks, k=10)
    assert ndcg == pytest.approx((1.0 + 2 * (1 / math.log2(4))) / 3)
    assert recall == 1.0
    ndcg2, recall2 = ndcg_recall(ranks, k=2)
    assert recall2 == pytest.approx(1 / 3) and ndcg2 == pytest.approx(1 / 3)


def test_sampled_candidates_avoid_history_and_target_and_are_reproducible() -> None:
    hist = [[0, 1, 2], [5, 6]]
    tgt = [3, 7]
    a = sample_candidates(hist, tgt, 30, 19, seed=1)
    b = sample_candidates(hist, tgt, 30, 19, seed=1)
    assert (a == b).all() and a[:, 0].tolist() == tgt
    for row, h in zip(a, hist, strict=True):
        assert len(set(row.tolist())) == 20 and not set(row[1:].tolist()) & (set(h) | {row[0]})


def test_cooccurrence_baseline_and_loader(tmp_path: Path) -> None:
    (tmp_path / "x.item").write_text("item_id:token\ttitle:token_seq\na\tA\nb\tB\nc\tC\n", encoding="utf-8")
    (tmp_path / "x.inter").write_text("user_id:token\titem_id_list:token_seq\titem_id:token\n1\ta b\tc\n2\tb\ta\n",
                                      encoding="utf-8")
    d = load_recbole(tmp_path / "x.item", tmp_path / "x.inter")
    assert d.titles == ["A", "B", "C"] and d.histories == [[0, 1], [1]] and d.targets == [2, 0]
    m = cooccurrence([[0, 1], [1, 2], [1, 2]], 3, window=1)
    s = cooccurrence_scores(m, [[1]], np.array([[2, 0]]))
    assert s[0, 0] > s[0, 1] > 0


def test_a_trained_sequential_model_is_used_by_sku(shop: list[Product], tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from retrieval.recommend.sequential import SeqConfig, SequentialRecommender

    # the log's habit: after coat COA-0 shoppers look at book FIC-2; the model knows 3 items by SKU
    skus = ["COA-0", "FIC-2", "SMA-0"]
    model = SequentialRecommender(3, SeqConfig(dim=8, layers=1, heads=1, epochs=40, batch_size=16, dropout=0.0,
                                               lr=1e-2, negatives=0, threads=1), device="cpu")
    model.fit([[0, 1]] * 20 + [[2, 0, 1]] * 5)
    model.save(tmp_path / "seq", item_keys=skus)
    rec = Recommender(shop)  # no log, no vectors: only the model links the coat to the book
    rec.attach_sequential(*SequentialRecommender.load(tmp_path / "seq"))
    picks = rec.for_user([("me", "COA-0", "details", 1)], k=3)
    assert picks[0].sku == "FIC-2" and picks[0].reason == "because you looked at Coats COA-0"


def test_the_validation_slice_is_the_last_item_of_a_share_of_the_training_histories() -> None:
    from retrieval.recommend.evaluation import carve_validation

    seqs = [[u % 30, (u + 1) % 30, (u + 2) % 30] for u in range(200)] + [[7]]  # the one-item history cannot give one
    train, val = carve_validation(seqs, 30, seed=3)
    assert val is not None and len(val.users) == 50  # 10% of 200 is below the floor of 50
    assert 200 not in val.users and train[200] == [7]
    for u, hist, tgt, row in zip(val.users, val.histories, val.targets, val.candidates, strict=True):
        assert hist == seqs[u][:-1] == train[u] and tgt == seqs[u][-1] and row[0] == tgt
        assert not set(row[1:].tolist()) & set(seqs[u])
    assert sum(map(len, train)) == sum(map(len, seqs)) - 50
    again, val2 = carve_validation(seqs, 30, seed=3)
    assert again == train and val2 is not None and val2.users == val.users  # a seed gives the same slice
    assert carve_validation([[1, 2]] * 9, 30)[1] is None  # too few to stop on: no slice


def test_early_stopping_stops_when_validation_stops_improving_and_keeps_the_best_epoch() -> None:
    pytest.importorskip("torch")
    from retrieval.recommend.evaluation import ValidationSlice
    from retrieval.recommend.sequential import SeqConfig, SequentialRecommender

    curve = [0.3, 0.7, 0.6, 0.5, 0.9]  # validation NDCG after each epoch: the best is the second

    class Scripted(SequentialRecommender):
        """The validation figure follows ``curve``: that share of the ten users get their target first."""

        def score_candidates(self, histories, candidates):  # type: ignore[no-untyped-def]
            hits = round(curve[self.epochs_run - 1] * len(histories))
            out = np.zeros(candidates.shape, dtype=np.float32)
            out[:hits, 0] = 1.0
            out[hits:, 1:] = 1.0
            return out

    seqs = [[i % 12, (i + 1) % 12, (i + 2) % 12] for i in range(40)]
    val = ValidationSlice(list(range(10)), [[0]] * 10, [1] * 10, np.tile(np.arange(1, 21) % 12, (10, 1)))
    model = Scripted(12, SeqConfig(dim=8, layers=1, heads=1, epochs=5, patience=2, batch_size=8, threads=1), device="cpu")
    weights: list[np.ndarray] = []
    losses = model.fit(seqs, validation=val, on_epoch=lambda e, loss: weights.append(
        model.module.item.weight.detach().numpy().copy()))
    assert len(losses) == 4 and model.epochs_run == 4  # epochs 3 and 4 did not beat epoch 2: stop, never see the 0.9
    assert model.best_epoch == 2 and model.validation_ndcg == pytest.approx([0.3, 0.7, 0.6, 0.5])
    np.testing.assert_array_equal(model.module.item.weight.detach().numpy(), weights[1])  # epoch 2's weights are back
    assert model.fit_report() == {"epochs_chosen": 2, "epochs_run": 4, "validation_ndcg@10": [0.3, 0.7, 0.6, 0.5]}
    plain = SequentialRecommender(12, SeqConfig(dim=8, layers=1, heads=1, epochs=3, batch_size=8, threads=1), device="cpu")
    assert len(plain.fit(seqs)) == 3 and plain.best_epoch == 3  # without a slice: exactly the epochs asked for


def test_a_history_scores_the_same_whatever_it_is_batched_with(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from retrieval.recommend.sequential import SeqConfig, SequentialRecommender

    model = SequentialRecommender(30, SeqConfig(dim=16, layers=1, heads=1, threads=1), device="cpu")
    model.fit([[i % 30, (i + 1) % 30, (i + 3) % 30, (i + 4) % 30] for i in range(60)])
    short, long = [3, 4], list(range(5, 25))
    alone = model.score([short])[0]
    np.testing.assert_allclose(model.score([short, long])[0], alone, rtol=1e-5, atol=1e-5)
    cand = np.array([[0, 1, 2], [5, 6, 7]])
    np.testing.assert_allclose(model.score_candidates([short, long], cand)[0], alone[[0, 1, 2]], rtol=1e-5, atol=1e-5)
    # a model saved before positions counted from the end keeps counting from the start
    import json

    model.save(tmp_path / "old")
    manifest = json.loads((tmp_path / "old" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["fit"]["epochs_chosen"] == model.config.epochs
    del manifest["config"]["positions"]
    (tmp_path / "old" / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    old, _ = SequentialRecommender.load(tmp_path / "old", device="cpu")
    assert old.config.positions == "start"
