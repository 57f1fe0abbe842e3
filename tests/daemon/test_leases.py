"""Pipeline leases as the daemon uses them: taken by a run, renewed by the heartbeat, released on
shutdown, skipped when another instance owns them, and work stopped when one is lost."""
from __future__ import annotations

from datetime import timedelta

from sync.leases import LeaseKeeper
from sync.pipeline import PipelineStopped

TTL = timedelta(seconds=30)


def test_keeper_acquires_renews_and_releases(clocked_store, clock):
    keeper = LeaseKeeper(clocked_store, "me", TTL, ["customer"], clock.monotonic)
    assert keeper.acquire("customer") == 1
    assert keeper.holds("customer", 1)
    first = clocked_store.lease_owner("customer")
    clock.advance(10)
    assert keeper.heartbeat() == []
    renewed = clocked_store.lease_owner("customer")
    assert renewed.owner == "me" and renewed.epoch == 1
    assert renewed.expires_at == first.expires_at + timedelta(seconds=10)
    keeper.release("customer")
    assert clocked_store.lease_owner("customer") is None
    assert not keeper.holds("customer")


def test_keeper_counts_a_lease_held_only_while_renewed_in_time(clocked_store, clock):
    keeper = LeaseKeeper(clocked_store, "me", TTL, ["customer"], clock.monotonic)
    keeper.acquire("customer")
    clock.advance(29)
    assert keeper.holds("customer")
    clock.advance(2)  # no heartbeat got through for longer than the TTL: another may own it now
    assert not keeper.holds("customer")
    assert keeper.epoch("customer") is None


def test_keeper_loses_a_lease_another_instance_took_over(clocked_store, clock):
    keeper = LeaseKeeper(clocked_store, "me", TTL, ["customer"], clock.monotonic)
    keeper.acquire("customer")
    clock.advance(31)
    assert clocked_store.acquire_lease("customer", "other", TTL) == 2
    keeper.heartbeat(acquire_free=False)
    assert keeper.held() == {}
    assert clocked_store.lease_owner("customer").owner == "other"


def test_heartbeat_takes_over_an_expired_lease_with_a_new_epoch(clocked_store, clock):
    clocked_store.acquire_lease("customer", "dead", TTL)
    keeper = LeaseKeeper(clocked_store, "me", TTL, ["customer", "product"], clock.monotonic)
    assert keeper.heartbeat() == ["product"]  # customer is still the dead one's
    clock.advance(31)
    assert keeper.heartbeat() == ["customer"]
    assert keeper.held() == {"customer": 2, "product": 1}


def test_a_run_takes_the_lease_and_runs_with_its_epoch(make_daemon, pipelines, clocked_store):
    d = make_daemon()
    report = d.run_pipeline("customer")
    assert report is not None and not report.interrupted
    assert pipelines.created == [("customer", 1)]
    lease = clocked_store.lease_owner("customer")
    assert (lease.owner, lease.epoch) == ("me", 1)


def test_a_run_skips_when_another_instance_owns_the_lease(make_daemon, pipelines, clocked_store):
    clocked_store.acquire_lease("customer", "other", TTL)
    d = make_daemon()
    assert d.run_pipeline("customer") is None
    assert pipelines.created == []
    assert clocked_store.lease_owner("customer").owner == "other"


def test_a_lost_lease_stops_the_run_between_pages(make_daemon, pipelines, clocked_store, clock):
    d = make_daemon()

    def takeover(page: int) -> None:
        if page == 0:  # while page 0 is in flight, we stall and another instance takes over
            clock.advance(31)
            assert clocked_store.acquire_lease("customer", "other", TTL) == 2
            d.heartbeat()

    pipelines.hooks["customer"] = takeover
    report = d.run_pipeline("customer")
    assert report.interrupted
    assert [(e, pages) for e, pages, _ in pipelines.reports] == [("customer", 1)]
    assert "customer" not in d.leases.held()


def test_a_lease_that_cannot_be_renewed_stops_work_on_its_own(make_daemon, pipelines, clock):
    d = make_daemon()
    pipelines.hooks["customer"] = lambda page: clock.advance(31) if page == 1 else None
    report = d.run_pipeline("customer")
    assert report.interrupted
    assert pipelines.reports[0][1] == 2


def test_a_fenced_cursor_write_forgets_the_lease(make_daemon, pipelines):
    d = make_daemon()
    pipelines.run_errors["customer"] = PipelineStopped("lost the lease of customer: stale", exit_code=1)
    assert d.run_pipeline("customer") is None
    assert "customer" not in d.leases.held()
    assert d.readiness()["ready"]  # losing a lease is not a system failure


def test_heartbeat_renews_what_runs_took(make_daemon, clocked_store, clock):
    d = make_daemon()
    d.run_pipeline("customer")
    before = clocked_store.lease_owner("customer").expires_at
    clock.advance(10)
    d.heartbeat()
    assert clocked_store.lease_owner("customer").expires_at == before + timedelta(seconds=10)


def test_shutdown_releases_the_leases(make_daemon, clocked_store):
    d = make_daemon()
    d.run_pipeline("customer")
    d.run_pipeline("product")
    assert d.shutdown(timeout=5)
    assert clocked_store.lease_owner("customer") is None
    assert clocked_store.lease_owner("product") is None
    # The next owner takes over at once, with a new epoch.
    assert clocked_store.acquire_lease("customer", "next", TTL) == 2


def test_no_new_runs_after_stop(make_daemon, pipelines):
    d = make_daemon()
    d.request_stop()
    assert d.run_pipeline("customer") is None
    assert pipelines.created == []
