"""A learned re-ranker over the search's own signals and what shoppers did with its results.

The hybrid search (retrieval/search.py) can only judge text: it cannot know that, among twenty black
running shoes that all match the words, shoppers open and buy three and skip the rest. The log knows. This
module turns the log into per-product *behaviour priors* and learns, from pairs of results of the same
search ("clicked this, skipped that one ranked above it"), how much each signal and prior is worth:

* ``coec``: clicks over expected clicks. Raw click-through favours whatever was shown first, because
  shoppers click the top more whatever it is; dividing clicks by the clicks an average product would have
  got at the same positions (the position propensities are measured from the same log) removes that
  bias. Shrunk towards 1 (the average) so a product seen twice is not a star or a dud.
* ``thumbs``: (up - down) / (up + down + 2) over the product's thumbs.
* ``buys``: log(1 + purchases of the product from a search).
* ``word_coec``: the same clicks-over-expected, counted per query word (mean over the query's words): a
  black coat that is popular with "coat" searches but skipped in "red coat" ones loses on "red coat".
* ``cat_affinity``: how often searches containing the query's words ended in a click in the product's
  category (leaf of its path), shrunk towards the category's overall share; this generalises to new
  queries that share words with logged ones ("trail shoes" learns from "running shoes").

The model is linear over standardised features and trained with a pairwise logistic loss (RankNet with a
linear scorer): small, fast, explainable (``shopbot models list`` shows the weights' effect through
NDCG), and safe to apply to the first ``depth`` candidates of every query at serving time (~0.1 ms).
The search applies it when the index bundle carries one: ``shopbot reindex`` copies the active ranker
version into the bundle with priors for the bundle's products.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.catalog import Product
from retrieval.query import product_rating

__all__ = ["FEATURES", "LABELS", "RELEVANT_SHARE", "BehaviourPriors", "LearnedRanker", "LoggedSearch", "RerankError",
           "label_of", "served_scores"]

#: Candidates whose fused score is at least this share of the query's best are clearly relevant: only they
#: are reordered by the learned ranker (and only they are sorted by price, retrieval/search.py).
RELEVANT_SHARE = 0.75

#: Feature order of the linear model.
FEATURES = ("fused", "bm25_title", "bm25_body", "cos", "cos_body", "coverage_all", "phrase", "prf",
            "coec", "thumbs", "buys", "cat_affinity", "word_coec", "rating", "in_stock")
_AFFINITY = FEATURES.index("cat_affinity")
#: Graded label of a shown product from what the shopper did (the strongest action counts).
LABELS = {"purchase": 3.0, "add_to_cart": 2.0, "thumb_up": 2.0, "click": 1.0, "details": 1.0,
          "thumb_down": -1.0, "not_what_i_meant": -1.0}
MODEL_FILE = "ranker.json"
PRIORS_FILE = "priors.json"
_WORD = re.compile(r"\w+", re.UNICODE)


class RerankError(ValueError):
    """A ranker file that cannot be read or does not fit this search (one sentence)."""


@dataclass(frozen=True)
class LoggedSearch:
    """One logged search as plain data: the query, the SKUs shown (in rank order), and per-SKU labels."""

    query: str
    shown: Sequence[str]
    labels: Mapping[str, float]  # sku -> label (LABELS); products shown but left alone are absent
    at: float = 0.0  # seconds since the epoch (for time splits)


def label_of(kinds: Iterable[str]) -> float | None:
    """The label of one shown product from the feedback kinds it got: a thumbs down wins (the shopper said
    no), otherwise the strongest positive action; None when the shopper did nothing with it."""
    values = [LABELS[k] for k in kinds if k in LABELS]
    if not values:
        return None
    return min(values) if min(values) < 0 else max(values)


def query_words(text: str) -> list[str]:
    """Words of a query for the category-affinity table (Chinese: each Han character and each pair)."""
    out: list[str] = []
    for w in _WORD.findall(text.lower()):
        if any("\u4e00" <= ch <= "\u9fff" for ch in w):
            out += list(w) + [w[i:i + 2] for i in range(len(w) - 1)]
        elif len(w) > 1 and not w.isdigit():
            out.append(w)
    return out


def leaf(p: Product) -> str:
    return " > ".join(p.category).lower() if p.category else ""


@dataclass
class BehaviourPriors:
    """Per-product and per-word statistics from logged searches (see the module docstring)."""

    coec: dict[str, float] = field(default_factory=dict)
    thumbs: dict[str, float] = field(default_factory=dict)
    buys: dict[str, float] = field(default_factory=dict)
    word_cat: dict[str, dict[str, float]] = field(default_factory=dict)  # word -> category -> smoothed share
    cat_base: dict[str, float] = field(default_factory=dict)  # category -> share of all clicks
    word_coec: dict[str, dict[str, float]] = field(default_factory=dict)  # word -> sku -> log clicks over expected
    searches: int = 0

    @classmethod
    def from_log(cls, searches: Sequence[LoggedSearch], categories: Mapping[str, str], *,
                 shrink: float = 5.0, word_shrink: float = 3.0) -> BehaviourPriors:
        """``categories`` maps SKU -> category leaf (products no longer in the catalog are skipped)."""
        # click rate by rank over all searches (position bias: the top gets clicks whatever it is)
        shown_at: dict[int, int] = defaultdict(int)
        clicked_at: dict[int, int] = defaultdict(int)
        for s in searches:
            for r, sku in enumerate(s.shown, 1):
                shown_at[r] += 1
                if s.labels.get(sku, 0) > 0:
                    clicked_at[r] += 1
        # what an average product gets at each rank: the expected clicks of one impression there
        rate = {r: (clicked_at[r] + 0.5) / (shown_at[r] + 1.0) for r in shown_at}
        expected: dict[str, float] = defaultdict(float)
        clicks: dict[str, float] = defaultdict(float)
        ups: dict[str, int] = defaultdict(int)
        downs: dict[str, int] = defaultdict(int)
        buys: dict[str, int] = defaultdict(int)
        word_clicks: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        cat_clicks: dict[str, float] = defaultdict(float)
        word_expected: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        word_clicked: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        mean_rate = sum(clicked_at.values()) / max(sum(shown_at.values()), 1)
        for s in searches:
            words = set(query_words(s.query))
            for r, sku in enumerate(s.shown, 1):
                e = rate[r]
                expected[sku] += e
                for w in words:
                    word_expected[w][sku] += e
                lab = s.labels.get(sku)
                if lab is None:
                    continue
                if lab > 0:
                    clicks[sku] += 1.0
                    for w in words:
                        word_clicked[w][sku] += 1.0
                    cat = categories.get(sku)
                    if cat:
                        cat_clicks[cat] += 1.0
                        for w in words:
                            word_clicks[w][cat] += 1.0
                if lab >= 2:
                    ups[sku] += 1
                if lab >= 3:
                    buys[sku] += 1
                if lab < 0:
                    downs[sku] += 1
        prior = shrink * mean_rate
        coec = {sku: (clicks[sku] + prior) / (expected[sku] + prior) for sku in expected if prior > 0}
        thumbs = {sku: (ups[sku] - downs[sku]) / (ups[sku] + downs[sku] + 2.0) for sku in set(ups) | set(downs)}
        total = sum(cat_clicks.values())
        cat_base = {c: n / total for c, n in cat_clicks.items()} if total else {}
        word_cat: dict[str, dict[str, float]] = {}
        for w, per in word_clicks.items():
            n = sum(per.values())
            word_cat[w] = {c: (per.get(c, 0.0) + word_shrink * cat_base.get(c, 0.0)) / (n + word_shrink) for c in per}
        wcoec = {w: {sku: round(math.log((word_clicked[w].get(sku, 0.0) + prior) / (e + prior)), 4)
                     for sku, e in per.items()} for w, per in word_expected.items()} if prior > 0 else {}
        return cls(coec, thumbs, {k: float(v) for k, v in buys.items()}, word_cat, cat_base, wcoec, len(searches))

    def to_dict(self) -> dict[str, Any]:
        return {"coec": self.coec, "thumbs": self.thumbs, "buys": self.buys, "word_cat": self.word_cat,
                "cat_base": self.cat_base, "word_coec": self.word_coec, "searches": self.searches}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BehaviourPriors:
        return cls(dict(d.get("coec", {})), dict(d.get("thumbs", {})), dict(d.get("buys", {})),
                   {w: dict(v) for w, v in d.get("word_cat", {}).items()}, dict(d.get("cat_base", {})),
                   {w: dict(v) for w, v in d.get("word_coec", {}).items()}, int(d.get("searches", 0)))

    def affinity(self, words: Sequence[str], category: str) -> float:
        """Mean over the query's known words of P(click lands in ``category`` | word), relative to the
        category's overall share (so a big category is not favoured for every query); 0 when no word is known."""
        known = [self.word_cat[w] for w in words if w in self.word_cat]
        if not known or not category:
            return 0.0
        base = self.cat_base.get(category, 0.0)
        share = sum(k.get(category, 0.0) for k in known) / len(known)
        return float(share - base)

    def word_evidence(self, words: Sequence[str], sku: str) -> float:
        """Mean over the query's known words of the product's log clicks-over-expected for that word."""
        vals = [self.word_coec[w].get(sku, 0.0) for w in words if w in self.word_coec]
        return float(sum(vals) / len(vals)) if vals else 0.0


