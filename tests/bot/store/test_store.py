"""The SQL store against real SQLite and the real PostgreSQL on 127.0.0.1:5432 (marker ``postgres``;
skipped when the server is unreachable). Each PostgreSQL test gets its own schema, dropped afterwards."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

import bot.store
from bot.store.database import Store
from bot.store.records import ReportedAction, StoreUnavailable, TurnInfo, TurnRecord, UserInfo
from bot.store.schema import Base, Feedback, Handoff, Impression, Turn, User
from tests.conftest import _pg_url
from tests.fakes.clock import Clock


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'shop.db'}"
    return _pg_url(request.getfixturevalue("pg_schema"))


@pytest.fixture
def store(url: str, tmp_path: Path) -> Iterator[Store]:
    s = Store(url, tmp_path / "buffer", clock=Clock(), retry_interval=0, versions={"ranker": "r1"})
    yield s
    s.close()


def _turn(store: Store, user: str, n: int, *, intent: str = "search", query: str | None = "running shoes",
          shown: tuple[str, ...] = ("A", "B")) -> str:
    return store.log(TurnRecord(f"turn{n:04d}", user, f"message {n}", f"reply {n}", intent=intent, query=query,
                                shown=[(sku, i + 1, 1.0 / (i + 1)) for i, sku in enumerate(shown)], latency_ms=5.0 + n))


M = TypeVar("M", bound=Base)


def _rows(store: Store, model: type[M]) -> list[M]:
    """Rows in the order they were written (impressions of one turn share a timestamp: by rank)."""
    order = [getattr(model, "created_at"), *([Impression.rank] if model is Impression else []), getattr(model, "id")]  # noqa: B009
    with Session(store.engine) as s:
        return list(s.execute(select(model).order_by(*order)).scalars())


def _export(store: Store, path: Path) -> list[dict[str, Any]]:
    store.export_feedback(path)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ---------------------------------------------------------------------------------- both backends


def test_migrate_creates_the_schema_and_runs_twice(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store.migrate()
    store.migrate()  # nothing left to do, no error
    with store.engine.connect() as conn:
        insp = inspect(conn)
        assert {"users", "conversation_state", "turns", "impressions", "feedback", "handoffs", "alembic_version"} <= set(
            insp.get_table_names())
        indexed = {(t, tuple(ix["column_names"])) for t in ("turns", "impressions", "feedback") for ix in insp.get_indexes(t)}
        assert {("turns", ("user_id", "created_at")), ("impressions", ("turn_id",)), ("impressions", ("sku",)),
                ("feedback", ("user_id",)), ("feedback", ("sku",))} <= indexed
        head = max(p.name.split("_")[0] for p in (Path(bot.store.__file__).parent / "migrations" / "versions").glob("0*.py"))
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []  # migration matches the models


def test_round_trip_of_users_turns_impressions_and_feedback(store: Store) -> None:
    info = store.touch_user("telegram", "42", "en")
    assert isinstance(info, UserInfo) and (info.user_id, info.handed_over) == ("telegram:42", False)
    tid = store.log_turn(info.user_id, "red coat under 80", "Here are 2 coats.", intent="search", confidence=0.93,
                         slots={"color": "red", "max_price": 80}, language="en", latency_ms=12.5, query="red coat",
                         model_versions={"intent": "i3", "llm": "qwen"}, shown=[("COA-1", 1, 0.9), ("COA-3", 2, None)])
    assert len(tid) == 32
    assert store.log_impressions(tid, info.user_id, "red coat", [("COA-9", 3, 0.1)]) == 1
    fb = store.log_feedback(info.user_id, "rating", turn_id=tid, sku="COA-1", value=4.5, comment="nice")
    store.log_feedback(info.user_id, "click", turn_id=tid, sku="COA-3")

    [t] = _rows(store, Turn)
    assert isinstance(t, Turn)
    assert (t.id, t.user_id, t.session_id, t.channel, t.language, t.intent) == (tid, "telegram:42", info.session_id,
                                                                                 "telegram", "en", "search")
    assert (t.confidence, t.latency_ms, t.query, t.error) == (0.93, 12.5, "red coat", None)
    assert json.loads(t.slots or "") == {"color": "red", "max_price": 80}
    assert json.loads(t.model_versions or "") == {"intent": "i3", "llm": "qwen", "ranker": "r1"}  # store's versions merged
    assert [(i.sku, i.rank, i.score) for i in _rows(store, Impression)] == [
        ("COA-1", 1, 0.9), ("COA-3", 2, None), ("COA-9", 3, 0.1)]
    fbs = _rows(store, Feedback)
    assert (fbs[0].id, fbs[0].kind, fbs[0].sku, fbs[0].value, fbs[0].comment) == (fb, "rating", "COA-1", 4.5, "nice")
    [u] = _rows(store, User)
    assert isinstance(u, User) and (u.channel, u.external_id, u.language) == ("telegram", "42", "en")

    last = store.last_turn(info.user_id)
    assert isinstance(last, TurnInfo) and last.turn_id == tid and last.text_out == "Here are 2 coats."
    assert last.created_at.tzinfo is not None
    t2 = store.log_turn(info.user_id, "thanks", "You're welcome.", intent="thanks")
    assert [x.turn_id for x in store.recent_turns(info.user_id, 5)] == [t2, tid]  # newest first
    assert store.last_turn("telegram:nobody") is None


def test_a_turn_for_a_user_never_touched_still_goes_in(store: Store) -> None:
    tid = store.log_turn("rasa:ann", "hello", "hi", intent="greet")
    store.save_state("rasa:ann", {"lang": "en"})
    last = store.last_turn("rasa:ann")
    assert last is not None and last.turn_id == tid
    [u] = _rows(store, User)
    assert isinstance(u, User) and (u.channel, u.external_id) == ("rasa", "ann")


def test_a_turn_is_one_write_touch_turn_impressions_and_state(store: Store) -> None:
    """start_turn reads the user and the state at once; the touch waits for the turn's log line, and the
    turn, what it showed and the new state go in with it, in one transaction."""
    clock = store.clock
    assert isinstance(clock, Clock)
    assert store.start_turn("telegram", "42", "en") == ("telegram:42", False, None)
    assert _rows(store, User) == []  # nothing written yet
    writes: list[str] = []
    write = store._write
    store._write = lambda method, ops: writes.append(method) or write(method, ops)  # type: ignore[method-assign,func-returns-value]
    store.log(TurnRecord("turn0001", "telegram:42", "red coat", "2 coats", intent="search", query="red coat",
                         shown=[("COA-1", 1, None), ("COA-3", 2, None)], state={"query": "red coat", "shown": ["COA-1", "COA-3"]}))
    assert writes == ["log_turn"]
    [u] = _rows(store, User)
    assert isinstance(u, User) and (u.channel, u.external_id, u.language) == ("telegram", "42", "en")
    [t] = _rows(store, Turn)
    assert isinstance(t, Turn) and t.session_id == u.session_id
    assert [i.sku for i in _rows(store, Impression)] == ["COA-1", "COA-3"]
    seen = u.last_seen_at

    # the next turn: same session, the state as saved, the user seen again
    other = Store(store.url, Path(store.buffer_dir), clock=clock, migrate=False)  # another worker reads the same
    assert other.start_turn("telegram", "42", "zh") == ("telegram:42", False, {"query": "red coat", "shown": ["COA-1", "COA-3"]})
    other.log(TurnRecord("turn0002", "telegram:42", "第二个", "…", intent="details", state={"query": "red coat", "focus": "COA-3"}))
    [u] = _rows(other, User)
    assert isinstance(u, User) and u.language == "zh" and u.last_seen_at > seen and u.session_id == t.session_id
    assert store.load_state("telegram:42") == {"query": "red coat", "focus": "COA-3"}
    assert [x.session_id for x in _rows(store, Turn)] == [t.session_id] * 2

    # an older touch replayed late never moves the user back in time; an older state never replaces a newer one
    old = clock.now - timedelta(minutes=5)
    store._write("replay", [{"op": "touch", "row": {"id": "telegram:42", "channel": "telegram", "external_id": "42",
                                                     "language": "en", "at": old, "session_id": "old"}},
                            {"op": "state", "row": {"user_id": "telegram:42", "state": "{}", "at": old}}])
    [u] = _rows(store, User)
    assert isinstance(u, User) and u.session_id == t.session_id and u.language == "zh"
    assert store.load_state("telegram:42") == {"query": "red coat", "focus": "COA-3"}

    # a handed-over shopper is told at the start of the turn; a turn never logged still counts as seen at close
    store.handoff("telegram:42", "asked for a person")
    assert store.start_turn("telegram", "42")[1] is True
    assert store.start_turn("telegram", "43") == ("telegram:43", False, None)
    other.close()
    store.close()
    assert {x.id for x in _rows(store, User)} == {"telegram:42", "telegram:43"}


def test_databases_without_upserts_get_the_same_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The read-then-write path other databases take agrees with the upserts (replay included)."""
    monkeypatch.setattr(Store, "upsert_dialects", ())
    _check_replay_is_idempotent_and_keeps_the_order_of_handoffs(tmp_path / "replay")
    store = Store(f"sqlite:///{tmp_path / 'shop.db'}", tmp_path / "buffer", clock=Clock())
    clock = store.clock
    assert isinstance(clock, Clock)
    user, _, _ = store.start_turn("cli", "u", "en")
    store.log(TurnRecord("turn0001", user, "hi", "hello", state={"n": 1}))
    old = clock.now - timedelta(minutes=5)
    store._write("replay", [{"op": "touch", "row": {"id": user, "at": old, "session_id": "old", "language": "zh"}},
                            {"op": "state", "row": {"user_id": user, "state": "{}", "at": old}}])
    assert store.start_turn("cli", "u", "") == (user, False, {"n": 1})
    store.log(TurnRecord("turn0002", user, "more", "…", state={"n": 2}))
    [u] = _rows(store, User)
    assert isinstance(u, User) and u.session_id != "old" and u.language == "en"
    assert store.load_state(user) == {"n": 2} and len(_rows(store, Turn)) == 2
    store.close()


