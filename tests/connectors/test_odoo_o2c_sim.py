"""Odoo order-to-cash against the Odoo simulator over real HTTP: orders with lines, per-line updates,
confirmation and reservations, purchase requests, the virtual order status through the whole flow,
invoice fields and stock levels."""
from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from connectors.base import EntitySpec, PurchaseRequest, RetryableError, ValidationError, Watermark, WriteOp
from connectors.odoo import OdooConnector, OdooSettings
from sandbox.core import Faults

odoo_sim = pytest.importorskip("sandbox.odoo")
if not all(hasattr(odoo_sim.OdooSimulator, h) for h in ("seed_products", "set_stock", "deliver", "invoice", "pay")):
    pytest.skip("the Odoo simulator's order-to-cash helpers are not written yet", allow_module_level=True)

ITEM_PATHS = ("x_concord_line_ref", "product_id.default_code", "product_uom_qty", "price_unit", "discount")
# As the engine compiles mappings/odoo.yaml: id, updated_at, key field, then the mapped paths.
ORDER = EntitySpec(
    entity="order", object="sale.order", id_field="id", updated_field="write_date",
    fields=("id", "write_date", "client_order_ref", "partner_id", "date_order", "order_line", "amount_total",
            "name", "concord_status"),
    key_field="client_order_ref",
    options={"xmlid_prefix": "hubspot_deal_",
             "items": {"order_line": {"model": "sale.order.line", "key": "x_concord_line_ref"}},
             "item_fields": {"order_line": ITEM_PATHS},
             "custom_fields": {"x_concord_hold": {"type": "char", "label": "Concord hold reason"}},
             "item_custom_fields": {"sale.order.line": {"x_concord_line_ref": {"type": "char", "index": True}}}})
STOCK = EntitySpec(
    entity="stock_level", object="product.product", id_field="id", updated_field="write_date",
    fields=("id", "write_date", "default_code", "concord_warehouse", "qty_available", "free_qty", "concord_reserved",
            "incoming_qty"),
    options={"full_scan": True})
PAYMENT = EntitySpec(
    entity="payment", object="account.move", id_field="id", updated_field="write_date",
    fields=("id", "write_date", "name", "concord_sale_order_id", "partner_id", "amount_total", "amount_residual",
            "concord_amount_paid", "payment_state", "invoice_date_due"),
    options={"domain": [["move_type", "=", "out_invoice"], ["state", "=", "posted"]], "cascade": ["order", "customer"]})


@pytest.fixture
def sim() -> Iterator[Any]:
    simulator = odoo_sim.OdooSimulator(log_bodies=True)
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


def connect(sim: Any, **overrides: Any) -> OdooConnector:
    settings = OdooSettings(url=sim.base_url, db=sim.db, username=sim.login, api_key=sim.password, **overrides)
    conn = OdooConnector(settings)
    conn.rpc.http.settings = dataclasses.replace(conn.rpc.http.settings, backoff_initial=0.001, backoff_max=0.002)
    return conn


@pytest.fixture
def conn(sim: Any) -> Iterator[OdooConnector]:
    connector = connect(sim)
    connector.setup([ORDER])
    yield connector
    connector.close()


@pytest.fixture
def partner(sim: Any) -> int:
    return int(sim.create("res.partner", {"name": "Acme", "is_company": True, "customer_rank": 1}))


@pytest.fixture
def skus(sim: Any) -> list[str]:
    ids = sim.seed_products(3, with_stock=False)
    codes = [sim.get("product.product", i)["default_code"] for i in ids]
    for code in codes:
        sim.set_stock(code, 10)
    return codes


def line(ref: str, sku: str, qty: str, price: str | None = "12.50") -> dict[str, Any]:
    return {"x_concord_line_ref": ref, "product_id.default_code": sku, "product_uom_qty": Decimal(qty),
            "price_unit": Decimal(price) if price is not None else None, "discount": None}


def order_lines(sim: Any, order_id: str) -> dict[str, tuple[int, str, float, float]]:
    """line ref -> (line id, sku, qty, price) as the simulator holds them."""
    out = {}
    for row in sim.all("sale.order.line"):
        if row["order_id"] == int(order_id):
            sku = sim.get("product.product", row["product_id"])["default_code"]
            out[row["x_concord_line_ref"]] = (row["id"], sku, row["product_uom_qty"], row["price_unit"])
    return out


def create_order(conn: OdooConnector, partner: int, lines: list[dict[str, Any]], key: str = "D-1") -> str:
    [result] = conn.write(ORDER, [WriteOp(key, {"partner_id": str(partner), "date_order": "2026-11-26",
                                                "order_line": lines}, key=key)])
    assert result.ok, result.error
    assert result.target_id is not None
    return result.target_id


