"""The next-item evaluation protocol (LLMRank style): history -> true next item, ranked among sampled items.

For each user the true next item is ranked among itself plus ``n_negatives`` items drawn uniformly from the
catalog with a fixed seed, never from the user's history or the target. A candidate that ties with the true
item counts as ranked above it (pessimistic), so a scorer that cannot tell items apart earns no credit.
The same protocol, applied to the last item of a share of the TRAINING histories
(:func:`carve_validation`), is what training settings such as the number of epochs are chosen on, so that
the users and targets a figure is reported on never choose the settings that produced it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class NextItemData:
    titles: list[str]  # item id -> title
    histories: list[list[int]]  # per user, oldest first
    targets: list[int]  # per user, the true next item


def load_recbole(items: str | Path, interactions: str | Path, limit: int | None = None) -> NextItemData:
    """Read the RecBole/LLMRank files: ``item_id:token<TAB>title`` and ``user<TAB>history<TAB>next``.

    Item ids in the files are tokens; they are mapped to dense ids 0..n-1 in file order.
    """
    ids: dict[str, int] = {}
    titles: list[str] = []
    with open(items, encoding="utf-8") as fh:
        header = fh.readline()
        if "\t" not in header:
            raise ValueError(f"{items}: expected a tab-separated header such as 'item_id:token<TAB>title:token_seq'")
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if not parts[0]:
                continue
            ids.setdefault(parts[0], len(titles))
            if len(titles) < len(ids):
                titles.append(parts[1] if len(parts) > 1 else parts[0])

    def item(tok: str) -> int:
        if tok not in ids:  # an item missing from the item file still gets an id
            ids[tok] = len(titles)
            titles.append(tok)
        return ids[tok]

    histories: list[list[int]] = []
    targets: list[int] = []
    with open(interactions, encoding="utf-8") as fh:
        fh.readline()
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or not parts[2]:
                continue
            histories.append([item(t) for t in parts[1].split()])
            targets.append(item(parts[2]))
            if limit is not None and len(targets) >= limit:
                break
    return NextItemData(titles, histories, targets)


def sample_candidates(
    histories: Sequence[Sequence[int]], targets: Sequence[int], n_items: int, n_negatives: int = 19, seed: int = 2024
) -> np.ndarray:
    """(U, 1 + n_negatives) item ids: column 0 is the target, the rest uniform samples (fixed seed)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((len(targets), 1 + n_negatives), dtype=np.int64)
    for u, (hist, tgt) in enumerate(zip(histories, targets, strict=True)):
        banned = set(hist)
        banned.add(tgt)
        if n_items - len(banned) < n_negatives:
            raise ValueError("the catalog is too small to sample negatives for this user")
        chosen: list[int] = []
        seen: set[int] = set()
        while len(chosen) < n_negatives:
            for c in rng.integers(0, n_items, n_negatives * 2).tolist():
                if c not in banned and c not in seen:
                    seen.add(c)
                    chosen.append(c)
                    if len(chosen) == n_negatives:
                        break
        out[u, 0] = tgt
        out[u, 1:] = chosen
    return out


@dataclass
class ValidationSlice:
    """The last item of some training histories, held back: what early stopping is measured on."""

    users: list[int]  # rows of the training sequences it came from
    histories: list[list[int]]  # each one's history without its last item
    targets: list[int]  # that last item
    candidates: np.ndarray  # (len(users), 1 + n_negatives): column 0 the target, then uniform samples


VALIDATION_SHARE = 0.1  # of the training histories that can give one item
MIN_VALIDATION_USERS = 50  # a smaller share of a small log would be decided by a handful of shoppers


def carve_validation(
    sequences: Sequence[Sequence[int]],
    n_items: int,
    *,
    share: float = VALIDATION_SHARE,
    min_users: int = MIN_VALIDATION_USERS,
    n_negatives: int = 19,
    seed: int = 0,
) -> tuple[list[list[int]], ValidationSlice | None]:
    """Hold back the last item of a random ``share`` (at least ``min_users``) of the training histories.

    Returns the sequences to train on (those users' histories without their last item, everyone else's
    whole) and the slice, whose candidates follow the evaluation protocol (uniform negatives, never from
    the history or the target). Only histories of two or more items with enough catalog left to draw the
    negatives take part; with fewer than 10 of them the slice is None (nothing to stop on).
    """
    seqs = [list(s) for s in sequences]
    eligible = [u for u, s in enumerate(seqs) if len(s) >= 2 and n_items - len(set(s)) >= n_negatives]
    if len(eligible) < 10:
        return seqs, None
    rng = np.random.default_rng(seed)
    k = min(len(eligible), max(min_users, round(share * len(eligible))))
    users = sorted(rng.choice(np.asarray(eligible), size=k, replace=False).tolist())
    histories = [seqs[u][:-1] for u in users]
    targets = [seqs[u][-1] for u in users]
    for u in users:
        seqs[u] = seqs[u][:-1]
    candidates = sample_candidates(histories, targets, n_items, n_negatives, seed=seed + 1)
    return seqs, ValidationSlice(users, histories, targets, candidates)


def ranks_of_first(scores: np.ndarray) -> np.ndarray:
    """0-based rank of column 0 in each row; ties count against it."""
    ranks: np.ndarray = (scores[:, 1:] >= scores[:, :1]).sum(axis=1)
    return ranks


def ndcg_recall(ranks: np.ndarray, k: int = 10) -> tuple[float, float]:
    """NDCG@k and Recall@k with one relevant item per user at the given 0-based ranks."""
    if ranks.size == 0:
        return 0.0, 0.0
    hit = ranks < k
    gains = np.where(hit, 1.0 / np.log2(ranks.astype(np.float64) + 2.0), 0.0)
    return float(gains.mean()), float(hit.mean())


def full_recall(
    score_fn: Callable[[Sequence[Sequence[int]]], np.ndarray],
    histories: Sequence[Sequence[int]],
    targets: Sequence[int],
    k: int = 10,
    batch: int = 2048,
) -> float:
    """Share of users whose target is in the top k of the whole catalog (history items masked out)."""
    hits = 0
    for start in range(0, len(targets), batch):
        hs = histories[start : start + batch]
        scores = np.array(score_fn(hs), dtype=np.float32, copy=True)
        for r, h in enumerate(hs):
            if h:
                scores[r, list(h)] = -np.inf
        tg = np.asarray(targets[start : start + batch])
        true = scores[np.arange(len(tg)), tg]
        rank = (scores > true[:, None]).sum(axis=1)
        hits += int((rank < k).sum())
    return hits / max(len(targets), 1)
