"""Listing and reading Odoo records as NativeRecords (keyset paging, archived included).

Values are Odoo's, untouched, except: a many2one named by a path without a dot (``partner_id``)
is the related record's id in text (``"7"``) or None, because the engine treats it as a record
reference; item lists (items.py) are lists of dicts; virtual ``concord_*`` fields (virtual.py)
are computed. ``light`` reads skip the last two (key lookups before a write need neither).
"""
from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from connectors.base import ConnectorError, EntitySpec, NativeRecord, Page, Watermark
from connectors.odoo.errors import SYSTEM
from connectors.odoo.items import ItemReader, bare_many2ones
from connectors.odoo.relations import Relations, RunCache, split_paths
from connectors.odoo.rpc import OdooRPC
from connectors.odoo.schema import Schema
from connectors.odoo.stock import StockScope
from connectors.odoo.values import Domain, and_domains, format_datetime, parse_datetime, record_ref
from connectors.odoo.virtual import Virtuals, is_virtual

# Archived (active=False) records must come too: they are how Odoo shows a delete.
NO_ACTIVE_TEST = {"active_test": False}
_IN_CHUNK = 1000
_VALUE_CHUNK = 200  # values ORed in one find_by_values domain


def updated_field(spec: EntitySpec) -> str:
    """The field that orders changes (``write_date`` unless the mapping says otherwise)."""
    return spec.updated_field or "write_date"


def _no_progress(spec: EntitySpec) -> ConnectorError:
    # A server that ignored the keyset condition would otherwise make us page forever.
    return ConnectorError(f"odoo: paging {spec.object} made no progress; the server ignored the keyset domain",
                          system=SYSTEM)


def _second(value: Any) -> str:
    """A write_date as Odoo sends it, cut to whole seconds (``YYYY-MM-DD HH:MM:SS``)."""
    return str(value)[:19]


def _next_second(second: str) -> str:
    parsed = parse_datetime(second)
    assert parsed is not None
    return format_datetime(parsed + timedelta(seconds=1))


def _many2one_id(value: Any) -> Any:
    """The id of a many2one as search_read sends it (``[id, name]``), or the value itself."""
    return value[0] if isinstance(value, (list, tuple)) and value else value


def _wm_order(record: NativeRecord) -> tuple[Any, ...]:
    return (record.updated_at is None, record.updated_at, int(record.id) if record.id.isdigit() else 0, record.id)


def _merged(streams: Sequence[Iterator[Page]], page_size: int) -> Iterator[Page]:
    """Pages of several change feeds, each in (updated_at, id) order, merged into one such feed."""
    records = heapq.merge(*(r for r in (_flatten(s) for s in streams)), key=_wm_order)
    page: list[NativeRecord] = []
    for record in records:
        page.append(record)
        if len(page) >= page_size:
            yield Page(page)
            page = []
    if page:
        yield Page(page)


def _flatten(pages: Iterator[Page]) -> Iterator[NativeRecord]:
    for page in pages:
        yield from page.records


