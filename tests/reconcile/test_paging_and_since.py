"""Work that spans several pages and chunks (data that predates Concord: nothing linked yet), and
`--since`, which reads only what changed and what that is linked to or matches."""
from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from tests.reconcile.conftest import Env, findings

SHARED, HUB_ONLY, ODOO_ONLY = 700, 500, 400


def test_unsynced_systems_are_matched_and_counted_across_pages(env: Env) -> None:
    env.seed()
    hub_ids = env.hub.seed_companies(SHARED + HUB_ONLY, overrides=lambda i, props: (
        {"company_email": f"Shared{i}@Bulk.example"} if i < SHARED else None))
    odoo_ids = env.odoo.seed_partners(SHARED + ODOO_ONLY, overrides=lambda i: {
        "is_company": True, "customer_rank": 1,
        "email": f"shared{i}@bulk.example" if i < SHARED else f"odoo{i}@bulk.example"})
    # Three HubSpot records share one e-mail: a duplicate, never matched nor created on the other side.
    for n in range(3):
        env.hub.create("companies", {"name": f"Triplet {n}", "company_email": "triplet@bulk.example"})

    run = env.reconcile()
    assert run.code == 1
    entity = run.report["entities"][0]
    assert entity["read"] == {"hubspot": SHARED + HUB_ONLY + 3, "odoo": SHARED + ODOO_ONLY}
    counts = entity["found"]
    assert counts["missing_on_erp"] == HUB_ONLY
    assert counts["missing_on_crm"] == ODOO_ONLY
    assert counts["duplicate"] == 1
    assert counts["in_sync"] + counts["different"] == SHARED   # matched by e-mail, not linked yet
    listed = findings(run.report) + [f for f in run.report["entities"][0]["findings"] if f["cls"] == "in_sync"]
    pairs = {(f["crm_id"], f["erp_id"]) for f in listed if f["cls"] in ("in_sync", "different")}
    assert pairs == {(hub_ids[i], str(odoo_ids[i])) for i in range(SHARED)}
    assert all(f["linked"] is False for f in listed if f["cls"] in ("in_sync", "different"))
    missing = Counter(f["cls"] for f in listed if f["cls"].startswith("missing"))
    assert missing == {"missing_on_erp": HUB_ONLY, "missing_on_crm": ODOO_ONLY}
    assert {f.get("crm_id") for f in listed if f["cls"] == "missing_on_erp"} == set(hub_ids[SHARED:])


def test_since_reads_only_what_changed_and_its_counterparts(env: Env) -> None:
    pairs = env.seed(shared=10)
    assert env.sync().code == 0
    for sim in (env.hub, env.odoo):
        sim.clock.advance(3600)   # the edits below happen an hour after the sync
    since = datetime.now(UTC) + timedelta(minutes=30)
    env.hub.update("companies", pairs[0][0], {"city": "Munich"})
    env.odoo.update("res.partner", pairs[1][1], {"city": "Vienna"})
    new = env.hub.create("companies", {"name": "Fresh Lead", "company_email": "fresh@lead.example"})
    twin = env.hub.create("companies", {"name": "Second Copy", "company_email": "ACCOUNTS@shared003.example"})

    run = env.reconcile("--since", since.isoformat())
    assert run.code == 1
    got = {(f["cls"], f.get("crm_id") or tuple(f.get("crm_ids", ())), f.get("erp_id") or tuple(f.get("erp_ids", ())))
           for f in findings(run.report)}
    assert got == {("different", pairs[0][0], str(pairs[0][1])), ("different", pairs[1][0], str(pairs[1][1])),
                   ("missing_on_erp", new, ()),
                   ("duplicate", tuple(sorted([pairs[2][0], twin])), (str(pairs[2][1]),))}
    entity = run.report["entities"][0]
    # The four changed records, then by id: the counterparts of the two edited pairs, and the pair
    # that shares the new copy's e-mail (found through the match index). The other pairs are not read.
    assert entity["read"] == {"hubspot": 5, "odoo": 3}
    assert entity["found"]["in_sync"] == 1
