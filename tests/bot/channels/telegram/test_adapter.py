"""The adapter's own mechanics against the fake Bot API server, with a scripted assistant (so timing is
exact): streamed text, per-chat order with concurrency across chats, long callback data that survives a
restart, photos (URL, refused URL, local upload), escaping and long messages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from telegram.ext import ExtBot

from bot.channels.telegram.bot import LeanBot, PayloadCodec, ShopBot, TurnGate
from bot.channels.telegram.http import BotAPIRequest
from bot.channels.telegram.render import OutMessage
from bot.dialogue.replies import Button, Card, Event, LiveText, Reply
from bot.settings import Settings
from bot.store.database import Store
from tests.fakes.telegram_harness import Running, running
from tests.fakes.telegram_server import FakeTelegram, utf16_len

Respond = Callable[[Event], Awaitable[list[Reply]]]


class Scripted:
    """What the adapter needs of the assistant: handle_async, the store, aclose."""

    def __init__(self, store: Store, respond: Respond) -> None:
        self.store = store
        self.respond = respond
        self.events: list[Event] = []

    async def handle_async(self, event: Event) -> list[Reply]:
        self.events.append(event)
        return await self.respond(event)

    async def aclose(self) -> None:
        pass


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'shop.db'}", tmp_path / "buffer")
    yield s
    s.close()


def run(store: Store, respond: Respond, test: Callable[[Running, Scripted], Awaitable[None]], *,
        fake: FakeTelegram | None = None, turns_at_once: int | None = None, **settings: Any) -> None:
    assistant = Scripted(store, respond)
    s = Settings(llm="off", telegram_max_rate=0, **settings)

    async def main() -> None:
        shop = ShopBot(assistant, s, turns_at_once=turns_at_once)  # type: ignore[arg-type]
        async with fake or FakeTelegram() as tg, running(shop, tg) as bot:
            await test(bot, assistant)

    asyncio.run(main())


def card(sku: str, rank: int = 1, **kw: Any) -> Card:
    return Card(sku=sku, title=kw.pop("title", f"Product {sku}"), price=9.5, currency="USD", stock=3, rank=rank, **kw)


def test_streamed_text_types_first_then_edits_one_message_throttled(store: Store) -> None:
    async def respond(event: Event) -> list[Reply]:
        live = LiveText()
        reply = Reply("template", buttons=[Button("👍", "up:T1")], live=live, turn_id="T1")

        async def write() -> None:
            await asyncio.sleep(0.1)
            live.push("Parcels ship")
            await asyncio.sleep(0.02)
            live.push("Parcels ship within")  # too soon after the first: not its own edit
            await asyncio.sleep(0.4)
            live.push("Parcels ship within two working days.")
            await asyncio.sleep(0.02)
            live.finish("Parcels ship within two working days. Tracking comes by email.")

        asyncio.get_running_loop().create_task(write())
        return [reply]

    async def test(bot: Running, _: Scripted) -> None:
        await bot.say(7, "when does my parcel ship?")
        calls = [c for c in bot.fake.calls if c.method in {"sendChatAction", "sendMessage", "editMessageText"}]
        methods = [c.method for c in calls]
        assert methods[0] == "sendChatAction" and calls[0].params["action"] == "typing"
        assert methods.count("sendMessage") == 1
        sent = calls[methods.index("sendMessage")]
        edits = [c for c in calls if c.method == "editMessageText"]
        assert sent.text == "Parcels ship" and [e.text for e in edits] == [
            "Parcels ship within two working days.", "Parcels ship within two working days. Tracking comes by email."]
        assert edits[0].at - sent.at >= 0.25  # throttled
        final = bot.fake.chat(7)[-1]
        assert final["text"].endswith("by email.") and final["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "up:T1"

    run(store, respond, test, telegram_edit_interval=0.25)


def test_withdrawn_stream_leaves_nothing_and_instant_final_is_one_message(store: Store) -> None:
    async def respond(event: Event) -> list[Reply]:
        live = LiveText()

        async def write() -> None:
            if event.text == "withdraw":
                live.push("Our shop gives 90% off")
                await asyncio.sleep(0.05)
                live.finish("")
            else:
                live.finish("Done at once.")

        asyncio.get_running_loop().create_task(write())
        return [Reply("", live=live)]

    async def test(bot: Running, _: Scripted) -> None:
        await bot.say(8, "withdraw")
        assert bot.fake.requests("deleteMessage") and bot.fake.chat(8) == [bot.fake.chat(8)[0]]  # only the user's message
        assert "from" in bot.fake.chat(8)[0] and not bot.fake.chat(8)[0]["from"]["is_bot"]
        sent = await bot.say(9, "fast")
        assert [c.text for c in sent] == ["Done at once."] and not bot.fake.requests("editMessageText")

    run(store, respond, test, telegram_edit_interval=0)


def test_a_slow_chat_does_not_hold_up_others_and_each_chat_keeps_its_order(store: Store) -> None:
    async def respond(event: Event) -> list[Reply]:
        if event.text == "slow":
            await asyncio.sleep(1.0)
        return [Reply(f"re: {event.text}")]

    async def test(bot: Running, _: Scripted) -> None:
        bot.fake.message(1, "slow")
        bot.fake.message(1, "after slow")
        bot.fake.message(2, "quick")
        bot.injected += 3
        await bot.idle()
        order = [(c.chat_id, c.text) for c in bot.fake.sent()]
        assert order.index((2, "re: quick")) < order.index((1, "re: slow"))
        assert order.index((1, "re: slow")) < order.index((1, "re: after slow"))

    run(store, respond, test)


def test_at_most_turns_at_once_turns_run_together_and_each_chat_keeps_its_order(store: Store) -> None:
    running_now: list[str] = []
    most = 0

    async def respond(event: Event) -> list[Reply]:
        nonlocal most
        running_now.append(event.user)
        most = max(most, len(running_now))
        await asyncio.sleep(0.05)
        running_now.remove(event.user)
        return [Reply(f"re: {event.text}")]

    async def test(bot: Running, _: Scripted) -> None:
        for k in range(2):
            for chat in range(1, 7):
                bot.fake.message(chat, f"{chat}-{k}")
                bot.injected += 1
        await bot.idle()
        assert most == 2 and bot.shop.turns == 12
        for chat in range(1, 7):
            assert [c.text for c in bot.fake.sent(chat)] == [f"re: {chat}-0", f"re: {chat}-1"]

    run(store, respond, test, turns_at_once=2)


def test_the_turn_gate_lets_a_waiting_turn_give_up_its_place() -> None:
    async def main() -> None:
        gate = TurnGate(1, hold=0.1)
        started: dict[str, float] = {}
        t0 = time.monotonic()

        async def turn(name: str, seconds: float) -> None:
            async with gate.turn():
                started[name] = time.monotonic() - t0
                await asyncio.sleep(seconds)

        await asyncio.gather(turn("stuck", 1.0), turn("quick", 0.01), turn("next", 0.01))
        assert started["quick"] >= 0.09 and started["quick"] < 0.5  # after the hold, not after the stuck turn
        assert started["next"] - started["quick"] >= 0.005  # one place: quick and next still one after the other
        with pytest.raises(ValueError):
            TurnGate(0, 0.1)

    asyncio.run(main())


def test_one_turn_at_once_with_sqlite_more_with_a_database_server(store: Store) -> None:
    s = Settings(llm="off")
    assert ShopBot(Scripted(store, _nothing), s).gate.size == 1  # type: ignore[arg-type]
    server = Scripted(SimpleNamespace(url="postgresql+psycopg://shop@db/shop"), _nothing)  # type: ignore[arg-type]
    assert ShopBot(server, s).gate.size == 4  # type: ignore[arg-type]
    assert ShopBot(server, s, turns_at_once=2).gate.size == 2  # type: ignore[arg-type]


async def _nothing(event: Event) -> list[Reply]:
    return []


def test_messages_nobody_edits_go_out_as_plain_json_exactly_as_the_typed_methods_send_them(store: Store) -> None:
    outs = [OutMessage("<b>1. Mug</b>\n$9.50", [[Button("ℹ️ Details", "details:A"), Button("👍", "up:T:A")]]),
            OutMessage("<b>2. Cup</b>", [[Button("Next page ▶", "more")]], photo="https://images.example.com/cup.jpg"),
            OutMessage("plain answer")]

    async def respond(event: Event) -> list[Reply]:
        return []

    async def test(bot: Running, _: Scripted) -> None:
        lean = bot.app.bot
        assert isinstance(lean, LeanBot)
        typed = ExtBot(bot.fake.token, base_url=bot.fake.base_url, request=BotAPIRequest(2))
        async with typed:
            for out in outs:
                await bot.shop.post(lean, 21, out)
                await bot.shop.post(typed, 22, out)  # not a LeanBot: the typed send_message / send_photo
        a, b = bot.fake.sent(21), bot.fake.sent(22)
        assert [c.method for c in a] == ["sendMessage", "sendPhoto", "sendMessage"] == [c.method for c in b]
        for x, y in zip(a, b, strict=True):
            assert {k: v for k, v in x.params.items() if k != "chat_id"} == {k: v for k, v in y.params.items() if k != "chat_id"}

    run(store, respond, test)


def test_long_callback_data_is_kept_in_sql_and_works_after_a_restart(store: Store, tmp_path: Path) -> None:
    sku = "VERY-LONG-SKU-" + "x" * 70
    pressed: list[str] = []

    async def respond(event: Event) -> list[Reply]:
        if event.payload:
            pressed.append(event.payload)
            return [Reply("ok")]
        return [Reply("one product:", cards=[card(sku), card("B-2", 2)], buttons=[Button("More", "more")], turn_id="f" * 32)]

    holder: dict[str, Any] = {}

    async def first(bot: Running, _: Scripted) -> None:
        sent = await bot.say(5, "show me")
        datas = [b["callback_data"] for c in sent for b in c.buttons]
        assert all(len(d.encode()) <= 64 for d in datas)
        assert sum(d.startswith("h:") for d in datas) == 4  # details, similar, up, down of the long SKU
        holder["message"], holder["data"] = sent[1].result, next(d for d in sent[1].buttons[0:1] for d in [d["callback_data"]])

    run(store, respond, first)
    store.close()
    restarted = Store(f"sqlite:///{tmp_path / 'shop.db'}", tmp_path / "buffer")  # a new process: empty caches

    async def second(bot: Running, _: Scripted) -> None:
        _sent, answer = await bot.press(5, holder["message"], holder["data"])
        assert answer is not None and answer.params.get("text") == "ok"

    try:
        run(restarted, respond, second)
    finally:
        restarted.close()
    assert pressed == [f"details:{sku}"]
    assert PayloadCodec(restarted).decode("h:unknown") is None


def test_photos_by_url_refused_urls_and_local_uploads(store: Store, tmp_path: Path) -> None:
    image = tmp_path / "mug.jpg"
    image.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")

    async def respond(event: Event) -> list[Reply]:
        return [Reply("", cards=[card("A", 1, image_url="https://images.example.com/a.jpg"),
                                 card("B", 2, image_url=str(image)), card("C", 3, image_url="/no/such/file.jpg")])]

    async def test(bot: Running, _: Scripted) -> None:
        sent = await bot.say(3, "mugs")
        assert [c.method for c in sent] == ["sendMessage", "sendPhoto", "sendMessage"]  # URL refused -> text
        upload = sent[1].params["photo"]
        assert upload["bytes"] == image.read_bytes() and sent[1].text.startswith("2. Product B")
        refused = [c for c in bot.fake.calls if c.method == "sendPhoto" and c.status == 400]
        assert len(refused) == 1 and "wrong file identifier" in str(refused[0].error)
        assert sent[0].text.startswith("1. Product A")

    run(store, respond, test, fake=FakeTelegram(reject_photo_urls=True))


def test_any_title_is_escaped_and_long_texts_are_split(store: Store) -> None:
    nasty = 'Tom & Jerry <Deluxe> "Box" 5\' <b>not bold</b> &amp; </i>'
    long = "\n\n".join(f"Paragraph {i}: " + "words and 😀 emoji " * 40 for i in range(20))

    async def respond(event: Event) -> list[Reply]:
        if event.text == "long":
            return [Reply(long, buttons=[Button("Talk to a person", "handoff")])]
        return [Reply(f"Results for {nasty}:", cards=[card("N-1", title=nasty)])]

    async def test(bot: Running, _: Scripted) -> None:
        sent = await bot.say(4, "nasty")
        assert [c.status for c in sent] == [200, 200]
        assert sent[0].text == f"Results for {nasty}:" and sent[1].text.splitlines()[0] == f"1. {nasty}"
        bold = [e for e in sent[1].result["entities"] if e["type"] == "bold"]
        assert len(bold) == 1 and bold[0]["offset"] == 0  # only the card's own title is bold

        parts = await bot.say(4, "long")
        assert len(parts) >= 3 and all(utf16_len(p.text) <= 4096 for p in parts)
        assert " ".join(p.text for p in parts).split() == long.split()
        assert [bool(p.buttons) for p in parts] == [False] * (len(parts) - 1) + [True]

    run(store, respond, test)


def test_a_table_reply_is_monospaced(store: Store) -> None:
    async def respond(event: Event) -> list[Reply]:
        return [Reply("Here is how they compare:", cards=[card("A"), card("B", 2)],
                      table=[["", "1. A <x>", "2. B & y"], ["price", "$1.00", "$2.00"]],
                      buttons=[Button("Details 1", "details:A"), Button("Details 2", "details:B")])]

    async def test(bot: Running, _: Scripted) -> None:
        sent = await bot.say(6, "compare 1 and 2")
        assert len(sent) == 1 and "1. A <x>" in sent[0].text and "2. B & y" in sent[0].text
        assert [e["type"] for e in sent[0].result["entities"]] == ["pre"]
        assert [b["callback_data"] for b in sent[0].buttons] == ["details:A", "details:B"]

    run(store, respond, test)


def test_stale_buttons_and_expired_keys_are_answered_politely(store: Store) -> None:
    async def respond(event: Event) -> list[Reply]:
        return [Reply("x")]

    async def test(bot: Running, scripted: Scripted) -> None:
        msg = (await bot.say(11, "hi"))[0]
        _sent, answer = await bot.press(11, msg, "h:not-a-key-we-ever-made", language_code="zh")
        assert answer is not None and answer.params["text"] == "这个按钮已失效。"
        _sent, answer = await bot.press(11, msg, "tg:cmp:" + "0" * 32 + ":1,2")
        assert answer is not None and "out of date" in answer.params["text"]
        assert [e.text for e in scripted.events] == ["hi"]  # neither reached the dialogue
        t0 = time.monotonic()
        assert all(a.at - t0 < 5 for a in bot.fake.answers.values())

    run(store, respond, test)


def test_the_payload_table_is_idempotent_and_shared_between_stores(store: Store, tmp_path: Path) -> None:
    codec = PayloadCodec(store)
    payload = "down:" + "a" * 32 + ":" + "S" * 60
    key = codec.encode(payload)
    assert key == codec.encode(payload) == PayloadCodec.key(payload)
    store.save_payload(key, payload)  # again: no error, one row
    other = Store(f"sqlite:///{tmp_path / 'shop.db'}", tmp_path / "buffer2")  # another worker, same database
    try:
        assert PayloadCodec(other).decode(key) == payload
        other.save_payload(key, payload)
    finally:
        other.close()
