"""Rasa custom actions (rasa-sdk): the same assistant behind a shop's Rasa bot.

The adapter translates and decides nothing about shopping. Rasa has already classified the message and
picked the action; an action turns that (the action, the latest message's intent and entities, the
slots Rasa set since shopbot last answered) into an :class:`bot.dialogue.understanding.Understanding`, hands it to
the dialogue manager on ``Event.understood`` (so the dialogue's own NLU is not run again), and
translates the replies back: Rasa responses with text, buttons and images, plus ``SlotSet`` events
that mirror the dialogue's search state (query, filters, products shown, page) into Rasa's tracker.
The dialogue's state in SQL stays the source of truth; the slots are a copy Rasa's stories, forms and
responses can read.

Why some of shopbot's own understanding is still used: Rasa's entities are optional and often partial
("red sneakers under $80" may come with only ``product``), so the message text also goes through
shopbot's slot patterns (prices, colours, sizes, brands, categories, ordinals: the search engine's own
parser, no classifier) and entities win where both say something. The classifier is consulted
where Rasa's intent is coarser than what the dialogue needs: which policy topic a generic
``ask_support`` question is about, and whether generic feedback is praise or a complaint (it then
chooses among those labels only); and where Rasa's intent is a shop's own name that shopbot does not
know (``more_please``: is "show more" a new search or the next page?). Such a name is handed over as
``SHOPBOT_RASA_INTENTS`` maps it, else shopbot's NLU reads the text and decides, whichever of these
actions the shop's rule ran (:meth:`ShopbotAction.route`); the names of the example project
(docker/rasa/domain.yml) keep their meaning (``KNOWN_INTENTS``).

Deadlines: Rasa 3.6 gives the action call ``DEFAULT_REQUEST_TIMEOUT`` = 300 s
(``rasa.core.constants``, an aiohttp total timeout) and drops the action's events when it runs out.
Every action here answers well within it: the language model's text is awaited for at most
``llm_timeout`` + 1 s (the grounded template is sent instead) and the whole action for at most
``deadline`` seconds (``llm_timeout`` + 5 s, never more than half of Rasa's timeout).

The translations themselves (tracker -> Understanding, replies -> messages, state -> slots) are plain
functions in bot/channels/rasa/translate.py. ``shopbot actions`` (bot/channels/rasa/server.py) serves these actions; ``python -m rasa_sdk --actions
bot.channels.rasa.actions`` works too (the actions then build the assistant from the ``SHOPBOT_*`` settings).
"""

from __future__ import annotations

import abc
import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused
from rasa_sdk.executor import CollectingDispatcher

from bot.app import Assistant, build_assistant
from bot.channels.rasa.translate import (
    BUTTON_INTENTS,
    INTENT_TARGETS,
    MAX_PAYLOAD,
    MIRRORED_SLOTS,
    NLU_TARGET,
    PRODUCT_PAGES,
    RasaMessage,
    best_of,
    intent_map,
    read_intent,
    read_message,
    render_replies,
    slot_events,
    strings,
    understanding,
)
from bot.dialogue.manager import clean_text
from bot.dialogue.nlu.intents import CS_INTENTS, SHOPPING_INTENTS
from bot.dialogue.replies import Event, Reply, format_price, stock_text
from bot.dialogue.support import CS_SECTIONS
from bot.dialogue.understanding import Understanding
from bot.dialogue.watch import pending_replies
from bot.observability.metrics import count_error
from bot.settings import Settings
from bot.store.records import StoreUnavailable
from model.writing.describe import DescriptionWriter, template_description
from retrieval.lexical import has_cjk

__all__ = [
    "ACTIONS",
    "ACTION_NAMES",
    "BUTTON_INTENTS",
    "CHANNEL",
    "EXAMPLE_INTENTS",
    "HANDLERS",
    "KNOWN_INTENTS",
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
    "ShopbotAction",
    "default_runtime",
]

log = logging.getLogger(__name__)

CHANNEL = "rasa"
RASA_ACTION_TIMEOUT = 300.0  # rasa 3.6: rasa.core.constants.DEFAULT_REQUEST_TIMEOUT, the action call's total timeout
# The intents of the example project (docker/rasa/domain.yml); with these, and the other names in
# KNOWN_INTENTS, the action Rasa ran decides what happens, as docs/rasa.md's table says.
EXAMPLE_INTENTS = frozenset({
    "greet", "goodbye", "thanks", "search_product", "refine_search", "more_results", "show_details",
    "compare_products", "recommend", "similar_products", "describe_product", "ask_support", "give_feedback",
    "feedback_positive", "feedback_negative", "human_handoff", "shopbot_button",
})

