"""The plain data the store takes and hands back: what a turn reports, who a user is, what a training read
returns, the feedback kinds, and the one error a read without a fallback raises. These records are
dataclasses and TypedDicts with no SQLAlchemy in sight, and this module imports nothing from the rest of
the store, so that the dialogue, the channels and the trainers can speak the store's language (build a
:class:`TurnRecord`, catch :class:`StoreUnavailable`) without loading the database layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

__all__ = [
    "FEEDBACK_KINDS",
    "NEGATIVE_KINDS",
    "OpenHandoff",
    "ReportedAction",
    "SearchLog",
    "ShownItem",
    "Stats",
    "StoreUnavailable",
    "TurnInfo",
    "TurnLog",
    "TurnRecord",
    "UserInfo",
    "WatchRecord",
]

FEEDBACK_KINDS = ("thumb_up", "thumb_down", "click", "add_to_cart", "purchase", "not_what_i_meant", "rating")
#: Kinds that count as a thumbs down in stats and export ("that's not what I meant" is a judgement on the turn).
NEGATIVE_KINDS = ("thumb_down", "not_what_i_meant")

ShownItem = tuple[str, int, float | None]  # (sku, rank from 1, score)


class StoreUnavailable(RuntimeError):
    """The database cannot be reached for a read that has no offline fallback (stats, export, handoffs)."""


@dataclass
class TurnRecord:
    """One turn as the dialogue manager reports it (``shown`` becomes impression rows)."""

    turn_id: str
    user_id: str
    text_in: str
    text_out: str
    intent: str | None = None
    confidence: float | None = None
    language: str | None = None
    latency_ms: float | None = None
    slots: Mapping[str, Any] | None = None
    shown: Sequence[ShownItem] = ()
    query: str | None = None
    error: str | None = None
    model_versions: Mapping[str, str] | None = None
    generation: Sequence[Mapping[str, Any]] = ()  # what the language model did (see Turn.generation)
    shown_by: str | None = None  # the model that ranked ``shown`` (see Impression.model_version)
    # the conversation state after the turn, saved with it in one transaction (None: saved separately)
    state: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class UserInfo:
    user_id: str
    session_id: str
    handed_over: bool


@dataclass(frozen=True)
class TurnInfo:
    turn_id: str
    user_id: str
    session_id: str
    created_at: datetime
    text_in: str
    text_out: str
    intent: str | None
    query: str | None


@dataclass(frozen=True)
class ReportedAction:
    """One thing a shopper did outside the chat, as the shop reports it (``shopbot feedback import``)."""

    user_id: str  # the store's id: "<channel>:<id in that channel>", e.g. "telegram:12345"
    kind: str  # "purchase", "add_to_cart", ... (FEEDBACK_KINDS)
    sku: str
    at: datetime  # when it happened (timezone-aware)
    value: float | None = None  # a rating, a quantity
    ref: str | None = None  # the shop's order number: two identical purchases in two orders count twice


@dataclass(frozen=True)
class SearchLog:
    """One search turn for the ranker: what was shown (sku, rank, score) and the feedback on it
    (sku or None for the whole reply, kind, value)."""

    turn_id: str
    user_id: str
    created_at: datetime
    query: str
    intent: str
    shown: list[tuple[str, int, float | None]]
    feedback: list[tuple[str | None, str, float | None]]


@dataclass(frozen=True)
class TurnLog:
    """One turn with the thumbs it got as a whole (feedback without a product)."""

    turn_id: str
    user_id: str
    created_at: datetime
    language: str | None
    text_in: str
    text_out: str
    intent: str | None
    confidence: float | None
    generation: list[Any]
    model_versions: dict[str, Any]
    ups: int = 0
    downs: int = 0


class OpenHandoff(TypedDict):
    user_id: str
    reason: str | None
    since: datetime
    last_message: str | None


class Stats(TypedDict):
    turns: int
    users: int
    sessions: int
    top_queries: list[tuple[str, int]]
    zero_result_queries: list[tuple[str, int]]
    feedback: dict[str, int]
    thumbs_up: int
    thumbs_down: int
    thumbs_ratio: float | None
    open_handoffs: int
    latency_ms_p50: float | None
    pending_writes: int


@dataclass(frozen=True)
class WatchRecord:
    """One stored watchlist request as the store hands it back: plain values, the filters as the dialogue
    wrote them (the store does not read them), and the SKUs already announced or waiting to be."""

    id: str
    user_id: str
    channel: str
    chat_id: str
    language: str
    query: str
    filters: dict[str, Any]
    created_at: datetime
    expires_at: datetime
    cancelled_at: datetime | None
    notified_skus: tuple[str, ...]
    pending_skus: tuple[str, ...]

    def active(self, now: datetime) -> bool:
        """Neither cancelled nor expired at ``now``: the watch is re-run after a reindex."""
        return self.cancelled_at is None and self.expires_at > now
