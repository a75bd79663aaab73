"""``shopbot models list|activate|rollback``: the trained versions of each model, with their figures.

Every ``shopbot train`` run registers a version (model/training/registry.py); this group shows them and moves
the ACTIVE pointer by hand. Telegram's /models shows the same lines (`describe_versions`).
"""

from __future__ import annotations

import json

import click

from bot.cli.context import debug, settings
from bot.cli.errors import user_errors
from model.training.registry import KINDS, Registry, version_lines

__all__ = ["models_group"]


@click.group(name="models")
def models_group() -> None:
    """List model versions with their evaluation figures, activate one, or roll back."""


@models_group.command(name="list")
@click.argument("kind", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per version.")
@click.pass_context
def models_list(ctx: click.Context, kind: str | None, as_json: bool) -> None:
    """Every trained version (oldest first), its figures, and which one is active (*)."""
    s = settings(ctx)
    reg = Registry(s.models_dir)
    with user_errors(debug(ctx)):
        versions = reg.versions(kind)
        kinds = KINDS if kind is None else (kind,)
    if as_json:
        for v in versions:
            click.echo(json.dumps({"kind": v.kind, "version": v.name, "active": v.active, **dict(v.meta)}, default=str))
        return
    for line in version_lines(reg, kinds, versions):
        click.echo(line)


@models_group.command(name="rollback")
@click.argument("kind")
@click.option("--to", "to", default=None, help="A version name (default: the one active before the current one).")
@click.pass_context
def models_rollback(ctx: click.Context, kind: str, to: str | None) -> None:
    """Return KIND to the previous version (or the built-in default, or --to VERSION)."""
    s = settings(ctx)
    with user_errors(debug(ctx)):
        v = Registry(s.models_dir).rollback(kind, to)
    click.echo(f"{kind}: " + (f"version {v.name} is active." if v else "the built-in default is active."))
    click.echo(_takes_effect(kind))


@models_group.command(name="activate")
@click.argument("kind")
@click.argument("version")
@click.pass_context
def models_activate(ctx: click.Context, kind: str, version: str) -> None:
    """Make VERSION of KIND active, even one that was not promoted when trained."""
    s = settings(ctx)
    with user_errors(debug(ctx)):
        v = Registry(s.models_dir).activate(kind, version, reason="activated by hand")
    assert v is not None
    click.echo(f"{kind}: version {v.name} is active.")
    click.echo(_takes_effect(kind))


def _takes_effect(kind: str) -> str:
    if kind == "ranker":
        return "Run `shopbot reindex` to apply it to the search index; running bots pick it up when they restart."
    return "Running bots pick it up when they restart."



