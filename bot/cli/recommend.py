"""``shopbot eval recommend``: next-item recommendation on LLMRank-style files (history -> next item).

The protocol (../shared/eval/README.md): for each user the true next item is ranked among itself and 19 items
drawn uniformly from the catalog with a fixed seed (never from the history or the target); NDCG@10 and
Recall@10 over those 20, plus Recall@10 over the whole catalog. The models train on the histories only: the
target column is read for scoring and nothing else.
"""

from __future__ import annotations

import json
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
@click.option("--epochs", type=int, default=None, help="Training epochs of the next-item model (0: baselines only).")
@click.option("--seed", type=int, default=2024, show_default=True, help="Seed of the sampled candidates.")
@click.option("--device", default=None, help="cpu or cuda (default: cuda when present).")
@click.option("--save", type=click.Path(path_type=Path), default=None, help="Save the trained model in this folder.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
def eval_recommend(items_path: Path, inter_path: Path, limit: int | None, epochs: int | None, seed: int,
                   device: str | None, save: Path | None, as_json: bool) -> None:
    """NDCG@10 and Recall@10 of the next item among 20 candidates, and full-catalog Recall@10."""
    import numpy as np  # numpy, scipy, torch: start-up speed of the other commands

    from retrieval.recommend.cooccurrence import cooccurrence, cooccurrence_scores
    from retrieval.recommend.evaluation import full_recall, load_recbole, ndcg_recall, ranks_of_first, sample_candidates
    from retrieval.recommend.sequential import SeqConfig, SequentialRecommender, cooccurrence_embeddings

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

    cfg = SeqConfig() if epochs is None else SeqConfig(epochs=epochs)
    if cfg.epochs > 0:
        model = SequentialRecommender(n_items, cfg, device=device)
        t_train = time.perf_counter()
        model.init_items(cooccurrence_embeddings(histories, n_items, cfg.dim))  # warm start from the counts
        model.fit(histories, progress=True)
        report["train_seconds"] = round(time.perf_counter() - t_train, 1)
        scores = model.score_candidates(histories, cand)
        ndcg, rec = ndcg_recall(ranks_of_first(scores))
        full = full_recall(model.score, histories, data.targets)
        report.update({"model": f"sasrec d{cfg.dim} x{cfg.layers}, {cfg.epochs} epochs", "device": model.device})
        if save is not None:
            model.save(save, item_keys=None)
    else:
        ndcg, rec = co_ndcg, co_rec
        full = full_recall(lambda hs: np.asarray(_cooc_full(co, hs, popularity)), histories, data.targets)
        report["model"] = "co-occurrence"
    report.update({"ndcg@10": ndcg, "recall@10": rec, "full_recall@10": full, "n": n_users,
                   "candidates": 20, "seed": seed, "seconds": round(time.perf_counter() - t0, 1)})
    click.echo(f"{report['model']}: NDCG@10 {ndcg:.4f}  Recall@10 {rec:.4f}  full-catalog Recall@10 {full:.4f}"
               f"  ({n_users} users, {report['seconds']} s)")
    if as_json:
        sys.stdout.flush()
        click.echo(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in report.items()}))


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
    return dense + 1e-3 * np.log1p(popularity)[None, :] / (np.log1p(popularity.max()) + 1.0)
