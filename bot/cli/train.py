"""``shopbot train KIND`` and ``shopbot models``: retrain from the SQL log, list versions, roll back.

Each ``train`` subcommand reads the feedback log through the Store (SQLite or PostgreSQL, whichever
SHOPBOT_DATABASE_URL names), hands plain rows to its trainer (model/train_*.py), and prints the report of
model/training/common.py: the new version's figures next to the current model's on the newest, held-out part of the
log, and whether it was promoted. Subcommands live in their own modules (bot/cli_train_*.py) and attach to
the ``train`` group defined here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from bot.settings import Settings

__all__ = ["echo_report", "models_group", "open_store", "registry_of", "train_errors", "train_group"]


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]  # type: ignore[no-any-return]


def registry_of(s: Settings) -> Any:
    from model.training.registry import Registry

    return Registry(s.models_dir)


@contextmanager
def open_store(s: Settings) -> Iterator[Any]:
    from bot.store.sql import Store

    store = Store(s.db_url, s.buffer_dir)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def train_errors(debug: bool) -> Iterator[None]:
    """The trainers' and the registry's clear-sentence errors end the command cleanly."""
    from bot.cli.main import UserError, user_errors
    from model.training.registry import RegistryError
    from model.training.common import TrainDataError

    with user_errors(debug):
        try:
            yield
        except (TrainDataError, RegistryError) as exc:
            if debug:
                raise
            raise UserError(str(exc)) from None


def echo_report(report: Any, as_json: bool) -> None:
    click.echo(report.summary())
    if as_json:
        click.echo(json.dumps(report.to_dict(), default=str))


@click.group(name="train")
def train_group() -> None:
    """Retrain a model from the logged feedback; the new version becomes active only if it is better."""


@click.group(name="models")
def models_group() -> None:
    """List model versions with their evaluation figures, activate one, or roll back."""


def _metric_line(v: Any) -> str:
    m = v.metrics
    metric = m.get("metric")
    cand = (m.get("candidate") or {}).get(metric)
    base = (m.get("baseline") or {}).get(metric)
    if metric is None or cand is None:
        return ""
    base_txt = "" if base is None else f" vs {base:.4f} before"
    return f"{metric} {cand:.4f}{base_txt}"


@models_group.command(name="list")
@click.argument("kind", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per version.")
@click.pass_context
def models_list(ctx: click.Context, kind: str | None, as_json: bool) -> None:
    """Every trained version (oldest first), its figures, and which one is active (*)."""
    from model.training.registry import KINDS

    s = _settings(ctx)
    reg = registry_of(s)
    with train_errors(ctx.obj["debug"]):
        versions = reg.versions(kind)
        kinds = KINDS if kind is None else (kind,)
    if as_json:
        for v in versions:
            click.echo(json.dumps({"kind": v.kind, "version": v.name, "active": v.active, **dict(v.meta)}, default=str))
        return
    for line in version_lines(reg, kinds, versions):
        click.echo(line)


def version_lines(reg: Any, kinds: Sequence[str], versions: Sequence[Any] | None = None, *, last: int | None = None) -> list[str]:
    """Per kind: which version is active, then its versions (``*`` the active one) with their figures; the
    ``last`` newest only when given (Telegram's /models keeps a message short)."""
    versions = reg.versions() if versions is None else versions
    out: list[str] = []
    for k in kinds:
        mine = [v for v in versions if v.kind == k]
        active = reg.active_name(k)
        out.append(f"{k}: " + (f"active {active}" if active else "built-in default active")
                   + ("" if mine else " (no trained versions)"))
        if last is not None and len(mine) > last:
            out.append(f"  … {len(mine) - last} older")
            mine = mine[-last:]
        for v in mine:
            flag = "*" if v.active else " "
            promoted = "" if v.meta.get("promoted", False) else "  (not promoted when trained)"
            out.append(f"  {flag} {v.name}  {_metric_line(v)}{promoted}")
    return out


@models_group.command(name="rollback")
@click.argument("kind")
@click.option("--to", "to", default=None, help="A version name (default: the one active before the current one).")
@click.pass_context
def models_rollback(ctx: click.Context, kind: str, to: str | None) -> None:
    """Return KIND to the previous version (or the built-in default, or --to VERSION)."""
    s = _settings(ctx)
    with train_errors(ctx.obj["debug"]):
        v = registry_of(s).rollback(kind, to)
    click.echo(f"{kind}: " + (f"version {v.name} is active." if v else "the built-in default is active."))
    click.echo(_takes_effect(kind))


@models_group.command(name="activate")
@click.argument("kind")
@click.argument("version")
@click.pass_context
def models_activate(ctx: click.Context, kind: str, version: str) -> None:
    """Make VERSION of KIND active, even one that was not promoted when trained."""
    s = _settings(ctx)
    with train_errors(ctx.obj["debug"]):
        v = registry_of(s).activate(kind, version, reason="activated by hand")
    assert v is not None
    click.echo(f"{kind}: version {v.name} is active.")
    click.echo(_takes_effect(kind))


def _takes_effect(kind: str) -> str:
    if kind == "ranker":
        return "Run `shopbot reindex` to apply it to the search index; running bots pick it up when they restart."
    return "Running bots pick it up when they restart."



@train_group.command(name="ranker")
@click.option("--min-searches", type=int, default=30, show_default=True,
              help="Searches with a click, opened product or thumb needed before training.")
@click.option("--test-share", type=float, default=0.2, show_default=True, help="Newest share of the log held out.")
@click.option("--json", "as_json", is_flag=True, help="End with the report as one JSON object.")
@click.pass_context
def train_ranker_cmd(ctx: click.Context, min_searches: int, test_share: float, as_json: bool) -> None:
    """Learn the search re-ranker from logged searches, clicks and thumbs; `shopbot reindex` applies it."""
    from bot.cli.main import _engine
    from model.training.ranker import train_ranker

    s = _settings(ctx)
    with train_errors(ctx.obj["debug"]):
        engine = _engine(s)
        with open_store(s) as store:
            rows = store.search_log()
        click.echo(f"{len(rows)} logged searches read from {store.describe()}.", err=True)
        report = train_ranker(rows, engine, registry_of(s), test_share=test_share, min_searches=min_searches,
                              progress=True, source=store.describe())
    echo_report(report, as_json)
