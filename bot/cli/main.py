"""The ``shopbot`` command: chat, reindex, search, eval.

Every error a user can cause ends in one sentence on stderr and a non-zero exit, never a traceback
(``--debug`` shows the traceback for bug reports).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from bot.channels.rasa.server import actions_command
from bot.cli.telegram import telegram as telegram_command
from bot.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("shopbot")

EXAMPLES_EN = ['a red winter coat under $80', 'running shoes size 42', 'wireless earbuds', 'laptop cheapest']
EXAMPLES_ZH = ["我想买一款新的手机", "红色的外套", "跑步鞋 500元以下"]


class UserError(click.ClickException):
    """A problem the user can fix; printed as one sentence."""

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.message}", err=True)


@contextmanager
def user_errors(debug: bool = False) -> Iterator[None]:
    """Turn the library's clear-sentence exceptions into a clean exit."""
    from bot.dialogue.nlu.intents import IntentDataError, IntentModelError
    from bot.store.sql import StoreUnavailable
    from retrieval.catalog import CatalogError
    from retrieval.encoders import EncoderError
    from retrieval.index import IndexLoadError

    try:
        yield
    except (CatalogError, EncoderError, IndexLoadError, IntentDataError, IntentModelError, StoreUnavailable) as exc:
        if debug:
            raise
        raise UserError(str(exc)) from None
    except KeyboardInterrupt:
        raise UserError("Interrupted; nothing was published, the previous index is still in use.") from None


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]  # type: ignore[no-any-return]


def _encoders(s: Settings) -> dict[str, str]:
    enc = {"en": s.encoder}
    if s.multilingual_encoder:
        enc["multi"] = s.multilingual_encoder
    return enc


def _build_options(s: Settings) -> dict[str, Any]:
    """Settings that shape an index build; every build (reindex, first chat, eval) uses the same ones."""
    return {"encoders": _encoders(s), "index_type": s.index_type, "approx_threshold": s.approx_threshold,
            "use_gpu": s.use_gpu_index, "body_view": s.body_view}


def _load_options(s: Settings) -> dict[str, Any]:
    return {"encoders": _encoders(s), "use_gpu": s.use_gpu_index, "query_threads": s.query_threads}


def _engine(s: Settings, *, build_if_missing: bool = True):  # type: ignore[no-untyped-def]
    """Load the current index; on first use, build it from the configured (or demo) catalog."""
    from retrieval.index import current_dir
    from retrieval.indexer import load_engine
    from retrieval.query import set_exchange_rates

    set_exchange_rates(s.exchange_rates)
    if current_dir(s.index_root) is None and build_if_missing:
        click.echo("No search index yet: building one from the " + ("demo catalog" if s.catalog is None else str(s.catalog)) + " ...", err=True)
        _reindex(s, s.catalog, full=False, progress=True)
    return load_engine(s.index_root, query_cache_size=s.query_cache_size, **_load_options(s))


def _reindex(s: Settings, path: Path | None, *, full: bool, progress: bool, on_error: str | None = None) -> Any:
    from bot.cli.describe import descriptions_path
    from retrieval.catalog import load_catalog, overlay_descriptions
    from retrieval.indexer import build_bundle

    result = load_catalog(path, on_error=on_error or s.on_bad_row)  # type: ignore[arg-type]
    for err in result.errors[:20]:
        click.echo(f"Skipped {err}", err=True)
    if len(result.errors) > 20:
        click.echo(f"... and {len(result.errors) - 20} more bad rows.", err=True)
    click.echo(result.summary(), err=True)
    # products without a description get the one `shopbot describe --all --missing` wrote for their facts
    products, generated = overlay_descriptions(result.products, descriptions_path(s))
    if generated:
        click.echo(f"{generated} products without a description use a generated one.", err=True)
    from bot.app import active_version

    ranker = active_version(s, "ranker")  # `shopbot train ranker`
    learned = None if ranker is None else ranker.path
    report = build_bundle(
        products, s.index_root, incremental=not full, progress=progress, ranker_dir=learned, **_build_options(s)
    )
    click.echo(report.summary(), err=True)
    click.echo(f"Ranking: learned ranker {learned.name} on top of the hybrid search." if learned is not None
               else "Ranking: the built-in hybrid search (no learned ranker is active).", err=True)
    return report


