"""The webhook inbox worker: routes events to (entity, source side), re-reads the records by id
in batches through the pipeline, and retries due dead letters, for the pipelines this instance owns."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from sync.config import Config
from sync.health import SystemHealth, stopped_system
from sync.leases import LEASE_LOST, LeaseKeeper
from sync.metrics import Metrics
from sync.pipeline import DIRECTIONS, PipelineStopped
from sync.runtime import Role, Runtime
from sync.store import InboxEvent

log = structlog.get_logger("concord.daemon")

INBOX_CLAIM_LIMIT = 500
INBOX_CLAIM_TTL = timedelta(seconds=60)
SYNC_BATCH = 100  # ids per sync_ids call (one batch read on each side)


def source_roles(direction: str) -> list[Role]:
    """The roles whose changes a pipeline of ``direction`` reads."""
    return [source for source, _ in DIRECTIONS[direction]]


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


@dataclass
class Routes:
    """Which (entity, source role) a webhook event of (system, native object) is a change of."""

    sources: dict[tuple[str, str], list[tuple[str, Role]]] = field(default_factory=dict)
    # Mapped objects with nothing to sync (entity not enabled, or that side is not a source of
    # it): leftover events of these are claimed and marked done by any instance.
    idle: dict[str, set[str]] = field(default_factory=dict)

    def object_entities(self) -> dict[tuple[str, str], str]:
        """For the web app: events of other objects are acknowledged but never queued."""
        return {key: targets[0][0] for key, targets in self.sources.items() if targets}


def build_routes(rt: Runtime, config: Config, entities: Sequence[str]) -> Routes:
    """Routes from the mapping files: an entity's ``object`` on each side whose role is a source."""
    routes = Routes()
    for ep in (rt.crm, rt.erp):
        for entity, em in ep.mapping.entities.items():
            obj = em.spec.object
            if entity in entities and ep.role in source_roles(config.sync[entity].direction):  # type: ignore[index]
                routes.sources.setdefault((ep.system, obj), []).append((entity, ep.role))
            else:
                routes.idle.setdefault(ep.system, set()).add(obj)
    for system, objects in routes.idle.items():
        objects.difference_update(o for s, o in routes.sources if s == system)
    return routes


