"""``shopbot actions``: serve shopbot's Rasa custom actions (bot/channels/rasa/) for a Rasa assistant.

Point a Rasa project's endpoints.yml at it (``action_endpoint: url: http://HOST:PORT/webhook``); the server
itself (request checks, rasa-sdk's Sanic app, /healthz, /readyz and /metrics on the same port) is
bot/channels/rasa/server.py.
"""

from __future__ import annotations

import socket
from typing import Any

import click

from bot.cli.context import assistant_for, debug, settings, without_llm
from bot.cli.errors import UserError, user_errors

__all__ = ["actions_command"]


@click.command(name="actions")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 in a container).")
@click.option("--port", default=5055, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--no-llm", is_flag=True, help="Templates only, no language model (same as SHOPBOT_LLM=off).")
@click.option("--cors", default=None, help="Allowed CORS origin(s), comma-separated (none by default).")
@click.pass_context
def actions_command(ctx: click.Context, host: str, port: int, no_llm: bool, cors: str | None) -> None:
    """Serve shopbot's Rasa custom actions (rasa-sdk) for a Rasa assistant's endpoints.yml."""
    # rasa-sdk (Sanic) and the assistant's models load slowly: only when the server starts
    from bot.channels.rasa.actions import ACTIONS, ActionRuntime
    from bot.channels.rasa.server import create_action_app
    from bot.channels.rasa.translate import intent_map

    s = without_llm(settings(ctx), no_llm)
    _check_free(host, port)  # before minutes of loading, not after
    try:
        intent_map(s.rasa_intents)  # likewise a mapping of the shop's intents that shopbot cannot use
    except ValueError as exc:
        raise UserError(str(exc)) from None
    with user_errors(debug(ctx)):
        assistant = assistant_for(s)
        assistant.warm_up()
    runtime = ActionRuntime(assistant, llm_timeout=s.llm_timeout)
    origins = [o.strip() for o in cors.split(",") if o.strip()] if cors else None
    app = create_action_app(runtime, cors_origins=origins)

    @app.after_server_stop  # type: ignore[untyped-decorator]  # rasa_sdk ships no type hints: its app is Any
    async def close(app: Any) -> None:
        await runtime.aclose()

    names = ", ".join(cls.action_name for cls in ACTIONS)
    click.echo(f"Serving Rasa actions on http://{host}:{port}/webhook ({names}); /healthz, /readyz and /metrics on "
               "the same port; Ctrl-C stops.", err=True)
    # loaded when the command runs, so that `shopbot --help` stays fast
    from sanic.exceptions import ServerError

    try:
        app.run(host=host, port=port, single_process=True, access_log=False, motd=False)
    except (OSError, ServerError) as exc:
        raise UserError(_cannot_listen(host, port, exc)) from None


def _cannot_listen(host: str, port: int, exc: BaseException) -> str:
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
    return f"Cannot listen on {host}:{port} ({why}); stop what uses it or pick another --port."


def _check_free(host: str, port: int) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UserError(f"Cannot listen on {host}:{port}: unknown address ({exc.strerror or exc}); use an IP such as 127.0.0.1.") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise UserError(_cannot_listen(host, port, exc)) from None
