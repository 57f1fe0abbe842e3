"""--apply repairs every repairable class through the sync; a second reconcile is clean (exit 0)
and a sync pass afterwards writes nothing."""
from __future__ import annotations

from tests.reconcile.conftest import Env, findings, summary


def test_apply_then_second_reconcile_is_in_sync_and_sync_writes_nothing(env: Env) -> None:
    pairs = env.seed(shared=8, crm_only=2, erp_only=2)
    assert env.sync().code == 0
    crm = [c for c, _ in pairs]
    erp = [str(e) for _, e in pairs]
    env.hub.update("companies", crm[0], {"city": "Munich", "phone": "+49 89 7654321"})
    env.odoo.update("res.partner", int(erp[1]), {"street": "1 New Street", "credit_limit": 7777.0})
    env.hub.update("companies", crm[2], {"erp_customer_code": "HAND-EDIT"})    # write-only copy of an ERP field
    env.odoo.archive("res.partner", int(erp[3]))
    env.odoo.delete("res.partner", int(erp[4]))
    env.purge_company(crm[5])
    # Orphans of records Concord created: the survivor's idempotency key still names the lost record.
    with env.store() as store:
        links = [lk for lk in store.iter_links("customer") if lk.crm_id not in crm]
    keyed_hub = next(lk for lk in links if env.odoo.get("res.partner", int(lk.erp_id)).get("x_concord_crm_id"))
    keyed_odoo = next(lk for lk in links if env.hub.get("companies", lk.crm_id)["properties"].get("concord_erp_id"))
    env.purge_company(keyed_hub.crm_id)
    env.odoo.delete("res.partner", int(keyed_odoo.erp_id))
    env.hub.create("companies", {"name": "Late Lead Ltd", "company_email": "late@lead.example", "city": "Lyon",
                                 "country": "France"})
    env.new_partner(name="Walk-in Customer", email="walkin@example.com", city="Graz",
                    country_id=env.country_id("AT"))

    env.reset_counters()
    dry = env.reconcile()
    assert dry.code == 1
    assert env.writes() == (0, 0)
    found = {(f["cls"], f.get("crm_id"), f.get("erp_id")) for f in findings(dry.report)}
    assert found == {("different", crm[0], erp[0]), ("different", crm[1], erp[1]), ("different", crm[2], erp[2]),
                     ("different", crm[3], erp[3]), ("orphan_link", crm[4], erp[4]),
                     ("orphan_link", crm[5], erp[5]), ("orphan_link", keyed_hub.crm_id, keyed_hub.erp_id),
                     ("orphan_link", keyed_odoo.crm_id, keyed_odoo.erp_id), *{(f["cls"], f.get("crm_id"), f.get("erp_id"))
                                                        for f in findings(dry.report) if f["cls"].startswith("missing")}}
    assert sorted(f["cls"] for f in findings(dry.report) if f["cls"].startswith("missing")) == ["missing_on_crm",
                                                                                               "missing_on_erp"]

    applied = env.reconcile("--apply")
    assert applied.code == 0, findings(applied.report, key="remaining_findings")
    entity = applied.report["entities"][0]
    assert entity["remaining"]["in_sync"] == 8 + 2 + 2 + 2 - 1   # pair 3 archived on both sides is no pair any more
    assert {summary(f) for f in findings(applied.report)} == {summary(f) for f in findings(dry.report)}
    assert findings(applied.report, key="remaining_findings") == []
    assert entity["repairs"] == {"sync": 6, "relink": 4}
    assert applied.report["api_calls_by_phase"]["repair"]["hubspot"].get("write", 0) > 0

    again = env.reconcile()
    assert again.code == 0, findings(again.report)
    env.reset_counters()
    assert env.sync().code == 0
    assert env.writes() == (0, 0), "a sync pass after the repair found something left to write"

    assert env.hub.get("companies", crm[2])["properties"].get("erp_customer_code") in (None, "")
    partner = env.odoo.get("res.partner", int(erp[0]))
    assert partner is not None and partner["city"] == "Munich"
    archived = env.hub.get("companies", crm[3])
    assert archived is not None and archived["archived"] is True
