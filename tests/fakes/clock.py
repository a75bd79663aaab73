"""A clock for the store's tests: time moves only when read (1 ms per reading), so rows keep the order they
were written in and the tests never depend on the machine's speed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """Time that moves only when asked (1 ms per reading, so rows keep the order they were written in)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now
