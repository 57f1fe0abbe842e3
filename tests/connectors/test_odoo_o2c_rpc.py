"""Odoo order-to-cash against mocked JSON-RPC (``responses``): the exact command tuples, calls and
errors of order writes, order operations and purchase requests."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
import responses

from connectors.base import EntitySpec, PurchaseRequest, RetryableError, ValidationError, WriteOp
from connectors.odoo import OdooConnector, OdooSettings

URL = "https://erp.example.com"
KEY = "s3cret-api-key-0123"

ORDER = EntitySpec(
    entity="order", object="sale.order", id_field="id", updated_field="write_date",
    fields=("id", "write_date", "client_order_ref", "partner_id", "date_order", "order_line", "amount_total", "name",
            "concord_status"),
    key_field="client_order_ref",
    options={"xmlid_prefix": "hubspot_deal_",
             "items": {"order_line": {"model": "sale.order.line", "key": "x_concord_line_ref"}},
             "item_fields": {"order_line": ("x_concord_line_ref", "product_id.default_code", "product_uom_qty",
                                            "price_unit", "discount")}})

FIELDS: dict[str, dict[str, Any]] = {
    "sale.order": {
        "id": {"type": "integer"}, "name": {"type": "char"}, "state": {"type": "selection"},
        "write_date": {"type": "datetime"}, "client_order_ref": {"type": "char"},
        "partner_id": {"type": "many2one", "relation": "res.partner"}, "date_order": {"type": "datetime"},
        "order_line": {"type": "one2many", "relation": "sale.order.line", "relation_field": "order_id"},
        "amount_total": {"type": "monetary"}, "x_concord_hold": {"type": "char"},
        "invoice_ids": {"type": "many2many", "relation": "account.move"},
        "picking_ids": {"type": "one2many", "relation": "stock.picking"},
        "invoice_status": {"type": "selection"}},
    "sale.order.line": {
        "id": {"type": "integer"}, "order_id": {"type": "many2one", "relation": "sale.order"},
        "product_id": {"type": "many2one", "relation": "product.product"}, "product_uom_qty": {"type": "float"},
        "price_unit": {"type": "float"}, "discount": {"type": "float"}, "x_concord_line_ref": {"type": "char"},
        "display_type": {"type": "selection"}, "sequence": {"type": "integer"}},
    "stock.move": {"id": {"type": "integer"}, "quantity": {"type": "float"}, "product_uom_qty": {"type": "float"},
                   "state": {"type": "selection"}, "sale_line_id": {"type": "many2one", "relation": "sale.order.line"},
                   "picking_id": {"type": "many2one", "relation": "stock.picking"}},
    "purchase.order.line": {"id": {"type": "integer"}, "order_id": {"type": "many2one", "relation": "purchase.order"},
                            "x_concord_po_key": {"type": "char"}},
}
PRODUCTS = {"SKU-1": 41, "SKU-2": 42, "SKU-3": 43}


def odoo_error(name: str, message: str) -> dict[str, Any]:
    return {"code": 200, "message": "Odoo Server Error",
            "data": {"name": name, "message": message, "debug": "Traceback ...", "arguments": [message],
                     "context": {}}}


class Err:
    def __init__(self, error: dict[str, Any]) -> None:
        self.error = error


class FakeOdoo:
    """A scripted /jsonrpc endpoint; object calls are routed to handlers by (model, method)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, list[Any], dict[str, Any]]] = []
        self.handlers: dict[tuple[str, str], Callable[[list[Any], dict[str, Any]], Any]] = {
            ("ir.model.data", "search_read"): lambda a, k: [],
            ("ir.model.data", "create"): lambda a, k: list(range(900, 900 + len(a[0]))),
            ("product.product", "search_read"): self._products,
        }
        for model, fields in FIELDS.items():
            self.handlers[(model, "fields_get")] = lambda a, k, f=fields: f

    @staticmethod
    def _products(args: list[Any], kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        (_, _, codes), *_ = args[0]
        return [{"id": PRODUCTS[c], "default_code": c, "product_tmpl_id": [PRODUCTS[c] + 100, c]}
                for c in codes if c in PRODUCTS]

    def on(self, model: str, method: str, handler: Callable[[list[Any], dict[str, Any]], Any]) -> None:
        self.handlers[(model, method)] = handler

    def of(self, model: str, method: str) -> list[tuple[list[Any], dict[str, Any]]]:
        return [(a, k) for m, meth, a, k in self.calls if (m, meth) == (model, method)]

    def __call__(self, request: requests.PreparedRequest) -> Any:
        body = json.loads(request.body)
        params = body["params"]
        if params["service"] == "common":
            result: Any = 2
        else:
            _db, _uid, _pw, model, method, args, kwargs = params["args"]
            self.calls.append((model, method, args, kwargs))
            handler = self.handlers.get((model, method))
            if handler is None and method == "fields_get":
                handler = lambda a, k: {}
            assert handler is not None, f"unexpected call {model}.{method} {args}"
            result = handler(args, kwargs)
        if isinstance(result, Exception):
            return result
        answer: dict[str, Any] = {"jsonrpc": "2.0", "id": body["id"]}
        if isinstance(result, Err):
            answer["error"] = result.error
        elif result is not None:
            answer["result"] = result
        return (200, {"Content-Type": "application/json"}, json.dumps(answer))


@pytest.fixture
def fake() -> Iterator[FakeOdoo]:
    fake = FakeOdoo()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, f"{URL}/jsonrpc", callback=fake)
        yield fake


