"""Order to cash end to end through the `concord` CLI, against both simulators:
deal closed-won -> Odoo order confirmed -> deal shows confirmed and the ERP number; shortage ->
backordered + exactly one purchase order; credit hold until a payment; invoice and payment ->
deal paid and company balance; stock changes -> product availability, and no write when nothing changed.
"""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sandbox.fixtures import write_config
from sandbox.hubspot import HubSpotSimulator
from sandbox.hubspot.deals import create_deal
from sandbox.odoo import OdooSimulator

SYNC = {
    "product": {"direction": "erp_to_crm", "match_on": ["sku"]},
    "order": {"direction": "crm_to_erp", "stages": ["closedwon"], "confirm": True, "credit_check": True,
              "on_shortage": "purchase_request"},
    "stock_level": {"direction": "erp_to_crm"},
    "payment": {"direction": "erp_to_crm"},
}


@dataclass
class World:
    hub: HubSpotSimulator
    odoo: OdooSimulator
    config: Path

    def concord(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "sync", *args, "-c", str(self.config)],
                              capture_output=True, text=True, timeout=180)
        if expect is not None:
            assert proc.returncode == expect, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def deal(self, deal_id: str) -> dict[str, Any]:
        rec = self.hub.get("deals", deal_id)
        assert rec is not None
        return rec["properties"]

    def orders_for(self, deal_id: str) -> list[dict[str, Any]]:
        return [o for o in self.odoo.all("sale.order") if o.get("client_order_ref") == deal_id]

    def purchase_lines(self) -> list[dict[str, Any]]:
        return self.odoo.all("purchase.order.line")


@pytest.fixture()
def world(tmp_path: Path, store_url: str) -> Iterator[World]:
    with HubSpotSimulator() as hub, OdooSimulator() as odoo:
        config = write_config(tmp_path, hub, odoo, store_url, extra={"sync": SYNC})
        w = World(hub, odoo, config)
        w.concord("setup")
        yield w


def product_ids(w: World) -> dict[str, str]:
    """HubSpot product id by SKU (after the product sync)."""
    return {p["properties"]["hs_sku"]: p["id"] for p in w.hub.all("products") if p["properties"].get("hs_sku")}


def test_order_to_cash(world: World) -> None:
    w = world
    w.odoo.seed_products(3, with_stock=False)
    w.odoo.set_stock("SKU-00001", 100)
    w.odoo.set_stock("SKU-00002", 2)
    w.odoo.set_stock("SKU-00003", 50)
    acme = w.hub.create("companies", {"name": "Acme Ltd", "company_email": "buyer@acme.example"})
    tight = w.hub.create("companies", {"name": "Tight Credit Ltd", "company_email": "ap@tight.example"})
    w.concord("sync", "customer", "product", "stock_level")
    skus = product_ids(w)
    assert set(skus) == {"SKU-00001", "SKU-00002", "SKU-00003"}
    assert Decimal(w.hub.get("products", skus["SKU-00001"])["properties"]["concord_on_hand"]) == 100

    # 1. A normal order: confirmed in Odoo, the deal shows it with the ERP number.
    normal = create_deal(w.hub, {"dealname": "Normal", "dealstage": "closedwon"}, company=acme,
                         lines=[{"hs_product_id": skus["SKU-00001"], "quantity": "3", "price": "12.50"}])
    # A deal in another stage is not an order.
    early = create_deal(w.hub, {"dealname": "Not yet", "dealstage": "qualifiedtobuy"}, company=acme,
                        lines=[{"hs_product_id": skus["SKU-00003"], "quantity": "1", "price": "5"}])
    w.concord("sync", "order")
    [order] = w.orders_for(normal.id)
    assert order["state"] == "sale"
    assert w.orders_for(early.id) == []
    props = w.deal(normal.id)
    assert props["concord_order_status"] == "confirmed"
    assert props["concord_erp_order_number"] == order["name"]

    # 2. A shortage: backordered, and exactly one purchase order line for the shortfall.
    short = create_deal(w.hub, {"dealname": "Short", "dealstage": "closedwon"}, company=acme,
                        lines=[{"hs_product_id": skus["SKU-00002"], "quantity": "5", "price": "20"}])
    w.concord("sync", "order")
    assert w.deal(short.id)["concord_order_status"] == "backordered"
    assert len(w.purchase_lines()) == 1
    assert Decimal(str(w.purchase_lines()[0]["product_qty"])) == 3
    w.concord("sync", "order")
    assert len(w.purchase_lines()) == 1  # a re-run never makes a second one

    # 3. Credit hold: an open invoice of 200 and a limit of 500; an order of 400 waits in draft.
    tight_partner = int(next(link for link in _links(w, "customer") if link[0] == tight)[1])
    w.odoo.set_credit_limit(tight_partner, 500.0)
    opening = w.odoo.create("sale.order", {"partner_id": tight_partner, "order_line": [
        [0, 0, {"product_id": w.odoo.product_id("SKU-00003"), "product_uom_qty": 10, "price_unit": 20.0,
                "tax_id": [[6, 0, []]]}]]})
    w.odoo.confirm(opening)
    invoice = w.odoo.invoice(opening)
    held = create_deal(w.hub, {"dealname": "Held", "dealstage": "closedwon"}, company=tight,
                       lines=[{"hs_product_id": skus["SKU-00003"], "quantity": "20", "price": "17.39"}])
    w.concord("sync", "customer", "order")
    [held_order] = w.orders_for(held.id)
    assert held_order["state"] == "draft"
    assert w.deal(held.id)["concord_order_status"] == "credit_hold"
    w.odoo.pay(invoice)
    w.concord("sync", "payment", "order")
    [held_order] = w.orders_for(held.id)
    assert held_order["state"] == "sale"
    assert w.deal(held.id)["concord_order_status"] in ("confirmed", "backordered")

    # 4. Invoice and payment of the normal order: the deal shows it paid; the company its balance.
    inv = w.odoo.invoice(int(order["id"]))
    w.concord("sync", "payment")
    props = w.deal(normal.id)
    assert props["concord_payment_state"] == "unpaid"
    assert Decimal(props["concord_amount_due"]) == Decimal("43.13")
    assert Decimal(w.hub.get("companies", acme)["properties"]["erp_balance_due"]) == Decimal("43.13")
    w.odoo.pay(inv)
    w.concord("sync", "payment")
    props = w.deal(normal.id)
    assert props["concord_payment_state"] == "paid"
    assert Decimal(props["concord_amount_paid"]) == Decimal("43.13")
    assert props["concord_order_status"] == "paid"
    assert Decimal(w.hub.get("companies", acme)["properties"]["erp_balance_due"]) == 0

    # 5. Stock: a change reaches the product; nothing changed -> no write at all.
    w.odoo.set_stock("SKU-00001", 40)
    w.concord("sync", "stock_level")
    assert Decimal(w.hub.get("products", skus["SKU-00001"])["properties"]["concord_on_hand"]) == 40
    writes = w.hub.write_count
    w.concord("sync", "stock_level")
    assert w.hub.write_count == writes


def _links(w: World, entity: str) -> list[tuple[str, str]]:
    from sync.store import Store
    from sync.config import load_config
    store = Store.open(load_config(w.config).state.url)
    try:
        return [(link.crm_id, link.erp_id) for link in store.iter_links(entity)]
    finally:
        store.close()