class InboxWorker:
    """Drains the webhook inbox for the entities this instance owns, and retries due dead letters.

    Webhook events are hints: records are re-read by id through ``pipeline.sync_ids``, so a
    duplicate or out-of-order event costs a read, never a wrong write.
    """

    def __init__(self, *, store: Any, config: Config, routes: Routes, entities: Sequence[str],
                 leases: LeaseKeeper, locks: Mapping[str, threading.Lock],
                 pipeline_for: Callable[[str], Any], instance: str, stopping: threading.Event,
                 health: SystemHealth, metrics: Metrics, systems: Mapping[Role, str],
                 claim_limit: int = INBOX_CLAIM_LIMIT, claim_ttl: timedelta = INBOX_CLAIM_TTL,
                 batch: int = SYNC_BATCH) -> None:
        self.store = store
        self.config = config
        self.routes = routes
        self.entities = list(entities)
        self.leases = leases
        self.locks = locks
        self.pipeline_for = pipeline_for
        self.instance = instance
        self.stopping = stopping
        self.health = health
        self.metrics = metrics
        self.systems = dict(systems)
        self.claim_limit = claim_limit
        self.claim_ttl = claim_ttl
        self.batch = batch
        self._tried: set[tuple[int, datetime | None]] = set()

    # ------------------------------------------------------------------ inbox
    def run_once(self) -> int:
        """Claim and process one round of events; returns how many were claimed."""
        with self._owned_and_locked() as entities:
            claimable = self._claimable(entities)
            # An instance that owns nothing (it only takes webhooks for the others) skips the store
            # altogether; else a cheap read spares the idle loop a write transaction.
            if not claimable or not self.store.inbox_pending():
                return 0
            claimed = 0
            for system, objects in claimable.items():
                if self.stopping.is_set():
                    break
                events = self.store.inbox_claim(self.instance, self.claim_limit, self.claim_ttl,
                                                system=system, objects=sorted(objects))
                if events:
                    claimed += len(events)
                    self.process(events, entities)
            return claimed

    def _claimable(self, entities: set[str]) -> dict[str, set[str]]:
        """Per system, the objects whose events may be claimed: every entity they feed is ours, and
        leftovers of objects nothing syncs, cleared by the instances that own a pipeline."""
        out: dict[str, set[str]] = {}
        for (system, obj), targets in self.routes.sources.items():
            if targets and all(e in entities for e, _ in targets):
                out.setdefault(system, set()).add(obj)
        if self.entities and not entities:
            return out  # the owners clear leftovers; every wake-up here would cost a claim for nothing
        for system, objects in self.routes.idle.items():
            if objects:
                out.setdefault(system, set()).update(objects)
        return out

    def process(self, events: Sequence[InboxEvent], entities: set[str]) -> None:
        """Group claimed events per (entity, source role), sync their records, mark them done."""
        left: dict[int, int] = {}
        groups: dict[tuple[str, Role], dict[str, list[InboxEvent]]] = {}
        nothing_to_do: list[int] = []
        for ev in events:
            assert ev.id is not None
            targets = [t for t in self.routes.sources.get((ev.system, ev.object), []) if t[0] in entities]
            if not targets:
                nothing_to_do.append(ev.id)
                continue
            left[ev.id] = len(targets)
            for target in targets:
                groups.setdefault(target, {}).setdefault(ev.record_id, []).append(ev)
        if nothing_to_do:
            self.store.inbox_done(nothing_to_do)
            log.info("inbox.ignored", events=len(nothing_to_do), reason="no pipeline syncs these objects")
        for (entity, role), by_id in groups.items():
            if self.stopping.is_set():
                return
            self._sync_group(entity, role, by_id, left)

    def _sync_group(self, entity: str, role: Role, by_id: dict[str, list[InboxEvent]],
                    left: dict[int, int]) -> None:
        pipeline = self.pipeline_for(entity)
        direction = f"{role}_to_{'erp' if role == 'crm' else 'crm'}"
        for batch in _chunks(list(by_id), self.batch):
            if self.stopping.is_set() or not self.leases.holds(entity):
                log.info("inbox.paused", entity=entity, reason="stopping" if self.stopping.is_set() else "lease lost")
                return
            deleted = [i for i in batch if any(ev.kind == "delete" for ev in by_id[i])]
            try:
                counts = pipeline.sync_ids(role, list(batch), deleted_ids=deleted)
            except PipelineStopped as exc:
                self._stopped(entity, exc)
                return  # the claims expire and the events come back
            except Exception:
                log.exception("inbox.sync_failed", entity=entity, source=role, records=len(batch))
                continue
            finished: list[int] = []
            for record_id in batch:
                for ev in by_id[record_id]:
                    assert ev.id is not None
                    left[ev.id] -= 1
                    if left[ev.id] == 0:
                        finished.append(ev.id)
            if finished:
                self.store.inbox_done(finished)
            self.metrics.count_records(entity, direction, counts.as_dict())
            log.info("inbox.synced", entity=entity, source=self.systems.get(role, role), records=len(batch),
                     events=len(finished), **counts.as_dict())

    def _stopped(self, entity: str, exc: PipelineStopped) -> None:
        if exc.exit_code == LEASE_LOST:
            self.leases.forget(entity)
            log.warning("inbox.lease_lost", entity=entity, error=str(exc))
            return
        system = stopped_system(exc, list(self.systems.values()))
        if system is not None:
            self.health.failed(system, str(exc))
        log.error("inbox.sync_stopped", entity=entity, system=system, error=str(exc))

    # ------------------------------------------------------------------ dead letters
    def retry_dead_letters(self) -> int:
        """Re-sync dead letters whose retry time has come (each retry time once); returns how many."""
        retried = 0
        seen: set[tuple[int, datetime | None]] = set()
        with self._owned_and_locked() as entities:
            for entity in sorted(entities):
                if self.stopping.is_set():
                    break
                due = self.store.due_dead_letters(entity)
                seen.update((d.id, d.next_retry_at) for d in due)
                fresh = [d for d in due if (d.id, d.next_retry_at) not in self._tried]
                sources = source_roles(self.config.sync[entity].direction)  # type: ignore[index]
                pipeline = None
                for role in sources:
                    ids = list(dict.fromkeys(d.record_id for d in fresh if d.system == self.systems.get(role)))
                    if not ids:
                        continue
                    pipeline = pipeline or self.pipeline_for(entity)
                    for batch in _chunks(ids, self.batch):
                        try:
                            counts = pipeline.sync_ids(role, list(batch))
                        except PipelineStopped as exc:
                            self._stopped(entity, exc)
                            break
                        except Exception:
                            log.exception("dead_letters.retry_failed", entity=entity, source=role)
                            break
                        retried += len(batch)
                        log.info("dead_letters.retried", entity=entity, source=self.systems.get(role),
                                 records=len(batch), still_failing=counts.dead_letters)
                self._tried.update((d.id, d.next_retry_at) for d in fresh)
        # A dead letter whose retry left it unchanged (the record is gone at the source) is not
        # retried again here; the pipeline's own run still looks at it on its interval.
        self._tried &= seen
        return retried

    @contextmanager
    def _owned_and_locked(self) -> Iterator[set[str]]:
        """The entities this instance owns and nobody in this process is syncing, locked meanwhile."""
        locked: list[str] = []
        try:
            for entity in self.entities:
                if self.leases.holds(entity) and self.locks[entity].acquire(blocking=False):
                    locked.append(entity)
            yield set(locked)
        finally:
            for entity in locked:
                self.locks[entity].release()
