"""Rasa <-> shopbot translations for the custom actions (bot/channels/rasa/actions.py): plain functions, no server.

* reading Rasa: the latest message's intent, entities and button payload, and which slots are new input
  (:func:`read_message`); a shop's own intent names, mapped to what shopbot does (:func:`intent_map`,
  ``SHOPBOT_RASA_INTENTS``) or read by shopbot's NLU (:func:`read_intent`);
* Rasa's entities and slots -> the dialogue's :class:`bot.dialogue.understanding.Understanding` (:func:`understanding`),
  normalised the way shopbot parses typed text ("红色" -> red, "under $80" -> max 80, "第二个" -> 2);
* the dialogue's replies -> Rasa response messages (:func:`render_replies`) and its state -> SlotSet
  events (:func:`slot_events`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet

from bot.dialogue.manager import clean_text
from bot.dialogue.messages import say
from bot.dialogue.nlu.categories import ZH_BRANDS
from bot.dialogue.nlu.slots import Slots, extract_slots, find_order_number, find_ordinals
from bot.dialogue.replies import Button, Reply, card_line, render_table
from bot.dialogue.support import CS_SECTIONS
from bot.dialogue.understanding import Understanding
from retrieval.query import Filters, parse_query

if TYPE_CHECKING:
    from bot.app import Assistant

__all__ = [
    "BUTTON_ENTITY",
    "BUTTON_INTENTS",
    "INTENT_TARGETS",
    "MAX_PAYLOAD",
    "MIRRORED_SLOTS",
    "NLU_TARGET",
    "PRODUCT_PAGES",
    "RasaMessage",
    "best_of",
    "entity_filters",
    "entity_ordinals",
    "intent_map",
    "mirrored",
    "rasa_payload",
    "read_intent",
    "read_message",
    "render_replies",
    "slot_events",
    "strings",
    "understanding",
]

# The dialogue's button payloads as Rasa messages: "/<intent>{"button": "<payload>"}" is parsed by Rasa
# without its NLU, and the rule for the intent calls the action that forwards the payload as it is.
BUTTON_INTENTS: dict[str, str] = {
    "more": "more_results", "cheaper": "refine_search", "details": "show_details", "click": "show_details",
    "similar": "similar_products", "up": "give_feedback", "down": "give_feedback", "handoff": "human_handoff",
}
BUTTON_ENTITY = "button"
# Slots written after every action (those the request's domain declares), mirroring the dialogue's state.
MIRRORED_SLOTS = ("product", "min_price", "max_price", "color", "size", "brand", "category", "shown_skus",
                  "page", "search_mode", "focused_sku", "last_turn_id")
PRODUCT_PAGES = {"details", "click"}  # intents whose single card is a product page, not a list
MAX_PAYLOAD = 200
# What a shop may map its own Rasa intent names to (SHOPBOT_RASA_INTENTS, docs/rasa.md), each with the
# intent name of the example project (docker/rasa/domain.yml) that shopbot's actions already act on: a
# mapped or read message is handed to the actions under that name. Policy topics map to themselves.
INTENT_TARGETS: dict[str, str] = {
    "search": "search_product", "refine": "refine_search", "more": "more_results", "details": "show_details",
    "describe": "describe_product", "compare": "compare_products", "similar": "similar_products",
    "recommend": "recommend", "policy": "ask_support", "feedback_positive": "feedback_positive",
    "feedback_negative": "feedback_negative", "handoff": "human_handoff",
    **{topic: topic for topic in CS_SECTIONS},
}
NLU_TARGET = "nlu"  # a mapping to "nlu": shopbot's NLU reads the text, whatever the intent's name
_NLU_LABELS = {"contact_human_agent": "handoff"}  # shopbot's intent labels that are named otherwise above
_INTENT_SYNTAX = re.compile(r"^\s*/[\w.-]+(?:\{.*\})?\s*$", re.S)  # "/show_details{...}": a button, not words
_LIST_SPLIT = re.compile(r"\s*[,/;、，]\s*")


# ----------------------------------------------------------------------------- reading Rasa


@dataclass(frozen=True)
class RasaMessage:
    """What Rasa knows about the shopper's latest message, as plain data."""

    sender: str
    text: str | None = None
    intent: str | None = None
    confidence: float | None = None
    entities: dict[str, list[Any]] = field(default_factory=dict)  # entity -> values, in message order
    slots: dict[str, Any] = field(default_factory=dict)  # slots someone else than shopbot set since its last action
    payload: str | None = None  # one of the dialogue's button payloads
    language: str | None = None

    def values(self, *names: str) -> list[Any]:
        """The latest message's entities of these names, else the slots of these names Rasa set."""
        out = [v for n in names for v in self.entities.get(n, ()) if _given(v)]
        if out:
            return out
        for n in names:
            v = self.slots.get(n)
            out += [x for x in (v if isinstance(v, list) else [v]) if _given(x)]
        return out

    @property
    def words(self) -> str:
        """The text a person typed ("" for a button press or Rasa's "/intent{...}" syntax)."""
        return "" if not self.text or _INTENT_SYNTAX.match(self.text) else self.text


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _given(v: Any) -> bool:
    return v is not None and v != "" and v != [] and not isinstance(v, bool)


