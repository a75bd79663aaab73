"""Watchlists: "tell me when a red winter coat under $80 is in stock" as a standing search.

A watch is a search kept for later: its words and filters are read by the same understanding a search uses
(the words after the watch phrase, :func:`bot.dialogue.nlu.rules.watch_words`), stored with where to deliver a
notice, and re-run after every reindex (bot/watch.py) against the new index. This module is the dialogue's
part (create, list, cancel, and what a match is); it lives here rather than in bot/watch.py because the
manager routes to it and a channel's next turn builds its pending notices with it, while the delivery
after a reindex, which needs HTTP and settings, sits above the dialogue.

What counts as a match is stricter than what a search shows: a search always ranks the nearest products, a
notice must not announce "a red mug" for "red winter coat". A product matches when it passes the filters
(always including in stock: a notice is about something one can buy) and is of the kind the words name
(the catalog's categories), or, when they name no kind, holds at least half of the words (Chinese words
through their English translations).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

from bot.dialogue.messages import aside, say
from bot.dialogue.nlu.rules import watch_words
from bot.dialogue.replies import Button, Reply, card_from_product
from bot.dialogue.turn import DialogueContext, Turn, cards_reply, filters_from_dict, filters_to_dict
from bot.dialogue.understanding import Understanding
from bot.store.records import StoreUnavailable, WatchRecord
from retrieval.catalog import Product
from retrieval.lexical import has_cjk
from retrieval.query import Filters, ParsedQuery
from retrieval.search import SearchEngine

__all__ = ["POOL", "WatchStore", "cancel", "create", "describe", "listing", "matches", "notice", "pending_replies"]

POOL = 50  # the best results of a watch's search that are checked for a match (a notice names a handful)
UNWATCH = "unwatch"  # the Cancel button's payload kind: "unwatch:<watch id>"


class WatchStore(Protocol):
    """The store's watchlist methods (bot/store/database.py implements them)."""

    def add_watch(self, user_id: str, *, channel: str, chat_id: str, language: str, query: str,
                  filters: dict[str, Any], expires_at: datetime, notified: Sequence[str] = ()) -> WatchRecord: ...
    def watches(self, user_id: str) -> list[WatchRecord]: ...
    def cancel_watch(self, user_id: str, watch_id: str) -> bool: ...
    def take_pending_watches(self, user_id: str) -> list[WatchRecord]: ...


def _store(ctx: DialogueContext) -> WatchStore:
    return cast(WatchStore, ctx.store)


def _now() -> datetime:
    return datetime.now(UTC)


def describe(query: str, filters: Filters, lang: str) -> str:
    """A watch as the shopper reads it: "winter coat (red, under 80, in stock)"."""
    f = filters.describe(lang)
    return f"{query}{aside(f, lang)}" if query else f


def _date(at: datetime) -> str:
    return f"{at:%Y-%m-%d}"


def matches(engine: SearchEngine, query: str, filters: Filters) -> list[Product]:
    """The products of ``engine`` a watch for ``query`` + ``filters`` finds, best first (see the module's doc)."""
    f = replace(filters, in_stock=True)
    res = engine.search(ParsedQuery(text=query, filters=f, sort="relevance", raw=query), k=POOL)
    if not query.strip():
        return [h.product for h in res.hits]
    kind = engine.kinds.rows(query) if engine.kinds else None
    cjk = has_cjk(query)
    out = []
    for h in res.hits:
        s = h.signals
        if kind is not None:
            ok = s.get("category", 0.0) > 0
        else:
            ok = s.get("coverage_all", 0.0) >= 0.5 or (cjk and any(v > 0 for k, v in s.items() if k.startswith("bm25_")))
        if ok:
            out.append(h.product)
    return out