def served_scores(x: np.ndarray, learned: np.ndarray) -> np.ndarray:
    """What a query's candidates are sorted by, from their :data:`FEATURES` rows ``x`` and learned scores:
    the eligible ones by 1 + sigmoid(learned score), above the rest, which keep their fused scores
    relative to the best (at most 1). Eligible: clearly relevant by the words (fused score at least
    ``RELEVANT_SHARE`` of the best), or of a category that the log says searches with these words end in.

    Behaviour priors know what sells, not what matches: reordering the whole first 20, a best-selling
    coffee pod climbed to the top of a keyboard search in `shopbot simulate`.
    """
    fused, affinity = x[:, 0], x[:, _AFFINITY]
    eligible = (fused >= RELEVANT_SHARE) | (affinity > 0)
    return np.where(eligible, 1.0 + 1.0 / (1.0 + np.exp(-np.asarray(learned, dtype=np.float64))), fused)


class LearnedRanker:
    """Linear scorer over :data:`FEATURES` (standardised), applied to the first ``depth`` candidates."""

    def __init__(self, weights: np.ndarray, mean: np.ndarray, std: np.ndarray, priors: BehaviourPriors, *,
                 depth: int = 20, version: str = "", features: Sequence[str] = FEATURES) -> None:
        if list(features) != list(FEATURES):
            raise RerankError("This ranker was trained with other features; run `shopbot train ranker` again.")
        self.weights = np.asarray(weights, dtype=np.float64)
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.where(np.asarray(std, dtype=np.float64) > 1e-9, np.asarray(std, dtype=np.float64), 1.0)
        self.priors = priors
        self.depth = depth
        self.version = version

    # ------------------------------------------------------------------------------- features

    @staticmethod
    def features(products: Sequence[Product], fused: np.ndarray, signals: Mapping[str, np.ndarray],
                 priors: BehaviourPriors, query: str) -> np.ndarray:
        """One row per candidate, columns in :data:`FEATURES` order. ``signals`` are the search's own
        (``bm25_title``, ``cos_en`` ...); the first dense key present stands for ``cos``."""
        n = len(products)
        x = np.zeros((n, len(FEATURES)), dtype=np.float64)
        top = float(fused.max()) if n else 0.0
        x[:, 0] = fused / top if top > 0 else 0.0
        for j, name in enumerate(FEATURES[1:8], 1):
            v = signals.get(name)
            if v is None and name in ("cos", "cos_body"):
                suffix = "_body" if name == "cos_body" else ""
                for key in ("cos_en", "cos_multi"):
                    if key + suffix in signals:
                        v = signals[key + suffix]
                        break
            if v is not None:
                x[:, j] = np.asarray(v, dtype=np.float64)
        words = query_words(query)
        for i, p in enumerate(products):
            x[i, 8] = math.log(priors.coec.get(p.sku, 1.0))
            x[i, 9] = priors.thumbs.get(p.sku, 0.0)
            x[i, 10] = math.log1p(priors.buys.get(p.sku, 0.0))
            x[i, 11] = priors.affinity(words, leaf(p))
            x[i, 12] = priors.word_evidence(words, p.sku)
            x[i, 13] = product_rating(p) / 5.0
            x[i, 14] = 1.0 if (p.stock or 0) > 0 else 0.0
        return x

    def score_features(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(((x - self.mean) / self.std) @ self.weights, dtype=np.float64)

    def score(self, products: Sequence[Product], fused: np.ndarray, signals: Mapping[str, np.ndarray],
              query: str) -> np.ndarray:
        """What the candidates are sorted by (``served_scores``)."""
        x = self.features(products, fused, signals, self.priors, query)
        return served_scores(x, self.score_features(x))

    # ---------------------------------------------------------------------------- persistence

    def save(self, directory: str | Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / MODEL_FILE).write_text(json.dumps({
            "features": list(FEATURES), "weights": self.weights.tolist(), "mean": self.mean.tolist(),
            "std": self.std.tolist(), "depth": self.depth, "version": self.version}, indent=1), encoding="utf-8")
        (d / PRIORS_FILE).write_text(json.dumps(self.priors.to_dict(), ensure_ascii=False), encoding="utf-8")
        return d

    @classmethod
    def load(cls, directory: str | Path) -> LearnedRanker:
        d = Path(directory)
        try:
            m = json.loads((d / MODEL_FILE).read_text(encoding="utf-8"))
            priors = BehaviourPriors.from_dict(json.loads((d / PRIORS_FILE).read_text(encoding="utf-8")))
            return cls(np.asarray(m["weights"]), np.asarray(m["mean"]), np.asarray(m["std"]), priors,
                       depth=int(m.get("depth", 20)), version=str(m.get("version") or d.name),
                       features=m["features"])
        except RerankError:
            raise
        except (OSError, ValueError, KeyError, TypeError):
            raise RerankError(f"The ranker in {d} is missing or unreadable; run `shopbot train ranker` again "
                              "or `shopbot models rollback ranker`.") from None

    def with_priors(self, priors: BehaviourPriors) -> LearnedRanker:
        return LearnedRanker(self.weights, self.mean, self.std, priors, depth=self.depth, version=self.version)


def fit_pairwise(x: np.ndarray, pairs: np.ndarray, *, l2: float = 1e-2, sample_weight: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights of a linear scorer from preference pairs ``(better_row, worse_row)`` over feature rows ``x``:
    minimises the mean logistic loss of the score differences plus ``l2``/2 |w|^2, on standardised features.
    Returns (weights, mean, std)."""
    from scipy.optimize import minimize  # scipy loads slowly: only when a ranker is trained

    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std > 1e-9, std, 1.0)
    z = (x - mean) / std
    d = z[pairs[:, 0]] - z[pairs[:, 1]]
    sw = np.ones(len(d)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    sw = sw / sw.sum()

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        m = d @ w
        # log(1 + exp(-m)), stable
        lo = np.logaddexp(0.0, -m)
        g = -(sw * (1.0 / (1.0 + np.exp(m)))) @ d
        return float(sw @ lo + 0.5 * l2 * w @ w), g + l2 * w

    w0 = np.zeros(x.shape[1])
    w0[0] = 1.0  # start from the search's own order
    res = minimize(loss, w0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return np.asarray(res.x), mean, std
