"""Inbox: webhook events deduplicated, claimed by one worker at a time, processed."""
from __future__ import annotations

import threading
from datetime import timedelta

from sync.store import InboxEvent, Store

from .conftest import FakeClock

TTL = timedelta(minutes=5)


def ev(event_id: str, record_id: str = "1", obj: str = "contact", system: str = "hubspot") -> InboxEvent:
    return InboxEvent(system, event_id, obj, record_id, "update", {"objectId": record_id})


def test_add_deduplicates_on_system_and_event_id(timed_store: Store) -> None:
    assert timed_store.inbox_add("hubspot", [ev("1"), ev("2"), ev("2")]) == 2
    assert timed_store.inbox_add("hubspot", [ev("2"), ev("3")]) == 1
    assert timed_store.inbox_add("odoo", [ev("1", system="odoo")]) == 1
    assert timed_store.inbox_add("hubspot", []) == 0
    assert timed_store.inbox_pending() == 4


def test_claim_returns_oldest_first_with_fields(timed_store: Store, clock: FakeClock) -> None:
    timed_store.inbox_add("hubspot", [ev("a", "10"), ev("b", "11"), ev("c", "12")])
    got = timed_store.inbox_claim("w1", 2, TTL)
    assert [e.event_id for e in got] == ["a", "b"]
    first = got[0]
    assert (first.system, first.object, first.record_id, first.kind, first.payload) == (
        "hubspot", "contact", "10", "update", {"objectId": "10"})
    assert first.received_at == clock.now and first.id is not None and first.claimed_by == "w1"
    assert [e.event_id for e in timed_store.inbox_claim("w2", 10, TTL)] == ["c"]
    assert timed_store.inbox_claim("w3", 10, TTL) == []


def test_expired_claims_are_handed_out_again(timed_store: Store, clock: FakeClock) -> None:
    timed_store.inbox_add("hubspot", [ev("a")])
    assert len(timed_store.inbox_claim("w1", 10, TTL)) == 1
    clock.advance(TTL - timedelta(seconds=1))
    assert timed_store.inbox_claim("w2", 10, TTL) == []
    clock.advance(timedelta(seconds=1))
    again = timed_store.inbox_claim("w2", 10, TTL)
    assert [e.claimed_by for e in again] == ["w2"]


def test_done_events_are_not_claimed_and_not_pending(timed_store: Store, clock: FakeClock) -> None:
    timed_store.inbox_add("hubspot", [ev("a"), ev("b")])
    got = timed_store.inbox_claim("w1", 10, TTL)
    timed_store.inbox_done([e.id for e in got if e.event_id == "a"])  # type: ignore[misc]
    assert timed_store.inbox_pending() == 1
    clock.advance(TTL * 2)
    assert [e.event_id for e in timed_store.inbox_claim("w2", 10, TTL)] == ["b"]
    assert timed_store.inbox_add("hubspot", [ev("a")]) == 0  # still deduplicated after processing


def test_claim_filters_by_system_and_object(timed_store: Store) -> None:
    timed_store.inbox_add("hubspot", [ev("1", obj="contact"), ev("2", obj="deal")])
    timed_store.inbox_add("odoo", [ev("1", obj="res.partner", system="odoo")])
    assert [e.object for e in timed_store.inbox_claim("w", 10, TTL, system="hubspot", objects=["deal"])] == ["deal"]
    assert [e.system for e in timed_store.inbox_claim("w", 10, TTL, system="odoo")] == ["odoo"]


def test_purge_removes_old_processed_events_only(timed_store: Store, clock: FakeClock) -> None:
    timed_store.inbox_add("hubspot", [ev("a"), ev("b")])
    got = timed_store.inbox_claim("w", 1, TTL)
    timed_store.inbox_done([got[0].id])  # type: ignore[list-item]
    clock.advance(timedelta(days=8))
    assert timed_store.inbox_purge(timedelta(days=7)) == 1
    assert timed_store.inbox_pending() == 1


def test_concurrent_workers_never_get_the_same_event(store: Store) -> None:
    store.inbox_add("hubspot", [ev(str(i), str(i)) for i in range(300)])
    barrier = threading.Barrier(4)
    claimed: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        mine: list[int] = []
        try:
            barrier.wait()
            while batch := store.inbox_claim(name, 7, TTL):
                mine.extend(e.id for e in batch)  # type: ignore[misc]
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
        claimed[name] = mine

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    everything = [i for ids in claimed.values() for i in ids]
    assert len(everything) == len(set(everything)) == 300
