"""``shopbot train ranker``: learn the search re-ranker (retrieval/rerank.py) from logged searches and feedback.

Data: each logged search (its query, the products shown in rank order) and what the shopper did with each
of them afterwards (store.search_log: clicks, details opened, thumbs, carts, purchases). Products shown and
left alone are only compared with products *below* a clicked one's position or right after it ("skip-above"
pairs): a product at rank 5 that nobody clicked may simply not have been looked at, so it is no evidence.

Features for a logged search come from running the query through the current search again (the text
signals) and from the behaviour priors of the *training* part of the log (so the evaluation never sees
priors computed from its own clicks). The new ranker and the current one (the active version, or the
built-in hybrid order) both reorder the held-out searches' shown products; NDCG@10 against the shoppers'
graded actions decides. The version that is saved carries priors recomputed over the whole log.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from model.training.common import TrainDataError, TrainReport, better, ndcg_at, time_split
from model.training.registry import Registry
from retrieval.rerank import (
    FEATURES,
    BehaviourPriors,
    LearnedRanker,
    LoggedSearch,
    fit_pairwise,
    label_of,
    leaf,
    served_scores,
)
from retrieval.search import SearchEngine

__all__ = ["SearchLogRow", "logged_searches", "train_ranker"]


class SearchLogRow(Protocol):
    """What the trainer reads of a logged search (bot.store.records.SearchLog has it; tests pass their own rows)."""

    @property
    def created_at(self) -> Any: ...
    @property
    def query(self) -> str: ...
    @property
    def shown(self) -> Sequence[tuple[str, int, float | None]]: ...
    @property
    def feedback(self) -> Sequence[tuple[str | None, str, float | None]]: ...


def logged_searches(rows: Sequence[SearchLogRow], known: set[str] | None = None) -> list[LoggedSearch]:
    """Plain LoggedSearch records: shown SKUs in rank order (pages of one query merged by the store's turns)
    and each SKU's label from the feedback kinds it got (retrieval.rerank.label_of)."""
    out = []
    for r in rows:
        shown = [sku for sku, _rank, _score in sorted(r.shown, key=lambda x: x[1])]
        if known is not None:
            shown = [s for s in shown if s in known]
        if not shown or not r.query:
            continue
        kinds: dict[str, list[str]] = defaultdict(list)
        for sku, kind, _value in r.feedback:
            if sku is not None and sku in shown:
                kinds[sku].append(kind)
        labels = {s: lab for s, ks in kinds.items() if (lab := label_of(ks)) is not None}
        at = r.created_at.timestamp() if hasattr(r.created_at, "timestamp") else float(r.created_at)
        out.append(LoggedSearch(r.query, shown, labels, at))
    return out


def _candidates(engine: SearchEngine, s: LoggedSearch, depth: int) -> tuple[list[int], np.ndarray, np.ndarray, dict[str, np.ndarray]] | None:
    """Rows of the engine's products for the shown SKUs found among the query's first ``depth`` results,
    with their fused scores, the engine's current final scores and the signals."""
    res = engine.search(s.query, k=max(depth, len(s.shown)))
    pos = {h.sku: i for i, h in enumerate(res.hits)}
    keep = [pos[sku] for sku in s.shown if sku in pos]
    if len(keep) < 2:
        return None
    hits = [res.hits[i] for i in keep]
    names = sorted({n for h in hits for n in h.signals})
    signals = {n: np.asarray([h.signals.get(n, 0.0) for h in hits], dtype=np.float64) for n in names}
    current = np.asarray([h.score for h in hits], dtype=np.float64)
    fused = signals.pop("fused", current)
    rows = [engine.by_sku[h.sku] for h in hits]
    return rows, fused, current, signals


def _pairs(labels: Sequence[float]) -> list[tuple[int, int]]:
    """Preference pairs (better, worse) within one search's shown list, in shown order."""
    clicked = [i for i, lab in enumerate(labels) if lab > 0]
    if not clicked:
        return []
    last = max(clicked)
    out = []
    for i, li in enumerate(labels):
        for j, lj in enumerate(labels):
            if li <= lj:
                continue
            # a non-positive product is evidence only where the shopper looked: above the last click or
            # right after it, or when they said no (thumbs down)
            if lj < 0 or j <= last + 1:
                out.append((i, j))
    return out


def _dataset(engine: SearchEngine, searches: Sequence[LoggedSearch], priors: BehaviourPriors, depth: int,
             desc: str, progress: bool) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per search with at least one action: (features, labels, current scores) over its shown products."""
    out = []
    for s in tqdm(searches, desc=desc, unit="search", disable=not progress):
        if not any(v != 0 for v in s.labels.values()):
            continue
        got = _candidates(engine, s, depth)
        if got is None:
            continue
        rows, fused, current, signals = got
        products = [engine.products[r] for r in rows]
        x = LearnedRanker.features(products, fused, signals, priors, s.query)
        labels = np.asarray([s.labels.get(p.sku, 0.0) for p in products], dtype=np.float64)
        out.append((x, labels, current))
    return out


def _ndcg(groups: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], score: Any) -> float:
    vals = []
    for x, labels, current in groups:
        gains = np.clip(labels, 0, None)
        if gains.max() <= 0:
            continue
        s = score(x, current)
        order = np.argsort(-s, kind="stable")
        vals.append(ndcg_at(list(gains[order]), list(gains), k=10))
    return float(np.mean(vals)) if vals else float("nan")


def train_ranker(
    rows: Sequence[SearchLogRow],
    engine: SearchEngine,
    registry: Registry,
    *,
    test_share: float = 0.2,
    min_searches: int = 30,
    depth: int = 20,
    l2: float = 1e-2,
    progress: bool = False,
    source: str = "",
) -> TrainReport:
    t0 = time.perf_counter()
    categories = {p.sku: leaf(p) for p in engine.products}
    searches = logged_searches(rows, known=set(categories))
    acted = [s for s in searches if any(v > 0 for v in s.labels.values())]
    if len(acted) < min_searches:
        raise TrainDataError(
            f"The log has {len(acted)} searches where the shopper clicked, opened or rated a result; training the "
            f"ranker needs at least {min_searches} (run the assistant longer, or `shopbot simulate` for a demo).")
    train, test = time_split(searches, at=lambda s: s.at, test_share=test_share)
    priors = BehaviourPriors.from_log(train, categories)
    # Training features come from priors of the *other* half of the training searches: a product's own
    # click in a search must not explain that click (it would teach the model to trust the priors far
    # more than they deserve on searches they have not seen).
    halves = (train[0::2], train[1::2])
    train_sets = []
    for i, half in enumerate(halves):
        other = BehaviourPriors.from_log(halves[1 - i], categories)
        train_sets += _dataset(engine, half, other, depth, f"features (train {i + 1}/2)", progress)
    test_sets = _dataset(engine, test, priors, depth, "features (held out)", progress)
    if not train_sets or not test_sets:
        raise TrainDataError("Too few logged searches still match the catalog to train and evaluate the ranker; "
                             "log more searches with feedback, then train again.")
    xs, pairs, offset = [], [], 0
    for x, labels, _cur in train_sets:
        xs.append(x)
        pairs += [(offset + i, offset + j) for i, j in _pairs(list(labels))]
        offset += len(x)
    if not pairs:
        raise TrainDataError("No logged search has a clicked result next to one that was passed over; "
                             "the ranker has nothing to learn from yet.")
    x_all = np.vstack(xs)
    weights, mean, std = fit_pairwise(x_all, np.asarray(pairs, dtype=np.int64), l2=l2)
    cand = LearnedRanker(weights, mean, std, priors, depth=depth)
    # judged as it will serve: reordering only the eligible results
    metrics_c = {"ndcg@10": _ndcg(test_sets, lambda x, _c: served_scores(x, cand.score_features(x)))}
    metrics_b = {"ndcg@10": _ndcg(test_sets, lambda _x, c: c)}
    train_c = {"ndcg@10": _ndcg(train_sets, lambda x, _c: served_scores(x, cand.score_features(x)))}
    current = registry.active("ranker")
    promote = better(metrics_c, metrics_b, "ndcg@10")
    serving = cand.with_priors(BehaviourPriors.from_log(searches, categories))
    meta = {
        "metrics": {"metric": "ndcg@10", "candidate": metrics_c, "baseline": metrics_b, "train": train_c},
        "baseline": current.name if current else "built-in",
        "trained_on": {"searches": len(searches), "with_actions": len(acted), "train_searches": len(train_sets),
                       "test_searches": len(test_sets), "pairs": len(pairs), "source": source},
        "weights": {f: round(float(w), 4) for f, w in zip(FEATURES, weights, strict=True)},
        "depth": depth,
    }
    with registry.stage("ranker") as staged:
        serving.save(staged)
        version = registry.commit("ranker", staged, meta, promote=promote)
    notes = ["Run `shopbot reindex` to apply it to the search index." if promote else
             "The search keeps its current ranking."]
    return TrainReport("ranker", "ndcg@10", metrics_c, metrics_b, current.name if current else "built-in",
                       promote, version.name, len(train_sets), len(test_sets), time.perf_counter() - t0,
                       notes=notes)

