"""The search service: a new search, refining it ("cheaper", "in blue"), the next page, and the price nudges.

What the shopper asked for is kept in the turn's state (words, filters, sort, offset), so a refinement
narrows the search on screen and "more" pages through it in a later turn, on any worker. Everything
here turns a state into a page of cards from the engine; the counts and prices in the replies are the
engine's. It is apart from the manager because it is the one place that knows how a search is carried
across turns; the products it shows are described by bot/dialogue/products.py.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from bot.dialogue import gifts
from bot.dialogue.gifts import GiftRequest
from bot.dialogue.messages import aside, say
from bot.dialogue.nlu.slots import refinement_extra
from bot.dialogue.products import similar
from bot.dialogue.replies import Reply
from bot.dialogue.turn import DialogueContext, Turn, cards_reply, closing_line, filters_from_dict, filters_to_dict
from bot.dialogue.understanding import Understanding
from retrieval.query import Filters, ParsedQuery
from retrieval.search import Hit, SearchResult

__all__ = ["POOL", "more", "refine", "run_search", "search", "show_gift"]

POOL = 100  # how many of a search's best results can count as relevant when a price nudge narrows them
_CHEAPER = re.compile(r"\b(?:cheaper|less expensive|lower price[sd]?|more affordable|budget|lower)\b|便宜|实惠|低一点|低点", re.I)
_PRICIER = re.compile(r"\b(?:more expensive|pricier|higher[- ]end|premium|fancier|better quality)\b|贵一点|贵点|高端|更好", re.I)


def search(ctx: DialogueContext, turn: Turn, u: Understanding) -> list[Reply]:
    gift = gifts.read_gift(turn.text, u.query) or _gift_follow_up(turn)
    if gift is not None:
        return show_gift(ctx, turn, gift, u.filters)
    if not u.query and u.filters.is_empty() and not u.sort:
        turn.intent = "other"
        return [Reply(say("no_search", turn.lang))]
    turn.state.update({"mode": "search", "query": u.query, "filters": filters_to_dict(u.filters),
                       "sort": u.sort or "relevance", "offset": 0, "anchor": None, "bounded": False,
                       "focus": None, "gift": None})
    return run_search(ctx, turn, first=True)


def show_gift(ctx: DialogueContext, turn: Turn, gift: GiftRequest, filters: Filters) -> list[Reply]:
    """A gift or occasion request (bot/dialogue/gifts.py): a search for the interest the shopper named, else
    ideas of a few kinds of products that suit the person; either way one sentence first says what was
    assumed and what would narrow it."""
    lang = turn.lang
    turn.state.update({"gift": gift.to_dict(), "filters": filters_to_dict(filters), "sort": "relevance", "offset": 0,
                       "anchor": None, "bounded": False, "focus": None})
    if gift.interest:
        whom, their, them = gifts.pronouns(gift, lang)
        lead = say("gift_interest", lang, occasion=_occasion(gift, lang), whom=whom or ("您" if lang == "zh" else "someone"),
                   interest=gift.interest, understood=aside(filters.describe(lang), lang), their=their, them=them)
        turn.state.update({"mode": "search", "query": gifts.search_words(gift)})
        return run_search(ctx, turn, first=True, lead=lead)
    turn.state.update({"mode": "gift", "query": None})
    return _gift_page(ctx, turn, first=True)


def _gift_follow_up(turn: Turn) -> GiftRequest | None:
    """"she likes hiking" after gift ideas: the same gift, for that interest."""
    before = GiftRequest.from_dict(turn.state.get("gift"))
    interest = gifts.interest_of(turn.text) if before is not None else ""
    return replace(before, interest=interest) if before is not None and interest else None


def _occasion(gift: GiftRequest, lang: str) -> str:
    return gift.occasion if lang == "zh" or not gift.occasion else gift.occasion + " "


def _gift_page(ctx: DialogueContext, turn: Turn, *, first: bool) -> list[Reply]:
    """A page of gift ideas for the gift in the state (no interest named)."""
    st, lang = turn.state, turn.lang
    gift = GiftRequest.from_dict(st.get("gift")) or GiftRequest()
    f = filters_from_dict(st.get("filters"))
    offset = int(st.get("offset", 0))
    hits, total, kinds = gifts.gift_hits(ctx, gift, f, offset, ctx.page_size)
    turn.query = None  # a mix of kinds, not a search for words: no training data for the search ranker
    if not hits:
        if offset:
            st["offset"] = max(0, offset - ctx.page_size)
            return [Reply(say("no_more", lang))]
        turn.zero_results = True
        return [Reply(say("gift_none", lang))]
    st["shown"] = [h.sku for h in hits]
    if first:
        whom, their, _them = gifts.pronouns(gift, lang)
        names = ("、" if lang == "zh" else ", ").join(k.zh if lang == "zh" else k.en for k in kinds)
        head = say("gift_ideas" if whom else "gift_ideas_anyone", lang, occasion=_occasion(gift, lang), whom=whom,
                   kinds=names, understood=aside(f.describe(lang), lang), their=their)
    else:
        head = say("results_more_top", lang, first=offset + 1, last=offset + len(hits))
    reply = cards_reply(turn, head, hits, total, offset)
    reply.cards = [replace(c, reason=k.zh if lang == "zh" else k.en) if (k := gifts.kind_of(h, kinds)) else c
                   for c, h in zip(reply.cards, hits, strict=True)]
    return [reply]


def refine(ctx: DialogueContext, turn: Turn, u: Understanding) -> list[Reply]:
    st = turn.state
    if st.get("mode") == "gift":
        return _refine_gift(ctx, turn, u)
    if st.get("mode") != "search" and not st.get("query"):
        if u.query or not u.filters.is_empty():
            turn.intent = "search"
            return search(ctx, turn, u)
        return [Reply(say("no_search", turn.lang))]
    # what a refinement that finds nothing leaves in place: the results on screen stay the ones the
    # next refinement narrows ("cheaper" with nothing cheaper, then "in blue": blue within the old search)
    saved = {k: st.get(k) for k in ("mode", "query", "filters", "sort", "offset", "bounded")}
    if st.get("mode") != "search":  # refining "similar" or recommendations: go back to the search
        st["mode"] = "search"
    f = filters_from_dict(st.get("filters")).merged(u.filters)
    said = u.query or turn.text
    shown = [p for p in (ctx.engine.product(s) for s in st.get("shown") or []) if p is not None]
    prices = sorted(p.price for p in shown)
    # a price nudge is a bound in the catalog's own currency (the shown prices'), whatever the budget was in
    currency = shown[0].currency if shown else None
    if _CHEAPER.search(said) and prices:
        if prices[0] <= (0.0 if f.min_price is None else f.bound(f.min_price, currency or "USD")) + 0.01:
            st.update(saved)
            return [Reply(say("cheapest_already", turn.lang))]
        f = Filters(**{**_fields(f), "max_price": round(prices[0] - 0.01, 2), "min_price": None, "currency": currency})
        st["bounded"] = True
    elif _PRICIER.search(said) and prices:
        f = Filters(**{**_fields(f), "min_price": round(prices[-1] + 0.01, 2), "max_price": None, "currency": currency})
        st["bounded"] = True
    extra = refinement_extra(u.query)
    if extra and len(extra) > 1:
        st["query"] = f"{st.get('query', '')} {extra}".strip()
    st["filters"] = filters_to_dict(f)
    if u.sort:
        st["sort"] = u.sort
    st["offset"] = 0
    replies = run_search(ctx, turn, first=True, relax=False)
    if turn.zero_results:
        st.update(saved)
        if _CHEAPER.search(said):
            return [Reply(say("cheapest_already", turn.lang))]
    return replies


def _refine_gift(ctx: DialogueContext, turn: Turn, u: Understanding) -> list[Reply]:
    """Narrowing gift ideas: an interest ("she likes hiking") searches for it; a budget, colour or "cheaper"
    narrows the ideas of every kind."""
    st = turn.state
    follow = _gift_follow_up(turn)
    if follow is not None:
        return show_gift(ctx, turn, follow, u.filters)
    f = filters_from_dict(st.get("filters")).merged(u.filters)
    shown = [p for p in (ctx.engine.product(s) for s in st.get("shown") or []) if p is not None]
    prices = sorted(p.price for p in shown)
    if _CHEAPER.search(u.query or turn.text) and prices:
        # ideas of several kinds differ in price by kind: "cheaper" keeps those under the middle of the page
        f = Filters(**{**_fields(f), "max_price": round(prices[len(prices) // 2] - 0.01, 2), "min_price": None,
                       "currency": shown[0].currency})
    elif f == filters_from_dict(st.get("filters")):
        turn.intent = "search"
        st.update({"mode": "search", "gift": None})
        return search(ctx, turn, u)  # nothing to narrow by: the words are a new search
    st.update({"filters": filters_to_dict(f), "offset": 0})
    return _gift_page(ctx, turn, first=True)


def more(ctx: DialogueContext, turn: Turn) -> list[Reply]:
    st = turn.state
    mode = st.get("mode")
    if mode not in {"search", "similar", "gift"}:
        return [Reply(say("no_search", turn.lang))]
    st["offset"] = int(st.get("offset", 0)) + ctx.page_size
    if mode == "similar":
        return similar(ctx, turn, [], sku=st.get("anchor"), offset=st["offset"])
    if mode == "gift":
        return _gift_page(ctx, turn, first=False)
    return run_search(ctx, turn, first=False)


def run_search(ctx: DialogueContext, turn: Turn, *, first: bool, relax: bool = True, lead: str | None = None) -> list[Reply]:
    """The page of the search in ``turn.state``; ``lead``: the first page's heading when it is not the
    count (what a gift search assumed)."""
    st = turn.state
    query = str(st.get("query") or "")
    f = filters_from_dict(st.get("filters"))
    offset = int(st.get("offset", 0))
    pq = ParsedQuery(text=query, filters=f, sort=st.get("sort") or "relevance", raw=query)
    turn.query = _query_label(query, f)
    if st.get("bounded") and query:
        res = _bounded_search(ctx, pq, offset)
    else:
        res = ctx.engine.search(pq, k=ctx.page_size, offset=offset)
    lang = turn.lang
    understood = f.describe(lang)
    if not res.hits and offset > 0:
        st["offset"] = max(0, offset - ctx.page_size)
        return [Reply(say("no_more", lang))]
    if not res.hits:
        turn.zero_results = True
        if relax and not f.is_empty() and query:
            loose = ctx.engine.search(ParsedQuery(text=query, raw=query), k=ctx.page_size)
            if loose.hits:
                st["filters"] = filters_to_dict(Filters())
                st["shown"] = loose.skus
                head = say("no_results_relaxed", lang, query=query, understood=understood)
                return [cards_reply(turn, head, loose.hits, loose.total, 0)]
        label = query or understood
        return [Reply(say("no_results", lang, query=label, understood=aside(understood, lang) if query else ""))]
    st["shown"] = res.skus
    # a count only when it is one: past the candidate pool, "100 products match" would be the pool's size
    if first and lead:
        head = lead
    elif first:
        head = say("results" if res.exhaustive else "results_top", lang, total=res.total,
                   understood=aside(understood, lang))
    else:
        head = say("results_more" if res.exhaustive else "results_more_top", lang, first=offset + 1,
                   last=offset + len(res.hits), total=res.total)
    replies = [cards_reply(turn, head, res.hits, res.total, offset)]
    writer = ctx.product_writer
    if writer is not None and ctx.search_summaries and first and len(res.hits) > 1:
        # the cards go out at once; a closing line about them follows when the model has one; every sentence
        # must be about what the shopper asked ("有货吗？" asks nothing about prices)
        records = [h.product.to_record() for h in res.hits]
        replies.append(closing_line(turn, writer, turn.query or query, records, lang, turn.text, "search_summary"))
    return replies


def _bounded_search(ctx: DialogueContext, pq: ParsedQuery, offset: int) -> SearchResult:
    """A price nudge ("cheaper") among products that are relevant to the search at any price.

    A plain price filter ranks whatever is left: "cheaper running shoes" below the cheapest running
    shoe would list sandals. Here only the search's relevant pool (its top results without a price
    limit) is narrowed by price, so "cheaper" can run out, which is the honest answer.
    """
    loose = replace(pq.filters, min_price=None, max_price=None)
    hits = ctx.engine.search(replace(pq, filters=loose, sort="relevance"), k=POOL).hits
    # relevant = close to the best match (the same floor the engine uses when sorting by price)
    pool = {h.sku for h in hits if h.score >= 0.75 * hits[0].score} if hits else set()
    full = ctx.engine.search(pq, k=POOL)
    kept = [h for h in full.hits if h.sku in pool]
    page = [Hit(h.product, h.score, offset + i + 1, h.signals) for i, h in enumerate(kept[offset: offset + ctx.page_size])]
    return SearchResult(full.query, page, len(kept), offset, full.timings_ms)


def _fields(f: Filters) -> dict[str, Any]:
    return {k: getattr(f, k) for k in ("min_price", "max_price", "currency", "categories", "brands", "colors", "sizes", "in_stock")}


def _query_label(query: str, f: Filters) -> str:
    """How the search is logged: its words plus the filters, so "cheaper" turns are told apart."""
    d = f.describe()
    return f"{query} ({d})" if d and query else query or d
