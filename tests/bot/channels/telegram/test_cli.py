"""``shopbot telegram`` as a shop owner runs it: polling and webhook against the fake Bot API server (in a
thread of its own, as Telegram would be), and one clear sentence for each mistake a user can make."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

import bot.cli.telegram
from bot.channels.telegram.bot import ShopBot
from bot.cli.main import cli
from bot.dialogue.replies import Event, Reply
from bot.store.database import Store
from tests.fakes.telegram_harness import free_port
from tests.fakes.telegram_server import TOKEN, FakeTelegram


class Stub:
    """A cheap assistant: the CLI's wiring is under test here, not the dialogue."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = SimpleNamespace(products=[1, 2, 3])
        self.stop: Any = None
        self.before_stop: Any = None
        self.shop: ShopBot | None = None

    def warm_up(self) -> None:
        pass

    async def watch(self, interval: float) -> None:
        self.watching = interval
        await asyncio.Event().wait()  # until the bot stops and cancels it

    async def handle_async(self, event: Event) -> list[Reply]:
        if event.text == "stop" and self.stop is not None:
            if self.before_stop is not None:
                self.before_stop()
            asyncio.get_running_loop().call_later(0.2, self.stop)
        return [Reply(f"echo {event.text}")]

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()


class ServerThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.fake = FakeTelegram()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self.loop).result(10)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def call(self, fn: Any, *args: Any) -> Any:
        async def run() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)


@pytest.fixture
def stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stub]:
    s = Stub(Store(f"sqlite:///{tmp_path / 'shop.db'}", tmp_path / "buffer"))
    monkeypatch.setattr(bot.cli.telegram, "assistant_for", lambda settings: s)
    original = ShopBot.application

    def capture(self: ShopBot, **kw: Any) -> Any:
        app = original(self, **kw)
        s.stop, s.shop = app.stop_running, self
        return app

    monkeypatch.setattr(ShopBot, "application", capture)
    monkeypatch.setenv("SHOPBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SHOPBOT_LLM", "off")
    yield s
    s.close()


@pytest.mark.parametrize("mode", ["polling", "webhook"])
def test_the_bot_answers_until_stopped(stub: Stub, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    turns_at_once = 1 if mode == "polling" else 3  # SQLite's default, then one given on the command line
    with ServerThread() as server:
        monkeypatch.setenv("SHOPBOT_TELEGRAM_TOKEN", TOKEN)
        monkeypatch.setenv("SHOPBOT_TELEGRAM_API_URL", server.fake.base_url)
        stub.before_stop = lambda: server.loop.call_soon_threadsafe(server.fake.end_polls)  # no 10 s poll to wait out
        server.call(server.fake.message, 42, "hello there")
        server.call(server.fake.message, 42, "stop")
        args = ["telegram"]
        if mode == "webhook":
            port = free_port()
            args += ["--webhook", f"http://127.0.0.1:{port}/hook", "--listen", "127.0.0.1", "--port", str(port),
                     "--turns-at-once", str(turns_at_once)]
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert f"Telegram bot running by {'long polling' if mode == 'polling' else 'webhook'}" in result.output
        assert [c.text for c in server.fake.sent(42)] == ["echo hello there", "echo stop"]
        if mode == "webhook":
            hook = server.fake.webhook
            assert hook is not None and hook.url.endswith("/hook") and hook.secret and len(hook.secret) >= 32
        assert server.fake.commands  # the command menu was set at start
        assert stub.shop is not None and stub.shop.gate.size == turns_at_once
        assert stub.watching == 60.0  # it looked for newly published models while it ran (SHOPBOT_RELOAD_SECONDS)
        assert stub.shop._watch is None  # and stopped looking when it stopped


def test_mistakes_end_in_one_sentence(stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.delenv("SHOPBOT_TELEGRAM_TOKEN", raising=False)
    r = runner.invoke(cli, ["telegram"])
    assert r.exit_code == 1 and "SHOPBOT_TELEGRAM_TOKEN" in r.output and "Traceback" not in r.output

    monkeypatch.setenv("SHOPBOT_TELEGRAM_TOKEN", "999:not-the-token")
    r = runner.invoke(cli, ["telegram", "--webhook", "shop.example/telegram"])
    assert r.exit_code == 1 and "full URL" in r.output

    with ServerThread() as server:
        monkeypatch.setenv("SHOPBOT_TELEGRAM_API_URL", server.fake.base_url)
        r = runner.invoke(cli, ["telegram"])
        assert r.exit_code == 1 and "refused the bot token" in r.output and "Traceback" not in r.output

    monkeypatch.setenv("SHOPBOT_TELEGRAM_API_URL", f"http://127.0.0.1:{free_port()}/bot")  # nothing listens there
    r = runner.invoke(cli, ["telegram"])
    assert r.exit_code == 1 and "Cannot reach the Telegram Bot API" in r.output, r.output
