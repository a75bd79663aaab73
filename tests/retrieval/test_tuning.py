"""Cross-validation over queries (retrieval/tuning.py) on fake searches: no index, no encoder."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from retrieval.catalog import Product
from retrieval.evaluation import Judgments
from retrieval.tuning import (
    GridError,
    choose_per_fold,
    cross_validate,
    parse_grid,
    point_label,
    query_folds,
)

QUERIES = [f"q{i}" for i in range(23)]


def _judgments(queries: Sequence[str] = QUERIES) -> Judgments:
    # every query has one perfect product "good" and one irrelevant one "bad"
    products = [Product(sku="good", title="good", price=1.0), Product(sku="bad", title="bad", price=1.0)]
    return Judgments(products, {q: {"good": 4, "bad": 1} for q in queries})


def test_folds_are_seeded_balanced_and_hold_every_query_once() -> None:
    folds = query_folds(QUERIES, 5, seed=0)
    assert folds == query_folds(QUERIES, 5, seed=0)  # the same split on every run
    assert sorted(q for f in folds for q in f) == sorted(QUERIES)  # every query exactly once
    assert sorted(len(f) for f in folds) == [4, 4, 5, 5, 5]
    assert folds != query_folds(QUERIES, 5, seed=1)
    assert query_folds([*QUERIES, "q0"], 5, seed=0) == folds  # a repeated query is one query
    with pytest.raises(GridError, match="between 2 and 23 folds"):
        query_folds(QUERIES, 24)
    with pytest.raises(GridError):
        query_folds(QUERIES, 1)


def test_grid_spec_gives_every_combination_typed_like_the_setting() -> None:
    defaults = {"w_prf_terms": 0.5, "prf_terms": 30, "collapse_duplicates": True, "mode": "hybrid", "w_dense": {"en": 0.7}}
    grid = parse_grid("w_prf_terms=0.2,0.5; prf_terms=30,50", defaults)
    assert grid == [
        {"w_prf_terms": 0.2, "prf_terms": 30}, {"w_prf_terms": 0.2, "prf_terms": 50},
        {"w_prf_terms": 0.5, "prf_terms": 30}, {"w_prf_terms": 0.5, "prf_terms": 50},
    ]
    assert isinstance(grid[0]["prf_terms"], int) and isinstance(grid[0]["w_prf_terms"], float)
    assert parse_grid("collapse_duplicates=false", defaults) == [{"collapse_duplicates": False}]
    assert parse_grid(None, defaults) == [{}] and parse_grid("  ", defaults) == [{}]
    assert point_label({}) == "as shipped" and point_label(grid[1]) == "w_prf_terms=0.2, prf_terms=50"
    with pytest.raises(GridError, match="'w_prf' is not a search setting"):
        parse_grid("w_prf=0.1", defaults)
    with pytest.raises(GridError, match="'x' for prf_terms is not a int"):
        parse_grid("prf_terms=x", defaults)
    with pytest.raises(GridError, match="cannot be put on a grid"):
        parse_grid("w_dense=0.5", defaults)
    with pytest.raises(GridError, match="must look like name=value1,value2"):
        parse_grid("prf_terms", defaults)


def _searches(good_on: Mapping[str, set[str]]) -> Any:
    """search_for(point) -> a search that finds "good" first for the queries listed for that point."""
    calls: list[str] = []

    def search_for(point: Mapping[str, Any]) -> Any:
        name = str(point.get("p", "shipped"))
        calls.append(name)
        return lambda q: ["good", "bad"] if q in good_on[name] else ["bad", "good"]

    return search_for, calls


def test_a_point_best_only_on_the_held_out_fold_is_not_chosen_for_it() -> None:
    j = _judgments()
    folds = query_folds(j.queries, 5, seed=0)
    fold0 = set(folds[0])
    rest = set(j.queries) - fold0
    # A is right on every query but fold 0's; B is right on fold 0 and on half of the rest
    half = set(sorted(rest)[: len(rest) // 2])
    search_for, _ = _searches({"A": rest, "B": fold0 | half, "shipped": rest})
    report = cross_validate(j, [{"p": "A"}, {"p": "B"}], search_for, folds=5, seed=0)
    first = report.folds[0]
    assert first.chosen == {"p": "A"}  # B is far better on fold 0 (1.0 against ~0.63), but fold 0 is not looked at
    assert first.train_ndcg == pytest.approx(1.0)
    assert first.heldout_ndcg < 0.7  # and the report says what A does there, not what B would have done
    assert report.heldout == pytest.approx(sum(f.heldout_ndcg for f in report.folds) / 5)


def test_choose_per_fold_reads_only_the_other_folds() -> None:
    folds = [["a", "b"], ["c", "d"]]
    scores = [
        {"a": 0.0, "b": 0.0, "c": 0.9, "d": 0.9},  # good on fold 2
        {"a": 1.0, "b": 1.0, "c": 0.5, "d": 0.5},  # good on fold 1
    ]
    # fold 1 (a, b) is held out: chosen on c, d -> point 0, which scores 0 on a, b
    assert choose_per_fold(scores, folds) == [(0, 0.9, 0.0), (1, 1.0, 0.5)]
    # a tie on the other folds goes to the earlier point
    assert choose_per_fold([{"a": 0.2, "b": 0.4}, {"a": 0.3, "b": 0.4}], [["a"], ["b"]])[0][0] == 0


def test_without_a_grid_the_shipped_settings_are_reported_per_fold_beside_the_baseline() -> None:
    j = _judgments()
    good = set(j.queries[:15])
    search_for, calls = _searches({"shipped": good})
    bm25 = lambda q: ["good"] if q in set(j.queries[:10]) else ["bad"]  # noqa: E731
    report = cross_validate(j, parse_grid(None, {}), search_for, folds=5, seed=0, baseline=bm25)
    assert calls == ["shipped"]  # one pass: the grid's only point is the shipped settings
    assert [f.chosen for f in report.folds] == [{}] * 5
    assert report.shipped_all == pytest.approx(15 / 23 + (8 / 23) * 0.63, abs=0.01)
    assert [f.heldout_ndcg for f in report.folds] == [f.shipped_heldout for f in report.folds]
    assert len({round(f.heldout_ndcg, 6) for f in report.folds}) > 1  # the spread across folds is visible
    d = report.as_dict()
    assert d["cv_folds"] == 5 and d["seed"] == 0
    assert d["ratio_cv_to_bm25"] == pytest.approx(report.heldout / report.baseline_folds, abs=1e-4)
    assert d["cv_fold_min"] <= d["cv_ndcg@10"] <= d["cv_fold_max"]
    per_fold = [f.heldout_ndcg / f.baseline_heldout for f in report.folds if f.baseline_heldout]
    assert per_fold and d["ratio_fold_median"] == pytest.approx(statistics.median(per_fold), abs=1e-4)
    assert [f["fold"] for f in d["folds"]] == [1, 2, 3, 4, 5]


def test_a_grid_point_equal_to_the_shipped_settings_is_searched_once() -> None:
    j = _judgments()
    search_for, calls = _searches({"1": set(j.queries), "2": set(), "shipped": set(j.queries)})
    cross_validate(j, [{"p": 1}, {"p": 2}], search_for, folds=5, shipped_values={"p": 1})
    assert calls == ["1", "2"]
    calls.clear()
    cross_validate(j, [{"p": 1}, {"p": 2}], search_for, folds=5, shipped_values={"p": 3})
    assert calls == ["1", "2", "shipped"]
