"""The SQL schema: the SQLAlchemy declarative tables (users, conversation state, turns, impressions,
feedback, handoffs, button payloads, handled updates, the polling inbox, handled demand gaps) and the rules every stored value follows (UTC
timestamps, text any database accepts, finite numbers, user ids as ``<channel>:<external id>``). It is
the one module the Alembic migrations (``bot/store/migrations``) compare against, so it holds the models
and nothing that reads or writes them: the store writes through :mod:`bot.store.operations` and reads in
:mod:`bot.store.database` and :mod:`bot.store.reports`.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    channel: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(160))
    language: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the session is decided from last_seen_at and kept here so that every worker and a restart agree on it
    session_id: Mapped[str] = mapped_column(String(32))
    handed_over: Mapped[bool] = mapped_column(Boolean, default=False)
    handed_over_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handoff_reason: Mapped[str | None] = mapped_column(Text)


class ConversationState(Base):
    __tablename__ = "conversation_state"
    user_id: Mapped[str] = mapped_column(String(200), ForeignKey("users.id"), primary_key=True)
    state: Mapped[str] = mapped_column(Text)  # JSON; opaque to the store
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Turn(Base):
    __tablename__ = "turns"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), ForeignKey("users.id"))
    session_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    channel: Mapped[str] = mapped_column(String(40))
    language: Mapped[str | None] = mapped_column(String(16))
    text_in: Mapped[str] = mapped_column(Text)
    text_out: Mapped[str] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    query: Mapped[str | None] = mapped_column(Text)  # the search the turn ran (after refinement), if any
    slots: Mapped[str | None] = mapped_column(Text)  # JSON
    latency_ms: Mapped[float | None] = mapped_column(Float)
    model_versions: Mapped[str | None] = mapped_column(Text)  # JSON {"ranker": ..., "intent": ..., "llm": ...}
    error: Mapped[str | None] = mapped_column(Text)
    # JSON list, one entry per text the language model wrote this turn: source, attempts, claim checks
    generation: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("ix_turns_user_created", "user_id", "created_at"),)


class Impression(Base):
    __tablename__ = "impressions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    turn_id: Mapped[str] = mapped_column(String(32), ForeignKey("turns.id"), index=True)
    user_id: Mapped[str] = mapped_column(String(200))
    query: Mapped[str | None] = mapped_column(Text)
    sku: Mapped[str] = mapped_column(String(200), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the model that put it there: "ranker:<version>" for a search, "recommender:<version>" for a recommendation
    model_version: Mapped[str | None] = mapped_column(String(120))


class Feedback(Base):
    __tablename__ = "feedback"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    turn_id: Mapped[str | None] = mapped_column(String(32))
    sku: Mapped[str | None] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Handoff(Base):
    __tablename__ = "handoffs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_by: Mapped[str | None] = mapped_column(String(200))


class ButtonPayload(Base):
    """Button data longer than a channel allows (Telegram: 64 bytes), kept under a short key so that the
    button still works after a restart and on every worker."""

    __tablename__ = "button_payloads"
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HandledUpdate(Base):
    """A channel's update (message, button press) that a worker has answered: the key that makes a queue
    which delivers at least once answer exactly once. The id is the channel's own (Telegram's update_id);
    the store knows nothing of what it was."""

    __tablename__ = "handled_updates"
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    handled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InboxUpdate(Base):
    """A Telegram update fetched by long polling, kept the moment it is fetched: the Bot API counts it as delivered
    from then on, so a bot killed before answering it answers it after its restart from here. ``body`` is the
    update as Telegram sent it (a shopper's words) until it is answered, then NULL; ``digest`` (a hash of the
    body) stays, so Telegram sending the same update again is skipped while a new update that reuses the id
    (Telegram restarts its numbering after a quiet week) is not. ``user_id`` is whose it is, for "forget me"."""

    __tablename__ = "update_inbox"
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[str | None] = mapped_column(String(200), index=True)
    body: Mapped[str | None] = mapped_column(Text)  # JSON; NULL once answered
    digest: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class HandledGap(Base):
    """A search the shop owner marked handled in the console's demand gaps (a synonym added, a product
    listed, or nothing to do): its casefolded text, so the theme it belonged to stays hidden afterwards.
    Rows are per query rather than per theme because themes are recomputed from the log on every view."""

    __tablename__ = "handled_gaps"
    query: Mapped[str] = mapped_column(String(500), primary_key=True)
    theme: Mapped[str | None] = mapped_column(Text)
    handled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    handled_by: Mapped[str | None] = mapped_column(String(200))


class Watch(Base):
    """A shopper's standing search ("tell me when a red coat under $80 is in stock"): its words and filters as the
    dialogue gave them (JSON the store does not read), where to deliver a notice, its expiry, and the SKUs the
    shopper has been told about (``notified_skus``) or will be at their next turn (``pending_skus``), so a
    product is announced once."""

    __tablename__ = "watches"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), ForeignKey("users.id"), index=True)
    channel: Mapped[str] = mapped_column(String(40))
    chat_id: Mapped[str] = mapped_column(String(160))  # the channel's own id to deliver to (Telegram chat, Rasa sender)
    language: Mapped[str] = mapped_column(String(16))
    query: Mapped[str] = mapped_column(Text)
    filters: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    notified_skus: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    pending_skus: Mapped[str] = mapped_column(Text, default="[]")  # JSON list


#: the models by table name, as buffered operations name them
MODELS: dict[str, type[Base]] = {
    m.__tablename__: m for m in (User, ConversationState, Turn, Impression, Feedback, Handoff, ButtonPayload,
                                 HandledUpdate, InboxUpdate, HandledGap, Watch)}


def table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


USERS, STATES, HANDLED, INBOX = table(User), table(ConversationState), table(HandledUpdate), table(InboxUpdate)


# ------------------------------------------------------------------------------------ stored values


def utc(dt: datetime) -> datetime:
    # SQLite compares timestamps as text, so every stored one must be in the same zone
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def clean(text: str | None, limit: int | None = None) -> str | None:
    """Text any database accepts: PostgreSQL text cannot hold NUL, no UTF-8 codec takes a lone surrogate,
    and PostgreSQL refuses a string longer than its column. Nothing else is altered."""
    if text is None:
        return None
    text = str(text).replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text[:limit] if limit is not None else text


def num(x: float | None) -> float | None:
    # NaN/inf would make the export invalid JSON and mean nothing to a trainer
    return float(x) if x is not None and math.isfinite(float(x)) else None


def dumps(value: Any) -> str:
    return clean(json.dumps(value, ensure_ascii=False, default=str)) or "null"


def split_user(user_id: str) -> tuple[str, str]:
    channel, sep, external = user_id.partition(":")
    return (channel[:40], external[:160]) if sep else ("unknown", user_id[:160])
