"""Cross-instance inbox wake-ups on PostgreSQL (LISTEN/NOTIFY).

A webhook accepted by one daemon must reach the instance that owns its pipeline without waiting
for that instance's next inbox poll. ``Tx.inbox_add`` notifies :data:`CHANNEL` inside its
transaction (PostgreSQL delivers it at commit, so a woken worker finds the rows), and each daemon
listens on a connection of its own. The poll stays as the fallback: a lost notification, a
listener reconnecting or a pooler that drops LISTEN (PgBouncer in transaction mode) costs at most
one poll interval, never an event. SQLite has no notifications: there the poll is the only path.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.engine import Engine

log = structlog.get_logger("concord.inbox")

CHANNEL = "concord_inbox"
# Run by inbox_add in its transaction when it queued new events. The payload is the notifying
# schema: several Concord stores may share one database.
NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', current_schema())")
RECONNECT_MAX = 30.0  # seconds between attempts to get the listening connection back


Connect = Callable[[], Any]  # -> an autocommit psycopg connection


def listen_connect(engine: Engine) -> Connect | None:
    """A factory of dedicated autocommit connections for LISTEN (outside the pool, which would
    hand a listening session to other work); None when the store is not PostgreSQL + psycopg."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return None
    import psycopg

    cargs, cparams = engine.dialect.create_connect_args(engine.url)

    def connect() -> Any:
        return psycopg.connect(*cargs, **{**cparams, "autocommit": True, "application_name": "concord-listen",
                                           "connect_timeout": 10})
    return connect


class InboxListener:
    """A thread that calls ``wake`` whenever another session committed new inbox events for this
    store's schema; it reconnects (with backoff) until ``stopping`` is set."""

    def __init__(self, connect: Connect, wake: Callable[[], None], stopping: threading.Event, *,
                 timeout: float = 1.0) -> None:
        self._connect = connect
        self._wake = wake
        self._stopping = stopping
        self._timeout = timeout  # how soon a quiet listener notices ``stopping``
        self._thread = threading.Thread(target=self._run, name="concord-inbox-listen", daemon=True)
        self.listening = threading.Event()  # set while LISTEN is in effect (tests, diagnostics)

    def start(self) -> None:
        """Start listening in the background."""
        self._thread.start()

    def join(self, timeout: float) -> None:
        """Wait for the thread to end (after ``stopping`` was set)."""
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            try:
                self._listen()
                delay = 1.0
            except Exception as exc:  # the store is away: the poll carries on meanwhile
                self.listening.clear()
                log.warning("inbox.listen_failed", error=type(exc).__name__, retry_in=delay)
                self._stopping.wait(delay)
                delay = min(RECONNECT_MAX, delay * 2)
        self.listening.clear()

    def _listen(self) -> None:
        with self._connect() as conn:
            schema = conn.execute("SELECT current_schema()").fetchone()[0]
            conn.execute(f"LISTEN {CHANNEL}")
            self.listening.set()
            log.info("inbox.listening", channel=CHANNEL)
            # Events committed while no LISTEN was in effect sent their notification to nobody.
            self._wake()
            while not self._stopping.is_set():
                for note in conn.notifies(timeout=self._timeout):
                    if note.payload == schema:
                        self._wake()
                    if self._stopping.is_set():
                        break
