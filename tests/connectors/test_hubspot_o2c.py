"""Order-to-cash on HubSpot: deals with their company and line items (virtual paths), stage
filters, deal and product property writes, product upserts, setup and webhooks, against the
simulator over real HTTP with every exchange checked against HubSpot's OpenAPI files."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.base import EntitySpec, Watermark, WebhookRequest, WriteOp, id_sort_key
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from sandbox.core import Request, Response
from sandbox.hubspot import HubSpotSimulator
from sandbox.hubspot.deals import create_deal
from tests.support.openapi import ValidatingObserver

ITEM_PATHS = ("hs_object_id", "hs_sku", "quantity", "price", "hs_discount_percentage")
DEAL_CUSTOM = {
    "concord_order_status": {"type": "string", "label": "Order status (ERP)", "group": "dealinformation"},
    "concord_erp_order_number": {"type": "string", "label": "ERP order number", "group": "dealinformation"},
    "concord_amount_paid": {"type": "number", "label": "Amount paid (ERP)", "group": "dealinformation"},
    "concord_amount_due": {"type": "number", "label": "Amount due (ERP)", "group": "dealinformation"},
    "concord_payment_state": {"type": "string", "label": "Payment state (ERP)", "group": "dealinformation"},
    "concord_invoice_number": {"type": "string", "label": "Invoice number (ERP)", "group": "dealinformation"},
}
VIRTUAL = ("associations.companies", "line_items")


def order_spec(stages: list[str] | None = None) -> EntitySpec:
    """The EntitySpec the engine compiles from the order mapping (ids, paths, options)."""
    options: dict[str, Any] = {"stage_property": "dealstage", "custom_fields": DEAL_CUSTOM,
                               "item_fields": {"line_items": ITEM_PATHS}}
    if stages is not None:
        options["filters"] = {"dealstage": stages}
    return EntitySpec(entity="order", object="deals", id_field="hs_object_id", updated_field="hs_lastmodifieddate",
                      fields=("hs_object_id", "hs_lastmodifieddate", "associations.companies", "closedate",
                              "deal_currency_code", "line_items", "concord_order_status",
                              "concord_erp_order_number"), options=options)


PAYMENT = EntitySpec(entity="payment", object="deals", id_field="hs_object_id",
                     updated_field="hs_lastmodifieddate",
                     fields=("hs_object_id", "hs_lastmodifieddate", "concord_amount_paid", "concord_amount_due",
                             "concord_payment_state", "concord_invoice_number"),
                     options={"custom_fields": DEAL_CUSTOM})
PRODUCT = EntitySpec(entity="product", object="products", id_field="hs_object_id",
                     updated_field="hs_lastmodifieddate", fields=("hs_sku", "name", "description", "price"),
                     key_field="concord_erp_id",
                     options={"custom_fields": {"concord_erp_id": {"type": "string", "unique": True,
                                                                   "group": "productinformation"}}})
STOCK = EntitySpec(entity="stock_level", object="products", id_field="hs_object_id",
                   updated_field="hs_lastmodifieddate",
                   fields=("hs_object_id", "hs_lastmodifieddate", "concord_erp_id", "hs_sku", "concord_on_hand",
                           "concord_available", "concord_reserved", "concord_incoming"),
                   key_field="concord_erp_id",
                   options={"custom_fields": {name: {"type": "number", "group": "productinformation"}
                                              for name in ("concord_on_hand", "concord_available",
                                                           "concord_reserved", "concord_incoming")}})


class Recorder:
    """Simulator observer keeping (method, path, JSON body) of every request."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, Any]] = []

    def __call__(self, request: Request, response: Response) -> None:
        body = json.loads(request.body) if request.body else None
        self.seen.append((request.method, request.path, body))

    def bodies(self, method: str, suffix: str) -> list[Any]:
        return [b for m, p, b in self.seen if m == method and p.endswith(suffix)]


