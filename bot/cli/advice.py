"""``shopbot eval advice``: questions about the products on screen, judged by rules.

Each scenario of the file (tests/data/advice_scenarios.csv: id, language, split, category, search, question,
kind, attribute, ordinal, criterion, answerable) is played as a new shopper: the search, then the question.
The second reply is judged against the catalog records of the products the first one showed:

- **stayed**: the question was answered about the shown products (no new search, no other cards);
- **answered**: a superlative names a shown product with the lowest or highest value; a "which is best for"
  names a shown product whose facts hold one of the criterion's words, or, when none does, says that none is
  listed as such; an attribute question states the product's value, or that the catalog lacks it; guidance
  lists what the catalog lets a shopper compare;
- **facts**: every price the reply states is a shown product's, every position it names is on screen, and it
  never says the catalog lacks an attribute that the product's card shows.

Latency: the question's turn against the same turn with "1" (the first product's details, a turn about the
shown products with no question in it), median and 95th percentile.
"""

from __future__ import annotations

import csv
import json
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from bot.cli.context import debug, settings
from bot.cli.errors import UserError, user_errors
from retrieval.catalog import Product

__all__ = ["Judged", "eval_advice", "judge"]

COLUMNS = ("id", "language", "split", "category", "search", "question", "kind", "attribute", "ordinal", "criterion",
           "answerable")
_ON_SHOWN = {"advice", "details"}
_MISSING = ("doesn't list", "没有写", "doesn't say", "没有一款", "都没有写", "None of these", "can't pick", "can't find that",
            "没找到这一点", "没有一款写明")
_FACT_LINES = ("Its ", "It costs", "It is rated", "In stock", "Out of stock", "Yes, it comes", "No, it doesn't come",
               "The catalog lists it with", "价格是", "有货", "缺货", "评分", "：", "有 ", "没有 ")


@dataclass
class Judged:
    id: str
    language: str
    split: str
    kind: str
    stayed: bool
    answered: bool
    facts_ok: bool
    ms: float
    ms_plain: float
    reply: str = ""
    notes: list[str] = field(default_factory=list)


def _fact_words(p: Product) -> str:
    return " ".join([p.title, p.titles.get("zh", ""), p.description or "",
                     *(" ".join(v) for v in p.attributes.values())]).lower()


def _value(p: Product, fact: str) -> float | None:
    """The judge's own reading of a record (it shares no code with the answers it judges)."""
    plain = {"price": p.price, "stock": float(p.stock),
             "rating": float(p.attr("rating")[0]) if p.attr("rating") else None}
    if fact in plain:
        return plain[fact]
    units = {"weight": {"kg": 1000.0, "g": 1.0}, "capacity": {"l": 1000.0, "ml": 1.0, "qt": 946.4}}.get(fact)
    if units is None:
        return None
    m = re.search(rf"(\d+(?:\.\d+)?)\s?({'|'.join(units)})\b", f"{p.title} {p.description}", re.I)
    return None if m is None else float(m.group(1)) * units[m.group(2).lower()]


def _number_in(p: Product, fact: str) -> str:
    """The number of the measure the judge reads from ``p``'s record ("1.7" of "1.7L"), as a pattern."""
    units = {"weight": "kg|g", "capacity": "l|ml|qt"}[fact]
    m = re.search(rf"(\d+(?:\.\d+)?)\s?(?:{units})\b", f"{p.title} {p.description}", re.I)
    return re.escape(m.group(1)) if m else "$^"


