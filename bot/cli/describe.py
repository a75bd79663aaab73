"""``shopbot describe`` and ``shopbot eval describe``: product descriptions written by the model, verified,
stored, and measured.

Generated descriptions live in ``<data dir>/descriptions.jsonl``, one JSON line per description, written
(and fsync'ed) the moment it is made, so a batch stopped by Ctrl-C or a kill loses at most the product
it was writing; the next run skips every SKU already described in that language from the same facts
(``retrieval.catalog.description_facts_hash``). `shopbot reindex` fills empty catalog descriptions from
that file (``retrieval.catalog.overlay_descriptions``), which is how search and the dialogue's details
view come to show them; the catalog's own descriptions always win.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from bot.cli.context import debug, settings
from bot.cli.errors import UserError, user_errors
from retrieval.catalog import description_facts_hash, load_catalog
from retrieval.descriptions import DescriptionStore

if TYPE_CHECKING:
    from bot.settings import Settings
    from model.llm.base import LLM
    from model.writing.describe import Description, DescriptionWriter
    from retrieval.catalog import Product

__all__ = ["describe_cmd", "eval_describe", "store_row"]

DEFAULT_TIMEOUT = 120.0


def _error(message: str) -> click.ClickException:
    return UserError(message)


def store_row(product: Product, d: Description, length: str, tone: str) -> dict[str, Any]:
    return {
        "sku": product.sku, "hash": description_facts_hash(product), "language": d.language, "text": d.text,
        "source": d.source, "model": d.model, "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "length": length, "tone": tone, "coverage": round(d.coverage, 4), "prose_coverage": round(d.prose_coverage, 4),
    }


# ------------------------------------------------------------------------------------------ helpers


def _make_llm(s: Settings) -> LLM:
    """The configured model, prepared now so that a failure is one sentence before any work starts."""
    if s.llm == "off":
        raise _error("Descriptions are written by the language model, but SHOPBOT_LLM=off; unset it (or set "
                     "SHOPBOT_LLM=auto) and try again.")
    # loaded when the command runs, so that `shopbot --help` stays fast
    from model.llm.factory import LLMError, build_llm

    try:
        llm = build_llm(s.llm_url, s.llm_model, s.data_dir, s.device, api_key=s.llm_api_key,
                        timeout=max(s.llm_timeout, DEFAULT_TIMEOUT), dtype=s.llm_dtype)
        load = getattr(llm, "load", None)
        if callable(load):
            load()
    except LLMError as exc:
        raise _error(f"The language model could not be prepared: {exc}") from None
    return llm


def _close(llm: Any) -> None:
    close = getattr(llm, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()


def _products(s: Settings, catalog: Path | None) -> tuple[list[Product], str]:
    """The catalog to describe: ``catalog`` when given, else the current index's snapshot (what search and
    chat answer from), else the configured (or demo) catalog file."""
    # loaded when the command runs, so that `shopbot --help` stays fast
    from retrieval.indexer import bundle_products

    snapshot = bundle_products(s.index_root) if catalog is None else None
    if snapshot is not None:
        return snapshot, "the current index"
    path = catalog or s.catalog
    return load_catalog(path).products, str(path) if path else "the demo catalog"


@contextlib.contextmanager
def _term_as_interrupt() -> Iterator[None]:
    """`kill` (SIGTERM) stops a batch like Ctrl-C does: between products, with everything written kept."""
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _writer(llm: LLM | None, brands: Sequence[str], timeout: float) -> DescriptionWriter:
    # loaded when the command runs, so that `shopbot --help` stays fast
    from model.writing.describe import DescriptionWriter

    return DescriptionWriter(llm, known_brands=brands, timeout=timeout)


_LENGTH = click.option("--length", type=click.Choice(["short", "medium", "long"]), default="medium", show_default=True)
_TONE = click.option("--tone", type=click.Choice(["friendly", "premium", "plain"]), default="friendly", show_default=True)
_TIMEOUT = click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True,
                        help="Seconds one description may take before the template is used.")


# ----------------------------------------------------------------------------------------- describe


@click.command(name="describe")
@click.argument("sku", required=False)
@click.option("--all", "all_", is_flag=True, help="Describe every product (with --missing: those without a description).")
@click.option("--missing", is_flag=True, help="With --all: only products that have no description of their own.")
@click.option("--lang", "language", type=click.Choice(["en", "zh"]), default="en", show_default=True)
@_LENGTH
@_TONE
@click.option("--save", is_flag=True, help="Store the description (reindex to show it where the catalog has none).")
@click.option("--catalog", type=click.Path(path_type=Path), default=None,
              help="Catalog file to describe (default: the current index, else SHOPBOT_CATALOG or the demo catalog).")
@click.option("--limit", type=int, default=None, help="With --all: stop after N new descriptions.")
@_TIMEOUT
@click.option("--json", "as_json", is_flag=True, help="One SKU: print one JSON object.")
@click.pass_context
def describe_cmd(ctx: click.Context, sku: str | None, all_: bool, missing: bool, language: str, length: str, tone: str,
                 save: bool, catalog: Path | None, limit: int | None, timeout: float, as_json: bool) -> None:
    """Write a product description from SKU's attributes (verified: no invented facts), or with --all
    --missing fill every product that has none, resumably (a stopped run continues where it ended)."""
    from bot.services import descriptions_path  # the search stack: start-up speed

    s = settings(ctx)
    if bool(sku) == all_:
        raise _error("Name one SKU, or use --all (e.g. `shopbot describe --all --missing`).")
    if missing and not all_:
        raise _error("--missing goes with --all: `shopbot describe --all --missing`.")
    with user_errors(debug(ctx)):
        products, source = _products(s, catalog)
    brands = sorted({p.brand for p in products if p.brand})
    store = DescriptionStore(descriptions_path(s))
    if sku:
        product = next((p for p in products if p.sku == sku), None)
        if product is None:
            raise _error(f"No product with SKU {sku!r} in {source}; check the SKU with `shopbot search`.")
        llm = _make_llm(s)
        try:
            d = _writer(llm, brands, timeout).write_sync(product.to_record(), language, length, tone)
        finally:
            _close(llm)
        if save:
            store.append(store_row(product, d, length, tone))
        if as_json:
            click.echo(json.dumps({"sku": product.sku, **d.to_dict()}, ensure_ascii=False))
            return
        click.echo(d.text)
        click.echo(f"({d.source}; attribute coverage {d.coverage:.2f}, prose alone {d.prose_coverage:.2f}; "
                   f"{d.seconds:.1f} s; {d.model})", err=True)
        if save:
            note = "" if not product.description or product.description in store.texts().get(product.sku, set()) \
                else " The catalog's own description still takes precedence in search and chat."
            click.echo(f"Saved to {store.path}; run `shopbot reindex` to publish it.{note}", err=True)
        return
    _describe_all(s, products, source, store, brands, missing=missing, language=language, length=length, tone=tone,
                  limit=limit, timeout=timeout)


def _describe_all(s: Settings, products: Sequence[Product], source: str, store: DescriptionStore, brands: Sequence[str],
                  *, missing: bool, language: str, length: str, tone: str, limit: int | None, timeout: float) -> None:
    # loaded when the command runs, so that `shopbot --help` stays fast
    from tqdm import tqdm


    generated = store.texts()
    done = store.done(language)
    wanted = [p for p in products
              if not missing or not p.description or p.description.strip() in generated.get(p.sku, set())]
    todo = [p for p in wanted if (p.sku, description_facts_hash(p)) not in done]
    if limit is not None:
        todo = todo[:limit]
    skipped = len(wanted) - len([p for p in wanted if (p.sku, description_facts_hash(p)) not in done])
    click.echo(f"{len(wanted)} of {len(products)} products in {source} "
               f"{'have no description' if missing else 'to describe'}; {skipped} already done, {len(todo)} to write.",
               err=True)
    if not todo:
        click.echo(f"Nothing to do; descriptions are in {store.path}.", err=True)
        return
    llm = _make_llm(s)
    writer = _writer(llm, brands, timeout)
    written, sources = 0, {"llm": 0, "llm-retry": 0, "template": 0}
    t0 = time.perf_counter()
    try:
        with _term_as_interrupt(), asyncio.Runner() as runner, \
                tqdm(todo, desc="Describing", unit="product", file=sys.stderr, dynamic_ncols=True) as bar:
            for p in bar:
                d = runner.run(writer.write(p.to_record(), language, length, tone))
                store.append(store_row(p, d, length, tone))
                written += 1
                sources[d.source] = sources.get(d.source, 0) + 1
    except KeyboardInterrupt:
        click.echo(f"\nInterrupted after {written} of {len(todo)} descriptions (each is saved in {store.path} as soon "
                   "as it is written). Run the same command again to continue.", err=True)
        raise click.exceptions.Exit(130) from None
    finally:
        _close(llm)
    click.echo(f"{written} descriptions written to {store.path} in {time.perf_counter() - t0:.0f} s "
               f"(model {sources['llm'] + sources['llm-retry']}, of which {sources['llm-retry']} on a second try; "
               f"template {sources['template']}). Run `shopbot reindex` to show them in search and chat.", err=True)


# --------------------------------------------------------------------------------------------- eval


@click.command(name="describe")
@click.option("--data", required=True, type=click.Path(path_type=Path), help="Flipkart products CSV.")
@click.option("--limit", type=int, default=None, help="Only the first N rows.")
@_LENGTH
@_TONE
@_TIMEOUT
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Also write one JSON line per row here.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
@click.pass_context
def eval_describe(ctx: click.Context, data: Path, limit: int | None, length: str, tone: str, timeout: float,
                  out: Path | None, as_json: bool) -> None:
    """Attribute coverage, unsupported claims, ROUGE-L and seconds per description on a Flipkart CSV,
    generating from the structured fields only (the human description is read only for ROUGE-L)."""
    # loaded when the command runs, so that `shopbot --help` stays fast
    from tqdm import tqdm

    # loaded when the command runs, so that `shopbot --help` stays fast
    from model.training.describe_eval import evaluate_describe, read_flipkart

    s = settings(ctx)
    if not data.is_file():
        raise _error(f"{data} does not exist; pass the Flipkart CSV, e.g. ../shared/eval/describe/flipkart_dev.csv.")
    try:
        every = read_flipkart(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _error(str(exc).splitlines()[0]) from None
    rows = every[:limit] if limit else every
    if not rows:
        raise _error(f"{data} has no rows.")
    brands = sorted({r.record["brand"] for r in every if r.record.get("brand")})
    click.echo(f"{len(rows)} products from {data}; {sum(len(r.attributes) for r in rows)} specification values.",
               err=True)
    llm = _make_llm(s)
    sink = out.open("w", encoding="utf-8") if out else None
    bar = tqdm(total=len(rows), desc="Describing", unit="product", file=sys.stderr, dynamic_ncols=True)

    def on_row(i: int, item: dict[str, Any]) -> None:
        bar.update(1)
        if sink is not None:
            sink.write(json.dumps(item, ensure_ascii=False) + "\n")
            sink.flush()

    try:
        report = evaluate_describe(rows, _writer(llm, (), timeout), length=length, tone=tone, on_row=on_row,
                                   known_brands=brands)
    except KeyboardInterrupt:
        raise _error("Interrupted; no figures were computed.") from None
    finally:
        bar.close()
        if sink is not None:
            sink.close()
        _close(llm)
    r = report
    click.echo(f"attribute coverage {r.attribute_coverage:.3f} (prose alone {r.prose_coverage:.3f})  "
               f"unsupported claims/description {r.unsupported_claims_per_description:.3f}  ROUGE-L {r.rouge_l:.3f}  "
               f"{r.seconds_per_description:.1f} s/description  n={r.n}")
    click.echo("sources: " + ", ".join(f"{k} {v}" for k, v in sorted(r.sources.items())) +
               f"; first drafts rejected {r.drafts_rejected:.0%} "
               f"({r.draft_unsupported:.2f} unsupported claims per first draft, before the guard)")
    if as_json:
        click.echo(json.dumps(r.as_dict()))