@pytest.fixture
def conn() -> Iterator[OdooConnector]:
    settings = OdooSettings(url=URL, db="prod", username="sync@example.com", api_key=KEY, max_attempts=3,
                            purchase_vendor_id=77)
    connector = OdooConnector(settings)
    connector.rpc.http.settings = type(connector.rpc.http.settings)(
        **{**connector.rpc.http.settings.__dict__, "backoff_initial": 0.001, "backoff_max": 0.002})
    yield connector
    connector.close()


def line(ref: str, sku: str | None, qty: str, price: str | None = "10", discount: str | None = None) -> dict[str, Any]:
    return {"x_concord_line_ref": ref, "product_id.default_code": sku, "product_uom_qty": Decimal(qty),
            "price_unit": Decimal(price) if price is not None else None,
            "discount": Decimal(discount) if discount is not None else None}


# ------------------------------------------------------------------ creates
def test_create_sends_lines_as_create_commands_with_products_resolved(fake: FakeOdoo, conn: OdooConnector) -> None:
    fake.on("sale.order", "search_read", lambda a, k: [])
    fake.on("sale.order", "create", lambda a, k: [501])
    [result] = conn.write(ORDER, [WriteOp("deal-1", {
        "partner_id": "7", "date_order": "2026-11-26", "concord_status": "draft",
        "order_line": [line("L1", "SKU-1", "3", "12.50"), line("L2", "SKU-2", "1", None, "5")]}, key="D-1")])
    assert (result.ok, result.target_id, result.created) == (True, "501", True)
    [(args, _)] = fake.of("sale.order", "create")
    assert args == [[{
        "partner_id": 7, "date_order": "2026-11-26", "client_order_ref": "D-1",
        "order_line": [[0, 0, {"x_concord_line_ref": "L1", "product_id": 41, "product_uom_qty": 3.0,
                               "price_unit": 12.5}],
                       [0, 0, {"x_concord_line_ref": "L2", "product_id": 42, "product_uom_qty": 1.0,
                               "discount": 5.0}]]}]]
    [(lookup, _)] = fake.of("product.product", "search_read")
    assert sorted(lookup[0][0][2]) == ["SKU-1", "SKU-2"]  # both SKUs in one batched lookup
    [(xmlids, _)] = fake.of("ir.model.data", "create")
    assert xmlids[0][0]["name"] == "hubspot_deal_d_1_" + xmlids[0][0]["name"].rsplit("_", 1)[1]
    assert (xmlids[0][0]["model"], xmlids[0][0]["res_id"]) == ("sale.order", 501)


def test_unknown_sku_fails_only_that_order_and_writes_nothing_of_it(fake: FakeOdoo, conn: OdooConnector) -> None:
    fake.on("sale.order", "search_read", lambda a, k: [])
    fake.on("sale.order", "create", lambda a, k: [502])
    bad, good = conn.write(ORDER, [
        WriteOp("deal-1", {"partner_id": 7, "order_line": [line("L1", "SKU-1", "1"), line("L2", "NOPE", "2")]},
                key="D-1"),
        WriteOp("deal-2", {"partner_id": 7, "order_line": [line("L9", "SKU-3", "1")]}, key="D-2")])
    assert not bad.ok
    assert isinstance(bad.error, ValidationError)
    assert (bad.error.field, bad.error.message) == ("lines[L2].sku", "no product with SKU 'NOPE' in Odoo")
    assert good.ok and good.target_id == "502"
    [(args, _)] = fake.of("sale.order", "create")
    assert [v["client_order_ref"] for v in args[0]] == ["D-2"]


