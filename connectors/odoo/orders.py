"""Order operations on Odoo sales orders: states and reservations, confirm, hold (OrderOperations).

State mapping: ``draft``/``sent`` -> ``draft`` (a quotation, still editable), ``sale`` (and Odoo
16's ``done``) -> ``confirmed``, ``cancel`` -> ``cancelled``. A line's ``reserved`` is what its
first-step stock moves (``stock.move`` with ``sale_line_id``) hold: the reserved ``quantity`` of
open moves plus the done ``quantity`` of delivered ones (Odoo 17+; see stock.py). A confirmed
line without stock moves (a service) has nothing to reserve and counts as fully reserved; lines
of a draft or cancelled order reserve nothing. Quantities are taken in the line's unit.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import structlog

from connectors.base import ConnectorError, EntitySpec, NotFound, OrderLineState, OrderState, RetryableError
from connectors.odoo.errors import SYSTEM
from connectors.odoo.items import ItemReader, ItemSpec, item_specs
from connectors.odoo.reader import NO_ACTIVE_TEST, numeric_ids
from connectors.odoo.relations import Relations
from connectors.odoo.rpc import OdooRPC
from connectors.odoo.schema import Schema
from connectors.odoo.status import CONFIRMED_STATES, DRAFT_STATES
from connectors.odoo.stock import move_fields, reserved_quantity
from connectors.odoo.values import many2one_id, record_ref, to_decimal
from connectors.odoo.virtual import hold_field

log = structlog.get_logger("concord.odoo.orders")

DEFAULT_LINE_KEY = "x_concord_line_ref"
_CHUNK = 1000


def canonical_state(state: str) -> str:
    """Odoo sale.order state -> ``draft`` | ``confirmed`` | ``cancelled``."""
    if state in DRAFT_STATES:
        return "draft"
    if state == "cancel":
        return "cancelled"
    return "confirmed"


class OrderOps:
    """Confirm, hold and inspect sale.order records."""

    def __init__(self, rpc: OdooRPC, schema: Schema, relations: Relations, items: ItemReader) -> None:
        self._rpc = rpc
        self._schema = schema
        self._relations = relations
        self._items = items

    # ------------------------------------------------------------------ states
    def order_states(self, spec: EntitySpec, ids: Sequence[str]) -> dict[str, OrderState]:
        """State, number, total, hold and per-line reservations; unknown ids are absent."""
        wanted = numeric_ids(ids)
        hold = hold_field(spec, self._schema)
        out: dict[str, OrderState] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start:start + _CHUNK]
            rows = self._rpc.execute_kw(spec.object, "search_read", [[("id", "in", chunk)]], {
                "fields": ["id", "name", "state", "amount_total", "partner_id", *([hold] if hold else [])],
                "context": NO_ACTIVE_TEST}) or []
            lines = self._lines(spec, [int(r["id"]) for r in rows if r.get("state") in CONFIRMED_STATES],
                                [int(r["id"]) for r in rows])
            for row in rows:
                oid = int(row["id"])
                out[str(oid)] = OrderState(
                    id=str(oid), state=canonical_state(str(row.get("state"))), number=row.get("name") or None,
                    amount_total=to_decimal(row.get("amount_total")), held=bool(hold and row.get(hold)),
                    partner_id=record_ref(row.get("partner_id")), lines=lines.get(oid, []))
        return out

    def _line_item(self, spec: EntitySpec) -> ItemSpec:
        for item in item_specs(spec, self._schema):
            return item
        # No items in the mapping: the standard order lines, keyed like Concord's own.
        key = DEFAULT_LINE_KEY if self._schema.has_field("sale.order.line", DEFAULT_LINE_KEY) else None
        return ItemSpec("order_line", "sale.order.line", "order_id", key, ())

    def _lines(self, spec: EntitySpec, confirmed: list[int], all_ids: list[int]) -> dict[int, list[OrderLineState]]:
        if not all_ids:
            return {}
        item = self._line_item(spec)
        fields = ["id", item.inverse, "product_id", "product_uom_qty", *([item.key] if item.key else [])]
        rows = self._items.lines(item, all_ids, fields)
        self._relations.fill(item.model, rows, ["product_id.default_code"], self._relations.run_cache())
        moves = self._moves([int(r["id"]) for r in rows if many2one_id(r.get(item.inverse)) in set(confirmed)])
        out: dict[int, list[OrderLineState]] = defaultdict(list)
        confirmed_set = set(confirmed)
        for row in rows:
            oid = many2one_id(row.get(item.inverse))
            if oid is None:
                continue
            quantity = to_decimal(row.get("product_uom_qty"))
            line_moves = moves.get(int(row["id"]))
            if oid not in confirmed_set:
                reserved = Decimal(0)
            elif line_moves is None:
                reserved = quantity  # nothing to reserve (a service)
            else:
                reserved = min(quantity, reserved_quantity(line_moves))
            key = row.get(item.key) if item.key else None
            out[oid].append(OrderLineState(line_ref=str(key) if key else None,
                                           sku=row.get("product_id.default_code") or None,
                                           quantity=quantity, reserved=reserved))
        return out

    def _moves(self, line_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        if not line_ids or not self._schema.has_model("stock.move"):
            return {}
        out: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for start in range(0, len(line_ids), _CHUNK):
            rows = self._rpc.execute_kw("stock.move", "search_read", [[
                ("sale_line_id", "in", line_ids[start:start + _CHUNK])]], {"fields": move_fields(self._schema)}) or []
            for move in rows:
                lid = many2one_id(move.get("sale_line_id"))
                if lid is not None:
                    out[lid].append(move)
        return out

    # ------------------------------------------------------------------ actions
    def confirm_order(self, spec: EntitySpec, order_id: str) -> None:
        """``action_confirm``; an order found confirmed after a refusal or a lost answer is a success."""
        oid = self._id(spec, order_id)
        try:
            self._rpc.execute_kw(spec.object, "action_confirm", [[oid]], idempotent=False)
        except RetryableError as exc:
            if not exc.maybe_applied or self._state(spec, oid) not in CONFIRMED_STATES:
                raise
            log.info("odoo.confirm_unacknowledged_but_done", id=oid)
        except ConnectorError as exc:
            if isinstance(exc, NotFound) or self._state(spec, oid) not in CONFIRMED_STATES:
                raise
            # Odoo refuses to confirm a confirmed order: someone (or our lost attempt) did it.
            log.info("odoo.confirm_already_confirmed", id=oid, detail=exc.message[:200])
            return
        log.info("odoo.order_confirmed", id=oid)

    def hold_order(self, spec: EntitySpec, order_id: str, reason: str | None) -> None:
        """Write (or clear) the hold reason in the hold field (``x_concord_hold``)."""
        oid = self._id(spec, order_id)
        name = hold_field(spec, self._schema)
        if name is None:
            self._schema.invalidate(spec.object)  # `concord setup` may have run since we looked
            name = hold_field(spec, self._schema)
        if name is None:
            raise ConnectorError(f"odoo: {spec.object} has no {spec.options.get('hold_field') or 'x_concord_hold'} "
                                 "field; run `concord setup`", system=SYSTEM)
        self._rpc.execute_kw(spec.object, "write", [[oid], {name: reason or False}])
        log.info("odoo.order_hold", id=oid, held=reason is not None)

    def held_orders(self, spec: EntitySpec) -> list[str]:
        """Draft or sent orders with a hold reason, by id."""
        name = hold_field(spec, self._schema)
        if name is None:
            return []
        domain = [("state", "in", sorted(DRAFT_STATES)), (name, "!=", False)]
        ids = self._rpc.execute_kw(spec.object, "search", [domain], {"order": "id asc"}) or []
        return [str(i) for i in ids]

    def _state(self, spec: EntitySpec, oid: int) -> str | None:
        rows = self._rpc.execute_kw(spec.object, "search_read", [[("id", "=", oid)]], {"fields": ["state"]}) or []
        return str(rows[0]["state"]) if rows else None

    @staticmethod
    def _id(spec: EntitySpec, order_id: str) -> int:
        ids = numeric_ids([order_id])
        if not ids:
            raise NotFound(f"odoo: {order_id!r} is not an Odoo {spec.object} id", system=SYSTEM)
        return ids[0]
