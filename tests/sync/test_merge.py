"""The field-level merge: owners, policies, first links without a base."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sync.merge import Side, diff, flatten, merge, unflatten

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def side(role, values, minutes=0):
    return Side(role, values, T0 + timedelta(minutes=minutes))


def both(values):
    return {"crm": dict(values), "erp": dict(values)}


def test_change_on_one_side_wins_without_conflict():
    base = both({"name": "Acme", "city": "Berlin"})
    r = merge(side("crm", {"name": "Acme GmbH", "city": "Berlin"}), side("erp", {"name": "Acme", "city": "Berlin"}), base,
              owners={}, policy="manual")
    assert r.merged == {"name": "Acme GmbH", "city": "Berlin"}
    assert r.conflicts == [] and r.unresolved == []


def test_different_fields_changed_on_both_sides_merge():
    base = both({"name": "Acme", "city": "Berlin"})
    r = merge(side("crm", {"name": "Acme GmbH", "city": "Berlin"}),
              side("erp", {"name": "Acme", "city": "Hamburg"}), base, owners={}, policy="manual")
    assert r.merged == {"name": "Acme GmbH", "city": "Hamburg"}
    assert r.unresolved == []


def test_same_field_both_sides_newest_wins_by_updated_at():
    base = both({"name": "Acme"})
    r = merge(side("crm", {"name": "From CRM"}, minutes=5), side("erp", {"name": "From ERP"}, minutes=9),
              base, owners={}, policy="newest_wins")
    assert r.merged["name"] == "From ERP" and r.conflicts == ["name"] and r.unresolved == []
    r = merge(side("crm", {"name": "From CRM"}, minutes=10), side("erp", {"name": "From ERP"}, minutes=9),
              base, owners={}, policy="newest_wins")
    assert r.merged["name"] == "From CRM"


def test_fixed_policies_and_manual():
    base = both({"name": "Acme"})
    args = (side("crm", {"name": "C"}), side("erp", {"name": "E"}, minutes=60), base)
    assert merge(*args, owners={}, policy="crm_wins").merged["name"] == "C"
    assert merge(*args, owners={}, policy="erp_wins").merged["name"] == "E"
    manual = merge(*args, owners={}, policy="manual")
    assert manual.unresolved == ["name"] and manual.merged["name"] == "C"


def test_owner_always_wins_even_when_only_the_other_side_changed():
    base = both({"credit_limit": Decimal("1000")})
    r = merge(side("crm", {"credit_limit": Decimal("999999")}, minutes=30),
              side("erp", {"credit_limit": Decimal("1000")}), base, owners={"credit_limit": "erp"},
              policy="newest_wins")
    assert r.merged["credit_limit"] == Decimal("1000")


def test_first_link_without_base_never_erases_a_value():
    r = merge(side("crm", {"phone": None, "name": "Acme"}, minutes=99),
              side("erp", {"phone": "+4930123", "name": "Acme"}), None, owners={}, policy="newest_wins")
    assert r.merged == {"phone": "+4930123", "name": "Acme"}


def test_decimal_scale_and_json_base_do_not_count_as_changes():
    # The link's base is stored as JSON: "10.5" must equal Decimal("10.50").
    r = merge(side("crm", {"credit_limit": Decimal("10.50")}), side("erp", {"credit_limit": Decimal("10.5")}),
              both({"credit_limit": "10.5"}), owners={}, policy="manual")
    assert r.conflicts == [] and r.unresolved == []


def test_diff_reports_only_changed_fields():
    wanted = {"name": "A", "city": "X", "phone": None}
    assert diff(wanted, {"name": "A", "city": "Y", "phone": None}, {"name", "city", "phone"}) == {"city": "X"}
    assert diff(wanted, None, {"name", "city", "phone"}) == {"name": "A", "city": "X"}
    assert diff(wanted, {"name": "A"}, {"city"}) == {"city": "X"}


def test_flatten_roundtrip():
    c = {"name": "A", "extra": {"industry": "x"}}
    assert flatten(c) == {"name": "A", "extra.industry": "x"}
    assert unflatten(flatten(c)) == c


def test_a_field_the_target_cannot_store_is_not_mistaken_for_an_edit():
    # The ERP reads `state` but Concord cannot write it: the CRM's edit must not be reverted later.
    base = {"crm": {"state": "CA"}, "erp": {"state": "California"}}
    r = merge(side("erp", {"state": "California"}, minutes=9), side("crm", {"state": "CA"}), base,
              owners={}, policy="newest_wins")
    assert r.conflicts == [] and r.untouched == {"state"}
    assert diff(r.merged, {"state": "CA"}, {"state"} - r.untouched) == {}
