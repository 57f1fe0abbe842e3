"""Crash windows around a write, with the write intents (sync/intents.py): a crash before the API
call loses no change, one after it is not read back as a user's edit, and a user's edit made in
between wins per the policy. Deterministic, on the property test's machine."""
from __future__ import annotations

from typing import Any

import pytest

from .conftest import names
from .machine import CustomerSyncMachine, SimulatedCrash


def renamed_in_odoo_after_a_sync(m: CustomerSyncMachine, email: str) -> None:
    """An Odoo partner "First" synced to HubSpot, then renamed "Second" in Odoo (not synced yet)."""
    partner = m.odoo.create("res.partner", {"name": "First", "email": email, "is_company": True,
                                            "customer_rank": 1})
    m.tick()
    assert m.pass_() is not None
    m.tick()
    m.odoo.update("res.partner", partner, {"name": "Second"})
    m.tick()


def dies_before_writing(monkeypatch: pytest.MonkeyPatch, m: CustomerSyncMachine, role: str) -> None:
    """The process dies when the pipeline calls ``role``'s write: after the intents were committed."""
    def write(*_: Any, **__: Any) -> Any:
        raise SimulatedCrash()
    monkeypatch.setattr(m.rt.side(role).connector, "write", write)  # type: ignore[arg-type]


def test_an_update_that_never_left_is_sent_by_the_next_pass(crm_wins: CustomerSyncMachine,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    m = crm_wins
    renamed_in_odoo_after_a_sync(m, "w1@prop.example")
    with monkeypatch.context() as patch:
        dies_before_writing(patch, m, "crm")
        assert m.pass_() is None
    assert names(m, "w1@prop.example") == ("First", "Second")
    assert m.rt.store.count_intents("customer") == 1
    m.tick()
    assert m.pass_() is not None
    assert names(m, "w1@prop.example") == ("Second", "Second")
    assert m.rt.store.count_intents("customer") == 0


def test_a_create_that_never_left_makes_one_copy(crm_wins: CustomerSyncMachine,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    m = crm_wins
    m.hub.create("companies", {"name": "Crm Made", "city": "Leeds", "company_email": "w2@prop.example"})
    m.tick()
    with monkeypatch.context() as patch:
        dies_before_writing(patch, m, "erp")
        assert m.pass_() is None
    assert m.odoo_record("w2@prop.example") is None
    m.tick()
    report = m.pass_()
    assert report is not None and report.counts.created == 1
    assert names(m, "w2@prop.example") == ("Crm Made", "Crm Made")  # one of each (hub/odoo_record check)
    assert m.rt.store.count_intents("customer") == 0


def test_a_user_edit_of_the_side_concord_wrote_wins_after_the_crash(crm_wins: CustomerSyncMachine) -> None:
    m = crm_wins
    renamed_in_odoo_after_a_sync(m, "w3@prop.example")
    assert m.pass_(crash_at=2) is None  # "Second" written to HubSpot, the link not updated
    company = m.hub_record("w3@prop.example")
    assert company is not None and company["properties"]["name"] == "Second"
    m.tick()
    m.hub.update("companies", company["id"], {"city": "Edited In HubSpot"})
    m.tick()
    assert m.pass_() is not None
    assert names(m, "w3@prop.example") == ("Second", "Second")
    partner_now = m.odoo_record("w3@prop.example")
    assert partner_now is not None and partner_now["city"] == "Edited In HubSpot"
    assert m.rt.store.count_intents("customer") == 0


def test_a_quiet_pass_after_a_crash_writes_nothing(crm_wins: CustomerSyncMachine) -> None:
    m = crm_wins
    renamed_in_odoo_after_a_sync(m, "w4@prop.example")
    assert m.pass_(crash_at=2) is None
    m.tick()
    before = (m.hub.write_count, m.odoo.write_count)
    assert m.pass_() is not None
    assert (m.hub.write_count, m.odoo.write_count) == before  # the echo is recognised, not rewritten
    assert names(m, "w4@prop.example") == ("Second", "Second")
    assert m.rt.store.count_intents("customer") == 0
