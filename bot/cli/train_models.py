"""``shopbot train recommender`` and ``shopbot train intents``: retrain from the SQL log, promote only if better.

The trainers are model/training/recommender.py (the next-item model) and model/training/intents.py (the intent
classifier); this module reads the store, the catalog and the files the owner passes, and prints the
report. Running bots pick a promoted version up when they restart (bot/app.py loads the active versions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bot.cli.train import echo_report, open_store, registry_of, train_errors, train_group
from bot.settings import Settings

__all__ = ["train_intents_cmd", "train_recommender_cmd"]

TRAIN_ROWS_LIMIT = 2_000_000  # interactions read for training (the store's limit is per kind of row)


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]  # type: ignore[no-any-return]


def _catalog(s: Settings) -> tuple[list[Any], Any, str]:
    """The products the assistant serves and their title vectors: the search index when one is built (the
    built-in recommender's "because you looked at X" uses its vectors), else the configured catalog file."""
    from retrieval.index import current_dir

    if current_dir(s.index_root) is not None:
        from bot.cli.main import _engine
        from model.training.recommender import content_vectors

        engine = _engine(s, build_if_missing=False)
        return list(engine.products), content_vectors(engine), "the search index"
    from retrieval.catalog import load_catalog

    result = load_catalog(s.catalog, on_error="skip")
    return list(result.products), None, "the demo catalog" if s.catalog is None else str(s.catalog)


@train_group.command(name="recommender")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Training epochs (default: about 200 optimizer steps for the log's size).")
@click.option("--device", default=None, help="cpu or cuda (default: SHOPBOT_DEVICE, else cuda when present).")
@click.option("--json", "as_json", is_flag=True, help="End with the report as one JSON object.")
@click.pass_context
def train_recommender_cmd(ctx: click.Context, epochs: int | None, device: str | None, as_json: bool) -> None:
    """Train the next-item model on shoppers' product histories (details, clicks, cart, purchases, thumbs up),
    test it on each recent shopper's last product, and make it active only if it beats the current model."""
    from model.training.recommender import train_recommender

    s = _settings(ctx)
    debug = ctx.obj["debug"]
    with train_errors(debug):
        with open_store(s) as store:
            rows = store.interactions(limit=TRAIN_ROWS_LIMIT)
        products, content, where = _catalog(s)
        click.echo(f"{len(rows)} interactions from the log, {len(products)} products from {where}.", err=True)
        report = train_recommender(rows, products, registry_of(s), content=content, epochs=epochs,
                                   device=device or s.device, progress=True)
    if report.promoted:
        report.notes.append("Running bots pick it up when they restart; `shopbot models rollback recommender` undoes it.")
    echo_report(report, as_json)


@train_group.command(name="intents")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Your labelled utterances, CSV utterance,intent[,language] (e.g. a filled-in export). "
                   "Append new rows at the end: the newest 20% are held out to test on.")
@click.option("--export-for-labelling", "export", type=click.Path(path_type=Path), default=None,
              help="Instead of training: write the logged utterances to label (\"not what I meant\", then the "
                   "least sure) to this CSV; fill in its intent column and pass it back with --data.")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True,
              help="With --export-for-labelling: at most this many utterances.")
@click.option("--from-log/--no-log", "use_log", default=True, show_default=True,
              help="Also learn from confidently routed logged turns nobody complained about (weighted 0.3).")
@click.option("--with-builtin/--only-data", default=True, show_default=True,
              help="Also learn from the packaged examples, so every intent the assistant acts on keeps working.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Also write the new model to this file (for SHOPBOT_INTENT_MODEL).")
@click.option("--json", "as_json", is_flag=True, help="End with the report as one JSON object.")
@click.pass_context
def train_intents_cmd(ctx: click.Context, data: Path | None, export: Path | None, limit: int, use_log: bool,
                      with_builtin: bool, out: Path | None, as_json: bool) -> None:
    """Retrain the intent classifier from the packaged examples, your labelled utterances (--data) and the
    log; it becomes active only if its macro-F1 on held-out utterances beats the current model's."""
    from bot.cli.main import user_errors

    s = _settings(ctx)
    debug = ctx.obj["debug"]
    if export is not None:
        from model.training.intents import export_for_labelling

        with user_errors(debug), open_store(s) as store:
            logged = store.turn_log()
        counts = export_for_labelling(logged, export, limit=limit)
        click.echo(f"{counts['not_what_i_meant']} utterances marked \"not what I meant\" and {counts['unsure']} the "
                   f"assistant was unsure about written to {export}. Fill in the intent column (the predicted column "
                   f"shows what it thought), then run `shopbot train intents --data {export}`.")
        return

    from bot.dialogue.nlu.intents import DEFAULT_ENCODERS, IntentModelError, load_default_model, packaged_rows
    from model.training.intents import MODEL_FILE, dev_rows, load_owner_rows, retrain_intents
    from retrieval.encoders import get_encoder

    with train_errors(debug):
        owner, blank = load_owner_rows(data) if data is not None else ([], 0)
        if blank:
            click.echo(f"{data}: {blank} rows have no intent yet and were skipped.", err=True)
        reg = registry_of(s)
        active = reg.active("intents")
        current, current_name = None, "packaged"
        if active is not None:
            try:
                current, current_name = load_default_model(active.path / MODEL_FILE), active.name
            except IntentModelError as exc:
                click.echo(f"The active version {active.name} cannot be loaded ({exc}); comparing with the "
                           "packaged model.", err=True)
        current = current or load_default_model()
        turns: list[Any] = []
        if use_log:
            with open_store(s) as store:
                turns = store.turn_log()
        click.echo(f"Training on {'the packaged examples + ' if with_builtin else ''}{len(owner)} labelled rows"
                   f"{f' + the log ({len(turns)} turns)' if use_log else ''} ...", err=True)
        report = retrain_intents(
            packaged=packaged_rows() if with_builtin else [], owner=owner, turns=turns, dev=dev_rows(),
            current=current, current_name=current_name, encoders=[get_encoder(n) for n in DEFAULT_ENCODERS],
            registry=reg, use_log=use_log, out=out, source=None if data is None else str(data),
        )
    if report.promoted:
        report.notes.append(
            f"SHOPBOT_INTENT_MODEL={s.intent_model} is set, so the assistant keeps using that file; unset it to use "
            "the promoted version." if s.intent_model else
            "Running bots pick it up when they restart; `shopbot models rollback intents` undoes it.")
    echo_report(report, as_json)
