"""The dialogue manager: one shopper event in, channel-neutral replies out.

Every channel (terminal, Telegram, Rasa) calls :meth:`DialogueManager.handle`; all behaviour lives
here. A turn is: clean the text -> load the shopper's state -> understand (intent + slots) -> one
service (search, refine, compare, policy answer, handoff ...) -> log the turn, the products shown and
the new state. Facts (prices, stock, attributes, policy text) are rendered from the catalog and the
policy document by code; nothing here invents a number.

The state is a plain JSON dict kept by the store, so a conversation survives a restart and any worker
can serve the next message.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from bot.dialogue.messages import attribute_name, attribute_value, say
from bot.dialogue.nlu.parser import complement_anchor, refinement_extra
from bot.dialogue.replies import Button, Card, Event, LiveText, Reply, card_from_product, format_price
from bot.store.sql import TurnRecord
from model.writing.product_text import ProductWriter
from model.writing.support import SupportWriter
from retrieval.catalog import Product
from retrieval.encoders import shared_queries
from retrieval.lexical import has_cjk
from retrieval.policy import PolicyMatch
from retrieval.query import Filters, ParsedQuery
from retrieval.recommend.recommender import Recommender
from retrieval.search import Hit, SearchEngine, SearchResult

if TYPE_CHECKING:
    from retrieval.recommend.sequential import SequentialRecommender

__all__ = ["CS_SECTIONS", "DialogueManager", "Understanding"]

log = logging.getLogger(__name__)

MAX_CHARS = 1000
POOL = 100  # how many of a search's best results can count as relevant when a price nudge narrows them  # what we read of one message; the rest is dropped with a note
ORDER_SPECIFIC = {"track_order", "cancel_order", "change_order", "track_refund", "get_refund", "payment_issue",
                  "change_shipping_address", "get_invoice", "check_invoice"}
# customer-service intent -> policy sections that answer it (the document's own headings)
CS_SECTIONS: dict[str, tuple[str, ...]] = {
    "cancel_order": ("Changing or cancelling an order",),
    "change_order": ("Changing or cancelling an order",),
    "check_cancellation_fee": ("Changing or cancelling an order", "Returns"),
    "place_order": ("Placing an order", "Payment"),
    "track_order": ("Order tracking",),
    "delivery_options": ("Shipping",),
    "delivery_period": ("Shipping",),
    "change_shipping_address": ("Changing or cancelling an order", "Shipping"),
    "set_up_shipping_address": ("Shipping", "Account and privacy"),
    "check_payment_methods": ("Payment",),
    "payment_issue": ("Payment",),
    "check_refund_policy": ("Refunds", "Returns"),
    "get_refund": ("Refunds", "Returns"),
    "track_refund": ("Refunds",),
    "check_invoice": ("Invoices",),
    "get_invoice": ("Invoices",),
    "complaint": ("Complaints", "Lost or damaged parcels"),
    "review": ("Complaints",),
    "contact_customer_service": ("Contacting a person",),
    "newsletter_subscription": ("Promotions and discount codes", "Account and privacy"),
    "create_account": ("Account and privacy",),
    "delete_account": ("Account and privacy",),
    "edit_account": ("Account and privacy",),
    "recover_password": ("Account and privacy",),
    "registration_problems": ("Account and privacy",),
    "switch_account": ("Account and privacy",),
    "returns": ("Returns",),
    "warranty": ("Warranty",),
    "promotions": ("Promotions and discount codes",),
}
SHOPPING = {"search", "refine", "more", "compare", "details", "similar", "recommend"}
_CHEAPER = re.compile(r"\b(?:cheaper|less expensive|lower price[sd]?|more affordable|budget|lower)\b|便宜|实惠|低一点|低点", re.I)
_PRICIER = re.compile(r"\b(?:more expensive|pricier|higher[- ]end|premium|fancier|better quality)\b|贵一点|贵点|高端|更好", re.I)
# a message that asks something about a product, rather than only asking to see it
_QUESTION = re.compile(
    r"[?？]|吗|是否|有没有|多少|能不能|可不可以|可以.{0,8}吗|怎么样|什么|哪|"
    r"^\s*(?:is|are|does|do|can|could|will|would|has|have|how|what|which|why|who|tell me)\b", re.I)
_IT = re.compile(r"\b(?:it|this one|that one|this|that)\b|它|这个|这款|这件|那个|那款", re.I)
# questions the catalog answers by itself: stock and price ("is the first one in stock?", "第一个有货吗？")
_ASKS_STOCK = re.compile(r"\b(?:in stock|available|availability|sold out|out of stock|any left|how many left)\b|"
                         r"有货|有没有货|还有吗|库存|缺货|卖完", re.I)
_ASKS_PRICE = re.compile(r"\b(?:how much|price|cost|costs)\b|多少钱|价格|价钱|几块钱", re.I)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")


@dataclass
class Understanding:
    """What the shopper meant, as the dialogue manager needs it (built from the NLU's output)."""

    intent: str
    confidence: float = 1.0
    query: str = ""  # product words left after the filters were taken out
    filters: Filters = field(default_factory=Filters)
    sort: str | None = None
    ordinals: list[int] = field(default_factory=list)  # 1-based; -1 is "the last one"
    order_number: str | None = None


class Understander(Protocol):
    def __call__(self, text: str, state: Mapping[str, Any]) -> Understanding: ...


class PolicyAnswers(Protocol):
    """The customer-service lookup: the policy's own answer and its passages, or None when nothing fits."""

    def __call__(self, question: str, intent: str, language: str, sections: Sequence[str]) -> PolicyMatch | None: ...


class Store(Protocol):
    """What the dialogue needs from the SQL store (bot/store/sql.py implements it).

    A store may also offer ``start_turn(channel, external_id, language) -> (user id, handed over?, state)``
    (``touch`` and ``load_state`` in one read); one that does also saves ``TurnRecord.state`` with the
    turn, so a turn whose replies are final is written in one transaction."""

    def touch(self, channel: str, external_id: str, language: str | None) -> tuple[str, bool]: ...
    def load_state(self, user_id: str) -> dict[str, Any] | None: ...
    def save_state(self, user_id: str, state: dict[str, Any]) -> None: ...
    def log(self, turn: TurnRecord) -> str: ...
    def feedback(self, user_id: str, kind: str, *, turn_id: str | None = None, sku: str | None = None) -> str: ...
    def handoff(self, user_id: str, reason: str) -> None: ...


def clean_text(raw: str | None) -> tuple[str, bool]:
    """Normalised text of one message and whether it was cut; control and zero-width characters go."""
    text = unicodedata.normalize("NFKC", raw or "")
    text = _CONTROL.sub(" ", text)
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > MAX_CHARS:
        return text[:MAX_CHARS].rsplit(" ", 1)[0] or text[:MAX_CHARS], True
    return text, False


def language_of(text: str, state: Mapping[str, Any], hint: str | None) -> str:
    if has_cjk(text):
        return "zh"
    if re.search(r"[A-Za-z]{2,}", text):
        return "en"
    # digits, emoji, "2": keep the conversation's language, else the client's
    prev = state.get("lang")
    if prev in ("en", "zh"):
        return str(prev)
    return "zh" if (hint or "").lower().startswith("zh") else "en"


def filters_to_dict(f: Filters) -> dict[str, Any]:
    return {"min_price": f.min_price, "max_price": f.max_price, "currency": f.currency,
            "categories": sorted(f.categories), "brands": sorted(f.brands), "colors": sorted(f.colors),
            "sizes": sorted(f.sizes), "in_stock": f.in_stock}


def filters_from_dict(d: Mapping[str, Any] | None) -> Filters:
    if not d:
        return Filters()
    return Filters(
        min_price=d.get("min_price"), max_price=d.get("max_price"), currency=d.get("currency"),
        categories=frozenset(d.get("categories") or ()), brands=frozenset(d.get("brands") or ()),
        colors=frozenset(d.get("colors") or ()), sizes=frozenset(d.get("sizes") or ()),
        in_stock=bool(d.get("in_stock")),
    )


class DialogueManager:
    """Turns shopper events into replies; stateless itself (state lives in the store)."""

    def __init__(
        self,
        engine: SearchEngine,
        store: Store,
        understand: Understander,
        answer: PolicyAnswers,
        *,
        page_size: int = 5,
        versions: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        stuck_after: int = 2,
        support_writer: SupportWriter | None = None,
        product_writer: ProductWriter | None = None,
        search_summaries: bool = True,
        sequential: tuple[SequentialRecommender, Sequence[str] | None] | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.understand = understand
        self.answer = answer
        self.page_size = page_size
        self.versions = dict(versions or {})
        self.clock = clock
        self.stuck_after = stuck_after
        # the language model's writers; None: templates only (correct, plainer)
        self.support_writer = support_writer
        self.product_writer = product_writer
        self.search_summaries = search_summaries
        self._tasks: set[asyncio.Task[None]] = set()
        self._rec_cache: tuple[SearchEngine, float, Recommender] | None = None
        # a trained next-item model and its items' SKUs (the active recommender version), loaded by the caller
        self.sequential = sequential

    # ------------------------------------------------------------------------------------ entry

    def handle(self, event: Event) -> list[Reply]:
        """One turn, synchronously: every reply's text is final (the model's, or the template)."""
        turn, replies, t0 = self._prepare(event)
        if turn.pending:
            _run_coroutine(self._write_all(turn, live=False))
        replies = [r for r in replies if not _empty(r)]
        self._log(turn, replies, t0, event)
        return replies

    async def handle_async(self, event: Event) -> list[Reply]:
        """`handle` for asyncio adapters: the loop never waits for SQL or the model.

        Replies the model still has to write come back at once with ``live`` set (their ``text`` is
        the grounded template meanwhile); the turn is logged when the last of them is final.
        """
        turn, replies, t0 = await asyncio.to_thread(self._prepare_and_log, event)
        if not turn.pending:
            return replies
        for p in turn.pending:
            p.reply.live = LiveText()

        async def finish() -> None:
            try:
                await self._write_all(turn, live=True)
            finally:
                await asyncio.to_thread(self._log, turn, [r for r in replies if not _empty(r)], t0, event)

        task = asyncio.create_task(finish())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return replies

    async def drain(self) -> None:
        """Wait until every turn started by `handle_async` has been answered and logged."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _prepare_and_log(self, event: Event) -> tuple[_Turn, list[Reply], float]:
        """`_prepare`, then `_log` at once when no reply waits for the model: one trip to a worker thread."""
        turn, replies, t0 = self._prepare(event)
        if not turn.pending:
            self._log(turn, replies, t0, event)
        return turn, replies, t0

    def _prepare(self, event: Event) -> tuple[_Turn, list[Reply], float]:
        """Everything but the model's writing and the turn's log line. The state is saved here when a
        reply waits for the model, so the shopper's next message sees this turn meanwhile; otherwise (a
        store with ``start_turn``) `_log` writes it with the turn, in one transaction."""
        t0 = self.clock()
        turn_id = uuid.uuid4().hex
        text, cut = clean_text(event.text)
        start = getattr(self.store, "start_turn", None)
        if start is not None:
            user_id, handed_over, stored = start(event.channel, event.user, event.language)
        else:
            user_id, handed_over = self.store.touch(event.channel, event.user, event.language)
            stored = self.store.load_state(user_id)
        state = dict(stored or {})
        lang = language_of(text, state, event.language)
        turn = _Turn(turn_id=turn_id, user_id=user_id, lang=lang, state=state, text=text)
        if handed_over:
            # A person is handling this conversation: log what the shopper wrote, say nothing.
            turn.intent = "handed_over"
            self._save(turn, with_log=start is not None)
            return turn, [], t0
        try:
            with shared_queries():  # the intent classifier and the search encode the same message once
                replies = self._dispatch(turn, event, cut)
        except Exception as exc:  # one failing service must not take the conversation down
            log.exception("turn failed")
            turn.error = f"{type(exc).__name__}: {exc}"
            turn.pending = []
            replies = [Reply(say("degraded", lang), language=lang)]
        for r in replies:
            r.turn_id = turn_id
            r.language = lang
            r.intent = turn.intent
        # the state goes in with the turn's log line when that follows at once; a turn the model is still
        # writing saves it now, so the shopper's next message sees it meanwhile
        self._save(turn, with_log=start is not None and not turn.pending)
        return turn, replies, t0

    async def _write_all(self, turn: _Turn, *, live: bool) -> None:
        """Let the model write each pending reply in turn (they share one model); never raises."""
        for p in turn.pending:
            on_text = p.reply.live.push if (live and p.reply.live is not None) else (lambda _t: None)
            try:
                text, record = await p.write(on_text)
            except Exception as exc:  # a broken model or verifier must not lose the reply
                log.exception("writing a reply failed")
                text, record = p.reply.text, {"kind": p.kind, "source": "fallback", "error": f"{type(exc).__name__}: {exc}"}
            p.reply.text = text
            turn.generation.append(record)
            if p.reply.live is not None:
                p.reply.live.finish(text)

    def _save(self, turn: _Turn, *, with_log: bool = False) -> None:
        turn.state["lang"] = turn.lang
        turn.state["last_turn"] = turn.turn_id
        if turn.intent in {"other", "feedback_negative"} or turn.zero_results:
            turn.state["fails"] = int(turn.state.get("fails", 0)) + 1
        elif turn.intent not in {"handed_over", "feedback_positive", "thanks"}:
            turn.state["fails"] = 0
        if with_log:
            turn.unsaved_state = True  # _log writes it in the turn's transaction
        else:
            self.store.save_state(turn.user_id, turn.state)

    def _log(self, turn: _Turn, replies: list[Reply], t0: float, event: Event) -> None:
        text_in = event.text if event.text is not None else f"[button] {event.payload}"
        record = TurnRecord(
            turn_id=turn.turn_id, user_id=turn.user_id, text_in=(text_in or "")[:10_000],
            text_out="\n".join(r.text for r in replies), intent=turn.intent, confidence=turn.confidence,
            language=turn.lang, latency_ms=(self.clock() - t0) * 1000, slots=turn.slots,
            shown=[(c.sku, c.rank, None) for r in replies for c in r.cards], query=turn.query, error=turn.error,
            model_versions=self.versions, generation=turn.generation, shown_by=self._shown_by(turn),
            state=turn.state if turn.unsaved_state else None,
        )
        try:
            self.store.log(record)
        except Exception:
            if turn.unsaved_state:  # a turn that cannot be logged still leaves the conversation where it is
                self.store.save_state(turn.user_id, turn.state)
            raise

    def _shown_by(self, turn: _Turn) -> str:
        """The model that ranked this turn's cards: the recommender for recommendations, else the search ranker."""
        kind = "recommender" if turn.query == "recommend" else "ranker"
        return f"{kind}:{self.versions.get(kind, 'built-in')}"

    # --------------------------------------------------------------------------------- dispatch

    def _dispatch(self, turn: _Turn, event: Event, cut: bool) -> list[Reply]:
        if event.payload:
            return self._button(turn, event.payload)
        u = event.understood  # already understood by the channel's platform (Rasa): its NLU is not re-run
        if u is None:
            if not turn.text or not re.search(r"\w", turn.text):
                if turn.text and re.fullmatch(r"[\s👍👌❤️😊🙂👏✅]+", turn.text):
                    turn.intent = "feedback_positive"
                    return self._feedback(turn, positive=True)
                turn.intent = "empty"
                return [Reply(say("empty", turn.lang))]
            u = self.understand(turn.text, turn.state)
        turn.intent, turn.confidence = u.intent, u.confidence
        turn.slots = {"query": u.query, "filters": filters_to_dict(u.filters), "sort": u.sort,
                      "ordinals": u.ordinals, "order_number": u.order_number}
        replies = self._route(turn, u)
        if cut:
            replies.insert(0, Reply(say("too_long", turn.lang)))
        # stuck: this turn failed too (a search that finds things after two misses is not stuck)
        failed = turn.intent in {"other", "feedback_negative"} or turn.zero_results
        if failed and int(turn.state.get("fails", 0)) + 1 >= self.stuck_after and not any(r.handoff for r in replies):
            replies[-1].buttons.append(Button(say("btn_handoff", turn.lang), "handoff"))
        return replies

    def _route(self, turn: _Turn, u: Understanding) -> list[Reply]:
        i = u.intent
        focus = turn.state.get("focus")
        if i in {"search", "other"} and focus and _QUESTION.search(turn.text) and _IT.search(turn.text):
            # "is it machine washable?" right after a product's details: a question about that product
            turn.intent = "details"
            return self._details(turn, [], sku=str(focus))
        if i == "search":
            return self._search(turn, u)
        if i == "refine":
            return self._refine(turn, u)
        if i == "more":
            return self._more(turn)
        if i == "compare":
            return self._compare(turn, u.ordinals)
        if i == "details":
            return self._details(turn, u.ordinals)
        if i == "similar":
            return self._similar(turn, u.ordinals, filters=u.filters if u.ordinals else None)
        if i == "recommend":
            anchor = complement_anchor(turn.text)
            if anchor is not None:
                return self._complements(turn, u.ordinals, anchor)
            return self._recommend(turn)
        if i in {"contact_human_agent", "handoff"}:
            return self._handoff(turn, "asked for a person")
        if i == "feedback_positive":
            return self._feedback(turn, positive=True)
        if i == "feedback_negative":
            return self._feedback(turn, positive=False)
        if i in {"greet", "help", "thanks", "goodbye"}:
            return [Reply(say(i, turn.lang))]
        if i in CS_SECTIONS:
            return self._support(turn, u)
        return [Reply(say("other", turn.lang))]

    def _button(self, turn: _Turn, payload: str) -> list[Reply]:
        kind, _, arg = payload.partition(":")
        turn.slots = {"payload": payload}
        if kind == "more":
            turn.intent = "more"
            return self._more(turn)
        if kind == "cheaper":
            turn.intent = "refine"
            return self._refine(turn, Understanding("refine", query="cheaper"))
        if kind == "details":
            turn.intent = "details"
            return self._details(turn, [], sku=arg)
        if kind == "similar":
            turn.intent = "similar"
            return self._similar(turn, [], sku=arg)
        if kind == "handoff":
            turn.intent = "contact_human_agent"
            return self._handoff(turn, "pressed the button")
        if kind in {"up", "down"}:
            # "up:<turn_id>" or "up:<turn_id>:<sku>": thumbs on a reply or on one product
            ref_turn, _, sku = arg.partition(":")
            turn.intent = "feedback_positive" if kind == "up" else "feedback_negative"
            return self._feedback(turn, positive=kind == "up", ref_turn=ref_turn or None, sku=sku or None)
        if kind == "click":
            turn.intent = "click"
            # a click belongs to the turn that showed the product
            shown_in = turn.state.get("shown_turn") if arg in (turn.state.get("shown") or []) else None
            self.store.feedback(turn.user_id, "click", turn_id=shown_in or turn.state.get("last_turn"), sku=arg)
            return self._details(turn, [], sku=arg)
        turn.intent = "other"
        return [Reply(say("other", turn.lang))]

    # --------------------------------------------------------------------------------- shopping

    def _search(self, turn: _Turn, u: Understanding) -> list[Reply]:
        if not u.query and u.filters.is_empty() and not u.sort:
            turn.intent = "other"
            return [Reply(say("no_search", turn.lang))]
        turn.state.update({"mode": "search", "query": u.query, "filters": filters_to_dict(u.filters),
                           "sort": u.sort or "relevance", "offset": 0, "anchor": None, "bounded": False,
                           "focus": None})
        return self._run_search(turn, first=True)

    def _refine(self, turn: _Turn, u: Understanding) -> list[Reply]:
        st = turn.state
        if st.get("mode") != "search" and not st.get("query"):
            if u.query or not u.filters.is_empty():
                turn.intent = "search"
                return self._search(turn, u)
            return [Reply(say("no_search", turn.lang))]
        # what a refinement that finds nothing leaves in place: the results on screen stay the ones the
        # next refinement narrows ("cheaper" with nothing cheaper, then "in blue": blue within the old search)
        saved = {k: st.get(k) for k in ("mode", "query", "filters", "sort", "offset", "bounded")}
        if st.get("mode") != "search":  # refining "similar" or recommendations: go back to the search
            st["mode"] = "search"
        f = filters_from_dict(st.get("filters")).merged(u.filters)
        said = u.query or turn.text
        shown = [p for p in (self.engine.product(s) for s in st.get("shown") or []) if p is not None]
        prices = sorted(p.price for p in shown)
        # a price nudge is a bound in the catalog's own currency (the shown prices'), whatever the budget was in
        currency = shown[0].currency if shown else None
        if _CHEAPER.search(said) and prices:
            if prices[0] <= (0.0 if f.min_price is None else f.bound(f.min_price, currency or "USD")) + 0.01:
                st.update(saved)
                return [Reply(say("cheapest_already", turn.lang))]
            f = Filters(**{**_fields(f), "max_price": round(prices[0] - 0.01, 2), "min_price": None, "currency": currency})
            st["bounded"] = True
        elif _PRICIER.search(said) and prices:
            f = Filters(**{**_fields(f), "min_price": round(prices[-1] + 0.01, 2), "max_price": None, "currency": currency})
            st["bounded"] = True
        extra = refinement_extra(u.query)
        if extra and len(extra) > 1:
            st["query"] = f"{st.get('query', '')} {extra}".strip()
        st["filters"] = filters_to_dict(f)
        if u.sort:
            st["sort"] = u.sort
        st["offset"] = 0
        replies = self._run_search(turn, first=True, relax=False)
        if turn.zero_results:
            st.update(saved)
            if _CHEAPER.search(said):
                return [Reply(say("cheapest_already", turn.lang))]
        return replies

    def _more(self, turn: _Turn) -> list[Reply]:
        st = turn.state
        mode = st.get("mode")
        if mode not in {"search", "similar"}:
            return [Reply(say("no_search", turn.lang))]
        st["offset"] = int(st.get("offset", 0)) + self.page_size
        if mode == "similar":
            return self._similar(turn, [], sku=st.get("anchor"), offset=st["offset"])
        return self._run_search(turn, first=False)

    def _run_search(self, turn: _Turn, *, first: bool, relax: bool = True) -> list[Reply]:
        st = turn.state
        query = str(st.get("query") or "")
        f = filters_from_dict(st.get("filters"))
        offset = int(st.get("offset", 0))
        pq = ParsedQuery(text=query, filters=f, sort=st.get("sort") or "relevance", raw=query)  # type: ignore[arg-type]
        turn.query = _query_label(query, f)
        if st.get("bounded") and query:
            res = self._bounded_search(pq, offset)
        else:
            res = self.engine.search(pq, k=self.page_size, offset=offset)
        lang = turn.lang
        understood = f.describe(lang)
        if not res.hits and offset > 0:
            st["offset"] = max(0, offset - self.page_size)
            return [Reply(say("no_more", lang))]
        if not res.hits:
            turn.zero_results = True
            if relax and not f.is_empty() and query:
                loose = self.engine.search(ParsedQuery(text=query, raw=query), k=self.page_size)
                if loose.hits:
                    st["filters"] = filters_to_dict(Filters())
                    st["shown"] = loose.skus
                    head = say("no_results_relaxed", lang, query=query, understood=understood)
                    return [self._cards_reply(turn, head, loose.hits, loose.total, 0)]
            label = query or understood
            return [Reply(say("no_results", lang, query=label, understood=_aside(understood, lang) if query else ""))]
        st["shown"] = res.skus
        # a count only when it is one: past the candidate pool, "100 products match" would be the pool's size
        if first:
            head = say("results" if res.exhaustive else "results_top", lang, total=res.total,
                       understood=_aside(understood, lang))
        else:
            head = say("results_more" if res.exhaustive else "results_more_top", lang, first=offset + 1,
                       last=offset + len(res.hits), total=res.total)
        replies = [self._cards_reply(turn, head, res.hits, res.total, offset)]
        writer = self.product_writer
        if writer is not None and self.search_summaries and first and len(res.hits) > 1:
            # the cards go out at once; a closing line about them follows when the model has one
            closing = Reply("")
            records = [h.product.to_record() for h in res.hits]
            label = turn.query or query

            async def write(on_text: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
                assert writer is not None
                r = await writer.summary(label, records, lang, on_text=on_text)
                return r.text, {"kind": "search_summary", **r.to_log()}

            turn.pending.append(_Pending("search_summary", closing, write))
            replies.append(closing)
        return replies

    def _bounded_search(self, pq: ParsedQuery, offset: int) -> SearchResult:
        """A price nudge ("cheaper") among products that are relevant to the search at any price.

        A plain price filter ranks whatever is left: "cheaper running shoes" below the cheapest running
        shoe would list sandals. Here only the search's relevant pool (its top results without a price
        limit) is narrowed by price, so "cheaper" can run out, which is the honest answer.
        """
        loose = replace(pq.filters, min_price=None, max_price=None)
        hits = self.engine.search(replace(pq, filters=loose, sort="relevance"), k=POOL).hits
        # relevant = close to the best match (the same floor the engine uses when sorting by price)
        pool = {h.sku for h in hits if h.score >= 0.75 * hits[0].score} if hits else set()
        full = self.engine.search(pq, k=POOL)
        kept = [h for h in full.hits if h.sku in pool]
        page = [Hit(h.product, h.score, offset + i + 1, h.signals) for i, h in enumerate(kept[offset: offset + self.page_size])]
        return SearchResult(full.query, page, len(kept), offset, full.timings_ms)

    def _cards_reply(self, turn: _Turn, head: str, hits: Sequence[Hit], total: int, offset: int,
                     reason: str | None = None) -> Reply:
        lang = turn.lang
        turn.state["shown_turn"] = turn.turn_id
        cards = [self._card(h.product, h.rank, lang, reason) for h in hits]
        buttons = []
        if offset + len(hits) < total:
            buttons.append(Button(say("btn_more", lang), "more"))
        if turn.state.get("mode") == "search" and hits:
            buttons.append(Button(say("btn_cheaper", lang), "cheaper"))
        buttons += [Button(say("btn_up", lang), f"up:{turn.turn_id}"), Button(say("btn_down", lang), f"down:{turn.turn_id}")]
        return Reply(head, cards=cards, buttons=buttons)

    @staticmethod
    def _card(p: Product, rank: int, lang: str, reason: str | None = None) -> Card:
        return card_from_product(p, rank, lang, reason)

    def _pick(self, turn: _Turn, ordinals: Sequence[int]) -> list[Product] | None:
        """The shown products the ordinals point at; None (and nothing picked) when one is out of range."""
        numbered = self._pick_numbered(turn, ordinals)
        return None if numbered is None else [p for _, p in numbered]

    def _pick_numbered(self, turn: _Turn, ordinals: Sequence[int]) -> list[tuple[int, Product]] | None:
        """``_pick`` with the number each product has on screen (results 6-10 on the second page)."""
        shown = list(turn.state.get("shown") or [])
        offset = int(turn.state.get("offset", 0))
        out = []
        for n in ordinals:
            if n == -1:
                idx = len(shown) - 1
            elif n > len(shown) and offset:
                idx = n - 1 - offset  # "the 7th" on the second page means its 2nd line
            else:
                idx = n - 1
            if not 0 <= idx < len(shown):
                return None
            p = self.engine.product(shown[idx])
            if p is None:
                return None
            out.append((offset + idx + 1, p))
        return out

    def _details(self, turn: _Turn, ordinals: Sequence[int], sku: str | None = None) -> list[Reply]:
        lang = turn.lang
        if sku:
            p = self.engine.product(sku)
            picked = [p] if p else None
        else:
            shown = turn.state.get("shown") or []
            if not shown:
                return [Reply(say("no_search", lang))]
            picked = self._pick(turn, ordinals[:1] or [1]) if (ordinals or len(shown) == 1) else None
            if picked is None:
                return [Reply(say("which_one", lang, n=len(shown)))]
        if not picked:
            return [Reply(say("unknown_product", lang))]
        p = picked[0]
        turn.query = None
        lines = [p.title_for(lang)]
        facts = [format_price(p.price, p.currency)]
        if p.brand:
            facts.append(p.brand)
        if p.category:
            facts.append(" > ".join(p.category))
        lines.append(" · ".join(facts))
        for name, values in p.attributes.items():
            if name in {"rating"}:
                continue
            lines.append(f"{attribute_name(name, lang)}: {', '.join(attribute_value(name, v, lang) for v in values)}")
        rating = p.attr("rating")
        if rating:
            lines.append(f"{say('row_rating', lang)}: {rating[0]}/5")
        lines.append(say("details_stock", lang, stock=p.stock) if p.stock > 0 else say("details_oos", lang))
        if p.description:
            desc = p.description if len(p.description) <= 600 else p.description[:600].rsplit(" ", 1)[0] + " …"
            lines.append(desc)
        turn.state["focus"] = p.sku
        buttons = [Button(say("btn_similar", lang), f"similar:{p.sku}"),
                   Button(say("btn_up", lang), f"up:{turn.turn_id}:{p.sku}"),
                   Button(say("btn_down", lang), f"down:{turn.turn_id}:{p.sku}")]
        replies = [Reply("\n".join(lines), cards=[self._card(p, 1, lang)], buttons=buttons)]
        known = _fact_answer(turn.text or "", p, lang)
        if known:
            # the catalog answers it: no model, and never "the product information does not say"
            replies.append(Reply(known))
            return replies
        writer = self.product_writer
        if writer is not None and turn.text and _QUESTION.search(turn.text):
            # "is the second one waterproof?": the details above are facts; the model answers in words
            qa = Reply("")
            question, record = turn.text, p.to_record()

            async def write(on_text: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
                assert writer is not None
                r = await writer.answer(question, record, lang, on_text=on_text)
                text = say("qa_not_listed", lang) if r.source == "dont_know" else r.text
                if r.source == "dont_know":
                    qa.buttons.append(Button(say("btn_handoff", lang), "handoff"))
                return text, {"kind": "product_qa", "sku": record.get("sku"), **r.to_log()}

            turn.pending.append(_Pending("product_qa", qa, write))
            replies.append(qa)
        return replies

    def _compare(self, turn: _Turn, ordinals: Sequence[int]) -> list[Reply]:
        lang = turn.lang
        shown = turn.state.get("shown") or []
        if not shown:
            return [Reply(say("no_search", lang))]
        if len(ordinals) < 2:
            if len(shown) == 2 and not ordinals:
                ordinals = [1, 2]
            else:
                return [Reply(say("compare_two", lang))]
        numbered = self._pick_numbered(turn, ordinals[:4])
        if numbered is None:
            return [Reply(say("which_one", lang, n=len(shown)))]
        # numbered as on screen ("1 or 3" shows 1 and 3; "6 and 7" on the second page shows 6 and 7)
        numbers, picked = [n for n, _ in numbered], [p for _, p in numbered]
        header = [""] + [f"{n}. {p.title_for(lang)}" for n, p in numbered]
        rows = [header,
                [say("row_price", lang)] + [format_price(p.price, p.currency) for p in picked],
                [say("row_brand", lang)] + [p.brand or "-" for p in picked],
                [say("row_category", lang)] + [p.category[-1] if p.category else "-" for p in picked]]
        names: list[str] = []
        for p in picked:
            names += [a for a in p.attributes if a not in names]
        for a in names:
            label = say("row_rating", lang) if a == "rating" else attribute_name(a, lang)
            rows.append([label] + [", ".join(attribute_value(a, v, lang) for v in p.attr(a)) or "-" for p in picked])
        rows.append([say("row_stock", lang)] + [str(p.stock) if p.stock > 0 else say("details_oos", lang) for p in picked])
        turn.query = None
        cards = [self._card(p, n, lang) for n, p in numbered]
        return [Reply(say("compare_head", lang), cards=cards, table=rows,
                      buttons=[Button(say("btn_details", lang) + f" {n}", f"details:{p.sku}") for n, p in zip(numbers, picked, strict=True)])]

    def _similar(self, turn: _Turn, ordinals: Sequence[int], sku: str | None = None, offset: int = 0,
                 filters: Filters | None = None) -> list[Reply]:
        """Products like a shown one (or ``sku``); with ``filters`` ("the second one in blue") only those in
        that colour or size. The filters stay for the next page."""
        lang = turn.lang
        if filters is None and sku is not None and turn.state.get("mode") == "similar" and offset:
            filters = filters_from_dict(turn.state.get("anchor_filters"))
        filters = None if filters is None or filters.is_empty() else filters
        if sku is None:
            shown = turn.state.get("shown") or []
            if not shown:
                return [Reply(say("no_search", lang))]
            picked = self._pick(turn, ordinals[:1]) if ordinals else (
                [p] if (p := self.engine.product(str(turn.state.get("focus") or ""))) else None)
            if not picked:
                return [Reply(say("which_one", lang, n=len(shown)))]
            sku = picked[0].sku
        anchor = self.engine.product(sku)
        if anchor is None:
            return [Reply(say("unknown_product", lang))]
        if filters is not None and not filters.categories and anchor.category:
            # "the second one in red": the same kind of product in red, not anything red that looks alike
            filters = replace(filters, categories=frozenset({" > ".join(c.lower() for c in anchor.category)}))
        hits = self.engine.similar(sku, k=offset + self.page_size, filters=filters)[offset:]
        if not hits:
            if filters is not None and not offset:
                turn.zero_results = True
                return [Reply(say("no_results", lang, query=anchor.title_for(lang), understood=_aside(filters.describe(lang), lang)))]
            return [Reply(say("no_more", lang))]
        turn.state.update({"mode": "similar", "anchor": sku, "offset": offset, "shown": [h.sku for h in hits],
                           "anchor_filters": filters_to_dict(filters) if filters is not None else None})
        turn.query = f"similar:{sku}"
        hits = [Hit(h.product, h.score, offset + i + 1, h.signals) for i, h in enumerate(hits)]
        head = say("similar_head", lang, title=anchor.title_for(lang))
        return [self._cards_reply(turn, head, hits, offset + len(hits) + self.page_size, offset,
                                  reason=f"like {anchor.sku}")]

    def _recommend(self, turn: _Turn) -> list[Reply]:
        """Products chosen from the shopper's own history in the store (retrieval/recommend/recommender.py), each card with
        its one-line reason; popular, varied ones for a new shopper; complements after a purchase."""
        lang = turn.lang
        read = getattr(self.store, "interactions", None)
        history = list(read(turn.user_id, limit=200)) if read is not None else []
        recs = self._recommender().for_user(history, k=self.page_size)
        turn.state.update({"mode": "recommend", "shown": [r.sku for r in recs], "offset": 0})
        turn.query = "recommend"
        hits = [Hit(r.product, r.score, i + 1, {}) for i, r in enumerate(recs)]
        reply = self._cards_reply(turn, say("recommend_head", lang), hits, len(hits), 0)
        reply.cards = [replace(c, reason=r.reason) for c, r in zip(reply.cards, recs, strict=True)]
        return [reply]

    def _complements(self, turn: _Turn, ordinals: Sequence[int], words: str) -> list[Reply]:
        """What goes with one product ("I bought a laptop, what else do I need?"): the product is the shown
        one the shopper points at, else the best match for the words they named, else the one on screen."""
        lang = turn.lang
        anchor: Product | None = None
        picked = self._pick(turn, ordinals) if ordinals else None
        if picked:
            anchor = picked[0]
        elif words:
            # understood as a search would be ("laptop" is the laptops category, not a laptop sleeve)
            named = self.understand(words, {})
            query = named.query or words
            hits = self.engine.search(ParsedQuery(text=query, filters=named.filters, raw=query), k=1).hits
            anchor = hits[0].product if hits else None
        else:
            on_screen = turn.state.get("focus") or next(iter(turn.state.get("shown") or []), None)
            anchor = self.engine.product(str(on_screen)) if on_screen else None
        if anchor is None:
            turn.intent = "other"
            return [Reply(say("complements_which", lang))]
        recs = self._recommender().complements(anchor.sku, k=self.page_size)
        title = anchor.title_for(lang)
        if not recs:
            return [Reply(say("complements_none", lang, title=title))]
        turn.state.update({"mode": "recommend", "shown": [r.sku for r in recs], "offset": 0, "focus": None})
        turn.query = "recommend"
        hits = [Hit(r.product, r.score, n + 1, {}) for n, r in enumerate(recs)]
        reply = self._cards_reply(turn, say("complements_head", lang, title=title), hits, len(hits), 0)
        reply.cards = [replace(c, reason=r.reason) for c, r in zip(reply.cards, recs, strict=True)]
        return [reply]

    def forget_recommender(self) -> None:
        """The next recommendation builds its Recommender anew (a new next-item model was attached)."""
        self._rec_cache = None

    def _recommender(self) -> Recommender:
        """One Recommender over the current catalog and everyone's log, rebuilt every few minutes."""
        now = time.monotonic()
        cached = self._rec_cache
        if cached is None or cached[0] is not self.engine or now - cached[1] > 300:
            read = getattr(self.store, "interactions", None)
            log_rows = read(limit=20000) if read is not None else []
            rec = Recommender(self.engine.products, log_rows, engine=self.engine)
            if self.sequential is not None:
                rec.attach_sequential(*self.sequential)
            cached = (self.engine, now, rec)
            self._rec_cache = cached
        return cached[2]

    # ------------------------------------------------------------------------ service & feedback

    def _support(self, turn: _Turn, u: Understanding) -> list[Reply]:
        lang = turn.lang
        sections = CS_SECTIONS.get(u.intent, ())
        match = self.answer(turn.text, u.intent, lang, sections)
        buttons = [Button(say("btn_up", lang), f"up:{turn.turn_id}"), Button(say("btn_down", lang), f"down:{turn.turn_id}")]
        if match is None:
            turn.zero_results = True
            return [Reply(say("support_fallback", lang), buttons=[Button(say("btn_handoff", lang), "handoff")])]
        suffix = ""
        if (u.intent in ORDER_SPECIFIC and u.order_number) or u.intent == "complaint":
            suffix = "\n\n" + say("order_specific", lang)
            buttons.insert(0, Button(say("btn_handoff", lang), "handoff"))
        reply = Reply(match.text + suffix, buttons=buttons)
        writer = self.support_writer
        if writer is not None and match.passages:
            question = turn.text

            async def write(on_text: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
                assert writer is not None
                a = await writer.answer(question, match.passages, match.text, lang, on_text=lambda t: on_text(t + suffix))
                return a.text + suffix, a.to_log()

            turn.pending.append(_Pending("support", reply, write))
        return [reply]

    def _handoff(self, turn: _Turn, reason: str) -> list[Reply]:
        self.store.handoff(turn.user_id, reason)
        return [Reply(say("handoff", turn.lang), handoff=True)]

    def _feedback(self, turn: _Turn, *, positive: bool, ref_turn: str | None = None, sku: str | None = None) -> list[Reply]:
        target = ref_turn or turn.state.get("last_turn")
        if positive:
            self.store.feedback(turn.user_id, "thumb_up", turn_id=target, sku=sku)
            return [Reply(say("feedback_up", turn.lang))]
        kind = "thumb_down" if ref_turn else "not_what_i_meant"
        self.store.feedback(turn.user_id, kind, turn_id=target, sku=sku)
        return [Reply(say("feedback_down", turn.lang))]


@dataclass
class _Turn:
    turn_id: str
    user_id: str
    lang: str
    state: dict[str, Any]
    text: str
    intent: str = "other"
    confidence: float | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    query: str | None = None
    zero_results: bool = False
    error: str | None = None
    pending: list[_Pending] = field(default_factory=list)  # replies the model still has to write
    generation: list[dict[str, Any]] = field(default_factory=list)  # what it did, for the turn's log
    unsaved_state: bool = False  # the state is saved with the turn's log line


@dataclass
class _Pending:
    """A reply whose text the model writes: ``write(on_text)`` -> (final text, log record)."""

    kind: str
    reply: Reply
    write: Callable[[Callable[[str], None]], Awaitable[tuple[str, dict[str, Any]]]]


def _empty(r: Reply) -> bool:
    return not (r.text or r.cards or r.buttons or r.table or r.handoff)


def _run_coroutine(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` to the end from synchronous code, also when this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


def _fields(f: Filters) -> dict[str, Any]:
    return {k: getattr(f, k) for k in ("min_price", "max_price", "currency", "categories", "brands", "colors", "sizes", "in_stock")}


def _aside(text: str, lang: str) -> str:
    """What the filters were, in brackets after a sentence's subject: " (red, under 80)" / "（红色，80 以下）"."""
    if not text:
        return ""
    return f"（{text}）" if lang == "zh" else f" ({text})"


def _query_label(query: str, f: Filters) -> str:
    """How the search is logged: its words plus the filters, so "cheaper" turns are told apart."""
    d = f.describe()
    return f"{query} ({d})" if d and query else query or d


def _fact_answer(question: str, p: Product, lang: str) -> str | None:
    """The answer to a stock or price question about ``p`` from its catalog record, or None for any other
    question (the language model answers those from the same record)."""
    if not question or not _QUESTION.search(question):
        return None
    asks_stock, asks_price = bool(_ASKS_STOCK.search(question)), bool(_ASKS_PRICE.search(question))
    if asks_stock == asks_price:  # neither, or both in one breath: the details above show both
        return None
    if asks_price:
        return say("details_price", lang, price=format_price(p.price, p.currency))
    if p.stock > 0:
        return say("details_stock", lang, stock=p.stock)
    return say("details_oos", lang)