def test_a_turn_while_the_database_is_down_is_one_buffered_line(tmp_path: Path) -> None:
    store, db_dir = _sqlite(tmp_path)
    user, _, _ = store.start_turn("cli", "u")
    store.log(TurnRecord("turn0001", user, "hi", "hello", intent="greet", state={"n": 1}))
    moved = _take_down(store, db_dir)
    assert store.start_turn("cli", "u") == (user, False, {"n": 1})  # this process's copy
    store.log(TurnRecord("turn0002", user, "shoes", "2 shoes", intent="search", shown=[("A", 1, None)], state={"n": 2}))
    assert store.start_turn("cli", "u") == (user, False, {"n": 2})
    store.log(TurnRecord("turn0003", user, "thanks", "welcome", intent="thanks", state={"n": 3}))
    assert store.down and store.pending() == 2
    shutil.move(moved, db_dir)
    assert store.flush() == 2
    assert [t.id for t in _rows(store, Turn)] == ["turn0001", "turn0002", "turn0003"]
    assert [i.turn_id for i in _rows(store, Impression)] == ["turn0002"]
    fresh = Store(f"sqlite:///{db_dir / 'shop.db'}", tmp_path / "other-buffer")
    assert fresh.start_turn("cli", "u") == (user, False, {"n": 3})
    fresh.close()
    store.close()


