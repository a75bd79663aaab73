"""``shopbot receiver`` and ``shopbot worker``: Telegram in webhook mode, scaled out over a Redis queue.

``shopbot telegram`` (long polling, nothing else to run) stays the default. These two commands are for a
bot that outgrows one process: receivers take Telegram's webhook calls and queue the updates, workers
answer them (bot/channels/telegram/receiver.py, worker.py, queue.py; docs/scale-out.md).
python-telegram-bot, tornado and redis are imported only when one of them runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import click

from bot.cli.context import assistant_for, debug, open_store, settings, start_ops, without_llm
from bot.cli.errors import UserError, user_errors

if TYPE_CHECKING:
    from bot.channels.telegram.queue import RedisUpdateQueue
    from bot.settings import Settings

__all__ = ["receiver", "worker"]

PREFIX_HELP = "Prefix of every Redis key (two bots can share one Redis); receivers and workers must agree."
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


def _broker(s: Settings, prefix: str, *, block_seconds: float = 0.0) -> RedisUpdateQueue:
    """The queue, checked: an unreachable broker ends the command in one sentence."""
    from redis.exceptions import RedisError

    from bot.channels.telegram.queue import RedisUpdateQueue
    from bot.observability.logs import redact

    async def ping() -> None:
        q = RedisUpdateQueue.from_url(s.broker_url, shards=s.queue_shards, prefix=prefix)
        try:
            await q.ping()
        finally:
            await q.close()

    try:
        asyncio.run(ping())
    except (RedisError, OSError, ValueError) as exc:
        raise UserError(f"Cannot reach the broker at {redact(s.broker_url)} ({exc}); start Redis or set "
                        "SHOPBOT_BROKER_URL.") from None
    return RedisUpdateQueue.from_url(s.broker_url, shards=s.queue_shards, prefix=prefix,
                                     lease_seconds=s.queue_lease_seconds, block_seconds=block_seconds)


def _broker_check(url: str) -> Callable[[], bool]:
    """A readiness check (run in a thread): the broker answers a PING."""
    import redis

    def check() -> bool:
        client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
        try:
            return bool(client.ping())
        finally:
            client.close()

    return check


def _stop_on_signals(stop: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not in the main thread (tests)
            loop.add_signal_handler(sig, stop)


# ----------------------------------------------------------------------------------------- receiver


@click.command(name="receiver")
# bandit B104 is a false positive: a server in a container must listen on all interfaces; --listen narrows it
@click.option("--listen", default="0.0.0.0", show_default=True, help="Address to bind.")  # nosec B104
@click.option("--port", default=8443, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--path", "url_path", default="/telegram", show_default=True,
              help="Path Telegram posts updates to (your reverse proxy forwards the public URL here).")
@click.option("--webhook", "webhook_url", default=None, metavar="URL",
              help="Register this public URL with Telegram at start (setWebhook, with the secret token); leave it "
                   "out when another receiver or a deploy step registers it.")
@click.option("--key-prefix", default="shopbot", show_default=True, help=PREFIX_HELP)
@click.pass_context
def receiver(ctx: click.Context, listen: str, port: int, url_path: str, webhook_url: str | None, key_prefix: str) -> None:
    """Take Telegram's webhook calls and queue each update for `shopbot worker` (Redis at SHOPBOT_BROKER_URL).

    Answers 200 once the update is queued, 403 without the secret token (SHOPBOT_TELEGRAM_WEBHOOK_SECRET,
    derived from the bot token when unset), 400 for a body that is not an update and 503 while the broker
    is down (Telegram then retries). The same port serves /healthz, /readyz and /metrics. Run as many as
    you like behind a load balancer; SIGTERM stops one after the calls in progress.
    """
    from bot.channels.telegram.bot import webhook_secret
    from bot.channels.telegram.receiver import Receiver
    from bot.observability.logs import redact

    s = settings(ctx)
    if s.telegram_webhook_secret is None and (s.telegram_token is None or not s.telegram_token.get_secret_value().strip()):
        raise UserError("No webhook secret: set SHOPBOT_TELEGRAM_WEBHOOK_SECRET (or SHOPBOT_TELEGRAM_TOKEN, from which "
                        "it is derived) to the same value on every receiver.")
    secret = webhook_secret(s)
    if not _SECRET.fullmatch(secret):
        raise UserError("SHOPBOT_TELEGRAM_WEBHOOK_SECRET may hold only letters, digits, _ and - (1 to 256 of them), "
                        "as Telegram requires.")
    if webhook_url is not None:
        parsed = urlparse(webhook_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UserError(f"--webhook needs a full URL such as https://shop.example/telegram, not {webhook_url!r}.")
        if s.telegram_token is None:
            raise UserError("--webhook registers the URL with Telegram, which needs SHOPBOT_TELEGRAM_TOKEN.")
    from bot.observability.ready import Readiness

    queue = _broker(s, key_prefix)
    recv = Receiver(queue, secret, path=url_path, ready=Readiness({"broker": _broker_check(s.broker_url)}))

    async def serve() -> None:
        try:
            server = recv.listen(listen, port)
        except OSError as exc:
            raise UserError(f"Cannot listen on {listen}:{port} ({exc.strerror or exc}); choose another --port.") from None
        stop = asyncio.Event()
        _stop_on_signals(stop.set)
        try:
            if webhook_url is not None:
                await _set_webhook(s, webhook_url, secret)
            click.echo(f"shopbot: receiver on {listen}:{port}{recv.path}, queueing to {redact(s.broker_url)} "
                       f"({s.queue_shards} shards, keys {key_prefix}:*). Ctrl+C or SIGTERM stops it.", err=True)
            await stop.wait()
        finally:
            server.stop()  # no new connections; the calls in progress finish below
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.close_all_connections(), 10)
            await queue.close()

    asyncio.run(serve())


async def _set_webhook(s: Settings, url: str, secret: str) -> None:
    from telegram import Bot
    from telegram.error import TelegramError

    from bot.channels.telegram.bot import ALLOWED_UPDATES

    assert s.telegram_token is not None
    try:
        async with Bot(s.telegram_token.get_secret_value(), base_url=s.telegram_api_url) as bot:
            await bot.set_webhook(url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)
    except TelegramError as exc:
        raise UserError(f"Telegram refused the webhook {url} ({exc.message}); check the URL and SHOPBOT_TELEGRAM_TOKEN.") from None


# ------------------------------------------------------------------------------------------ worker


@click.command(name="worker")
@click.option("--concurrency", type=click.IntRange(min=1), default=8, show_default=True,
              help="Updates handled at the same time (each from a different shard; one chat's are never side by side).")
@click.option("--turns-at-once", type=click.IntRange(min=1), default=None,
              help="Dialogue turns computed at the same time [default: 1 with SQLite, 4 with a database server].")
@click.option("--no-llm", is_flag=True, help="Templates only, no language model (same as SHOPBOT_LLM=off).")
@click.option("--key-prefix", default="shopbot", show_default=True, help=PREFIX_HELP)
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="Serve /healthz, /readyz and /metrics on 0.0.0.0 at this port (overrides SHOPBOT_METRICS_PORT).")
@click.pass_context
def worker(ctx: click.Context, concurrency: int, turns_at_once: int | None, no_llm: bool, key_prefix: str,
           metrics_port: int | None) -> None:
    """Answer the updates `shopbot receiver` queued, exactly once each, with as many workers as you like.

    Workers share the queue's shards fairly (a chat's messages are answered in order, different chats in
    parallel), record every answered update in the database (SHOPBOT_DATABASE_URL: PostgreSQL when several
    workers run) and take over a stopped worker's shards within SHOPBOT_QUEUE_LEASE_SECONDS. SIGTERM stops
    taking updates, finishes those in progress and gives the shards back.
    """
    from bot.channels.telegram.queue import default_worker_id
    from bot.observability.logs import redact

    s = without_llm(settings(ctx), no_llm)
    if s.telegram_token is None or not s.telegram_token.get_secret_value().strip():
        raise UserError("No Telegram bot token: create a bot with @BotFather and set SHOPBOT_TELEGRAM_TOKEN to its token.")
    worker_id = default_worker_id()
    queue = _broker(s, key_prefix, block_seconds=1.0)
    with user_errors(debug(ctx)), open_store(s) as store:
        store.update_handled(0)  # the database answers, with the handled_updates table in place
    port = metrics_port if metrics_port is not None else s.metrics_port
    # bandit B104 is a false positive: the ops port serves only /metrics and /healthz
    ops, ready = start_ops("0.0.0.0", port, {"broker": _broker_check(s.broker_url), "index": lambda: False})  # nosec B104
    try:
        with user_errors(debug(ctx)):
            assistant = assistant_for(s)
        assistant.warm_up()
        ready.update(assistant.readiness())
        click.echo(f"shopbot: worker {worker_id}, {len(assistant.engine.products)} products; answering updates from "
                   f"{redact(s.broker_url)} ({s.queue_shards} shards, keys {key_prefix}:*)"
                   + (f"; /healthz, /readyz and /metrics on port {ops.port}" if ops is not None else "")
                   + ". Ctrl+C or SIGTERM stops it.", err=True)
        asyncio.run(_work(s, assistant, queue, worker_id, concurrency, turns_at_once))
    finally:
        if ops is not None:
            ops.close()


async def _work(s: Settings, assistant: Any, queue: RedisUpdateQueue, worker_id: str, concurrency: int,
                turns_at_once: int | None) -> None:
    from telegram.error import InvalidToken, NetworkError

    from bot.channels.telegram.bot import ShopBot
    from bot.channels.telegram.worker import Worker

    app = ShopBot(assistant, s, turns_at_once=turns_at_once, polling_inbox=False).application()
    work = Worker(app, assistant.store, queue.consumer(worker_id), lease_seconds=s.queue_lease_seconds,
                  concurrency=concurrency, depth=queue.depth)
    work.install()
    try:
        await app.initialize()
    except InvalidToken:
        await queue.close()
        assistant.close()
        raise UserError("Telegram refused the bot token: check SHOPBOT_TELEGRAM_TOKEN (@BotFather shows it with /token).") from None
    except NetworkError as exc:
        await queue.close()
        assistant.close()
        raise UserError(f"Cannot reach the Telegram Bot API at {s.telegram_api_url} ({exc.message}); "
                        "check the network or SHOPBOT_TELEGRAM_API_URL.") from None
    try:
        if app.post_init is not None:  # what run_polling would do: the command menu, the model reload watch
            await app.post_init(app)
        await app.start()
        _stop_on_signals(work.stop)
        await work.run()
    finally:
        if app.running:
            await app.stop()
        if app.post_shutdown is not None:  # closes the assistant (and its database connections)
            await app.post_shutdown(app)
        await app.shutdown()
        await queue.close()
        o = work.outcomes
        click.echo(f"shopbot: worker {worker_id} stopped: {o['handled']} updates answered, {o['duplicate']} "
                   f"duplicates skipped, {o['failed']} failed, {work.consumer.redeliveries} taken over from "
                   f"stopped workers, {work.replayed} messages not sent twice.", err=True)
