"""The ``shopbot`` command: the one place where commands are registered.

Each command group lives in its own module (bot/cli/<group>.py) and is added to the root group below, so
``shopbot --help`` lists exactly what this file names. Command modules import only click and light helpers at
the top; models, the search stack and the channels load inside the command that needs them, which keeps
``shopbot --help`` fast. Every error a user can cause ends in one sentence on stderr and a non-zero exit,
never a traceback (``--debug`` shows the traceback for bug reports; bot/cli/errors.py).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from bot.cli.actions import actions_command
from bot.cli.advice import eval_advice
from bot.cli.catalog import reindex, search
from bot.cli.chat import chat
from bot.cli.console import console as console_command
from bot.cli.db import db_group
from bot.cli.describe import describe_cmd, eval_describe
from bot.cli.errors import UserError
from bot.cli.eval import eval_group
from bot.cli.feedback import feedback_group
from bot.cli.gaps import gaps as gaps_command
from bot.cli.intents import intents_group
from bot.cli.models import models_group
from bot.cli.ops import handoffs, stats
from bot.cli.prune import prune as prune_command
from bot.cli.recommend import eval_recommend
from bot.cli.scale import receiver as receiver_command
from bot.cli.scale import worker as worker_command
from bot.cli.simulate import simulate_cmd
from bot.cli.telegram import telegram as telegram_command
from bot.cli.train import train_group
from bot.observability.logs import configure_logging, secret_values
from bot.settings import Settings

__all__ = ["cli", "main"]


@click.group()
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Overrides SHOPBOT_DATA_DIR.")
@click.option("--encoder", default=None, help="English query encoder (overrides SHOPBOT_ENCODER).")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, encoder: str | None, debug: bool) -> None:
    """shopbot: an open-source shopping assistant. Run `shopbot chat` to try it on the demo catalog."""
    level = logging.DEBUG if debug else logging.WARNING
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        overrides: dict[str, Any] = {}
        if data_dir is not None:
            overrides["data_dir"] = data_dir
        if encoder is not None:
            overrides["encoder"] = encoder
        settings = Settings(**overrides)
    except Exception as exc:  # pydantic ValidationError: a bad SHOPBOT_* value
        configure_logging("text", level)
        raise UserError(f"Invalid configuration: {exc}".splitlines()[0]) from None
    # SHOPBOT_LOG_FORMAT: plain lines for a terminal or JSON lines; tokens and secrets never reach either
    configure_logging(settings.log_format, level, secrets=secret_values(settings), redact_personal=settings.redact_pii)
    ctx.obj = {"settings": settings, "debug": debug}


for command in (chat, search, reindex, stats, handoffs, feedback_group, describe_cmd, train_group, models_group,
                eval_group, simulate_cmd, intents_group, telegram_command, actions_command):
    cli.add_command(command)
eval_group.add_command(eval_describe)
eval_group.add_command(eval_advice)
eval_group.add_command(eval_recommend)
cli.add_command(receiver_command)
cli.add_command(worker_command)
cli.add_command(db_group)
cli.add_command(console_command)
cli.add_command(gaps_command)
cli.add_command(prune_command)


def main(argv: Sequence[str] | None = None) -> None:
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="shopbot", standalone_mode=True)
    except UserError as exc:  # pragma: no cover - click handles it in standalone mode
        exc.show()
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
