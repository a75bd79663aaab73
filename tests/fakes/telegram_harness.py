"""Runs the real python-telegram-bot Application of :class:`bot.channels.telegram.bot.ShopBot` against
:class:`FakeTelegram`, by long polling or behind a webhook, and waits for the bot to finish answering."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bot.channels.telegram.bot import ALLOWED_UPDATES, PerChatProcessor, ShopBot
from tests.fakes.telegram_server import SEND_METHODS, Call, FakeTelegram

__all__ = ["Running", "free_port", "running"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Running:
    shop: ShopBot
    app: Any
    fake: FakeTelegram
    injected: int = 0

    @property
    def processor(self) -> PerChatProcessor:
        p = self.app.update_processor
        assert isinstance(p, PerChatProcessor)
        return p

    async def idle(self, timeout: float = 15.0) -> None:
        """Until every injected update has been handled (replies sent, streams finished)."""
        await self.fake.wait_for(lambda: self.processor.processed >= self.injected, timeout)
        await asyncio.sleep(0)

    async def say(self, user: int, text: str, *, language_code: str | None = "en", timeout: float = 15.0) -> list[Call]:
        """The user writes ``text``; the messages the bot sent or edited in that chat in answer."""
        n = len(self.fake.calls)
        self.fake.message(user, text, language_code=language_code)
        self.injected += 1
        await self.idle(timeout)
        return [c for c in self.fake.calls[n:] if c.chat_id == user and c.status == 200 and c.method in SEND_METHODS]

    async def press(self, user: int, message: Call | dict[str, Any], data: str, *, language_code: str | None = "en",
                    timeout: float = 15.0) -> tuple[list[Call], Call | None]:
        """The user presses a button; (messages sent to the chat, the callback query's answer)."""
        n = len(self.fake.calls)
        qid = self.fake.press(user, message, data, language_code=language_code)
        self.injected += 1
        await self.idle(timeout)
        sent = [c for c in self.fake.calls[n:] if c.chat_id == user and c.status == 200 and c.method in SEND_METHODS]
        return sent, self.fake.answers.get(qid)


@asynccontextmanager
async def running(shop: ShopBot, fake: FakeTelegram, *, webhook: bool = False, poll_timeout: float = 1.0,
                  secret: str | None = None) -> AsyncIterator[Running]:
    """The application started against ``fake`` (getMe, then polling or setWebhook), stopped afterwards."""
    app = shop.application(token=fake.token, base_url=fake.base_url)
    updater = app.updater
    assert updater is not None
    async with app:
        await app.start()
        if webhook:
            port = free_port()
            await updater.start_webhook(listen="127.0.0.1", port=port, url_path="telegram",
                                            webhook_url=f"http://127.0.0.1:{port}/telegram", secret_token=secret,
                                            allowed_updates=ALLOWED_UPDATES)
        else:
            await updater.start_polling(poll_interval=0.0, timeout=int(poll_timeout) or 1, allowed_updates=ALLOWED_UPDATES)
        try:
            yield Running(shop, app, fake)
        finally:
            fake.end_polls()
            await updater.stop()
            await app.stop()
