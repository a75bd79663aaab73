"""``shopbot eval recommend``: next-item recommendation on LLMRank-style files (history -> next item).

The protocol (../shared/eval/README.md): for each user the true next item is ranked among itself and 19 items
drawn uniformly from the catalog with a fixed seed (never from the history or the target); NDCG@10 and
Recall@10 over those 20, plus Recall@10 over the whole catalog. The models train on the histories only: the
target column is read for scoring and nothing else. The next-item model's number of epochs is chosen by
early stopping on the last item of a tenth of the histories (held back from its training), never on the
targets it is scored on; ``--seeds N`` trains N models (seeds 0..N-1) and reports the mean and the spread.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bot.cli.errors import UserError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["eval_recommend"]


def _error(message: str) -> click.ClickException:
    return UserError(message)


@click.command(name="recommend")
@click.option("--items", "items_path", required=True, type=click.Path(path_type=Path),
              help="Item file (item_id<TAB>title), e.g. ../shared/eval/recommend/Games-6k.item.")
@click.option("--interactions", "inter_path", required=True, type=click.Path(path_type=Path),
              help="Interaction file (user<TAB>history<TAB>next item), e.g. Games-6k.valid.inter.")
@click.option("--limit", type=int, default=None, help="Only the first N users (train and score).")
@click.option("--epochs", type=click.IntRange(min=0), default=None,
              help="Train exactly N epochs on every history instead of early stopping (0: baselines only).")
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train the next-item model with seeds 0..N-1 and report the mean and the spread.")
@click.option("--seed", type=int, default=2024, show_default=True, help="Seed of the sampled candidates.")
@click.option("--device", default=None, help="cpu or cuda (default: cuda when present).")
@click.option("--save", type=click.Path(path_type=Path), default=None,
              help="Save the trained model (the first seed's) in this folder.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
def eval_recommend(items_path: Path, inter_path: Path, limit: int | None, epochs: int | None, seeds: int, seed: int,
                   device: str | None, save: Path | None, as_json: bool) -> None:
    """NDCG@10 and Recall@10 of the next item among 20 candidates, and full-catalog Recall@10."""
    import numpy as np  # numpy, scipy, torch: start-up speed of the other commands

    from retrieval.recommend.cooccurrence import cooccurrence, cooccurrence_scores
    from retrieval.recommend.evaluation import full_recall, load_recbole, ndcg_recall, ranks_of_first, sample_candidates

    for p in (items_path, inter_path):
        if not p.is_file():
            raise _error(f"{p} does not exist; pass the files of ../shared/eval/recommend/ (Games-6k.item, Games-6k.valid.inter).")
    t0 = time.perf_counter()
    try:
        data = load_recbole(items_path, inter_path, limit=limit)
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise _error(f"{inter_path}: {str(exc).splitlines()[0]}") from None
    n_items, n_users = len(data.titles), len(data.targets)
    if n_users == 0:
        raise _error(f"{inter_path} has no users with a next item.")
    click.echo(f"{n_users} users, {n_items} items, {sum(map(len, data.histories))} history events.", err=True)
    try:
        cand = sample_candidates(data.histories, data.targets, n_items, 19, seed=seed)
    except ValueError as exc:
        raise _error(str(exc)) from None

    # Everything below learns from data.histories only; data.targets is used to score.
    histories = data.histories
    popularity = np.zeros(n_items, dtype=np.float64)
    for h in histories:
        np.add.at(popularity, np.asarray(h, dtype=np.int64), 1.0)
    report: dict[str, Any] = {}
    pop_ndcg, pop_rec = ndcg_recall(ranks_of_first(popularity[cand]))
    co = cooccurrence(histories, n_items, window=3)
    co_ndcg, co_rec = ndcg_recall(ranks_of_first(cooccurrence_scores(co, histories, cand, popularity=popularity)))
    report.update({"popularity_ndcg@10": pop_ndcg, "popularity_recall@10": pop_rec,
                   "cooccurrence_ndcg@10": co_ndcg, "cooccurrence_recall@10": co_rec})
    click.echo(f"popularity     NDCG@10 {pop_ndcg:.4f}  Recall@10 {pop_rec:.4f}", err=True)
    click.echo(f"co-occurrence  NDCG@10 {co_ndcg:.4f}  Recall@10 {co_rec:.4f}", err=True)

    if epochs == 0:
        ndcg, rec = co_ndcg, co_rec
        full = full_recall(lambda hs: np.asarray(_cooc_full(co, hs, popularity)), histories, data.targets)
        report.update({"model": "co-occurrence", "ndcg@10": ndcg, "recall@10": rec, "full_recall@10": full})
    else:
        runs = [_train_and_score(histories, data.targets, cand, n_items, epochs, s, device,
                                 save if s == 0 else None) for s in range(seeds)]
        report.update(_summary(runs))
        report["runs"] = runs
    report.update({"n": n_users, "candidates": 20, "seed": seed, "seconds": round(time.perf_counter() - t0, 1)})
    spread = "" if len(report.get("runs", [])) < 2 else \
        f" (mean of {seeds} seeds, sd {report['ndcg@10_sd']:.4f}, range {report['ndcg@10_min']:.4f}-{report['ndcg@10_max']:.4f})"
    click.echo(f"{report['model']}: NDCG@10 {report['ndcg@10']:.4f}{spread}  Recall@10 {report['recall@10']:.4f}  "
               f"full-catalog Recall@10 {report['full_recall@10']:.4f}  ({n_users} users, {report['seconds']} s)")
    if as_json:
        sys.stdout.flush()
        click.echo(json.dumps(_rounded(report)))


def _train_and_score(histories: list[list[int]], targets: list[int], cand: np.ndarray, n_items: int,
                     epochs: int | None, seed: int, device: str | None, save: Path | None) -> dict[str, Any]:
    """One next-item model (model seed ``seed``) trained on the histories and scored on the targets.

    Without ``epochs`` a tenth of the histories give their last item to a validation slice (carved with the
    same seed) and training stops early on it; with ``epochs`` every history trains for exactly that many.
    """
    # loaded when the command runs, so that `shopbot --help` stays fast
    from retrieval.recommend.evaluation import carve_validation, full_recall, ndcg_recall, ranks_of_first
    from retrieval.recommend.sequential import SeqConfig, SequentialRecommender, cooccurrence_embeddings

    cfg = SeqConfig(seed=seed) if epochs is None else SeqConfig(seed=seed, epochs=epochs)
    train, validation = (histories, None) if epochs is not None else carve_validation(histories, n_items, seed=seed)
    model = SequentialRecommender(n_items, cfg, device=device)
    t_train = time.perf_counter()
    model.init_items(cooccurrence_embeddings(train, n_items, cfg.dim))  # warm start from the counts
    model.fit(train, validation=validation, progress=True)
    train_seconds = round(time.perf_counter() - t_train, 1)
    ndcg, rec = ndcg_recall(ranks_of_first(model.score_candidates(histories, cand)))  # whole histories
    full = full_recall(model.score, histories, targets)
    if save is not None:
        model.save(save, item_keys=None)
    stopping = "early stopping" if validation is not None else "fixed epochs"
    click.echo(f"seed {seed}: {model.best_epoch} of {model.epochs_run} epochs ({stopping}), NDCG@10 {ndcg:.4f}", err=True)
    return {"model_seed": seed, **model.fit_report(), "validation_users": 0 if validation is None else len(validation.users),
            "early_stopping": validation is not None, "ndcg@10": ndcg, "recall@10": rec, "full_recall@10": full,
            "train_seconds": train_seconds, "device": model.device,
            "model": f"sasrec d{cfg.dim} x{cfg.layers}, up to {cfg.epochs} epochs, patience {cfg.patience}"
            if validation is not None else f"sasrec d{cfg.dim} x{cfg.layers}, {cfg.epochs} epochs"}


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean figures over seeds, each with its sample standard deviation and range; the chosen epochs."""
    out: dict[str, Any] = {"model": runs[0]["model"], "device": runs[0]["device"],
                           "epochs_chosen": [r["epochs_chosen"] for r in runs], "seeds": len(runs),
                           "train_seconds": round(sum(r["train_seconds"] for r in runs), 1)}
    for key in ("ndcg@10", "recall@10", "full_recall@10"):
        values = [float(r[key]) for r in runs]
        out[key] = statistics.fmean(values)
        if len(values) > 1:
            out.update({f"{key}_sd": statistics.stdev(values), f"{key}_min": min(values), f"{key}_max": max(values)})
    return out


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _cooc_full(co: Any, histories: Any, popularity: np.ndarray) -> np.ndarray:
    # loaded when the command runs, so that `shopbot --help` stays fast
    import numpy as np
    from scipy import sparse

    r, c, v = [], [], []
    for u, h in enumerate(histories):
        for age, item in enumerate(reversed(list(h))):
            r.append(u)
            c.append(item)
            v.append(0.7**age)
    w = sparse.csr_matrix((v, (r, c)), shape=(len(histories), co.shape[0]), dtype=np.float32)
    dense = np.asarray((w @ co).todense(), dtype=np.float64)
    scores: np.ndarray = dense + 1e-3 * np.log1p(popularity)[None, :] / (np.log1p(popularity.max()) + 1.0)
    return scores
