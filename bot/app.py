"""Wiring: one function builds the whole assistant from Settings, for every adapter.

The terminal chat, the Telegram bot and the Rasa action server all call :func:`build_assistant` and
then only translate events and replies; what the assistant does is decided in bot/dialogue/manager.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bot.dialogue.manager import DialogueManager
from bot.dialogue.nlu.intents import IntentModel, IntentModelError, load_default_model
from bot.dialogue.nlu.parser import NLU
from bot.dialogue.replies import Event, Reply
from bot.dialogue.support import follows_intent_table
from bot.dialogue.understanding import Understanding
from bot.observability.metrics import count_error, count_tokens, observe, set_index_version
from bot.services import active_version, load_engine
from bot.settings import Settings
from bot.store.database import Store
from model.llm.base import LLM, BaseLLM, LLMTimeout, Message
from model.llm.factory import LLMError, build_llm
from model.training.intents import MODEL_FILE
from model.training.registry import Registry, RegistryError
from model.writing.product_text import ProductWriter
from model.writing.support import SupportWriter, grounded_verifier
from retrieval.bundle import current_dir
from retrieval.policy import PolicyIndex, PolicyMatch
from retrieval.query import Filters
from retrieval.recommend.sequential import SequentialRecommender
from retrieval.search import SearchEngine

__all__ = [
    "Assistant",
    "MeteredLLM",
    "build_assistant",
    "index_version",
    "intent_model_from_settings",
    "llm_from_settings",
    "next_item_model_from_settings",
    "nlu_for",
    "nlu_understander",
    "policy_answerer",
    "quiet_model_loading",
]

log = logging.getLogger(__name__)


def nlu_understander(nlu: NLU, engine: SearchEngine | None = None) -> Any:
    """Adapt the NLU's result to what the dialogue manager needs.

    With the ``engine``, the search's reading of the kind asked for (retrieval/kinds.py: the catalog's own
    kinds, in both languages) wins over the NLU's category words where the two disagree: 空气炸锅 (an air
    fryer) is no cookware although it ends in 锅, and a colour is no filter on a kind the catalog sells in
    no colour (as in the search box, ``SearchEngine.parse``)."""

    def understand(text: str, state: Mapping[str, Any]) -> Understanding:
        r = nlu.parse(text, state)
        s = r.slots
        filters = s.with_categories() if engine is None else _agree_with_search(engine, s.query, s.filters,
                                                                                s.categories)
        intent = r.intent
        if engine is not None and intent in _NOT_A_TASK and _names_a_kind(engine, s.query, text, intent):
            intent = "search"  # 大米 (rice) is no greeting, 不粘锅 (a non-stick pan) no complaint
        return Understanding(
            intent=intent, confidence=r.confidence, query=s.query, filters=filters,
            sort=None if s.sort == "relevance" else s.sort, ordinals=list(s.ordinals), order_number=s.order_number,
        )

    return understand


# what the intent classifier says of a message it did not take for a task
_NOT_A_TASK = frozenset({"other", "greet", "feedback_negative"})


def _names_a_kind(engine: SearchEngine, query: str, text: str, intent: str) -> bool:
    """Whether a message the classifier did not take for a task is the name of a kind this shop sells: a
    complaint only when it is that name alone ("不粘锅", not "these pans are awful")."""
    if not query or not engine.kinds or engine.kinds.rows(query) is None:
        return False
    return intent != "feedback_negative" or len(query.split()) == 1 == len(text.split())


def _agree_with_search(engine: SearchEngine, query: str, filters: Filters, categories: Sequence[str]) -> Filters:
    """The NLU's filters, less a category or colour that would hide the kind of product the search reads in
    ``query``."""
    kind = engine.kinds.rows(query) if query and engine.kinds else None
    if kind is None:
        return filters.merged(Filters(categories=frozenset(categories))) if categories else filters
    if filters.colors and engine.comes_in_no_colour(query):
        filters = replace(filters, colors=frozenset())
    if categories:
        named = engine.arrays.mask(Filters(categories=frozenset(categories)))
        if named is None or named[kind].any():
            filters = filters.merged(Filters(categories=frozenset(categories)))
    return filters


def policy_answerer(policy: PolicyIndex) -> Any:
    """The dialogue's policy lookup. The intent's sections help rank only a policy written with the intent table
    (``support.follows_intent_table``); any other shop's documents are ranked by what they say."""
    topical = follows_intent_table(policy.sections())

    def answer(question: str, intent: str, language: str, sections: Sequence[str]) -> PolicyMatch | None:
        return policy.lookup(question, language=language, sections=sections if topical else (), unanswered=True)

    return answer