def test_unknown_feedback_kind_and_bad_rows_are_refused(store: Store) -> None:
    user = store.touch_user("cli", "u").user_id
    with pytest.raises(ValueError, match=r"^Unknown feedback kind 'love'; use one of thumb_up, .*rating\.$"):
        store.log_feedback(user, "love")
    with pytest.raises(ValueError, match="rating needs a numeric value"):
        store.log_feedback(user, "rating")
    with pytest.raises(ValueError, match="ranks start at 1"):
        store.log_turn(user, "x", "y", shown=[("A", 0, None)])
    assert _rows(store, Feedback) == [] and _rows(store, Turn) == []


def test_state_survives_a_restart(url: str, tmp_path: Path) -> None:
    a = Store(url, tmp_path / "buffer")
    user = a.touch_user("cli", "u").user_id
    state = {"query": "red coat", "shown": ["COA-1"], "page": 2, "lang": "zh", "note": "第二个"}
    a.save_state(user, state)
    a.save_state(user, {**state, "page": 3})
    a.close()
    b = Store(url, tmp_path / "buffer")  # a new process on the same database
    assert b.load_state(user) == {**state, "page": 3}
    assert b.load_state("cli:nobody") is None
    b.close()


def test_a_new_session_starts_after_half_an_hour_of_silence(store: Store) -> None:
    clock = store.clock
    assert isinstance(clock, Clock)
    s1 = store.touch_user("cli", "u").session_id
    _turn(store, "cli:u", 1)
    clock.now += timedelta(minutes=29)
    assert store.touch_user("cli", "u").session_id == s1
    _turn(store, "cli:u", 2)
    clock.now += timedelta(minutes=31)
    s2 = store.touch_user("cli", "u").session_id
    assert s2 != s1
    _turn(store, "cli:u", 3)
    assert [t.session_id for t in _rows(store, Turn)] == [s1, s1, s2]
    assert store.stats()["sessions"] == 2
    other = Store(store.url, Path(store.buffer_dir), clock=clock, migrate=False)  # another worker agrees
    assert other.touch_user("cli", "u").session_id == s2
    other.close()


