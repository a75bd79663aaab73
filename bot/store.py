"""The SQL log and conversation state: users, turns, impressions, feedback, handoffs.

Everything the retraining code learns from is written here, so two rules shape the design:

* Nothing is lost when the database is down. Every write is expressed as a list of plain *operations*
  (insert this row, upsert that one) with ids and timestamps made by us, not by the database. When
  the database cannot be reached, the operations are appended to a JSON-lines file on disk (fsync'ed)
  and replayed, in order and idempotently, before the next write that succeeds. Ids made client-side
  let a buffered impression point at a buffered turn.
* One code path for SQLite (the embedded default) and PostgreSQL (``SHOPBOT_DATABASE_URL``); the
  schema comes from Alembic migrations (``bot/migrations``), run by :meth:`Store.migrate`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import uuid
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    func,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

__all__ = ["FEEDBACK_KINDS", "Store", "StoreUnavailable", "TurnRecord"]

log = logging.getLogger(__name__)

FEEDBACK_KINDS = ("thumb_up", "thumb_down", "click", "add_to_cart", "purchase", "not_what_i_meant", "rating")
SESSION_GAP = timedelta(minutes=30)
SEARCH_INTENTS = ("search", "refine", "more")


class StoreUnavailable(RuntimeError):
    """The database cannot be reached for a read that has no fallback (stats, export)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything we write is UTC
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def _clean(text: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; nothing else is altered
    return None if text is None else text.replace("\x00", "")


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
    session_id: Mapped[str] = mapped_column(String(32))
    handed_over: Mapped[bool] = mapped_column(Boolean, default=False)
    handed_over_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handoff_reason: Mapped[str | None] = mapped_column(Text)


class ConversationState(Base):
    __tablename__ = "conversation_state"
    user_id: Mapped[str] = mapped_column(String(200), ForeignKey("users.id"), primary_key=True)
    state: Mapped[str] = mapped_column(Text)
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
    query: Mapped[str | None] = mapped_column(Text)
    slots: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    model_versions: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
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


_MODELS: dict[str, type[Base]] = {m.__tablename__: m for m in (User, ConversationState, Turn, Impression, Feedback, Handoff)}
_DATETIME_COLUMNS = {"created_at", "last_seen_at", "updated_at", "handed_over_at", "released_at"}


@dataclass
class TurnRecord:
    """One turn as the dialogue manager reports it."""

    turn_id: str
    user_id: str
    text_in: str
    text_out: str
    intent: str | None = None
    confidence: float | None = None
    language: str | None = None
    latency_ms: float | None = None
    slots: Mapping[str, Any] | None = None
    shown: Sequence[tuple[str, int, float | None]] = ()
    query: str | None = None
    error: str | None = None
    model_versions: Mapping[str, str] | None = None


Op = dict[str, Any]  # {"op": "insert" | "upsert" | "release", "table": ..., "row": {...}}


# ------------------------------------------------------------------------------------------- store


class Store:
    """Repository over one database URL, with an on-disk buffer for the times it is down."""

    def __init__(
        self,
        url: str,
        buffer_dir: str | Path,
        *,
        migrate: bool = True,
        clock: Callable[[], datetime] = utcnow,
        session_gap: timedelta = SESSION_GAP,
        versions: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url
        self.clock = clock
        self.session_gap = session_gap
        self.versions = dict(versions or {})
        self.buffer_path = Path(buffer_dir) / "pending.jsonl"
        self._lock = threading.RLock()
        self._states: OrderedDict[str, dict[str, Any]] = OrderedDict()  # fallback while the DB is down
        self._users: dict[str, tuple[str, datetime, bool]] = {}  # user -> (session, last seen, handed over)
        self.engine = self._make_engine(url)
        self.down = False
        self._migrated = not migrate
        if migrate:
            self._try_migrate()

    def _try_migrate(self) -> bool:
        """Migrate now, or later when the database is down at start-up (the bot starts anyway)."""
        try:
            self.migrate()
            self._migrated = True
        except (OperationalError, DBAPIError) as exc:
            if not _is_connection_error(exc):
                raise
            log.warning("The database is unreachable at start-up; rows are buffered in %s until it is back.",
                        self.buffer_path)
            self.down = True
        return self._migrated

    @staticmethod
    def _make_engine(url: str) -> Engine:
        if url.startswith("sqlite"):
            db = url.split(":///", 1)[-1]
            if db and db != ":memory:":
                with contextlib.suppress(OSError):  # connecting fails below; the store buffers until it works
                    Path(db).parent.mkdir(parents=True, exist_ok=True)
            # pooled connections: a new SQLite connection per call costs ~10 ms (WAL pragma), a pooled one 0.1
            eng = create_engine(url, pool_pre_ping=True, connect_args={"timeout": 10, "check_same_thread": False})

            from sqlalchemy import event

            @event.listens_for(eng, "connect")
            def _pragmas(conn: Any, _record: Any) -> None:
                cur = conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA busy_timeout=10000")
                cur.close()

            return eng
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------------------ writing

    def _apply(self, s: Session, ops: Sequence[Op], *, idempotent: bool) -> None:
        for op in ops:
            model = _MODELS[op["table"]]
            row = {k: (datetime.fromisoformat(v) if k in _DATETIME_COLUMNS and isinstance(v, str) else v)
                   for k, v in op["row"].items()}
            if op["op"] == "insert":
                if idempotent:
                    pk = row[model.__mapper__.primary_key[0].name]
                    if s.get(model, pk) is not None:
                        continue
                s.add(model(**row))
            elif op["op"] == "upsert":
                s.merge(model(**row))
            elif op["op"] == "upsert_user_flag":
                s.execute(update(User).where(User.id == row["id"]).values(
                    handed_over=row["handed_over"], handed_over_at=row["handed_over_at"], handoff_reason=row["handoff_reason"]))
            elif op["op"] == "release":
                s.execute(update(Handoff).where(Handoff.user_id == row["user_id"], Handoff.released_at.is_(None))
                          .values(released_at=row["at"] if isinstance(row["at"], datetime) else datetime.fromisoformat(row["at"]),
                                  released_by=row["by"]))
                s.execute(update(User).where(User.id == row["user_id"]).values(handed_over=False))
            s.flush()

    def _write(self, ops: Sequence[Op]) -> bool:
        """Apply ``ops`` in one transaction; when the database is down, append them to the buffer."""
        with self._lock:
            try:
                if not self._migrated:
                    self.migrate()
                    self._migrated = True
                if self._pending():
                    self._replay()
                with Session(self.engine) as s, s.begin():
                    self._apply(s, ops, idempotent=False)
                if self.down:
                    log.warning("The database is reachable again; buffered rows were written.")
                self.down = False
                return True
            except (OperationalError, DBAPIError) as exc:
                if not _is_connection_error(exc):
                    raise
                self._buffer(ops)
                if not self.down:
                    log.warning("The database is unreachable (%s); rows are buffered in %s until it is back.",
                                str(exc.orig).strip().splitlines()[0] if exc.orig else exc, self.buffer_path)
                self.down = True
                return False

    def _pending(self) -> bool:
        try:
            return self.buffer_path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def _buffer(self, ops: Sequence[Op]) -> None:
        self.buffer_path.parent.mkdir(parents=True, exist_ok=True)
        with self.buffer_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(list(ops), default=_json_default, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _replay(self) -> int:
        lines = [ln for ln in self.buffer_path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        batches = []
        for n, ln in enumerate(lines, 1):
            try:
                batches.append(json.loads(ln))
            except json.JSONDecodeError:
                # a line cut by a crash mid-write: keep it aside rather than lose the rest
                log.warning("Buffer line %d is damaged; it was moved to %s.", n, self.buffer_path.with_suffix(".bad"))
                with self.buffer_path.with_suffix(".bad").open("a", encoding="utf-8") as bad:
                    bad.write(ln + "\n")
        with Session(self.engine) as s, s.begin():
            for ops in batches:
                self._apply(s, ops, idempotent=True)
        tmp = self.buffer_path.with_suffix(".tmp")
        tmp.write_text("", encoding="utf-8")
        os.replace(tmp, self.buffer_path)
        return len(batches)

    def flush(self) -> int:
        """Write buffered rows now; returns how many buffered writes went in (0 when none or still down)."""
        with self._lock:
            if not self._pending():
                return 0
            try:
                if not self._migrated:
                    self.migrate()
                    self._migrated = True
                n = self._replay()
                self.down = False
                return n
            except (OperationalError, DBAPIError) as exc:
                if not _is_connection_error(exc):
                    raise
                self.down = True
                return 0

    def pending(self) -> int:
        """Buffered writes waiting for the database."""
        if not self._pending():
            return 0
        return sum(1 for ln in self.buffer_path.read_text(encoding="utf-8").splitlines() if ln.strip())

    @contextmanager
    def _read(self) -> Iterator[Session]:
        """A session for reads that have no offline fallback: a clear sentence when the DB is down."""
        try:
            with Session(self.engine) as s:
                yield s
        except (OperationalError, DBAPIError) as exc:
            if not _is_connection_error(exc):
                raise
            raise StoreUnavailable(
                f"The database at {self._safe_url()} cannot be reached; start it (or fix SHOPBOT_DATABASE_URL) and try again."
            ) from None

    def _safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    # --------------------------------------------------------------------------- the dialogue

    def touch(self, channel: str, external_id: str, language: str | None = None) -> tuple[str, bool]:
        """Record that a user wrote; returns (user id, handed over?). Starts a new session after a pause."""
        user_id = f"{channel}:{external_id}"[:200]
        now = self.clock()
        row: dict[str, Any] | None = None
        try:
            with Session(self.engine) as s:
                u = s.get(User, user_id)
                if u is not None:
                    row = {"session_id": u.session_id, "last_seen_at": _aware(u.last_seen_at), "handed_over": u.handed_over,
                           "created_at": _aware(u.created_at), "handed_over_at": _aware(u.handed_over_at),
                           "handoff_reason": u.handoff_reason, "language": u.language}
        except (OperationalError, DBAPIError) as exc:
            if not _is_connection_error(exc):
                raise
            cached = self._users.get(user_id)
            if cached:
                row = {"session_id": cached[0], "last_seen_at": cached[1], "handed_over": cached[2]}
        if row is None:
            session, handed, created = uuid.uuid4().hex, False, now
            extra: dict[str, Any] = {"handed_over_at": None, "handoff_reason": None}
        else:
            session = row["session_id"]
            if now - row["last_seen_at"] > self.session_gap:
                session = uuid.uuid4().hex
            handed, created = bool(row["handed_over"]), row.get("created_at") or now
            extra = {k: row[k] for k in ("handed_over_at", "handoff_reason") if k in row}
            language = language or row.get("language")
        self._users[user_id] = (session, now, handed)
        self._write([{"op": "upsert", "table": "users", "row": {
            "id": user_id, "channel": channel[:40], "external_id": external_id[:160], "language": language,
            "created_at": created, "last_seen_at": now, "session_id": session, "handed_over": handed, **extra}}])
        return user_id, handed

    def session_of(self, user_id: str) -> str:
        cached = self._users.get(user_id)
        return cached[0] if cached else uuid.uuid4().hex

    def load_state(self, user_id: str) -> dict[str, Any] | None:
        try:
            with Session(self.engine) as s:
                row = s.get(ConversationState, user_id)
                state = json.loads(row.state) if row is not None else None
        except (OperationalError, DBAPIError) as exc:
            if not _is_connection_error(exc):
                raise
            return self._states.get(user_id)
        if self._pending() and user_id in self._states:
            return self._states[user_id]  # newer than the database's copy until the buffer is replayed
        return state  # type: ignore[no-any-return]

    def save_state(self, user_id: str, state: Mapping[str, Any]) -> None:
        self._states[user_id] = dict(state)
        self._states.move_to_end(user_id)
        while len(self._states) > 10_000:
            self._states.popitem(last=False)
        self._write([{"op": "upsert", "table": "conversation_state", "row": {
            "user_id": user_id, "state": json.dumps(state, ensure_ascii=False, default=str), "updated_at": self.clock()}}])

    def log(self, turn: TurnRecord | Any) -> str:
        """Write one turn and the products it showed, in one transaction."""
        now = self.clock()
        versions = {**self.versions, **dict(getattr(turn, "model_versions", None) or {})}
        ops: list[Op] = [{"op": "insert", "table": "turns", "row": {
            "id": turn.turn_id, "user_id": turn.user_id, "session_id": self.session_of(turn.user_id),
            "created_at": now, "channel": turn.user_id.split(":", 1)[0][:40], "language": turn.language,
            "text_in": _clean(turn.text_in) or "", "text_out": _clean(turn.text_out) or "", "intent": turn.intent,
            "confidence": turn.confidence, "query": _clean(turn.query), "latency_ms": turn.latency_ms,
            "slots": json.dumps(turn.slots or {}, ensure_ascii=False, default=str),
            "model_versions": json.dumps(versions, sort_keys=True), "error": _clean(turn.error)}}]
        for sku, rank, score in turn.shown:
            ops.append({"op": "insert", "table": "impressions", "row": {
                "id": uuid.uuid4().hex, "turn_id": turn.turn_id, "user_id": turn.user_id, "query": _clean(turn.query),
                "sku": sku, "rank": int(rank), "score": score, "created_at": now}})
        self._write(ops)
        return str(turn.turn_id)

    def feedback(self, user_id: str, kind: str, *, turn_id: str | None = None, sku: str | None = None,
                 value: float | None = None, comment: str | None = None) -> str:
        if kind not in FEEDBACK_KINDS:
            raise ValueError(f"Unknown feedback kind {kind!r}; use one of {', '.join(FEEDBACK_KINDS)}.")
        fid = uuid.uuid4().hex
        self._write([{"op": "insert", "table": "feedback", "row": {
            "id": fid, "user_id": user_id, "turn_id": turn_id, "sku": sku, "kind": kind, "value": value,
            "comment": _clean(comment), "created_at": self.clock()}}])
        return fid

    def handoff(self, user_id: str, reason: str) -> None:
        """Hand the conversation to a person: the bot stays quiet for this user until released."""
        now = self.clock()
        cached = self._users.get(user_id)
        if cached:
            self._users[user_id] = (cached[0], cached[1], True)
        self._write([
            {"op": "insert", "table": "handoffs", "row": {"id": uuid.uuid4().hex, "user_id": user_id,
                                                          "reason": _clean(reason), "created_at": now}},
            {"op": "upsert_user_flag", "table": "users", "row": {"id": user_id, "handed_over": True,
                                                                 "handed_over_at": now, "handoff_reason": _clean(reason)}},
        ])

    def release(self, user_id: str, by: str = "owner") -> bool:
        """Give the conversation back to the bot; False when it was not handed over."""
        with self._read() as s:
            u = s.get(User, user_id)
            if u is None or not u.handed_over:
                return False
        cached = self._users.get(user_id)
        if cached:
            self._users[user_id] = (cached[0], cached[1], False)
        self._write([{"op": "release", "table": "handoffs", "row": {"user_id": user_id, "by": by, "at": self.clock()}}])
        return True

    def is_handed_over(self, user_id: str) -> bool:
        try:
            with Session(self.engine) as s:
                u = s.get(User, user_id)
                return bool(u and u.handed_over)
        except (OperationalError, DBAPIError) as exc:
            if not _is_connection_error(exc):
                raise
            cached = self._users.get(user_id)
            return bool(cached and cached[2])

    # ------------------------------------------------------------------------------ reading

    def open_handoffs(self) -> list[dict[str, Any]]:
        with self._read() as s:
            rows = s.execute(select(Handoff).where(Handoff.released_at.is_(None)).order_by(Handoff.created_at)).scalars().all()
            out = []
            for h in rows:
                last = s.execute(select(Turn.text_in).where(Turn.user_id == h.user_id).order_by(Turn.created_at.desc()).limit(1)).scalar()
                out.append({"user_id": h.user_id, "reason": h.reason, "since": _aware(h.created_at), "last_message": last})
            return out

    def recent_turns(self, user_id: str, n: int = 10) -> list[dict[str, Any]]:
        with self._read() as s:
            rows = s.execute(select(Turn).where(Turn.user_id == user_id).order_by(Turn.created_at.desc()).limit(n)).scalars().all()
            return [{"turn_id": t.id, "created_at": _aware(t.created_at), "text_in": t.text_in, "text_out": t.text_out,
                     "intent": t.intent, "query": t.query} for t in reversed(rows)]

    def export_feedback(self, path: str | Path) -> int:
        """Training rows for re-ranking and recommendation: one JSON line per turn that showed products
        or received feedback, oldest first. Returns the number of lines."""
        n = 0
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with self._read() as s, out.open("w", encoding="utf-8") as fh:
            shown_ids = select(Impression.turn_id)
            fb_ids = select(Feedback.turn_id).where(Feedback.turn_id.is_not(None))
            turns = s.execute(select(Turn).where(Turn.id.in_(shown_ids) | Turn.id.in_(fb_ids))
                              .order_by(Turn.created_at, Turn.id)).scalars()
            batch: list[Turn] = []
            for t in turns:
                batch.append(t)
                if len(batch) == 500:
                    n += self._export_batch(s, batch, fh)
                    batch = []
            if batch:
                n += self._export_batch(s, batch, fh)
        return n

    @staticmethod
    def _export_batch(s: Session, turns: Sequence[Turn], fh: Any) -> int:
        ids = [t.id for t in turns]
        shown: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for i in s.execute(select(Impression).where(Impression.turn_id.in_(ids)).order_by(Impression.rank)).scalars():
            shown[i.turn_id].append({"sku": i.sku, "rank": i.rank, "score": i.score})
        fb: dict[str, list[Feedback]] = defaultdict(list)
        for f in s.execute(select(Feedback).where(Feedback.turn_id.in_(ids)).order_by(Feedback.created_at, Feedback.id)).scalars():
            fb[f.turn_id or ""].append(f)
        for t in turns:
            fbs = fb.get(t.id, [])
            rec = {
                "turn_id": t.id, "user_id": t.user_id, "session_id": t.session_id,
                "created_at": _aware(t.created_at).isoformat(),  # type: ignore[union-attr]
                "language": t.language, "text_in": t.text_in, "query": t.query, "intent": t.intent, "reply": t.text_out,
                "shown": shown.get(t.id, []),
                "clicks": [f.sku for f in fbs if f.kind == "click"],
                "thumbs": [{"sku": f.sku, "kind": f.kind} for f in fbs if f.kind in ("thumb_up", "thumb_down", "not_what_i_meant")],
                "purchases": [f.sku for f in fbs if f.kind == "purchase"],
                "add_to_cart": [f.sku for f in fbs if f.kind == "add_to_cart"],
                "model_versions": json.loads(t.model_versions or "{}"),
            }
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        return len(turns)

    def stats(self, top: int = 10) -> dict[str, Any]:
        with self._read() as s:
            turns = s.execute(select(func.count()).select_from(Turn)).scalar_one()
            users = s.execute(select(func.count()).select_from(User)).scalar_one()
            sessions = s.execute(select(func.count(func.distinct(Turn.session_id)))).scalar_one()
            searches = s.execute(select(Turn.query, Turn.id).where(Turn.intent.in_(SEARCH_INTENTS), Turn.query.is_not(None))).all()
            with_results = set(s.execute(select(Impression.turn_id).distinct()).scalars())
            kinds = Counter(dict(s.execute(select(Feedback.kind, func.count()).group_by(Feedback.kind)).all()))
            open_handoffs = s.execute(select(func.count()).select_from(Handoff).where(Handoff.released_at.is_(None))).scalar_one()
            latency = [float(v) for (v,) in s.execute(select(Turn.latency_ms).where(Turn.latency_ms.is_not(None))) if v is not None]
        queries = Counter(q.lower() for q, _ in searches if q)
        zero = Counter(q.lower() for q, tid in searches if q and tid not in with_results)
        up, down = kinds.get("thumb_up", 0), kinds.get("thumb_down", 0) + kinds.get("not_what_i_meant", 0)
        latency.sort()
        return {
            "turns": turns, "users": users, "sessions": sessions,
            "top_queries": queries.most_common(top), "zero_result_queries": zero.most_common(top),
            "feedback": dict(kinds), "thumbs_up": up, "thumbs_down": down,
            "thumbs_ratio": round(up / (up + down), 3) if up + down else None,
            "open_handoffs": open_handoffs,
            "latency_ms_p50": round(latency[len(latency) // 2], 1) if latency else None,
            "pending_writes": self.pending(),
        }


def _is_connection_error(exc: DBAPIError) -> bool:
    """Errors that mean "the database is not there" (buffer and carry on), not a bug (raise)."""
    if exc.connection_invalidated or isinstance(exc, OperationalError):
        return True
    text = str(exc.orig or exc).lower()
    return any(w in text for w in ("connection", "could not connect", "server closed", "unable to open", "terminat"))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot buffer {type(value).__name__}")
