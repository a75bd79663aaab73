"""The terminal channel (``shopbot chat``): lines typed at a prompt become events, replies become printed text.

Like the other channels it translates and decides nothing: a line is an :class:`Event` (``/payload`` stands for
a button, e.g. ``/more`` or ``/details:SKU``), the assistant answers, and each reply is printed, the model's
text growing as it is verified.

stdout is the conversation and nothing else: the greeting, the prompts and the replies. Models that load in the
background while the shopper types (the language model, the query encoders) do so with their libraries'
progress bars off (`Assistant.warm_up`); one line on stderr says the language model is loading.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Callable
from typing import TextIO

from bot.app import Assistant
from bot.dialogue.replies import Event, Reply, render_text

__all__ = ["EXAMPLES_EN", "EXAMPLES_ZH", "print_reply", "run_chat"]

EXAMPLES_EN = ['a red winter coat under $80', 'running shoes size 42', 'wireless earbuds', 'laptop cheapest']
EXAMPLES_ZH = ["我想买一款新的手机", "红色的外套", "跑步鞋 500元以下"]
QUIT = {"quit", "exit", ":q", "退出"}

Echo = Callable[..., None]  # click.echo's shape: echo(text, nl=True)
LOADING_LLM = "Loading the language model in the background ..."


def _print(text: str = "", nl: bool = True) -> None:
    print(text, end="\n" if nl else "", flush=True)


def _note(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_chat(assistant: Assistant, user: str, *, echo: Echo = _print, stdin: TextIO | None = None,
             note: Callable[[str], None] = _note) -> None:
    """Chat until 'quit' or the end of input; turns still being logged are finished, then the assistant closes.

    ``echo`` prints the conversation (stdout); ``note`` the one line about a model still loading (stderr).
    """
    stdin = stdin or sys.stdin
    assistant.warm_up()  # in the background, its bars off: before the greeting, one line says so instead
    if getattr(assistant.llm, "load", None) is not None:
        note(LOADING_LLM)
    echo(f"shopbot: {len(assistant.engine.products)} products. Ask in English or Chinese, e.g. "
         f"'{EXAMPLES_EN[0]}' or '{EXAMPLES_ZH[0]}'. 'quit' leaves.")
    interactive = stdin.isatty()
    with asyncio.Runner() as runner:
        try:
            while True:
                try:
                    line = input("you> ") if interactive else stdin.readline()
                except (EOFError, KeyboardInterrupt):
                    echo("")
                    break
                if not interactive and line == "":
                    break
                text = line.strip()
                if text.lower() in QUIT:
                    echo("bot> Bye! / 再见！")
                    break
                # buttons are typed as "/payload" in the terminal, e.g. "/more" or "/details:SKU"
                event = Event(user=user, channel="cli", payload=text[1:]) if text.startswith("/") and len(text) > 1 \
                    else Event(user=user, channel="cli", text=line.rstrip("\r\n"))
                replies = runner.run(assistant.handle_async(event))
                if not replies:
                    echo("bot> (a colleague has taken over this conversation; `shopbot handoffs release cli:"
                         f"{user}` gives it back)")
                for r in replies:
                    runner.run(print_reply(r, echo))
            runner.run(assistant.dialogue.drain())
        finally:
            assistant.close()


async def print_reply(r: Reply, echo: Echo = _print) -> None:
    """One reply in the terminal; text the model is still writing appears as it is verified."""
    if r.live is None:
        echo("bot> " + render_text(r).replace("\n", "\n     "))
        return
    printed = shown = ""
    async for text in r.live.updates():
        shown = text
        # the answer grows in front of its source line ("— from our Returns policy") and any note after it:
        # those are printed once, at the end, instead of again with every sentence
        body = text.split("\n— ", 1)[0]
        if len(body) > len(printed) and body.startswith(printed):
            echo(("" if printed else "bot> ") + body[len(printed):].replace("\n", "\n     "), nl=False)
            printed = body
    if shown.startswith(printed):
        echo(("" if printed or not shown else "bot> ") + shown[len(printed):].replace("\n", "\n     "), nl=False)
    elif shown:  # the model's text was replaced (a failed check): say so and show the final one
        echo("\n     [corrected] " + shown.replace("\n", "\n     "), nl=False)
    else:
        echo("\n     [withdrawn]", nl=False)
    shown = shown or printed
    rest = render_text(dataclasses.replace(r, text="", live=None))
    if shown:
        echo("")
    if rest:
        echo(("     " if shown else "bot> ") + rest.replace("\n", "\n     "))
