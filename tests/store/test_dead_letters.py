"""Dead letters: one open row per record, backoff, parking, retry and drop."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sync.store import AlreadyResolved, RecordNotFound, Store

from .conftest import FakeClock


def backoff(attempts: int) -> timedelta:
    return timedelta(minutes=2 ** (attempts - 1))


def add(store: Store, record_id: str = "7", *, pipeline: str = "customer", system: str = "hubspot",
        max_attempts: int = 3, message: str = "boom", payload: dict[str, Any] | None = None) -> Any:
    return store.add_dead_letter(pipeline=pipeline, entity="customer", system=system, record_id=record_id,
                                 payload=payload if payload is not None else {"id": record_id},
                                 error_class="ValidationError", error_message=message, field="email",
                                 backoff=backoff, max_attempts=max_attempts)


def test_first_failure(timed_store: Store, clock: FakeClock) -> None:
    d = add(timed_store, payload={"email": "x", "amount": 1})
    assert d.id is not None and d.attempts == 1 and not d.parked
    assert (d.first_failed_at, d.last_failed_at) == (clock.now, clock.now)
    assert d.next_retry_at == clock.now + timedelta(minutes=1)
    assert (d.payload, d.error_class, d.error_message, d.field) == ({"email": "x", "amount": 1},
                                                                     "ValidationError", "boom", "email")
    assert d.resolved_at is None and d.resolution is None
    assert timed_store.get_dead_letter(d.id) == d


def test_repeat_failure_updates_the_open_row_with_backoff(timed_store: Store, clock: FakeClock) -> None:
    first = add(timed_store)
    t1 = clock.advance(timedelta(minutes=5))
    second = add(timed_store, message="boom again", payload={"v": 2})
    assert second.id == first.id
    assert second.attempts == 2
    assert second.first_failed_at == first.first_failed_at and second.last_failed_at == t1
    assert second.next_retry_at == t1 + timedelta(minutes=2)
    assert (second.error_message, second.payload) == ("boom again", {"v": 2})
    assert timed_store.count_dead_letters() == 1
    assert len(timed_store.list_dead_letters(include_resolved=True)) == 1


def test_parked_after_max_attempts(timed_store: Store) -> None:
    for _ in range(2):
        assert not add(timed_store, max_attempts=3).parked
    d = add(timed_store, max_attempts=3)
    assert d.parked and d.attempts == 3
    assert timed_store.count_dead_letters() == 1  # parked ones are still open


def test_due_only_when_retry_time_has_come_and_not_parked(timed_store: Store, clock: FakeClock) -> None:
    add(timed_store, "a")
    add(timed_store, "p", max_attempts=1)  # parked at once
    add(timed_store, "other", pipeline="order")
    assert timed_store.due_dead_letters("customer") == []
    clock.advance(timedelta(minutes=1))
    assert [d.record_id for d in timed_store.due_dead_letters("customer")] == ["a"]
    assert [d.record_id for d in timed_store.due_dead_letters("order")] == ["other"]
    later = clock.now + timedelta(hours=1)
    clock.advance(timedelta(seconds=-30))
    assert timed_store.due_dead_letters("customer") == []
    assert [d.record_id for d in timed_store.due_dead_letters("customer", now=later)] == ["a"]


def test_due_is_ordered_and_limited(timed_store: Store, clock: FakeClock) -> None:
    for rid in ("3", "1", "2"):
        add(timed_store, rid)
        clock.advance(timedelta(seconds=1))
    clock.advance(timedelta(hours=1))
    assert [d.record_id for d in timed_store.due_dead_letters("customer")] == ["3", "1", "2"]
    assert [d.record_id for d in timed_store.due_dead_letters("customer", limit=2)] == ["3", "1"]


def test_resolve_when_the_record_syncs_and_a_new_failure_opens_a_new_row(timed_store: Store) -> None:
    first = add(timed_store)
    timed_store.resolve_dead_letter("customer", "hubspot", "7")
    timed_store.resolve_dead_letter("customer", "hubspot", "nothing-open")
    assert timed_store.count_dead_letters() == 0
    resolved = timed_store.get_dead_letter(first.id)
    assert resolved is not None and resolved.resolution == "synced" and resolved.resolved_at is not None
    again = add(timed_store)
    assert again.id != first.id and again.attempts == 1
    assert [d.id for d in timed_store.list_dead_letters()] == [again.id]
    assert [d.id for d in timed_store.list_dead_letters(include_resolved=True)] == [first.id, again.id]


def test_same_record_on_other_system_or_pipeline_is_separate(timed_store: Store) -> None:
    add(timed_store, system="hubspot")
    add(timed_store, system="odoo")
    add(timed_store, pipeline="order")
    assert timed_store.count_dead_letters() == 3
    assert timed_store.count_dead_letters("customer") == 2
    assert {d.system for d in timed_store.list_dead_letters(pipeline="customer")} == {"hubspot", "odoo"}


def test_retry_now_unparks_and_makes_it_due(timed_store: Store, clock: FakeClock) -> None:
    d = add(timed_store, max_attempts=1)
    assert d.parked
    timed_store.retry_dead_letter_now(d.id)
    due = timed_store.due_dead_letters("customer")
    assert [x.id for x in due] == [d.id] and not due[0].parked


def test_drop(timed_store: Store) -> None:
    d = add(timed_store)
    timed_store.drop_dead_letter(d.id)
    dropped = timed_store.get_dead_letter(d.id)
    assert dropped is not None and dropped.resolution == "dropped" and dropped.resolved_at is not None
    assert timed_store.count_dead_letters() == 0
    with pytest.raises(AlreadyResolved):
        timed_store.drop_dead_letter(d.id)
    with pytest.raises(AlreadyResolved):
        timed_store.retry_dead_letter_now(d.id)


def test_unknown_ids(timed_store: Store) -> None:
    assert timed_store.get_dead_letter(12345) is None
    with pytest.raises(RecordNotFound):
        timed_store.drop_dead_letter(12345)
    with pytest.raises(RecordNotFound):
        timed_store.retry_dead_letter_now(12345)


def test_payload_with_non_json_values_is_kept_readable(timed_store: Store) -> None:
    from datetime import date
    from decimal import Decimal

    d = add(timed_store, payload={"price": Decimal("1.50"), "day": date(2025, 1, 2), "odd": object()})
    assert d.payload["price"] == "1.5" and d.payload["day"] == "2025-01-02"
    assert d.payload["odd"].startswith("<object object")


def test_a_payload_with_a_lone_surrogate_is_stored_and_read_back(timed_store: Store) -> None:
    """A product's JSON may escape half a character; the dead letter must still be kept, unchanged."""
    d = add(timed_store, payload={"name": "Broken \udcff Bytes", "city": "Zürich"})
    assert timed_store.get_dead_letter(d.id).payload == {"name": "Broken \udcff Bytes", "city": "Zürich"}