def writes_of(sim: Any, model: str, method: str) -> list[list[Any]]:
    """Args of the object calls ``model.method`` in the simulator's request log."""
    out = []
    for entry in sim.request_log:
        if entry.path != "/jsonrpc" or not entry.body:
            continue
        args = json.loads(entry.body)["params"]["args"]
        if len(args) >= 7 and args[3] == model and args[4] == method:
            out.append(args[5])
    return out


def status(conn: OdooConnector, order_id: str) -> str:
    return str(conn.read(ORDER, [order_id])[order_id].data["concord_status"])


# ------------------------------------------------------------------ creates and reads
def test_create_order_with_lines_and_read_it_back(sim: Any, conn: OdooConnector, partner: int,
                                                  skus: list[str]) -> None:
    oid = create_order(conn, partner, [line("L1", skus[0], "3"), line("L2", skus[1], "1", None)])
    lines = order_lines(sim, oid)
    assert {k: v[1:3] for k, v in lines.items()} == {"L1": (skus[0], 3.0), "L2": (skus[1], 1.0)}
    assert lines["L1"][3] == 12.5
    order = sim.get("sale.order", int(oid))
    assert (order["client_order_ref"], order["partner_id"], order["state"]) == ("D-1", partner, "draft")
    xmlids = {n: target for n, target in sim.xmlids("concord").items() if n.startswith("concord.hubspot_deal_d_1")}
    assert list(xmlids.values()) == [("sale.order", int(oid))]

    record = conn.read(ORDER, [oid])[oid]
    assert record.data["partner_id"] == str(partner)  # a bare many2one comes back as the id in text
    assert record.data["client_order_ref"] == "D-1"
    assert record.data["name"].startswith("S")
    assert record.data["concord_status"] == "draft"
    assert [ln["x_concord_line_ref"] for ln in record.data["order_line"]] == ["L1", "L2"]
    assert record.data["order_line"][0] == {"x_concord_line_ref": "L1", "product_id.default_code": skus[0],
                                            "product_uom_qty": 3.0, "price_unit": 12.5, "discount": 0.0}


def test_create_is_idempotent_on_the_deal_key(sim: Any, conn: OdooConnector, partner: int, skus: list[str]) -> None:
    first = create_order(conn, partner, [line("L1", skus[0], "3")])
    again = create_order(conn, partner, [line("L1", skus[0], "3")])
    assert first == again
    assert len(sim.all("sale.order")) == 1 and len(order_lines(sim, first)) == 1


def test_unknown_sku_writes_nothing(sim: Any, conn: OdooConnector, partner: int, skus: list[str]) -> None:
    [result] = conn.write(ORDER, [WriteOp("D-9", {"partner_id": str(partner), "order_line": [
        line("L1", skus[0], "1"), line("L2", "NO-SUCH-SKU", "1")]}, key="D-9")])
    assert isinstance(result.error, ValidationError)
    assert (result.error.field, result.error.message) == ("lines[L2].sku", "no product with SKU 'NO-SUCH-SKU' in Odoo")
    assert sim.all("sale.order") == [] and sim.all("sale.order.line") == []


def test_order_creates_under_lost_acknowledgements_make_one_order_each(sim: Any, conn: OdooConnector, partner: int,
                                                                      skus: list[str]) -> None:
    sim.faults = Faults(drop_after_rate=0.4, writes_only=True, seed=11)
    ops = [WriteOp(f"D-{i}", {"partner_id": str(partner), "order_line": [line("L1", skus[i % 3], "1"),
                                                                        line("L2", skus[(i + 1) % 3], "2")]},
                   key=f"D-{i}") for i in range(8)]
    done: dict[str, str] = {}
    for _ in range(30):
        todo = [op for op in ops if op.ref not in done]
        if not todo:
            break
        for result in conn.write(ORDER, todo):
            if result.ok and result.target_id is not None:
                done[result.ref] = result.target_id
    sim.faults = Faults()
    assert sorted(done) == sorted(op.ref for op in ops)
    orders = sim.all("sale.order")
    assert Counter(o["client_order_ref"] for o in orders) == {op.ref: 1 for op in ops}
    assert all(set(order_lines(sim, done[op.ref])) == {"L1", "L2"} for op in ops)
    assert len(sim.all("sale.order.line")) == 16