@pytest.mark.parametrize(("lines", "field", "message"), [
    ([line("L1", None, "1")], "lines[L1].sku", "the line has no SKU"),
    ([line("", "SKU-1", "1")], "lines[0].line_ref", "cannot be matched"),
    ([line("L1", "SKU-1", "1"), line("L1", "SKU-2", "1")], "lines[1].line_ref", "appears twice"),
])
def test_lines_that_cannot_be_written_fail_the_order(fake: FakeOdoo, conn: OdooConnector, lines: list[Any],
                                                     field: str, message: str) -> None:
    fake.on("sale.order", "search_read", lambda a, k: [])
    [result] = conn.write(ORDER, [WriteOp("deal-1", {"partner_id": 7, "order_line": lines}, key="D-1")])
    assert isinstance(result.error, ValidationError)
    assert result.error.field == field
    assert message in result.error.message
    assert fake.of("sale.order", "create") == []


# ------------------------------------------------------------------ updates
EXISTING_LINES = [
    {"id": 11, "order_id": [501, "S00012"], "x_concord_line_ref": "L1", "product_id": [41, "W1"],
     "product_uom_qty": 3.0, "price_unit": 10.0, "discount": 0.0},
    {"id": 12, "order_id": [501, "S00012"], "x_concord_line_ref": "L2", "product_id": [42, "W2"],
     "product_uom_qty": 1.0, "price_unit": 10.0, "discount": 0.0},
    {"id": 13, "order_id": [501, "S00012"], "x_concord_line_ref": "L3", "product_id": [43, "W3"],
     "product_uom_qty": 2.0, "price_unit": 10.0, "discount": 0.0},
    {"id": 14, "order_id": [501, "S00012"], "x_concord_line_ref": False, "product_id": [43, "Freight"],
     "product_uom_qty": 1.0, "price_unit": 25.0, "discount": 0.0},
]


def order_row(state: str) -> Callable[[list[Any], dict[str, Any]], Any]:
    def handler(args: list[Any], kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"id": 501, "name": "S00012", "state": state, "partner_id": [7, "Acme"]}]
    return handler


def test_update_of_a_draft_order_sends_exactly_the_line_changes(fake: FakeOdoo, conn: OdooConnector) -> None:
    fake.on("sale.order", "search_read", order_row("draft"))
    fake.on("sale.order.line", "search_read", lambda a, k: EXISTING_LINES)
    fake.on("sale.order", "write", lambda a, k: True)
    [result] = conn.write(ORDER, [WriteOp("deal-1", {"partner_id": "7", "order_line": [
        line("L1", "SKU-1", "5"), line("L2", "SKU-2", "1"), line("L4", "SKU-3", "7", "9")]}, target_id="501")])
    assert result.ok, result.error
    [(args, _)] = fake.of("sale.order", "write")
    assert args == [[501], {"order_line": [
        [1, 11, {"product_uom_qty": 5.0, "price_unit": 10.0}],  # qty changed: price pinned against recompute
        [0, 0, {"x_concord_line_ref": "L4", "product_id": 43, "product_uom_qty": 7.0, "price_unit": 9.0}],
        [2, 13, 0]]}]  # L2 unchanged, line 14 (no key: added in Odoo) left alone
    [(domain, _)] = fake.of("sale.order.line", "search_read")
    assert ["display_type", "=", False] in domain[0]


def test_resync_of_unchanged_order_makes_no_write(fake: FakeOdoo, conn: OdooConnector) -> None:
    fake.on("sale.order", "search_read", order_row("draft"))
    fake.on("sale.order.line", "search_read", lambda a, k: EXISTING_LINES)
    [result] = conn.write(ORDER, [WriteOp("deal-1", {"partner_id": "7", "order_line": [
        line("L1", "SKU-1", "3"), line("L2", "SKU-2", "1"), line("L3", "SKU-3", "2")]}, target_id="501")])
    assert result.ok and result.target_id == "501"
    assert fake.of("sale.order", "write") == []