def _sender(raw: Any) -> str:
    text, _ = clean_text(str(raw))
    return (text.replace("\x00", "") or "anonymous")[:160]


def read_message(tracker: Tracker, action_names: Iterable[str] = ()) -> RasaMessage:
    """The latest message of ``tracker``: intent, entities, a button payload and the slots Rasa set since
    one of ``action_names`` (shopbot's actions) last ran."""
    latest = _dict(tracker.latest_message)
    intent = _dict(latest.get("intent"))
    entities: dict[str, list[Any]] = {}
    for e in latest.get("entities") or ():
        if isinstance(e, dict) and isinstance(e.get("entity"), str):
            entities.setdefault(e["entity"], []).append(e.get("value"))
    payload = next((str(v) for v in entities.pop(BUTTON_ENTITY, ()) if isinstance(v, str) and v.strip()), None)
    metadata = _dict(latest.get("metadata"))
    text = latest.get("text")
    confidence = intent.get("confidence")
    return RasaMessage(
        sender=_sender(tracker.sender_id),
        text=text if isinstance(text, str) else None,
        intent=intent.get("name") if isinstance(intent.get("name"), str) else None,
        confidence=float(confidence) if isinstance(confidence, (int, float)) and not isinstance(confidence, bool) else None,
        entities=entities,
        slots=_slots_set_by_rasa(tracker, set(action_names)),
        payload=payload.strip()[:MAX_PAYLOAD] if payload else None,
        language=metadata.get("language") if isinstance(metadata.get("language"), str) else None,
    )


def _slots_set_by_rasa(tracker: Tracker, ours: set[str]) -> dict[str, Any]:
    """Slots set since shopbot's last action by anyone else (Rasa's slot mappings, forms, the shop's own
    actions): those are new input. The slots shopbot mirrored itself, and those a new session carried
    over, are not; they would drag an old search's filters into a new one.

    Without events (a hand-written request) every slot the request carries counts.
    """
    events = tracker.events if isinstance(tracker.events, list) else []
    slots = tracker.slots if isinstance(tracker.slots, dict) else {}
    if not events:
        return {k: v for k, v in slots.items() if isinstance(k, str)}
    out: dict[str, Any] = {}
    mirror = False  # inside the events an action of ours (or the session start) returned
    for e in events:
        if not isinstance(e, dict):
            continue
        kind = e.get("event")
        if kind == "action":
            mirror = e.get("name") in ours or e.get("name") == "action_session_start"
            if mirror:
                out = {}
        elif kind == "user":
            mirror = False
        elif kind == "slot" and not mirror and isinstance(e.get("name"), str):
            out[e["name"]] = e.get("value")
        elif kind == "restart":
            out = {}
    return out


# ---------------------------------------------------------------------------- a shop's intents


