"""Direct helpers of the Odoo simulator for order to cash: what users do in Odoo's UI, behind
Concord's back (tests, ``concord demo``, benchmarks).

Each helper runs as the administrator in one transaction through the same business code the
RPC methods use, so every record it changes gets a new ``write_date`` and webhooks fire.
"""
from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any, cast

from .account import create_payments, post_moves, reverse_invoice
from .data import Company
from .errors import UserError
from .fields import WIRE_DATETIME_LENGTH
from .orm import Env, Registry
from .sale import cancel_orders, confirm_orders, create_invoices
from .stock import (
    EPSILON,
    StockPicking,
    StockQuant,
    apply_inventory,
    assign_moves,
    refresh_pickings,
    validate_pickings,
)

ADJECTIVES = ("Heavy-Duty", "Compact", "Industrial", "Premium", "Economy", "Stainless", "Modular", "Portable",
              "Precision", "Insulated", "Reinforced", "Lightweight", "Waterproof", "Ergonomic", "Adjustable")
MATERIALS = ("Steel", "Aluminium", "Oak", "Polymer", "Brass", "Carbon", "Ceramic", "Copper", "Nylon", "Glass")
NOUNS = ("Bracket", "Hinge", "Valve", "Clamp", "Fitting", "Panel", "Bearing", "Fastener", "Coupling", "Gasket",
         "Handle", "Sensor", "Shelf", "Pump", "Cable", "Filter", "Nozzle", "Spacer", "Hook", "Caster")
SIZES = ("10mm", "20mm", "40mm", "60mm", "1/4in", "1/2in", "S", "M", "L", "XL", "Mk II", "Pro", "500ml", "2m")


def ean13(number: int) -> str:
    """A valid EAN-13 barcode for ``number`` (prefix 200, in-store range, plus the check digit)."""
    body = f"200{number:09d}"[-12:]
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


