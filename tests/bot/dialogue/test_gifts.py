"""Gift and occasion requests in the conversation: "a gift for my girlfriend's birthday" finds gift ideas that
suit her (not dolls, not the shopper's own history) and says in one sentence what it assumed. Demo catalog,
real encoders, the packaged intent model, SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import Assistant, build_assistant
from bot.dialogue.gifts import read_gift
from bot.dialogue.replies import Event, Reply
from bot.dialogue.understanding import Understanding
from bot.settings import Settings


@pytest.fixture
def bot(shared, tmp_path: Path) -> Iterator[Assistant]:  # type: ignore[no-untyped-def]
    engine, nlu, policy = shared
    a = build_assistant(Settings(data_dir=tmp_path), engine=engine, nlu=nlu, policy=policy)
    yield a
    a.close()


def chat(bot: Assistant, text: str, user: str = "g1", understood: Understanding | None = None) -> list[Reply]:
    return bot.handle(Event(user=user, channel="test", text=text, understood=understood))


def categories(bot: Assistant, replies: list[Reply]) -> list[str]:
    out = []
    for c in (c for r in replies for c in r.cards):
        p = bot.engine.product(c.sku)
        assert p is not None
        out.append(" > ".join(p.category))
    return out


def test_a_gift_for_her_birthday_shows_ideas_of_several_kinds_and_says_what_it_assumed(bot: Assistant) -> None:
    replies = chat(bot, "a gift for my girlfriend's birthday")
    head = replies[0].text
    assert "birthday gift ideas for your girlfriend" in head and "tell me her interests or a budget" in head
    cats = categories(bot, replies)
    assert len(cats) == 5 and len(set(cats)) >= 4  # a few kinds, not five dolls
    assert not any(c.startswith("Toys") for c in cats)
    assert all(c.stock > 0 for r in replies for c in r.cards)
    # "more" pages through the same ideas
    more = chat(bot, "more")
    assert more[0].cards and not {c.sku for c in more[0].cards} & {c.sku for c in replies[0].cards}


def test_in_chinese_too(bot: Assistant) -> None:
    replies = chat(bot, "送给妈妈的生日礼物", user="g2")
    head = replies[0].text
    assert "您的妈妈" in head and "生日礼物" in head and "她的兴趣爱好或预算" in head
    cats = categories(bot, replies)
    assert len(set(cats)) >= 4 and not any(c.startswith("Toys") for c in cats)


def test_her_interest_narrows_the_ideas_to_it(bot: Assistant) -> None:
    chat(bot, "a gift for my girlfriend's birthday", user="g3")
    replies = chat(bot, "she likes hiking", user="g3")
    assert "who likes hiking" in replies[0].text
    cats = categories(bot, replies)
    assert cats and all(c in {"Shoes > Hiking", "Sports & Outdoors > Camping"} or "Hiking" in c for c in cats[:3])
    first = bot.engine.product(replies[0].cards[0].sku)
    assert first is not None and "Men's" not in first.title  # for her


def test_an_interest_in_the_request_is_searched_for(bot: Assistant) -> None:
    replies = chat(bot, "gift ideas for a coffee lover", user="g4")
    assert "who likes coffee" in replies[0].text
    assert all("Coffee" in c for c in categories(bot, replies)[:3])
    replies = chat(bot, "送给喜欢咖啡的爸爸的礼物", user="g5")
    assert "咖啡" in replies[0].text and all("Coffee" in c for c in categories(bot, replies)[:3])


def test_a_gift_request_read_as_recommend_is_not_answered_from_the_shoppers_history(bot: Assistant) -> None:
    # a shopper who looked at running shoes, then asks for a gift for someone else
    chat(bot, "running shoes", user="g6")
    chat(bot, "tell me about the first one", user="g6")
    replies = chat(bot, "recommend a gift for my dad", user="g6", understood=Understanding("recommend"))
    assert "gift ideas for your dad" in replies[0].text and "his interests" in replies[0].text
    cats = categories(bot, replies)
    assert len(set(cats)) >= 3 and "Shoes > Running" not in cats
    assert replies[0].intent == "search"


def test_a_budget_narrows_every_kind(bot: Assistant) -> None:
    replies = chat(bot, "a christmas present for my wife under $40", user="g7")
    assert "Christmas gift ideas for your wife" in replies[0].text
    assert replies[0].cards and all(c.price <= 40 for c in replies[0].cards)


@pytest.mark.parametrize("text", ["can I pay with a gift card?", "gift wrapping available?", "礼品卡怎么用",
                                  "birthday candles", "a dress for my sister's wedding", "where is my order?",
                                  "I want to return a gift I received", "can you ship a gift to my mom's address?",
                                  "收到的礼物怎么退货？"])
def test_what_is_not_a_gift_request(text: str) -> None:
    assert read_gift(text) is None
