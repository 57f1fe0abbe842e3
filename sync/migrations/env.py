"""Alembic environment of the state store.

At runtime :meth:`sync.store.Store.upgrade` passes its own connection (already in a transaction) in
``config.attributes["connection"]``. For development, ``alembic -c sync/alembic.ini revision
--autogenerate -m "..." -x url=sqlite:///dev.db`` works too (or set CONCORD_STATE_URL).
"""
from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from sync.store import Base, normalise_url

config = context.config
if config.config_file_name and "connection" not in config.attributes:
    fileConfig(config.config_file_name)  # CLI use only: at runtime the application owns logging
target_metadata = Base.metadata


def _url() -> str:
    url = (context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("CONCORD_STATE_URL")
           or config.get_main_option("sqlalchemy.url"))
    if not url:
        raise SystemExit("no database URL: pass -x url=... or set CONCORD_STATE_URL")
    return url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite can't ALTER most things: future migrations rebuild tables in batch mode.
        render_as_batch=connection.dialect.name == "sqlite",
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade head --sql``) instead of running it."""
    url = normalise_url(_url())
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True,
                      dialect_opts={"paramstyle": "named"}, render_as_batch=url.get_backend_name() == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the given connection, or on a fresh one to the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():  # joins the caller's transaction
            context.run_migrations()
        return
    engine = create_engine(normalise_url(_url()), poolclass=NullPool)
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
