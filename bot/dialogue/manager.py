"""The dialogue manager: one shopper event in, channel-neutral replies out.

Every channel (terminal, Telegram, Rasa) calls :meth:`DialogueManager.handle`; all behaviour lives
in this package. A turn is: clean the text -> load the shopper's state -> understand (intent + slots) ->
one service -> log the turn, the products shown and the new state. This module owns the turn's life
and the routing; the services are their own modules (search.py: search, refine, more; products.py:
details, compare, similar; recommend.py: recommendations and complements; support.py: policy answers
and the handoff), sharing the turn through turn.py. Facts (prices, stock, attributes, policy text)
are rendered from the catalog and the policy document by code; nothing here invents a number.

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
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bot.dialogue import advice, products, recommend, search, support, watch
from bot.dialogue.messages import say
from bot.dialogue.nlu.rules import QUESTION_CUE, complement_anchor, names_service
from bot.dialogue.replies import Button, Event, LiveText, Reply
from bot.dialogue.support import CS_SECTIONS
from bot.dialogue.turn import PolicyAnswers, Store, Turn, filters_to_dict
from bot.dialogue.understanding import Understander, Understanding
from bot.observability.logs import bind_turn_id, turn_id_var
from bot.observability.metrics import count_error, count_turn, observe, timed
from bot.store.records import TurnRecord
from model.writing.product_text import ProductWriter
from model.writing.support import SupportWriter
from retrieval.encoders import shared_queries
from retrieval.kinds import GENERIC_HEADS, query_head
from retrieval.lexical import has_cjk
from retrieval.policy import PolicyMatch
from retrieval.recommend.recommender import Recommender
from retrieval.search import SearchEngine

if TYPE_CHECKING:
    from retrieval.recommend.sequential import SequentialRecommender

__all__ = ["DialogueManager", "clean_text", "language_of"]

log = logging.getLogger(__name__)

MAX_CHARS = 1000  # what we read of one message; the rest is dropped with a note
# a message put as a question: the NLU's cues, and a few more ways of asking ("should I ...", "会不会...")
_QUESTION = re.compile(QUESTION_CUE.pattern + r"|^\s*(?:should|may|was)\b|呢|会不会|是不是|能否|可否"
                       # a question after a statement: "my zipper broke, can you fix it and how much"
                       r"|[,;]\s*(?:is|are|do|does|can|could|will|would|how|what|when|where|who|why)\b"
                       r"|\bhow (?:much|many|long)\b", re.I)
# a question the intent model took for a search goes to the policy only when a section is this close to it in
# meaning (PolicyMatch.score, the encoders' part without shared words): above 95% of the everyday requests of
# retrieval/data/demo_needs.csv asked as questions ("do you sell ...?", "有没有...？") against the demo policy and
# the two tune documents of retrieval/data/policy_eval (0.25, 0.37, 0.18), near the lowest tenth of those
# documents' own questions (0.30, 0.23): a product question wins a tie
POLICY_OVER_SEARCH = 0.40
# ... or, when it names no kind of product the shop sells, this close: the everyday requests of the three needs
# files that the chat routes this way (put as questions, taken for searches or refinements, naming no kind) came
# to at most 0.12 of the demo policy, the policy_eval questions routed this way to 0.09-0.71 of their documents,
# all but one at 0.18 or above (2026-12-07; it was 0.20 when the needs came to 0.19); halfway between the two
SHOP_QUESTION = 0.15
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")


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
        model_advice: bool = True,
        watch_days: float = 30.0,
        watch_limit: int = 10,
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
        # the model's own words about the products on screen (see Settings.llm_advice); code answers without them
        self.model_advice = model_advice
        # shoppers' watchlists (bot/dialogue/watch.py): how long a watch lives, how many one shopper may hold
        self.watch_days, self.watch_limit = watch_days, watch_limit
        self._tasks: set[asyncio.Task[None]] = set()
        self._rec_cache: tuple[SearchEngine, float, Recommender] | None = None
        # a trained next-item model and its items' SKUs (the active recommender version), loaded by the caller
        self.sequential = sequential

    # ------------------------------------------------------------------------------------ entry

    def handle(self, event: Event) -> list[Reply]:
        """One turn, synchronously: every reply's text is final (the model's, or the template)."""
        turn_id = uuid.uuid4().hex
        with bind_turn_id(turn_id_var.get() or turn_id):  # the log lines of this turn carry its id
            turn, replies, t0 = self._prepare(event, turn_id)
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
        turn_id = uuid.uuid4().hex
        # the log lines of this turn carry its id (a receiver's, when the caller bound one), in the worker
        # thread and in the task that writes the model's replies alike
        with bind_turn_id(turn_id_var.get() or turn_id):
            turn, replies, t0 = await asyncio.to_thread(self._prepare_and_log, event, turn_id)
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

    def _prepare_and_log(self, event: Event, turn_id: str | None = None) -> tuple[Turn, list[Reply], float]:
        """`_prepare`, then `_log` at once when no reply waits for the model: one trip to a worker thread."""
        turn, replies, t0 = self._prepare(event, turn_id)
        if not turn.pending:
            self._log(turn, replies, t0, event)
        return turn, replies, t0

    def _prepare(self, event: Event, turn_id: str | None = None) -> tuple[Turn, list[Reply], float]:
        """Everything but the model's writing and the turn's log line. The state is saved here when a
        reply waits for the model, so the shopper's next message sees this turn meanwhile; otherwise (a
        store with ``start_turn``) `_log` writes it with the turn, in one transaction."""
        t0 = self.clock()
        turn_id = turn_id or uuid.uuid4().hex
        text, cut = clean_text(event.text)
        start = getattr(self.store, "start_turn", None)
        if start is not None:
            user_id, handed_over, stored = start(event.channel, event.user, event.language)
        else:
            user_id, handed_over = self.store.touch(event.channel, event.user, event.language)
            stored = self.store.load_state(user_id)
        state = dict(stored or {})
        lang = language_of(text, state, event.language)
        turn = Turn(turn_id=turn_id, user_id=user_id, lang=lang, state=state, text=text)
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
            count_error("turn_exception")
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

    async def _write_all(self, turn: Turn, *, live: bool) -> None:
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

    def _save(self, turn: Turn, *, with_log: bool = False) -> None:
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

    def _log(self, turn: Turn, replies: list[Reply], t0: float, event: Event) -> None:
        text_in = event.text if event.text is not None else f"[button] {event.payload}"
        record = TurnRecord(
            turn_id=turn.turn_id, user_id=turn.user_id, text_in=(text_in or "")[:10_000],
            text_out="\n".join(r.text for r in replies), intent=turn.intent, confidence=turn.confidence,
            language=turn.lang, latency_ms=(self.clock() - t0) * 1000, slots=turn.slots,
            shown=[(c.sku, c.rank, None) for r in replies for c in r.cards], query=turn.query, error=turn.error,
            model_versions=self.versions, generation=turn.generation, shown_by=self._shown_by(turn),
            state=turn.state if turn.unsaved_state else None,
        )
        count_turn(event.channel, turn.intent)
        observe("turn", (record.latency_ms or 0.0) / 1000)
        try:
            self.store.log(record)
        except Exception:
            if turn.unsaved_state:  # a turn that cannot be logged still leaves the conversation where it is
                self.store.save_state(turn.user_id, turn.state)
            raise

    def _shown_by(self, turn: Turn) -> str:
        """The model that ranked this turn's cards: the recommender for recommendations, else the search ranker."""
        kind = "recommender" if turn.query == "recommend" else "ranker"
        return f"{kind}:{self.versions.get(kind, 'built-in')}"

    # --------------------------------------------------------------------------------- dispatch

    def _dispatch(self, turn: Turn, event: Event, cut: bool) -> list[Reply]:
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
            with timed("nlu"):
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

    def _route(self, turn: Turn, u: Understanding) -> list[Reply]:
        i = u.intent
        if i == "watch":  # "tell me when ... is in stock": a standing search (bot/dialogue/watch.py), before all else
            return watch.create(self, turn, u)
        if i == "watchlist":  # "my watchlist", /watchlist
            return watch.listing(self, turn)
        focus = turn.state.get("focus")
        if turn.state.get("shown") and (advice.asks_about_shown(turn.text) or advice.compares_named(turn.text, u.ordinals)):
            # "which of these is best for running in the rain?", "哪个更便宜？": about the products on screen,
            # whatever the intent model made of it; the search, its filters and its page stay
            turn.intent = "advice"
            return advice.answer(self, turn, u.ordinals)
        if (i in {"search", "other", "compare"} or (i in CS_SECTIONS and not names_service(turn.text))) and not focus \
                and turn.state.get("shown") and (products.asks_about_it(turn.text) or (i == "compare" and len(u.ordinals) == 1)):
            # "这口锅电磁炉上能用吗" with a list on screen, "is the second one a hardback or a paperback?": a question
            # about one shown product (which one, when the list has several and none is named), not a new search;
            # "这个充满电能听多久" is about the product's battery, whatever delivery time the intent model heard in 多久
            turn.intent = "details"
            return products.details(self, turn, list(u.ordinals))
        if (i in {"search", "other"} or (i == "refine" and not turn.state.get("shown"))) and not focus:
            # a "refinement" of nothing on screen is a first request ("does this brand run small?", "is AC
            # installation free"): routed as a search would be
            match = self._policy_answers(turn, u if i != "refine" else replace(u, intent="search"))
            if match is not None:
                # "can I send back an opened TV?", "what are your opening hours?": the shop's documents answer it
                turn.intent = "policy_question"
                return support.answer(self, turn, u, match)
        if i in {"search", "other"} and focus and products.asks_about_it(turn.text):
            # "is it machine washable?" right after a product's details: a question about that product
            turn.intent = "details"
            return products.details(self, turn, [], sku=str(focus))
        if i == "search":
            with timed("search"):
                return search.search(self, turn, u)
        if i == "refine":
            with timed("search"):
                return search.refine(self, turn, u)
        if i == "more":
            with timed("search"):
                return search.more(self, turn)
        if i == "compare":
            return products.compare(self, turn, u.ordinals)
        if i == "details":
            return products.details(self, turn, u.ordinals)
        if i == "similar":
            return products.similar(self, turn, u.ordinals, filters=u.filters if u.ordinals else None)
        if i == "recommend":
            anchor = complement_anchor(turn.text)
            if anchor is not None:
                replies = recommend.complements(self, turn, u.ordinals, anchor)
                if replies is not None:
                    return replies
                # "bike accessories" where no bike is sold: a search for them
                turn.intent = "search"
                return search.search(self, turn, u if u.query else replace(u, query=turn.text))
            return recommend.recommend(self, turn)
        if i in {"contact_human_agent", "handoff"}:
            return support.handoff(self, turn, "asked for a person")
        if i == "feedback_positive":
            return self._feedback(turn, positive=True)
        if i == "feedback_negative":
            return self._feedback(turn, positive=False)
        if i in {"greet", "help", "thanks", "goodbye"}:
            return [Reply(say(i, turn.lang))]
        if i in CS_SECTIONS:
            return support.answer(self, turn, u)
        return [Reply(say("other", turn.lang))]

    def _policy_answers(self, turn: Turn, u: Understanding) -> PolicyMatch | None:
        """The policy's answer to a message the intent model took for a search or for nothing it knows, when the
        documents answer it: anything they answer well enough for "other", only a question they answer clearly
        (``POLICY_OVER_SEARCH``) for a search ("TV wall mount" stays a search, "can I return an opened TV?" does
        not); and a question about the shop rather than its products (``SHOP_QUESTION``), answered or not (the
        match then says so: ``answers`` False)."""
        if u.intent == "search" and not _QUESTION.search(turn.text):
            return None
        match = self.answer(turn.text, u.intent, turn.lang, ())
        if match is None:
            return None
        if u.intent != "search":
            return match if match.answers else None
        if match.answers and match.score >= POLICY_OVER_SEARCH:
            return match
        if match.score >= SHOP_QUESTION and self._names_no_kind(u.query or turn.text):
            # "can I tip my driver?", "do you have a senior discount day?": about the shop, not its products;
            # answered if the documents do, else they say so and offer a person
            return match
        return None

    def _names_no_kind(self, query: str) -> bool:
        """Whether a request's head names no kind of product this catalog sells, nor "something" ("do you offer
        a student discount?", not "do you sell tents?" or "do you have anything for dry skin?"). A catalog without
        categories cannot tell: False."""
        kinds = self.engine.kinds
        head = query_head(query) if kinds else None
        return head is not None and head not in GENERIC_HEADS and kinds.rows(query) is None

    def _button(self, turn: Turn, payload: str) -> list[Reply]:
        kind, _, arg = payload.partition(":")
        turn.slots = {"payload": payload}
        if kind == "more":
            turn.intent = "more"
            return search.more(self, turn)
        if kind == "cheaper":
            turn.intent = "refine"
            return search.refine(self, turn, Understanding("refine", query="cheaper"))
        if kind == "details":
            turn.intent = "details"
            return products.details(self, turn, [], sku=arg)
        if kind == "similar":
            turn.intent = "similar"
            return products.similar(self, turn, [], sku=arg)
        if kind == "search":  # "Search: waterproof running shoes", offered where the shown ones don't say
            turn.intent, turn.text = "search", arg
            return search.search(self, turn, self.understand(arg, turn.state))
        if kind == watch.UNWATCH:  # "unwatch:<watch id>": the Cancel button of a watchlist
            turn.intent = "watch_cancel"
            return watch.cancel(self, turn, arg)
        if kind == "handoff":
            turn.intent = "contact_human_agent"
            return support.handoff(self, turn, "pressed the button")
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
            return products.details(self, turn, [], sku=arg)
        turn.intent = "other"
        return [Reply(say("other", turn.lang))]

    # ------------------------------------------------------------------- recommender & feedback

    def forget_recommender(self) -> None:
        """The next recommendation builds its Recommender anew (a new next-item model was attached)."""
        self._rec_cache = None

    def recommender(self) -> Recommender:
        """One Recommender over the current catalog and everyone's log, rebuilt every few minutes (and when
        the engine is swapped); what bot/dialogue/recommend.py recommends with."""
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

    def _feedback(self, turn: Turn, *, positive: bool, ref_turn: str | None = None, sku: str | None = None) -> list[Reply]:
        if ref_turn is not None:
            owner = getattr(self.store, "turn_owner", lambda _t: None)(ref_turn)
            if owner is not None and owner != turn.user_id:  # a thumb on someone else's turn: never recorded
                turn.intent = "other"
                return [Reply(say("other", turn.lang))]
        target = ref_turn or turn.state.get("last_turn")
        if positive:
            self.store.feedback(turn.user_id, "thumb_up", turn_id=target, sku=sku)
            return [Reply(say("feedback_up", turn.lang))]
        kind = "thumb_down" if ref_turn else "not_what_i_meant"
        self.store.feedback(turn.user_id, kind, turn_id=target, sku=sku)
        return [Reply(say("feedback_down", turn.lang))]


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

