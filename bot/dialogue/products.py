"""The product service: one product's details, a comparison table, products like one, and its stock and price.

These are the answers about products already on screen ("tell me about the second one", "compare 1 and
3", "more like the first one in blue", "is it in stock?"). Every fact in them is rendered from the
catalog record by code; a question the record does not answer by itself goes to the language model,
which answers from that same record. It is apart from the search service (bot/dialogue/search.py)
because it starts from a product, not from what the shopper typed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from bot.dialogue.facts import QUESTION, fact_answer, facts_holding, rule_answer, searched_words, stock_line
from bot.dialogue.messages import aside, attribute_name, attribute_value, say
from bot.dialogue.replies import Button, Reply, card_from_product, format_price
from bot.dialogue.turn import (
    DialogueContext,
    Pending,
    Turn,
    cards_reply,
    filters_from_dict,
    filters_to_dict,
    pick,
    pick_numbered,
)
from retrieval.query import Filters
from retrieval.search import Hit

__all__ = ["asks_about_it", "compare", "details", "similar"]

_IT = re.compile(r"\b(?:it|this one|that one|this|that)\b|它|这[个款件双台支本条只口把顶套瓶盒包部副]|那[个款件双台支副]|"
                 r"第[一二三四五六七八九十\d]+[个款件双台支本条只口把顶套瓶盒包部副张]", re.I)


def asks_about_it(text: str) -> bool:
    """A question about "it" / "this one" ("is it machine washable?"): about the product in focus."""
    return bool(QUESTION.search(text) and _IT.search(text))


def details(ctx: DialogueContext, turn: Turn, ordinals: Sequence[int], sku: str | None = None) -> list[Reply]:
    lang = turn.lang
    if sku:
        p = ctx.engine.product(sku)
        picked = [p] if p else None
    else:
        shown = turn.state.get("shown") or []
        if not shown:
            return [Reply(say("no_search", lang))]
        picked = pick(ctx, turn, ordinals[:1] or [1]) if (ordinals or len(shown) == 1) else None
        if picked is None:
            # "how heavy is this one?" with five on screen: what each one's record says, rather than which one
            each = _for_each(ctx, turn) if not ordinals else None
            return [each or Reply(say("which_one", lang, n=len(shown)))]
    if not picked:
        return [Reply(say("unknown_product", lang))]
    p = picked[0]
    turn.query = None
    lines = [p.title_for(lang)]
    facts = [format_price(p.price, p.currency)]
    if p.brand:
        facts.append(p.brand)
    if p.category:
        facts.append(" > ".join(p.category))
    lines.append(" · ".join(facts))
    for name, values in p.attributes.items():
        if name in {"rating"}:
            continue
        lines.append(f"{attribute_name(name, lang)}: {', '.join(attribute_value(name, v, lang) for v in values)}")
    rating = p.attr("rating")
    if rating:
        lines.append(f"{say('row_rating', lang)}: {rating[0]}/5")
    lines.append(stock_line(p, lang))
    if p.description:
        desc = p.description if len(p.description) <= 600 else p.description[:600].rsplit(" ", 1)[0] + " …"
        lines.append(desc)
    turn.state["focus"] = p.sku
    buttons = [Button(say("btn_similar", lang), f"similar:{p.sku}"),
               Button(say("btn_up", lang), f"up:{turn.turn_id}:{p.sku}"),
               Button(say("btn_down", lang), f"down:{turn.turn_id}:{p.sku}")]
    replies = [Reply("\n".join(lines), cards=[card_from_product(p, 1, lang)], buttons=buttons)]
    searched = searched_words(turn.state, [p])
    known = fact_answer(turn.text or "", p, lang) or facts_holding(turn.text or "", p, lang, searched)
    if known:
        # the catalog answers it (a fact asked for, or the facts that hold the question's words): no model, and
        # never "the product information does not say"
        replies.append(Reply(known))
        return replies
    writer = ctx.product_writer if ctx.model_advice else None
    if writer is None and turn.text:
        # no model (or none trusted with its own words here): the record holds nothing the question asks about,
        # and the answer says so
        ruled = rule_answer(turn.text, p, lang, searched)
        if ruled:
            replies.append(Reply(ruled[0], buttons=[Button(say("btn_handoff", lang), "handoff")]))
        return replies
    if turn.text and QUESTION.search(turn.text):
        # "is the second one waterproof?": the details above are facts; the model answers in words
        qa = Reply("")
        question, record = turn.text, p.to_record()
        unfound = (rule_answer(question, p, lang, searched) or ("", False))[0]

        async def write(on_text: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
            assert writer is not None
            # what code says when the model has no answer from the record: it could not find one there either
            r = await writer.answer(question, record, lang, on_text=on_text, fallback=unfound)
            text = say("qa_not_listed", lang) if r.source == "dont_know" else r.text
            if r.source == "dont_know":
                qa.buttons.append(Button(say("btn_handoff", lang), "handoff"))
            return text, {"kind": "product_qa", "sku": record.get("sku"), **r.to_log()}

        turn.pending.append(Pending("product_qa", qa, write))
        replies.append(qa)
    return replies


def _for_each(ctx: DialogueContext, turn: Turn) -> Reply | None:
    """A question about "this one" while several are shown, answered for each from its record (one line each);
    None when it is no question code can answer that way."""
    text, lang = turn.text or "", turn.lang
    shown = list(turn.state.get("shown") or [])
    offset = int(turn.state.get("offset", 0))
    numbered = pick_numbered(ctx, turn, list(range(offset + 1, offset + len(shown) + 1))) or []
    searched = searched_words(turn.state, [p for _, p in numbered])
    answers = [(n, p, a) for n, p in numbered if (a := rule_answer(text, p, lang, searched)) is not None]
    if not answers or len(answers) < len(numbered):
        return None
    if not any(found for _, _, (_, found) in answers):
        return Reply(say("each_missing", lang))
    lines = [say("each_head", lang)] + [f"{n}. {p.title_for(lang)}: {line}" for n, p, (line, _) in answers]
    return Reply("\n".join(lines))


def compare(ctx: DialogueContext, turn: Turn, ordinals: Sequence[int]) -> list[Reply]:
    lang = turn.lang
    shown = turn.state.get("shown") or []
    if not shown:
        return [Reply(say("no_search", lang))]
    if len(ordinals) < 2:
        if len(shown) == 2 and not ordinals:
            ordinals = [1, 2]
        else:
            return [Reply(say("compare_two", lang))]
    numbered = pick_numbered(ctx, turn, ordinals[:4])
    if numbered is None:
        return [Reply(say("which_one", lang, n=len(shown)))]
    # numbered as on screen ("1 or 3" shows 1 and 3; "6 and 7" on the second page shows 6 and 7)
    numbers, picked = [n for n, _ in numbered], [p for _, p in numbered]
    header = [""] + [f"{n}. {p.title_for(lang)}" for n, p in numbered]
    rows = [header,
            [say("row_price", lang)] + [format_price(p.price, p.currency) for p in picked],
            [say("row_brand", lang)] + [p.brand or "-" for p in picked],
            [say("row_category", lang)] + [p.category[-1] if p.category else "-" for p in picked]]
    names: list[str] = []
    for p in picked:
        names += [a for a in p.attributes if a not in names]
    for a in names:
        label = say("row_rating", lang) if a == "rating" else attribute_name(a, lang)
        rows.append([label] + [", ".join(attribute_value(a, v, lang) for v in p.attr(a)) or "-" for p in picked])
    rows.append([say("row_stock", lang)] + [(str(p.stock) if p.stock_counted else say("in_stock", lang)) if p.stock > 0
                                            else say("details_oos", lang) for p in picked])
    turn.query = None
    cards = [card_from_product(p, n, lang) for n, p in numbered]
    return [Reply(say("compare_head", lang), cards=cards, table=rows,
                  buttons=[Button(say("btn_details", lang) + f" {n}", f"details:{p.sku}") for n, p in zip(numbers, picked, strict=True)])]


def similar(ctx: DialogueContext, turn: Turn, ordinals: Sequence[int], sku: str | None = None, offset: int = 0,
            filters: Filters | None = None) -> list[Reply]:
    """Products like a shown one (or ``sku``); with ``filters`` ("the second one in blue") only those in
    that colour or size. The filters stay for the next page."""
    lang = turn.lang
    if filters is None and sku is not None and turn.state.get("mode") == "similar" and offset:
        filters = filters_from_dict(turn.state.get("anchor_filters"))
    filters = None if filters is None or filters.is_empty() else filters
    if sku is None:
        shown = turn.state.get("shown") or []
        if not shown:
            return [Reply(say("no_search", lang))]
        picked = pick(ctx, turn, ordinals[:1]) if ordinals else (
            [p] if (p := ctx.engine.product(str(turn.state.get("focus") or ""))) else None)
        if not picked:
            return [Reply(say("which_one", lang, n=len(shown)))]
        sku = picked[0].sku
    anchor = ctx.engine.product(sku)
    if anchor is None:
        return [Reply(say("unknown_product", lang))]
    if filters is not None and not filters.categories and anchor.category:
        # "the second one in red": the same kind of product in red, not anything red that looks alike
        filters = replace(filters, categories=frozenset({" > ".join(c.lower() for c in anchor.category)}))
    hits = ctx.engine.similar(sku, k=offset + ctx.page_size, filters=filters)[offset:]
    if not hits:
        if filters is not None and not offset:
            turn.zero_results = True
            return [Reply(say("no_results", lang, query=anchor.title_for(lang), understood=aside(filters.describe(lang), lang)))]
        return [Reply(say("no_more", lang))]
    turn.state.update({"mode": "similar", "anchor": sku, "offset": offset, "shown": [h.sku for h in hits],
                       "anchor_filters": filters_to_dict(filters) if filters is not None else None})
    turn.query = f"similar:{sku}"
    hits = [Hit(h.product, h.score, offset + i + 1, h.signals) for i, h in enumerate(hits)]
    head = say("similar_head", lang, title=anchor.title_for(lang))
    return [cards_reply(turn, head, hits, offset + len(hits) + ctx.page_size, offset,
                        reason=f"like {anchor.sku}")]
