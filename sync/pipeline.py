"""One entity, one direction at a time: detect -> map -> resolve -> write -> record.

The algorithm of DESIGN.md "How one change is synced". The pipeline drives connectors through the
protocol in connectors/base.py and knows no product by name.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import structlog

from connectors.base import (
    AuthError,
    ConnectorError,
    NativeRecord,
    NotFound,
    RetryableError,
    Watermark,
    WriteOp,
    WriteResult,
)
from sync.housekeeping import close_abandoned_runs
from sync.intents import belongs, make_intent, recovered_base
from sync.map_workers import MapWorker, PageMapper
from sync.matching import match_rows, search_unindexed
from sync.merge import (
    Side,
    _key,
    diff,
    flat_canonical,
    flatten,
    merge,
    unflatten,
)
from sync.model import content_hash, jsonable
from sync.prefetch import ReadAhead
from sync.refs import ERP_PREFIX, RefTranslator
from sync.rules import rules_for
from sync.runtime import Endpoint, Role, Runtime
from sync.store import EncodedOnce, Link, StaleEpoch, WriteIntent

log = structlog.get_logger("concord.pipeline")

DIRECTIONS: dict[str, list[tuple[Role, Role]]] = {
    "both": [("crm", "erp"), ("erp", "crm")],
    "crm_to_erp": [("crm", "erp")],
    "erp_to_crm": [("erp", "crm")],
}


class PipelineStopped(Exception):
    """A pipeline cannot go on: authentication failed or a system is unreachable."""

    def __init__(self, message: str, *, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Counts:
    """What one run did, per outcome; the summary table and the runs row are built from it."""

    read: int = 0
    created: int = 0
    adopted: int = 0
    matched: int = 0
    updated: int = 0
    updated_back: int = 0
    unchanged: int = 0
    echo: int = 0
    archived: int = 0
    conflicts: int = 0
    conflicts_resolved: int = 0
    dead_letters: int = 0
    recovered: int = 0

    def add(self, other: Counts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @property
    def writes(self) -> int:
        return self.created + self.updated + self.updated_back + self.archived


@dataclass
class RunReport:
    """The outcome of one pipeline run, both directions."""

    entity: str
    counts: Counts = field(default_factory=Counts)
    by_direction: dict[str, Counts] = field(default_factory=dict)
    api_calls: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    interrupted: bool = False


@dataclass
class _Item:
    """One source record on its way through a batch."""

    record: NativeRecord
    canonical: dict[str, Any]
    hash: str
    link: Link | None
    target: NativeRecord | None = None
    target_canonical: dict[str, Any] | None = None
    target_id: str | None = None
    merged: dict[str, Any] | None = None
    target_patch: dict[str, Any] = field(default_factory=dict)
    source_patch: dict[str, Any] = field(default_factory=dict)
    matched: bool = False
    failed: bool = False
    ref_ids: dict[tuple[str, str], str] = field(default_factory=dict)  # (role, field) -> that side's id
    written_id: str | None = None  # the target record, once written (created or updated) in this batch
    archive_source: bool = False  # its counterpart was archived meanwhile: the archive wins over this edit
    intents: list[WriteIntent] = field(default_factory=list)  # writes in flight a crash left (oldest first)
    intent: WriteIntent | None = None  # this batch's own write, recorded before the API calls
    base: dict[str, Any] | None = None  # the merge base: the link's, or the one recovered from intents
    half_written: bool = False  # the target write landed but the source write failed: keep the intent
    after: tuple[dict[str, Any], dict[str, Any]] | None = None  # (source, target) once written: see _after
    after_json: dict[str, Any] | None = None  # the same as the link's base (JSON types), shared with the intent
    target_native: dict[str, Any] | None = None  # the target patch as sent, when it holds no translated reference


def _now() -> datetime:
    return datetime.now(timezone.utc)


class EntityPipeline:
    """Syncs one entity between the two endpoints of a runtime, per its config section."""

    def __init__(self, rt: Runtime, entity: str, *, dry_run: bool = False, epoch: int | None = None,
                 should_stop: Callable[[], bool] = lambda: False, policy_override: str | None = None) -> None:
        self.rt = rt
        self.policy_override = policy_override
        self.entity = entity
        self.cfg = rt.config.sync[entity]
        self.dry_run = dry_run
        self.epoch = epoch
        self.should_stop = should_stop
        self.pipeline = entity
        self.refs = RefTranslator(rt.store)
        self._specs: dict[str, Any] = {}
        self._premapped: dict[int, tuple[NativeRecord, Any]] = {}  # id(record) -> mapped ahead (sync/prefetch.py)
        self._fresh_index: set[str] = set()  # systems whose match index this instance just built in full
        self.rules = rules_for(entity, self)
        for ep in (rt.crm, rt.erp):
            if ep.entity(entity) is None:
                raise ValueError(f"mapping file of {ep.system} has no entity {entity!r}")

    def spec_for(self, ep: Endpoint) -> Any:
        """The connector-facing spec, with config-driven filters (an order's deal stages)."""
        cached = self._specs.get(ep.role)
        if cached is not None:
            return cached
        spec = ep.spec(self.entity)
        stage_property = spec.options.get("stage_property")
        stages = getattr(self.cfg, "stages", None)
        if stage_property and stages:
            spec = dataclasses.replace(spec, options={**spec.options, "filters": {stage_property: list(stages)}})
        self._specs[ep.role] = spec
        return spec

    # ------------------------------------------------------------------ public
    def run(self) -> RunReport:
        """One incremental pass in every configured direction, recorded as a runs row."""
        report = RunReport(self.entity)
        started = time.monotonic()
        calls_before = self.rt.api_calls()
        run_id = None
        if not self.dry_run:
            close_abandoned_runs(self.rt.store, self.pipeline)
            run_id = self.rt.store.start_run(self.pipeline, self.rt.instance)
        status = "ok"
        try:
            for source, target in self.directions():
                if self.should_stop():
                    report.interrupted = True
                    break
                counts = self.sync_direction(source, target)
                report.by_direction[f"{source}_to_{target}"] = counts
                report.counts.add(counts)
        except PipelineStopped as exc:
            status, report.error = "failed", str(exc)
            raise
        except BaseException as exc:
            status, report.error = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", repr(exc)
            raise
        finally:
            report.seconds = time.monotonic() - started
            report.api_calls = _delta(calls_before, self.rt.api_calls())
            if report.interrupted and status == "ok":
                status = "interrupted"
            if run_id is not None:
                self.rt.store.finish_run(run_id, status=status, counts=report.counts.as_dict(),
                                         api_calls=report.api_calls, error=report.error)
            log.info("run.finished", entity=self.entity, status=status, seconds=round(report.seconds, 3),
                     dry_run=self.dry_run, **report.counts.as_dict())
        return report

    def directions(self) -> list[tuple[Role, Role]]:
        """The passes of a run. An order goes CRM -> ERP and its status comes back: the mappings
        decide which fields can flow back (only the ERP-owned ones are written to the CRM)."""
        passes = list(DIRECTIONS[self.cfg.direction])
        if self.entity == "order" and self.cfg.direction == "crm_to_erp":
            passes.append(("erp", "crm"))
        return passes

    def sync_direction(self, source_role: Role, target_role: Role) -> Counts:
        """Dead letters due for retry, then the change feed of ``source_role`` since its cursor."""
        src, tgt = self.rt.side(source_role), self.rt.side(target_role)
        counts = Counts()
        store = self.rt.store
        cursor = store.get_cursor(self.pipeline, src.system, self.entity)
        if self.cfg.match_on and cursor is None:
            self.build_match_index(tgt)
        self._retry_dead_letters(src, tgt, counts)
        self.rules.before_direction(src, tgt)
        since = None
        if cursor is not None:
            since = Watermark(cursor.updated_at - self.cfg.overlap, "")
        # Changed records are gathered across pages until they fill a write batch of the target, so
        # 500 changes spread over 50 pages of a full scan cost 5 write calls, not 50. The cursor only
        # moves with a flush, past every record read so far (echoes and the flushed batch).
        batch = max(1, self._call(tgt, lambda: tgt.connector.capabilities()).batch_size)
        pending: list[NativeRecord] = []
        seen_last: NativeRecord | None = None
        sm = src.entity(self.entity)
        assert sm is not None
        # The next pages are read and mapped in a thread while this one is written (sync/prefetch.py),
        # large passes mapped in a worker process (sync/map_workers.py).
        mapper = PageMapper(sm, MapWorker(src.mapping, self.entity)
                             if MapWorker.wanted(getattr(self.cfg, "map_workers", 0)) else None)
        reader = ReadAhead(lambda: self._guard(src, lambda: src.connector.iter_changes(self.spec_for(src), since)),
                           lambda page: (page, mapper.map(page.records)), name=f"read-{self.entity}-{src.system}")
        try:
            with reader:
                for page, mapped in reader:
                    if self.should_stop():
                        break
                    records = page.records
                    if not records:
                        continue
                    self._premapped.update(mapped)
                    pending.extend(self._changed_only(src, records, counts))
                    page_last = max(records, key=_wm_key)
                    seen_last = page_last if seen_last is None or _wm_key(page_last) > _wm_key(seen_last) else seen_last
                    if len(pending) >= batch or not pending:
                        self.process(src, tgt, pending, counts, advance_cursor=True, cursor_at=seen_last,
                                     counted=True)
                        pending, seen_last = [], None
            if seen_last is not None and not self.should_stop():
                self.process(src, tgt, pending, counts, advance_cursor=True, cursor_at=seen_last, counted=True)
        finally:
            self._premapped.clear()
            mapper.close()
        return counts

    def _canonical(self, em: Any, rec: NativeRecord) -> dict[str, Any]:
        """A record's flat canonical content: mapped ahead by the reader, else now. Each premapped
        result is handed out once (references are rewritten in it in place)."""
        hit = self._premapped.pop(id(rec), None)
        if hit is not None and hit[0] is rec:
            if isinstance(hit[1], BaseException):
                raise hit[1]
            return hit[1]
        return flat_canonical(em, rec.data)

    def _changed_only(self, src: Endpoint, records: list[NativeRecord], counts: Counts) -> list[NativeRecord]:
        """The records of a page that are not echoes of what we last synced (cheap: no API call)."""
        sm = src.entity(self.entity)
        assert sm is not None
        counts.read += len(records)
        s_in = set(sm.inbound_fields())
        links = self.rt.store.links_by_ids(self.entity, src.role, [r.id for r in records])
        if not links:
            return list(records)
        mapped: list[tuple[NativeRecord, dict[str, Any], dict[str, Any]]] = []
        out: list[NativeRecord] = []
        for rec in records:
            if rec.id not in links:
                out.append(rec)
                continue
            try:
                c = self._canonical(sm, rec)
            except Exception:  # process() maps it again and dead-letters it with the details
                out.append(rec)
                continue
            mapped.append((rec, c, dict(c)))  # the copy stays as mapped: neutralize rewrites refs in place
        self.refs.neutralize(src.role, sm.refs, [c for _, c, _ in mapped])
        for rec, c, as_mapped in mapped:
            if link_hash(links[rec.id], src.role) == side_hash(c, s_in, deleted=rec.deleted):
                counts.echo += 1
            else:
                out.append(rec)
                self._premapped[id(rec)] = (rec, as_mapped)  # process() takes it instead of mapping again
        return out

    def sync_ids(self, source_role: Role, ids: Sequence[str], *, deleted_ids: Iterable[str] = ()) -> Counts:
        """Re-read records by id from ``source_role`` and sync them (webhooks, dead letters)."""
        src = self.rt.side(source_role)
        tgt = self.rt.other(source_role)
        counts = Counts()
        if not ids:
            return counts
        found = self._call(src, lambda: src.connector.read(self.spec_for(src), list(ids)))
        records = [found[i] for i in ids if i in found]
        gone = set(deleted_ids) - set(found)
        records += [NativeRecord(id=i, updated_at=_now(), data={}, deleted=True) for i in gone]
        if records:
            self.process(src, tgt, records, counts, advance_cursor=False)
        return counts

    def build_match_index(self, ep: Endpoint) -> int:
        """Read one side in full into the store's match index (first run, for ``match_on``)."""
        em = ep.entity(self.entity)
        assert em is not None
        keys = list(self.cfg.match_on)

        def rows() -> Iterable[tuple[str, str, str]]:
            for page in self._guard(ep, lambda: ep.connector.iter_all(self.spec_for(ep))):
                yield from match_rows(page.records, em, keys, match_value)

        n = self.rt.store.match_index_replace(self.entity, ep.system, rows())
        self._fresh_index.add(ep.system)
        log.info("match_index.built", entity=self.entity, system=ep.system, rows=n)
        return n

    # ------------------------------------------------------------------ the algorithm
    def process(self, src: Endpoint, tgt: Endpoint, records: list[NativeRecord], counts: Counts,
                *, advance_cursor: bool, cursor_at: NativeRecord | None = None, counted: bool = False) -> None:
        """Sync one batch of changed records from ``src`` to ``tgt`` and record the outcome.

        ``cursor_at``: the record the cursor moves to (default: the batch's last); ``counted``:
        the records were already counted as read by :meth:`_changed_only`.
        """
        store = self.rt.store
        sm, tm = src.entity(self.entity), tgt.entity(self.entity)
        assert sm is not None and tm is not None
        if not counted:
            counts.read += len(records)
        latest: dict[str, NativeRecord] = {}
        for rec in records:  # a record seen twice in one batch: the newest wins
            prev = latest.get(rec.id)
            if prev is None or (rec.updated_at or _now()) >= (prev.updated_at or _now()):
                latest[rec.id] = rec
        dead: list[dict[str, Any]] = []
        items: list[_Item] = []
        echoes: list[str] = []
        links = store.links_by_ids(self.entity, src.role, list(latest))
        s_in = set(sm.inbound_fields())
        mapped: list[tuple[NativeRecord, dict[str, Any]]] = []
        for rec in latest.values():
            try:
                mapped.append((rec, self._canonical(sm, rec)))
            except Exception as exc:  # RecordError names the field; anything else is still this record's fault
                dead.append(self._dead(src, rec.id, rec.data, exc))
        self.refs.neutralize(src.role, sm.refs, [c for _, c in mapped])
        for rec, c in mapped:
            h = side_hash(c, s_in, deleted=rec.deleted)
            link = links.get(rec.id)
            if link is not None and link_hash(link, src.role) == h:
                counts.echo += 1
                if not advance_cursor:
                    # A dead letter retried by id whose record is in sync by now (fixed on either side).
                    echoes.append(rec.id)
                continue
            items.append(_Item(rec, c, h, link))
        if self.cfg.match_on and not self.dry_run:
            self._index_source(src, items)

        self._resolve_targets(src, tgt, items, dead, counts)
        self._archive_wins(src, tgt, items, counts)
        conflicts = self._merge_all(src, tgt, items, dead, counts)
        self._translate_refs(src, tgt, items, dead)
        new_links, resolved = self._write(src, tgt, items, dead, counts)

        counts.dead_letters += len(dead)
        if self.dry_run:
            return
        # Business rules (confirm an order, request purchases) run before the page commits: a crash
        # in between makes the next run see the record again, adopt it, and run the rules again
        # (each rule is idempotent), instead of leaving an order in draft for good.
        written = [(i.record.id, i.written_id) for i in items if i.written_id and not i.failed]
        self.rules.after_batch(src, tgt, written)
        backoff = self._backoff
        dl_cfg = self.rt.config.dead_letters
        with store.transaction() as tx:
            if new_links:
                tx.save_links(new_links)
            settled = _settled_intents(items, resolved)
            if settled:
                tx.clear_intents(settled)
            if resolved or echoes:
                tx.resolve_dead_letters(self.pipeline, src.system, [*resolved, *echoes])
            for d in dead:
                tx.add_dead_letter(pipeline=self.pipeline, entity=self.entity, system=src.system,
                                   record_id=d["record_id"], payload=d["payload"],
                                   error_class=d["error_class"], error_message=d["message"],
                                   field=d["field"], backoff=backoff, max_attempts=dl_cfg.max_attempts)
            for c in conflicts:
                tx.record_conflict(**c)
            last = cursor_at if cursor_at is not None else (max(records, key=_wm_key) if records else None)
            if advance_cursor and last is not None:
                if last.updated_at is not None:
                    try:
                        tx.set_cursor(self.pipeline, src.system, self.entity, last.updated_at, last.id,
                                      epoch=self.epoch)
                    except StaleEpoch as exc:
                        raise PipelineStopped(f"lost the lease of {self.pipeline}: {exc}", exit_code=1) from None
        self._cascade(src, items)
        for d in dead:
            log.warning("record.dead_letter", entity=self.entity, system=src.system, record_id=d["record_id"],
                        field=d["field"], error=d["error_class"], message=d["message"][:300])
        log.info("batch.written", entity=self.entity, source=src.system, target=tgt.system,
                 read=len(records), created=counts.created, updated=counts.updated, echo=counts.echo,
                 dead_letters=len(dead), conflicts=len(conflicts))

    def _archive_wins(self, src: Endpoint, tgt: Endpoint, items: list[_Item], counts: Counts) -> None:
        """An edit whose counterpart was archived since the last sync: the archive wins.

        Writing the edit into the archived record would store its archived state in the link, and the
        other direction would then take the archive for an echo and never propagate it (both sides
        disagreeing for good). Instead the edited record is archived too, whatever the conflict policy:
        the product keeps archived records with their values, so the edit is not lost, and the event
        says which record it was. Only where archives are propagated (two-way, ``on_delete`` not ignore).
        """
        if self.cfg.direction != "both" or self.cfg.on_delete == "ignore":
            return
        for item in items:
            link, target = item.link, item.target
            if (item.failed or item.record.deleted or link is None or link.deleted or target is None
                    or not target.deleted):
                continue
            item.archive_source = True
            counts.conflicts_resolved += 1
            log.warning("conflict.archive_wins", entity=self.entity, system=src.system, record_id=item.record.id,
                        archived_system=tgt.system, archived_id=target.id)

    def _resolve_targets(self, src: Endpoint, tgt: Endpoint, items: list[_Item], dead: list[dict[str, Any]],
                         counts: Counts) -> None:
        """Find each item's target: through its link, else through ``match_on``; then read them."""
        store = self.rt.store
        unlinked = [i for i in items if i.link is None and not i.record.deleted]
        self._locate_by_own_key(src, tgt, unlinked)
        if unlinked and self.cfg.match_on:
            claimed: set[str] = set()
            for key in self.cfg.match_on:
                pending = [i for i in unlinked if i.target_id is None and not i.failed]
                if not pending:
                    break
                values = {i.record.id: match_value(i.canonical.get(key)) for i in pending}
                wanted = sorted({v for v in values.values() if v})
                if not wanted:
                    continue
                found = store.match_lookup(self.entity, tgt.system, key, wanted)
                candidates = {rid for ids in found.values() for rid in ids}
                taken = store.links_by_ids(self.entity, tgt.role, sorted(candidates)) if candidates else {}
                if tgt.system not in self._fresh_index:
                    unseen = {v for v in wanted if not [r for r in found.get(v, []) if r not in taken]}
                    if unseen:
                        raw = {values[i.record.id]: i.canonical.get(key) for i in pending}
                        extra = self._search_unindexed(tgt, key, {v: raw[v] for v in sorted(unseen)})
                        for v, ids in extra.items():
                            found[v] = list(dict.fromkeys([*found.get(v, []), *ids]))
                        new = sorted({r for ids in extra.values() for r in ids} - candidates)
                        if new:
                            taken.update(store.links_by_ids(self.entity, tgt.role, new))
                for item in pending:
                    v = values[item.record.id]
                    ids = [rid for rid in found.get(v, []) if rid not in taken and rid not in claimed] if v else []
                    if len(ids) == 1:
                        item.target_id, item.matched = ids[0], True
                        claimed.add(ids[0])
                    elif len(ids) > 1:
                        item.failed = True
                        dead.append(self._dead(src, item.record.id, item.record.data, None,
                                               message=f"ambiguous match on {key}={v!r}: {tgt.system} records "
                                                       f"{', '.join(ids[:5])} all match; link one by hand or fix the data",
                                               field=key, error_class="AmbiguousMatch"))
        for item in items:
            if item.link is not None:
                item.target_id = link_id(item.link, tgt.role)
        tm = tgt.entity(self.entity)
        assert tm is not None
        if tm.via:
            self._locate_via(src, tgt, tm.via, unlinked, dead)
        if not tm.create:
            self._locate_by_key(src, tgt, unlinked, dead)
        for item in items:
            item.base = item.link.base if item.link is not None else None
        self._find_intents(src, tgt, items)
        wanted_ids = sorted({i.target_id for i in items if i.target_id and not i.failed})
        if not wanted_ids:
            return
        found = self._call(tgt, lambda: tgt.connector.read(self.spec_for(tgt), wanted_ids))
        for item in items:
            if item.failed or not item.target_id:
                continue
            rec = found.get(item.target_id)
            if rec is None:
                if item.record.deleted:
                    continue
                item.failed = True
                dead.append(self._dead(src, item.record.id, item.record.data, NotFound(
                    f"linked {tgt.system} record {item.target_id} no longer exists", system=tgt.system),
                    field=None))
                continue
            try:
                item.target = rec
                item.target_canonical = flat_canonical(tm, rec.data)
            except Exception as exc:
                item.failed = True
                dead.append(self._dead(tgt, rec.id, rec.data, exc))
        self.refs.neutralize(tgt.role, tm.refs,
                             [i.target_canonical for i in items if i.target_canonical is not None])
        for item in items:
            if item.intents and not item.failed:
                self._recover_base(src, tgt, item)

    # ------------------------------------------------------------------ writes in flight (sync/intents.py)
    def _find_intents(self, src: Endpoint, tgt: Endpoint, items: list[_Item]) -> None:
        """Attach the intents a crash left for the batch's records (one query); a record Concord was
        creating a copy of whose link was lost gets that copy as its target, found by its key."""
        live = [i for i in items if not i.failed and not i.record.deleted]
        if not live:
            return
        ids: dict[str, list[str]] = {src.role: [i.record.id for i in live],
                                     tgt.role: [i.target_id for i in live if i.target_id]}
        found = self.rt.store.intents_for(self.entity, crm_ids=ids["crm"], erp_ids=ids["erp"])
        if not found:
            return
        for item in live:
            pair = {src.role: item.record.id, tgt.role: item.target_id}
            item.intents = [x for x in found if belongs(x, pair)]
        lost = [i for i in live if i.target_id is None and any(x.is_create and x.source == src.role
                                                                 for x in i.intents)]
        if lost:
            try:
                copies = self._call(tgt, lambda: tgt.connector.find_by_keys(self.spec_for(tgt),
                                                                            [i.record.id for i in lost]))
            except ConnectorError as exc:  # no way to look copies up: the create adopts by key as before
                log.warning("intents.lookup_failed", entity=self.entity, system=tgt.system, error=type(exc).__name__)
                copies = {}
            taken = self.rt.store.links_by_ids(self.entity, tgt.role, sorted(r.id for r in copies.values()))
            for item in lost:
                copy = copies.get(item.record.id)
                if copy is not None and copy.id not in taken:
                    item.target_id, item.matched = copy.id, True
        log.info("intents.found", entity=self.entity, source=src.system, count=len(found),
                 records=sum(1 for i in live if i.intents), copies_adopted=sum(1 for i in lost if i.target_id))

    def _recover_base(self, src: Endpoint, tgt: Endpoint, item: _Item) -> None:
        """The merge base once the writes in flight that landed are counted (see sync/intents.py)."""
        current = {src.role: item.canonical, tgt.role: item.target_canonical}
        keys = {src.role: self._own_key(src, item.record), tgt.role: self._own_key(tgt, item.target)}
        item.base = recovered_base(item.base, item.intents, current, keys)

    def _own_key(self, ep: Endpoint, rec: NativeRecord | None) -> str | None:
        """The other side's id a record carries in its key field (None when it shows none)."""
        key_field = self.spec_for(ep).key_field
        if rec is None or not key_field or rec.data.get(key_field) in (None, "", False):
            return None
        return str(rec.data[key_field])

    def _record_intents(self, src: Endpoint, tgt: Endpoint, items: list[_Item], targeted: set[str]) -> None:
        """Commit, before the batch's API calls, what each record's write will leave on both sides."""
        out: list[WriteIntent] = []
        for item in items:
            if item.failed or item.record.deleted or item.merged is None:
                continue
            to_target = item.record.id in targeted
            if not to_target and not item.source_patch:
                continue
            src_after, tgt_after = item.after = self._after(src, tgt, item)
            base = item.after_json = EncodedOnce({src.role: jsonable(src_after), tgt.role: jsonable(tgt_after)})
            written = {src.role: list(item.source_patch), tgt.role: list(item.target_patch) if to_target else []}
            target_id = item.target_id if item.target is not None else None
            item.intent = make_intent(self.entity, src.role, item.record.id, target_id, base, written)
            out.append(item.intent)
        self.rt.store.add_intents(out)

    def _after(self, src: Endpoint, tgt: Endpoint, item: _Item) -> tuple[dict[str, Any], dict[str, Any]]:
        """(source, target) content once the item's patches are written: the link's next base."""
        sm, tm = src.entity(self.entity), tgt.entity(self.entity)
        assert sm is not None and tm is not None
        s_in, t_in = set(sm.inbound_fields()), set(tm.inbound_fields())
        src_after = after_write(sm, s_in, _write_only(item.base, src.role, s_in), item.canonical, item.source_patch)
        tgt_now = item.target_canonical if item.target is not None else dict.fromkeys(t_in)
        old = (item.base or {}).get(tgt.role)
        if self.cfg.direction != "both" and item.target_canonical is not None and old is not None:
            # A one-way pass carries nothing back: the target's own changes since the base stay out of
            # the link, so the reverse pass (an order's status) still sees them as changes.
            tgt_now = {k: old[k] if k in old and k not in item.target_patch and _key(v) != _key(old[k]) else v
                       for k, v in tgt_now.items()}
        tgt_after = after_write(tm, t_in, _write_only(item.base, tgt.role, t_in), tgt_now, item.target_patch,
                                native=item.target_native)
        return src_after, tgt_after

    def _locate_by_own_key(self, src: Endpoint, tgt: Endpoint, unlinked: list[_Item]) -> None:
        """A source record Concord created carries the other side's id in its key field: that is its
        counterpart (after a crash between the create and the link, the link is missing)."""
        key_field = self.spec_for(src).key_field
        if not key_field:
            return
        keyed = {i.record.id: str(i.record.data.get(key_field)) for i in unlinked
                 if i.record.data.get(key_field) not in (None, "", False)}
        if not keyed:
            return
        taken = self.rt.store.links_by_ids(self.entity, tgt.role, sorted(set(keyed.values())))
        for item in unlinked:
            target_id = keyed.get(item.record.id)
            if target_id and target_id not in taken:
                item.target_id, item.matched = target_id, True
                log.info("record.relinked_by_key", entity=self.entity, system=src.system, record_id=item.record.id,
                         target=target_id)

    def _locate_via(self, src: Endpoint, tgt: Endpoint, via: str, unlinked: list[_Item],
                    dead: list[dict[str, Any]]) -> None:
        """The target is the record a reference points to (a payment is written onto its order's deal)."""
        sm = src.entity(self.entity)
        assert sm is not None
        ref_entity = sm.refs.get(via)
        pending = [i for i in unlinked if i.target_id is None and not i.failed]
        values = [str(i.canonical[via]) for i in pending if i.canonical.get(via)]
        if ref_entity is None or not values:
            return
        ids = self.refs.to_side(tgt.role, ref_entity, values)
        for item in pending:
            v = item.canonical.get(via)
            target_id = ids.get(str(v)) if v else None
            if target_id:
                item.target_id = target_id
            elif not v or (tgt.role == "crm" and str(v).startswith(ERP_PREFIX)):
                # It points at nothing, or at an ERP record that never came from the CRM (an order
                # typed in the ERP): there is no CRM record to write this to. Not an error.
                item.failed = True
            else:
                item.failed = True
                dead.append(self._dead(src, item.record.id, item.record.data, None, field=via,
                                       error_class="MissingReference",
                                       message=f"its {ref_entity} ({v or 'none'}) is not synced to {tgt.system} "
                                               "yet; retried automatically"))

    def _locate_by_key(self, src: Endpoint, tgt: Endpoint, unlinked: list[_Item],
                       dead: list[dict[str, Any]]) -> None:
        """An entity Concord never creates on the target: find its record by key, or wait for it."""
        pending = [i for i in unlinked if i.target_id is None and not i.failed]
        if not pending:
            return
        if not self.spec_for(tgt).key_field:
            # Nothing to find them by: these records did not come from Concord (an order typed in the
            # ERP by hand has no deal to report its status to). Not an error.
            for item in pending:
                item.failed = True
            return
        found = self._call(tgt, lambda: tgt.connector.find_by_keys(self.spec_for(tgt),
                                                                   [i.record.id for i in pending]))
        for item in pending:
            rec = found.get(item.record.id)
            if rec is not None:
                item.target_id = rec.id
                continue
            item.failed = True
            dead.append(self._dead(src, item.record.id, item.record.data, None, error_class="MissingTarget",
                                   message=f"no {tgt.system} record to write this {self.entity} to yet "
                                           "(it is not created here; retried automatically)"))

    def _merge_all(self, src: Endpoint, tgt: Endpoint, items: list[_Item], dead: list[dict[str, Any]],
                   counts: Counts) -> list[dict[str, Any]]:
        """Three-way merge per item; returns the conflicts a human must resolve."""
        two_way = self.cfg.direction == "both"
        policy = self.policy_override or (self.cfg.conflict if two_way else f"{src.role}_wins")
        owners = dict(self.cfg.owner or {})
        sm, tm = src.entity(self.entity), tgt.entity(self.entity)
        assert sm is not None and tm is not None
        t_out, s_out = set(tm.outbound_fields()), set(sm.outbound_fields())
        t_in, s_in = set(tm.inbound_fields()), set(sm.inbound_fields())
        conflicts: list[dict[str, Any]] = []
        for item in items:
            if item.failed or item.record.deleted or item.archive_source:
                continue
            target_side = None
            if item.target is not None and item.target_canonical is not None:
                target_side = Side(tgt.role, item.target_canonical, item.target.updated_at)
            base = item.base
            result = merge(Side(src.role, item.canonical, item.record.updated_at), target_side, base,
                           owners=owners, policy=policy)  # type: ignore[arg-type]
            if result.unresolved:
                crm_c, erp_c = ((item.canonical, item.target_canonical) if src.role == "crm"
                                else (item.target_canonical, item.canonical))
                conflicts.append(dict(entity=self.entity, link_id=item.link.id if item.link else None,
                                      crm_id=item.record.id if src.role == "crm" else item.target_id,
                                      erp_id=item.target_id if src.role == "crm" else item.record.id,
                                      crm_version=jsonable(crm_c), erp_version=jsonable(erp_c),
                                      base=jsonable(base), fields=result.unresolved))
                counts.conflicts += 1
                item.failed = True
                log.warning("conflict.recorded", entity=self.entity, crm_id=conflicts[-1]["crm_id"],
                            erp_id=conflicts[-1]["erp_id"], fields=result.unresolved)
                continue
            if result.conflicts:
                counts.conflicts_resolved += 1
                log.info("conflict.resolved", entity=self.entity, record_id=item.record.id, policy=policy,
                         fields=result.conflicts)
            item.merged = result.merged
            # Write-only fields (mapped out, not in) cannot be read back: compare them with what we
            # wrote last time (kept in the link's per-side base), or we would rewrite them forever.
            cur_t = None
            if item.target is not None:
                cur_t = {**_write_only(base, tgt.role, t_in), **(item.target_canonical or {})}
            item.target_patch = diff(result.merged, cur_t, t_out - result.untouched if cur_t is not None else t_out)
            if two_way:
                cur_s = {**_write_only(base, src.role, s_in), **item.canonical}
                item.source_patch = diff(result.merged, cur_s, s_out - result.untouched)
        return conflicts

    def _translate_refs(self, src: Endpoint, tgt: Endpoint, items: list[_Item], dead: list[dict[str, Any]]) -> None:
        """Give each patch's references the ids of the side it is written to.

        A reference with no link yet (an order whose customer never synced) is synced first from
        the side that has it; if that fails the record waits in dead letters, never written half-resolved.
        """
        for ep, attr in ((tgt, "target_patch"), (src, "source_patch")):
            em = ep.entity(self.entity)
            assert em is not None
            refs = {f: e for f, e in em.refs.items() if f in set(em.outbound_fields())}
            for fld, ref_entity in refs.items():
                users = [i for i in items if not i.failed and getattr(i, attr).get(fld)]
                if not users:
                    continue
                values = [str(getattr(i, attr)[fld]) for i in users]
                ids = self.refs.to_side(ep.role, ref_entity, values)
                missing = sorted(v for v, i in ids.items() if i is None)
                if missing and not self.dry_run:
                    self._sync_references(ref_entity, missing)
                    ids.update(self.refs.to_side(ep.role, ref_entity, missing))
                for item in users:
                    patch = getattr(item, attr)
                    resolved = ids.get(str(patch[fld]))
                    if resolved is None:
                        item.failed = True
                        dead.append(self._dead(src, item.record.id, item.record.data, None, field=fld,
                                               error_class="MissingReference",
                                               message=f"its {ref_entity} {patch[fld]} is not linked to "
                                                       f"{ep.system} and could not be synced first; "
                                                       "retried automatically once it is"))
                    else:
                        item.ref_ids[(ep.role, fld)] = resolved

    def _cascade(self, src: Endpoint, items: list[_Item]) -> None:
        """Re-sync records this batch's records point to, when the mapping says their change moves them
        (a payment changes its order's status and its customer's balance: options.cascade)."""
        sm = src.entity(self.entity)
        assert sm is not None
        cascade = list(self.spec_for(src).options.get("cascade") or [])
        if not cascade or self.dry_run:
            return
        for fld, ref_entity in sm.refs.items():
            if ref_entity not in cascade or ref_entity not in self.rt.config.sync:
                continue
            values = sorted({str(i.canonical[fld]) for i in items if not i.failed and i.canonical.get(fld)})
            if not values:
                continue
            ids = [i for i in self.refs.to_side(src.role, ref_entity, values).values() if i]
            if ids:
                log.info("cascade.sync", entity=self.entity, reference=ref_entity, count=len(ids))
                EntityPipeline(self.rt, ref_entity, should_stop=self.should_stop).sync_ids(src.role, ids)

    def _sync_references(self, entity: str, values: list[str]) -> None:
        """Sync referenced records that have no link yet, from the side that has them."""
        cfg = self.rt.config.sync.get(entity)
        if cfg is None or not getattr(cfg, "enabled", True):
            return
        by_home: dict[str, list[str]] = {}
        for v in values:
            role, native_id = RefTranslator.home(v)
            by_home.setdefault(role, []).append(native_id)
        sub = EntityPipeline(self.rt, entity, epoch=None, should_stop=self.should_stop)
        for role, ids in by_home.items():
            if any(s == role for s, _ in DIRECTIONS[cfg.direction]):
                log.info("references.sync_first", entity=self.entity, reference=entity, system=role, count=len(ids))
                sub.sync_ids(role, ids)  # type: ignore[arg-type]

    def _write(self, src: Endpoint, tgt: Endpoint, items: list[_Item], dead: list[dict[str, Any]],
               counts: Counts) -> tuple[list[Link], list[str]]:
        """Write target patches (creates idempotent on the source id), then source patches; build links."""
        sm, tm = src.entity(self.entity), tgt.entity(self.entity)
        assert sm is not None and tm is not None
        t_ops: list[WriteOp] = []
        archive_ids: dict[str, str] = {}  # target id -> source record id
        source_archive: dict[str, str] = {}  # source records whose counterpart's archive wins
        by_ref: dict[str, _Item] = {}
        for item in items:
            if item.failed:
                continue
            by_ref[item.record.id] = item
            if item.archive_source:
                source_archive[item.record.id] = item.record.id
                continue
            if item.record.deleted:
                if item.link is not None and not item.link.deleted and item.target_id:
                    if self.cfg.on_delete in ("archive", "delete"):
                        archive_ids[item.target_id] = item.record.id
                continue
            if item.target is None or item.target_patch:
                sided = _sided(item, tgt.role, item.target_patch)
                data = tm.to_native(unflatten(sided), fields=set(item.target_patch))
                if sided == item.target_patch:  # what it reads back is then this data's (see roundtrip)
                    item.target_native = dict(data)
                t_ops.append(WriteOp(ref=item.record.id, data=data, key=item.record.id) if item.target is None
                             else WriteOp(ref=item.record.id, data=data, target_id=item.target_id))
        if not self.dry_run:
            self._record_intents(src, tgt, items, {op.ref for op in t_ops})
        t_results = self._apply(tgt, t_ops, dead, src)
        a_results = self._archive(tgt, archive_ids, dead, src)
        a_results.update(self._archive(src, source_archive, dead, src))
        counts.archived += sum(1 for r in a_results.values() if r.ok)
        s_ops = []
        for item in items:
            if item.failed or item.record.deleted or item.archive_source or not item.source_patch:
                continue
            res = t_results.get(item.record.id)
            if res is not None and not res.ok:
                continue
            data = sm.to_native(unflatten(_sided(item, src.role, item.source_patch)), fields=set(item.source_patch))
            s_ops.append(WriteOp(ref=item.record.id, data=data, target_id=item.record.id))
        s_results = self._apply(src, s_ops, dead, src)

        links: list[Link] = []
        resolved: list[str] = []
        now = _now()
        for ref, item in by_ref.items():
            t_res = t_results.get(ref)
            s_res = s_results.get(ref)
            if (t_res is not None and not t_res.ok) or (s_res is not None and not s_res.ok):
                item.half_written = t_res is not None and t_res.ok
                continue
            if item.record.deleted:
                if item.link is None:
                    continue
                a_res = a_results.get(ref)
                if a_res is not None and not a_res.ok:
                    continue  # the archive did not happen: the link stays live, the dead letter retries it
                link = _copy_link(item.link)
                set_link_hash(link, src.role, item.hash)
                link.deleted = True
                links.append(link)
                resolved.append(ref)
                continue
            if item.archive_source:
                a_res = a_results.get(ref)
                if item.link is None or a_res is None or not a_res.ok:
                    continue
                links.append(_archived_link(item, src.role, tgt.role, set(sm.inbound_fields()),
                                            set(tm.inbound_fields())))
                resolved.append(ref)
                continue
            assert item.merged is not None
            if t_res is not None:
                item.written_id = t_res.target_id or item.target_id
                if t_res.created:
                    counts.created += 1
                elif item.target is None:
                    counts.adopted += 1
                else:
                    counts.updated += 1
                target_id = t_res.target_id or item.target_id
            else:
                target_id = item.target_id
                counts.unchanged += 1
                if item.intents:  # a crash cut the batch that wrote it short: its rules run again (idempotent)
                    item.written_id = target_id
            if item.matched:
                counts.matched += 1
            if s_res is not None:
                counts.updated_back += 1
            if not target_id:
                continue
            s_in, t_in = set(sm.inbound_fields()), set(tm.inbound_fields())
            src_after, tgt_after = item.after or self._after(src, tgt, item)
            target_deleted = item.target.deleted if item.target is not None else False
            crm_after, erp_after = (src_after, tgt_after) if src.role == "crm" else (tgt_after, src_after)
            crm_id, erp_id = (ref, target_id) if src.role == "crm" else (target_id, ref)
            link = Link(entity=self.entity, crm_id=crm_id, erp_id=erp_id, crm_hash=None, erp_hash=None,
                        base=item.after_json or {"crm": jsonable(crm_after), "erp": jsonable(erp_after)}, crm_updated_at=None, erp_updated_at=None, synced_at=now,
                        deleted=False, id=item.link.id if item.link else None)
            # Nothing written back: the source reads back as it was read (its hash is the item's).
            set_link_hash(link, src.role, side_hash(src_after, s_in, deleted=False) if item.source_patch
                          else item.hash)
            set_link_hash(link, tgt.role, side_hash(tgt_after, t_in, deleted=target_deleted))
            setattr(link, f"{src.role}_updated_at", item.record.updated_at)
            setattr(link, f"{tgt.role}_updated_at", item.target.updated_at if item.target else now)
            links.append(link)
            resolved.append(ref)
        if self.cfg.match_on and not self.dry_run:
            self._index_created(tgt, items, t_results)
        return links, resolved

    def _apply(self, ep: Endpoint, ops: list[WriteOp], dead: list[dict[str, Any]], src: Endpoint
               ) -> dict[str, WriteResult]:
        """Write ops through the connector (or pretend to, in a dry run); failures become dead letters."""
        if not ops:
            return {}
        if self.dry_run:
            return {op.ref: WriteResult(ref=op.ref, ok=True, target_id=op.target_id or f"(new:{op.ref})",
                                        created=op.target_id is None) for op in ops}
        spec = self.spec_for(ep)
        results = self._call(ep, lambda: ep.connector.write(spec, ops))
        _stop_if_down(ep, results)
        out = {r.ref: r for r in results}
        by_ref = {op.ref: op for op in ops}
        for ref, res in out.items():
            if not res.ok:
                op = by_ref.get(ref)
                dead.append(self._dead(src, ref, op.data if op else {}, res.error,
                                       target=ep.system))
        missing = set(by_ref) - set(out)
        for ref in missing:  # a connector that drops an op must not make us believe it was written
            out[ref] = WriteResult(ref=ref, ok=False, error=ConnectorError("no result returned for this record"))
            dead.append(self._dead(src, ref, by_ref[ref].data, out[ref].error, target=ep.system))
        return out

    def _archive(self, ep: Endpoint, ids: dict[str, str], dead: list[dict[str, Any]], src: Endpoint
                 ) -> dict[str, WriteResult]:
        """Archive ``ids`` (target id -> source record id) on ``ep``; results keyed by source record id.

        Failures are handled like failed writes: a system that is down stops the pass before the page
        commits, a refusal becomes a dead letter; a record already gone counts as archived.
        """
        if not ids:
            return {}
        if self.dry_run:
            return {ref: WriteResult(ref=ref, ok=True, target_id=tid) for tid, ref in ids.items()}
        spec = self.spec_for(ep)
        results = self._call(ep, lambda: ep.connector.archive(spec, list(ids)))
        _stop_if_down(ep, results)
        by_target = {r.ref: r for r in results}
        out: dict[str, WriteResult] = {}
        for tid, ref in ids.items():
            res = by_target.get(tid)
            if res is None:
                res = WriteResult(ref=tid, ok=False, target_id=tid,
                                  error=ConnectorError("no result returned for this record"))
            if not res.ok and isinstance(res.error, NotFound):
                # Deleted on the target already: there is nothing left to archive.
                res = WriteResult(ref=tid, ok=True, target_id=tid)
            if not res.ok:
                reason = getattr(res.error, "message", None) or str(res.error or "failed")
                dead.append(self._dead(src, ref, {}, res.error, message=f"archiving: {reason}", target=ep.system))
            out[ref] = res
        return out

    # ------------------------------------------------------------------ dead letters, match index
    def _retry_dead_letters(self, src: Endpoint, tgt: Endpoint, counts: Counts) -> None:
        if self.dry_run:
            return
        due = [d for d in self.rt.store.due_dead_letters(self.pipeline) if d.system == src.system]
        if not due:
            return
        ids = [d.record_id for d in due]
        log.info("dead_letters.retry", entity=self.entity, system=src.system, count=len(ids))
        before = counts.dead_letters
        # A linked record its system no longer returns was deleted (HubSpot does not read archived
        # records by id): retry it as a deletion, or a failed archive would never be retried.
        linked = self.rt.store.links_by_ids(self.entity, src.role, ids)
        sub = self.sync_ids(src.role, ids, deleted_ids=[i for i, link in linked.items() if not link.deleted])
        counts.add(sub)
        counts.recovered += max(0, len(ids) - (counts.dead_letters - before))

    def _search_unindexed(self, tgt: Endpoint, key: str, raw_by_value: dict[str, Any]) -> dict[str, list[str]]:
        """Ask ``tgt`` for live records matching key values the index does not know (records typed in
        since the index was built); index what is found. Returns normalised value -> record ids."""
        tm = tgt.entity(self.entity)
        assert tm is not None
        try:
            rows = self._call(tgt, lambda: search_unindexed(tgt.connector, self.spec_for(tgt), tm,
                                                            list(self.cfg.match_on), key, raw_by_value, match_value))
        except ConnectorError as exc:  # a key the product cannot search by: match through the index only
            log.warning("match.search_failed", entity=self.entity, system=tgt.system, key=key, error=exc.message)
            return {}
        if rows and not self.dry_run:
            self.rt.store.match_index_add(self.entity, tgt.system, rows)
        out: dict[str, list[str]] = {}
        for k, v, rid in rows:
            if k == key and v in raw_by_value:
                out.setdefault(v, []).append(rid)
        return out

    def _index_source(self, src: Endpoint, items: list[_Item]) -> None:
        rows = []
        for item in items:
            if item.record.deleted:
                continue
            for key in self.cfg.match_on:
                v = match_value(item.canonical.get(key))
                if v:
                    rows.append((key, v, item.record.id))
        if rows:
            self.rt.store.match_index_add(self.entity, src.system, rows)

    def _index_created(self, tgt: Endpoint, items: list[_Item], results: dict[str, WriteResult]) -> None:
        rows = []
        for item in items:
            res = results.get(item.record.id)
            if res is None or not res.ok or not res.created or not res.target_id or item.merged is None:
                continue
            for key in self.cfg.match_on:
                v = match_value(item.merged.get(key))
                if v:
                    rows.append((key, v, res.target_id))
        if rows:
            self.rt.store.match_index_add(self.entity, tgt.system, rows)

    def _backoff(self, attempts: int) -> timedelta:
        cfg = self.rt.config.dead_letters
        seconds = cfg.backoff_initial.total_seconds() * (2 ** max(0, attempts - 1))
        return timedelta(seconds=min(seconds, cfg.backoff_max.total_seconds()))

    def _dead(self, ep: Endpoint, record_id: str, data: dict[str, Any], exc: BaseException | None, *,
              message: str | None = None, field: str | None = None, error_class: str | None = None,
              target: str | None = None) -> dict[str, Any]:
        fld = field if field is not None else getattr(exc, "field", None)
        msg = message or (getattr(exc, "message", None) or str(exc) if exc is not None else "failed")
        where = f"{ep.system} {self.entity} {record_id}"
        if target:
            msg = f"writing to {target}: {msg}"
        if fld:
            msg = f"{where}, field {fld}: {msg}"
        else:
            msg = f"{where}: {msg}"
        return {"record_id": record_id, "payload": {"data": jsonable(data)},
                "error_class": error_class or (type(exc).__name__ if exc is not None else "Error"),
                "message": msg, "field": fld}

    # ------------------------------------------------------------------ connector calls
    def _call(self, ep: Endpoint, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (AuthError, RetryableError) as exc:
            raise _stopped(ep, exc) from None

    def _guard(self, ep: Endpoint, make: Callable[[], Iterable[Any]]) -> Iterable[Any]:
        """Iterate a connector's page iterator, turning its errors into PipelineStopped."""
        iterator = iter(self._call(ep, make))
        while True:
            try:
                page = self._call(ep, lambda: next(iterator))
            except StopIteration:
                return
            yield page


# ---------------------------------------------------------------------- helpers
def _stopped(ep: Endpoint, exc: AuthError | RetryableError) -> PipelineStopped:
    """The stop for a system that refuses our credentials or stays unreachable (exit code 3)."""
    what = "authentication failed" if isinstance(exc, AuthError) else "unreachable after retries"
    return PipelineStopped(f"{ep.system}: {what}: {exc.message}", exit_code=3)


def _stop_if_down(ep: Endpoint, results: Iterable[WriteResult]) -> None:
    """A system that is down is not a problem of one record: stop before the page commits, so the
    cursor stays and the next run retries the page (creates adopt by key, no duplicate)."""
    for res in results:
        if isinstance(res.error, (AuthError, RetryableError)):
            raise _stopped(ep, res.error)


def _settled_intents(items: list[_Item], resolved: list[str]) -> list[int]:
    """Intents a batch's commit ends: every one of a record now linked, and the batch's own where
    nothing landed (a record whose target write landed but not its source write keeps its own)."""
    done = set(resolved)
    out: list[int] = []
    for item in items:
        if item.record.id in done:
            out.extend(x.id for x in item.intents if x.id is not None)
            if item.intent is not None and item.intent.id is not None:
                out.append(item.intent.id)
        elif item.intent is not None and item.intent.id is not None and not item.half_written:
            out.append(item.intent.id)
    return out


def link_hash(link: Link, role: Role) -> str | None:
    return link.crm_hash if role == "crm" else link.erp_hash


def set_link_hash(link: Link, role: Role, value: str) -> None:
    if role == "crm":
        link.crm_hash = value
    else:
        link.erp_hash = value


def link_id(link: Link, role: Role) -> str:
    return link.crm_id if role == "crm" else link.erp_id


def _archived_link(item: _Item, src_role: Role, tgt_role: Role, s_in: set[str], t_in: set[str]) -> Link:
    """The link of a pair archived on both sides, with the hashes each side will read back."""
    assert item.link is not None and item.target is not None
    link = _copy_link(item.link)
    set_link_hash(link, src_role, side_hash(item.canonical, s_in, deleted=True))
    set_link_hash(link, tgt_role, side_hash(item.target_canonical or {}, t_in, deleted=True))
    setattr(link, f"{src_role}_updated_at", item.record.updated_at)
    setattr(link, f"{tgt_role}_updated_at", item.target.updated_at)
    link.synced_at = _now()
    link.deleted = True
    return link


def _copy_link(link: Link) -> Link:
    return dataclasses.replace(link)


def _sided(item: _Item, role: str, patch: dict[str, Any]) -> dict[str, Any]:
    """A patch with its references replaced by ``role``'s ids (resolved by _translate_refs)."""
    out = dict(patch)
    for (r, fld), value in item.ref_ids.items():
        if r == role and fld in out:
            out[fld] = value
    return out


def _write_only(base: dict[str, Any] | None, role: Role, inbound: set[str]) -> dict[str, Any]:
    """The values of write-only fields we last wrote to ``role`` (from the link's base)."""
    if not base or not base.get(role):
        return {}
    return {k: v for k, v in base[role].items() if k not in inbound}


def after_write(em: Any, inbound: set[str], write_only: dict[str, Any], current: dict[str, Any],
                patch: dict[str, Any], *, native: dict[str, Any] | None = None) -> dict[str, Any]:
    """A side's content once ``patch`` is written: what it will read back, plus write-only values
    (``native``: the patch's native form, when already built)."""
    out = {**write_only, **current}
    out.update(roundtrip(em, patch, native=native))
    out.update({k: v for k, v in patch.items() if k not in inbound})
    return out


def side_hash(content: dict[str, Any], inbound: set[str], *, deleted: bool) -> str:
    """The hash a side's record will have when read back: over the fields it maps in only."""
    return content_hash({**{k: content.get(k) for k in inbound}, "deleted": deleted})


def roundtrip(em: Any, patch: dict[str, Any], *, native: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a side will read back for the fields we write: canonical -> native -> canonical."""
    if not patch:
        return {}
    if native is None:
        native = em.to_native(unflatten(patch), fields=set(patch))
    back = flatten(em.to_canonical(native))
    inbound = set(em.inbound_fields())
    return {k: back.get(k) for k in patch if k in inbound}


def match_value(value: Any) -> str | None:
    """Normalised form of a match key: case, spacing and separators do not count."""
    if value is None:
        return None
    text = " ".join(str(value).casefold().split())
    return text or None


def _wm_key(rec: NativeRecord) -> tuple[datetime, tuple[int, int, str]]:
    from connectors.base import id_sort_key
    return (rec.updated_at or datetime.min.replace(tzinfo=timezone.utc), id_sort_key(rec.id))


def _delta(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for system, calls in after.items():
        prev = before.get(system, {})
        d = {k: v - prev.get(k, 0) for k, v in calls.items() if v - prev.get(k, 0)}
        out[system] = d
    return out
