"""Retraining the intent classifier from the shop's own data (``shopbot train intents``).

What the new model learns from:

* the packaged examples (``bot/dialogue/nlu/data/intents.csv``), so every intent the assistant acts on keeps working;
* the owner's labelled utterances (``--data``, the columns of intents.csv), e.g. a file written by
  ``--export-for-labelling`` and filled in. Rows without an intent yet are skipped; the newest 20% of the
  rows (the end of the file: append new rows there) are held out to test on and not learned from;
* what the log teaches on its own: utterances the assistant routed with confidence >= 0.95 (rules that
  override the classifier log at least 0.9, so this keeps mostly the classifier's own sure calls) and that
  got no thumbs down or "not what I meant". They are the model's own predictions, so they can only confirm
  what it already does, never correct it: each counts 0.3 of a written example, and an intent takes at most
  as many of them as it has written examples (after de-duplication), so they make up at most about a
  quarter of what an intent is learned from. Button presses, text without words and utterances that are
  also in the test data are left out.

What the log cannot teach is what a shopper meant when the assistant got it wrong: turns marked "not what
I meant" (or thumbed down) never become examples. ``--export-for-labelling FILE`` writes them, followed by
the turns the classifier was least sure about, as a CSV whose ``intent`` column the owner fills in (the
``predicted`` column shows what the assistant thought) and passes back with ``--data``.

How it is tested: on the packaged development set (``bot/dialogue/nlu/data/intents_dev.csv``, written apart from the
training examples) plus the owner's held-out rows, by macro-F1 of the classifier alone (the NLU's rules
are the same for both models). The current model is the active ``intents`` version, or the packaged model
when none is active. The new version is registered either way and made active only when it is strictly
better; the registered model is the one that was measured.
"""

from __future__ import annotations

import csv
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from bot.dialogue.nlu.intents import (
    DATA_DIR,
    IntentDataError,
    IntentModel,
    IntentRow,
    evaluate_intents,
    load_training_csv,
    normalise_text,
    train_intents,
)
from model.training.common import TrainDataError, TrainReport, better, time_split
from model.training.registry import Registry
from retrieval.encoders import Encoder
from retrieval.lexical import has_cjk

__all__ = [
    "EXPORT_COLUMNS",
    "LOG_MIN_CONFIDENCE",
    "LOG_WEIGHT",
    "MODEL_FILE",
    "export_for_labelling",
    "load_owner_rows",
    "log_examples",
    "retrain_intents",
]

KIND = "intents"
METRIC = "macro_f1"
MODEL_FILE = "intent_model.npz"  # inside the version's directory
LOG_MIN_CONFIDENCE = 0.95
LOG_WEIGHT = 0.3
OWNER_TEST_SHARE = 0.2
EXPORT_COLUMNS = ("utterance", "intent", "language", "predicted", "confidence", "reason", "turn_id", "created_at")
UNSURE_BELOW = 0.7  # exported as "unsure" below this logged confidence
_WORD = re.compile(r"[^\W_]")