def format_hit(rank: int, p: Any, language: str | None = None) -> str:
    from bot.dialogue.replies import card_from_product, card_line

    lang = language or "en"
    return card_line(card_from_product(p, rank, lang), lang)


@click.group()
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Overrides SHOPBOT_DATA_DIR.")
@click.option("--encoder", default=None, help="English query encoder (overrides SHOPBOT_ENCODER).")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, encoder: str | None, debug: bool) -> None:
    """shopbot: an open-source shopping assistant. Run `shopbot chat` to try it on the demo catalog."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        overrides: dict[str, Any] = {}
        if data_dir is not None:
            overrides["data_dir"] = data_dir
        if encoder is not None:
            overrides["encoder"] = encoder
        settings = Settings(**overrides)
    except Exception as exc:  # pydantic ValidationError: a bad SHOPBOT_* value
        raise UserError(f"Invalid configuration: {exc}".splitlines()[0]) from None
    ctx.obj = {"settings": settings, "debug": debug}


@cli.command()
@click.argument("catalog", required=False, type=click.Path(path_type=Path))
@click.option("--full", is_flag=True, help="Re-encode every product instead of only added/changed ones.")
@click.option("--on-bad-row", type=click.Choice(["skip", "raise"]), default=None, help="Skip bad rows (default) or reject the load.")
@click.pass_context
def reindex(ctx: click.Context, catalog: Path | None, full: bool, on_bad_row: str | None) -> None:
    """Index CATALOG (CSV or JSONL; the demo catalog when omitted) and swap it in atomically."""
    s = _settings(ctx)
    with user_errors(ctx.obj["debug"]):
        _reindex(s, catalog or s.catalog, full=full, progress=True, on_error=on_bad_row)


@cli.command()
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
    from retrieval.lexical import has_cjk
    from retrieval.query import Filters

    s = _settings(ctx)
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
    with user_errors(ctx.obj["debug"]):
        engine = _engine(s)
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


@cli.command()
@click.option("--user", default="local", show_default=True, help="Who is chatting (conversation state is kept per user).")
@click.option("--no-llm", is_flag=True, help="Templates only, no language model (same as SHOPBOT_LLM=off).")
@click.pass_context
def chat(ctx: click.Context, user: str, no_llm: bool) -> None:
    """A terminal chat with the shop assistant over the current catalog (the demo catalog by default)."""
    import asyncio

    from bot.dialogue.replies import Event

    s = _settings(ctx)
    if no_llm:
        s = s.model_copy(update={"llm": "off"})
    with user_errors(ctx.obj["debug"]):
        assistant = _assistant(s)
    assistant.warm_up()
    click.echo(f"shopbot: {len(assistant.engine.products)} products. Ask in English or Chinese, e.g. "
               f"'{EXAMPLES_EN[0]}' or '{EXAMPLES_ZH[0]}'. 'quit' leaves.")
    interactive = sys.stdin.isatty()
    with asyncio.Runner() as runner:
        try:
            while True:
                try:
                    line = input("you> ") if interactive else sys.stdin.readline()
                except (EOFError, KeyboardInterrupt):
                    click.echo("")
                    break
                if not interactive and line == "":
                    break
                text = line.strip()
                if text.lower() in {"quit", "exit", ":q", "退出"}:
                    click.echo("bot> Bye! / 再见！")
                    break
                # buttons are typed as "/payload" in the terminal, e.g. "/more" or "/details:SKU"
                event = Event(user=user, channel="cli", payload=text[1:]) if text.startswith("/") and len(text) > 1 \
                    else Event(user=user, channel="cli", text=line.rstrip("\r\n"))
                replies = runner.run(assistant.handle_async(event))
                if not replies:
                    click.echo("bot> (a colleague has taken over this conversation; `shopbot handoffs release cli:"
                               f"{user}` gives it back)")
                for r in replies:
                    runner.run(_print_reply(r))
            runner.run(assistant.dialogue.drain())
        finally:
            assistant.close()


async def _print_reply(r: Any) -> None:
    """One reply in the terminal; text the model is still writing appears as it is verified."""
    from bot.dialogue.replies import render_text

    if r.live is None:
        click.echo("bot> " + render_text(r).replace("\n", "\n     "))
        return
    printed = shown = ""
    async for text in r.live.updates():
        shown = text
        # the answer grows in front of its source line ("— from our Returns policy") and any note after it:
        # those are printed once, at the end, instead of again with every sentence
        body = text.split("\n— ", 1)[0]
        if len(body) > len(printed) and body.startswith(printed):
            click.echo(("" if printed else "bot> ") + body[len(printed):].replace("\n", "\n     "), nl=False)
            printed = body
    if shown.startswith(printed):
        click.echo(("" if printed or not shown else "bot> ") + shown[len(printed):].replace("\n", "\n     "), nl=False)
    elif shown:  # the model's text was replaced (a failed check): say so and show the final one
        click.echo("\n     [corrected] " + shown.replace("\n", "\n     "), nl=False)
    else:
        click.echo("\n     [withdrawn]", nl=False)
    shown = shown or printed
    rest = render_text(dataclasses.replace(r, text="", live=None))
    if shown:
        click.echo("")
    if rest:
        click.echo(("     " if shown else "bot> ") + rest.replace("\n", "\n     "))


def _assistant(s: Settings):  # type: ignore[no-untyped-def]
    from bot.app import build_assistant

    return build_assistant(s, engine=_engine(s))


def _store(s: Settings):  # type: ignore[no-untyped-def]
    from bot.store.sql import Store

    return Store(s.db_url, s.buffer_dir)


@cli.group(name="feedback")
def feedback_group() -> None:
    """The logged conversations as training data."""


@feedback_group.command(name="export")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="JSON-lines file to write.")
@click.pass_context
def feedback_export(ctx: click.Context, out: Path) -> None:
    """One JSON line per turn that showed products or got feedback: query, shown products with ranks,
    clicks, thumbs, purchases, reply text and model versions."""
    with user_errors(ctx.obj["debug"]):
        store = _store(_settings(ctx))
        try:
            n = store.export_feedback(out)
        finally:
            store.close()
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
    from model.training.feedback_import import read_reported_actions

    s = _settings(ctx)
    with user_errors(ctx.obj["debug"]):
        rows, errors = read_reported_actions(path, channel=channel, known_skus=_catalog_skus(s))
        for err in errors[:20]:
            click.echo(f"Skipped {err}", err=True)
        if len(errors) > 20:
            click.echo(f"... and {len(errors) - 20} more bad rows.", err=True)
        store = _store(s)
        try:
            added, already = store.import_feedback(rows)
        finally:
            store.close()
    click.echo(f"{added} actions added from {path} ({already} already imported, {len(errors)} rows skipped).")
    if as_json:
        click.echo(json.dumps({"added": added, "already_imported": already, "skipped": len(errors)}))


def _catalog_skus(s: Settings) -> set[str] | None:
    """The SKUs of the current index, to check an import against; None before the first index."""
    from retrieval.indexer import bundle_products

    products = bundle_products(s.index_root)
    return None if products is None else {p.sku for p in products}


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Turns, users, top queries, zero-result queries, thumbs ratio, open handoffs."""
    with user_errors(ctx.obj["debug"]):
        store = _store(_settings(ctx))
        try:
            st = store.stats()
        finally:
            store.close()
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
        for q, n in st[key] or [("(none)", "")]:
            click.echo(f"  {n:>5}  {q}")


