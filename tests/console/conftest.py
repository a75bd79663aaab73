"""Fixtures of the console tests: settings over a temporary data dir (hashing encoders: no model loads), the
real SQLite store, a logged-in Starlette TestClient, and the fake Telegram Bot API on a background loop."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from bot.console.app import create_app
from bot.settings import Settings
from bot.store.database import Store
from tests.fakes.telegram_server import TOKEN, FakeTelegram

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    """A settable wall clock (seconds), so a test can let a session expire without waiting."""

    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def make_settings(data_dir: Path, **extra: Any) -> Settings:
    return Settings(data_dir=data_dir, console_password=PASSWORD, encoder="hashing", multilingual_encoder="hashing",
                    body_view=False, llm="off", device="cpu", **extra)


def csrf_of(html: str) -> str:
    m = _CSRF.search(html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def log_in(client: TestClient, password: str = PASSWORD) -> Any:
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"password": password, "csrf_token": token}, follow_redirects=False)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = Store(settings.db_url, settings.buffer_dir)
    yield s
    s.close()


@pytest.fixture
def client(settings: Settings, store: Store, clock: Clock) -> Iterator[TestClient]:
    app = create_app(settings, store=store, clock=clock, secret_key="test-secret")
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture
def logged_in(client: TestClient) -> TestClient:
    assert log_in(client).status_code == 303
    return client


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegram]:
    """The fake Bot API served from its own event loop in a thread (the console's client is synchronous)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake = FakeTelegram(TOKEN)
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(10)
    yield fake
    asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
