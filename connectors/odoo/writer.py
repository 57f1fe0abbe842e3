"""Creating, updating and archiving Odoo records in batches, with per-record results.

Odoo's JSON-RPC has no batch envelope, and ``write`` applies one vals dict to many ids: updates
with identical vals share one ``write`` call, the others take one call each. Creates are one
``create([vals, ...])`` call per batch, made idempotent by keys (see keys.py).
"""
from __future__ import annotations

import json
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from connectors.base import (
    AuthError,
    ConnectorError,
    EntitySpec,
    NotFound,
    RetryableError,
    ValidationError,
    WriteOp,
    WriteResult,
)
from connectors.odoo.errors import SYSTEM
from connectors.odoo.keys import Keys
from connectors.odoo.lines import LineWriter
from connectors.odoo.reader import NO_ACTIVE_TEST, numeric_ids
from connectors.odoo.relations import Relations, RunCache
from connectors.odoo.rpc import OdooRPC
from connectors.odoo.schema import Schema
from connectors.odoo.values import same_value, to_odoo
from connectors.odoo.virtual import is_virtual

log = structlog.get_logger("concord.odoo.writer")

_READ_ONLY = {"id", "write_date", "create_date", "write_uid", "create_uid", "__last_update"}


@dataclass
class _Create:
    index: int
    key: str | None
    vals: dict[str, Any]


@dataclass
class _Run:
    """The state of one write() call."""

    spec: EntitySpec
    ops: Sequence[WriteOp]
    vals: list[dict[str, Any]]
    results: list[WriteResult | None]
    cache: RunCache
    stale: dict[str, int] = field(default_factory=dict)  # key -> dangling ir.model.data id

    def fail(self, index: int, error: ConnectorError) -> None:
        self.results[index] = _failed(self.ops[index], error)

    def ok(self, index: int, target_id: int | str, *, created: bool) -> None:
        self.results[index] = WriteResult(self.ops[index].ref, ok=True, target_id=str(target_id), created=created)

    def pending(self, index: int) -> bool:
        return self.results[index] is None


