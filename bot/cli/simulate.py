"""``shopbot simulate``: simulated shoppers (model/training/simulate.py) chat with the assistant and fill the log; with
``--loop`` it then closes the loop once (train ranker -> reindex) and reports search quality on held-out
simulated needs before and after.

It writes to the configured database like real traffic (use a scratch ``--data-dir`` for a demo): every
turn, impression, thumb and purchase goes through the same code as a real shopper's.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from bot.cli.context import debug, echo_err, engine_for, open_store, settings
from bot.cli.errors import user_errors
from model.training.registry import Registry

__all__ = ["simulate_cmd"]


@click.command(name="simulate")
@click.option("--shoppers", type=int, default=200, show_default=True)
@click.option("--needs", type=int, default=5, show_default=True, help="Things each shopper looks for, one after another.")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the world (hidden appeal) and of the shoppers.")
@click.option("--held-out", type=int, default=104, show_default=True, help="Held-out needs to judge search on.")
@click.option("--loop/--no-loop", default=True, show_default=True,
              help="After the traffic: train the ranker, reindex, and measure again.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
@click.pass_context
def simulate_cmd(ctx: click.Context, shoppers: int, needs: int, seed: int, held_out: int, loop: bool,
                 as_json: bool) -> None:
    """Simulated shoppers search, open, rate and buy; then (--loop) one retraining round is measured."""
    # the assistant, the trainers and the search stack load slowly: only when the command runs
    from bot.app import build_assistant
    from bot.services import reindex
    from model.training.ranker import train_ranker
    from model.training.simulate import World, describe, evaluate_search, run_shoppers

    s = settings(ctx)
    out: dict[str, Any] = {"seed": seed}
    with user_errors(debug(ctx)):
        engine = engine_for(s)
        world = World(engine.products, seed=seed)
        needs_eval = world.held_out(held_out, seed=seed + 1000)

        def ndcg(e: Any) -> float:
            return evaluate_search(lambda text: e.search(text, k=10).skus, world, needs_eval)

        out["ndcg@10_before"] = round(ndcg(engine), 4)
        click.echo(f"Search NDCG@10 on {len(needs_eval)} held-out simulated needs: {out['ndcg@10_before']:.4f} "
                   f"(ranker {engine.ranker_version}).", err=True)
        assistant = build_assistant(s, engine=engine, llm=False)
        store = assistant.store

        def purchase(user: str, sku: str) -> None:
            store.log_feedback(store.touch("sim", user)[0], "purchase", sku=sku)

        t0 = time.perf_counter()
        try:
            stats = run_shoppers(assistant.handle, purchase, world, shoppers=shoppers, needs_per_shopper=needs,
                                 seed=seed + 1, avoid={n.text for n in needs_eval}, progress=True)
        finally:
            assistant.close()
        out["traffic"] = describe(stats) | {"seconds": round(time.perf_counter() - t0, 1)}
        click.echo("Simulated: " + ", ".join(f"{k} {v}" for k, v in out["traffic"].items()) + ".", err=True)
        if loop:
            with open_store(s) as st:
                rows = st.search_log()
            report = train_ranker(rows, engine, Registry(s.models_dir), progress=True, source="simulate")
            echo_err(report.summary())
            out["ranker"] = report.to_dict()
            reindex(s, s.catalog, full=False)
            after = engine_for(s, build_if_missing=False)
            out["ndcg@10_after"] = round(ndcg(after), 4)
            out["relative_gain"] = round(out["ndcg@10_after"] / out["ndcg@10_before"] - 1.0, 4) if out["ndcg@10_before"] else None
            click.echo(f"Search NDCG@10 after one round (ranker {after.ranker_version}): {out['ndcg@10_after']:.4f} "
                       f"({out['relative_gain']:+.1%}).", err=True)
            out["recommender"] = _recommender_round(s, after)
    if as_json:
        click.echo(json.dumps(out, default=str))


def _recommender_round(s: Any, engine: Any) -> dict[str, Any]:
    """`train recommender` on the simulated histories: next-item NDCG@10 of the new model as served, of the
    built-in scoring and of popularity, on the shoppers whose last step is in the newest part of the log."""
    # loaded when the command runs, so that `shopbot --help` stays fast
    from model.training.common import TrainDataError
    from model.training.recommender import content_vectors, train_recommender

    with open_store(s) as st:
        rows = st.interactions(limit=200_000)
    try:
        report = train_recommender(rows, engine.products, Registry(s.models_dir), content=content_vectors(engine), progress=True)
    except TrainDataError as exc:
        click.echo(f"Recommender not trained: {exc}", err=True)
        return {"error": str(exc)}
    echo_err(report.summary())
    meta = Registry(s.models_dir).get("recommender", report.version).metrics if report.version else {}
    return {"promoted": report.promoted, "version": report.version, "ndcg@10": report.candidate.get("ndcg@10"),
            "baseline_ndcg@10": report.baseline.get("ndcg@10"), "baseline": report.baseline_name,
            "popularity_ndcg@10": (meta.get("popularity") or {}).get("ndcg@10"),
            "model_alone_ndcg@10": (meta.get("model_alone") or {}).get("ndcg@10"),
            "test_shoppers": report.test_examples, "seconds": report.seconds}