@cli.group(name="handoffs", invoke_without_command=True)
@click.pass_context
def handoffs(ctx: click.Context) -> None:
    """Conversations handed over to a person (list them; `release USER` gives one back to the bot)."""
    if ctx.invoked_subcommand is not None:
        return
    with user_errors(ctx.obj["debug"]):
        store = _store(_settings(ctx))
        try:
            rows = store.open_handoffs()
        finally:
            store.close()
    if not rows:
        click.echo("No open handoffs.")
    for h in rows:
        click.echo(f"{h['user_id']}  since {h['since']:%Y-%m-%d %H:%M} UTC  ({h['reason']})  last: {h['last_message']!r}")


@handoffs.command(name="release")
@click.argument("user_id")
@click.pass_context
def handoffs_release(ctx: click.Context, user_id: str) -> None:
    """Give USER_ID's conversation back to the bot (ids as listed, e.g. telegram:12345)."""
    with user_errors(ctx.obj["debug"]):
        store = _store(_settings(ctx))
        try:
            ok = store.release(user_id)
        finally:
            store.close()
    click.echo(f"{user_id} is back with the bot." if ok else f"{user_id} has no open handoff.")


@cli.group(name="train")
def train_group() -> None:
    """Retrain models from the shop's own data."""


@train_group.command(name="intents")
@click.option("--data", required=True, type=click.Path(path_type=Path), help="CSV with columns utterance,intent[,language].")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where to write the model (default: DATA_DIR/models/intent_model.npz; point SHOPBOT_INTENT_MODEL at it).")
@click.option("--with-builtin/--only-data", default=True, show_default=True,
              help="Also learn from the packaged examples, so shopping intents keep working.")
