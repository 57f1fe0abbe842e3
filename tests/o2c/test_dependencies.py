"""Orders whose references are not there yet, through the `concord` CLI on both state stores:
a deal whose company was never synced (synced first, then the order); a line whose SKU is not in
Odoo yet (a dead letter naming deal, line and field, no order at all, then an automatic replay once
the product appears); a line whose HubSpot product has no SKU (a clear dead letter).
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.fixtures import write_config
from sandbox.hubspot import HubSpotSimulator
from sandbox.hubspot.deals import create_deal
from sandbox.odoo import OdooSimulator
from tests.o2c.test_flow import World, product_ids

SYNC = {
    "product": {"direction": "erp_to_crm", "match_on": ["sku"]},
    "order": {"direction": "crm_to_erp", "stages": ["closedwon"], "confirm": True, "credit_check": True,
              "on_shortage": "purchase_request"},
}
# Dead letters come due again after a second, so the replay needs no long wait.
DEAD_LETTERS = {"dead_letters": {"backoff_initial": "1s", "backoff_max": "1s"}}
BACKOFF_SECONDS = 1.2


@pytest.fixture()
def world(tmp_path: Path, store_url: str) -> Iterator[World]:
    with HubSpotSimulator() as hub, OdooSimulator() as odoo:
        config = write_config(tmp_path, hub, odoo, store_url, extra={"sync": SYNC, **DEAD_LETTERS})
        w = World(hub, odoo, config)
        w.concord("setup")
        yield w


def dead_letters(w: World, *, include_resolved: bool = False) -> list[dict[str, Any]]:
    """`concord dlq list --json` (order pipeline)."""
    args = ["dlq", "list", "--json", "--pipeline", "order", *(["--all"] if include_resolved else [])]
    return json.loads(w.concord(*args).stdout)  # type: ignore[no-any-return]


def many2one(value: Any) -> Any:
    """The id of a many2one value as the simulator stores it (an id, or [id, name])."""
    return value[0] if isinstance(value, list) else value


def order_lines(w: World, order_id: int) -> list[dict[str, Any]]:
    return [ln for ln in w.odoo.all("sale.order.line") if many2one(ln["order_id"]) == order_id]


def partner_for(w: World, company_id: str) -> list[dict[str, Any]]:
    return [p for p in w.odoo.all("res.partner") if p.get("x_concord_crm_id") == company_id]


def test_order_before_its_customer_syncs_the_customer_first(world: World) -> None:
    w = world
    w.odoo.seed_products(2)
    w.concord("sync", "product")
    skus = product_ids(w)
    # The company exists only in HubSpot: the customer pipeline never ran.
    newco = w.hub.create("companies", {"name": "Newco GmbH", "company_email": "einkauf@newco.example"})
    deal = create_deal(w.hub, {"dealname": "First order", "dealstage": "closedwon"}, company=newco,
                       lines=[{"hs_product_id": skus["SKU-00001"], "quantity": "1", "price": "10"}])
    w.concord("sync", "order")

    [partner] = partner_for(w, newco)
    assert partner["name"] == "Newco GmbH"
    [order] = w.orders_for(deal.id)
    assert many2one(order["partner_id"]) == partner["id"]
    assert dead_letters(w) == []
    # The order run created the customer once; the customer pipeline adopts the link, no second partner.
    w.concord("sync", "customer")
    assert len(partner_for(w, newco)) == 1


def test_order_whose_product_is_not_in_odoo_yet_waits_then_replays(world: World) -> None:
    w = world
    w.odoo.seed_products(1)
    w.concord("sync", "product")
    skus = product_ids(w)
    acme = w.hub.create("companies", {"name": "Acme Ltd", "company_email": "buyer@acme.example"})
    # A product typed into HubSpot before the ERP has it (the ERP is the master of SKUs).
    late = w.hub.create("products", {"name": "Late widget", "hs_sku": "SKU-LATE", "price": "7"})
    deal = create_deal(w.hub, {"dealname": "Early bird", "dealstage": "closedwon"}, company=acme,
                       lines=[{"hs_product_id": skus["SKU-00001"], "quantity": "2", "price": "10"},
                              {"hs_product_id": late, "quantity": "3", "price": "7"}])
    late_line = deal.line_ids[1]

    w.concord("sync", "order", expect=1)
    [dl] = dead_letters(w)
    assert dl["record_id"] == deal.id
    assert deal.id in dl["error_message"]
    assert dl["field"] == f"lines[{late_line}].sku", dl  # the line by its HubSpot line item id
    assert "SKU-LATE" in dl["error_message"], dl["error_message"]
    assert w.orders_for(deal.id) == [], "an order was written half-resolved"
    assert w.odoo.all("sale.order.line") == []

    # The product appears in Odoo; no one touches the deal: the dead letter replays on its own.
    w.odoo.create("product.product", {"name": "Late widget", "default_code": "SKU-LATE", "list_price": 7.0,
                                      "type": "consu", "is_storable": True})
    time.sleep(BACKOFF_SECONDS)
    w.concord("sync", "product", "order")
    [order] = w.orders_for(deal.id)
    lines = order_lines(w, order["id"])
    assert sorted(ln.get("x_concord_line_ref") for ln in lines) == sorted(deal.line_ids)
    assert dead_letters(w) == []
    assert [d["resolution"] for d in dead_letters(w, include_resolved=True)] == ["synced"]
    # Replayed once: a further run changes nothing.
    writes = w.odoo.write_count
    w.concord("sync", "order")
    assert len(w.orders_for(deal.id)) == 1
    assert w.odoo.write_count == writes


def test_line_whose_product_has_no_sku_is_a_clear_dead_letter(world: World) -> None:
    w = world
    w.odoo.seed_products(1)
    w.concord("sync", "product")
    skus = product_ids(w)
    acme = w.hub.create("companies", {"name": "Acme Ltd", "company_email": "buyer@acme.example"})
    bare = w.hub.create("products", {"name": "Consulting hour", "price": "90"})  # no hs_sku
    deal = create_deal(w.hub, {"dealname": "Mixed", "dealstage": "closedwon"}, company=acme,
                       lines=[{"hs_product_id": skus["SKU-00001"], "quantity": "1", "price": "10"},
                              {"hs_product_id": bare, "quantity": "2", "price": "90"}])
    bare_line = deal.line_ids[1]

    w.concord("sync", "order", expect=1)
    [dl] = dead_letters(w)
    assert dl["record_id"] == deal.id
    message = dl["error_message"]
    assert deal.id in message, message
    assert dl["field"] == f"lines[{bare_line}].sku", dl
    assert "no SKU" in message, message
    assert w.orders_for(deal.id) == []
    # Still refused on the next pass (nothing changed), and still no order.
    time.sleep(BACKOFF_SECONDS)
    w.concord("sync", "order", expect=1)
    assert w.orders_for(deal.id) == []
    assert len(dead_letters(w)) == 1


def test_dead_letter_names_the_crm_line_item(world: World) -> None:
    w = world
    acme = w.hub.create("companies", {"name": "Acme Ltd", "company_email": "buyer@acme.example"})
    bare = w.hub.create("products", {"name": "Consulting hour", "price": "90"})  # no hs_sku
    deal = create_deal(w.hub, {"dealname": "Bare", "dealstage": "closedwon"}, company=acme,
                       lines=[{"hs_product_id": bare, "quantity": "2", "price": "90"}])
    w.concord("sync", "order", expect=1)
    [dl] = dead_letters(w)
    assert deal.line_ids[0] in dl["error_message"], dl["error_message"]


def test_default_vendor_is_not_pushed_to_the_crm_as_a_customer(world: World) -> None:
    w = world
    w.odoo.seed_products(1, with_stock=False)
    w.concord("sync", "product")
    skus = product_ids(w)
    acme = w.hub.create("companies", {"name": "Acme Ltd", "company_email": "buyer@acme.example"})
    create_deal(w.hub, {"dealname": "Short", "dealstage": "closedwon"}, company=acme,
                lines=[{"hs_product_id": skus["SKU-00001"], "quantity": "2", "price": "10"}])
    w.concord("sync", "customer", "order")
    assert w.odoo.all("purchase.order.line"), "no purchase order, so no default vendor"
    w.concord("sync", "customer")
    names = sorted(c["properties"].get("name") for c in w.hub.all("companies"))
    assert names == ["Acme Ltd"], names
