"""Reconcile over the order-to-cash entities: products (ERP -> CRM, the ERP is the master), orders
(CRM -> ERP, status back), stock levels and payments (ERP -> CRM, written onto CRM records)."""
from __future__ import annotations

from typing import Any

from sandbox.hubspot.deals import create_deal
from tests.reconcile.conftest import Env, findings, summary

SYNC = {
    "product": {"direction": "erp_to_crm", "match_on": ["sku"]},
    "order": {"direction": "crm_to_erp", "stages": ["closedwon"], "confirm": True, "credit_check": True},
    "stock_level": {"direction": "erp_to_crm"},
    "payment": {"direction": "erp_to_crm"},
}
ALL = ("customer", "product", "stock_level", "order", "payment")


def _setup(env: Env) -> dict[str, Any]:
    env.configure(extra={"sync": SYNC})
    assert env.cli("setup").code == 0
    env.odoo.seed_products(3, with_stock=False)
    for sku, qty in (("SKU-00001", 100), ("SKU-00002", 50), ("SKU-00003", 50)):
        env.odoo.set_stock(sku, qty)
    acme = env.hub.create("companies", {"name": "Acme Ltd", "company_email": "buyer@acme.example"})
    assert env.cli("sync", "customer", "product").code == 0
    skus = {p["properties"]["hs_sku"]: p["id"] for p in env.hub.all("products") if p["properties"].get("hs_sku")}
    normal = create_deal(env.hub, {"dealname": "Normal", "dealstage": "closedwon"}, company=acme,
                         lines=[{"hs_product_id": skus["SKU-00001"], "quantity": "3", "price": "12.50"}])
    second = create_deal(env.hub, {"dealname": "Second", "dealstage": "closedwon"}, company=acme,
                         lines=[{"hs_product_id": skus["SKU-00002"], "quantity": "2", "price": "20"}])
    assert env.cli("sync", "order").code == 0
    order = next(o for o in env.odoo.all("sale.order") if o.get("client_order_ref") == normal.id)
    invoice = env.odoo.invoice(int(order["id"]))
    assert env.cli("sync", "stock_level", "payment", "order", "customer").code == 0
    return {"acme": acme, "skus": skus, "normal": normal, "second": second, "invoice": invoice}


def test_order_to_cash_drift_is_found_and_repaired(env: Env) -> None:
    w = _setup(env)
    clean = env.reconcile(*ALL)
    assert clean.code == 0, [findings(clean.report, e) for e in ALL]

    products = {e["id"]: e for e in env.hub.all("products")}
    hub_product = w["skus"]["SKU-00002"]
    env.hub.update("products", hub_product, {"name": "Renamed in HubSpot"})   # the ERP is the master
    env.odoo.set_stock("SKU-00003", 7)                                        # stock moved, not synced
    env.odoo.pay(w["invoice"])                                                # paid, not synced
    env.hub.update("line_items", w["second"].line_ids[0], {"quantity": "5"})  # confirmed order: locked in Odoo
    missed = create_deal(env.hub, {"dealname": "Missed", "dealstage": "closedwon"}, company=w["acme"],
                         lines=[{"hs_product_id": w["skus"]["SKU-00003"], "quantity": "1", "price": "5"}])
    create_deal(env.hub, {"dealname": "Not yet won", "dealstage": "qualifiedtobuy"}, company=w["acme"],
                lines=[{"hs_product_id": w["skus"]["SKU-00003"], "quantity": "1", "price": "5"}])
    partner = next(p for p in env.odoo.all("res.partner") if p.get("email") == "buyer@acme.example")
    env.odoo.create("sale.order", {"partner_id": partner["id"], "client_order_ref": w["normal"].id})  # twice ordered
    env.odoo.create("sale.order", {"partner_id": partner["id"]})                                    # typed in the ERP

    env.reset_counters()
    dry = env.reconcile(*ALL)
    assert dry.code == 1
    assert env.writes() == (0, 0)
    got = {e: {summary(f) for f in findings(dry.report, e)} for e in ALL}
    normal_order = next(str(o["id"]) for o in env.odoo.all("sale.order")
                        if o.get("client_order_ref") == w["normal"].id and o.get("name") != "New" and o["state"] == "sale")
    twice = sorted(str(o["id"]) for o in env.odoo.all("sale.order") if o.get("client_order_ref") == w["normal"].id)
    sku3 = str(env.odoo.product_id("SKU-00003"))
    sku2 = str(env.odoo.product_id("SKU-00002"))
    assert ("different", hub_product, sku2, ("name",)) in got["product"]
    assert any(s[0] == "different" and s[2] == sku3 and {"available", "on_hand"} <= set(s[3])
               for s in got["stock_level"])
    assert ("missing_on_erp", missed.id, (), ()) in got["order"]
    assert ("different", w["second"].id, next(iter({f["erp_id"] for f in findings(dry.report, "order")
                                                     if f.get("crm_id") == w["second"].id})), ("lines",)) in got["order"]
    assert ("duplicate", (w["normal"].id,), tuple(twice), ()) in got["order"]
    assert normal_order in twice
    (payment,) = findings(dry.report, "payment")
    assert payment["cls"] == "different" and payment["crm_id"] == w["normal"].id
    assert {d["field"] for d in payment["fields"]} == {"amount_due", "amount_paid", "state"}
    entity = {e["entity"]: e for e in dry.report["entities"]}
    assert entity["order"]["found"]["untracked"] == 1   # the order typed in the ERP: not the sync's business

    applied = env.reconcile("--apply", *ALL)
    assert applied.code == 1
    left = {e: [f for f in findings(applied.report, e, "remaining_findings")] for e in ALL}
    assert [f["cls"] for e in ("customer", "product", "stock_level", "payment") for f in left[e]] == []
    assert sorted(f["cls"] for f in left["order"]) == ["different", "duplicate"]
    locked = next(f for f in left["order"] if f["cls"] == "different")
    assert locked["crm_id"] == w["second"].id and "locked" in locked["note"]
    assert env.hub.get("products", hub_product)["properties"]["name"] == products[hub_product]["properties"]["name"]
    assert env.hub.get("deals", w["normal"].id)["properties"]["concord_payment_state"] == "paid"
    assert [o for o in env.odoo.all("sale.order") if o.get("client_order_ref") == missed.id]
