"""The Telegram adapter end to end: the real python-telegram-bot Application, the real assistant (demo
catalog with the real encoders, the packaged intent model, SQLite, templates only) and a fake Bot API
server on 127.0.0.1 (tests/fakes/telegram_server.py) that answers as Telegram does. What each test
checks is what a shopper would see in the chat, or what the shop's database must hold."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.app import Assistant, build_assistant
from bot.channels.telegram.bot import ShopBot
from bot.settings import Settings
from bot.store.schema import Feedback, Turn
from tests.fakes.telegram_harness import Running, running
from tests.fakes.telegram_server import Call, FakeTelegram

ADMIN = 1000
ANN, BO, CY = 2001, 2002, 2003


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, llm="off", telegram_admins=[ADMIN], telegram_max_rate=0, telegram_edit_interval=0)


def chat(assistant: Assistant, settings: Settings, test: Any, *, fake: FakeTelegram | None = None, **kw: Any) -> None:
    """Run ``await test(bot)`` with the bot polling the fake server."""

    async def main() -> None:
        async with fake or FakeTelegram() as tg, running(ShopBot(assistant, settings), tg, **kw) as bot:
            await test(bot)

    asyncio.run(main())


def data_of(call: Call) -> list[str]:
    return [b["callback_data"] for b in call.buttons]


def button(calls: list[Call], prefix: str) -> tuple[Call, str]:
    for c in calls:
        for d in data_of(c):
            if d.startswith(prefix):
                return c, d
    raise AssertionError(f"no button {prefix!r} in {[data_of(c) for c in calls]}")


def _feedback(assistant: Assistant) -> list[Feedback]:
    with Session(assistant.store.engine) as s:
        return list(s.execute(select(Feedback).order_by(Feedback.created_at)).scalars())


def test_start_greets_in_the_language_telegram_reports(assistant: Assistant, settings: Settings) -> None:
    async def test(bot: Running) -> None:
        en = await bot.say(ANN, "/start", language_code="en-GB")
        zh = await bot.say(BO, "/start", language_code="zh-hans")
        assert len(en) == 1 and "shop assistant" in en[0].text
        assert len(zh) == 1 and "店铺助手" in zh[0].text
        help_zh = await bot.say(BO, "/help", language_code="zh-hans")
        assert "比较" in help_zh[0].text
        await bot.shop._post_init(bot.app)  # the command menu, in both languages
        assert {"", "zh"} <= set(bot.fake.commands) and any(c["command"] == "forget" for c in bot.fake.commands[""])

    chat(assistant, settings, test)


def test_search_refine_details_thumbs_and_pages(assistant: Assistant, settings: Settings) -> None:
    async def test(bot: Running) -> None:
        # shoes under $100, and the black ones among them, fill more than one page of the demo catalog
        sent = await bot.say(ANN, "shoes under 100 dollars")
        head, cards = sent[0], sent[1:]
        assert "products match" in head.text and len(cards) == 5
        for c in cards:  # one message per product: photo when it has an image, title, price, stock, buttons
            product = assistant.engine.product(data_of(c)[0].split(":", 1)[1])
            assert product is not None and product.price <= 100
            assert product.title in c.text and "$" in c.text and "stock" in c.text
            assert c.method == ("sendPhoto" if product.image_url else "sendMessage")
            kinds = [d.split(":")[0] for d in data_of(c)]
            assert kinds[:4] == ["details", "similar", "up", "down"]
            assert all(len(d.encode()) <= 64 for d in data_of(c))
        assert any(c.method == "sendPhoto" for c in cards)
        nav = [d.split(":")[0] for d in data_of(cards[-1])[4:]]
        assert nav[:3] == ["more", "cheaper", "tg"]  # Next page, Cheaper, Compare under the last product
        assert [b["text"] for b in cards[-1].buttons][4] == "Next page ▶"

        refined = await bot.say(ANN, "in black")
        assert len(refined) > 1
        for c in refined[1:]:
            p = assistant.engine.product(data_of(c)[0].split(":", 1)[1])
            assert p is not None and "black" in p.attr("color") and p.price <= 100

        # Details: the product page in a new message, the callback answered
        msg, details = button(refined[1:2], "details:")
        out, answer = await bot.press(ANN, msg, details)
        sku = details.split(":", 1)[1]
        product = assistant.engine.product(sku)
        assert answer is not None and product is not None
        assert len(out) == 1 and product.title in out[0].text and "In stock" in out[0].text

        # thumbs down on a product: recorded with its turn and SKU, answered in place, the button ticked
        msg, down = button(refined[1:2], "down:")
        out, answer = await bot.press(ANN, msg, down)
        assert out == [] and answer is not None and "Sorry" in answer.params["text"]
        fb = [f for f in _feedback(assistant) if f.kind == "thumb_down"]
        assert [(f.sku, f.turn_id) for f in fb] == [(down.split(":")[2], down.split(":")[1])]
        edited = bot.fake.requests("editMessageReplyMarkup")[-1]
        assert any(b["text"] == "✅ 👎" for b in edited.buttons)

        # Next page: the following products
        msg, more = button(refined[-1:], "more")
        out, answer = await bot.press(ANN, msg, more)
        assert answer is not None and out and "More results (6-" in out[0].text

    chat(assistant, settings, test)


def test_compare_button_and_an_outdated_list(assistant: Assistant, settings: Settings) -> None:
    async def test(bot: Running) -> None:
        first = await bot.say(ANN, "wireless earbuds")
        old_msg, old_cmp = button(first[-1:], "tg:cmp:")
        second = await bot.say(ANN, "laptop")
        msg, cmp = button(second[-1:], "tg:cmp:")
        out, answer = await bot.press(ANN, msg, cmp)
        assert answer is not None and len(out) == 1
        table = out[0]
        assert "compare" in table.text and "price" in table.text
        assert any(e["type"] == "pre" for e in table.result.get("entities", []))
        titles = [assistant.engine.product(d.split(":", 1)[1]).title[:10] for d in data_of(second[1]) [:1] + data_of(second[2])[:1]]  # type: ignore[union-attr]
        assert all(t in table.text for t in titles)
        # the Compare under a list that is no longer on screen says so instead of comparing other products
        out, answer = await bot.press(ANN, old_msg, old_cmp)
        assert out == [] and answer is not None and "out of date" in answer.params["text"]

    chat(assistant, settings, test)


def test_forget_deletes_the_shoppers_data_after_confirmation(assistant: Assistant, settings: Settings) -> None:
    async def test(bot: Running) -> None:
        sent = await bot.say(ANN, "red winter coat")
        msg, down = button(sent[1:], "down:")
        await bot.press(ANN, msg, down)
        await bot.say(BO, "hiking boots")
        ask = await bot.say(ANN, "/forget")
        assert "deletes everything" in ask[0].text and data_of(ask[0]) == ["tg:forget:yes", "tg:forget:no"]

        _out, answer = await bot.press(ANN, ask[0], "tg:forget:no")
        assert answer is not None and bot.fake.chat(ANN)[-1]["text"] == "Nothing was deleted."
        with Session(assistant.store.engine) as s:
            assert s.execute(select(Turn).where(Turn.user_id == f"telegram:{ANN}")).first() is not None

        ask = await bot.say(ANN, "/forget")
        _out, answer = await bot.press(ANN, ask[0], "tg:forget:yes")
        assert answer is not None and bot.fake.chat(ANN)[-1]["text"].startswith("Done")
        with Session(assistant.store.engine) as s:
            users = {t.user_id for t in s.execute(select(Turn)).scalars()}
        assert users == {f"telegram:{BO}"}
        assert {f.user_id for f in _feedback(assistant)} == set()
        prefs = await bot.say(ANN, "/prefs")
        assert "current search: none" in prefs[0].text

    chat(assistant, settings, test)


def test_admin_commands_and_handoffs(assistant: Assistant, settings: Settings) -> None:
    async def test(bot: Running) -> None:
        refused = await bot.say(ANN, "/stats")
        assert refused[0].text == "Sorry, that command is for the shop's team only."
        refused = await bot.say(ANN, "/reindex")
        assert "team only" in refused[0].text
        assert "team only" in (await bot.say(ANN, "/models"))[0].text
        await bot.say(ANN, "running shoes")

        handed = await bot.say(ANN, "/human")
        assert "colleague" in handed[0].text
        notice = await bot.fake.wait_for(lambda: bot.fake.sent(ADMIN))
        assert f"telegram:{ANN}" in notice[0].text and data_of(notice[0]) == [f"tg:rel:telegram:{ANN}"]
        assert await bot.say(ANN, "hello?") == []  # a person has the conversation: the bot stays quiet

        stats = await bot.say(ADMIN, "/stats")
        assert "turns" in stats[0].text and "open handoffs 1" in stats[0].text and "running shoes" in stats[0].text
        models = await bot.say(ADMIN, "/models")
        assert "ranker: built-in default active (no trained versions)" in models[0].text
        assert "serving now:" in models[0].text and "ranker hybrid" in models[0].text
        listed = await bot.say(ADMIN, "/handoffs")
        assert "Waiting for a person (1)" in listed[0].text and "hello?" in listed[1].text

        # only an admin's press releases
        _out, answer = await bot.press(ANN, listed[1], f"tg:rel:telegram:{ANN}")
        assert answer is not None and "team only" in answer.params["text"]
        _out, answer = await bot.press(ADMIN, listed[1], f"tg:rel:telegram:{ANN}")
        assert answer is not None and "back with the bot" in answer.params["text"]
        back = await bot.fake.wait_for(lambda: bot.fake.sent(ANN)[-1] if "back with the shop assistant" in bot.fake.sent(ANN)[-1].text else None)
        assert back is not None
        assert not assistant.store.is_handed_over(f"telegram:{ANN}")
        assert len(await bot.say(ANN, "wireless earbuds")) > 1

    chat(assistant, settings, test)


def test_a_429_storm_delays_replies_but_loses_none(assistant: Assistant, settings: Settings) -> None:
    async def test(bot: Running) -> None:
        bot.fake.flood(6, retry_after=1, methods={"sendMessage", "sendPhoto"})
        t0 = time.monotonic()
        users = [ANN, BO, CY]
        for u in users:
            bot.fake.message(u, "wireless earbuds")
            bot.injected += 1
        await bot.idle(timeout=60)
        took = time.monotonic() - t0
        assert len([c for c in bot.fake.calls if c.status == 429]) == 6
        assert took >= 1.0  # every retry_after was waited out
        for u in users:
            sent = bot.fake.sent(u)
            assert len(sent) == 6 and "products match" in sent[0].text  # head + 5 cards, each exactly once
            texts = [c.text for c in sent]
            assert len(set(texts)) == len(texts)

    chat(assistant, settings, test)


def test_webhook_checks_the_secret_token(assistant: Assistant, settings: Settings) -> None:
    secret = "s3cret-token_for-tests"

    async def test(bot: Running) -> None:
        hook = bot.fake.webhook
        assert hook is not None and hook.secret == secret and hook.url.endswith("/telegram")
        update = {"update_id": 777, "message": {
            "message_id": 1, "date": int(time.time()), "text": "hello",
            "from": {"id": ANN, "is_bot": False, "first_name": "Ann", "language_code": "en"},
            "chat": {"id": ANN, "type": "private", "first_name": "Ann"}}}
        async with ClientSession() as http:
            async with http.post(hook.url, json=update) as r:
                assert r.status == 403
            async with http.post(hook.url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as r:
                assert r.status == 403
            await asyncio.sleep(0.3)
            assert bot.fake.sent(ANN) == [] and bot.shop.turns == 0
            async with http.post(hook.url, data=json.dumps(update), headers={
                    "X-Telegram-Bot-Api-Secret-Token": secret, "Content-Type": "application/json"}) as r:
                assert r.status == 200
        bot.injected += 1
        await bot.idle()
        assert "shop assistant" in bot.fake.sent(ANN)[0].text
        # and updates that Telegram itself delivers (with the secret) are answered too
        sent = await bot.say(BO, "running shoes")
        assert len(sent) == 6 and bot.fake.deliveries

    chat(assistant, settings, test, webhook=True, secret=secret)


def test_an_admin_reindexes_and_the_new_catalog_serves_at_once(shared, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import write_catalog

    engine, nlu, policy = shared
    catalog = write_catalog(tmp_path / "small.csv")
    settings = Settings(data_dir=tmp_path / "data", catalog=catalog, llm="off", telegram_admins=[ADMIN],
                        telegram_max_rate=0, body_view=False)
    assistant = build_assistant(settings, engine=engine, nlu=nlu, policy=policy)

    async def test(bot: Running) -> None:
        note = await bot.say(ADMIN, "/reindex")
        assert note[0].text == "Reindexing the catalog…"
        done = await bot.fake.wait_for(
            lambda: "Now serving" in (bot.fake.chat(ADMIN)[-1].get("text") or "") and bot.fake.chat(ADMIN)[-1], 120)
        assert "Now serving 13 products" in done["text"]
        sent = await bot.say(ANN, "hobbit paperback")
        assert any("The Hobbit" in c.text for c in sent[1:])
        assert assistant.engine is not engine and len(assistant.engine.products) == 13

    try:
        chat(assistant, settings, test)
    finally:
        assistant.close()