# ------------------------------------------------------------------ updates of drafts
def test_resync_with_the_same_lines_changes_nothing(sim: Any, conn: OdooConnector, partner: int,
                                                    skus: list[str]) -> None:
    lines = [line("L1", skus[0], "3"), line("L2", skus[1], "1")]
    oid = create_order(conn, partner, lines)
    before = order_lines(sim, oid)
    calls = conn.api_calls()
    [result] = conn.write(ORDER, [WriteOp("D-1", {"partner_id": str(partner), "date_order": "2026-11-26",
                                                  "order_line": lines}, target_id=oid)])
    assert result.ok
    assert (conn.api_calls()["write"], conn.api_calls()["create"]) == (calls["write"], calls["create"])
    assert order_lines(sim, oid) == before


def test_change_add_and_remove_lines_send_exactly_those_commands(sim: Any, conn: OdooConnector, partner: int,
                                                                 skus: list[str]) -> None:
    oid = create_order(conn, partner, [line("L1", skus[0], "3"), line("L2", skus[1], "1"), line("L3", skus[2], "2")])
    before = order_lines(sim, oid)
    [result] = conn.write(ORDER, [WriteOp("D-1", {"order_line": [
        line("L1", skus[0], "5"), line("L2", skus[1], "1"), line("L4", skus[2], "7")]}, target_id=oid)])
    assert result.ok, result.error
    [args] = writes_of(sim, "sale.order", "write")
    product = {p["default_code"]: p["id"] for p in sim.all("product.product")}
    assert args == [[int(oid)], {"order_line": [
        [1, before["L1"][0], {"product_uom_qty": 5.0, "price_unit": 12.5}],
        [0, 0, {"x_concord_line_ref": "L4", "product_id": product[skus[2]], "product_uom_qty": 7.0,
                "price_unit": 12.5}],
        [2, before["L3"][0], 0]]}]
    after = order_lines(sim, oid)
    assert set(after) == {"L1", "L2", "L4"}
    assert after["L1"][0] == before["L1"][0] and after["L1"][2] == 5.0  # same line, new quantity
    assert after["L2"] == before["L2"]
    assert after["L4"][1:3] == (skus[2], 7.0)


def test_update_of_confirmed_order_is_refused_and_leaves_it_alone(sim: Any, conn: OdooConnector, partner: int,
                                                                  skus: list[str]) -> None:
    oid = create_order(conn, partner, [line("L1", skus[0], "3")])
    conn.confirm_order(ORDER, oid)
    name = sim.get("sale.order", int(oid))["name"]
    before = order_lines(sim, oid)
    [result] = conn.write(ORDER, [WriteOp("D-1", {"order_line": [line("L1", skus[0], "4")]}, target_id=oid)])
    assert isinstance(result.error, ValidationError)
    assert result.error.message == f"Odoo order {name} is confirmed (locked): the CRM change was not applied"
    assert order_lines(sim, oid) == before
    [unchanged] = conn.write(ORDER, [WriteOp("D-1", {"order_line": [line("L1", skus[0], "3")]}, target_id=oid)])
    assert unchanged.ok  # nothing to apply is not a refusal


# ------------------------------------------------------------------ confirmation, reservations, holds
def test_confirm_shows_confirmed_and_reservations(sim: Any, conn: OdooConnector, partner: int,
                                                 skus: list[str]) -> None:
    sim.set_stock(skus[1], 1)
    oid = create_order(conn, partner, [line("L1", skus[0], "3"), line("L2", skus[1], "4")])
    draft = conn.order_states(ORDER, [oid])[oid]
    assert (draft.state, draft.held) == ("draft", False)
    conn.confirm_order(ORDER, oid)
    conn.confirm_order(ORDER, oid)  # again: already confirmed is not an error
    state = conn.order_states(ORDER, [oid, "999999"])
    assert list(state) == [oid]
    s = state[oid]
    assert (s.state, s.number, s.partner_id) == ("confirmed", sim.get("sale.order", int(oid))["name"], str(partner))
    assert s.amount_total == Decimal(str(sim.get("sale.order", int(oid))["amount_total"]))
    assert [(ln.line_ref, ln.sku, ln.quantity, ln.reserved) for ln in s.lines] == [
        ("L1", skus[0], Decimal(3), Decimal(3)), ("L2", skus[1], Decimal(4), Decimal(1))]
    assert s.lines[1].shortfall == Decimal(3)


