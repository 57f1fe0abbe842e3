"""The order-to-cash part of `concord demo`: products and stock to HubSpot, closed-won deals to
Odoo orders (a normal one, a backordered one with its purchase order, a credit hold), payments back."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from sandbox.hubspot import HubSpotSimulator
from sandbox.hubspot.deals import create_deal
from sandbox.odoo import OdooSimulator

# Added to the demo's config: every order-to-cash pipeline, as config.example.yaml has them.
O2C_SYNC: dict[str, Any] = {
    "product": {"direction": "erp_to_crm", "match_on": ["sku"]},
    "order": {"direction": "crm_to_erp", "stages": ["closedwon"], "confirm": True, "credit_check": True,
              "on_shortage": "purchase_request"},
    "stock_level": {"direction": "erp_to_crm"},
    "payment": {"direction": "erp_to_crm"},
}


def _sync(rt: Any, entities: list[str]) -> int:
    from sync.cli import run_sync
    code, _ = run_sync(rt, entities)
    return code


def _erp_id(rt: Any, entity: str, crm_id: str) -> str:
    link = rt.store.links_by_ids(entity, "crm", [crm_id]).get(crm_id)
    assert link is not None, f"{entity} {crm_id} is not linked"
    return link.erp_id


def run_order_to_cash(rt: Any, hub: HubSpotSimulator, odoo: OdooSimulator, customers: list[tuple[str, int]],
                      out: Console) -> int:
    """Run the flow on already-synced customers; returns 0 when every step shows what it should."""
    out.print("\n[bold]Order to cash[/]")
    odoo.seed_products(4, with_stock=False)
    for sku, qty in (("SKU-00001", 100), ("SKU-00002", 2), ("SKU-00003", 500), ("SKU-00004", 0)):
        odoo.set_stock(sku, qty)
    if code := _sync(rt, ["product", "stock_level"]):
        return code
    skus = {p["properties"]["hs_sku"]: p["id"] for p in hub.all("products") if p["properties"].get("hs_sku")}
    out.print(f"products and stock -> HubSpot: {len(skus)} products with SKU, price and on-hand quantity")

    (acme, _), (tight, tight_partner) = customers[10], customers[11]
    # The second customer owes 200 on an open invoice and may owe at most 500.
    odoo.set_credit_limit(tight_partner, 500.0)
    opening = odoo.create("sale.order", {"partner_id": tight_partner, "order_line": [
        [0, 0, {"product_id": odoo.product_id("SKU-00003"), "product_uom_qty": 10, "price_unit": 20.0,
                "tax_id": [[6, 0, []]]}]]})
    odoo.confirm(opening)
    open_invoice = odoo.invoice(opening)

    deals = {
        "normal order": create_deal(hub, {"dealname": "Normal order", "dealstage": "closedwon"}, company=acme,
                                    lines=[{"hs_product_id": skus["SKU-00001"], "quantity": "3", "price": "12.50"}]),
        "short of stock": create_deal(hub, {"dealname": "Short of stock", "dealstage": "closedwon"}, company=acme,
                                      lines=[{"hs_product_id": skus["SKU-00002"], "quantity": "5", "price": "20"}]),
        "over credit": create_deal(hub, {"dealname": "Over credit", "dealstage": "closedwon"}, company=tight,
                                   lines=[{"hs_product_id": skus["SKU-00003"], "quantity": "20", "price": "17.39"}]),
    }
    out.print("three deals closed-won in HubSpot: a normal order, one short of stock, one over the "
              "customer's credit limit (balance 200, limit 500, order 399.97)")
    if code := _sync(rt, ["customer", "order"]):
        return code
    out.print(_deal_table(rt, hub, odoo, deals, "after the order sync"))

    odoo.pay(open_invoice)
    out.print("the customer pays the open invoice of 200 in Odoo")
    if code := _sync(rt, ["payment", "order"]):
        return code
    normal_order = int(_erp_id(rt, "order", deals["normal order"].id))
    invoice = odoo.invoice(normal_order)
    odoo.pay(invoice)
    out.print("the normal order is invoiced and paid in Odoo")
    if code := _sync(rt, ["payment"]):
        return code
    out.print(_deal_table(rt, hub, odoo, deals, "after payments"))
    balance = hub.get("companies", acme)["properties"].get("erp_balance_due")
    out.print(f"company balance due in HubSpot: {balance}")

    odoo.set_stock("SKU-00001", 40)
    before = hub.write_count
    if code := _sync(rt, ["stock_level"]):
        return code
    on_hand = hub.get("products", skus["SKU-00001"])["properties"].get("concord_on_hand")
    changed_writes = hub.write_count - before
    before = hub.write_count
    if code := _sync(rt, ["stock_level"]):
        return code
    out.print(f"stock of SKU-00001 set to 40 in Odoo -> HubSpot on hand {on_hand} ({changed_writes} write call); "
              f"a second stock sync with nothing changed: {hub.write_count - before} write calls")

    expected = {"normal order": "paid", "short of stock": "backordered", "over credit": "confirmed"}
    statuses = {name: hub.get("deals", d.id)["properties"].get("concord_order_status") for name, d in deals.items()}
    purchase_lines = len(odoo.all("purchase.order.line"))
    ok = (all(statuses[k] in (v, "backordered") if k == "over credit" else statuses[k] == v
              for k, v in expected.items())
          and purchase_lines == 1 and Decimal(str(on_hand)) == 40 and hub.write_count == before)
    out.print("[bold green]order to cash: every step as expected[/]" if ok
              else f"[bold red]order to cash: unexpected outcome[/] {statuses}, purchase lines {purchase_lines}")
    return 0 if ok else 1


def _deal_table(rt: Any, hub: HubSpotSimulator, odoo: OdooSimulator, deals: dict[str, Any], title: str) -> Table:
    table = Table(title=title)
    for col in ("deal", "Odoo order", "Odoo state", "deal status", "paid", "due", "purchase lines"):
        table.add_column(col)
    for name, deal in deals.items():
        props = hub.get("deals", deal.id)["properties"]
        link = rt.store.links_by_ids("order", "crm", [deal.id]).get(deal.id)
        order = odoo.get("sale.order", int(link.erp_id)) if link else None
        pos = {po["id"] for po in odoo.all("purchase.order") if order is not None and po.get("origin") == order["name"]}
        po_lines = [p for p in odoo.all("purchase.order.line") if p.get("order_id") in pos]
        table.add_row(name, order["name"] if order else "-", order["state"] if order else "-",
                      props.get("concord_order_status") or "-", props.get("concord_amount_paid") or "-",
                      props.get("concord_amount_due") or "-", str(len(po_lines)))
    return table
