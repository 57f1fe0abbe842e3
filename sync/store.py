"""The state store: links, cursors, inbox, dead letters, conflicts, runs, leases, the match index and the
write intents (writes in flight).

SQLAlchemy 2.0 on SQLite (the embedded default, WAL mode) or PostgreSQL (``postgresql+psycopg``).
The schema is created only by the Alembic migrations in ``sync/migrations`` (:meth:`Store.upgrade`).
Callers get plain dataclasses, never ORM objects, so nobody holds a session. Every public method
of :class:`Store` runs in its own transaction; :meth:`Store.transaction` yields a :class:`Tx` with
the same methods so several writes (links + cursor) commit atomically.
"""
from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TypeVar, cast

import structlog
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    case,
    create_engine,
    delete,
    event,
    false,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import StaticPool

from connectors.base import Watermark
from sync import inbox_wake
from sync.model import json_scalar

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

log = structlog.get_logger("concord.store")

System = Literal["crm", "erp"]
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
IN_CHUNK = 500  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits
MATCH_CHUNK = 1000
RUN_STATUSES = frozenset({"running", "ok", "failed", "interrupted"})
CONFLICT_RESOLUTIONS = frozenset({"crm", "erp"})


# ============================================================================================
# Errors
# ============================================================================================
class StoreError(Exception):
    """Base of the state store's own errors."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or opened (the CLI maps this to exit code 3)."""


class StaleEpoch(StoreError):
    """A cursor write was fenced off: another instance took the pipeline's lease since."""

    def __init__(self, pipeline: str, system: str, entity: str, stored: int, given: int) -> None:
        super().__init__(f"cursor {pipeline}/{system}/{entity} is at epoch {stored}, "
                         f"this instance holds epoch {given}")
        self.pipeline, self.system, self.entity = pipeline, system, entity
        self.stored, self.given = stored, given


class RecordNotFound(StoreError, LookupError):
    """No dead letter / conflict / run with that id."""


class AlreadyResolved(StoreError):
    """The dead letter or conflict was already resolved."""


# ============================================================================================
# Column types
# ============================================================================================
class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite stores them naive (in UTC) and gets them back aware.

    On SQLite the text is written and parsed here (bind_processor/result_processor), in the format
    SQLAlchemy's DATETIME uses, so existing files read the same and text comparisons order
    correctly: its own processors cost more than a link's other columns together.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # Guessing a zone for a naive timestamp would silently shift cursors: refuse it.
            raise ValueError(f"naive datetime {value!r}: the store only takes timezone-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        check = self.process_bind_param

        def process(value: datetime | None) -> str | None:
            value = check(value, dialect)
            if value is None:
                return None
            return (f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:{value.minute:02d}:"
                    f"{value.second:02d}.{value.microsecond:06d}")
        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: str | None) -> datetime | None:
            return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)
        return process


def _json_default(value: Any) -> Any:
    out = json_scalar(value)  # the same text sync.model's content hash uses
    if out is not value:
        return out
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    # A payload is diagnostic data: keep a readable form rather than lose the dead letter.
    return repr(value)


