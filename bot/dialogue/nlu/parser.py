"""Natural-language understanding for one shopper message: intent + slots, English and Chinese.

``parse("compare the first and third", state)`` -> ``NLUResult(intent="compare", slots.ordinals=(1, 3))``.

Two layers, on purpose:

- the intent classifier (:mod:`bot.dialogue.nlu.intents`): embeddings -> softmax regression over 41 intents (27
  customer-service, 14 shopping/dialogue). It is good at "what kind of request is this" across
  phrasings and typos, and it is the only place that learns.
- slots and a handful of rules, by pattern: the slots (:mod:`bot.dialogue.nlu.slots`: prices, colours,
  sizes, brands, stock and sort from :func:`retrieval.query.parse_query`, plus references to shown
  results, order numbers and the catalog's categories from :mod:`bot.dialogue.nlu.categories`) and the
  rules (:mod:`bot.dialogue.nlu.rules`).

Rules override the classifier only where a pattern is certain; each one is listed in ``RULES`` with why,
and docs/benchmarks.md (intent routing) records that together they do not lower the Bitext accuracy.
This module puts the layers together per catalog (:class:`NLU`) and cleans the input first.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.dialogue.nlu.categories import CategoryMatcher
from bot.dialogue.nlu.intents import IntentModel, load_default_model
from bot.dialogue.nlu.rules import override, wordless
from bot.dialogue.nlu.slots import MAX_SLOT_CHARS, Slots, extract_slots
from retrieval.lexical import has_cjk

__all__ = ["NLU", "NLUResult", "parse"]


@dataclass(frozen=True)
class NLUResult:
    intent: str
    confidence: float
    slots: Slots = field(default_factory=Slots)
    language: str = "en"
    source: str = "model"  # "model" or "rule:<name>" (see bot.dialogue.nlu.rules.RULES)
    model_intent: str | None = None  # what the classifier said, when a rule overrode it


_HAS_WORD = re.compile(r"\w", re.UNICODE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")


def _clean(text: str | None) -> str:
    t = unicodedata.normalize("NFKC", text or "")[: MAX_SLOT_CHARS * 2]
    t = _CONTROL.sub(" ", t)
    return re.sub(r"\s+", " ", t).strip()[:MAX_SLOT_CHARS]


class NLU:
    """Intent + slots for one catalog: holds the classifier, the brand set and the category matcher.

    Build one per engine (brands and categories come from the catalog) and call it per message; it
    is thread-safe (no per-call state).
    """

    def __init__(
        self,
        model: IntentModel | None = None,
        *,
        brands: Iterable[str] = (),
        categories: Iterable[str] = (),
        names: Iterable[str] = (),
        use_rules: bool = True,
    ) -> None:
        self._model = model
        self.brands = frozenset(b.lower() for b in brands if b)
        self.matcher = CategoryMatcher(categories)
        self.names = frozenset(names)  # the catalog's colour-led names ("green tea"): not colour filters
        self.use_rules = use_rules

    @property
    def model(self) -> IntentModel:
        if self._model is None:
            self._model = load_default_model()
        return self._model

    def __call__(self, text: str | None, state: Mapping[str, Any] | None = None) -> NLUResult:
        return self.parse(text, state)

    def parse(self, text: str | None, state: Mapping[str, Any] | None = None) -> NLUResult:
        return self.parse_batch([text], state)[0]

    def parse_batch(self, texts: Sequence[str | None], state: Mapping[str, Any] | None = None) -> list[NLUResult]:
        """Several messages at once (one batched encoder pass): what evaluation uses."""
        cleaned = [_clean(t) for t in texts]
        wordy = [t for t in cleaned if _HAS_WORD.search(t)]
        predicted = iter(self.model.predict_batch(wordy) if wordy else [])
        return [self._parse_one(t, next(predicted) if _HAS_WORD.search(t) else None, state) for t in cleaned]

    def _parse_one(self, t: str, prediction: tuple[str, float] | None, state: Mapping[str, Any] | None) -> NLUResult:
        lang = "zh" if has_cjk(t) else "en"
        if prediction is None:
            intent, conf = wordless(t)
            return NLUResult(intent, conf, Slots(), lang, "rule:no_words")
        slots, ord_spans, refinement_only = extract_slots(t, brands=self.brands, matcher=self.matcher, names=self.names)
        intent, conf = prediction
        if not self.use_rules:
            return NLUResult(intent, conf, slots, lang)
        rule = override(t, intent, conf, slots, ord_spans, refinement_only, state)
        if rule is None:
            return NLUResult(intent, conf, slots, lang)
        name, new_intent = rule
        if new_intent == intent:
            return NLUResult(intent, conf, slots, lang)
        return NLUResult(new_intent, max(conf, 0.9), slots, lang, f"rule:{name}", model_intent=intent)


_DEFAULT_NLU: dict[tuple[frozenset[str], tuple[str, ...]], NLU] = {}


def parse(
    text: str | None,
    state: Mapping[str, Any] | None = None,
    brands: Iterable[str] = (),
    categories: Iterable[str] = (),
    *,
    model: IntentModel | None = None,
) -> NLUResult:
    """One message -> intent, confidence and slots (see :class:`NLU`; build one per catalog in servers).

    ``state`` is the dialogue state (a previous search makes bare filters a refinement); ``brands`` and
    ``categories`` are the catalog's vocabularies. Never raises on odd input (empty, emoji-only,
    control characters, a 10,000-character paste).
    """
    if model is not None:
        return NLU(model, brands=brands, categories=categories).parse(text, state)
    key = (frozenset(b.lower() for b in brands), tuple(categories))
    nlu = _DEFAULT_NLU.get(key)
    if nlu is None:
        if len(_DEFAULT_NLU) > 8:
            _DEFAULT_NLU.clear()
        nlu = _DEFAULT_NLU[key] = NLU(brands=key[0], categories=key[1])
    return nlu.parse(text, state)
