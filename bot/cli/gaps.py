"""``shopbot gaps``: the demand-gap digest of the console's page, in the terminal or as JSON."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import click

from bot.cli.context import debug, open_store, settings
from bot.cli.errors import UserError, user_errors

__all__ = ["gaps"]

_SINCE = re.compile(r"^\s*(\d+)\s*([dhw])\s*$")


def _since(text: str) -> timedelta:
    m = _SINCE.match(text)
    if m is None or int(m.group(1)) == 0:
        raise UserError(f"--since {text!r} is not a period like 7d, 24h or 2w.")
    n, unit = int(m.group(1)), m.group(2)
    return timedelta(days=n) if unit == "d" else timedelta(hours=n) if unit == "h" else timedelta(weeks=n)


@click.command()
@click.option("--since", "since", default="7d", show_default=True, help="Period to digest: 7d, 24h, 2w.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500), help="Themes to show.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def gaps(ctx: click.Context, since: str, limit: int, as_json: bool) -> None:
    """Searches that found nothing, got a thumbs-down or were abandoned, grouped into themes by meaning,
    with counts, the trend against the previous period and example queries (handled themes are hidden)."""
    span = _since(since)
    s = settings(ctx)
    with user_errors(debug(ctx)), open_store(s) as store:
        from bot.store.reports import Period
        from retrieval.encoders import get_encoder
        from retrieval.gaps import GapQuery, themes

        now = datetime.now(UTC)
        period = Period(now - span, now + timedelta(seconds=1))
        current = [GapQuery(g.query, g.at, g.kind) for g in store.gap_searches(period)]
        previous = [GapQuery(g.query, g.at, g.kind) for g in store.gap_searches(period.previous())]
        found = themes(current, previous, get_encoder(s.multilingual_encoder or s.encoder, device=s.device),
                       limit=limit) if current else []
    if as_json:
        click.echo(json.dumps({"since": period.since.isoformat(), "until": now.isoformat(), "searches": len(current),
                               "themes": [{"label": t.label, "count": t.count, "previous": t.previous, "trend": t.trend,
                                           "kinds": t.kinds, "examples": t.examples()} for t in found]},
                              ensure_ascii=False))
        return
    if not found:
        click.echo("No demand gaps in this period.")
        return
    click.echo(f"{len(current)} searches did not serve the shopper; {len(found)} themes:")
    for t in found:
        trend = "new" if t.trend is None else f"{t.trend:+.0%}"
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(t.kinds.items()))
        click.echo(f"{t.count:>5}  {t.label}  ({trend}; {kinds})")
        click.echo("       e.g. " + " | ".join(t.examples(3)))
