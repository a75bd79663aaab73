"""The outage buffer: what keeps every write when the database is down. Writes that cannot reach the
database are appended, one JSON line of :mod:`bot.store.operations` per write, to
``buffer_dir/pending.jsonl`` (fsync'ed; in memory when the disk refuses too) and replayed in order, in one
transaction, before the next write that gets through; a line that can never be applied is set aside in
``pending.bad`` instead of blocking every later write. It also decides which errors mean "the database
is not there" (buffer and carry on) rather than a bug (raise). It is separate from the
:class:`~bot.store.database.Store` because it knows nothing of what the operations mean, only how to keep
them safe on disk, in order, across processes that share one buffer directory.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.store.operations import Op

if sys.platform != "win32":
    import fcntl

log = logging.getLogger(__name__)


def is_down(exc: BaseException) -> bool:
    """Errors that mean "the database is not there" (buffer and carry on), not a bug (raise).

    Every OperationalError counts, not only refused connections: a locked SQLite file or a PostgreSQL
    restart in the middle of a transaction loses nothing when the write is buffered and retried."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc.orig, sqlite3.OperationalError):
            return True
        if isinstance(exc, OperationalError):
            return True
        text = str(exc.orig or exc).lower()
        return any(w in text for w in ("connection", "could not connect", "server closed", "unable to open", "terminat"))
    if isinstance(exc, sqlite3.OperationalError):
        return True
    psycopg = sys.modules.get("psycopg")  # only a loaded driver can raise its own errors
    return psycopg is not None and isinstance(exc, psycopg.OperationalError)


def first_line(exc: BaseException) -> str:
    """The driver's own message, first line only: what a log line or a one-sentence error quotes."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0].rstrip(".") if lines else type(orig).__name__


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot buffer {type(value).__name__}")


class Outbox:
    """The buffer directory of one store. ``lock`` is the store's write lock: taking it around every
    buffer access keeps the buffer in the order the writes were made."""

    def __init__(self, buffer_dir: Path, lock: threading.RLock) -> None:
        self.dir = buffer_dir
        self.path = buffer_dir / "pending.jsonl"
        self.bad_path = buffer_dir / "pending.bad"
        self._lock = lock
        self._memory: list[str] = []  # buffered lines the disk refused (full, read-only): kept until replayed

    @contextmanager
    def locked(self) -> Iterator[None]:
        """In-process lock plus an advisory file lock, so processes sharing the buffer never interleave a
        replay's truncation with another's append."""
        with self._lock:
            fh: IO[str] | None = None
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
                fh = (self.dir / "pending.lock").open("a")
                if sys.platform != "win32":
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            except OSError:
                pass  # no lock file (read-only disk): the in-process lock still orders this process
            try:
                yield
            finally:
                if fh is not None:
                    fh.close()  # closing releases the flock

    def append(self, method: str, ops: Sequence[Op]) -> None:
        """Keep one write (``method`` names it for a reader of the file) until the database is back."""
        line = json.dumps({"method": method, "ops": list(ops)}, default=_json_default)  # ASCII: any disk encoding reads it back
        with self.locked():
            try:
                with self.path.open("a+b") as fh:
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
                              self.path, exc.strerror or exc)
                self._memory.append(line)

    def has_pending(self) -> bool:
        if self._memory:
            return True
        try:
            return self.path.stat().st_size > 0
        except OSError:
            return False

    def _lines(self) -> list[str]:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        return [ln for ln in text.splitlines() if ln.strip()] + list(self._memory)

    def pending(self) -> int:
        """Buffered writes waiting for the database."""
        with self.locked():
            return len(self._lines()) if self.has_pending() else 0

    def replay(self, engine: Engine, apply: Callable[[Connection, Sequence[Op]], None]) -> int:
        """Write every buffered line with ``apply`` in one transaction, oldest first, then empty the buffer
        atomically; returns how many lines went in.

        A line that cannot be applied for a reason other than the database being down (cut by a crash,
        or refused by a constraint) is moved to ``pending.bad`` with a warning instead of blocking every
        later write forever."""
        with self.locked():
            lines = self._lines()
            if not lines:
                return 0
            bad: list[str] = []
            n = 0
            with engine.begin() as conn:
                for ln in lines:
                    try:
                        rec = json.loads(ln)
                        ops = rec["ops"] if isinstance(rec, dict) else rec
                        with conn.begin_nested():
                            apply(conn, ops)
                        n += 1
                    except Exception as exc:
                        if is_down(exc):
                            raise
                        log.warning("A buffered write could not be applied (%s); it was moved to %s.", first_line(exc), self.bad_path)
                        bad.append(ln)
            if bad:
                with self.bad_path.open("a", encoding="utf-8") as fh:
                    fh.write("\n".join(bad) + "\n")
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(b"")
            os.replace(tmp, self.path)
            self._memory.clear()
            return n