@pytest.fixture
def sim() -> Iterator[HubSpotSimulator]:
    s = HubSpotSimulator(burst_limit=None, search_rate=None).start()
    observer = ValidatingObserver()
    s.observers.append(observer)
    try:
        yield s
        observer.assert_clean()
    finally:
        s.stop()


@pytest.fixture
def recorder(sim: HubSpotSimulator) -> Recorder:
    rec = Recorder()
    sim.observers.append(rec)
    return rec


def connector_for(sim: HubSpotSimulator, **extra: object) -> HubSpotConnector:
    settings = {"connector": "hubspot", "token": sim.token, "client_secret": sim.client_secret,
                "base_url": sim.base_url, "rate_limit": 10_000, "burst": 10_000, "search_rate": 10_000}
    settings.update(extra)
    return HubSpotConnector(HubSpotSettings(**settings))


@pytest.fixture
def hs(sim: HubSpotSimulator) -> Iterator[HubSpotConnector]:
    c = connector_for(sim)
    c.setup([order_spec(), PAYMENT, PRODUCT, STOCK])
    yield c
    c.close()


def records_of(pages) -> list:
    return [r for page in pages for r in page.records]


def products(sim: HubSpotSimulator, n: int) -> list[str]:
    return [sim.create("products", {"name": f"Widget {i}", "hs_sku": f"SKU-{i}", "price": f"{10 + i}.50"})
            for i in range(n)]


# ------------------------------------------------------------------------------ setup
def test_setup_creates_deal_and_product_properties_in_their_groups(sim: HubSpotSimulator) -> None:
    c = connector_for(sim)
    specs = [order_spec(), PAYMENT, PRODUCT, STOCK]
    missing = c.missing_setup(specs)
    assert len(missing) == 6 + 1 + 4  # deals (order and payment share them), concord_erp_id, stock
    assert len(c.setup(specs)) == 11
    assert c.missing_setup(specs) == [] and c.setup(specs) == []
    headers = {"Authorization": f"Bearer {sim.token}"}
    paid = requests.get(f"{sim.base_url}/crm/v3/properties/deals/concord_amount_paid", headers=headers,
                        timeout=5).json()
    assert (paid["type"], paid["fieldType"], paid["groupName"]) == ("number", "number", "dealinformation")
    status = requests.get(f"{sim.base_url}/crm/v3/properties/deals/concord_order_status", headers=headers,
                          timeout=5).json()
    assert (status["type"], status["label"]) == ("string", "Order status (ERP)")
    on_hand = requests.get(f"{sim.base_url}/crm/v3/properties/products/concord_on_hand", headers=headers,
                           timeout=5).json()
    assert (on_hand["type"], on_hand["groupName"]) == ("number", "productinformation")


