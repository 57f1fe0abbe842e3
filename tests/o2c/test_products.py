"""Products flow from Odoo to HubSpot incrementally, also when a user edits the product form: that
form edits the product.template, which moves the template's write_date but not the variant's."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.fixtures import write_config
from sandbox.hubspot import HubSpotSimulator
from sandbox.odoo import OdooSimulator
from tests.o2c.test_flow import World

SYNC = {"product": {"direction": "erp_to_crm", "match_on": ["sku"]}}


@pytest.fixture()
def world(tmp_path: Path, store_url: str) -> Iterator[World]:
    with HubSpotSimulator() as hub, OdooSimulator() as odoo:
        w = World(hub, odoo, write_config(tmp_path, hub, odoo, store_url, extra={"sync": SYNC}))
        w.concord("setup")
        yield w


def hub_products(w: World) -> dict[str, dict[str, str]]:
    return {p["properties"]["hs_sku"]: p["properties"] for p in w.hub.all("products")}


def test_template_and_variant_edits_reach_hubspot_once(world: World) -> None:
    w = world
    w.odoo.seed_products(3, with_stock=False)
    w.concord("sync", "product")
    assert set(hub_products(w)) == {"SKU-00001", "SKU-00002", "SKU-00003"}
    variants = {p["default_code"]: p for p in w.odoo.all("product.product")}
    template_id = variants["SKU-00002"]["product_tmpl_id"]
    before = variants["SKU-00002"]["write_date"]

    # Move the cursor well past the seeded products' write_date (beyond the overlap window), so
    # that only a change feed can find the template edit below.
    w.odoo.clock.advance(600)
    w.odoo.update("product.product", variants["SKU-00001"]["id"], {"name": "Cursor mover"})
    w.concord("sync", "product")
    assert hub_products(w)["SKU-00001"]["name"] == "Cursor mover"
    w.odoo.clock.advance(600)
    w.odoo.update("product.template", template_id, {"list_price": 42.5, "name": "Renamed on the form"})
    assert {p["id"]: p for p in w.odoo.all("product.product")}[variants["SKU-00002"]["id"]]["write_date"] == before
    w.odoo.clock.advance(5)
    w.odoo.update("product.product", variants["SKU-00003"]["id"], {"default_code": "SKU-00003-B"})
    writes = w.hub.write_count
    w.concord("sync", "product")
    products = hub_products(w)
    assert (products["SKU-00002"]["price"], products["SKU-00002"]["name"]) == ("42.5", "Renamed on the form")
    assert "SKU-00003-B" in products and "SKU-00003" not in products
    assert w.hub.write_count > writes

    writes = w.hub.write_count
    w.concord("sync", "product")
    assert w.hub.write_count == writes, "a quiet pass wrote to HubSpot"