def create(ctx: DialogueContext, turn: Turn, u: Understanding) -> list[Reply]:
    """A new watch from the turn's words; the question back when they name nothing, a refusal past the limit.
    A notice goes where the shopper wrote from: the store's user id is "<channel>:<the channel's own id>"."""
    lang = turn.lang
    channel, _, chat_id = turn.user_id.partition(":")
    words = watch_words(turn.text)
    if words is None:  # Rasa's NLU said "watch" in words of its own: its query and filters are the request
        query, filters = u.query, u.filters
    elif words:
        read = ctx.understand(words, {})
        query, filters = read.query, read.filters
    else:
        query, filters = "", Filters()
    if not query and not filters.brands:
        return [Reply(say("watch_ask", lang))]
    days, limit = ctx.watch_days, ctx.watch_limit
    store = _store(ctx)
    try:
        now = _now()
        active = [w for w in store.watches(turn.user_id) if w.active(now)]
        if len(active) >= limit:
            return [Reply(say("watch_limit", lang, n=len(active)))]
        found = matches(ctx.engine, query, filters)
        record = store.add_watch(turn.user_id, channel=channel, chat_id=chat_id, language=lang, query=query,
                                 filters=filters_to_dict(filters), expires_at=now + timedelta(days=days),
                                 notified=[p.sku for p in found])
    except StoreUnavailable:
        return [Reply(say("watch_down", lang))]
    turn.query = f"watch: {describe(query, filters, 'en')}"
    what = describe(query, replace(filters, in_stock=True), lang)
    replies = [Reply(say("watch_added", lang, what=what, until=_date(record.expires_at)),
                     buttons=[Button(say("btn_unwatch", lang, n="").strip(), f"{UNWATCH}:{record.id}")])]
    if found:
        hits = ctx.engine.search(ParsedQuery(text=query, filters=replace(filters, in_stock=True), raw=query), k=POOL).hits
        shown = [h for h in hits if h.sku in {p.sku for p in found}][: ctx.page_size]
        shown = [replace(h, rank=i + 1) for i, h in enumerate(shown)]
        turn.state["shown"] = [h.sku for h in shown]
        replies.append(cards_reply(turn, say("watch_now", lang), shown, len(shown), 0))
    return replies


def listing(ctx: DialogueContext, turn: Turn) -> list[Reply]:
    """The shopper's watches, each with a Cancel button; expired ones are listed as such (then pruned)."""
    lang = turn.lang
    try:
        rows = _store(ctx).watches(turn.user_id)
    except StoreUnavailable:
        return [Reply(say("watch_down", lang))]
    if not rows:
        return [Reply(say("watch_list_empty", lang))]
    now = _now()
    lines, buttons = [say("watch_list_head", lang)], []
    for n, w in enumerate(rows, 1):
        what = describe(w.query, filters_from_dict(w.filters), lang)
        key = "watch_list_line" if w.active(now) else "watch_list_expired"
        lines.append(say(key, lang, n=n, what=what, until=_date(w.expires_at)))
        if w.active(now):
            buttons.append(Button(say("btn_unwatch", lang, n=n), f"{UNWATCH}:{w.id}"))
    return [Reply("\n".join(lines), buttons=buttons)]


def cancel(ctx: DialogueContext, turn: Turn, watch_id: str) -> list[Reply]:
    """The Cancel button: only the shopper's own watch is cancelled."""
    lang = turn.lang
    store = _store(ctx)
    try:
        mine = {w.id: w for w in store.watches(turn.user_id)}
        done = watch_id in mine and store.cancel_watch(turn.user_id, watch_id)
    except StoreUnavailable:
        return [Reply(say("watch_down", lang))]
    if not done:
        return [Reply(say("watch_gone", lang))]
    w = mine[watch_id]
    return [Reply(say("watch_cancelled", lang, what=describe(w.query, filters_from_dict(w.filters), lang)))]


def notice(watch: WatchRecord, products: Sequence[Product]) -> Reply:
    """The one message a watch sends when new products match: a heading and the products as cards."""
    lang = watch.language
    what = describe(watch.query, replace(filters_from_dict(watch.filters), in_stock=True), lang)
    cards = [card_from_product(p, i + 1, lang) for i, p in enumerate(products)]
    return Reply(say("watch_found", lang, what=what), cards=cards, language=lang,
                 buttons=[Button(say("btn_unwatch", lang, n="").strip(), f"{UNWATCH}:{watch.id}")], intent="watch_found")


def pending_replies(store: WatchStore, engine: SearchEngine, user_id: str) -> list[Reply]:
    """Notices that waited for the shopper's next turn (a channel that cannot be messaged first), now taken:
    one reply per watch with the products that are still in the catalog."""
    out = []
    for w in store.take_pending_watches(user_id):
        products = [p for p in (engine.product(s) for s in w.pending_skus) if p is not None]
        if products:
            out.append(notice(w, products))
    return out
