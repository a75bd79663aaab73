"""Retraining the next-item recommender from the shop's own interaction log (``shopbot train recommender``).

What it learns from. The store's interaction rows ``(user, sku, kind, time)``, turned into one sequence of
products per shopper in time order. A product counts when the shopper showed interest in it: opened its
details (``details``), clicked it (``click``), put it in the cart (``add_to_cart``), bought it (``purchase``) or
gave it a thumbs up (``thumb_up``). A thumbs down is not a positive and never enters a sequence (it still bans
the product in the built-in scoring, as it does when serving); ratings carry no direction without their
value and are left out. The same product twice in a row (details, then click, then cart) is one step: the
model learns which product comes *next*, and "the same one again" would teach it nothing.

How it is tested (model/training/common.py's protocol). The log is cut by time at the newest 20% of the interactions.
A shopper whose last interaction falls after the cut-off is a test case: that last product is the target,
everything the shopper did before it is the history the models see. Training uses only interactions
before the cut-off, so no target (and nothing after the cut-off) is ever learned from. Each target is
ranked among itself and 19 products drawn uniformly from the catalog with a fixed seed, never from the
shopper's history (the Games-6k protocol of ``shopbot eval recommend``), and NDCG@10 / Recall@10 are
reported for the new model, for the current one (the active version, or the built-in scoring the assistant
uses when none is trained) and for popularity.

The built-in scoring is the one ``retrieval.recommend.recommender.Recommender.for_user`` ranks with, fitted on the same
training part: co-occurrence with the shopper's recent products (newest weighs most), content similarity
through the search index's title vectors when they are given (else the shopper's categories), and a small
popularity term. Business rules (in stock, not bought) are left out on both sides: they do not depend on the
model.

How many epochs. Unless ``--epochs`` says, early stopping chooses: a tenth of the training shoppers (at
least 50) give their last product before the cut-off to a validation slice (ranked the same way, among 19
uniform samples), training stops when NDCG@10 on it has not improved for a while, and the best epoch's
weights are kept. The slice is cut from the training part, so the held-out shoppers that decide the
promotion never choose the epochs; the chosen epoch and the validation curve are in the version's metadata.

The new version is registered either way (its figures are worth keeping) and becomes active only when its
NDCG@10 is strictly better than the current model's. The registered model is the one that was measured:
it has learned from the interactions before the cut-off.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from model.training.common import TrainDataError, TrainReport, better
from model.training.registry import Registry
from retrieval.catalog import Product
from retrieval.recommend.evaluation import carve_validation, ndcg_recall, ranks_of_first, sample_candidates
from retrieval.recommend.recommender import Interaction, Recommender, as_interactions, category_key
from retrieval.recommend.sequential import SeqConfig, SequentialRecommender, cooccurrence_embeddings

if TYPE_CHECKING:
    from retrieval.recommend.sequential import SeqConfig, SequentialRecommender
    from retrieval.search import SearchEngine

__all__ = [
    "MIN_TEST_USERS",
    "MIN_TRAIN_USERS",
    "POSITIVE_KINDS",
    "RecommenderSplit",
    "auto_config",
    "builtin_scores",
    "content_vectors",
    "shopper_sequences",
    "split_log",
    "train_recommender",
]

KIND = "recommender"
METRIC = "ndcg@10"
POSITIVE_KINDS = frozenset({"details", "click", "add_to_cart", "purchase", "thumb_up"})
MIN_TRAIN_USERS = 20  # shoppers with two or more products before the cut-off: below this there is no order to learn
MIN_TEST_USERS = 10  # held-out shoppers: below this one lucky guess decides the promotion
N_NEGATIVES = 19
SEED = 2024
TEST_SHARE = 0.2


@dataclass
class RecommenderSplit:
    """The log cut by time: training sequences and the held-out shoppers (all as item ids into ``items``)."""

    items: list[str]  # item id -> SKU; the catalog first (ids < n_catalog), then SKUs only the log knows
    n_catalog: int
    cutoff: float  # seconds; training uses interactions strictly before it
    train: list[list[int]]  # per shopper, products in time order, before the cut-off
    test_users: list[str] = field(default_factory=list)
    histories: list[list[int]] = field(default_factory=list)  # what each test shopper did before the target
    targets: list[int] = field(default_factory=list)
    raw_histories: list[list[Interaction]] = field(default_factory=list)  # the same, with kinds (built-in scoring)
    train_rows: list[Interaction] = field(default_factory=list)  # every row before the cut-off (built-in fit)
    events: int = 0  # positive interactions in the whole log (after merging back-to-back repeats)
    users: int = 0
    skipped_targets: int = 0  # held-out shoppers left out: target no longer in the catalog, or no history

    @property
    def train_events(self) -> int:
        return sum(len(s) for s in self.train)

    @property
    def train_users(self) -> int:
        return sum(1 for s in self.train if len(s) >= 2)


def shopper_sequences(rows: Iterable[Any]) -> dict[str, list[tuple[str, float]]]:
    """Positive interactions per shopper as ``(sku, time)`` in time order, back-to-back repeats merged
    (the first time is kept: when the shopper moved on to the product)."""
    out: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for r in sorted(as_interactions(rows), key=lambda r: r.time):
        if r.kind not in POSITIVE_KINDS:
            continue
        seq = out[r.user]
        if seq and seq[-1][0] == r.sku:
            continue
        seq.append((r.sku, r.time))
    return dict(out)


def split_log(rows: Iterable[Any], products: Sequence[Product], *, test_share: float = TEST_SHARE) -> RecommenderSplit:
    """Cut the log at the newest ``test_share`` of the positive interactions (see the module docstring)."""
    raw = sorted(as_interactions(rows), key=lambda r: r.time)
    seqs = shopper_sequences(raw)
    items = [p.sku for p in products]
    index = {s: i for i, s in enumerate(items)}
    n_catalog = len(items)
    for seq in seqs.values():
        for sku, _ in seq:
            if sku not in index:
                index[sku] = len(items)
                items.append(sku)
    times = sorted(t for seq in seqs.values() for _, t in seq)
    events = len(times)
    if events == 0:
        return RecommenderSplit(items, n_catalog, math.inf, [], events=0, users=0)
    n_test = max(1, round(events * test_share))
    cutoff = times[events - n_test]
    split = RecommenderSplit(items, n_catalog, cutoff, [], events=events, users=len(seqs))
    split.train_rows = [r for r in raw if r.time < cutoff]
    by_user: dict[str, list[Interaction]] = defaultdict(list)
    for r in raw:
        by_user[r.user].append(r)
    for user in sorted(seqs):
        seq = seqs[user]
        before = [index[s] for s, t in seq if t < cutoff]
        if before:
            split.train.append(before)
        target_sku, target_time = seq[-1]
        if target_time < cutoff:
            continue
        history = [index[s] for s, _ in seq[:-1]]
        if index[target_sku] >= n_catalog or not history:
            split.skipped_targets += 1
            continue
        split.test_users.append(user)
        split.histories.append(history)
        split.targets.append(index[target_sku])
        split.raw_histories.append([r for r in by_user[user] if r.time < target_time])
    return split


def auto_config(n_sequences: int, epochs: int | None = None, *, steps: int = 200) -> SeqConfig:
    """The model's settings for a shop's log, usually far smaller than Games-6k (50k histories).

    SeqConfig's defaults (batch 512, learning rate 3e-3, dropout 0.3) take about 100 optimizer steps per
    epoch on Games-6k but one on a log of 500 shoppers. Here the batch shrinks with the data (a power of two
    near an eighth of the histories, 32 to 512). With ``epochs`` the model trains exactly that many; without,
    it stops early on a validation slice (:func:`train_recommender`), and the cap and the patience are
    counted in optimizer steps so that a small log, with few steps per epoch, is not stopped by the noise of
    two epochs: up to about ``3 x steps`` steps (at least SeqConfig's cap, at most 200 epochs), patience
    about ``steps / 4`` steps (at least SeqConfig's). On Games-sized data that is SeqConfig's own cap and
    patience. Below 10,000 histories the learning rate is 1e-2 and dropout 0.1: on the synthetic log of
    tests/fakes/shop_log.py (300 shoppers, 10 epochs) NDCG@10 was 0.91 with them, 0.74 with 3e-3 and 0.72
    with dropout 0.3.
    """
    batch = 32
    while batch < 512 and batch * 2 <= n_sequences / 8:
        batch *= 2
    base = SeqConfig()
    if epochs is None:
        epochs = max(base.epochs, _epochs_for(n_sequences, batch, 3 * steps))
        patience = max(base.patience, math.ceil(_epochs_for(n_sequences, batch, steps) / 4))
    else:
        patience = base.patience
    if n_sequences >= 10_000:
        return SeqConfig(batch_size=batch, epochs=epochs, patience=patience)
    return SeqConfig(batch_size=batch, epochs=epochs, patience=patience, lr=1e-2, dropout=0.1)


def _epochs_for(n_sequences: int, batch: int, steps: int) -> int:
    """Epochs of ``batch``-sized steps over ``n_sequences`` histories that take about ``steps`` steps (1 to 200)."""
    return int(min(200, max(1, math.ceil(steps / max(1, math.ceil(n_sequences / batch))))))


def content_vectors(engine: SearchEngine) -> np.ndarray | None:
    """The search index's English title vectors, rows aligned with ``engine.products`` (what the built-in
    recommender's "because you looked at X" uses); None without a dense view."""
    if not engine.dense:
        return None
    d = engine.dense.get("en") or next(iter(engine.dense.values()))
    return np.asarray(d.vectors, dtype=np.float32)


def builtin_scores(
    rec: Recommender,
    histories: Sequence[Sequence[Interaction]],
    candidates: np.ndarray,
    content: np.ndarray | None = None,
    sequential: tuple[SequentialRecommender, Sequence[str]] | None = None,
) -> np.ndarray:
    """What the assistant ranks recommendations by, for ``candidates`` (catalog rows, (U, C)) after each history.

    The terms of :meth:`Recommender.for_user` without its filters (in stock, not bought): the shopper's liked
    products weighted by kind and recency, their co-occurrence normalised to 1, 0.8 x the best title-vector
    similarity to one of the ten newest (without vectors and without a next-item model: 0.5 for a product in
    one of their categories), 0.05 x normalised log popularity, and with ``sequential`` (a next-item model
    and its items' SKUs, as an active version is served) 0.5 x its standardised score, clipped at 0.
    """
    n = len(rec.products)
    pop = 0.05 * np.log1p(rec.popularity) / (np.log1p(rec.popularity.max()) + 1e-9)
    cats = np.asarray([category_key(p) for p in rec.products], dtype=object)
    liked_all = [rec.liked(sorted(rows, key=lambda r: r.time)) for rows in histories]
    seq_term = None if sequential is None else _sequential_term(rec, sequential, [lk for lk, _ in liked_all])
    out = np.zeros(candidates.shape, dtype=np.float64)
    for u, (liked, weights) in enumerate(liked_all):
        score = pop.copy()
        if liked:
            w_vec = np.zeros(n, dtype=np.float32)
            for i in liked:
                w_vec[i] = weights[i]
            if rec.cooc.nnz:
                co = np.asarray(rec.cooc.T @ w_vec, dtype=np.float64).ravel()
                if co.max() > 0:
                    score += co / co.max()
            if content is not None:
                anchors = liked[:10]
                sim = content[anchors] @ content.T
                wt = np.asarray([weights[i] for i in anchors])[:, None]
                score += 0.8 * (sim * (wt / wt.max())).max(axis=0)
            elif sequential is None:
                mine = {cats[i] for i in liked}
                score += 0.5 * np.asarray([c in mine for c in cats], dtype=np.float64)
            if seq_term is not None:
                score += seq_term[u]
        out[u] = score[candidates[u]]
    return out


def _sequential_term(rec: Recommender, sequential: tuple[SequentialRecommender, Sequence[str]],
                     liked: Sequence[Sequence[int]]) -> np.ndarray:
    """0.5 x the model's standardised scores over the catalog products it knows, clipped at 0, per shopper
    (the model sees the liked products oldest first, as in :meth:`Recommender.for_user`)."""
    model, skus = sequential
    rows = np.asarray([rec.by_sku.get(str(s), -1) for s in skus], dtype=np.int64)  # model item -> catalog row
    model_id = {int(r): m for m, r in enumerate(rows.tolist()) if r >= 0}
    hists = [[model_id[i] for i in reversed(lk) if i in model_id] for lk in liked]
    out = np.zeros((len(liked), len(rec.products)), dtype=np.float64)
    todo = [u for u, h in enumerate(hists) if h]
    if not todo:
        return out
    known = rows >= 0
    for group in _same_length(hists, todo, model.config.max_len):
        raw = model.score([hists[u] for u in group]).astype(np.float64)
        for k, u in enumerate(group):
            r = raw[k, known]
            z = (r - r.mean()) / (r.std() + 1e-9)
            out[u, rows[known]] = 0.5 * np.clip(z, 0, None)
    return out


def _same_length(hists: Sequence[Sequence[int]], todo: Sequence[int], max_len: int) -> list[list[int]]:
    """Shoppers grouped by history length: the model pads a batch on the left, so a history's positions (and
    its scores) would depend on the longest one next to it; scored one length at a time, every shopper
    gets what the assistant computes for them alone."""
    groups: dict[int, list[int]] = defaultdict(list)
    for u in todo:
        groups[min(len(hists[u]), max_len)].append(u)
    return [groups[k] for k in sorted(groups)]


def _model_scores(model: SequentialRecommender, skus: Sequence[str], split: RecommenderSplit,
                  candidates: np.ndarray) -> np.ndarray:
    """A next-item model's own scores for the candidates (history in, no other signal); products it never
    saw score lowest, and ties count against the target, so an unknown target earns nothing."""
    index = {s: i for i, s in enumerate(skus)}
    hist = [[index[split.items[i]] for i in h if split.items[i] in index] for h in split.histories]
    mapped = np.vectorize(lambda i: index.get(split.items[int(i)], -1), otypes=[np.int64])(candidates)
    safe = np.where(mapped >= 0, mapped, 0)
    scores = np.zeros(candidates.shape, dtype=np.float64)
    for group in _same_length(hist, range(len(hist)), model.config.max_len):
        scores[group] = model.score_candidates([hist[u] for u in group], safe[group])
    scores[mapped < 0] = -np.inf
    return scores


def _figures(scores: np.ndarray) -> dict[str, float]:
    ndcg, recall = ndcg_recall(ranks_of_first(scores))
    return {"ndcg@10": round(ndcg, 4), "recall@10": round(recall, 4)}


def train_recommender(
    rows: Iterable[Any],
    products: Sequence[Product],
    registry: Registry,
    *,
    content: np.ndarray | None = None,
    epochs: int | None = None,
    device: str | None = None,
    config: SeqConfig | None = None,
    progress: bool = True,
    seed: int = SEED,
    test_share: float = TEST_SHARE,
) -> TrainReport:
    """Train a next-item model on the log, compare it with the current model, register it, promote if better.

    ``rows``: the store's interaction rows (tuples or :class:`Interaction`); ``products``: the catalog the
    assistant serves (negatives are drawn from it); ``content``: title vectors aligned with ``products`` for
    the built-in scoring (:func:`content_vectors`). Raises :class:`TrainDataError` when the log is too small.
    Without ``epochs`` the number of epochs is chosen by early stopping (``config`` or :func:`auto_config` gives
    the cap and the patience) on the last product of a tenth of the training shoppers (at least 50), held back
    from training; with ``epochs`` it trains exactly that many on every training shopper.

    The figures that decide are those of the recommendations as served: the built-in scoring plus the
    model's term (:func:`builtin_scores`), for the new model and for the active one; the model's own
    figures and popularity's are reported next to them.
    """
    t0 = time.perf_counter()
    split = split_log(rows, products, test_share=test_share)
    if split.train_users < MIN_TRAIN_USERS or len(split.targets) < MIN_TEST_USERS:
        raise TrainDataError(
            f"Training the recommender needs at least {MIN_TRAIN_USERS} shoppers with two or more product "
            f"interactions (details, clicks, cart, purchases, thumbs up) before the newest {test_share:.0%} of the "
            f"log and {MIN_TEST_USERS} shoppers whose last interaction falls in it; the log has "
            f"{split.train_users} and {len(split.targets)} ({split.events} interactions from {split.users} "
            "shoppers), so let shoppers browse for a while and retrain."
        )
    if split.n_catalog < N_NEGATIVES + 2:
        raise TrainDataError(
            f"The catalog has {split.n_catalog} products; the evaluation ranks each shopper's next product among "
            f"{N_NEGATIVES + 1}, so it needs at least {N_NEGATIVES + 2}."
        )
    # shoppers whose history leaves fewer than 19 other catalog products cannot be tested; keep the rest
    keep = [u for u, (h, t) in enumerate(zip(split.histories, split.targets, strict=True))
            if split.n_catalog - len({i for i in h if i < split.n_catalog} | {t}) >= N_NEGATIVES]
    if len(keep) < len(split.targets):
        split.skipped_targets += len(split.targets) - len(keep)
        split.test_users = [split.test_users[u] for u in keep]
        split.histories = [split.histories[u] for u in keep]
        split.targets = [split.targets[u] for u in keep]
        split.raw_histories = [split.raw_histories[u] for u in keep]
    cand = sample_candidates(split.histories, split.targets, split.n_catalog, N_NEGATIVES, seed=seed)

    # popularity and the built-in scoring, from the training part only
    popularity = np.zeros(len(split.items), dtype=np.float64)
    for s in split.train:
        np.add.at(popularity, np.asarray(s, dtype=np.int64), 1.0)
    pop_figures = _figures(popularity[cand])
    builtin = Recommender(products, split.train_rows)
    builtin_figures = _figures(builtin_scores(builtin, split.raw_histories, cand, content))

    notes: list[str] = []
    current = registry.active(KIND)
    baseline, baseline_name = builtin_figures, "built-in"
    baseline_alone: dict[str, float] | None = None
    if current is not None:
        try:
            old, old_skus = SequentialRecommender.load(current.path, device=device)
            if old_skus is None:
                raise ValueError("its manifest lists no SKUs")
            baseline = _figures(builtin_scores(builtin, split.raw_histories, cand, content, (old, old_skus)))
            baseline_alone = _figures(_model_scores(old, old_skus, split, cand))
            baseline_name = current.name
        except Exception as exc:  # a damaged version must not block training a replacement
            notes.append(f"The active version {current.name} could not be loaded ({type(exc).__name__}: {exc}); "
                         "compared with the built-in scoring instead.")

    cfg = config or auto_config(len(split.train), epochs)
    if epochs is not None:
        cfg = replace(cfg, epochs=epochs)
    model = SequentialRecommender(len(split.items), cfg, device=device)
    seqs = [s for s in split.train if len(s) >= 2]
    validation = None
    if epochs is None:  # early stopping on training shoppers' last products, never on the held-out shoppers
        seqs, validation = carve_validation(seqs, len(split.items), seed=cfg.seed)
        if validation is None:  # too few shoppers to stop on: a fixed budget of about 200 steps, as before
            cfg = replace(cfg, epochs=max(2, _epochs_for(len(seqs), cfg.batch_size, 200)))
            model = SequentialRecommender(len(split.items), cfg, device=device)
    model.init_items(cooccurrence_embeddings(seqs, len(split.items), cfg.dim))  # warm start from the counts
    losses = model.fit(seqs, validation=validation, progress=progress)
    alone = _figures(_model_scores(model, split.items, split, cand))
    candidate = _figures(builtin_scores(builtin, split.raw_histories, cand, content, (model, split.items)))

    promoted = better(candidate, baseline, METRIC)
    cutoff = datetime.fromtimestamp(split.cutoff, UTC).isoformat(timespec="seconds")
    meta = {
        "metrics": {"metric": METRIC, "candidate": candidate, "baseline": baseline, "baseline_name": baseline_name,
                    "model_alone": alone, "baseline_model_alone": baseline_alone, "popularity": pop_figures,
                    "built-in": builtin_figures},
        "trained_on": {"interactions": split.events, "shoppers": split.users, "train_interactions": split.train_events,
                       "train_shoppers": split.train_users, "test_shoppers": len(split.targets),
                       "skipped_test_shoppers": split.skipped_targets, "items": len(split.items),
                       "catalog_items": split.n_catalog, "cutoff": cutoff, "kinds": sorted(POSITIVE_KINDS),
                       "content_vectors": content is not None},
        "protocol": {"candidates": N_NEGATIVES + 1, "seed": seed, "test_share": test_share},
        "model": {"config": asdict(cfg), "losses": [round(x, 4) for x in losses], "device": model.device,
                  **model.fit_report(), "early_stopping": validation is not None,
                  "validation_shoppers": 0 if validation is None else len(validation.users)},
    }
    with registry.stage(KIND) as staged:
        model.save(staged, item_keys=split.items)
        version = registry.commit(KIND, staged, meta, promote=promoted)
    if validation is not None:
        notes.append(f"Early stopping on the last training product of {len(validation.users)} shoppers chose epoch "
                     f"{model.best_epoch} of {model.epochs_run} run (at most {cfg.epochs}).")
    elif epochs is None:
        notes.append(f"Too few training shoppers to stop early on: trained a fixed {model.epochs_run} epochs.")
    else:
        notes.append(f"Trained for {model.epochs_run} epochs as asked (no early stopping).")
    notes.append(f"As served (built-in scoring + the model), recall@10 {candidate['recall@10']:.4f} (new) vs "
                 f"{baseline['recall@10']:.4f} ({baseline_name}). The model alone: ndcg@10 {alone['ndcg@10']:.4f}"
                 + ("" if baseline_alone is None else f" (active version alone {baseline_alone['ndcg@10']:.4f})")
                 + f"; built-in scoring {builtin_figures['ndcg@10']:.4f}; popularity {pop_figures['ndcg@10']:.4f}.")
    return TrainReport(
        kind=KIND, metric=METRIC, candidate=candidate, baseline=baseline, baseline_name=baseline_name,
        promoted=promoted, version=version.name, train_examples=split.train_events, test_examples=len(split.targets),
        seconds=round(time.perf_counter() - t0, 1), device=model.device, notes=notes,
    )

