"""A small in-memory ORM with Odoo's external semantics: models, fields, records and transactions.

A model is a :class:`BaseModel` subclass that declares ``_name``, ``_description`` and ``_fields``
(name -> :class:`~sandbox.odoo.fields.Field`) and may add public methods with :func:`api_model`
(no record ids, like ``@api.model``) or :func:`api_records` (``args[0]`` is the id list). Only such
decorated methods can be called over RPC. A new Odoo model (``sale.order`` ...) is a new subclass
registered in :mod:`sandbox.odoo.models`; one2many/many2many command tuples work generically.

Every RPC call runs in one :class:`Env` (one "transaction"): all writes record an undo step, and an
exception undoes them, so a failing ``create([...])`` leaves nothing behind, as in PostgreSQL.
``write_date`` is the transaction's timestamp, shared by every record the call touches.
"""
from __future__ import annotations

import bisect
import dataclasses
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field as dc_field
from functools import partial
from typing import Any, ClassVar

from .commands import apply_x2many, as_ids
from .domain import (
    ID_MIN,
    Bounds,
    DomainCompiler,
    Node,
    conjunction,
    equality_lookup,
    key_bounds,
    match_name,
    mentions_field,
    parse_domain,
    parse_order,
    sort_records,
)
from .errors import AccessError, MissingError, UserError, ValidationError
from .fields import Field, parse_datetime_operand

MAGIC_FIELDS = ("id", "display_name", "create_uid", "create_date", "write_uid", "write_date")
_MISSING = object()
_INDEX_ORDER = [("write_date", False, False), ("id", False, False)]


def api_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Expose a model-level method over RPC (``@api.model``: no record ids in ``args``)."""
    fn._rpc = True  # type: ignore[attr-defined]
    fn._api_model = True  # type: ignore[attr-defined]
    return fn


def api_records(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Expose a record method over RPC (``args[0]`` is the list of record ids)."""
    fn._rpc = True  # type: ignore[attr-defined]
    fn._api_model = False  # type: ignore[attr-defined]
    return fn


def table_name(model_name: str) -> str:
    """The PostgreSQL table of a model (``res.partner`` -> ``res_partner``)."""
    return model_name.replace(".", "_")


def not_null_error(model: BaseModel, field: Field) -> ValidationError:
    """What Odoo's ``retrying()`` turns a NOT NULL violation into (exact text of Odoo 17/18)."""
    return ValidationError(
        "The operation cannot be completed:\n"
        "- Create/update: a mandatory field is not set.\n"
        "- Delete: another model requires the record being deleted. If possible, archive it instead.\n\n"
        f"Model: {model._description} ({model._name})\n"
        f"Field: {field.string} ({field.name})\n")


def foreign_key_error(model: BaseModel, field: Field) -> ValidationError:
    """What Odoo reports for a foreign key violation (unknown many2one id, or a restricted delete)."""
    return ValidationError(
        "The operation cannot be completed: another model requires the record being deleted. "
        "If possible, archive it instead.\n\n"
        f"Model: {model._description} ({model._name})\n"
        f"Constraint: {table_name(model._name)}_{field.name}_fkey\n")


@dataclass
class Env:
    """One RPC call: who calls, with which context, at which transaction timestamp, and its undo log."""

    registry: Registry
    uid: int
    context: dict[str, Any]
    now: str
    force: bool = False  # direct helpers may set the raw values behind computed fields
    undo: list[Callable[[], None]] = dc_field(default_factory=list)
    touched: dict[tuple[str, int], None] = dc_field(default_factory=dict)
    # Per-call cache of expensive non-stored computes (stock quantities); models that feed them
    # clear it whenever they change, so a value is never read stale within the call.
    memo: dict[Any, Any] = dc_field(default_factory=dict)

    def __getitem__(self, model_name: str) -> BaseModel:
        return self.registry.models[model_name]

    @property
    def active_test(self) -> bool:
        """Whether archived records are hidden from searches (context ``active_test``)."""
        return self.context.get("active_test", True) is not False

    def touch(self, model_name: str, ids: Iterable[int]) -> None:
        """Remember records created or written (automation rules / webhooks run on them)."""
        for i in ids:
            self.touched[(model_name, i)] = None

    def rollback(self) -> None:
        """Undo every change of this call, newest first."""
        while self.undo:
            self.undo.pop()()


