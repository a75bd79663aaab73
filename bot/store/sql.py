"""The SQL log and conversation state: users, turns, impressions, feedback, handoffs.

Everything the retraining code learns from is written here, so three rules shape the design:

* Nothing is lost when the database is down. Every write is expressed as a list of plain *operations*
  (insert this row, move that user's last-seen time forward) with ids and timestamps made here, not by
  the database. When the database cannot be reached the operations are appended as one JSON line to
  ``buffer_dir/pending.jsonl`` (fsync'ed) and replayed, in order, before the next write that gets
  through. Ids made client-side let a buffered impression point at a buffered turn.
* Replaying is idempotent: an insert whose primary key exists is skipped and every update carries its
  own timestamp and never moves a row backwards in time, so a crash between replaying the buffer and
  truncating it (or two processes sharing one buffer directory) duplicates and reorders nothing.
* One code path for SQLite (the embedded default) and PostgreSQL (``SHOPBOT_DATABASE_URL``); the
  schema comes from Alembic migrations (``bot/store/migrations``), run by :meth:`Store.migrate`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sqlite3
import sys
import threading
import time
import uuid
from bisect import bisect_left
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Generic, TypedDict, TypeVar, cast

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

if sys.platform != "win32":
    import fcntl

__all__ = [
    "FEEDBACK_KINDS",
    "OpenHandoff",
    "ReportedAction",
    "SearchLog",
    "Stats",
    "Store",
    "StoreUnavailable",
    "TurnInfo",
    "TurnLog",
    "TurnRecord",
    "UserInfo",
]

log = logging.getLogger(__name__)

FEEDBACK_KINDS = ("thumb_up", "thumb_down", "click", "add_to_cart", "purchase", "not_what_i_meant", "rating")
#: Kinds that count as a thumbs down in stats and export ("that's not what I meant" is a judgement on the turn).
NEGATIVE_KINDS = ("thumb_down", "not_what_i_meant")
SESSION_GAP = timedelta(minutes=30)
#: Turns whose query is a shopper's search; "more" repeats the previous query and would count it twice.
SEARCH_INTENTS = ("search", "refine")
CACHE_USERS = 10_000

ShownItem = tuple[str, int, float | None]  # (sku, rank from 1, score)


class StoreUnavailable(RuntimeError):
    """The database cannot be reached for a read that has no offline fallback (stats, export, handoffs)."""


# ------------------------------------------------------------------------------------------ schema


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


_MODELS: dict[str, type[Base]] = {
    m.__tablename__: m for m in (User, ConversationState, Turn, Impression, Feedback, Handoff, ButtonPayload)}
_DATETIME_KEYS = {"created_at", "last_seen_at", "updated_at", "handed_over_at", "released_at", "at"}


# ------------------------------------------------------------------------------------- plain data


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


Op = dict[str, Any]  # {"op": "insert" | "touch" | "ensure_user" | "state" | "handoff_flag" | "release", ...}

K = TypeVar("K")
V = TypeVar("V")


class _LRU(Generic[K, V]):
    """A bounded dict: the offline fallbacks must not grow with every shopper a long-running bot has seen.
    Locked, because reads (which reorder it) come from many threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._d: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._d.get(key)
            if value is not None:
                self._d.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)

    def discard(self, key: K) -> None:
        with self._lock:
            self._d.pop(key, None)

    def pop(self, key: K) -> V | None:
        with self._lock:
            return self._d.pop(key, None)

    def drain(self) -> list[V]:
        with self._lock:
            values = list(self._d.values())
            self._d.clear()
            return values


@dataclass
class _Seen:
    session_id: str
    last_seen_at: datetime
    handed_over: bool


# ---------------------------------------------------------------------------------------- helpers


def utcnow() -> datetime:
    return datetime.now(UTC)


