"""Questions about policies the 27 customer-service intents have no intent for (warranty, shipping
costs, discount codes) reach that policy through the real dialogue manager: demo catalog with the
real encoders, the packaged intent model, the demo policy and a real SQLite store. Before the
``policy_topic`` rule these were answered with a product search or the returns policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import Assistant, build_assistant
from bot.dialogue.replies import Event
from bot.settings import Settings


@pytest.fixture
def bot(shared, tmp_path: Path) -> Iterator[Assistant]:  # type: ignore[no-untyped-def]
    engine, nlu, policy = shared
    a = build_assistant(Settings(data_dir=tmp_path), engine=engine, nlu=nlu, policy=policy)
    yield a
    a.close()


@pytest.mark.parametrize(
    ("question", "expected", "source"),
    [
        ("what is your warranty on electronics?", "1-year warranty", "Warranty policy"),
        ("is my laptop still under warranty?", "1-year warranty", "Warranty policy"),
        ("保修期多长？", "1 年保修", "摘自：保修"),
        ("运费多少钱？", "运费 $4.99", "摘自：配送"),
        ("do you have any discount codes?", "discount code", "Promotions and discount codes policy"),
        ("有优惠券吗？", "优惠码", "摘自：优惠码"),
        ("add it to my cart", "cannot add items to your cart", "Placing an order policy"),
        ("加入购物车", "不能把商品加入购物车", "摘自：下单"),
    ],
)
def test_policy_questions_get_that_policy(bot: Assistant, question: str, expected: str, source: str) -> None:
    r = bot.handle(Event(user="u1", channel="test", text=question))
    assert not r[0].cards, f"{question!r} was answered with products"
    assert expected in r[0].text and source in r[0].text


def test_after_a_search_a_shipping_question_is_not_a_refinement(bot: Assistant) -> None:
    first = bot.handle(Event(user="u2", channel="test", text="wireless earbuds"))
    assert first[0].cards
    r = bot.handle(Event(user="u2", channel="test", text="运费多少钱？"))
    assert not r[0].cards and "$4.99" in r[0].text


def test_a_product_with_a_warranty_is_still_a_search(bot: Assistant) -> None:
    r = bot.handle(Event(user="u3", channel="test", text="laptop with 2 year warranty"))
    assert r[0].cards and r[0].intent == "search"


def test_adding_a_shown_product_to_a_cart_explains_how_to_order(bot: Assistant) -> None:
    assert bot.handle(Event(user="u4", channel="test", text="wireless earbuds"))[0].cards
    r = bot.handle(Event(user="u4", channel="test", text="add the first one to my cart"))
    assert not r[0].cards and "website" in r[0].text and "Placing an order policy" in r[0].text