def _like_literal(value: str) -> str:
    """``value`` as a LIKE pattern matching itself only (PostgreSQL's default escape is a backslash)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def numeric_ids(ids: Sequence[str]) -> list[int]:
    """Odoo ids among ``ids`` (others cannot exist), unique, in order."""
    out: list[int] = []
    seen: set[int] = set()
    for raw in ids:
        text = str(raw).strip()
        if text.isascii() and text.isdigit() and int(text) not in seen:
            seen.add(int(text))
            out.append(int(text))
    return out


class Reader:
    """search_read with the spec's fields; dotted paths filled through :class:`Relations`."""

    def __init__(self, rpc: OdooRPC, schema: Schema, relations: Relations, page_size: int) -> None:
        self._rpc = rpc
        self._schema = schema
        self._relations = relations
        self.page_size = page_size
        self.scope = StockScope(rpc)
        self._items = ItemReader(rpc, schema, relations)
        self._virtuals = Virtuals(rpc, schema, self.scope)

    def iter_changes(self, spec: EntitySpec, since: Watermark | None) -> Iterator[Page]:
        """Pages in (write_date, id) order from ``since.updated_at`` on (inclusive).

        Odoo 18 stores write_date with microseconds but sends (and, before 18.4, compares
        domain values against) whole seconds, so ``write_date = <value as sent>`` matches
        nothing and a (write_date, id) keyset cannot be built from the wire value. Instead we
        page by whole seconds: ``write_date >= S``; when a page is full, the records of its last
        second are dropped and the next query starts at that second; a second that holds more
        than a page is walked by id within ``[s, s+1)``. Correct with either storage precision.

        ``options.full_scan`` lists every record by id instead, whatever ``since`` is: computed
        values (stock quantities) change without bumping write_date.
        """
        if spec.options.get("full_scan"):
            yield from self.iter_all(spec)
            return
        own = self._iter_own_changes(spec, since)
        via = list(spec.options.get("changed_with") or ())
        if since is None or not via:  # a full read lists every record through its own feed anyway
            yield from own
            return
        streams = [own, *(self._iter_changes_via(spec, field, since) for field in via)]
        yield from _merged(streams, self.page_size)

    def _iter_own_changes(self, spec: EntitySpec, since: Watermark | None) -> Iterator[Page]:
        upd = updated_field(spec)
        cache = self._relations.run_cache()
        base = self.base_domain(spec)

        def fetch(domain: Domain, order: str, limit: int) -> list[dict[str, Any]]:
            return self.search_rows(spec, and_domains([base, domain]), order=order, limit=limit)

        for rows in self._scan_by_second(spec, fetch, upd, since):
            yield Page(self.to_records(spec, rows, cache))

    def _iter_changes_via(self, spec: EntitySpec, field: str, since: Watermark) -> Iterator[Page]:
        """Records whose ``field`` (a many2one) points at a record changed since ``since``, stamped
        with that record's write_date: a product.product when its template was edited, which
        moves only the template's write_date (``options.changed_with: [product_tmpl_id]``)."""
        parent = self._schema.relation(spec.object, field, f"options.changed_with.{field}")
        cache = self._relations.run_cache()
        base = self.base_domain(spec)

        def fetch(domain: Domain, order: str, limit: int) -> list[dict[str, Any]]:
            return list(self._rpc.execute_kw(parent, "search_read", [domain], {
                "fields": ["id", "write_date"], "order": order, "limit": limit,
                "context": NO_ACTIVE_TEST}) or [])

        for parents in self._scan_by_second(spec, fetch, "write_date", since):
            stamp = {p["id"]: parse_datetime(p.get("write_date")) for p in parents}
            rows = self.search_rows(spec, and_domains([base, [(field, "in", sorted(stamp))]]), order="id asc",
                                    extra=[field])
            records = self.to_records(spec, rows, cache)
            for row, record in zip(rows, records, strict=True):
                record.updated_at = stamp.get(_many2one_id(row.get(field)))
            records.sort(key=_wm_order)
            if records:
                yield Page(records)

    def _scan_by_second(self, spec: EntitySpec, fetch: Any, upd: str,
                        since: Watermark | None) -> Iterator[list[dict[str, Any]]]:
        """Row pages of ``fetch(domain, order, limit)`` in (``upd``, id) order from ``since`` on."""
        lower: str | None = format_datetime(since.updated_at) if since is not None and since.updated_at else None
        while True:
            start: Domain = [(upd, ">=", lower)] if lower is not None else []
            rows = fetch(start, f"{upd} asc, id asc", self.page_size)
            if not rows:
                return
            if len(rows) < self.page_size:
                yield rows
                return
            last_second = _second(rows[-1][upd])
            if _second(rows[0][upd]) == last_second:
                # The whole page is one second: walk that second by id, then go on after it.
                yield from self._walk_second(spec, fetch, upd, last_second)
                nxt = _next_second(last_second)
                if lower is not None and nxt <= lower:
                    raise _no_progress(spec)
                lower = nxt
                continue
            yield [r for r in rows if _second(r[upd]) != last_second]
            if lower is not None and last_second <= lower:
                raise _no_progress(spec)
            lower = last_second

    def _walk_second(self, spec: EntitySpec, fetch: Any, upd: str, second: str) -> Iterator[list[dict[str, Any]]]:
        """Every row whose ``upd`` falls in ``[second, second + 1 s)``, by id."""
        window: Domain = [(upd, ">=", second), (upd, "<", _next_second(second))]
        last_id = 0
        while True:
            rows = fetch(and_domains([window, [("id", ">", last_id)]]), "id asc", self.page_size)
            if not rows:
                return
            if rows[-1]["id"] <= last_id:
                raise _no_progress(spec)
            # Within one second the id order is the change order the caller's cursor expects.
            yield rows
            if len(rows) < self.page_size:
                return
            last_id = rows[-1]["id"]

    def iter_all(self, spec: EntitySpec) -> Iterator[Page]:
        """Every record (archived too), by id, a page at a time."""
        cache = self._relations.run_cache()
        last_id = 0
        while True:
            rows = self.search_rows(spec, and_domains([self.base_domain(spec), [("id", ">", last_id)]]),
                                    order="id asc", limit=self.page_size)
            if not rows:
                return
            if rows[-1]["id"] <= last_id:
                raise _no_progress(spec)
            yield Page(self.to_records(spec, rows, cache))
            if len(rows) < self.page_size:
                return
            last_id = rows[-1]["id"]

    def read(self, spec: EntitySpec, ids: Sequence[str], cache: RunCache | None = None, *,
             light: bool = False) -> dict[str, NativeRecord]:
        """Records by id; missing ids are absent (search_read, because read raises MissingError)."""
        wanted = numeric_ids(ids)
        cache = cache or self._relations.run_cache()
        out: dict[str, NativeRecord] = {}
        for start in range(0, len(wanted), self.page_size):
            chunk = wanted[start:start + self.page_size]
            rows = self.search_rows(spec, [("id", "in", chunk)], order="id asc", light=light)
            for record in self.to_records(spec, rows, cache, light=light):
                out[record.id] = record
        return out

    def find_by_values(self, spec: EntitySpec, field: str, values: Sequence[str]) -> list[NativeRecord]:
        """Active records (within the mapping's domain) whose ``field`` equals one of ``values``,
        ignoring case: ``=ilike`` with LIKE wildcards escaped, ORed, a chunk of values per call."""
        wanted = list(dict.fromkeys(str(v) for v in values if v not in (None, "")))
        live: Domain = [("active", "=", True)] if self._schema.has_field(spec.object, "active") else []
        cache = self._relations.run_cache()
        out: dict[str, NativeRecord] = {}
        for start in range(0, len(wanted), _VALUE_CHUNK):
            chunk = wanted[start:start + _VALUE_CHUNK]
            anyof: Domain = ["|"] * (len(chunk) - 1) + [(field, "=ilike", _like_literal(v)) for v in chunk]
            rows = self.search_rows(spec, and_domains([self.base_domain(spec), live, anyof]), order="id asc")
            for record in self.to_records(spec, rows, cache):
                out[record.id] = record
        return list(out.values())

    def search_records(self, spec: EntitySpec, domain: Domain, extra: Sequence[str] = (),
                       cache: RunCache | None = None, *,
                       light: bool = False) -> list[tuple[dict[str, Any], NativeRecord]]:
        """(raw row, record) pairs matching ``domain``; ``extra`` fields are read into the row too."""
        rows = self.search_rows(spec, domain, order="id asc", extra=extra, light=light)
        records = self.to_records(spec, rows, cache or self._relations.run_cache(), light=light)
        return list(zip(rows, records, strict=True))

    def base_domain(self, spec: EntitySpec) -> Domain:
        """The mapping's own filter (``options.domain``), e.g. only companies."""
        return list(spec.options.get("domain") or [])

    def search_rows(self, spec: EntitySpec, domain: Domain, *, order: str, limit: int | None = None,
                    extra: Sequence[str] = (), light: bool = False) -> list[dict[str, Any]]:
        """Raw search_read rows with every field the spec needs."""
        kwargs: dict[str, Any] = {"fields": self.read_fields(spec, extra, light=light), "order": order,
                                  "context": {**NO_ACTIVE_TEST, **self.scope.context(spec)}}
        if limit is not None:
            kwargs["limit"] = limit
        return list(self._rpc.execute_kw(spec.object, "search_read", [domain], kwargs) or [])

    def read_fields(self, spec: EntitySpec, extra: Sequence[str] = (), *, light: bool = False) -> list[str]:
        """Top-level fields to read: the spec's, the cursor field, ``active`` when the model has it,
        and what the virtual fields are computed from."""
        tops, _ = split_paths(p for p in spec.fields if not is_virtual(p))
        wanted = ["id", updated_field(spec), *tops, *extra, *([] if light else self._virtuals.needs(spec))]
        if self._schema.has_field(spec.object, "active"):
            wanted.append("active")
        return list(dict.fromkeys(f for f in wanted if f))

    def to_records(self, spec: EntitySpec, rows: list[dict[str, Any]], cache: RunCache, *,
                   light: bool = False) -> list[NativeRecord]:
        """Rows as NativeRecords keyed by the spec's field paths (dotted ones resolved)."""
        real = [p for p in spec.fields if not is_virtual(p)]
        _, dotted = split_paths(real)
        resolved = [dict(r) for r in rows]
        if dotted:
            self._relations.fill(spec.object, resolved, dotted, cache)
        if not light:
            self._items.fill(spec, resolved, cache)
            self._virtuals.fill(spec, resolved)
        for path in bare_many2ones(self._schema, spec.object, real):
            for row in resolved:
                row[path] = record_ref(row.get(path))
        upd = updated_field(spec)
        return [NativeRecord(id=str(row["id"]), updated_at=parse_datetime(row.get(upd)),
                             data={path: row.get(path) for path in spec.fields},
                             deleted=row.get("active", True) is False)
                for row in resolved]
