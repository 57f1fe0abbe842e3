"""Odoo order-to-cash pieces without HTTP: status precedence, per-line diffs, setup declarations."""
from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.base import EntitySpec
from connectors.odoo.lines import line_commands
from connectors.odoo.orders import canonical_state
from connectors.odoo.setup import wanted_fields
from connectors.odoo.status import OrderFacts, order_status
from connectors.odoo.stock import is_short, reserved_quantity
from connectors.odoo.values import same_value
from connectors.odoo.virtual import is_virtual


# ------------------------------------------------------------------ status precedence
@pytest.mark.parametrize(("facts", "status"), [
    (OrderFacts("draft"), "draft"),
    (OrderFacts("sent"), "draft"),
    (OrderFacts("draft", held=True), "credit_hold"),
    (OrderFacts("cancel", held=True, invoice_states=["paid"]), "cancelled"),
    (OrderFacts("sale"), "confirmed"),
    (OrderFacts("sale", held=True), "confirmed"),  # a stale hold does not outrank confirmation
    (OrderFacts("sale", short=True), "backordered"),
    (OrderFacts("sale", deliveries=["assigned", "done"], short=True), "backordered"),
    (OrderFacts("sale", deliveries=["done", "cancel"], short=True), "shipped"),
    (OrderFacts("sale", deliveries=["cancel"]), "confirmed"),
    (OrderFacts("sale", deliveries=["done"], invoice_states=["not_paid"]), "invoiced"),
    (OrderFacts("sale", invoice_states=["paid", "partial"]), "invoiced"),
    (OrderFacts("sale", invoice_states=["paid", "in_payment"], short=True), "paid"),
    (OrderFacts("sale", invoice_states=["paid"], to_invoice=True), "invoiced"),  # more left to invoice
    (OrderFacts("sale", invoice_states=["reversed"], deliveries=["done"]), "shipped"),
    (OrderFacts("done", invoice_states=["paid"]), "paid"),
])
def test_order_status_precedence(facts: OrderFacts, status: str) -> None:
    assert order_status(facts) == status


def test_canonical_order_states() -> None:
    assert [canonical_state(s) for s in ("draft", "sent", "sale", "done", "cancel")] == \
        ["draft", "draft", "confirmed", "confirmed", "cancelled"]


# ------------------------------------------------------------------ reservations
def test_short_and_reserved_moves() -> None:
    assert is_short({"state": "confirmed", "quantity": 0.0, "product_uom_qty": 2.0})
    assert is_short({"state": "partially_available", "quantity": 1.0, "product_uom_qty": 2.0})
    assert not is_short({"state": "assigned", "quantity": 2.0, "product_uom_qty": 2.0})
    assert not is_short({"state": "done", "quantity": 1.0, "product_uom_qty": 2.0})
    assert not is_short({"state": "waiting", "quantity": 0.0, "product_uom_qty": 2.0, "move_orig_ids": [4]})
    assert reserved_quantity([
        {"state": "done", "quantity": 1.0}, {"state": "assigned", "quantity": 0.5},
        {"state": "cancel", "quantity": 3.0}, {"state": "waiting", "quantity": 9.0, "move_orig_ids": [1]},
    ]) == Decimal("1.5")


# ------------------------------------------------------------------ line diff
EXISTING = [
    {"id": 1, "ref": "a", "product_id": [5, "W"], "product_uom_qty": 2.0, "price_unit": 10.0},
    {"id": 2, "ref": "b", "product_id": [6, "X"], "product_uom_qty": 1.0, "price_unit": 10.0},
    {"id": 3, "ref": "a", "product_id": [5, "W"], "product_uom_qty": 2.0, "price_unit": 10.0},  # duplicate key
    {"id": 4, "ref": False, "product_id": [9, "Freight"], "product_uom_qty": 1.0, "price_unit": 5.0},
]


def test_line_commands_update_create_delete() -> None:
    desired = [{"ref": "a", "product_id": 5, "product_uom_qty": 2.0, "price_unit": 12.0},
               {"ref": "c", "product_id": 7, "product_uom_qty": 1.0}]
    assert line_commands(EXISTING, desired, "ref") == [
        [2, 3, 0],  # the duplicate of "a"
        [1, 1, {"price_unit": 12.0}],
        [0, 0, {"ref": "c", "product_id": 7, "product_uom_qty": 1.0}],
        [2, 2, 0],  # "b" is gone on the other side; line 4 has no key and stays
    ]


def test_line_commands_pin_price_when_product_or_quantity_change() -> None:
    desired = [{"ref": "b", "product_id": 6, "product_uom_qty": 3.0, "price_unit": 10.0, "discount": 0.0}]
    commands = line_commands(EXISTING[1:2], desired, "ref")
    assert commands == [[1, 2, {"product_uom_qty": 3.0, "price_unit": 10.0, "discount": 0.0}]]


def test_line_commands_nothing_to_do() -> None:
    desired = [{"ref": "b", "product_id": 6, "product_uom_qty": 1.0, "price_unit": 10.0}]
    assert line_commands(EXISTING[1:2], desired, "ref") == []


# ------------------------------------------------------------------ values and names
def test_same_value_for_references_and_dates() -> None:
    assert same_value("7", 7) and not same_value("7", 8)
    assert same_value([7, "Acme"], 7)
    assert same_value("2026-11-26 14:03:00", "2026-11-26")
    assert not same_value("2026-11-27 00:00:00", "2026-11-26")


def test_virtual_paths() -> None:
    assert is_virtual("concord_status") and is_virtual("concord_warehouse")
    assert not is_virtual("x_concord_hold") and not is_virtual("partner_id")


def test_setup_declares_item_and_hold_fields() -> None:
    spec = EntitySpec(entity="order", object="sale.order", id_field="id", updated_field="write_date",
                      fields=("name",), key_field="client_order_ref", options={
                          "custom_fields": {"x_concord_hold": {"type": "char", "label": "Concord hold reason"}},
                          "items": {"order_line": {"model": "sale.order.line", "key": "x_concord_line_ref"}},
                          "item_custom_fields": {"sale.order.line": {"x_concord_line_ref": {"type": "char",
                                                                                            "index": True}}}})
    fields = {(f.model, f.name): f for f in wanted_fields(spec)}
    assert set(fields) == {("sale.order", "x_concord_hold"), ("sale.order.line", "x_concord_line_ref")}
    line_ref = fields[("sale.order.line", "x_concord_line_ref")]
    assert (line_ref.index, line_ref.copied) == (True, False)  # a duplicated order must not share line ids
    assert fields[("sale.order", "x_concord_hold")].copied