def test_handoff_release_and_open_handoffs(store: Store) -> None:
    user = store.touch_user("telegram", "7").user_id
    _turn(store, user, 1, intent="contact_human_agent", query=None, shown=())
    store.handoff(user, "asked for a person")
    assert store.is_handed_over(user)
    assert store.touch_user("telegram", "7").handed_over is True
    _turn(store, user, 2, intent="handed_over", query=None, shown=())
    [h] = store.open_handoffs()
    assert (h["user_id"], h["reason"], h["last_message"]) == (user, "asked for a person", "message 2")
    assert h["since"].tzinfo is not None
    assert store.stats()["open_handoffs"] == 1
    assert store.release(user, by="alice") is True
    assert store.release(user) is False
    assert not store.is_handed_over(user) and store.open_handoffs() == []
    assert store.touch_user("telegram", "7").handed_over is False
    [row] = _rows(store, Handoff)
    assert isinstance(row, Handoff) and row.released_by == "alice" and row.released_at is not None
    assert store.release("telegram:stranger") is False


def test_export_feedback_is_complete_and_deterministic(store: Store, tmp_path: Path) -> None:
    user = store.touch_user("telegram", "42", "en").user_id
    t1 = _turn(store, user, 1, shown=("SKU-1", "SKU-2", "SKU-3"))
    t2 = _turn(store, user, 2, intent="details", query=None, shown=())
    _turn(store, user, 3, intent="greet", query=None, shown=())  # neither shown nor rated: not training data
    t4 = _turn(store, user, 4, query="laptop sleeve", shown=("LAP-2",))
    store.log_feedback(user, "click", turn_id=t1, sku="SKU-2")
    store.log_feedback(user, "thumb_up", turn_id=t1)
    store.log_feedback(user, "add_to_cart", turn_id=t1, sku="SKU-2")
    store.log_feedback(user, "purchase", turn_id=t1, sku="SKU-2")
    store.log_feedback(user, "thumb_down", turn_id=t2, sku="SKU-9")
    store.log_feedback(user, "not_what_i_meant", turn_id=t4)
    store.log_feedback(user, "click", sku="SKU-3")  # no turn: belongs to the turn that showed SKU-3
    store.log_feedback(user, "rating", turn_id=t4, sku="LAP-2", value=5, comment="great")

    n = store.export_feedback(tmp_path / "out" / "fb.jsonl")
    first_bytes = (tmp_path / "out" / "fb.jsonl").read_bytes()
    rows = _export(store, tmp_path / "out" / "fb.jsonl")
    assert (tmp_path / "out" / "fb.jsonl").read_bytes() == first_bytes  # same rows, same bytes
    assert n == len(rows) == 3
    assert [r["turn_id"] for r in rows] == [t1, t2, t4]  # oldest first
    a, b, c = rows
    assert (a["user_id"], a["query"], a["text_in"], a["intent"], a["reply"]) == (
        user, "running shoes", "message 1", "search", "reply 1")
    assert [(s["sku"], s["rank"], s["score"]) for s in a["shown"]] == [
        ("SKU-1", 1, 1.0), ("SKU-2", 2, 0.5), ("SKU-3", 3, pytest.approx(1 / 3))]
    assert a["clicks"] == ["SKU-2", "SKU-3"] and a["add_to_cart"] == ["SKU-2"] and a["purchases"] == ["SKU-2"]
    assert a["thumbs"] == [{"sku": None, "kind": "thumb_up"}]
    assert a["model_versions"] == {"ranker": "r1"}
    created = datetime.fromisoformat(str(a["created_at"]))
    assert created.utcoffset() == timedelta(0) and datetime(2026, 11, 28, 12, 0, tzinfo=UTC) < created
    assert b["shown"] == [] and b["thumbs"] == [{"sku": "SKU-9", "kind": "thumb_down"}] and b["clicks"] == []
    assert c["thumbs"] == [{"sku": None, "kind": "not_what_i_meant"}]
    assert c["ratings"] == [{"sku": "LAP-2", "value": 5.0, "comment": "great"}]


