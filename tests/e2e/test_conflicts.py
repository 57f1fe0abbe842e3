"""Both sides edited between passes: conflict policies, field owners, and no ping-pong afterwards.

Which edit is newer is decided by the simulators' clocks, not by sleeping: the side that must be
newer has its clock moved five seconds ahead before its edit (Odoo shows whole seconds).
"""
from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from .conftest import Concord


def synced_pairs(env: Concord, **config: Any) -> list[tuple[str, int]]:
    """Three customers on both sides plus a few on one side, synced once; the shared pairs."""
    if config:
        env.configure(**config)
    pairs = env.seed(crm_only=3, erp_only=3, shared=3)
    first = env.sync()
    assert first.code == 0, str(first)
    return pairs


def edit_both(env: Concord, pair: tuple[str, int], *, newer: str, hub: dict[str, Any], odoo: dict[str, Any]) -> None:
    """Edit one customer on both sides; ``newer`` ("hubspot" or "odoo") edits last, by its clock."""
    hub_id, odoo_id = pair
    if newer == "odoo":
        env.hub.update("companies", hub_id, hub)
        env.odoo.clock.advance(5)
        env.odoo.update("res.partner", odoo_id, odoo)
    else:
        env.odoo.update("res.partner", odoo_id, odoo)
        env.hub.clock.advance(5)
        env.hub.update("companies", hub_id, hub)


def company(env: Concord, hub_id: str) -> dict[str, Any]:
    record = env.hub.get("companies", hub_id)
    assert record is not None
    return record["properties"]


def partner(env: Concord, odoo_id: int) -> dict[str, Any]:
    record = env.odoo.get("res.partner", odoo_id)
    assert record is not None
    return record


def assert_quiet(env: Concord, passes: int = 1) -> None:
    """Further passes exit 0 and write nothing to either system."""
    for _ in range(passes):
        writes = env.writes()
        result = env.sync()
        assert result.code == 0, str(result)
        counts = result.json()[0]["counts"]
        assert counts["created"] == counts["updated"] == counts["updated_back"] == counts["archived"] == 0, counts
        assert env.writes() == writes, "a pass after convergence wrote to a system"


@pytest.mark.parametrize("policy, newer, winner", [
    ("newest_wins", "odoo", "odoo"),
    ("newest_wins", "hubspot", "hubspot"),
    ("crm_wins", "odoo", "hubspot"),
    ("erp_wins", "hubspot", "odoo"),
])
def test_conflict_policy(env: Concord, policy: str, newer: str, winner: str) -> None:
    pair = synced_pairs(env, customer={"conflict": policy})[0]
    names = {"hubspot": "Renamed in HubSpot Ltd", "odoo": "Renamed in Odoo Ltd"}
    # The name conflicts; city (HubSpot) and phone (Odoo) are each edited on one side only.
    edit_both(env, pair, newer=newer, hub={"name": names["hubspot"], "city": "Munich"},
              odoo={"name": names["odoo"], "phone": "+49 89 1234567"})
    result = env.sync()
    assert result.code == 0, str(result)
    assert result.json()[0]["counts"]["conflicts_resolved"] >= 1

    hub_after, odoo_after = company(env, pair[0]), partner(env, pair[1])
    assert hub_after["name"] == odoo_after["name"] == names[winner]
    assert hub_after["city"] == odoo_after["city"] == "Munich"
    # Odoo keeps the phone as typed; HubSpot receives its canonical (E.164) form.
    assert hub_after["phone"] == "+49891234567" and odoo_after["phone"] == "+49 89 1234567"
    assert env.agreement().ok
    assert_quiet(env, passes=2)


def test_manual_policy_records_a_conflict_and_writes_nothing_for_it(env: Concord) -> None:
    pairs = synced_pairs(env, customer={"conflict": "manual"})
    conflicted, other = pairs[0], pairs[1]
    edit_both(env, conflicted, newer="odoo", hub={"name": "Renamed in HubSpot Ltd"},
              odoo={"name": "Renamed in Odoo Ltd"})
    env.hub.update("companies", other[0], {"city": "Munich"})
    hub_before, odoo_before = company(env, conflicted[0]), partner(env, conflicted[1])

    for _ in range(2):  # the conflict stays open, and is neither written nor recorded twice
        result = env.sync()
        assert result.code == 1, str(result)
        row = env.status()
        assert row["conflicts"] == 1 and row["dead_letters"] == 0
        hub_now, odoo_now = company(env, conflicted[0]), partner(env, conflicted[1])
        assert hub_now["name"] == "Renamed in HubSpot Ltd" and odoo_now["name"] == "Renamed in Odoo Ltd"
        assert hub_now["hs_lastmodifieddate"] == hub_before["hs_lastmodifieddate"]
        assert odoo_now["write_date"] == odoo_before["write_date"]
    assert partner(env, other[1])["city"] == "Munich"  # the rest of the batch synced

    listed = env.run("conflicts", "list", "--json")
    assert listed.code == 0, str(listed)
    [conflict] = listed.json()
    assert conflict["crm_id"] == conflicted[0] and str(conflict["erp_id"]) == str(conflicted[1])
    assert "name" in conflict["fields"]


def test_owners_beat_the_policy(env: Concord) -> None:
    owners = {"credit_limit": "erp", "balance_due": "erp", "customer_code": "erp", "phone": "crm"}
    pair = synced_pairs(env, customer={"owner": owners, "conflict": "newest_wins"})
    hub_id, odoo_id = pair[0]
    # Odoo edits last (newer), yet the phone is the CRM's; the credit limit is the ERP's own field.
    edit_both(env, pair[0], newer="odoo", hub={"name": "Renamed in HubSpot Ltd", "phone": "+1 512 555 0199"},
              odoo={"phone": "+49 89 1111111", "credit_limit": 25000.0})
    result = env.sync()
    assert result.code == 0, str(result)

    hub_after, odoo_after = company(env, hub_id), partner(env, odoo_id)
    assert Decimal(hub_after["erp_credit_limit"]) == 25000
    assert odoo_after["credit_limit"] == 25000.0
    assert odoo_after["name"] == "Renamed in HubSpot Ltd"
    assert hub_after["phone"] == "+1 512 555 0199" and odoo_after["phone"] == "+15125550199"
    assert env.agreement().ok
    assert_quiet(env)


def test_no_ping_pong_after_edits_on_both_sides(make_env: Callable[..., Concord]) -> None:
    env = make_env()
    pairs = synced_pairs(env)
    env.hub.update("companies", pairs[0][0], {"city": "Munich", "website": "https://new.example"})
    env.odoo.update("res.partner", pairs[1][1], {"phone": "+44 20 7946 0958", "vat": "DE123456789"})
    edit_both(env, pairs[2], newer="hubspot", hub={"name": "Both Sides HubSpot"}, odoo={"name": "Both Sides Odoo"})
    result = env.sync()
    assert result.code == 0, str(result)
    assert result.json()[0]["counts"]["updated"] >= 3
    assert env.agreement().ok
    assert_quiet(env, passes=2)
