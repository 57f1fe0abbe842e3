"""The master data a fresh Odoo 18 database with sale_management, stock and account holds.

Ids follow the observed session where it shows them (warehouse 1 "My Company" with
``lot_stock_id`` 8 "WH/Stock"); the generic chart of accounts' default 15 % sales and purchase
taxes; journals INV, BILL, MISC, EXCH, BNK1, CSH1; currencies EUR and USD (company currency USD).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .orm import Registry

SYSTEM_UID = 1


@dataclass
class Company:
    """The company's settings the business models read (ids of its key records, and two switches).

    ``in_payment``: a fully paid invoice shows ``in_payment`` until bank reconciliation (Odoo
    Enterprise accounting) instead of ``paid`` (Community). ``lock_confirmed_sales``: the
    "Lock Confirmed Sales" setting (confirmed orders are locked).
    """

    name: str
    currency_id: int
    sale_tax_id: int
    purchase_tax_id: int
    sale_journal_id: int
    purchase_journal_id: int
    misc_journal_id: int
    bank_journal_id: int
    cash_journal_id: int
    physical_location_id: int
    supplier_location_id: int
    customer_location_id: int
    inventory_location_id: int
    warehouse_id: int
    in_payment: bool = False
    lock_confirmed_sales: bool = False


def seed_order_to_cash(registry: Registry, partner_id: int | None = None) -> Company:
    """Create the master data (in one system transaction) and attach the company to the registry."""
    m = registry.models
    xmlids: list[tuple[str, str, str, int]] = []
    with registry.transaction(SYSTEM_UID) as env:
        def make(model: str, vals: dict[str, Any], xmlid: str | None = None) -> int:
            rid = m[model].create_records(env, [vals])[0]
            if xmlid:
                module, name = xmlid.split(".")
                xmlids.append((module, name, model, rid))
            return rid

        make("res.currency", {"name": "EUR", "full_name": "Euro", "symbol": "€"}, "base.EUR")
        usd = make("res.currency", {"name": "USD", "full_name": "United States dollar", "symbol": "$",
                                    "position": "before"}, "base.USD")
        make("uom.uom", {"name": "Units"}, "uom.product_uom_unit")
        make("uom.uom", {"name": "Dozens", "factor": 1 / 12, "uom_type": "bigger"}, "uom.product_uom_dozen")
        make("uom.uom", {"name": "kg"}, "uom.product_uom_kgm")
        make("product.category", {"name": "All"}, "product.product_category_all")
        sale_tax = make("account.tax", {"name": "15%", "amount": 15.0, "type_tax_use": "sale",
                                        "description": "15%"}, "account.1_sale_tax_template")
        purchase_tax = make("account.tax", {"name": "15%", "amount": 15.0, "type_tax_use": "purchase",
                                            "description": "15%"}, "account.1_purchase_tax_template")
        journals = {code: make("account.journal", {"name": name, "code": code, "type": jtype, "sequence": seq,
                                                   "refund_sequence": jtype in ("sale", "purchase")})
                    for name, code, jtype, seq in (
                        ("Customer Invoices", "INV", "sale", 5), ("Vendor Bills", "BILL", "purchase", 6),
                        ("Miscellaneous Operations", "MISC", "general", 9), ("Exchange Difference", "EXCH", "general", 9),
                        ("Bank", "BNK1", "bank", 10), ("Cash", "CSH1", "cash", 10))}
        make("ir.sequence", {"name": "Sales Order", "code": "sale.order", "prefix": "S", "padding": 5},
             "sale.seq_sale_order")
        make("ir.sequence", {"name": "Purchase Order", "code": "purchase.order", "prefix": "P", "padding": 5},
             "purchase.seq_purchase_order")
        physical = make("stock.location", {"name": "Physical Locations", "usage": "view"},
                        "stock.stock_location_locations")
        partners = make("stock.location", {"name": "Partners", "usage": "view"},
                        "stock.stock_location_locations_partner")
        virtual = make("stock.location", {"name": "Virtual Locations", "usage": "view"},
                       "stock.stock_location_locations_virtual")
        suppliers = make("stock.location", {"name": "Vendors", "usage": "supplier", "location_id": partners},
                         "stock.stock_location_suppliers")
        customers = make("stock.location", {"name": "Customers", "usage": "customer", "location_id": partners},
                         "stock.stock_location_customers")
        inventory = make("stock.location", {"name": "Inventory adjustment", "usage": "inventory",
                                            "location_id": virtual}, "stock.stock_location_inventory")
        view = make("stock.location", {"name": "WH", "usage": "view", "location_id": physical},
                    "stock.stock_location_view")
        stock = make("stock.location", {"name": "Stock", "usage": "internal", "location_id": view},
                     "stock.stock_location_stock")
        registry.company = Company(
            name="My Company", currency_id=usd, sale_tax_id=sale_tax, purchase_tax_id=purchase_tax,
            sale_journal_id=journals["INV"], purchase_journal_id=journals["BILL"], misc_journal_id=journals["MISC"],
            bank_journal_id=journals["BNK1"], cash_journal_id=journals["CSH1"], physical_location_id=physical,
            supplier_location_id=suppliers, customer_location_id=customers, inventory_location_id=inventory,
            warehouse_id=0)
        warehouse = make("stock.warehouse", {"name": "My Company", "code": "WH", "view_location_id": view,
                                             "lot_stock_id": stock, "partner_id": partner_id}, "stock.warehouse0")
        registry.company.warehouse_id = warehouse
        wh = m["stock.warehouse"].records[warehouse]
        xmlids.append(("stock", "picking_type_in", "stock.picking.type", wh["in_type_id"]))
        xmlids.append(("stock", "picking_type_out", "stock.picking.type", wh["out_type_id"]))
        m["ir.model.data"].create_records(env, [
            {"module": module, "name": name, "model": model, "res_id": rid, "noupdate": True}
            for module, name, model, rid in xmlids])
    return registry.company  # type: ignore[no-any-return]