def llm_from_settings(settings: Settings) -> BaseLLM | None:
    """The configured language model, or None (templates only) when it is off or cannot be prepared.

    A missing or broken model never stops the assistant: it answers with grounded templates and says
    why once in the log.
    """
    if settings.llm == "off":
        return None
    tuned = active_version(settings, "llm")  # `shopbot train llm`: a LoRA adapter over the local model
    try:
        return build_llm(settings.llm_url, settings.llm_model, settings.data_dir, settings.device,
                         api_key=settings.llm_api_key, timeout=settings.llm_timeout,
                         adapter=tuned.path if tuned else None, dtype=settings.llm_dtype)
    except (LLMError, OSError, ValueError, RuntimeError) as exc:
        log.warning("No language model (%s): replies use templates only.", exc)
        return None


def intent_model_from_settings(settings: Settings) -> tuple[IntentModel, str]:
    """The intent classifier and the name turns record for it (``versions["intent"]``).

    SHOPBOT_INTENT_MODEL wins when set (recorded by its data hash), then the active ``intents`` version from
    ``shopbot train intents`` (recorded by its version name), then the packaged model (its data hash). A
    damaged version file is said once in the log and the packaged model answers instead.
    """
    if settings.intent_model:
        model = IntentModel.load(settings.intent_model)
        return model, model.version
    version = active_version(settings, "intents")
    if version is not None:
        try:
            return load_default_model(version.path / MODEL_FILE), str(version.name)
        except (IntentModelError, OSError, ValueError) as exc:
            log.warning("The active intents version %s cannot be loaded (%s): the packaged model is used.",
                        version.name, exc)
    model = load_default_model()
    return model, model.version


def next_item_model_from_settings(
    settings: Settings,
) -> tuple[tuple[SequentialRecommender, list[str] | None], str] | None:
    """The active recommender version's next-item model with its SKUs, and the version name; None when no
    version is active or it cannot be loaded (said once in the log): the built-in scoring then recommends."""
    version = active_version(settings, "recommender")
    if version is None:
        return None
    try:
        model, skus = SequentialRecommender.load(version.path, device=settings.device)
    except Exception as exc:  # a damaged version must not stop the assistant
        log.warning("The active recommender version %s cannot be loaded (%s: %s): recommendations use the "
                    "built-in scoring.", version.name, type(exc).__name__, exc)
        return None
    return (model, skus), str(version.name)


def nlu_for(engine: SearchEngine, model: IntentModel) -> NLU:
    """The NLU with this catalog's vocabulary: brands, category paths ("shoes > running", so that "running
    shoes" is one category, not running things and shoes) and the colour-led names of its products."""
    return NLU(model, brands=engine.brands, categories=engine.category_paths, names=engine.name_phrases)


def _quietly(fn: Any, what: str = "the language model") -> None:
    try:
        fn()
    except Exception as exc:  # the first request will report it properly
        log.warning("Loading %s failed: %s", what, exc)


