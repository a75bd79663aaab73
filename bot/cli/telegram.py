"""``shopbot telegram``: the shop assistant as a Telegram bot, by long polling or behind a webhook.

python-telegram-bot is imported only when the command runs, so that the other commands never load it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import click

from bot.cli.context import assistant_for, debug, settings, start_ops, without_llm
from bot.cli.errors import UserError, user_errors

if TYPE_CHECKING:
    from bot.app import Assistant
    from bot.settings import Settings

__all__ = ["telegram"]


@click.command(name="telegram")
@click.option("--webhook", "webhook_url", default=None, metavar="URL",
              help="Public URL Telegram posts updates to (https://shop.example/telegram); long polling when omitted.")
# bandit B104 is a false positive: the webhook receiver must be reachable; --listen narrows it
@click.option("--listen", default="0.0.0.0", show_default=True, help="Address the webhook server binds to.")  # nosec B104
@click.option("--port", default=8443, show_default=True, type=int, help="Port the webhook server listens on.")
@click.option("--drop-pending", is_flag=True, help="Skip the updates that arrived while the bot was off.")
@click.option("--no-llm", is_flag=True, help="Templates only, no language model (same as SHOPBOT_LLM=off).")
@click.option("--turns-at-once", type=click.IntRange(min=1), default=None,
              help="Dialogue turns computed at the same time [default: 1 with SQLite, 4 with a database server].")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="Serve /healthz, /readyz and /metrics on --listen at this port (overrides SHOPBOT_METRICS_PORT).")
@click.pass_context
def telegram(ctx: click.Context, webhook_url: str | None, listen: str, port: int, drop_pending: bool, no_llm: bool,
             turns_at_once: int | None, metrics_port: int | None) -> None:
    """Run the shop assistant in Telegram (SHOPBOT_TELEGRAM_TOKEN from @BotFather).

    Long polling needs nothing but the token. With --webhook, Telegram posts updates to URL, which your
    reverse proxy (TLS) forwards to --listen:--port at the same path; every request must carry the
    secret token (SHOPBOT_TELEGRAM_WEBHOOK_SECRET, derived from the bot token when unset). Several
    workers can serve one bot behind a load balancer when they share one PostgreSQL database
    (SHOPBOT_DATABASE_URL). SHOPBOT_TELEGRAM_API_URL points the bot at a self-hosted Bot API server.
    With SHOPBOT_METRICS_PORT (or --metrics-port) it serves /healthz, /readyz and /metrics on that port.
    """
    try:
        # loaded when the command runs, so that `shopbot --help` stays fast; here, so that a broken install
        # is said before minutes of loading
        from telegram.error import InvalidToken  # noqa: F401
    except ImportError:  # pragma: no cover - a broken install
        raise UserError('python-telegram-bot is missing: pip install "python-telegram-bot[webhooks,rate-limiter]==22.8".') from None

    s = without_llm(settings(ctx), no_llm)
    if s.telegram_token is None or not s.telegram_token.get_secret_value().strip():
        raise UserError("No Telegram bot token: create a bot with @BotFather and set SHOPBOT_TELEGRAM_TOKEN to its token.")
    if webhook_url is not None:
        parsed = urlparse(webhook_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UserError(f"--webhook needs a full URL such as https://shop.example/telegram, not {webhook_url!r}.")
    ops, ready = start_ops(listen, metrics_port if metrics_port is not None else s.metrics_port,
                           {"index": lambda: False, "database": lambda: False})
    try:
        with user_errors(debug(ctx)):
            assistant = assistant_for(s)
        assistant.warm_up()
        if ops is not None:
            ready.update(assistant.readiness())
            click.echo(f"shopbot: /healthz, /readyz and /metrics on {listen}:{ops.port}.", err=True)
        _run(ctx, s, assistant, webhook_url, listen, port, drop_pending, turns_at_once)
    finally:
        if ops is not None:
            ops.close()


def _run(ctx: click.Context, s: Settings, assistant: Assistant, webhook_url: str | None, listen: str, port: int,
         drop_pending: bool, turns_at_once: int | None) -> None:
    """Serve Telegram until stopped; every failure a user can cause ends in one sentence."""
    # loaded when the command runs, so that `shopbot --help` stays fast
    from telegram.error import InvalidToken, NetworkError

    from bot.channels.telegram.bot import ALLOWED_UPDATES, ShopBot, webhook_secret

    app = ShopBot(assistant, s, turns_at_once=turns_at_once).application()
    mode = f"webhook {webhook_url} (listening on {listen}:{port})" if webhook_url else "long polling"
    click.echo(f"shopbot: {len(assistant.engine.products)} products; Telegram bot running by {mode}. Ctrl+C stops it.", err=True)
    asyncio.set_event_loop(asyncio.new_event_loop())  # run_* close their loop at the end: start from a fresh one
    try:
        if webhook_url:
            app.run_webhook(listen=listen, port=port, url_path=urlparse(webhook_url).path.lstrip("/"),
                            webhook_url=webhook_url, secret_token=webhook_secret(s), allowed_updates=ALLOWED_UPDATES,
                            drop_pending_updates=drop_pending)
        else:
            app.run_polling(allowed_updates=ALLOWED_UPDATES, drop_pending_updates=drop_pending)
    except InvalidToken:
        assistant.close()
        raise UserError("Telegram refused the bot token: check SHOPBOT_TELEGRAM_TOKEN (@BotFather shows it with /token).") from None
    except NetworkError as exc:
        assistant.close()
        raise UserError(f"Cannot reach the Telegram Bot API at {s.telegram_api_url} ({exc.message}); "
                        "check the network or SHOPBOT_TELEGRAM_API_URL.") from None
    except OSError as exc:  # the webhook port is taken or not ours to bind
        assistant.close()
        raise UserError(f"Cannot listen on {listen}:{port} ({exc.strerror or exc}); choose another --port.") from None
