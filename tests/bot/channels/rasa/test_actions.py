"""The Rasa action server over HTTP: rasa-sdk's real server (started in-process on a free loopback port)
serving shopbot's actions, called with requests of the shape Rasa 3.6.21 sends (tests/data has a
capture). A small simulator plays Rasa's side: it keeps the tracker, fills slots from entities the way
the example domain's mappings do, and applies the events each action returns, so slots make real round
trips. The assistant is the real one (demo catalog, intent model, policy, SQLite) without a language
model, or with a scripted one."""

from __future__ import annotations

import asyncio
import copy
import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select

from bot.app import Assistant, build_assistant
from bot.channels.rasa.actions import ACTIONS, BUTTON_INTENTS, MIRRORED_SLOTS, ActionRuntime
from bot.channels.rasa.server import ActionServer
from bot.settings import Settings
from bot.store.records import StoreUnavailable
from bot.store.schema import Feedback, Handoff

ROOT = Path(__file__).parents[4]
CAPTURE = ROOT / "tests" / "data" / "rasa_action_request.json"
DOMAIN = yaml.safe_load((ROOT / "docker" / "rasa" / "domain.yml").read_text(encoding="utf-8"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve(shared, tmp_path: Path) -> Iterator[Callable[..., ActionServer]]:  # type: ignore[no-untyped-def]
    """Start an action server: ``serve(llm=None, deadline=None, store=None, **settings)``."""
    started: list[tuple[ActionServer, Assistant]] = []

    def start(llm: Any = None, deadline: float | None = None, store: Any = None, **settings: Any) -> ActionServer:
        engine, nlu, policy = shared
        s = Settings(data_dir=tmp_path / f"s{len(started)}", llm="auto" if llm else "off", **settings)
        assistant = build_assistant(s, engine=engine, nlu=nlu, policy=policy, llm=llm or False, store=store)
        runtime = ActionRuntime(assistant, llm_timeout=s.llm_timeout, deadline=deadline)
        server = ActionServer(runtime, port=free_port()).start()
        started.append((server, assistant))
        return server

    yield start
    for server, assistant in started:
        server.stop()
        assistant.close()


@pytest.fixture
def server(serve) -> ActionServer:  # type: ignore[no-untyped-def]
    return serve()  # type: ignore[no-any-return]


class Rasa:
    """Rasa 3.6's side of the action protocol for one conversation (sender)."""

    def __init__(self, url: str, sender: str | None = None, domain: Mapping[str, Any] = DOMAIN) -> None:
        self.url = url + "/webhook"
        self.sender = sender or f"rest-{uuid.uuid4().hex[:8]}"
        self.domain = copy.deepcopy(dict(domain))
        self.slots: dict[str, Any] = {name: None for name in self.domain.get("slots", {})}
        self.paused = False
        now = time.time()
        self.events: list[dict[str, Any]] = [
            {"event": "action", "timestamp": now, "name": "action_session_start", "policy": None, "confidence": 1.0},
            {"event": "session_started", "timestamp": now},
            {"event": "action", "timestamp": now, "name": "action_listen", "policy": None, "confidence": None},
        ]
        self.latest: dict[str, Any] = {}

    def user(self, text: str, intent: str, entities: Sequence[tuple[str, Any]] = ()) -> Rasa:
        ents = [{"entity": e, "value": v, "start": 0, "end": 0, "extractor": "CRFEntityExtractor"} for e, v in entities]
        self.latest = {"intent": {"name": intent, "confidence": 0.91}, "entities": ents, "text": text,
                       "message_id": uuid.uuid4().hex, "metadata": {},
                       "intent_ranking": [{"name": intent, "confidence": 0.91}]}
        self.events.append({"event": "user", "timestamp": time.time(), "text": text, "parse_data": self.latest,
                            "input_channel": "rest", "message_id": self.latest["message_id"]})
        for name, slot in self.domain.get("slots", {}).items():  # from_entity slot mappings
            for m in slot.get("mappings", []):
                values = [v for e, v in entities if m.get("type") == "from_entity" and e == m.get("entity")]
                if values:
                    self.set_slot(name, values if slot.get("type") == "list" else values[0])
        self.events.append({"event": "user_featurization", "timestamp": time.time(), "use_text_for_featurization": False})
        return self

    def set_slot(self, name: str, value: Any) -> None:
        self.slots[name] = value
        self.events.append({"event": "slot", "timestamp": time.time(), "name": name, "value": value})

    def request(self, action: str) -> dict[str, Any]:
        return {
            "next_action": action, "sender_id": self.sender, "version": "3.6.21", "domain": self.domain,
            "tracker": {"sender_id": self.sender, "slots": dict(self.slots), "latest_message": self.latest,
                        "latest_event_time": time.time(), "followup_action": None, "paused": self.paused,
                        "events": list(self.events), "latest_input_channel": "rest", "active_loop": {},
                        "latest_action": {"action_name": "action_listen"}, "latest_action_name": "action_listen"},
        }

    def run(self, action: str, client: httpx.Client | None = None) -> dict[str, Any]:
        """Call ``action`` and apply what it returns, as Rasa does; the response body."""
        r = (client or httpx).post(self.url, json=self.request(action), timeout=60)  # type: ignore[attr-defined]
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        self.events.append({"event": "action", "timestamp": time.time(), "name": action, "policy": "RulePolicy",
                            "confidence": 1.0})
        for m in body["responses"]:
            self.events.append({"event": "bot", "timestamp": time.time(), "text": m.get("text"), "data": {}})
        for e in body["events"]:
            if e["event"] == "slot":
                assert e["name"] in self.slots, f"{e['name']} is not in the domain"
                self.slots[e["name"]] = e["value"]
            elif e["event"] == "pause":
                self.paused = True
            self.events.append(e)
        self.events.append({"event": "action", "timestamp": time.time(), "name": "action_listen"})
        return body

    def say(self, text: str, intent: str, action: str, entities: Sequence[tuple[str, Any]] = ()) -> dict[str, Any]:
        return self.user(text, intent, entities).run(action)

    def press(self, button: Mapping[str, str], action: str) -> dict[str, Any]:
        """A button press: Rasa parses "/intent{...}" itself (RegexMessageHandler) and runs the rule's action."""
        payload = button["payload"]
        intent, _, data = payload[1:].partition("{")
        entities = list(json.loads("{" + data).items()) if data else []
        return self.user(payload, intent, entities).run(action)


def text_of(body: Mapping[str, Any]) -> str:
    return "\n".join(m.get("text") or "" for m in body["responses"])


def buttons_of(body: Mapping[str, Any]) -> list[dict[str, str]]:
    return [b for m in body["responses"] for b in m.get("buttons") or []]


def button(body: Mapping[str, Any], kind: str) -> dict[str, str]:
    return next(b for b in buttons_of(body) if json.loads("{" + b["payload"].partition("{")[2])["button"].startswith(kind))


def slots_set(body: Mapping[str, Any]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in body["events"] if e["event"] == "slot"}


def shown_prices(server: ActionServer, skus: Sequence[str]) -> list[float]:
    engine = server.runtime.assistant.engine
    return [p.price for p in (engine.product(s) for s in skus) if p is not None]


# ------------------------------------------------------------------------------ the captured request


def test_the_request_rasa_3_6_21_really_sends_gets_products_back(server: ActionServer) -> None:
    body = json.loads(CAPTURE.read_text(encoding="utf-8"))
    r = httpx.post(server.url + "/webhook", json=body, timeout=60)
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == {"events", "responses"}
    head, *cards = out["responses"]
    assert "products match" in head["text"] and head["shopbot"]["intent"] == "search"
    assert len(cards) == 5 and all(" - $" in c["text"] for c in cards)
    assert any("sneaker" in c["text"].lower() or "shoe" in c["text"].lower() for c in cards)
    # only slots the shop's domain declares are written (it has "product", already "sneakers")
    assert all(e["name"] in body["domain"]["slots"] for e in out["events"] if e["event"] == "slot")


def test_the_server_lists_its_actions_and_is_healthy(server: ActionServer) -> None:
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}
    names = {a["name"] for a in httpx.get(server.url + "/actions").json()}
    assert names == {a.action_name for a in ACTIONS} == set(DOMAIN["actions"])


# --------------------------------------------------------------------------------- each action


def test_search_refine_more_details_compare_similar_recommend(server: ActionServer) -> None:
    rasa = Rasa(server.url)
    body = rasa.say("red winter coat under $80", "search_product", "action_search_products",
                    [("product", "winter coat"), ("color", "red"), ("price", "under $80")])
    head = body["responses"][0]["text"]
    assert "products match (red, " in head and "under 80)" in head
    s = rasa.slots
    assert s["product"] == "winter coat" and s["color"] == ["red"] and s["max_price"] == 80.0
    assert len(s["shown_skus"]) == 5 and s["page"] == 1.0 and s["search_mode"] == "search"
    assert set(slots_set(body)) >= {"max_price", "shown_skus", "page", "search_mode", "last_turn_id"}
    assert all(p <= 80 for p in shown_prices(server, rasa.slots["shown_skus"]))
    cards = body["responses"][1:]
    assert all({b["title"] for b in c["buttons"]} >= {"Details", "Similar"} for c in cards)
    assert {b["title"] for b in cards[-1]["buttons"]} >= {"More", "Cheaper", "👍", "👎"}
    engine = server.runtime.assistant.engine
    for sku, card in zip(rasa.slots["shown_skus"], cards, strict=True):
        product = engine.product(sku)
        assert product is not None and card["image"] == product.image_url and sku in card["text"]

    rasa.say("running shoes", "search_product", "action_search_products", [("product", "running shoes")])
    first = rasa.slots["shown_skus"]
    body = rasa.say("cheaper", "refine_search", "action_refine_search")
    cheaper = rasa.slots["shown_skus"]
    assert cheaper and max(shown_prices(server, cheaper)) < min(shown_prices(server, first))
    assert rasa.slots["max_price"] < min(shown_prices(server, first)) and rasa.slots["product"] == "running shoes"

    body = rasa.say("show me more", "more_results", "action_search_products")
    assert text_of(body).startswith("More results (6-") or "That's all" in text_of(body)

    rasa.say("a red winter coat", "search_product", "action_search_products", [("product", "winter coat"), ("color", "red")])
    shown = rasa.slots["shown_skus"]
    body = rasa.say("tell me more about the second one", "show_details", "action_show_details", [("ordinal", "second")])
    [page] = body["responses"]
    assert page["shopbot"]["cards"][0]["sku"] == shown[1]
    assert "In stock" in page["text"] or "Out of stock" in page["text"]
    assert rasa.slots["focused_sku"] == shown[1]

    body = rasa.say("compare 1 and 3", "compare_products", "action_compare", [("ordinal", "1"), ("ordinal", "3")])
    [table] = body["responses"]
    assert "Here is how they compare" in table["text"] and "price" in table["text"]
    assert [c["sku"] for c in table["shopbot"]["cards"]] == [shown[0], shown[2]]

    body = rasa.say("more like the first one", "similar_products", "action_recommend", [("ordinal", "first")])
    assert text_of(body).startswith("Products like") and rasa.slots["search_mode"] == "similar"

    body = rasa.say("what do you recommend?", "recommend", "action_recommend")
    assert text_of(body).startswith("You might like these") and rasa.slots["search_mode"] == "recommend"


def test_details_by_sku_and_the_buttons_round_trip(server: ActionServer) -> None:
    rasa = Rasa(server.url)
    sku = "ELE-00002"
    body = rasa.say(f"show me {sku}", "show_details", "action_show_details", [("sku", sku)])
    [page] = body["responses"]
    assert page["shopbot"]["cards"][0]["sku"] == sku and "$68.00" in page["text"]
    similar = button(body, "similar")
    assert similar["payload"] == f'/similar_products{{"button": "similar:{sku}"}}'
    body = rasa.press(similar, "action_recommend")
    assert text_of(body).startswith("Products like") and sku not in rasa.slots["shown_skus"]
    details = next(b for b in body["responses"][1]["buttons"] if b["title"] == "Details")
    other = rasa.slots["shown_skus"][0]
    body = rasa.press(details, "action_show_details")
    assert body["responses"][0]["shopbot"]["cards"][0]["sku"] == other


def test_a_search_in_chinese_with_chinese_entities(server: ActionServer) -> None:
    rasa = Rasa(server.url)
    body = rasa.say("我想买红色的外套", "search_product", "action_search_products", [("product", "外套"), ("color", "红色")])
    assert "找到" in text_of(body) and rasa.slots["color"] == ["red"]
    assert body["responses"][0]["shopbot"]["language"] == "zh"


def test_a_support_question_is_answered_from_the_policy(server: ActionServer) -> None:
    rasa = Rasa(server.url)
    body = rasa.say("how do I return shoes?", "ask_support", "action_answer_support")
    text = text_of(body)
    assert "30 days" in text and "Returns" in text
    body = rasa.say("can I pay with PayPal?", "ask_support", "action_answer_support")
    assert "PayPal" in text_of(body)
    body = rasa.say("怎么退货", "ask_support", "action_answer_support")
    assert "退" in text_of(body)


def test_describe_product_writes_a_description_with_the_facts_under_it(server: ActionServer) -> None:
    rasa = Rasa(server.url)
    rasa.say("wireless earbuds", "search_product", "action_search_products", [("product", "wireless earbuds")])
    sku = rasa.slots["shown_skus"][0]
    product = server.runtime.assistant.engine.product(sku)
    assert product is not None
    body = rasa.say("describe the first one", "describe_product", "action_describe_product", [("ordinal", "first")])
    [page] = body["responses"]
    assert page["shopbot"]["cards"][0]["sku"] == sku and page["text"].rstrip().endswith(sku)
    assert f"${product.price:.2f}" in page["text"]
    # "describe it" after the details: the product on screen
    body = rasa.say("describe it", "describe_product", "action_describe_product")
    assert body["responses"][0]["shopbot"]["cards"][0]["sku"] == sku


def test_feedback_buttons_and_words_are_logged_against_the_turn(server: ActionServer) -> None:
    rasa = Rasa(server.url)
    body = rasa.say("running shoes", "search_product", "action_search_products", [("product", "running shoes")])
    turn = rasa.slots["last_turn_id"]
    up = button(body, "up")
    assert up["payload"] == f'/give_feedback{{"button": "up:{turn}"}}'
    assert text_of(rasa.press(up, "action_record_feedback")) == "Thanks for the feedback!"
    body = rasa.say("that's not what I meant", "feedback_negative", "action_record_feedback")
    assert "Sorry about that" in text_of(body)
    store = server.runtime.assistant.store
    store.flush()
    with store.engine.connect() as c:
        rows = c.execute(select(Feedback.kind, Feedback.turn_id).order_by(Feedback.created_at)).all()
    assert [r.kind for r in rows] == ["thumb_up", "not_what_i_meant"] and rows[0].turn_id == turn


def test_handoff_pauses_the_conversation_and_the_bot_stays_quiet(server: ActionServer) -> None:
    rasa = Rasa(server.url)
    body = rasa.say("talk to a person", "human_handoff", "action_handoff")
    assert "colleague" in text_of(body)
    assert {"event": "pause", "timestamp": None} in body["events"] and rasa.paused
    body = rasa.say("hello??", "search_product", "action_search_products")
    assert body["responses"] == [] and body["events"][-1]["event"] == "pause"
    store = server.runtime.assistant.store
    store.flush()
    with store.engine.connect() as c:
        assert c.execute(select(Handoff.user_id)).scalars().all() == [f"rasa:{rasa.sender}"]


# ------------------------------------------------------------------------------------ slots


def test_slots_round_trip_and_a_new_search_does_not_inherit_the_mirrored_filters(server: ActionServer) -> None:
    rasa = Rasa(server.url)
    rasa.say("red winter coat", "search_product", "action_search_products", [("product", "winter coat"), ("color", "red")])
    assert rasa.slots["color"] == ["red"] and rasa.slots["page"] == 1.0
    rasa.say("more", "more_results", "action_search_products")
    assert rasa.slots["page"] == 2.0
    # the colour slot still says red (shopbot wrote it), but a new search starts afresh
    body = rasa.say("running shoes", "search_product", "action_search_products", [("product", "running shoes")])
    assert rasa.slots["color"] is None and rasa.slots["product"] == "running shoes" and rasa.slots["page"] == 1.0
    assert "(red" not in text_of(body)


def test_a_slot_the_shops_own_form_set_is_read_as_the_shoppers_wish(server: ActionServer) -> None:
    rasa = Rasa(server.url)
    rasa.user("running shoes", "search_product", [("product", "running shoes")])
    rasa.set_slot("price", "under $70")  # e.g. a budget form filled this before the search ran
    body = rasa.run("action_search_products")  # (the demo catalog's running shoes start at $63.49)
    assert "under 70" in text_of(body) and rasa.slots["max_price"] == 70.0
    assert all(p <= 70 for p in shown_prices(server, rasa.slots["shown_skus"]))


def test_slots_are_written_in_the_type_the_shops_domain_declares(server: ActionServer) -> None:
    domain = copy.deepcopy(DOMAIN)
    domain["slots"]["color"] = {"type": "text", "influence_conversation": False, "mappings": [{"type": "custom"}]}
    del domain["slots"]["shown_skus"]
    rasa = Rasa(server.url, domain=domain)
    body = rasa.say("red coat", "search_product", "action_search_products", [("product", "coat"), ("color", "red")])
    s = slots_set(body)
    assert s["color"] == "red" and "shown_skus" not in s and set(s) <= set(MIRRORED_SLOTS)


# ------------------------------------------------------------------------------- HTTP errors


@pytest.mark.parametrize(("mutate", "status", "error"), [
    (lambda b: b.pop("tracker"), 400, "no tracker"),
    (lambda b: b.update(tracker="tg-1"), 400, "tracker must be a JSON object, not a string"),
    (lambda b: b["tracker"].update(events={"event": "user"}), 400, "tracker.events must be a list"),
    (lambda b: b["tracker"].update(slots=["product"]), 400, "tracker.slots must be an object"),
    (lambda b: b["tracker"]["latest_message"].update(text=42), 400, "latest_message.text must be a string, not a number"),
    (lambda b: b["tracker"]["latest_message"].update(entities=["sneakers"]), 400, "Each entity"),
    (lambda b: b["tracker"].pop("sender_id"), 400, "no sender_id"),
    (lambda b: b.pop("next_action"), 400, "no next_action"),
    (lambda b: b.update(next_action=7), 400, "no next_action"),
    (lambda b: b.update(domain="shop"), 400, "domain must be a JSON object"),
    (lambda b: b.update(next_action="action_make_coffee"), 404, "No action named 'action_make_coffee'"),
])
def test_bad_action_calls_get_a_clear_http_error(server: ActionServer, mutate: Callable[[dict[str, Any]], Any],
                                                 status: int, error: str) -> None:
    body = json.loads(CAPTURE.read_text(encoding="utf-8"))
    mutate(body)
    r = httpx.post(server.url + "/webhook", json=body, timeout=30)
    assert r.status_code == status and error in r.json()["error"], r.text
    assert set(r.json()) == {"error", "action_name"}


def test_a_body_that_is_not_json_or_not_an_object(server: ActionServer) -> None:
    r = httpx.post(server.url + "/webhook", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "The request body is not valid JSON."
    r = httpx.post(server.url + "/webhook", json=["action_search_products"])
    assert r.status_code == 400 and "JSON object" in r.json()["error"]
    r = httpx.post(server.url + "/webhook", content=b"")
    assert r.status_code == 400


def test_unknown_action_names_the_served_ones_and_a_call_without_domain_asks_for_it(server: ActionServer) -> None:
    rasa = Rasa(server.url).user("hi", "greet")
    r = httpx.post(rasa.url, json=rasa.request("action_unknown"))
    assert r.status_code == 404 and r.json()["action_name"] == "action_unknown"
    assert "action_search_products" in r.json()["error"]
    body = rasa.request("action_search_products")  # this server has not seen a domain yet
    del body["domain"]
    r = httpx.post(server.url + "/webhook", json=body)
    assert r.status_code == 449  # rasa-sdk: "send the domain" (Rasa >= 3.7 sends only a digest)


def test_compressed_requests_are_understood(server: ActionServer) -> None:
    import zlib

    body = json.loads(CAPTURE.read_text(encoding="utf-8"))
    r = httpx.post(server.url + "/webhook", content=zlib.compress(json.dumps(body).encode()),
                   headers={"Content-Encoding": "deflate", "content-type": "application/json"}, timeout=60)
    assert r.status_code == 200 and r.json()["responses"]


# ------------------------------------------------------------------------ concurrency, failures


def test_concurrent_conversations_each_get_their_own_answers(server: ActionServer) -> None:
    queries = ["running shoes", "wireless earbuds", "winter coat", "laptop", "backpack", "coffee", "phone case", "yoga mat"]

    def chat(i: int) -> tuple[str, list[str], str]:
        rasa = Rasa(server.url, sender=f"c{i}")
        q = queries[i % len(queries)]
        with httpx.Client(timeout=60) as client:
            rasa.user(q, "search_product", [("product", q)]).run("action_search_products", client)
            rasa.user("cheaper", "refine_search").run("action_refine_search", client)
        return q, rasa.slots["shown_skus"] or [], rasa.slots["product"]

    t0 = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(chat, range(16)))
    assert time.monotonic() - t0 < 60
    for q, _shown, product in results:
        assert product == q  # nobody got another shopper's search
    same = [r[1] for r in results if r[0] == "running shoes"]
    assert all(s == same[0] for s in same)


class DownStore:
    """A store whose database and buffer are both unusable: every call fails."""

    def __getattr__(self, name: str) -> Any:
        def fail(*args: object, **kwargs: object) -> Any:
            raise StoreUnavailable("The database at sqlite:///x cannot be reached; start it and try again.")

        return fail

    def close(self) -> None:
        pass


def test_a_store_that_is_down_gets_a_polite_answer_and_a_valid_response(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(store=DownStore())
    body = Rasa(server.url).say("running shoes", "search_product", "action_search_products", [("product", "running shoes")])
    assert body == {"events": [], "responses": [{
        "text": "Sorry, I can't reach the shop's records right now. Please try again in a minute.",
        "buttons": [], "elements": [], "custom": {}, "template": None, "response": None, "image": None,
        "attachment": None}]}


def test_an_unreachable_database_still_answers_and_buffers_the_rows(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    server = serve(database_url=f"postgresql+psycopg://shop:pw@127.0.0.1:{port}/shop")
    rasa = Rasa(server.url)
    body = rasa.say("running shoes", "search_product", "action_search_products", [("product", "running shoes")])
    assert ("products match" in text_of(body) or "Best matches" in text_of(body)) and rasa.slots["shown_skus"]
    body = rasa.say("cheaper", "refine_search", "action_refine_search")  # the state survived in this process
    assert rasa.slots["max_price"] is not None
    assert server.runtime.assistant.store.pending() > 0


class Slow:
    """The LLM protocol, answering after ``delay`` seconds (or never in time)."""

    name = "slow"
    version = "1"

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def stream(self, messages: Any, *, max_tokens: int = 256, temperature: float = 0.2,
                     stop: Any = None, timeout: float | None = None) -> Any:
        from model.llm.base import LLMTimeout

        await asyncio.sleep(min(self.delay, timeout or self.delay))
        if timeout is not None and self.delay > timeout:
            raise LLMTimeout(f"no answer within {timeout:.1f} s")
        yield "You can return it within 30 days of delivery."

    async def complete(self, messages: Any, **kw: Any) -> str:
        return "".join([p async for p in self.stream(messages, **kw)])


def test_a_slow_model_never_holds_the_action_past_its_deadline(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(llm=Slow(delay=30.0), llm_timeout=0.5)
    t0 = time.monotonic()
    body = Rasa(server.url).say("how do I return shoes?", "ask_support", "action_answer_support")
    assert time.monotonic() - t0 < 5
    assert "30 days" in text_of(body) and "Returns" in text_of(body)  # the policy's own text


def test_a_stuck_turn_is_answered_politely_at_the_deadline(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(deadline=1.0)
    assistant = server.runtime.assistant

    async def stuck(event: Any) -> Any:
        await asyncio.sleep(30)

    assistant.handle_async = stuck  # type: ignore[method-assign]
    t0 = time.monotonic()
    body = Rasa(server.url).say("running shoes", "search_product", "action_search_products")
    assert time.monotonic() - t0 < 5
    assert text_of(body) == "Sorry, that is taking too long. Please try again in a moment." and body["events"] == []


def test_a_bug_in_a_turn_is_a_polite_message_not_a_500(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve()

    async def broken(event: Any) -> Any:
        raise ZeroDivisionError("oops")

    server.runtime.assistant.handle_async = broken  # type: ignore[method-assign]
    body = Rasa(server.url).say("我想买手机", "search_product", "action_search_products")
    assert text_of(body) == "抱歉，我这边出了点问题。请再试一次，或说“转人工”。"


# ------------------------------------------------------------------------- the example project


def test_the_example_project_routes_every_button_and_declares_every_slot() -> None:
    rasa_dir = ROOT / "docker" / "rasa"
    rules = yaml.safe_load((rasa_dir / "data" / "rules.yml").read_text(encoding="utf-8"))["rules"]
    routed = {r["steps"][0]["intent"]: r["steps"][1]["action"] for r in rules}
    assert set(BUTTON_INTENTS.values()) <= set(routed) <= set(DOMAIN["intents"])
    assert {a for a in routed.values() if a.startswith("action_")} == {a.action_name for a in ACTIONS}
    assert set(MIRRORED_SLOTS) <= set(DOMAIN["slots"]) and "button" in DOMAIN["entities"]
    nlu = yaml.safe_load((rasa_dir / "data" / "nlu.yml").read_text(encoding="utf-8"))["nlu"]
    intents = {x["intent"]: x["examples"] for x in nlu if "intent" in x}
    for name in set(DOMAIN["intents"]) - {"shopbot_button", "give_feedback"}:  # buttons need no examples
        examples = intents[name]
        assert any("\u4e00" <= ch <= "\u9fff" for ch in examples), f"{name} has no Chinese example"
        assert any(ch.isascii() and ch.isalpha() for ch in examples), f"{name} has no English example"
    endpoints = yaml.safe_load((rasa_dir / "endpoints.yml").read_text(encoding="utf-8"))
    assert endpoints["action_endpoint"]["url"] == "http://127.0.0.1:5055/webhook"
    assert "rest" in yaml.safe_load((rasa_dir / "credentials.yml").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------- with a language model


def test_the_models_verified_words_reach_rasa_and_an_invented_claim_does_not(serve) -> None:  # type: ignore[no-untyped-def]
    from tests.bot.dialogue.test_manager_llm import Scripted, kind_of

    def respond(m: Sequence[Mapping[str, str]]) -> str:
        system = m[0]["content"]
        if "product descriptions" in system:
            return "Slim wireless earbuds that sit comfortably for hours, with noise cancelling for the commute."
        if kind_of(m) == "summary":
            return "All of these are at half price today!"  # invented: never sent
        return "You can send it back within 30 days of delivery, and we refund you once it arrives."

    llm = Scripted(respond, delay=0.001)
    server = serve(llm=llm, llm_timeout=5.0)
    rasa = Rasa(server.url)
    body = rasa.say("how do I return shoes?", "ask_support", "action_answer_support")
    assert text_of(body).startswith("You can send it back within 30 days of delivery, and we refund you once it arrives.")
    assert "— from our Returns policy" in text_of(body)
    body = rasa.say("wireless earbuds", "search_product", "action_search_products", [("product", "wireless earbuds")])
    assert "half price" not in text_of(body) and len(body["responses"]) == 6  # head + 5 products, no closing line
    body = rasa.say("describe the first one", "describe_product", "action_describe_product", [("ordinal", "1")])
    [page] = body["responses"]
    assert page["text"].startswith("Slim wireless earbuds that sit comfortably for hours")
    assert page["text"].rstrip().endswith(rasa.slots["shown_skus"][0])
    assert any("product descriptions" in c[0]["content"] for c in llm.calls)
