"""What every command takes from the ``shopbot`` group: the settings, the debug flag, and the resources they open.

The root command (bot/cli/main.py) reads Settings once, applying ``--data-dir`` and ``--encoder``, and puts
them on the click context; commands read them back through these helpers instead of each keeping its own copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from bot.cli.errors import UserError
from bot.settings import Settings

if TYPE_CHECKING:  # these pull in SQLAlchemy, faiss and the models: only commands that use them pay for them
    from bot.app import Assistant
    from bot.observability.http import OpsServer
    from bot.observability.ready import Readiness
    from bot.store.database import Store
    from retrieval.search import SearchEngine

__all__ = ["assistant_for", "debug", "echo_err", "engine_for", "open_store", "settings", "start_ops", "without_llm"]


def settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]  # type: ignore[no-any-return]


def debug(ctx: click.Context) -> bool:
    return bool(ctx.obj.get("debug", False))


def without_llm(s: Settings, no_llm: bool) -> Settings:
    """``--no-llm``: the same settings with the language model off (templates only)."""
    return s.model_copy(update={"llm": "off"}) if no_llm else s


def echo_err(line: str) -> None:
    """Progress and notes go to stderr, so that stdout stays the command's answer (or its JSON)."""
    click.echo(line, err=True)


@contextmanager
def open_store(s: Settings) -> Iterator[Store]:
    """The configured database (SQLite file or SHOPBOT_DATABASE_URL), closed when the command ends."""
    from bot.store.database import Store  # SQLAlchemy: start-up speed

    store = Store(s.db_url, s.buffer_dir)
    try:
        yield store
    finally:
        store.close()


def engine_for(s: Settings, *, build_if_missing: bool = True) -> SearchEngine:
    """The current search index; a first start builds it from the catalog, saying so on stderr."""
    from bot.services import load_engine  # the search stack (faiss, numpy): start-up speed

    return load_engine(s, build_if_missing=build_if_missing, notify=echo_err)


def assistant_for(s: Settings) -> Assistant:
    """The whole assistant (bot/app.py) over the current index, for the commands that serve shoppers."""
    from bot.app import build_assistant  # models and the search stack: start-up speed

    return build_assistant(s, engine=engine_for(s))


def start_ops(listen: str, port: int | None,
              checks: Mapping[str, Callable[[], bool]]) -> tuple[OpsServer | None, Readiness]:
    """/healthz, /readyz and /metrics on ``listen:port`` (None: off) for a command without an HTTP port of its
    own, started before the assistant loads, so that an orchestrator sees the process alive and not ready yet
    while the index and the models load; the caller adds the real checks when it has them."""
    # prometheus-client is loaded only when a command serves metrics, so that `shopbot --help` stays fast
    from bot.observability.http import start_ops_server
    from bot.observability.ready import Readiness

    ready = Readiness(checks)
    if port is None:
        return None, ready
    try:
        return start_ops_server(listen, port, ready), ready
    except OSError as exc:
        raise UserError(f"Cannot serve metrics on {listen}:{port} ({exc.strerror or exc}); choose another "
                        "--metrics-port (SHOPBOT_METRICS_PORT).") from None
