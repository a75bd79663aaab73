"""``shopbot chat``: the terminal channel over the current catalog (the demo catalog by default)."""

from __future__ import annotations

import click

from bot.cli.context import assistant_for, debug, echo_err, settings, without_llm
from bot.cli.errors import user_errors

__all__ = ["chat"]


@click.command()
@click.option("--user", default="local", show_default=True, help="Who is chatting (conversation state is kept per user).")
@click.option("--no-llm", is_flag=True, help="Templates only, no language model (same as SHOPBOT_LLM=off).")
@click.pass_context
def chat(ctx: click.Context, user: str, no_llm: bool) -> None:
    """A terminal chat with the shop assistant over the current catalog (the demo catalog by default)."""
    from bot.app import quiet_model_loading  # the assistant's models: start-up speed
    from bot.channels.terminal import run_chat

    s = without_llm(settings(ctx), no_llm)
    quiet_model_loading()  # no "Loading weights" bar per model at each start; a first start's index bars stay
    with user_errors(debug(ctx)):
        assistant = assistant_for(s)
    run_chat(assistant, user, echo=click.echo, note=echo_err)