# What only this adapter says; the conversation's own sentences live in bot/dialogue/messages.py.
TEXTS: dict[str, dict[str, str]] = {
    "store_down": {"en": "Sorry, I can't reach the shop's records right now. Please try again in a minute.",
                   "zh": "抱歉，暂时无法连接店铺的数据。请过一分钟再试。"},
    "slow": {"en": "Sorry, that is taking too long. Please try again in a moment.",
             "zh": "抱歉，处理时间太长了。请稍后再试。"},
    "failed": {"en": "Sorry, something went wrong on my side. Please try again, or say \"talk to a person\".",
               "zh": "抱歉，我这边出了点问题。请再试一次，或说“转人工”。"},
}


def t(key: str, language: str = "en") -> str:
    table = TEXTS[key]
    return table.get(language) or table["en"]


# ------------------------------------------------------------------------------------ runtime


class ActionRuntime:
    """What every action needs: the assistant and the time it may take.

    ``deadline``: seconds one action may take in all before it answers politely with what it has;
    ``live_timeout``: seconds to wait for the language model's final text before its grounded
    template is sent instead; ``intents``: the shop's intent names -> what shopbot does with them
    (:func:`bot.channels.rasa.translate.intent_map`; the assistant's ``SHOPBOT_RASA_INTENTS`` when not
    given). A mapping shopbot cannot use raises ``ValueError`` in one sentence.
    """

    def __init__(self, assistant: Assistant, *, llm_timeout: float = 10.0, deadline: float | None = None,
                 intents: str | Mapping[str, str] | None = None) -> None:
        self.assistant = assistant
        if intents is None:
            intents = getattr(assistant.settings, "rasa_intents", None)
        self.intents = intent_map(intents)
        self.llm_timeout = llm_timeout
        self.deadline = min(deadline if deadline is not None else llm_timeout + 5.0, RASA_ACTION_TIMEOUT / 2)
        self.live_timeout = max(0.1, min(llm_timeout + 1.0, self.deadline - 1.0))
        self._describer: DescriptionWriter | None = None

    @classmethod
    def from_settings(cls, settings: Any = None, *, assistant: Assistant | None = None,
                      deadline: float | None = None) -> ActionRuntime:
        s = settings if settings is not None else Settings()
        return cls(assistant if assistant is not None else build_assistant(s), llm_timeout=s.llm_timeout,
                   deadline=deadline)

    def describer(self) -> DescriptionWriter:
        """model/writing/describe.py's writer over the assistant's model (templates only without one)."""
        if self._describer is None:
            a = self.assistant
            self._describer = DescriptionWriter(a.llm, known_brands=sorted(a.engine.brands), timeout=self.llm_timeout)
        return self._describer

    def user_id(self, sender: str) -> str:
        """The store's id of a Rasa sender (bot/store/database.py: "<channel>:<external id>")."""
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



# ------------------------------------------------------------------------------------ actions


