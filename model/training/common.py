"""Retraining from the logged feedback: what every trainer shares (time split, the promote rule, the report).

The trainers themselves live next to the models they train (model/training/ranker.py, model/training/recommender.py,
model/training/llm.py, and the intent classifier in bot/dialogue/nlu/intents.py); ``shopbot train KIND`` (bot/cli/train.py)
reads the SQL log through the store and hands them plain rows, so nothing here imports ``bot``.

Every trainer follows the same protocol, because a shop owner must be able to trust that retraining never
makes the assistant worse:

1. split the log by time: the newest ``test_share`` of the examples is held out, so the evaluation asks
   "would the new model have done better on what happened after the data it learned from";
2. train a candidate on the older part;
3. evaluate the candidate and the current model (the active version, or the built-in default) on the held-out
   part with the same metric;
4. register the candidate as a new version either way (its figures are worth keeping), and make it active
   only when it is strictly better.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from retrieval.evaluation import dcg

__all__ = ["TrainDataError", "TrainReport", "better", "ndcg_at", "time_split"]

T = TypeVar("T")


class TrainDataError(ValueError):
    """The log holds too little (or no usable) feedback for this model; the message says how much is needed."""


@dataclass
class TrainReport:
    kind: str
    metric: str  # the figure promotion is decided on, e.g. "ndcg@10" (higher is better) or "loss" (lower)
    candidate: dict[str, float]
    baseline: dict[str, float]
    baseline_name: str  # "built-in" or the active version it was compared with
    promoted: bool
    version: str | None  # the new version's name (registered even when not promoted)
    train_examples: int
    test_examples: int
    seconds: float
    device: str = "cpu"
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        c, b = self.candidate.get(self.metric), self.baseline.get(self.metric)
        figures = f"{self.metric} {_fmt(c)} (new) vs {_fmt(b)} ({self.baseline_name})"
        verdict = (f"promoted: version {self.version} is now active." if self.promoted
                   else f"not promoted: version {self.version} is kept but the current model stays active.")
        lines = [f"Trained {self.kind} on {self.train_examples} examples, evaluated on {self.test_examples} held out "
                 f"(newest), in {self.seconds:.1f}s on {self.device}: {figures}; {verdict}"]
        lines += self.notes
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def better(candidate: Mapping[str, float], baseline: Mapping[str, float], metric: str, *,
           lower_is_better: bool = False, min_gain: float = 1e-9) -> bool:
    """Strictly better on ``metric`` (ties keep the current model: a change must earn its place)."""
    c, b = candidate.get(metric), baseline.get(metric)
    if c is None or (isinstance(c, float) and math.isnan(c)):
        return False
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return True
    return (b - c > min_gain) if lower_is_better else (c - b > min_gain)


def time_split(items: Sequence[T], at: Callable[[T], datetime | float], test_share: float = 0.2,
               min_test: int = 1) -> tuple[list[T], list[T]]:
    """Oldest ``1 - test_share`` for training, newest for testing (ties keep their input order)."""
    if not 0 < test_share < 1:
        raise ValueError("test_share must be between 0 and 1")
    ordered = sorted(items, key=lambda x: _ts(at(x)))
    n_test = max(min_test, round(len(ordered) * test_share))
    n_test = min(n_test, max(len(ordered) - 1, 0))
    cut = len(ordered) - n_test
    return ordered[:cut], ordered[cut:]


def _ts(x: datetime | float) -> float:
    return x.timestamp() if isinstance(x, datetime) else float(x)


def ndcg_at(ranked_gains: Sequence[float], all_gains: Sequence[float] | None = None, k: int = 10) -> float:
    """NDCG@k of one ranking with linear gains (as the search eval); ``all_gains`` (the judged pool) gives
    the ideal order, the ranking itself when None."""
    ideal = dcg(sorted(all_gains if all_gains is not None else ranked_gains, reverse=True)[:k])
    return dcg(list(ranked_gains)[:k]) / ideal if ideal > 0 else 0.0
