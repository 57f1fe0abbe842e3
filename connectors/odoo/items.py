"""Item lists: a one2many field (sale.order ``order_line``) read and written as a list of dicts.

The mapping describes them in ``options.items`` (``{order_line: {model: sale.order.line, key:
x_concord_line_ref}}``: the line model and the field holding the CRM line id) and the engine adds
``options.item_fields`` (``{order_line: (item paths...)}``). Reads fetch the lines of a whole
page of parents in one ``search_read`` and resolve dotted paths (``product_id.default_code``) for
all of them in one batched read. Section and note lines (``display_type`` set) are not items.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.base import EntitySpec, ValidationError
from connectors.odoo.errors import SYSTEM
from connectors.odoo.relations import Relations, RunCache, split_paths
from connectors.odoo.rpc import OdooRPC
from connectors.odoo.schema import Schema
from connectors.odoo.values import Domain, many2one_id, record_ref

_CHUNK = 1000


@dataclass(frozen=True)
class ItemSpec:
    """One item list of an entity: the parent's one2many field and what its items are."""

    field: str  # order_line
    model: str  # sale.order.line
    inverse: str  # order_id
    key: str | None  # x_concord_line_ref: the other system's line id
    paths: tuple[str, ...]  # item paths, as the mapping names them

    def read_fields(self) -> list[str]:
        """Top-level fields of the item model to read."""
        tops, _ = split_paths(self.paths)
        return list(dict.fromkeys(["id", self.inverse, *([self.key] if self.key else []), *tops]))


def item_specs(spec: EntitySpec, schema: Schema) -> list[ItemSpec]:
    """The spec's item lists, from ``options.items`` / ``options.item_fields`` and fields_get."""
    declared: Mapping[str, Any] = spec.options.get("items") or {}
    paths_by_field: Mapping[str, Any] = spec.options.get("item_fields") or {}
    out = []
    for name in dict.fromkeys([*declared, *paths_by_field]):
        if name not in spec.fields:
            continue
        conf = declared.get(name) or {}
        info = schema.fields(spec.object).get(name)
        if info is None or info.get("type") != "one2many":
            raise ValidationError(f"odoo: {spec.object}.{name} is not a one2many field; it cannot hold items",
                                  system=SYSTEM, field=name)
        model = str(conf.get("model") or info.get("relation") or "")
        inverse = str(conf.get("inverse") or info.get("relation_field") or "")
        if not model or not inverse:
            raise ValidationError(f"odoo: cannot tell the model and inverse field of {spec.object}.{name}",
                                  system=SYSTEM, field=name)
        key = conf.get("key")
        paths = tuple(str(p) for p in paths_by_field.get(name) or ())
        out.append(ItemSpec(name, model, inverse, str(key) if key else None, paths))
    return out


def item_domain(schema: Schema, item: ItemSpec, parent_ids: Sequence[int]) -> Domain:
    """The items of these parents, without section/note lines."""
    domain: Domain = [(item.inverse, "in", list(parent_ids))]
    if schema.has_field(item.model, "display_type"):
        domain.append(("display_type", "=", False))
    return domain


def item_order(schema: Schema, item: ItemSpec) -> str:
    """Lines in the order Odoo shows them."""
    return "sequence asc, id asc" if schema.has_field(item.model, "sequence") else "id asc"


def bare_many2ones(schema: Schema, model: str, paths: Sequence[str]) -> list[str]:
    """Paths that name a many2one field directly (no dot): read back as the related id in text."""
    fields = schema.fields(model)
    return [p for p in paths if "." not in p and (fields.get(p) or {}).get("type") == "many2one"]


class ItemReader:
    """Fills item lists into rows of a page of parents."""

    def __init__(self, rpc: OdooRPC, schema: Schema, relations: Relations) -> None:
        self._rpc = rpc
        self._schema = schema
        self._relations = relations

    def lines(self, item: ItemSpec, parent_ids: Sequence[int], fields: Sequence[str]) -> list[dict[str, Any]]:
        """Raw item rows of these parents (one search_read per 1000 parents)."""
        out: list[dict[str, Any]] = []
        ids = list(parent_ids)
        for start in range(0, len(ids), _CHUNK):
            out.extend(self._rpc.execute_kw(item.model, "search_read",
                                            [item_domain(self._schema, item, ids[start:start + _CHUNK])],
                                            {"fields": list(fields), "order": item_order(self._schema, item)})
                       or [])
        return out

    def fill(self, spec: EntitySpec, rows: list[dict[str, Any]], cache: RunCache) -> None:
        """Replace each item field's ids in ``rows`` by a list of dicts keyed by the item paths."""
        for item in item_specs(spec, self._schema):
            parent_ids = [int(r["id"]) for r in rows]
            lines = self.lines(item, parent_ids, item.read_fields()) if parent_ids else []
            _, dotted = split_paths(item.paths)
            if dotted and lines:
                self._relations.fill(item.model, lines, dotted, cache)
            refs = bare_many2ones(self._schema, item.model, item.paths)
            by_parent: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for line in lines:
                parent = many2one_id(line.get(item.inverse))
                if parent is None:
                    continue
                by_parent[parent].append({p: record_ref(line.get(p)) if p in refs else line.get(p)
                                          for p in item.paths})
            for row in rows:
                row[item.field] = by_parent.get(int(row["id"]), [])
