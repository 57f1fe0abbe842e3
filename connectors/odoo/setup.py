"""Custom fields the mappings need (``options.custom_fields`` and ``x_`` key fields), via ir.model.fields."""
from __future__ import annotations

import re
from collections.abc import Sequence
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
    """The spec's custom fields; an ``x_`` key field is added (indexed, not copied) if not listed."""
    declared: dict[str, Any] = dict(spec.options.get("custom_fields") or {})
    key = spec.key_field
    if key and key.startswith("x_") and key not in declared:
        declared[key] = {"type": "char", "label": f"Concord key ({spec.entity})", "index": True}
    out = []
    for name, conf in declared.items():
        conf = conf or {}
        if not isinstance(conf, dict):
            raise ValidationError(f"custom_fields.{name}: expected a mapping with type/label/index",
                                  system=SYSTEM, field=name)
        if not _NAME.match(name):
            raise ValidationError(f"custom field {name!r} on {spec.object}: Odoo custom field names must "
                                  "match x_[a-z0-9_]+", system=SYSTEM, field=name)
        ttype = str(conf.get("type", "char"))
        if ttype not in FIELD_TYPES:
            raise ValidationError(f"custom field {name!r}: type {ttype!r} is not one of "
                                  f"{', '.join(sorted(FIELD_TYPES))}", system=SYSTEM, field=name)
        # A duplicated record must not carry the original's idempotency key.
        out.append(CustomField(spec.object, name, ttype, str(conf.get("label") or name),
                               bool(conf.get("index", name == key)), name != key))
    return out


class Setup:
    """Checks and creates custom fields, idempotently."""

    def __init__(self, rpc: OdooRPC, schema: Schema) -> None:
        self._rpc = rpc
        self._schema = schema

    def missing(self, specs: Sequence[EntitySpec]) -> list[CustomField]:
        """Custom fields that do not exist yet (fields_get asked fresh, not from cache)."""
        out: list[CustomField] = []
        checked: dict[str, dict[str, Any]] = {}
        seen: set[tuple[str, str]] = set()
        for spec in specs:
            for f in wanted_fields(spec):
                if (f.model, f.name) in seen:
                    continue
                seen.add((f.model, f.name))
                if f.model not in checked:
                    checked[f.model] = self._schema.fields(f.model, fresh=True)
                if f.name not in checked[f.model]:
                    out.append(f)
        return out

    def create(self, specs: Sequence[EntitySpec]) -> list[str]:
        """Create every missing field; returns their descriptions."""
        missing = self.missing(specs)
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
                if self.missing([s for s in specs if s.object == model]):
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
