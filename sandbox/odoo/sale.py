"""Sales (Odoo 18 ``sale`` + ``sale_stock``): quotations, orders, their deliveries and invoicing.

Behaviour a client relies on, as Odoo 18 does it:

- ``create`` numbers the order (``S00001``, a standard sequence: a failed create leaves a gap),
  order lines take the product's price, description and sales taxes (the default 15 %) unless
  given; amounts are stored and rounded per line.
- ``action_confirm`` (draft/sent only, else UserError) sets ``state = sale``, creates the delivery
  (``WH/OUT/00001``) and reserves stock at once; it returns true.
- A confirmed order may still be edited: new lines and higher quantities add to the open delivery,
  lower quantities reduce it, but not below what was delivered; lines cannot be deleted. A
  ``locked`` order (``action_lock``, or every confirmed order when the company's "Lock Confirmed
  Sales" setting, ``Registry.company.lock_confirmed_sales``, is on) refuses changes to the
  product, description, price, quantity and taxes of its lines.
- ``action_cancel`` on anything but a draft returns the "Cancel Sales Order" wizard's action
  unless the context has ``disable_cancel_warning``; a locked order cannot be cancelled.
- Invoicing: the ``sale.advance.payment.inv`` wizard ("Create Invoice", regular invoice) is the
  public path (``_create_invoices`` is private); its ``create_invoices`` returns the invoice's
  form action. Products invoice ordered quantities by default (``invoice_policy = order``).
- ``invoice_status``, ``delivery_status`` (Odoo 17+: pending/started/partial/full, false without
  a delivery), amounts and line quantities are stored computes: when they change, the order's
  ``write_date`` moves. A payment changes none of them.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, cast

from .account import AccountMove, taxes_of
from .commands import as_ids
from .errors import UserError, ValidationError
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
    unreserve_moves,
)

ORDER_STATES = (("draft", "Quotation"), ("sent", "Quotation Sent"), ("sale", "Sales Order"), ("cancel", "Cancelled"))
INVOICE_STATUS = (("upselling", "Upselling Opportunity"), ("invoiced", "Fully Invoiced"),
                  ("to invoice", "To Invoice"), ("no", "Nothing to Invoice"))
DELIVERY_STATUS = (("pending", "Not Delivered"), ("started", "Started"), ("partial", "Partially Delivered"),
                   ("full", "Fully Delivered"))
PROTECTED_LINE_FIELDS = ("product_id", "name", "price_unit", "product_uom", "product_uom_qty", "tax_id",
                         "analytic_distribution")
NOTHING_TO_INVOICE = "Cannot create an invoice. No items are available to invoice."


def _order_pickings(model: BaseModel, rec: dict[str, Any]) -> list[int]:
    return sorted(model.registry.models["stock.picking"]._hash["sale_id"].get(rec["id"], ()))


def _order_invoices(model: BaseModel, rec: dict[str, Any]) -> list[int]:
    registry = model.registry
    lines = registry.models["sale.order.line"]
    amls = registry.models["account.move.line"]
    moves = registry.models["account.move"].records
    found: set[int] = set()
    for lid in lines._hash["order_id"].get(rec["id"], ()):
        for aml in amls._hash["sale_line_ids"].get(lid, ()):
            move_id = amls.records[aml]["move_id"]
            if moves.get(move_id, {}).get("move_type") in ("out_invoice", "out_refund"):
                found.add(move_id)
    return sorted(found)


def _type_name(model: BaseModel, rec: dict[str, Any]) -> str:
    return "Sales Order" if rec.get("state") == "sale" else "Quotation"


class SaleOrder(BaseModel):
    """``sale.order`` (see the module docstring)."""

    _name = "sale.order"
    _description = "Sales Order"
    _order = "date_order desc, id desc"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Order Reference", required=True, default="New", index=True),
        "origin": Field("char", "Source Document"),
        "client_order_ref": Field("char", "Customer Reference", index=True),
        "reference": Field("char", "Payment Ref."),
        "state": Field("selection", "Status", default="draft", readonly=True, selection=ORDER_STATES, index=True),
        "locked": Field("boolean", "Locked", default=False, readonly=True,
                        help="Locked orders cannot be modified."),
        "date_order": Field("datetime", "Order Date", required=True),
        "validity_date": Field("date", "Expiration"),
        "commitment_date": Field("datetime", "Delivery Date"),
        "effective_date": Field("datetime", "Effective Date", computed=True,
                                help="Completion date of the first delivery order."),
        "partner_id": Field("many2one", "Customer", required=True, relation="res.partner", index=True),
        "partner_invoice_id": Field("many2one", "Invoice Address", relation="res.partner"),
        "partner_shipping_id": Field("many2one", "Delivery Address", relation="res.partner"),
        "user_id": Field("many2one", "Salesperson", relation="res.users"),
        "currency_id": Field("many2one", "Currency", relation="res.currency"),
        "warehouse_id": Field("many2one", "Warehouse", relation="stock.warehouse"),
        "picking_policy": Field("selection", "Shipping Policy", required=True, default="direct", selection=(
            ("direct", "As soon as possible"), ("one", "When all products are ready"))),
        "note": Field("html", "Terms and conditions"),
        "order_line": Field("one2many", "Order Lines", relation="sale.order.line", inverse_name="order_id"),
        "amount_untaxed": Field("monetary", "Untaxed Amount", computed=True),
        "amount_tax": Field("monetary", "Taxes", computed=True),
        "amount_total": Field("monetary", "Total", computed=True),
        "invoice_status": Field("selection", "Invoice Status", default="no", selection=INVOICE_STATUS,
                                computed=True),
        "delivery_status": Field("selection", "Delivery Status", selection=DELIVERY_STATUS, computed=True),
        "picking_ids": Field("one2many", "Transfers", relation="stock.picking", compute=_order_pickings),
        "delivery_count": Field("integer", "Delivery Orders", compute=lambda m, r: len(_order_pickings(m, r))),
        "invoice_ids": Field("many2many", "Invoices", relation="account.move", compute=_order_invoices),
        "invoice_count": Field("integer", "Invoice Count", compute=lambda m, r: len(_order_invoices(m, r))),
        "type_name": Field("char", "Type Name", compute=_type_name),
    }

    def _complete_vals(self, env: Env, vals: dict[str, Any]) -> dict[str, Any]:
        company = self.registry.company
        vals = dict(vals)
        if vals.get("name", "New") in ("New", None, False):
            sequences = cast(IrSequence, self.registry.models["ir.sequence"])
            vals["name"] = sequences.next_for_code(env, "sale.order") or "/"
        vals.setdefault("date_order", env.now[:19])
        vals.setdefault("currency_id", company.currency_id)
        vals.setdefault("warehouse_id", company.warehouse_id)
        vals.setdefault("user_id", env.uid)
        if type(vals.get("partner_id")) is int:
            vals.setdefault("partner_invoice_id", vals["partner_id"])
            vals.setdefault("partner_shipping_id", vals["partner_id"])
        return vals

    def _post_create(self, env: Env, ids: list[int]) -> None:
        self.recompute(env, ids)

    def _post_write(self, env: Env, ids: list[int], vals: dict[str, Any]) -> None:
        self.recompute(env, ids)

    def _pre_unlink(self, env: Env, ids: list[int]) -> None:
        for rid in ids:
            if self.records[rid].get("state") not in ("draft", "cancel"):
                raise UserError("You can not delete a sent quotation or a confirmed sales order. "
                                "You must first cancel it.")

    # ------------------------------------------------------------------ recomputation
    def recompute(self, env: Env, order_ids: Iterable[int]) -> None:
        """Recompute the stored computed fields of orders and their lines (write_date moves if any change)."""
        for oid in dict.fromkeys(order_ids):
            if oid in self.records:
                _recompute_order(env, oid)

    def stock_changed(self, env: Env, order_ids: list[int]) -> None:
        """Deliveries changed (sale_stock's dependencies on ``picking_ids.state`` and moves)."""
        self.recompute(env, order_ids)

    # ------------------------------------------------------------------ public methods
    @api_records
    def action_confirm(self, env: Env, ids: Any) -> bool:
        """Confirm quotations: state sale, delivery created and reserved; returns true."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        confirm_orders(env, ids)
        return True

    @api_records
    def action_quotation_sent(self, env: Env, ids: Any) -> bool:
        """Mark draft quotations as sent."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        for rid in ids:
            if self.records[rid].get("state") == "draft":
                self._set(env, rid, {"state": "sent"})
        return True

    @api_records
    def action_cancel(self, env: Env, ids: Any) -> Any:
        """Cancel, or return the cancellation wizard's action for non-draft orders (see module doc)."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        if any(self.records[r].get("locked") for r in ids):
            raise UserError("You cannot cancel a locked order. Please unlock it first.")
        if not env.context.get("disable_cancel_warning") and any(self.records[r].get("state") != "draft" for r in ids):
            if len(ids) != 1:
                raise ValueError(f"Expected singleton: sale.order{tuple(ids)}")
            return {"name": f"Cancel {_type_name(self, self.records[ids[0]])}", "view_mode": "form",
                    "res_model": "sale.order.cancel", "view_id": False, "type": "ir.actions.act_window",
                    "context": {"default_order_id": ids[0]}, "target": "new"}
        cancel_orders(env, ids)
        return True

    @api_records
    def action_draft(self, env: Env, ids: Any) -> bool:
        """Set cancelled or sent quotations back to draft."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        for rid in ids:
            if self.records[rid].get("state") in ("cancel", "sent"):
                self._set(env, rid, {"state": "draft"})
        self.recompute(env, ids)
        return True

    @api_records
    def action_lock(self, env: Env, ids: Any) -> bool:
        """Lock confirmed orders."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        return set_flag(self, env, ids, "locked", True)

    @api_records
    def action_unlock(self, env: Env, ids: Any) -> bool:
        """Unlock orders."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        return set_flag(self, env, ids, "locked", False)


def _line_invoice_lines(model: BaseModel, rec: dict[str, Any]) -> list[int]:
    return sorted(model.registry.models["account.move.line"]._hash["sale_line_ids"].get(rec["id"], ()))


class SaleOrderLine(BaseModel):
    """``sale.order.line``: product, quantity, price, discount, taxes and stored amounts/quantities."""

    _name = "sale.order.line"
    _description = "Sales Order Line"
    _order = "order_id, sequence, id"
    _fields: ClassVar[dict[str, Field]] = {
        "order_id": Field("many2one", "Order Reference", required=True, relation="sale.order", index=True,
                          ondelete="cascade"),
        "sequence": Field("integer", "Sequence", default=10),
        "display_type": Field("selection", "Display Type", selection=(
            ("line_section", "Section"), ("line_note", "Note"))),
        "is_downpayment": Field("boolean", "Is a down payment", default=False),
        "product_id": Field("many2one", "Product", relation="product.product", index=True, ondelete="restrict"),
        "name": Field("text", "Description", required=True),
        "product_uom_qty": Field("float", "Quantity", required=True, default=1.0),
        "product_uom": Field("many2one", "Unit", relation="uom.uom"),
        "price_unit": Field("float", "Unit Price", required=True, default=0.0),
        "discount": Field("float", "Discount (%)", default=0.0),
        "tax_id": Field("many2many", "Taxes", relation="account.tax"),
        "customer_lead": Field("float", "Lead Time", default=0.0),
        "price_subtotal": Field("monetary", "Subtotal", computed=True),
        "price_tax": Field("float", "Total Tax", computed=True),
        "price_total": Field("monetary", "Total", computed=True),
        "qty_delivered": Field("float", "Delivery Quantity", computed=True),
        "qty_invoiced": Field("float", "Invoiced Quantity", computed=True),
        "qty_to_invoice": Field("float", "Quantity To Invoice", computed=True),
        "invoice_status": Field("selection", "Invoice Status", default="no", selection=INVOICE_STATUS,
                                computed=True),
        "state": Field("selection", "Order Status", selection=ORDER_STATES, computed=True),
        "currency_id": Field("many2one", "Currency", relation="res.currency",
                             compute=order_value("sale.order", "currency_id")),
        "order_partner_id": Field("many2one", "Customer", relation="res.partner",
                                 compute=order_value("sale.order", "partner_id")),
        "invoice_lines": Field("many2many", "Invoice Lines", relation="account.move.line",
                               compute=_line_invoice_lines),
        "move_ids": Field("one2many", "Stock Moves", relation="stock.move", inverse_name="sale_line_id"),
    }

    def _complete_vals(self, env: Env, vals: dict[str, Any]) -> dict[str, Any]:
        vals = dict(vals)
        if vals.get("display_type"):
            vals.setdefault("product_uom_qty", 0.0)
            return vals
        return product_defaults(self, vals, description="description_sale", uom="uom_id", price="list_price",
                                taxes="taxes_id", tax_field="tax_id")

    def _post_create(self, env: Env, ids: list[int]) -> None:
        orders = cast(SaleOrder, self.registry.models["sale.order"])
        for rid in ids:
            rec = self.records[rid]
            if not rec.get("display_type") and not rec.get("is_downpayment") and not rec.get("product_id"):
                raise ValidationError("The operation cannot be completed: Missing required fields on accountable "
                                      "sale order line.")
            if rec.get("display_type") and (rec.get("product_id") or rec.get("price_unit") or rec.get("product_uom_qty")):
                raise ValidationError("The operation cannot be completed: Forbidden values on non-accountable "
                                      "sale order line")
        confirmed = [rid for rid in ids
                     if orders.records[self.records[rid]["order_id"]].get("state") == "sale"]
        for oid in orders_of(self, confirmed):
            launch_stock(env, oid, [r for r in confirmed if self.records[r]["order_id"] == oid])
        orders.recompute(env, orders_of(self, ids))

    def write_records(self, env: Env, ids: list[int], vals: Any) -> None:
        """Lines of locked orders keep their protected fields; quantities never drop below delivered."""
        self._check_exist(env, ids)
        orders = cast(SaleOrder, self.registry.models["sale.order"])
        if isinstance(vals, dict):
            protected = sorted(f for f in PROTECTED_LINE_FIELDS if f in vals)  # ir.model.fields order: name
            if protected and any(orders.records[self.records[i]["order_id"]].get("locked") for i in ids):
                labels = "\n".join(self.fields[f].string for f in protected if f in self.fields)
                raise UserError(f"It is forbidden to modify the following fields in a locked order:\n{labels}")
            if "product_uom_qty" in vals:
                for rid in ids:
                    rec = self.records[rid]
                    if (orders.records[rec["order_id"]].get("state") == "sale"
                            and float(vals["product_uom_qty"] or 0.0) < (rec.get("qty_delivered") or 0.0) - EPSILON):
                        raise UserError("The ordered quantity of a sale order line cannot be decreased below the "
                                        "amount already delivered. Instead, create a return in your inventory.")
        previous = orders_of(self, ids)  # a line moved to another order changes both
        super().write_records(env, ids, vals)
        if isinstance(vals, dict) and {"product_uom_qty", "product_id"} & set(vals):
            confirmed = [r for r in ids if orders.records[self.records[r]["order_id"]].get("state") == "sale"]
            for oid in orders_of(self, confirmed):
                launch_stock(env, oid, [r for r in confirmed if self.records[r]["order_id"] == oid])
        orders.recompute(env, sorted(set(previous) | set(orders_of(self, ids))))

    def _pre_unlink(self, env: Env, ids: list[int]) -> None:
        orders = cast(SaleOrder, self.registry.models["sale.order"])
        for rid in ids:
            rec = self.records[rid]
            order = orders.records.get(rec["order_id"], {})
            if order.get("state") == "sale" and not rec.get("display_type") and (
                    _line_invoice_lines(self, rec) or not rec.get("is_downpayment")):
                raise UserError("Once a sales order is confirmed, you can't remove one of its lines (we need to "
                                "track if something gets invoiced or delivered).\n                Set the quantity "
                                "to 0 instead.")

    def _after_unlink(self, env: Env, removed: list[dict[str, Any]]) -> None:
        orders = cast(SaleOrder, self.registry.models["sale.order"])
        orders.recompute(env, sorted({r["order_id"] for r in removed if r.get("order_id") in orders.records}))


# ====================================================================================== computations
def _delivered(registry: Registry, line_id: int) -> float:
    moves = registry.models["stock.move"]
    locations = registry.models["stock.location"].records
    qty = 0.0
    for mid in moves._hash["sale_line_id"].get(line_id, ()):
        move = moves.records[mid]
        if move.get("state") != "done":
            continue
        dest = locations.get(move.get("location_dest_id") or 0, {}).get("usage")
        src = locations.get(move.get("location_id") or 0, {}).get("usage")
        if dest == "customer":
            qty += move.get("quantity") or 0.0
        elif src == "customer":
            qty -= move.get("quantity") or 0.0  # a return
    return qty_round(qty)


def _invoiced(registry: Registry, line_id: int) -> float:
    amls = registry.models["account.move.line"]
    moves = registry.models["account.move"].records
    qty = 0.0
    for aml in amls._hash["sale_line_ids"].get(line_id, ()):
        rec = amls.records[aml]
        move = moves.get(rec.get("move_id") or 0, {})
        if move.get("state") == "cancel":
            continue
        if move.get("move_type") == "out_invoice":
            qty += rec.get("quantity") or 0.0
        elif move.get("move_type") == "out_refund":
            qty -= rec.get("quantity") or 0.0
    return qty_round(qty)


def _line_invoice_status(state: str, qty: float, delivered: float, invoiced: float, to_invoice: float,
                         policy: str) -> str:
    if state != "sale":
        return "no"
    if abs(to_invoice) > EPSILON:
        return "to invoice"
    if policy == "order" and qty >= 0.0 and delivered > qty + EPSILON:
        return "upselling"
    if invoiced >= qty - EPSILON:
        return "invoiced"
    return "no"


def _order_invoice_status(state: str, statuses: list[str]) -> str:
    if state != "sale":
        return "no"
    if any(s == "to invoice" for s in statuses):
        return "to invoice"
    if statuses and all(s == "invoiced" for s in statuses):
        return "invoiced"
    if statuses and all(s in ("invoiced", "upselling") for s in statuses):
        return "upselling"
    return "no"


def _delivery_status(registry: Registry, order_id: int) -> tuple[str | None, str | None]:
    pickings = registry.models["stock.picking"]
    picks = [pickings.records[p] for p in sorted(pickings._hash["sale_id"].get(order_id, ()))]
    lines = registry.models["sale.order.line"]
    done_dates = [str(p["date_done"]) for p in picks if p.get("state") == "done" and p.get("date_done")]
    effective = min(done_dates) if done_dates else None
    if not picks or all(p.get("state") == "cancel" for p in picks):
        return None, effective
    if all(p.get("state") in ("done", "cancel") for p in picks):
        return "full", effective
    if any(p.get("state") == "done" for p in picks):
        delivered = any(lines.records[lid].get("qty_delivered") for lid in lines._hash["order_id"].get(order_id, ()))
        return ("partial" if delivered else "started"), effective
    return "pending", effective


def _recompute_order(env: Env, order_id: int) -> None:
    registry = env.registry
    orders = cast(SaleOrder, registry.models["sale.order"])
    lines = registry.models["sale.order.line"]
    order = orders.records[order_id]
    state = order.get("state") or "draft"
    untaxed = tax = 0.0
    statuses: list[str] = []
    for lid in sorted(lines._hash["order_id"].get(order_id, ())):
        line = lines.records[lid]
        if line.get("display_type"):
            lines._set(env, lid, {"state": state, "invoice_status": "no"})
            continue
        amounts = line_amounts(line.get("price_unit") or 0.0, line.get("product_uom_qty") or 0.0,
                               line.get("discount") or 0.0, taxes_of(registry, line.get("tax_id")))
        tmpl = product_template(registry, line.get("product_id"))
        qty = line.get("product_uom_qty") or 0.0
        delivered = _delivered(registry, lid) if is_goods(registry, line.get("product_id")) else (
            line.get("qty_delivered") or 0.0)
        invoiced = _invoiced(registry, lid)
        policy = tmpl.get("invoice_policy") or "order"
        if state == "sale":
            to_invoice = qty_round((qty if policy == "order" else delivered) - invoiced)
        else:
            to_invoice = 0.0
        status = _line_invoice_status(state, qty, delivered, invoiced, to_invoice, policy)
        lines._set(env, lid, {
            "price_subtotal": amounts.subtotal, "price_tax": amounts.tax, "price_total": amounts.total,
            "qty_delivered": delivered, "qty_invoiced": invoiced, "qty_to_invoice": to_invoice,
            "invoice_status": status, "state": state})
        untaxed += amounts.subtotal
        tax += amounts.tax
        statuses.append(status)
    delivery_status, effective = _delivery_status(registry, order_id)
    untaxed, tax = money_round(untaxed), money_round(tax)
    orders._set(env, order_id, {
        "amount_untaxed": untaxed, "amount_tax": tax, "amount_total": money_round(untaxed + tax),
        "invoice_status": _order_invoice_status(state, statuses), "delivery_status": delivery_status,
        "effective_date": effective})


# ====================================================================================== workflow
def confirm_orders(env: Env, order_ids: list[int]) -> None:
    """``action_confirm``: state sale, deliveries launched and reserved."""
    orders = cast(SaleOrder, env.registry.models["sale.order"])
    lines = env.registry.models["sale.order.line"]
    wrong = [orders.display_name(orders.records[o]) for o in order_ids
             if orders.records[o].get("state") not in ("draft", "sent")]
    if wrong:
        raise UserError(f"The following orders are not in a state requiring confirmation: {', '.join(wrong)}")
    for oid in order_ids:
        values: dict[str, Any] = {"state": "sale", "date_order": env.now}
        if env.registry.company.lock_confirmed_sales:
            values["locked"] = True
        orders._set(env, oid, values)
        launch_stock(env, oid, sorted(lines._hash["order_id"].get(oid, ())))
    orders.recompute(env, order_ids)


def cancel_orders(env: Env, order_ids: list[int]) -> None:
    """``_action_cancel``: cancel draft invoices and open deliveries, then the orders."""
    registry = env.registry
    orders = cast(SaleOrder, registry.models["sale.order"])
    moves_model = cast(AccountMove, registry.models["account.move"])
    stock_moves = registry.models["stock.move"]
    pickings = registry.models["stock.picking"]
    for oid in order_ids:
        for inv in _order_invoices(orders, orders.records[oid]):
            if moves_model.records[inv].get("state") == "draft":
                moves_model.button_cancel(env, [inv])
        picks = [p for p in sorted(pickings._hash["sale_id"].get(oid, ())) if pickings.records[p].get("state") != "done"]
        cancel_moves(env, [m for p in picks for m in sorted(stock_moves._hash["picking_id"].get(p, ()))])
        refresh_pickings(env, picks)
        orders._set(env, oid, {"state": "cancel"})
    orders.recompute(env, order_ids)


def launch_stock(env: Env, order_id: int, line_ids: list[int]) -> None:
    """``_action_launch_stock_rule``: bring the order's deliveries in line with its quantities."""
    registry = env.registry
    orders = cast(SaleOrder, registry.models["sale.order"])
    lines = registry.models["sale.order.line"]
    moves = registry.models["stock.move"]
    order = orders.records[order_id]
    warehouse = registry.models["stock.warehouse"].records.get(order.get("warehouse_id") or 0) or \
        registry.models["stock.warehouse"].records[registry.company.warehouse_id]
    touched: list[int] = []
    for lid in line_ids:
        line = lines.records[lid]
        if line.get("display_type") or not is_goods(registry, line.get("product_id")):
            continue
        line_moves = [moves.records[m] for m in sorted(moves._hash["sale_line_id"].get(lid, ()))]
        planned = sum((m.get("product_uom_qty") or 0.0) for m in line_moves if m.get("state") != "cancel")
        diff = qty_round((line.get("product_uom_qty") or 0.0) - planned)
        open_moves = [m for m in line_moves if m.get("state") not in ("done", "cancel")]
        if diff > EPSILON:
            if open_moves:
                move = open_moves[-1]
                moves._set(env, move["id"], {"product_uom_qty": qty_round((move.get("product_uom_qty") or 0.0) + diff)})
                touched.append(move["id"])
                continue
            picking = _open_picking(env, order, warehouse)
            touched += moves.create_records(env, [{
                "name": line.get("name") or "/", "origin": order.get("name"), "product_id": line["product_id"],
                "product_uom_qty": diff, "product_uom": line.get("product_uom"),
                "location_id": warehouse["lot_stock_id"], "location_dest_id": registry.company.customer_location_id,
                "picking_id": picking, "picking_type_id": warehouse.get("out_type_id"),
                "partner_id": order.get("partner_shipping_id"), "sale_line_id": lid, "state": "draft"}])
        elif diff < -EPSILON:
            reduce = -diff
            for move in reversed(open_moves):
                if reduce <= EPSILON:
                    break
                demand = move.get("product_uom_qty") or 0.0
                cut = min(reduce, demand)
                unreserve_moves(env, [move["id"]])
                if demand - cut <= EPSILON:
                    cancel_moves(env, [move["id"]])
                else:
                    moves._set(env, move["id"], {"product_uom_qty": qty_round(demand - cut)})
                    touched.append(move["id"])
                reduce -= cut
    confirm_moves(env, touched)
    assign_moves(env, touched)
    refresh_pickings(env, sorted({moves.records[m]["picking_id"] for m in touched if moves.records[m].get("picking_id")}))


def _open_picking(env: Env, order: dict[str, Any], warehouse: dict[str, Any]) -> int:
    pickings = env.registry.models["stock.picking"]
    for pid in sorted(pickings._hash["sale_id"].get(order["id"], ())):
        pick = pickings.records[pid]
        if pick.get("state") not in ("done", "cancel") and pick.get("picking_type_id") == warehouse.get("out_type_id"):
            return pid
    return pickings.create_records(env, [{
        "picking_type_id": warehouse.get("out_type_id"), "origin": order.get("name"), "sale_id": order["id"],
        "partner_id": order.get("partner_shipping_id"), "move_type": order.get("picking_policy") or "direct",
        "location_id": warehouse["lot_stock_id"], "location_dest_id": env.registry.company.customer_location_id,
        "scheduled_date": to_wire_datetime(order.get("commitment_date")) or env.now[:19]}])[0]


def create_invoices(env: Env, order_ids: list[int], consolidated: bool = True) -> list[int]:
    """``_create_invoices``: draft customer invoices for what is to invoice (one per customer and
    currency when ``consolidated``, else one per order); UserError when nothing is."""
    registry = env.registry
    orders = cast(SaleOrder, registry.models["sale.order"])
    lines = registry.models["sale.order.line"]
    groups: dict[Any, list[int]] = {}
    for oid in order_ids:
        order = orders.records[oid]
        key = (order.get("partner_invoice_id"), order.get("currency_id")) if consolidated else oid
        groups.setdefault(key, []).append(oid)
    invoices: list[int] = []
    for members in groups.values():
        commands: list[list[Any]] = []
        for oid in members:
            for lid in sorted(lines._hash["order_id"].get(oid, ())):
                line = lines.records[lid]
                qty = line.get("qty_to_invoice") or 0.0
                if line.get("display_type") or abs(qty) <= EPSILON:
                    continue
                commands.append([0, 0, {
                    "product_id": line.get("product_id"), "name": line.get("name"), "quantity": qty,
                    "price_unit": line.get("price_unit") or 0.0, "discount": line.get("discount") or 0.0,
                    "product_uom_id": line.get("product_uom"), "tax_ids": [[6, 0, list(line.get("tax_id") or ())]],
                    "sale_line_ids": [[4, lid]], "sequence": line.get("sequence") or 10}])
        if not commands:
            continue
        first = orders.records[members[0]]
        refs = [str(orders.records[o]["client_order_ref"]) for o in members if orders.records[o].get("client_order_ref")]
        invoices += registry.models["account.move"].create_records(env, [{
            "move_type": "out_invoice", "partner_id": first.get("partner_invoice_id") or first["partner_id"],
            "currency_id": first.get("currency_id"), "invoice_origin": ", ".join(
                str(orders.records[o].get("name") or "") for o in members),
            "ref": ", ".join(refs) or False, "payment_reference": first.get("reference") or False,
            "invoice_user_id": first.get("user_id"), "invoice_line_ids": commands}])
    if not invoices:
        raise UserError(NOTHING_TO_INVOICE)
    return invoices


def invoice_action(invoice_ids: list[int]) -> dict[str, Any]:
    """``sale.order.action_view_invoice``: the customer invoices' window action."""
    action: dict[str, Any] = {"name": "Invoices", "type": "ir.actions.act_window", "res_model": "account.move",
                              "context": {"default_move_type": "out_invoice"}}
    if len(invoice_ids) == 1:
        action.update(views=[[False, "form"]], view_mode="form", res_id=invoice_ids[0])
    else:
        action.update(view_mode="list,form", domain=[["id", "in", invoice_ids]])
    return action


class SaleAdvancePaymentInv(BaseModel):
    """``sale.advance.payment.inv`` ("Create Invoice"): regular invoices of the selected orders."""

    _name = "sale.advance.payment.inv"
    _description = "Sales Advance Payment Invoice"
    _rec_name = None
    _fields: ClassVar[dict[str, Field]] = {
        "advance_payment_method": Field("selection", "Create Invoice", required=True, default="delivered", selection=(
            ("delivered", "Regular invoice"), ("percentage", "Down payment (percentage)"),
            ("fixed", "Down payment (fixed amount)"))),
        "sale_order_ids": Field("many2many", "Sales Orders", relation="sale.order"),
        "count": Field("integer", "Order Count", compute=lambda m, r: len(r.get("sale_order_ids") or ())),
        "consolidated_billing": Field("boolean", "Consolidated Billing", default=True),
        "amount": Field("float", "Down Payment"),
        "fixed_amount": Field("monetary", "Down Payment Amount (Fixed)"),
    }

    def _complete_vals(self, env: Env, vals: dict[str, Any]) -> dict[str, Any]:
        if "sale_order_ids" not in vals and env.context.get("active_model") == "sale.order":
            return {**vals, "sale_order_ids": [[6, 0, list(env.context.get("active_ids") or ())]]}
        return vals

    @api_records
    def create_invoices(self, env: Env, ids: Any) -> Any:
        """Create the invoices; returns the invoice form action (list action for several)."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        created: list[int] = []
        for wid in ids:
            wizard = self.records[wid]
            if wizard.get("advance_payment_method") != "delivered":
                raise UserError("The Odoo simulator only creates regular invoices (advance_payment_method "
                                "'delivered'), not down payments.")
            created += create_invoices(env, list(wizard.get("sale_order_ids") or ()),
                                       consolidated=bool(wizard.get("consolidated_billing")))
        return invoice_action(created)


class SaleOrderCancel(BaseModel):
    """``sale.order.cancel``: the wizard ``action_cancel`` opens; its ``action_cancel`` cancels."""

    _name = "sale.order.cancel"
    _description = "Sales Order Cancel"
    _rec_name = None
    _fields: ClassVar[dict[str, Field]] = {
        "order_id": Field("many2one", "Sale Order", relation="sale.order", required=True, ondelete="cascade"),
    }

    @api_records
    def action_cancel(self, env: Env, ids: Any) -> bool:
        """Cancel the order without sending the cancellation email."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        cancel_orders(env, [self.records[w]["order_id"] for w in ids])
        return True


MODELS: tuple[type[BaseModel], ...] = (SaleOrder, SaleOrderLine, SaleAdvancePaymentInv, SaleOrderCancel)
