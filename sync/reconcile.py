"""`concord reconcile`: compare both systems in full, report every difference, repair on request.

Per entity (in dependency order): both sides are streamed page by page into temporary tables
of the state store (sync/reconcile_read.py), classified with SQL joins against links, match keys
and conflicts (sync/reconcile_classify.py) into in sync, missing on crm / erp, different, orphan
link, duplicate, conflict and unreadable; with ``apply`` the repairable findings go through the
sync pipeline (sync/reconcile_apply.py) and what was repaired is read again and classified anew.

How it scales: Python holds one page of records and one chunk of findings at a time. Both
datasets live in the store's temporary tables (about 0.5 KB per record: hashes, compared values
and match keys), so memory stays flat whatever the size; time is one listing of each side (the
products' page sizes: 100 per HubSpot call, 1,000 per Odoo call) plus a few indexed joins.
Drift is compared field by field only where hashes differ.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

import structlog

from sync.reconcile_apply import Repairer
from sync.reconcile_classify import Classifier
from sync.reconcile_fields import build_plan
from sync.reconcile_findings import EntityResult, Finding, ReconcileReport
from sync.reconcile_progress import NullReporter, Reporter
from sync.reconcile_read import EntityReader, ReconcileStopped
from sync.reconcile_scratch import Scratch
from sync.runtime import Runtime

log = structlog.get_logger("concord.reconcile")

__all__ = ["EntityResult", "Finding", "ReconcileReport", "ReconcileStopped", "Reconciler", "reconcile_order"]

# Customers before the orders that refer to them, products before stock levels.
ENTITY_ORDER = ("customer", "product", "order", "stock_level", "payment")


def reconcile_order(entities: Sequence[str]) -> list[str]:
    """``entities`` in dependency order (unknown names last, as given)."""
    return sorted(dict.fromkeys(entities), key=lambda e: ENTITY_ORDER.index(e) if e in ENTITY_ORDER else 99)


class Reconciler:
    """One reconcile run over a runtime; a context manager that owns the scratch tables.

    ``run`` returns the report; the findings stay readable through :meth:`findings` until the
    reconciler is closed, so a report of any size can be written out as a stream.
    """

    def __init__(self, rt: Runtime, *, apply: bool = False, since: datetime | None = None,
                 reporter: Reporter | None = None) -> None:
        self.rt = rt
        self.apply = apply
        self.since = since
        self.reporter = reporter or NullReporter()
        self.scratch = Scratch(rt.store)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Drop the scratch tables and stop the progress display."""
        try:
            self.scratch.close()
        finally:
            self.reporter.close()

    def run(self, entities: Sequence[str]) -> ReconcileReport:
        """Reconcile ``entities``; raises :class:`ReconcileStopped` when a system cannot be read."""
        report = ReconcileReport(applied=self.apply, since=self.since.isoformat() if self.since else None)
        started = time.monotonic()
        calls_before = self.rt.api_calls()
        try:
            for entity in reconcile_order(entities):
                report.entities.append(self._entity(entity, report))
        finally:
            report.seconds = time.monotonic() - started
            report.api_calls = _delta(calls_before, self.rt.api_calls())
        log.info("reconcile.finished", entities=[e.entity for e in report.entities], drift=report.drift,
                 applied=self.apply, seconds=round(report.seconds, 2))
        return report

    def findings(self, entity: str, phase: str = "found") -> Iterator[Finding]:
        """The findings of one entity (``remaining``: after --apply), streamed from the store."""
        for data in self.scratch.iter_findings(entity, phase):
            yield Finding.from_json(data)

    # ------------------------------------------------------------------ one entity
    def _entity(self, entity: str, report: ReconcileReport) -> EntityResult:
        started = time.monotonic()
        result = EntityResult(entity)
        plan = build_plan(self.rt, entity)
        self.scratch.reset()
        reader = EntityReader(self.rt, plan, self.scratch, self.reporter)
        before = self.rt.api_calls()
        result.read = reader.since(self.since) if self.since is not None else reader.full()
        _add_calls(report.api_calls_by_phase, "read", _delta(before, self.rt.api_calls()))
        result.found = Classifier(self.rt.store, plan, self.scratch, since_mode=self.since is not None).run()
        log.info("reconcile.classified", entity=entity, **{k: v for k, v in result.found.items() if v})
        if self.apply:
            before = self.rt.api_calls()
            repairer = Repairer(self.rt, plan, self.scratch, reader, self.reporter, full_read=self.since is None)
            result.repairs = repairer.run()
            result.sync_counts = dict(repairer.sync_counts)
            _add_calls(report.api_calls_by_phase, "repair", _delta(before, self.rt.api_calls()))
            if result.repairs:
                result.remaining = Classifier(self.rt.store, plan, self.scratch, since_mode=self.since is not None,
                                              phase="remaining").run()
                result.remaining_phase = "remaining"
            else:
                result.remaining = Counter(result.found)
        result.seconds = time.monotonic() - started
        return result


def _delta(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {system: {k: v - before.get(system, {}).get(k, 0) for k, v in calls.items()
                     if v - before.get(system, {}).get(k, 0)}
            for system, calls in after.items()}


def _add_calls(into: dict[str, dict[str, dict[str, int]]], phase: str, calls: dict[str, dict[str, int]]) -> None:
    target = into.setdefault(phase, {})
    for system, kinds in calls.items():
        bucket = target.setdefault(system, {})
        for k, v in kinds.items():
            bucket[k] = bucket.get(k, 0) + v
