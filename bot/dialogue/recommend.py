"""The recommendation service: products for this shopper, and what goes with a product.

Both come from the shared :class:`~retrieval.recommend.recommender.Recommender` (the manager keeps one
over the current catalog and everyone's log) and show one card per product with the recommender's own
one-line reason. It is apart from the search and product services because its input is the shopper's
history or a product's complements, not words or a product on screen, and because its cards are logged
as the recommender's (``turn.query == "recommend"``), so the retraining code credits the right model. A gift
for someone else is not a recommendation from the shopper's history; it goes to the search service.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from bot.dialogue import search
from bot.dialogue.gifts import read_gift
from bot.dialogue.messages import say
from bot.dialogue.replies import Reply
from bot.dialogue.turn import DialogueContext, Turn, cards_reply, pick
from retrieval.catalog import Product
from retrieval.lexical import has_cjk, tokenize
from retrieval.query import ParsedQuery
from retrieval.search import Hit

__all__ = ["complements", "recommend"]


def recommend(ctx: DialogueContext, turn: Turn) -> list[Reply]:
    """Products chosen from the shopper's own history in the store (retrieval/recommend/recommender.py), each card with
    its one-line reason; popular, varied ones for a new shopper; complements after a purchase. A gift request
    ("recommend a gift for my girlfriend", "推荐一个礼物") is about someone else: searched by what it means."""
    lang = turn.lang
    gift = read_gift(turn.text)
    if gift is not None:
        u = ctx.understand(turn.text, {})  # the budget or colour it names, and the words left for an interest
        gift = read_gift(turn.text, u.query) or gift
        turn.intent = "search"
        return search.show_gift(ctx, turn, gift, u.filters)
    read = getattr(ctx.store, "interactions", None)
    history = list(read(turn.user_id, limit=200)) if read is not None else []
    recs = ctx.recommender().for_user(history, k=ctx.page_size)
    turn.state.update({"mode": "recommend", "shown": [r.sku for r in recs], "offset": 0})
    turn.query = "recommend"
    hits = [Hit(r.product, r.score, i + 1, {}) for i, r in enumerate(recs)]
    reply = cards_reply(turn, say("recommend_head", lang), hits, len(hits), 0)
    reply.cards = [replace(c, reason=r.reason) for c, r in zip(reply.cards, recs, strict=True)]
    return [reply]


def _names(ctx: DialogueContext, words: str, p: Product) -> bool:
    """Whether ``words`` name ``p``: a word of its titles or category, or (Chinese words) its kind."""
    if set(tokenize(words)) & set(tokenize(" ".join([p.title, *p.titles.values(), *p.category]))):
        return True
    rows = ctx.engine.kinds.rows(words) if has_cjk(words) and ctx.engine.kinds else None
    return rows is not None and ctx.engine.by_sku.get(p.sku, -1) in set(rows.tolist())


def complements(ctx: DialogueContext, turn: Turn, ordinals: Sequence[int], words: str) -> list[Reply] | None:
    """What goes with one product ("I bought a laptop, what else do I need?"): the product is the shown
    one the shopper points at, else the best match for the words they named, else the one on screen. None when
    the words name nothing the shop sells ("bike accessories" in a shop without bikes): a search for them."""
    lang = turn.lang
    anchor: Product | None = None
    picked = pick(ctx, turn, ordinals) if ordinals else None
    if picked:
        anchor = picked[0]
    elif words:
        # understood as a search would be ("laptop" is the laptops category, not a laptop sleeve)
        named = ctx.understand(words, {})
        query = named.query or words
        hits = ctx.engine.search(ParsedQuery(text=query, filters=named.filters, raw=query), k=1).hits
        anchor = hits[0].product if hits else None
        if anchor is not None and not _names(ctx, query, anchor):
            return None  # the best match is no such product (an ab roller wheel for "bike")
    else:
        on_screen = turn.state.get("focus") or next(iter(turn.state.get("shown") or []), None)
        anchor = ctx.engine.product(str(on_screen)) if on_screen else None
    if anchor is None:
        turn.intent = "other"
        return [Reply(say("complements_which", lang))]
    recs = ctx.recommender().complements(anchor.sku, k=ctx.page_size)
    title = anchor.title_for(lang)
    if not recs:
        return [Reply(say("complements_none", lang, title=title))]
    turn.state.update({"mode": "recommend", "shown": [r.sku for r in recs], "offset": 0, "focus": None})
    turn.query = "recommend"
    hits = [Hit(r.product, r.score, n + 1, {}) for n, r in enumerate(recs)]
    reply = cards_reply(turn, say("complements_head", lang, title=title), hits, len(hits), 0)
    reply.cards = [replace(c, reason=r.reason) for c, r in zip(reply.cards, recs, strict=True)]
    return [reply]
