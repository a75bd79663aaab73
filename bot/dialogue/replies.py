"""What goes into and comes out of the dialogue manager: channel-neutral events and replies.

Adapters (terminal, Telegram, Rasa) build an :class:`Event` and render each :class:`Reply`; nothing in
here knows about a channel's markup. ``render_text`` is the plain-text rendering that the terminal
chat and text-only channels share.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.dialogue.understanding import Understanding
    from retrieval.catalog import Product

__all__ = ["Button", "Card", "Event", "LiveText", "Reply", "card_from_product", "card_line", "format_price", "render_text"]


@dataclass(frozen=True)
class Event:
    """One thing the shopper did: a message (``text``) or a button press (``payload``)."""

    user: str  # the channel's own user id
    channel: str = "cli"
    text: str | None = None
    payload: str | None = None
    language: str | None = None  # the client's language hint (Telegram sends one); the text decides first
    display_name: str | None = None
    # What the message means when the platform already understood it (Rasa's NLU classified it and the
    # Rasa adapter translated intent + entities, bot/channels/rasa/actions.py); the dialogue then skips its own NLU.
    understood: Understanding | None = None


@dataclass(frozen=True)
class Button:
    label: str
    payload: str


@dataclass(frozen=True)
class Card:
    """A product as shown to the shopper. Every fact comes from the catalog, never from a model."""

    sku: str
    title: str
    price: float
    currency: str
    stock: int
    rank: int
    image_url: str | None = None
    brand: str | None = None
    reason: str | None = None  # why it is shown ("matches: red, under $80"; "bought together with ...")
    attributes: dict[str, str] = field(default_factory=dict)
    stock_counted: bool = True  # False: the shop gave no count, only that it is in stock


class LiveText:
    """Text the language model is still writing for a reply, already checked against the facts.

    The dialogue manager feeds it; an adapter reads it: ``async for text in live.updates()`` yields the
    whole text so far each time more of it has been verified (the last value is the final text), and
    ``await live.final()`` waits for the end. The final text may differ from the streamed ones: an
    answer that fails the claim check is replaced by a regenerated one or by the grounded template,
    and an empty final text means "send nothing more". Several readers may follow the same text.
    """

    def __init__(self) -> None:
        self._text = ""
        self._done = False
        self._changed = asyncio.Event()

    @property
    def text(self) -> str:
        return self._text

    @property
    def done(self) -> bool:
        return self._done

    def push(self, text: str) -> None:
        """The whole verified text so far (not a delta)."""
        if not self._done and text != self._text:
            self._text = text
            self._wake()

    def finish(self, text: str) -> None:
        if not self._done:
            self._text, self._done = text, True
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def updates(self) -> AsyncIterator[str]:
        seen: str | None = None
        while True:
            changed = self._changed
            if self._text != seen or self._done:
                seen = self._text
                if self._done:
                    yield self._text
                    return
                if seen:
                    yield seen
            await changed.wait()

    async def final(self) -> str:
        while not self._done:
            await self._changed.wait()
        return self._text


@dataclass
class Reply:
    text: str
    cards: list[Card] = field(default_factory=list)
    buttons: list[Button] = field(default_factory=list)
    # a comparison: the first row is the header (attribute, product 1, product 2, ...)
    table: list[list[str]] | None = None
    handoff: bool = False
    turn_id: str | None = None
    language: str = "en"
    intent: str | None = None
    # set when the language model is still writing this reply's text; ``text`` is then the grounded
    # template, replaced by the final text when ``live`` ends (see LiveText)
    live: LiveText | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(replace(self, live=None))
        del d["live"]
        return d


def card_from_product(p: Product, rank: int, language: str = "en", reason: str | None = None) -> Card:
    attrs = {a: "/".join(p.attr(a)) for a in ("color", "size", "material") if p.attr(a)}
    return Card(sku=p.sku, title=p.title_for(language), price=p.price, currency=p.currency, stock=p.stock, rank=rank,
                image_url=p.image_url, brand=p.brand, reason=reason, attributes=attrs, stock_counted=p.stock_counted)


_SYMBOL = {"USD": "$", "EUR": "€", "GBP": "£", "CNY": "¥"}


def format_price(price: float, currency: str) -> str:
    symbol = _SYMBOL.get(currency)
    return f"{symbol}{price:,.2f}" if symbol else f"{price:,.2f} {currency}"


def stock_text(stock: int, language: str, counted: bool = True) -> str:
    """"in stock (12)", or "in stock" where the shop gave no count."""
    if language == "zh":
        return ("缺货" if stock <= 0 else f"有货 ({stock})" if counted else "有货")
    return "out of stock" if stock <= 0 else f"in stock ({stock})" if counted else "in stock"


def card_line(card: Card, language: str = "en") -> str:
    extra = [card.attributes[a] for a in ("color", "size") if card.attributes.get(a)]
    tail = f" [{'; '.join(extra)}]" if extra else ""
    return (f"{card.rank:>2}. {card.title} - {format_price(card.price, card.currency)} - "
            f"{stock_text(card.stock, language, card.stock_counted)} - {card.sku}{tail}")


def render_table(rows: Sequence[Sequence[str]], width: int = 28) -> str:
    """A fixed-width text table (cells cut to ``width``) for channels without rich formatting."""
    cut = [[c if len(c) <= width else c[: width - 1] + "…" for c in row] for row in rows]
    widths = [max(_display_width(r[i]) for r in cut) for i in range(len(cut[0]))]
    lines = []
    for n, row in enumerate(cut):
        lines.append(" | ".join(c + " " * (widths[i] - _display_width(c)) for i, c in enumerate(row)).rstrip())
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def _display_width(text: str) -> int:
    # CJK characters take two columns in a terminal
    return sum(2 if "\u2e80" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef" else 1 for ch in text)


def render_text(reply: Reply) -> str:
    """The whole reply as plain text: message, product lines, table, button labels."""
    parts = [reply.text] if reply.text else []
    if reply.cards:
        parts.append("\n".join(card_line(c, reply.language) for c in reply.cards))
    if reply.table:
        parts.append(render_table(reply.table))
    if reply.buttons:
        parts.append("  ".join(f"[{b.label}]" for b in reply.buttons))
    return "\n".join(parts)
