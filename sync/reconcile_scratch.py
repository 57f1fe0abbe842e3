"""Reconcile's scratch space: temporary tables in the state store, on one dedicated connection.

Both sides are streamed into ``reconcile_records`` / ``reconcile_keys`` (never into Python dicts)
and classified with SQL joins against the store's links and conflicts; findings go to
``reconcile_findings`` and are streamed out for the report. Temporary tables (rather than a
migrated table) keep concurrent reconciles apart, vanish if the process dies, are not
WAL-logged on PostgreSQL, and on SQLite live in a temp file instead of growing concord.db.
They are per connection, so this module holds one connection for the whole run and keeps each
transaction short (the sync's writes during ``--apply`` go through the store's own connections).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    exists,
    func,
    insert,
    not_,
    or_,
    select,
)

from sync.reconcile_fields import Row
from sync.store import CONFLICTS, LINKS, MATCH, Store

CHUNK = 1000
IN_CHUNK = 500

_meta = MetaData()
RECORDS = Table(
    "reconcile_records", _meta,
    Column("side", String(3), primary_key=True),
    Column("record_id", String(255), primary_key=True),
    Column("live", Boolean, nullable=False),
    Column("side_hash", String(32), nullable=False),
    Column("cmp_hash", String(32), nullable=False),
    Column("wo_hash", String(32), nullable=False),
    Column("cmp", Text, nullable=False),
    Column("error", Text),
    prefixes=["TEMPORARY"],
)
KEYS = Table(
    "reconcile_keys", _meta,
    Column("side", String(3), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("value", Text, nullable=False),
    Column("record_id", String(255), nullable=False),
    prefixes=["TEMPORARY"],
)
PAIRED = Table(
    "reconcile_paired", _meta,
    Column("side", String(3), primary_key=True),
    Column("record_id", String(255), primary_key=True),
    prefixes=["TEMPORARY"],
)
WANTED = Table(
    "reconcile_wanted", _meta,
    Column("side", String(3), primary_key=True),
    Column("record_id", String(255), primary_key=True),
    prefixes=["TEMPORARY"],
)
FINDINGS = Table(
    "reconcile_findings", _meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entity", String(64), nullable=False),
    Column("phase", String(16), nullable=False),        # found | remaining (after --apply)
    Column("cls", String(32), nullable=False),
    Column("action", String(16)),                       # the repair's action, NULL when report-only
    Column("crm_id", String(255)),
    Column("erp_id", String(255)),
    Column("detail", Text, nullable=False),
    prefixes=["TEMPORARY"],
)
Index("ix_reconcile_keys_value", KEYS.c.kind, KEYS.c.value, KEYS.c.side)
Index("ix_reconcile_keys_record", KEYS.c.side, KEYS.c.record_id)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class Scratch:
    """The temporary tables of one reconcile run, on a connection held for the run."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.conn: Connection = store.engine.connect()
        mark = "?" if self.conn.dialect.paramstyle == "qmark" else "%s"
        self._insert_records = (f"INSERT INTO {RECORDS.name} (side, record_id, live, side_hash, cmp_hash, wo_hash, cmp, "
                                f"error) VALUES ({', '.join([mark] * 8)})")
        self._insert_keys = f"INSERT INTO {KEYS.name} (side, kind, value, record_id) VALUES ({', '.join([mark] * 4)})"
        with self.conn.begin():
            for table in _meta.sorted_tables:
                table.create(self.conn, checkfirst=False)

    def close(self) -> None:
        """Drop the tables and give the connection back (a pooled connection outlives us)."""
        try:
            if self.conn.in_transaction():
                self.conn.rollback()
            with self.conn.begin():
                for table in reversed(_meta.sorted_tables):
                    table.drop(self.conn, checkfirst=True)
        finally:
            self.conn.close()

    # ------------------------------------------------------------------ loading
    def reset(self) -> None:
        """Empty the per-entity tables (findings are kept for the report)."""
        with self.conn.begin():
            for table in (RECORDS, KEYS, PAIRED, WANTED):
                self.conn.execute(delete(table))

    def add_rows(self, rows: Sequence[Row]) -> None:
        """Insert (or, for a re-read record, replace) rows and their match keys."""
        if not rows:
            return
        with self.conn.begin():
            ids: dict[str, list[str]] = {}
            for r in rows:
                ids.setdefault(r.side, []).append(r.record_id)
            for side, side_ids in ids.items():
                for chunk in _chunks(side_ids, IN_CHUNK):
                    self.conn.execute(delete(RECORDS).where(RECORDS.c.side == side, RECORDS.c.record_id.in_(chunk)))
                    self.conn.execute(delete(KEYS).where(KEYS.c.side == side, KEYS.c.record_id.in_(chunk)))
            # Plain DBAPI executemany: SQLAlchemy's per-row parameter processing costs more than the
            # insert itself at a million rows.
            self.conn.exec_driver_sql(self._insert_records, [
                (r.side, r.record_id, r.live, r.side_hash, r.cmp_hash, r.wo_hash, r.cmp, r.error) for r in rows])
            keys = [(r.side, k, v, r.record_id) for r in rows for k, v in r.keys]
            if keys:
                self.conn.exec_driver_sql(self._insert_keys, keys)

    def forget(self, side: str, ids: Sequence[str]) -> None:
        """Remove records (gone on re-read) and their keys."""
        with self.conn.begin():
            for chunk in _chunks(list(ids), IN_CHUNK):
                self.conn.execute(delete(RECORDS).where(RECORDS.c.side == side, RECORDS.c.record_id.in_(chunk)))
                self.conn.execute(delete(KEYS).where(KEYS.c.side == side, KEYS.c.record_id.in_(chunk)))

    def mark_paired(self, items: Iterable[tuple[str, str]]) -> None:
        rows = [{"side": s, "record_id": r} for s, r in dict.fromkeys(items)]
        if rows:
            with self.conn.begin():
                self.conn.execute(insert(PAIRED), rows)

    def want(self, side: str, ids: Iterable[str]) -> None:
        """Remember ids of ``side`` to read by id later (a --since run completing its pairs)."""
        wanted = list(dict.fromkeys(i for i in ids if i))
        if not wanted:
            return
        with self.conn.begin():
            for chunk in _chunks(wanted, IN_CHUNK):
                have = set(self.conn.scalars(select(RECORDS.c.record_id).where(
                    RECORDS.c.side == side, RECORDS.c.record_id.in_(chunk))))
                have |= set(self.conn.scalars(select(WANTED.c.record_id).where(
                    WANTED.c.side == side, WANTED.c.record_id.in_(chunk))))
                rows = [{"side": side, "record_id": i} for i in chunk if i not in have]
                if rows:
                    self.conn.execute(insert(WANTED), rows)

    def take_wanted(self, side: str) -> Iterator[list[str]]:
        """The wanted ids of ``side`` in chunks, each removed once handed out."""
        while True:
            with self.conn.begin():
                ids = list(self.conn.scalars(select(WANTED.c.record_id).where(WANTED.c.side == side)
                                             .order_by(WANTED.c.record_id).limit(IN_CHUNK)))
                if ids:
                    self.conn.execute(delete(WANTED).where(WANTED.c.side == side, WANTED.c.record_id.in_(ids)))
            if not ids:
                return
            yield ids

    def iter_ids(self, side: str) -> Iterator[list[str]]:
        """Record ids of ``side`` in chunks (keyset order)."""
        after = ""
        while True:
            with self.conn.begin():
                ids = list(self.conn.scalars(select(RECORDS.c.record_id)
                                             .where(RECORDS.c.side == side, RECORDS.c.record_id > after)
                                             .order_by(RECORDS.c.record_id).limit(IN_CHUNK)))
            if ids:
                yield ids
            if len(ids) < IN_CHUNK:
                return
            after = ids[-1]

    def paired(self, side: str, ids: Sequence[str]) -> set[str]:
        """Of ``ids`` on ``side``, those already paired with an unlinked record of the other side."""
        out: set[str] = set()
        with self.conn.begin():
            for chunk in _chunks(list(dict.fromkeys(ids)), IN_CHUNK):
                out.update(self.conn.scalars(select(PAIRED.c.record_id).where(PAIRED.c.side == side,
                                                                              PAIRED.c.record_id.in_(chunk))))
        return out

    def count(self, side: str) -> int:
        with self.conn.begin():
            return int(self.conn.scalar(select(func.count()).select_from(RECORDS).where(RECORDS.c.side == side)) or 0)

    def present(self, side: str, ids: Sequence[str]) -> dict[str, Any]:
        """Stored rows of ``side`` among ``ids`` (id -> row)."""
        out: dict[str, Any] = {}
        with self.conn.begin():
            for chunk in _chunks(list(dict.fromkeys(ids)), IN_CHUNK):
                for r in self.conn.execute(select(RECORDS).where(RECORDS.c.side == side,
                                                                 RECORDS.c.record_id.in_(chunk))):
                    out[r.record_id] = r
        return out

    # ------------------------------------------------------------------ findings
    def add_findings(self, entity: str, phase: str, findings: Iterable[Any]) -> int:
        rows = [{"entity": entity, "phase": phase, "cls": f.cls, "crm_id": f.crm_id, "erp_id": f.erp_id,
                 "action": f.repair.action if f.repair is not None else None,
                 "detail": json.dumps(f.to_json(), sort_keys=True, default=str)} for f in findings]
        if rows:
            with self.conn.begin():
                self.conn.execute(insert(FINDINGS), rows)
        return len(rows)

    def reset_pairs(self) -> None:
        """Forget which unlinked records were paired (before classifying again)."""
        with self.conn.begin():
            self.conn.execute(delete(PAIRED))

    def count_repairs(self, entity: str) -> int:
        """Findings of ``entity`` that --apply repairs."""
        with self.conn.begin():
            return int(self.conn.scalar(select(func.count()).select_from(FINDINGS).where(
                FINDINGS.c.entity == entity, FINDINGS.c.phase == "found", FINDINGS.c.action.is_not(None))) or 0)

    def iter_findings(self, entity: str | None = None, phase: str = "found", *, cls: str | None = None,
                      repairs_only: bool = False) -> Iterator[dict[str, Any]]:
        """Findings in the order they were found, a page per query."""
        after = 0
        while True:
            stmt = select(FINDINGS.c.id, FINDINGS.c.detail).where(FINDINGS.c.id > after, FINDINGS.c.phase == phase)
            if entity is not None:
                stmt = stmt.where(FINDINGS.c.entity == entity)
            if cls is not None:
                stmt = stmt.where(FINDINGS.c.cls == cls)
            if repairs_only:
                stmt = stmt.where(FINDINGS.c.action.is_not(None))
            with self.conn.begin():
                page = list(self.conn.execute(stmt.order_by(FINDINGS.c.id).limit(CHUNK)))
            for r in page:
                yield json.loads(r.detail)
            if len(page) < CHUNK:
                return
            after = page[-1].id

    # ------------------------------------------------------------------ classification queries
    def _pair_join(self, entity: str) -> tuple[Any, Any, Any, Any]:
        c, e = RECORDS.alias("c"), RECORDS.alias("e")
        j = (LINKS.join(c, and_(c.c.side == "crm", c.c.record_id == LINKS.c.crm_id))
             .join(e, and_(e.c.side == "erp", e.c.record_id == LINKS.c.erp_id)))
        conflict = (exists().where(CONFLICTS.c.entity == entity, CONFLICTS.c.crm_id == LINKS.c.crm_id,
                                   CONFLICTS.c.resolved_at.is_(None)))
        return c, e, j, conflict

    def count_clean_pairs(self, entity: str) -> int:
        """Linked pairs that are in sync without a closer look (see :meth:`_clean`)."""
        c, e, j, conflict = self._pair_join(entity)
        stmt = select(func.count()).select_from(j).where(LINKS.c.entity == entity, LINKS.c.deleted.is_(False),
                                                         self._clean(c, e, conflict))
        with self.conn.begin():
            return int(self.conn.scalar(stmt) or 0)

    @staticmethod
    def _clean(c: Any, e: Any, conflict: Any) -> Any:
        """In sync: every compared value equal; or neither side changed since the last sync (so each
        readable field is as the sync left it) and the write-only copies equal their sources."""
        unchanged = and_(func.coalesce(LINKS.c.crm_hash, "") == c.c.side_hash,
                         func.coalesce(LINKS.c.erp_hash, "") == e.c.side_hash,
                         c.c.wo_hash == e.c.wo_hash)
        return and_(c.c.live.is_(True), e.c.live.is_(True), c.c.error.is_(None), e.c.error.is_(None),
                    or_(c.c.cmp_hash == e.c.cmp_hash, unchanged), not_(conflict))

    def iter_candidate_pairs(self, entity: str) -> Iterator[Any]:
        """Every other linked pair present on both sides, in link order: the ones Python looks at."""
        c, e, j, conflict = self._pair_join(entity)
        after = 0
        while True:
            stmt = (select(LINKS.c.id, LINKS.c.crm_id, LINKS.c.erp_id, LINKS.c.crm_hash, LINKS.c.erp_hash,
                           LINKS.c.base, c.c.live.label("crm_live"), e.c.live.label("erp_live"),
                           c.c.side_hash.label("crm_side_hash"), e.c.side_hash.label("erp_side_hash"),
                           c.c.cmp.label("crm_cmp"), e.c.cmp.label("erp_cmp"),
                           c.c.error.label("crm_error"), e.c.error.label("erp_error"),
                           conflict.label("conflict"))
                    .select_from(j)
                    .where(LINKS.c.entity == entity, LINKS.c.deleted.is_(False), LINKS.c.id > after,
                           not_(self._clean(c, e, conflict)))
                    .order_by(LINKS.c.id).limit(CHUNK))
            with self.conn.begin():
                page = list(self.conn.execute(stmt))
            yield from page
            if len(page) < CHUNK:
                return
            after = page[-1].id

    def iter_orphan_links(self, entity: str, *, touched_only: bool) -> Iterator[Any]:
        """Live links whose crm or erp record was not found; with ``touched_only`` (a --since run)
        only links with at least one side read."""
        c, e = RECORDS.alias("c"), RECORDS.alias("e")
        j = (LINKS.outerjoin(c, and_(c.c.side == "crm", c.c.record_id == LINKS.c.crm_id))
             .outerjoin(e, and_(e.c.side == "erp", e.c.record_id == LINKS.c.erp_id)))
        gone = or_(c.c.record_id.is_(None), e.c.record_id.is_(None))
        if touched_only:
            gone = and_(gone, or_(c.c.record_id.is_not(None), e.c.record_id.is_not(None)))
        after = 0
        while True:
            stmt = (select(LINKS.c.id, LINKS.c.crm_id, LINKS.c.erp_id,
                           c.c.record_id.label("crm_found"), e.c.record_id.label("erp_found"),
                           c.c.live.label("crm_live"), e.c.live.label("erp_live"))
                    .select_from(j)
                    .where(LINKS.c.entity == entity, LINKS.c.deleted.is_(False), LINKS.c.id > after, gone)
                    .order_by(LINKS.c.id).limit(CHUNK))
            with self.conn.begin():
                page = list(self.conn.execute(stmt))
            yield from page
            if len(page) < CHUNK:
                return
            after = page[-1].id

    def iter_unlinked(self, entity: str, side: str) -> Iterator[list[Any]]:
        """Live, readable records of ``side`` without a link (and not already paired), in chunks."""
        col = LINKS.c.crm_id if side == "crm" else LINKS.c.erp_id
        linked = exists().where(LINKS.c.entity == entity, col == RECORDS.c.record_id)
        paired = exists().where(PAIRED.c.side == side, PAIRED.c.record_id == RECORDS.c.record_id)
        after = ""
        while True:
            stmt = (select(RECORDS.c.record_id, RECORDS.c.cmp)
                    .where(RECORDS.c.side == side, RECORDS.c.live.is_(True), RECORDS.c.error.is_(None),
                           RECORDS.c.record_id > after, not_(linked), not_(paired))
                    .order_by(RECORDS.c.record_id).limit(IN_CHUNK))
            with self.conn.begin():
                page = list(self.conn.execute(stmt))
            if page:
                yield page
            if len(page) < IN_CHUNK:
                return
            after = page[-1].record_id

    def iter_unreadable(self) -> Iterator[Any]:
        after: tuple[str, str] = ("", "")
        while True:
            stmt = (select(RECORDS.c.side, RECORDS.c.record_id, RECORDS.c.error)
                    .where(RECORDS.c.error.is_not(None),
                           or_(RECORDS.c.side > after[0],
                               and_(RECORDS.c.side == after[0], RECORDS.c.record_id > after[1])))
                    .order_by(RECORDS.c.side, RECORDS.c.record_id).limit(CHUNK))
            with self.conn.begin():
                page = list(self.conn.execute(stmt))
            yield from page
            if len(page) < CHUNK:
                return
            after = (page[-1].side, page[-1].record_id)

    def keys_of(self, side: str, ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """(kind, value) keys of records of ``side``."""
        out: dict[str, list[tuple[str, str]]] = {}
        with self.conn.begin():
            for chunk in _chunks(list(ids), IN_CHUNK):
                for r in self.conn.execute(select(KEYS.c.record_id, KEYS.c.kind, KEYS.c.value)
                                           .where(KEYS.c.side == side, KEYS.c.record_id.in_(chunk))):
                    out.setdefault(r.record_id, []).append((r.kind, r.value))
        return out

    def holders(self, kind: str, values: Sequence[str]) -> dict[tuple[str, str], list[str]]:
        """(side, value) -> record ids holding that key value, for ``values`` of ``kind``."""
        out: dict[tuple[str, str], list[str]] = {}
        with self.conn.begin():
            for chunk in _chunks(list(dict.fromkeys(values)), IN_CHUNK):
                stmt = (select(KEYS.c.side, KEYS.c.value, KEYS.c.record_id)
                        .where(KEYS.c.kind == kind, KEYS.c.value.in_(chunk))
                        .order_by(KEYS.c.side, KEYS.c.value, KEYS.c.record_id))
                for r in self.conn.execute(stmt):
                    out.setdefault((r.side, r.value), []).append(r.record_id)
        return out

    def linked_ids(self, entity: str, side: str, ids: Sequence[str]) -> dict[str, str]:
        """Of ``ids`` on ``side``, those with a link: id -> the other side's id."""
        col, other = (LINKS.c.crm_id, LINKS.c.erp_id) if side == "crm" else (LINKS.c.erp_id, LINKS.c.crm_id)
        out: dict[str, str] = {}
        with self.conn.begin():
            for chunk in _chunks(list(dict.fromkeys(ids)), IN_CHUNK):
                for r in self.conn.execute(select(col, other).where(LINKS.c.entity == entity, col.in_(chunk))):
                    out[r[0]] = r[1]
        return out

    def iter_duplicate_keys(self) -> Iterator[tuple[str, str, str, list[str]]]:
        """(side, kind, value, record ids) of every key value held by two or more live records."""
        dup = (select(KEYS.c.side, KEYS.c.kind, KEYS.c.value).group_by(KEYS.c.side, KEYS.c.kind, KEYS.c.value)
               .having(func.count() > 1).subquery())
        stmt = (select(KEYS.c.side, KEYS.c.kind, KEYS.c.value, KEYS.c.record_id)
                .join(dup, and_(dup.c.side == KEYS.c.side, dup.c.kind == KEYS.c.kind, dup.c.value == KEYS.c.value))
                .order_by(KEYS.c.side, KEYS.c.kind, KEYS.c.value, KEYS.c.record_id))
        # Materialised a page of groups at a time: duplicates are few, and a held cursor would
        # keep a read transaction open on SQLite.
        after: tuple[str, str, str] = ("", "", "")
        while True:
            with self.conn.begin():
                page = list(self.conn.execute(stmt.where(
                    or_(KEYS.c.side > after[0],
                        and_(KEYS.c.side == after[0], or_(KEYS.c.kind > after[1],
                                                          and_(KEYS.c.kind == after[1], KEYS.c.value > after[2])))))
                    .limit(CHUNK)))
            if not page:
                return
            groups: dict[tuple[str, str, str], list[str]] = {}
            for r in page:
                groups.setdefault((r.side, r.kind, r.value), []).append(r.record_id)
            complete = list(groups.items())
            if len(page) == CHUNK and len(complete) > 1:
                complete = complete[:-1]  # the last group may continue on the next page
            elif len(page) == CHUNK:
                # One group fills the page: fetch it whole.
                (side, kind, value), _ = complete[0]
                with self.conn.begin():
                    ids = [r.record_id for r in self.conn.execute(
                        select(KEYS.c.record_id).where(KEYS.c.side == side, KEYS.c.kind == kind,
                                                       KEYS.c.value == value).order_by(KEYS.c.record_id))]
                complete = [((side, kind, value), ids)]
            for (side, kind, value), ids in complete:
                yield side, kind, value, ids
            after = complete[-1][0]

    # ------------------------------------------------------------------ match index upkeep (apply)
    def stale_match_rows(self, entity: str, system: str, side: str) -> list[str]:
        """Record ids in the store's match index of (entity, system) that are not live any more."""
        live = exists().where(RECORDS.c.side == side, RECORDS.c.record_id == MATCH.c.record_id,
                              RECORDS.c.live.is_(True), RECORDS.c.error.is_(None))
        with self.conn.begin():
            return list(dict.fromkeys(self.conn.scalars(
                select(MATCH.c.record_id).where(MATCH.c.entity == entity, MATCH.c.system == system, not_(live)))))

    def unlinked_keys(self, entity: str, side: str, kinds: Sequence[str]) -> Iterator[tuple[str, str, str]]:
        """(kind, value, record id) of unlinked live records of ``side``, for the match index, streamed."""
        col = LINKS.c.crm_id if side == "crm" else LINKS.c.erp_id
        linked = exists().where(LINKS.c.entity == entity, col == KEYS.c.record_id)
        after: tuple[str, str] = ("", "")
        while True:
            stmt = (select(KEYS.c.kind, KEYS.c.value, KEYS.c.record_id)
                    .where(KEYS.c.side == side, KEYS.c.kind.in_(list(kinds)), not_(linked),
                           or_(KEYS.c.record_id > after[0],
                               and_(KEYS.c.record_id == after[0], KEYS.c.kind > after[1])))
                    .order_by(KEYS.c.record_id, KEYS.c.kind).limit(CHUNK))
            with self.conn.begin():
                page = [(r.kind, r.value, r.record_id) for r in self.conn.execute(stmt)]
            yield from page
            if len(page) < CHUNK:
                return
            after = (page[-1][2], page[-1][0])

