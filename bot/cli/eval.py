"""``shopbot eval search|intents|describe|recommend``: measure quality on evaluation files.

Search and intents are measured here; the describe and recommend evaluations live beside the code they share
with their own commands (bot/cli/describe.py, bot/cli/recommend.py) and join this group in bot/cli/main.py.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bot.cli.context import debug, echo_err, settings
from bot.cli.errors import UserError, user_errors
from retrieval.catalog import load_catalog

if TYPE_CHECKING:
    from retrieval.evaluation import Judgments
    from retrieval.search import SearchEngine

__all__ = ["eval_group"]


@click.group(name="eval")
def eval_group() -> None:
    """Measure quality on evaluation files."""


@eval_group.command(name="search")
@click.option("--judgments", type=click.Path(path_type=Path), default=None,
              help="Graded judgments: CrowdFlower-format CSV, or query,sku,relevance over --catalog.")
@click.option("--needs", type=click.Path(path_type=Path), default=None,
              help="Everyday requests with the categories that answer them (query,language,categories,split): "
                   "top-3 category precision over --catalog.")
@click.option("--mode", type=click.Choice(["hybrid", "bm25", "dense", "rrf", "all"]), default="hybrid", show_default=True,
              help="Ranking to measure; 'all' reports every mode through the same index.")
@click.option("--catalog", type=click.Path(path_type=Path), default=None,
              help="For --needs and for judgments that name SKUs (query,sku,relevance): the catalog (default: demo).")
@click.option("--limit", type=int, default=None, help="Only the first N queries (quick checks).")
@click.option("--split", "split", type=click.Choice(["tune", "heldout", "final", "all"]), default="all", show_default=True,
              help="--needs: only the requests of this split (settings are chosen on 'tune' only).")
@click.option("--show-misses", is_flag=True,
              help="--needs: list the requests whose top 3 hold no product of the kind asked for, with what came back.")
@click.option("--chat", "through_chat", is_flag=True,
              help="--needs: send each request to the chat as a new shopper's first message (its understanding, "
                   "category filter and relaxing included; templates only) and score the products it shows.")
@click.option("--cv", "cv_folds", type=int, default=None,
              help="--judgments: cross-validate over queries with this many folds (each fold scored by the grid "
                   "point chosen on the others).")
@click.option("--grid", default=None,
              help="--cv: search settings to choose from, 'name=v1,v2;name2=v3' (RankConfig fields); "
                   "default: the shipped settings only.")
@click.option("--seed", type=int, default=0, show_default=True, help="--cv: seed of the fold split.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
@click.pass_context
def eval_search(
    ctx: click.Context, judgments: Path | None, needs: Path | None, mode: str, catalog: Path | None,
    limit: int | None, split: str, show_misses: bool, through_chat: bool, cv_folds: int | None, grid: str | None,
    seed: int, as_json: bool,
) -> None:
    """Search quality: NDCG@10 on judgments (--judgments), or top-3 category precision on needs (--needs).

    Judgments: NDCG@10, Recall@10 of grade-4 products and p50/p99 latency, per language when the file mixes
    English and Chinese; with --cv, cross-validated over queries (the held-out-fold figure is the headline).
    Needs: each request is searched as a shopper types it (filters included) and its top 3 are checked
    against the categories that answer it, overall, per language and per split.
    """
    if (judgments is None) == (needs is None):
        raise UserError("Pass either --judgments or --needs.")
    if needs is not None and cv_folds is not None:
        raise UserError("--cv cross-validates graded judgments; pass it with --judgments, not --needs.")
    if cv_folds is None and (grid is not None):
        raise UserError("--grid chooses settings by cross-validation; pass --cv too.")
    if cv_folds is not None and mode == "all":
        raise UserError("--cv runs one mode at a time; pick --mode hybrid (or another single mode).")
    if judgments is not None and (split != "all" or show_misses or through_chat):
        raise UserError("--split, --show-misses and --chat belong to --needs.")
    if through_chat and mode != "hybrid":
        raise UserError("--chat measures the chat as it runs, with the hybrid search; leave --mode out.")
    with user_errors(debug(ctx)):
        if needs is not None:
            _eval_needs(ctx, needs, mode, catalog, limit, split, show_misses, as_json, through_chat)
        elif cv_folds is not None:
            assert judgments is not None
            _eval_cv(ctx, judgments, mode, catalog, limit, cv_folds, grid, seed, as_json)
        else:
            assert judgments is not None
            _eval_judgments(ctx, judgments, mode, catalog, limit, as_json)


def _judgments_engine(
    ctx: click.Context, judgments: Path, catalog: Path | None, limit: int | None
) -> tuple[Judgments, SearchEngine]:
    """The judgments and an engine over their products (indexed under the data dir, keyed by file)."""
    # the search stack loads slowly: only when the command runs
    from bot.services import build_options, load_options
    from retrieval.evaluation import load_judgments
    from retrieval.indexer import build_bundle, load_engine

    s = settings(ctx)
    header = judgments.open(encoding="utf-8-sig").readline() if judgments.is_file() else ""
    products = load_catalog(catalog).products if "sku" in header.lower().split(",") else None
    j = load_judgments(judgments, catalog=products)
    if limit:
        j.grades = dict(list(j.grades.items())[:limit])
    echo_err(f"{len(j.products)} products, {len(j.grades)} queries from {judgments}")
    # Indexed under the data dir keyed by file, so a re-run only re-encodes what changed.
    root = s.data_dir / "eval" / judgments.stem
    build_bundle(j.products, root, progress=True, **build_options(s))
    return j, load_engine(root, query_cache_size=0, **load_options(s))


def _eval_judgments(
    ctx: click.Context, judgments: Path, mode: str, catalog: Path | None, limit: int | None, as_json: bool
) -> None:
    # loaded when the command runs, so that `shopbot --help` stays fast
    from retrieval.evaluation import Judgments, evaluate_run
    from retrieval.lexical import has_cjk

    j, engine = _judgments_engine(ctx, judgments, catalog, limit)
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
        engine.config = dataclasses.replace(base_config, mode=m)
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


def _eval_cv(
    ctx: click.Context, judgments: Path, mode: str, catalog: Path | None, limit: int | None,
    folds: int, grid_spec: str | None, seed: int, as_json: bool,
) -> None:
    from retrieval.tuning import GridError, cross_validate, parse_grid, point_label  # numpy: start-up speed

    j, engine = _judgments_engine(ctx, judgments, catalog, limit)
    base = dataclasses.replace(engine.config, mode=mode)
    values = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    try:
        grid = parse_grid(grid_spec, values)
    except GridError as e:
        raise UserError(str(e)) from None
    echo_err(f"{len(grid)} grid point(s), {folds} folds (seed {seed}): {len(grid) + 2} passes over the queries")

    def search_for(point: Mapping[str, Any]) -> Callable[[str], list[str]]:
        config = dataclasses.replace(base, **point)

        def search(q: str) -> list[str]:
            engine.config = config  # set per query: the baseline's search runs after the grid's
            return engine.search(q, k=10, parse=False).skus

        return search

    try:
        report = cross_validate(
            j, grid, search_for, folds=folds, seed=seed, shipped_values=values,
            baseline=search_for({"mode": "bm25"}) if mode != "bm25" else None,
        )
    except GridError as e:
        raise UserError(str(e)) from None
    finally:
        engine.config = base
    for f in report.folds:
        bm25 = "" if f.baseline_heldout is None else f"  bm25 {f.baseline_heldout:.4f}"
        click.echo(
            f"fold {f.fold} ({f.queries} queries): chose {point_label(f.chosen)} (other folds {f.train_ndcg:.4f}) "
            f"-> held-out {f.heldout_ndcg:.4f}  shipped {f.shipped_heldout:.4f}{bm25}"
        )
    out = report.as_dict() | {"mode": mode, "queries": len(j.grades), "products": len(j.products)}
    ratio = "" if out["ratio_cv_to_bm25"] is None else (
        f"  BM25 {out['bm25_ndcg@10']:.4f} (same folds)  held-out/BM25 {out['ratio_cv_to_bm25']:.3f}")
    click.echo(
        f"cross-validated NDCG@10 {out['cv_ndcg@10']:.4f} (folds {out['cv_fold_min']:.4f}-{out['cv_fold_max']:.4f})  "
        f"all-in as shipped {out['shipped_ndcg@10']:.4f}{ratio}"
    )
    if as_json:
        click.echo(json.dumps(out))


def _eval_needs(
    ctx: click.Context, needs_path: Path, mode: str, catalog: Path | None, limit: int | None, split: str,
    show_misses: bool, as_json: bool, through_chat: bool = False,
) -> None:
    # the search stack loads slowly: only when the command runs
    from bot.services import build_options, load_options
    from retrieval.evaluation import NeedsResult, evaluate_needs, load_needs
    from retrieval.indexer import build_bundle, load_engine
    from retrieval.query import set_exchange_rates

    s = settings(ctx)
    loaded = load_catalog(catalog)
    products = loaded.products
    needs = [n for n in load_needs(needs_path, catalog=products) if split == "all" or n.split == split]
    if limit:
        needs = needs[:limit]
    echo_err(f"{len(needs)} requests ({split}) from {needs_path}, {len(products)} products")
    # Indexed under the data dir keyed by catalog, so every needs file over one catalog shares the index.
    root = s.data_dir / "eval" / f"catalog-{(catalog or Path('demo_catalog')).stem}"
    build_bundle(products, root, progress=True, **build_options(s))
    engine = load_engine(root, query_cache_size=0, **load_options(s))
    set_exchange_rates(s.exchange_rates)  # prices in the shopper's currency are read as the chat reads them
    modes = ["bm25", "dense", "rrf", "hybrid"] if mode == "all" else [mode]
    base = engine.config
    results: dict[str, NeedsResult] = {}
    chat = _chat_search(s, engine) if through_chat else None
    for m in modes:
        engine.config = dataclasses.replace(base, mode=m)
        res = evaluate_needs(needs, chat or (lambda q: engine.search(q, k=10, parse=True).skus), products)
        results[m] = res
        d = res.as_dict()
        langs = "  ".join(f"{x} {v['top3_precision']:.4f}" for x, v in d["by_language"].items())
        click.echo(f"{m:>8}: top-3 category precision {d['top3_precision']:.4f}  {langs}  "
                   f"({d['requests']} requests, {d['missed']} with none of the kind)")
        for sp, per in d["by_split_language"].items():
            parts = "  ".join(f"{x} {v['top3_precision']:.4f}" for x, v in per.items())
            click.echo(f"{'':>10}{sp}: {d['by_split'][sp]['top3_precision']:.4f}  {parts}")
    engine.config = base
    if show_misses:
        shown = results[modes[-1]]
        click.echo(f"Requests whose top 3 hold none of the kind asked for ({modes[-1]}):")
        for o in shown.misses():
            click.echo(f"  [{o.need.language} {o.need.split}] {o.need.query}  (wants {' | '.join(o.need.categories)})")
            for i, prod in enumerate(o.top, 1):
                click.echo(f"      {i}. {prod.title}  [{prod.category_path}]")
            if not o.top:
                click.echo("      (nothing came back)")
    if as_json:
        final = results[modes[-1]].as_dict() | {"mode": modes[-1], "split": split}
        if len(modes) > 1:
            final["modes"] = {m: {k: v for k, v in r.as_dict().items() if k != "missed_queries"} for m, r in results.items()}
        click.echo(json.dumps(final, ensure_ascii=False))


def _chat_search(s: Any, engine: Any) -> Callable[[str], list[str]]:
    """Each request as a new shopper's first chat message, answered on templates with a throw-away database:
    the products of the reply's cards."""
    import tempfile

    from bot.app import build_assistant
    from bot.dialogue.replies import Event

    db = Path(tempfile.mkdtemp(prefix="shopbot-eval-chat-")) / "turns.db"
    assistant = build_assistant(s.model_copy(update={"database_url": f"sqlite:///{db}"}), engine=engine, llm=False)
    count = iter(range(1 << 30))

    def ask(text: str) -> list[str]:
        replies = assistant.handle(Event(user=f"eval-{next(count)}", channel="eval", text=text))
        return [c.sku for r in replies for c in r.cards]

    return ask


