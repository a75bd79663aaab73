"""Item-item co-occurrence: the counts both recommenders build on, and the baseline next-item scores.

The built-in recommender (``retrieval.recommend.recommender``) ranks with these counts, the sequential model
(``retrieval.recommend.sequential``) starts its item table from them, and ``shopbot eval-recommend`` reports
the baseline scores beside the model's. They live in their own module so that neither recommender imports
the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["cooccurrence", "cooccurrence_scores"]


def cooccurrence(sequences: Sequence[Sequence[int]], n_items: int, window: int = 3) -> Any:
    """Symmetric item-item counts of items within ``window`` positions of each other (scipy CSR)."""
    from scipy import sparse  # scipy loads slowly: only when counts are built or scored

    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    for s in sequences:
        a = np.asarray(s, dtype=np.int64)
        for d in range(1, window + 1):
            if a.size <= d:
                break
            w = 1.0 / d
            rows += [a[:-d], a[d:]]
            cols += [a[d:], a[:-d]]
            vals += [np.full(a.size - d, w), np.full(a.size - d, w)]
    if not rows:
        return sparse.csr_matrix((n_items, n_items), dtype=np.float32)
    m = sparse.coo_matrix(
        (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))), shape=(n_items, n_items)
    ).tocsr()
    m.setdiag(0)
    m.eliminate_zeros()
    return m


def cooccurrence_scores(
    matrix: Any, histories: Sequence[Sequence[int]], candidates: np.ndarray, decay: float = 0.7, popularity: np.ndarray | None = None
) -> np.ndarray:
    """Baseline next-item scores: co-occurrence with the recent history (newest weighs most), popularity tie-break."""
    from scipy import sparse  # scipy loads slowly: only when counts are built or scored

    r, c, v = [], [], []
    for u, h in enumerate(histories):
        for age, item in enumerate(reversed(list(h))):
            r.append(u)
            c.append(item)
            v.append(decay**age)
    weights = sparse.csr_matrix((v, (r, c)), shape=(len(histories), matrix.shape[0]), dtype=np.float32)
    prod = (weights @ matrix).tocsr()
    rows = np.repeat(np.arange(len(histories)), candidates.shape[1])
    out = np.asarray(prod[rows, candidates.ravel()]).reshape(candidates.shape).astype(np.float64)
    if popularity is not None:
        pop = np.log1p(popularity[candidates])
        out = out + 1e-3 * pop / (pop.max() + 1.0)
    return out
