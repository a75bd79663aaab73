"""A stock the shop gave no count for (a feed's "in stock") is shown as in stock, never as "1 left"."""

from __future__ import annotations

from bot.dialogue.facts import stock_line
from bot.dialogue.replies import card_from_product, card_line
from retrieval.catalog import Product


def _product(**attrs: tuple[str, ...]) -> Product:
    return Product(sku="S1", title="Cast Iron Skillet", price=32.5, stock=1, attributes=attrs)


def test_an_uncounted_stock_reads_in_stock_without_a_number() -> None:
    feed = _product(stock_count=("unknown",))
    assert " - in stock - S1" in card_line(card_from_product(feed, 1))
    assert "有货 - S1" in card_line(card_from_product(feed, 1, "zh"), "zh")
    assert stock_line(feed, "en") == "In stock."
    counted = _product()
    assert " - in stock (1) - S1" in card_line(card_from_product(counted, 1))
    assert stock_line(counted, "en") == "In stock (1 left)."
