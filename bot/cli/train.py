"""``shopbot train ranker|recommender|intents|llm``: retrain a model from the SQL log, promote it only if better.

Each subcommand reads the feedback log through the Store (SQLite or PostgreSQL, whichever SHOPBOT_DATABASE_URL
names), hands plain rows to its trainer (model/training/), and prints the report of model/training/common.py:
the new version's figures next to the current model's on the newest, held-out part of the log, and whether it
was promoted. Running bots pick a promoted version up without a restart (bot/app.py reloads active versions).
Trainers, torch and the search stack are imported inside the commands: `shopbot --help` needs none of them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from bot.cli.context import debug as debug_of
from bot.cli.context import echo_err, engine_for, open_store, settings
from bot.cli.errors import UserError, user_errors
from bot.settings import Settings
from model.training.registry import Registry
from retrieval.bundle import current_dir
from retrieval.catalog import load_catalog

__all__ = ["Lookups", "echo_report", "local_base_model", "registry_of", "train_group"]

TRAIN_ROWS_LIMIT = 2_000_000  # interactions read for training (the store's limit is per kind of row)


def registry_of(s: Settings) -> Any:
    return Registry(s.models_dir)


def echo_report(report: Any, as_json: bool) -> None:
    click.echo(report.summary())
    if as_json:
        click.echo(json.dumps(report.to_dict(), default=str))


@click.group(name="train")
def train_group() -> None:
    """Retrain a model from the logged feedback; the new version becomes active only if it is better."""


@train_group.command(name="ranker")
@click.option("--min-searches", type=int, default=30, show_default=True,
              help="Searches with a click, opened product or thumb needed before training.")
@click.option("--test-share", type=float, default=0.2, show_default=True, help="Newest share of the log held out.")
@click.option("--json", "as_json", is_flag=True, help="End with the report as one JSON object.")
@click.pass_context
def train_ranker_cmd(ctx: click.Context, min_searches: int, test_share: float, as_json: bool) -> None:
    """Learn the search re-ranker from logged searches, clicks and thumbs; `shopbot reindex` applies it."""
    # loaded when the command runs, so that `shopbot --help` stays fast
    from model.training.ranker import train_ranker

    s = settings(ctx)
    with user_errors(debug_of(ctx)):
        engine = engine_for(s)
        with open_store(s) as store:
            rows = store.search_log()
        echo_err(f"{len(rows)} logged searches read from {store.describe()}.")
        report = train_ranker(rows, engine, registry_of(s), test_share=test_share, min_searches=min_searches,
                              progress=True, source=store.describe())
    echo_report(report, as_json)


def _catalog(s: Settings) -> tuple[list[Any], Any, str]:
    """The products the assistant serves and their title vectors: the search index when one is built (the
    built-in recommender's "because you looked at X" uses its vectors), else the configured catalog file."""

    if current_dir(s.index_root) is not None:
        # loaded when the command runs, so that `shopbot --help` stays fast
        from model.training.recommender import content_vectors

        engine = engine_for(s, build_if_missing=False)
        return list(engine.products), content_vectors(engine), "the search index"

    result = load_catalog(s.catalog, on_error="skip")
    return list(result.products), None, "the demo catalog" if s.catalog is None else str(s.catalog)


@train_group.command(name="recommender")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Train exactly N epochs (default: early stopping on a tenth of the training shoppers).")
@click.option("--device", default=None, help="cpu or cuda (default: SHOPBOT_DEVICE, else cuda when present).")
@click.option("--json", "as_json", is_flag=True, help="End with the report as one JSON object.")
@click.pass_context
def train_recommender_cmd(ctx: click.Context, epochs: int | None, device: str | None, as_json: bool) -> None:
    """Train the next-item model on shoppers' product histories (details, clicks, cart, purchases, thumbs up),
    test it on each recent shopper's last product, and make it active only if it beats the current model."""
    # loaded when the command runs, so that `shopbot --help` stays fast
    from model.training.recommender import train_recommender

    s = settings(ctx)
    debug = debug_of(ctx)
    with user_errors(debug):
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
    s = settings(ctx)
    debug = debug_of(ctx)
    if export is not None:
        # loaded when the command runs, so that `shopbot --help` stays fast
        from model.training.intents import export_for_labelling

        with user_errors(debug), open_store(s) as store:
            logged = store.turn_log()
        counts = export_for_labelling(logged, export, limit=limit)
        click.echo(f"{counts['not_what_i_meant']} utterances marked \"not what I meant\" and {counts['unsure']} the "
                   f"assistant was unsure about written to {export}. Fill in the intent column (the predicted column "
                   f"shows what it thought), then run `shopbot train intents --data {export}`.")
        return

    # loaded when the command runs, so that `shopbot --help` stays fast
    from bot.dialogue.nlu.intents import DEFAULT_ENCODERS, IntentModelError, load_default_model, packaged_rows
    from model.training.intents import MODEL_FILE, dev_rows, load_owner_rows, retrain_intents
    from retrieval.encoders import get_encoder

    with user_errors(debug):
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


def local_base_model(s: Settings) -> Path:
    """The model directory the assistant runs locally: SHOPBOT_LLM_MODEL, else the packaged default."""
    if s.llm_url:
        raise UserError(f"SHOPBOT_LLM_URL points at a server ({s.llm_url}), and fine-tuning needs the model's weights "
                        "on this machine; unset it (and set SHOPBOT_LLM_MODEL to a local model directory, or leave it "
                        "unset for the packaged model) to train.")
    if s.llm_model:
        return Path(s.llm_model).expanduser()
    # loaded when the command runs, so that `shopbot --help` stays fast
    from model.llm.factory import ensure_default_model

    return ensure_default_model(s.data_dir, progress=True)


class Lookups:
    """The facts each writer was given, looked up again now (index and policy loaded on first need)."""

    def __init__(self, s: Settings, searches: Sequence[Any] = ()) -> None:
        self.settings = s
        self._engine: Any = None
        self._policy: Any = None
        self._products: dict[str, Any] | None = None
        self._shown = {r.turn_id: (r.query, [sku for sku, _rank, _score in sorted(r.shown, key=lambda x: x[1])])
                       for r in searches}

    def engine(self) -> Any:
        if self._engine is None:
            self._engine = engine_for(self.settings)
        return self._engine

    def passages(self, question: str, intent: str | None, language: str) -> Sequence[tuple[str, str]] | None:
        # loaded when the command runs, so that `shopbot --help` stays fast
        from bot.dialogue.support import CS_SECTIONS

        if self._policy is None:
            # loaded when the command runs, so that `shopbot --help` stays fast
            from retrieval.policy import PolicyIndex

            encoders = {key: d.encoder for key, d in self.engine().dense.items()}  # as build_assistant does
            self._policy = PolicyIndex.from_path(self.settings.policy, encoders)
        match = self._policy.lookup(question, language=language, sections=CS_SECTIONS.get(intent or "", ()))
        return match.passages if match is not None else None

    def product(self, sku: str) -> Mapping[str, Any] | None:
        if self._products is None:
            self._products = {p.sku: p for p in self.engine().products}
        p = self._products.get(sku)
        return p.to_record() if p is not None else None

    def search(self, turn_id: str) -> tuple[str, Sequence[Mapping[str, Any]]] | None:
        found = self._shown.get(turn_id)
        if found is None:
            return None
        query, skus = found
        records = [self.product(sku) for sku in skus[: self.settings.page_size]]
        if any(r is None for r in records):
            return None
        return query, [r for r in records if r is not None]


@contextmanager
def _model_errors(debug: bool) -> Iterator[None]:
    # loaded when the command runs, so that `shopbot --help` stays fast
    from model.llm.base import LLMError

    try:
        yield
    except LLMError as exc:
        if debug:
            raise
        raise UserError(str(exc)) from None


@train_group.command(name="llm")
@click.option("--epochs", type=int, default=2, show_default=True, help="Passes over the training replies.")
@click.option("--rank", type=int, default=8, show_default=True, help="LoRA rank: the adapter's capacity.")
@click.option("--layers", type=int, default=8, show_default=True,
              help="Adapt the top N transformer layers (0: all); fewer is faster on a CPU.")
@click.option("--learning-rate", "--lr", "learning_rate", type=float, default=3e-4, show_default=True)
@click.option("--max-examples", type=int, default=1000, show_default=True, help="Use the newest N rated replies at most.")
@click.option("--max-length", type=int, default=1024, show_default=True,
              help="Prompt plus reply, in tokens; longer examples are skipped.")
@click.option("--min-examples", type=int, default=20, show_default=True,
              help="Rated-good replies written by the model needed before training.")
@click.option("--test-share", type=float, default=0.2, show_default=True, help="Newest share of them held out.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default=None, help="cpu or cuda (default: SHOPBOT_DEVICE, else CUDA when present).")
@click.option("--json", "as_json", is_flag=True, help="End with the report as one JSON object.")
@click.pass_context
def train_llm_cmd(ctx: click.Context, epochs: int, rank: int, layers: int, learning_rate: float, max_examples: int,
                  max_length: int, min_examples: int, test_share: float, seed: int, device: str | None,
                  as_json: bool) -> None:
    """Fine-tune the local language model (LoRA) on replies shoppers rated 👍; it becomes active only if it
    predicts the newest rated replies better than the current model."""
    # loaded when the command runs, so that `shopbot --help` stays fast
    from bot.dialogue.manager import clean_text
    from model.training.llm import examples_from_log, rated_well, train_llm

    s = settings(ctx)
    debug = debug_of(ctx)
    with user_errors(debug), _model_errors(debug):
        base = local_base_model(s)
        with open_store(s) as store:
            turns = [t for t in store.turn_log(rated_only=True) if rated_well(t)]
            summaries = any(g.get("kind") == "search_summary" for t in turns for g in t.generation if isinstance(g, dict))
            searches = store.search_log() if summaries else []
            where = store.describe()
        click.echo(f"{len(turns)} turns rated 👍 (and not 👎) read from {where}.", err=True)
        lookups = Lookups(s, searches)
        # the dialogue wrote from the cleaned message (bot/dialogue/manager.py clean_text), so the prompt is rebuilt from it
        cleaned = [dataclasses.replace(t, text_in=clean_text(t.text_in)[0]) for t in turns]
        data = examples_from_log(cleaned, passages_for=lookups.passages, product_for=lookups.product,
                                 search_for=lookups.search)
        report = train_llm(data, base, registry_of(s), device=device or s.device, epochs=epochs, rank=rank,
                           layers=layers or None, learning_rate=learning_rate, max_examples=max_examples,
                           max_length=max_length, min_examples=min_examples, test_share=test_share, seed=seed,
                           progress=True, source=where)
    echo_report(report, as_json)
