"""The :class:`Store`: the SQL log and conversation state behind every channel, and the one object the
rest of the application talks to (users and sessions, conversation state, turns, impressions, feedback,
handoffs, button payloads, handled updates, the polling inbox, "forget me", and the reports of :mod:`bot.store.reports`).

Everything the retraining code learns from is written here, so three rules shape the design:

* Nothing is lost when the database is down. Every write is expressed as a list of plain *operations*
  (:mod:`bot.store.operations`: insert this row, move that user's last-seen time forward) with ids and
  timestamps made here, not by the database. When the database cannot be reached the operations are
  appended as one JSON line to ``buffer_dir/pending.jsonl`` (fsync'ed; :mod:`bot.store.outbox`) and
  replayed, in order, before the next write that gets through. Ids made client-side let a buffered
  impression point at a buffered turn.
* Replaying is idempotent: an insert whose primary key exists is skipped and every update carries its
  own timestamp and never moves a row backwards in time, so a crash between replaying the buffer and
  truncating it (or two processes sharing one buffer directory) duplicates and reorders nothing.
* One code path for SQLite (the embedded default) and PostgreSQL (``SHOPBOT_DATABASE_URL``); the
  schema (:mod:`bot.store.schema`) comes from Alembic migrations (``bot/store/migrations``), run by
  :meth:`Store.migrate`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import bindparam, create_engine, delete, event, exists, func, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.observability.metrics import count_error, count_feedback
from bot.store import operations, reports
from bot.store.operations import Op, feedback_op, impression_ops
from bot.store.outbox import Outbox, first_line, is_down
from bot.store.records import (
    OpenHandoff,
    ReportedAction,
    SearchLog,
    ShownItem,
    Stats,
    StoreUnavailable,
    TurnInfo,
    TurnLog,
    TurnRecord,
    UserInfo,
    WatchRecord,
)
from bot.store.schema import (
    HANDLED,
    INBOX,
    STATES,
    USERS,
    ButtonPayload,
    ConversationState,
    Feedback,
    Handoff,
    Impression,
    InboxUpdate,
    Turn,
    User,
    Watch,
    clean,
    dumps,
    num,
    split_user,
    table,
    utc,
)

__all__ = ["SESSION_GAP", "Store", "utcnow"]

log = logging.getLogger(__name__)

SESSION_GAP = timedelta(minutes=30)
CACHE_USERS = 10_000

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


# what a turn starts with: the user's session and handoff flag, and the conversation state (None: new user)
_USER_AND_STATE = (
    select(USERS.c.session_id, USERS.c.last_seen_at, USERS.c.handed_over, STATES.c.state)
    .select_from(USERS.outerjoin(STATES, STATES.c.user_id == USERS.c.id))
    .where(USERS.c.id == bindparam("user_id")))


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
        self._lock = threading.RLock()
        self.outbox = Outbox(self.buffer_dir, self._lock)  # takes the write lock: the buffer keeps write order
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
                if not is_down(exc):
                    raise
                self._mark_down(exc)

    @property
    def buffer_path(self) -> Path:
        """The buffer file (``buffer_dir/pending.jsonl``)."""
        return self.outbox.path

    @property
    def bad_path(self) -> Path:
        """Where buffered writes that can never be applied are set aside (``buffer_dir/pending.bad``)."""
        return self.outbox.bad_path

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
        from alembic import command  # imported here: only a migration needs alembic
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
                log.warning("Could not record %d shopper(s) as seen (%s).", len(touches), first_line(exc))
        self.engine.dispose()

    # -------------------------------------------------------------------------- up and down

    def _now(self) -> datetime:
        return utc(self.clock())

    def _skip_db(self) -> bool:
        return self.down and time.monotonic() < self._retry_at

    def _mark_down(self, exc: BaseException) -> None:
        self._retry_at = time.monotonic() + self.retry_interval
        if self._auto_migrate:
            self._migrated = False  # a recreated database file comes back empty: check the schema once
        if not self.down:
            log.warning("The database is unreachable (%s); rows are buffered in %s until it is back.",
                        first_line(exc), self.buffer_path)
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
        if self.outbox.has_pending():
            self.flush()
        try:
            self._ensure_schema()
            with open_() as handle:
                yield handle
        except Exception as exc:
            if not is_down(exc):
                raise
            self._mark_down(exc)
            raise StoreUnavailable(self._unavailable(exc)) from None

    def _unavailable(self, exc: BaseException | None) -> str:
        why = f" ({first_line(exc)})" if exc is not None else ""
        return f"The database at {self._safe_url()} cannot be reached{why}; start it (or fix SHOPBOT_DATABASE_URL) and try again."

    # ------------------------------------------------------------------------------ writing

    def _write(self, method: str, ops: Sequence[Op]) -> bool:
        """Apply ``ops`` in one transaction after any buffered ones; when the database is down, buffer them.

        Returns True when the rows are in the database, False when they wait in the buffer."""
        with self._lock:
            if not self._skip_db():
                try:
                    self._ensure_schema()
                    if self.outbox.has_pending():
                        self.outbox.replay(self._write_engine, self._replay_ops)
                    with self._write_engine.begin() as conn:
                        self._apply(conn, ops, replay=False)
                    self._mark_up()
                    return True
                except Exception as exc:
                    if not is_down(exc):
                        raise
                    self._mark_down(exc)
            count_error("database_down")  # one buffered write
            self.outbox.append(method, ops)
            return False

    def _apply(self, conn: Connection, ops: Sequence[Op], *, replay: bool) -> None:
        """Apply ``ops`` on ``conn`` (:func:`bot.store.operations.apply`), with upserts where the database
        takes them."""
        operations.apply(conn, ops, replay=replay, upserts=conn.dialect.name in self.upsert_dialects)

    def _replay_ops(self, conn: Connection, ops: Sequence[Op]) -> None:
        self._apply(conn, ops, replay=True)

    def flush(self) -> int:
        """Write buffered rows now; returns how many buffered writes went in (0 when none or still down)."""
        with self._lock:
            if not self.outbox.has_pending():
                return 0
            try:
                self._ensure_schema()
                n = self.outbox.replay(self._write_engine, self._replay_ops)
            except Exception as exc:
                if not is_down(exc):
                    raise
                self._mark_down(exc)
                return 0
            self._mark_up()
            return n

    def pending(self) -> int:
        """Buffered writes waiting for the database."""
        return self.outbox.pending()

    # ------------------------------------------------------------------------------- users

    def touch_user(self, channel: str, external_id: str, language: str | None = None) -> UserInfo:
        """Record that a user wrote: the session continues unless the user was silent longer than the gap."""
        user_id, channel, external_id, language = self._user_key(channel, external_id, language)
        info, op = self._seen(user_id, channel, external_id, language, self._known_user(user_id))
        self._write("touch_user", [op])
        return info

    @staticmethod
    def _user_key(channel: str, external_id: str, language: str | None) -> tuple[str, str, str, str | None]:
        channel = clean(channel, 40) or "unknown"
        external_id = clean(external_id, 160) or ""
        return f"{channel}:{external_id}"[:200], channel, external_id, clean(language, 16)

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
            known = None if r is None else _Seen(r.session_id, utc(r.last_seen_at), bool(r.handed_over))
            stored = None if r is None else r.state
            if self.outbox.has_pending():  # the buffer holds newer rows than the database
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
        users = USERS
        try:
            with self._read_rows(hot=True) as c:
                u = c.execute(select(users.c.session_id, users.c.last_seen_at, users.c.handed_over)
                              .where(users.c.id == user_id)).first()
                row = None if u is None else _Seen(u.session_id, utc(u.last_seen_at), bool(u.handed_over))
        except StoreUnavailable:
            return cached
        if cached is not None and self.outbox.has_pending():
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
        states = STATES
        try:
            with self._read_rows(hot=True) as c:
                stored = c.execute(select(states.c.state).where(states.c.user_id == user_id)).scalar()
        except StoreUnavailable:
            stored = None
        else:
            if cached is None or not self.outbox.has_pending():
                cached = None  # the database is authoritative once nothing newer waits in the buffer
        text = cached if cached is not None else stored
        if text is None:
            return None
        state = json.loads(text)
        return state if isinstance(state, dict) else None

    def save_state(self, user_id: str, state: Mapping[str, Any]) -> None:
        now = self._now()
        text = dumps(dict(state))
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
        q = clean(query)
        shown_ops = impression_ops(turn_id, user_id, q, shown, now, shown_by)  # refuses bad ranks first
        state_ops: list[Op] = []
        if state is not None:
            text = dumps(dict(state))
            with self._lock:
                self._states.put(user_id, text)
            state_ops.append({"op": "state", "row": {"user_id": user_id, "state": text, "at": now}})
        ops: list[Op] = [*self._user_ops(user_id, now), {"op": "insert", "table": "turns", "row": {
            "id": turn_id, "user_id": user_id, "session_id": session, "created_at": now,
            "channel": split_user(user_id)[0], "language": clean(language, 16),
            "text_in": clean(text_in) or "", "text_out": clean(text_out) or "", "intent": clean(intent, 64),
            "confidence": num(confidence), "query": q, "latency_ms": num(latency_ms),
            "slots": dumps(dict(slots or {})), "model_versions": dumps(dict(sorted(versions.items()))),
            "error": clean(error), "generation": dumps(list(generation)) if generation else None}}]
        ops += shown_ops + state_ops
        info = TurnInfo(turn_id, user_id, session, now, clean(text_in) or "", clean(text_out) or "", intent, q)
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

    def log_impressions(self, turn_id: str, user_id: str, query: str | None, items: Sequence[ShownItem],
                        shown_by: str | None = None) -> int:
        """Products shown in an already logged turn (e.g. a second message of the same turn); returns the count."""
        ops = impression_ops(turn_id, user_id, clean(query), items, self._now(), shown_by)
        if ops:
            self._write("log_impressions", ops)
        return len(ops)

    def log_feedback(self, user_id: str, kind: str, *, turn_id: str | None = None, sku: str | None = None,
                     value: float | None = None, comment: str | None = None) -> str:
        """One thing the shopper did or said about a turn or a product; returns the feedback id."""
        fid = uuid.uuid4().hex
        self._write("log_feedback", [feedback_op(fid, user_id, kind, self._now(), turn_id=turn_id, sku=sku,
                                                  value=value, comment=comment)])
        count_feedback(kind)
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
        inserts = [feedback_op(fid, r.user_id, r.kind, r.at, sku=r.sku, value=r.value, comment=r.ref)
                   for fid, r in zip(ids, rows, strict=True)]
        existing: set[str] = set()
        with self._read_rows() as c:
            fb = table(Feedback)
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
                return [TurnInfo(t.id, t.user_id, t.session_id, utc(t.created_at), t.text_in, t.text_out, t.intent, t.query)
                        for t in rows]
        except StoreUnavailable:
            return list(reversed(self._turns.get(user_id) or ()))[:n]

    def turn_owner(self, turn_id: str) -> str | None:
        """The user a turn belongs to; None when it is unknown (perhaps still buffered) or the database is down.
        A button carries a turn id, and a button can be pressed by someone else (a group chat, a forwarded
        message, a crafted payload): the dialogue asks this before it records anything against that turn."""
        try:
            with self._read_rows(hot=True) as c:
                turns = table(Turn)
                return c.execute(select(turns.c.user_id).where(turns.c.id == turn_id)).scalar()
        except StoreUnavailable:
            return None

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
            {"op": "insert", "table": "handoffs", "row": {"id": hid, "user_id": user_id, "reason": clean(reason),
                                                          "created_at": now}},
            {"op": "handoff_flag", "row": {"user_id": user_id, "at": now, "reason": clean(reason)}},
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
        self._write("release", [{"op": "release", "row": {"user_id": user_id, "by": clean(by, 200), "at": self._now()}}])
        return True

    def is_handed_over(self, user_id: str) -> bool:
        """Whether a person has this conversation; the last known answer while the database is down."""
        seen = self._users.get(user_id)
        try:
            with self._read_rows(hot=True) as c:
                flag = bool(c.execute(select(USERS.c.handed_over).where(USERS.c.id == user_id)).scalar())
        except StoreUnavailable:
            return bool(seen and seen.handed_over)
        if seen is not None and self.outbox.has_pending():
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
                out.append({"user_id": h.user_id, "reason": h.reason, "since": utc(h.created_at), "last_message": last})
            return out

    # ------------------------------------------------------------------------------ reports

    def export_feedback(self, path: str | Path, *, redact: bool = True) -> int:
        """Training rows for re-ranking and recommendation, one JSON line per turn that showed products or
        received feedback (:func:`bot.store.reports.export_feedback`); returns the number of lines.
        ``redact``: personal data in the texts replaced by tags (SHOPBOT_REDACT_PII)."""
        return reports.export_feedback(self._read, path, redact=redact)

    def stats(self, top: int = 10) -> Stats:
        """What the shop owner looks at: volume, what shoppers search for, what finds nothing, thumbs
        (:func:`bot.store.reports.stats`)."""
        return reports.stats(self._read, self.pending, top)

    def search_log(self, *, limit: int = 200_000) -> list[SearchLog]:
        """The ranker's training data: every search turn that showed products, oldest first, with what the
        shopper did about them afterwards (:func:`bot.store.reports.search_log`)."""
        return reports.search_log(self._read, limit=limit)

    def turn_log(self, *, intents: Sequence[str] | None = None, rated_only: bool = False,
                 limit: int = 200_000) -> list[TurnLog]:
        """Turns (oldest first) with the thumbs they received as a whole: the language model's and the intent
        classifier's training data (:func:`bot.store.reports.turn_log`)."""
        return reports.turn_log(self._read, intents=intents, rated_only=rated_only, limit=limit)

    # ------------------------------------------------------------------------------ the console

    def overview(self, period: reports.Period, top: int = 10) -> reports.Overview:
        """The console's overview of ``period`` (:func:`bot.store.reports.overview`)."""
        return reports.overview(self._read, period, top=top)

    def conversations(self, search: str = "", limit: int = 100) -> list[reports.ConversationRow]:
        """Shoppers, latest first, matching ``search`` (:func:`bot.store.reports.conversations`)."""
        return reports.conversations(self._read, search=search, limit=limit)

    def conversation(self, user_id: str, limit: int = 200) -> list[reports.TurnView]:
        """One shopper's turns with products shown and feedback (:func:`bot.store.reports.conversation`)."""
        return reports.conversation(self._read, user_id, limit=limit)

    def gap_searches(self, period: reports.Period) -> list[reports.GapSearch]:
        """Searches of ``period`` that did not serve the shopper (:func:`bot.store.reports.gap_searches`); a
        search of a session that may still be going on is not called abandoned yet."""
        return reports.gap_searches(self._read, period, settled_before=self._now() - SESSION_GAP)

    def log_shop_reply(self, user_id: str, text: str, *, by: str = "owner") -> str:
        """Record a message a person sent to the shopper on the shop's behalf (console reply-as-shop) as a turn
        of the conversation, so the history, the exports and the next reply's context include it. It has no
        shopper text; ``intent`` is ``shop_reply`` and ``slots`` name who wrote it. Returns the turn id."""
        return self.log_turn(user_id, "", text, intent="shop_reply", slots={"by": by})

    def mark_gaps_handled(self, queries: Sequence[str], *, theme: str, by: str = "owner") -> int:
        """Remember that the owner dealt with these searches (a demand-gap theme), so the theme stays hidden;
        queries are stored casefolded and a query marked twice keeps its first mark. Returns the count."""
        now = self._now()
        keys = sorted({" ".join(q.split()).casefold()[:500] for q in queries if q.strip()})
        marked = reports.handled_gap_queries(self._read) if keys else set()  # a second mark would be a duplicate key
        ops: list[Op] = [{"op": "insert", "table": "handled_gaps", "row": {
            "query": clean(k, 500), "theme": clean(theme), "handled_at": now, "handled_by": clean(by, 200)}}
            for k in keys if clean(k, 500) not in marked]
        if ops:
            self._write("mark_gaps_handled", ops)
        return len(keys)

    # ------------------------------------------------------------------------------ forgetting

    def forget_user(self, user_id: str) -> dict[str, int]:
        """Delete everything stored about one user ("forget me"): their turns and the products those turns
        showed, feedback, handoffs, watchlists, updates of theirs waiting in the polling inbox, conversation state
        and the user row; returns the rows deleted per table (``watches`` and ``update_inbox`` only when there were
        some).

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
                ("watches", delete(Watch).where(Watch.user_id == user_id)),
                ("update_inbox", delete(InboxUpdate).where(InboxUpdate.user_id == user_id)),
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
                if not is_down(exc):
                    raise
                self._mark_down(exc)
                raise StoreUnavailable(self._unavailable(exc)) from None
            for name in ("watches", "update_inbox"):  # named only when there were some, as before these tables
                if not counts.get(name):
                    counts.pop(name, None)
            for cache in (self._states, self._users, self._turns, self._touches):
                cache.discard(user_id)
        log.info("Forgot %s: %s", user_id, counts)
        return counts

    # ------------------------------------------------------------------------------ retention

    def prune(self, days: int, *, dry_run: bool = False) -> dict[str, int]:
        """Delete what is older than ``days`` days (SHOPBOT_RETENTION_DAYS): turns with the products they showed
        and the feedback on them (and feedback without a turn), released handoffs, handled updates, updates fetched
        that long ago and never answered (``update_inbox``, named only when there were some), button payloads, watches that expired or were cancelled that long ago, the conversation state of shoppers idle
        that long, and then those shoppers' user rows when nothing of theirs is left (no turn, watch, or open
        handoff). Returns the rows per table; ``dry_run`` counts them and deletes nothing.

        Like :meth:`forget_user` it needs the database (buffered rows are written first, so an old buffered
        turn is pruned too) and raises StoreUnavailable while it is down. Timestamps are the store's clock."""
        if days < 1:
            raise ValueError("Keep conversations for at least one day.")
        cutoff = self._now() - timedelta(days=days)
        with self._lock:
            with self._read():  # replays the buffer; StoreUnavailable (one sentence) when down
                pass
            old_turns = select(Turn.id).where(Turn.created_at < cutoff)
            idle = select(User.id).where(User.last_seen_at < cutoff)
            payloads = table(ButtonPayload)
            # order matters: children before the turns and users they point at
            steps: list[tuple[str, Any, Any]] = [
                ("impressions", Impression, or_(Impression.turn_id.in_(old_turns), Impression.created_at < cutoff)),
                ("feedback", Feedback, or_(Feedback.turn_id.in_(old_turns),
                                           (Feedback.turn_id.is_(None)) & (Feedback.created_at < cutoff))),
                ("turns", Turn, Turn.created_at < cutoff),
                ("handoffs", Handoff, Handoff.released_at.is_not(None) & (Handoff.released_at < cutoff)),
                ("handled_updates", HANDLED, HANDLED.c.handled_at < cutoff),
                ("update_inbox", INBOX, INBOX.c.received_at < cutoff),
                ("button_payloads", payloads, payloads.c.created_at < cutoff),
                ("watches", Watch, or_(Watch.expires_at < cutoff, Watch.cancelled_at < cutoff)),
                ("conversation_state", ConversationState, ConversationState.user_id.in_(idle)),
                ("users", User, User.last_seen_at < cutoff),
            ]
            counts: dict[str, int] = {}
            try:
                with Session(self.engine if dry_run else self._write_engine) as s, s.begin():
                    for name, target, cond in steps:
                        if name == "users":  # only shoppers of whom nothing else is left
                            cond = cond & User.handed_over.is_not(True) & ~exists().where(Turn.user_id == User.id) \
                                & ~exists().where(Watch.user_id == User.id) \
                                & ~exists().where(ConversationState.user_id == User.id)
                        if dry_run:
                            if name in ("conversation_state", "users"):
                                # nothing was deleted before them in a dry run: count what would be gone
                                cond = self._dry_cond(name, cond, cutoff)
                            n = s.execute(select(func.count()).select_from(target).where(cond)).scalar_one()
                        else:
                            result = s.execute(delete(target).where(cond).execution_options(synchronize_session=False))
                            n = getattr(result, "rowcount", 0) or 0
                        counts[name] = int(n)
            except Exception as exc:
                if not is_down(exc):
                    raise
                self._mark_down(exc)
                raise StoreUnavailable(self._unavailable(exc)) from None
            if not counts.get("update_inbox"):
                counts.pop("update_inbox", None)
            if not dry_run and any(counts.values()):
                for cache in (self._states, self._users, self._turns):  # caches of what may be gone
                    cache.drain()
        log.info("Pruned conversations older than %d days%s: %s", days, " (dry run)" if dry_run else "", counts)
        return counts

    @staticmethod
    def _dry_cond(name: str, cond: Any, cutoff: datetime) -> Any:
        """In a dry run the turns, watches and states are still there: a user is counted when everything of
        theirs would be pruned (every turn old, every watch long expired, the state of an idle user)."""
        if name == "conversation_state":
            return cond
        live_watch = exists().where(Watch.user_id == User.id, Watch.expires_at >= cutoff,
                                    or_(Watch.cancelled_at.is_(None), Watch.cancelled_at >= cutoff))
        return (User.last_seen_at < cutoff) & User.handed_over.is_not(True) \
            & ~exists().where(Turn.user_id == User.id, Turn.created_at >= cutoff) & ~live_watch

    # ------------------------------------------------------------------------------ watchlists
    # Written straight to the database, never through the buffer: a shopper told "I'll let you know" must be
    # told the truth when the database is down (StoreUnavailable), and a notifier must not announce twice.

    def _watch_tx(self) -> Session:
        self._ensure_schema()
        return Session(self._write_engine)

    def _watch_down(self, exc: Exception) -> StoreUnavailable:
        if not is_down(exc):
            raise exc
        self._mark_down(exc)
        return StoreUnavailable(self._unavailable(exc))

    def add_watch(self, user_id: str, *, channel: str, chat_id: str, language: str, query: str,
                  filters: Mapping[str, Any], expires_at: datetime, notified: Sequence[str] = ()) -> WatchRecord:
        """Store a watch (``notified``: SKUs the shopper saw when creating it, never announced later)."""
        now = self._now()
        record = WatchRecord(
            id=uuid.uuid4().hex, user_id=user_id, channel=clean(channel, 40) or "", chat_id=clean(chat_id, 160) or "",
            language=clean(language, 16) or "en", query=clean(query) or "", filters=dict(filters), created_at=now,
            expires_at=utc(expires_at), cancelled_at=None, notified_skus=tuple(sorted(set(notified))), pending_skus=())
        row = {"id": record.id, "user_id": user_id, "channel": record.channel, "chat_id": record.chat_id,
               "language": record.language, "query": record.query, "filters": dumps(record.filters), "created_at": now,
               "expires_at": record.expires_at, "cancelled_at": None, "notified_skus": dumps(list(record.notified_skus)),
               "pending_skus": "[]"}
        ensure = self._ensure_user_op(user_id, now)  # a new shopper's first turn may not be written yet
        try:
            with self._lock:
                self._ensure_schema()
                with self._write_engine.begin() as conn:
                    self._apply(conn, [ensure], replay=False)
                    conn.execute(table(Watch).insert().values(row))
        except Exception as exc:
            raise self._watch_down(exc) from None
        return record

    def watches(self, user_id: str) -> list[WatchRecord]:
        """One user's watches, oldest first, cancelled ones left out (expired ones stay until pruned)."""
        with self._read() as s:
            rows = s.execute(select(Watch).where(Watch.user_id == user_id, Watch.cancelled_at.is_(None))
                             .order_by(Watch.created_at, Watch.id)).scalars().all()
            return [_watch_record(r) for r in rows]

    def cancel_watch(self, user_id: str, watch_id: str) -> bool:
        """Cancel one of ``user_id``'s watches; False when it is not theirs, unknown or already cancelled."""
        try:
            with self._watch_tx() as s, s.begin():
                w = s.get(Watch, watch_id)
                if w is None or w.user_id != user_id or w.cancelled_at is not None:
                    return False
                w.cancelled_at = self._now()
                return True
        except Exception as exc:
            raise self._watch_down(exc) from None

    def due_watches(self, now: datetime | None = None) -> list[WatchRecord]:
        """Every watch to re-run after a reindex: not cancelled, not expired."""
        at = utc(now or self._now())
        with self._read() as s:
            rows = s.execute(select(Watch).where(Watch.cancelled_at.is_(None), Watch.expires_at > at)
                             .order_by(Watch.created_at, Watch.id)).scalars().all()
            return [_watch_record(r) for r in rows]

    def mark_watch_notified(self, watch_id: str, skus: Sequence[str], *, pending: bool = False) -> None:
        """Record that ``skus`` were announced for this watch (``pending``: they wait for the shopper's next turn)."""
        try:
            with self._watch_tx() as s, s.begin():
                w = s.get(Watch, watch_id)
                if w is None:
                    return
                w.notified_skus = dumps(sorted(set(json.loads(w.notified_skus or "[]")) | set(skus)))
                if pending:
                    w.pending_skus = dumps(sorted(set(json.loads(w.pending_skus or "[]")) | set(skus)))
        except Exception as exc:
            raise self._watch_down(exc) from None

    def take_pending_watches(self, user_id: str) -> list[WatchRecord]:
        """The user's watches with announcements waiting for their next turn (as they were), now cleared."""
        try:
            with self._watch_tx() as s, s.begin():
                rows = s.execute(select(Watch).where(Watch.user_id == user_id, Watch.pending_skus != "[]")
                                 .order_by(Watch.created_at, Watch.id)).scalars().all()
                out = [_watch_record(r) for r in rows]
                for r in rows:
                    r.pending_skus = "[]"
                return out
        except Exception as exc:
            raise self._watch_down(exc) from None

    def prune_watches(self, before: datetime) -> int:
        """Delete watches that expired or were cancelled before ``before``; returns how many."""
        at = utc(before)
        try:
            with self._watch_tx() as s, s.begin():
                result = s.execute(delete(Watch).where(or_(Watch.expires_at <= at, Watch.cancelled_at <= at))
                                   .execution_options(synchronize_session=False))
                return int(getattr(result, "rowcount", 0) or 0)
        except Exception as exc:
            raise self._watch_down(exc) from None

    # ------------------------------------------------------------------------- button payloads

    def save_payload(self, key: str, payload: str) -> None:
        """Keep a long button payload under ``key`` (the caller's hash of it, so a key never changes meaning).

        Idempotent, also across workers; buffered like any write while the database is down."""
        if self.load_payload(key) is not None:
            return
        with contextlib.suppress(IntegrityError):  # another worker stored the same key a moment ago
            self._write("save_payload", [{"op": "insert", "table": "button_payloads", "row": {
                "key": key, "payload": clean(payload) or "", "created_at": self._now()}}])

    def load_payload(self, key: str) -> str | None:
        """The payload saved under ``key``; None when unknown or while the database is down."""
        try:
            with self._read_rows(hot=True) as c:
                payloads = table(ButtonPayload)
                return c.execute(select(payloads.c.payload).where(payloads.c.key == key)).scalar()
        except StoreUnavailable:
            return None

    # ------------------------------------------------------------------------- handled updates

    def update_handled(self, update_id: int) -> bool:
        """Whether a worker has already answered this update (a queue delivers at least once; this makes it once).

        Raises StoreUnavailable while the database is down: unlike a turn's writes, this answer cannot
        come from a buffer, and guessing either way would lose or double a reply."""
        with self._read_rows(hot=True) as c:
            return c.execute(select(exists().where(HANDLED.c.update_id == int(update_id)))).scalar() is True

    def mark_update_handled(self, update_id: int) -> bool:
        """Record that the update was answered, in its own transaction and never through the buffer (a record
        that only this process could see would not stop another worker); True when this call recorded it,
        False when it was recorded already. Raises StoreUnavailable while the database is down."""
        row = {"update_id": int(update_id), "handled_at": self._now()}
        try:
            self._ensure_schema()
            with self._write_engine.begin() as conn:
                if conn.dialect.name in self.upsert_dialects:
                    insert = operations._dialect_insert(conn)
                    # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT
                    done = conn.execute(insert(HANDLED).values(row).on_conflict_do_nothing()
                                        .returning(HANDLED.c.update_id))
                    return done.first() is not None
                try:
                    with conn.begin_nested():
                        conn.execute(HANDLED.insert().values(row))
                except IntegrityError:
                    return False
                return True
        except Exception as exc:
            if not is_down(exc):
                raise
            self._mark_down(exc)
            raise StoreUnavailable(self._unavailable(exc)) from None

    # ------------------------------------------------------------------------- the polling inbox
    # Updates fetched by long polling, kept from the moment they are fetched: the Bot API counts an update as
    # delivered once the next poll asks for the ones after it, which python-telegram-bot does before answering it.
    # Straight to the database, never through the buffer, like the handled record.

    def keep_updates(self, updates: Sequence[tuple[int, str | None, str]]) -> set[int]:
        """Keep fetched updates, ``(update_id, whose (a user id) or None, the update as JSON)``, in one transaction;
        returns the ids among them that were answered already (the same update, Telegram sent it again), which
        are left as they are. A kept row with the same id and another body (Telegram reuses ids after a quiet
        week) is replaced. Raises StoreUnavailable while the database is down."""
        if not updates:
            return set()
        now = self._now()
        rows: dict[int, dict[str, Any]] = {}
        for u, who, body in updates:
            text = clean(body) or "{}"
            rows[int(u)] = {"update_id": int(u), "user_id": clean(who, 200), "body": text, "digest": _digest(text),
                            "received_at": now, "answered_at": None}
        try:
            self._ensure_schema()
            with self._write_engine.begin() as conn:
                kept = conn.execute(select(INBOX.c.update_id, INBOX.c.digest, INBOX.c.answered_at)
                                    .where(INBOX.c.update_id.in_(list(rows)))).all()
                answered: set[int] = set()
                for u, digest, answered_at in kept:
                    row = rows[int(u)]
                    if digest == row["digest"]:
                        if answered_at is not None:
                            answered.add(int(u))
                        del rows[int(u)]  # kept already
                    else:
                        conn.execute(delete(INBOX).where(INBOX.c.update_id == int(u)))
                if rows:
                    conn.execute(INBOX.insert(), list(rows.values()))
            return answered
        except Exception as exc:
            raise self._watch_down(exc) from None

    def unanswered_updates(self, since: datetime | None = None) -> list[tuple[int, str]]:
        """The kept updates not answered yet, oldest first, as ``(update_id, JSON)``; with ``since``, unanswered ones
        fetched before it are deleted instead. Raises StoreUnavailable while the database is down."""
        unanswered = INBOX.c.answered_at.is_(None)
        try:
            self._ensure_schema()
            with self._write_engine.begin() as conn:
                if since is not None:
                    conn.execute(delete(INBOX).where(unanswered, INBOX.c.received_at < utc(since)))
                return [(int(u), str(body)) for u, body in conn.execute(
                    select(INBOX.c.update_id, INBOX.c.body).where(unanswered)
                    .order_by(INBOX.c.received_at, INBOX.c.update_id)).all()]
        except Exception as exc:
            raise self._watch_down(exc) from None

    def finish_updates(self, update_ids: Sequence[int]) -> None:
        """Record the updates as answered, in handled_updates and in the inbox (whose row keeps the digest and drops
        the body), in one transaction. Raises StoreUnavailable while the database is down."""
        ids = sorted({int(u) for u in update_ids})
        if not ids:
            return
        now = self._now()
        try:
            self._ensure_schema()
            with self._write_engine.begin() as conn:
                rows = [{"update_id": u, "handled_at": now} for u in ids]
                if conn.dialect.name in self.upsert_dialects:
                    conn.execute(operations._dialect_insert(conn)(HANDLED).values(rows).on_conflict_do_nothing())
                else:  # no ON CONFLICT here: only the ones not recorded yet
                    known = set(conn.execute(select(HANDLED.c.update_id).where(HANDLED.c.update_id.in_(ids))).scalars())
                    if fresh := [r for r in rows if r["update_id"] not in known]:
                        conn.execute(HANDLED.insert(), fresh)
                conn.execute(INBOX.update().where(INBOX.c.update_id.in_(ids), INBOX.c.answered_at.is_(None))
                             .values(body=None, answered_at=now))
        except Exception as exc:
            raise self._watch_down(exc) from None

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
                rows = [(u, str(k), str(kind), utc(t)) for u, k, kind, t in
                        s.execute(fb.order_by(Feedback.created_at.desc()).limit(limit)).all()]
                rows += [(u, str(k), "details", utc(t)) for u, k, t in
                         s.execute(seen.order_by(Impression.created_at.desc()).limit(limit)).all()]
        except StoreUnavailable:
            return []
        rows.sort(key=lambda r: r[3])
        return rows


def _digest(body: str) -> str:
    """A hash of a kept update that does not depend on how its JSON was spaced or its keys ordered."""
    with contextlib.suppress(ValueError):
        body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8", "replace")).hexdigest()


def _watch_record(w: Watch) -> WatchRecord:
    filters = json.loads(w.filters or "{}")
    return WatchRecord(
        id=w.id, user_id=w.user_id, channel=w.channel, chat_id=w.chat_id, language=w.language, query=w.query,
        filters=filters if isinstance(filters, dict) else {}, created_at=utc(w.created_at), expires_at=utc(w.expires_at),
        cancelled_at=utc(w.cancelled_at) if w.cancelled_at is not None else None,
        notified_skus=tuple(json.loads(w.notified_skus or "[]")), pending_skus=tuple(json.loads(w.pending_skus or "[]")))
