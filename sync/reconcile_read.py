"""Read one entity of both systems into the scratch tables, a page at a time.

A full read lists every record of each side (``iter_all``: the products' own paging limits and
batch sizes, archived records included). A ``--since`` read lists each side's changes since the
date and then completes the picture by id: the linked counterparts of what changed, the records
their idempotency keys point at, and the records sharing their match keys (from the store's
match index), so those are classified with the same rules.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import structlog

from connectors.base import (
    AuthError,
    ConnectorError,
    EntitySpec,
    NativeRecord,
    Page,
    RetryableError,
    Watermark,
)
from sync.pipeline import EntityPipeline
from sync.reconcile_fields import KEY_KIND, ROLES, FieldPlan, Row, RowBuilder, other
from sync.reconcile_progress import Reporter
from sync.reconcile_scratch import Scratch
from sync.runtime import Endpoint, Role, Runtime

log = structlog.get_logger("concord.reconcile")

BATCH = 1000
QUEUE_PAGES = 4   # pages per side fetched ahead of the mapping
T = TypeVar("T")


class ReconcileStopped(Exception):
    """A system cannot be read (exit 3), or refuses what the mapping asks for (exit 2)."""

    def __init__(self, message: str, *, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def call(ep: Endpoint, fn: Callable[[], T]) -> T:
    """Run a connector call, turning its typed errors into :class:`ReconcileStopped`."""
    try:
        return fn()
    except AuthError as exc:
        raise ReconcileStopped(f"{ep.system}: authentication failed: {exc.message}", exit_code=3) from None
    except RetryableError as exc:
        raise ReconcileStopped(f"{ep.system}: unreachable after retries: {exc.message}", exit_code=3) from None
    except ConnectorError as exc:
        raise ReconcileStopped(f"{ep.system}: {exc.message} (does `concord validate --check-connections` pass?)",
                               exit_code=2) from None


def fetch_concurrently(sources: Mapping[Role, tuple[Endpoint, Callable[[], Iterable[Page]]]]
                       ) -> Iterator[tuple[Role, Page | None]]:
    """(role, page) as each side's listing yields them, then (role, None) when a side is done.

    Each listing runs in a thread of its own that does nothing but fetch (its connector is used
    by that thread only); a small queue bounds the pages in flight, so memory stays flat. The
    first error stops everything and is raised here, typed as :func:`call` does.
    """
    results: queue.Queue[tuple[Role, str, Any]] = queue.Queue(maxsize=2 * QUEUE_PAGES)
    stop = threading.Event()

    def put(item: tuple[Role, str, Any]) -> bool:
        while not stop.is_set():
            try:
                results.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce(role: Role, make: Callable[[], Iterable[Page]]) -> None:
        try:
            for page in make():
                if not put((role, "page", page)):
                    return
            put((role, "done", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread, which raises it
            put((role, "error", exc))

    threads = [threading.Thread(target=produce, args=(role, make), daemon=True, name=f"reconcile-{ep.system}")
               for role, (ep, make) in sources.items()]
    for t in threads:
        t.start()
    try:
        pending = set(sources)
        while pending:
            role, kind, item = results.get()
            if kind == "error":
                ep = sources[role][0]
                call(ep, partial(_raise, item))
            if kind == "done":
                pending.discard(role)
                yield role, None
            else:
                yield role, item
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)


def _raise(exc: BaseException) -> None:
    raise exc


def spec_for(rt: Runtime, entity: str, ep: Endpoint) -> EntitySpec:
    """The spec the sync reads with (config-driven filters such as an order's deal stages)."""
    return EntityPipeline(rt, entity, dry_run=True).spec_for(ep)  # type: ignore[no-any-return]


class SideLoader:
    """Buffers one side's rows and writes them to the scratch tables in batches."""

    def __init__(self, rt: Runtime, plan: FieldPlan, role: Role, scratch: Scratch) -> None:
        self.builder = RowBuilder(rt, plan, role)
        self.scratch = scratch
        self.buf: dict[str, Row] = {}
        self.read = 0

    def add(self, records: list[NativeRecord]) -> None:
        self.read += len(records)
        for row in self.builder.rows(records):
            self.buf[row.record_id] = row  # a record listed twice (archived mid-scan): the later one wins
        if len(self.buf) >= BATCH:
            self.flush()

    def flush(self) -> None:
        self.scratch.add_rows(list(self.buf.values()))
        self.buf.clear()


class EntityReader:
    """Reads both sides of one entity into a :class:`Scratch`."""

    def __init__(self, rt: Runtime, plan: FieldPlan, scratch: Scratch, reporter: Reporter) -> None:
        self.rt = rt
        self.plan = plan
        self.entity = plan.entity
        self.scratch = scratch
        self.reporter = reporter
        self.specs = {role: spec_for(rt, plan.entity, rt.side(role)) for role in ("crm", "erp")}
        self.read: dict[str, int] = {}

    def full(self) -> dict[str, int]:
        """Every record of both sides; returns how many were read per system."""
        estimate = self.rt.store.count_links(self.entity) or None
        return self._read_both("read", estimate, lambda ep: partial(ep.connector.iter_all, self.specs[ep.role]))

    def _read_both(self, verb: str, estimate: int | None,
                   listing: Callable[[Endpoint], Callable[[], Iterable[Page]]]) -> dict[str, int]:
        """List both sides at once (each in a thread that only fetches pages), mapping and storing
        the pages here as they arrive: one side's network wait overlaps the other side's work."""
        eps = {role: self.rt.side(role) for role in ROLES}
        loaders = {role: SideLoader(self.rt, self.plan, role, self.scratch) for role in ROLES}
        names = {role: f"{self.entity}: {verb} {ep.system}" for role, ep in eps.items()}
        for role in ROLES:
            self.reporter.start(names[role], estimate)
        for role, page in fetch_concurrently({role: (ep, listing(ep)) for role, ep in eps.items()}):
            if page is None:
                loaders[role].flush()
                self.reporter.finish(names[role])
                continue
            loaders[role].add(page.records)
            self.reporter.advance(names[role], len(page.records))
        for role, ep in eps.items():
            self.read[ep.system] = self.read.get(ep.system, 0) + loaders[role].read
            log.info("reconcile.read", entity=self.entity, system=ep.system, records=loaders[role].read)
        return self.read

    def since(self, when: datetime) -> dict[str, int]:
        """Both sides' changes since ``when``, then what classifying them needs, by id."""
        self._read_both("changes on", None,
                        lambda ep: partial(ep.connector.iter_changes, self.specs[ep.role], Watermark(when, "")))
        self._complete()
        return self.read

    # ------------------------------------------------------------------ --since completion
    def _complete(self) -> None:
        store = self.rt.store
        for role in ("crm", "erp"):
            side: Role = role  # type: ignore[assignment]
            o = other(side)
            ep_o = self.rt.side(o)
            for ids in self.scratch.iter_ids(side):
                self.scratch.want(o, self.scratch.linked_ids(self.entity, side, ids).values())
                keys = self.scratch.keys_of(side, ids)
                self.scratch.want(o, [v for kv in keys.values() for k, v in kv if k == KEY_KIND])
                for kind in self.plan.match_on:
                    values = sorted({v for kv in keys.values() for k, v in kv if k == kind})
                    if not values:
                        continue
                    for role_x in (side, o):
                        found = store.match_lookup(self.entity, self.rt.side(role_x).system, kind, values)
                        self.scratch.want(role_x, [i for ids_ in found.values() for i in ids_])
                if self.specs[o].key_field:
                    claimed = call(ep_o, partial(ep_o.connector.find_by_keys, self.specs[o], ids))
                    self.scratch.want(o, [r.id for r in claimed.values()])
        for role in ("crm", "erp"):
            ep = self.rt.side(role)  # type: ignore[arg-type]
            loader = SideLoader(self.rt, self.plan, ep.role, self.scratch)
            spec = self.specs[ep.role]
            for ids in self.scratch.take_wanted(ep.role):
                records = call(ep, partial(ep.connector.read, spec, ids))
                loader.add(list(records.values()))
            loader.flush()
            self.read[ep.system] = self.read.get(ep.system, 0) + loader.read

    # ------------------------------------------------------------------ re-reading after repairs
    def reread(self, ids_by_side: Mapping[str, Iterable[str]]) -> None:
        """Read records again by id after repairs. A record the product no longer returns is
        forgotten if it was live; an archived one stays as it was (reads by id skip archived
        records on some products, e.g. HubSpot)."""
        for role, ids in ids_by_side.items():
            ep = self.rt.side(role)  # type: ignore[arg-type]
            wanted = list(dict.fromkeys(ids))
            if not wanted:
                continue
            loader = SideLoader(self.rt, self.plan, ep.role, self.scratch)
            spec = self.specs[ep.role]
            for start in range(0, len(wanted), BATCH):
                chunk = wanted[start:start + BATCH]
                found = call(ep, partial(ep.connector.read, spec, chunk))
                loader.add(list(found.values()))
                before = self.scratch.present(ep.role, [i for i in chunk if i not in found])
                self.scratch.forget(ep.role, [i for i, row in before.items() if row.live])
            loader.flush()
