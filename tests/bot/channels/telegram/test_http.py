"""bot/channels/telegram/http.py: the keep-alive HTTP backend under python-telegram-bot.

Against a scripted raw TCP server (so every byte and every connection is visible): JSON bodies, one
connection reused, chunked and close-delimited answers, a kept-alive connection the server closed
(retried once on a new one; a fresh connection is never retried, so nothing is sent twice), timeouts,
cancellation. Against the fake Bot API server: python-telegram-bot's own error mapping on top of it."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from telegram import Bot
from telegram.error import BadRequest, NetworkError, TimedOut
from telegram.request import HTTPXRequest, RequestData
from telegram.request._requestparameter import RequestParameter

from bot.channels.telegram.http import BotAPIRequest, telegram_request
from tests.fakes.telegram_server import FakeTelegram

Answer = Callable[[int, "Seen"], Awaitable[bytes | None]]  # (connection number, request) -> raw answer; None: close


@dataclass
class Seen:
    connection: int
    head: str
    body: bytes

    @property
    def request_line(self) -> str:
        return self.head.split("\r\n", 1)[0]

    def header(self, name: str) -> str | None:
        for line in self.head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


@dataclass
class Server:
    """A raw HTTP/1.1 server whose answers the test writes byte by byte."""

    answer: Answer
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    tls: ssl.SSLContext | None = None

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot123:abc/"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        n = self.connections
        try:
            while True:
                try:
                    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                except asyncio.IncompleteReadError:
                    return
                length = next((int(line.split(":", 1)[1]) for line in head.split("\r\n")
                               if line.lower().startswith("content-length:")), 0)
                seen = Seen(n, head, await reader.readexactly(length))
                self.seen.append(seen)
                out = await self.answer(n, seen)
                if out is None:
                    return
                writer.write(out)
                await writer.drain()
                if b"\r\nConnection: close\r\n" in out.split(b"\r\n\r\n", 1)[0] + b"\r\n":
                    return
        finally:
            writer.close()


def ok(result: Any = True, *, extra: str = "") -> bytes:
    body = json.dumps({"ok": True, "result": result}).encode()
    return f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def data(**params: Any) -> RequestData:
    return RequestData([RequestParameter.from_input(k, v) for k, v in params.items()])


def test_a_json_body_and_one_kept_alive_connection_for_many_requests() -> None:
    async def answer(_n: int, seen: Seen) -> bytes:
        return ok({"echo": json.loads(seen.body)})

    async def main() -> None:
        async with Server(answer) as server:
            req = BotAPIRequest(4)
            await req.initialize()
            for i in range(3):
                status, body = await req.do_request(server.url + "sendMessage", "POST",
                                                    data(chat_id=7, text=f"héllo {i} & <b>", reply_markup={"inline_keyboard": []}))
                assert status == 200
                assert json.loads(body)["result"]["echo"] == {"chat_id": 7, "text": f"héllo {i} & <b>",
                                                              "reply_markup": {"inline_keyboard": []}}
            await req.shutdown()
        assert server.connections == 1 and len(server.seen) == 3
        first = server.seen[0]
        assert first.request_line == "POST /bot123:abc/sendMessage HTTP/1.1"
        assert first.header("Content-Type") == "application/json" and first.header("Host") == f"127.0.0.1:{server.port}"

    asyncio.run(main())


def test_chunked_and_close_delimited_answers() -> None:
    async def answer(n: int, seen: Seen) -> bytes:
        if "chunked" in seen.request_line:
            return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5\r\n{\"ok\"\r\n9;ext=1\r\n:true,\"re\r\nb\r\nsult\":true}\r\n0\r\nX-Trailer: 1\r\n\r\n")
        return b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"ok\":true,\"result\":1}"

    async def main() -> None:
        async with Server(answer) as server:
            req = BotAPIRequest(2)
            assert await req.do_request(server.url + "chunked", "POST", data(a=1)) == (200, b'{"ok":true,"result":true}')
            assert await req.do_request(server.url + "chunked", "POST", data(a=2)) == (200, b'{"ok":true,"result":true}')
            assert await req.do_request(server.url + "closing", "POST", data(a=3)) == (200, b'{"ok":true,"result":1}')
            assert req.open_connections == 0  # "Connection: close" is honoured
            assert (await req.do_request(server.url + "closing", "POST", data(a=4)))[0] == 200
            await req.shutdown()
        assert server.connections == 2

    asyncio.run(main())


def test_a_kept_alive_connection_the_server_dropped_is_retried_on_a_new_one_a_fresh_one_never() -> None:
    async def answer(n: int, seen: Seen) -> bytes | None:
        if n == 1 and len(server.seen) == 2:
            return None  # the server drops the kept-alive connection: no answer to the second request
        if "fresh" in seen.request_line:
            return None
        return ok(len(server.seen))

    server = Server(answer)

    async def main() -> None:
        async with server:
            req = BotAPIRequest(2)
            assert (await req.do_request(server.url + "a", "POST", data(x=1)))[1] == ok(1).split(b"\r\n\r\n")[1]
            status, body = await req.do_request(server.url + "b", "POST", data(x=2))
            assert status == 200 and json.loads(body)["result"] == 3  # answered on connection 2
            assert [s.connection for s in server.seen] == [1, 1, 2]
            await req.shutdown()
            fresh = BotAPIRequest(2)
            with pytest.raises(NetworkError, match="without answering"):
                await fresh.do_request(server.url + "fresh", "POST", data(x=3))
            assert sum("fresh" in s.request_line for s in server.seen) == 1  # not sent twice
            await fresh.shutdown()

    asyncio.run(main())


def test_timeouts_and_cancellation_never_leave_a_connection_half_used() -> None:
    async def answer(_n: int, seen: Seen) -> bytes:
        if "slow" in seen.request_line:
            await asyncio.sleep(0.5)
        return ok()

    async def main() -> None:
        async with Server(answer) as server:
            req = BotAPIRequest(1, pool_timeout=0.05)
            with pytest.raises(TimedOut):
                await req.do_request(server.url + "slow", "POST", data(x=1), read_timeout=0.05)
            assert req.open_connections == 0
            slow = asyncio.create_task(req.do_request(server.url + "slow", "POST", data(x=2)))
            await asyncio.sleep(0.05)
            with pytest.raises(TimedOut, match="Pool timeout"):  # the only slot is busy
                await req.do_request(server.url + "quick", "POST", data(x=3))
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            assert req.open_connections == 0  # a cancelled exchange is not reused
            assert (await req.do_request(server.url + "quick", "POST", data(x=4)))[0] == 200
            await req.shutdown()

    asyncio.run(main())


def test_python_telegram_bot_on_top_errors_and_uploads() -> None:
    async def main() -> None:
        async with FakeTelegram() as tg:
            bot = Bot(tg.token, base_url=tg.base_url, request=BotAPIRequest(4))
            async with bot:
                me = await bot.get_me()
                assert me.username == "demo_shop_bot"
                msg = await bot.send_message(5, "<b>Tom &amp; Jerry</b>", parse_mode="HTML")
                assert msg.text == "Tom & Jerry" and msg.entities[0].type == "bold"
                with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
                    await bot.send_message(5, "Tom & Jerry", parse_mode="HTML")
                photo = await bot.send_photo(5, b"\xff\xd8 bytes", caption="a \"quoted\" name", filename='mug "1".jpg')
                assert photo.caption == 'a "quoted" name'
            upload = tg.requests("sendPhoto")[0].params["photo"]
            assert upload["bytes"] == b"\xff\xd8 bytes" and upload["upload"] == "mug %221%22.jpg"

    asyncio.run(main())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_https_checks_the_certificate(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    async def answer(_n: int, _seen: Seen) -> bytes:
        return ok()

    async def main() -> None:
        async with Server(answer, tls=tls) as server:
            url = f"https://localhost:{server.port}/bot1:x/getMe"
            trusting = BotAPIRequest(2, ssl_context=ssl.create_default_context(cafile=str(cert)))
            assert await trusting.do_request(url, "POST", data()) == (200, ok().split(b"\r\n\r\n")[1])
            await trusting.shutdown()
            with pytest.raises(NetworkError, match=r"(?i)certificate"):  # a self-signed certificate is refused
                await BotAPIRequest(2).do_request(url, "POST", data())
        assert server.seen[0].header("Host") == f"localhost:{server.port}"

    asyncio.run(main())


def test_a_proxy_in_the_environment_means_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    kw: dict[str, Any] = {"connection_pool_size": 4, "read_timeout": 5, "write_timeout": 5, "connect_timeout": 5,
                          "pool_timeout": 1}
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(telegram_request("https://api.telegram.org/bot", **kw), BotAPIRequest)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert isinstance(telegram_request("https://api.telegram.org/bot", **kw), HTTPXRequest)
    monkeypatch.setenv("NO_PROXY", "api.telegram.org")
    assert isinstance(telegram_request("https://api.telegram.org/bot", **kw), BotAPIRequest)
