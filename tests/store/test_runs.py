"""Runs: one row per pipeline run."""
from __future__ import annotations

from datetime import timedelta

import pytest

from sync.store import RecordNotFound, Store

from .conftest import FakeClock


def test_start_and_finish(timed_store: Store, clock: FakeClock) -> None:
    run_id = timed_store.start_run("customer", "host:1")
    running = timed_store.last_runs()[0]
    assert (running.id, running.status, running.instance, running.started_at) == (run_id, "running", "host:1",
                                                                                   clock.now)
    assert running.finished_at is None and running.counts == {} and running.error is None
    end = clock.advance(timedelta(seconds=12))
    timed_store.finish_run(run_id, status="failed", counts={"read": 3, "created": 1},
                           api_calls={"hubspot": 4}, error="AuthError: 401")
    done = timed_store.last_runs("customer")[0]
    assert (done.status, done.finished_at, done.counts, done.api_calls, done.error) == (
        "failed", end, {"read": 3, "created": 1}, {"hubspot": 4}, "AuthError: 401")


def test_last_runs_newest_first_filtered_and_limited(timed_store: Store, clock: FakeClock) -> None:
    ids = []
    for p in ("customer", "order", "customer"):
        ids.append(timed_store.start_run(p, "me"))
        clock.advance(timedelta(seconds=1))
    assert [r.id for r in timed_store.last_runs()] == ids[::-1]
    assert [r.id for r in timed_store.last_runs("customer")] == [ids[2], ids[0]]
    assert [r.id for r in timed_store.last_runs(limit=1)] == [ids[2]]


def test_last_successful_run(timed_store: Store, clock: FakeClock) -> None:
    assert timed_store.last_successful_run("customer") is None
    ok = timed_store.start_run("customer", "me")
    timed_store.finish_run(ok, status="ok", counts={}, api_calls={})
    clock.advance(timedelta(minutes=1))
    bad = timed_store.start_run("customer", "me")
    timed_store.finish_run(bad, status="failed", counts={}, api_calls={})
    timed_store.start_run("customer", "me")
    got = timed_store.last_successful_run("customer")
    assert got is not None and got.id == ok


def test_invalid_status_and_unknown_run(timed_store: Store) -> None:
    run_id = timed_store.start_run("customer", "me")
    with pytest.raises(ValueError):
        timed_store.finish_run(run_id, status="great", counts={}, api_calls={})
    with pytest.raises(RecordNotFound):
        timed_store.finish_run(run_id + 1000, status="ok", counts={}, api_calls={})
