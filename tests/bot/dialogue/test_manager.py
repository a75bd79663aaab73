"""Scripted conversations through the real dialogue manager: demo catalog with the real encoders, the
packaged intent model, the demo policy and a real SQLite store. What each step must show is what a
shopper would check on screen."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import Assistant, build_assistant
from bot.dialogue.replies import Event, Reply, render_text
from bot.settings import Settings
from bot.store.database import Store


def _assistant(shared, tmp_path: Path, **settings) -> Assistant:  # type: ignore[no-untyped-def]
    engine, nlu, policy = shared
    s = Settings(data_dir=tmp_path, **settings)
    return build_assistant(s, engine=engine, nlu=nlu, policy=policy)


@pytest.fixture
def bot(shared, tmp_path: Path) -> Iterator[Assistant]:  # type: ignore[no-untyped-def]
    a = _assistant(shared, tmp_path)
    yield a
    a.close()


class Chat:
    def __init__(self, bot: Assistant, user: str = "alice", channel: str = "test") -> None:
        self.bot, self.user, self.channel = bot, user, channel

    def say(self, text: str) -> list[Reply]:
        return self.bot.handle(Event(user=self.user, channel=self.channel, text=text))

    def press(self, payload: str) -> list[Reply]:
        return self.bot.handle(Event(user=self.user, channel=self.channel, payload=payload))


def _cards(replies: list[Reply]):  # type: ignore[no-untyped-def]
    return [c for r in replies for c in r.cards]


def _product(bot: Assistant, sku: str):  # type: ignore[no-untyped-def]
    p = bot.engine.product(sku)
    assert p is not None
    return p


def test_english_search_and_refinement(bot: Assistant) -> None:
    chat = Chat(bot)
    r = chat.say("show me running shoes under 80 dollars")
    cards = _cards(r)
    assert r[0].intent == "search" and len(cards) == 5
    assert all(c.price <= 80 for c in cards)
    assert all("running" in _product(bot, c.sku).title.lower() for c in cards)
    assert any(b.payload == "more" for b in r[0].buttons)

    r = chat.say("in black")
    cards = _cards(r)
    assert cards and all("black" in _product(bot, c.sku).attr("color") and c.price <= 80 for c in cards)

    # "cheaper" narrows the same search by price until no running shoe is cheaper: then it says so
    chat.say("running shoes")
    shown = _cards(chat.say("cheaper"))
    assert shown and all("running shoe" in _product(bot, c.sku).title.lower() for c in shown)
    for _ in range(10):
        r = chat.say("cheaper")
        if not r[0].cards:
            break
        assert max(c.price for c in r[0].cards) < min(c.price for c in shown)
        assert all("running shoe" in _product(bot, c.sku).title.lower() for c in r[0].cards)
        shown = r[0].cards
    assert "cheapest" in r[0].text
    floor = min(c.price for c in shown)
    assert not [p for p in bot.engine.products if "running shoe" in p.title.lower() and p.price < floor]

    first_page = {c.sku for c in _cards(chat.say("show me running shoes"))}
    page2 = chat.say("next page")
    assert page2[0].intent == "more" and _cards(page2)[0].rank == 6
    assert not first_page & {c.sku for c in _cards(page2)}


def test_brand_and_size_refinements(bot: Assistant) -> None:
    chat = Chat(bot)
    chat.say("running shoes")
    r = chat.say("only Nike")
    assert _cards(r) and all(_product(bot, c.sku).brand == "Nike" for c in _cards(r))
    r = chat.say("size 42")
    assert _cards(r) and all("42" in _product(bot, c.sku).attr("size") and _product(bot, c.sku).brand == "Nike"
                             for c in _cards(r))


def test_compare_details_and_similar(bot: Assistant) -> None:
    chat = Chat(bot)
    shown = _cards(chat.say("wireless earbuds"))
    r = chat.say("compare 1 and 3")
    assert r[0].intent == "compare" and r[0].table is not None
    header, price_row = r[0].table[0], r[0].table[1]
    assert header[1].startswith("1. ") and header[2].startswith("3. ")
    assert price_row[1:] == [f"${shown[0].price:,.2f}", f"${shown[2].price:,.2f}"]
    assert [(c.rank, c.sku) for c in r[0].cards] == [(1, shown[0].sku), (3, shown[2].sku)]  # numbered as in the list

    r = chat.say("is the third one in stock?")
    assert r[0].intent == "details" and r[0].cards[0].sku == shown[2].sku and "stock" in r[0].text.lower()

    r = chat.say("tell me about the second one")
    assert r[0].intent == "details" and r[0].cards[0].sku == shown[1].sku
    p = _product(bot, shown[1].sku)
    assert p.title in r[0].text and f"${p.price:,.2f}" in r[0].text

    r = chat.say("more like the first one")
    sims = _cards(r)
    assert r[0].intent == "similar" and sims and shown[0].sku not in {c.sku for c in sims}
    assert _product(bot, sims[0].sku).category[0] == _product(bot, shown[0].sku).category[0]


def test_chinese_conversation(bot: Assistant) -> None:
    chat = Chat(bot, user="li")
    r = chat.say("我想买一款新的手机")
    phones = _cards(r)
    assert r[0].language == "zh" and len(phones) == 5
    assert all(_product(bot, c.sku).category[:2] == ("Phones", "Smartphones") for c in phones)
    assert any(c.title != _product(bot, c.sku).title for c in phones)  # Chinese titles where the catalog has them

    r = chat.say("便宜一点的")
    cheaper = _cards(r)
    assert cheaper and max(c.price for c in cheaper) < min(c.price for c in phones)
    assert all(_product(bot, c.sku).category[1] == "Smartphones" for c in cheaper)

    r = chat.say("第二个详细介绍一下")
    assert r[0].intent == "details" and r[0].cards[0].sku == cheaper[1].sku and "有货" in r[0].text
    colour = _product(bot, cheaper[1].sku).attr("color")[0]
    zh_colour = {"black": "黑色", "blue": "蓝色", "green": "绿色", "white": "白色"}.get(colour)
    assert "颜色: " in r[0].text and "color:" not in r[0].text and (zh_colour is None or f"颜色: {zh_colour}" in r[0].text)
    table = chat.say("比较第一个和第二个")[0].table
    assert table is not None and {"颜色", "材质"} <= {row[0] for row in table}

    r = chat.say("要红色的")
    assert all("red" in _product(bot, c.sku).attr("color") for c in _cards(r))


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("how do I return shoes?", "30 days"),
        ("can I pay with PayPal?", "PayPal"),
        ("where is my order?", "tracking"),
        ("怎么退货？", "30 天"),
    ],
)
def test_customer_service_answers_come_from_the_policy(bot: Assistant, question: str, expected: str) -> None:
    r = Chat(bot).say(question)
    assert expected in r[0].text
    assert "— from our" in r[0].text or "摘自" in r[0].text


def test_handoff_silences_the_bot_until_released(bot: Assistant) -> None:
    chat = Chat(bot, user="bob")
    r = chat.say("I want to talk to a person")
    assert r[0].handoff and "colleague" in r[0].text
    assert chat.say("hello? anyone there?") == []
    [h] = bot.store.open_handoffs()
    assert h["user_id"] == "test:bob" and h["last_message"] == "hello? anyone there?"
    assert bot.store.release("test:bob")
    assert chat.say("red winter coat")[0].cards


def test_feedback_is_recorded_against_the_turn(bot: Assistant, tmp_path: Path) -> None:
    chat = Chat(bot, user="carol")
    r = chat.say("yoga mat")
    turn_id, sku = r[0].turn_id, r[0].cards[1].sku
    chat.press(f"up:{turn_id}:{sku}")
    chat.press(f"click:{sku}")
    chat.say("that's not what I meant")
    bot.store.export_feedback(tmp_path / "fb.jsonl")
    rows = {json.loads(x)["turn_id"]: json.loads(x) for x in (tmp_path / "fb.jsonl").read_text().splitlines()}
    row = rows[turn_id]
    assert [s["sku"] for s in row["shown"]][:5] == [c.sku for c in r[0].cards]
    assert row["clicks"] == [sku]
    assert {"sku": sku, "kind": "thumb_up"} in row["thumbs"]
    assert any(t["kind"] == "not_what_i_meant" for x in rows.values() for t in x["thumbs"])


def test_state_survives_a_restart(shared, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = _assistant(shared, tmp_path)
    shown = _cards(Chat(a).say("laptop sleeve"))
    a.close()
    b = _assistant(shared, tmp_path)  # a new process: same database
    r = Chat(b).say("tell me about the third one")
    assert r[0].cards[0].sku == shown[2].sku
    b.close()


@pytest.mark.parametrize("text", ["", "   ", "🙂🙂", "\x00\x01\x02", "x" * 10_000, "'; DROP TABLE turns; --",
                                  "asdkjh qwpoe zmxn"])
def test_bad_input_gets_a_polite_reply_and_is_logged(bot: Assistant, text: str) -> None:
    r = Chat(bot, user="eve").say(text)
    assert r and all(render_text(x).strip() for x in r)
    assert "Traceback" not in " ".join(x.text for x in r)
    assert bot.store.stats()["turns"] == 1


def test_greeting_help_and_unknown(bot: Assistant) -> None:
    chat = Chat(bot)
    assert "looking for" in chat.say("hi there")[0].text
    assert "compare" in chat.say("what can you do?")[0].text
    zh = chat.say("你好")
    assert zh[0].language == "zh" and "想买什么" in zh[0].text


def test_stuck_conversation_offers_a_person(bot: Assistant) -> None:
    chat = Chat(bot, user="dan")
    chat.say("running shoes")
    chat.say("no, that's not what I meant")
    r = chat.say("still not what I meant")
    assert any(b.payload == "handoff" for x in r for b in x.buttons)
    r = chat.press("handoff")
    assert r[0].handoff


def test_a_search_that_finds_things_after_two_misses_offers_no_person(bot: Assistant) -> None:
    chat = Chat(bot, user="eve")
    chat.say("a red winter coat under $80")
    chat.say("no, that's not what I meant")
    assert any(b.payload == "handoff" for x in chat.say("still not what I meant") for b in x.buttons)
    r = chat.say("running shoes")
    assert r[0].cards and not any(b.payload == "handoff" for x in r for b in x.buttons)


def test_a_turn_encodes_the_message_once_per_encoder(bot: Assistant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The intent classifier and the search ask for the same message's vector; one forward pass answers both."""
    from retrieval.encoders import get_encoder

    lean = get_encoder("minilm")._np  # type: ignore[attr-defined]
    seen: list[str] = []
    encode = lean.encode
    monkeypatch.setattr(lean, "encode", lambda texts: seen.extend(texts) or encode(texts))
    r = Chat(bot, user="once").say("merino wool hiking socks")
    assert r[0].intent == "search"
    assert seen == ["merino wool hiking socks"]


