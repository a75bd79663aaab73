"""Rasa custom actions (rasa-sdk): the same assistant behind a shop's Rasa bot.

The adapter translates and decides nothing about shopping. Rasa has already classified the message and
picked the action; an action turns that (the action, the latest message's intent and entities, the
slots Rasa set since shopbot last answered) into an :class:`bot.dialogue.Understanding`, hands it to
the dialogue manager on ``Event.understood`` (so shopbot's own intent classifier is not run again), and
translates the replies back: Rasa responses with text, buttons and images, plus ``SlotSet`` events
that mirror the dialogue's search state (query, filters, products shown, page) into Rasa's tracker.
The dialogue's state in SQL stays the source of truth; the slots are a copy Rasa's stories, forms and
responses can read.

Why some of shopbot's own understanding is still used: Rasa's entities are optional and often partial
("red sneakers under $80" may come with only ``product``), so the message text also goes through
shopbot's slot patterns (prices, colours, sizes, brands, categories, ordinals: the search engine's own
parser, no classifier) and entities win where both say something. The classifier is consulted only
where Rasa's intent is coarser than what the dialogue needs: which policy topic a generic
``ask_support`` question is about, and whether generic feedback is praise or a complaint; it then
chooses among those labels only.

Deadlines: Rasa 3.6 gives the action call ``DEFAULT_REQUEST_TIMEOUT`` = 300 s
(``rasa.core.constants``, an aiohttp total timeout) and drops the action's events when it runs out.
Every action here answers well within it: the language model's text is awaited for at most
``llm_timeout`` + 1 s (the grounded template is sent instead) and the whole action for at most
``deadline`` seconds (``llm_timeout`` + 5 s, never more than half of Rasa's timeout).

``shopbot actions`` (bot/cli_actions.py) serves these actions; ``python -m rasa_sdk --actions
bot.actions`` works too (the actions then build the assistant from the ``SHOPBOT_*`` settings).
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.dialogue import CS_SECTIONS, Understanding, clean_text
from bot.messages import say
from bot.nlu import ZH_BRANDS, Slots, extract_slots, find_order_number, find_ordinals
from bot.replies import Button, Event, Reply, card_line, format_price, render_table, stock_text
from bot.store import StoreUnavailable
from retrieval.lexical import has_cjk
from retrieval.query import Filters, parse_query

if TYPE_CHECKING:
    from bot.app import Assistant

__all__ = [
    "ACTIONS",
    "BUTTON_INTENTS",
    "CHANNEL",
    "MIRRORED_SLOTS",
    "RASA_ACTION_TIMEOUT",
    "ActionAnswerSupport",
    "ActionCompare",
    "ActionDescribeProduct",
    "ActionHandoff",
    "ActionRecommend",
    "ActionRecordFeedback",
    "ActionRefineSearch",
    "ActionRuntime",
    "ActionSearchProducts",
    "ActionShowDetails",
    "RasaMessage",
    "ShopbotAction",
    "default_runtime",
    "read_message",
    "render_replies",
    "slot_events",
]

log = logging.getLogger(__name__)

CHANNEL = "rasa"
RASA_ACTION_TIMEOUT = 300.0  # rasa 3.6: rasa.core.constants.DEFAULT_REQUEST_TIMEOUT, the action call's total timeout
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
_INTENT_SYNTAX = re.compile(r"^\s*/[\w.-]+(?:\{.*\})?\s*$", re.S)  # "/show_details{...}": a button, not words
_LIST_SPLIT = re.compile(r"\s*[,/;、，]\s*")

# What only this adapter says; the conversation's own sentences live in bot/messages.py.
TEXTS: dict[str, dict[str, str]] = {
    "store_down": {"en": "Sorry, I can't reach the shop's records right now. Please try again in a minute.",
                   "zh": "抱歉，暂时无法连接店铺的数据。请过一分钟再试。"},
    "slow": {"en": "Sorry, that is taking too long. Please try again in a moment.",
             "zh": "抱歉，处理时间太长了。请稍后再试。"},
    "failed": {"en": "Sorry, something went wrong on my side. Please try again, or say \"talk to a person\".",
               "zh": "抱歉，我这边出了点问题。请再试一次，或说“转人工”。"},
    "describe_unavailable": {"en": "Here are the product's details:", "zh": "商品详情如下："},
}


def t(key: str, language: str = "en") -> str:
    table = TEXTS[key]
    return table.get(language) or table["en"]


# ------------------------------------------------------------------------------------ runtime


class ActionRuntime:
    """What every action needs: the assistant and the time it may take.

    ``deadline``: seconds one action may take in all before it answers politely with what it has;
    ``live_timeout``: seconds to wait for the language model's final text before its grounded
    template is sent instead.
    """

    def __init__(self, assistant: Assistant, *, llm_timeout: float = 10.0, deadline: float | None = None) -> None:
        self.assistant = assistant
        self.llm_timeout = llm_timeout
        self.deadline = min(deadline if deadline is not None else llm_timeout + 5.0, RASA_ACTION_TIMEOUT / 2)
        self.live_timeout = max(0.1, min(llm_timeout + 1.0, self.deadline - 1.0))
        self._describer: Any = None

    @classmethod
    def from_settings(cls, settings: Any = None, *, assistant: Assistant | None = None,
                      deadline: float | None = None) -> ActionRuntime:
        from bot.app import build_assistant
        from bot.settings import Settings

        s = settings if settings is not None else Settings()
        return cls(assistant if assistant is not None else build_assistant(s), llm_timeout=s.llm_timeout,
                   deadline=deadline)

    def describer(self) -> Any:
        """model/describe.py's writer over the assistant's model (templates only without one); None when
        this installation has no description writer."""
        if self._describer is None:
            try:
                from model.describe import DescriptionWriter
            except ImportError:
                return None
            a = self.assistant
            self._describer = DescriptionWriter(a.llm, known_brands=sorted(a.engine.brands), timeout=self.llm_timeout)
        return self._describer

    def user_id(self, sender: str) -> str:
        """The store's id of a Rasa sender (bot/store.py: "<channel>:<external id>")."""
        return f"{CHANNEL}:{sender}"[:200]

    async def aclose(self) -> None:
        await self.assistant.aclose()


