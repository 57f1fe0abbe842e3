"""Deals edited after they became orders, through the `concord` CLI on both state stores.

A draft order (``confirm: false``) follows the deal line by line: a changed quantity, an added line
and a removed line end as exactly the deal's lines in Odoo, none duplicated or dropped, the
untouched line kept as is. A confirmed order is locked: the edit is not applied silently but
becomes a dead letter that says so, and the Odoo order stays as it was.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sandbox.fixtures import write_config
from sandbox.hubspot import HubSpotSimulator
from sandbox.hubspot.deals import DEAL_TO_LINE_ITEM, create_deal
from sandbox.odoo import OdooSimulator
from tests.o2c.test_dependencies import dead_letters, order_lines
from tests.o2c.test_flow import World, product_ids


def order_sync(*, confirm: bool) -> dict[str, Any]:
    return {"product": {"direction": "erp_to_crm", "match_on": ["sku"]},
            "order": {"direction": "crm_to_erp", "stages": ["closedwon"], "confirm": confirm}}


@pytest.fixture()
def make_world(tmp_path: Path, store_url: str) -> Iterator[Callable[[bool], World]]:
    with HubSpotSimulator() as hub, OdooSimulator() as odoo:
        def make(confirm: bool) -> World:
            config = write_config(tmp_path, hub, odoo, store_url, extra={"sync": order_sync(confirm=confirm)})
            w = World(hub, odoo, config)
            w.concord("setup")
            w.odoo.seed_products(4, with_stock=False)
            for sku in ("SKU-00001", "SKU-00002", "SKU-00003", "SKU-00004"):
                w.odoo.set_stock(sku, 100)
            w.concord("sync", "product")
            return w
        yield make


def lines_by_ref(w: World, order_id: int) -> dict[str, tuple[str, Decimal]]:
    """The Odoo order's lines: CRM line id -> (SKU, quantity)."""
    codes = {p["id"]: p["default_code"] for p in w.odoo.all("product.product")}
    out: dict[str, tuple[str, Decimal]] = {}
    for ln in order_lines(w, order_id):
        ref = ln.get("x_concord_line_ref")
        assert ref and ref not in out, f"line without a CRM id, or a duplicated one: {ln}"
        pid = ln["product_id"][0] if isinstance(ln["product_id"], list) else ln["product_id"]
        out[ref] = (codes[pid], Decimal(str(ln["product_uom_qty"])))
    return out


def touch(w: World, deal_id: str, amount: str) -> None:
    """What HubSpot does when line items change: it recalculates the deal's amount (and so the deal
    is modified); the simulator leaves that to the caller."""
    w.hub.update("deals", deal_id, {"amount": amount})


def test_draft_order_follows_the_deal_line_by_line(make_world: Callable[[bool], World]) -> None:
    w = make_world(False)
    skus = product_ids(w)
    acme = w.hub.create("companies", {"name": "Acme Ltd", "company_email": "buyer@acme.example"})
    deal = create_deal(w.hub, {"dealname": "Draft", "dealstage": "closedwon"}, company=acme,
                       lines=[{"hs_product_id": skus["SKU-00001"], "quantity": "1", "price": "10"},
                              {"hs_product_id": skus["SKU-00002"], "quantity": "2", "price": "10"},
                              {"hs_product_id": skus["SKU-00003"], "quantity": "3", "price": "10"}])
    kept, changed, removed = deal.line_ids
    w.concord("sync", "customer", "order")
    [order] = w.orders_for(deal.id)
    assert order["state"] == "draft"
    before = {ln["x_concord_line_ref"]: ln["id"] for ln in order_lines(w, order["id"])}
    assert lines_by_ref(w, order["id"]) == {kept: ("SKU-00001", 1), changed: ("SKU-00002", 2),
                                            removed: ("SKU-00003", 3)}

    # In HubSpot: change a quantity, add a line, remove a line; the deal's amount is recalculated.
    w.hub.update("line_items", changed, {"quantity": "5"})
    added = w.hub.create("line_items", {"hs_product_id": skus["SKU-00004"], "quantity": "4", "price": "10"})
    w.hub.associate("deals", deal.id, "line_items", added, DEAL_TO_LINE_ITEM)
    w.hub.archive("line_items", removed)
    touch(w, deal.id, "100")
    w.concord("sync", "order")

    [order] = w.orders_for(deal.id)
    assert order["state"] == "draft"
    assert lines_by_ref(w, order["id"]) == {kept: ("SKU-00001", 1), changed: ("SKU-00002", 5),
                                            added: ("SKU-00004", 4)}
    after = {ln["x_concord_line_ref"]: ln["id"] for ln in order_lines(w, order["id"])}
    # Updated in place, not replaced: the untouched and the changed line keep their Odoo ids.
    assert after[kept] == before[kept] and after[changed] == before[changed]
    # Nothing left to do: a further pass writes nothing to Odoo.
    writes = w.odoo.write_count
    w.concord("sync", "order")
    assert w.odoo.write_count == writes


def test_edit_after_confirmation_is_refused_with_a_locked_dead_letter(make_world: Callable[[bool], World]) -> None:
    w = make_world(True)
    skus = product_ids(w)
    acme = w.hub.create("companies", {"name": "Acme Ltd", "company_email": "buyer@acme.example"})
    deal = create_deal(w.hub, {"dealname": "Confirmed", "dealstage": "closedwon"}, company=acme,
                       lines=[{"hs_product_id": skus["SKU-00001"], "quantity": "2", "price": "10"}])
    w.concord("sync", "customer", "order")
    [order] = w.orders_for(deal.id)
    assert order["state"] == "sale"
    lines_before = lines_by_ref(w, order["id"])

    w.hub.update("line_items", deal.line_ids[0], {"quantity": "9"})
    touch(w, deal.id, "90")
    w.concord("sync", "order", expect=1)

    [dl] = dead_letters(w)
    assert dl["record_id"] == deal.id
    assert "locked" in dl["error_message"] and order["name"] in dl["error_message"], dl["error_message"]
    [order_after] = w.orders_for(deal.id)
    assert order_after["state"] == "sale"
    assert lines_by_ref(w, order["id"]) == lines_before
    assert Decimal(str(order_after["amount_total"])) == Decimal(str(order["amount_total"]))
    # The deal still shows the ERP's truth.
    assert w.deal(deal.id)["concord_order_status"] in ("confirmed", "backordered")
