"""Custom fields the mappings need, created via ir.model.fields.

Per spec: ``options.custom_fields`` and an ``x_`` key field on the spec's model; the item
models' fields in ``options.item_custom_fields`` (``{"sale.order.line": {...}}``) and an ``x_``
item key (``options.items.<field>.key``). A sale.order spec also needs the purchase request key
on purchase.order.line (purchases.py), when the Purchase app is installed.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from connectors.base import EntitySpec, RetryableError, ValidationError
from connectors.odoo.errors import SYSTEM
from connectors.odoo.rpc import OdooRPC
from connectors.odoo.schema import Schema

log = structlog.get_logger("concord.odoo.setup")

FIELD_TYPES = frozenset({"char", "float", "integer", "boolean", "date", "datetime", "text"})
_NAME = re.compile(r"^x_[a-z0-9_]+$")


@dataclass(frozen=True)
class CustomField:
    """One custom field Concord needs on one model."""

    model: str
    name: str
    ttype: str
    label: str
    index: bool
    copied: bool

    def describe(self) -> str:
        return f"{self.model}.{self.name} ({self.ttype})"


def wanted_fields(spec: EntitySpec) -> list[CustomField]:
    """The spec's custom fields; ``x_`` key fields are added (indexed, not copied) if not listed."""
    out = _fields(spec.object, dict(spec.options.get("custom_fields") or {}), spec.key_field,
                  f"Concord key ({spec.entity})")
    by_model: dict[str, dict[str, Any]] = {}
    for model, declared in (spec.options.get("item_custom_fields") or {}).items():
        by_model[str(model)] = dict(declared or {})
    for conf in (spec.options.get("items") or {}).values():
        model = (conf or {}).get("model")
        if model and (conf or {}).get("key"):
            by_model.setdefault(str(model), {})
    for model, declared in by_model.items():
        keys = [str(c["key"]) for c in (spec.options.get("items") or {}).values()
                if c and c.get("model") == model and c.get("key")]
        out.extend(_fields(model, declared, keys[0] if keys else None, f"Concord line key ({spec.entity})"))
    return out


def _fields(model: str, declared: dict[str, Any], key: str | None, key_label: str) -> list[CustomField]:
    if key and key.startswith("x_") and key not in declared:
        declared[key] = {"type": "char", "label": key_label, "index": True}
    out = []
    for name, conf in declared.items():
        conf = conf or {}
        if not isinstance(conf, dict):
            raise ValidationError(f"custom_fields.{name}: expected a mapping with type/label/index",
                                  system=SYSTEM, field=name)
        if not _NAME.match(name):
            raise ValidationError(f"custom field {name!r} on {model}: Odoo custom field names must "
                                  "match x_[a-z0-9_]+", system=SYSTEM, field=name)
        ttype = str(conf.get("type", "char"))
        if ttype not in FIELD_TYPES:
            raise ValidationError(f"custom field {name!r}: type {ttype!r} is not one of "
                                  f"{', '.join(sorted(FIELD_TYPES))}", system=SYSTEM, field=name)
        # A duplicated record must not carry the original's idempotency key.
        out.append(CustomField(model, name, ttype, str(conf.get("label") or name),
                               bool(conf.get("index", name == key)), name != key))
    return out


PURCHASE_LINE = "purchase.order.line"


def purchase_key_field(name: str) -> CustomField:
    """The purchase.order.line field holding a purchase request's key (set in its create call)."""
    return CustomField(PURCHASE_LINE, name, "char", "Concord purchase request key", True, False)


class Setup:
    """Checks and creates custom fields, idempotently."""

    def __init__(self, rpc: OdooRPC, schema: Schema, *, purchase_key: str | None = None) -> None:
        self._rpc = rpc
        self._schema = schema
        self._purchase_key = purchase_key

    def _wanted(self, specs: Sequence[EntitySpec]) -> list[CustomField]:
        out = [f for spec in specs for f in wanted_fields(spec)]
        if self._purchase_key and any(s.object == "sale.order" for s in specs) \
                and self._schema.has_model(PURCHASE_LINE):
            out.append(purchase_key_field(self._purchase_key))
        return out

    def missing(self, specs: Sequence[EntitySpec]) -> list[CustomField]:
        """Custom fields that do not exist yet (fields_get asked fresh, not from cache)."""
        out: list[CustomField] = []
        checked: dict[str, dict[str, Any]] = {}
        seen: set[tuple[str, str]] = set()
        for f in self._wanted(specs):
            if (f.model, f.name) in seen:
                continue
            seen.add((f.model, f.name))
            if f.model not in checked:
                checked[f.model] = self._schema.fields(f.model, fresh=True)
            if f.name not in checked[f.model]:
                out.append(f)
        return out

    def ensure(self, fields: Sequence[CustomField]) -> list[str]:
        """Create these fields where missing (for fields a runtime feature needs, e.g. purchases)."""
        missing = [f for f in fields if not self._schema.has_field(f.model, f.name)]
        return self._create_missing(missing, lambda: [f for f in fields
                                                      if f.name not in self._schema.fields(f.model, fresh=True)])

    def create(self, specs: Sequence[EntitySpec]) -> list[str]:
        """Create every missing field; returns their descriptions."""
        return self._create_missing(self.missing(specs), lambda: self.missing(specs))

    def _create_missing(self, missing: list[CustomField], recheck: Callable[[], list[CustomField]]) -> list[str]:
        created: list[str] = []
        by_model: dict[str, list[CustomField]] = {}
        for f in missing:
            by_model.setdefault(f.model, []).append(f)
        for model, fields in by_model.items():
            model_id = self._model_id(model)
            vals = [{"model_id": model_id, "name": f.name, "field_description": f.label, "ttype": f.ttype,
                     "index": f.index, "copied": f.copied, "state": "manual"} for f in fields]
            try:
                self._create_fields(vals)
            except RetryableError as exc:
                if not exc.maybe_applied:
                    raise
                # The create may have happened; only a fresh look can tell.
                if any(f.model == model for f in recheck()):
                    raise
            self._schema.invalidate(model)
            for f in fields:
                log.info("odoo.field_created", model=model, field=f.name, type=f.ttype)
                created.append(f.describe())
        return created

    def _create_fields(self, vals: list[dict[str, Any]]) -> None:
        try:
            self._rpc.execute_kw("ir.model.fields", "create", [vals], idempotent=False, kind="setup")
        except ValidationError as exc:
            if exc.field != "copied":
                raise
            # A server without ir.model.fields.copied: create the fields without that nicety.
            log.warning("odoo.setup_without_copied", detail=exc.message[:200])
            stripped = [{k: v for k, v in v_.items() if k != "copied"} for v_ in vals]
            self._rpc.execute_kw("ir.model.fields", "create", [stripped], idempotent=False, kind="setup")

    def _model_id(self, model: str) -> int:
        rows = self._rpc.execute_kw("ir.model", "search_read", [[("model", "=", model)]],
                                    {"fields": ["id"], "limit": 1}, kind="setup")
        if not rows:
            raise ValidationError(f"odoo: model {model!r} does not exist (is its module installed?)",
                                  system=SYSTEM)
        return int(rows[0]["id"])
