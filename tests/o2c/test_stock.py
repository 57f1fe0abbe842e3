"""Stock levels ERP -> CRM through the `concord` CLI on both state stores: only the products whose
stock changed are written, in full batches, and a warehouse-scoped mapping reads one warehouse.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sandbox.fixtures import write_config
from sandbox.hubspot import HubSpotSimulator
from sandbox.odoo import OdooSimulator
from tests.o2c.test_flow import World, product_ids

SYNC = {"product": {"direction": "erp_to_crm", "match_on": ["sku"]}, "stock_level": {"direction": "erp_to_crm"}}
MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
PRODUCTS = 60
# Small Odoo pages: the products span several pages, as 50,000 SKUs do with the default page size.
ERP = {"page_size": 20}
CRM = {"batch_size": 10}


@pytest.fixture()
def hub() -> Iterator[HubSpotSimulator]:
    with HubSpotSimulator(log_bodies=True) as sim:
        yield sim


@pytest.fixture()
def odoo() -> Iterator[OdooSimulator]:
    with OdooSimulator() as sim:
        yield sim


def make_world(tmp_path: Path, hub: HubSpotSimulator, odoo: OdooSimulator, store_url: str,
               erp: dict[str, Any] | None = None) -> World:
    config = write_config(tmp_path, hub, odoo, store_url, crm=CRM, erp={**ERP, **(erp or {})}, extra={"sync": SYNC})
    w = World(hub, odoo, config)
    w.concord("setup")
    return w


def stock_writes(hub: HubSpotSimulator, mark: int) -> list[list[str]]:
    """Product ids of each HubSpot product write request after the ``mark``-th log entry."""
    out = []
    for entry in list(hub.request_log)[mark:]:
        if entry.is_write and "/objects/products/" in entry.path:
            out.append([str(i.get("id")) for i in json.loads(entry.body).get("inputs", [])])
    return out


def on_hand(w: World, product_id: str) -> Decimal:
    return Decimal(w.hub.get("products", product_id)["properties"]["concord_on_hand"])


def test_only_changed_stock_is_written(tmp_path: Path, hub: HubSpotSimulator, odoo: OdooSimulator,
                                       store_url: str) -> None:
    w = make_world(tmp_path, hub, odoo, store_url)
    w.odoo.seed_products(PRODUCTS, with_stock=False)
    for i in range(1, PRODUCTS + 1):
        w.odoo.set_stock(f"SKU-{i:05d}", 10 + i)
    w.concord("sync", "product", "stock_level")
    skus = product_ids(w)
    assert all(on_hand(w, skus[f"SKU-{i:05d}"]) == 10 + i for i in range(1, PRODUCTS + 1))

    changed = {"SKU-00003": 0, "SKU-00031": 500, "SKU-00058": 1}
    for sku, qty in changed.items():
        w.odoo.set_stock(sku, qty)
    mark = len(w.hub.request_log)
    w.concord("sync", "stock_level")
    written = [pid for batch in stock_writes(w.hub, mark) for pid in batch]
    assert sorted(written) == sorted(skus[s] for s in changed), "a product whose stock did not change was written"
    for sku, qty in changed.items():
        assert on_hand(w, skus[sku]) == qty
        assert Decimal(w.hub.get("products", skus[sku])["properties"]["concord_available"]) == qty

    mark = len(w.hub.request_log)
    w.concord("sync", "stock_level")
    assert stock_writes(w.hub, mark) == [], "nothing changed, yet stock was written"


def test_changed_stock_is_written_in_full_batches(tmp_path: Path, hub: HubSpotSimulator, odoo: OdooSimulator,
                                                  store_url: str) -> None:
    w = make_world(tmp_path, hub, odoo, store_url)
    w.odoo.seed_products(PRODUCTS)
    w.concord("sync", "product", "stock_level")
    changed = [f"SKU-{i:05d}" for i in (2, 7, 23, 29, 41, 44, 55)]  # on each of the three pages of 20
    for n, sku in enumerate(changed):
        w.odoo.set_stock(sku, 1000 + n)
    mark = len(w.hub.request_log)
    w.concord("sync", "stock_level")
    writes = stock_writes(w.hub, mark)
    assert sum(len(b) for b in writes) == len(changed)
    assert len(writes) == math.ceil(len(changed) / CRM["batch_size"]), writes


def test_stock_of_one_warehouse(tmp_path: Path, hub: HubSpotSimulator, odoo: OdooSimulator, store_url: str) -> None:
    """A mapping with ``options.warehouse`` reads that warehouse's stock only (Odoo's warehouse context)."""
    mapping = (MAPPINGS / "odoo.yaml").read_text()
    scoped = mapping.replace("      full_scan: true\n", "      full_scan: true\n      warehouse: WH2\n", 1)
    assert scoped != mapping, "the shipped mapping changed: update this test"
    (tmp_path / "odoo.yaml").write_text(scoped)
    w = make_world(tmp_path, hub, odoo, store_url, erp={"mapping": str(tmp_path / "odoo.yaml")})
    w.odoo.add_warehouse("Second warehouse", "WH2")
    w.odoo.seed_products(2, with_stock=False)
    w.odoo.set_stock("SKU-00001", 100)  # main warehouse
    w.odoo.set_stock("SKU-00001", 7, warehouse="WH2")
    w.odoo.set_stock("SKU-00002", 40)
    w.concord("sync", "product", "stock_level")
    skus = product_ids(w)
    assert on_hand(w, skus["SKU-00001"]) == 7
    assert on_hand(w, skus["SKU-00002"]) == 0

    w.odoo.set_stock("SKU-00002", 3, warehouse="WH2")
    w.odoo.set_stock("SKU-00001", 90)  # main warehouse only: not this mapping's concern
    mark = len(w.hub.request_log)
    w.concord("sync", "stock_level")
    assert stock_writes(w.hub, mark) == [[skus["SKU-00002"]]]
    assert on_hand(w, skus["SKU-00002"]) == 3
    assert on_hand(w, skus["SKU-00001"]) == 7
