from __future__ import annotations

import math
from pathlib import Path

import pytest

from retrieval.evaluation import evaluate_run, load_judgments, ndcg_at_k, recall_at_k


def test_ndcg_by_hand() -> None:
    grades = {"a": 4, "b": 3, "c": 1, "d": 2}  # gains 3, 2, 0, 1
    ideal = 3 + 2 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(["a", "b", "d"], grades) == pytest.approx(1.0)
    got = 1 / math.log2(2) * 0 + 3 / math.log2(3) + 0 / math.log2(4) + 2 / math.log2(5)  # x(unjudged), a, c, b
    assert ndcg_at_k(["x", "a", "c", "b"], grades) == pytest.approx(got / ideal)
    assert ndcg_at_k([], grades) == 0.0
    assert ndcg_at_k(["a"], {"a": 1}) == 0.0  # nothing relevant: defined as 0


def test_recall_counts_grade_4_only() -> None:
    grades = {"a": 4, "b": 4, "c": 3}
    assert recall_at_k(["a", "c"], grades) == 0.5
    assert recall_at_k(["c"], {"c": 3}) is None


def test_judgments_file_and_run(tmp_path: Path) -> None:
    path = tmp_path / "j.csv"
    path.write_text(
        "id,query,product_title,product_description,median_relevance,relevance_variance\n"
        '1,red coat,Red Coat,<p>warm</p>,4,0\n'
        '2,red coat,Blue Coat,cold,2,0\n'
        '3,shoe,Red Coat,<p>warm</p>,1,0\n'
        '4,shoe,Trail Shoe,,4,0\n',
        encoding="utf-8",
    )
    j = load_judgments(path)
    assert len(j.products) == 3  # the red coat is one product judged for two queries
    assert j.queries == ["red coat", "shoe"]
    red = next(p for p in j.products if p.title == "Red Coat")
    assert red.description == "warm"
    ranking = {"red coat": [red.sku], "shoe": [red.sku]}
    run = evaluate_run(j, lambda q: ranking[q])
    assert run.queries == 2 and run.products == 3
    assert run.per_query["red coat"] == pytest.approx(3 / (3 + 1 / math.log2(3)))
    assert run.per_query["shoe"] == 0.0
    assert set(run.as_dict()) == {"ndcg@10", "recall@10", "p50_ms", "p99_ms", "queries", "products"}
