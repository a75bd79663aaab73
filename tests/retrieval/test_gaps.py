"""Demand-gap clustering recovers planted themes, and a synonym the owner adds is used by the next search."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import numpy as np

from retrieval.gaps import GapQuery, adjusted_rand_index, cluster_texts, cluster_vectors, themes
from retrieval.synonyms import add_rule, synonyms_path


def test_ari_known_values() -> None:
    assert adjusted_rand_index([0, 0, 1, 1], [5, 5, 7, 7]) == 1.0
    assert adjusted_rand_index([0, 0, 1, 1], [0, 1, 0, 1]) < 0
    assert abs(adjusted_rand_index([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]) - 0.2424) < 1e-3  # sklearn's figure


def test_planted_clusters_in_vector_space_are_recovered() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 64))
    truth = np.repeat(np.arange(5), 20)
    x = centres[truth] + 0.15 * rng.normal(size=(100, 64))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert adjusted_rand_index(truth, cluster_vectors(x, 0.5)) == 1.0


def test_english_and_chinese_queries_of_a_theme_meet_with_the_multilingual_encoder() -> None:
    from retrieval.encoders import get_encoder

    enc = get_encoder("use-multilingual")
    planted = {
        "rain": ["waterproof rain trousers", "rain pants for hiking", "防水雨裤", "登山雨裤"],
        "earbuds": ["wireless earbuds", "bluetooth earphones", "无线蓝牙耳机", "蓝牙耳机"],
        "cat": ["cat litter box", "litter tray for cats", "猫砂盆", "猫砂"],
    }
    texts = [q for qs in planted.values() for q in qs]
    truth = [k for k, qs in planted.items() for _ in qs]
    assert adjusted_rand_index(truth, cluster_texts(texts, enc)) >= 0.6
    now = datetime.now(UTC)
    found = themes([GapQuery(t, now, "zero") for t in texts], [GapQuery("猫砂", now, "zero")], enc)
    assert sum(t.count for t in found) == len(texts)
    assert any(t.previous == 1 and "猫砂" in t.queries for t in found)


def test_a_synonym_added_is_used_by_the_next_search(engine) -> None:  # type: ignore[no-untyped-def]
    assert "SHO-3" not in engine.search("trail stompers", k=3).skus
    path = synonyms_path(engine.bundle.parent.parent)
    add_rule(path, "trail stompers", "hiking boot")
    assert engine.search("trail stompers", k=3).skus[0] == "SHO-3"
    add_rule(path, "trail stompers", "stand mixer")  # an edit is picked up too (mtime and size change)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert engine.search("trail stompers", k=3).skus[0] == "KIT-1"
