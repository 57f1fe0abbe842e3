"""Drift of every class, created behind Concord's back by editing the simulators directly, is
reported exactly; formatting the mappings normalise is not drift; a dry run writes nothing;
--apply repairs what can be repaired and leaves duplicates, conflicts and unreadable records to
a human; once those are sorted out, reconcile is clean and a sync pass writes nothing."""
from __future__ import annotations

from typing import Any

from tests.reconcile.conftest import Env, findings, summary


def _field(f: dict[str, Any], name: str) -> dict[str, Any]:
    return next(d for d in f["fields"] if d["field"] == name)


def _by_class(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for f in findings(report):
        out.setdefault(f["cls"], []).append(f)
    return out


def test_every_class_reported_exactly_then_repaired(env: Env) -> None:
    env.configure(customer={"conflict": "manual"})
    pairs = env.seed(shared=12, crm_only=2, erp_only=2)
    assert env.sync().code == 0
    crm = [c for c, _ in pairs]
    erp = [str(e) for _, e in pairs]

    # A field edited on both sides under the manual policy: the sync records a conflict.
    env.hub.update("companies", crm[8], {"name": "Name From HubSpot"})
    env.odoo.update("res.partner", int(erp[8]), {"name": "Name From Odoo"})
    assert env.sync().code == 1
    with env.store() as store:
        (conflict,) = store.open_conflicts("customer")

    # Behind Concord's back (no sync runs from here on until the human fixes).
    env.hub.update("companies", crm[0], {"city": "Munich"})                       # different, crm side
    env.odoo.update("res.partner", int(erp[1]), {"phone": "+49 89 1234567"})      # different, erp side
    env.hub.update("companies", crm[2], {"erp_credit_limit": "99"})               # hand edit of a write-only copy
    env.odoo.update("res.partner", int(erp[3]), {"credit_limit": 25000.0})        # ERP-owned field changed
    env.hub.archive("companies", crm[4])                                          # archived on one side
    env.odoo.delete("res.partner", int(erp[5]))                                   # orphan link (erp gone)
    env.purge_company(crm[6])                                                     # orphan link (crm gone)
    dup = env.hub.create("companies", {"name": "Shared Customer 008 Copy",       # duplicate e-mail in HubSpot
                                       "company_email": "Accounts@Shared008.example"})
    env.hub.update("companies", crm[9], {"country": "Atlantis"})                 # unreadable by the mapping
    # Formatting only (phone format, case, spaces, decimal scale): no finding.
    env.hub.update("companies", crm[10], {"phone": "+1 512 555 1010", "company_email": " ACCOUNTS@SHARED011.EXAMPLE ",
                                          "name": "Shared Customer 011 Ltd   ", "erp_credit_limit": "5010.000"})
    env.odoo.update("res.partner", int(erp[10]), {"email": "Accounts@Shared011.Example"})
    hub_only = env.hub.create("companies", {"name": "Only In HubSpot", "company_email": "only.hub@example.com"})
    odoo_only = str(env.new_partner(name="Only In Odoo", email="only.odoo@example.com"))
    twin_c = env.hub.create("companies", {"name": "Twin Ltd", "company_email": "TWIN@pair.example",
                                          "website": "https://twin.example"})
    twin_e = str(env.new_partner(name="Twin Ltd", email="twin@pair.example"))

    env.reset_counters()
    dry = env.reconcile()
    assert dry.code == 1
    assert env.writes() == (0, 0), "a dry run must not write"
    assert not [r for sim in (env.hub, env.odoo) for r in sim.request_log if r.is_write]

    expected = {
        ("different", crm[0], erp[0], ("city",)),
        ("different", crm[1], erp[1], ("phone",)),
        ("different", crm[2], erp[2], ("credit_limit",)),
        ("different", crm[3], erp[3], ("credit_limit",)),
        ("different", crm[4], erp[4], ("deleted",)),
        ("orphan_link", crm[5], erp[5], ()),
        ("orphan_link", crm[6], erp[6], ()),
        ("duplicate", tuple(sorted([crm[7], dup])), (erp[7],), ()),
        ("unreadable", crm[9], (), ()),
        ("missing_on_erp", hub_only, (), ()),
        ("missing_on_crm", (), odoo_only, ()),
        # Linked by e-mail once applied; Odoo's defaults (credit limit and balance 0) are not in HubSpot yet.
        ("different", twin_c, twin_e, ("balance_due", "credit_limit", "website")),
        ("conflict", crm[8], erp[8], ("name",)),
    }
    assert {summary(f) for f in findings(dry.report)} == expected
    assert len(findings(dry.report)) == len(expected)
    entity = dry.report["entities"][0]
    # Pairs 7 (its twin in HubSpot is the duplicate), 10 (formatting only) and 11, and the four seeded on one side.
    assert entity["found"]["in_sync"] == 3 + 4

    got = _by_class(dry.report)
    diff = {f["crm_id"]: f for f in got["different"]}
    assert (_field(diff[crm[0]], "city")["crm"], _field(diff[crm[0]], "city")["erp"]) == ("Munich", "Berlin")
    assert (_field(diff[crm[1]], "phone")["crm"], _field(diff[crm[1]], "phone")["erp"]) == ("+15125551001",
                                                                                          "+49891234567")
    assert (_field(diff[crm[2]], "credit_limit")["crm"], _field(diff[crm[2]], "credit_limit")["erp"]) == ("99",
                                                                                                        "5002")
    assert _field(diff[crm[3]], "credit_limit")["erp"] == "25000"
    assert _field(diff[crm[3]], "credit_limit")["direction"] == "erp_to_crm"
    assert (_field(diff[crm[4]], "deleted")["crm"], _field(diff[crm[4]], "deleted")["erp"]) == (True, False)
    twin = diff[twin_c]
    assert twin["linked"] is False
    assert (_field(twin, "website")["crm"], _field(twin, "website")["erp"]) == ("https://twin.example", None)
    (dup_f,) = got["duplicate"]
    assert (dup_f["key"], dup_f["value"]) == ("email", "accounts@shared008.example")
    (conflict_f,) = got["conflict"]
    assert conflict_f["conflict_id"] == conflict.id
    assert (_field(conflict_f, "name")["crm"], _field(conflict_f, "name")["erp"]) == ("Name From HubSpot",
                                                                                     "Name From Odoo")
    assert "Atlantis" in got["unreadable"][0]["note"]

    # --apply: everything repairable is repaired through the sync; the rest stays for a human.
    applied = env.reconcile("--apply")
    assert applied.code == 1
    assert {summary(f) for f in findings(applied.report)} == expected
    remaining = {f["cls"] for f in findings(applied.report, key="remaining_findings")}
    assert remaining == {"duplicate", "conflict", "unreadable"}, findings(applied.report, key="remaining_findings")
    assert len(findings(applied.report, key="remaining_findings")) == 3

    partner = {p["id"]: p for p in env.odoo.all("res.partner")}
    assert partner[int(erp[0])]["city"] == "Munich"
    assert env.hub.get("companies", crm[1])["properties"]["phone"] == "+49891234567"
    assert float(env.hub.get("companies", crm[2])["properties"]["erp_credit_limit"]) == 5002
    assert float(env.hub.get("companies", crm[3])["properties"]["erp_credit_limit"]) == 25000
    assert partner[int(erp[4])]["active"] is False
    assert partner[int(twin_e)]["website"] == "https://twin.example"
    emails = {p.get("email") for p in partner.values() if p.get("active", True) is not False}
    assert {"accounts@shared006.example", "only.hub@example.com"} <= emails
    companies = {c["properties"].get("company_email") for c in env.hub.all("companies")}
    assert {"accounts@shared007.example", "only.odoo@example.com"} <= {(e or "").lower() for e in companies}

    # A human sorts out what Concord must not decide, the sync passes it on: clean, and quiet.
    assert env.cli("conflicts", "resolve", str(conflict.id), "--take", "crm").code == 0
    env.hub.archive("companies", dup)
    env.hub.update("companies", crm[9], {"country": "Germany"})
    assert env.sync().code == 0
    clean = env.reconcile()
    assert clean.code == 0, findings(clean.report)
    assert findings(clean.report) == []
    env.reset_counters()
    assert env.sync().code == 0
    assert env.writes() == (0, 0)