def intent_map(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """A shop's intent names -> what shopbot does with them, from ``SHOPBOT_RASA_INTENTS``
    ("more_please=more, returns_question=policy": pairs separated by commas, semicolons or new lines)
    or a mapping; ``ValueError`` in one sentence naming the first bad pair."""
    if isinstance(spec, Mapping):
        pairs = [(str(k), str(v)) for k, v in spec.items()]
    else:
        pairs = []
        for part in re.split(r"[,;\n]", spec or ""):
            if not part.strip():
                continue
            name, eq, target = part.partition("=")
            if not eq or not name.strip() or not target.strip():
                raise ValueError(f"SHOPBOT_RASA_INTENTS has {part.strip()!r}, which is not a pair like "
                                 "'more_please=more'; separate pairs with commas.")
            pairs.append((name, target))
    out: dict[str, str] = {}
    for name, target in pairs:
        name, target = name.strip(), target.strip().lower()
        target = _NLU_LABELS.get(target, target)
        if target not in INTENT_TARGETS and target != NLU_TARGET:
            known = ", ".join([*list(INTENT_TARGETS)[:12], NLU_TARGET])
            raise ValueError(f"SHOPBOT_RASA_INTENTS maps {name!r} to {target!r}, which shopbot does not know; use "
                             f"one of {known} or a policy topic such as returns (docs/rasa.md lists them all).")
        out[name] = target
    return out


def read_intent(assistant: Assistant, msg: RasaMessage, state: Mapping[str, Any] | None) -> tuple[str, float] | None:
    """What shopbot's own NLU reads in the typed text (with the dialogue's ``state``: a search on screen
    makes "in red" a refinement), as an :data:`INTENT_TARGETS` name and the classifier's confidence.

    None when there are no words (a button, "/intent" syntax) or the reading is nothing an action does
    (a greeting, thanks, "other"): the action Rasa ran then does what its name says.
    """
    words, _ = clean_text(msg.words)
    if not words:
        return None
    r = assistant.nlu.parse(words, state)
    target = _NLU_LABELS.get(r.intent, r.intent)
    if target not in INTENT_TARGETS:
        return None
    return target, r.confidence


# ------------------------------------------------------------------- entities -> Understanding


def _text_slots(assistant: Assistant, msg: RasaMessage) -> Slots:
    """shopbot's slot patterns over the typed text (no classifier): what Rasa's entities may have missed."""
    words, _ = clean_text(msg.words)
    if not words:
        return Slots()
    nlu = assistant.nlu
    return extract_slots(words, brands=nlu.brands, matcher=nlu.matcher, names=nlu.names)[0]


def strings(values: Iterable[Any]) -> list[str]:
    out: list[str] = []
    for v in values:
        if isinstance(v, (str, int, float)) and not isinstance(v, bool):
            out += [p for p in _LIST_SPLIT.split(str(v).strip()) if p]
    return out


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, dict):  # Duckling-style {"value": 80, "unit": "$"}
        return _number(v.get("value"))
    if isinstance(v, str):
        m = re.fullmatch(r"\s*[$€£¥]?\s*(\d+(?:[.,]\d+)?)\s*(?:元|块|dollars?|usd|eur|euros?)?\s*", v, re.I)
        return float(m.group(1).replace(",", ".")) if m else None
    return None


def _price_filters(msg: RasaMessage) -> Filters:
    """A price range from ``price`` (text such as "under $80", "100-200元"; a bare number is a budget) and
    ``min_price``/``max_price`` (numbers)."""
    lo: float | None = None
    hi: float | None = None
    currency: str | None = None
    for v in msg.values("price"):
        if isinstance(v, dict) and ("from" in v or "to" in v):  # Duckling intervals
            lo = _number(v.get("from")) if v.get("from") is not None else lo
            hi = _number(v.get("to")) if v.get("to") is not None else hi
            continue
        n = _number(v)
        if n is not None:
            hi = n
            continue
        if isinstance(v, str):
            f = parse_query(v).filters
            lo = f.min_price if f.min_price is not None else lo
            hi = f.max_price if f.max_price is not None else hi
            currency = f.currency or currency
    for name in ("min_price", "max_price"):
        for v in msg.values(name):
            n = _number(v)
            if n is not None:
                lo, hi = (n, hi) if name == "min_price" else (lo, n)
    return Filters(min_price=lo, max_price=hi, currency=currency if (lo is not None or hi is not None) else None)