def judge(row: dict[str, str], shown: Sequence[Product], reply: str, intent: str, cards: Sequence[str]) -> tuple[bool, bool, bool, list[str]]:
    """(stayed, answered, facts_ok, notes) of one scenario's second reply."""
    notes: list[str] = []
    skus = [p.sku for p in shown]
    stayed = intent in _ON_SHOWN and set(cards) <= set(skus)
    # a position is a number before a title ("4. Trailmark ..."), not a sentence's last number ("Sizes: 42 and 46.")
    named = [int(n) for n in re.findall(r"(?:^|\n|[:：;；(（]\s*|\bis\s|是\s?)(\d{1,2})\. (?=[A-Z\u4e00-\u9fff])", reply)]
    facts_ok = all(1 <= n <= len(shown) for n in named)
    prices = {f"{p.price:,.2f}" for p in shown}
    for price in re.findall(r"\$([\d,]+\.\d{2})", reply):
        if price not in prices:
            facts_ok = False
            notes.append(f"price ${price} is no shown product's")
    says_missing = any(m in reply for m in _MISSING)
    kind, criterion = row["kind"], row["criterion"]
    answered = False
    if kind == "which" and criterion.startswith(("min:", "max:")):
        fact = criterion.split(":", 1)[1]
        values = [(i + 1, v) for i, p in enumerate(shown) if (v := _value(p, fact)) is not None]
        if not values:
            answered = says_missing
        else:
            best = (min if criterion.startswith("min:") else max)(v for _, v in values)
            right = {i for i, v in values if v == best}
            answered = bool(named) and set(named) <= right
    elif kind == "which":
        words = [w.strip().lower() for w in criterion.split("|") if w.strip()]
        fits = {i + 1 for i, p in enumerate(shown)
                if any(re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", _fact_words(p)) for w in words)}
        # the products it names are those that fit (also as the closest, after saying no fact states it); none
        # fits: it must say so (the closest it names after that is allowed)
        answered = (bool(named) and set(named) <= fits) if fits else says_missing
        if fits and not named:
            notes.append(f"fits: {sorted(fits)}")
    elif kind == "attribute":
        n = int(row["ordinal"] or 0) or 1
        p = shown[n - 1] if n <= len(shown) else None
        attr = row["attribute"]
        if p is not None and attr in {"material", "color", "size", "rating", "brand"}:
            held = [p.brand] if attr == "brand" and p.brand else list(p.attr(attr))
            if held:
                answered = any(v.lower() in reply.lower() for v in held) or (
                    attr == "color" and any(c in reply for c in "黑白灰红蓝绿黄紫粉棕米银金藏"))
                if says_missing:
                    facts_ok = False
                    notes.append("says the catalog lacks what the card shows")
            else:
                answered = says_missing
        elif p is not None and attr in {"price", "stock"}:
            answered = any(line in reply for line in _FACT_LINES[1:5]) or "价格是" in reply or "有货" in reply or "缺货" in reply
        else:  # weight, capacity or another fact: the record's measure stated, or said to be missing
            value = _value(p, attr) if p is not None else None
            # the line about the product: its own line of an answer for each shown, else the line after the card
            own = [line for line in reply.split("\n") if line.startswith(f"{n}. ")]
            last = own[0] if own else reply.rstrip().rsplit("\n", 1)[-1]
            numbers = set(re.findall(r"\d+(?:\.\d+)?", last))
            answered = says_missing or "The catalog lists it with" in reply or "资料写的是" in reply or (
                p is not None and value is not None and re.search(rf"(?<![\d.]){_number_in(p, attr)}(?![\d])", reply) is not None
            ) or (p is not None and bool(numbers) and numbers <= set(re.findall(r"\d+(?:\.\d+)?", _fact_words(p))))
    elif kind == "guidance":
        answered = "What the catalog lets you compare" in reply or "可以比较的是" in reply
    else:  # suitability: the facts that bear on it, a yes or no, or that the record does not say
        answered = says_missing or bool(re.search(r"\b(?:yes|no)\b|Going by the catalog|按商品资料|不适合|适合", reply, re.I))
    return stayed, answered, facts_ok, notes


def _share(rows: Sequence[Judged], attr: str) -> float:
    return float(np.mean([getattr(r, attr) for r in rows])) if rows else 0.0


@click.command(name="advice")
@click.option("--scenarios", required=True, type=click.Path(path_type=Path),
              help="CSV of two-turn scenarios (tests/data/advice_scenarios.csv).")
@click.option("--split", default="all", show_default=True, help="Only this split (tune, heldout, final) or all.")
@click.option("--show", "show", is_flag=True, help="Print every scenario's question and reply.")
@click.option("--model", "with_model", is_flag=True,
              help="With the configured language model (SHOPBOT_LLM; the packaged one by default), not templates only.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
@click.pass_context
def eval_advice(ctx: click.Context, scenarios: Path, split: str, show: bool, with_model: bool, as_json: bool) -> None:
    """Questions about the products on screen: the shares that stayed on them, were answered, and kept to the
    catalog's facts, by language and kind; with the latency the question adds to a turn."""
    from bot.app import build_assistant
    from bot.dialogue.replies import Event

    s = settings(ctx)
    with user_errors(debug(ctx)):
        rows = _read(scenarios)
        if split != "all":
            rows = [r for r in rows if r["split"] == split]
        if not rows:
            raise UserError(f"No scenarios of split {split!r} in {scenarios}.")
        db = Path(tempfile.mkdtemp(prefix="shopbot-eval-advice-")) / "turns.db"
        s = s.model_copy(update={"database_url": f"sqlite:///{db}"})
        assistant = build_assistant(s) if with_model else build_assistant(s, llm=False)
        judged: list[Judged] = []
        for i, row in enumerate(rows):
            judged.append(_play(assistant, Event, row, f"advice-{i}"))
            if show:
                j = judged[-1]
                click.echo(f"[{j.id} {j.language} {j.kind}] {row['question']}\n  -> {j.reply[:300]}\n"
                           f"  stayed={j.stayed} answered={j.answered} facts={j.facts_ok} {'; '.join(j.notes)}")
        assistant.close()
        summary = _summary(judged)
        for line in summary["lines"]:
            click.echo(line)
        if as_json:
            click.echo(json.dumps({k: v for k, v in summary.items() if k != "lines"}, ensure_ascii=False))


def _read(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise UserError(f"{path} does not exist.")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path} lacks the columns {', '.join(missing)} (it has {', '.join(reader.fieldnames or [])}).")
        return list(reader)


def _play(assistant: Any, event: Any, row: dict[str, str], user: str) -> Judged:
    first = assistant.handle(event(user=user, channel="eval", text=row["search"]))
    shown = [assistant.engine.product(c.sku) for r in first for c in r.cards]
    shown = [p for p in shown if p is not None]
    t0 = time.perf_counter()
    second = assistant.handle(event(user=user, channel="eval", text=row["question"]))
    ms = (time.perf_counter() - t0) * 1000
    # the same turn without the question, for a second shopper who searched the same
    assistant.handle(event(user=user + "-plain", channel="eval", text=row["search"]))
    t0 = time.perf_counter()
    assistant.handle(event(user=user + "-plain", channel="eval", text="1"))
    ms_plain = (time.perf_counter() - t0) * 1000
    reply = "\n".join(r.text for r in second)
    intent = second[0].intent if second else ""
    cards = [c.sku for r in second for c in r.cards]
    stayed, answered, facts_ok, notes = judge(row, shown, reply, intent or "", cards)
    return Judged(row["id"], row["language"], row["split"], row["kind"], stayed, answered, facts_ok, ms, ms_plain,
                  reply, notes)


def _summary(judged: Sequence[Judged]) -> dict[str, Any]:
    lines = []
    out: dict[str, Any] = {"scenarios": len(judged), "groups": {}}
    groups: list[tuple[str, list[Judged]]] = [("all", list(judged))]
    groups += [(lang, [j for j in judged if j.language == lang]) for lang in ("en", "zh")]
    groups += [(kind, [j for j in judged if j.kind == kind]) for kind in ("which", "attribute", "suitability", "guidance")]
    groups += [(sp, [j for j in judged if j.split == sp]) for sp in ("tune", "heldout", "final")]
    for name, rows in groups:
        if not rows:
            continue
        g = {"n": len(rows), "stayed": _share(rows, "stayed"), "answered": _share(rows, "answered"),
             "facts_ok": _share(rows, "facts_ok")}
        out["groups"][name] = g
        lines.append(f"{name:>11}: stayed on the shown products {g['stayed']:.3f}  answered {g['answered']:.3f}  "
                     f"facts kept {g['facts_ok']:.3f}  ({len(rows)} scenarios)")
    ms = np.asarray([j.ms for j in judged])
    plain = np.asarray([j.ms_plain for j in judged])
    out["latency_ms"] = {"question_p50": float(np.median(ms)), "question_p95": float(np.percentile(ms, 95)),
                         "plain_p50": float(np.median(plain)), "plain_p95": float(np.percentile(plain, 95))}
    lat = out["latency_ms"]
    lines.append(f"    latency: the question's turn p50 {lat['question_p50']:.1f} ms, p95 {lat['question_p95']:.1f} ms; "
                 f"the same turn without it (\"1\") p50 {lat['plain_p50']:.1f} ms, p95 {lat['plain_p95']:.1f} ms")
    out["lines"] = lines
    return out