@eval_group.command(name="intents")
@click.option("--data", required=True, type=click.Path(path_type=Path), help="CSV with columns utterance,intent (Bitext format).")
@click.option("--train", "train_csv", type=click.Path(path_type=Path), default=None,
              help="Retrain on this CSV first (plus the packaged examples, as `shopbot train intents` does).")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
@click.pass_context
def eval_intents(ctx: click.Context, data: Path, train_csv: Path | None, as_json: bool) -> None:
    """Accuracy and macro-F1 of intent routing (the configured or packaged classifier + the NLU's rules) on DATA."""
    # the classifier, its encoders and the assistant's wiring load slowly: only when the command runs
    from bot.app import intent_model_from_settings
    from bot.dialogue.nlu.intents import DATA_DIR, DEFAULT_ENCODERS, evaluate_intents, load_training_csv, train_intents
    from bot.dialogue.nlu.parser import NLU
    from retrieval.encoders import get_encoder
    from retrieval.query import colour_phrases

    s = settings(ctx)
    with user_errors(debug(ctx)):
        if train_csv is not None:
            rows = load_training_csv(DATA_DIR / "intents.csv") + load_training_csv(train_csv)
            model = train_intents(rows, [get_encoder(n) for n in DEFAULT_ENCODERS])
        else:
            model, _name = intent_model_from_settings(s)  # SHOPBOT_INTENT_MODEL, the active version, or packaged
        rows = load_training_csv(data, strict=False)
        # the assistant's routing: the classifier plus the NLU's rules, with the catalog's vocabulary
        products = load_catalog(s.catalog).products
        nlu = NLU(model, brands={p.brand for p in products if p.brand},
                  categories=sorted({" > ".join(p.category).lower() for p in products if p.category}),
                  names=colour_phrases(products))
        routed = [r.intent for r in nlu.parse_batch([row.utterance for row in rows])]
        report = evaluate_intents(model, rows, predictions=routed)
    click.echo(f"accuracy {report['accuracy']:.4f}  macro-F1 {report['macro_f1']:.4f}  n={report['n']}")
    for c in report["confusions"][:5]:
        click.echo(f"  {c['gold']} -> {c['predicted']}: {c['count']}")
    if as_json:
        click.echo(json.dumps({k: report[k] for k in ("accuracy", "macro_f1", "n")} | {"model_version": report["model_version"]}))


