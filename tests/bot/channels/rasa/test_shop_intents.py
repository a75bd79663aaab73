"""A shop's own Rasa project (tests/data/rasa_shop_project): intents named the shop's way (``find_product``,
``more_please``, ``returns_question``, ``talk_to_human``) that its rules route to shopbot's actions. The
real rasa-sdk server answers requests of the shape Rasa 3.6 sends (the simulator of test_actions.py, with
the shop's domain, and the action its rules pick); shopbot's NLU reads what the names do not say, and
``SHOPBOT_RASA_INTENTS`` maps them in one place."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from bot.channels.rasa.actions import (
    ACTIONS,
    EXAMPLE_INTENTS,
    HANDLERS,
    KNOWN_INTENTS,
    ActionRuntime,
    ActionSearchProducts,
)
from bot.channels.rasa.server import ActionServer
from bot.channels.rasa.translate import INTENT_TARGETS, RasaMessage, intent_map, read_intent
from bot.cli.main import cli
from tests.bot.channels.rasa import test_actions
from tests.bot.channels.rasa.test_actions import DOMAIN, ROOT, Rasa, text_of

serve = test_actions.serve  # the fixture that starts an action server: serve(**settings)

PROJECT = ROOT / "tests" / "data" / "rasa_shop_project"
SHOP_DOMAIN = yaml.safe_load((PROJECT / "domain.yml").read_text(encoding="utf-8"))
RULES = {step["intent"]: r["steps"][1]["action"]  # intent -> the action the shop's rules run
         for r in yaml.safe_load((PROJECT / "data" / "rules.yml").read_text(encoding="utf-8"))["rules"]
         for step in r["steps"][0].get("or", [r["steps"][0]])}
OWN_NAMES = {"hello", "find_product", "more_please", "returns_question", "talk_to_human", "ask_deals"}


class Shop(Rasa):
    """Rasa with the shop's project: its domain, and the action its rules route each intent to."""

    def __init__(self, server: ActionServer) -> None:
        super().__init__(server.url, domain=SHOP_DOMAIN)
        self.server = server

    def says(self, text: str, intent: str, entities: list[tuple[str, Any]] | None = None) -> dict[str, Any]:
        assert intent in self.domain["intents"]
        return self.say(text, intent, RULES[intent], entities or [])

    def titles(self) -> list[str]:
        engine = self.server.runtime.assistant.engine
        return [p.title for p in (engine.product(s) for s in self.slots["shown_skus"] or []) if p is not None]


@pytest.fixture
def shop(serve) -> Shop:  # type: ignore[no-untyped-def]
    return Shop(serve())


# ----------------------------------------------------------------------- the shop's four intents


def test_show_more_under_the_shops_intent_is_the_next_page_not_a_search_for_show_more(shop: Shop) -> None:
    body = shop.says("show me lipstick", "find_product", [("product", "lipstick")])
    assert body["responses"][0]["shopbot"]["intent"] == "search"
    first = shop.slots["shown_skus"]
    assert len(first) == 5 and all("Lipstick" in t for t in shop.titles())
    assert shop.slots["page"] == 1.0

    body = shop.says("show more", "more_please")
    head = body["responses"][0]
    assert head["text"].startswith("More results (6-"), text_of(body)
    assert head["shopbot"]["intent"] == "more" and shop.slots["page"] == 2.0
    assert not set(shop.slots["shown_skus"]) & set(first)  # the next products, not the first ones again
    assert "Lipstick" in shop.titles()[0]  # the same search: the rest of the lipsticks come first


def test_the_shops_intents_without_entities_and_in_chinese(shop: Shop) -> None:
    shop.says("show me lipstick", "find_product")  # the shop's NLU extracted nothing: the text is the query
    assert all("Lipstick" in t for t in shop.titles())
    body = shop.says("下一页", "more_please")
    assert body["responses"][0]["shopbot"]["intent"] == "more" and shop.slots["page"] == 2.0


def test_a_returns_question_is_answered_from_the_returns_policy(shop: Shop) -> None:
    body = shop.says("how do I return this?", "returns_question")
    text = text_of(body)
    assert "To start a return" in text and text.endswith("— from our Returns policy")
    assert not body["responses"][0]["shopbot"]["cards"]


def test_asking_for_a_person_hands_over(shop: Shop) -> None:
    shop.says("show me lipstick", "find_product", [("product", "lipstick")])
    body = shop.says("I want a person", "talk_to_human")
    assert "colleague" in text_of(body) and shop.paused
    assert body["responses"][0]["shopbot"]["handoff"]


def test_a_mapping_in_settings_wins_over_shopbots_nlu(serve) -> None:  # type: ignore[no-untyped-def]
    # without a mapping shopbot's NLU reads "any deals today?" (routed to the search action) as a request
    # for products; the shop says its ask_deals intent is a question about the promotions policy
    plain = Shop(serve())
    body = plain.says("any deals today?", "ask_deals")
    assert "discount code" not in text_of(body) and body["responses"][0]["shopbot"]["cards"]
    mapped = Shop(serve(rasa_intents="ask_deals=promotions, more_please=more"))
    body = mapped.says("any deals today?", "ask_deals")
    assert text_of(body).rstrip().endswith("— from our Promotions and discount codes policy")
    assert not body["responses"][0]["shopbot"]["cards"] and mapped.slots["shown_skus"] is None


