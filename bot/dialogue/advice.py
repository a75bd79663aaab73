"""Advice about the products on screen: "which of these is best for running in the rain?", "哪个更便宜？",
"which one has the best reviews?", "what should I look for in running shoes?".

A question about the list is answered about the list: the search, its filters and its page stay as they were,
and the answer names one or two of the shown products with the catalog facts that make them fit (a title that
says "Waterproof", a material, a rating, a price). Superlatives are read from the records by code (the
cheapest, the best rated, the lightest by the weight a title states). Where no shown product's facts say what
was asked, the answer says so plainly, gives the closest facts it has, and offers the search that would find
it. Buying guidance lists what the catalog lets a shopper compare for that kind of product, from the shown
products' own facts; nothing here comes from a model's memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.dialogue.facts import fact_reason, measures, phrase_of, product_facts, question_words, searched_words
from bot.dialogue.messages import attribute_name, attribute_value, say
from bot.dialogue.replies import Button, Reply, format_price
from bot.dialogue.turn import DialogueContext, Pending, Turn, closing_line, pick_numbered
from retrieval.catalog import Product
from retrieval.lexical import tokenize

__all__ = ["Criterion", "answer", "asks_about_shown", "compares_named", "criterion_of"]

# a question about the shown list, not one product and not the shop: "which of these ...", "which one ...",
# "which is/would/has ...", "any of them ...", "这几款哪个 ...", "哪个更 ...", "选哪个"
_WHICH_EN = re.compile(
    r"\b(?:which|wich|whcih|whihc)\s+(?:one|ones|of\s+(?:these|them|those|the\s+\w+)|is|are|would|should|has|have|had|does|do|"
    r"costs?|holds?|takes?|lasts?|gets?|works?|will|can|could)\b|"
    r"\b(?:any|all|either|none)\s+of\s+(?:these|them|those)\b|"
    r"\bwhich\s+(?P<noun>[a-z][a-z'-]+)\s+(?:is|are|would|should|has|have|does|do|will|can|could|makes?|suits?|fits?|"
    r"gives?|offers?|keeps?|looks?|feels?|works?|lasts?|holds?|takes?|gets?|costs?)\b", re.I)
_WHICH_ZH = re.compile(
    r"这几[个款件双台支本条只包瓶盒套顶部把样种张口]|这些|它们|哪[款件双台支本条只包瓶盒套顶部把张口]|选哪|"
    # 哪个 of a product, not of the shop's couriers, payment or branches ("你们用哪个快递")
    r"哪个(?!快递|物流|客服|国家|地区|城市|银行|支付|付款|门店|网点|平台|app|App)")
# general buying advice: "what should I look for in ...", "how do I choose", "pros and cons", "要注意什么"
_GUIDANCE = re.compile(
    r"\bwhat\s+(?:should|do|must)\s+i\s+(?:\w+\s+)?(?:look|check|pay attention)\b|"
    r"\bwhat\s+\w+\s+should\s+i\s+(?:go for|get|choose|pick|buy)\b|\b(?:what'?s|whats|which is|which'?s)\s+better\b|\bwhat\s+(?:matters|counts)\b|"
    r"\bwhat\s+to\s+look\s+(?:for|at)\b|\bhow\s+(?:do|should|can)\s+i\s+(?:choose|pick|decide|work out|"
    r"figure out|know)\b|\bpros\s+and\s+cons\b|\bwhat(?:'s| is)\s+the\s+difference\b|\bany\s+(?:tips|advice)\b|"
    r"要注意什么|注意哪些|怎么选|如何选|怎么挑|看哪些|有什么讲究|怎么看|选购|挑选|哪些参数|哪些指标|门道|技巧|避坑|"
    r"哪些坑|避雷|\b(?:vs\.?|versus)\b|优缺点|利弊|看重哪些|看重什么|应该看重|应该看什么|主要看什么|咋选|选多[厚大长重]|"
    r"\bwhat\s+(?:specs?|features?|things?|else)\s+(?:actually\s+|really\s+)?(?:matters?|count)\b|\bmatters?\s+most\b|"
    r"\boverkill\b|\bworth\s+(?:it|the money|paying)\b|\bhow\s+\w+\s+(?:does|do|should)\s+(?:a|an|the|my)\s+[\w\s]{2,30}?"
    r"\s+(?:need|have)\s+to\s+be\b", re.I)
_VERSUS = re.compile(r"\b(?:vs\.?|versus)\b|还是.+好|和.+哪种", re.I)
# "the priciest one here", "the cheapest of them": a superlative of the list
_OF_THE_LIST = re.compile(r"\b(?:one|ones)\s+(?:here|of\s+(?:these|them|those))\b|\bof\s+(?:these|them|those)\b|"
                          r"\bhere\b|这几|这些|里面|当中|其中", re.I)
# superlatives the records answer by code: (fact, lowest?) for each way of asking
_SUPERLATIVES: tuple[tuple[str, bool, re.Pattern[str]], ...] = (
    ("price", True, re.compile(r"\b(?:cheapest|least expensive|lowest price|costs? the least|most affordable|"
                               r"best value|budget|cheaper|less expensive)\b|最便宜|最实惠|价格最低|最划算|最省钱|"
                               r"哪[个款本台件双]更?便宜", re.I)),
    ("price", False, re.compile(r"\b(?:most expensive|priciest|highest price|costs? the most|more expensive|pricier)\b|最贵|"
                                r"价格最高|哪[个款本台件双]更?贵", re.I)),
    ("rating", False, re.compile(r"\b(?:best|highest|top)[- ]rated\b|\bbest reviews?\b|\b(?:highest|best|top) rating\b|"
                                 r"\bmost popular\b|\b(?:better|higher)[- ]rated\b|口碑最好|评分最高|评价最好|好评最多|最受欢迎|"
                                 r"评分(?:更)?高|口碑更好", re.I)),
    ("stock", False, re.compile(r"\bmost (?:in stock|stock|available)\b|\bmost of\b.{0,20}\bin stock\b|现货最多|库存最多|货最多",
                               re.I)),
    ("weight", True, re.compile(r"\blightest\b|\bleast heavy\b|\blighter\b|最轻|更轻|重量最轻|哪[个款台双]轻", re.I)),
    ("weight", False, re.compile(r"\bheaviest\b|\bheavier\b|最重|更重|哪[个款台双]重", re.I)),
    ("capacity", False, re.compile(r"\b(?:biggest|largest|most) (?:capacity|volume)\b|\bholds? the most\b|容量最大|"
                                   r"最大容量|装得最多", re.I)),
)
MAX_PICKS = 2
# "which has the most RAM?", "the biggest SSD", "哪个内存最大": the most of what a title states with a number
_MOST_EN = re.compile(r"\b(?:most|biggest|largest|highest|greatest|more|bigger|larger|higher)\s+(?P<w>[a-z][a-z-]+)", re.I)
_MOST_ZH = re.compile(r"(?P<w>[\u4e00-\u9fff]{2})(?:最大|最多|最高|更大|更多|更高|大一点|多一点|高一点|大一些|多一些|高一些)")
_SPEC = re.compile(r"(\d+(?:\.\d+)?)\s*(tb|gb|mb|mah|w|hz|mp|\"|in|inch|cm)?\b", re.I)
_SPEC_UNITS = {"tb": 1024.0, "mb": 1 / 1024}


@dataclass(frozen=True)
class Criterion:
    """What a question about the list asks the products to be: a superlative of one fact (``fact``,
    ``lowest``), or ``words`` (BM25 tokens, with the English of Chinese words) their facts should hold, as
    the shopper put it (``text``)."""

    text: str
    words: tuple[str, ...] = ()
    fact: str | None = None
    lowest: bool = False


def asks_about_shown(text: str) -> bool:
    """Whether ``text`` asks about the products on screen as a list, or for buying advice."""
    if not text:
        return False
    m = _WHICH_EN.search(text)
    if m and not (m.group("noun") and m.group("noun").lower() in {"payment", "payments", "country", "countries",
                                                                    "courier", "method", "methods", "card", "cards"}):
        return True
    if any(pattern.search(text) for _, _, pattern in _SUPERLATIVES) and _OF_THE_LIST.search(text):
        return True
    return bool(_WHICH_ZH.search(text) or _GUIDANCE.search(text))


def compares_named(text: str, ordinals: Sequence[int]) -> bool:
    """Whether ``text`` names two or more shown products and asks which has more or less of a fact ("is the 1st
    or the 2nd one lighter?", "第一个跟第三个比，哪个便宜？"), which the catalog answers, not a comparison table."""
    return len(ordinals) >= 2 and any(pattern.search(text) for _, _, pattern in _SUPERLATIVES)


def criterion_of(text: str, vocabulary: frozenset[str] = frozenset()) -> Criterion:
    """What ``text`` asks the shown products to be; a Chinese word also asks for its English words that
    ``vocabulary`` (the shown products' tokens) holds (防水: "waterproof")."""
    # the superlative asked first ("which is the lightest? budget airlines are strict": the weight, not the price)
    asked = [(m.start(), fact, lowest) for fact, lowest, pattern in _SUPERLATIVES if (m := pattern.search(text))]
    if asked:
        _, fact, lowest = min(asked, key=lambda a: a[0])
        return Criterion(text=phrase_of(text), fact=fact, lowest=lowest)
    return Criterion(text=phrase_of(text), words=question_words(text, vocabulary))


def answer(ctx: DialogueContext, turn: Turn, ordinals: Sequence[int] = ()) -> list[Reply]:
    """The answer to a question about the shown products, or about those of ``ordinals`` when it names two or
    more ("which is cheaper, the first or the third?"); the list and its page stay as they were."""
    lang = turn.lang
    shown = list(turn.state.get("shown") or [])
    offset = int(turn.state.get("offset", 0))
    wanted = list(ordinals) if len(ordinals) >= 2 else list(range(offset + 1, offset + len(shown) + 1))
    numbered = pick_numbered(ctx, turn, wanted) if shown else None
    if not numbered:
        # nothing on screen, or a position that is not ("1 or 3" with one product shown)
        return [Reply(say("which_one", lang, n=len(shown)) if shown else say("no_search", lang))]
    text = turn.text or ""
    superlative = any(pattern.search(text) for _, _, pattern in _SUPERLATIVES)  # "the priciest one, is it worth it?"
    if _GUIDANCE.search(text) and not superlative and len(ordinals) < 2 and (not _WHICH_EN.search(text) or _VERSUS.search(text)):
        # "down vs synthetic filling - which should I go for?" weighs two kinds of thing, not the shown products
        replies = [_guidance(numbered, lang)]
        writer = ctx.product_writer
        if writer is not None and ctx.model_advice:
            # a model may add general advice, marked as general: checked against no product, it can state no
            # price, brand or number; the shop's facts above stand without it
            general = Reply("")

            async def write(on_text: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
                assert writer is not None
                r = await writer.guidance(text, lang, on_text=on_text)
                return (say("advice_general", lang, text=r.text) if r.text else ""), {"kind": "guidance", **r.to_log()}

            turn.pending.append(Pending("guidance", general, write))
            replies.append(general)
        return replies
    held = [(n, p, product_facts(p)) for n, p in numbered]  # read once: the criterion's words and the picks
    vocabulary = frozenset(t for _, _, facts in held for _, toks in facts for t in toks)
    c = criterion_of(text, vocabulary)
    if c.fact is not None:
        return [_superlative(numbered, c, lang)]
    most = _spec_superlative(numbered, text, vocabulary, lang)
    if most is not None:
        return [most]
    reply, picked = _best_for(held, c, turn, lang, ctx.engine.closeness)
    replies = [reply]
    writer = ctx.product_writer if ctx.model_advice else None
    if writer is not None and picked:
        # the facts go out at once; the model may add a sentence about them that answers the question, checked
        # against the same records (a claim they do not hold, or a sentence about something else, is not sent)
        replies.append(closing_line(turn, writer, text, [p.to_record() for _, p in numbered], lang, text, "advice"))
    return replies


def _superlative(numbered: Sequence[tuple[int, Product]], c: Criterion, lang: str) -> Reply:
    assert c.fact is not None
    valued = [(n, p, v) for n, p in numbered if (v := _value(p, c.fact)) is not None]
    if not valued:
        return Reply(say("advice_no_fact", lang, fact=attribute_name(c.fact, lang)))
    best = min(v for _, _, v in valued) if c.lowest else max(v for _, _, v in valued)
    tied = [(n, p) for n, p, v in valued if v == best][:MAX_PICKS]
    picks = "; ".join(_named(shown, c.fact, lang) for shown in tied)
    key = f"advice_{c.fact}_{'low' if c.lowest else 'high'}"
    return Reply(say(key, lang, picks=picks))


def _spec_superlative(numbered: Sequence[tuple[int, Product]], text: str, vocabulary: frozenset[str],
                      lang: str) -> Reply | None:
    """The shown products with the most of a spec their titles state with a number ("which has the most RAM?":
    "32GB RAM" over "16GB RAM"), or None when the question asks for no such most, or no title states it."""
    m = _MOST_EN.search(text) or _MOST_ZH.search(text)
    if m is None:
        return None
    words = set(question_words(m.group("w"), vocabulary)) & vocabulary
    valued = []
    for n, p in numbered:
        # the title's specs ("16GB RAM"), then the memory, storage and screen measures its record states ("128GB
        # of storage" of a description)
        for part in [*p.title.split(",")[1:], *measures(p, "storage"), *measures(p, "screen")]:
            if words & set(tokenize(part)) and (v := _SPEC.search(part)) is not None:
                valued.append((float(v.group(1)) * _SPEC_UNITS.get((v.group(2) or "").lower(), 1.0), n, p, part.strip()))
                break
    if not valued:
        return None
    best = max(v for v, _, _, _ in valued)
    top = [(n, p, part) for v, n, p, part in valued if v == best]
    if len(top) == len(numbered) > 1:
        return Reply(say("advice_spec_same", lang, value=top[0][2]))
    picks = "; ".join(f"{n}. {p.title_for(lang)} ({part})" for n, p, part in top[:MAX_PICKS])
    return Reply(say("advice_spec_high", lang, picks=picks))


def _best_for(held: Sequence[tuple[int, Product, list[tuple[str, frozenset[str]]]]], c: Criterion, turn: Turn,
              lang: str, closeness: Callable[[str, Sequence[str]], np.ndarray | None]) -> tuple[Reply, bool]:
    """The shown products (``held``: each with its number and its facts) whose facts hold the criterion's words,
    and whether any does; where none does, the one whose catalog text ``closeness`` finds nearest in meaning to
    the question ("splashed at the pool": the speaker whose title says "Waterproof"), named as only that."""
    numbered = [(n, p) for n, p, _ in held]
    searched = searched_words(turn.state, [p for _, p in numbered])
    words = [w for w in c.words if w not in searched]
    scored = []
    for n, p, facts in held:
        hits = [fact_reason(fact, word, i == 0 or fact == p.titles.get("zh"), lang)
                for word in words for i, (fact, toks) in enumerate(facts) if word in toks]
        if hits:
            scored.append((len({w for w in words if any(w in toks for _, toks in facts)}), n, p, list(dict.fromkeys(hits))))
    if not words or not scored:
        # said plainly, then the closest the records come: the product whose catalog text is nearest in meaning
        # to the question (no fact says it fits, and the reply says so), else the best rated and the cheapest
        near = closeness(turn.text or "", [p.sku for _, p in numbered]) if len(numbered) > 1 else None
        if near is not None:
            n, p = numbered[int(np.argmax(near))]
            closest = say("advice_nearest", lang, pick=f"{n}. {p.title_for(lang)}")
        else:
            rated = [(v, n, p) for n, p in numbered if (v := _value(p, "rating")) is not None]
            closest = say("advice_closest", lang,
                          rated=_named(max(rated, key=lambda r: (r[0], -r[1]))[1:], "rating", lang) if rated else "-",
                          cheap=_named(min(numbered, key=lambda np_: (np_[1].price, np_[0])), "price", lang))
        reply = Reply(say("advice_none" if c.text else "advice_none_plain", lang, criterion=c.text)
                      + ("" if lang == "zh" else " ") + closest)
        query = " ".join(filter(None, [c.text, str(turn.state.get("query") or "")])).strip()
        if c.text and query:
            reply.buttons.append(Button(say("btn_search_for", lang, query=query), f"search:{query}"))
        return reply, False
    scored.sort(key=lambda s: (-s[0], s[1]))
    top = [s for s in scored if s[0] == scored[0][0]][:MAX_PICKS]
    picks = "; ".join(f"{n}. {p.title_for(lang)} ({'; '.join(hits[:2])})" for _, n, p, hits in top)
    return Reply(say("advice_best" if c.text else "advice_best_plain", lang, criterion=c.text, picks=picks)), True


def _guidance(numbered: Sequence[tuple[int, Product]], lang: str) -> Reply:
    products = [p for _, p in numbered]
    lines = [say("advice_guidance_head", lang)]
    prices = [p.price for p in products]
    currency = products[0].currency
    lines.append(f"- {say('row_price', lang)}: {format_price(min(prices), currency)} - {format_price(max(prices), currency)}")
    brands = list(dict.fromkeys(p.brand for p in products if p.brand))
    if brands:
        lines.append(f"- {say('row_brand', lang)}: {', '.join(brands)}")
    names: list[str] = []
    for p in products:
        names += [a for a in p.attributes if a not in names and a not in {"rating", "stock_count"}]
    for a in names:
        values = list(dict.fromkeys(attribute_value(a, v, lang) for p in products for v in p.attr(a)))
        if values:
            lines.append(f"- {attribute_name(a, lang)}: {', '.join(values[:8])}")
    ratings = [float(r) for p in products for r in p.attr("rating")[:1] if _number(r) is not None]
    if ratings:
        lines.append(f"- {say('row_rating', lang)}: {min(ratings)} - {max(ratings)}")
    lines.append(say("advice_guidance_tail", lang))
    return Reply("\n".join(lines))


def _named(numbered: tuple[int, Product], fact: str, lang: str) -> str:
    n, p = numbered
    return f"{n}. {p.title_for(lang)} ({_shown_value(p, fact, lang)})"


def _value(p: Product, fact: str) -> float | None:
    if fact == "price":
        return p.price
    if fact == "stock":
        return float(p.stock)
    if fact == "rating":
        return _number(p.attr("rating")[0]) if p.attr("rating") else None
    found = measures(p, fact)
    return _in_base_unit(found[0]) if found else None


def _shown_value(p: Product, fact: str, lang: str) -> str:
    if fact == "price":
        return format_price(p.price, p.currency)
    if fact == "stock":
        return say("details_stock", lang, stock=p.stock).rstrip("。.") if p.stock > 0 else say("details_oos", lang).rstrip("。.")
    if fact == "rating":
        return f"{p.attr('rating')[0]}/5"
    return measures(p, fact)[0]


_UNITS = {"kg": 1000.0, "g": 1.0, "lb": 453.6, "lbs": 453.6, "oz": 28.35, "l": 1000.0, "litre": 1000.0, "litres": 1000.0,
          "liter": 1000.0, "liters": 1000.0, "ml": 1.0, "qt": 946.4, "quart": 946.4, "quarts": 946.4}


def _in_base_unit(measure: str) -> float | None:
    number, _, unit = measure.partition(" ")
    value = _number(number)
    return None if value is None else value * _UNITS.get(unit.lower(), 1.0)


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return None