def test_hold_release_and_held_orders(sim: Any, conn: OdooConnector, partner: int, skus: list[str]) -> None:
    held = create_order(conn, partner, [line("L1", skus[0], "1")], key="D-1")
    other = create_order(conn, partner, [line("L1", skus[0], "1")], key="D-2")
    conn.hold_order(ORDER, held, "credit limit exceeded: 1200.00 > 1000.00")
    assert conn.held_orders(ORDER) == [held]
    assert conn.order_states(ORDER, [held])[held].held
    assert status(conn, held) == "credit_hold" and status(conn, other) == "draft"
    conn.hold_order(ORDER, held, None)
    assert conn.held_orders(ORDER) == []
    assert status(conn, held) == "draft"


# ------------------------------------------------------------------ the status through the flow
def test_virtual_status_through_the_whole_flow(sim: Any, conn: OdooConnector, partner: int,
                                               skus: list[str]) -> None:
    oid = create_order(conn, partner, [line("L1", skus[0], "3")])
    assert status(conn, oid) == "draft"
    conn.hold_order(ORDER, oid, "credit")
    assert status(conn, oid) == "credit_hold"
    conn.hold_order(ORDER, oid, None)
    conn.confirm_order(ORDER, oid)
    assert status(conn, oid) == "confirmed"
    sim.deliver(int(oid))
    assert status(conn, oid) == "shipped"
    invoice = sim.invoice(int(oid))
    assert status(conn, oid) == "invoiced"
    total = sim.get("account.move", invoice)["amount_total"]
    sim.pay(invoice, round(total / 2, 2))
    assert status(conn, oid) == "invoiced"  # partly paid
    sim.pay(invoice)
    assert status(conn, oid) == "paid"


def test_shortage_is_backordered_until_stock_arrives_and_cancel_wins(sim: Any, conn: OdooConnector, partner: int,
                                                                     skus: list[str]) -> None:
    sim.set_stock(skus[2], 2)
    oid = create_order(conn, partner, [line("L1", skus[0], "1"), line("L2", skus[2], "5")])
    conn.confirm_order(ORDER, oid)
    assert status(conn, oid) == "backordered"
    other = create_order(conn, partner, [line("L1", skus[0], "1")], key="D-2")
    conn.confirm_order(ORDER, other)
    # Both orders on one page: statuses are computed per order.
    records = conn.read(ORDER, [oid, other])
    assert (records[oid].data["concord_status"], records[other].data["concord_status"]) == ("backordered", "confirmed")
    conn.rpc.execute_kw("sale.order", "action_cancel", [[int(oid)]], {"context": {"disable_cancel_warning": True}})
    assert status(conn, oid) == "cancelled"
    assert conn.order_states(ORDER, [oid])[oid].state == "cancelled"


# ------------------------------------------------------------------ purchase requests
def test_request_purchases_is_idempotent_per_key(sim: Any, conn: OdooConnector, skus: list[str]) -> None:
    requests = [PurchaseRequest("501:L2", skus[1], Decimal(3), "S00001"),
                PurchaseRequest("501:L3", skus[2], Decimal("1.5"), "S00001"),
                PurchaseRequest("502:L1", skus[0], Decimal(2), "S00002")]
    first = conn.request_purchases(requests)
    assert [(r.ref, r.ok, r.created) for r in first] == [(q.key, True, True) for q in requests]
    second = conn.request_purchases(requests)
    assert [(r.ref, r.ok, r.created, r.target_id) for r in second] == \
        [(q.key, True, False, r.target_id) for q, r in zip(requests, first, strict=True)]
    po_lines = sim.all("purchase.order.line")
    assert Counter(ln["x_concord_po_key"] for ln in po_lines) == {q.key: 1 for q in requests}
    orders = {o["id"]: o for o in sim.all("purchase.order")}
    assert sorted(o["origin"] for o in orders.values()) == ["S00001", "S00002"]  # one RFQ per origin
    assert all(o["state"] == "draft" for o in orders.values())
    vendor = sim.get("res.partner", next(iter(orders.values()))["partner_id"])
    assert vendor["name"] == "Concord default vendor"
    by_key = {ln["x_concord_po_key"]: ln for ln in po_lines}
    assert by_key["501:L3"]["product_qty"] == 1.5
    po_xmlids = {target for n, target in sim.xmlids("concord").items() if n.startswith("concord.po_")}
    assert po_xmlids == {("purchase.order.line", ln["id"]) for ln in po_lines}
    assert len([p for p in sim.all("res.partner") if p["name"] == "Concord default vendor"]) == 1


