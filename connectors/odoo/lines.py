"""Writing item lists (sale.order ``order_line``) as Odoo one2many command tuples.

- Create: ``[[0, 0, vals], ...]`` in the parent's create call, so an order and its lines are one
  transaction; a line whose product cannot be resolved fails the whole order (never half-written).
- Update: a per-line diff keyed by the item key field (``x_concord_line_ref``, the CRM line id)
  against the lines in Odoo: ``[1, id, changed]`` for a changed line, ``[0, 0, vals]`` for a new
  one, ``[2, id, 0]`` for a keyed line the other side no longer has (and for duplicates of a key).
  Lines without a key (added in Odoo: delivery charges, down payments) are left alone. When the
  product or quantity of a line changes, its price and discount are sent too, because Odoo
  recomputes them from the pricelist otherwise.
- Parents that are no longer editable (sale.order not draft/sent) refuse any change: the op
  fails with a ValidationError saying the CRM change was not applied; an op that changes nothing
  succeeds without a call.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from connectors.base import ConnectorError, EntitySpec, NotFound, ValidationError
from connectors.odoo.errors import SYSTEM
from connectors.odoo.items import ItemReader, ItemSpec, item_specs
from connectors.odoo.reader import NO_ACTIVE_TEST
from connectors.odoo.relations import Relations, RunCache
from connectors.odoo.rpc import OdooRPC
from connectors.odoo.schema import Schema
from connectors.odoo.values import many2one_id, same_value

log = structlog.get_logger("concord.odoo.lines")

# States in which a parent still takes changes (Odoo 17+: a quotation, sent or not).
EDITABLE_STATES: Mapping[str, tuple[str, ...]] = {"sale.order": ("draft", "sent")}
STATE_WORDS = {"sale": "confirmed", "done": "done", "cancel": "cancelled"}
# Canonical names for error fields (the engine reports them); ``options.field_names`` adds more.
DEFAULT_NAMES = {"order_line": "lines", "product_id.default_code": "sku", "product_id": "sku",
                 "x_concord_line_ref": "line_ref", "product_uom_qty": "quantity", "price_unit": "unit_price",
                 "discount": "discount"}
# (model, field) of a reference -> (what it is, what the field is called), for messages.
FRIENDLY = {("product.product", "default_code"): ("product", "SKU")}
# Changing these makes Odoo recompute the pinned fields, so the pinned ones are sent with them.
RECOMPUTING = ("product_id", "product_uom_qty", "product_uom")
PINNED = ("price_unit", "discount")

Commands = list[list[Any]]


def _unset(value: Any) -> bool:
    return value is None or value is False or value == ""


def line_commands(existing: Sequence[Mapping[str, Any]], desired: Sequence[Mapping[str, Any]],
                  key: str) -> Commands:
    """Command tuples that turn the keyed ``existing`` lines into ``desired`` (resolved vals)."""
    by_key: dict[str, Mapping[str, Any]] = {}
    commands: Commands = []
    for row in existing:
        k = row.get(key)
        if _unset(k):
            continue  # not Concord's line
        if str(k) in by_key:
            commands.append([2, row["id"], 0])  # a duplicated key: keep one line only
            continue
        by_key[str(k)] = row
    seen: set[str] = set()
    updates: Commands = []
    creates: Commands = []
    for vals in desired:
        k = str(vals[key])
        seen.add(k)
        current = by_key.get(k)
        if current is None:
            creates.append([0, 0, dict(vals)])
            continue
        changed = {f: v for f, v in vals.items() if f != key and not same_value(current.get(f), v)}
        if changed:
            if any(f in changed for f in RECOMPUTING):
                changed.update({f: vals[f] for f in PINNED if f in vals})
            updates.append([1, current["id"], changed])
    deletes = [[2, row["id"], 0] for k, row in by_key.items() if k not in seen]
    return commands + updates + creates + deletes


class LineWriter:
    """Turns item lists in write vals into command tuples (creates) or per-line diffs (updates)."""

    def __init__(self, rpc: OdooRPC, schema: Schema, relations: Relations, items: ItemReader) -> None:
        self._rpc = rpc
        self._schema = schema
        self._relations = relations
        self._items = items

    def has_items(self, spec: EntitySpec) -> bool:
        """Whether the spec has item lists (and so goes through this writer)."""
        return bool(spec.options.get("items") or spec.options.get("item_fields"))

    def prepare(self, spec: EntitySpec, vals: dict[int, dict[str, Any]], targets: Mapping[int, int],
                cache: RunCache) -> dict[int, ConnectorError]:
        """Rewrite ``vals[i]`` in place; ops in ``targets`` (index -> id) are updates, the rest creates.

        Returns the ops that must fail, with their errors; an update may end with empty vals.
        """
        errors: dict[int, ConnectorError] = {}
        items = [i for i in item_specs(spec, self._schema) if any(i.field in v for v in vals.values())]
        desired: dict[tuple[int, str], list[dict[str, Any]]] = {}
        for item in items:
            for index, v in vals.items():
                if index in errors or _unset(v.get(item.field)):
                    v.pop(item.field, None)  # not given: the lines stay as they are
                    continue
                try:
                    desired[(index, item.field)] = self._desired(spec, item, v[item.field])
                except ValidationError as exc:
                    errors[index] = exc
            self._resolve(spec, item, desired, errors, cache)
        updates = {i: t for i, t in targets.items() if i in vals and i not in errors}
        if updates:
            self._diff(spec, items, vals, updates, desired, errors)
        for index, v in vals.items():
            if index in errors or index in targets:
                continue
            for item in items:
                if (index, item.field) in desired:
                    v[item.field] = [[0, 0, line] for line in desired[(index, item.field)]]
        return errors

    # ------------------------------------------------------------------ desired lines
    def _desired(self, spec: EntitySpec, item: ItemSpec, raw: Any) -> list[dict[str, Any]]:
        if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
            raise ValidationError(f"{item.field}: expected a list of lines", system=SYSTEM,
                                  field=_name(spec, item.field))
        booleans = {n for n, f in self._schema.fields(item.model).items() if f.get("type") == "boolean"}
        out: list[dict[str, Any]] = []
        seen: dict[str, int] = {}
        for j, line in enumerate(raw):
            vals = {}
            for path, value in line.items():
                if "." in path and _unset(value):
                    raise ValidationError(f"the line has no {self._friendly(item, path)[1]}", system=SYSTEM,
                                          field=_line_field(spec, item, j, path, line))
                if _unset(value) and path not in booleans:
                    continue  # not given: Odoo's default (price from the pricelist, no discount)
                vals[path] = value
            if item.key:
                k = vals.get(item.key)
                if _unset(k):
                    raise ValidationError("the line has no id from the other system, so it cannot be matched "
                                          "on later updates", system=SYSTEM, field=_line_field(spec, item, j, item.key))
                if str(k) in seen:
                    raise ValidationError(f"line id {k!r} appears twice (lines {seen[str(k)]} and {j})",
                                          system=SYSTEM, field=_line_field(spec, item, j, item.key))
                seen[str(k)] = j
            out.append(vals)
        return out

    def _resolve(self, spec: EntitySpec, item: ItemSpec, desired: dict[tuple[int, str], list[dict[str, Any]]],
                 errors: dict[int, ConnectorError], cache: RunCache) -> None:
        """Dotted paths (product_id.default_code) -> many2one ids, for every line of every op at once."""
        flat: list[tuple[int, int, dict[str, Any], dict[str, Any]]] = []
        for (index, field), lines in desired.items():
            if field != item.field or index in errors:
                continue
            flat.extend((index, j, line, dict(line)) for j, line in enumerate(lines))
        if not flat:
            return
        results = self._relations.to_ids(item.model, [line for _, _, line, _ in flat], cache)
        for (index, j, _, original), error in zip(flat, results, strict=True):
            if error is None or index in errors:
                continue
            path = error.field or ""
            what, called = self._friendly(item, path)
            message = error.message
            if message.startswith("no ") and path in original:
                message = f"no {what} with {called} {original[path]!r} in Odoo"
            errors[index] = ValidationError(message, system=SYSTEM, field=_line_field(spec, item, j, path, original))

    def _friendly(self, item: ItemSpec, path: str) -> tuple[str, str]:
        head, _, tail = path.partition(".")
        try:
            relation = self._schema.relation(item.model, head, path)
        except ValidationError:
            return (head, tail or head)
        return FRIENDLY.get((relation, tail), (relation, tail))

    # ------------------------------------------------------------------ updates
    def _diff(self, spec: EntitySpec, items: list[ItemSpec], vals: dict[int, dict[str, Any]],
              updates: dict[int, int], desired: dict[tuple[int, str], list[dict[str, Any]]],
              errors: dict[int, ConnectorError]) -> None:
        """Keep only what differs from Odoo; refuse changes to parents that are not editable."""
        editable = spec.options.get("editable_states") or EDITABLE_STATES.get(spec.object)
        has_state = editable is not None and self._schema.has_field(spec.object, "state")
        header = sorted({k for i in updates for k in vals[i] if k not in {it.field for it in items}})
        fields = ["id", *header, *(["state"] if has_state else []),
                  *(["name"] if self._schema.has_field(spec.object, "name") else [])]
        ids = sorted(set(updates.values()))
        rows = {int(r["id"]): r for r in self._rpc.execute_kw(
            spec.object, "search_read", [[("id", "in", ids)]],
            {"fields": list(dict.fromkeys(fields)), "context": NO_ACTIVE_TEST}) or []}
        existing: dict[tuple[int, str], list[dict[str, Any]]] = {}
        for item in items:
            for line in self._items.lines(item, ids, item.read_fields()):
                pid = many2one_id(line.get(item.inverse))
                if pid is not None:
                    existing.setdefault((pid, item.field), []).append(line)
        for index, target in updates.items():
            row = rows.get(target)
            if row is None:
                errors[index] = NotFound(f"odoo: {spec.object} {target} does not exist", system=SYSTEM)
                continue
            v = vals[index]
            change = {k: x for k, x in v.items() if k not in {it.field for it in items}
                      and (k not in row or not same_value(row[k], x))}
            for item in items:
                if (index, item.field) not in desired:
                    continue
                if not item.key:
                    errors[index] = ValidationError(f"{item.field} has no key field (options.items.{item.field}.key);"
                                                    " its lines cannot be updated", system=SYSTEM,
                                                    field=_name(spec, item.field))
                    break
                commands = line_commands(existing.get((target, item.field), []), desired[(index, item.field)],
                                         item.key)
                if commands:
                    change[item.field] = commands
            if index in errors:
                continue
            state = row.get("state") if has_state else None
            if change and editable is not None and state is not None and state not in editable:
                log.info("odoo.locked_change_refused", model=spec.object, id=target, state=state,
                         fields=sorted(change))
                noun = "order" if spec.object == "sale.order" else spec.object
                errors[index] = ValidationError(
                    f"Odoo {noun} {row.get('name') or target} is {STATE_WORDS.get(str(state), state)} (locked): "
                    "the CRM change was not applied", system=SYSTEM, field=None)
                continue
            vals[index] = change


def _name(spec: EntitySpec, path: str) -> str:
    names = {**DEFAULT_NAMES, **(spec.options.get("field_names") or {})}
    return str(names.get(path, path))


def _line_field(spec: EntitySpec, item: ItemSpec, index: int, path: str,
                line: dict[str, Any] | None = None) -> str:
    """``lines[<the other system's line id>].sku`` (by position when the line has no id): the
    admin must be able to tell which CRM line item to fix."""
    key = line.get(item.key) if (line is not None and item.key) else None
    where = str(key) if not _unset(key) else str(index)
    return f"{_name(spec, item.field)}[{where}].{_name(spec, path)}"
