"""The SQL store against real SQLite and the real PostgreSQL on 127.0.0.1:5432 (marker ``postgres``)."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.store import Base, Store, StoreUnavailable, TurnRecord

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def _pg_schema_url(schema: str, port: int = 5432) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/test?options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as c:
            c.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # pragma: no cover - environment
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    yield schema
    with admin.begin() as c:
        c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'shop.db'}"
    return _pg_schema_url(request.getfixturevalue("pg_schema"))


@pytest.fixture
def store(url: str, tmp_path: Path) -> Iterator[Store]:
    s = Store(url, tmp_path / "buffer", clock=Clock())
    yield s
    s.close()


def _turn(store: Store, user: str, n: int, *, intent: str = "search", query: str | None = "running shoes",
          shown: tuple[str, ...] = ("A", "B")) -> str:
    return store.log(TurnRecord(f"turn{n:04d}", user, f"message {n}", f"reply {n}", intent=intent, query=query,
                                shown=[(sku, i + 1, 1.0 / (i + 1)) for i, sku in enumerate(shown)], latency_ms=5.0))


def test_migrations_match_the_models_and_run_twice(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store.migrate()  # second time: nothing to do, no error
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_turns_impressions_feedback_and_export(store: Store, tmp_path: Path) -> None:
    user, handed = store.touch("telegram", "42", "en")
    assert (user, handed) == ("telegram:42", False)
    t1 = _turn(store, user, 1, shown=("SKU-1", "SKU-2", "SKU-3"))
    t2 = _turn(store, user, 2, intent="details", query=None, shown=())
    store.feedback(user, "click", turn_id=t1, sku="SKU-2")
    store.feedback(user, "thumb_up", turn_id=t1)
    store.feedback(user, "purchase", turn_id=t1, sku="SKU-2")
    store.feedback(user, "thumb_down", turn_id=t2, sku="SKU-9")
    n = store.export_feedback(tmp_path / "out" / "fb.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "out" / "fb.jsonl").read_text().splitlines()]
    assert n == len(rows) == 2
    first = rows[0]
    assert first["turn_id"] == t1 and first["query"] == "running shoes" and first["reply"] == "reply 1"
    assert [(s["sku"], s["rank"]) for s in first["shown"]] == [("SKU-1", 1), ("SKU-2", 2), ("SKU-3", 3)]
    assert first["clicks"] == ["SKU-2"] and first["purchases"] == ["SKU-2"]
    assert first["thumbs"] == [{"sku": None, "kind": "thumb_up"}]
    assert rows[1]["shown"] == [] and rows[1]["thumbs"] == [{"sku": "SKU-9", "kind": "thumb_down"}]


def test_unknown_feedback_kind_is_refused(store: Store) -> None:
    user, _ = store.touch("cli", "u")
    with pytest.raises(ValueError, match="Unknown feedback kind 'love'"):
        store.feedback(user, "love")


def test_state_survives_a_restart(url: str, tmp_path: Path) -> None:
    a = Store(url, tmp_path / "buffer")
    user, _ = a.touch("cli", "u")
    a.save_state(user, {"query": "red coat", "shown": ["COA-1"], "lang": "zh", "note": "第二个"})
    a.close()
    b = Store(url, tmp_path / "buffer")
    assert b.load_state(user) == {"query": "red coat", "shown": ["COA-1"], "lang": "zh", "note": "第二个"}
    assert b.load_state("cli:nobody") is None
    b.close()


def test_a_new_session_starts_after_half_an_hour(store: Store) -> None:
    clock = store.clock
    assert isinstance(clock, Clock)
    user, _ = store.touch("cli", "u")
    s1 = store.session_of(user)
    clock.now += timedelta(minutes=10)
    store.touch("cli", "u")
    assert store.session_of(user) == s1
    clock.now += timedelta(minutes=31)
    store.touch("cli", "u")
    assert store.session_of(user) != s1
    _turn(store, user, 1)
    assert store.stats()["sessions"] == 1  # sessions are counted from turns


def test_handoff_and_release(store: Store) -> None:
    user, _ = store.touch("telegram", "7")
    _turn(store, user, 1, intent="contact_human_agent", query=None, shown=())
    store.handoff(user, "asked for a person")
    assert store.is_handed_over(user)
    assert store.touch("telegram", "7")[1] is True
    [h] = store.open_handoffs()
    assert h["user_id"] == user and h["reason"] == "asked for a person" and h["last_message"] == "message 1"
    assert store.release(user) is True
    assert store.release(user) is False
    assert not store.is_handed_over(user) and store.open_handoffs() == []


def test_stats(store: Store) -> None:
    user, _ = store.touch("cli", "u")
    _turn(store, user, 1, query="Running Shoes")
    _turn(store, user, 2, query="running shoes")
    _turn(store, user, 3, query="purple unicorn saddle", shown=())
    _turn(store, user, 4, intent="greet", query=None, shown=())
    store.feedback(user, "thumb_up", turn_id="turn0001")
    store.feedback(user, "thumb_up", turn_id="turn0002")
    store.feedback(user, "not_what_i_meant", turn_id="turn0003")
    st = store.stats()
    assert st["turns"] == 4 and st["users"] == 1
    assert st["top_queries"][0] == ("running shoes", 2)
    assert st["zero_result_queries"] == [("purple unicorn saddle", 1)]
    assert (st["thumbs_up"], st["thumbs_down"], st["thumbs_ratio"]) == (2, 1, 0.667)


def test_hostile_text_is_stored_as_is(store: Store, tmp_path: Path) -> None:
    user, _ = store.touch("cli", "'; DROP TABLE users; --")
    nasty = "'; DROP TABLE turns; --" + "💥" * 10 + "\x00\x07" + "x" * 10_000
    store.log(TurnRecord("t-nasty", user, nasty, "ok", intent="other", shown=[("A", 1, None)], query=nasty))
    _turn(store, user, 2)
    store.export_feedback(tmp_path / "fb.jsonl")
    row = json.loads((tmp_path / "fb.jsonl").read_text().splitlines()[0])
    assert row["text_in"] == nasty.replace("\x00", "")  # NUL is the one character PostgreSQL cannot store
    assert store.stats()["turns"] == 2


def _down_sqlite(store: Store, db_dir: Path) -> Path:
    moved = db_dir.with_name("db-away")
    store.engine.dispose()
    shutil.move(db_dir, moved)  # connections now fail for real: the file's directory is gone
    return moved


def test_sqlite_outage_buffers_on_disk_and_loses_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db_dir = tmp_path / "db"
    store = Store(f"sqlite:///{db_dir / 'shop.db'}", tmp_path / "buffer", clock=Clock())
    user, _ = store.touch("cli", "u")
    _turn(store, user, 1)
    store.save_state(user, {"query": "before"})
    moved = _down_sqlite(store, db_dir)

    # the database is down: nothing raises, ids come back, state is still there for this process
    assert store.touch("cli", "u") == (user, False)
    tid = _turn(store, user, 2, shown=("C", "D", "E"))
    store.feedback(user, "click", turn_id=tid, sku="D")
    store.save_state(user, {"query": "during"})
    assert store.load_state(user) == {"query": "during"}
    assert store.down and store.pending() >= 3
    assert "unreachable" in caplog.text
    with pytest.raises(StoreUnavailable, match="cannot be reached"):
        store.stats()

    shutil.move(moved, db_dir)  # the database is back
    _turn(store, user, 3)  # the next write replays the buffer first, in order
    assert store.pending() == 0 and not store.down
    assert store.flush() == 0
    st = store.stats()
    assert st["turns"] == 3 and st["feedback"] == {"click": 1}
    fresh = Store(f"sqlite:///{db_dir / 'shop.db'}", tmp_path / "buffer")
    assert fresh.load_state(user) == {"query": "during"}
    rows = [json.loads(x) for x in _export(fresh, tmp_path)]
    assert [r["turn_id"] for r in rows] == ["turn0001", "turn0002", "turn0003"]
    assert [s["sku"] for s in rows[1]["shown"]] == ["C", "D", "E"] and rows[1]["clicks"] == ["D"]


def _export(store: Store, tmp_path: Path) -> list[str]:
    store.export_feedback(tmp_path / "x.jsonl")
    return (tmp_path / "x.jsonl").read_text().splitlines()


def test_replay_is_idempotent(tmp_path: Path) -> None:
    """A crash after writing the buffered rows but before truncating the buffer duplicates nothing."""
    db_dir = tmp_path / "db"
    store = Store(f"sqlite:///{db_dir / 'shop.db'}", tmp_path / "buffer", clock=Clock())
    user, _ = store.touch("cli", "u")
    moved = _down_sqlite(store, db_dir)
    _turn(store, user, 1)
    shutil.move(moved, db_dir)
    saved = store.buffer_path.read_text()
    assert store.flush() == 1
    store.buffer_path.write_text(saved)  # as if the truncation never happened
    assert store.flush() == 1
    assert store.stats()["turns"] == 1 and len(_export(store, tmp_path)) == 1


def test_bot_starts_while_the_database_is_down(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")  # the database path's "directory" is a file: SQLite cannot open it
    store = Store(f"sqlite:///{blocker / 'shop.db'}", tmp_path / "buffer")
    user, _ = store.touch("cli", "u")
    _turn(store, user, 1)
    assert store.down and store.pending() == 2
    blocker.unlink()
    blocker.mkdir()
    assert store.flush() == 2  # migrates, then replays
    assert store.stats()["turns"] == 1


class _Proxy:
    """A TCP forwarder to PostgreSQL that the test can cut, so the real driver sees a dead server."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.listener.listen(16)
        self.up = True
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            server = socket.create_connection(self.target)
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
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
        self.conns.clear()

    def restore(self) -> None:
        self.up = True


@pytest.mark.postgres
def test_postgres_outage_buffers_and_replays(pg_schema: str, tmp_path: Path) -> None:
    proxy = _Proxy(("127.0.0.1", 5432))
    store = Store(_pg_schema_url(pg_schema, proxy.port), tmp_path / "buffer", clock=Clock())
    user, _ = store.touch("telegram", "1")
    _turn(store, user, 1)
    proxy.cut()
    tid = _turn(store, user, 2, shown=("X", "Y"))
    store.feedback(user, "thumb_down", turn_id=tid)
    assert store.down and store.pending() == 2
    proxy.restore()
    _turn(store, user, 3)
    assert store.pending() == 0
    direct = Store(_pg_schema_url(pg_schema), tmp_path / "other-buffer", migrate=False)
    st = direct.stats()
    assert st["turns"] == 3 and st["thumbs_down"] == 1
    direct.close()
    store.close()