def test_stats(store: Store) -> None:
    user = store.touch_user("cli", "u").user_id
    store.touch_user("cli", "v")
    _turn(store, user, 1, query="Running Shoes")
    _turn(store, user, 2, query="running  shoes")
    _turn(store, user, 3, query="purple unicorn saddle", shown=())
    _turn(store, user, 4, intent="refine", query="red coat", shown=("COA-1",))
    _turn(store, user, 5, intent="greet", query=None, shown=())
    _turn(store, user, 6, intent="more", query="red coat", shown=())  # paging past the end is not a zero result
    store.log_feedback(user, "thumb_up", turn_id="turn0001")
    store.log_feedback(user, "thumb_up", turn_id="turn0002")
    store.log_feedback(user, "not_what_i_meant", turn_id="turn0003")
    store.handoff(user, "angry")
    st = store.stats()
    assert (st["turns"], st["users"], st["sessions"], st["open_handoffs"]) == (6, 2, 1, 1)
    assert st["top_queries"] == [("running shoes", 2), ("purple unicorn saddle", 1), ("red coat", 1)]
    assert st["zero_result_queries"] == [("purple unicorn saddle", 1)]
    assert (st["thumbs_up"], st["thumbs_down"], st["thumbs_ratio"]) == (2, 1, 0.667)
    assert st["feedback"] == {"thumb_up": 2, "not_what_i_meant": 1}
    assert st["latency_ms_p50"] == 9.0 and st["pending_writes"] == 0