class LoggedTurn(Protocol):
    """What this module reads of a logged turn (bot.store.records.TurnLog has it)."""

    @property
    def turn_id(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def language(self) -> str | None: ...
    @property
    def text_in(self) -> str: ...
    @property
    def intent(self) -> str | None: ...
    @property
    def confidence(self) -> float | None: ...
    @property
    def downs(self) -> int: ...


def _key(text: str) -> str:
    return normalise_text(text).casefold()


def _usable_text(text: str | None) -> bool:
    return bool(text) and not str(text).startswith("[button]") and bool(_WORD.search(str(text)))


def log_examples(turns: Sequence[LoggedTurn], counts: Counter[str], exclude: set[str], *,
                 min_confidence: float = LOG_MIN_CONFIDENCE) -> list[IntentRow]:
    """Confident, un-contradicted logged turns as extra examples (newest first within each intent).

    ``counts``: written examples per intent (an intent takes at most that many from the log, and an intent
    with none takes nothing: the log cannot invent intents); ``exclude``: normalised texts already labelled
    or held out for testing.
    """
    taken: Counter[str] = Counter()
    seen = set(exclude)
    out: list[IntentRow] = []
    for t in sorted(turns, key=lambda t: t.created_at, reverse=True):
        intent = t.intent or ""
        if (t.downs or not _usable_text(t.text_in) or t.confidence is None or t.confidence < min_confidence
                or taken[intent] >= counts.get(intent, 0)):
            continue
        key = _key(t.text_in)
        if not key or key in seen:
            continue
        seen.add(key)
        taken[intent] += 1
        text = normalise_text(t.text_in)
        out.append(IntentRow(text, intent, t.language or ("zh" if has_cjk(text) else "en")))
    return out


def export_for_labelling(turns: Sequence[LoggedTurn], path: str | Path, *, limit: int = 200,
                         unsure_below: float = UNSURE_BELOW) -> dict[str, int]:
    """Write the utterances worth labelling: first those marked "not what I meant" (or thumbed down),
    newest first, then those the assistant was least sure about (lowest confidence first), each once.

    The ``intent`` column is left empty for the owner; ``--data`` skips rows that are still empty.
    Returns how many of each reason were written.
    """
    marked = sorted((t for t in turns if t.downs and _usable_text(t.text_in)), key=lambda t: t.created_at, reverse=True)
    unsure = sorted((t for t in turns if not t.downs and _usable_text(t.text_in)
                     and (t.confidence is None or t.confidence < unsure_below)),
                    key=lambda t: (t.confidence if t.confidence is not None else -1.0, -t.created_at.timestamp()))
    seen: set[str] = set()
    written: Counter[str] = Counter()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(EXPORT_COLUMNS)
        for reason, group in (("not what I meant", marked), ("unsure", unsure)):
            for t in group:
                key = _key(t.text_in)
                if key in seen or sum(written.values()) >= limit:
                    continue
                seen.add(key)
                written[reason] += 1
                text = normalise_text(t.text_in)
                conf = "" if t.confidence is None else f"{t.confidence:.3f}"
                w.writerow([text, "", t.language or ("zh" if has_cjk(text) else "en"), t.intent or "", conf, reason,
                            t.turn_id, t.created_at.isoformat(timespec="seconds")])
    return {"not_what_i_meant": written["not what I meant"], "unsure": written["unsure"]}


def load_owner_rows(path: str | Path) -> tuple[list[IntentRow], int]:
    """The owner's labelled rows (bad rows end in one error naming their lines) and how many rows have no
    intent yet (skipped: an exported file can be passed back half filled in)."""
    p = Path(path)
    blank = _count_unlabelled(p)
    try:
        rows = load_training_csv(p, skip_unlabelled=True)
    except IntentDataError as exc:
        if blank and "no usable rows" in str(exc):
            raise IntentDataError(
                f"{p}: none of its {blank} rows has an intent yet; fill in the intent column (the predicted "
                "column shows what the assistant thought) and run again."
            ) from None
        raise
    return rows, blank


def _count_unlabelled(p: Path) -> int:
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip().lower() for h in next(reader, [])]
            if "utterance" not in header or "intent" not in header:
                return 0  # load_training_csv says what is wrong
            iu, ii = header.index("utterance"), header.index("intent")
            return sum(1 for rec in reader if len(rec) == len(header) and rec[iu].strip() and not rec[ii].strip())
    except (OSError, csv.Error, UnicodeDecodeError):
        return 0


@dataclass
class IntentData:
    train: list[IntentRow]
    weights: list[float]
    test: list[IntentRow]
    packaged: int
    owner_train: int
    owner_test: int
    from_log: int
    owner_test_rows: list[IntentRow]


def assemble(packaged: Sequence[IntentRow], owner: Sequence[IntentRow], turns: Sequence[LoggedTurn],
             dev: Sequence[IntentRow], *, use_log: bool = True) -> IntentData:
    """Training rows (with weights) and test rows, as the module docstring describes."""
    owner_train: list[IntentRow] = []
    owner_test: list[IntentRow] = []
    if owner:
        indexed = list(enumerate(owner))
        a, b = time_split(indexed, lambda x: float(x[0]), OWNER_TEST_SHARE)
        owner_train, owner_test = [r for _, r in a], [r for _, r in b]
    test = list(dev) + owner_test
    test_keys = {_key(r.utterance) for r in test}
    written = [r for r in [*packaged, *owner_train] if _key(r.utterance) not in test_keys]
    n_packaged = sum(1 for r in packaged if _key(r.utterance) not in test_keys)
    extra: list[IntentRow] = []
    if use_log:
        counts = Counter(r.intent for r in written)
        extra = log_examples(turns, counts, test_keys | {_key(r.utterance) for r in written})
    return IntentData(
        train=written + extra, weights=[1.0] * len(written) + [LOG_WEIGHT] * len(extra), test=test,
        packaged=n_packaged, owner_train=len(written) - n_packaged, owner_test=len(owner_test), from_log=len(extra),
        owner_test_rows=owner_test,
    )


