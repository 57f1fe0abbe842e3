"""Dotted many2one paths such as ``country_id.code``: resolved on read, turned into ids on write.

Reads fetch each related model once per page (one batched ``search_read``); writes look values
up once per path and batch. Values of slow-changing reference models (countries, states,
currencies, units) are kept for the connector's life; other related records only for one call.
"""
from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from connectors.base import ValidationError
from connectors.odoo.errors import SYSTEM
from connectors.odoo.rpc import OdooRPC
from connectors.odoo.schema import Schema
from connectors.odoo.values import many2one_id, to_odoo

STABLE_MODELS = frozenset({"res.country", "res.country.state", "res.currency", "uom.uom", "res.lang"})
_CHUNK = 1000
_NO_ACTIVE_TEST = {"active_test": False}


def split_paths(paths: Iterable[str]) -> tuple[list[str], list[str]]:
    """(top-level field names to read, dotted paths to resolve) of a spec's field paths."""
    tops: list[str] = []
    dotted: list[str] = []
    for path in paths:
        head = path.split(".", 1)[0]
        if head not in tops:
            tops.append(head)
        if "." in path:
            dotted.append(path)
    return tops, dotted


class RunCache:
    """Related records and value->id lookups; stable models shared across runs."""

    def __init__(self, shared: dict[str, dict[Any, Any]], lock: threading.Lock) -> None:
        self._shared = shared
        self._lock = lock
        self._local: dict[str, dict[Any, Any]] = defaultdict(dict)

    def bucket(self, model: str, kind: str) -> dict[Any, Any]:
        """The dict for (model, kind): shared for stable models, else local to this run."""
        name = f"{kind}:{model}"
        if model in STABLE_MODELS:
            with self._lock:
                return self._shared.setdefault(name, {})
        return self._local[name]


class Relations:
    """Resolves dotted many2one paths for one connector."""

    def __init__(self, rpc: OdooRPC, schema: Schema) -> None:
        self._rpc = rpc
        self._schema = schema
        self._shared: dict[str, dict[Any, Any]] = {}
        self._lock = threading.Lock()

    def run_cache(self) -> RunCache:
        """A cache for one listing or write call."""
        return RunCache(self._shared, self._lock)

    # ------------------------------------------------------------------ reads
    def fill(self, model: str, rows: list[dict[str, Any]], paths: Sequence[str], cache: RunCache) -> None:
        """Set ``row[path]`` for each dotted path; None where the many2one is empty."""
        tails_by_head: dict[str, list[str]] = defaultdict(list)
        for path in paths:
            head, _, tail = path.partition(".")
            if tail and tail not in tails_by_head[head]:
                tails_by_head[head].append(tail)
        for head, tails in tails_by_head.items():
            relation = self._schema.relation(model, head, f"{head}.{tails[0]}")
            ids = sorted({i for i in (many2one_id(r.get(head)) for r in rows) if i is not None})
            related = self._related(relation, ids, tails, cache)
            for row in rows:
                rid = many2one_id(row.get(head))
                values = related.get(rid) if rid is not None else None
                for tail in tails:
                    row[f"{head}.{tail}"] = values.get(tail) if values is not None else None

    def _related(self, model: str, ids: list[int], tails: list[str], cache: RunCache) -> dict[int, dict[str, Any]]:
        tops, dotted = split_paths(tails)
        records = cache.bucket(model, "rec")
        missing = [i for i in ids if i not in records or not all(f in records[i] for f in tops)]
        for start in range(0, len(missing), _CHUNK):
            chunk = missing[start:start + _CHUNK]
            rows = self._rpc.execute_kw(model, "search_read", [[("id", "in", chunk)]],
                                        {"fields": tops, "context": _NO_ACTIVE_TEST}, kind="read")
            for row in rows or []:
                records.setdefault(row["id"], {}).update(row)
        out = {i: dict(records[i]) for i in ids if i in records}
        if dotted:
            self.fill(model, list(out.values()), dotted, cache)
        return out

    # ------------------------------------------------------------------ writes
    def to_ids(self, model: str, vals_list: Sequence[dict[str, Any]],
               cache: RunCache) -> list[ValidationError | None]:
        """Replace dotted keys in each vals dict by the many2one id they name (in place).

        Returns one entry per vals: None, or the error that makes that record unwritable.
        """
        wanted: dict[str, set[Hashable]] = defaultdict(set)
        for vals in vals_list:
            for path, value in vals.items():
                if "." in path and _given(value) and isinstance(value, Hashable):
                    wanted[path].add(value)
        found: dict[str, dict[Hashable, list[int]]] = {}
        errors: list[ValidationError | None] = [None] * len(vals_list)
        path_errors: dict[str, ValidationError] = {}
        for path, values in wanted.items():
            head, _, tail = path.partition(".")
            try:
                relation = self._schema.relation(model, head, path)
                found[path] = self._lookup(relation, tail, values, cache)
            except ValidationError as exc:
                path_errors[path] = exc
        for index, vals in enumerate(vals_list):
            errors[index] = self._apply(model, vals, found, path_errors)
        return errors

    def _apply(self, model: str, vals: dict[str, Any], found: dict[str, dict[Hashable, list[int]]],
               path_errors: dict[str, ValidationError]) -> ValidationError | None:
        assigned: dict[str, Any] = {}
        for path in [p for p in vals if "." in p]:
            value = vals.pop(path)
            head, _, tail = path.partition(".")
            if path in path_errors:
                return path_errors[path]
            if not _given(value):
                target: Any = False
            else:
                if not isinstance(value, Hashable):
                    return ValidationError(f"{path}: cannot look up a {type(value).__name__}", system=SYSTEM,
                                           field=path)
                ids = found.get(path, {}).get(value, [])
                relation = self._schema.relation(model, head, path)
                if not ids:
                    return ValidationError(f"no {relation} with {tail} {value!r}", system=SYSTEM, field=path)
                if len(ids) > 1:
                    return ValidationError(f"{len(ids)} {relation} records have {tail} {value!r}; "
                                           "the value must be unique", system=SYSTEM, field=path)
                target = ids[0]
            previous = assigned.get(head, vals.get(head))
            if head in assigned or head in vals:
                if to_odoo(previous) != target and many2one_id(previous) != target:
                    return ValidationError(f"{path} names a different record than {head}", system=SYSTEM,
                                           field=path)
            assigned[head] = target
        vals.update(assigned)
        return None

    def _lookup(self, model: str, field: str, values: set[Hashable], cache: RunCache) -> dict[Hashable, list[int]]:
        known = cache.bucket(model, f"ids:{field}")
        todo = [v for v in values if v not in known]
        if todo and "." not in field:
            for start in range(0, len(todo), _CHUNK):
                chunk = todo[start:start + _CHUNK]
                rows = self._rpc.execute_kw(model, "search_read", [[(field, "in", [to_odoo(v) for v in chunk])]],
                                            {"fields": [field], "order": "id asc"}, kind="search")
                hits: dict[Any, list[int]] = defaultdict(list)
                for row in rows or []:
                    value = row.get(field)
                    hits[tuple(value) if isinstance(value, list) else value].append(row["id"])
                for v in chunk:
                    known[v] = hits.get(to_odoo(v), [])
        else:
            # A nested path cannot be read back from search_read; ask per value (rare).
            for v in todo:
                ids = self._rpc.execute_kw(model, "search", [[(field, "=", to_odoo(v))]], {"limit": 2},
                                           kind="search")
                known[v] = list(ids or [])
        return {v: known[v] for v in values}


def _given(value: Any) -> bool:
    return value is not None and value is not False and value != ""
