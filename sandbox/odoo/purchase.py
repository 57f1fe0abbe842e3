"""Purchases (Odoo 18 ``purchase`` + ``purchase_stock``): requests for quotation and purchase orders.

``create`` numbers the order ``P00001`` (standard sequence); lines default to the product's cost,
description and purchase taxes. ``button_confirm`` approves draft/sent orders (no double
validation) and creates the receipt (``WH/IN/00001``), which raises the products' ``incoming_qty``
and ``virtual_available``; validating the receipt puts the goods in stock. Orders in another
state are skipped silently, as in Odoo. Vendors are ``res.partner`` records (``supplier_rank``).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, cast

from .account import taxes_of
from .commands import as_ids
from .errors import UserError
from .fields import Field, to_wire_datetime
from .money import line_amounts, money_round, qty_round
from .order_lines import order_value, orders_of, product_defaults, set_flag
from .orm import BaseModel, Env, Registry, api_records
from .sequence import IrSequence
from .stock import (
    EPSILON,
    assign_moves,
    cancel_moves,
    confirm_moves,
    is_goods,
    product_template,
    refresh_pickings,
)

PO_STATES = (("draft", "RFQ"), ("sent", "RFQ Sent"), ("to approve", "To Approve"), ("purchase", "Purchase Order"),
             ("done", "Locked"), ("cancel", "Cancelled"))
PO_INVOICE_STATUS = (("no", "Nothing to Bill"), ("to invoice", "Waiting Bills"), ("invoiced", "Fully Billed"))
RECEIPT_STATUS = (("pending", "Not Received"), ("partial", "Partially Received"), ("full", "Fully Received"))


def _po_pickings(model: BaseModel, rec: dict[str, Any]) -> list[int]:
    return sorted(model.registry.models["stock.picking"]._hash["purchase_id"].get(rec["id"], ()))


class PurchaseOrder(BaseModel):
    """``purchase.order`` (see the module docstring)."""

    _name = "purchase.order"
    _description = "Purchase Order"
    _order = "priority desc, id desc"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Order Reference", required=True, default="New", index=True),
        "priority": Field("selection", "Priority", default="0", selection=(("0", "Normal"), ("1", "Urgent"))),
        "origin": Field("char", "Source Document"),
        "partner_ref": Field("char", "Vendor Reference"),
        "partner_id": Field("many2one", "Vendor", required=True, relation="res.partner", index=True),
        "state": Field("selection", "Status", default="draft", readonly=True, selection=PO_STATES, index=True),
        "locked": Field("boolean", "Locked", default=False, readonly=True),
        "date_order": Field("datetime", "Order Deadline", required=True),
        "date_approve": Field("datetime", "Confirmation Date", readonly=True),
        "date_planned": Field("datetime", "Expected Arrival", computed=True),
        "currency_id": Field("many2one", "Currency", required=True, relation="res.currency"),
        "user_id": Field("many2one", "Buyer", relation="res.users"),
        "notes": Field("html", "Terms and Conditions"),
        "picking_type_id": Field("many2one", "Deliver To", relation="stock.picking.type"),
        "order_line": Field("one2many", "Order Lines", relation="purchase.order.line", inverse_name="order_id"),
        "amount_untaxed": Field("monetary", "Untaxed Amount", computed=True),
        "amount_tax": Field("monetary", "Taxes", computed=True),
        "amount_total": Field("monetary", "Total", computed=True),
        "invoice_status": Field("selection", "Billing Status", default="no", selection=PO_INVOICE_STATUS,
                                computed=True),
        "receipt_status": Field("selection", "Receipt Status", selection=RECEIPT_STATUS, computed=True),
        "picking_ids": Field("many2many", "Receptions", relation="stock.picking", compute=_po_pickings),
        "incoming_picking_count": Field("integer", "Incoming Shipment count",
                                        compute=lambda m, r: len(_po_pickings(m, r))),
    }

    def _complete_vals(self, env: Env, vals: dict[str, Any]) -> dict[str, Any]:
        company = self.registry.company
        vals = dict(vals)
        if vals.get("name", "New") in ("New", None, False):
            sequences = cast(IrSequence, self.registry.models["ir.sequence"])
            vals["name"] = sequences.next_for_code(env, "purchase.order") or "/"
        vals.setdefault("date_order", env.now[:19])
        vals.setdefault("currency_id", company.currency_id)
        vals.setdefault("user_id", env.uid)
        warehouse = self.registry.models["stock.warehouse"].records.get(company.warehouse_id, {})
        vals.setdefault("picking_type_id", warehouse.get("in_type_id"))
        return vals

    def _post_create(self, env: Env, ids: list[int]) -> None:
        self.recompute(env, ids)

    def _post_write(self, env: Env, ids: list[int], vals: dict[str, Any]) -> None:
        self.recompute(env, ids)

    def _pre_unlink(self, env: Env, ids: list[int]) -> None:
        for rid in ids:
            if self.records[rid].get("state") != "cancel":
                raise UserError("In order to delete a purchase order, you must cancel it first.")

    def recompute(self, env: Env, order_ids: Iterable[int]) -> None:
        """Recompute stored amounts, quantities and statuses (write_date moves when they change)."""
        for oid in dict.fromkeys(order_ids):
            if oid in self.records:
                _recompute_po(env, oid)

    def stock_changed(self, env: Env, order_ids: list[int]) -> None:
        """Receipts changed."""
        self.recompute(env, order_ids)

    @api_records
    def button_confirm(self, env: Env, ids: Any) -> bool:
        """Approve draft/sent orders and create their receipts; returns true."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        for oid in ids:
            if self.records[oid].get("state") not in ("draft", "sent"):
                continue
            self._set(env, oid, {"state": "purchase", "date_approve": env.now})
            create_receipt(env, oid)
        self.recompute(env, ids)
        return True

    @api_records
    def button_approve(self, env: Env, ids: Any) -> bool:
        """Approve orders waiting for approval."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        for oid in ids:
            if self.records[oid].get("state") in ("draft", "sent", "to approve"):
                self._set(env, oid, {"state": "purchase", "date_approve": env.now})
                create_receipt(env, oid)
        self.recompute(env, ids)
        return True

    @api_records
    def button_cancel(self, env: Env, ids: Any) -> bool:
        """Cancel orders and their open receipts."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        pickings = self.registry.models["stock.picking"]
        moves = self.registry.models["stock.move"]
        for oid in ids:
            if self.records[oid].get("locked"):
                raise UserError(f"Unable to cancel purchase order {self.records[oid].get('name')} as some "
                                "receptions have already been done.")
            picks = [p for p in sorted(pickings._hash["purchase_id"].get(oid, ()))
                     if pickings.records[p].get("state") != "done"]
            cancel_moves(env, [m for p in picks for m in sorted(moves._hash["picking_id"].get(p, ()))])
            refresh_pickings(env, picks)
            self._set(env, oid, {"state": "cancel"})
        self.recompute(env, ids)
        return True

    @api_records
    def button_draft(self, env: Env, ids: Any) -> bool:
        """Set cancelled orders back to RFQ."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        for oid in ids:
            if self.records[oid].get("state") == "cancel":
                self._set(env, oid, {"state": "draft"})
        self.recompute(env, ids)
        return True

    @api_records
    def button_done(self, env: Env, ids: Any) -> bool:
        """Lock orders."""
        return set_flag(self, env, as_ids(ids), "locked", True)

    @api_records
    def button_unlock(self, env: Env, ids: Any) -> bool:
        """Unlock orders."""
        return set_flag(self, env, as_ids(ids), "locked", False)


class PurchaseOrderLine(BaseModel):
    """``purchase.order.line``: product, ``product_qty``, price, taxes, received and billed quantities."""

    _name = "purchase.order.line"
    _description = "Purchase Order Line"
    _order = "order_id, sequence, id"
    _fields: ClassVar[dict[str, Field]] = {
        "order_id": Field("many2one", "Order Reference", required=True, relation="purchase.order", index=True,
                          ondelete="cascade"),
        "sequence": Field("integer", "Sequence", default=10),
        "display_type": Field("selection", "Display Type", selection=(
            ("line_section", "Section"), ("line_note", "Note"))),
        "product_id": Field("many2one", "Product", relation="product.product", index=True),
        "name": Field("text", "Description", required=True),
        "product_qty": Field("float", "Quantity", required=True, default=1.0),
        "product_uom_qty": Field("float", "Total Quantity", compute=lambda m, r: r.get("product_qty") or 0.0),
        "product_uom": Field("many2one", "Unit", relation="uom.uom"),
        "price_unit": Field("float", "Unit Price", required=True, default=0.0),
        "discount": Field("float", "Discount (%)", default=0.0),
        "taxes_id": Field("many2many", "Taxes", relation="account.tax"),
        "date_planned": Field("datetime", "Expected Arrival", index=True),
        "price_subtotal": Field("monetary", "Subtotal", computed=True),
        "price_tax": Field("float", "Tax", computed=True),
        "price_total": Field("monetary", "Total", computed=True),
        "qty_received": Field("float", "Received Qty", computed=True),
        "qty_invoiced": Field("float", "Billed Qty", computed=True),
        "qty_to_invoice": Field("float", "To Invoice Quantity", computed=True),
        "state": Field("selection", "Status", selection=PO_STATES, computed=True),
        "partner_id": Field("many2one", "Partner", relation="res.partner",
                            compute=order_value("purchase.order", "partner_id")),
        "currency_id": Field("many2one", "Currency", relation="res.currency",
                             compute=order_value("purchase.order", "currency_id")),
        "move_ids": Field("one2many", "Reservation", relation="stock.move", inverse_name="purchase_line_id"),
    }

    def _complete_vals(self, env: Env, vals: dict[str, Any]) -> dict[str, Any]:
        vals = dict(vals)
        vals.setdefault("date_planned", env.now[:19])
        if vals.get("display_type"):
            return vals
        return product_defaults(self, vals, description="description_purchase", uom="uom_po_id",
                                price="standard_price", taxes="supplier_taxes_id", tax_field="taxes_id")

    def _post_create(self, env: Env, ids: list[int]) -> None:
        orders = cast(PurchaseOrder, self.registry.models["purchase.order"])
        confirmed = [i for i in ids if orders.records[self.records[i]["order_id"]].get("state") == "purchase"]
        for oid in orders_of(self, confirmed):
            create_receipt(env, oid)
        orders.recompute(env, orders_of(self, ids))

    def write_records(self, env: Env, ids: list[int], vals: Any) -> None:
        """Quantity changes on confirmed orders adjust the receipt."""
        previous = orders_of(self, ids)
        super().write_records(env, ids, vals)
        orders = cast(PurchaseOrder, self.registry.models["purchase.order"])
        if isinstance(vals, dict) and "product_qty" in vals:
            confirmed = [i for i in ids if orders.records[self.records[i]["order_id"]].get("state") == "purchase"]
            for oid in orders_of(self, confirmed):
                create_receipt(env, oid)
        orders.recompute(env, sorted(set(previous) | set(orders_of(self, ids))))

    def _pre_unlink(self, env: Env, ids: list[int]) -> None:
        orders = cast(PurchaseOrder, self.registry.models["purchase.order"])
        for rid in ids:
            if orders.records[self.records[rid]["order_id"]].get("state") in ("purchase", "done") and \
                    not self.records[rid].get("display_type"):
                raise UserError("Cannot delete a purchase order line which is in state 'purchase'.")

    def _after_unlink(self, env: Env, removed: list[dict[str, Any]]) -> None:
        orders = cast(PurchaseOrder, self.registry.models["purchase.order"])
        orders.recompute(env, sorted({r["order_id"] for r in removed if r.get("order_id") in orders.records}))


def _received(registry: Registry, line_id: int) -> float:
    moves = registry.models["stock.move"]
    locations = registry.models["stock.location"].records
    qty = 0.0
    for mid in moves._hash["purchase_line_id"].get(line_id, ()):
        move = moves.records[mid]
        if move.get("state") != "done":
            continue
        if locations.get(move.get("location_id") or 0, {}).get("usage") == "supplier":
            qty += move.get("quantity") or 0.0
        elif locations.get(move.get("location_dest_id") or 0, {}).get("usage") == "supplier":
            qty -= move.get("quantity") or 0.0
    return qty_round(qty)


def _billed(registry: Registry, line_id: int) -> float:
    amls = registry.models["account.move.line"]
    moves = registry.models["account.move"].records
    qty = 0.0
    for aml in amls._hash["purchase_line_id"].get(line_id, ()):
        rec = amls.records[aml]
        move = moves.get(rec.get("move_id") or 0, {})
        if move.get("state") == "cancel":
            continue
        sign = -1.0 if move.get("move_type") == "in_refund" else 1.0
        qty += sign * (rec.get("quantity") or 0.0)
    return qty_round(qty)


def _recompute_po(env: Env, order_id: int) -> None:
    registry = env.registry
    orders = registry.models["purchase.order"]
    lines = registry.models["purchase.order.line"]
    order = orders.records[order_id]
    state = order.get("state") or "draft"
    untaxed = tax = 0.0
    to_bill: list[float] = []
    fully_billed: list[bool] = []
    planned: list[str] = []
    for lid in sorted(lines._hash["order_id"].get(order_id, ())):
        line = lines.records[lid]
        if line.get("display_type"):
            lines._set(env, lid, {"state": state})
            continue
        amounts = line_amounts(line.get("price_unit") or 0.0, line.get("product_qty") or 0.0,
                               line.get("discount") or 0.0, taxes_of(registry, line.get("taxes_id")))
        received = _received(registry, lid)
        billed = _billed(registry, lid)
        method = product_template(registry, line.get("product_id")).get("purchase_method") or "receive"
        base = received if method == "receive" else (line.get("product_qty") or 0.0)
        to_invoice = qty_round(base - billed) if state in ("purchase", "done") else 0.0
        lines._set(env, lid, {"price_subtotal": amounts.subtotal, "price_tax": amounts.tax,
                              "price_total": amounts.total, "qty_received": received, "qty_invoiced": billed,
                              "qty_to_invoice": to_invoice, "state": state})
        untaxed += amounts.subtotal
        tax += amounts.tax
        to_bill.append(to_invoice)
        fully_billed.append(billed >= (line.get("product_qty") or 0.0) - EPSILON)
        if line.get("date_planned"):
            planned.append(line["date_planned"])
    if state not in ("purchase", "done"):
        invoice_status = "no"
    elif any(q > EPSILON for q in to_bill):
        invoice_status = "to invoice"
    elif fully_billed and all(fully_billed):
        invoice_status = "invoiced"
    else:
        invoice_status = "no"
    pickings = registry.models["stock.picking"]
    picks = [pickings.records[p] for p in sorted(pickings._hash["purchase_id"].get(order_id, ()))]
    if not picks or all(p.get("state") == "cancel" for p in picks):
        receipt_status = None
    elif all(p.get("state") in ("done", "cancel") for p in picks):
        receipt_status = "full"
    elif any(p.get("state") == "done" for p in picks):
        receipt_status = "partial"
    else:
        receipt_status = "pending"
    untaxed, tax = money_round(untaxed), money_round(tax)
    orders._set(env, order_id, {
        "amount_untaxed": untaxed, "amount_tax": tax, "amount_total": money_round(untaxed + tax),
        "invoice_status": invoice_status, "receipt_status": receipt_status,
        "date_planned": min(planned) if planned else None})


def create_receipt(env: Env, order_id: int) -> None:
    """``_create_picking``: receive what is ordered and not yet planned into the open receipt."""
    registry = env.registry
    orders = registry.models["purchase.order"]
    lines = registry.models["purchase.order.line"]
    moves = registry.models["stock.move"]
    pickings = registry.models["stock.picking"]
    types = registry.models["stock.picking.type"]
    order = orders.records[order_id]
    ptype = types.records.get(order.get("picking_type_id") or 0) or types.records[
        registry.models["stock.warehouse"].records[registry.company.warehouse_id]["in_type_id"]]
    touched: list[int] = []
    picking: int | None = None
    for lid in sorted(lines._hash["order_id"].get(order_id, ())):
        line = lines.records[lid]
        if line.get("display_type") or not is_goods(registry, line.get("product_id")):
            continue
        planned = sum((moves.records[m].get("product_uom_qty") or 0.0)
                      for m in moves._hash["purchase_line_id"].get(lid, ())
                      if moves.records[m].get("state") != "cancel")
        diff = qty_round((line.get("product_qty") or 0.0) - planned)
        if diff <= EPSILON:
            continue
        if picking is None:
            picking = next((p for p in sorted(pickings._hash["purchase_id"].get(order_id, ()))
                            if pickings.records[p].get("state") not in ("done", "cancel")), None)
        if picking is None:
            picking = pickings.create_records(env, [{
                "picking_type_id": ptype["id"], "partner_id": order.get("partner_id"), "origin": order.get("name"),
                "purchase_id": order_id, "location_id": ptype.get("default_location_src_id"),
                "location_dest_id": ptype.get("default_location_dest_id"),
                "scheduled_date": to_wire_datetime(line.get("date_planned")) or env.now[:19]}])[0]
        touched += moves.create_records(env, [{
            "name": line.get("name") or "/", "origin": order.get("name"), "product_id": line["product_id"],
            "product_uom_qty": diff, "product_uom": line.get("product_uom"),
            "location_id": pickings.records[picking]["location_id"],
            "location_dest_id": pickings.records[picking]["location_dest_id"], "picking_id": picking,
            "picking_type_id": ptype["id"], "partner_id": order.get("partner_id"), "purchase_line_id": lid,
            "date": to_wire_datetime(line.get("date_planned")) or False, "state": "draft"}])
    confirm_moves(env, touched)
    assign_moves(env, touched)
    if picking is not None:
        refresh_pickings(env, [picking])


MODELS: tuple[type[BaseModel], ...] = (PurchaseOrder, PurchaseOrderLine)