def dev_rows() -> list[IntentRow]:
    return load_training_csv(DATA_DIR / "intents_dev.csv")


def retrain_intents(
    *,
    packaged: Sequence[IntentRow],
    owner: Sequence[IntentRow],
    turns: Sequence[LoggedTurn],
    dev: Sequence[IntentRow],
    current: IntentModel,
    current_name: str,
    encoders: Sequence[Encoder],
    registry: Registry,
    use_log: bool = True,
    out: Path | None = None,
    source: str | None = None,
) -> TrainReport:
    """Train a candidate, compare it with ``current`` on the held-out rows, register it, promote if better."""
    t0 = time.perf_counter()
    data = assemble(packaged, owner, turns, dev, use_log=use_log)
    labels = {r.intent for r in data.train}
    if len(labels) < 2:
        raise TrainDataError(
            f"Training the intent classifier needs labelled examples of at least two intents; the data has "
            f"{len(data.train)} example(s) of {len(labels)} (pass --data with your labelled utterances, or keep "
            "the packaged examples with --with-builtin)."
        )
    trained = train_intents(data.train, list(encoders), weights=data.weights)

    def figures(ev: dict[str, Any]) -> dict[str, float]:
        return {"macro_f1": float(ev["macro_f1"]), "accuracy": float(ev["accuracy"])}

    base_eval = evaluate_intents(current, data.test)
    base = figures(base_eval)
    with registry.stage(KIND) as staged:
        # measured as it will be served: saved (float16 weights) and read back
        trained.save(staged / MODEL_FILE)
        candidate = IntentModel.load(staged / MODEL_FILE, list(encoders))
        cand_eval = evaluate_intents(candidate, data.test)
        cand = figures(cand_eval)
        promoted = better(cand, base, METRIC)
        notes = [f"Data: {data.packaged} packaged + {data.owner_train} of your labelled rows + {data.from_log} "
                 f"from the log (weight {LOG_WEIGHT}); {len(candidate.labels)} intents. Tested on {len(dev)} "
                 f"development rows + your {data.owner_test} newest rows; accuracy {cand['accuracy']:.4f} (new) vs "
                 f"{base['accuracy']:.4f} ({current_name})."]
        owner_figures: dict[str, dict[str, float]] = {}
        if data.owner_test_rows:
            mine_new = evaluate_intents(candidate, data.owner_test_rows)
            mine_old = evaluate_intents(current, data.owner_test_rows)
            owner_figures = {"candidate": figures(mine_new), "baseline": figures(mine_old)}
            notes.append(f"On your held-out rows alone: accuracy {mine_new['accuracy']:.4f} (new) vs "
                         f"{mine_old['accuracy']:.4f} ({current_name}).")
        unknown = sorted(labels - set(current.labels))
        if unknown:
            notes.append(f"New intent(s) {', '.join(unknown)}: the assistant has no behaviour for them yet, so "
                         "those messages get the fallback answer.")
        meta = {
            "metrics": {"metric": METRIC, "candidate": cand, "baseline": base, "baseline_name": current_name,
                        "owner_held_out": owner_figures,
                        "per_intent_f1": {k: v["f1"] for k, v in cand_eval["per_intent"].items()}},
            "trained_on": {"packaged": data.packaged, "owner": data.owner_train, "owner_file": source,
                           "from_log": data.from_log, "log_weight": LOG_WEIGHT,
                           "log_min_confidence": LOG_MIN_CONFIDENCE, "test_dev": len(dev),
                           "test_owner": data.owner_test,
                           "intents": dict(sorted(Counter(r.intent for r in data.train).items()))},
            "model_version": candidate.version,
            "encoders": list(candidate.encoder_names),
        }
        version = registry.commit(KIND, staged, meta, promote=promoted)
    if out is not None:
        trained.save(out)
        notes.append(f"Also written to {out} (SHOPBOT_INTENT_MODEL={out} uses it whatever is active).")
    return TrainReport(
        kind=KIND, metric=METRIC, candidate=cand, baseline=base, baseline_name=current_name, promoted=promoted,
        version=version.name, train_examples=len(data.train), test_examples=len(data.test),
        seconds=round(time.perf_counter() - t0, 1), device="cpu", notes=notes,
    )
