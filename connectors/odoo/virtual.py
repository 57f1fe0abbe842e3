"""Virtual fields: values Concord computes from Odoo data, named ``concord_*`` in mapping paths.

They are never sent to Odoo (not in reads, not in writes); each is computed for a whole page
of records with a few batched calls:

- sale.order ``concord_status``: the canonical order status (status.py).
- account.move ``concord_sale_order_id``: the id (text) of the sale.order the invoice bills: the
  order named in ``invoice_origin`` (Odoo writes the order name there; several names separated
  by ", " on a grouped invoice: the first one that exists wins), else the order of the first
  invoice line linked to a sales order line (``invoice_line_ids.sale_line_ids``).
- account.move ``concord_amount_paid``: ``amount_total - amount_residual``.
- product.product ``concord_warehouse``: ``"*"`` (quantities over every warehouse), or the code
  in ``options.warehouse`` (quantities then read with that warehouse in the context).
- product.product ``concord_reserved``: ``qty_available - free_qty`` (reserved by open moves).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from connectors.base import EntitySpec, ValidationError
from connectors.odoo.errors import SYSTEM
from connectors.odoo.rpc import OdooRPC
from connectors.odoo.schema import Schema
from connectors.odoo.status import OrderStatusReader, status_fields
from connectors.odoo.stock import StockScope
from connectors.odoo.values import many2one_id, to_decimal

PREFIX = "concord_"
HOLD_FIELD = "x_concord_hold"
_CHUNK = 1000

Rows = list[dict[str, Any]]


def is_virtual(path: str) -> bool:
    """Whether a mapping path names a virtual field (its first segment starts with ``concord_``)."""
    return path.split(".", 1)[0].startswith(PREFIX)


def hold_field(spec: EntitySpec, schema: Schema) -> str | None:
    """The sale.order field that holds Concord's hold reason, if the server has it."""
    name = str(spec.options.get("hold_field") or HOLD_FIELD)
    return name if schema.has_field(spec.object, name) else None