_default: ActionRuntime | None = None
_default_lock = threading.Lock()


def default_runtime() -> ActionRuntime:
    """The process's runtime from the ``SHOPBOT_*`` settings, built on first use (for ``python -m rasa_sdk``)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ActionRuntime.from_settings()
        return _default


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


# ------------------------------------------------------------------- entities -> Understanding


def _text_slots(assistant: Assistant, msg: RasaMessage) -> Slots:
    """shopbot's slot patterns over the typed text (no classifier): what Rasa's entities may have missed."""
    words, _ = clean_text(msg.words)
    if not words:
        return Slots()
    nlu = assistant.nlu
    return extract_slots(words, brands=nlu.brands, matcher=nlu.matcher)[0]


def _strings(values: Iterable[Any]) -> list[str]:
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
    for v in _strings(msg.values("color", "colour")):
        colors |= set(parse_query(v).filters.colors) or {v.lower()}
    sizes: set[str] = set()
    for v in _strings(msg.values("size")):
        sizes |= set(parse_query(f"size {v}").filters.sizes) or {v.lower()}
    brands = {ZH_BRANDS.get(v, v).lower() for v in _strings(msg.values("brand"))}
    categories: set[str] = set()
    words: list[str] = []
    for v in _strings(msg.values("category")):
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
    products = _strings(msg.values("product")) if intent == "search" else []
    query = " ".join([" ".join(products) if products else text.query, *extra_words]).strip()
    sort: str | None = text.sort if text.sort != "relevance" else None
    for v in _strings(msg.values("sort")):
        said = v if v in ("price_asc", "price_desc", "rating", "relevance") else parse_query(v).sort
        sort = None if said == "relevance" else said
    orders = _strings(msg.values("order_number"))
    return Understanding(
        intent=intent,
        confidence=msg.confidence if msg.confidence is not None else 1.0,
        query=query,
        filters=text.with_categories().merged(filters),
        sort=sort,
        ordinals=entity_ordinals(msg) or list(text.ordinals),
        order_number=orders[0] if orders else (text.order_number or find_order_number(msg.words)),
    )


def _best_of(assistant: Assistant, text: str, labels: Iterable[str]) -> tuple[str, float] | None:
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


# ------------------------------------------------------------------------------------ actions


class ShopbotAction(Action, abc.ABC):
    """One Rasa action over the dialogue: tracker in, the dialogue's replies and the mirrored slots out.

    Subclasses say only how the message becomes an :class:`Event` (``event``). Every failure ends in a
    valid response with a polite message: the database down, the model slow, a bug.
    """

    action_name: ClassVar[str]

    def __init__(self, runtime: ActionRuntime | None = None) -> None:
        self._runtime = runtime

    @property
    def runtime(self) -> ActionRuntime:
        return self._runtime if self._runtime is not None else default_runtime()

    def name(self) -> str:
        return self.action_name

    @abc.abstractmethod
    def event(self, rt: ActionRuntime, msg: RasaMessage) -> Event:
        """The dialogue event for the message (runs in a worker thread: it may use the classifier)."""

    def _event(self, msg: RasaMessage, **kw: Any) -> Event:
        return Event(user=msg.sender, channel=CHANNEL, text=msg.words or None, language=msg.language, **kw)

    def _understood(self, rt: ActionRuntime, msg: RasaMessage, intent: str) -> Event:
        """A message Rasa understood; a button press passes through as the dialogue's own payload."""
        if msg.payload:
            return Event(user=msg.sender, channel=CHANNEL, payload=msg.payload, language=msg.language)
        return self._event(msg, understood=understanding(rt.assistant, msg, intent))

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Any) -> list[dict[str, Any]]:
        rt = self.runtime
        msg = read_message(tracker, ACTION_NAMES)
        lang = "zh" if has_cjk(msg.text or "") else (msg.language or "en")[:2]
        messages: list[dict[str, Any]] = []
        try:
            events = await asyncio.wait_for(self._turn(rt, msg, tracker, domain, messages), timeout=rt.deadline)
        except TimeoutError:
            log.warning("%s for %s took longer than %.1f s", self.action_name, msg.sender, rt.deadline)
            # the replies when they were ready (only the slots are missing), else an apology
            messages, events = messages or [{"text": t("slow", lang)}], []
        except StoreUnavailable as exc:
            log.warning("%s for %s: %s", self.action_name, msg.sender, exc)
            messages, events = [{"text": t("store_down", lang)}], []
        except Exception:
            log.exception("%s failed for %s", self.action_name, msg.sender)
            messages, events = [{"text": t("failed", lang)}], []
        for m in messages:
            dispatcher.utter_message(**m)
        return events

    async def _turn(self, rt: ActionRuntime, msg: RasaMessage, tracker: Tracker, domain: Any,
                    messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        t0 = time.monotonic()
        event = await asyncio.to_thread(self.event, rt, msg)
        replies = await rt.assistant.handle_async(event)
        for r in replies:  # the model's verified text, or the grounded template when it is late
            if r.live is not None:
                left = rt.live_timeout - (time.monotonic() - t0)
                try:
                    r.text = await asyncio.wait_for(r.live.final(), timeout=max(0.05, left))
                except TimeoutError:
                    log.info("%s: the model was late; the template answers", self.action_name)
        replies = [r for r in replies if r.text or r.cards or r.buttons or r.table or r.handoff]
        replies = await self.finish(rt, msg, replies, t0)
        messages += render_replies(replies)
        user_id = rt.user_id(msg.sender)
        state = await asyncio.to_thread(rt.assistant.store.load_state, user_id)
        slots = tracker.slots if isinstance(tracker.slots, dict) else {}
        events = slot_events(state, slots, domain, rt.assistant.dialogue.page_size)
        paused = any(r.handoff for r in replies) or (
            not replies and await asyncio.to_thread(rt.assistant.store.is_handed_over, user_id))
        if paused:
            events.append(ConversationPaused())
        return events

    async def finish(self, rt: ActionRuntime, msg: RasaMessage, replies: list[Reply], t0: float) -> list[Reply]:
        """A last step over the replies (the description action writes its text here)."""
        return replies


class ActionSearchProducts(ShopbotAction):
    """A new search ("red sneakers under $80"); "show more" (Rasa intent ``more_results``) pages it."""

    action_name = "action_search_products"
    MORE = frozenset({"more_results", "more", "show_more", "next_page"})

    def event(self, rt: ActionRuntime, msg: RasaMessage) -> Event:
        return self._understood(rt, msg, "more" if msg.intent in self.MORE else "search")


class ActionRefineSearch(ShopbotAction):
    """Narrow the current search: "cheaper", "in blue", "size 42", "only Nike"."""

    action_name = "action_refine_search"

    def event(self, rt: ActionRuntime, msg: RasaMessage) -> Event:
        return self._understood(rt, msg, "more" if msg.intent in ActionSearchProducts.MORE else "refine")


class ActionShowDetails(ShopbotAction):
    """One product's page: by ordinal over the shown results ("the second one") or by ``sku``."""

    action_name = "action_show_details"

    def event(self, rt: ActionRuntime, msg: RasaMessage) -> Event:
        skus = _strings(msg.values("sku"))
        if skus and not msg.payload:  # the dialogue's own "details:<sku>" with the words kept for questions
            return self._event(msg, payload=f"details:{skus[0]}"[:MAX_PAYLOAD])
        return self._understood(rt, msg, "details")


class ActionCompare(ShopbotAction):
    """A table of two to four shown products ("compare 1 and 3")."""

    action_name = "action_compare"

    def event(self, rt: ActionRuntime, msg: RasaMessage) -> Event:
        return self._understood(rt, msg, "compare")


class ActionRecommend(ShopbotAction):
    """Recommendations; with Rasa intent ``similar_products`` (or a ``sku``) products like one shown."""

    action_name = "action_recommend"
    SIMILAR = frozenset({"similar_products", "similar", "more_like_this"})

    def event(self, rt: ActionRuntime, msg: RasaMessage) -> Event:
        skus = _strings(msg.values("sku"))
        if msg.intent in self.SIMILAR and skus and not msg.payload:
            return self._event(msg, payload=f"similar:{skus[0]}"[:MAX_PAYLOAD])
        return self._understood(rt, msg, "similar" if msg.intent in self.SIMILAR else "recommend")


class ActionAnswerSupport(ShopbotAction):
    """A customer-service answer from the shop's policies (shipping, returns, refunds, payment ...).

    The topic: Rasa's intent when it is one of shopbot's (``returns``, ``track_order`` ...), else a
    ``support_topic`` entity/slot, else shopbot's classifier choosing among the topics only.
    """

    action_name = "action_answer_support"

    def event(self, rt: ActionRuntime, msg: RasaMessage) -> Event:
        if msg.payload:
            return self._understood(rt, msg, "other")
        topic = msg.intent if msg.intent in CS_SECTIONS else None
        topic = topic or next((v for v in _strings(msg.values("support_topic")) if v in CS_SECTIONS), None)
        u = understanding(rt.assistant, msg, topic or "contact_customer_service")
        if topic is None:
            best = _best_of(rt.assistant, clean_text(msg.words)[0], CS_SECTIONS)
            if best is not None:
                u = replace(u, intent=best[0])
        return self._event(msg, understood=u)


class ActionDescribeProduct(ShopbotAction):
    """A written description of one product (model/describe.py: verified prose + code-rendered details).

    The product is resolved like a product page (ordinal, ``sku``, or the product on screen); the
    description replaces the page's text, and its price and stock line stays under it.
    """

    action_name = "action_describe_product"

    def event(self, rt: ActionRuntime, msg: RasaMessage) -> Event:
        skus = _strings(msg.values("sku"))
        if skus and not msg.payload:
            return self._event(msg, payload=f"details:{skus[0]}"[:MAX_PAYLOAD])
        u = understanding(rt.assistant, msg, "details")
        if not u.ordinals:  # "describe it": the product on screen
            state = rt.assistant.store.load_state(rt.user_id(msg.sender)) or {}
            focus = state.get("focus") or ((state.get("shown") or [None])[0] if len(state.get("shown") or []) == 1 else None)
            if focus:
                return self._event(msg, payload=f"details:{focus}"[:MAX_PAYLOAD])
        return self._event(msg, understood=u)

    async def finish(self, rt: ActionRuntime, msg: RasaMessage, replies: list[Reply], t0: float) -> list[Reply]:
        page = next((r for r in replies if r.cards and r.intent in PRODUCT_PAGES), None)
        product = rt.assistant.engine.product(page.cards[0].sku) if page is not None else None
        if page is None or product is None:
            return replies
        writer = rt.describer()
        card = page.cards[0]
        facts = f"{format_price(card.price, card.currency)} · {stock_text(card.stock, page.language)} · {card.sku}"
        if writer is None:  # no description writer installed: the product's page says it all
            page.text = t("describe_unavailable", page.language) + "\n" + page.text
            return [page]
        left = max(0.1, rt.live_timeout - (time.monotonic() - t0))
        try:
            d = await asyncio.wait_for(writer.write(product.to_record(), page.language), timeout=left)
            text = d.text
        except (TimeoutError, ValueError):
            from model.describe import template_description

            text = template_description(product.to_record(), page.language)
        page.text = f"{text}\n{facts}"
        return [page]


class ActionRecordFeedback(ShopbotAction):
    """Thumbs up/down (buttons) or praise/complaint in words, logged against the turn it is about."""

    action_name = "action_record_feedback"
    POSITIVE = frozenset({"feedback_positive", "thumbs_up", "affirm", "mood_great", "praise"})
    NEGATIVE = frozenset({"feedback_negative", "thumbs_down", "deny", "mood_unhappy", "not_what_i_meant"})
    WORDS: ClassVar[dict[str, bool]] = {"up": True, "positive": True, "good": True, "yes": True, "👍": True,
             "down": False, "negative": False, "bad": False, "no": False, "👎": False}

    def event(self, rt: ActionRuntime, msg: RasaMessage) -> Event:
        if msg.payload:
            return self._understood(rt, msg, "other")
        positive: bool | None = None
        if msg.intent in self.POSITIVE or msg.intent in self.NEGATIVE:
            positive = msg.intent in self.POSITIVE
        else:
            said = [self.WORDS[v.lower()] for v in _strings(msg.values("feedback")) if v.lower() in self.WORDS]
            if said:
                positive = said[0]
            else:
                best = _best_of(rt.assistant, clean_text(msg.words)[0], ("feedback_positive", "feedback_negative"))
                positive = best is None or best[0] == "feedback_positive"
        return self._event(msg, understood=Understanding("feedback_positive" if positive else "feedback_negative",
                                                         msg.confidence if msg.confidence is not None else 1.0))


class ActionHandoff(ShopbotAction):
    """Hand the conversation to a person: the dialogue records it and the action pauses Rasa's
    conversation (``ConversationPaused``) until the shop resumes it."""

    action_name = "action_handoff"

    def event(self, rt: ActionRuntime, msg: RasaMessage) -> Event:
        if msg.payload:
            return self._understood(rt, msg, "contact_human_agent")
        return self._event(msg, understood=Understanding("contact_human_agent",
                                                         msg.confidence if msg.confidence is not None else 1.0))


ACTIONS: tuple[type[ShopbotAction], ...] = (
    ActionSearchProducts, ActionRefineSearch, ActionShowDetails, ActionCompare, ActionRecommend,
    ActionAnswerSupport, ActionDescribeProduct, ActionRecordFeedback, ActionHandoff,
)
ACTION_NAMES = frozenset(a.action_name for a in ACTIONS)
