"""Polling mode SIGKILLed with updates in flight: after the restart every update is answered, none twice, each chat
in order (issue 22).

The real ``shopbot telegram`` process (long polling, the embedded SQLite database) answers through the fake Bot API
server running in this test. Sixty updates from six chats are queued at once, so one getUpdates hands out all of
them; the process is SIGKILLed once the fake has seen the next poll confirm that batch (Telegram would never
send it again) and a sixth of the answers are out, most of the batch still unanswered. A second process on the same database must answer
the rest from the polling inbox (bot/channels/telegram/inbox.py). About 20 s on the 2-core test machine.

The replies are told apart by their text: every chat sends the same ten messages (rotated), whose answers are
fixed texts, learned in a warm-up chat first.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_catalog
from tests.fakes.telegram_server import FakeTelegram

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHOPBOT = str(Path(sys.executable).with_name("shopbot"))
CHATS = 6
SCRIPT = ["hi", "how long does shipping take?", "can I pay with PayPal?", "how do I return shoes?",
          "what is your refund policy?", "where is my order?", "how can I contact you?", "is there a warranty?",
          "can I cancel my order?", "thanks"]
WARM_UP_CHAT = 999
KILL_AFTER = 6  # the kill comes once 1/KILL_AFTER of the answers are out


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data dir with the small test catalog indexed (hashing encoders: the bot starts in seconds)."""
    data = tmp_path_factory.mktemp("polling_kill") / "data"
    catalog = write_catalog(data.parent / "catalog.csv")
    subprocess.run([SHOPBOT, "--data-dir", str(data), "reindex"], env={**_base_env(data), "SHOPBOT_CATALOG": str(catalog)},
                   check=True, capture_output=True, timeout=300)
    yield data


def _base_env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPBOT_")}
    env.update(SHOPBOT_DATA_DIR=str(data), SHOPBOT_ENCODER="hashing", SHOPBOT_MULTILINGUAL_ENCODER="hashing",
               SHOPBOT_BODY_VIEW="false", SHOPBOT_LLM="off", SHOPBOT_CATALOG=str(data.parent / "catalog.csv"),
               SHOPBOT_RELOAD_SECONDS="0", SHOPBOT_TELEGRAM_MAX_RATE="0")
    return env


class Bot:
    """One ``shopbot telegram`` process by long polling, its output in a log file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.popen = subprocess.Popen([SHOPBOT, "telegram"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def ready(self, fake: FakeTelegram, timeout: float = 90.0) -> None:
        """Until polling has started: python-telegram-bot deletes the webhook first (after post_init)."""
        seen = len(fake.requests("deleteWebhook"))
        deadline = time.monotonic() + timeout
        while len(fake.requests("deleteWebhook")) <= seen:
            if self.popen.poll() is not None:
                raise AssertionError(f"the bot exited with {self.popen.returncode}:\n{self.text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot did not start:\n{self.text()[-3000:]}")
            await asyncio.sleep(0.05)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        """Signal and wait (the fake answering meanwhile); killed when it outlives ``timeout``."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        deadline = time.monotonic() + timeout
        while self.popen.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        return self.popen.returncode


def _texts(fake: FakeTelegram, chat: int) -> list[str]:
    return [c.text for c in fake.sent(chat)]


def test_polling_bot_sigkilled_with_updates_in_flight_answers_every_update_once_after_restart(
        data: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    result: dict[str, Any] = {}

    async def main() -> None:
        async with FakeTelegram() as fake:
            env = {**_base_env(data), "SHOPBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'shop.db'}",
                   "SHOPBOT_TELEGRAM_TOKEN": fake.token, "SHOPBOT_TELEGRAM_API_URL": fake.base_url}
            first = Bot(env, tmp_path / "first.log")
            try:
                await first.ready(fake)
                # the fixed answer to each message, learned one message at a time in a chat of its own
                answers: dict[str, list[str]] = {}
                for text in SCRIPT:
                    n = len(_texts(fake, WARM_UP_CHAT))
                    fake.message(WARM_UP_CHAT, text)
                    await fake.wait_for(lambda n=n: len(_texts(fake, WARM_UP_CHAT)) > n, 30)
                    await fake.settle(quiet=0.15)
                    answers[text] = _texts(fake, WARM_UP_CHAT)[n:]
                assert all(answers.values()), answers

                # every chat's ten messages queued at once: one getUpdates hands all of them out
                scripts = {1000 + c: SCRIPT[c:] + SCRIPT[:c] for c in range(CHATS)}
                ids = {fake.message(chat, text) for i in range(len(SCRIPT)) for chat, script in scripts.items()
                       for text in [script[i]]}
                expected = {chat: [a for text in script for a in answers[text]] for chat, script in scripts.items()}
                total = sum(len(v) for v in expected.values())

                def confirmed() -> bool:  # the next poll asked for the updates after the batch: Telegram forgets it
                    return all(fake.deliveries.get(u) for u in ids) and not any(p.update["update_id"] in ids
                                                                                  for p in fake._pending)

                def answering() -> bool:  # a sixth of the answers out, most of them still to come
                    return confirmed() and sum(len(_texts(fake, c)) for c in scripts) >= total // KILL_AFTER

                await fake.wait_for(answering, 30)
                await first.stop(signal.SIGKILL)
                before = {chat: _texts(fake, chat) for chat in scripts}
                result["answered_before_kill"] = sum(len(v) for v in before.values())
                assert result["answered_before_kill"] < total, "the kill came after every answer: nothing was tested"
            finally:
                await first.stop(signal.SIGKILL)

            second = Bot(env, tmp_path / "second.log")
            try:
                killed_at = time.monotonic()
                await second.ready(fake)
                await fake.wait_for(lambda: all(len(_texts(fake, c)) >= len(v) for c, v in expected.items()), 40)
                result["all_answered_s_after_restart"] = round(time.monotonic() - killed_at, 2)
                await fake.settle(quiet=1.0, timeout=20)  # a doubled answer would come now
                got = {chat: _texts(fake, chat) for chat in scripts}
                said = re.search(r"Answering (\d+) update\(s\) fetched before the last stop", second.text())
                result["replayed"] = int(said.group(1)) if said else 0
                doubled: dict[int, int] = {}
                for chat, script in scripts.items():
                    # what went out before the kill is the start of the chat's answers, in order
                    assert expected[chat][:len(before[chat])] == before[chat], (chat, before[chat])
                    # after the restart: the rest of them, in order, nothing lost; the one update whose answer had gone
                    # out (all or part of it) but was not recorded yet when the kill came may be answered once more
                    starts = [sum(len(answers[t]) for t in script[:i]) for i in range(len(script))]
                    resumed = [i for i in starts if got[chat] == before[chat] + expected[chat][i:]]
                    assert resumed, (chat, before[chat], got[chat])
                    start = max(resumed)
                    assert start >= max([i for i in starts if i < len(before[chat])], default=0), (chat, got[chat])
                    doubled[chat] = len(before[chat]) - start
                result["doubled_messages"] = sum(doubled.values())
                result["chats_with_a_double"] = sum(1 for n in doubled.values() if n)
                assert result["replayed"] >= 1
                assert fake.deliveries and max(fake.deliveries[u] for u in ids) == 1  # the fake never sent any again
            finally:
                fake.end_polls()
                await second.stop()

    asyncio.run(main())
    result["wall_s"] = round(time.monotonic() - started, 1)
    print("polling kill:", json.dumps(result))
