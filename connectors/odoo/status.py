"""The canonical status of Odoo sales orders (the virtual field ``concord_status``).

Precedence, first match wins:

=============  ==========================================================================
cancelled      ``state = cancel``
paid           confirmed; it has posted customer invoices (not reversed) and every one is
               ``paid`` or ``in_payment``; and nothing is left to invoice
invoiced       confirmed; it has posted customer invoices (not reversed)
shipped        confirmed; it has outgoing deliveries and every one not cancelled is done
backordered    confirmed; an open first-step stock move could not reserve its whole demand
confirmed      ``state = sale`` (or Odoo 16's ``done``)
credit_hold    ``state`` draft or sent, and Concord's hold field (``x_concord_hold``) is set
draft          ``state`` draft or sent (a quotation)
=============  ==========================================================================

Invoices come from the order's ``invoice_ids`` (Odoo computes it from the invoice lines'
``sale_line_ids``); deliveries from ``picking_ids`` (``picking_type_code = outgoing``).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.odoo.rpc import OdooRPC
from connectors.odoo.schema import Schema
from connectors.odoo.stock import CLOSED_MOVE_STATES, is_short, move_fields
from connectors.odoo.values import many2one_id

DRAFT_STATES = frozenset({"draft", "sent"})
CONFIRMED_STATES = frozenset({"sale", "done"})
PAID_STATES = frozenset({"paid", "in_payment"})
_CHUNK = 1000


@dataclass
class OrderFacts:
    """What decides one order's status."""

    state: str
    held: bool = False
    invoice_states: list[str] = field(default_factory=list)  # payment_state of posted out_invoices
    to_invoice: bool = False  # invoice_status "to invoice": delivered or ordered, not invoiced yet
    deliveries: list[str] = field(default_factory=list)  # states of outgoing pickings
    short: bool = False


def order_status(facts: OrderFacts) -> str:
    """The canonical status of an order (see the module docstring for the precedence)."""
    if facts.state == "cancel":
        return "cancelled"
    if facts.state in DRAFT_STATES:
        return "credit_hold" if facts.held else "draft"
    invoices = [s for s in facts.invoice_states if s != "reversed"]
    if invoices and all(s in PAID_STATES for s in invoices) and not facts.to_invoice:
        return "paid"
    if invoices:
        return "invoiced"
    deliveries = [s for s in facts.deliveries if s != "cancel"]
    if deliveries and all(s == "done" for s in deliveries):
        return "shipped"
    if facts.short:
        return "backordered"
    return "confirmed"


def status_fields(schema: Schema, hold_field: str | None) -> list[str]:
    """sale.order fields :class:`OrderStatusReader` needs on each row."""
    wanted = ["state", "invoice_ids", "picking_ids", "invoice_status"]
    if hold_field:
        wanted.append(hold_field)
    return [f for f in wanted if schema.has_field("sale.order", f)]


class OrderStatusReader:
    """Statuses of a page of orders: at most three batched calls (invoices, deliveries, moves)."""

    def __init__(self, rpc: OdooRPC, schema: Schema) -> None:
        self._rpc = rpc
        self._schema = schema

    def statuses(self, rows: Sequence[Mapping[str, Any]], hold_field: str | None) -> dict[int, str]:
        """Order id -> canonical status, for sale.order rows read with :func:`status_fields`."""
        facts = {int(r["id"]): OrderFacts(state=str(r.get("state") or "draft"),
                                          held=bool(hold_field and r.get(hold_field)),
                                          to_invoice=r.get("invoice_status") == "to invoice") for r in rows}
        confirmed = [r for r in rows if facts[int(r["id"])].state in CONFIRMED_STATES]
        self._invoices(confirmed, facts)
        pending = [r for r in confirmed if not facts[int(r["id"])].invoice_states]
        open_pickings = self._deliveries(pending, facts)
        self._shortages(open_pickings, facts)
        return {oid: order_status(f) for oid, f in facts.items()}

    def _invoices(self, rows: list[Mapping[str, Any]], facts: dict[int, OrderFacts]) -> None:
        by_invoice = _links(rows, "invoice_ids")
        if not by_invoice:
            return
        for row in self._search("account.move", [("id", "in", sorted(by_invoice)), ("move_type", "=", "out_invoice"),
                                                 ("state", "=", "posted")], ["payment_state"]):
            for oid in by_invoice[row["id"]]:
                facts[oid].invoice_states.append(str(row.get("payment_state") or "not_paid"))

    def _deliveries(self, rows: list[Mapping[str, Any]], facts: dict[int, OrderFacts]) -> dict[int, list[int]]:
        """Record outgoing picking states; return open pickings (any type) -> their orders."""
        by_picking = _links(rows, "picking_ids")
        if not by_picking or not self._schema.has_model("stock.picking"):
            return {}
        open_pickings: dict[int, list[int]] = {}
        for row in self._search("stock.picking", [("id", "in", sorted(by_picking))], ["state", "picking_type_code"]):
            state = str(row.get("state") or "draft")
            for oid in by_picking[row["id"]]:
                if row.get("picking_type_code") == "outgoing":
                    facts[oid].deliveries.append(state)
            if state not in CLOSED_MOVE_STATES:
                open_pickings[row["id"]] = by_picking[row["id"]]
        return open_pickings

    def _shortages(self, open_pickings: dict[int, list[int]], facts: dict[int, OrderFacts]) -> None:
        if not open_pickings:
            return
        domain = [("picking_id", "in", sorted(open_pickings)), ("state", "not in", ["done", "cancel", "draft"])]
        for move in self._search("stock.move", domain, move_fields(self._schema)):
            if is_short(move):
                for oid in open_pickings.get(many2one_id(move.get("picking_id")) or 0, []):
                    facts[oid].short = True

    def _search(self, model: str, domain: list[Any], fields: list[str]) -> list[dict[str, Any]]:
        # Chunked on the first ("id"/"picking_id" in ...) condition so that huge pages stay bounded.
        field_name, op, ids = domain[0]
        out: list[dict[str, Any]] = []
        for start in range(0, len(ids), _CHUNK):
            chunk = [(field_name, op, ids[start:start + _CHUNK]), *domain[1:]]
            out.extend(self._rpc.execute_kw(model, "search_read", [chunk], {"fields": ["id", *fields]}) or [])
        return out


def _links(rows: Iterable[Mapping[str, Any]], field_name: str) -> dict[int, list[int]]:
    """Related id -> the rows (orders) that link it through an x2many field."""
    out: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        for rid in row.get(field_name) or []:
            if isinstance(rid, int):
                out[rid].append(int(row["id"]))
    return out
