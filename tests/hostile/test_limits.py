"""A size limit on every entry point a stranger can reach, at the limit and one past it, through the real
entry point: what a shopper, Telegram, Rasa or an owner's browser gets back.

| entry point                      | limit                                | past it                                |
| chat message (DialogueManager)   | MAX_CHARS = 1000 characters          | cut at a word, with a "long message" note |
| Telegram callback data           | DATA_LIMIT = 64 bytes                | a hash key, payload kept in SQL        |
| console upload                   | SHOPBOT_CONSOLE_UPLOAD_MB (+64 KiB form) | 413 naming the setting             |
| Rasa action call                 | MAX_BODY = 20 MiB, raw or inflated   | 413                                    |
| `shopbot receiver` webhook body  | MAX_BODY = 1 MiB                     | 413, nothing queued                    |
"""

from __future__ import annotations

import asyncio
import json
import zlib
from pathlib import Path

import httpx
import pytest
from aiohttp import ClientSession
from starlette.testclient import TestClient

from bot.app import Assistant, build_assistant
from bot.channels.rasa import server as rasa_server
from bot.channels.rasa.actions import ActionRuntime
from bot.channels.telegram import receiver as tg_receiver
from bot.channels.telegram.bot import DATA_LIMIT, PayloadCodec
from bot.console.app import create_app
from bot.dialogue.manager import MAX_CHARS
from bot.dialogue.messages import say
from bot.dialogue.replies import Event
from bot.settings import Settings
from bot.store.database import Store
from tests.conftest import write_catalog
from tests.console.conftest import Clock, csrf_of, log_in, make_settings
from tests.fakes.redis_queue import redis_up, temp_queue
from tests.fakes.telegram_harness import free_port
from tests.hostile.test_properties import _Payloads


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", catalog=write_catalog(tmp_path / "catalog.csv"), encoder="hashing",
                    multilingual_encoder="hashing", body_view=False, reload_seconds=0, llm="off")


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    a = build_assistant(_settings(tmp_path_factory.mktemp("limits")), llm=False)
    yield a  # type: ignore[misc]
    a.close()


# ------------------------------------------------------------------------------------------ chat messages

