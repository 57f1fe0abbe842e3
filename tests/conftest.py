"""Shared fixtures: PostgreSQL per-test schemas and state stores on SQLite and PostgreSQL.

``pg_url`` is a URL to a fresh, empty schema of the test PostgreSQL (CONCORD_TEST_PG_URL, default
postgresql+psycopg://postgres@127.0.0.1:5432/test); the schema is dropped afterwards, so tests can
run in parallel (pytest-xdist). Without a reachable server those tests skip, or fail when CI=true.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from sync.store import Store, normalise_url

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _pg_base_url() -> URL:
    return normalise_url(os.environ.get("CONCORD_TEST_PG_URL", DEFAULT_PG_URL))


@pytest.fixture(scope="session")
def pg_server_url() -> URL:
    """The test PostgreSQL server's URL, once per session checked to answer."""
    url = _pg_base_url()
    shown = url.render_as_string(hide_password=True)
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        message = f"PostgreSQL not reachable at {shown}: start it or set CONCORD_TEST_PG_URL ({type(exc).__name__})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def pg_url(pg_server_url: URL) -> Iterator[str]:
    """A URL whose connections use a fresh schema of their own (search_path), dropped after the test."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(pg_server_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = pg_server_url.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """An empty database on each dialect: a SQLite file in tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'concord.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An opened, migrated Store on ``store_url``; closed after the test."""
    s = Store.open(store_url, upgrade=True)
    try:
        yield s
    finally:
        s.close()