class Virtuals:
    """Computes the virtual fields a spec asks for, a page at a time."""

    def __init__(self, rpc: OdooRPC, schema: Schema, scope: StockScope) -> None:
        self._rpc = rpc
        self._schema = schema
        self._scope = scope
        self._status = OrderStatusReader(rpc, schema)
        # model -> virtual field -> (raw fields it needs, filler)
        self._known: dict[str, dict[str, tuple[Callable[[EntitySpec], list[str]],
                                               Callable[[EntitySpec, Rows], None]]]] = {
            "sale.order": {"concord_status": (self._status_needs, self._fill_status)},
            "account.move": {"concord_sale_order_id": (lambda s: ["invoice_origin"], self._fill_sale_order),
                             "concord_amount_paid": (lambda s: ["amount_total", "amount_residual"],
                                                     self._fill_amount_paid)},
            "product.product": {"concord_warehouse": (lambda s: [], self._fill_warehouse),
                                "concord_reserved": (lambda s: ["qty_available", "free_qty"], self._fill_reserved)},
        }

    def requested(self, spec: EntitySpec) -> list[str]:
        """The spec's virtual paths; an unknown one is an error naming what exists."""
        wanted = [p for p in spec.fields if is_virtual(p)]
        known = self._known.get(spec.object, {})
        for path in wanted:
            if path not in known:
                names = ", ".join(sorted(known)) or "none"
                raise ValidationError(f"odoo: {spec.object} has no virtual field {path!r} (Concord computes: {names})",
                                      system=SYSTEM, field=path)
        return wanted

    def needs(self, spec: EntitySpec) -> list[str]:
        """Raw fields to read so that the virtual fields can be computed."""
        out: list[str] = []
        for path in self.requested(spec):
            out.extend(self._known[spec.object][path][0](spec))
        return list(dict.fromkeys(out))

    def fill(self, spec: EntitySpec, rows: Rows) -> None:
        """Set ``row[path]`` for every virtual path of the spec (rows read with :meth:`needs`)."""
        if not rows:
            return
        for path in self.requested(spec):
            self._known[spec.object][path][1](spec, rows)

    # ------------------------------------------------------------------ sale.order
    def _status_needs(self, spec: EntitySpec) -> list[str]:
        return status_fields(self._schema, hold_field(spec, self._schema))

    def _fill_status(self, spec: EntitySpec, rows: Rows) -> None:
        statuses = self._status.statuses(rows, hold_field(spec, self._schema))
        for row in rows:
            row["concord_status"] = statuses[int(row["id"])]

    # ------------------------------------------------------------------ account.move
    def _fill_amount_paid(self, spec: EntitySpec, rows: Rows) -> None:
        for row in rows:
            row["concord_amount_paid"] = float(to_decimal(row.get("amount_total"))
                                               - to_decimal(row.get("amount_residual")))

    def _fill_sale_order(self, spec: EntitySpec, rows: Rows) -> None:
        origins = {int(r["id"]): _origin_names(r.get("invoice_origin")) for r in rows}
        names = sorted({n for ns in origins.values() for n in ns})
        by_name: dict[str, int] = {}
        for start in range(0, len(names), _CHUNK):
            found = self._rpc.execute_kw("sale.order", "search_read", [[("name", "in", names[start:start + _CHUNK])]],
                                         {"fields": ["id", "name"]}) or []
            for row in found:
                by_name.setdefault(str(row["name"]), int(row["id"]))
        result: dict[int, int | None] = {}
        for mid, ns in origins.items():
            result[mid] = next((by_name[n] for n in ns if n in by_name), None)
        unmatched = [mid for mid, oid in result.items() if oid is None]
        if unmatched:
            result.update(self._orders_by_lines(unmatched))
        for row in rows:
            oid = result.get(int(row["id"]))
            row["concord_sale_order_id"] = str(oid) if oid is not None else None

    def _orders_by_lines(self, move_ids: Sequence[int]) -> dict[int, int]:
        """Invoice -> sale.order through invoice lines linked to order lines (sale_line_ids)."""
        if not self._schema.has_field("account.move.line", "sale_line_ids"):
            return {}
        lines = self._rpc.execute_kw("account.move.line", "search_read", [[
            ("move_id", "in", list(move_ids)), ("sale_line_ids", "!=", False)]],
            {"fields": ["id", "move_id", "sale_line_ids"], "order": "id asc"}) or []
        sale_line_ids = sorted({i for line in lines for i in line.get("sale_line_ids") or []})
        if not sale_line_ids:
            return {}
        sale_lines = self._rpc.execute_kw("sale.order.line", "search_read", [[("id", "in", sale_line_ids)]],
                                          {"fields": ["id", "order_id"]}) or []
        order_of = {int(sl["id"]): many2one_id(sl.get("order_id")) for sl in sale_lines}
        out: dict[int, int] = {}
        for line in lines:
            mid = many2one_id(line.get("move_id"))
            if mid is None or mid in out:
                continue
            for sl in line.get("sale_line_ids") or []:
                oid = order_of.get(sl)
                if oid is not None:
                    out[mid] = oid
                    break
        return out

    # ------------------------------------------------------------------ product.product
    def _fill_warehouse(self, spec: EntitySpec, rows: Rows) -> None:
        label = self._scope.label(spec)
        for row in rows:
            row["concord_warehouse"] = label

    def _fill_reserved(self, spec: EntitySpec, rows: Rows) -> None:
        for row in rows:
            row["concord_reserved"] = float(to_decimal(row.get("qty_available")) - to_decimal(row.get("free_qty")))


def _origin_names(origin: Any) -> list[str]:
    if not isinstance(origin, str) or not origin.strip():
        return []
    return [n.strip() for n in origin.split(",") if n.strip()]

