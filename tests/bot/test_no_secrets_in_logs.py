"""No bot token, database password or broker password reaches a log line, a command's output or an error message,
on the start-up and error paths a shop meets first: a bad token, a database or Redis that cannot be reached with
a password in its URL, a failing Bot API call. Everything is captured at DEBUG through the command's own log
handler (what the shop's log collector receives) and the command's stdout and stderr."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from bot.channels.telegram.bot import ShopBot
from bot.cli.main import cli
from bot.observability.logs import log_handler
from bot.settings import Settings
from tests.fakes.telegram_harness import free_port
from tests.fakes.telegram_server import FakeTelegram

TOKEN = "987654321:AAHsecretsecretsecretsecretsecretXY"  # the shape of a real token, not the fake server's
DB_PASSWORD = "db-Pa55word-zzq"
REDIS_PASSWORD = "redis-Pa55word-qqz"
SECRETS = (TOKEN, TOKEN.split(":", 1)[1], DB_PASSWORD, REDIS_PASSWORD)


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Every record of every logger at DEBUG, written by the handler the commands install."""
    buf = io.StringIO()
    handler = log_handler("json", stream=buf, secrets=[TOKEN])
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield buf
    root.removeHandler(handler)
    root.setLevel(old)


def _clean(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def _run(args: list[str], env: dict[str, str]) -> str:
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code != 0, result.output
    return result.output + (str(result.exception) if result.exception and not isinstance(result.exception, SystemExit) else "")


def test_unreachable_redis_and_database_with_passwords_in_their_urls(tmp_path, logs: io.StringIO) -> None:  # type: ignore[no-untyped-def]
    env = {"SHOPBOT_DATA_DIR": str(tmp_path), "SHOPBOT_TELEGRAM_TOKEN": TOKEN,
           "SHOPBOT_BROKER_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0",
           "SHOPBOT_DATABASE_URL": f"postgresql+psycopg://shop:{DB_PASSWORD}@127.0.0.1:{free_port()}/shop"}
    redis_out = _run(["--debug", "worker"], env)
    assert "Cannot reach the broker" in redis_out
    db_out = _run(["stats"], env)
    assert "cannot be reached" in db_out
    _clean(redis_out, db_out, logs.getvalue())
    assert "127.0.0.1" in db_out  # the message still says where


def test_a_refused_token_and_a_failing_bot_api_call(tmp_path, logs: io.StringIO) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, telegram_token=TOKEN, telegram_max_rate=0)
    shop = ShopBot(SimpleNamespace(store=SimpleNamespace(url="sqlite://")), settings)  # type: ignore[arg-type]
    errors: list[str] = []

    async def main() -> None:
        async with FakeTelegram() as tg:  # knows another token: getMe answers 401
            app = shop.application(base_url=tg.base_url, max_retries=0)
            try:
                await app.initialize()
            except Exception as exc:
                # python-telegram-bot's own InvalidToken names the token: `shopbot telegram` replaces it by a
                # sentence of its own, and a log line of it is redacted
                errors.append(type(exc).__name__)
                logging.getLogger("bot.channels.telegram").error("Start failed: %s", exc, exc_info=exc)
        app = shop.application(base_url=f"http://127.0.0.1:{free_port()}/bot", max_retries=0)  # nothing listens
        try:
            await app.bot.send_message(chat_id=1, text="hello")
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc!r} {exc}")
            logging.getLogger("bot.channels.telegram").error("Sending failed: %s", exc, exc_info=exc)

    asyncio.run(main())
    assert len(errors) == 2 and errors[0] == "InvalidToken"
    _clean(*errors, logs.getvalue())
    assert "Start failed" in logs.getvalue() and "Sending failed" in logs.getvalue()
    assert logs.getvalue()  # DEBUG lines were written (the libraries log their requests), and none had a secret