def quiet_model_loading() -> None:
    """Turn off what transformers and huggingface_hub print while a model loads ("Loading weights: 100%|...|"
    bars, load-time advice) for this process: a model loading in a background thread would otherwise draw
    over a conversation. shopbot's own bars (indexing, training) are unaffected; HF_HUB_DISABLE_PROGRESS_BARS
    or TRANSFORMERS_VERBOSITY set by the user win. Imports neither library (seconds for transformers)."""
    hf_logging = sys.modules.get("transformers.utils.logging")  # already imported: switched off directly
    if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") is None:
        try:  # ~15 ms; comes with the model libraries (without it, none of their bars can draw)
            from huggingface_hub.utils.tqdm import disable_progress_bars
        except ImportError:
            pass
        else:
            disable_progress_bars()  # transformers reads this switch when it is imported later
        if hf_logging is not None:
            hf_logging.disable_progress_bar()
    if os.environ.get("TRANSFORMERS_VERBOSITY") is None:
        os.environ["TRANSFORMERS_VERBOSITY"] = "error"  # read when transformers is first imported
        if hf_logging is not None:
            hf_logging.set_verbosity_error()


def index_version(engine: SearchEngine) -> str:
    """The served index as /metrics names it: its bundle's build directory, or "memory" for one built in
    this process without a bundle (tests)."""
    return engine.bundle.name if engine.bundle is not None else "memory"


class MeteredLLM(BaseLLM):
    """The configured language model, measured for /metrics: time to the first streamed piece, pieces
    streamed, errors and timeouts. The model packages know nothing of the bot (import contract), so the
    measuring wraps the model here where the assistant is wired; everything else is the model's own."""

    def __init__(self, inner: LLM) -> None:
        self.inner = inner
        self.name, self.version = inner.name, inner.version

    def __getattr__(self, name: str) -> Any:  # load, close, tokenizer ...: the model's own, when it has them
        if name == "inner":  # not set yet (a copy being made): no endless lookup
            raise AttributeError(name)
        return getattr(self.inner, name)

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.2,
        stop: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[str]:
        start = time.perf_counter()
        first = True
        pieces = self.inner.stream(messages, max_tokens=max_tokens, temperature=temperature, stop=stop,
                                   timeout=timeout)
        try:
            async for piece in pieces:
                if first:
                    observe("llm_first_token", time.perf_counter() - start)
                    first = False
                count_tokens("completion")
                yield piece
        except LLMTimeout:
            count_error("llm_timeout")
            raise
        except LLMError:
            count_error("llm_error")
            raise
        finally:
            aclose = getattr(pieces, "aclose", None)
            if aclose is not None:
                await aclose()  # a caller who stops reading stops the model's generation, as without the wrapper


