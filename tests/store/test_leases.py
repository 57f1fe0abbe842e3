"""Leases: one owner per pipeline, renewals, takeover after expiry, epochs as fencing tokens."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import text

from sync.store import Store

from .conftest import FakeClock

TTL = timedelta(seconds=30)


def test_new_lease_has_epoch_one(timed_store: Store, clock: FakeClock) -> None:
    assert timed_store.lease_owner("customer") is None
    assert timed_store.acquire_lease("customer", "a", TTL) == 1
    lease = timed_store.lease_owner("customer")
    assert lease is not None and (lease.owner, lease.epoch, lease.expires_at) == ("a", 1, clock.now + TTL)


def test_holder_renews_without_changing_epoch(timed_store: Store, clock: FakeClock) -> None:
    assert timed_store.acquire_lease("customer", "a", TTL) == 1
    clock.advance(timedelta(seconds=10))
    assert timed_store.acquire_lease("customer", "a", TTL) == 1
    clock.advance(timedelta(seconds=10))
    assert timed_store.renew_lease("customer", "a", 1, TTL) is True
    assert timed_store.lease_owner("customer").expires_at == clock.now + TTL  # type: ignore[union-attr]


def test_others_wait_while_it_is_held(timed_store: Store, clock: FakeClock) -> None:
    timed_store.acquire_lease("customer", "a", TTL)
    clock.advance(TTL - timedelta(seconds=1))
    assert timed_store.acquire_lease("customer", "b", TTL) is None
    assert timed_store.renew_lease("customer", "b", 1, TTL) is False
    assert timed_store.lease_owner("customer").owner == "a"  # type: ignore[union-attr]


def test_takeover_after_expiry_increments_epoch_and_fences_the_old_owner(timed_store: Store,
                                                                         clock: FakeClock) -> None:
    timed_store.acquire_lease("customer", "a", TTL)
    clock.advance(TTL)
    assert timed_store.lease_owner("customer") is None  # expired
    assert timed_store.acquire_lease("customer", "b", TTL) == 2
    assert timed_store.renew_lease("customer", "a", 1, TTL) is False
    assert timed_store.acquire_lease("customer", "a", TTL) is None
    clock.advance(TTL * 2)
    assert timed_store.acquire_lease("customer", "a", TTL) == 3


def test_late_renewal_without_takeover_keeps_the_lease(timed_store: Store, clock: FakeClock) -> None:
    timed_store.acquire_lease("customer", "a", TTL)
    clock.advance(TTL * 3)
    assert timed_store.renew_lease("customer", "a", 1, TTL) is True
    assert timed_store.lease_owner("customer").owner == "a"  # type: ignore[union-attr]


def test_release_lets_another_take_it_at_once(timed_store: Store) -> None:
    timed_store.acquire_lease("customer", "a", TTL)
    timed_store.release_lease("customer", "b")  # not b's to release
    assert timed_store.lease_owner("customer").owner == "a"  # type: ignore[union-attr]
    timed_store.release_lease("customer", "a")
    assert timed_store.lease_owner("customer") is None
    assert timed_store.acquire_lease("customer", "b", TTL) == 2
    timed_store.release_lease("customer", "b")
    assert timed_store.acquire_lease("customer", "b", TTL) == 3  # a new tenure, a new epoch


def test_leases_are_independent(timed_store: Store) -> None:
    assert timed_store.acquire_lease("customer", "a", TTL) == 1
    assert timed_store.acquire_lease("order", "b", TTL) == 1
    assert timed_store.lease_owner("order").owner == "b"  # type: ignore[union-attr]


def _race(store: Store, name: str, n: int) -> dict[str, int | None]:
    barrier = threading.Barrier(n)
    results: dict[str, int | None] = {}
    errors: list[BaseException] = []

    def contender(owner: str) -> None:
        try:
            barrier.wait()
            results[owner] = store.acquire_lease(name, owner, TTL)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=contender, args=(f"owner-{i}",)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results


def test_racing_for_a_new_lease_exactly_one_wins(store: Store) -> None:
    for round_ in range(3):
        results = _race(store, f"new-{round_}", 6)
        winners = {o: e for o, e in results.items() if e is not None}
        assert len(winners) == 1 and list(winners.values()) == [1]
        assert store.lease_owner(f"new-{round_}").owner in winners  # type: ignore[union-attr]


def test_racing_for_an_expired_lease_exactly_one_takes_it_over(store_url: str) -> None:
    clock = FakeClock()
    s = Store.open(store_url, clock=clock)
    try:
        for round_ in range(3):
            s.acquire_lease("shared", "old", TTL)
            clock.advance(TTL * 2)
            results = _race(s, "shared", 6)
            winners = [e for e in results.values() if e is not None]
            assert len(winners) == 1
            # next round: "old" takes it back after expiry
            clock.advance(TTL * 2)
    finally:
        s.close()


@pytest.mark.postgres
def test_the_same_owner_acquiring_a_new_lease_twice_at_once_holds_it_both_times(pg_url: str) -> None:
    # A daemon's heartbeat and its first pipeline job acquire together on a fresh store. The second
    # insert waits for the first one's commit and then does nothing: that must still read as held,
    # not as "lost" (which stopped the start-up run and the inbox until the next heartbeat).
    s = Store.open(pg_url)
    try:
        second: list[int | None] = []
        with s.transaction() as tx:
            assert tx.acquire_lease("customer", "me", TTL) == 1  # row inserted, not committed yet
            racer = threading.Thread(target=lambda: second.append(s.acquire_lease("customer", "me", TTL)))
            racer.start()
            assert _wait_for_lock_wait(s), "the second acquire never waited for the first one's insert"
        racer.join(10)
        assert second == [1]
        assert s.acquire_lease("customer", "other", TTL) is None
    finally:
        s.close()


def _wait_for_lock_wait(s: Store, timeout: float = 10.0) -> bool:
    """True once a session of this store waits on a lock (the racing insert)."""
    deadline = time.monotonic() + timeout
    with s.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                        "AND wait_event_type = 'Lock' AND query ILIKE '%INSERT INTO leases%'")).scalar()
            if waiting:
                return True
            conn.rollback()  # pg_stat_activity is a snapshot per transaction: take a new one each time
            time.sleep(0.02)
    return False
