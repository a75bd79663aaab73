"""``shopbot chat``: the terminal channel over the current catalog (the demo catalog by default)."""

from __future__ import annotations

import click

from bot.cli.context import assistant_for, debug, settings, without_llm
from bot.cli.errors import user_errors

__all__ = ["chat"]


@click.command()
@click.option("--user", default="local", show_default=True, help="Who is chatting (conversation state is kept per user).")
@click.option("--no-llm", is_flag=True, help="Templates only, no language model (same as SHOPBOT_LLM=off).")
@click.pass_context
def chat(ctx: click.Context, user: str, no_llm: bool) -> None:
    """A terminal chat with the shop assistant over the current catalog (the demo catalog by default)."""
    from bot.channels.terminal import run_chat  # the assistant's models: start-up speed

    s = without_llm(settings(ctx), no_llm)
    with user_errors(debug(ctx)):
        assistant = assistant_for(s)
    run_chat(assistant, user, echo=click.echo)