# ------------------------------------------------------------------------------ virtual paths
def test_a_page_of_deals_gets_company_and_lines_in_a_bounded_number_of_calls(
        sim: HubSpotSimulator, hs: HubSpotConnector, recorder: Recorder) -> None:
    skus = products(sim, 3)
    companies = [sim.create("companies", {"name": f"Co {i}"}) for i in range(4)]
    # Deal 0: an unlabeled company with a LOWER id than its primary one: the primary wins.
    with_primary = create_deal(sim, {"dealstage": "closedwon", "deal_currency_code": "EUR",
                                     "closedate": "2025-03-04T00:00:00Z"},
                               company=companies[2], other_companies=[companies[0]],
                               lines=[{"hs_product_id": skus[0], "quantity": "2"},
                                      {"hs_product_id": skus[1], "quantity": "1", "hs_discount_percentage": "10"}])
    # Deal 1: unlabeled companies only: the first by id.
    unlabeled = create_deal(sim, {"dealstage": "closedwon"}, other_companies=[companies[3], companies[1]],
                            lines=[{"hs_product_id": skus[2], "quantity": "5"}])
    no_company = create_deal(sim, {"dealstage": "closedwon"}, lines=[{"hs_product_id": skus[0], "quantity": "1"}])
    no_lines = create_deal(sim, {"dealstage": "closedwon"}, company=companies[1])
    # Enough line items for three line item reads: 246 more on 26 more deals.
    bulk = [create_deal(sim, {"dealstage": "closedwon"}, company=companies[i % 4],
                        lines=[{"hs_product_id": skus[n % 3], "quantity": str(n + 1)} for n in range(9 + i % 3)])
            for i in range(26)]
    lost = create_deal(sim, {"dealstage": "closedlost"}, company=companies[0],
                       lines=[{"hs_product_id": skus[0], "quantity": "1"}])
    total_lines = sum(len(d.line_ids) for d in [with_primary, unlabeled, no_company, no_lines, *bulk])
    assert 200 < total_lines <= 300

    c = connector_for(sim, page_size=100)
    pages = list(c.iter_changes(order_spec(["closedwon"]), None))
    assert len(pages) == 1
    by_id = {r.id: r for r in pages[0].records}
    assert len(by_id) == 30 and lost.id not in by_id

    assert by_id[with_primary.id].data["associations.companies"] == companies[2]
    assert by_id[unlabeled.id].data["associations.companies"] == min(companies[1], companies[3], key=id_sort_key)
    assert by_id[no_company.id].data["associations.companies"] is None
    assert by_id[no_lines.id].data["line_items"] == []
    lines = by_id[with_primary.id].data["line_items"]
    assert [line["hs_object_id"] for line in lines] == sorted(with_primary.line_ids, key=id_sort_key)
    assert lines[0] == {"hs_object_id": with_primary.line_ids[0], "hs_sku": "SKU-0", "quantity": "2",
                        "price": "10.50", "hs_discount_percentage": None}
    assert (lines[1]["hs_sku"], lines[1]["hs_discount_percentage"]) == ("SKU-1", "10")
    assert by_id[with_primary.id].data["deal_currency_code"] == "EUR"
    for deal in bulk:
        assert [line["hs_object_id"] for line in by_id[deal.id].data["line_items"]] == \
            sorted(deal.line_ids, key=id_sort_key)

    # The budget: 1 search + 1 association read per associated type + ceil(lines / 100) line reads.
    calls = c.api_calls()
    assert calls["search"] == 1
    assert calls["read"] == 2 + -(-total_lines // 100)
    assert sim.counts["POST v4/batch/read"] == 2
    # Virtual paths never travel as properties; line items are read with exactly the item paths.
    for body in recorder.bodies("POST", "/search") + recorder.bodies("POST", "/deals/batch/read"):
        assert not set(VIRTUAL) & set(body["properties"])
    search = recorder.bodies("POST", "/crm/v3/objects/deals/search")[0]
    assert {"propertyName": "dealstage", "operator": "IN", "values": ["closedwon"]} in \
        search["filterGroups"][0]["filters"]
    line_reads = recorder.bodies("POST", "/crm/v3/objects/line_items/batch/read")
    assert all(body["properties"] == list(ITEM_PATHS) and len(body["inputs"]) <= 100 for body in line_reads)


def test_read_by_id_fills_virtual_paths_whatever_the_stage(sim: HubSpotSimulator, hs: HubSpotConnector) -> None:
    (sku,) = products(sim, 1)
    company = sim.create("companies", {"name": "Acme"})
    lost = create_deal(sim, {"dealstage": "closedlost"}, company=company,
                       lines=[{"hs_product_id": sku, "quantity": "3"}])
    found = hs.read(order_spec(["closedwon"]), [lost.id, "999"])
    assert set(found) == {lost.id}
    record = found[lost.id]
    assert record.data["associations.companies"] == company
    assert [(line["hs_sku"], line["quantity"]) for line in record.data["line_items"]] == [("SKU-0", "3")]


def test_a_line_item_archived_after_association_is_no_longer_a_line(sim: HubSpotSimulator,
                                                                     hs: HubSpotConnector) -> None:
    (sku,) = products(sim, 1)
    deal = create_deal(sim, {"dealstage": "closedwon"},
                       lines=[{"hs_product_id": sku, "quantity": "1"}, {"hs_product_id": sku, "quantity": "2"}])
    sim.archive("line_items", deal.line_ids[0])
    (record,) = hs.read(order_spec(), [deal.id]).values()
    assert [line["hs_object_id"] for line in record.data["line_items"]] == [deal.line_ids[1]]


# ------------------------------------------------------------------------------ stage filters
def test_change_scans_and_full_listings_keep_only_the_configured_stages(sim: HubSpotSimulator,
                                                                         hs: HubSpotConnector) -> None:
    company = sim.create("companies", {"name": "Acme"})
    won = create_deal(sim, {"dealstage": "closedwon"}, company=company)
    sent = create_deal(sim, {"dealstage": "contractsent"}, company=company)
    open_deal = create_deal(sim, {"dealstage": "qualifiedtobuy"}, company=company)
    sim.create("deals", {"dealname": "Lost", "pipeline": "default", "dealstage": "closedlost"})
    spec = order_spec(["closedwon", "contractsent"])

    changed = records_of(hs.iter_changes(spec, None))
    assert [r.id for r in changed] == [won.id, sent.id]
    assert all(r.data["associations.companies"] == company for r in changed)

    listed = records_of(hs.iter_all(spec))
    assert sorted(r.id for r in listed) == sorted([won.id, sent.id])
    assert all(r.data["dealstage"] in ("closedwon", "contractsent") for r in listed)
    assert all("line_items" in r.data for r in listed)

    # Closing the open deal later brings it into the next scan.
    mark = Watermark(changed[-1].updated_at, changed[-1].id)  # type: ignore[arg-type]
    sim.clock.advance(5)
    sim.update("deals", open_deal.id, {"dealstage": "closedwon"})
    later = records_of(hs.iter_changes(spec, mark))
    assert open_deal.id in [r.id for r in later]
    assert later[-1].id == open_deal.id and later[-1].data["dealstage"] == "closedwon"

    # Without filters every deal is listed.
    assert len(records_of(hs.iter_changes(order_spec(), None))) == 4


# ------------------------------------------------------------------------------ writes
def test_status_and_payment_properties_are_written_onto_the_deal(sim: HubSpotSimulator,
                                                                 hs: HubSpotConnector) -> None:
    deal = create_deal(sim, {"dealstage": "closedwon"})
    (status,) = hs.write(order_spec(), [WriteOp(ref="SO042", target_id=deal.id, data={
        "concord_order_status": "confirmed", "concord_erp_order_number": "S00042",
        # an engine bug must not reach HubSpot: associations are not properties
        "line_items": [{"hs_sku": "x"}]})])
    (payment,) = hs.write(PAYMENT, [WriteOp(ref="INV/2025/0007", target_id=deal.id, data={
        "concord_amount_paid": Decimal("1.2345E+3"), "concord_amount_due": Decimal("0.00"),
        "concord_payment_state": "partial", "concord_invoice_number": "INV/2025/0007"})])
    assert status.ok and payment.ok and not payment.created
    props = sim.get("deals", deal.id)["properties"]  # type: ignore[index]
    assert props["concord_order_status"] == "confirmed" and props["concord_erp_order_number"] == "S00042"
    assert props["concord_amount_paid"] == "1234.5" and props["concord_amount_due"] == "0.00"
    assert props["concord_payment_state"] == "partial" and props["concord_invoice_number"] == "INV/2025/0007"
    assert props["dealstage"] == "closedwon"

    (cleared,) = hs.write(PAYMENT, [WriteOp(ref="INV/2025/0007", target_id=deal.id,
                                            data={"concord_amount_due": None, "concord_amount_paid": 12})])
    assert cleared.ok
    props = sim.get("deals", deal.id)["properties"]  # type: ignore[index]
    assert "concord_amount_due" not in props and props["concord_amount_paid"] == "12"


def test_product_upsert_is_idempotent_and_stock_is_written_onto_it(sim: HubSpotSimulator,
                                                                   hs: HubSpotConnector) -> None:
    ops = [WriteOp(ref=f"erp:{n}", key=f"product.product:{n}",
                   data={"hs_sku": f"SKU-{n}", "name": f"Widget {n}", "price": Decimal("19.90") + n,
                         "description": None}) for n in range(3)]
    first = hs.write(PRODUCT, ops)
    again = hs.write(PRODUCT, ops)  # a retry, or a re-run after a lost acknowledgement
    assert [r.created for r in first] == [True] * 3 and [r.created for r in again] == [False] * 3
    assert [r.target_id for r in first] == [r.target_id for r in again]
    stored = sim.all("products")
    assert len(stored) == 3
    assert stored[0]["properties"]["price"] == "19.90" and stored[2]["properties"]["price"] == "21.90"

    found = hs.find_by_keys(STOCK, ["product.product:1", "product.product:9"])
    assert list(found) == ["product.product:1"] and found["product.product:1"].data["hs_sku"] == "SKU-1"
    (stock,) = hs.write(STOCK, [WriteOp(ref="SKU-1", target_id=found["product.product:1"].id, data={
        "concord_on_hand": Decimal("12.000"), "concord_available": Decimal("7"),
        "concord_reserved": Decimal("5E+0"), "concord_incoming": Decimal("0")})])
    assert stock.ok
    props = sim.get("products", first[1].target_id)["properties"]  # type: ignore[arg-type,index]
    assert Decimal(props["concord_on_hand"]) == 12 and props["concord_available"] == "7"
    assert props["concord_reserved"] == "5" and props["concord_incoming"] == "0"
    assert props["name"] == "Widget 1" and props["price"] == "20.90"  # untouched
    assert len(sim.all("products")) == 3


# ------------------------------------------------------------------------------ webhooks
class _Capture(BaseHTTPRequestHandler):
    received: list[WebhookRequest] = []

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append(WebhookRequest("POST", f"http://{self.headers['Host']}{self.path}",
                                            dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_deal_line_item_and_product_webhooks_name_their_objects(sim: HubSpotSimulator,
                                                                hs: HubSpotConnector) -> None:
    _Capture.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sim.configure_webhooks(f"http://127.0.0.1:{server.server_address[1]}/webhooks/hubspot")
        (sku,) = products(sim, 1)
        deal = create_deal(sim, {"dealstage": "closedwon"}, lines=[{"hs_product_id": sku, "quantity": "1"}])
        sim.update("deals", deal.id, {"dealstage": "closedlost"})
        sim.update("products", sku, {"price": "11"})
        sim.archive("line_items", deal.line_ids[0])
        assert sim.flush_webhooks(10)
    finally:
        server.shutdown()
        server.server_close()
    events = {(e.object, e.record_id, e.kind) for r in _Capture.received for e in hs.parse_webhook(r)}
    assert {("deals", deal.id, "create"), ("deals", deal.id, "update"), ("products", sku, "create"),
            ("products", sku, "update"), ("line_items", deal.line_ids[0], "create"),
            ("line_items", deal.line_ids[0], "delete")} <= events


# ------------------------------------------------------------------------------ the mapping's shape
ORDER_MAPPING = """
connector: hubspot
entities:
  order:
    object: deals
    id: hs_object_id
    updated_at: hs_lastmodifieddate
    options:
      stage_property: dealstage
      filters: {dealstage: [closedwon]}
    custom_fields:
      concord_order_status: {type: string, label: "Order status (ERP)", group: dealinformation}
      concord_erp_order_number: {type: string, label: "ERP order number", group: dealinformation}
    fields:
      order_ref: {path: hs_object_id, in_only: true}
      customer: {path: associations.companies, ref: customer, in_only: true}
      order_date: {path: closedate, transform: [date], in_only: true}
      currency: {path: deal_currency_code, in_only: true}
      lines:
        path: line_items
        in_only: true
        items:
          line_ref: {path: hs_object_id}
          sku: {path: hs_sku}
          quantity: {path: quantity, transform: [decimal]}
          unit_price: {path: price, transform: [decimal]}
          discount: {path: hs_discount_percentage, transform: [decimal]}
      status: {path: concord_order_status, out_only: true}
      erp_number: {path: concord_erp_order_number, out_only: true}
"""


def test_the_order_mapping_reads_a_deal_into_a_canonical_order(sim: HubSpotSimulator, tmp_path: Path) -> None:
    from sync.mapping import load_mapping

    path = tmp_path / "hubspot.yaml"
    path.write_text(ORDER_MAPPING, encoding="utf-8")
    mapping = load_mapping(path).entity("order")
    c = connector_for(sim)
    c.setup([mapping.spec])
    skus = products(sim, 2)
    company = sim.create("companies", {"name": "Acme"})
    deal = create_deal(sim, {"dealstage": "closedwon", "closedate": "2025-03-04T00:00:00.000Z",
                             "deal_currency_code": "EUR"}, company=company,
                       lines=[{"hs_product_id": skus[1], "quantity": "2", "hs_discount_percentage": "5"},
                              {"hs_product_id": skus[0], "quantity": "1"}])
    (record,) = records_of(c.iter_changes(mapping.spec, None))
    order = mapping.to_canonical(record.data)
    assert order["order_ref"] == deal.id and order["customer"] == company
    assert order["order_date"] == date(2025, 3, 4) and order["currency"] == "EUR"
    assert [(line["line_ref"], line["sku"], line["quantity"], line["unit_price"], line["discount"])
            for line in order["lines"]] == [
        (deal.line_ids[0], "SKU-1", Decimal(2), Decimal("11.50"), Decimal(5)),
        (deal.line_ids[1], "SKU-0", Decimal(1), Decimal("10.50"), None)]
    native = mapping.to_native({"status": "confirmed", "erp_number": "S00001"})
    (written,) = c.write(mapping.spec, [WriteOp(ref=deal.id, target_id=deal.id, data=native)])
    assert written.ok
    assert sim.get("deals", deal.id)["properties"]["concord_order_status"] == "confirmed"  # type: ignore[index]


def test_a_search_too_long_for_hubspot_rereads_and_still_fills_virtual_paths(
        sim: HubSpotSimulator, hs: HubSpotConnector, recorder: Recorder) -> None:
    (sku,) = products(sim, 1)
    company = sim.create("companies", {"name": "Acme"})
    deal = create_deal(sim, {"dealstage": "closedwon"}, company=company,
                       lines=[{"hs_product_id": sku, "quantity": "4"}])
    base = order_spec(["closedwon"])
    many = [f"concord_extra_property_{n:03d}" for n in range(120)]  # > 3,000 characters of names
    spec = EntitySpec(entity=base.entity, object=base.object, id_field=base.id_field,
                      updated_field=base.updated_field, fields=(*base.fields, *many), options=base.options)
    (record,) = records_of(hs.iter_changes(spec, None))
    assert record.id == deal.id and record.data["associations.companies"] == company
    assert [line["quantity"] for line in record.data["line_items"]] == ["4"]
    (search,) = recorder.bodies("POST", "/deals/search")
    assert search["properties"] == ["hs_lastmodifieddate"]
    (reread,) = recorder.bodies("POST", "/deals/batch/read")
    assert many[0] in reread["properties"] and not set(VIRTUAL) & set(reread["properties"])
    assert sim.counts["POST v4/batch/read"] == 2
