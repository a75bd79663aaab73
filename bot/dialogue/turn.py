"""One turn's working state and what the dialogue's services share about it.

The manager (bot/dialogue/manager.py) opens a :class:`Turn` per event, routes it to one service
(search.py, products.py, recommend.py, support.py) and logs it. The services meet here rather than in
the manager so that they import neither it nor one another for the common parts: the turn itself and
the replies the model still has to write (:class:`Pending`), what a service may use of the manager
(:class:`DialogueContext`, with the store and policy contracts it is built with), which shown product
"the second one" is (:func:`pick`), how a page of products is shown (:func:`cards_reply`), and how
filters are kept in the JSON state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.dialogue.messages import say
from bot.dialogue.replies import Button, Reply, card_from_product
from bot.dialogue.understanding import Understander
from bot.store.records import TurnRecord
from model.writing.product_text import ProductWriter
from model.writing.support import SupportWriter
from retrieval.catalog import Product
from retrieval.policy import PolicyMatch
from retrieval.query import Filters
from retrieval.recommend.recommender import Recommender
from retrieval.search import Hit, SearchEngine

__all__ = [
    "DialogueContext",
    "Pending",
    "PolicyAnswers",
    "Store",
    "Turn",
    "cards_reply",
    "closing_line",
    "filters_from_dict",
    "filters_to_dict",
    "pick",
    "pick_numbered",
]


class PolicyAnswers(Protocol):
    """The customer-service lookup: the policy's own answer and its passages, or None when nothing fits."""

    def __call__(self, question: str, intent: str, language: str, sections: Sequence[str]) -> PolicyMatch | None: ...


class Store(Protocol):
    """What the dialogue needs from the SQL store (bot/store/database.py implements it).

    A store may also offer ``start_turn(channel, external_id, language) -> (user id, handed over?, state)``
    (``touch`` and ``load_state`` in one read); one that does also saves ``TurnRecord.state`` with the
    turn, so a turn whose replies are final is written in one transaction."""

    def touch(self, channel: str, external_id: str, language: str | None) -> tuple[str, bool]: ...
    def load_state(self, user_id: str) -> dict[str, Any] | None: ...
    def save_state(self, user_id: str, state: dict[str, Any]) -> None: ...
    def log(self, turn: TurnRecord) -> str: ...
    def feedback(self, user_id: str, kind: str, *, turn_id: str | None = None, sku: str | None = None) -> str: ...
    def handoff(self, user_id: str, reason: str) -> None: ...


class DialogueContext(Protocol):
    """What a service may use of the dialogue manager running the turn (it satisfies this).

    Read at every call, never copied: the assistant swaps the engine and the understander on a reindex
    or a retrain while the manager keeps serving.
    """

    engine: SearchEngine
    store: Store
    understand: Understander
    answer: PolicyAnswers
    page_size: int
    support_writer: SupportWriter | None  # the language model's writers; None: templates only
    product_writer: ProductWriter | None
    search_summaries: bool
    model_advice: bool
    watch_days: float  # how long a shopper's watch lives (Settings.watch_days)
    watch_limit: int  # active watches per shopper (Settings.watch_limit)

    def recommender(self) -> Recommender: ...


@dataclass
class Turn:
    turn_id: str
    user_id: str
    lang: str
    state: dict[str, Any]
    text: str
    intent: str = "other"
    confidence: float | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    query: str | None = None
    zero_results: bool = False
    error: str | None = None
    pending: list[Pending] = field(default_factory=list)  # replies the model still has to write
    generation: list[dict[str, Any]] = field(default_factory=list)  # what it did, for the turn's log
    unsaved_state: bool = False  # the state is saved with the turn's log line


@dataclass
class Pending:
    """A reply whose text the model writes: ``write(on_text)`` -> (final text, log record)."""

    kind: str
    reply: Reply
    write: Callable[[Callable[[str], None]], Awaitable[tuple[str, dict[str, Any]]]]


def closing_line(turn: Turn, writer: ProductWriter, query: str, records: Sequence[Mapping[str, Any]], lang: str,
                 asked: str | None, kind: str) -> Reply:
    """A reply the model writes after the facts: one sentence about ``records`` that answers ``asked``,
    checked against them (``ProductWriter.summary``); it stays empty when the model has no true one."""
    closing = Reply("")

    async def write(on_text: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
        r = await writer.summary(query, records, lang, on_text=on_text, asked=asked)
        return r.text, {"kind": kind, **r.to_log()}

    turn.pending.append(Pending(kind, closing, write))
    return closing


def filters_to_dict(f: Filters) -> dict[str, Any]:
    return {"min_price": f.min_price, "max_price": f.max_price, "currency": f.currency,
            "categories": sorted(f.categories), "brands": sorted(f.brands), "colors": sorted(f.colors),
            "sizes": sorted(f.sizes), "in_stock": f.in_stock}


def filters_from_dict(d: Mapping[str, Any] | None) -> Filters:
    if not d:
        return Filters()
    return Filters(
        min_price=d.get("min_price"), max_price=d.get("max_price"), currency=d.get("currency"),
        categories=frozenset(d.get("categories") or ()), brands=frozenset(d.get("brands") or ()),
        colors=frozenset(d.get("colors") or ()), sizes=frozenset(d.get("sizes") or ()),
        in_stock=bool(d.get("in_stock")),
    )


def cards_reply(turn: Turn, head: str, hits: Sequence[Hit], total: int, offset: int,
                reason: str | None = None) -> Reply:
    lang = turn.lang
    turn.state["shown_turn"] = turn.turn_id
    cards = [card_from_product(h.product, h.rank, lang, reason) for h in hits]
    buttons = []
    if offset + len(hits) < total:
        buttons.append(Button(say("btn_more", lang), "more"))
    if turn.state.get("mode") == "search" and hits:
        buttons.append(Button(say("btn_cheaper", lang), "cheaper"))
    buttons += [Button(say("btn_up", lang), f"up:{turn.turn_id}"), Button(say("btn_down", lang), f"down:{turn.turn_id}")]
    return Reply(head, cards=cards, buttons=buttons)


def pick(ctx: DialogueContext, turn: Turn, ordinals: Sequence[int]) -> list[Product] | None:
    """The shown products the ordinals point at; None (and nothing picked) when one is out of range."""
    numbered = pick_numbered(ctx, turn, ordinals)
    return None if numbered is None else [p for _, p in numbered]


def pick_numbered(ctx: DialogueContext, turn: Turn, ordinals: Sequence[int]) -> list[tuple[int, Product]] | None:
    """``pick`` with the number each product has on screen (results 6-10 on the second page)."""
    shown = list(turn.state.get("shown") or [])
    offset = int(turn.state.get("offset", 0))
    out = []
    for n in ordinals:
        if n == -1:
            idx = len(shown) - 1
        elif n > len(shown) and offset:
            idx = n - 1 - offset  # "the 7th" on the second page means its 2nd line
        else:
            idx = n - 1
        if not 0 <= idx < len(shown):
            return None
        p = ctx.engine.product(shown[idx])
        if p is None:
            return None
        out.append((offset + idx + 1, p))
    return out
