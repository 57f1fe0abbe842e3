"""Field metadata of Odoo models (``fields_get``), cached for the connector's life."""
from __future__ import annotations

import threading
from typing import Any

from connectors.base import ValidationError
from connectors.odoo.errors import SYSTEM
from connectors.odoo.rpc import OdooRPC

ATTRIBUTES = ("type", "relation", "relation_field")


class Schema:
    """``fields_get(attributes=["type", "relation", "relation_field"])`` per model, asked once per model."""

    def __init__(self, rpc: OdooRPC) -> None:
        self._rpc = rpc
        self._fields: dict[str, dict[str, dict[str, Any]]] = {}
        self._missing_models: set[str] = set()
        self._lock = threading.Lock()

    def fields(self, model: str, *, fresh: bool = False) -> dict[str, dict[str, Any]]:
        """Field name -> {"type", "relation"} of ``model``."""
        with self._lock:
            cached = None if fresh else self._fields.get(model)
        if cached is not None:
            return cached
        result = self._rpc.execute_kw(model, "fields_get", [], {"attributes": list(ATTRIBUTES)})
        fields = result if isinstance(result, dict) else {}
        with self._lock:
            self._fields[model] = fields
        return fields

    def has_model(self, model: str) -> bool:
        """Whether ``model`` exists on the server (its module is installed); remembered per model."""
        with self._lock:
            if model in self._missing_models:
                return False
        try:
            self.fields(model)
        except ValidationError:  # "Object stock.move doesn't exist"
            with self._lock:
                self._missing_models.add(model)
            return False
        return True

    def has_field(self, model: str, name: str) -> bool:
        """Whether ``model`` has a field ``name`` (e.g. ``active``)."""
        return name in self.fields(model)

    def relation(self, model: str, field: str, path: str) -> str:
        """The comodel of many2one ``field``; ``path`` names the mapping path in errors."""
        info = self.fields(model).get(field)
        if info is None:
            raise ValidationError(f"{model} has no field {field!r} (path {path!r})", system=SYSTEM, field=path)
        if info.get("type") != "many2one" or not info.get("relation"):
            raise ValidationError(f"{model}.{field} is a {info.get('type')} field; dotted paths such as "
                                  f"{path!r} need a many2one", system=SYSTEM, field=path)
        return str(info["relation"])

    def invalidate(self, model: str | None = None) -> None:
        """Forget cached metadata (after setup created fields)."""
        with self._lock:
            if model is None:
                self._fields.clear()
                self._missing_models.clear()
            else:
                self._fields.pop(model, None)
                self._missing_models.discard(model)
