"""Order to cash on the Odoo 18 simulator, over HTTP through JSON-RPC as a client would.

The first test replays shared/api-notes/odoo-18-observed.md request by request; the others
cover what the notes and Odoo 18's sources say about orders, stock, invoices and payments.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from sandbox.core import Clock
from sandbox.odoo import OdooSimulator
from sandbox.odoo.errors import UserError
from sandbox.odoo.helpers import ean13

DB, KEY = "concord", "sim-odoo-key"
T0 = datetime(2026, 3, 2, 9, 30, 15, tzinfo=UTC)


class OdooError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["data"]["message"])
        self.name = error["data"]["name"]
        self.message = error["data"]["message"]


class Rpc:
    """A minimal JSON-RPC client written from the notes (not the connector)."""

    def __init__(self, sim: OdooSimulator) -> None:
        self.url = sim.base_url + "/jsonrpc"
        self.session = requests.Session()
        self.ids = itertools.count(1)

    def raw(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"jsonrpc": "2.0", "method": "call", "id": next(self.ids), "params": {
            "service": "object", "method": "execute_kw", "args": [DB, 2, KEY, model, method, args, kwargs or {}]}}
        resp = self.session.post(self.url, json=body, timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def __call__(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any] | None = None) -> Any:
        body = self.raw(model, method, args, kwargs)
        if "error" in body:
            raise OdooError(body["error"])
        return body.get("result")

    def read1(self, model: str, rid: int, fields: list[str], **kw: Any) -> dict[str, Any]:
        (row,) = self(model, "read", [[rid]], {"fields": fields, **kw})
        return row  # type: ignore[no-any-return]


@pytest.fixture
def clock() -> Clock:
    return Clock(frozen=T0)


@pytest.fixture
def sim(clock: Clock) -> Iterator[OdooSimulator]:
    with OdooSimulator(clock=clock) as s:
        yield s


@pytest.fixture
def rpc(sim: OdooSimulator) -> Rpc:
    return Rpc(sim)


def product(rpc: Rpc, sku: str, price: float = 12.5, storable: bool = True, **extra: Any) -> int:
    return int(rpc("product.product", "create", [{"name": f"Widget {sku}", "default_code": sku, "type": "consu",
                                                  "is_storable": storable, "list_price": price, **extra}]))


def customer(rpc: Rpc, name: str = "Acme", **extra: Any) -> int:
    return int(rpc("res.partner", "create", [{"name": name, "is_company": True, **extra}]))


def stock(rpc: Rpc, product_id: int, qty: float, location: int = 8) -> None:
    ctx = {"context": {"inventory_mode": True}}
    qid = rpc("stock.quant", "create", [{"product_id": product_id, "location_id": location, "inventory_quantity": qty}],
              ctx)
    rpc("stock.quant", "action_apply_inventory", [[qid]], ctx)


def order(rpc: Rpc, partner: int, *lines: tuple[int, float], **extra: Any) -> int:
    return int(rpc("sale.order", "create", [{"partner_id": partner, "order_line": [
        [0, 0, {"product_id": p, "product_uom_qty": q}] for p, q in lines], **extra}]))


QTY = ["qty_available", "free_qty", "virtual_available", "incoming_qty", "outgoing_qty"]


def qty(rpc: Rpc, product_id: int, **context: Any) -> dict[str, float]:
    row = rpc.read1("product.product", product_id, QTY, **({"context": context} if context else {}))
    return {k: row[k] for k in QTY}


# ==================================================================================== the observed session
def test_observed_session_is_reproduced_request_by_request(clock: Clock) -> None:
    with OdooSimulator(clock=clock, builtin_partners=True) as sim:
        rpc = Rpc(sim)
        assert rpc("res.partner", "create", [{"name": "Acme Test Customer", "email": "buyer@acme.example",
                                              "ref": "CRM-0001", "is_company": True}]) == 7
        assert rpc("res.partner", "search_read", [[["ref", "=", "CRM-0001"]]],
                   {"fields": ["id", "name", "email", "ref", "is_company"]}) == [
            {"id": 7, "name": "Acme Test Customer", "email": "buyer@acme.example", "ref": "CRM-0001",
             "is_company": True}]
        assert rpc("product.product", "create", [{"name": "Test Widget", "default_code": "SKU-1", "type": "consu",
                                                  "is_storable": True, "list_price": 12.5}]) == 1
        assert rpc("product.product", "search_read", [[["default_code", "=", "SKU-1"]]], {
            "fields": ["id", "name", "default_code", "type", "is_storable", "list_price", "qty_available"]}) == [
            {"id": 1, "name": "Test Widget", "default_code": "SKU-1", "type": "consu", "is_storable": True,
             "list_price": 12.5, "qty_available": 0.0}]
        assert rpc("stock.warehouse", "search_read", [[]], {"fields": ["id", "name", "lot_stock_id"], "limit": 1}) == [
            {"id": 1, "name": "My Company", "lot_stock_id": [8, "WH/Stock"]}]
        ctx = {"context": {"inventory_mode": True}}
        assert rpc("stock.quant", "create", [{"product_id": 1, "location_id": 8, "inventory_quantity": 25}], ctx) == 1
        body = rpc.raw("stock.quant", "action_apply_inventory", [[1]], ctx)
        assert body == {"jsonrpc": "2.0", "id": body["id"]}  # no "result" key: the method returned None
        assert rpc("product.product", "read", [[1]], {"fields": ["qty_available", "virtual_available"]}) == [
            {"id": 1, "qty_available": 25.0, "virtual_available": 25.0}]
        assert rpc("sale.order", "create", [{"partner_id": 7, "client_order_ref": "CRM-DEAL-42",
                                             "order_line": [[0, 0, {"product_id": 1, "product_uom_qty": 3}]]}]) == 1
        assert rpc("sale.order", "action_confirm", [[1]]) is True
        assert rpc("sale.order", "read", [[1]], {"fields": [
            "name", "state", "partner_id", "amount_untaxed", "amount_total", "picking_ids", "client_order_ref"]}) == [
            {"id": 1, "name": "S00001", "state": "sale", "partner_id": [7, "Acme Test Customer"],
             "amount_untaxed": 37.5, "amount_total": 43.13, "picking_ids": [1], "client_order_ref": "CRM-DEAL-42"}]
        assert rpc("product.product", "read", [[1]], {
            "fields": ["qty_available", "virtual_available", "outgoing_qty"]}) == [
            {"id": 1, "qty_available": 25.0, "virtual_available": 22.0, "outgoing_qty": 3.0}]
        assert rpc("stock.picking", "read", [[1]], {"fields": ["name", "state", "move_ids"]}) == [
            {"id": 1, "name": "WH/OUT/00001", "state": "assigned", "move_ids": [2]}]
        assert rpc("stock.picking", "button_validate", [[1]]) is True
        assert rpc("stock.picking", "read", [[1]], {"fields": ["name", "state"]}) == [
            {"id": 1, "name": "WH/OUT/00001", "state": "done"}]
        assert rpc("product.product", "read", [[1]], {"fields": ["qty_available", "virtual_available"]}) == [
            {"id": 1, "qty_available": 22.0, "virtual_available": 22.0}]
        with pytest.raises(OdooError) as err:
            rpc("sale.order", "create", [{}])
        assert err.value.name == "odoo.exceptions.ValidationError"
        assert err.value.message.endswith("Model: Sales Order (sale.order)\nField: Customer (partner_id)\n")


def test_second_apply_inventory_only_adds_a_zero_move(rpc: Rpc) -> None:
    pid = product(rpc, "SKU-1")
    stock(rpc, pid, 25)
    rpc("stock.quant", "action_apply_inventory", [[1]], {"context": {"inventory_mode": True}})
    assert qty(rpc, pid)["qty_available"] == 25.0
    moves = rpc("stock.move", "search_read", [[["product_id", "=", pid]]],
                {"fields": ["name", "product_uom_qty", "state", "location_id", "location_dest_id"], "order": "id"})
    assert [(m["name"], m["product_uom_qty"], m["state"]) for m in moves] == [
        ("Product Quantity Updated (Administrator)", 25.0, "done"),
        ("Product Quantity Confirmed (Administrator)", 0.0, "done")]
    assert moves[0]["location_id"] == [6, "Virtual Locations/Inventory adjustment"]
    assert moves[0]["location_dest_id"] == [8, "WH/Stock"]


def test_inventory_mode_merges_into_the_existing_quant_and_can_lower_stock(rpc: Rpc) -> None:
    pid = product(rpc, "SKU-1")
    stock(rpc, pid, 25)
    stock(rpc, pid, 7)  # a count lower than the stock: a move back to the adjustment location
    assert rpc("stock.quant", "search_read", [[["product_id", "=", pid], ["location_id.usage", "=", "internal"]]],
               {"fields": ["quantity", "reserved_quantity", "available_quantity", "inventory_quantity_set"]}) == [
        {"id": 1, "quantity": 7.0, "reserved_quantity": 0.0, "available_quantity": 7.0,
         "inventory_quantity_set": False}]
    with pytest.raises(OdooError) as err:
        rpc("stock.quant", "create", [{"product_id": pid, "location_id": 8, "inventory_quantity": 1, "quantity": 5}],
            {"context": {"inventory_mode": True}})
    assert (err.value.name, err.value.message) == (
        "odoo.exceptions.UserError", "Quant's creation is restricted, you can't do this operation.")
    rpc("stock.quant", "create", [{"product_id": pid, "location_id": 8, "inventory_quantity_auto_apply": 9}],
        {"context": {"inventory_mode": True}})
    assert qty(rpc, pid)["qty_available"] == 9.0


# ==================================================================================== orders and taxes
def test_order_line_command_tuples_0_to_6(rpc: Rpc) -> None:
    partner = customer(rpc)
    a, b, c = (product(rpc, f"SKU-{i}", price) for i, price in ((1, 10.0), (2, 20.0), (3, 5.0)))
    so = order(rpc, partner, (a, 1), (b, 1))
    other = order(rpc, partner, (c, 2))

    def lines() -> list[tuple[int, float]]:
        row = rpc.read1("sale.order", so, ["order_line", "amount_untaxed"])
        rows = rpc("sale.order.line", "read", [row["order_line"], ["product_id", "product_uom_qty"]])
        assert row["amount_untaxed"] == sum({a: 10.0, b: 20.0, c: 5.0}[r["product_id"][0]] * r["product_uom_qty"]
                                            for r in rows)
        return [(r["product_id"][0], r["product_uom_qty"]) for r in rows]

    la, lb = rpc.read1("sale.order", so, ["order_line"])["order_line"]
    (lc,) = rpc.read1("sale.order", other, ["order_line"])["order_line"]
    assert lines() == [(a, 1.0), (b, 1.0)]
    rpc("sale.order", "write", [[so], {"order_line": [[1, la, {"product_uom_qty": 4}], [0, 0, {"product_id": c}]]}])
    assert lines() == [(a, 4.0), (b, 1.0), (c, 1.0)]
    rpc("sale.order", "write", [[so], {"order_line": [[2, lb, 0]]}])
    assert lines() == [(a, 4.0), (c, 1.0)]
    assert rpc("sale.order.line", "exists", [[lb]]) == []
    rpc("sale.order", "write", [[so], {"order_line": [[4, lc, 0]]}])  # moves the other order's line here
    assert lines() == [(a, 4.0), (c, 2.0), (c, 1.0)]  # "sequence, id" order: the moved line is older
    assert rpc.read1("sale.order", other, ["order_line", "amount_total"]) == {
        "id": other, "order_line": [], "amount_total": 0.0}
    rpc("sale.order", "write", [[so], {"order_line": [[3, la, 0]]}])  # order_id is required: the line goes
    assert lines() == [(c, 2.0), (c, 1.0)]
    rpc("sale.order.line", "write", [[lc], {"sequence": 20}])
    assert lines() == [(c, 1.0), (c, 2.0)]
    rpc("sale.order", "write", [[so], {"order_line": [[6, 0, [lc]]]}])
    assert lines() == [(c, 2.0)]
    rpc("sale.order", "write", [[so], {"order_line": [[5, 0, 0]]}])
    assert lines() == []


def test_lines_default_to_product_price_name_and_the_15_percent_tax(rpc: Rpc) -> None:
    partner = customer(rpc)
    pid = product(rpc, "SKU-1", 12.5, description_sale="Blue, 40 mm")
    so = order(rpc, partner, (pid, 3))
    (line,) = rpc("sale.order.line", "search_read", [[["order_id", "=", so]]], {"fields": [
        "name", "price_unit", "tax_id", "price_subtotal", "price_tax", "price_total", "product_uom", "state"]})
    assert line["name"] == "[SKU-1] Widget SKU-1\nBlue, 40 mm"
    assert (line["price_unit"], line["price_subtotal"], line["price_tax"], line["price_total"]) == (
        12.5, 37.5, 5.63, 43.13)
    assert line["product_uom"] == [1, "Units"] and line["state"] == "draft"
    (tax,) = rpc("account.tax", "read", [line["tax_id"], ["name", "amount", "type_tax_use"]])
    assert (tax["name"], tax["amount"], tax["type_tax_use"]) == ("15%", 15.0, "sale")


def test_taxes_round_half_up_per_line_and_can_be_removed(rpc: Rpc) -> None:
    partner = customer(rpc)
    pid = product(rpc, "SKU-1", 0.35)
    # 0.35 * 15 % = 0.0525 -> 0.05 on each line: 0.15 in total, where rounding the sum would give 0.16
    so = order(rpc, partner, (pid, 1), (pid, 1), (pid, 1))
    assert rpc.read1("sale.order", so, ["amount_untaxed", "amount_tax", "amount_total"]) == {
        "id": so, "amount_untaxed": 1.05, "amount_tax": 0.15, "amount_total": 1.2}
    discounted = rpc("sale.order", "create", [{"partner_id": partner, "order_line": [
        [0, 0, {"product_id": pid, "product_uom_qty": 10, "price_unit": 9.99, "discount": 12.5}],
        [0, 0, {"product_id": pid, "product_uom_qty": 2, "price_unit": 1.25, "tax_id": [[6, 0, []]]}]]}])
    # 10 * 9.99 * 0.875 = 87.4125 -> 87.41; tax 13.11 (87.41 * 0.15 = 13.1115); the untaxed line adds 2.50
    assert rpc.read1("sale.order", discounted, ["amount_untaxed", "amount_tax", "amount_total"]) == {
        "id": discounted, "amount_untaxed": 89.91, "amount_tax": 13.11, "amount_total": 103.02}


def test_a_line_without_product_is_refused(rpc: Rpc) -> None:
    partner = customer(rpc)
    with pytest.raises(OdooError) as err:
        rpc("sale.order", "create", [{"partner_id": partner, "order_line": [[0, 0, {"name": "free text"}]]}])
    assert err.value.name == "odoo.exceptions.ValidationError"
    assert "Missing required fields on accountable sale order line" in err.value.message
    assert rpc("sale.order", "search_count", [[]]) == 0


def test_order_numbers_follow_the_sequence_and_failed_creates_leave_gaps(rpc: Rpc) -> None:
    partner = customer(rpc)
    assert rpc.read1("sale.order", order(rpc, partner), ["name"])["name"] == "S00001"
    with pytest.raises(OdooError):
        rpc("sale.order", "create", [{"partner_id": partner, "order_line": [[0, 0, {"product_id": 999}]]}])
    # sale.order's sequence is a PostgreSQL sequence: the failed call consumed S00002
    assert rpc.read1("sale.order", order(rpc, partner), ["name"])["name"] == "S00003"


# ==================================================================================== confirmation and stock
def test_confirm_twice_is_a_user_error(rpc: Rpc) -> None:
    so = order(rpc, customer(rpc), (product(rpc, "SKU-1"), 1))
    rpc("sale.order", "action_confirm", [[so]])
    with pytest.raises(OdooError) as err:
        rpc("sale.order", "action_confirm", [[so]])
    assert (err.value.name, err.value.message) == (
        "odoo.exceptions.UserError", "The following orders are not in a state requiring confirmation: S00001")


def test_confirm_with_a_shortage_reserves_what_is_there(rpc: Rpc) -> None:
    partner = customer(rpc)
    short, plenty = product(rpc, "SKU-1"), product(rpc, "SKU-2")
    stock(rpc, short, 5)
    stock(rpc, plenty, 100)
    so = order(rpc, partner, (short, 8), (plenty, 2))
    rpc("sale.order", "action_confirm", [[so]])
    (pick_id,) = rpc.read1("sale.order", so, ["picking_ids"])["picking_ids"]
    pick = rpc.read1("stock.picking", pick_id, ["state", "move_ids", "move_type", "origin", "sale_id",
                                                "picking_type_code", "location_id", "location_dest_id"])
    # "As soon as possible" (the default shipping policy): ready as soon as anything is reserved
    assert (pick["state"], pick["move_type"], pick["origin"], pick["sale_id"], pick["picking_type_code"]) == (
        "assigned", "direct", "S00001", [so, "S00001"], "outgoing")
    assert (pick["location_id"], pick["location_dest_id"]) == ([8, "WH/Stock"], [5, "Partners/Customers"])
    moves = rpc("stock.move", "read", [pick["move_ids"], ["product_id", "product_uom_qty", "quantity", "state"]])
    assert [(m["product_id"][0], m["product_uom_qty"], m["quantity"], m["state"]) for m in moves] == [
        (short, 8.0, 5.0, "partially_available"), (plenty, 2.0, 2.0, "assigned")]
    assert qty(rpc, short) == {"qty_available": 5.0, "free_qty": 0.0, "virtual_available": -3.0, "incoming_qty": 0.0,
                               "outgoing_qty": 8.0}
    assert rpc("stock.quant", "search_read", [[["product_id", "=", short], ["location_id", "=", 8]]],
               {"fields": ["quantity", "reserved_quantity", "available_quantity"]}) == [
        {"id": 1, "quantity": 5.0, "reserved_quantity": 5.0, "available_quantity": 0.0}]


def test_ship_all_at_once_waits_for_everything(rpc: Rpc) -> None:
    partner = customer(rpc)
    pid = product(rpc, "SKU-1")
    stock(rpc, pid, 5)
    so = order(rpc, partner, (pid, 8), picking_policy="one")
    rpc("sale.order", "action_confirm", [[so]])
    (pick_id,) = rpc.read1("sale.order", so, ["picking_ids"])["picking_ids"]
    assert rpc.read1("stock.picking", pick_id, ["state"])["state"] == "confirmed"
    nothing = order(rpc, partner, (product(rpc, "SKU-2"), 1))
    rpc("sale.order", "action_confirm", [[nothing]])
    (pick2,) = rpc.read1("sale.order", nothing, ["picking_ids"])["picking_ids"]
    assert rpc.read1("stock.picking", pick2, ["state"])["state"] == "confirmed"  # nothing reserved at all


def test_validating_a_partial_delivery_asks_for_a_backorder(rpc: Rpc, sim: OdooSimulator) -> None:
    partner = customer(rpc)
    pid = product(rpc, "SKU-1")
    stock(rpc, pid, 5)
    so = order(rpc, partner, (pid, 8))
    rpc("sale.order", "action_confirm", [[so]])
    (pick_id,) = rpc.read1("sale.order", so, ["picking_ids"])["picking_ids"]
    action = rpc("stock.picking", "button_validate", [[pick_id]])
    assert (action["type"], action["res_model"], action["target"]) == (
        "ir.actions.act_window", "stock.backorder.confirmation", "new")
    assert rpc.read1("stock.picking", pick_id, ["state"])["state"] == "assigned"  # nothing validated yet
    wizard = rpc("stock.backorder.confirmation", "create", [{}], {"context": action["context"]})
    assert rpc("stock.backorder.confirmation", "process", [[wizard]]) is True
    picks = rpc("stock.picking", "search_read", [[["sale_id", "=", so]]],
                {"fields": ["name", "state", "backorder_id"], "order": "id"})
    assert [(p["name"], p["state"], p["backorder_id"]) for p in picks] == [
        ("WH/OUT/00001", "done", False), ("WH/OUT/00002", "confirmed", [pick_id, "WH/OUT/00001"])]
    assert rpc.read1("sale.order", so, ["delivery_status"])["delivery_status"] == "partial"
    assert rpc("sale.order.line", "search_read", [[["order_id", "=", so]]], {"fields": ["qty_delivered"]})[0][
        "qty_delivered"] == 5.0
    assert qty(rpc, pid) == {"qty_available": 0.0, "free_qty": 0.0, "virtual_available": -3.0, "incoming_qty": 0.0,
                             "outgoing_qty": 3.0}
    sim.set_stock("SKU-1", 10)  # stock arrives; the scheduler reserves it for the backorder
    sim.check_availability()
    assert picks[1]["id"] in sim.deliver(so)
    assert rpc.read1("sale.order", so, ["delivery_status"])["delivery_status"] == "full"
    assert qty(rpc, pid)["qty_available"] == 7.0


def test_skip_backorder_context_and_no_backorder(rpc: Rpc) -> None:
    partner = customer(rpc)
    pid = product(rpc, "SKU-1")
    stock(rpc, pid, 2)
    so = order(rpc, partner, (pid, 3))
    rpc("sale.order", "action_confirm", [[so]])
    (pick_id,) = rpc.read1("sale.order", so, ["picking_ids"])["picking_ids"]
    assert rpc("stock.picking", "button_validate", [[pick_id]], {"context": {
        "skip_backorder": True, "picking_ids_not_to_backorder": [pick_id]}}) is True
    assert rpc("stock.picking", "search_count", [[["sale_id", "=", so]]]) == 1
    moves = rpc("stock.move", "search_read", [[["sale_line_id.order_id", "=", so]]],
                {"fields": ["product_uom_qty", "quantity", "state"], "order": "id"})
    assert [(m["product_uom_qty"], m["state"]) for m in moves] == [(2.0, "done"), (1.0, "cancel")]
    assert rpc.read1("sale.order", so, ["delivery_status"])["delivery_status"] == "full"


def test_nothing_reserved_cannot_be_validated_unless_quantities_are_encoded(rpc: Rpc) -> None:
    so = order(rpc, customer(rpc), (product(rpc, "SKU-1"), 2))
    rpc("sale.order", "action_confirm", [[so]])
    (pick_id,) = rpc.read1("sale.order", so, ["picking_ids"])["picking_ids"]
    with pytest.raises(OdooError) as err:
        rpc("stock.picking", "button_validate", [[pick_id]])
    assert err.value.message.startswith("You cannot validate a transfer if no quantities are reserved nor done.")
    (move_id,) = rpc.read1("stock.picking", pick_id, ["move_ids"])["move_ids"]
    rpc("stock.move", "write", [[move_id], {"quantity": 2}])
    assert rpc("stock.picking", "button_validate", [[pick_id]]) is True
    # Odoo lets stock go negative when quantities are forced
    assert qty(rpc, rpc.read1("stock.move", move_id, ["product_id"])["product_id"][0])["qty_available"] == -2.0


def test_quants_exist_in_partner_locations_and_stock_readers_must_filter(rpc: Rpc, sim: OdooSimulator) -> None:
    pid = product(rpc, "SKU-1")
    stock(rpc, pid, 10)
    so = order(rpc, customer(rpc), (pid, 4))
    sim.confirm(so)
    sim.deliver(so)
    rows = rpc("stock.quant", "search_read", [[["product_id", "=", pid]]],
               {"fields": ["location_id", "quantity"], "order": "id"})
    assert {r["location_id"][1]: r["quantity"] for r in rows} == {
        "WH/Stock": 6.0, "Virtual Locations/Inventory adjustment": -10.0, "Partners/Customers": 4.0}
    internal = rpc("stock.quant", "search_read", [[["product_id", "=", pid], ["location_id.usage", "=", "internal"]]],
                   {"fields": ["quantity"]})
    assert [r["quantity"] for r in internal] == [6.0]


def test_lowering_stock_below_reservations_frees_them(rpc: Rpc, sim: OdooSimulator) -> None:
    pid = product(rpc, "SKU-1")
    stock(rpc, pid, 10)
    so = order(rpc, customer(rpc), (pid, 6))
    sim.confirm(so)
    sim.set_stock(pid, 4)
    (pick_id,) = rpc.read1("sale.order", so, ["picking_ids"])["picking_ids"]
    move = rpc("stock.move", "search_read", [[["picking_id", "=", pick_id]]], {"fields": ["quantity", "state"]})[0]
    assert (move["quantity"], move["state"]) == (4.0, "partially_available")
    assert qty(rpc, pid)["free_qty"] == 0.0
    assert rpc("stock.quant", "search_read", [[["product_id", "=", pid], ["location_id", "=", 8]]],
               {"fields": ["quantity", "reserved_quantity"]})[0] | {"id": 0} == {
        "id": 0, "quantity": 4.0, "reserved_quantity": 4.0}


def test_services_have_no_delivery_and_no_stock(rpc: Rpc) -> None:
    svc = rpc("product.product", "create", [{"name": "Setup", "type": "service", "list_price": 100}])
    so = order(rpc, customer(rpc), (svc, 1))
    rpc("sale.order", "action_confirm", [[so]])
    assert rpc.read1("sale.order", so, ["picking_ids", "delivery_status", "invoice_status"]) == {
        "id": so, "picking_ids": [], "delivery_status": False, "invoice_status": "to invoice"}
    assert qty(rpc, svc)["qty_available"] == 0.0


# ==================================================================================== editing confirmed orders
def test_confirmed_orders_accept_quantity_changes_but_not_deletions(rpc: Rpc, sim: OdooSimulator) -> None:
    pid = product(rpc, "SKU-1")
    stock(rpc, pid, 10)
    so = order(rpc, customer(rpc), (pid, 3))
    rpc("sale.order", "action_confirm", [[so]])
    (line,) = rpc.read1("sale.order", so, ["order_line"])["order_line"]
    rpc("sale.order", "write", [[so], {"order_line": [[1, line, {"product_uom_qty": 5}]]}])
    assert qty(rpc, pid)["outgoing_qty"] == 5.0
    assert rpc.read1("sale.order", so, ["amount_untaxed"])["amount_untaxed"] == 62.5
    rpc("sale.order.line", "write", [[line], {"product_uom_qty": 4}])
    assert qty(rpc, pid)["outgoing_qty"] == 4.0 and qty(rpc, pid)["free_qty"] == 6.0
    extra = product(rpc, "SKU-2")
    rpc("sale.order", "write", [[so], {"order_line": [[0, 0, {"product_id": extra, "product_uom_qty": 1}]]}])
    assert qty(rpc, extra)["outgoing_qty"] == 1.0
    assert len(rpc("stock.picking", "search", [[["sale_id", "=", so]]])) == 1  # added to the open delivery
    with pytest.raises(OdooError) as err:
        rpc("sale.order", "write", [[so], {"order_line": [[2, line, 0]]}])
    assert err.value.message.startswith("Once a sales order is confirmed, you can't remove one of its lines")
    sim.deliver(so, force=True)
    with pytest.raises(OdooError) as err:
        rpc("sale.order.line", "write", [[line], {"product_uom_qty": 1}])
    assert err.value.message.startswith("The ordered quantity of a sale order line cannot be decreased below")


def test_locked_orders_refuse_line_changes_and_cancellation(rpc: Rpc) -> None:
    pid = product(rpc, "SKU-1")
    so = order(rpc, customer(rpc), (pid, 3))
    rpc("sale.order", "action_confirm", [[so]])
    rpc("sale.order", "action_lock", [[so]])
    (line,) = rpc.read1("sale.order", so, ["order_line", "locked"])["order_line"]
    with pytest.raises(OdooError) as err:
        rpc("sale.order", "write", [[so], {"order_line": [[1, line, {"product_uom_qty": 9, "price_unit": 1}]]}])
    assert (err.value.name, err.value.message) == (
        "odoo.exceptions.UserError",
        "It is forbidden to modify the following fields in a locked order:\nUnit Price\nQuantity")
    rpc("sale.order.line", "write", [[line], {"sequence": 5}])  # not a protected field
    with pytest.raises(OdooError) as err:
        rpc("sale.order", "action_cancel", [[so]], {"context": {"disable_cancel_warning": True}})
    assert err.value.message == "You cannot cancel a locked order. Please unlock it first."
    rpc("sale.order", "action_unlock", [[so]])
    rpc("sale.order.line", "write", [[line], {"product_uom_qty": 9}])
    assert rpc.read1("sale.order.line", line, ["product_uom_qty"])["product_uom_qty"] == 9.0


def test_the_lock_confirmed_sales_setting_locks_at_confirmation(rpc: Rpc, sim: OdooSimulator) -> None:
    sim.company.lock_confirmed_sales = True
    so = order(rpc, customer(rpc), (product(rpc, "SKU-1"), 1))
    rpc("sale.order", "action_confirm", [[so]])
    assert rpc.read1("sale.order", so, ["locked", "state"]) == {"id": so, "locked": True, "state": "sale"}


def test_cancelling_a_confirmed_order_opens_a_wizard_unless_told_not_to(rpc: Rpc) -> None:
    pid = product(rpc, "SKU-1")
    stock(rpc, pid, 5)
    so = order(rpc, customer(rpc), (pid, 2))
    rpc("sale.order", "action_confirm", [[so]])
    action = rpc("sale.order", "action_cancel", [[so]])
    assert (action["res_model"], action["name"], action["context"]["default_order_id"]) == (
        "sale.order.cancel", "Cancel Sales Order", so)
    assert rpc.read1("sale.order", so, ["state"])["state"] == "sale"
    wizard = rpc("sale.order.cancel", "create", [{"order_id": so}])
    assert rpc("sale.order.cancel", "action_cancel", [[wizard]]) is True
    assert rpc.read1("sale.order", so, ["state", "delivery_status"]) == {
        "id": so, "state": "cancel", "delivery_status": False}
    assert qty(rpc, pid) == {"qty_available": 5.0, "free_qty": 5.0, "virtual_available": 5.0, "incoming_qty": 0.0,
                             "outgoing_qty": 0.0}
    draft = order(rpc, customer(rpc, "Other"), (pid, 1))
    assert rpc("sale.order", "action_cancel", [[draft]]) is True


# ==================================================================================== invoices and payments
def test_invoice_through_the_wizard_then_partial_and_full_payments(rpc: Rpc, sim: OdooSimulator) -> None:
    partner = customer(rpc, "Acme Test Customer")
    pid = product(rpc, "SKU-1")
    stock(rpc, pid, 25)
    so = order(rpc, partner, (pid, 3), client_order_ref="CRM-DEAL-42")
    rpc("sale.order", "action_confirm", [[so]])
    with pytest.raises(OdooError) as err:
        rpc("sale.order", "_create_invoices", [[so]])
    assert err.value.name == "odoo.exceptions.AccessError"
    ctx = {"context": {"active_model": "sale.order", "active_ids": [so]}}
    wizard = rpc("sale.advance.payment.inv", "create", [{"advance_payment_method": "delivered"}], ctx)
    action = rpc("sale.advance.payment.inv", "create_invoices", [[wizard]], ctx)
    assert (action["type"], action["res_model"], action["view_mode"]) == (
        "ir.actions.act_window", "account.move", "form")
    inv = action["res_id"]
    fields = ["name", "display_name", "state", "move_type", "partner_id", "invoice_origin", "ref", "amount_untaxed",
              "amount_tax", "amount_total", "amount_residual", "payment_state", "currency_id", "invoice_line_ids"]
    draft = rpc.read1("account.move", inv, fields)
    assert draft | {"invoice_line_ids": None} == {
        "id": inv, "name": "/", "display_name": f"Draft Invoice (* {inv})", "state": "draft",
        "move_type": "out_invoice", "partner_id": [partner, "Acme Test Customer"], "invoice_origin": "S00001",
        "ref": "CRM-DEAL-42", "amount_untaxed": 37.5, "amount_tax": 5.63, "amount_total": 43.13,
        "amount_residual": 43.13, "payment_state": "not_paid", "currency_id": [2, "USD"], "invoice_line_ids": None}
    assert rpc.read1("sale.order", so, ["invoice_status", "invoice_ids"]) == {
        "id": so, "invoice_status": "invoiced", "invoice_ids": [inv]}  # a draft invoice counts, as in Odoo
    assert rpc.read1("res.partner", partner, ["credit"])["credit"] == 0.0  # drafts are not receivable yet
    assert rpc("account.move", "action_post", [[inv]]) is True
    posted = rpc.read1("account.move", inv, ["name", "state", "invoice_date", "invoice_date_due", "payment_state"])
    assert posted == {"id": inv, "name": "INV/2026/00001", "state": "posted", "invoice_date": "2026-03-02",
                      "invoice_date_due": "2026-03-02", "payment_state": "not_paid"}
    assert rpc.read1("res.partner", partner, ["credit"])["credit"] == 43.13

    # a partial payment through the "Register Payment" wizard
    ctx = {"context": {"active_model": "account.move", "active_ids": [inv]}}
    wizard = rpc("account.payment.register", "create", [{"amount": 20.0}], ctx)
    assert rpc.read1("account.payment.register", wizard, ["amount", "communication", "payment_type"], **ctx) | {
        "id": 0} == {"id": 0, "amount": 20.0, "communication": "INV/2026/00001", "payment_type": "inbound"}
    action = rpc("account.payment.register", "action_create_payments", [[wizard]], ctx)
    assert (action["res_model"], action["view_mode"]) == ("account.payment", "form")
    payment = rpc.read1("account.payment", action["res_id"], [
        "name", "amount", "state", "payment_type", "partner_type", "partner_id", "memo", "reconciled_invoice_ids",
        "journal_id", "date"])
    assert payment == {"id": action["res_id"], "name": "PBNK1/2026/00001", "amount": 20.0, "state": "paid",
                       "payment_type": "inbound", "partner_type": "customer",
                       "partner_id": [partner, "Acme Test Customer"], "memo": "INV/2026/00001",
                       "reconciled_invoice_ids": [inv], "journal_id": [5, "Bank"], "date": "2026-03-02"}
    assert rpc.read1("account.move", inv, ["amount_residual", "payment_state"]) == {
        "id": inv, "amount_residual": 23.13, "payment_state": "partial"}
    assert rpc.read1("res.partner", partner, ["credit"])["credit"] == 23.13

    sim.pay(inv)  # the rest
    assert rpc.read1("account.move", inv, ["amount_residual", "payment_state"]) == {
        "id": inv, "amount_residual": 0.0, "payment_state": "paid"}
    assert rpc.read1("res.partner", partner, ["credit"])["credit"] == 0.0
    with pytest.raises(OdooError) as err:
        rpc("account.payment.register", "create", [{}], ctx)
    assert "nothing left to pay" in err.value.message


def test_payment_created_directly_and_posted_reconciles_its_invoices(rpc: Rpc, sim: OdooSimulator) -> None:
    partner = customer(rpc)
    pid = product(rpc, "SKU-1", 100.0)
    first, second = (order(rpc, partner, (pid, 1)) for _ in range(2))
    for so in (first, second):
        sim.confirm(so)
    inv1, inv2 = sim.invoice(first), sim.invoice(second)  # 115.00 each
    pay = rpc("account.payment", "create", [{"partner_id": partner, "amount": 150.0, "payment_type": "inbound",
                                             "partner_type": "customer", "memo": "wire 42",
                                             "invoice_ids": [[6, 0, [inv1, inv2]]]}])
    assert rpc.read1("account.payment", pay, ["state", "name"]) == {"id": pay, "state": "draft", "name": False}
    rpc("account.payment", "action_post", [[pay]])
    states = rpc("account.move", "read", [[inv1, inv2], ["payment_state", "amount_residual"]])
    assert [(s["payment_state"], s["amount_residual"]) for s in states] == [("paid", 0.0), ("partial", 80.0)]
    assert rpc.read1("res.partner", partner, ["credit"])["credit"] == 80.0
    rpc("account.payment", "action_cancel", [[pay]])  # undoes the reconciliation
    assert rpc.read1("res.partner", partner, ["credit"])["credit"] == 230.0


def test_credit_adds_the_opening_balance_and_unreconciled_payments(rpc: Rpc, sim: OdooSimulator) -> None:
    partner = customer(rpc)
    contact = rpc("res.partner", "create", [{"name": "Buyer", "parent_id": partner}])
    sim.set_opening_balance(partner, 50.0)
    sim.set_credit_limit(partner, 1000.0)
    pid = product(rpc, "SKU-1", 10.0)
    so = order(rpc, contact, (pid, 2))  # ordered by a contact: the company owes
    sim.confirm(so)
    inv = sim.invoice(so)
    rows = rpc("res.partner", "read", [[partner, contact], ["credit", "credit_limit", "commercial_partner_id"]])
    assert rows == [{"id": partner, "credit": 73.0, "credit_limit": 1000.0, "commercial_partner_id": [partner, "Acme"]},
                    {"id": contact, "credit": 0.0, "credit_limit": 0.0,
                     "commercial_partner_id": [partner, "Acme"]}]
    advance = rpc("account.payment", "create", [{"partner_id": partner, "amount": 30.0}])
    rpc("account.payment", "action_post", [[advance]])  # no invoice: money on account
    assert rpc.read1("account.payment", advance, ["state", "is_reconciled"]) == {
        "id": advance, "state": "in_process", "is_reconciled": False}
    assert rpc.read1("res.partner", partner, ["credit"])["credit"] == 43.0
    assert rpc.read1("account.move", inv, ["commercial_partner_id"])["commercial_partner_id"] == [partner, "Acme"]


def test_a_credit_note_reverses_the_invoice(rpc: Rpc, sim: OdooSimulator) -> None:
    partner = customer(rpc)
    so = order(rpc, partner, (product(rpc, "SKU-1", 10.0), 1))
    sim.confirm(so)
    inv = sim.invoice(so)
    refund = sim.refund(inv)
    assert rpc.read1("account.move", refund, ["name", "move_type", "reversed_entry_id", "payment_state"]) == {
        "id": refund, "name": "RINV/2026/00001", "move_type": "out_refund",
        "reversed_entry_id": [inv, "INV/2026/00001"], "payment_state": "reversed"}
    assert rpc.read1("account.move", inv, ["payment_state", "amount_residual"]) == {
        "id": inv, "payment_state": "reversed", "amount_residual": 0.0}
    assert rpc.read1("sale.order", so, ["invoice_status"])["invoice_status"] == "to invoice"
    assert rpc.read1("res.partner", partner, ["credit"])["credit"] == 0.0


def test_enterprise_in_payment_state_switch(rpc: Rpc, sim: OdooSimulator) -> None:
    sim.company.in_payment = True
    so = order(rpc, customer(rpc), (product(rpc, "SKU-1"), 1))
    sim.confirm(so)
    inv = sim.invoice(so)
    sim.pay(inv)
    assert rpc.read1("account.move", inv, ["payment_state"])["payment_state"] == "in_payment"


def test_posting_checks_and_posted_entries_are_read_only(rpc: Rpc) -> None:
    partner = customer(rpc)
    empty = rpc("account.move", "create", [{"move_type": "out_invoice", "partner_id": partner}])
    with pytest.raises(OdooError) as err:
        rpc("account.move", "action_post", [[empty]])
    assert err.value.message == "You need to add a line before posting."
    no_partner = rpc("account.move", "create", [{"move_type": "out_invoice", "invoice_line_ids": [
        [0, 0, {"product_id": product(rpc, "SKU-1"), "quantity": 2}]]}])
    with pytest.raises(OdooError) as err:
        rpc("account.move", "action_post", [[no_partner]])
    assert err.value.message == ("The field 'Customer' is required, please complete it to validate the "
                                 "Customer Invoice.")
    rpc("account.move", "write", [[no_partner], {"partner_id": partner}])
    rpc("account.move", "action_post", [[no_partner]])
    assert rpc.read1("account.move", no_partner, ["name", "amount_total"]) == {
        "id": no_partner, "name": "INV/2026/00001", "amount_total": 28.75}
    with pytest.raises(OdooError) as err:
        rpc("account.move", "write", [[no_partner], {"partner_id": False}])
    assert err.value.message.startswith("You cannot modify a posted entry")
    rpc("account.move", "write", [[no_partner], {"ref": "PO-7"}])  # harmless fields are fine


# ==================================================================================== purchases
def test_purchase_order_create_confirm_and_receive(rpc: Rpc, sim: OdooSimulator) -> None:
    vendor = rpc("res.partner", "create", [{"name": "Parts Inc", "is_company": True, "supplier_rank": 1}])
    pid = product(rpc, "SKU-1", 12.5, standard_price=7.0)
    po = rpc("purchase.order", "create", [{"partner_id": vendor, "origin": "S00042", "order_line": [
        [0, 0, {"product_id": pid, "product_qty": 4}]]}])
    fields = ["name", "state", "partner_id", "origin", "amount_untaxed", "amount_total", "receipt_status",
              "invoice_status", "picking_ids"]
    assert rpc.read1("purchase.order", po, fields) == {
        "id": po, "name": "P00001", "state": "draft", "partner_id": [vendor, "Parts Inc"], "origin": "S00042",
        "amount_untaxed": 28.0, "amount_total": 32.2, "receipt_status": False, "invoice_status": "no",
        "picking_ids": []}
    (line,) = rpc("purchase.order.line", "search_read", [[["order_id", "=", po]]],
                  {"fields": ["name", "price_unit", "product_qty", "date_planned", "taxes_id"]})
    assert (line["name"], line["price_unit"], line["product_qty"], line["date_planned"]) == (
        "[SKU-1] Widget SKU-1", 7.0, 4.0, "2026-03-02 09:30:15")
    assert rpc("account.tax", "read", [line["taxes_id"], ["type_tax_use"]])[0]["type_tax_use"] == "purchase"
    assert rpc("purchase.order", "button_confirm", [[po]]) is True
    row = rpc.read1("purchase.order", po, fields)
    assert (row["state"], row["receipt_status"]) == ("purchase", "pending")
    pick = rpc.read1("stock.picking", row["picking_ids"][0], ["name", "state", "picking_type_code", "origin"])
    assert (pick["name"], pick["state"], pick["picking_type_code"], pick["origin"]) == (
        "WH/IN/00001", "assigned", "incoming", "P00001")
    assert qty(rpc, pid) == {"qty_available": 0.0, "free_qty": 0.0, "virtual_available": 4.0, "incoming_qty": 4.0,
                             "outgoing_qty": 0.0}
    sim.receive(po)
    assert qty(rpc, pid)["qty_available"] == 4.0
    row = rpc.read1("purchase.order", po, ["receipt_status", "invoice_status"])
    assert (row["receipt_status"], row["invoice_status"]) == ("full", "to invoice")
    assert rpc("purchase.order.line", "read", [[line["id"]], ["qty_received"]])[0]["qty_received"] == 4.0
    assert rpc("purchase.order", "button_confirm", [[po]]) is True  # not draft: skipped, as in Odoo


# ==================================================================================== write_date and polling
def test_write_date_moves_with_stored_recomputations(rpc: Rpc, sim: OdooSimulator, clock: Clock) -> None:
    partner = customer(rpc)
    pid = product(rpc, "SKU-1")
    stock(rpc, pid, 10)
    so = order(rpc, partner, (pid, 2))

    def stamps() -> tuple[str, str]:
        return (rpc.read1("sale.order", so, ["write_date"])["write_date"],
                rpc.read1("res.partner", partner, ["write_date"])["write_date"])

    assert stamps() == ("2026-03-02 09:30:15", "2026-03-02 09:30:15")
    clock.advance(60)
    sim.confirm(so)
    clock.advance(60)
    sim.deliver(so)  # delivery_status and qty_delivered are recomputed: the order is written
    assert rpc.read1("sale.order", so, ["write_date", "delivery_status"]) == {
        "id": so, "write_date": "2026-03-02 09:32:15", "delivery_status": "full"}
    clock.advance(60)
    inv = sim.invoice(so)  # invoice_status changes
    assert rpc.read1("sale.order", so, ["write_date", "invoice_status"]) == {
        "id": so, "write_date": "2026-03-02 09:33:15", "invoice_status": "invoiced"}
    assert rpc.read1("account.move", inv, ["write_date"])["write_date"] == "2026-03-02 09:33:15"
    clock.advance(60)
    sim.pay(inv)
    # the invoice's stored amount_residual/payment_state changed; the order and the partner did not
    assert rpc("account.move", "search", [[["write_date", ">", "2026-03-02 09:33:15"]]]) == [inv]
    assert stamps() == ("2026-03-02 09:33:15", "2026-03-02 09:30:15")
    assert rpc.read1("res.partner", partner, ["credit"])["credit"] == 0.0
    # a line edit that changes the amounts moves the order
    clock.advance(60)
    (line,) = rpc.read1("sale.order", so, ["order_line"])["order_line"]
    rpc("sale.order.line", "write", [[line], {"product_uom_qty": 3}])
    assert rpc.read1("sale.order", so, ["write_date", "invoice_status"]) == {
        "id": so, "write_date": "2026-03-02 09:35:15", "invoice_status": "to invoice"}


def test_template_edits_do_not_move_the_variant_write_date(rpc: Rpc, clock: Clock) -> None:
    pid = product(rpc, "SKU-1")
    tmpl = rpc.read1("product.product", pid, ["product_tmpl_id"])["product_tmpl_id"][0]
    assert rpc.read1("product.template", tmpl, ["default_code", "product_variant_ids", "name"]) == {
        "id": tmpl, "default_code": "SKU-1", "product_variant_ids": [pid], "name": "Widget SKU-1"}
    clock.advance(10)
    rpc("product.product", "write", [[pid], {"list_price": 15.0}])  # through the variant: both move
    assert rpc.read1("product.product", pid, ["write_date", "lst_price"]) == {
        "id": pid, "write_date": "2026-03-02 09:30:25", "lst_price": 15.0}
    assert rpc.read1("product.template", tmpl, ["write_date"])["write_date"] == "2026-03-02 09:30:25"
    clock.advance(10)
    rpc("product.template", "write", [[tmpl], {"name": "Renamed"}])  # the product form: only the template
    assert rpc.read1("product.product", pid, ["write_date", "display_name"]) == {
        "id": pid, "write_date": "2026-03-02 09:30:25", "display_name": "[SKU-1] Renamed"}
    assert rpc("product.product", "search", [["|", ["write_date", ">", "2026-03-02 09:30:25"],
                                              ["product_tmpl_id.write_date", ">", "2026-03-02 09:30:25"]]]) == [pid]
    # a template created directly gets its variant; the SKU written on the template lands on it
    tmpl2 = rpc("product.template", "create", [{"name": "Gadget", "default_code": "SKU-2", "list_price": 3}])
    (variant,) = rpc.read1("product.template", tmpl2, ["product_variant_ids"])["product_variant_ids"]
    assert rpc.read1("product.product", variant, ["default_code", "name", "list_price", "taxes_id"]) == {
        "id": variant, "default_code": "SKU-2", "name": "Gadget", "list_price": 3.0, "taxes_id": [1]}
    rpc("product.product", "unlink", [[variant]])
    assert rpc("product.template", "exists", [[tmpl2]]) == []


# ==================================================================================== stock scope
def test_quantities_per_warehouse_and_location_context(rpc: Rpc, sim: OdooSimulator) -> None:
    pid = product(rpc, "SKU-1")
    second = sim.add_warehouse("Second", "WH2")
    wh2 = rpc.read1("stock.warehouse", second, ["lot_stock_id", "in_type_id", "out_type_id"])
    assert wh2["lot_stock_id"][1] == "WH2/Stock" and wh2["out_type_id"][1] == "Second: Delivery Orders"
    sim.set_stock("SKU-1", 10)
    sim.set_stock("SKU-1", 4, warehouse="WH2")
    assert qty(rpc, pid)["qty_available"] == 14.0
    assert qty(rpc, pid, warehouse_id=1)["qty_available"] == 10.0
    assert qty(rpc, pid, warehouse_id="Second")["qty_available"] == 4.0
    assert qty(rpc, pid, location=wh2["lot_stock_id"][0])["qty_available"] == 4.0
    assert qty(rpc, pid, warehouse=second)["qty_available"] == 14.0  # Odoo <= 16's key: ignored by 18
    so = order(rpc, customer(rpc), (pid, 3), warehouse_id=second)
    sim.confirm(so)
    assert qty(rpc, pid, warehouse_id=second) == {"qty_available": 4.0, "free_qty": 1.0, "virtual_available": 1.0,
                                                  "incoming_qty": 0.0, "outgoing_qty": 3.0}
    assert qty(rpc, pid, warehouse_id=1)["outgoing_qty"] == 0.0
    assert rpc("product.product", "search", [[["qty_available", ">", 12]]]) == [pid]
    pick = rpc("stock.picking", "search_read", [[["sale_id", "=", so]]], {"fields": ["name"]})
    assert pick[0]["name"] == "WH2/OUT/00001"


# ==================================================================================== direct helpers
def test_seed_products_at_benchmark_scale(clock: Clock) -> None:
    with OdooSimulator(clock=clock) as a, OdooSimulator(clock=clock) as b:
        ids = a.seed_products(50_000, seed=3)
        b.seed_products(50_000, seed=3)
        assert a.all("product.template")[-1] == b.all("product.template")[-1]
        rpc = Rpc(a)
        first = rpc("product.product", "search_read", [[["default_code", "in", ["SKU-00001", "SKU-50000"]]]], {
            "fields": ["default_code", "barcode", "type", "is_storable", "list_price", "qty_available", "taxes_id"],
            "order": "id"})
        assert [r["default_code"] for r in first] == ["SKU-00001", "SKU-50000"]
        assert first[0]["barcode"] == ean13(1) and len(first[0]["barcode"]) == 13
        assert all(r["type"] == "consu" and r["is_storable"] and r["taxes_id"] == [1] for r in first)
        page = rpc("product.product", "search_read", [[["id", "<=", 1000]]], {"fields": ["qty_available"]})
        on_hand = [r["qty_available"] for r in page]
        assert len(ids) == 50_000 and len(page) == 1000
        assert 0.0 in on_hand and max(on_hand) > 100  # some out of stock, most stocked
        assert rpc("stock.quant", "search_count", [[["location_id", "=", 8]]]) == 50_000
        assert a.seed_products(2, with_stock=False) == [50_001, 50_002]
        assert rpc.read1("product.product", 50_002, ["default_code", "qty_available"]) == {
            "id": 50_002, "default_code": "SKU-50002", "qty_available": 0.0}


def test_ean13_check_digit() -> None:
    assert ean13(1) == "2000000000015"
    digits = [int(d) for d in ean13(123456)]
    assert sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0


def test_deliver_without_stock_is_refused_unless_forced(rpc: Rpc, sim: OdooSimulator) -> None:
    pid = product(rpc, "SKU-1")
    so = order(rpc, customer(rpc), (pid, 2))
    sim.confirm(so)
    with pytest.raises(UserError, match="no quantities are reserved"):
        sim.deliver(so)
    sim.deliver(so, force=True)
    assert rpc.read1("sale.order", so, ["delivery_status"])["delivery_status"] == "full"
    with pytest.raises(UserError, match="no open transfer"):
        sim.deliver(so)


def test_unknown_sku_in_helpers(sim: OdooSimulator) -> None:
    with pytest.raises(KeyError, match="SKU-404"):
        sim.set_stock("SKU-404", 1)
