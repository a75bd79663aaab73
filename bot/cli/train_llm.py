"""``shopbot train llm``: fine-tune the local language model on the replies shoppers rated well.

The trainer (model/training/llm.py) takes plain rows and lookups; this module reads the turn log through the
Store and supplies the lookups the writers used at run time: the policy passages the dialogue's retrieval
finds for a question (the same PolicyIndex, encoders and intent sections as bot/app.py and bot/dialogue/manager.py),
product records from the current index's catalog, and the products a search showed (store.search_log). The
search index is loaded only when a rated reply needs it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from bot.cli.train import echo_report, open_store, registry_of, train_errors, train_group
from bot.settings import Settings

__all__ = ["Lookups", "local_base_model", "train_llm_cmd"]


def local_base_model(s: Settings) -> Path:
    """The model directory the assistant runs locally: SHOPBOT_LLM_MODEL, else the packaged default."""
    from bot.cli.main import UserError

    if s.llm_url:
        raise UserError(f"SHOPBOT_LLM_URL points at a server ({s.llm_url}), and fine-tuning needs the model's weights "
                        "on this machine; unset it (and set SHOPBOT_LLM_MODEL to a local model directory, or leave it "
                        "unset for the packaged model) to train.")
    if s.llm_model:
        return Path(s.llm_model).expanduser()
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
            from bot.cli.main import _engine

            self._engine = _engine(self.settings)
        return self._engine

    def passages(self, question: str, intent: str | None, language: str) -> Sequence[tuple[str, str]] | None:
        from bot.dialogue.manager import CS_SECTIONS

        if self._policy is None:
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
    from bot.cli.main import UserError
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
    from bot.dialogue.manager import clean_text
    from model.training.llm import examples_from_log, rated_well, train_llm

    s: Settings = ctx.obj["settings"]
    debug = ctx.obj["debug"]
    with train_errors(debug), _model_errors(debug):
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
