"""Cross-instance inbox wake-ups: on PostgreSQL an event queued through one daemon wakes the
instance that owns its pipeline (LISTEN/NOTIFY), instead of waiting for that instance's poll."""
from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from sync import daemon as daemon_module
from sync.daemon import Daemon
from sync.inbox_wake import InboxListener, listen_connect
from sync.store import InboxEvent, Store

from .fakes import FakePipelines, fake_runtime, make_config
from .procs import wait_for

pytestmark = pytest.mark.postgres


def ev(record: str, n: int = 0) -> InboxEvent:
    return InboxEvent(system="hubspot", event_id=f"companies:{record}:{n}", object="companies",
                      record_id=record, kind="update")


class Wakes:
    """Counts calls of the listener's ``wake``."""

    def __init__(self) -> None:
        self.count = 0
        self._cond = threading.Condition()

    def __call__(self) -> None:
        with self._cond:
            self.count += 1
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.count >= count, timeout)


@pytest.fixture
def stores(pg_url: str) -> Iterator[tuple[Store, Store]]:
    """Two stores on one schema, as two daemons have."""
    a, b = Store.open(pg_url), Store.open(pg_url)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


@pytest.fixture
def pg_url_2(pg_server_url: URL) -> Iterator[str]:
    """A second fresh schema on the same database (another Concord installation)."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(pg_server_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield pg_server_url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def listening(stores: tuple[Store, Store]) -> Iterator[Wakes]:
    """A listener on the first store's schema, already listening, its start-up wake counted."""
    connect = listen_connect(stores[0].engine)
    assert connect is not None
    wakes, stopping = Wakes(), threading.Event()
    listener = InboxListener(connect, wakes, stopping, timeout=0.2)
    listener.start()
    try:
        assert listener.listening.wait(10) and wakes.wait_for(1)
        yield wakes
    finally:
        stopping.set()
        listener.join(10)


def test_events_queued_by_another_store_wake_the_listener(stores, listening) -> None:
    _, other = stores
    assert other.inbox_add("hubspot", [ev("1"), ev("2")]) == 2
    assert listening.wait_for(2)


def test_duplicates_and_other_schemas_wake_nobody(stores, listening, pg_url_2: str) -> None:
    _, other = stores
    other.inbox_add("hubspot", [ev("1")])
    assert listening.wait_for(2)
    unrelated = Store.open(pg_url_2)
    try:
        assert other.inbox_add("hubspot", [ev("1")]) == 0  # a duplicate: nothing new to do
        assert unrelated.inbox_add("hubspot", [ev("9")]) == 1  # another Concord's schema
        other.inbox_add("hubspot", [ev("3")])
    finally:
        unrelated.close()
    # Notifications arrive in commit order: once the last one is in, the others would have been.
    assert listening.wait_for(3)
    assert listening.count == 3


def test_sqlite_has_no_listener(tmp_path: Path) -> None:
    s = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        assert listen_connect(s.engine) is None
    finally:
        s.close()


def test_the_owner_syncs_events_queued_by_another_instance_without_polling(
        tmp_path: Path, stores, monkeypatch) -> None:
    owner_store, other = stores
    monkeypatch.setattr(daemon_module, "INBOX_POLL", 3600.0)  # only a wake-up can start a round
    pipelines = FakePipelines()
    d = Daemon(make_config(tmp_path), instance="owner", serve_web=False, pipeline_factory=pipelines,
               runtime_factory=lambda cfg, **kw: fake_runtime(cfg, owner_store, "owner"))
    d.start()
    try:
        assert wait_for(lambda: d.leases is not None and d.leases.holds("customer")
                        and d._listener is not None and d._listener.listening.is_set(), 10)
        assert wait_for(lambda: len(pipelines.reports) == 2, 10)  # the start-up runs are over
        other.inbox_add("hubspot", [ev("42")])  # what the other instance's web app does
        assert wait_for(lambda: any(c.ids == ["42"] for c in pipelines.sync_calls), 10)
        assert wait_for(lambda: owner_store.inbox_pending() == 0, 10)
    finally:
        assert d.shutdown(timeout=10)
    assert not d._listener.listening.is_set()
