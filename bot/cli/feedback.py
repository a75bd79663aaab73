"""``shopbot feedback export|import``: the logged conversations as training data, and what shoppers did elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bot.cli.context import debug, echo_err, open_store, settings
from bot.cli.errors import user_errors
from bot.settings import Settings

__all__ = ["feedback_group"]


@click.group(name="feedback")
def feedback_group() -> None:
    """The logged conversations as training data."""


@feedback_group.command(name="export")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="JSON-lines file to write.")
@click.pass_context
def feedback_export(ctx: click.Context, out: Path) -> None:
    """One JSON line per turn that showed products or got feedback: query, shown products with ranks,
    clicks, thumbs, purchases, reply text and model versions."""
    with user_errors(debug(ctx)), open_store(settings(ctx)) as store:
        n = store.export_feedback(out, redact=settings(ctx).redact_pii)
    click.echo(f"{n} turns written to {out}.")


@feedback_group.command(name="import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--channel", default=None, help="Channel of bare user ids in the file (e.g. telegram); ids like "
              "'telegram:12345' carry their own.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
@click.pass_context
def feedback_import(ctx: click.Context, path: Path, channel: str | None, as_json: bool) -> None:
    """Add what shoppers did outside the chat (purchases, add-to-cart) from the shop's export: CSV or JSON
    lines with user, sku, and optionally kind (purchase), at (ISO 8601 time; now), order and value. Bad rows
    are reported with their line number and skipped; importing the same file again adds nothing."""
    from model.training.feedback_import import read_reported_actions  # SQLAlchemy: start-up speed

    s = settings(ctx)
    with user_errors(debug(ctx)):
        rows, errors = read_reported_actions(path, channel=channel, known_skus=_catalog_skus(s))
        for err in errors[:20]:
            echo_err(f"Skipped {err}")
        if len(errors) > 20:
            echo_err(f"... and {len(errors) - 20} more bad rows.")
        with open_store(s) as store:
            added, already = store.import_feedback(rows)
    click.echo(f"{added} actions added from {path} ({already} already imported, {len(errors)} rows skipped).")
    if as_json:
        click.echo(json.dumps({"added": added, "already_imported": already, "skipped": len(errors)}))


def _catalog_skus(s: Settings) -> set[str] | None:
    """The SKUs of the current index, to check an import against; None before the first index."""
    # loaded when the command runs, so that `shopbot --help` stays fast
    from retrieval.indexer import bundle_products

    products = bundle_products(s.index_root)
    return None if products is None else {p.sku for p in products}