@eval_group.command(name="support")
@click.option("--docs", "docs_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Directory of the policy documents the questions name.")
@click.option("--questions", required=True, type=click.Path(path_type=Path),
              help="CSV: question,language,document,section,split (section NONE: no section answers it).")
@click.option("--split", "split", default="all", show_default=True,
              help="Only the questions of this split (settings are chosen on 'tune' documents only).")
@click.option("--show-misses", is_flag=True, help="List the questions answered from the wrong section, or not at all.")
@click.option("--cv", "cross_validate", is_flag=True,
              help="Cross-validate the handoff by document: each document's questions decided by the model fitted "
                   "on the other documents; then the model fitted on all of them.")
@click.option("--chat", "through_chat", is_flag=True,
              help="Send each question to the chat as a new shopper's first message (the intent model, the routing "
                   "between search and policy, templates), the shop's policy being its document; a search counts "
                   "as a miss.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
@click.pass_context
def eval_support(ctx: click.Context, docs_dir: Path, questions: Path, split: str, show_misses: bool,
                 cross_validate: bool, through_chat: bool, as_json: bool) -> None:
    """Customer-service answers: the share of questions answered from the section that answers them (or
    handed to a person when none does), beside the plain single-best-section retriever."""
    from bot.services import encoders_of  # the models load slowly: only when the command runs
    from retrieval.encoders import get_encoder
    from retrieval.policy_eval import (
        cross_validated_handoffs,
        evaluate_policy,
        fit_handoff,
        handoff_samples,
        load_policy_questions,
    )

    s = settings(ctx)
    with user_errors(debug(ctx)):
        qs = [q for q in load_policy_questions(questions) if split == "all" or q.split == split]
        if not qs:
            raise UserError(f"No question of split {split!r} in {questions}.")
        encoders = {role: get_encoder(name) for role, name in encoders_of(s).items()}
        answer: Callable[[Any, Any], str | None] = _policy_answer
        if cross_validate:
            samples = handoff_samples(qs, docs_dir, encoders)
            models = cross_validated_handoffs(samples)

            def answer(index: Any, q: Any) -> str | None:  # the assistant's lookup, with the document's model
                index.config = dataclasses.replace(index.config, handoff=models[q.document])
                return _policy_answer(index, q)

            click.echo("Each document's questions decided by the handoff fitted on the other documents:")
        if through_chat:
            answer = _chat_policy_answer(s)
        res = evaluate_policy(qs, docs_dir, encoders, answer)
    d = res.as_dict()

    def line(name: str, v: Mapping[str, Any]) -> str:
        nones = "" if v.get("handed_over") is None else f"; handed over {v['handed_over']:.2f} of {v['unanswerable']} unanswerable"
        return (f"{name:>16}: {v['accuracy']:.4f} right (baseline {v['baseline']:.4f}), {v['questions']} questions"
                f"{nones}; {v['false_handoffs']} answerable handed over")

    click.echo(line("all", d))
    for group in ("by_split", "by_language", "by_document"):
        for name, v in d[group].items():
            click.echo(line(name, v))
    if show_misses:
        click.echo("Misses:")
        for q, got in res.misses():
            click.echo(f"  [{q.language} {q.document}] {q.question}  wants {q.section or 'a person'}, got {got or 'a person'}")
    if cross_validate:
        h = fit_handoff(samples)
        click.echo(f"Fitted on all {len(samples)} questions: Handoff(w_meaning={h.w_meaning}, w_margin={h.w_margin}, "
                   f"w_unknown={h.w_unknown}, bias={h.bias}, threshold={h.threshold})")
    if as_json:
        click.echo(json.dumps(d, ensure_ascii=False))


# where a chat answer came from: retrieval.policy.source_line
_SOURCE = re.compile(r"— (?:from our FAQ: (?P<faq>.+)|from our (?P<section>.+) policy|摘自：(?P<zh>.+))$", re.M)


def _chat_policy_answer(s: Any) -> Callable[[Any, Any], str | None]:
    """Each question as a new shopper's first chat message, the shop's policy being its document (templates, a
    throw-away database): the section the reply cites, None when it offers a person, "[search]" for cards."""
    import tempfile

    from bot.app import build_assistant
    from bot.dialogue.replies import Event
    from bot.services import load_engine

    engine = load_engine(s)
    db = Path(tempfile.mkdtemp(prefix="shopbot-eval-support-")) / "turns.db"
    s = s.model_copy(update={"database_url": f"sqlite:///{db}"})
    assistants: dict[int, Any] = {}
    count = iter(range(1 << 30))

    def answer(index: Any, q: Any) -> str | None:
        if id(index) not in assistants:
            assistants[id(index)] = build_assistant(s, engine=engine, policy=index, llm=False)
        replies = assistants[id(index)].handle(Event(user=f"support-{next(count)}", channel="eval", text=q.question))
        if any(r.cards for r in replies):
            return "[search]"
        for r in replies:
            m = _SOURCE.search(r.text)
            if m:
                label = (m.group("faq") or m.group("section") or m.group("zh")).strip()
                return next((p.section for p in index.passages if label in (p.label, p.section)), label)
        return None

    return answer


def _policy_answer(index: Any, q: Any) -> str | None:
    """What the assistant's policy lookup answers from (the section), or None when it hands over."""
    match = index.lookup_hits(q.question, language=q.language)
    return None if not match else match[0].passage.section
