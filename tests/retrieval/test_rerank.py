"""The learned re-ranker: behaviour priors from a log, the linear scorer, and the search applying it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from retrieval.rerank import (
    FEATURES,
    RELEVANT_SHARE,
    BehaviourPriors,
    LearnedRanker,
    LoggedSearch,
    RerankError,
    fit_pairwise,
    label_of,
    leaf,
)
from tests.conftest import hashing_factory

ENC = {"en": "hashing", "multi": "hashing"}


def test_labels_take_the_strongest_action_and_a_thumbs_down_wins() -> None:
    assert label_of(["click", "purchase", "thumb_up"]) == 3.0
    assert label_of(["details"]) == 1.0
    assert label_of(["click", "thumb_down"]) == -1.0
    assert label_of(["rating"]) is None and label_of([]) is None


def test_clicks_low_on_the_page_count_for_more_than_clicks_at_the_top() -> None:
    """Same number of clicks and impressions, but B earned its clicks at rank 4 where few shoppers look."""
    log = [LoggedSearch("shoe", ["A", "P", "Q", "B"], {"A": 1.0} if i < 3 else ({"B": 1.0} if i < 6 else {}))
           for i in range(10)]
    log += [LoggedSearch("coat", ["C", "D", "E", "F"], {"C": 1.0} if i < 8 else {}) for i in range(10)]
    cats = dict.fromkeys("ABPQ", "shoes") | dict.fromkeys("CDEF", "coats")
    pri = BehaviourPriors.from_log(log, cats)
    assert pri.coec["B"] > 1.0 > pri.coec["A"]
    assert pri.coec["P"] < 1.0  # shown at rank 2 ten times, never opened
    # word-level evidence: "coat" searches taught nothing about shoes
    assert pri.word_evidence(["coat"], "C") > 0 and pri.word_evidence(["coat"], "A") == 0.0
    assert pri.affinity(["shoe"], "shoes") > 0 > pri.affinity(["shoe"], "coats")


def test_pairwise_fit_learns_which_feature_predicts_the_preferred_item() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, len(FEATURES)))
    good = x[:, 8] + 0.1 * rng.normal(size=200)  # the "coec" column decides
    pairs = np.asarray([(i, j) for i in range(0, 200, 2) for j in (i + 1,) if good[i] != good[j]])
    pairs = np.asarray([(i, j) if good[i] > good[j] else (j, i) for i, j in pairs])
    w, _mean, _std = fit_pairwise(x, pairs)
    assert int(np.argmax(np.abs(w))) == 8 and w[8] > 0


def _ranker(priors: BehaviourPriors) -> LearnedRanker:
    w = np.zeros(len(FEATURES))
    w[0], w[8] = 0.5, 2.0  # some text relevance, much behaviour
    return LearnedRanker(w, np.zeros(len(FEATURES)), np.ones(len(FEATURES)), priors, depth=10, version="r1")


def test_the_search_applies_the_ranker_to_its_clearly_relevant_candidates(engine) -> None:  # type: ignore[no-untyped-def]
    hits = engine.search("running shoe", k=10).hits
    relevant = [h.sku for h in hits if h.score >= RELEVANT_SHARE * hits[0].score]
    weak = [h.sku for h in hits if h.score < RELEVANT_SHARE * hits[0].score]
    assert len(relevant) >= 2 and weak
    target = relevant[-1]
    engine.ranker = _ranker(BehaviourPriors(coec={target: 3.0, relevant[0]: 0.5, weak[0]: 50.0}))
    res = engine.search("running shoe", k=10)
    assert res.skus[0] == target
    # a best seller that hardly matches the words stays below every clearly relevant product
    assert res.skus.index(weak[0]) >= len(relevant)
    assert "fused" in res.hits[0].signals and res.hits[0].score > 1.0  # learned head scores sit above fused ones
    assert "rerank" in res.timings_ms
    assert engine.ranker_version == "r1"
    # sorting by price still sorts by price
    cheap = engine.search("running shoe", k=3, sort="price_asc")
    prices = [h.product.price for h in cheap.hits]
    assert prices == sorted(prices)


def test_behaviour_lifts_a_weaker_match_only_from_a_category_the_query_words_lead_to(engine) -> None:  # type: ignore[no-untyped-def]
    """Below the clearly relevant line, the log may still promote a product when searches with these words
    end in its category (a "laptop" search whose words also match sleeves better than laptops)."""
    hits = engine.search("running shoe", k=10).hits
    weak = [h.product for h in hits if h.score < RELEVANT_SHARE * hits[0].score]
    kinds = {leaf(p) for p in weak}
    assert len(kinds) >= 2
    led_to, other = sorted(kinds)[:2]
    lifted = next(p.sku for p in weak if leaf(p) == led_to)
    stays = next(p.sku for p in weak if leaf(p) == other)
    priors = BehaviourPriors(coec={lifted: 50.0, stays: 50.0},
                             word_cat={"running": {led_to: 0.9}, "shoe": {led_to: 0.9}}, cat_base={led_to: 0.1})
    engine.ranker = _ranker(priors)
    res = engine.search("running shoe", k=10)
    assert res.skus[0] == lifted
    assert res.skus.index(stays) > sum(h.score >= RELEVANT_SHARE * hits[0].score for h in hits)


def test_save_load_round_trip_and_a_broken_file_is_one_sentence(tmp_path: Path) -> None:
    r = _ranker(BehaviourPriors(coec={"X": 2.0}, word_cat={"shoe": {"shoes": 0.9}}, cat_base={"shoes": 0.5}))
    r.save(tmp_path / "v1")
    back = LearnedRanker.load(tmp_path / "v1")
    assert np.allclose(back.weights, r.weights) and back.priors.coec == {"X": 2.0} and back.version == "r1"
    (tmp_path / "v1" / "ranker.json").write_text("{not json")
    with pytest.raises(RerankError, match="unreadable; run `shopbot train ranker` again"):
        LearnedRanker.load(tmp_path / "v1")
    r.save(tmp_path / "v2")
    m = json.loads((tmp_path / "v2" / "ranker.json").read_text())
    m["features"] = m["features"][:-1]
    (tmp_path / "v2" / "ranker.json").write_text(json.dumps(m))
    with pytest.raises(RerankError, match="trained with other features"):
        LearnedRanker.load(tmp_path / "v2")


def test_reindex_carries_the_ranker_and_a_corrupt_one_does_not_stop_search(
        products, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    from retrieval.indexer import build_bundle, load_engine

    rdir = tmp_path / "models" / "20261129-000000-abcd"
    r = _ranker(BehaviourPriors(coec={"SHO-2": 3.0}))
    r.version = ""
    r.save(rdir)
    root = tmp_path / "index"
    report = build_bundle(products, root, encoders=ENC, encoder_factory=hashing_factory, ranker_dir=rdir)
    eng = load_engine(root, encoders=ENC, encoder_factory=hashing_factory)
    assert eng.ranker is not None and eng.ranker_version == "20261129-000000-abcd"  # named after its folder
    assert eng.search("running shoe", k=1).skus == ["SHO-2"]
    (report.build_dir / "ranker" / "priors.json").write_text("garbage")
    with caplog.at_level(logging.WARNING):
        eng2 = load_engine(root, encoders=ENC, encoder_factory=hashing_factory)
    assert eng2.ranker is None and eng2.ranker_version == "hybrid"
    assert "Searching without it" in caplog.text
    assert eng2.search("running shoe", k=3).skus  # still answers
    # a bundle built without a ranker ranks with the hybrid scores alone
    build_bundle(products, root, encoders=ENC, encoder_factory=hashing_factory)
    assert load_engine(root, encoders=ENC, encoder_factory=hashing_factory).ranker is None