# Built once: json.dumps with options builds a new encoder per call, and links, intents and dead
# letters are stored by the thousand.
_STORED = json.JSONEncoder(default=_json_default, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_STORED_ASCII = json.JSONEncoder(default=_json_default, sort_keys=True, separators=(",", ":"))


def dumps(value: Any) -> str:
    """JSON text as stored: sorted keys; Decimals as normalised strings, datetimes as ISO UTC."""
    text = _STORED.encode(value)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate (from a product's JSON escape) cannot be stored as text; escaped it
            # can, and it still decodes to the same value.
            text = _STORED_ASCII.encode(value)
    return text


class EncodedOnce(dict):  # type: ignore[type-arg]
    """A dict stored in several rows (a link's base and its write intent): its JSON text is built
    once. Treat it as frozen once stored."""

    __slots__ = ("_text",)

    def stored_text(self) -> str:
        try:
            return self._text  # type: ignore[no-any-return]
        except AttributeError:
            self._text = dumps(self)
            return self._text


class JSONText(TypeDecorator[Any]):
    """JSON kept in a Text column (portable across dialects); decoded on the way out."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if type(value) is EncodedOnce:
            return value.stored_text()
        return None if value is None else dumps(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


def _id_type() -> Any:
    # SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
    return BigInteger().with_variant(Integer(), "sqlite")


# ============================================================================================
# Tables (created by sync/migrations/versions/*, never by metadata.create_all)
# ============================================================================================
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of the store's tables; its metadata is the migrations' autogenerate target."""

    metadata = MetaData(naming_convention=NAMING)


class LinkRow(Base):
    """The ID cross-reference of one record pair, with the hashes and base of the last sync."""

    __tablename__ = "links"
    # The id leads so a lookup "entity = ? AND crm_id IN (...)" can only probe by id; led by entity,
    # PostgreSQL with stale statistics (a first bulk sync) scans every link of the entity instead.
    __table_args__ = (
        UniqueConstraint("crm_id", "entity"),
        UniqueConstraint("erp_id", "entity"),
    )
    id: Mapped[int] = mapped_column(_id_type(), primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(64))
    crm_id: Mapped[str] = mapped_column(String(255))
    erp_id: Mapped[str] = mapped_column(String(255))
    crm_hash: Mapped[str | None] = mapped_column(String(64))
    erp_hash: Mapped[str | None] = mapped_column(String(64))
    base: Mapped[Any | None] = mapped_column(JSONText())
    crm_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    erp_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted: Mapped[bool] = mapped_column(Boolean(), server_default=false())


class CursorRow(Base):
    """The watermark of the last fully processed change, per (pipeline, system, entity)."""

    __tablename__ = "cursors"
    pipeline: Mapped[str] = mapped_column(String(128), primary_key=True)
    system: Mapped[str] = mapped_column(String(64), primary_key=True)
    entity: Mapped[str] = mapped_column(String(64), primary_key=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    record_id: Mapped[str] = mapped_column(String(255))
    epoch: Mapped[int] = mapped_column(BigInteger(), server_default=text("0"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InboxRow(Base):
    """A webhook event waiting for (or done by) the worker; deduplicated on (system, event_id)."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("system", "event_id"),
        Index("ix_inbox_pending", "id", sqlite_where=text("processed_at IS NULL"),
              postgresql_where=text("processed_at IS NULL")),
    )
    id: Mapped[int] = mapped_column(_id_type(), primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(255))
    object: Mapped[str] = mapped_column(String(128))
    record_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    payload: Mapped[Any] = mapped_column(JSONText())
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DeadLetterRow(Base):
    """A change that failed; at most one open row per (pipeline, system, record_id)."""

    __tablename__ = "dead_letters"
    __table_args__ = (
        Index("uq_dead_letters_open", "pipeline", "system", "record_id", unique=True,
              sqlite_where=text("resolved_at IS NULL"), postgresql_where=text("resolved_at IS NULL")),
        Index("ix_dead_letters_due", "pipeline", "next_retry_at",
              sqlite_where=text("resolved_at IS NULL"), postgresql_where=text("resolved_at IS NULL")),
    )
    id: Mapped[int] = mapped_column(_id_type(), primary_key=True, autoincrement=True)
    pipeline: Mapped[str] = mapped_column(String(128))
    entity: Mapped[str] = mapped_column(String(64))
    system: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String(255))
    payload: Mapped[Any] = mapped_column(JSONText())
    error_class: Mapped[str] = mapped_column(String(255))
    error_message: Mapped[str] = mapped_column(Text())
    field: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer())
    first_failed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    parked: Mapped[bool] = mapped_column(Boolean(), server_default=false())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution: Mapped[str | None] = mapped_column(String(16))  # synced | dropped


class ConflictRow(Base):
    """Both versions of a record a human must decide on; at most one open row per (entity, crm_id)."""

    __tablename__ = "conflicts"
    __table_args__ = (
        Index("uq_conflicts_open", "entity", "crm_id", unique=True,
              sqlite_where=text("resolved_at IS NULL"), postgresql_where=text("resolved_at IS NULL")),
    )
    id: Mapped[int] = mapped_column(_id_type(), primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(64))
    link_id: Mapped[int | None] = mapped_column(_id_type(), ForeignKey("links.id", ondelete="SET NULL"))
    crm_id: Mapped[str] = mapped_column(String(255))
    erp_id: Mapped[str | None] = mapped_column(String(255))
    crm_version: Mapped[Any] = mapped_column(JSONText())
    erp_version: Mapped[Any] = mapped_column(JSONText())
    base: Mapped[Any | None] = mapped_column(JSONText())
    fields: Mapped[Any] = mapped_column(JSONText())
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution: Mapped[str | None] = mapped_column(String(16))


class RunRow(Base):
    """One pipeline run and what it did."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_pipeline_started_at", "pipeline", "started_at"),)
    id: Mapped[int] = mapped_column(_id_type(), primary_key=True, autoincrement=True)
    pipeline: Mapped[str] = mapped_column(String(128))
    instance: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    counts: Mapped[Any] = mapped_column(JSONText())
    api_calls: Mapped[Any] = mapped_column(JSONText())
    error: Mapped[str | None] = mapped_column(Text())


class LeaseRow(Base):
    """Which instance owns a pipeline until when; ``epoch`` is the fencing token."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(255))
    epoch: Mapped[int] = mapped_column(BigInteger())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MatchIndexRow(Base):
    """Normalised match_on values of one system's records, for first-run matching and reconcile."""

    __tablename__ = "match_index"
    __table_args__ = (Index("ix_match_index_lookup", "value", "kind", "entity", "system"),)  # value first: see links
    entity: Mapped[str] = mapped_column(String(64), primary_key=True)
    system: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text())


class WriteIntentRow(Base):
    """A write Concord is about to make (committed before the API call, deleted with the batch's links):
    what both sides will hold once it lands, so a crash in between cannot pass it off as a user's edit."""

    __tablename__ = "write_intents"
    __table_args__ = (  # id first, entity second: see links
        Index("ix_write_intents_crm_id_entity", "crm_id", "entity"),
        Index("ix_write_intents_erp_id_entity", "erp_id", "entity"),
    )
    id: Mapped[int] = mapped_column(_id_type(), primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(8))  # the role whose change is being written: crm | erp
    crm_id: Mapped[str | None] = mapped_column(String(255))  # None: a create on the CRM (keyed by erp_id)
    erp_id: Mapped[str | None] = mapped_column(String(255))
    is_create: Mapped[bool] = mapped_column(Boolean(), server_default=false())
    base: Mapped[Any] = mapped_column(JSONText())     # {"crm": {...}, "erp": {...}} once written
    written: Mapped[Any] = mapped_column(JSONText())  # {"crm": [fields], "erp": [fields]} sent to each side
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


# Statements are Core on the mapped tables: bulk upserts with RETURNING, no identity map to fill.
LINKS = cast(Table, LinkRow.__table__)
CURSORS = cast(Table, CursorRow.__table__)
INBOX = cast(Table, InboxRow.__table__)
DEAD = cast(Table, DeadLetterRow.__table__)
CONFLICTS = cast(Table, ConflictRow.__table__)
RUNS = cast(Table, RunRow.__table__)
LEASES = cast(Table, LeaseRow.__table__)
MATCH = cast(Table, MatchIndexRow.__table__)
INTENTS = cast(Table, WriteIntentRow.__table__)


# ============================================================================================
# Values handed to callers
# ============================================================================================
@dataclass(slots=True)
class Link:
    """A record pair. ``base`` is the canonical content last agreed on both sides (3-way merge)."""

    entity: str
    crm_id: str
    erp_id: str
    crm_hash: str | None = None
    erp_hash: str | None = None
    base: dict[str, Any] | None = None
    crm_updated_at: datetime | None = None
    erp_updated_at: datetime | None = None
    synced_at: datetime | None = None  # None: set to now by save_links
    deleted: bool = False
    id: int | None = None


@dataclass(slots=True)
class WriteIntent:
    """A write in flight: ``base`` is what each side holds once it lands (the link's next base),
    ``written`` the fields sent to each side; the id of a side Concord creates is None."""

    entity: str
    source: System
    crm_id: str | None
    erp_id: str | None
    base: dict[str, Any]
    written: dict[str, list[str]]
    is_create: bool = False
    created_at: datetime | None = None  # None: set to now by add_intents
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a pipeline's change feed on one system stands; ``epoch`` is the last writer's lease epoch."""

    updated_at: datetime
    record_id: str
    epoch: int
    changed_at: datetime | None = None

    @property
    def watermark(self) -> Watermark:
        """The cursor as the connectors' :class:`Watermark`."""
        return Watermark(self.updated_at, self.record_id)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A change that failed; retried on a backoff until parked (``attempts >= max_attempts``)."""

    id: int
    pipeline: str
    entity: str
    system: str
    record_id: str
    payload: dict[str, Any]
    error_class: str
    error_message: str
    field: str | None
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    next_retry_at: datetime | None
    parked: bool
    resolved_at: datetime | None
    resolution: str | None  # synced | dropped | None while open


@dataclass(frozen=True, slots=True)
class Conflict:
    """Both versions of a record that the conflict policy left to a human, and the fields at stake."""

    id: int
    entity: str
    link_id: int | None
    crm_id: str
    erp_id: str | None
    crm_version: dict[str, Any]
    erp_version: dict[str, Any]
    base: dict[str, Any] | None
    fields: list[str]
    detected_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    resolution: str | None


@dataclass(frozen=True, slots=True)
class Run:
    """One pipeline run."""

    id: int
    pipeline: str
    instance: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    counts: dict[str, Any]
    api_calls: dict[str, Any]
    error: str | None


@dataclass(frozen=True, slots=True)
class Lease:
    """The current holder of a named lease."""

    name: str
    owner: str
    epoch: int
    expires_at: datetime


@dataclass(slots=True)
class InboxEvent:
    """A webhook event as queued; a hint only (the worker re-reads the record)."""

    system: str
    event_id: str
    object: str
    record_id: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    received_at: datetime | None = None
    id: int | None = None
    claimed_by: str | None = None


# ============================================================================================
# URLs and engines
# ============================================================================================
def normalise_url(url: str | URL) -> URL:
    """Parse a store URL; ``postgresql://`` and ``postgres://`` get the psycopg (3) driver."""
    if isinstance(url, str) and url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "postgresql" and u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    elif backend not in ("sqlite", "postgresql"):
        raise StoreError(f"unsupported state store database {backend!r} in "
                         f"{u.render_as_string(hide_password=True)}: use sqlite:/// or postgresql+psycopg://")
    return u


def _sqlite_in_memory(u: URL) -> bool:
    return u.database in (None, "", ":memory:") or "mode=memory" in (u.database or "")


def _create_engine(u: URL) -> Engine:
    if u.get_backend_name() == "sqlite":
        return _sqlite_engine(u)
    connect_args: dict[str, Any] = {"application_name": "concord"}
    if u.get_driver_name() == "psycopg":
        # No server-side prepared statements: a generic plan cached while the links table was empty keeps
        # scanning the whole table once it is large (until an ANALYZE); also keeps PgBouncer (transaction
        # pooling) working. Planning our short statements costs far less than a round trip.
        connect_args["prepare_threshold"] = None
    return create_engine(u, pool_pre_ping=True, pool_recycle=1800, pool_size=5, max_overflow=10,
                         connect_args=connect_args)


def _sqlite_engine(u: URL) -> Engine:
    kwargs: dict[str, Any] = {}
    if _sqlite_in_memory(u):
        # One shared connection, or every checkout would see its own empty database. Single-threaded use only.
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    elif u.database and not u.database.startswith("file:"):
        Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(u, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # We emit BEGIN ourselves (see _on_begin); pysqlite's own transaction handling skips SELECTs and DDL.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _enable_wal(cur)
        # NORMAL is durable against application crashes in WAL mode; a power cut may lose the last commits,
        # which only replays changes (every write is idempotent).
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Write transactions take the write lock up front: a deferred transaction that reads and then
        # writes fails with SQLITE_BUSY at once (busy_timeout does not apply) when another writer got in.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("concord_write") else "BEGIN")

    return engine


def _enable_wal(cur: Any) -> None:
    """Switch the file to WAL (once: the mode is stored in the file).

    Switching needs the file to itself and SQLite does not wait for that (busy_timeout does not
    apply): two processes opening a new store at once would see "database is locked". Retry
    within the busy timeout instead.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


def _utcnow() -> datetime:
    return datetime.now(UTC)


# ============================================================================================
# Row -> value conversion
# ============================================================================================
def _link(r: Any) -> Link:
    return Link(entity=r.entity, crm_id=r.crm_id, erp_id=r.erp_id, crm_hash=r.crm_hash, erp_hash=r.erp_hash,
                base=r.base, crm_updated_at=r.crm_updated_at, erp_updated_at=r.erp_updated_at,
                synced_at=r.synced_at, deleted=bool(r.deleted), id=r.id)


def _intent(r: Any) -> WriteIntent:
    return WriteIntent(entity=r.entity, source=r.source, crm_id=r.crm_id, erp_id=r.erp_id, base=r.base or {},
                       written=r.written or {}, is_create=bool(r.is_create), created_at=r.created_at, id=r.id)


def _dead_letter(r: Any) -> DeadLetter:
    return DeadLetter(id=r.id, pipeline=r.pipeline, entity=r.entity, system=r.system, record_id=r.record_id,
                      payload=r.payload, error_class=r.error_class, error_message=r.error_message,
                      field=r.field, attempts=r.attempts, first_failed_at=r.first_failed_at,
                      last_failed_at=r.last_failed_at, next_retry_at=r.next_retry_at, parked=bool(r.parked),
                      resolved_at=r.resolved_at, resolution=r.resolution)


def _conflict(r: Any) -> Conflict:
    return Conflict(id=r.id, entity=r.entity, link_id=r.link_id, crm_id=r.crm_id, erp_id=r.erp_id,
                    crm_version=r.crm_version, erp_version=r.erp_version, base=r.base, fields=r.fields,
                    detected_at=r.detected_at, updated_at=r.updated_at, resolved_at=r.resolved_at,
                    resolution=r.resolution)


def _run(r: Any) -> Run:
    return Run(id=r.id, pipeline=r.pipeline, instance=r.instance, started_at=r.started_at,
               finished_at=r.finished_at, status=r.status, counts=r.counts or {}, api_calls=r.api_calls or {},
               error=r.error)


def _inbox_event(r: Any) -> InboxEvent:
    return InboxEvent(system=r.system, event_id=r.event_id, object=r.object, record_id=r.record_id,
                      kind=r.kind, payload=r.payload or {}, received_at=r.received_at, id=r.id,
                      claimed_by=r.claimed_by)


# ============================================================================================
# One transaction
# ============================================================================================
class Tx:
    """The store's operations inside one database transaction (from :meth:`Store.transaction`).

    Not thread-safe: one Tx belongs to the thread that opened it.
    """

    def __init__(self, conn: Connection, clock: Callable[[], datetime]) -> None:
        self._conn = conn
        self._clock = clock
        self._dialect = conn.dialect.name

    @property
    def connection(self) -> Connection:
        """The underlying SQLAlchemy connection (for tests and diagnostics)."""
        return self._conn

    def _now(self) -> datetime:
        now = self._clock()
        _require_aware("clock()", now)
        return now

    def _insert(self, table: Any) -> Any:
        # The dialect-specific insert: both spell "ON CONFLICT" the same way for our needs.
        if self._dialect == "postgresql":
            return pg_dialect.insert(table)
        return sqlite_dialect.insert(table)

    def _lock(self, stmt: Any) -> Any:
        # FOR UPDATE on PostgreSQL; SQLite has no row locks (the IMMEDIATE transaction serialises writers).
        return self._conn.execute(stmt.with_for_update()).first()

    def _lock_or_insert(self, table: Any, where: Sequence[Any], values: dict[str, Any],
                        index_elements: Sequence[Any], index_where: Any | None = None) -> Any | None:
        """The existing row, locked; or None after inserting ``values`` (losing an insert race re-reads)."""
        stmt = select(table).where(*where)
        row = self._lock(stmt)
        if row is not None:
            return row
        # RETURNING tells inserted from skipped (rowcount of an INSERT is not reliable on every driver).
        ins = (self._insert(table).values(**values)
               .on_conflict_do_nothing(index_elements=list(index_elements), index_where=index_where)
               .returning(*table.primary_key.columns))
        if self._conn.execute(ins).first() is not None:
            return None
        row = self._lock(stmt)
        if row is None:  # inserted by someone else and already removed again: nothing sensible to merge with
            raise StoreError(f"concurrent update of {table.name}; retry")
        return row

    # ------------------------------------------------------------------------------ links
    def links_by_ids(self, entity: str, system: System, ids: Sequence[str]) -> dict[str, Link]:
        """Links of ``entity`` keyed by ``system``'s id, for those ids that have one."""
        col = _link_id_column(system)
        wanted = list(dict.fromkeys(ids))
        out: dict[str, Link] = {}
        for chunk in _chunks(wanted, IN_CHUNK):
            for r in self._conn.execute(select(LINKS).where(LINKS.c.entity == entity, col.in_(chunk))):
                out[r.crm_id if system == "crm" else r.erp_id] = _link(r)
        return out

    def save_links(self, links: Sequence[Link]) -> None:
        """Upsert links on (entity, crm_id); sets ``id`` (and ``synced_at`` when unset) on each.

        A link that claims an erp_id held by another crm_id supersedes that older link (the target
        record was just written for this crm_id, so the old pair is no longer true).
        """
        if not links:
            return
        now = self._now()
        by_entity: dict[str, dict[str, Link]] = {}
        for link in links:
            if link.synced_at is None:
                link.synced_at = now
            by_entity.setdefault(link.entity, {})[link.crm_id] = link  # last one of a crm_id wins
        for entity, by_crm in by_entity.items():
            by_erp: dict[str, Link] = {}
            for link in by_crm.values():
                earlier = by_erp.get(link.erp_id)
                if earlier is not None:
                    log.warning("store.link_superseded", entity=entity, erp_id=link.erp_id,
                                old_crm_id=earlier.crm_id, crm_id=link.crm_id, reason="same batch")
                by_erp[link.erp_id] = link
            batch = sorted(by_erp.values(), key=lambda lk: lk.crm_id)  # one lock order: no deadlocks
            self._drop_superseded(entity, batch)
            self._upsert_links(batch)
            for link in links:  # duplicates dropped above share the surviving row's id
                if link.entity == entity and link.id is None and link.crm_id in by_crm:
                    link.id = by_crm[link.crm_id].id

    def _drop_superseded(self, entity: str, batch: Sequence[Link]) -> None:
        # Find first, delete only when needed: superseding is rare, and a plain indexed SELECT is far
        # cheaper than a DELETE carrying a per-pair condition for every link of the batch.
        crm_of = {lk.erp_id: lk.crm_id for lk in batch}
        stale: list[int] = []
        for chunk in _chunks(list(crm_of), IN_CHUNK):
            rows = self._conn.execute(select(LINKS.c.id, LINKS.c.crm_id, LINKS.c.erp_id)
                                      .where(LINKS.c.entity == entity, LINKS.c.erp_id.in_(chunk)))
            for r in rows:
                if r.crm_id != crm_of[r.erp_id]:
                    log.warning("store.link_superseded", entity=entity, erp_id=r.erp_id, old_crm_id=r.crm_id,
                                crm_id=crm_of[r.erp_id])
                    stale.append(r.id)
        if stale:
            self._conn.execute(delete(LINKS).where(LINKS.c.id.in_(stale)))

    def _upsert_links(self, batch: Sequence[Link]) -> None:
        ins = self._insert(LINKS)
        cols = ("erp_id", "crm_hash", "erp_hash", "base", "crm_updated_at", "erp_updated_at", "synced_at",
                "deleted")
        stmt = (ins.on_conflict_do_update(index_elements=[LINKS.c.entity, LINKS.c.crm_id],
                                          set_={c: ins.excluded[c] for c in cols})
                .returning(LINKS.c.id, LINKS.c.crm_id))
        params = [{"entity": lk.entity, "crm_id": lk.crm_id, "erp_id": lk.erp_id, "crm_hash": lk.crm_hash,
                   "erp_hash": lk.erp_hash, "base": lk.base, "crm_updated_at": lk.crm_updated_at,
                   "erp_updated_at": lk.erp_updated_at, "synced_at": lk.synced_at, "deleted": lk.deleted}
                  for lk in batch]
        ids = {r.crm_id: r.id for r in self._conn.execute(stmt, params)}
        for lk in batch:
            lk.id = ids[lk.crm_id]

    def delete_link(self, entity: str, crm_id: str) -> None:
        """Remove the link of (entity, crm_id), if any."""
        self._conn.execute(delete(LINKS).where(LINKS.c.entity == entity, LINKS.c.crm_id == crm_id))

    def links_page(self, entity: str, after_id: int | None, limit: int) -> list[Link]:
        """Up to ``limit`` links of ``entity`` with id > ``after_id``, in id order (keyset paging)."""
        stmt = select(LINKS).where(LINKS.c.entity == entity)
        if after_id is not None:
            stmt = stmt.where(LINKS.c.id > after_id)
        return [_link(r) for r in self._conn.execute(stmt.order_by(LINKS.c.id).limit(limit))]

    def iter_links(self, entity: str, batch: int = 1000) -> Iterator[Link]:
        """All links of ``entity`` in id order, ``batch`` rows per query (bounded memory)."""
        after: int | None = None
        while True:
            page = self.links_page(entity, after, batch)
            yield from page
            if len(page) < batch:
                return
            after = page[-1].id

    def count_links(self, entity: str) -> int:
        """Number of links of ``entity`` (deleted ones included)."""
        return int(self._conn.scalar(select(func.count()).select_from(LINKS).where(LINKS.c.entity == entity)) or 0)

    # ------------------------------------------------------------------------------ write intents
    def add_intents(self, intents: Sequence[WriteIntent]) -> None:
        """Insert ``intents`` in one statement; sets ``id`` (and ``created_at`` when unset) on each."""
        if not intents:
            return
        now = self._now()
        for intent in intents:
            if intent.created_at is None:
                intent.created_at = now
        # One INSERT for the batch (insertmanyvalues). Ids are matched back by the record each row
        # names: asking for them in parameter order makes SQLAlchemy insert row by row on SQLite.
        stmt = INTENTS.insert().returning(INTENTS.c.id, INTENTS.c.source, INTENTS.c.crm_id, INTENTS.c.erp_id)
        params = [{"entity": i.entity, "source": i.source, "crm_id": i.crm_id, "erp_id": i.erp_id,
                   "is_create": i.is_create, "base": i.base, "written": i.written, "created_at": i.created_at}
                  for i in intents]
        ids: dict[tuple[str, str | None, str | None], list[int]] = {}
        for r in self._conn.execute(stmt, params):
            ids.setdefault((r.source, r.crm_id, r.erp_id), []).append(r.id)
        for group in ids.values():
            group.sort()
        for intent in intents:  # the same record twice in one call: ids in insertion order
            intent.id = ids[(intent.source, intent.crm_id, intent.erp_id)].pop(0)

    def intents_for(self, entity: str, *, crm_ids: Sequence[str] = (), erp_ids: Sequence[str] = ()
                    ) -> list[WriteIntent]:
        """Intents of ``entity`` naming one of ``crm_ids`` or ``erp_ids``, oldest first."""
        found: dict[int, WriteIntent] = {}
        for col, ids in ((INTENTS.c.crm_id, crm_ids), (INTENTS.c.erp_id, erp_ids)):
            for chunk in _chunks(list(dict.fromkeys(ids)), IN_CHUNK):
                for r in self._conn.execute(select(INTENTS).where(col.in_(chunk), INTENTS.c.entity == entity)):
                    found[r.id] = _intent(r)
        return [found[k] for k in sorted(found)]

    def clear_intents(self, ids: Sequence[int]) -> int:
        """Delete intents by id (their writes are recorded in links now, or never happened); returns how many."""
        n = 0
        for chunk in _chunks(sorted(set(ids)), IN_CHUNK):
            n += int(self._conn.execute(delete(INTENTS).where(INTENTS.c.id.in_(chunk))).rowcount or 0)
        return n

    def count_intents(self, entity: str | None = None) -> int:
        """Number of writes in flight (of ``entity``): left over by a crash until the next pass settles them."""
        stmt = select(func.count()).select_from(INTENTS)
        if entity is not None:
            stmt = stmt.where(INTENTS.c.entity == entity)
        return int(self._conn.scalar(stmt) or 0)

    # ------------------------------------------------------------------------------ cursors
    def get_cursor(self, pipeline: str, system: str, entity: str) -> Cursor | None:
        """The stored watermark, or None before the first run."""
        r = self._conn.execute(select(CURSORS).where(*_cursor_key(pipeline, system, entity))).first()
        return None if r is None else Cursor(r.updated_at, r.record_id, r.epoch, r.changed_at)

    def set_cursor(self, pipeline: str, system: str, entity: str, updated_at: datetime, record_id: str, *,
                   epoch: int | None = None) -> None:
        """Advance the cursor; never moves it backwards. Raises StaleEpoch when fenced off.

        ``epoch`` None means no fencing (single instance); the stored epoch is then kept.
        """
        _require_aware("updated_at", updated_at)
        now = self._now()
        row = self._lock_or_insert(
            CURSORS, _cursor_key(pipeline, system, entity),
            {"pipeline": pipeline, "system": system, "entity": entity, "updated_at": updated_at,
             "record_id": record_id, "epoch": epoch or 0, "changed_at": now},
            index_elements=[CURSORS.c.pipeline, CURSORS.c.system, CURSORS.c.entity])
        if row is None:
            return
        if epoch is not None and row.epoch > epoch:
            log.warning("store.cursor_fenced", pipeline=pipeline, system=system, entity=entity,
                        stored_epoch=row.epoch, epoch=epoch)
            raise StaleEpoch(pipeline, system, entity, row.epoch, epoch)
        new_epoch = row.epoch if epoch is None else epoch
        values: dict[str, Any] = {"epoch": new_epoch}
        if Watermark(updated_at, record_id) < Watermark(row.updated_at, row.record_id):
            # An overlap window or a late webhook batch: the stored position already covers it.
            log.debug("store.cursor_not_moved_back", pipeline=pipeline, system=system, entity=entity,
                      stored=row.updated_at.isoformat(), given=updated_at.isoformat())
            if new_epoch == row.epoch:
                return
        else:
            values.update(updated_at=updated_at, record_id=record_id, changed_at=now)
        self._conn.execute(update(CURSORS).where(*_cursor_key(pipeline, system, entity)).values(**values))

    def reset_cursor(self, pipeline: str, system: str, entity: str) -> None:
        """Forget the cursor: the next run reads the change feed from the start."""
        self._conn.execute(delete(CURSORS).where(*_cursor_key(pipeline, system, entity)))

    # ------------------------------------------------------------------------------ dead letters
    def add_dead_letter(self, *, pipeline: str, entity: str, system: str, record_id: str,
                        payload: dict[str, Any], error_class: str, error_message: str, field: str | None,
                        backoff: Callable[[int], timedelta], max_attempts: int) -> DeadLetter:
        """Record a failure: a new dead letter, or attempts+1 on the open one; parks it at max_attempts."""
        now = self._now()
        key = (DEAD.c.pipeline == pipeline, DEAD.c.system == system, DEAD.c.record_id == record_id,
               DEAD.c.resolved_at.is_(None))
        details = {"entity": entity, "payload": payload, "error_class": error_class,
                   "error_message": error_message, "field": field, "last_failed_at": now}
        first = {"pipeline": pipeline, "system": system, "record_id": record_id, "attempts": 1,
                 "first_failed_at": now, "parked": 1 >= max_attempts,
                 "next_retry_at": now + backoff(1), **details}
        row = self._lock_or_insert(DEAD, key, first,
                                   index_elements=[DEAD.c.pipeline, DEAD.c.system, DEAD.c.record_id],
                                   index_where=DEAD.c.resolved_at.is_(None))
        if row is not None:
            attempts = row.attempts + 1
            self._conn.execute(update(DEAD).where(DEAD.c.id == row.id).values(
                attempts=attempts, parked=attempts >= max_attempts, next_retry_at=now + backoff(attempts),
                **details))
        r = self._conn.execute(select(DEAD).where(*key)).one()
        if r.parked:
            log.warning("store.dead_letter_parked", pipeline=pipeline, system=system, record_id=record_id,
                        attempts=r.attempts, error=error_class)
        return _dead_letter(r)

    def resolve_dead_letter(self, pipeline: str, system: str, record_id: str) -> None:
        """Close the open dead letter of a record that has now synced (no-op if there is none)."""
        self._conn.execute(update(DEAD).where(
            DEAD.c.pipeline == pipeline, DEAD.c.system == system, DEAD.c.record_id == record_id,
            DEAD.c.resolved_at.is_(None)).values(resolved_at=self._now(), resolution="synced"))

    def resolve_dead_letters(self, pipeline: str, system: str, record_ids: Sequence[str]) -> int:
        """Close the open dead letters of many records at once (one UPDATE per 500 ids)."""
        n = 0
        for chunk in _chunks(list(record_ids), 500):
            result = self._conn.execute(update(DEAD).where(
                DEAD.c.pipeline == pipeline, DEAD.c.system == system, DEAD.c.record_id.in_(list(chunk)),
                DEAD.c.resolved_at.is_(None)).values(resolved_at=self._now(), resolution="synced"))
            n += result.rowcount or 0
        return n

    def due_dead_letters(self, pipeline: str, now: datetime | None = None, limit: int = 500) -> list[DeadLetter]:
        """Open, unparked dead letters of ``pipeline`` whose retry time has come, oldest due first."""
        at = now or self._now()
        stmt = (select(DEAD).where(DEAD.c.pipeline == pipeline, DEAD.c.resolved_at.is_(None),
                                   DEAD.c.parked.is_(False), DEAD.c.next_retry_at <= at)
                .order_by(DEAD.c.next_retry_at, DEAD.c.id).limit(limit))
        return [_dead_letter(r) for r in self._conn.execute(stmt)]

    def list_dead_letters(self, *, include_resolved: bool = False, pipeline: str | None = None) -> list[DeadLetter]:
        """Dead letters (open ones unless ``include_resolved``), in id order."""
        stmt = select(DEAD).order_by(DEAD.c.id)
        if not include_resolved:
            stmt = stmt.where(DEAD.c.resolved_at.is_(None))
        if pipeline is not None:
            stmt = stmt.where(DEAD.c.pipeline == pipeline)
        return [_dead_letter(r) for r in self._conn.execute(stmt)]

    def get_dead_letter(self, id: int) -> DeadLetter | None:
        """One dead letter by id."""
        r = self._conn.execute(select(DEAD).where(DEAD.c.id == id)).first()
        return None if r is None else _dead_letter(r)

    def retry_dead_letter_now(self, id: int) -> None:
        """Make an open dead letter due now, unparking it (``concord dlq retry``)."""
        self._update_open_dead_letter(id, next_retry_at=self._now(), parked=False)

    def drop_dead_letter(self, id: int) -> None:
        """Give up on an open dead letter (``concord dlq drop``)."""
        self._update_open_dead_letter(id, resolved_at=self._now(), resolution="dropped")

    def _update_open_dead_letter(self, id: int, **values: Any) -> None:
        res = self._conn.execute(update(DEAD).where(DEAD.c.id == id, DEAD.c.resolved_at.is_(None)).values(**values))
        if res.rowcount == 0:
            if self._conn.scalar(select(DEAD.c.id).where(DEAD.c.id == id)) is None:
                raise RecordNotFound(f"no dead letter with id {id}")
            raise AlreadyResolved(f"dead letter {id} is already resolved")

    def count_dead_letters(self, pipeline: str | None = None) -> int:
        """Number of open dead letters (parked ones included)."""
        stmt = select(func.count()).select_from(DEAD).where(DEAD.c.resolved_at.is_(None))
        if pipeline is not None:
            stmt = stmt.where(DEAD.c.pipeline == pipeline)
        return int(self._conn.scalar(stmt) or 0)

    # ------------------------------------------------------------------------------ conflicts
    def record_conflict(self, *, entity: str, link_id: int | None, crm_id: str, erp_id: str | None,
                        crm_version: dict[str, Any], erp_version: dict[str, Any], base: dict[str, Any] | None,
                        fields: Sequence[str]) -> Conflict:
        """Record a conflict, or refresh the open one of (entity, crm_id) with the latest versions."""
        now = self._now()
        key = (CONFLICTS.c.entity == entity, CONFLICTS.c.crm_id == crm_id, CONFLICTS.c.resolved_at.is_(None))
        latest = {"link_id": link_id, "erp_id": erp_id, "crm_version": crm_version, "erp_version": erp_version,
                  "base": base, "fields": sorted(set(fields)), "updated_at": now}
        row = self._lock_or_insert(CONFLICTS, key, {"entity": entity, "crm_id": crm_id, "detected_at": now, **latest},
                                   index_elements=[CONFLICTS.c.entity, CONFLICTS.c.crm_id],
                                   index_where=CONFLICTS.c.resolved_at.is_(None))
        if row is not None:
            self._conn.execute(update(CONFLICTS).where(CONFLICTS.c.id == row.id).values(**latest))
        return _conflict(self._conn.execute(select(CONFLICTS).where(*key)).one())

    def open_conflicts(self, entity: str | None = None) -> list[Conflict]:
        """Unresolved conflicts, oldest first."""
        stmt = select(CONFLICTS).where(CONFLICTS.c.resolved_at.is_(None)).order_by(CONFLICTS.c.id)
        if entity is not None:
            stmt = stmt.where(CONFLICTS.c.entity == entity)
        return [_conflict(r) for r in self._conn.execute(stmt)]

    def get_conflict(self, id: int) -> Conflict | None:
        """One conflict by id."""
        r = self._conn.execute(select(CONFLICTS).where(CONFLICTS.c.id == id)).first()
        return None if r is None else _conflict(r)

    def resolve_conflict(self, id: int, resolution: str) -> None:
        """Mark an open conflict resolved in favour of ``crm`` or ``erp`` (the engine then writes)."""
        if resolution not in CONFLICT_RESOLUTIONS:
            raise ValueError(f"resolution must be one of {sorted(CONFLICT_RESOLUTIONS)}, got {resolution!r}")
        res = self._conn.execute(update(CONFLICTS).where(CONFLICTS.c.id == id, CONFLICTS.c.resolved_at.is_(None))
                                 .values(resolved_at=self._now(), resolution=resolution))
        if res.rowcount == 0:
            if self._conn.scalar(select(CONFLICTS.c.id).where(CONFLICTS.c.id == id)) is None:
                raise RecordNotFound(f"no conflict with id {id}")
            raise AlreadyResolved(f"conflict {id} is already resolved")

    def open_conflict_for(self, entity: str, crm_id: str) -> Conflict | None:
        """The open conflict of one record, if any."""
        r = self._conn.execute(select(CONFLICTS).where(CONFLICTS.c.entity == entity, CONFLICTS.c.crm_id == crm_id,
                                                       CONFLICTS.c.resolved_at.is_(None))).first()
        return None if r is None else _conflict(r)

    # ------------------------------------------------------------------------------ runs
    def start_run(self, pipeline: str, instance: str) -> int:
        """Record a run as running; returns its id."""
        stmt = RUNS.insert().values(pipeline=pipeline, instance=instance, started_at=self._now(),
                                    status="running", counts={}, api_calls={}).returning(RUNS.c.id)
        return int(self._conn.execute(stmt).scalar_one())

    def finish_run(self, run_id: int, *, status: str, counts: dict[str, Any], api_calls: dict[str, Any],
                   error: str | None = None) -> None:
        """Record how a run ended (ok, failed or interrupted) and what it did."""
        if status not in RUN_STATUSES - {"running"}:
            raise ValueError(f"run status must be ok, failed or interrupted, got {status!r}")
        res = self._conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(
            finished_at=self._now(), status=status, counts=counts, api_calls=api_calls, error=error))
        if res.rowcount == 0:
            raise RecordNotFound(f"no run with id {run_id}")

    def close_abandoned_runs(self, pipeline: str, alive: Callable[[str], bool]) -> int:
        """Mark ``pipeline``'s runs still 'running' whose instance is gone (``alive`` says) as interrupted.

        A process killed mid-run never finishes its row; without this it would read 'running' forever.
        """
        rows = self._conn.execute(select(RUNS.c.id, RUNS.c.instance).where(
            RUNS.c.pipeline == pipeline, RUNS.c.status == "running")).all()
        dead = [r.id for r in rows if not alive(r.instance)]
        for chunk in _chunks(dead, IN_CHUNK):
            self._conn.execute(update(RUNS).where(RUNS.c.id.in_(chunk), RUNS.c.status == "running").values(
                status="interrupted", error="abandoned: its process ended without finishing the run"))
        return len(dead)

    def prune_history(self, older_than: timedelta) -> dict[str, int]:
        """Delete finished runs, resolved dead letters and resolved conflicts older than ``older_than``.

        Each pipeline's newest successful run is kept whatever its age: /readyz and `concord status`
        report its age. Open dead letters and conflicts are never deleted.
        """
        cutoff = self._now() - older_than
        newest_ok = select(func.max(RUNS.c.id)).where(RUNS.c.status == "ok").group_by(RUNS.c.pipeline)
        runs = self._conn.execute(delete(RUNS).where(
            RUNS.c.status != "running", RUNS.c.started_at < cutoff, RUNS.c.id.not_in(newest_ok)))
        dead = self._conn.execute(delete(DEAD).where(DEAD.c.resolved_at.is_not(None), DEAD.c.resolved_at < cutoff))
        conflicts = self._conn.execute(delete(CONFLICTS).where(CONFLICTS.c.resolved_at.is_not(None),
                                                               CONFLICTS.c.resolved_at < cutoff))
        return {"runs": int(runs.rowcount or 0), "dead_letters": int(dead.rowcount or 0),
                "conflicts": int(conflicts.rowcount or 0)}

    def last_runs(self, pipeline: str | None = None, limit: int = 20) -> list[Run]:
        """The most recent runs, newest first."""
        stmt = select(RUNS).order_by(RUNS.c.started_at.desc(), RUNS.c.id.desc()).limit(limit)
        if pipeline is not None:
            stmt = stmt.where(RUNS.c.pipeline == pipeline)
        return [_run(r) for r in self._conn.execute(stmt)]

    def last_successful_run(self, pipeline: str) -> Run | None:
        """The newest run of ``pipeline`` that finished ok."""
        r = self._conn.execute(select(RUNS).where(RUNS.c.pipeline == pipeline, RUNS.c.status == "ok")
                               .order_by(RUNS.c.started_at.desc(), RUNS.c.id.desc()).limit(1)).first()
        return None if r is None else _run(r)

    # ------------------------------------------------------------------------------ leases
    def acquire_lease(self, name: str, owner: str, ttl: timedelta) -> int | None:
        """Take or renew lease ``name``; returns the epoch if ``owner`` holds it now, else None.

        The epoch grows by one whenever the holder changes (new lease, takeover after expiry or release).
        """
        now = self._now()
        stmt = (update(LEASES)
                .where(LEASES.c.name == name,
                       or_(LEASES.c.owner == owner, LEASES.c.owner.is_(None), LEASES.c.expires_at <= now))
                .values(owner=owner, expires_at=now + ttl,
                        epoch=case((LEASES.c.owner == owner, LEASES.c.epoch), else_=LEASES.c.epoch + 1))
                .returning(LEASES.c.epoch))
        epoch = self._conn.execute(stmt).scalar()
        if epoch is not None:
            return int(epoch)
        ins = (self._insert(LEASES).values(name=name, owner=owner, epoch=1, expires_at=now + ttl)
               .on_conflict_do_nothing(index_elements=[LEASES.c.name]).returning(LEASES.c.epoch))
        if self._conn.execute(ins).first() is not None:
            return 1
        # A concurrent transaction created the row first (PostgreSQL: the insert waited for its
        # commit). That may have been this same owner (a daemon's heartbeat and a pipeline job both
        # acquiring at start): the update sees the committed row now and says who holds it.
        epoch = self._conn.execute(stmt).scalar()
        return int(epoch) if epoch is not None else None

    def renew_lease(self, name: str, owner: str, epoch: int, ttl: timedelta) -> bool:
        """Extend a lease we hold at ``epoch``; False if someone else has taken it since."""
        res = self._conn.execute(update(LEASES).where(LEASES.c.name == name, LEASES.c.owner == owner,
                                                      LEASES.c.epoch == epoch)
                                 .values(expires_at=self._now() + ttl))
        return res.rowcount == 1

    def release_lease(self, name: str, owner: str) -> None:
        """Give a lease up (shutdown) so another instance need not wait for it to expire."""
        self._conn.execute(update(LEASES).where(LEASES.c.name == name, LEASES.c.owner == owner)
                           .values(owner=None, expires_at=self._now()))

    def lease_owner(self, name: str) -> Lease | None:
        """The live holder of a lease; None if nobody holds it (never taken, released or expired)."""
        r = self._conn.execute(select(LEASES).where(LEASES.c.name == name)).first()
        if r is None or r.owner is None or r.expires_at <= self._now():
            return None
        return Lease(r.name, r.owner, r.epoch, r.expires_at)

    # ------------------------------------------------------------------------------ inbox
    def inbox_add(self, system: str, events: Sequence[InboxEvent]) -> int:
        """Queue webhook events, skipping ones already queued (same system and event id); returns how many are new."""
        if not events:
            return 0
        now = self._now()
        rows: dict[str, dict[str, Any]] = {}
        for ev in events:
            if ev.system and ev.system != system:
                raise ValueError(f"inbox event {ev.event_id} is from {ev.system!r}, not {system!r}")
            rows.setdefault(ev.event_id, {
                "system": system, "event_id": ev.event_id, "object": ev.object, "record_id": ev.record_id,
                "kind": ev.kind, "payload": ev.payload or {}, "received_at": ev.received_at or now})
        stmt = (self._insert(INBOX).on_conflict_do_nothing(index_elements=[INBOX.c.system, INBOX.c.event_id])
                .returning(INBOX.c.id))
        added = len(self._conn.execute(stmt, list(rows.values())).all())
        if added and self._conn.dialect.name == "postgresql":
            # Wakes the instance that owns these events' pipeline at commit (sync/inbox_wake.py).
            self._conn.execute(inbox_wake.NOTIFY)
        return added

    def inbox_claim(self, worker: str, limit: int, ttl: timedelta, *, system: str | None = None,
                    objects: Sequence[str] | None = None) -> list[InboxEvent]:
        """Claim up to ``limit`` unprocessed events nobody holds (or whose claim expired), oldest first.

        Concurrent workers never get the same event: FOR UPDATE SKIP LOCKED on PostgreSQL, the
        IMMEDIATE write transaction on SQLite.
        """
        now = self._now()
        pick = (select(INBOX.c.id)
                .where(INBOX.c.processed_at.is_(None),
                       or_(INBOX.c.claimed_until.is_(None), INBOX.c.claimed_until <= now))
                .order_by(INBOX.c.id).limit(limit))
        if system is not None:
            pick = pick.where(INBOX.c.system == system)
        if objects is not None:
            pick = pick.where(INBOX.c.object.in_(list(objects)))
        ids = list(self._conn.scalars(pick.with_for_update(skip_locked=True)))
        if not ids:
            return []
        claimed = self._conn.execute(update(INBOX).where(INBOX.c.id.in_(ids))
                                     .values(claimed_by=worker, claimed_until=now + ttl).returning(INBOX))
        return sorted((_inbox_event(r) for r in claimed), key=lambda e: e.id or 0)

    def inbox_done(self, ids: Sequence[int]) -> None:
        """Mark claimed events processed."""
        now = self._now()
        for chunk in _chunks(list(ids), IN_CHUNK):
            self._conn.execute(update(INBOX).where(INBOX.c.id.in_(chunk)).values(processed_at=now))

    def inbox_pending(self) -> int:
        """Number of events not processed yet (claimed or not)."""
        return int(self._conn.scalar(select(func.count()).select_from(INBOX).where(INBOX.c.processed_at.is_(None)))
                   or 0)

    def inbox_purge(self, older_than: timedelta) -> int:
        """Delete processed events older than ``older_than`` (retention); returns how many."""
        res = self._conn.execute(delete(INBOX).where(INBOX.c.processed_at.is_not(None),
                                                     INBOX.c.processed_at < self._now() - older_than))
        return int(res.rowcount or 0)

    # ------------------------------------------------------------------------------ match index
    def match_index_replace(self, entity: str, system: str, rows: Iterable[tuple[str, str, str]]) -> int:
        """Replace the index of (entity, system) with ``rows`` of (kind, value, record_id); returns rows stored.

        ``rows`` is consumed as a stream, 1000 rows per statement. Values are stored as given: callers
        normalise them (and look them up normalised the same way).
        """
        self._conn.execute(delete(MATCH).where(MATCH.c.entity == entity, MATCH.c.system == system))
        self._match_upsert(entity, system, rows)
        return self.match_index_size(entity, system)

    def match_index_add(self, entity: str, system: str, rows: Iterable[tuple[str, str, str]]) -> int:
        """Add or update (kind, value, record_id) rows of (entity, system); a record has one value per kind.

        Returns the number of distinct (kind, record_id) rows written.
        """
        return self._match_upsert(entity, system, rows)

    def _match_upsert(self, entity: str, system: str, rows: Iterable[tuple[str, str, str]]) -> int:
        ins = self._insert(MATCH)
        stmt = ins.on_conflict_do_update(
            index_elements=[MATCH.c.entity, MATCH.c.system, MATCH.c.kind, MATCH.c.record_id],
            set_={"value": ins.excluded.value})
        written = 0
        buf: dict[tuple[str, str], str] = {}

        def flush() -> int:
            # One statement may not touch a row twice (PostgreSQL): buf is deduplicated per (kind, record_id);
            # a repeat in a later chunk is an ordinary upsert.
            self._conn.execute(stmt, [{"entity": entity, "system": system, "kind": k, "record_id": rid, "value": v}
                                      for (k, rid), v in buf.items()])
            n = len(buf)
            buf.clear()
            return n

        for kind, value, record_id in rows:
            buf[(kind, record_id)] = value
            if len(buf) >= MATCH_CHUNK:
                written += flush()
        if buf:
            written += flush()
        return written

    def match_lookup(self, entity: str, system: str, kind: str, values: Sequence[str]) -> dict[str, list[str]]:
        """Record ids of ``system`` per matching value (values without a match are absent)."""
        out: dict[str, list[str]] = {}
        for chunk in _chunks(list(dict.fromkeys(values)), IN_CHUNK):
            stmt = (select(MATCH.c.value, MATCH.c.record_id)
                    .where(MATCH.c.entity == entity, MATCH.c.system == system, MATCH.c.kind == kind,
                           MATCH.c.value.in_(chunk))
                    .order_by(MATCH.c.value, MATCH.c.record_id))
            for value, record_id in self._conn.execute(stmt):
                out.setdefault(value, []).append(record_id)
        return out

    def match_index_size(self, entity: str, system: str) -> int:
        """Number of index rows of (entity, system)."""
        return int(self._conn.scalar(select(func.count()).select_from(MATCH)
                                     .where(MATCH.c.entity == entity, MATCH.c.system == system)) or 0)


def _link_id_column(system: str) -> Column[Any]:
    if system == "crm":
        return LINKS.c.crm_id
    if system == "erp":
        return LINKS.c.erp_id
    raise ValueError(f"system must be 'crm' or 'erp', got {system!r}")


def _cursor_key(pipeline: str, system: str, entity: str) -> tuple[Any, ...]:
    return (CURSORS.c.pipeline == pipeline, CURSORS.c.system == system, CURSORS.c.entity == entity)


# ============================================================================================
# The store
# ============================================================================================
P = ParamSpec("P")
R = TypeVar("R")


def _in_write_tx(fn: Callable[Concatenate[Tx, P], R]) -> Callable[Concatenate[Store, P], R]:
    @functools.wraps(fn)
    def method(self: Store, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.transaction() as tx:
            return fn(tx, *args, **kwargs)
    return method


def _in_read_tx(fn: Callable[Concatenate[Tx, P], R]) -> Callable[Concatenate[Store, P], R]:
    @functools.wraps(fn)
    def method(self: Store, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._read() as tx:
            return fn(tx, *args, **kwargs)
    return method


class Store:
    """The sync state in SQLite or PostgreSQL. Thread-safe: each call uses its own pooled connection.

    Every operation is a method of :class:`Tx`; the same-named Store method runs it in a transaction of
    its own, or joins the transaction this thread already has open through :meth:`transaction`.
    """

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._clock = clock or _utcnow
        self._local = threading.local()

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True, clock: Callable[[], datetime] | None = None) -> Store:
        """Connect to the store at ``url`` and (by default) migrate its schema to the newest revision.

        ``clock`` (aware UTC ``now``) is for tests; leases, retries and timestamps all use it.
        """
        u = normalise_url(url)
        store = cls(_create_engine(u), clock=clock)
        try:
            if upgrade:
                store.upgrade()
            else:
                with store._engine.connect():
                    pass
        except OperationalError as exc:
            store.close()
            raise StoreUnavailable(f"cannot open the state store at {store.url_for_display}: {exc.orig}") from exc
        log.info("store.opened", url=store.url_for_display, dialect=store.dialect)
        return store

    @property
    def url_for_display(self) -> str:
        """The store URL with its password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (benchmarks, tests, diagnostics)."""
        return self._engine

    # ------------------------------------------------------------------------------ schema
    def _alembic_config(self, connection: Connection) -> AlembicConfig:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
        cfg.attributes["connection"] = connection
        return cfg

    def upgrade(self) -> None:
        """Migrate the schema to the newest revision (``alembic upgrade head``); a no-op when current."""
        from alembic import command
        from alembic.runtime.migration import MigrationContext

        with self._engine.connect() as conn:
            conn.execution_options(concord_write=True)
            with conn.begin():
                if self.dialect == "postgresql":
                    # Two daemons starting together must not both run the DDL (per schema: tests run in parallel).
                    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('concord.migrate.' || current_schema()))"))
                before = MigrationContext.configure(conn).get_current_revision()
                command.upgrade(self._alembic_config(conn), "head")
                after = MigrationContext.configure(conn).get_current_revision()
        if before != after:
            log.info("store.upgraded", url=self.url_for_display, from_revision=before, to_revision=after)

    def current_revision(self) -> str | None:
        """The schema's Alembic revision (None for an empty database)."""
        from alembic.runtime.migration import MigrationContext

        with self._engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @staticmethod
    def head_revision() -> str | None:
        """The newest revision shipped with this version of Concord."""
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
        return ScriptDirectory.from_config(cfg).get_current_head()

    def close(self) -> None:
        """Close all pooled connections."""
        self._engine.dispose()

    def ping(self) -> bool:
        """True when the database answers (for /readyz)."""
        try:
            with self._engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception as exc:  # readiness must report, not raise
            log.warning("store.ping_failed", url=self.url_for_display, error=type(exc).__name__)
            return False

    # ------------------------------------------------------------------------------ transactions
    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One write transaction: commits on success, rolls back on error.

        Nested use on the same thread joins the outer transaction (no savepoint).
        """
        current: Tx | None = getattr(self._local, "tx", None)
        if current is not None:
            yield current
            return
        with self._engine.connect() as conn:
            conn.execution_options(concord_write=True)
            with conn.begin():
                tx = Tx(conn, self._clock)
                self._local.tx = tx
                try:
                    yield tx
                finally:
                    self._local.tx = None

    @contextmanager
    def _read(self) -> Iterator[Tx]:
        current: Tx | None = getattr(self._local, "tx", None)
        if current is not None:
            yield current
            return
        with self._engine.connect() as conn, conn.begin():
            tx = Tx(conn, self._clock)
            self._local.tx = tx
            try:
                yield tx
            finally:
                self._local.tx = None

    # ------------------------------------------------------------------------------ links
    links_by_ids = _in_read_tx(Tx.links_by_ids)
    save_links = _in_write_tx(Tx.save_links)
    delete_link = _in_write_tx(Tx.delete_link)
    count_links = _in_read_tx(Tx.count_links)

    def iter_links(self, entity: str, batch: int = 1000) -> Iterator[Link]:
        """All links of ``entity`` in id order; one short query per ``batch`` rows, so no transaction
        (or server-side cursor) stays open while the caller works through them."""
        after: int | None = None
        while True:
            with self._read() as tx:
                page = tx.links_page(entity, after, batch)
            yield from page
            if len(page) < batch:
                return
            after = page[-1].id

    # ------------------------------------------------------------------------------ write intents
    add_intents = _in_write_tx(Tx.add_intents)
    intents_for = _in_read_tx(Tx.intents_for)
    clear_intents = _in_write_tx(Tx.clear_intents)
    count_intents = _in_read_tx(Tx.count_intents)

    # ------------------------------------------------------------------------------ cursors
    get_cursor = _in_read_tx(Tx.get_cursor)
    set_cursor = _in_write_tx(Tx.set_cursor)
    reset_cursor = _in_write_tx(Tx.reset_cursor)

    # ------------------------------------------------------------------------------ dead letters
    add_dead_letter = _in_write_tx(Tx.add_dead_letter)
    resolve_dead_letter = _in_write_tx(Tx.resolve_dead_letter)
    resolve_dead_letters = _in_write_tx(Tx.resolve_dead_letters)
    due_dead_letters = _in_read_tx(Tx.due_dead_letters)
    list_dead_letters = _in_read_tx(Tx.list_dead_letters)
    get_dead_letter = _in_read_tx(Tx.get_dead_letter)
    retry_dead_letter_now = _in_write_tx(Tx.retry_dead_letter_now)
    drop_dead_letter = _in_write_tx(Tx.drop_dead_letter)
    count_dead_letters = _in_read_tx(Tx.count_dead_letters)

    # ------------------------------------------------------------------------------ conflicts
    record_conflict = _in_write_tx(Tx.record_conflict)
    open_conflicts = _in_read_tx(Tx.open_conflicts)
    get_conflict = _in_read_tx(Tx.get_conflict)
    resolve_conflict = _in_write_tx(Tx.resolve_conflict)
    open_conflict_for = _in_read_tx(Tx.open_conflict_for)

    # ------------------------------------------------------------------------------ runs
    start_run = _in_write_tx(Tx.start_run)
    finish_run = _in_write_tx(Tx.finish_run)
    close_abandoned_runs = _in_write_tx(Tx.close_abandoned_runs)
    prune_history = _in_write_tx(Tx.prune_history)
    last_runs = _in_read_tx(Tx.last_runs)
    last_successful_run = _in_read_tx(Tx.last_successful_run)

    # ------------------------------------------------------------------------------ leases
    acquire_lease = _in_write_tx(Tx.acquire_lease)
    renew_lease = _in_write_tx(Tx.renew_lease)
    release_lease = _in_write_tx(Tx.release_lease)
    lease_owner = _in_read_tx(Tx.lease_owner)

    # ------------------------------------------------------------------------------ inbox
    inbox_add = _in_write_tx(Tx.inbox_add)
    inbox_claim = _in_write_tx(Tx.inbox_claim)
    inbox_done = _in_write_tx(Tx.inbox_done)
    inbox_pending = _in_read_tx(Tx.inbox_pending)
    inbox_purge = _in_write_tx(Tx.inbox_purge)

    # ------------------------------------------------------------------------------ match index
    match_index_replace = _in_write_tx(Tx.match_index_replace)
    match_index_add = _in_write_tx(Tx.match_index_add)
    match_lookup = _in_read_tx(Tx.match_lookup)
    match_index_size = _in_read_tx(Tx.match_index_size)