class OrderToCashHelpers:
    """Mixin of :class:`~sandbox.odoo.server.OdooSimulator`: products, stock, orders, invoices, payments."""

    registry: Registry
    lock: threading.RLock
    uid: int
    _direct: Callable[[Callable[[Env], Any]], Any]

    # ------------------------------------------------------------------ settings
    @property
    def company(self) -> Company:
        """The company's settings (switches ``in_payment`` and ``lock_confirmed_sales``)."""
        return self.registry.company  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ lookups
    def product_id(self, product: int | str) -> int:
        """A product.product id from an id or a SKU (``default_code``)."""
        products = self.registry.models["product.product"]
        if isinstance(product, int):
            if product not in products.records:
                raise KeyError(f"no product.product with id {product}")
            return product
        with self.lock:
            found = sorted(products._hash["default_code"].get(product, ()))
        if not found:
            raise KeyError(f"no product.product with default_code {product!r}")
        return found[0]

    def _warehouse(self, warehouse: int | str | None) -> dict[str, Any]:
        warehouses = self.registry.models["stock.warehouse"].records
        if warehouse is None:
            return warehouses[self.registry.company.warehouse_id]
        for wh in warehouses.values():
            if warehouse in (wh["id"], wh.get("code"), wh.get("name")):
                return wh
        raise KeyError(f"no stock.warehouse {warehouse!r}")

    # ------------------------------------------------------------------ products and stock
    def seed_products(self, n: int, seed: int = 0, with_stock: bool = True) -> list[int]:
        """Insert ``n`` storable products fast (SKU-00001...; one transaction); returns product ids.

        Stock, when asked, is put in the main warehouse's stock location directly (as an import
        of quants would), about 10 % of the products at zero.
        """
        rng = random.Random(seed)
        registry = self.registry
        templates = registry.models["product.template"]
        products = registry.models["product.product"]
        quants = registry.models["stock.quant"]
        company = registry.company
        stock_location = registry.models["stock.warehouse"].records[company.warehouse_id]["lot_stock_id"]
        with self.lock, registry.transaction(self.uid, force=True) as env:
            now = env.now[:WIRE_DATETIME_LENGTH] + ".000000"
            magic = {"create_uid": self.uid, "write_uid": self.uid, "create_date": now, "write_date": now}
            first = len(products.records) + 1
            tmpl_rows = []
            for _ in range(n):
                price = round(rng.uniform(2.0, 900.0), 2)
                tmpl_rows.append({
                    "name": f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS)} {rng.choice(NOUNS)} {rng.choice(SIZES)}",
                    "type": "consu", "is_storable": True, "categ_id": 1, "list_price": price,
                    "standard_price": round(price * rng.uniform(0.45, 0.75), 2), "uom_id": 1, "uom_po_id": 1,
                    "sale_ok": True, "purchase_ok": True, "active": True, "priority": "0", "sequence": 1,
                    "invoice_policy": "order", "purchase_method": "receive", "taxes_id": [company.sale_tax_id],
                    "supplier_taxes_id": [company.purchase_tax_id], **magic})
            tmpl_ids = templates._bulk_insert(tmpl_rows)
            ids = products._bulk_insert([
                {"product_tmpl_id": tid, "default_code": f"SKU-{first + i:05d}", "barcode": ean13(first + i),
                 "active": True, **magic} for i, tid in enumerate(tmpl_ids)])
            if with_stock:
                quants._bulk_insert([
                    {"product_id": pid, "location_id": stock_location,
                     "quantity": 0.0 if rng.random() < 0.1 else float(rng.randint(1, 500)), "reserved_quantity": 0.0,
                     "inventory_quantity": 0.0, "inventory_quantity_set": False, "in_date": now, **magic}
                    for pid in ids])
            return ids

    def set_stock(self, product: int | str, qty: float, warehouse: int | str | None = None) -> int:
        """Set the on-hand quantity in a warehouse's stock location by an inventory adjustment
        (a done move, as "Apply" in Inventory > Physical Inventory); returns the quant id."""
        pid = self.product_id(product)
        location = self._warehouse(warehouse)["lot_stock_id"]
        quants = cast(StockQuant, self.registry.models["stock.quant"])

        def run(env: Env) -> int:
            qid = quants.find(pid, location)
            if qid is None:
                qid = quants.create_records(env, [{"product_id": pid, "location_id": location, "quantity": 0.0,
                                                   "in_date": env.now[:WIRE_DATETIME_LENGTH]}])[0]
            quants.count(env, qid, float(qty))
            apply_inventory(env, [qid])
            return qid
        return int(self._direct(run))

    def add_warehouse(self, name: str, code: str) -> int:
        """Create a second (third, ...) warehouse with its locations and operation types."""
        return self.create("stock.warehouse", {"name": name, "code": code})  # type: ignore[attr-defined,no-any-return]

    def check_availability(self) -> None:
        """What Odoo's scheduler does: try to reserve every move waiting for stock."""
        moves = self.registry.models["stock.move"]

        def run(env: Env) -> None:
            waiting = [mid for mid, m in moves.records.items()
                       if m.get("state") in ("confirmed", "partially_available") and m.get("picking_id")]
            assign_moves(env, sorted(waiting))
            refresh_pickings(env, sorted({moves.records[m]["picking_id"] for m in waiting}))
        self._direct(run)

    # ------------------------------------------------------------------ sales
    def confirm(self, order_id: int) -> None:
        """Confirm a quotation (``action_confirm``)."""
        self._direct(lambda env: confirm_orders(env, [order_id]))

    def cancel(self, order_id: int) -> None:
        """Cancel an order as the cancellation wizard does."""
        self._direct(lambda env: cancel_orders(env, [order_id]))

    def deliver(self, order_id: int, *, force: bool = False) -> list[int]:
        """Validate the order's open deliveries; returns their ids.

        Reserves what is available first ("Check Availability"); what is not reserved goes to a
        backorder, as when a user answers "Create Backorder". ``force`` delivers the full demand
        (quants may go negative, as when a user types the quantities). Raises Odoo's UserError
        when nothing can be delivered.
        """
        return self._validate_open(order_id, "sale_id", force)

    def receive(self, purchase_id: int, *, force: bool = True) -> list[int]:
        """Validate a purchase order's open receipts (everything arrives); returns their ids."""
        return self._validate_open(purchase_id, "purchase_id", force)

    def _validate_open(self, rid: int, link: str, force: bool) -> list[int]:
        pickings = cast(StockPicking, self.registry.models["stock.picking"])
        moves = self.registry.models["stock.move"]

        def run(env: Env) -> list[int]:
            ids = [p for p in sorted(pickings._hash[link].get(rid, ()))
                   if pickings.records[p].get("state") not in ("done", "cancel")]
            if not ids:
                raise UserError("Nothing to validate: no open transfer.")
            pickings.action_assign(env, ids)
            if force:
                for pid in ids:
                    for mid in sorted(moves._hash["picking_id"].get(pid, ())):
                        move = moves.records[mid]
                        if move.get("state") not in ("done", "cancel") and \
                                (move.get("quantity") or 0.0) < (move.get("product_uom_qty") or 0.0) - EPSILON:
                            moves.write_records(env, [mid], {"quantity": move.get("product_uom_qty")})
            validate_pickings(env, ids, backorder=dict.fromkeys(ids, True))
            return ids
        return list(self._direct(run))

    # ------------------------------------------------------------------ invoicing
    def invoice(self, order_id: int, post: bool = True) -> int:
        """Invoice what the order has to invoice (one invoice), posted unless ``post=False``; its id."""
        def run(env: Env) -> int:
            (inv,) = create_invoices(env, [order_id], consolidated=False)
            if post:
                post_moves(env, [inv])
            return inv
        return int(self._direct(run))

    def post(self, invoice_id: int) -> None:
        """Post a draft invoice."""
        self._direct(lambda env: post_moves(env, [invoice_id]))

    def pay(self, invoice_id: int, amount: float | None = None, *, date: str | None = None) -> int:
        """Register a payment on a posted invoice (the full residual by default, partial when less)
        through the "Register Payment" wizard; returns the payment id."""
        register = self.registry.models["account.payment.register"]

        def run(env: Env) -> int:
            env.context.update(active_model="account.move", active_ids=[invoice_id])
            vals: dict[str, Any] = {}
            if amount is not None:
                vals["amount"] = float(amount)
            if date is not None:
                vals["payment_date"] = date
            wid = register.create_records(env, [vals])[0]
            return create_payments(env, register.records[wid])[0]
        return int(self._direct(run))

    def refund(self, invoice_id: int) -> int:
        """Reverse a posted invoice with a credit note (its payment state becomes ``reversed``)."""
        return int(self._direct(lambda env: reverse_invoice(env, invoice_id)))

    # ------------------------------------------------------------------ customers
    def set_credit_limit(self, partner_id: int, amount: float | None) -> None:
        """Set (or clear, with None) a partner's credit limit."""
        self.update("res.partner", partner_id, {"credit_limit": amount or 0.0})  # type: ignore[attr-defined]

    def set_opening_balance(self, partner_id: int, amount: float) -> None:
        """Set what a partner owed before the simulated invoices (added to ``credit``)."""
        self.update("res.partner", partner_id, {"credit": float(amount)})  # type: ignore[attr-defined]
