"""sync/intents.py: which writes in flight landed, and the merge base they leave."""
from __future__ import annotations

from typing import Any

from sync.intents import belongs, landed, make_intent, recovered_base
from sync.merge import Side, merge

LINK = {"crm": {"name": "First", "city": "Graz"}, "erp": {"name": "First", "city": "Graz"}}


def update(name: str = "Second", *, to_crm: tuple[str, ...] = ("name",), to_erp: tuple[str, ...] = ()) -> Any:
    """Odoo renamed the record; Concord writes the name to HubSpot (and ``to_erp`` back to Odoo)."""
    after = {"name": name, "city": "Graz"}
    return make_intent("customer", "erp", "e1", "c1", {"crm": dict(after), "erp": dict(after)},
                       {"crm": to_crm, "erp": to_erp})


def test_make_intent_names_the_pair_or_the_source_of_a_create() -> None:
    x = update()
    assert (x.source, x.crm_id, x.erp_id, x.is_create) == ("erp", "c1", "e1", False)
    assert x.written == {"crm": ["name"], "erp": []}
    create = make_intent("customer", "crm", "c9", None, {"crm": {}, "erp": {}}, {"erp": ["name"]})
    assert (create.crm_id, create.erp_id, create.is_create) == ("c9", None, True)


def test_belongs_to_its_pair_and_not_to_another() -> None:
    x = update()
    assert belongs(x, {"crm": "c1", "erp": "e1"})
    assert belongs(x, {"crm": "c1", "erp": None})
    assert not belongs(x, {"crm": "c1", "erp": "e2"})  # the link was superseded since
    assert not belongs(x, {"crm": "c2", "erp": None})
    create = make_intent("customer", "crm", "c9", None, {"crm": {}, "erp": {}}, {"erp": ["name"]})
    assert belongs(create, {"crm": "c9", "erp": "e5"})  # the copy found by its key


def test_an_update_landed_when_a_field_it_sent_holds_the_value_sent() -> None:
    x = update()
    assert landed(x, "crm", {"name": "Second", "city": "Graz"}, None)
    assert not landed(x, "crm", {"name": "First", "city": "Graz"}, None)  # never reached HubSpot
    assert not landed(x, "erp", {"name": "Second"}, None)  # nothing was sent to Odoo
    assert not landed(x, "crm", None, None)


def test_a_create_landed_when_the_copy_exists_with_the_source_key() -> None:
    create = make_intent("customer", "crm", "c9", None, {"crm": {"name": "A"}, "erp": {"name": "A"}},
                         {"erp": ["name"]})
    assert landed(create, "erp", {"name": "edited since"}, "c9")
    assert landed(create, "erp", {"name": "A"}, None)  # a side that shows no key: its existence tells
    assert not landed(create, "erp", {"name": "A"}, "c8")  # another record (matched some other way)
    assert not landed(create, "erp", None, None)


def test_a_landed_update_is_the_base_so_a_later_user_edit_wins() -> None:
    # Concord wrote "Second" to HubSpot and died; the user then renamed the Odoo record to "Third".
    cur = {"crm": {"name": "Second", "city": "Graz"}, "erp": {"name": "Third", "city": "Graz"}}
    base = recovered_base(LINK, [update()], cur, {})
    assert base == {"crm": {"name": "Second", "city": "Graz"}, "erp": {"name": "Second", "city": "Graz"}}
    result = merge(Side("crm", cur["crm"], None), Side("erp", cur["erp"], None), base, owners={},
                   policy="crm_wins")
    assert result.merged["name"] == "Third" and not result.conflicts


def test_an_update_that_never_landed_keeps_the_link_base_so_the_change_is_not_lost() -> None:
    cur = {"crm": {"name": "First", "city": "Graz"}, "erp": {"name": "Second", "city": "Graz"}}
    base = recovered_base(LINK, [update()], cur, {})
    assert base == LINK
    result = merge(Side("erp", cur["erp"], None), Side("crm", cur["crm"], None), base, owners={},
                   policy="crm_wins")
    assert result.merged["name"] == "Second"


def test_a_field_sent_to_a_side_the_write_did_not_reach_keeps_the_link_base() -> None:
    # crm_wins: Odoo renamed to "Mine", HubSpot to "Second"; the merge wrote the city to HubSpot and
    # "Second" back to Odoo. The HubSpot write landed, the one back to Odoo did not.
    x = make_intent("customer", "erp", "e1", "c1",
                    {"crm": {"name": "Second", "city": "Wien"}, "erp": {"name": "Second", "city": "Wien"}},
                    {"crm": ["city"], "erp": ["name"]})
    cur = {"crm": {"name": "Second", "city": "Wien"}, "erp": {"name": "Mine", "city": "Wien"}}
    base = recovered_base(LINK, [x], cur, {})
    assert base is not None
    assert base["crm"] == {"name": "First", "city": "Wien"} and base["erp"] == {"name": "First", "city": "Wien"}
    result = merge(Side("crm", cur["crm"], None), Side("erp", cur["erp"], None), base, owners={},
                   policy="crm_wins")
    assert result.merged == {"name": "Second", "city": "Wien"} and result.conflicts == ["name"]


def test_a_landed_create_gives_a_base_where_there_was_no_link() -> None:
    after = {"name": "Crm Made", "city": "Leeds"}
    create = make_intent("customer", "crm", "c3", None, {"crm": dict(after), "erp": dict(after)},
                         {"erp": ["name", "city"]})
    cur = {"crm": dict(after), "erp": {"name": "Crm Made", "city": "Lyon"}}  # a user edited the copy
    base = recovered_base(None, [create], cur, {"erp": "c3"})
    assert base == {"crm": after, "erp": after}
    result = merge(Side("crm", cur["crm"], None), Side("erp", cur["erp"], None), base, owners={},
                   policy="crm_wins")
    assert result.merged["city"] == "Lyon"
    assert recovered_base(None, [create], {"crm": after, "erp": None}, {}) is None  # never created


def test_later_intents_apply_over_earlier_ones() -> None:
    cur = {"crm": {"name": "Third", "city": "Graz"}, "erp": {"name": "Third", "city": "Graz"}}
    base = recovered_base(LINK, [update("Second"), update("Third")], cur, {})
    assert base is not None and base["crm"]["name"] == "Third" and base["erp"]["name"] == "Third"