class BaseModel:
    """A model: its fields, its records, its indexes and its public (RPC) methods."""

    _name: ClassVar[str] = ""
    _description: ClassVar[str] = ""
    _order: ClassVar[str] = "id"
    _rec_name: ClassVar[str | None] = "name"
    _fields: ClassVar[dict[str, Field]] = {}
    # ``{"product.template": "product_tmpl_id"}``: the parent's fields are readable and writable on
    # this model, their values living on the parent record (Odoo's delegation inheritance).
    _inherits: ClassVar[dict[str, str]] = {}
    # Simulator bookkeeping that a real database does not expose: not callable over RPC.
    _internal: ClassVar[bool] = False

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.fields: dict[str, Field] = {}
        self.records: dict[int, dict[str, Any]] = {}
        self._next_id = 1
        self._ids_ordered = True  # dict order == ascending ids (lets "id asc" scans stop early)
        self._hash: dict[str, dict[Any, set[int]]] = {}
        self._multi: set[str] = set()  # hash indexes over many2many values (one entry per id)
        self._by_write_date: list[tuple[str, int]] = []
        self._readers: dict[tuple[str, Any], Callable[[dict[str, Any]], Any]] = {}
        self._getters: dict[str, Callable[[dict[str, Any]], Any]] = {}
        self.fields["id"] = Field("integer", "ID", readonly=True).bind(self._name, "id")
        for name, definition in self._fields.items():
            self.fields[name] = definition.bind(self._name, name)
        self.fields["display_name"] = Field(
            "char", "Display Name", compute=lambda model, rec: model.display_name(rec)).bind(self._name, "display_name")
        self.fields["create_uid"] = Field("many2one", "Created by", relation="res.users", readonly=True).bind(
            self._name, "create_uid")
        self.fields["create_date"] = Field("datetime", "Created on", readonly=True).bind(self._name, "create_date")
        self.fields["write_uid"] = Field("many2one", "Last Updated by", relation="res.users", readonly=True).bind(
            self._name, "write_uid")
        self.fields["write_date"] = Field("datetime", "Last Updated on", readonly=True).bind(self._name, "write_date")
        for f in self.fields.values():
            if f.index and f.store and not f.is_x2many:
                self._hash[f.name] = {}

    # ================================================================== schema
    def setup_inherits(self) -> None:
        """Expose the ``_inherits`` parents' fields on this model (once every model is registered)."""
        for parent_name, link in self._inherits.items():
            parent = self.registry.models[parent_name]
            for name, f in parent.fields.items():
                if name in self.fields or name in MAGIC_FIELDS:
                    continue
                self.fields[name] = dataclasses.replace(f, inherited=link, model_name=self._name)
        self._schema_changed()

    def add_field(self, name: str, definition: Field) -> Field:
        """Add a field at runtime (custom ``x_`` fields created through ir.model.fields)."""
        bound = definition.bind(self._name, name)
        self.fields[name] = bound
        if bound.index and bound.store and not bound.is_x2many:
            self._build_hash(name)
        self._schema_changed()
        return bound

    def remove_field(self, name: str) -> Field:
        """Drop a field and its values (unlinking a custom field drops its column)."""
        removed = self.fields.pop(name)
        self._hash.pop(name, None)
        for rec in self.records.values():
            rec.pop(name, None)
        self._schema_changed()
        return removed

    def ensure_index(self, name: str) -> None:
        """Keep a hash index on a stored field (inverse fields of one2many, lookups by key).

        A many2many index maps each linked id to the records that link it (reverse lookups).
        """
        if name not in self._hash:
            if self.fields[name].type == "many2many":
                self._multi.add(name)
            self._build_hash(name)

    def _build_hash(self, name: str) -> None:
        index: dict[Any, set[int]] = {}
        multi = name in self._multi
        for rec in self.records.values():
            v = rec.get(name)
            if v is None:
                continue
            for key in (v if multi else (v,)):
                index.setdefault(key, set()).add(rec["id"])
        self._hash[name] = index

    def _schema_changed(self) -> None:
        self._readers.clear()
        self._getters.clear()
        self.registry.schema_changed()

    # ================================================================== storage (indexes + undo)
    def _index_add(self, rec: dict[str, Any]) -> None:
        rid = rec["id"]
        multi = self._multi
        for name, index in self._hash.items():
            v = rec.get(name)
            if v is None:
                continue
            for key in (v if name in multi else (v,)):
                bucket = index.get(key)
                if bucket is None:
                    index[key] = {rid}
                else:
                    bucket.add(rid)
        wd = rec.get("write_date")
        if wd is not None:
            keys = self._by_write_date
            key = (wd, rid)
            if not keys or keys[-1] < key:
                keys.append(key)
            else:
                bisect.insort(keys, key)

    def _index_discard(self, rec: dict[str, Any]) -> None:
        rid = rec["id"]
        multi = self._multi
        for name, index in self._hash.items():
            v = rec.get(name)
            if v is None:
                continue
            for key in (v if name in multi else (v,)):
                bucket = index.get(key)
                if bucket is not None:
                    bucket.discard(rid)
                    if not bucket:
                        del index[key]
        wd = rec.get("write_date")
        if wd is not None:
            keys = self._by_write_date
            i = bisect.bisect_left(keys, (wd, rid))
            if i < len(keys) and keys[i] == (wd, rid):
                del keys[i]

    def _insert(self, env: Env | None, rec: dict[str, Any], rid: int | None = None) -> int:
        if rid is None:
            rid = self._next_id
        # Like a PostgreSQL sequence, ids consumed by a rolled-back call are not reused.
        self._next_id = max(self._next_id, rid + 1)
        if self.records and rid < next(reversed(self.records)):
            self._ids_ordered = False
        rec["id"] = rid
        self.records[rid] = rec
        self._index_add(rec)
        if env is not None:
            env.undo.append(partial(self._discard, rid))
        return rid

    def _bulk_insert(self, rows: list[dict[str, Any]]) -> list[int]:
        """Insert trusted rows fast (seeding): no conversion, no undo, one index sort."""
        ids: list[int] = []
        keys = self._by_write_date
        sorted_before = len(keys)
        for rec in rows:
            rid = self._next_id
            self._next_id += 1
            rec["id"] = rid
            self.records[rid] = rec
            ids.append(rid)
            for name, index in self._hash.items():
                v = rec.get(name)
                if v is not None:
                    for key in (v if name in self._multi else (v,)):
                        index.setdefault(key, set()).add(rid)
            wd = rec.get("write_date")
            if wd is not None:
                keys.append((wd, rid))
        tail = keys[max(sorted_before - 1, 0):]
        if any(a > b for a, b in itertools.pairwise(tail)):  # only clock skew / lag makes new keys go back
            keys.sort()
        return ids

    def _discard(self, rid: int) -> None:
        rec = self.records.pop(rid, None)
        if rec is not None:
            self._index_discard(rec)

    def _restore(self, rec: dict[str, Any]) -> None:
        if self.records and rec["id"] < next(reversed(self.records)):
            self._ids_ordered = False
        self.records[rec["id"]] = rec
        self._index_add(rec)

    def _remove(self, env: Env | None, rid: int) -> None:
        rec = self.records.get(rid)
        if rec is None:
            return
        self._discard(rid)
        if env is not None:
            env.undo.append(partial(self._restore, rec))

    def _update(self, env: Env | None, rid: int, changes: dict[str, Any]) -> None:
        rec = self.records[rid]
        old = {k: rec.get(k, _MISSING) for k in changes}
        self._set_values(rec, changes)
        if env is not None:
            env.undo.append(partial(self._set_values, rec, old))

    def _set_values(self, rec: dict[str, Any], changes: dict[str, Any]) -> None:
        indexed = "write_date" in changes or any(k in self._hash for k in changes)
        if indexed:
            self._index_discard(rec)
        for k, v in changes.items():
            if v is _MISSING:
                rec.pop(k, None)
            else:
                rec[k] = v
        if indexed:
            self._index_add(rec)

    def _ordered_records(self) -> Iterable[dict[str, Any]]:
        if not self._ids_ordered:
            self.records = dict(sorted(self.records.items()))
            self._ids_ordered = True
        return self.records.values()

    # ================================================================== values
    def display_name(self, rec: dict[str, Any]) -> str:
        """The record's display name (``_rec_name`` by default; models override)."""
        if self._rec_name is None:
            return f"{self._name},{rec['id']}"
        value = rec.get(self._rec_name)
        return "" if value is None or value is False else str(value)

    def display_name_of(self, rid: int) -> str:
        """The display name of record ``rid`` (empty when it does not exist)."""
        rec = self.records.get(rid)
        return self.display_name(rec) if rec is not None else ""

    def raw_getter(self, name: str) -> Callable[[dict[str, Any]], Any]:
        """A function reading field ``name`` of a stored record as SQL sees it (NULL = None)."""
        getter = self._getters.get(name)
        if getter is not None:
            return getter
        f = self.fields[name]
        if name == "id":
            def getter(rec: dict[str, Any]) -> Any:
                return rec["id"]
        elif f.inherited is not None:
            link = f.inherited
            parent = self.registry.models[self.fields[link].relation or ""]
            parent_get = parent.raw_getter(name)

            def getter(rec: dict[str, Any]) -> Any:
                # parent.records is looked up each time: _ordered_records() may replace the dict.
                prec = parent.records.get(rec.get(link))  # type: ignore[arg-type]
                return None if prec is None else parent_get(prec)
        elif f.compute is not None:
            compute = f.compute

            def getter(rec: dict[str, Any]) -> Any:
                return compute(self, rec)
        elif f.type == "one2many":
            comodel = self.registry.models[f.relation or ""]
            inverse = f.inverse_name or ""
            comodel.ensure_index(inverse)
            accept = f.o2m_domain
            # Odoo returns a one2many in the comodel's _order ("sequence, id" for order lines).
            terms = parse_order(comodel._order, lambda n: n in comodel.fields, comodel._name)
            by_id = terms == [("id", False, False)]

            def getter(rec: dict[str, Any]) -> Any:
                linked = comodel._hash[inverse].get(rec["id"], ())
                ids = sorted(linked if accept is None else (i for i in linked if accept(comodel.records[i])))
                if by_id or len(ids) < 2:
                    return ids
                recs = [comodel.records[i] for i in ids]
                sort_records(recs, terms, comodel._sort_key)
                return [r["id"] for r in recs]
        else:
            def getter(rec: dict[str, Any]) -> Any:
                return rec.get(name)
        self._getters[name] = getter
        return getter

    def reader(self, name: str, load: Any) -> Callable[[dict[str, Any]], Any]:
        """A function giving field ``name`` of a stored record as ``read`` returns it."""
        key = (name, load)
        fn = self._readers.get(key)
        if fn is not None:
            return fn
        f = self.fields[name]
        get = self.raw_getter(name)
        if f.type == "many2one":
            comodel_name = f.relation or ""
            if load == "_classic_read":
                def fn(rec: dict[str, Any]) -> Any:
                    v = get(rec)
                    if v is None:
                        return False
                    return [v, self.registry.models[comodel_name].display_name_of(v)]
            else:
                def fn(rec: dict[str, Any]) -> Any:
                    v = get(rec)
                    return False if v is None else v
        elif f.is_x2many:
            def fn(rec: dict[str, Any]) -> Any:
                return list(get(rec) or ())
        else:
            convert = f.convert_to_read_simple

            def fn(rec: dict[str, Any]) -> Any:
                return convert(get(rec))
        self._readers[key] = fn
        return fn

    def _read_plan(self, fields: Any, load: Any) -> list[tuple[str, Callable[[dict[str, Any]], Any]]]:
        if not fields:
            names = list(self.fields)
        elif isinstance(fields, (list, tuple)):
            names = ["id", *[n for n in fields if n != "id"]]
        else:
            raise ValueError(f"Invalid fields specification: {fields!r}")
        plan = []
        for name in names:
            if not isinstance(name, str) or name not in self.fields:
                raise ValueError(f"Invalid field {name!r} on model {self._name!r}")
            plan.append((name, self.reader(name, load)))
        return plan

    def read_records(self, recs: Iterable[dict[str, Any]], fields: Any, load: Any = "_classic_read"
                     ) -> list[dict[str, Any]]:
        """Stored records as ``read`` returns them (``fields`` empty: every field)."""
        plan = self._read_plan(fields, load)
        return [{name: fn(rec) for name, fn in plan} for rec in recs]

    def _convert_vals(self, env: Env, vals: Any) -> tuple[dict[str, Any], list[tuple[Field, Any]]]:
        if not isinstance(vals, dict):
            raise TypeError(f"expected a dict of field values, got {type(vals).__name__}: {vals!r}")
        stored: dict[str, Any] = {}
        x2many: list[tuple[Field, Any]] = []
        fields = self.fields
        for name, value in vals.items():
            f = fields.get(name)
            if f is None:
                raise ValueError(f"Invalid field {name!r} on model {self._name!r}")
            if name in MAGIC_FIELDS:
                continue  # Odoo sets the magic fields itself
            if f.computed:
                if env.force:
                    stored[name] = f.convert_to_cache(value)
                continue  # maintained by the model: an API value would be recomputed anyway
            if f.compute is not None:
                if env.force:
                    stored[name] = f.convert_to_cache(value)
                continue  # computed without inverse: the ORM ignores the value
            if f.is_x2many:
                x2many.append((f, value))
                continue
            v = f.convert_to_cache(value)
            if v is not None and f.type == "many2one" and v not in self.registry.models[f.relation or ""].records:
                raise foreign_key_error(self, f)
            stored[name] = v
        return stored, x2many

    def _check_required(self, stored: dict[str, Any], names: Iterable[str] | None = None) -> None:
        fields = self.fields
        for name in names if names is not None else fields:
            f = fields[name]
            if f.required and f.store and not f.is_x2many and stored.get(name) is None:
                raise not_null_error(self, f)

    # ================================================================== hooks for subclasses
    def _complete_vals(self, env: Env, vals: dict[str, Any]) -> dict[str, Any]:
        """Adjust incoming create vals before conversion (e.g. derive one field from another)."""
        return vals

    def _post_create(self, env: Env, ids: list[int]) -> None:
        """Constraints and side effects after records were created (raise to roll back)."""

    def _post_write(self, env: Env, ids: list[int], vals: dict[str, Any]) -> None:
        """Constraints and side effects after records were written (raise to roll back)."""

    def _pre_unlink(self, env: Env, ids: list[int]) -> None:
        """Checks and side effects before records are deleted (raise to refuse)."""

    def _after_unlink(self, env: Env, removed: list[dict[str, Any]]) -> None:
        """Side effects once records are deleted (``removed``: their last stored values)."""

    def _create_parent(self, env: Env, parent: BaseModel, vals: dict[str, Any]) -> int:
        """Create the ``_inherits`` parent of a new record (models may pass context)."""
        return parent.create_records(env, [vals])[0]

    def _split_inherited(self, vals: Any) -> tuple[Any, dict[str, dict[str, Any]]]:
        """Split vals into this model's own and, per link field, the ``_inherits`` parent's."""
        if not self._inherits or not isinstance(vals, dict):
            return vals, {}
        own: dict[str, Any] = {}
        parents: dict[str, dict[str, Any]] = {}
        for name, value in vals.items():
            f = self.fields.get(name)
            if f is not None and f.inherited is not None:
                parents.setdefault(f.inherited, {})[name] = value
            else:
                own[name] = value
        return own, parents

    # ================================================================== server-side writes
    def _set(self, env: Env, rid: int, values: dict[str, Any]) -> bool:
        """Store raw values as server code does (recomputations, state changes).

        Only values that differ are written; then ``write_date`` moves, as Odoo's ``_write``
        does for a recomputed stored field. Returns whether anything changed.
        """
        rec = self.records[rid]
        changed = {k: v for k, v in values.items() if rec.get(k) != v}
        if not changed:
            return False
        changed["write_uid"] = env.uid
        changed["write_date"] = env.now
        self._update(env, rid, changed)
        env.touch(self._name, [rid])
        return True

    # ================================================================== ORM operations
    def create_records(self, env: Env, vals_list: list[Any]) -> list[int]:
        """Create records from a list of vals; returns their ids."""
        prepared: list[tuple[dict[str, Any], list[tuple[Field, Any]]]] = []
        defaults = [(n, f) for n, f in self.fields.items()
                    if f.default is not None and f.store and n not in MAGIC_FIELDS and not f.is_x2many]
        required = [n for n, f in self.fields.items() if f.required and f.store and not f.is_x2many]
        for vals in vals_list:
            if isinstance(vals, dict):
                vals = self._complete_vals(env, vals)
            vals, parent_vals = self._split_inherited(vals)
            for link, pvals in parent_vals.items():
                parent = self.registry.models[self.fields[link].relation or ""]
                if vals.get(link):
                    parent.write_records(env, [vals[link]], pvals)
                else:
                    vals[link] = self._create_parent(env, parent, pvals)
            for link in self._inherits.values():
                if not vals.get(link):
                    vals[link] = self._create_parent(
                        env, self.registry.models[self.fields[link].relation or ""], {})
            stored, x2many = self._convert_vals(env, vals)
            for name, f in defaults:
                if name not in stored:
                    stored[name] = f.convert_to_cache(f.default_value())
            self._check_required(stored, required)
            stored["create_uid"] = stored["write_uid"] = env.uid
            stored["create_date"] = stored["write_date"] = env.now
            prepared.append((stored, x2many))
        ids = [self._insert(env, stored) for stored, _ in prepared]
        for rid, (_, x2many) in zip(ids, prepared):
            for f, commands in x2many:
                self._apply_x2many(env, rid, f, commands)
        self._post_create(env, ids)
        env.touch(self._name, ids)
        return ids

    def write_records(self, env: Env, ids: list[int], vals: Any) -> None:
        """Write the same vals on records; missing ids raise MissingError."""
        self._check_exist(env, ids)
        vals, parent_vals = self._split_inherited(vals)
        stored, x2many = self._convert_vals(env, vals)
        self._check_required(stored, list(stored))
        stored["write_uid"] = env.uid
        stored["write_date"] = env.now
        for rid in ids:
            self._update(env, rid, dict(stored))
        for link, pvals in parent_vals.items():
            parent = self.registry.models[self.fields[link].relation or ""]
            parent_ids = list(dict.fromkeys(self.records[rid][link] for rid in ids if self.records[rid].get(link)))
            parent.write_records(env, parent_ids, pvals)
        for rid in ids:
            for f, commands in x2many:
                self._apply_x2many(env, rid, f, commands)
        self._post_write(env, ids, vals)
        env.touch(self._name, ids)

    def unlink_records(self, env: Env, ids: list[int]) -> None:
        """Delete records; references follow their ``ondelete``; their external ids go too."""
        ids = [i for i in dict.fromkeys(ids) if i in self.records]
        if not ids:
            return
        self._pre_unlink(env, ids)
        idset = set(ids)
        for model, f in self.registry.references_to(self._name):
            referencing = model.referencing_ids(f, idset)
            if model is self:
                referencing -= idset
            if not referencing:
                continue
            if f.type == "many2many":
                for rid in referencing:
                    rec = model.records[rid]
                    model._update(env, rid, {f.name: [i for i in rec.get(f.name) or () if i not in idset]})
            elif f.ondelete == "restrict":
                raise foreign_key_error(model, f)
            elif f.ondelete == "cascade":
                model.unlink_records(env, sorted(referencing))
            else:
                for rid in referencing:
                    model._update(env, rid, {f.name: None})
        ids = [i for i in ids if i in self.records]  # a cascade may already have deleted some
        self.registry.drop_xmlids(env, self._name, ids)
        removed = [self.records[rid] for rid in ids]
        for rid in ids:
            self._remove(env, rid)
        self._after_unlink(env, removed)

    def referencing_ids(self, f: Field, targets: set[int]) -> set[int]:
        """Ids of this model's records whose relational field ``f`` points into ``targets``."""
        index = self._hash.get(f.name)
        if index is not None:
            found: set[int] = set()
            for t in targets:
                found |= index.get(t, set())
            return found
        if f.type == "many2many":
            return {r["id"] for r in self.records.values() if any(i in targets for i in r.get(f.name) or ())}
        return {r["id"] for r in self.records.values() if r.get(f.name) in targets}

    def _check_exist(self, env: Env, ids: list[int]) -> None:
        missing = [i for i in ids if i not in self.records]
        if missing:
            shown = ", ".join(str(i) for i in missing[:6]) + ("," if len(missing) == 1 else "")
            raise MissingError("Record does not exist or has been deleted.\n"
                               f"(Record: {self._name}({shown}), User: {env.uid})")

    def _apply_x2many(self, env: Env, rid: int, f: Field, commands: Any) -> None:
        apply_x2many(self, env, rid, f, commands)

    # ================================================================== querying
    def compiler(self, env: Env) -> DomainCompiler:
        """A domain compiler whose sub-searches run in ``env`` (context, active_test)."""
        def related_ids(comodel: str, domain: Any) -> set[int]:
            return set(self.registry.models[comodel].search_ids(env, domain, order="id"))

        def name_ids(comodel: str, op: str, value: Any) -> set[int]:
            model = self.registry.models[comodel]
            return {r["id"] for r in model.records.values() if match_name(op, value, model.display_name(r))}

        return DomainCompiler(self, related_ids, name_ids)

    def _indexed_field(self, name: str) -> Field | None:
        return self.fields.get(name) if name in self._hash else None

    def prepare_domain(self, env: Env, domain: Any) -> Node:
        """Parse ``domain`` and add Odoo's implicit ``active = True`` unless told otherwise."""
        node = parse_domain(domain)
        if "active" in self.fields and env.active_test and not mentions_field(node, "active"):
            node = conjunction(node, ("leaf", "active", "=", True))
        return node

    def search_records(self, env: Env, domain: Any, offset: Any = 0, limit: Any = None,
                       order: Any = None) -> list[dict[str, Any]]:
        """The stored records matching ``domain``, ordered and paged (the query planner)."""
        node = self.prepare_domain(env, domain)
        match = self.compiler(env).compile(node)
        terms = parse_order(order or self._order, lambda n: n in self.fields, self._name)
        offset = int(offset or 0)
        stop = offset + int(limit) if limit else None

        lookup = equality_lookup(node, self._indexed_field)
        if lookup is not None:
            name, values = lookup
            hits: set[int] = set()
            if name == "id":
                hits = {v for v in values if v in self.records}
            else:
                index = self._hash[name]
                for v in values:
                    hits |= index.get(v, set())
            found = [rec for rec in (self.records[i] for i in hits) if match(rec)]
            sort_records(found, terms, self._sort_key)
            return found[offset:stop]
        bounds = key_bounds(node, "write_date", parse_datetime_operand) if self._by_write_date else Bounds()
        if terms[0][0] == "write_date" and terms[: len(_INDEX_ORDER)] == _INDEX_ORDER[: len(terms)]:
            return list(self._scan_by_write_date(bounds, match, offset, stop))
        if bounds.lo is not None or bounds.hi is not None:
            # A write_date window (an incremental poll in another order): candidates from the index.
            id_lo = bounds.id_lo if bounds.id_lo is not None else ID_MIN
            ids = [k[1] for k in self._write_date_range(bounds) if k[1] >= id_lo]
            records = self.records
            if terms == [("id", False, False)]:
                ids.sort()
                return _slice(filter(match, (records[i] for i in ids)), offset, stop)
            found = [rec for rec in (records[i] for i in ids) if match(rec)]
            sort_records(found, terms, self._sort_key)
            return found[offset:stop]
        if terms == [("id", False, False)]:
            return _slice(filter(match, self._ordered_records()), offset, stop)
        if terms == [("id", True, True)]:
            return _slice(filter(match, reversed(list(self._ordered_records()))), offset, stop)
        found = [rec for rec in self.records.values() if match(rec)]
        sort_records(found, terms, self._sort_key)
        return found[offset:stop]

    def _write_date_range(self, bounds: Bounds) -> list[tuple[str, int]]:
        keys = self._by_write_date
        start = bisect.bisect_left(keys, bounds.lo) if bounds.lo is not None else 0
        end = bisect.bisect_left(keys, bounds.hi) if bounds.hi is not None else len(keys)
        return keys[start:end]

    def _scan_by_write_date(self, bounds: Bounds, match: Callable[[dict[str, Any]], bool], offset: int,
                            stop: int | None) -> Iterator[dict[str, Any]]:
        # The polling query of every sync engine: a sorted (write_date, id) index and the bounds the
        # domain puts on that key make each page cost O(page), not O(table).
        keys = self._by_write_date
        start = bisect.bisect_left(keys, bounds.lo) if bounds.lo is not None else 0
        hi = bounds.hi
        id_lo = bounds.id_lo
        records = self.records
        seen = 0
        for i in range(start, len(keys)):
            key = keys[i]
            if hi is not None and key >= hi:
                return
            if id_lo is not None and key[1] < id_lo:
                continue
            rec = records[key[1]]
            if match(rec):
                if seen >= offset:
                    yield rec
                seen += 1
                if stop is not None and seen >= stop:
                    return

    def _sort_key(self, name: str) -> Callable[[dict[str, Any]], Any]:
        f = self.fields[name]
        get = self.raw_getter(name)
        if f.type == "many2one":
            comodel = self.registry.models[f.relation or ""]

            def key(rec: dict[str, Any]) -> Any:
                v = get(rec)
                return None if v is None else comodel.display_name_of(v)
            return key
        if f.is_x2many:
            raise ValueError(f"Cannot sort {f} (a {f.type} field)")
        if f.type == "boolean":
            return lambda rec: bool(get(rec))
        return get

    def search_ids(self, env: Env, domain: Any, offset: Any = 0, limit: Any = None, order: Any = None) -> list[int]:
        """Ids of the records ``search_records`` returns."""
        return [rec["id"] for rec in self.search_records(env, domain, offset, limit, order)]

    # ================================================================== public API (RPC)
    @api_model
    def search(self, env: Env, domain: Any, offset: Any = 0, limit: Any = None, order: Any = None) -> list[int]:
        """``search(domain, offset, limit, order)`` -> ids."""
        return self.search_ids(env, domain, offset, limit, order)

    @api_model
    def search_count(self, env: Env, domain: Any, limit: Any = None) -> int:
        """``search_count(domain)`` -> number of matching records."""
        return len(self.search_records(env, domain, 0, limit, "id"))

    @api_model
    def search_read(self, env: Env, domain: Any = None, fields: Any = None, offset: Any = 0, limit: Any = None,
                    order: Any = None, load: Any = "_classic_read") -> list[dict[str, Any]]:
        """``search_read(domain, fields, offset, limit, order)`` -> list of dicts (``id`` always)."""
        plan = self._read_plan(fields, load)  # validate fields before searching, as Odoo does
        records = self.search_records(env, domain, offset, limit, order)
        return [{name: fn(rec) for name, fn in plan} for rec in records]

    @api_records
    def read(self, env: Env, ids: Any, fields: Any = None, load: Any = "_classic_read") -> list[dict[str, Any]]:
        """``read(ids, fields)``; a missing id raises MissingError like Odoo."""
        ids = as_ids(ids)
        plan = self._read_plan(fields, load)
        self._check_exist(env, ids)
        return [{name: fn(rec) for name, fn in plan} for rec in (self.records[i] for i in ids)]

    @api_model
    def create(self, env: Env, vals_list: Any) -> int | list[int]:
        """``create(vals)`` -> id, ``create([vals, ...])`` -> [ids] (atomic).

        ``default_<field>`` context keys supply values the caller left out, as ``default_get`` does.
        """
        single = isinstance(vals_list, dict)
        if not single and not isinstance(vals_list, list):
            raise TypeError(f"create() expects a dict or a list of dicts, got {type(vals_list).__name__}")
        items = [vals_list] if single else vals_list
        defaults = {k[8:]: v for k, v in env.context.items() if k.startswith("default_") and k[8:] in self.fields}
        if defaults:
            items = [{**defaults, **v} if isinstance(v, dict) else v for v in items]
        ids = self.create_records(env, items)
        return ids[0] if single else ids

    @api_records
    def write(self, env: Env, ids: Any, vals: Any) -> bool:
        """``write(ids, vals)`` -> true."""
        ids = as_ids(ids)
        if ids:
            self.write_records(env, ids, vals)
        return True

    @api_records
    def unlink(self, env: Env, ids: Any) -> bool:
        """``unlink(ids)`` -> true (already deleted ids are ignored, as Odoo does)."""
        self.unlink_records(env, as_ids(ids))
        return True

    @api_records
    def exists(self, env: Env, ids: Any) -> list[int]:
        """The subset of ``ids`` that still exist."""
        return [i for i in as_ids(ids) if i in self.records]

    @api_model
    def fields_get(self, env: Env, allfields: Any = None, attributes: Any = None) -> dict[str, Any]:
        """``fields_get(allfields=None, attributes=[...])`` -> {field: description}."""
        result = {}
        for name, f in self.fields.items():
            if allfields and name not in allfields:
                continue
            desc = f.describe()
            if attributes:
                desc = {k: v for k, v in desc.items() if k in attributes}
            result[name] = desc
        return result

    @api_model
    def name_search(self, env: Env, name: Any = "", domain: Any = None, operator: str = "ilike",
                    limit: Any = 100) -> list[list[Any]]:
        """``name_search(name, domain, operator, limit)`` -> [[id, display_name], ...]."""
        out: list[list[Any]] = []
        for rec in self.search_records(env, domain or [], 0, None, None):
            label = self.display_name(rec)
            if name and not match_name(operator, name, label):
                continue
            out.append([rec["id"], label])
            if limit and len(out) >= int(limit):
                break
        return out

    @api_model
    def name_create(self, env: Env, name: str) -> list[Any]:
        """``name_create(name)`` -> [id, display_name]."""
        if self._rec_name is None:
            raise UserError(f"Cannot execute name_create, no _rec_name defined on {self._name}")
        rid = self.create_records(env, [{self._rec_name: name}])[0]
        return [rid, self.display_name_of(rid)]

    @api_model
    def default_get(self, env: Env, fields_list: Any) -> dict[str, Any]:
        """``default_get(fields)`` -> the defaults of those fields that have one."""
        out = {}
        for name in fields_list or ():
            f = self.fields.get(name)
            if f is not None and f.default is not None:
                out[name] = f.default_value()
        return out