@pytest.mark.parametrize(("state", "word"), [("sale", "confirmed"), ("cancel", "cancelled")])
def test_update_of_a_confirmed_order_is_refused_never_silently(fake: FakeOdoo, conn: OdooConnector, state: str,
                                                               word: str) -> None:
    fake.on("sale.order", "search_read", order_row(state))
    fake.on("sale.order.line", "search_read", lambda a, k: EXISTING_LINES)
    [result] = conn.write(ORDER, [WriteOp("deal-1", {"order_line": [line("L1", "SKU-1", "4")]}, target_id="501")])
    assert not result.ok
    assert isinstance(result.error, ValidationError)
    assert result.error.field is None
    assert result.error.message == f"Odoo order S00012 is {word} (locked): the CRM change was not applied"
    assert fake.of("sale.order", "write") == []


def test_confirmed_order_without_changes_is_not_an_error(fake: FakeOdoo, conn: OdooConnector) -> None:
    fake.on("sale.order", "search_read", order_row("sale"))
    fake.on("sale.order.line", "search_read", lambda a, k: EXISTING_LINES)
    [result] = conn.write(ORDER, [WriteOp("deal-1", {"partner_id": 7, "order_line": [
        line("L1", "SKU-1", "3"), line("L2", "SKU-2", "1"), line("L3", "SKU-3", "2")]}, target_id="501")])
    assert result.ok
    assert fake.of("sale.order", "write") == []


# ------------------------------------------------------------------ order operations
def test_confirm_order_treats_an_already_confirmed_order_as_done(fake: FakeOdoo, conn: OdooConnector) -> None:
    fake.on("sale.order", "action_confirm", lambda a, k: Err(odoo_error(
        "odoo.exceptions.UserError", "Some orders are not in a state requiring confirmation.")))
    fake.on("sale.order", "search_read", lambda a, k: [{"id": 501, "state": "sale"}])
    conn.confirm_order(ORDER, "501")
    assert len(fake.of("sale.order", "action_confirm")) == 1


def test_confirm_order_refused_raises_validation_error(fake: FakeOdoo, conn: OdooConnector) -> None:
    fake.on("sale.order", "action_confirm", lambda a, k: Err(odoo_error(
        "odoo.exceptions.UserError", "A product is archived.")))
    fake.on("sale.order", "search_read", lambda a, k: [{"id": 501, "state": "draft"}])
    with pytest.raises(ValidationError, match="archived"):
        conn.confirm_order(ORDER, "501")


def test_confirm_order_with_lost_answer_checks_the_state_and_never_resends(fake: FakeOdoo,
                                                                          conn: OdooConnector) -> None:
    fake.on("sale.order", "action_confirm", lambda a, k: requests.ConnectionError("connection reset"))
    fake.on("sale.order", "search_read", lambda a, k: [{"id": 501, "state": "sale"}])
    conn.confirm_order(ORDER, "501")
    assert len(fake.of("sale.order", "action_confirm")) == 1
    fake.on("sale.order", "search_read", lambda a, k: [{"id": 501, "state": "draft"}])
    with pytest.raises(RetryableError):
        conn.confirm_order(ORDER, "501")


def test_hold_and_held_orders(fake: FakeOdoo, conn: OdooConnector) -> None:
    fake.on("sale.order", "write", lambda a, k: True)
    fake.on("sale.order", "search", lambda a, k: [3, 9])
    conn.hold_order(ORDER, "501", "credit limit 1000.00 exceeded")
    conn.hold_order(ORDER, "501", None)
    assert [a for a, _ in fake.of("sale.order", "write")] == [
        [[501], {"x_concord_hold": "credit limit 1000.00 exceeded"}], [[501], {"x_concord_hold": False}]]
    assert conn.held_orders(ORDER) == ["3", "9"]
    [(domain, _)] = fake.of("sale.order", "search")
    assert domain == [[["state", "in", ["draft", "sent"]], ["x_concord_hold", "!=", False]]]