@click.pass_context
def train_intents_cmd(ctx: click.Context, data: Path, out: Path | None, with_builtin: bool) -> None:
    """Retrain the intent classifier from a shop's own labelled utterances."""
    from bot.dialogue.nlu.intents import DATA_DIR, DEFAULT_ENCODERS, load_training_csv, train_intents
    from retrieval.encoders import get_encoder

    s = _settings(ctx)
    with user_errors(ctx.obj["debug"]):
        rows = load_training_csv(data)
        if with_builtin:
            rows = load_training_csv(DATA_DIR / "intents.csv") + rows
        model = train_intents(rows, [get_encoder(n) for n in DEFAULT_ENCODERS])
        target = out or s.data_dir / "models" / "intent_model.npz"
        model.save(target)
    click.echo(f"{len(rows)} examples, {len(model.labels)} intents -> {target}")
    if out is None or s.intent_model != target:
        click.echo(f"Use it with: export SHOPBOT_INTENT_MODEL={target}")


@cli.group(name="eval")
def eval_group() -> None:
    """Measure quality on evaluation files."""


@eval_group.command(name="search")
@click.option("--judgments", required=True, type=click.Path(path_type=Path), help="CrowdFlower-format CSV.")
@click.option("--mode", type=click.Choice(["hybrid", "bm25", "dense", "rrf", "all"]), default="hybrid", show_default=True,
              help="Ranking to measure; 'all' reports every mode through the same index.")
@click.option("--catalog", type=click.Path(path_type=Path), default=None,
              help="For judgments that name SKUs (query,sku,relevance): the catalog they judge (default: demo).")
@click.option("--limit", type=int, default=None, help="Only the first N queries (quick checks).")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
@click.pass_context
def eval_search(
    ctx: click.Context, judgments: Path, mode: str, catalog: Path | None, limit: int | None, as_json: bool
) -> None:
    """NDCG@10, Recall@10 of grade-4 products and p50/p99 latency over a judgments file.

    Judgments that mix English and Chinese queries are also reported per language.
    """
    from retrieval.catalog import load_catalog
    from retrieval.evaluation import Judgments, evaluate_run, load_judgments
    from retrieval.indexer import build_bundle, load_engine
    from retrieval.lexical import has_cjk

    s = _settings(ctx)
    with user_errors(ctx.obj["debug"]):
        header = judgments.open(encoding="utf-8-sig").readline() if judgments.is_file() else ""
        products = load_catalog(catalog).products if "sku" in header.lower().split(",") else None
        j = load_judgments(judgments, catalog=products)
        if limit:
            j.grades = dict(list(j.grades.items())[:limit])
        click.echo(f"{len(j.products)} products, {len(j.grades)} queries from {judgments}", err=True)
        # Indexed under the data dir keyed by file, so a re-run only re-encodes what changed.
        root = s.data_dir / "eval" / judgments.stem
        build_bundle(j.products, root, progress=True, **_build_options(s))
        engine = load_engine(root, query_cache_size=0, **_load_options(s))
        modes = ["bm25", "dense", "rrf", "hybrid"] if mode == "all" else [mode]
        results: dict[str, dict[str, Any]] = {}
        base_config = engine.config
        zh = {q: g for q, g in j.grades.items() if has_cjk(q)}
        splits = {"all": j}
        if zh and len(zh) < len(j.grades):
            splits["en"] = Judgments(j.products, {q: g for q, g in j.grades.items() if q not in zh})
            splits["zh"] = Judgments(j.products, zh)
        by_lang: dict[str, dict[str, Any]] = {}
        for m in modes:
            engine.config = dataclasses.replace(base_config, mode=m)  # type: ignore[call-arg]
            for lang, part in splits.items():
                run = evaluate_run(part, lambda q: engine.search(q, k=10, parse=False).skus, progress=False)
                if lang == "all":
                    results[m] = run.as_dict()
                else:
                    by_lang.setdefault(m, {})[lang] = run.as_dict()
                label = m if lang == "all" else f"{m}/{lang}"
                click.echo(
                    f"{label:>10}: NDCG@10 {run.ndcg:.4f}  Recall@10 {run.recall:.4f}  p50 {run.p50_ms:.1f} ms  "
                    f"p99 {run.p99_ms:.1f} ms  ({run.queries} queries, {run.products} products)"
                )
    if as_json:
        final = dict(results[modes[-1]])
        if by_lang:
            final["by_language"] = by_lang[modes[-1]]
        if len(modes) > 1:
            final["modes"] = results
        click.echo(json.dumps(final))