@dataclass
class Assistant:
    dialogue: DialogueManager
    store: Store
    engine: SearchEngine
    nlu: NLU
    policy: PolicyIndex
    llm: BaseLLM | None = None
    settings: Settings | None = None
    _swap_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _refused: dict[str, str] = field(default_factory=dict, repr=False)  # an index that failed to load, said once
    # the registry's active intents/recommender versions when they were last loaded (None: not looked yet)
    _published: dict[str, str | None] | None = field(default=None, repr=False)
    _pruned_at: float | None = field(default=None, repr=False)  # time.monotonic() of the last retention prune

    #: how often the long-running commands apply SHOPBOT_RETENTION_DAYS (bot/cli/prune.py does it on demand)
    PRUNE_EVERY = 24 * 3600.0

    def handle(self, event: Event) -> list[Reply]:
        """One turn, synchronously: every reply's text is final when this returns."""
        return self.dialogue.handle(event)

    def use_engine(self, engine: SearchEngine) -> None:
        """Serve a new index (after a reindex): its vocabulary goes to the NLU and its ranker version to the
        turns' stamps in the same step; turns already running finish on the old one."""
        nlu = nlu_for(engine, self.nlu.model)
        self.engine = self.dialogue.engine = engine
        self._use_nlu(nlu)
        self.dialogue.versions["ranker"] = engine.ranker_version
        self.store.versions["ranker"] = engine.ranker_version
        set_index_version(index_version(engine))

    def reload(self) -> list[str]:
        """Serve what was published since this assistant loaded: a new index bundle (``shopbot reindex``,
        which carries the active ranker), a newly activated recommender or intents version (``shopbot
        train ...``, ``models activate|rollback``). Returns what changed, e.g. ``["index", "recommender"]``.

        Anything that fails to load is said once in the log and the assistant keeps serving what it has;
        turns already running finish on the old models. The language model is not reloaded (restart).
        """
        s = self.settings
        if s is None:
            return []
        changed: list[str] = []
        with self._swap_lock:
            cur = current_dir(s.index_root)
            if cur is not None and cur != self.engine.bundle and self._refused.get("index") != str(cur):
                try:
                    engine = load_engine(s, build_if_missing=False)
                    engine.warm_up()  # before it serves: shoppers keep the old one meanwhile
                    self.use_engine(engine)
                    changed.append("index")
                except Exception as exc:  # a half-copied or foreign bundle: keep the one that works
                    self._refused["index"] = str(cur)
                    log.warning("The index published at %s cannot be served (%s); the previous one still is.", cur, exc)
            names = {kind: self._active_name(kind) for kind in ("intents", "recommender")}
            published = self._published if self._published is not None else dict(names)
            if not s.intent_model and names["intents"] != published["intents"]:
                model, tag = intent_model_from_settings(s)  # a damaged version: the packaged model, said in the log
                self._use_nlu(nlu_for(self.engine, model))
                self.dialogue.versions["intent"] = self.store.versions["intent"] = tag
                changed.append("intents")
            if names["recommender"] != published["recommender"]:
                loaded = next_item_model_from_settings(s)  # None: none active, or damaged (said in the log)
                self.dialogue.sequential = None if loaded is None else loaded[0]
                self.dialogue.forget_recommender()
                for versions in (self.dialogue.versions, self.store.versions):
                    if loaded is None:
                        versions.pop("recommender", None)
                    else:
                        versions["recommender"] = loaded[1]
                changed.append("recommender")
            self._published = names
        if changed:
            log.info("Now serving the newly published %s.", ", ".join(changed))
        return changed

    def readiness(self) -> dict[str, Callable[[], bool]]:
        """What /readyz checks for this assistant (bot/observability/ready.py runs them with a timeout):
        an index is loaded and holds products, and the database answers a ``SELECT 1`` now (a store that
        buffers writes through an outage still answers shoppers, but is not ready for more of them)."""

        def index() -> bool:
            return self.engine is not None and len(self.engine.products) > 0

        def database() -> bool:
            with self.store.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True

        return {"index": index, "database": database}

    def _active_name(self, kind: str) -> str | None:
        assert self.settings is not None
        try:
            return Registry(self.settings.models_dir).active_name(kind)
        except (RegistryError, OSError):
            return None

    def _use_nlu(self, nlu: NLU) -> None:
        self.nlu = nlu
        self.dialogue.understand = nlu_understander(nlu, self.engine)

    async def watch(self, interval: float) -> None:
        """Call :meth:`reload` every ``interval`` seconds until cancelled (the Telegram bot and the Rasa
        action server run this beside their work; SHOPBOT_RELOAD_SECONDS sets it, 0 turns it off)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.reload)
            except Exception:  # never let a reload problem stop the watch
                log.exception("Looking for newly published models failed")
            try:
                await asyncio.to_thread(self.prune_if_due)
            except Exception:  # a database that is down now is pruned at the next watch
                log.warning("Pruning old conversations failed; trying again later.", exc_info=True)

    def prune_if_due(self) -> dict[str, int] | None:
        """Apply SHOPBOT_RETENTION_DAYS when it is set and a day has passed since this process last did
        (the first watch after start-up prunes at once); the rows deleted, or None when not due. Riding on
        the reload watch costs one clock read per interval and needs no timer of its own."""
        days = self.settings.retention_days if self.settings is not None else None
        now = time.monotonic()
        if days is None or (self._pruned_at is not None and now - self._pruned_at < self.PRUNE_EVERY):
            return None
        self._pruned_at = now  # set before the work: a failing prune is retried in a day, not every interval
        return self.store.prune(days)

    async def handle_async(self, event: Event) -> list[Reply]:
        """One turn for asyncio adapters (Telegram, Rasa): never blocks the event loop.

        Replies whose ``live`` is set are still being written by the language model: stream
        ``reply.live.updates()`` or ``await reply.live.final()`` (see bot.dialogue.replies.LiveText).
        """
        return await self.dialogue.handle_async(event)

    def warm_up(self) -> None:
        """Load the language model and the search's query encoders in the background so the first
        answer does not pay for them, with their libraries' progress bars off (`quiet_model_loading`):
        nothing they print lands in the middle of a conversation."""
        quiet_model_loading()
        threading.Thread(target=_quietly, args=(self.engine.warm_up, "the search models"), name="search-warm-up",
                         daemon=True).start()
        load = getattr(self.llm, "load", None)
        if load is not None:
            threading.Thread(target=_quietly, args=(load,), name="llm-warm-up", daemon=True).start()

    async def aclose(self) -> None:
        """Wait for turns still being written and logged, then close."""
        await self.dialogue.drain()
        self.close()

    def close(self) -> None:
        self.store.close()
        close = getattr(self.llm, "close", None)
        if close is not None:
            close()


def build_assistant(
    settings: Settings,
    *,
    engine: SearchEngine | None = None,
    store: Store | None = None,
    nlu: NLU | None = None,
    policy: PolicyIndex | None = None,
    llm: BaseLLM | bool | None = True,
) -> Assistant:
    """The assistant over the current index (built on first use), the configured database and models.

    ``llm``: True builds the configured model (`llm_from_settings`), False or None runs on templates
    only, and an LLM instance is used as given (tests pass a tiny model).
    """
    if engine is None:
        engine = load_engine(settings)
    intent_tag = None
    if nlu is None:
        model, intent_tag = intent_model_from_settings(settings)
        nlu = nlu_for(engine, model)
    if policy is None:
        # the search engine's own query encoders, so no model is loaded twice
        encoders = {key: d.encoder for key, d in engine.dense.items()}
        policy = PolicyIndex.from_path(settings.policy, encoders)
    versions = {"intent": intent_tag or nlu.model.version, "ranker": engine.ranker_version}
    next_items = next_item_model_from_settings(settings)
    if next_items is not None:
        versions["recommender"] = next_items[1]
    lm = llm_from_settings(settings) if llm is True else (llm or None)
    if lm is not None and not isinstance(lm, MeteredLLM):
        lm = MeteredLLM(lm)
    support = products = None
    if lm is not None:
        versions["llm"] = f"{lm.name}@{lm.version}"
        brands = sorted(engine.brands)
        support = SupportWriter(lm, grounded_verifier(brands), timeout=settings.llm_timeout)
        products = ProductWriter(lm, timeout=settings.llm_timeout, known_brands=brands)
    if store is None:
        store = Store(settings.db_url, settings.buffer_dir, versions=versions)
    dm = DialogueManager(engine, store, nlu_understander(nlu, engine), policy_answerer(policy),
                         page_size=settings.page_size, versions=versions, support_writer=support,
                         product_writer=products, search_summaries=settings.llm_search_summary,
                         model_advice=settings.llm_advice == "on" or (settings.llm_advice == "auto" and bool(settings.llm_url)),
                         sequential=None if next_items is None else next_items[0],
                         watch_days=settings.watch_days, watch_limit=settings.watch_limit)
    assistant = Assistant(dm, store, engine, nlu, policy, lm, settings)
    set_index_version(index_version(engine))
    assistant._published = {kind: assistant._active_name(kind) for kind in ("intents", "recommender")}
    return assistant
