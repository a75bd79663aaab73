"""Private PostgreSQL and Redis servers for the fault tests: each test starts its own instance on a free
port in a temporary directory, so that stopping, killing and restarting it cannot disturb the shared servers
other tests (and other engineers) use on 5432 and 6379."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.telegram_harness import free_port

__all__ = ["PrivatePostgres", "PrivateRedis", "private_postgres", "private_redis"]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _as_owner(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: there, its commands run as the ``postgres`` account."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@dataclass
class PrivatePostgres:
    """One throw-away cluster (trust auth, fsync off) that the test may stop and start at will."""

    bin: Path
    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(_as_owner([str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), *args]),
                       check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self._ctl("-o", f"-k {self.root} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "-l", str(self.root / "server.log"), "-w", "start")

    def stop(self) -> None:
        """A crash, not a shutdown: connections are cut mid-transaction."""
        self._ctl("-m", "immediate", "-w", "stop")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    bin_ = _pg_bin()
    if bin_ is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        pytest.skip("No PostgreSQL server binaries (/usr/lib/postgresql/*/bin) to start a private cluster with.")
    root = Path(tempfile.mkdtemp(prefix="shopbot-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    pg = PrivatePostgres(bin_, root, free_port())
    subprocess.run(_as_owner([str(bin_ / "initdb"), "-D", str(root / "data"), "-A", "trust", "-U", "postgres",
                              "--no-sync"]), check=True, capture_output=True, timeout=120)
    pg.start()
    try:
        yield pg
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped by the test
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class PrivateRedis:
    """A redis-server with an append-only file fsync'ed on every write, restartable on the same data."""

    root: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> None:
        log = (self.root / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", str(self.root)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            probe = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True)
            if probe.stdout.strip() == "PONG":
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"redis-server did not start: {(self.root / 'redis.log').read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM, as a service manager restarting it would: it finishes the AOF and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server is not installed: no private broker to restart.")
    root = Path(tempfile.mkdtemp(prefix="shopbot-redis-"))
    r = PrivateRedis(root, free_port())
    r.start()
    try:
        yield r
    finally:
        if r.proc is not None and r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()
        shutil.rmtree(root, ignore_errors=True)