def test_hostile_text_is_stored_safely(store: Store, tmp_path: Path) -> None:
    user = store.touch_user("cli", "'; DROP TABLE users; --\x00").user_id
    assert user == "cli:'; DROP TABLE users; --"
    nasty = "'; DROP TABLE turns; --" + "💥🛒" * 10 + "\x00\x07\x1b[31m\u202e" + "x" * 10_000 + "\ud800"
    expected = nasty.replace("\x00", "").replace("\ud800", "?")  # NUL (PostgreSQL) and a lone surrogate (UTF-8) go
    tid = store.log_turn(user, nasty, "ok", intent="search", query=nasty, shown=[("A\x00'--", 1, None)],
                         slots={"q": nasty[:50]}, error=nasty)
    store.log_feedback(user, "thumb_down", turn_id=tid, comment=nasty)
    store.save_state(user, {"query": nasty})
    rows = _export(store, tmp_path / "fb.jsonl")
    assert rows[0]["text_in"] == expected and rows[0]["query"] == expected and len(expected) > 10_000
    assert rows[0]["shown"] == [{"sku": "A'--", "rank": 1, "score": None}]
    assert store.load_state(user) == {"query": nasty.replace("\ud800", "?")}  # JSON escapes NUL: the state keeps it
    [f] = _rows(store, Feedback)
    assert f.comment == expected
    assert store.stats()["turns"] == 1 and len(_rows(store, User)) == 1  # the tables are all still there


# ------------------------------------------------------------------------------- outage (SQLite)


def _take_down(store: Store, db_dir: Path) -> Path:
    """Move the database's directory away: every new connection fails in the real driver."""
    moved = db_dir.with_name(db_dir.name + "-away")
    store.engine.dispose()  # pooled connections keep the moved file open; a server restart drops them too
    shutil.move(db_dir, moved)
    return moved


def _sqlite(tmp_path: Path, retry_interval: float = 0) -> tuple[Store, Path]:
    db_dir = tmp_path / "db"
    return Store(f"sqlite:///{db_dir / 'shop.db'}", tmp_path / "buffer", clock=Clock(), retry_interval=retry_interval), db_dir


def test_sqlite_outage_buffers_on_disk_and_loses_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store, db_dir = _sqlite(tmp_path)
    user = store.touch_user("cli", "u").user_id
    _turn(store, user, 1)
    store.save_state(user, {"query": "before"})
    store.handoff(user, "x")
    store.release(user)
    moved = _take_down(store, db_dir)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bot.store.database"):
        # the database is down: nothing raises, ids come back, this process still knows state and handoffs
        assert store.touch_user("cli", "u").handed_over is False
        t2 = _turn(store, user, 2, shown=("C", "D", "E"))
        assert t2 == "turn0002"
        t3 = store.log_turn(user, "and cheaper?", "none cheaper", intent="refine", query="running shoes cheaper")
        assert store.log_impressions(t3, user, "running shoes cheaper", [("F", 1, 0.3)]) == 1
        fid = store.log_feedback(user, "click", turn_id=t2, sku="D")
        assert len(fid) == 32
        store.save_state(user, {"query": "during"})
        assert store.load_state(user) == {"query": "during"}
        assert store.load_state("cli:nobody") is None
        store.handoff(user, "needs a person")
        assert store.is_handed_over(user) is True
        last = store.last_turn(user)
        assert last is not None and last.turn_id == t3
        assert store.down and store.pending() == 7
        with pytest.raises(StoreUnavailable, match=r"^The database at sqlite:///.* cannot be reached .*try again\.$"):
            store.stats()
        with pytest.raises(StoreUnavailable):
            store.export_feedback(tmp_path / "fb.jsonl")
        assert not (tmp_path / "fb.jsonl").exists()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].exc_info is None  # one sentence, no traceback, not one per write
    assert "unreachable" in warnings[0].getMessage() and warnings[0].getMessage().endswith("until it is back.")

    shutil.move(moved, db_dir)  # the database is back
    t4 = _turn(store, user, 4)  # the next write replays the buffer first, in order
    assert store.pending() == 0 and not store.down and store.flush() == 0
    assert [t.id for t in _rows(store, Turn)] == ["turn0001", t2, t3, t4]
    assert [(i.turn_id, i.sku) for i in _rows(store, Impression)] == [
        ("turn0001", "A"), ("turn0001", "B"), (t2, "C"), (t2, "D"), (t2, "E"), (t3, "F"), (t4, "A"), (t4, "B")]
    assert [(f.id, f.turn_id, f.sku) for f in _rows(store, Feedback)] == [(fid, t2, "D")]
    assert store.is_handed_over(user) and [h["reason"] for h in store.open_handoffs()] == ["needs a person"]
    fresh = Store(f"sqlite:///{db_dir / 'shop.db'}", tmp_path / "other-buffer")
    assert fresh.load_state(user) == {"query": "during"}
    fresh.close()
    store.close()