def test_the_example_projects_intent_names_keep_their_meaning(serve) -> None:  # type: ignore[no-untyped-def]
    rasa = Rasa(serve().url)  # docker/rasa's domain: the action Rasa ran decides, as before
    rasa.say("red winter coat", "search_product", "action_search_products", [("product", "winter coat")])
    body = rasa.say("more", "more_results", "action_search_products")
    assert text_of(body).startswith("More results (6-")
    body = rasa.say("show more", "search_product", "action_search_products", [("product", "show more")])
    assert body["responses"][0]["shopbot"]["intent"] == "search"  # Rasa said search: shopbot does not second-guess
    # unless the shop says its search_product is not to be trusted: "nlu" has shopbot's NLU read it
    rasa = Rasa(serve(rasa_intents="search_product=nlu").url)
    rasa.say("red winter coat", "search_product", "action_search_products", [("product", "winter coat")])
    body = rasa.say("show more", "search_product", "action_search_products", [("product", "show more")])
    assert text_of(body).startswith("More results (6-")


def test_a_button_in_the_shops_project_passes_through(shop: Shop) -> None:
    body = shop.says("show me lipstick", "find_product", [("product", "lipstick")])
    first = shop.slots["shown_skus"]
    more = next(b for m in body["responses"] for b in m.get("buttons") or [] if b["title"] == "More")
    assert more["payload"] == '/more_results{"button": "more"}' and "more_results" in SHOP_DOMAIN["intents"]
    body = shop.press(more, RULES["more_results"])  # the shop routes shopbot's button intents too
    assert text_of(body).startswith("More results (6-") and not set(shop.slots["shown_skus"]) & set(first)


# ---------------------------------------------------------------------------- the one place to map


def test_the_mapping_is_read_from_one_setting_and_checked() -> None:
    assert intent_map("more_please=more, returns_question=policy;talk_to_human=contact_human_agent\nx=NLU") == {
        "more_please": "more", "returns_question": "policy", "talk_to_human": "handoff", "x": "nlu"}
    assert intent_map("") == intent_map(None) == {} and intent_map({"a": "returns"}) == {"a": "returns"}
    with pytest.raises(ValueError, match=r"^SHOPBOT_RASA_INTENTS has 'more_please', which is not a pair like "
                                         r"'more_please=more'; separate pairs with commas\.$"):
        intent_map("more_please")
    with pytest.raises(ValueError, match=r"^SHOPBOT_RASA_INTENTS maps 'more_please' to 'next', which shopbot does "
                                         r"not know; use one of search, refine, more, .*\(docs/rasa.md lists them all\)\.$"):
        intent_map("more_please=next")


def test_a_bad_mapping_stops_the_server_before_it_loads_anything() -> None:
    r = CliRunner().invoke(cli, ["actions", "--port", "1"], env={"SHOPBOT_RASA_INTENTS": "more_please=next_page"})
    assert r.exit_code == 1 and r.output.startswith("Error: SHOPBOT_RASA_INTENTS maps 'more_please' to 'next_page'")
    assert len(r.output.strip().splitlines()) == 1
    with pytest.raises(ValueError, match="not a pair"):
        ActionRuntime(SimpleNamespace(settings=SimpleNamespace(rasa_intents="oops")))  # type: ignore[arg-type]


def test_every_target_has_an_action_that_does_it_under_the_example_projects_name() -> None:
    example = set(yaml.safe_load((ROOT / "docker" / "rasa" / "domain.yml").read_text(encoding="utf-8"))["intents"])
    assert example == EXAMPLE_INTENTS == set(DOMAIN["intents"]) and example <= KNOWN_INTENTS
    assert set(SHOP_DOMAIN["intents"]) >= OWN_NAMES and not OWN_NAMES & KNOWN_INTENTS  # the shop's names are its own
    for target, name in INTENT_TARGETS.items():
        action = HANDLERS[target]
        assert action in ACTIONS and target in action.does
        assert name in KNOWN_INTENTS  # handed over under a name the action already acts on
    assert HANDLERS["more"] is ActionSearchProducts and INTENT_TARGETS["more"] in ActionSearchProducts.MORE


def test_shopbots_nlu_reads_what_the_name_does_not_say(shared) -> None:  # type: ignore[no-untyped-def]
    _, nlu, _ = shared
    assistant: Any = SimpleNamespace(nlu=nlu)

    def read(text: str, state: dict[str, Any] | None = None) -> str | None:
        r = read_intent(assistant, RasaMessage(sender="u", text=text, intent="shop_intent"), state)
        return r[0] if r else None

    on_screen = {"query": "lipstick", "filters": {}, "shown": ["A", "B"], "offset": 0, "mode": "search"}
    assert read("show more") == read("还有吗") == "more"
    assert read("show me lipstick") == "search" and read("in red", on_screen) == "refine"
    assert read("the second one", on_screen) == "details" and read("compare 1 and 2", on_screen) == "compare"
    assert read("I want a person") == "handoff" and read("how long is the warranty?") == "warranty"
    assert read("hello") is None and read('/more_please{"x": 1}') is None  # the action decides
