"""``shopbot db upgrade``: bring the database schema to the newest Alembic migration, then exit.

Every process that opens the store migrates on its own (bot/store/database.py), which is right for one bot
on a laptop. A stack of many workers wants the schema settled once, before any of them starts, by a one-shot
step that says which revision it reached and fails loudly when the database is not there: the ``migrate``
service of docker/compose.yaml runs this command, and the receiver and workers start only after it exited 0.
"""

from __future__ import annotations

import click

from bot.cli.context import debug, settings
from bot.cli.errors import UserError

__all__ = ["db_group"]


@click.group(name="db")
def db_group() -> None:
    """The database schema (SQLite file or SHOPBOT_DATABASE_URL)."""


@db_group.command(name="upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Migrate the schema to the newest revision and print the revision reached (idempotent)."""
    # SQLAlchemy and Alembic: start-up speed of `shopbot --help`
    from sqlalchemy import text

    from bot.store.database import Store
    from bot.store.outbox import first_line, is_down

    s = settings(ctx)
    store = Store(s.db_url, s.buffer_dir, migrate=False)
    where = store.describe()
    try:
        store.migrate()
        with store.engine.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    except Exception as exc:
        if debug(ctx) or not is_down(exc):
            raise
        raise UserError(f"The database at {where} cannot be reached ({first_line(exc)}); start it or fix "
                        "SHOPBOT_DATABASE_URL, then run `shopbot db upgrade` again.") from None
    finally:
        store.engine.dispose()
    click.echo(f"Database at {where} is at revision {revision} (newest).")
