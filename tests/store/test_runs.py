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


def test_runs_of_dead_instances_are_closed_as_interrupted(timed_store: Store) -> None:
    gone = timed_store.start_run("customer", "host:1")
    alive = timed_store.start_run("customer", "host:2")
    other_pipeline = timed_store.start_run("order", "host:1")
    finished = timed_store.start_run("customer", "host:1")
    timed_store.finish_run(finished, status="ok", counts={}, api_calls={})
    asked: list[str] = []

    def is_alive(instance: str) -> bool:
        asked.append(instance)
        return instance != "host:1"

    assert timed_store.close_abandoned_runs("customer", is_alive) == 1
    assert sorted(asked) == ["host:1", "host:2"]  # only the pipeline's running rows are looked at
    runs = {r.id: r for r in timed_store.last_runs()}
    assert (runs[gone].status, runs[gone].finished_at) == ("interrupted", None)
    assert "abandoned" in (runs[gone].error or "")
    assert runs[alive].status == runs[other_pipeline].status == "running"
    assert runs[finished].status == "ok"
    assert timed_store.close_abandoned_runs("customer", is_alive) == 0


def test_prune_history_keeps_recent_open_and_the_newest_success(timed_store: Store, clock: FakeClock) -> None:
    def run(pipeline: str, status: str) -> int:
        run_id = timed_store.start_run(pipeline, "me")
        if status != "running":
            timed_store.finish_run(run_id, status=status, counts={}, api_calls={})
        return run_id

    newest_ok_old = run("order", "ok")  # the order pipeline's only success: kept whatever its age
    old_ok, old_failed, old_running = run("customer", "ok"), run("customer", "failed"), run("customer", "running")
    for record_id in ("1", "2"):
        timed_store.add_dead_letter(pipeline="customer", entity="customer", system="hubspot", record_id=record_id,
                                    payload={}, error_class="ValidationError", error_message="x", field=None,
                                    backoff=lambda n: timedelta(minutes=n), max_attempts=3)
    timed_store.resolve_dead_letter("customer", "hubspot", "1")
    old_conflict = timed_store.record_conflict(entity="customer", link_id=None, crm_id="7", erp_id="8",
                                               crm_version={}, erp_version={}, base=None, fields=["name"])
    timed_store.resolve_conflict(old_conflict.id, "crm")
    open_conflict = timed_store.record_conflict(entity="customer", link_id=None, crm_id="9", erp_id="10",
                                                crm_version={}, erp_version={}, base=None, fields=["name"])
    clock.advance(timedelta(days=31))
    recent_ok = run("customer", "ok")

    assert timed_store.prune_history(timedelta(days=30)) == {"runs": 2, "dead_letters": 1, "conflicts": 1}
    left = {r.id for r in timed_store.last_runs(limit=100)}
    assert left == {newest_ok_old, old_running, recent_ok}
    assert old_ok not in left and old_failed not in left
    assert [d.record_id for d in timed_store.list_dead_letters()] == ["2"]
    assert [c.id for c in timed_store.open_conflicts()] == [open_conflict.id]
    assert timed_store.prune_history(timedelta(days=30)) == {"runs": 0, "dead_letters": 0, "conflicts": 0}
