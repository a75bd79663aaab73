"""``shopbot reindex`` and ``shopbot search``: publish the catalog's index, and query it from a terminal."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from bot.cli.context import debug, echo_err, engine_for, settings
from bot.cli.errors import UserError, user_errors

__all__ = ["format_hit", "reindex", "search"]


def _column_map(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, str] | None:
    from retrieval.formats import FormatError, parse_column_map

    if value is None:
        return None
    try:
        return parse_column_map(value)
    except FormatError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.argument("catalog", required=False, type=click.Path(path_type=Path))
@click.option("--full", is_flag=True, help="Re-encode every product instead of only added/changed ones.")
@click.option("--on-bad-row", type=click.Choice(["skip", "raise"]), default=None, help="Skip bad rows (default) or reject the load.")
@click.option("--map", "column_map", metavar="PAIRS", default=None, callback=_column_map,
              help="Which columns hold shopbot's fields, e.g. sku=uniq_id,title=product_name,price=discounted_price; "
              "saved, and used again for the next file with the same columns.")
@click.pass_context
def reindex(ctx: click.Context, catalog: Path | None, full: bool, on_bad_row: str | None,
            column_map: dict[str, str] | None) -> None:
    """Index CATALOG and swap it in atomically: shopbot's CSV or JSONL, or a Shopify, WooCommerce, Google Merchant
    Center (XML or TSV) or Flipkart-style export as it comes (the demo catalog when omitted)."""
    from bot.services import index_catalog, read_catalog  # the search stack: start-up speed

    s = settings(ctx)
    with user_errors(debug(ctx)):
        loaded = read_catalog(s, catalog or s.catalog, on_error=on_bad_row,  # type: ignore[arg-type]
                              column_map=column_map)
        for line in loaded.lines():
            echo_err(line)
        report = index_catalog(s, loaded, full=full, progress=True)
    for line in report.lines():
        echo_err(line)


def format_hit(rank: int, p: Any, language: str | None = None) -> str:
    # loaded when the command runs, so that `shopbot --help` stays fast
    from bot.dialogue.replies import card_from_product, card_line

    lang = language or "en"
    return card_line(card_from_product(p, rank, lang), lang)


@click.command()
@click.argument("query", nargs=-1, required=True)
@click.option("-k", "--limit", "k", default=10, show_default=True, help="How many products to print.")
@click.option("--sort", type=click.Choice(["relevance", "price_asc", "price_desc", "rating"]), default=None)
@click.option("--min-price", type=float, default=None)
@click.option("--max-price", type=float, default=None)
@click.option("--category", multiple=True, help="Category or category path; repeatable.")
@click.option("--brand", multiple=True, help="Brand; repeatable.")
@click.option("--color", multiple=True, help="Colour; repeatable.")
@click.option("--size", multiple=True, help="Size; repeatable.")
@click.option("--in-stock", is_flag=True, help="Only products in stock.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def search(
    ctx: click.Context,
    query: Sequence[str],
    k: int,
    sort: str | None,
    min_price: float | None,
    max_price: float | None,
    category: Sequence[str],
    brand: Sequence[str],
    color: Sequence[str],
    size: Sequence[str],
    in_stock: bool,
    as_json: bool,
) -> None:
    """Print ranked products for QUERY (English or Chinese; filters in the text are understood)."""
    # loaded when the command runs, so that `shopbot --help` stays fast
    from retrieval.lexical import has_cjk
    from retrieval.query import Filters

    s = settings(ctx)
    text = " ".join(query).strip()
    if not text:
        raise UserError("The query is empty; try for example: shopbot search 'running shoes under $80'.")
    filters = Filters(
        min_price=min_price,
        max_price=max_price,
        categories=frozenset(c.lower() for c in category),
        brands=frozenset(b.lower() for b in brand),
        colors=frozenset(c.lower() for c in color),
        sizes=frozenset(z.lower() for z in size),
        in_stock=in_stock,
    )
    with user_errors(debug(ctx)):
        engine = engine_for(s)
        result = engine.search(text[:1000], filters, k=k, sort=sort)  # type: ignore[arg-type]
    lang = "zh" if has_cjk(text) else None
    if as_json:
        out = {
            "query": text,
            "understood": {"text": result.query.text, "filters": result.query.filters.describe(), "sort": result.query.sort},
            "total": result.total,
            "results": [
                {"rank": h.rank, "score": round(h.score, 4), **h.product.to_record(), "signals": {n: round(v, 4) for n, v in h.signals.items()}}
                for h in result.hits
            ],
            "timings_ms": {n: round(v, 2) for n, v in result.timings_ms.items()},
        }
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    understood = result.query.filters.describe()
    if understood:
        click.echo(f"({understood})")
    if not result.hits:
        click.echo("No products match; try fewer filters or other words.")
    for h in result.hits:
        click.echo(format_hit(h.rank, h.product, lang))
