"""``shopbot console``: the shop owner's web console (bot/console/, docs/console.md)."""

from __future__ import annotations

import click

from bot.cli.context import debug, settings
from bot.cli.errors import UserError, user_errors

__all__ = ["console"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (keep it local; put a TLS proxy in front for remote use).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.pass_context
def console(ctx: click.Context, host: str, port: int) -> None:
    """Serve the owner's console: overview, conversations and handoffs, catalog, models, demand gaps."""
    s = settings(ctx)
    if s.console_password is None or not s.console_password.get_secret_value():
        raise UserError("Set SHOPBOT_CONSOLE_PASSWORD (the console's login password) before starting the console.")
    with user_errors(debug(ctx)):
        import uvicorn  # the web stack: start-up speed of the other commands

        from bot.console.app import create_app

        app = create_app(s)
    click.echo(f"shopbot console on http://{host}:{port}/ (log in with SHOPBOT_CONSOLE_PASSWORD)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
