"""``shopbot prune [--dry-run] [--days N]``: delete conversations older than the retention period now.

The long-running commands (Telegram, Rasa actions, workers) already prune once a day when
``SHOPBOT_RETENTION_DAYS`` is set (bot/app.py); this command is for a shop that wants it from cron, wants
to see first what would go (``--dry-run``), or runs no long-running command at all.
"""

from __future__ import annotations

import json

import click

from bot.cli.context import debug, open_store, settings
from bot.cli.errors import UserError, user_errors

__all__ = ["prune"]


@click.command()
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="Keep this many days (default: SHOPBOT_RETENTION_DAYS).")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the rows per table.")
@click.pass_context
def prune(ctx: click.Context, days: int | None, dry_run: bool, as_json: bool) -> None:
    """Delete conversations older than the retention period: turns with their shown products and feedback,
    released handoffs, handled updates, old button payloads, long-expired watches, idle shoppers' state."""
    s = settings(ctx)
    keep = days if days is not None else s.retention_days
    if keep is None:
        raise UserError("No retention period: set SHOPBOT_RETENTION_DAYS or pass --days N.")
    with user_errors(debug(ctx)), open_store(s) as store:
        counts = store.prune(keep, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps({"days": keep, "dry_run": dry_run, "rows": counts}))
        return
    total = sum(counts.values())
    verb = "would be deleted" if dry_run else "deleted"
    detail = ", ".join(f"{table} {n}" for table, n in counts.items() if n) or "nothing"
    click.echo(f"Older than {keep} days: {total} rows {verb} ({detail}).")
