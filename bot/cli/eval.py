"""``shopbot eval search|intents|describe|recommend``: measure quality on evaluation files.

Search and intents are measured here; the describe and recommend evaluations live beside the code they share
with their own commands (bot/cli/describe.py, bot/cli/recommend.py) and join this group in bot/cli/main.py.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from bot.cli.context import debug, echo_err, settings
from bot.cli.errors import user_errors

__all__ = ["eval_group"]


@click.group(name="eval")
def eval_group() -> None:
    """Measure quality on evaluation files."""


@eval_group.command(name="search")
@click.option("--judgments", required=True, type=click.Path(path_type=Path), help="CrowdFlower-format CSV.")
@click.option("--mode", type=click.Choice(["hybrid", "bm25", "dense", "rrf", "all"]), default="hybrid", show_default=True,
              help="Ranking to measure; 'all' reports every mode through the same index.")
@click.option("--catalog", type=click.Path(path_type=Path), default=None,
              help="For judgments that name SKUs (query,sku,relevance): the catalog they judge (default: demo).")
@click.option("--limit", type=int, default=None, help="Only the first N queries (quick checks).")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
@click.pass_context
def eval_search(
    ctx: click.Context, judgments: Path, mode: str, catalog: Path | None, limit: int | None, as_json: bool
) -> None:
    """NDCG@10, Recall@10 of grade-4 products and p50/p99 latency over a judgments file.

    Judgments that mix English and Chinese queries are also reported per language.
    """
    # the search stack loads slowly: only when the command runs
    from bot.services import build_options, load_options
    from retrieval.catalog import load_catalog
    from retrieval.evaluation import Judgments, evaluate_run, load_judgments
    from retrieval.indexer import build_bundle, load_engine
    from retrieval.lexical import has_cjk

    s = settings(ctx)
    with user_errors(debug(ctx)):
        header = judgments.open(encoding="utf-8-sig").readline() if judgments.is_file() else ""
        products = load_catalog(catalog).products if "sku" in header.lower().split(",") else None
        j = load_judgments(judgments, catalog=products)
        if limit:
            j.grades = dict(list(j.grades.items())[:limit])
        echo_err(f"{len(j.products)} products, {len(j.grades)} queries from {judgments}")
        # Indexed under the data dir keyed by file, so a re-run only re-encodes what changed.
        root = s.data_dir / "eval" / judgments.stem
        build_bundle(j.products, root, progress=True, **build_options(s))
        engine = load_engine(root, query_cache_size=0, **load_options(s))
        modes = ["bm25", "dense", "rrf", "hybrid"] if mode == "all" else [mode]
        results: dict[str, dict[str, Any]] = {}
        base_config = engine.config
        zh = {q: g for q, g in j.grades.items() if has_cjk(q)}
        splits = {"all": j}
        if zh and len(zh) < len(j.grades):
            splits["en"] = Judgments(j.products, {q: g for q, g in j.grades.items() if q not in zh})
            splits["zh"] = Judgments(j.products, zh)
        by_lang: dict[str, dict[str, Any]] = {}
        for m in modes:
            engine.config = dataclasses.replace(base_config, mode=m)  # type: ignore[call-arg]
            for lang, part in splits.items():
                run = evaluate_run(part, lambda q: engine.search(q, k=10, parse=False).skus, progress=False)
                if lang == "all":
                    results[m] = run.as_dict()
                else:
                    by_lang.setdefault(m, {})[lang] = run.as_dict()
                label = m if lang == "all" else f"{m}/{lang}"
                click.echo(
                    f"{label:>10}: NDCG@10 {run.ndcg:.4f}  Recall@10 {run.recall:.4f}  p50 {run.p50_ms:.1f} ms  "
                    f"p99 {run.p99_ms:.1f} ms  ({run.queries} queries, {run.products} products)"
                )
    if as_json:
        final = dict(results[modes[-1]])
        if by_lang:
            final["by_language"] = by_lang[modes[-1]]
        if len(modes) > 1:
            final["modes"] = results
        click.echo(json.dumps(final))


@eval_group.command(name="intents")
@click.option("--data", required=True, type=click.Path(path_type=Path), help="CSV with columns utterance,intent (Bitext format).")
@click.option("--train", "train_csv", type=click.Path(path_type=Path), default=None,
              help="Retrain on this CSV first (plus the packaged examples, as `shopbot train intents` does).")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
@click.pass_context
def eval_intents(ctx: click.Context, data: Path, train_csv: Path | None, as_json: bool) -> None:
    """Accuracy and macro-F1 of intent routing (the configured or packaged classifier + the NLU's rules) on DATA."""
    # the classifier, its encoders and the assistant's wiring load slowly: only when the command runs
    from bot.app import intent_model_from_settings
    from bot.dialogue.nlu.intents import DATA_DIR, DEFAULT_ENCODERS, evaluate_intents, load_training_csv, train_intents
    from bot.dialogue.nlu.parser import NLU
    from retrieval.catalog import load_catalog
    from retrieval.encoders import get_encoder

    s = settings(ctx)
    with user_errors(debug(ctx)):
        if train_csv is not None:
            rows = load_training_csv(DATA_DIR / "intents.csv") + load_training_csv(train_csv)
            model = train_intents(rows, [get_encoder(n) for n in DEFAULT_ENCODERS])
        else:
            model, _name = intent_model_from_settings(s)  # SHOPBOT_INTENT_MODEL, the active version, or packaged
        rows = load_training_csv(data, strict=False)
        # the assistant's routing: the classifier plus the NLU's rules, with the catalog's vocabulary
        products = load_catalog(s.catalog).products
        nlu = NLU(model, brands={p.brand for p in products if p.brand},
                  categories=sorted({c.lower() for p in products for c in p.category}))
        routed = [r.intent for r in nlu.parse_batch([row.utterance for row in rows])]
        report = evaluate_intents(model, rows, predictions=routed)
    click.echo(f"accuracy {report['accuracy']:.4f}  macro-F1 {report['macro_f1']:.4f}  n={report['n']}")
    for c in report["confusions"][:5]:
        click.echo(f"  {c['gold']} -> {c['predicted']}: {c['count']}")
    if as_json:
        click.echo(json.dumps({k: report[k] for k in ("accuracy", "macro_f1", "n")} | {"model_version": report["model_version"]}))