def test_order_states_reservations_from_first_step_moves(fake: FakeOdoo, conn: OdooConnector) -> None:
    fake.on("sale.order", "search_read", lambda a, k: [
        {"id": 501, "name": "S00012", "state": "sale", "amount_total": 43.13, "partner_id": [7, "Acme"],
         "x_concord_hold": False}])
    fake.on("sale.order.line", "search_read", lambda a, k: EXISTING_LINES[:3])
    fake.on("product.product", "search_read", lambda a, k: [
        {"id": 41, "default_code": "SKU-1"}, {"id": 42, "default_code": "SKU-2"}, {"id": 43, "default_code": "SKU-3"}])
    fake.on("stock.move", "search_read", lambda a, k: [
        {"id": 1, "sale_line_id": [11, "x"], "product_uom_qty": 3.0, "quantity": 3.0, "state": "assigned"},
        {"id": 2, "sale_line_id": [12, "x"], "product_uom_qty": 1.0, "quantity": 0.0, "state": "confirmed"},
        {"id": 3, "sale_line_id": [13, "x"], "product_uom_qty": 2.0, "quantity": 0.5, "state": "partially_available"},
        {"id": 4, "sale_line_id": [13, "x"], "product_uom_qty": 2.0, "quantity": 2.0, "state": "cancel"}])
    state = conn.order_states(ORDER, ["501", "x"])["501"]
    assert (state.state, state.number, state.amount_total, state.held, state.partner_id) == \
        ("confirmed", "S00012", Decimal("43.13"), False, "7")
    assert [(ln.line_ref, ln.sku, ln.quantity, ln.reserved, ln.shortfall) for ln in state.lines] == [
        ("L1", "SKU-1", Decimal("3.0"), Decimal("3.0"), Decimal(0)),
        ("L2", "SKU-2", Decimal("1.0"), Decimal("0.0"), Decimal("1.0")),
        ("L3", "SKU-3", Decimal("2.0"), Decimal("0.5"), Decimal("1.5"))]


# ------------------------------------------------------------------ purchase requests
def test_purchase_request_after_lost_answer_is_found_by_key_not_created_twice(fake: FakeOdoo,
                                                                              conn: OdooConnector) -> None:
    created: list[Any] = []

    def create(args: list[Any], kwargs: dict[str, Any]) -> Any:
        created.append(args)
        return requests.ConnectionError("connection reset after the request was sent")

    def lines(args: list[Any], kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        # Before the create: nothing; after it: the line exists with its key.
        return [{"id": 70, "order_id": [7001, "P00001"], "x_concord_po_key": "501:L2"}] if created else []

    fake.on("purchase.order", "create", create)
    fake.on("purchase.order.line", "search_read", lines)
    fake.on("product.supplierinfo", "search_read", lambda a, k: [])  # no vendor: the configured one
    [result] = conn.request_purchases([PurchaseRequest("501:L2", "SKU-2", Decimal(1), "S00012")])
    assert (result.ok, result.ref, result.target_id) == (True, "501:L2", "7001")
    assert len(created) == 1
    assert created[0] == [[{"partner_id": 77, "origin": "S00012", "order_line": [
        [0, 0, {"product_id": 42, "product_qty": 1.0, "x_concord_po_key": "501:L2"}]]}]]
    [(xmlid, _)] = fake.of("ir.model.data", "create")  # the key field lookup repaired the external id
    assert xmlid[0][0]["model"] == "purchase.order.line" and xmlid[0][0]["res_id"] == 70
    assert xmlid[0][0]["name"].startswith("po_501_l2_")


def test_purchase_requests_unknown_sku_fails_alone(fake: FakeOdoo, conn: OdooConnector) -> None:
    fake.on("purchase.order.line", "search_read", lambda a, k: [
        {"id": 71, "order_id": [7002, "P00002"], "x_concord_po_key": "k2"}] if fake.of("purchase.order", "create")
        else [])
    fake.on("purchase.order", "create", lambda a, k: [7002])
    fake.on("product.supplierinfo", "search_read", lambda a, k: [
        {"id": 1, "partner_id": [55, "Widget Supply"], "product_id": False, "product_tmpl_id": [141, "W1"],
         "sequence": 1}])
    bad, good = conn.request_purchases([PurchaseRequest("k1", "NOPE", Decimal(1), "S1"),
                                        PurchaseRequest("k2", "SKU-1", Decimal(2), "S1")])
    assert isinstance(bad.error, ValidationError) and bad.error.message == "no product with SKU 'NOPE' in Odoo"
    assert (good.ok, good.target_id, good.created) == (True, "7002", True)
    [(args, _)] = fake.of("purchase.order", "create")
    assert args[0][0]["partner_id"] == 55  # the product's vendor (product.supplierinfo)
