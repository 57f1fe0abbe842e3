"""Stock facts Concord reads from Odoo: the warehouse scope of quantities, and move reservations.

Quantities (``qty_available``, ``free_qty``, ...) are non-stored computed fields of
product.product, scoped by context: Odoo 17+ reads ``warehouse_id`` (Odoo <= 16 read
``warehouse``); both are sent, each version ignores the key it does not know. Without a
warehouse the scope is every warehouse's internal locations, which is Concord's ``"*"``.

Reservations: Odoo 17+ ``stock.move`` has ``product_uom_qty`` (the demand) and ``quantity``
(reserved while the move is open, done once it is done). In multi-step deliveries only the first
step (pick, a move without ``move_orig_ids``) reserves from stock; later steps wait on it.
"""
from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from connectors.base import EntitySpec, ValidationError
from connectors.odoo.errors import SYSTEM
from connectors.odoo.rpc import OdooRPC
from connectors.odoo.schema import Schema
from connectors.odoo.values import to_decimal

ALL_WAREHOUSES = "*"
CLOSED_MOVE_STATES = frozenset({"done", "cancel"})
# A draft move is not confirmed yet: it neither reserves nor waits for stock.
UNRESERVING_STATES = frozenset({"draft", "cancel"})


class StockScope:
    """Which warehouse an entity's quantities cover (``options.warehouse``: a stock.warehouse code)."""

    def __init__(self, rpc: OdooRPC) -> None:
        self._rpc = rpc
        self._ids: dict[str, int] = {}
        self._lock = threading.Lock()

    @staticmethod
    def label(spec: EntitySpec) -> str:
        """The canonical warehouse of the spec's quantities: the code, or ``"*"`` for all."""
        code = spec.options.get("warehouse")
        return str(code) if code else ALL_WAREHOUSES

    def context(self, spec: EntitySpec) -> dict[str, Any]:
        """Context keys that scope quantities to the spec's warehouse (empty for all warehouses)."""
        code = spec.options.get("warehouse")
        if not code:
            return {}
        wid = self.warehouse_id(str(code))
        return {"warehouse_id": wid, "warehouse": wid}

    def warehouse_id(self, code: str) -> int:
        """The id of the stock.warehouse with ``code`` (asked once per connector)."""
        with self._lock:
            if code in self._ids:
                return self._ids[code]
        rows = self._rpc.execute_kw("stock.warehouse", "search_read", [[("code", "=", code)]],
                                    {"fields": ["id", "code"], "context": {"active_test": False}})
        if not rows:
            raise ValidationError(f"odoo: no stock.warehouse with code {code!r} (options.warehouse)",
                                  system=SYSTEM, field="warehouse")
        with self._lock:
            self._ids[code] = int(rows[0]["id"])
        return self._ids[code]


def move_fields(schema: Schema) -> list[str]:
    """stock.move fields read for reservations (``move_orig_ids`` where the server has it)."""
    fields = ["id", "product_uom_qty", "quantity", "state", "picking_id", "sale_line_id"]
    if schema.has_field("stock.move", "move_orig_ids"):
        fields.append("move_orig_ids")
    return fields


def first_step(move: Mapping[str, Any]) -> bool:
    """Whether the move takes goods from stock (not a later step chained to another move)."""
    return not move.get("move_orig_ids")


def is_short(move: Mapping[str, Any]) -> bool:
    """An open first-step move that could not reserve its whole demand."""
    if move.get("state") in CLOSED_MOVE_STATES or move.get("state") in UNRESERVING_STATES or not first_step(move):
        return False
    return to_decimal(move.get("quantity")) < to_decimal(move.get("product_uom_qty"))


def reserved_quantity(moves: Iterable[Mapping[str, Any]]) -> Decimal:
    """Reserved (open moves) plus delivered (done moves) quantity of one line's first-step moves."""
    total = Decimal(0)
    for move in moves:
        if move.get("state") in UNRESERVING_STATES or not first_step(move):
            continue
        total += to_decimal(move.get("quantity"))
    return total