def _utc(dt: datetime) -> datetime:
    # SQLite compares timestamps as text, so every stored one must be in the same zone
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _aware(dt: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything we write is UTC
    return None if dt is None else _utc(dt)


def _clean(text: str | None, limit: int | None = None) -> str | None:
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


def _num(x: float | None) -> float | None:
    # NaN/inf would make the export invalid JSON and mean nothing to a trainer
    return float(x) if x is not None and math.isfinite(float(x)) else None


def _dumps(value: Any) -> str:
    return _clean(json.dumps(value, ensure_ascii=False, default=str)) or "null"


def _split_user(user_id: str) -> tuple[str, str]:
    channel, sep, external = user_id.partition(":")
    return (channel[:40], external[:160]) if sep else ("unknown", user_id[:160])


def _is_down(exc: BaseException) -> bool:
    """Errors that mean "the database is not there" (buffer and carry on), not a bug (raise).

    Every OperationalError counts, not only refused connections: a locked SQLite file or a PostgreSQL
    restart in the middle of a transaction loses nothing when the write is buffered and retried."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc.orig, sqlite3.OperationalError):
            return True
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError):
            return True
        text = str(exc.orig or exc).lower()
        return any(w in text for w in ("connection", "could not connect", "server closed", "unable to open", "terminat"))
    if isinstance(exc, sqlite3.OperationalError):
        return True
    psycopg = sys.modules.get("psycopg")  # only a loaded driver can raise its own errors
    return psycopg is not None and isinstance(exc, psycopg.OperationalError)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0].rstrip(".") if lines else type(orig).__name__


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot buffer {type(value).__name__}")


def _dialect_insert(conn: Connection) -> Callable[..., Any]:
    """INSERT with ``ON CONFLICT`` for the connection's database (SQLite or PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


_STATEMENTS: dict[tuple[str, str], Any] = {}


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


_USERS, _STATES = _table(User), _table(ConversationState)
# what a turn starts with: the user's session and handoff flag, and the conversation state (None: new user)
_USER_AND_STATE = (
    select(_USERS.c.session_id, _USERS.c.last_seen_at, _USERS.c.handed_over, _STATES.c.state)
    .select_from(_USERS.outerjoin(_STATES, _STATES.c.user_id == _USERS.c.id))
    .where(_USERS.c.id == bindparam("user_id")))


def _statement(conn: Connection, name: str) -> Any:
    """The upserts every turn runs, built once per database kind (building one costs more than running it);
    the values come as parameters."""
    key = (conn.dialect.name, name)
    stmt = _STATEMENTS.get(key)
    if stmt is not None:
        return stmt
    users, states = _USERS, _STATES
    new = _dialect_insert(conn)(users if name in ("touch", "ensure_user") else states)
    if name == "touch":  # never move a user back in time
        stmt = new.on_conflict_do_update(
            index_elements=[users.c.id],
            set_={"last_seen_at": new.excluded.last_seen_at, "session_id": new.excluded.session_id,
                  "language": func.coalesce(func.nullif(new.excluded.language, ""), users.c.language)},
            where=users.c.last_seen_at <= new.excluded.last_seen_at)
    elif name == "ensure_user":
        stmt = new.on_conflict_do_nothing(index_elements=[users.c.id])
    elif name == "state":  # never replace a newer state
        stmt = new.on_conflict_do_update(
            index_elements=[states.c.user_id],
            set_={"state": new.excluded.state, "updated_at": new.excluded.updated_at},
            where=states.c.updated_at <= new.excluded.updated_at)
    else:
        raise KeyError(name)
    _STATEMENTS[key] = stmt
    return stmt


def _decode(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (_utc(datetime.fromisoformat(v)) if k in _DATETIME_KEYS and isinstance(v, str) else v) for k, v in row.items()}


# ------------------------------------------------------------------------------------------- store


def _feedback_op(fid: str, user_id: str, kind: str, at: datetime, *, turn_id: str | None = None,
                 sku: str | None = None, value: float | None = None, comment: str | None = None) -> Op:
    """The insert of one feedback row, after checking its kind (and a rating's value)."""
    if kind not in FEEDBACK_KINDS:
        raise ValueError(f"Unknown feedback kind {kind!r}; use one of {', '.join(FEEDBACK_KINDS)}.")
    if kind == "rating" and _num(value) is None:
        raise ValueError("A rating needs a numeric value.")
    return {"op": "insert", "table": "feedback", "row": {
        "id": fid, "user_id": user_id, "turn_id": turn_id, "sku": _clean(sku, 200), "kind": kind,
        "value": _num(value), "comment": _clean(comment), "created_at": at}}


class Store:
    """Repository over one database URL, with an on-disk buffer for the times it is down.

    Safe to share between threads: writes are serialised by a lock (which is also what keeps the buffer
    in order), every call opens its own session, and the buffer file is additionally locked with
    ``flock`` so a CLI command and the bot sharing one buffer directory cannot lose each other's lines.
    """

    #: databases written with ``INSERT ... ON CONFLICT``; others read a row, then insert or update it
    upsert_dialects: tuple[str, ...] = ("sqlite", "postgresql")

    def __init__(
        self,
        url: str,
        buffer_dir: str | Path,
        *,
        migrate: bool = True,
        clock: Callable[[], datetime] = utcnow,
        session_gap: timedelta = SESSION_GAP,
        versions: Mapping[str, str] | None = None,
        retry_interval: float = 1.0,
        connect_timeout: int = 5,
    ) -> None:
        """``retry_interval``: after a failure, writes go straight to the buffer for this many seconds, so
        an unreachable host costs one connect timeout per interval instead of one per message
        (:meth:`flush` always tries). ``versions`` are merged into every turn's ``model_versions``."""
        self.url = url
        self.clock = clock
        self.session_gap = session_gap
        self.versions = dict(versions or {})
        self.retry_interval = retry_interval
        self.buffer_dir = Path(buffer_dir)
        self.buffer_path = self.buffer_dir / "pending.jsonl"
        self.bad_path = self.buffer_dir / "pending.bad"
        self._lock = threading.RLock()
        self._memory: list[str] = []  # buffered lines the disk refused (full, read-only): kept until replayed
        self._states: _LRU[str, str] = _LRU(CACHE_USERS)  # last state saved per user, as JSON
        self._users: _LRU[str, _Seen] = _LRU(CACHE_USERS)
        self._turns: _LRU[str, deque[TurnInfo]] = _LRU(1_000)
        # start_turn's touch per user, written with that user's next write (the turn) in one transaction
        self._touches: _LRU[str, Op] = _LRU(CACHE_USERS)
        self.engine = self._make_engine(url, connect_timeout)
        # SQLite: writers take the write lock at BEGIN, so busy_timeout applies instead of a deadlock error
        self._write_engine = self.engine.execution_options(sqlite_immediate=True)
        self.down = False
        self._retry_at = 0.0
        self._auto_migrate = migrate
        self._migrated = not migrate
        if migrate:
            try:
                self._ensure_schema()
            except Exception as exc:  # the bot starts anyway and migrates when the database is back
                if not _is_down(exc):
                    raise
                self._mark_down(exc)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @staticmethod
    def _make_engine(url: str, connect_timeout: int) -> Engine:
        if url.startswith("sqlite"):
            db = url.split(":///", 1)[-1].split("?", 1)[0]
            if db and db != ":memory:":
                with contextlib.suppress(OSError):  # connecting fails below; the store buffers until it works
                    Path(db).parent.mkdir(parents=True, exist_ok=True)
            # pooled connections: a new SQLite connection per call costs ~10 ms (WAL pragma), a pooled one 0.1;
            # no pre-ping: a file does not drop connections, and a ping is a statement per checkout
            eng = create_engine(url, connect_args={"timeout": 10, "check_same_thread": False})

            @event.listens_for(eng, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                # SQLAlchemy emits BEGIN itself (below): pysqlite's own transaction handling leaves DDL
                # outside transactions, so a crash mid-migration would leave half a schema behind
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA busy_timeout=10000")
                cur.execute("PRAGMA foreign_keys=ON")  # the same integrity as PostgreSQL, so bugs show up here too
                cur.close()

            @event.listens_for(eng, "begin")
            def _begin(conn: Connection) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("sqlite_immediate") else "BEGIN")

            return eng
        args: dict[str, Any] = {}
        if url.startswith("postgresql") and "connect_timeout" not in url:
            args["connect_timeout"] = connect_timeout  # an unreachable host must not hang a turn for minutes
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=args)

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent; safe when several workers start at once)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self._write_engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7241190331)")  # workers migrate one at a time
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def _ensure_schema(self) -> None:
        if not self._migrated:
            self.migrate()
            self._migrated = True

    def close(self) -> None:
        touches = self._touches.drain()  # turns started and never logged (a crash in between)
        if touches:
            try:
                self._write("touch_user", touches)
            except Exception as exc:  # closing must not fail on it; the touch only moves last_seen_at
                log.warning("Could not record %d shopper(s) as seen (%s).", len(touches), _first_line(exc))
        self.engine.dispose()

    # -------------------------------------------------------------------------- up and down

    def _now(self) -> datetime:
        return _utc(self.clock())

    def _skip_db(self) -> bool:
        return self.down and time.monotonic() < self._retry_at

    def _mark_down(self, exc: BaseException) -> None:
        self._retry_at = time.monotonic() + self.retry_interval
        if self._auto_migrate:
            self._migrated = False  # a recreated database file comes back empty: check the schema once
        if not self.down:
            log.warning("The database is unreachable (%s); rows are buffered in %s until it is back.",
                        _first_line(exc), self.buffer_path)
        self.down = True

    def _mark_up(self) -> None:
        if self.down:
            log.warning("The database is reachable again; the buffered rows were written.")
        self.down = False

    def _safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def describe(self) -> str:
        """The database for messages, without its password."""
        return self._safe_url()

    @contextmanager
    def _read(self, *, hot: bool = False) -> Iterator[Session]:
        """A session for reads. Buffered rows go in first, so the answer includes them; when the database
        is down the caller gets StoreUnavailable with one sentence (``hot`` reads, which have a fallback,
        get it at once during the retry interval instead of waiting for another connect timeout)."""
        with self._reading(lambda: Session(self.engine), hot=hot) as s:
            yield s

    @contextmanager
    def _read_rows(self, *, hot: bool = False) -> Iterator[Connection]:
        """:meth:`_read` as a plain connection, for the reads every turn makes: a Core SELECT costs a fraction
        of an ORM Session and identity map for one row."""
        with self._reading(self.engine.connect, hot=hot) as c:
            yield c

    @contextmanager
    def _reading(self, open_: Callable[[], Any], *, hot: bool) -> Iterator[Any]:
        if hot and self._skip_db():
            raise StoreUnavailable(self._unavailable(None))
        if self._has_pending():
            self.flush()
        try:
            self._ensure_schema()
            with open_() as handle:
                yield handle
        except Exception as exc:
            if not _is_down(exc):
                raise
            self._mark_down(exc)
            raise StoreUnavailable(self._unavailable(exc)) from None

    def _unavailable(self, exc: BaseException | None) -> str:
        why = f" ({_first_line(exc)})" if exc is not None else ""
        return f"The database at {self._safe_url()} cannot be reached{why}; start it (or fix SHOPBOT_DATABASE_URL) and try again."

    # ------------------------------------------------------------------------------ writing

    def _write(self, method: str, ops: Sequence[Op]) -> bool:
        """Apply ``ops`` in one transaction after any buffered ones; when the database is down, buffer them.

        Returns True when the rows are in the database, False when they wait in the buffer."""
        with self._lock:
            if not self._skip_db():
                try:
                    self._ensure_schema()
                    if self._has_pending():
                        self._replay()
                    with self._write_engine.begin() as conn:
                        self._apply(conn, ops, replay=False)
                    self._mark_up()
                    return True
                except Exception as exc:
                    if not _is_down(exc):
                        raise
                    self._mark_down(exc)
            self._buffer(method, ops)
            return False

    def _apply(self, conn: Connection, ops: Sequence[Op], *, replay: bool) -> None:
        """Apply ``ops`` in order on ``conn`` (inside the caller's transaction).

        Core statements, not ORM objects: a turn is a handful of rows, and the unit of work cost more than
        the SQL. Consecutive inserts into one table go in as one executemany. Users and states are upserts
        that never move a row back in time (``ON CONFLICT ... WHERE``, SQLite and PostgreSQL); a replayed
        insert whose primary key is already there is skipped (``ON CONFLICT DO NOTHING``).
        """
        upserts = conn.dialect.name in self.upsert_dialects
        i = 0
        while i < len(ops):
            op = ops[i]
            kind = op["op"]
            if kind == "insert":
                table = op["table"]
                rows = [_decode(op["row"])]
                i += 1
                while i < len(ops) and ops[i]["op"] == "insert" and ops[i]["table"] == table and ops[i]["row"].keys() == rows[0].keys():
                    rows.append(_decode(ops[i]["row"]))
                    i += 1
                self._insert(conn, _MODELS[table], rows, replay=replay, upserts=upserts)
                continue
            row = _decode(op["row"])
            i += 1
            if kind in ("touch", "ensure_user"):
                self._apply_user(conn, kind, row, upserts=upserts)
            elif kind == "state":
                self._apply_state(conn, row, upserts=upserts)
            elif kind == "handoff_flag":
                conn.execute(update(User).where(User.id == row["user_id"],
                                                or_(User.handed_over_at.is_(None), User.handed_over_at <= row["at"]))
                             .values(handed_over=True, handed_over_at=row["at"], handoff_reason=row["reason"]))
            elif kind == "release":
                # only what was handed over before the release: a later handoff replayed again stays open
                conn.execute(update(Handoff).where(Handoff.user_id == row["user_id"], Handoff.released_at.is_(None),
                                                   Handoff.created_at <= row["at"])
                             .values(released_at=row["at"], released_by=row["by"]))
                conn.execute(update(User).where(User.id == row["user_id"],
                                                or_(User.handed_over_at.is_(None), User.handed_over_at <= row["at"]))
                             .values(handed_over=False))
            elif kind == "upsert":  # buffers written by the first version of this module
                with Session(bind=conn, join_transaction_mode="create_savepoint") as s:
                    s.merge(_MODELS[op["table"]](**row))
                    s.commit()
            elif kind == "upsert_user_flag":
                conn.execute(update(User).where(User.id == row["id"]).values(
                    handed_over=row["handed_over"], handed_over_at=row["handed_over_at"], handoff_reason=row["handoff_reason"]))
            else:
                raise ValueError(f"Unknown buffered operation {kind!r}.")

    @staticmethod
    def _insert(conn: Connection, model: type[Base], rows: list[dict[str, Any]], *, replay: bool, upserts: bool) -> None:
        table = _table(model)
        if not replay:
            conn.execute(insert(table), rows)
            return
        if upserts:  # written before a crash cut the replay short: skip
            conn.execute(_dialect_insert(conn)(table).on_conflict_do_nothing(), rows)
            return
        key = next(iter(table.primary_key.columns))
        for row in rows:
            if conn.execute(select(key).where(key == row[key.name])).first() is None:
                conn.execute(insert(table), [row])

    @staticmethod
    def _apply_user(conn: Connection, kind: str, row: dict[str, Any], *, upserts: bool) -> None:
        """``touch``: the user wrote at ``at`` (made if missing; never moved back in time); ``ensure_user``:
        made if missing."""
        users = _USERS
        channel, external = _split_user(row["id"])
        values = {"id": row["id"], "channel": row.get("channel") or channel,
                  "external_id": row.get("external_id") or external, "language": row.get("language"),
                  "created_at": row["at"], "last_seen_at": row["at"], "session_id": row["session_id"],
                  "handed_over": False}
        if upserts:
            conn.execute(_statement(conn, kind), values)
            return
        seen = conn.execute(select(users.c.last_seen_at, users.c.language).where(users.c.id == row["id"])).first()
        if seen is None:
            conn.execute(insert(users).values(**values))
        elif kind == "touch" and _utc(seen.last_seen_at) <= row["at"]:
            conn.execute(update(users).where(users.c.id == row["id"]).values(
                last_seen_at=row["at"], session_id=row["session_id"], language=row.get("language") or seen.language))

    @staticmethod
    def _apply_state(conn: Connection, row: dict[str, Any], *, upserts: bool) -> None:
        """The user's state as of ``at``, unless a newer one is stored."""
        states = _STATES
        if upserts:
            conn.execute(_statement(conn, "state"), {"user_id": row["user_id"], "state": row["state"], "updated_at": row["at"]})
            return
        at = conn.execute(select(states.c.updated_at).where(states.c.user_id == row["user_id"])).scalar()
        if at is None:
            conn.execute(insert(states).values(user_id=row["user_id"], state=row["state"], updated_at=row["at"]))
        elif _utc(at) <= row["at"]:
            conn.execute(update(states).where(states.c.user_id == row["user_id"]).values(state=row["state"], updated_at=row["at"]))

    @contextmanager
    def _buffer_lock(self) -> Iterator[None]:
        """In-process lock plus an advisory file lock, so processes sharing the buffer never interleave a
        replay's truncation with another's append."""
        with self._lock:
            fh: IO[str] | None = None
            try:
                self.buffer_dir.mkdir(parents=True, exist_ok=True)
                fh = (self.buffer_dir / "pending.lock").open("a")
                if sys.platform != "win32":
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            except OSError:
                pass  # no lock file (read-only disk): the in-process lock still orders this process
            try:
                yield
            finally:
                if fh is not None:
                    fh.close()  # closing releases the flock

    def _buffer(self, method: str, ops: Sequence[Op]) -> None:
        line = json.dumps({"method": method, "ops": list(ops)}, default=_json_default)  # ASCII: any disk encoding reads it back
        with self._buffer_lock():
            try:
                with self.buffer_path.open("a+b") as fh:
                    if fh.tell() > 0:
                        fh.seek(-1, os.SEEK_END)
                        if fh.read(1) != b"\n":
                            fh.write(b"\n")  # a crash cut the last line: keep it apart from this one
                    fh.write(line.encode("ascii") + b"\n")
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:
                if not self._memory:
                    log.error("The buffer file %s cannot be written (%s); rows are kept in memory until the database is back.",
                              self.buffer_path, exc.strerror or exc)
                self._memory.append(line)

    def _has_pending(self) -> bool:
        if self._memory:
            return True
        try:
            return self.buffer_path.stat().st_size > 0
        except OSError:
            return False

    def _pending_lines(self) -> list[str]:
        try:
            text = self.buffer_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        return [ln for ln in text.splitlines() if ln.strip()] + list(self._memory)

    def _replay(self) -> int:
        """Write every buffered line in one transaction, oldest first, then empty the buffer atomically.

        A line that cannot be applied for a reason other than the database being down (cut by a crash,
        or refused by a constraint) is moved to ``pending.bad`` with a warning instead of blocking every
        later write forever."""
        with self._buffer_lock():
            lines = self._pending_lines()
            if not lines:
                return 0
            bad: list[str] = []
            n = 0
            with self._write_engine.begin() as conn:
                for ln in lines:
                    try:
                        rec = json.loads(ln)
                        ops = rec["ops"] if isinstance(rec, dict) else rec
                        with conn.begin_nested():
                            self._apply(conn, ops, replay=True)
                        n += 1
                    except Exception as exc:
                        if _is_down(exc):
                            raise
                        log.warning("A buffered write could not be applied (%s); it was moved to %s.", _first_line(exc), self.bad_path)
                        bad.append(ln)
            if bad:
                with self.bad_path.open("a", encoding="utf-8") as fh:
                    fh.write("\n".join(bad) + "\n")
            tmp = self.buffer_path.with_suffix(".tmp")
            tmp.write_bytes(b"")
            os.replace(tmp, self.buffer_path)
            self._memory.clear()
            return n

    def flush(self) -> int:
        """Write buffered rows now; returns how many buffered writes went in (0 when none or still down)."""
        with self._lock:
            if not self._has_pending():
                return 0
            try:
                self._ensure_schema()
                n = self._replay()
            except Exception as exc:
                if not _is_down(exc):
                    raise
                self._mark_down(exc)
                return 0
            self._mark_up()
            return n

    def pending(self) -> int:
        """Buffered writes waiting for the database."""
        with self._buffer_lock():
            return len(self._pending_lines()) if self._has_pending() else 0

    # ------------------------------------------------------------------------------- users

    def touch_user(self, channel: str, external_id: str, language: str | None = None) -> UserInfo:
        """Record that a user wrote: the session continues unless the user was silent longer than the gap."""
        user_id, channel, external_id, language = self._user_key(channel, external_id, language)
        info, op = self._seen(user_id, channel, external_id, language, self._known_user(user_id))
        self._write("touch_user", [op])
        return info

    @staticmethod
    def _user_key(channel: str, external_id: str, language: str | None) -> tuple[str, str, str, str | None]:
        channel = _clean(channel, 40) or "unknown"
        external_id = _clean(external_id, 160) or ""
        return f"{channel}:{external_id}"[:200], channel, external_id, _clean(language, 16)

    def _seen(self, user_id: str, channel: str, external_id: str, language: str | None,
              known: _Seen | None) -> tuple[UserInfo, Op]:
        """The session after the user wrote now (the same one unless silent longer than the gap), and the
        operation that records it."""
        now = self._now()
        if known is None:
            session, handed = uuid.uuid4().hex, False
        else:
            session = known.session_id if now - known.last_seen_at <= self.session_gap else uuid.uuid4().hex
            handed = known.handed_over
        with self._lock:
            self._users.put(user_id, _Seen(session, now, handed))
        op = {"op": "touch", "row": {"id": user_id, "channel": channel, "external_id": external_id,
                                     "language": language, "at": now, "session_id": session}}
        return UserInfo(user_id, session, handed), op

    def start_turn(self, channel: str, external_id: str, language: str | None = None) -> tuple[str, bool, dict[str, Any] | None]:
        """The start of a dialogue turn: :meth:`touch` and :meth:`load_state` in one read, as (user id, handed
        over?, state). The touch is not written on its own: it goes in with the user's next write (the
        turn's :meth:`log_turn` or :meth:`save_state`), in the same transaction."""
        user_id, channel, external_id, language = self._user_key(channel, external_id, language)
        cached_user = self._users.get(user_id)
        cached_state = self._states.get(user_id)
        try:
            with self._read_rows(hot=True) as c:
                r = c.execute(_USER_AND_STATE, {"user_id": user_id}).first()
        except StoreUnavailable:
            known, stored = cached_user, None
        else:
            known = None if r is None else _Seen(r.session_id, _utc(r.last_seen_at), bool(r.handed_over))
            stored = None if r is None else r.state
            if self._has_pending():  # the buffer holds newer rows than the database
                known = cached_user if cached_user is not None else known
            else:
                cached_state = None  # the database is authoritative once nothing newer waits in the buffer
        info, op = self._seen(user_id, channel, external_id, language, known)
        self._touches.put(user_id, op)
        text = cached_state if cached_state is not None else stored
        state = json.loads(text) if text is not None else None
        return user_id, info.handed_over, state if isinstance(state, dict) else None

    def _user_ops(self, user_id: str, at: datetime) -> list[Op]:
        """What must precede a row that points at the user: a touch :meth:`start_turn` deferred, or else a
        user row made if missing."""
        touch = self._touches.pop(user_id)
        return [touch] if touch is not None else [self._ensure_user_op(user_id, at)]

    def touch(self, channel: str, external_id: str, language: str | None = None) -> tuple[str, bool]:
        """:meth:`touch_user` as (user id, handed over?), the shape the dialogue manager takes."""
        info = self.touch_user(channel, external_id, language)
        return info.user_id, info.handed_over

    def _known_user(self, user_id: str) -> _Seen | None:
        """What the database knows about the user; this process's copy while it is down or behind."""
        cached = self._users.get(user_id)
        users = _USERS
        try:
            with self._read_rows(hot=True) as c:
                u = c.execute(select(users.c.session_id, users.c.last_seen_at, users.c.handed_over)
                              .where(users.c.id == user_id)).first()
                row = None if u is None else _Seen(u.session_id, _utc(u.last_seen_at), bool(u.handed_over))
        except StoreUnavailable:
            return cached
        if cached is not None and self._has_pending():
            return cached  # the buffer holds newer rows than the database
        return row

    def session_of(self, user_id: str) -> str:
        """The user's current session (a new one when the store has never seen the user)."""
        cached = self._users.get(user_id)
        if cached is not None:
            return cached.session_id
        known = self._known_user(user_id)
        session = known.session_id if known is not None else uuid.uuid4().hex
        with self._lock:
            self._users.put(user_id, _Seen(session, known.last_seen_at if known else self._now(),
                                           known.handed_over if known else False))
        return session

    def _ensure_user_op(self, user_id: str, at: datetime) -> Op:
        # rows that point at a user (turns, state) must not fail when the caller skipped touch_user
        return {"op": "ensure_user", "row": {"id": user_id, "at": at, "session_id": self.session_of(user_id)}}

    # ------------------------------------------------------------------------------- state

    def load_state(self, user_id: str) -> dict[str, Any] | None:
        """The dialogue state saved last for the user; this process's copy while the database is down."""
        cached = self._states.get(user_id)
        states = _STATES
        try:
            with self._read_rows(hot=True) as c:
                stored = c.execute(select(states.c.state).where(states.c.user_id == user_id)).scalar()
        except StoreUnavailable:
            stored = None
        else:
            if cached is None or not self._has_pending():
                cached = None  # the database is authoritative once nothing newer waits in the buffer
        text = cached if cached is not None else stored
        if text is None:
            return None
        state = json.loads(text)
        return state if isinstance(state, dict) else None

    def save_state(self, user_id: str, state: Mapping[str, Any]) -> None:
        now = self._now()
        text = _dumps(dict(state))
        with self._lock:
            self._states.put(user_id, text)
        self._write("save_state", [*self._user_ops(user_id, now),
                                   {"op": "state", "row": {"user_id": user_id, "state": text, "at": now}}])

    # ------------------------------------------------------------------------------- turns

    def log_turn(
        self,
        user_id: str,
        text_in: str,
        text_out: str,
        *,
        turn_id: str | None = None,
        intent: str | None = None,
        confidence: float | None = None,
        slots: Mapping[str, Any] | None = None,
        language: str | None = None,
        latency_ms: float | None = None,
        model_versions: Mapping[str, str] | None = None,
        error: str | None = None,
        query: str | None = None,
        shown: Sequence[ShownItem] = (),
        generation: Sequence[Mapping[str, Any]] = (),
        shown_by: str | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> str:
        """Write one turn (and, in the same transaction, the products it showed, the touch :meth:`start_turn`
        deferred and, when given, the user's conversation ``state`` after the turn); returns the turn id,
        made here when not given, so that feedback can point at the turn even while the database is down."""
        turn_id = turn_id or uuid.uuid4().hex
        if len(turn_id) > 32:
            raise ValueError(f"Turn id {turn_id[:40]!r} is longer than 32 characters; use uuid4().hex.")
        now = self._now()
        session = self.session_of(user_id)
        versions = {**self.versions, **dict(model_versions or {})}
        q = _clean(query)
        shown_ops = self._impression_ops(turn_id, user_id, q, shown, now, shown_by)  # refuses bad ranks first
        state_ops: list[Op] = []
        if state is not None:
            text = _dumps(dict(state))
            with self._lock:
                self._states.put(user_id, text)
            state_ops.append({"op": "state", "row": {"user_id": user_id, "state": text, "at": now}})
        ops: list[Op] = [*self._user_ops(user_id, now), {"op": "insert", "table": "turns", "row": {
            "id": turn_id, "user_id": user_id, "session_id": session, "created_at": now,
            "channel": _split_user(user_id)[0], "language": _clean(language, 16),
            "text_in": _clean(text_in) or "", "text_out": _clean(text_out) or "", "intent": _clean(intent, 64),
            "confidence": _num(confidence), "query": q, "latency_ms": _num(latency_ms),
            "slots": _dumps(dict(slots or {})), "model_versions": _dumps(dict(sorted(versions.items()))),
            "error": _clean(error), "generation": _dumps(list(generation)) if generation else None}}]
        ops += shown_ops + state_ops
        info = TurnInfo(turn_id, user_id, session, now, _clean(text_in) or "", _clean(text_out) or "", intent, q)
        with self._lock:
            recent = self._turns.get(user_id) or deque(maxlen=10)
            recent.append(info)
            self._turns.put(user_id, recent)
        self._write("log_turn", ops)
        return turn_id

    def log(self, turn: TurnRecord) -> str:
        """:meth:`log_turn` for a :class:`TurnRecord` (the dialogue manager's shape)."""
        return self.log_turn(
            turn.user_id, turn.text_in, turn.text_out, turn_id=turn.turn_id, intent=turn.intent,
            confidence=turn.confidence, slots=turn.slots, language=turn.language, latency_ms=turn.latency_ms,
            model_versions=turn.model_versions, error=turn.error, query=turn.query, shown=turn.shown,
            generation=turn.generation, shown_by=turn.shown_by, state=turn.state)

    @staticmethod
    def _impression_ops(turn_id: str, user_id: str, query: str | None, items: Sequence[ShownItem], at: datetime,
                        shown_by: str | None = None) -> list[Op]:
        ops: list[Op] = []
        for sku, rank, score in items:
            if int(rank) < 1:
                raise ValueError(f"Impression ranks start at 1; {sku!r} has rank {rank}.")
            ops.append({"op": "insert", "table": "impressions", "row": {
                "id": uuid.uuid4().hex, "turn_id": turn_id, "user_id": user_id, "query": query,
                "sku": _clean(sku, 200) or "", "rank": int(rank), "score": _num(score), "created_at": at,
                "model_version": _clean(shown_by, 120)}})
        return ops

    def log_impressions(self, turn_id: str, user_id: str, query: str | None, items: Sequence[ShownItem],
                        shown_by: str | None = None) -> int:
        """Products shown in an already logged turn (e.g. a second message of the same turn); returns the count."""
        ops = self._impression_ops(turn_id, user_id, _clean(query), items, self._now(), shown_by)
        if ops:
            self._write("log_impressions", ops)
        return len(ops)

    def log_feedback(self, user_id: str, kind: str, *, turn_id: str | None = None, sku: str | None = None,
                     value: float | None = None, comment: str | None = None) -> str:
        """One thing the shopper did or said about a turn or a product; returns the feedback id."""
        fid = uuid.uuid4().hex
        self._write("log_feedback", [_feedback_op(fid, user_id, kind, self._now(), turn_id=turn_id, sku=sku,
                                                  value=value, comment=comment)])
        return fid

    def import_feedback(self, rows: Sequence[ReportedAction]) -> tuple[int, int]:
        """What the shop reports happened outside the chat (purchases, add-to-cart), at the time it happened;
        returns (added, already there). Each row's id comes from its content (user, kind, SKU, time, order),
        so importing the same export twice adds nothing. A user the store has not seen is made."""
        if not rows:
            return 0, 0
        ids = [uuid.uuid5(uuid.NAMESPACE_URL, "|".join(
            (r.user_id, r.kind, r.sku, r.at.astimezone(UTC).isoformat(), r.ref or ""))).hex for r in rows]
        # every row is checked before anything is read or written: one bad row refuses the import whole
        inserts = [_feedback_op(fid, r.user_id, r.kind, r.at, sku=r.sku, value=r.value, comment=r.ref)
                   for fid, r in zip(ids, rows, strict=True)]
        existing: set[str] = set()
        with self._read_rows() as c:
            fb = _table(Feedback)
            for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
                existing.update(str(x) for x in c.execute(select(fb.c.id).where(fb.c.id.in_(chunk))).scalars())
        ops: list[Op] = []
        users: set[str] = set()
        seen: set[str] = set()
        for fid, r, insert_op in zip(ids, rows, inserts, strict=True):
            if fid in existing or fid in seen:
                continue
            seen.add(fid)
            if r.user_id not in users:
                users.add(r.user_id)
                ops.append(self._ensure_user_op(r.user_id, r.at))
            ops.append(insert_op)
        if ops:
            self._write("import_feedback", ops)
        return len(seen), len(rows) - len(seen)

    def feedback(self, user_id: str, kind: str, *, turn_id: str | None = None, sku: str | None = None,
                 value: float | None = None, comment: str | None = None) -> str:
        """:meth:`log_feedback` under the name the dialogue manager uses."""
        return self.log_feedback(user_id, kind, turn_id=turn_id, sku=sku, value=value, comment=comment)

    def recent_turns(self, user_id: str, n: int = 10) -> list[TurnInfo]:
        """The user's last ``n`` turns, newest first; while the database is down, those this process logged."""
        try:
            with self._read(hot=True) as s:
                rows = s.execute(select(Turn).where(Turn.user_id == user_id)
                                 .order_by(Turn.created_at.desc(), Turn.id.desc()).limit(n)).scalars().all()
                return [TurnInfo(t.id, t.user_id, t.session_id, _utc(t.created_at), t.text_in, t.text_out, t.intent, t.query)
                        for t in rows]
        except StoreUnavailable:
            return list(reversed(self._turns.get(user_id) or ()))[:n]

    def last_turn(self, user_id: str) -> TurnInfo | None:
        """The turn "that's not what I meant" refers to."""
        turns = self.recent_turns(user_id, 1)
        return turns[0] if turns else None

    # ---------------------------------------------------------------------------- handoffs

    def handoff(self, user_id: str, reason: str) -> None:
        """Hand the conversation to a person: the bot stays quiet for this user until released."""
        now = self._now()
        hid = uuid.uuid4().hex
        with self._lock:
            seen = self._users.get(user_id)
            if seen is not None:
                seen.handed_over = True
        self._write("handoff", [
            *self._user_ops(user_id, now),
            {"op": "insert", "table": "handoffs", "row": {"id": hid, "user_id": user_id, "reason": _clean(reason),
                                                          "created_at": now}},
            {"op": "handoff_flag", "row": {"user_id": user_id, "at": now, "reason": _clean(reason)}},
        ])

    def release(self, user_id: str, by: str = "owner") -> bool:
        """Give the conversation back to the bot; False when it was not handed over.

        While the database is down the release is buffered like any write and the answer is the last
        known state (True when this process never saw the user: the owner asked for it)."""
        try:
            with self._read() as s:
                flag = s.execute(select(User.handed_over).where(User.id == user_id)).scalar()
                open_ = s.execute(select(exists().where(Handoff.user_id == user_id, Handoff.released_at.is_(None)))).scalar()
                was = bool(flag) or bool(open_)
        except StoreUnavailable:
            seen = self._users.get(user_id)
            was = seen.handed_over if seen is not None else True
        if not was:
            return False
        with self._lock:
            seen = self._users.get(user_id)
            if seen is not None:
                seen.handed_over = False
        self._write("release", [{"op": "release", "row": {"user_id": user_id, "by": _clean(by, 200), "at": self._now()}}])
        return True

    def is_handed_over(self, user_id: str) -> bool:
        """Whether a person has this conversation; the last known answer while the database is down."""
        seen = self._users.get(user_id)
        try:
            with self._read_rows(hot=True) as c:
                flag = bool(c.execute(select(_USERS.c.handed_over).where(_USERS.c.id == user_id)).scalar())
        except StoreUnavailable:
            return bool(seen and seen.handed_over)
        if seen is not None and self._has_pending():
            return seen.handed_over
        return flag

    def open_handoffs(self) -> list[OpenHandoff]:
        """Conversations waiting for a person, oldest first, with what the shopper said last."""
        with self._read() as s:
            rows = s.execute(select(Handoff).where(Handoff.released_at.is_(None))
                             .order_by(Handoff.created_at, Handoff.id)).scalars().all()
            out: list[OpenHandoff] = []
            for h in rows:
                last = s.execute(select(Turn.text_in).where(Turn.user_id == h.user_id)
                                 .order_by(Turn.created_at.desc(), Turn.id.desc()).limit(1)).scalar()
                out.append({"user_id": h.user_id, "reason": h.reason, "since": _utc(h.created_at), "last_message": last})
            return out

    # ------------------------------------------------------------------------------ reading

    def export_feedback(self, path: str | Path) -> int:
        """Training rows for re-ranking and recommendation: one JSON line per turn that showed products
        or received feedback, oldest first; returns the number of lines.

        Feedback logged without a turn but with a product (a click from an old message) is attached to
        the user's latest earlier turn that showed that product, so no signal is dropped. The file is
        written next to ``path`` and renamed into place: a failed export never leaves half a file."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
        n = 0
        try:
            with self._read() as s, tmp.open("w", encoding="utf-8") as fh:
                orphans: dict[str, list[Feedback]] = defaultdict(list)
                for f in s.execute(select(Feedback).where(Feedback.turn_id.is_(None), Feedback.sku.is_not(None))
                                   .order_by(Feedback.created_at, Feedback.id)).scalars():
                    tid = s.execute(select(Impression.turn_id).where(
                        Impression.user_id == f.user_id, Impression.sku == f.sku, Impression.created_at <= f.created_at)
                        .order_by(Impression.created_at.desc(), Impression.rank).limit(1)).scalar()
                    if tid is not None:
                        orphans[tid].append(f)
                cond = Turn.id.in_(select(Impression.turn_id)) | Turn.id.in_(
                    select(Feedback.turn_id).where(Feedback.turn_id.is_not(None)))
                if orphans:
                    cond = cond | Turn.id.in_(list(orphans))
                batch: list[Turn] = []
                for t in s.execute(select(Turn).where(cond).order_by(Turn.created_at, Turn.id)).scalars():
                    batch.append(t)
                    if len(batch) == 500:
                        n += self._export_batch(s, batch, orphans, fh)
                        batch = []
                if batch:
                    n += self._export_batch(s, batch, orphans, fh)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        return n

    @staticmethod
    def _export_batch(s: Session, turns: Sequence[Turn], orphans: Mapping[str, list[Feedback]], fh: IO[str]) -> int:
        ids = [t.id for t in turns]
        shown: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for i in s.execute(select(Impression).where(Impression.turn_id.in_(ids))
                           .order_by(Impression.turn_id, Impression.rank, Impression.id)).scalars():
            shown[i.turn_id].append({"sku": i.sku, "rank": i.rank, "score": i.score})
        fb: dict[str, list[Feedback]] = defaultdict(list)
        for f in s.execute(select(Feedback).where(Feedback.turn_id.in_(ids))).scalars():
            fb[f.turn_id or ""].append(f)
        for t in turns:
            fbs = sorted([*fb.get(t.id, []), *orphans.get(t.id, [])], key=lambda f: (_utc(f.created_at), f.id))
            rec = {
                "turn_id": t.id, "user_id": t.user_id, "session_id": t.session_id,
                "created_at": _utc(t.created_at).isoformat(), "language": t.language,
                "text_in": t.text_in, "query": t.query, "intent": t.intent, "confidence": t.confidence,
                "slots": json.loads(t.slots or "{}"), "reply": t.text_out,
                "shown": shown.get(t.id, []),
                "clicks": [f.sku for f in fbs if f.kind == "click"],
                "thumbs": [{"sku": f.sku, "kind": f.kind} for f in fbs if f.kind in ("thumb_up", *NEGATIVE_KINDS)],
                "add_to_cart": [f.sku for f in fbs if f.kind == "add_to_cart"],
                "purchases": [f.sku for f in fbs if f.kind == "purchase"],
                "ratings": [{"sku": f.sku, "value": f.value, "comment": f.comment} for f in fbs if f.kind == "rating"],
                "model_versions": json.loads(t.model_versions or "{}"),
                "generation": json.loads(t.generation or "[]"),
            }
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        return len(turns)

    def stats(self, top: int = 10) -> Stats:
        """What the shop owner looks at: volume, what shoppers search for, what finds nothing, thumbs."""
        with self._read() as s:
            turns = s.execute(select(func.count()).select_from(Turn)).scalar_one()
            users = s.execute(select(func.count()).select_from(User)).scalar_one()
            sessions = s.execute(select(func.count(func.distinct(Turn.session_id)))).scalar_one()
            q = func.coalesce(Turn.query, Turn.text_in)
            searches = select(q, func.count()).where(Turn.intent.in_(SEARCH_INTENTS)).group_by(q)
            queries = self._casefolded(s.execute(searches).all())
            no_results = ~exists().where(Impression.turn_id == Turn.id)
            zero = self._casefolded(s.execute(searches.where(no_results)).all())
            kinds = {str(k): int(c) for k, c in s.execute(select(Feedback.kind, func.count()).group_by(Feedback.kind)).all()}
            open_handoffs = s.execute(select(func.count()).select_from(Handoff).where(Handoff.released_at.is_(None))).scalar_one()
            n_lat = s.execute(select(func.count(Turn.latency_ms))).scalar_one()
            p50 = s.execute(select(Turn.latency_ms).where(Turn.latency_ms.is_not(None))
                            .order_by(Turn.latency_ms).offset(n_lat // 2).limit(1)).scalar() if n_lat else None
        up = kinds.get("thumb_up", 0)
        down = sum(kinds.get(k, 0) for k in NEGATIVE_KINDS)
        return {
            "turns": int(turns), "users": int(users), "sessions": int(sessions),
            "top_queries": queries[:top], "zero_result_queries": zero[:top],
            "feedback": kinds, "thumbs_up": up, "thumbs_down": down,
            "thumbs_ratio": round(up / (up + down), 3) if up + down else None,
            "open_handoffs": int(open_handoffs),
            "latency_ms_p50": round(float(p50), 1) if p50 is not None else None,
            "pending_writes": self.pending(),
        }

    @staticmethod
    def _casefolded(rows: Sequence[Any]) -> list[tuple[str, int]]:
        # grouped in SQL, merged here: SQLite's lower() only knows ASCII, Python's knows every script
        counts: dict[str, int] = defaultdict(int)
        for text, count in rows:
            if text:
                counts[" ".join(str(text).split()).casefold()] += int(count)
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    # ------------------------------------------------------------------------------ forgetting

    def forget_user(self, user_id: str) -> dict[str, int]:
        """Delete everything stored about one user ("forget me"): their turns and the products those turns
        showed, feedback, handoffs, conversation state and the user row; returns the rows deleted per table.

        It needs the database: rows still waiting in the buffer are written first so that none of them
        brings the user back after the delete. While the database is down this raises StoreUnavailable
        and deletes nothing (the shopper is asked to try again). A turn still being written when this
        runs may be logged afterwards; the adapters run a shopper's events one at a time, so their own
        turns never are."""
        with self._lock:
            with self._read():  # replays the buffer; StoreUnavailable (one sentence) when down
                pass
            turns = select(Turn.id).where(Turn.user_id == user_id)
            steps: list[tuple[str, Any]] = [
                ("impressions", delete(Impression).where(or_(Impression.user_id == user_id, Impression.turn_id.in_(turns)))),
                ("feedback", delete(Feedback).where(Feedback.user_id == user_id)),
                ("handoffs", delete(Handoff).where(Handoff.user_id == user_id)),
                ("turns", delete(Turn).where(Turn.user_id == user_id)),
                ("conversation_state", delete(ConversationState).where(ConversationState.user_id == user_id)),
                ("users", delete(User).where(User.id == user_id)),
            ]
            counts: dict[str, int] = {}
            try:
                with Session(self._write_engine) as s, s.begin():
                    for table, stmt in steps:
                        result = s.execute(stmt.execution_options(synchronize_session=False))
                        counts[table] = int(getattr(result, "rowcount", 0) or 0)
            except Exception as exc:
                if not _is_down(exc):
                    raise
                self._mark_down(exc)
                raise StoreUnavailable(self._unavailable(exc)) from None
            for cache in (self._states, self._users, self._turns, self._touches):
                cache.discard(user_id)
        log.info("Forgot %s: %s", user_id, counts)
        return counts

    # ------------------------------------------------------------------------- button payloads

    def save_payload(self, key: str, payload: str) -> None:
        """Keep a long button payload under ``key`` (the caller's hash of it, so a key never changes meaning).

        Idempotent, also across workers; buffered like any write while the database is down."""
        if self.load_payload(key) is not None:
            return
        with contextlib.suppress(IntegrityError):  # another worker stored the same key a moment ago
            self._write("save_payload", [{"op": "insert", "table": "button_payloads", "row": {
                "key": key, "payload": _clean(payload) or "", "created_at": self._now()}}])

    def load_payload(self, key: str) -> str | None:
        """The payload saved under ``key``; None when unknown or while the database is down."""
        try:
            with self._read_rows(hot=True) as c:
                table = _table(ButtonPayload)
                return c.execute(select(table.c.payload).where(table.c.key == key)).scalar()  # type: ignore[no-any-return]
        except StoreUnavailable:
            return None

    # --------------------------------------------------------------------------- interactions

    def interactions(self, user_id: str | None = None, limit: int = 20000) -> list[tuple[str, str, str, datetime]]:
        """(user, sku, kind, time) rows for recommendations, oldest first: feedback on a product (click,
        thumbs, add_to_cart, purchase) and products opened in detail (kind "details"); one user's or
        everyone's newest ``limit`` of each. Empty while the database is down (recommendations fall
        back to popular products)."""
        try:
            with self._read(hot=True) as s:
                fb = select(Feedback.user_id, Feedback.sku, Feedback.kind, Feedback.created_at).where(Feedback.sku.is_not(None))
                seen = (select(Impression.user_id, Impression.sku, Impression.created_at)
                        .join(Turn, Turn.id == Impression.turn_id).where(Turn.intent == "details"))
                if user_id is not None:
                    fb = fb.where(Feedback.user_id == user_id)
                    seen = seen.where(Impression.user_id == user_id)
                rows = [(u, str(k), str(kind), _utc(t)) for u, k, kind, t in
                        s.execute(fb.order_by(Feedback.created_at.desc()).limit(limit)).all()]
                rows += [(u, str(k), "details", _utc(t)) for u, k, t in
                         s.execute(seen.order_by(Impression.created_at.desc()).limit(limit)).all()]
        except StoreUnavailable:
            return []
        rows.sort(key=lambda r: r[3])
        return rows

    # ------------------------------------------------------------------------------- training reads

    def search_log(self, *, limit: int = 200_000) -> list[SearchLog]:
        """Every search turn that showed products, oldest first, with what was shown and what the shopper did
        about those products afterwards: the ranker's training data.

        A shopper's actions are attributed to the search that showed the product when they happen after it
        and before that shopper's next search: feedback tied to the turn, and also a product opened in
        detail, thumbs given on the details page, a cart or a purchase the shop reports later."""
        with self._read() as s:
            turns = s.execute(
                select(Turn.id, Turn.user_id, Turn.created_at, Turn.query, Turn.intent)
                .where(Turn.query.is_not(None), Turn.intent.in_((*SEARCH_INTENTS, "more")))
                .order_by(Turn.created_at.desc()).limit(limit)).all()
            ids = [t[0] for t in turns]
            shown: dict[str, list[tuple[str, int, float | None]]] = defaultdict(list)
            for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
                for tid, sku, rank, score in s.execute(
                        select(Impression.turn_id, Impression.sku, Impression.rank, Impression.score)
                        .where(Impression.turn_id.in_(chunk))).all():
                    shown[tid].append((sku, int(rank), score))
            since = min((_utc(t[2]) for t in turns), default=None)
            acts: list[tuple[str, datetime, str | None, str | None, str, float | None]] = []
            if since is not None:
                acts += [(u, _utc(at), tid, sku, kind, value) for u, at, tid, sku, kind, value in s.execute(
                    select(Feedback.user_id, Feedback.created_at, Feedback.turn_id, Feedback.sku, Feedback.kind,
                           Feedback.value).where(Feedback.created_at >= since)).all()]
                acts += [(u, _utc(at), None, sku, "details", None) for u, at, sku in s.execute(
                    select(Impression.user_id, Impression.created_at, Impression.sku)
                    .join(Turn, Turn.id == Impression.turn_id)
                    .where(Turn.intent == "details", Impression.created_at >= since)).all()]
        by_user: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
        for tid, user, at, _q, _i in turns:
            if shown.get(tid):
                by_user[user].append((tid, _utc(at)))
        window: dict[str, tuple[str, datetime, datetime]] = {}  # turn -> (user, start, end)
        for user, seq in by_user.items():
            seq.sort(key=lambda x: x[1])
            for k, (tid, at) in enumerate(seq):
                end = seq[k + 1][1] if k + 1 < len(seq) else datetime.max.replace(tzinfo=UTC)
                window[tid] = (user, at, end)
        # Each shopper's actions in time order, so a search finds the ones in its window by bisection (a
        # shopper with thousands of searches and actions used to cost searches x actions), plus the
        # feedback tied to the turn itself whenever it came.
        user_acts: dict[str, list[tuple[datetime, int, str | None, str | None, str, float | None]]] = defaultdict(list)
        tied: dict[tuple[str, str], list[tuple[datetime, int, str | None, str | None, str, float | None]]] = defaultdict(list)
        for n, (u, at, ftid, fsku, kind, value) in enumerate(acts):
            user_acts[u].append((at, n, ftid, fsku, kind, value))
            if ftid is not None:
                tied[(u, ftid)].append((at, n, ftid, fsku, kind, value))
        times: dict[str, list[datetime]] = {}
        for u, mine in user_acts.items():
            mine.sort(key=lambda a: (a[0], a[1]))
            times[u] = [a[0] for a in mine]
        out = []
        for tid, user, at, q, intent in reversed(turns):
            if tid not in window:
                continue
            _, start, end = window[tid]
            skus = {x[0] for x in shown[tid]}
            got: list[tuple[str | None, str, float | None]] = []
            theirs = user_acts.get(user)
            if theirs:
                ts = times[user]
                found = [a for a in theirs[bisect_left(ts, start):bisect_left(ts, end)] if a[2] == tid or a[3] in skus]
                late = [a for a in tied.get((user, tid), ()) if a[0] < start or a[0] >= end]
                if late:
                    found = sorted(found + late, key=lambda a: (a[0], a[1]))
                got = [(fsku, kind, value) for _at, _n, _tid, fsku, kind, value in found]
            out.append(SearchLog(tid, user, _utc(at), str(q), intent or "", sorted(shown[tid], key=lambda x: x[1]), got))
        return out

    def turn_log(self, *, intents: Sequence[str] | None = None, rated_only: bool = False,
                 limit: int = 200_000) -> list[TurnLog]:
        """Turns (oldest first) with the thumbs they received as a whole: the language model's and the intent
        classifier's training data. ``rated_only`` keeps turns that got at least one thumb either way."""
        with self._read() as s:
            q = select(Turn.id, Turn.user_id, Turn.created_at, Turn.language, Turn.text_in, Turn.text_out,
                       Turn.intent, Turn.confidence, Turn.generation, Turn.model_versions)
            if intents is not None:
                q = q.where(Turn.intent.in_(list(intents)))
            if rated_only:
                q = q.where(exists().where(Feedback.turn_id == Turn.id, Feedback.sku.is_(None)))
            rows = s.execute(q.order_by(Turn.created_at.desc()).limit(limit)).all()
            votes: dict[str, list[str]] = defaultdict(list)
            ids = [r[0] for r in rows]
            for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
                for vtid, kind in s.execute(select(Feedback.turn_id, Feedback.kind)
                                            .where(Feedback.turn_id.in_(chunk), Feedback.sku.is_(None))).all():
                    votes[str(vtid)].append(kind)
        out = []
        for tid, user, at, lang, text_in, text_out, intent, conf, gen, versions in reversed(rows):
            v = votes.get(tid, [])
            out.append(TurnLog(tid, user, _utc(at), lang, text_in, text_out, intent, conf,
                               json.loads(gen) if gen else [], json.loads(versions) if versions else {},
                               ups=sum(k == "thumb_up" for k in v), downs=sum(k in NEGATIVE_KINDS for k in v)))
        return out