@eval_group.command(name="intents")
@click.option("--data", required=True, type=click.Path(path_type=Path), help="CSV with columns utterance,intent (Bitext format).")
@click.option("--train", "train_csv", type=click.Path(path_type=Path), default=None,
              help="Retrain on this CSV first (plus the packaged examples, as `shopbot train intents` does).")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
@click.pass_context
def eval_intents(ctx: click.Context, data: Path, train_csv: Path | None, as_json: bool) -> None:
    """Accuracy and macro-F1 of intent routing (the configured or packaged classifier + the NLU's rules) on DATA."""
    from bot.dialogue.nlu.intents import (
        DATA_DIR,
        DEFAULT_ENCODERS,
        evaluate_intents,
        load_training_csv,
        train_intents,
    )
    from bot.dialogue.nlu.parser import NLU
    from retrieval.catalog import load_catalog
    from retrieval.encoders import get_encoder

    s = _settings(ctx)
    with user_errors(ctx.obj["debug"]):
        if train_csv is not None:
            rows = load_training_csv(DATA_DIR / "intents.csv") + load_training_csv(train_csv)
            model = train_intents(rows, [get_encoder(n) for n in DEFAULT_ENCODERS])
        else:
            from bot.app import intent_model_from_settings

            model, _name = intent_model_from_settings(s)  # SHOPBOT_INTENT_MODEL, the active version, or packaged
        rows = load_training_csv(data, strict=False)
        # the assistant's routing: the classifier plus the NLU's rules, with the catalog's vocabulary
        products = load_catalog(s.catalog).products
        nlu = NLU(model, brands={p.brand for p in products if p.brand},
                  categories=sorted({c.lower() for p in products for c in p.category}))
        routed = [r.intent for r in nlu.parse_batch([row.utterance for row in rows])]
        report = evaluate_intents(model, rows, predictions=routed)
    click.echo(f"accuracy {report['accuracy']:.4f}  macro-F1 {report['macro_f1']:.4f}  n={report['n']}")
    for c in report["confusions"][:5]:
        click.echo(f"  {c['gold']} -> {c['predicted']}: {c['count']}")
    if as_json:
        click.echo(json.dumps({k: report[k] for k in ("accuracy", "macro_f1", "n")} | {"model_version": report["model_version"]}))


cli.add_command(telegram_command)
cli.add_command(actions_command)
from bot.cli.describe import describe_cmd, eval_describe  # noqa: E402  (commands in their own module)

cli.add_command(describe_cmd)
eval_group.add_command(eval_describe)
from bot.cli.recommend import eval_recommend  # noqa: E402

eval_group.add_command(eval_recommend)
from bot.cli.train import models_group, train_group  # noqa: E402

cli.add_command(train_group)
cli.add_command(models_group)
import bot.cli.train_llm  # noqa: E402,F401  (adds `shopbot train llm`)
from bot.cli import train_models as _train_models  # noqa: E402,F401  (adds `shopbot train recommender`, `train intents`)
from bot.cli.simulate import simulate_cmd  # noqa: E402

cli.add_command(simulate_cmd)


def main(argv: Sequence[str] | None = None) -> None:
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="shopbot", standalone_mode=True)
    except UserError as exc:  # pragma: no cover - click handles it in standalone mode
        exc.show()
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
