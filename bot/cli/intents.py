"""``shopbot intents rebuild|parse``: maintainer tools for the packaged intent classifier.

``rebuild`` retrains the classifier that ships inside the package (bot/dialogue/nlu/data/intent_model.npz) from
its examples (intents.csv) after they change; a test fails while the shipped weights are stale. ``parse`` shows
how the assistant reads a message (intent, confidence, where the decision came from, slots), one JSON line per
message. A shop owner's own retraining is ``shopbot train intents``; measuring is ``shopbot eval intents``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from bot.cli.context import debug
from bot.cli.errors import user_errors

__all__ = ["intents_group"]


@click.group(name="intents")
def intents_group() -> None:
    """The packaged intent classifier: rebuild it from its examples, or see how messages are read."""


@intents_group.command(name="rebuild")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Training CSV utterance,intent[,language] (default: the packaged intents.csv).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where to write the weights (default: the packaged intent_model.npz).")
@click.pass_context
def intents_rebuild(ctx: click.Context, data: Path | None, out: Path | None) -> None:
    """Retrain the packaged classifier from its examples (after editing intents.csv)."""
    from bot.dialogue.nlu.intents import default_model_path, rebuild_packaged_model  # numpy, encoders: start-up speed

    with user_errors(debug(ctx)):
        model, rows = rebuild_packaged_model(data, out)
    click.echo(f"{rows} rows, {len(model.labels)} intents, version {model.version} -> {out or default_model_path()}")


@intents_group.command(name="parse")
@click.argument("text", nargs=-1)
@click.pass_context
def intents_parse(ctx: click.Context, text: Sequence[str]) -> None:
    """Print how TEXT is understood, as JSON (one line per message; standard input when TEXT is omitted)."""
    from bot.dialogue.nlu.parser import parse  # the classifier and jieba: start-up speed

    lines = [" ".join(text)] if text else sys.stdin.read().splitlines()
    with user_errors(debug(ctx)):
        for line in lines:
            r = parse(line)
            click.echo(json.dumps({"text": line, "intent": r.intent, "confidence": round(r.confidence, 3),
                                   "source": r.source, **r.slots.as_dict()}, ensure_ascii=False))