def test_store_outage_does_not_stop_the_conversation(shared, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine, nlu, policy = shared
    blocker = tmp_path / "db"
    blocker.write_text("")  # the database cannot be opened: SQLite sees a file where its directory should be
    store = Store(f"sqlite:///{blocker / 'shop.db'}", tmp_path / "buffer")
    a = build_assistant(Settings(data_dir=tmp_path), engine=engine, nlu=nlu, policy=policy, store=store)
    chat = Chat(a)
    shown = _cards(chat.say("red winter coat"))
    assert shown
    r = chat.say("tell me about the second one")  # the state lives in memory while the database is down
    assert r[0].cards[0].sku == shown[1].sku
    assert store.pending() == 2  # one write per turn: the shopper seen, the turn, what it showed, the state
    blocker.unlink()
    blocker.mkdir()
    assert store.flush() == 2
    assert store.stats()["turns"] == 2
    fresh = Store(f"sqlite:///{blocker / 'shop.db'}", tmp_path / "other-buffer")
    assert fresh.load_state("test:alice")["shown"] == [c.sku for c in shown]  # type: ignore[index]
    assert [t.intent for t in fresh.recent_turns("test:alice")] == ["details", "search"]
    fresh.close()


def test_a_refinement_that_finds_nothing_leaves_the_search_as_it_was(bot: Assistant) -> None:
    chat = Chat(bot)
    first = _cards(chat.say("a red winter coat under $80"))
    assert first and all(c.price <= 80 for c in first)
    cheapest = min(c.price for c in first)
    r = chat.say("cheaper")
    assert not _cards(r) and "cheapest" in r[0].text
    # the failed "cheaper" did not leave its price cap behind: "in purple" narrows the coats under $80
    purple = _cards(chat.say("in purple"))
    assert purple and all("purple" in _product(bot, c.sku).attr("color") for c in purple)
    assert all(c.price <= 80 for c in purple) and max(c.price for c in purple) > cheapest


def test_a_budget_in_yuan_filters_dollar_prices_at_the_exchange_rate(bot: Assistant) -> None:
    chat = Chat(bot)
    r = chat.say("我想买跑步鞋，500元以下")
    cards = _cards(r)
    assert cards and all(c.price <= 500 * 0.14 for c in cards) and "¥500" in r[0].text  # about $70, not $500
    cheaper = _cards(chat.say("便宜一点的"))  # a nudge is in the shown prices' own currency
    assert cheaper and max(c.price for c in cheaper) < min(c.price for c in cards)


def test_a_count_is_shown_only_when_it_counts_every_match(bot: Assistant) -> None:
    chat = Chat(bot)
    broad = chat.say("do you sell bicycles?")  # no filter: the candidate pool, not a count of matches
    assert broad[0].text.startswith("Best matches") and not any(ch.isdigit() for ch in broad[0].text.split(":")[0])
    assert chat.say("more")[0].text.startswith("More results (6-10):")
    narrow = chat.say("wireless earbuds")  # the headphones category: every one of them was ranked
    assert narrow[0].text.split()[1:3] == ["products", "match"] and int(narrow[0].text.split()[0]) > 5


def test_on_the_second_page_compared_products_carry_their_numbers_on_screen(bot: Assistant) -> None:
    chat = Chat(bot)
    chat.say("wireless earbuds")
    page2 = _cards(chat.say("more"))
    assert [c.rank for c in page2] == [6, 7, 8, 9, 10]
    r = chat.say("compare 6 and 7")
    assert [(c.rank, c.sku) for c in r[0].cards] == [(6, page2[0].sku), (7, page2[1].sku)]
    assert r[0].table is not None and r[0].table[0][1].startswith("6. ") and r[0].table[0][2].startswith("7. ")
    r = chat.say("compare the first and the last")  # on this page: its first and last lines, numbered 6 and 10
    assert [(c.rank, c.sku) for c in r[0].cards] == [(6, page2[0].sku), (10, page2[4].sku)]


def test_an_impossible_filter_says_so_and_shows_the_search_without_it(bot: Assistant) -> None:
    r = Chat(bot).say("running shoes under $1")
    assert r[0].text.startswith('Nothing matches "running shoes" (') and "without those filters" in r[0].text
    assert _cards(r) and all(_product(bot, c.sku).category[0] == "Shoes" for c in _cards(r))


def test_gibberish_is_not_recorded_as_feedback(bot: Assistant, tmp_path: Path) -> None:
    chat = Chat(bot, user="dave")
    r = chat.say("yoga mat")
    assert r[0].cards
    assert chat.say("x" * 800)[-1].intent == "other"  # the classifier guessed a thumbs-up at 0.30
    bot.store.export_feedback(tmp_path / "fb.jsonl")
    rows = [json.loads(x) for x in (tmp_path / "fb.jsonl").read_text().splitlines()]
    assert rows and not any(row["thumbs"] for row in rows)


def test_a_shown_product_in_another_colour_finds_that_kind_of_product_in_it(bot: Assistant) -> None:
    chat = Chat(bot)
    shown = _cards(chat.say("laptop"))
    r = chat.say("the second one in blue")
    blue = _cards(r)
    kind = _product(bot, shown[1].sku).category
    assert r[0].intent == "similar" and blue
    assert all("blue" in _product(bot, c.sku).attr("color") and _product(bot, c.sku).category == kind for c in blue)
    more = _cards(chat.say("more"))  # the colour stays for the next page
    assert all("blue" in _product(bot, c.sku).attr("color") for c in more)
    running = _cards(chat.say("running shoes"))
    none = chat.say("the first one in red")  # the demo catalog has no red running shoes
    assert not _cards(none) and "couldn't find" in none[0].text
    assert _cards(chat.say("the first one"))[0].sku == running[0].sku  # the list on screen is still the shoes


def test_asking_what_goes_with_a_product_shows_its_complements(bot: Assistant) -> None:
    chat = Chat(bot, user="cora")
    r = chat.say("I bought a laptop, what else do I need?")
    cards = _cards(r)
    assert r[0].text.startswith("Goes well with") and "Laptop" in r[0].text and cards
    kinds = {_product(bot, c.sku).category_path for c in cards}
    assert not any("Laptops" in k for k in kinds) and any("Accessories" in k for k in kinds), kinds
    assert all(c.reason for c in cards)
    zh = chat.say("我买了一台笔记本电脑，还需要什么配件？")
    assert zh[0].text.startswith("和「") and _cards(zh)
    chat.say("running shoes")
    second = chat.say("what goes with the second one")
    assert "Running Shoe" in second[0].text and _cards(second)
    assert not any(_product(bot, c.sku).category_path == "Shoes > Running" for c in _cards(second))


def test_stock_and_price_questions_about_a_shown_product_are_answered_from_the_catalog(bot: Assistant) -> None:
    chat = Chat(bot, user="finn")
    first = _cards(chat.say("laptop"))[0]
    p = _product(bot, first.sku)
    r = chat.say("第一个有货吗？")
    assert r[0].cards[0].sku == p.sku
    assert r[-1].text == (f"有货（剩余 {p.stock} 件）。" if p.stock > 0 else "暂时缺货。")
    r = chat.say("how much is the first one?")
    assert r[-1].text.startswith("It costs $") and f"{p.price:,.2f}" in r[-1].text
    # no model here: the details, then plainly that the record does not say (a laptop's record holds no
    # "waterproof"), with a person to ask; nothing invented
    r = chat.say("is the first one waterproof?")
    assert len(r) == 2 and r[-1].text == "I can't find that in this product's catalog facts, and I won't guess."
    assert [b.payload for b in r[-1].buttons] == ["handoff"]


def test_a_count_is_only_claimed_for_products_of_the_kind_asked_for(bot: Assistant) -> None:
    """No fridges in the demo shop: 'blue mini fridge' ranks every blue product; '80 products match' would be false."""
    r = Chat(bot, user="gus").say("blue mini fridge")
    assert r[0].text.startswith("Best matches"), r[0].text
    r = Chat(bot, user="gus2").say("a red winter coat under $80")
    assert "products match (red" in r[0].text


def test_chinese_replies_describe_the_filters_in_chinese(bot: Assistant) -> None:
    r = Chat(bot, user="hua").say("红色的外套 500元以下")
    assert "（红色，" in r[0].text and "¥500 以下）" in r[0].text and "red" not in r[0].text, r[0].text