def _check_replay_is_idempotent_and_keeps_the_order_of_handoffs(tmp_path: Path) -> None:
    """A crash after the buffered rows went in but before the buffer was emptied duplicates nothing and
    does not undo a later handoff (shared by the upsert and the read-then-write paths)."""
    store, db_dir = _sqlite(tmp_path)
    user = store.touch_user("cli", "u").user_id
    moved = _take_down(store, db_dir)
    _turn(store, user, 1)
    store.handoff(user, "first")
    assert store.release(user) is True  # the last known state while down
    store.handoff(user, "second")
    store.save_state(user, {"n": 2})
    shutil.move(moved, db_dir)
    saved = store.buffer_path.read_text()
    assert store.flush() == 5
    store.buffer_path.write_text(saved)  # as if the truncation never happened
    assert store.flush() == 5
    assert len(_rows(store, Turn)) == 1 and len(_rows(store, Impression)) == 2
    assert [h["reason"] for h in store.open_handoffs()] == ["second"] and store.is_handed_over(user)
    assert store.load_state(user) == {"n": 2}
    store.close()


def test_replay_is_idempotent_and_keeps_the_order_of_handoffs(tmp_path: Path) -> None:
    _check_replay_is_idempotent_and_keeps_the_order_of_handoffs(tmp_path)


def test_a_write_waits_out_the_retry_interval_and_flush_does_not(tmp_path: Path) -> None:
    store, db_dir = _sqlite(tmp_path, retry_interval=60)
    user = store.touch_user("cli", "u").user_id
    moved = _take_down(store, db_dir)
    _turn(store, user, 1)
    shutil.move(moved, db_dir)
    _turn(store, user, 2)  # within the interval: buffered without another connection attempt
    assert store.down and store.pending() == 2
    assert store.flush() == 2 and not store.down
    assert [t.id for t in _rows(store, Turn)] == ["turn0001", "turn0002"]
    store.close()