def entity_filters(assistant: Assistant, msg: RasaMessage) -> tuple[Filters, list[str]]:
    """Filters from Rasa's entities/slots (colour, size, brand, category, price), normalised the way
    shopbot's parser normalises typed text ("红色" -> red, "M" -> m); and the category words that name no
    catalog category, which then search as words instead of filtering everything out."""
    colors: set[str] = set()
    for v in strings(msg.values("color", "colour")):
        colors |= set(parse_query(v).filters.colors) or {v.lower()}
    sizes: set[str] = set()
    for v in strings(msg.values("size")):
        sizes |= set(parse_query(f"size {v}").filters.sizes) or {v.lower()}
    brands = {ZH_BRANDS.get(v, v).lower() for v in strings(msg.values("brand"))}
    categories: set[str] = set()
    words: list[str] = []
    for v in strings(msg.values("category")):
        found = assistant.nlu.matcher.find(v.lower())
        if found:
            categories |= set(found)
        else:
            words.append(v)
    f = Filters(colors=frozenset(colors), sizes=frozenset(sizes), brands=frozenset(brands),
                categories=frozenset(categories)).merged(_price_filters(msg))
    return f, words


def entity_ordinals(msg: RasaMessage) -> list[int]:
    """Positions in the shown results from ``ordinal`` entities: 2, "2", "second", "2nd", "第二个", "last"."""
    out: list[int] = []
    for v in msg.values("ordinal"):
        found: list[int] = []
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            found = [int(v)]
        elif isinstance(v, dict):  # Duckling {"value": 2}
            n = _number(v)
            found = [int(n)] if n is not None else []
        elif isinstance(v, str):
            s = v.strip()
            found = [int(s)] if s.isdigit() else find_ordinals(s) or find_ordinals(f"the {s} one") or find_ordinals(f"第{s}个")
        out += [n for n in found if (n >= 1 or n == -1) and n not in out]
    return out


def understanding(assistant: Assistant, msg: RasaMessage, intent: str) -> Understanding:
    """The dialogue's view of the message, for ``intent`` (chosen by the action Rasa ran): Rasa's
    entities and slots first, shopbot's slot patterns on the text for what they leave out."""
    text = _text_slots(assistant, msg)
    filters, extra_words = entity_filters(assistant, msg)
    # Rasa's product entity is what a new search looks for; a refinement keeps its own words ("cheaper
    # sneakers": "cheaper" is what the dialogue acts on)
    products = strings(msg.values("product")) if intent == "search" else []
    query = " ".join([" ".join(products) if products else text.query, *extra_words]).strip()
    sort: str | None = text.sort if text.sort != "relevance" else None
    for v in strings(msg.values("sort")):  # "price_asc" or words: "cheapest first", "best rated"
        said = v if v in ("price_asc", "price_desc", "rating", "relevance") else parse_query(v).sort
        if said != "relevance" or v == "relevance":
            sort = None if said == "relevance" else said
    orders = strings(msg.values("order_number"))
    return Understanding(
        intent=intent,
        confidence=msg.confidence if msg.confidence is not None else 1.0,
        query=query,
        filters=text.with_categories().merged(filters),
        sort=sort,
        ordinals=entity_ordinals(msg) or list(text.ordinals),
        order_number=orders[0] if orders else (text.order_number or find_order_number(msg.words)),
    )


def best_of(assistant: Assistant, text: str, labels: Iterable[str]) -> tuple[str, float] | None:
    """shopbot's intent classifier, restricted to ``labels``: the most likely of them and its probability."""
    model = assistant.nlu.model
    allowed = [i for i, name in enumerate(model.labels) if name in set(labels)]
    if not text or not allowed:
        return None
    p = model.probabilities([text])[0]
    j = max(allowed, key=lambda i: float(p[i]))
    return model.labels[j], float(p[j])


# ---------------------------------------------------------------------------- rendering Rasa


def rasa_payload(payload: str) -> str:
    """A dialogue button payload as the message Rasa receives when the button is pressed."""
    kind = payload.partition(":")[0]
    intent = BUTTON_INTENTS.get(kind, "shopbot_button")
    return f"/{intent}" + json.dumps({BUTTON_ENTITY: payload}, ensure_ascii=False)


