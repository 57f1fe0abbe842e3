"""Conflicts: one open row per record, refreshed on repeat, resolved by a human."""
from __future__ import annotations

from datetime import timedelta

import pytest

from sync.store import AlreadyResolved, Link, RecordNotFound, Store

from .conftest import FakeClock


def record(store: Store, crm_id: str = "c1", *, email: str = "a@x", link_id: int | None = None,
           fields: tuple[str, ...] = ("email",)):
    return store.record_conflict(entity="customer", link_id=link_id, crm_id=crm_id, erp_id="e1",
                                 crm_version={"email": email}, erp_version={"email": "b@x"},
                                 base={"email": "old@x"}, fields=list(fields))


def test_record_and_read(timed_store: Store, clock: FakeClock) -> None:
    c = record(timed_store, fields=("phone", "email", "email"))
    assert (c.entity, c.crm_id, c.erp_id, c.fields) == ("customer", "c1", "e1", ["email", "phone"])
    assert (c.crm_version, c.erp_version, c.base) == ({"email": "a@x"}, {"email": "b@x"}, {"email": "old@x"})
    assert c.detected_at == clock.now and c.resolved_at is None and c.resolution is None
    assert timed_store.get_conflict(c.id) == c
    assert timed_store.open_conflict_for("customer", "c1") == c


def test_repeat_updates_the_open_conflict(timed_store: Store, clock: FakeClock) -> None:
    first = record(timed_store)
    later = clock.advance(timedelta(minutes=3))
    second = record(timed_store, email="newer@x")
    assert second.id == first.id
    assert second.crm_version == {"email": "newer@x"}
    assert second.detected_at == first.detected_at and second.updated_at == later
    assert len(timed_store.open_conflicts()) == 1


def test_resolve(timed_store: Store) -> None:
    c = record(timed_store)
    timed_store.resolve_conflict(c.id, "erp")
    done = timed_store.get_conflict(c.id)
    assert done is not None and done.resolution == "erp" and done.resolved_at is not None
    assert timed_store.open_conflicts() == [] and timed_store.open_conflict_for("customer", "c1") is None
    with pytest.raises(AlreadyResolved):
        timed_store.resolve_conflict(c.id, "crm")
    again = record(timed_store)
    assert again.id != c.id


def test_resolution_must_be_crm_or_erp(timed_store: Store) -> None:
    c = record(timed_store)
    with pytest.raises(ValueError):
        timed_store.resolve_conflict(c.id, "both")
    with pytest.raises(RecordNotFound):
        timed_store.resolve_conflict(999_999, "crm")
    assert timed_store.get_conflict(999_999) is None


def test_open_conflicts_by_entity(timed_store: Store) -> None:
    record(timed_store, "c1")
    record(timed_store, "c2")
    timed_store.record_conflict(entity="order", link_id=None, crm_id="o1", erp_id=None, crm_version={},
                                erp_version={}, base=None, fields=["status"])
    assert [c.crm_id for c in timed_store.open_conflicts()] == ["c1", "c2", "o1"]
    assert [c.crm_id for c in timed_store.open_conflicts("order")] == ["o1"]
    assert timed_store.open_conflict_for("order", "o1").erp_id is None  # type: ignore[union-attr]


def test_deleting_the_link_keeps_the_conflict(timed_store: Store) -> None:
    link = Link("customer", "c1", "e1")
    timed_store.save_links([link])
    c = record(timed_store, link_id=link.id)
    assert c.link_id == link.id
    timed_store.delete_link("customer", "c1")
    after = timed_store.get_conflict(c.id)
    assert after is not None and after.link_id is None