def test_request_purchases_under_lost_acknowledgements(sim: Any, skus: list[str]) -> None:
    conn = connect(sim)
    conn.setup([ORDER])
    lost: list[RetryableError] = []
    send = conn.rpc.http.request

    def spy(*args: Any, **kwargs: Any) -> Any:
        try:
            return send(*args, **kwargs)
        except RetryableError as exc:
            lost.append(exc)
            raise

    conn.rpc.http.request = spy  # type: ignore[method-assign]
    sim.faults = Faults(drop_after_rate=0.5, writes_only=True, seed=7)
    requests = [PurchaseRequest(f"60{i}:L1", skus[i % 3], Decimal(1 + i), f"S0000{i % 2}") for i in range(6)]
    done: dict[str, bool] = {}
    rounds = 0
    while rounds < 30 and not all(done.get(r.key) for r in requests):
        rounds += 1
        for result in conn.request_purchases([r for r in requests if not done.get(r.key)]):
            done[result.ref] = result.ok
    sim.faults = Faults()
    assert all(done.get(r.key) for r in requests)
    assert sum(e.maybe_applied for e in lost) >= 3  # answers to applied writes were really lost
    counts = Counter(ln["x_concord_po_key"] for ln in sim.all("purchase.order.line"))
    assert counts == {r.key: 1 for r in requests}
    assert len([p for p in sim.all("res.partner") if p["name"] == "Concord default vendor"]) == 1
    assert all(r.ok and not r.created for r in conn.request_purchases(requests))


# ------------------------------------------------------------------ invoices
def test_invoice_virtual_fields(sim: Any, conn: OdooConnector, partner: int, skus: list[str]) -> None:
    oid = create_order(conn, partner, [line("L1", skus[0], "2")])
    conn.confirm_order(ORDER, oid)
    invoice = sim.invoice(int(oid))
    total = sim.get("account.move", invoice)["amount_total"]
    sim.pay(invoice, 10)
    pages = list(conn.iter_changes(PAYMENT, None))
    [record] = [r for p in pages for r in p.records]
    assert record.id == str(invoice)
    assert record.data["concord_sale_order_id"] == oid
    assert record.data["partner_id"] == str(partner)
    assert record.data["payment_state"] == "partial"
    assert record.data["concord_amount_paid"] == 10.0
    assert record.data["amount_residual"] == pytest.approx(total - 10)


def test_invoice_without_origin_finds_its_order_through_the_lines(sim: Any, conn: OdooConnector, partner: int,
                                                                  skus: list[str]) -> None:
    oid = create_order(conn, partner, [line("L1", skus[0], "2")])
    conn.confirm_order(ORDER, oid)
    invoice = sim.invoice(int(oid), post=False)
    sim.update("account.move", invoice, {"invoice_origin": False})
    conn.rpc.execute_kw("account.move", "action_post", [[invoice]])
    record = conn.read(PAYMENT, [str(invoice)])[str(invoice)]
    assert record.data["concord_sale_order_id"] == oid
    assert (record.data["payment_state"], record.data["concord_amount_paid"]) == ("not_paid", 0.0)


# ------------------------------------------------------------------ stock levels
def test_stock_full_scan_and_reserved(sim: Any, conn: OdooConnector, partner: int, skus: list[str]) -> None:
    oid = create_order(conn, partner, [line("L1", skus[0], "4")])
    conn.confirm_order(ORDER, oid)
    future = Watermark(datetime(2100, 1, 1, tzinfo=UTC), "0")
    records = {r.data["default_code"]: r.data for p in conn.iter_changes(STOCK, future) for r in p.records}
    assert set(skus) <= set(records)  # computed quantities: every product, whatever the cursor says
    first = records[skus[0]]
    assert (first["concord_warehouse"], first["qty_available"], first["free_qty"], first["concord_reserved"]) == \
        ("*", 10.0, 6.0, 4.0)
    assert records[skus[1]]["concord_reserved"] == 0.0
    code = sim.all("stock.warehouse")[0]["code"]
    per_warehouse = dataclasses.replace(STOCK, options={**STOCK.options, "warehouse": code})
    scoped = {r.data["default_code"]: r.data for p in conn.iter_all(per_warehouse) for r in p.records}
    assert (scoped[skus[0]]["concord_warehouse"], scoped[skus[0]]["qty_available"]) == (code, 10.0)


def test_stock_full_scan_pages_by_id(sim: Any, skus: list[str]) -> None:
    sim.seed_products(25, seed=3, with_stock=False)
    small = connect(sim, page_size=10)
    pages = [[int(r.id) for r in p.records] for p in small.iter_changes(STOCK, None)]
    flat = [i for p in pages for i in p]
    assert all(len(p) <= 10 for p in pages) and flat == sorted(flat)
    assert len(flat) == len(sim.all("product.product"))
