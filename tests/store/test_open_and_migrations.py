"""Opening the store: URLs, SQLite settings, Alembic migrations, readiness."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from sync.store import Base, Store, StoreError, StoreUnavailable, normalise_url

TABLES = {"links", "cursors", "inbox", "dead_letters", "conflicts", "runs", "leases", "match_index",
          "write_intents"}


def test_postgresql_urls_get_the_psycopg3_driver() -> None:
    assert normalise_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u:p@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("sqlite:///x.db").drivername == "sqlite"


def test_unsupported_database_is_refused_without_showing_the_password() -> None:
    with pytest.raises(StoreError) as err:
        normalise_url("mysql://root:s3cret-pw@db/concord")
    assert "s3cret-pw" not in str(err.value)
    assert "mysql" in str(err.value)


def test_unreachable_postgresql_is_store_unavailable_and_hides_the_password() -> None:
    with pytest.raises(StoreUnavailable) as err:
        Store.open("postgresql://concord:s3cret-pw@127.0.0.1:1/concord", upgrade=False)
    assert "s3cret-pw" not in str(err.value)
    assert "127.0.0.1:1" in str(err.value)


def test_url_for_display_hides_the_password(store: Store) -> None:
    u = normalise_url("postgresql://concord:s3cret-pw@db.example.com/concord")
    store_like = Store(create_engine(u))
    try:
        assert "s3cret-pw" not in store_like.url_for_display
        assert "db.example.com" in store_like.url_for_display
    finally:
        store_like.close()


def test_sqlite_creates_parent_folder_and_sets_pragmas(tmp_path: Path) -> None:
    db = tmp_path / "deep" / "er" / "state.db"
    s = Store.open(f"sqlite:///{db}")
    try:
        assert db.exists()
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        s.close()


def test_sqlite_in_memory_works_single_threaded() -> None:
    s = Store.open("sqlite://")
    try:
        assert s.current_revision() == Store.head_revision()
        assert s.count_links("customer") == 0
    finally:
        s.close()


def test_upgrade_on_empty_database_reaches_head_and_creates_tables(store_url: str) -> None:
    s = Store.open(store_url, upgrade=False)
    try:
        assert s.current_revision() is None
        s.upgrade()
        assert s.current_revision() == Store.head_revision() == "0002"
        with s.engine.connect() as conn:
            assert TABLES <= set(inspect(conn).get_table_names())
    finally:
        s.close()


def test_upgrade_twice_is_a_no_op(store: Store) -> None:
    store.save_links([])  # schema usable
    store.start_run("p", "me")
    store.upgrade()
    store.upgrade()
    assert store.current_revision() == Store.head_revision()
    assert len(store.last_runs()) == 1  # data untouched


def test_opening_an_existing_store_keeps_its_data(store_url: str) -> None:
    first = Store.open(store_url)
    first.start_run("p", "me")
    first.close()
    again = Store.open(store_url)
    try:
        assert [r.pipeline for r in again.last_runs()] == ["p"]
    finally:
        again.close()


def test_migrations_match_the_models(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_partial_unique_indexes_exist(store: Store) -> None:
    with store.engine.connect() as conn:
        indexes = {ix["name"]: ix for t in ("dead_letters", "conflicts") for ix in inspect(conn).get_indexes(t)}
    assert indexes["uq_dead_letters_open"]["unique"]
    assert indexes["uq_conflicts_open"]["unique"]


def test_ping(store: Store) -> None:
    assert store.ping() is True
    store.close()
    assert store.ping() is True  # the pool reconnects after dispose


def test_ping_false_when_database_is_gone() -> None:
    s = Store(create_engine(normalise_url("postgresql://u:pw@127.0.0.1:1/x"),
                            connect_args={"connect_timeout": 1}))
    try:
        assert s.ping() is False
    finally:
        s.close()


def test_alembic_version_table_is_in_the_store_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"


def test_two_instances_upgrading_an_empty_database_at_once(store_url: str) -> None:
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    opened: list[Store] = []

    def start() -> None:
        try:
            barrier.wait()
            opened.append(Store.open(store_url))
        except BaseException as exc:  # surfaced by the assertion below  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert [s.current_revision() for s in opened] == ["0002", "0002"]
    finally:
        for s in opened:
            s.close()
