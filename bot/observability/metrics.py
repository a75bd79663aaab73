"""Every shopbot metric, defined once on prometheus_client's default registry.

Defined here rather than beside the code that records them so that each name exists exactly once per
process (a second definition raises in prometheus_client), the docs can list them from one place, and
the receiver, the worker, the dialogue and the store all record into the same series. Names start with
``shopbot_``; labels take values from small fixed sets (stages, intents, feedback kinds), never from
what a shopper typed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BUCKETS",
    "ERRORS",
    "ERROR_KINDS",
    "FEEDBACK",
    "INDEX_VERSION",
    "LLM_TOKENS",
    "QUEUE_DEPTH",
    "QUEUE_REDELIVERIES",
    "STAGES",
    "STAGE_SECONDS",
    "TURNS",
    "UPDATES",
    "UPDATE_OUTCOMES",
    "count_error",
    "count_feedback",
    "count_tokens",
    "count_turn",
    "observe",
    "set_index_version",
    "timed",
]

#: the parts of a turn timed in ``shopbot_stage_seconds``
STAGES = ("nlu", "search", "llm_first_token", "turn")
#: what ``shopbot_errors_total`` counts (the series exist at 0 from the start, so a rate() works at once)
ERROR_KINDS = ("database_down", "broker_down", "llm_error", "llm_timeout", "handler_exception", "bad_update",
               "turn_exception")
#: what became of a Telegram update on its way through the queue (``shopbot_updates_total``)
UPDATE_OUTCOMES = ("queued", "rejected", "duplicate", "handled", "failed")
#: 1 ms (an NLU rule) to 30 s (a slow model on a CPU): the range a turn's parts take
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)

TURNS = Counter("shopbot_turns_total", "Dialogue turns answered, by channel and by the intent the turn was "
                "handled as.", ["channel", "intent"])
STAGE_SECONDS = Histogram("shopbot_stage_seconds", "Seconds a part of a turn took: nlu (intent and slots), search "
                          "(the search service of a search, refine or more turn), llm_first_token (from asking the "
                          "language model to its first streamed piece), turn (the whole turn, the model's writing "
                          "included).", ["stage"], buckets=BUCKETS)
LLM_TOKENS = Counter("shopbot_llm_tokens_total", "Language-model tokens by direction. completion counts the streamed "
                     "chunks the model sent (about one token each; the backends report no exact usage); prompt is "
                     "counted only where a backend reports it (none of the shipped ones does).", ["direction"])
FEEDBACK = Counter("shopbot_feedback_total", "Feedback rows the store recorded, by kind (thumb_up, thumb_down, "
                   "not_what_i_meant, click, ...).", ["kind"])
ERRORS = Counter("shopbot_errors_total", "Things that went wrong and were handled, by kind: database_down (a write "
                 "buffered because the database was unreachable), broker_down (a receiver answered 503 because Redis was "
                 "unreachable), llm_error, llm_timeout, handler_exception (a "
                 "channel caught a failing update or action call), bad_update (a malformed request refused), "
                 "turn_exception (a turn's service failed and the shopper got an apology).", ["kind"])
INDEX_VERSION = Gauge("shopbot_index_version_info", "1 for the index bundle this process serves (its build "
                      "directory name); changes when a running bot picks up a reindex.", ["version"])
QUEUE_DEPTH = Gauge("shopbot_queue_depth", "Telegram updates waiting in a queue shard (Redis Streams).", ["shard"])
QUEUE_REDELIVERIES = Counter("shopbot_queue_redeliveries_total", "Queued updates handed to a worker again because "
                             "the worker that had them stopped before acknowledging them.")
UPDATES = Counter("shopbot_updates_total", "Telegram updates by outcome: queued (accepted by a receiver), rejected "
                  "(refused by a receiver), duplicate (seen before, dropped), handled (answered by a worker), failed "
                  "(a worker gave up on it).", ["outcome"])

for _stage in STAGES:
    STAGE_SECONDS.labels(_stage)
for _kind in ERROR_KINDS:
    ERRORS.labels(_kind)
for _outcome in UPDATE_OUTCOMES:
    UPDATES.labels(_outcome)
LLM_TOKENS.labels("completion")


def observe(stage: str, seconds: float) -> None:
    """Record that ``stage`` of a turn took ``seconds``."""
    STAGE_SECONDS.labels(stage).observe(max(0.0, seconds))


@contextmanager
def timed(stage: str) -> Iterator[None]:
    """Time the block as ``stage`` (also when it raises: a failing search still took its time)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        observe(stage, time.perf_counter() - start)


def count_turn(channel: str, intent: str) -> None:
    TURNS.labels(channel or "unknown", intent or "unknown").inc()


def count_error(kind: str) -> None:
    ERRORS.labels(kind).inc()


def count_feedback(kind: str) -> None:
    FEEDBACK.labels(kind).inc()


def count_tokens(direction: str, n: int = 1) -> None:
    LLM_TOKENS.labels(direction).inc(n)


def set_index_version(version: str) -> None:
    """Serve ``version`` as the one index of this process: the previous version's series goes."""
    INDEX_VERSION.clear()
    INDEX_VERSION.labels(version).set(1)
