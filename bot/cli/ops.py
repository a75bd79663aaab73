"""``shopbot stats`` and ``shopbot handoffs``: what the log says, and conversations waiting for a person."""

from __future__ import annotations

import json

import click

from bot.cli.context import debug, open_store, settings
from bot.cli.errors import user_errors

__all__ = ["handoffs", "stats"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Turns, users, top queries, zero-result queries, thumbs ratio, open handoffs."""
    with user_errors(debug(ctx)), open_store(settings(ctx)) as store:
        st = store.stats()
    if as_json:
        click.echo(json.dumps(st, ensure_ascii=False, default=str))
        return
    click.echo(f"turns {st['turns']}  users {st['users']}  sessions {st['sessions']}  "
               f"median turn {st['latency_ms_p50']} ms  open handoffs {st['open_handoffs']}")
    ratio = "-" if st["thumbs_ratio"] is None else f"{st['thumbs_ratio']:.0%}"
    click.echo(f"thumbs up {st['thumbs_up']}  down {st['thumbs_down']}  ({ratio} positive)")
    if st["pending_writes"]:
        click.echo(f"{st['pending_writes']} writes are still buffered on disk (the database was down).")
    for title, key in (("top queries", "top_queries"), ("zero-result queries", "zero_result_queries")):
        click.echo(f"{title}:")
        for q, n in st[key] or [("(none)", "")]:  # type: ignore[literal-required]
            click.echo(f"  {n:>5}  {q}")


@click.group(name="handoffs", invoke_without_command=True)
@click.pass_context
def handoffs(ctx: click.Context) -> None:
    """Conversations handed over to a person (list them; `release USER` gives one back to the bot)."""
    if ctx.invoked_subcommand is not None:
        return
    with user_errors(debug(ctx)), open_store(settings(ctx)) as store:
        rows = store.open_handoffs()
    if not rows:
        click.echo("No open handoffs.")
    for h in rows:
        click.echo(f"{h['user_id']}  since {h['since']:%Y-%m-%d %H:%M} UTC  ({h['reason']})  last: {h['last_message']!r}")


@handoffs.command(name="release")
@click.argument("user_id")
@click.pass_context
def handoffs_release(ctx: click.Context, user_id: str) -> None:
    """Give USER_ID's conversation back to the bot (ids as listed, e.g. telegram:12345)."""
    with user_errors(debug(ctx)), open_store(settings(ctx)) as store:
        ok = store.release(user_id)
    click.echo(f"{user_id} is back with the bot." if ok else f"{user_id} has no open handoff.")