class Writer:
    """write/archive of one connector; ``max_rounds`` bounds create retries after a lost ack."""

    def __init__(self, rpc: OdooRPC, schema: Schema, relations: Relations, keys: Keys, *,
                 batch_size: int, max_rounds: int, lines: LineWriter | None = None,
                 concurrency: int = 4) -> None:
        self._rpc = rpc
        self.concurrency = max(1, concurrency)
        self._schema = schema
        self._relations = relations
        self._keys = keys
        self._lines = lines
        self.batch_size = batch_size
        self.max_rounds = max_rounds

    # ------------------------------------------------------------------ write
    def write(self, spec: EntitySpec, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Updates and idempotent creates; one result per op, in order."""
        run = _Run(spec, ops, [self._vals(spec, op.data) for op in ops], [None] * len(ops),
                   self._relations.run_cache())
        updates: dict[int, int] = {}  # op index -> Odoo id
        creates: list[_Create] = []
        seen_keys: dict[str, int] = {}
        for i, op in enumerate(ops):
            if op.target_id is not None:
                ids = numeric_ids([op.target_id])
                if ids:
                    updates[i] = ids[0]
                else:
                    run.fail(i, NotFound(f"odoo: {op.target_id!r} is not an Odoo id", system=SYSTEM))
            elif op.key is not None and op.key in seen_keys:
                run.fail(i, ValidationError(f"key {op.key!r} appears twice in one batch "
                                            f"(also op {ops[seen_keys[op.key]].ref!r})", system=SYSTEM))
            else:
                if op.key is not None:
                    seen_keys[op.key] = i
                creates.append(_Create(i, op.key, run.vals[i]))
        try:
            creates = self._adopt_existing(run, creates, updates)
            self._resolve(run, [i for i in updates if run.pending(i)] + [c.index for c in creates])
            self._prepare_items(run, updates, creates)
        except (RetryableError, ValidationError, NotFound) as exc:
            # A lookup every op depends on failed: nothing was written yet.
            for i in range(len(ops)):
                if run.pending(i):
                    run.fail(i, exc)
            return self._finish(run)
        self._update(run, {i: t for i, t in updates.items() if run.pending(i)})
        defaults = {k: to_odoo(v) for k, v in (spec.options.get("create_defaults") or {}).items()}
        todo = []
        for c in creates:
            if run.pending(c.index):
                merged = {**defaults, **c.vals}  # mapped data wins over a default
                if c.key is not None and spec.key_field:
                    merged[spec.key_field] = c.key
                todo.append(_Create(c.index, c.key, merged))
        for start in range(0, len(todo), self.batch_size):
            self._create(run, todo[start:start + self.batch_size])
        return self._finish(run)

    def _vals(self, spec: EntitySpec, data: dict[str, Any]) -> dict[str, Any]:
        """Serialised vals; virtual fields dropped, many2one ids given as text turned into ints."""
        vals = {k: to_odoo(v) for k, v in data.items() if k not in _READ_ONLY and not is_virtual(k)}
        refs = [k for k, v in vals.items() if isinstance(v, str) and v.isdigit() and "." not in k]
        if refs:
            fields = self._schema.fields(spec.object)
            for k in refs:
                if (fields.get(k) or {}).get("type") == "many2one":
                    vals[k] = int(vals[k])
        return vals

    def _prepare_items(self, run: _Run, updates: dict[int, int], creates: list[_Create]) -> None:
        """Item lists -> command tuples (creates) or per-line diffs (updates), see lines.py."""
        if self._lines is None or not self._lines.has_items(run.spec):
            return
        pending = [i for i in updates if run.pending(i)] + [c.index for c in creates if run.pending(c.index)]
        vals = {i: run.vals[i] for i in pending}
        errors = self._lines.prepare(run.spec, vals, {i: updates[i] for i in pending if i in updates}, run.cache)
        for i, v in vals.items():
            run.vals[i] = v
        for c in creates:
            c.vals = run.vals[c.index]
        for i, error in errors.items():
            run.fail(i, error)

    @staticmethod
    def _finish(run: _Run) -> list[WriteResult]:
        return [r if r is not None else _failed(run.ops[i], ConnectorError("odoo: op not processed", system=SYSTEM))
                for i, r in enumerate(run.results)]

    def _adopt_existing(self, run: _Run, creates: list[_Create], updates: dict[int, int]) -> list[_Create]:
        """Turn creates whose key already exists into updates of the fields that differ."""
        keys = [c.key for c in creates if c.key is not None]
        if not keys:
            return creates
        found = self._keys.lookup(run.spec, keys, run.cache, light=True)
        run.stale.update(found.stale)
        items = self._lines is not None and self._lines.has_items(run.spec)
        remaining = []
        for c in creates:
            record = found.found.get(c.key) if c.key is not None else None
            if record is None:
                remaining.append(c)
                continue
            # With item lists the line writer compares everything with Odoo itself (per line).
            differing = dict(c.vals) if items else {
                k: v for k, v in c.vals.items() if k not in record.data or not same_value(record.data[k], v)}
            log.info("odoo.adopt", model=run.spec.object, key=c.key, id=record.id, fields=sorted(differing))
            run.vals[c.index] = differing
            updates[c.index] = int(record.id)
        return remaining

    def _resolve(self, run: _Run, indexes: list[int]) -> None:
        """Dotted paths -> many2one ids, for all pending ops in one batch."""
        errors = self._relations.to_ids(run.spec.object, [run.vals[i] for i in indexes], run.cache)
        for i, error in zip(indexes, errors, strict=True):
            if error is not None:
                run.fail(i, error)

    # ------------------------------------------------------------------ updates
    def _update(self, run: _Run, updates: dict[int, int]) -> None:
        groups: dict[str, list[int]] = defaultdict(list)
        for i in updates:
            groups[json.dumps(run.vals[i], sort_keys=True, default=str)].append(i)
        chunks = [members[start:start + self.batch_size]
                  for members in groups.values() for start in range(0, len(members), self.batch_size)]
        if len(chunks) <= 1 or self.concurrency == 1:
            for chunk in chunks:
                self._write_group(run, chunk, updates)
            return
        # Odoo's `write` takes one set of values for many ids; records with different changes need a
        # call each, and JSON-RPC has no batch envelope. A few calls in flight at once keep a stream
        # of webhook-driven updates from queueing behind the round trips (each call is its own
        # transaction in Odoo, so their order does not matter).
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(chunks)),
                                thread_name_prefix="odoo-write") as pool:
            for future in [pool.submit(self._write_group, run, chunk, updates) for chunk in chunks]:
                future.result()  # re-raises AuthError (and any bug) in the caller's thread

    def _write_group(self, run: _Run, members: list[int], updates: dict[int, int]) -> None:
        vals = run.vals[members[0]]
        if vals:  # an adopted record that already matches needs no call
            try:
                self._rpc.execute_kw(run.spec.object, "write", [[updates[i] for i in members], vals])
            except AuthError:
                raise
            except (ValidationError, NotFound) as exc:
                if len(members) > 1:  # one bad record must not fail the others
                    for i in members:
                        self._write_group(run, [i], updates)
                    return
                run.fail(members[0], exc)
                return
            except ConnectorError as exc:
                for i in members:
                    run.fail(i, exc)
                return
        for i in members:
            run.ok(i, updates[i], created=False)

    # ------------------------------------------------------------------ creates
    def _create(self, run: _Run, batch: list[_Create]) -> None:
        """One create call for the batch; lost acks looked up by key, bad records isolated."""
        pending = batch
        for round_no in range(1, self.max_rounds + 1):
            try:
                result = self._rpc.execute_kw(run.spec.object, "create", [[c.vals for c in pending]],
                                              idempotent=False)
            except AuthError:
                raise
            except (ValidationError, NotFound) as exc:
                if len(pending) == 1:
                    run.fail(pending[0].index, exc)
                    return
                log.info("odoo.create_batch_refused", model=run.spec.object, size=len(pending),
                         detail=exc.message[:200])
                for c in pending:
                    self._create(run, [c])
                return
            except RetryableError as exc:
                if not exc.maybe_applied:
                    self._fail_all(run, pending, exc)
                    return
                pending = self._recover(run, pending, exc, round_no)
                if not pending:
                    return
                continue
            self._created(run, pending, result)
            return
        self._fail_all(run, pending, RetryableError(
            f"odoo: create of {len(pending)} {run.spec.object} records unacknowledged {self.max_rounds} times",
            system=SYSTEM, maybe_applied=True))

    def _recover(self, run: _Run, pending: list[_Create], exc: RetryableError, round_no: int) -> list[_Create]:
        """After a lost acknowledgement: keep what exists, return what must still be created."""
        log.warning("odoo.create_unacknowledged", model=run.spec.object, size=len(pending), round=round_no,
                    detail=exc.message[:200])
        if not run.spec.key_field:
            # Without a key field a record whose external id was never written cannot be found
            # again; resending could duplicate it, so stop and let the engine decide.
            self._fail_all(run, pending, exc)
            return []
        try:
            found = self._keys.lookup(run.spec, [c.key for c in pending if c.key is not None], light=True)
        except RetryableError as lookup_exc:
            self._fail_all(run, pending, lookup_exc)
            return []
        run.stale.update(found.stale)
        still = []
        for c in pending:
            record = found.found.get(c.key) if c.key is not None else None
            if record is not None:
                run.ok(c.index, record.id, created=True)
            elif c.key is None:
                run.fail(c.index, exc)  # unkeyed: cannot be found again, so never resent
            else:
                still.append(c)
        return still

    def _created(self, run: _Run, batch: list[_Create], result: Any) -> None:
        ids = result if isinstance(result, list) else [result]
        if len(ids) != len(batch) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            self._fail_all(run, batch, ConnectorError(
                f"odoo: create returned {str(result)[:100]} for {len(batch)} records", system=SYSTEM))
            return
        for c, new_id in zip(batch, ids, strict=True):
            run.ok(c.index, new_id, created=True)
        targets = {c.key: new_id for c, new_id in zip(batch, ids, strict=True) if c.key is not None}
        if targets:
            self._keys.ensure_xmlids(run.spec, targets, run.stale)
        log.info("odoo.created", model=run.spec.object, count=len(ids))

    @staticmethod
    def _fail_all(run: _Run, batch: list[_Create], exc: ConnectorError) -> None:
        for c in batch:
            run.fail(c.index, exc)

    # ------------------------------------------------------------------ archive
    def archive(self, spec: EntitySpec, ids: Sequence[str]) -> list[WriteResult]:
        """active=False on each record; a model without ``active`` cannot be archived."""
        wanted = numeric_ids(ids)
        if not self._schema.has_field(spec.object, "active"):
            error = ValidationError(f"{spec.object} has no active field; it cannot be archived", system=SYSTEM,
                                    field="active")
            return [_result(str(i), error) for i in ids]
        existing = set(self._rpc.execute_kw(spec.object, "search", [[("id", "in", wanted)]],
                                            {"context": NO_ACTIVE_TEST}) or []) if wanted else set()
        present = [i for i in wanted if i in existing]
        errors: dict[int, ConnectorError] = {}
        self._archive(spec, present, errors)
        out = []
        for raw in ids:
            num = numeric_ids([raw])
            if not num or num[0] not in existing:
                out.append(_result(str(raw), NotFound(f"odoo: {spec.object} {raw} does not exist", system=SYSTEM)))
            else:
                out.append(_result(str(raw), errors.get(num[0]), target_id=str(num[0])))
        return out

    def _archive(self, spec: EntitySpec, ids: list[int], errors: dict[int, ConnectorError]) -> None:
        for start in range(0, len(ids), self.batch_size):
            chunk = ids[start:start + self.batch_size]
            try:
                self._rpc.execute_kw(spec.object, "write", [chunk, {"active": False}])
            except AuthError:
                raise
            except (ValidationError, NotFound) as exc:
                if len(chunk) > 1:
                    for one in chunk:
                        self._archive(spec, [one], errors)
                else:
                    errors[chunk[0]] = exc
            except ConnectorError as exc:
                errors.update({i: exc for i in chunk})


def _failed(op: WriteOp, error: ConnectorError) -> WriteResult:
    return WriteResult(op.ref, ok=False, target_id=op.target_id, error=error)


def _result(ref: str, error: ConnectorError | None, target_id: str | None = None) -> WriteResult:
    return WriteResult(ref, ok=error is None, target_id=target_id, error=error)