def _buttons(buttons: Sequence[Button]) -> list[dict[str, str]]:
    return [{"title": b.label, "payload": rasa_payload(b.payload)} for b in buttons]


def render_replies(replies: Sequence[Reply]) -> list[dict[str, Any]]:
    """The dialogue's replies as rasa-sdk response messages (``dispatcher.utter_message`` keyword sets).

    A product list is a head line, one message per product (its image when it has one, Details and
    Similar buttons) and the reply's own buttons (more, cheaper, thumbs) under the last; a product page
    is one message with the product's image; a comparison is its table as text. Every message that
    starts a reply carries ``shopbot`` metadata (turn id, intent, language, the cards as data) that
    Rasa keeps on the bot event and hands to custom channels.
    """
    out: list[dict[str, Any]] = []
    for r in replies:
        lang = r.language
        meta = {"shopbot": {"turn_id": r.turn_id, "intent": r.intent, "language": lang, "handoff": r.handoff,
                            "cards": [asdict(c) for c in r.cards]}}
        buttons = _buttons(r.buttons)
        if r.table:
            text = "\n".join(x for x in (r.text, render_table(r.table)) if x)
            out.append({"text": text, "buttons": buttons, **meta})
        elif r.cards and r.intent in PRODUCT_PAGES:
            out.append({"text": r.text, "image": r.cards[0].image_url, "buttons": buttons, **meta})
        elif r.cards:
            if r.text:
                out.append({"text": r.text, **meta})
                meta = {}
            for i, c in enumerate(r.cards):
                card_buttons = [{"title": say("btn_details", lang), "payload": rasa_payload(f"details:{c.sku}")},
                                {"title": say("btn_similar", lang), "payload": rasa_payload(f"similar:{c.sku}")}]
                if i == len(r.cards) - 1:
                    card_buttons += buttons
                out.append({"text": card_line(c, lang), "image": c.image_url, "buttons": card_buttons, **meta})
                meta = {}
        elif r.text or buttons:
            out.append({"text": r.text, "buttons": buttons, **meta})
    return out


def _coerce(value: Any, slot: Mapping[str, Any] | None) -> Any:
    """A mirrored value in the shape the domain's slot type takes (a list for list slots, text for text)."""
    kind = (slot or {}).get("type")
    if value is None:
        return None
    if kind == "list":
        return value if isinstance(value, list) else [value]
    if kind == "text":
        return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    if kind == "float":
        n = _number(value)
        return n
    return value


def mirrored(state: Mapping[str, Any] | None, page_size: int) -> dict[str, Any]:
    """What Rasa's tracker should know of the dialogue's state, slot by slot."""
    st = state or {}
    f = _dict(st.get("filters"))
    shown = list(st.get("shown") or [])
    offset = int(st.get("offset") or 0)

    def many(key: str) -> list[str] | None:
        return sorted(f.get(key) or []) or None

    return {
        "product": st.get("query") or None,
        "min_price": f.get("min_price"),
        "max_price": f.get("max_price"),
        "color": many("colors"),
        "size": many("sizes"),
        "brand": many("brands"),
        "category": many("categories"),
        "shown_skus": shown or None,
        "page": float(offset // max(1, page_size) + 1) if shown else None,
        "search_mode": st.get("mode"),
        "focused_sku": st.get("focus"),
        "last_turn_id": st.get("last_turn"),
    }


def slot_events(state: Mapping[str, Any] | None, tracker_slots: Mapping[str, Any], domain: Mapping[str, Any] | None,
                page_size: int) -> list[dict[str, Any]]:
    """SlotSet events for the mirrored slots the domain declares whose value changed.

    Without a domain (a request that sent only its digest) every mirrored slot is written.
    """
    declared = domain.get("slots") if isinstance(domain, Mapping) and isinstance(domain.get("slots"), dict) else None
    events = []
    for name, value in mirrored(state, page_size).items():
        if declared is not None and name not in declared:
            continue
        v = _coerce(value, declared.get(name) if declared is not None else None)
        if v != tracker_slots.get(name):
            events.append(SlotSet(name, v))
    return events
