"""Alembic environment, run by :meth:`bot.store.database.Store.migrate` with an open connection.

No alembic.ini: the store builds the configuration in code, so a shop never edits a second config
file. The store hands over its own connection (``config.attributes["connection"]``) so the migration
runs inside the transaction it opened (and, on PostgreSQL, under its advisory lock); without one, for
example from a hand-built ``alembic.config.Config``, ``sqlalchemy.url`` is used.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection

from bot.store.schema import Base

config = context.config
target_metadata = Base.metadata


def _migrate(connection: Connection) -> None:
    # batch mode: SQLite cannot ALTER most things in place, later migrations must copy tables there
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    conn = config.attributes.get("connection")
    if conn is not None:
        _migrate(conn)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            _migrate(connection)
    finally:
        engine.dispose()


def run_offline() -> None:
    """SQL script output (``alembic upgrade --sql``) for a DBA who applies schema changes by hand."""
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