def _words(n: int) -> str:
    text = ("red coat " * (n // 9 + 2))[:n]
    return text[:-1] + "x" if text.endswith(" ") else text


def test_a_message_at_the_limit_is_read_whole_and_one_past_it_is_cut_with_a_note(assistant: Assistant) -> None:
    note = say("too_long", "en")
    at = assistant.handle(Event(user="limit-at", channel="test", text=_words(MAX_CHARS)))
    assert note not in [r.text for r in at]
    over = assistant.handle(Event(user="limit-over", channel="test", text=_words(MAX_CHARS + 1)))
    assert over[0].text == note and len(over) > 1  # the note, then the answer to what was read
    huge = assistant.handle(Event(user="limit-huge", channel="test", text="红" * 200_000))
    assert huge[0].text == say("too_long", "zh")


# ------------------------------------------------------------------------------- Telegram callback data

def test_callback_data_at_64_bytes_is_sent_as_it_is_and_past_it_as_a_stored_key() -> None:
    codec = PayloadCodec(_Payloads())
    at = "a" * (DATA_LIMIT - 3) + "红"  # 64 bytes in UTF-8, 62 characters
    assert len(at.encode()) == DATA_LIMIT and codec.encode(at) == at
    over = at + "a"
    data = codec.encode(over)
    assert data != over and len(data.encode()) <= DATA_LIMIT and codec.decode(data) == over
    assert codec.decode("h:forged-key-nobody-stored") is None  # a forged key is unknown, not an error


# ------------------------------------------------------------------------------------------ console uploads

def test_a_console_upload_at_the_limit_is_read_and_one_past_it_gets_413(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", console_upload_mb=0.25)
    store = Store(settings.db_url, settings.buffer_dir)
    try:
        app = create_app(settings, store=store, clock=Clock(), secret_key="test-secret")
        with TestClient(app, base_url="http://127.0.0.1") as client:
            assert log_in(client).status_code == 303
            limit = int(settings.console_upload_mb * 2**20)

            def upload(size: int) -> httpx.Response:
                body = b"sku,title,price\n" + b"x" * (size - 16)
                token = csrf_of(client.get("/catalog").text)
                return client.post("/catalog/upload", data={"csrf_token": token},
                                   files={"file": ("c.csv", body, "text/csv")})

            assert upload(limit).status_code != 413
            r = upload(limit + 64 * 1024 + 1)
            assert r.status_code == 413 and "SHOPBOT_CONSOLE_UPLOAD_MB" in r.text
    finally:
        store.close()


# ------------------------------------------------------------------------------------ Rasa action calls

def _padded_call(size: int) -> bytes:
    """A well-formed action call for an action nobody serves, padded to exactly ``size`` bytes: a 404 says the
    server read it all, a 413 that it refused it."""
    base = {"next_action": "action_nobody_serves", "tracker": {"sender_id": "u1"}, "pad": ""}
    pad = size - len(json.dumps(base).encode())
    body = json.dumps({**base, "pad": "a" * pad}).encode()
    assert len(body) == size
    return body


def test_a_rasa_action_call_at_the_limit_is_read_and_past_it_raw_or_inflated_gets_413(tmp_path: Path) -> None:
    limit = rasa_server.MAX_BODY
    a = build_assistant(_settings(tmp_path), llm=False)
    server = rasa_server.ActionServer(ActionRuntime(a), port=free_port()).start()
    try:
        url = server.url + "/webhook"
        with httpx.Client(timeout=60) as http:
            assert http.post(url, content=_padded_call(limit)).status_code == 404
            assert http.post(url, content=_padded_call(limit + 1)).status_code == 413
            deflate = {"Content-Encoding": "deflate"}
            r = http.post(url, content=zlib.compress(_padded_call(limit)), headers=deflate)
            assert r.status_code == 404
            # 100 MiB of zeros deflate to ~100 KiB: the bomb is refused before it is inflated whole
            bomb = zlib.compress(b"0" * (100 * 2**20), 9)
            assert len(bomb) < 2**20
            r = http.post(url, content=bomb, headers=deflate)
            assert r.status_code == 413 and "MiB" in r.json()["error"]
            assert http.post(url, content=b"[" * 100_000, headers={}).status_code == 400  # nested, not a 500
    finally:
        server.stop()
        a.close()


# ------------------------------------------------------------------------------ webhook bodies (receiver)

@pytest.mark.skipif(not redis_up(), reason="Redis is not reachable at 127.0.0.1:6379")
def test_a_webhook_body_at_1_mib_is_queued_and_past_it_gets_413_and_nothing_is_queued() -> None:
    limit = tg_receiver.MAX_BODY

    def update(size: int) -> bytes:
        base = {"update_id": 5, "message": {"chat": {"id": 9}, "text": ""}}
        pad = size - len(json.dumps(base).encode())
        body = json.dumps({"update_id": 5, "message": {"chat": {"id": 9}, "text": "a" * pad}}).encode()
        assert len(body) == size
        return body

    async def test() -> None:
        async with temp_queue() as q:
            port = free_port()
            server = tg_receiver.Receiver(q, "sec", path="/telegram").listen("127.0.0.1", port)
            url, headers = f"http://127.0.0.1:{port}/telegram", {tg_receiver.SECRET_HEADER: "sec"}
            try:
                async with ClientSession() as http:
                    for size in (limit + 1, 4 * limit):
                        async with http.post(url, data=update(size), headers=headers) as r:
                            assert r.status == 413 and str(limit) in await r.text()
                    assert sum((await q.depth()).values()) == 0
                    async with http.post(url, data=update(limit), headers=headers) as r:
                        assert r.status == 200
                    assert sum((await q.depth()).values()) == 1
            finally:
                server.stop()
                await server.close_all_connections()

    asyncio.run(test())