def _slice(records: Iterable[dict[str, Any]], offset: int, stop: int | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n, rec in enumerate(records):
        if stop is not None and n >= stop:
            break
        if n >= offset:
            out.append(rec)
    return out


_PRIVATE = re.compile(r"^_")


class Registry:
    """The models of one database, and the entry point of RPC ``execute_kw`` calls."""

    def __init__(self, db: str, now: Callable[[], str]) -> None:
        self.db = db
        self.now = now
        self.models: dict[str, BaseModel] = {}
        self._references: dict[str, list[tuple[BaseModel, Field]]] | None = None
        # The call in progress (calls are serialised): context-dependent computes read it.
        self.env: Env | None = None
        # The company's settings (currency, default taxes, key locations), set by the seed data.
        self.company: Any = None

    def add(self, cls: type[BaseModel]) -> BaseModel:
        """Instantiate and register a model class."""
        model = cls(self)
        self.models[cls._name] = model
        self._references = None
        return model

    def schema_changed(self) -> None:
        """Forget cached cross-model facts after fields were added or removed."""
        self._references = None

    def references_to(self, model_name: str) -> list[tuple[BaseModel, Field]]:
        """The (model, field) pairs whose many2one/many2many point to ``model_name``."""
        if self._references is None:
            refs: dict[str, list[tuple[BaseModel, Field]]] = {}
            for model in self.models.values():
                for f in model.fields.values():
                    if f.store and f.type in ("many2one", "many2many") and f.relation:
                        refs.setdefault(f.relation, []).append((model, f))
            self._references = refs
        return self._references.get(model_name, [])

    def drop_xmlids(self, env: Env, model_name: str, ids: list[int]) -> None:
        """Delete the external ids of deleted records (Odoo's ``unlink`` does this)."""
        imd = self.models.get("ir.model.data")
        if imd is None or model_name == "ir.model.data":
            return
        targets = set(ids)
        for xid in sorted(imd.referencing_ids(imd.fields["res_id"], targets)):
            if imd.records[xid].get("model") == model_name:
                imd._remove(env, xid)

    @contextmanager
    def transaction(self, uid: int, context: dict[str, Any] | None = None, *, force: bool = False
                    ) -> Iterator[Env]:
        """One atomic unit of work: commit on success, undo every change on an exception."""
        env = Env(self, uid, dict(context or {}), self.now(), force=force)
        outer, self.env = self.env, env
        try:
            yield env
        except BaseException:
            env.rollback()
            raise
        finally:
            self.env = outer
        env.undo.clear()

    def call_kw(self, env: Env, model_name: str, method: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        """``execute_kw``'s dispatch: resolve the model and public method, split ids from args."""
        model = self.models.get(model_name) if isinstance(model_name, str) else None
        if model is None or model._internal:
            raise UserError(f"Object {model_name} doesn't exist")
        fn = self.public_method(model, method)
        if not isinstance(args, (list, tuple)):
            raise TypeError(f"odoo.api.call_kw() argument after * must be an iterable, not {type(args).__name__}")
        if fn._api_model:
            return fn(env, *args, **kwargs)
        if not args:
            raise IndexError("list index out of range")
        return fn(env, args[0], *args[1:], **kwargs)

    @staticmethod
    def public_method(model: BaseModel, name: Any) -> Any:
        """The RPC-callable method ``name`` (Odoo 18 ``get_public_method`` rules and messages)."""
        if not isinstance(name, str):
            raise TypeError(f"attribute name must be string, not '{type(name).__name__}'")
        if _PRIVATE.match(name):
            raise AccessError(f"Private methods (such as '{model._name}.{name}') cannot be called remotely.")
        fn = getattr(model, name, None)
        if fn is None or not getattr(fn, "_rpc", False):
            raise AttributeError(f"The method '{model._name}.{name}' does not exist")
        return fn
