"""One shopper never sees, changes or votes on another's history, watchlist, handoff or feedback, whichever
channel they use: a second Telegram user pressing the first one's buttons (or crafted callback data with the
first one's turn and watch ids), a Rasa tracker whose sender is B carrying A's turn ids, and the console, which
shows conversations only to the logged-in owner."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from bot.app import Assistant
from bot.channels.rasa.actions import ActionRecordFeedback, ActionRuntime
from bot.channels.telegram.bot import ShopBot
from bot.console.app import create_app
from bot.settings import Settings
from bot.store.schema import Feedback
from tests.console.conftest import log_in, make_settings
from tests.fakes.telegram_harness import running
from tests.fakes.telegram_server import FakeTelegram

ANN, BO = 3001, 3002
A_QUERY = "waterproof hiking boots"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, llm="off", telegram_max_rate=0, telegram_edit_interval=0)


def _feedback_on(assistant: Assistant, turn_id: str) -> list[tuple[str, str]]:
    with Session(assistant.store.engine) as s:
        return [(u, k) for u, k in s.execute(select(Feedback.user_id, Feedback.kind).where(Feedback.turn_id == turn_id))]


def _texts(calls: list[Any]) -> str:
    return "\n".join(str(c.params.get("text") or c.params.get("caption") or "") for c in calls)


def test_a_second_telegram_user_cannot_use_the_first_ones_buttons(assistant: Assistant, settings: Settings) -> None:
    """B presses, in B's own chat, A's buttons as the bot made them and crafted ones naming A's turn and watch ids.

    Each check is proved able to fail: B's own thumb is recorded through the same path (so a refused vote is the
    ownership check, not a dead button), and B's "forget me" comes only after the votes are counted, since it
    deletes B's rows, a vote B wrongly cast on A's turn among them."""
    store = assistant.store
    a_user, b_user = f"telegram:{ANN}", f"telegram:{BO}"

    async def main() -> None:
        async with FakeTelegram() as tg, running(ShopBot(assistant, settings), tg) as bot:
            a_sent = await bot.say(ANN, A_QUERY)
            a_turn = store.last_turn(a_user)
            assert a_turn is not None
            a_state = store.load_state(a_user) or {}
            a_shown = list(a_state.get("shown") or [])
            assert a_shown and a_state.get("shown_turn")
            # A's thumbs as the bot sent them (a short payload as it is, a long one as the codec's "h:" key)
            a_thumbs = [b["callback_data"] for c in a_sent for b in c.buttons if b.get("text") in ("👍", "👎")]
            assert len(a_thumbs) >= 2, [b for c in a_sent for b in c.buttons]
            watch = store.add_watch(a_user, channel="telegram", chat_id=str(ANN), language="en", query=A_QUERY,
                                    filters={}, expires_at=store.clock() + timedelta(days=30))
            store.handoff(a_user, "call me about my boots")
            b_msg = (await bot.say(BO, "hello"))[-1]  # a message in B's own chat to press buttons under
            b_turn = store.last_turn(b_user)
            assert b_turn is not None

            seen: list[Any] = []
            for data in (*a_thumbs, f"up:{a_turn.turn_id}", f"down:{a_turn.turn_id}",
                         f"up:{a_turn.turn_id}:{a_shown[0]}", f"unwatch:{watch.id}",
                         f"tg:cmp:{a_state.get('shown_turn')}:1,2"):
                sent, answer = await bot.press(BO, b_msg, data)
                seen += sent
                if answer is not None:
                    seen.append(answer)
            seen += await bot.say(BO, "/prefs")
            seen += await bot.say(BO, "/watchlist")
            await bot.press(BO, b_msg, f"up:{b_turn.turn_id}")  # B's own turn: the same path records it
            await assistant.dialogue.drain()  # the turns' rows are written after the replies go out

            # nothing of A's reached B: not the query, the handoff note, nor the products A was shown
            said = _texts(seen) + "\n".join(str(getattr(c, "params", c)) for c in seen)
            assert A_QUERY not in said and "call me about my boots" not in said
            assert not [sku for sku in a_shown if sku in said], said
            # no vote on A's turn, and B's own vote counted: the refusals above were the ownership check
            assert _feedback_on(assistant, a_turn.turn_id) == []
            assert _feedback_on(assistant, b_turn.turn_id) == [(b_user, "thumb_up")]
            assert [w.id for w in store.watches(a_user)] == [watch.id]
            # the store's own check under the dialogue's (either one alone keeps the button from cancelling it)
            assert store.cancel_watch(b_user, watch.id) is False and [w.id for w in store.watches(a_user)] == [watch.id]

            # in a group B sees A's reply and presses its thumb there: refused, so no tick says it was counted;
            # B's press of a thumb under B's own reply is counted and ticked
            a_msg = next(c for c in a_sent if any(b.get("callback_data") == a_thumbs[0] for b in c.buttons))
            n = len(tg.requests("editMessageReplyMarkup"))
            await bot.press(BO, a_msg, a_thumbs[0])
            assert len(tg.requests("editMessageReplyMarkup")) == n
            b_sent = await bot.say(BO, A_QUERY)
            b_msg2, b_thumb = next((c, b["callback_data"]) for c in b_sent for b in c.buttons if b.get("text") == "👍")
            await bot.press(BO, b_msg2, b_thumb)
            ticks = tg.requests("editMessageReplyMarkup")[n:]
            assert ticks and any(b["text"] == "✅ 👍" for b in ticks[-1].buttons)
            await assistant.dialogue.drain()
            assert _feedback_on(assistant, a_turn.turn_id) == []

            # B's "forget me" deletes B's rows and nothing of A's: A's turns, state, watch and handoff intact
            seen, answer = await bot.press(BO, b_msg, "tg:forget:yes")
            await assistant.dialogue.drain()
            assert _feedback_on(assistant, b_turn.turn_id) == [] and store.recent_turns(b_user) == []
            assert A_QUERY not in _texts(seen) + str(answer and answer.params)
            assert store.last_turn(a_user) == a_turn and store.load_state(a_user) == a_state
            assert [w.id for w in store.watches(a_user)] == [watch.id]
            assert store.is_handed_over(a_user)
            assert [(h["user_id"], h["reason"]) for h in store.open_handoffs()] == [(a_user, "call me about my boots")]

    asyncio.run(main())


def _tracker(sender: str, button: str) -> Tracker:
    return Tracker.from_dict({  # type: ignore[typeddict-item]
        "sender_id": sender, "slots": {}, "events": [], "paused": False, "followup_action": None, "active_loop": {},
        "latest_action_name": None, "stack": [], "user_id": None, "active_form": {},
        "latest_message": {"text": f'/thumbs_up{{"button": "{button}"}}', "intent": {"name": "thumbs_up", "confidence": 1},
                           "entities": [{"entity": "button", "value": button}]}})


def test_a_rasa_sender_cannot_vote_on_another_senders_turn(assistant: Assistant) -> None:
    store = assistant.store
    a_user = "rasa:ann"
    a_turn = store.log_turn(a_user, A_QUERY, "Here are 3", intent="search")
    b_turn = store.log_turn("rasa:bo", "boots", "Here are 2", intent="search")
    action = ActionRecordFeedback(ActionRuntime(assistant))

    async def press(sender: str, button: str) -> list[dict[str, Any]]:
        dispatcher = CollectingDispatcher()
        await action.run(dispatcher, _tracker(sender, button), {})
        return dispatcher.messages

    b_said = asyncio.run(press("bo", f"up:{a_turn}"))
    assert _feedback_on(assistant, a_turn) == []
    assert A_QUERY not in str(b_said)
    asyncio.run(press("bo", f"down:{b_turn}"))  # B's own turn: recorded, so the refusal above was not a broken action
    assert _feedback_on(assistant, b_turn) == [("rasa:bo", "thumb_down")]


def test_the_console_shows_conversations_only_to_the_owner(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    from bot.store.database import Store

    with Store(settings.db_url, settings.buffer_dir) as store:
        store.log_turn("telegram:111", A_QUERY, "Here are 3", intent="search")
        store.handoff("telegram:111", "call me about my boots")
        app = create_app(settings, store=store, secret_key="test-secret")
        with TestClient(app, base_url="http://127.0.0.1") as client:
            for path in ("/conversations/telegram:111", "/conversations", "/handoffs", "/?q=telegram:111"):
                r = client.get(path, follow_redirects=False)
                assert r.status_code in (303, 307) and A_QUERY not in r.text and "boots" not in r.text, path
            assert client.get("/api/overview", follow_redirects=False).status_code == 401
            assert log_in(client).status_code == 303
            assert A_QUERY in client.get("/conversations/telegram:111").text  # the owner may read it
            # an id that is a prefix or a pattern of another shopper's shows none of theirs
            for other in ("telegram:11", "telegram:%25", "telegram:_11", "telegram:111%20"):
                assert A_QUERY not in client.get(f"/conversations/{other}").text, other