def test_the_bot_starts_while_the_database_is_down(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")  # the database's "directory" is a file: SQLite cannot open it
    store = Store(f"sqlite:///{blocker / 'shop.db'}", tmp_path / "buffer")
    info = store.touch_user("cli", "u")
    _turn(store, info.user_id, 1)
    assert store.down and store.pending() == 2
    blocker.unlink()
    blocker.mkdir()
    assert store.flush() == 2  # migrates, then replays
    assert store.stats()["turns"] == 1
    store.close()


def test_damaged_and_refused_buffer_lines_are_set_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store, db_dir = _sqlite(tmp_path)
    user = store.touch_user("cli", "u").user_id
    moved = _take_down(store, db_dir)
    _turn(store, user, 1)
    with store.buffer_path.open("a") as fh:
        fh.write('{"method": "log_turn", "ops": [{"op": "ins')  # a crash cut this line (no newline)
    store.log_impressions("no-such-turn", user, "q", [("Z", 1, None)])  # refused by the foreign key
    _turn(store, user, 2)
    shutil.move(moved, db_dir)
    assert store.flush() == 2
    assert [t.id for t in _rows(store, Turn)] == ["turn0001", "turn0002"]
    bad = store.bad_path.read_text().splitlines()
    assert len(bad) == 2 and bad[0].endswith('"op": "ins') and "no-such-turn" in bad[1]
    assert store.pending() == 0 and "moved to" in caplog.text
    store.close()


def test_threads_share_one_store(tmp_path: Path) -> None:
    store, db_dir = _sqlite(tmp_path)
    users = [store.touch_user("cli", f"u{i}").user_id for i in range(4)]

    def work(user: str, start: int) -> None:
        for n in range(start, start + 10):
            tid = store.log_turn(user, f"m{n}", "r", turn_id=f"{user[-2:]}-{n:03d}", shown=[("A", 1, None)])
            store.log_feedback(user, "click", turn_id=tid, sku="A")
            store.save_state(user, {"n": n})

    def run(start: int) -> None:
        threads = [threading.Thread(target=work, args=(u, start)) for u in users]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    run(0)
    moved = _take_down(store, db_dir)
    run(10)  # the same while the database is down
    shutil.move(moved, db_dir)
    assert store.flush() == 4 * 10 * 3
    assert len(_rows(store, Turn)) == len(_rows(store, Feedback)) == len(_rows(store, Impression)) == 80
    for u in users:  # each user's turns in the order that user wrote them
        assert [t.text_in for t in reversed(store.recent_turns(u, 20))] == [f"m{n}" for n in range(20)]
        assert store.load_state(u) == {"n": 19}
    store.close()


# --------------------------------------------------------------------------- outage (PostgreSQL)


class _Proxy:
    """A TCP forwarder to PostgreSQL that the test can cut, so the real driver sees the server vanish."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.listener.listen(16)
        self.up = True
        self.conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()  # the "server" is gone: the driver's handshake fails
                continue
            server = socket.create_connection(self.target)
            with self._lock:
                self.conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()

    def cut(self) -> None:
        self.up = False
        with self._lock:
            for s in self.conns:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
            self.conns.clear()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.mark.postgres
def test_postgres_outage_buffers_and_replays(pg_schema: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    proxy = _Proxy(("127.0.0.1", 5432))
    store = Store(_pg_url(pg_schema, proxy.port), tmp_path / "buffer", clock=Clock(), retry_interval=0)
    try:
        user = store.touch_user("telegram", "1").user_id
        _turn(store, user, 1)
        store.save_state(user, {"page": 1})
        proxy.cut()  # the pooled connections die mid-life, like a server restart

        t2 = _turn(store, user, 2, shown=("X", "Y"))
        store.log_feedback(user, "thumb_down", turn_id=t2, sku="Y")
        store.save_state(user, {"page": 2})
        store.handoff(user, "wants a person")
        assert store.down and store.pending() == 4
        assert store.load_state(user) == {"page": 2} and store.is_handed_over(user)
        with pytest.raises(StoreUnavailable, match="cannot be reached"):
            store.stats()
        assert "unreachable" in caplog.text

        proxy.restore()
        t3 = _turn(store, user, 3)
        assert store.pending() == 0 and not store.down
        direct = Store(_pg_url(pg_schema), tmp_path / "other-buffer", migrate=False)
        assert [t.id for t in _rows(direct, Turn)] == ["turn0001", t2, t3]
        assert [(i.turn_id, i.sku) for i in _rows(direct, Impression)] == [
            ("turn0001", "A"), ("turn0001", "B"), (t2, "X"), (t2, "Y"), (t3, "A"), (t3, "B")]
        st = direct.stats()
        assert st["turns"] == 3 and st["thumbs_down"] == 1 and st["open_handoffs"] == 1
        assert direct.load_state(user) == {"page": 2}
        direct.close()
    finally:
        store.close()
        proxy.close()


def test_reported_purchases_are_imported_once_at_their_own_time(store: Store) -> None:
    at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    rows = [ReportedAction("telegram:7", "purchase", "LAP-1", at, ref="A-1"),
            ReportedAction("telegram:7", "purchase", "LAP-1", at, ref="A-2"),  # the same item in another order
            ReportedAction("telegram:8", "add_to_cart", "PHO-1", at + timedelta(hours=1))]
    assert store.import_feedback(rows) == (3, 0)
    assert store.import_feedback(rows) == (0, 3)
    got = sorted((u, sku, kind, t) for u, sku, kind, t in store.interactions())
    assert got == [("telegram:7", "LAP-1", "purchase", at), ("telegram:7", "LAP-1", "purchase", at),
                   ("telegram:8", "PHO-1", "add_to_cart", at + timedelta(hours=1))]
