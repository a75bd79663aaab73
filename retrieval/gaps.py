"""Demand gaps: the searches that did not serve shoppers, grouped into themes by meaning.

A shop owner cannot read 2,000 failed searches, but can read twenty themes ("waterproof hiking trousers",
"防水登山裤", "hiking pants rain" are one). The method is deliberately plain so that an owner (and a
reviewer) can predict it: encode each distinct query with one of the project's encoders (the multilingual
one puts English and Chinese in one space), L2-normalise, and join queries by **average-linkage
agglomerative clustering on cosine distance**, cut at one distance (:data:`DEFAULT_DISTANCE`). Average
linkage rather than single linkage, because a chain of near neighbours ("red dress", "red dress shoes",
"dress shoes") must not glue two themes together; a distance cut rather than a number of clusters, because
nobody knows in advance how many themes a week of searches holds. The distance was chosen by measurement on
synthetic logs with planted themes (tests/benchmarks/bench_gaps.py, docs/console.md).

Nothing here knows about the bot or the database: callers pass the queries (with their time and kind) and
an encoder, and get :class:`Theme` records back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from retrieval.encoders import Encoder

__all__ = ["DEFAULT_DISTANCE", "GapQuery", "Theme", "adjusted_rand_index", "cluster_texts", "cluster_vectors", "themes"]

#: cosine distance (1 - cosine similarity) at which average-linkage clustering stops merging; chosen on
#: the tuning half of the planted themes in tests/benchmarks/bench_gaps.py (results in
#: tests/benchmarks/results/gaps.json) with the multilingual encoder
DEFAULT_DISTANCE = 0.65


@dataclass(frozen=True)
class GapQuery:
    """One search that did not serve a shopper: its text, when, and why it counts (zero, thumbs_down, abandoned)."""

    text: str
    at: datetime
    kind: str


@dataclass
class Theme:
    """A group of gap searches that ask for the same thing, with its label (its most frequent query)."""

    label: str
    queries: list[str]  # distinct query texts, most frequent first
    count: int  # searches in the current period
    previous: int  # searches in the previous period of the same length
    kinds: dict[str, int] = field(default_factory=dict)  # zero / thumbs_down / abandoned, current period

    @property
    def trend(self) -> float | None:
        """Change against the previous period (0.5: half as many again); None when it had none."""
        return None if self.previous == 0 else (self.count - self.previous) / self.previous

    def examples(self, n: int = 5) -> list[str]:
        return self.queries[:n]


def _normalised(texts: Sequence[str]) -> list[str]:
    return [" ".join(t.split()).casefold() for t in texts]


def cluster_vectors(vectors: np.ndarray, distance: float = DEFAULT_DISTANCE) -> np.ndarray:
    """Cluster labels (0..k-1, by first appearance) for L2-normalised rows, average linkage on cosine distance
    cut at ``distance``. One row is its own cluster; scipy does the O(n^2) work (2,000 rows: well under a second)."""
    n = int(vectors.shape[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    x = np.asarray(vectors, dtype=np.float64)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    d = np.clip(pdist(x, metric="cosine"), 0.0, 2.0)
    raw = fcluster(linkage(d, method="average"), t=distance, criterion="distance")
    # relabel by first appearance so that the output does not depend on scipy's numbering
    first: dict[int, int] = {}
    return np.asarray([first.setdefault(int(c), len(first)) for c in raw], dtype=np.int64)


def cluster_texts(texts: Sequence[str], encoder: Encoder, distance: float = DEFAULT_DISTANCE) -> list[int]:
    """A cluster label per text; equal texts (whitespace and case aside) are encoded once and share a label."""
    keys = _normalised(texts)
    distinct = list(dict.fromkeys(keys))
    if not distinct:
        return []
    labels = cluster_vectors(encoder.encode(distinct, kind="query"), distance)
    of = {k: int(labels[i]) for i, k in enumerate(distinct)}
    return [of[k] for k in keys]


def themes(current: Sequence[GapQuery], previous: Sequence[GapQuery], encoder: Encoder, *,
           distance: float = DEFAULT_DISTANCE, limit: int | None = None) -> list[Theme]:
    """Themes of the ``current`` period's gap searches, largest first, each with the count of the
    ``previous`` period's searches that fall in it (clustered together, so a theme is the same set of
    meanings in both periods). Themes with no search in the current period are left out."""
    everything = [*current, *previous]
    labels = cluster_texts([q.text for q in everything], encoder, distance)
    now: dict[int, Counter[str]] = {}
    before: Counter[int] = Counter()
    kinds: dict[int, Counter[str]] = {}
    for i, (q, label) in enumerate(zip(everything, labels, strict=True)):
        if i < len(current):
            now.setdefault(label, Counter())[" ".join(q.text.split())] += 1
            kinds.setdefault(label, Counter())[q.kind] += 1
        else:
            before[label] += 1
    out = []
    for label, texts in now.items():
        ordered = [t for t, _ in sorted(texts.items(), key=lambda kv: (-kv[1], kv[0]))]
        out.append(Theme(ordered[0], ordered, sum(texts.values()), before[label], dict(kinds[label])))
    out.sort(key=lambda t: (-t.count, t.label))
    return out[:limit] if limit is not None else out


def adjusted_rand_index(truth: Iterable[object], found: Iterable[object]) -> float:
    """Hubert and Arabie's adjusted Rand index of two labellings of the same items: 1 for identical
    partitions, about 0 for a random one (it can go below 0). Written out (no sklearn here)."""
    a, b = list(truth), list(found)
    if len(a) != len(b):
        raise ValueError("both labellings must cover the same items")
    n = len(a)
    if n < 2:
        return 1.0

    def pairs(c: float) -> float:
        return c * (c - 1) / 2

    joint = Counter(zip(a, b, strict=True))
    index = sum(pairs(c) for c in joint.values())
    rows = sum(pairs(c) for c in Counter(a).values())
    cols = sum(pairs(c) for c in Counter(b).values())
    expected = rows * cols / pairs(n)
    best = (rows + cols) / 2
    if best == expected:  # both partitions trivial (all one cluster, or all singletons) and equal
        return 1.0
    return float((index - expected) / (best - expected))