class ShopbotAction(Action, abc.ABC):  # type: ignore[misc]  # rasa_sdk ships no type hints: Action is Any
    """One Rasa action over the dialogue: tracker in, the dialogue's replies and the mirrored slots out.

    Subclasses say only how the message becomes an :class:`Event` (``event``) and which of
    :data:`~bot.channels.rasa.translate.INTENT_TARGETS` they carry out (``does``). Every failure ends in
    a valid response with a polite message: the database down, the model slow, a bug.
    """

    action_name: ClassVar[str]
    does: ClassVar[frozenset[str]]
    follows_reading: ClassVar[bool] = True  # False: a shop's intent name never sends the message elsewhere

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

    def route(self, rt: ActionRuntime, msg: RasaMessage) -> tuple[ShopbotAction, RasaMessage]:
        """The action that carries the message out, and the message as it reads it.

        A button press, no intent, or an intent shopbot knows (:data:`KNOWN_INTENTS`): this action, the
        message as it is. A shop's own intent name: the target ``rt.intents`` maps it to, else the one
        shopbot's NLU reads in the text (with the dialogue's state); the action that does that target (this
        one when it does) gets the message under the example project's intent name for it. A reading that
        no action does (a greeting, "other") leaves it to this action.
        """
        if msg.payload or not self.follows_reading or msg.intent is None:
            return self, msg
        target = rt.intents.get(msg.intent)
        if target is None and msg.intent in KNOWN_INTENTS:
            return self, msg
        confidence = msg.confidence
        if target is None or target == NLU_TARGET:
            reading = read_intent(rt.assistant, msg, self._state(rt, msg))
            if reading is None:
                return self, msg
            target, confidence = reading
            log.debug("%s: Rasa's intent %r read by shopbot's NLU as %r", self.action_name, msg.intent, target)
        action = self if target in self.does else HANDLERS[target](rt)
        return action, replace(msg, intent=INTENT_TARGETS[target], confidence=confidence)

    def _state(self, rt: ActionRuntime, msg: RasaMessage) -> dict[str, Any]:
        try:
            return rt.assistant.store.load_state(rt.user_id(msg.sender)) or {}
        except StoreUnavailable:  # the NLU reads without it; the turn reports the store itself
            return {}

    def _prepare(self, rt: ActionRuntime, msg: RasaMessage) -> tuple[ShopbotAction, Event]:
        action, msg = self.route(rt, msg)
        return action, action.event(rt, msg)

    def _event(self, msg: RasaMessage, **kw: Any) -> Event:
        return Event(user=msg.sender, channel=CHANNEL, text=msg.words or None, language=msg.language, **kw)

    def _understood(self, rt: ActionRuntime, msg: RasaMessage, intent: str) -> Event:
        """A message Rasa understood; a button press passes through as the dialogue's own payload."""
        if msg.payload:
            return Event(user=msg.sender, channel=CHANNEL, payload=msg.payload, language=msg.language)
        return self._event(msg, understood=understanding(rt.assistant, msg, intent))

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Any) -> list[dict[str, Any]]:
        # the process-wide runtime (python -m rasa_sdk) is built on first use, off the event loop
        rt = self._runtime if self._runtime is not None else await asyncio.to_thread(default_runtime)
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
            count_error("handler_exception")
            messages, events = [{"text": t("failed", lang)}], []
        for m in messages:
            dispatcher.utter_message(**m)
        return events

    async def _turn(self, rt: ActionRuntime, msg: RasaMessage, tracker: Tracker, domain: Any,
                    messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        t0 = time.monotonic()
        action, event = await asyncio.to_thread(self._prepare, rt, msg)
        replies = await rt.assistant.handle_async(event)
        for r in replies:  # the model's verified text, or the grounded template when it is late
            if r.live is not None:
                left = rt.live_timeout - (time.monotonic() - t0)
                try:
                    r.text = await asyncio.wait_for(r.live.final(), timeout=max(0.05, left))
                except TimeoutError:
                    log.info("%s: the model was late; the template answers", self.action_name)
        replies = [r for r in replies if r.text or r.cards or r.buttons or r.table or r.handoff]
        replies = await action.finish(rt, msg, replies, t0)
        replies += await asyncio.to_thread(self._watch_notices, rt, msg)
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

    @staticmethod
    def _watch_notices(rt: ActionRuntime, msg: RasaMessage) -> list[Reply]:
        """Watchlist notices kept for this shopper's next turn (no ``rasa_url``, or Rasa did not take the
        trigger_intent call; bot/watch.py), shown after the turn's own replies; none when the store is down."""
        try:
            return pending_replies(rt.assistant.store, rt.assistant.engine, rt.user_id(msg.sender))
        except StoreUnavailable:
            return []


class ActionSearchProducts(ShopbotAction):
    """A new search ("red sneakers under $80"); "show more" (Rasa intent ``more_results``) pages it."""

    action_name = "action_search_products"
    does = frozenset({"search", "more"})
    MORE = frozenset({"more_results", "more", "show_more", "next_page"})

    def event(self, rt: ActionRuntime, msg: RasaMessage) -> Event:
        return self._understood(rt, msg, "more" if msg.intent in self.MORE else "search")


class ActionRefineSearch(ShopbotAction):
    """Narrow the current search: "cheaper", "in blue", "size 42", "only Nike"."""

    action_name = "action_refine_search"
    does = frozenset({"refine", "more"})

    def event(self, rt: ActionRuntime, msg: RasaMessage) -> Event:
        return self._understood(rt, msg, "more" if msg.intent in ActionSearchProducts.MORE else "refine")


class ActionShowDetails(ShopbotAction):
    """One product's page: by ordinal over the shown results ("the second one") or by ``sku``."""

    action_name = "action_show_details"
    does = frozenset({"details"})

    def event(self, rt: ActionRuntime, msg: RasaMessage) -> Event:
        skus = strings(msg.values("sku"))
        if skus and not msg.payload:  # the dialogue's own "details:<sku>" with the words kept for questions
            return self._event(msg, payload=f"details:{skus[0]}"[:MAX_PAYLOAD])
        return self._understood(rt, msg, "details")


class ActionCompare(ShopbotAction):
    """A table of two to four shown products ("compare 1 and 3")."""

    action_name = "action_compare"
    does = frozenset({"compare"})

    def event(self, rt: ActionRuntime, msg: RasaMessage) -> Event:
        return self._understood(rt, msg, "compare")


class ActionRecommend(ShopbotAction):
    """Recommendations; with Rasa intent ``similar_products`` (or a ``sku``) products like one shown."""

    action_name = "action_recommend"
    does = frozenset({"recommend", "similar"})
    SIMILAR = frozenset({"similar_products", "similar", "more_like_this"})

    def event(self, rt: ActionRuntime, msg: RasaMessage) -> Event:
        skus = strings(msg.values("sku"))
        if msg.intent in self.SIMILAR and skus and not msg.payload:
            return self._event(msg, payload=f"similar:{skus[0]}"[:MAX_PAYLOAD])
        return self._understood(rt, msg, "similar" if msg.intent in self.SIMILAR else "recommend")


class ActionAnswerSupport(ShopbotAction):
    """A customer-service answer from the shop's policies (shipping, returns, refunds, payment ...).

    The topic: Rasa's intent when it is one of shopbot's (``returns``, ``track_order`` ...), else a
    ``support_topic`` entity/slot, else shopbot's classifier choosing among the topics only.
    """

    action_name = "action_answer_support"
    does = frozenset({"policy", *CS_SECTIONS})

    def event(self, rt: ActionRuntime, msg: RasaMessage) -> Event:
        if msg.payload:
            return self._understood(rt, msg, "other")
        topic = msg.intent if msg.intent in CS_SECTIONS else None
        topic = topic or next((v for v in strings(msg.values("support_topic")) if v in CS_SECTIONS), None)
        u = understanding(rt.assistant, msg, topic or "contact_customer_service")
        if topic is None:
            best = best_of(rt.assistant, clean_text(msg.words)[0], CS_SECTIONS)
            if best is not None:
                u = replace(u, intent=best[0])
        return self._event(msg, understood=u)


class ActionDescribeProduct(ShopbotAction):
    """A written description of one product (model/writing/describe.py: verified prose + code-rendered details).

    The product is resolved like a product page (ordinal, ``sku``, or the product on screen); the
    description replaces the page's text, and its price and stock line stays under it.
    """

    action_name = "action_describe_product"
    does = frozenset({"describe", "details"})

    def event(self, rt: ActionRuntime, msg: RasaMessage) -> Event:
        skus = strings(msg.values("sku"))
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
        facts = f"{format_price(card.price, card.currency)} · {stock_text(card.stock, page.language, card.stock_counted)} · {card.sku}"
        left = max(0.1, rt.live_timeout - (time.monotonic() - t0))
        try:
            d = await asyncio.wait_for(writer.write(product.to_record(), page.language), timeout=left)
            text = d.text
        except (TimeoutError, ValueError):
            text = template_description(product.to_record(), page.language)
        page.text = f"{text}\n{facts}"
        return [page]


class ActionRecordFeedback(ShopbotAction):
    """Thumbs up/down (buttons) or praise/complaint in words, logged against the turn it is about."""

    action_name = "action_record_feedback"
    does = frozenset({"feedback_positive", "feedback_negative"})
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
            said = [self.WORDS[v.lower()] for v in strings(msg.values("feedback")) if v.lower() in self.WORDS]
            if said:
                positive = said[0]
            else:
                best = best_of(rt.assistant, clean_text(msg.words)[0], ("feedback_positive", "feedback_negative"))
                positive = best is None or best[0] == "feedback_positive"
        return self._event(msg, understood=Understanding("feedback_positive" if positive else "feedback_negative",
                                                         msg.confidence if msg.confidence is not None else 1.0))


class ActionHandoff(ShopbotAction):
    """Hand the conversation to a person: the dialogue records it and the action pauses Rasa's
    conversation (``ConversationPaused``) until the shop resumes it. Whatever the intent's name: a shop
    that routes a message (or its fallback) to a person gets a person, shopbot never argues."""

    action_name = "action_handoff"
    does = frozenset({"handoff"})
    follows_reading = False

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
# Each INTENT_TARGETS name -> the first action that does it ("details": the product page, not the description)
HANDLERS: dict[str, type[ShopbotAction]] = {
    target: next(a for a in ACTIONS if target in a.does) for target in INTENT_TARGETS
}
# The intent names shopbot knows: the example project's, the others the actions above act on, and
# shopbot's own intent labels. Any other name is a shop's own: mapped (SHOPBOT_RASA_INTENTS) or read.
KNOWN_INTENTS = frozenset(
    EXAMPLE_INTENTS | ActionSearchProducts.MORE | ActionRecommend.SIMILAR | ActionRecordFeedback.POSITIVE
    | ActionRecordFeedback.NEGATIVE | set(CS_SECTIONS) | set(SHOPPING_INTENTS) | set(CS_INTENTS)
)
