"""The Rasa adapter's translations (bot/channels/rasa/translate.py) without a server: Rasa's entities and slots -> the dialogue's
Understanding, the tracker's events -> which slots are new input, replies -> Rasa messages, the dialogue
state -> SlotSet events, the request check; and the dialogue's hook for already-understood messages."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from rasa_sdk import Tracker

from bot.channels.rasa.actions import ActionRecordFeedback
from bot.channels.rasa.server import check_action_call
from bot.channels.rasa.translate import (
    RasaMessage,
    entity_filters,
    entity_ordinals,
    rasa_payload,
    read_message,
    render_replies,
    slot_events,
    understanding,
)
from bot.cli.main import cli
from bot.dialogue.manager import DialogueManager
from bot.dialogue.nlu.parser import NLU
from bot.dialogue.replies import Button, Card, Event, Reply
from bot.dialogue.understanding import Understanding
from retrieval.query import Filters

CATEGORIES = ["apparel", "coats", "shoes", "running", "electronics", "headphones"]
ASSISTANT: Any = SimpleNamespace(nlu=NLU(None, brands=["Nike", "Adidas", "Xiaomi"], categories=CATEGORIES))


def msg(text: str | None = None, intent: str | None = "search_product", entities: Mapping[str, list[Any]] | None = None,
        slots: Mapping[str, Any] | None = None) -> RasaMessage:
    return RasaMessage(sender="u1", text=text, intent=intent, confidence=0.9, entities=dict(entities or {}),
                       slots=dict(slots or {}))


# ----------------------------------------------------------------------- entities -> Understanding


def test_entities_are_normalised_like_typed_text() -> None:
    f, words = entity_filters(ASSISTANT, msg(entities={"color": ["红色", "Blue"], "size": ["M", "42"], "brand": ["耐克"],
                                                       "category": ["coats", "gadgets"]}))
    assert f.colors == {"red", "blue"} and f.sizes == {"m", "42"} and f.brands == {"nike"}
    assert f.categories == {"coats"} and words == ["gadgets"]  # no such category: searched as words


@pytest.mark.parametrize(("entities", "lo", "hi"), [
    ({"price": ["under $80"]}, None, 80.0),
    ({"price": ["100-200元"]}, 100.0, 200.0),
    ({"price": ["between 50 and 100 dollars"]}, 50.0, 100.0),
    ({"price": [50]}, None, 50.0),
    ({"price": ["$60"]}, None, 60.0),
    ({"price": [{"from": {"value": 10}, "to": {"value": 20}}]}, 10.0, 20.0),
    ({"min_price": ["30"], "max_price": [90]}, 30.0, 90.0),
])
def test_price_ranges(entities: dict[str, list[Any]], lo: float | None, hi: float | None) -> None:
    f, _ = entity_filters(ASSISTANT, msg(entities=entities))
    assert (f.min_price, f.max_price) == (lo, hi)


@pytest.mark.parametrize(("values", "expected"), [
    (["second"], [2]), (["2"], [2]), ([3], [3]), (["2nd", "4th"], [2, 4]), (["第二个"], [2]), (["三"], [3]),
    (["last"], [-1]), ([{"value": 2}], [2]), (["first", "first"], [1]), (["zero", 0, True], []),
])
def test_ordinals(values: list[Any], expected: list[int]) -> None:
    assert entity_ordinals(msg(entities={"ordinal": values})) == expected


def test_entities_win_and_the_text_fills_in_what_rasa_left_out() -> None:
    u = understanding(ASSISTANT, msg("red running shoes under $80 size 42", entities={"product": ["running shoes"]}), "search")
    assert u.intent == "search" and u.query == "running shoes" and u.confidence == 0.9
    assert u.filters.colors == {"red"} and u.filters.max_price == 80.0 and u.filters.sizes == {"42"}
    u = understanding(ASSISTANT, msg("red shoes", entities={"color": ["blue"]}), "search")
    assert u.filters.colors == {"blue"}  # Rasa's entity over shopbot's reading of the text
    # a refinement keeps its own words: "cheaper" is what the dialogue acts on
    u = understanding(ASSISTANT, msg("cheaper sneakers", "refine_search", entities={"product": ["sneakers"]}), "refine")
    assert "cheaper" in u.query
    u = understanding(ASSISTANT, msg("compare the first and third", "compare_products"), "compare")
    assert u.ordinals == [1, 3]
    u = understanding(ASSISTANT, msg("where is order 12345?", "ask_support"), "track_order")
    assert u.order_number == "12345"


def test_slots_count_when_the_message_has_no_entities_and_a_button_text_is_not_words() -> None:
    m = msg("/search_product", slots={"product": "winter coat", "color": ["red"], "price": "under $60"})
    assert m.words == ""
    u = understanding(ASSISTANT, m, "search")
    assert u.query == "winter coat" and u.filters == Filters(colors=frozenset({"red"}), max_price=60.0, currency="USD")


# ------------------------------------------------------------------------------- reading Rasa


def tracker(events: list[dict[str, Any]], slots: dict[str, Any] | None = None, **latest: Any) -> Tracker:
    return Tracker.from_dict({"sender_id": "s\x00ender", "slots": slots or {}, "latest_message": latest, "events": events,
                              "paused": False, "followup_action": None, "active_loop": {}, "latest_action_name": None,
                              "stack": [], "user_id": None, "active_form": {}})  # type: ignore[typeddict-item]


def test_only_slots_set_since_shopbots_last_action_are_input() -> None:
    ev: list[dict[str, Any]] = [
        {"event": "action", "name": "action_session_start"}, {"event": "session_started"},
        {"event": "slot", "name": "color", "value": ["red"]},  # carried over into the new session
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "red coat"}, {"event": "slot", "name": "product", "value": "coat"},
        {"event": "action", "name": "action_search_products"},
        {"event": "bot", "text": "5 products match"}, {"event": "slot", "name": "shown_skus", "value": ["A"]},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "under 60"}, {"event": "slot", "name": "price", "value": "under 60"},
        {"event": "action", "name": "budget_form"}, {"event": "slot", "name": "size", "value": ["m"]},
    ]
    m = read_message(tracker(ev, {"color": ["red"], "product": "coat"}), {"action_search_products"})
    assert m.slots == {"price": "under 60", "size": ["m"]} and m.sender == "s ender"
    # a hand-written request without events: every slot it carries counts
    assert read_message(tracker([], {"product": "coat"})).slots == {"product": "coat"}


def test_latest_message_intent_entities_and_button() -> None:
    t = tracker([], text='/show_details{"button": "details:ELE-00002"}', intent={"name": "show_details", "confidence": 1},
                entities=[{"entity": "button", "value": "details:ELE-00002"}, {"entity": "ordinal", "value": "2"},
                          {"value": "no name"}, "junk"], metadata={"language": "zh-CN"})
    m = read_message(t)
    assert (m.intent, m.confidence, m.payload, m.language) == ("show_details", 1.0, "details:ELE-00002", "zh-CN")
    assert m.entities == {"ordinal": ["2"]} and m.words == ""
    empty = read_message(tracker([]))
    assert (empty.text, empty.intent, empty.confidence, empty.entities, empty.payload) == (None, None, None, {}, None)


def test_feedback_words_and_intents() -> None:
    action = ActionRecordFeedback(runtime=None)
    rt: Any = SimpleNamespace(assistant=ASSISTANT)
    e = action.event(rt, msg("that's not what I meant", "feedback_negative"))
    assert e.understood is not None and e.understood.intent == "feedback_negative"
    e = action.event(rt, msg("meh", "give_feedback", entities={"feedback": ["up"]}))
    assert e.understood is not None and e.understood.intent == "feedback_positive"
    e = action.event(rt, RasaMessage(sender="u1", text="/give_feedback", intent="give_feedback", payload="down:t1"))
    assert e.payload == "down:t1" and e.understood is None and e.text is None


# ------------------------------------------------------------------------------ writing Rasa


def card(sku: str, rank: int, image: str | None = None) -> Card:
    return Card(sku=sku, title=f"Product {sku}", price=9.5, currency="USD", stock=3, rank=rank, image_url=image)


def test_buttons_become_rasa_intent_messages() -> None:
    assert rasa_payload("details:ELE-1") == '/show_details{"button": "details:ELE-1"}'
    assert rasa_payload("up:abc:SKU") == '/give_feedback{"button": "up:abc:SKU"}'
    assert rasa_payload("more") == '/more_results{"button": "more"}'
    assert rasa_payload("weird") == '/shopbot_button{"button": "weird"}'


def test_a_product_list_a_product_page_a_table_and_plain_text() -> None:
    listing = Reply("2 products match:", cards=[card("A", 1, "http://img/a.jpg"), card("B", 2)],
                    buttons=[Button("More", "more")], turn_id="t1", intent="search")
    page = Reply("Product A\n$9.50", cards=[card("A", 1, "http://img/a.jpg")], buttons=[Button("👍", "up:t2:A")],
                 intent="details", language="zh")
    table = Reply("Here is how they compare:", table=[["", "1", "2"], ["price", "$1", "$2"]], intent="compare")
    out = render_replies([listing, page, table, Reply(""), Reply("Thanks!")])
    head, a, b, p, tab, thanks = out
    assert head["text"] == "2 products match:" and head["shopbot"]["turn_id"] == "t1" and [c["sku"] for c in head["shopbot"]["cards"]] == ["A", "B"]
    assert a["image"] == "http://img/a.jpg" and "Product A - $9.50 - in stock (3) - A" in a["text"] and "shopbot" not in a
    assert [x["title"] for x in a["buttons"]] == ["Details", "Similar"]
    assert [x["title"] for x in b["buttons"]] == ["Details", "Similar", "More"] and b["image"] is None
    assert p["image"] == "http://img/a.jpg" and p["text"].startswith("Product A") and p["buttons"][0]["payload"] == '/give_feedback{"button": "up:t2:A"}'
    assert "price | $1" in tab["text"] and thanks == {"text": "Thanks!", "buttons": [], "shopbot": thanks["shopbot"]}


def test_slot_events_mirror_the_state_in_the_domains_types_and_only_changes() -> None:
    state = {"query": "coat", "filters": {"colors": ["red"], "max_price": 80.0, "sizes": [], "brands": [], "categories": []},
             "shown": ["A", "B"], "offset": 5, "mode": "search", "focus": None, "last_turn": "t9"}
    domain = {"slots": {"product": {"type": "text"}, "color": {"type": "text"}, "max_price": {"type": "float"},
                        "shown_skus": {"type": "list"}, "page": {"type": "float"}, "size": {"type": "list"}}}
    events = slot_events(state, {"product": "coat", "size": None}, domain, page_size=5)
    assert {e["name"]: e["value"] for e in events} == {"color": "red", "max_price": 80.0, "shown_skus": ["A", "B"], "page": 2.0}
    everything = {e["name"] for e in slot_events(state, {}, None, page_size=5)}
    assert everything == {"product", "color", "max_price", "shown_skus", "page", "search_mode", "last_turn_id"}
    assert slot_events(None, {}, {"slots": {"product": {"type": "text"}}}, 5) == []


# --------------------------------------------------------------------------- the request check


SERVED = {"action_search_products": object()}


def good() -> dict[str, Any]:
    return {"next_action": "action_search_products", "tracker": {"sender_id": "u", "slots": {}, "latest_message": {},
                                                                  "events": []}, "domain": {}, "version": "3.6.21"}


def test_the_request_check() -> None:
    assert check_action_call(good(), SERVED) is None
    body = good()
    body["tracker"]["latest_message"] = {"intent": "search"}
    assert check_action_call(body, SERVED) == (400, "tracker.latest_message.intent must be an object, not a string.")
    body = good()
    body["tracker"]["paused"] = "no"
    assert check_action_call(body, SERVED) == (400, "tracker.paused must be a boolean, not a string.")
    body = good()
    body["version"] = 3.6
    assert check_action_call(body, SERVED) == (400, "version must be a string, not a number.")
    body = good()
    body["tracker"]["events"] = [{"event": "user"}, 7]
    assert check_action_call(body, SERVED) == (400, "Each event in tracker.events must be a JSON object.")
    assert check_action_call(None, SERVED) is not None and check_action_call("x", SERVED) is not None


# ------------------------------------------------------------------------------ the dialogue hook


class CountingNLU:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, text: str, state: Mapping[str, Any]) -> Understanding:
        self.calls += 1
        return Understanding("other")


class MemoryStore:
    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        self.turns: list[Any] = []

    def touch(self, channel: str, external_id: str, language: str | None) -> tuple[str, bool]:
        return f"{channel}:{external_id}", False

    def load_state(self, user_id: str) -> dict[str, Any] | None:
        return self.states.get(user_id)

    def save_state(self, user_id: str, state: dict[str, Any]) -> None:
        self.states[user_id] = dict(state)

    def log(self, turn: Any) -> str:
        self.turns.append(turn)
        return str(turn.turn_id)

    def feedback(self, user_id: str, kind: str, *, turn_id: str | None = None, sku: str | None = None) -> str:
        return "f"

    def handoff(self, user_id: str, reason: str) -> None:
        pass


def test_an_understood_event_skips_the_dialogues_nlu(engine) -> None:  # type: ignore[no-untyped-def]
    store, nlu = MemoryStore(), CountingNLU()
    dm = DialogueManager(engine, store, nlu, lambda *a: None)
    u = Understanding("search", 0.8, query="winter coat", filters=Filters(colors=frozenset({"red"})))
    [r] = dm.handle(Event(user="u1", channel="rasa", text="I'd like a red winter coat", understood=u))
    assert r.intent == "search" and r.cards and all(c.attributes.get("color") == "red" for c in r.cards)
    assert store.turns[0].confidence == 0.8 and store.turns[0].text_in == "I'd like a red winter coat"
    # understood, but no words at all (Rasa's "/recommend" style triggers): still routed, not "empty"
    [r] = dm.handle(Event(user="u1", channel="rasa", text=None, understood=Understanding("recommend")))
    assert r.intent == "recommend" and r.cards and nlu.calls == 0
    [r] = dm.handle(Event(user="u1", channel="rasa", text="red coat"))  # without it, the dialogue's NLU runs
    assert nlu.calls == 1 and r.intent == "other"


# --------------------------------------------------------------------------------------- CLI


def test_shopbot_actions_refuses_a_busy_port_at_once_in_one_sentence() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = CliRunner().invoke(cli, ["actions", "--port", str(port)])
    assert r.exit_code == 1 and r.output.strip() == (
        f"Error: Cannot listen on 127.0.0.1:{port} (Address already in use); stop what uses it or pick another --port.")
    r = CliRunner().invoke(cli, ["actions", "--help"])
    assert r.exit_code == 0 and "--port" in r.output and "5055" in r.output and "127.0.0.1" in r.output
