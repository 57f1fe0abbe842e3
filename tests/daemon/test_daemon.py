"""The daemon's life cycle in process: connecting (and retrying), readiness, metrics of runs,
the web app before the runtime exists, the scheduler's jobs and a graceful shutdown."""
from __future__ import annotations

import io
import json
import threading
from datetime import timedelta
from typing import Any

import pytest

from sync.daemon import Daemon, DaemonConfigError, SwitchableApp
from sync.health import stopped_system
from sync.metrics import Metrics
from sync.store import StoreUnavailable

from .fakes import fake_runtime, stopped
from .procs import wait_for


def call(app: Any, path: str, method: str = "GET") -> tuple[str, dict[str, str], bytes]:
    result: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        result["status"], result["headers"] = status, dict(headers)

    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": method, "wsgi.input": io.BytesIO(b"")},
                        start_response))
    return result["status"], result["headers"], body


def test_readiness_reports_systems_and_pipelines(make_daemon, clocked_store):
    d = make_daemon()
    d.run_pipeline("customer")
    body = d.readiness()
    assert body["ready"] is True
    assert set(body["systems"]) == {"hubspot", "odoo"}
    assert body["pipelines"]["customer"]["owner"] == "me"
    assert body["pipelines"]["product"] == {"last_success_age": None, "owner": None, "here": False}


def test_an_unreachable_system_makes_the_daemon_unready_until_a_run_succeeds(make_daemon, pipelines):
    d = make_daemon()
    pipelines.run_errors["customer"] = stopped("odoo")
    assert d.run_pipeline("customer") is None  # logged, not raised: retried at the next interval
    body = d.readiness()
    assert body["ready"] is False
    assert body["systems"]["odoo"]["last_error"].startswith("odoo: unreachable")
    assert body["systems"]["hubspot"]["last_error"] is None
    del pipelines.run_errors["customer"]
    d.run_pipeline("customer")
    assert d.readiness()["ready"] is True


def test_api_calls_are_metered_and_count_as_contact(make_daemon, clock):
    d = make_daemon()
    d._on_api("hubspot", "search", 200, 0.05)
    clock.advance(3)
    assert d.readiness()["systems"]["hubspot"]["last_contact_age"] == 3
    assert d.readiness()["systems"]["odoo"]["last_contact_age"] is None
    assert d.metrics.registry.get_sample_value(
        "api_calls_total", {"system": "hubspot", "kind": "search", "status": "200"}) == 1


def test_a_run_is_observed_in_metrics(make_daemon):
    d = make_daemon()
    d.run_pipeline("customer")
    value = d.metrics.registry.get_sample_value(
        "records_synced_total", {"entity": "customer", "direction": "crm_to_erp", "outcome": "created"})
    assert value == 3
    assert d.metrics.registry.get_sample_value("run_duration_seconds_count", {"pipeline": "customer"}) == 1


def test_stopped_system_reads_the_system_from_the_message():
    assert stopped_system(stopped("odoo"), ["hubspot", "odoo"]) == "odoo"
    assert stopped_system(stopped("other"), ["hubspot", "odoo"]) is None


def test_mappings_without_an_enabled_entity_are_a_config_error(make_daemon, config, clocked_store):
    def runtime_without_product(cfg: Any, **kw: Any) -> Any:
        rt = fake_runtime(cfg, clocked_store)
        del rt.erp.mapping.entities["product"]
        return rt

    d = make_daemon(connect=False, runtime_factory=runtime_without_product)
    with pytest.raises(DaemonConfigError, match="odoo has no 'product'"):
        d._connect()


def test_before_connecting_the_web_app_answers_health_but_refuses_webhooks():
    metrics = Metrics()
    app = SwitchableApp(metrics=metrics, readiness=lambda: {"ready": False, "runtime": {"connected": False}},
                        max_body=100)
    assert call(app, "/healthz")[0] == "200 OK"
    status, _, body = call(app, "/readyz")
    assert status.startswith("503") and json.loads(body)["runtime"] == {"connected": False}
    status, headers, _ = call(app, "/webhooks/hubspot", "POST")
    assert status.startswith("503") and headers["Retry-After"] == "30"
    assert call(app, "/metrics")[0] == "200 OK"
    app.set(lambda environ, start_response: (start_response("204 No Content", []), [b""])[1])
    assert call(app, "/webhooks/hubspot", "POST")[0] == "204 No Content"


def test_a_store_down_at_start_is_retried_and_the_daemon_keeps_running(make_daemon, clocked_store, config):
    attempts: list[int] = []

    def flaky(cfg: Any, **kw: Any) -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            raise StoreUnavailable("cannot open the state store at postgresql://db: refused")
        return fake_runtime(cfg, clocked_store)

    d = make_daemon(connect=False, runtime_factory=flaky)
    d.start()
    try:
        body = d.readiness()
        assert body["ready"] is False and body["runtime"]["connected"] is False
        assert "refused" in body["runtime"]["error"]
        assert d.scheduler.get_job("connect") is not None
        d._connect_job()  # what the scheduler does after the backoff
        assert d.rt is not None
        assert {j.id for j in d.scheduler.get_jobs()} >= {"pipeline:customer", "pipeline:product", "heartbeat"}
    finally:
        assert d.shutdown(timeout=10)


def test_jobs_are_scheduled_as_designed(make_daemon, config):
    d = make_daemon(connect=False)
    d.start()
    try:
        customer = d.scheduler.get_job("pipeline:customer")
        assert customer.max_instances == 1 and customer.coalesce
        assert customer.trigger.interval.total_seconds() == 300
        assert customer.misfire_grace_time == 150  # half the interval
        heartbeat = d.scheduler.get_job("heartbeat")
        assert heartbeat.trigger.interval.total_seconds() == 10  # a third of the lease TTL
    finally:
        d.shutdown(timeout=10)


def test_shutdown_waits_for_the_batch_in_flight(make_daemon, pipelines, clocked_store):
    d = make_daemon()
    in_page = threading.Event()
    release = threading.Event()

    def slow_page(page: int) -> None:
        if page == 0:
            in_page.set()
            release.wait(10)

    pipelines.hooks["customer"] = slow_page
    runner = threading.Thread(target=d.run_pipeline, args=("customer",))
    runner.start()
    assert in_page.wait(10)
    stopper = threading.Thread(target=lambda: results.append(d.shutdown(timeout=20)))
    results: list[bool] = []
    stopper.start()
    assert d.stopping.wait(10)
    release.set()
    stopper.join(30)
    runner.join(10)
    assert results == [True]
    assert [(e, pages) for e, pages, _ in pipelines.reports] == [("customer", 1)]  # stopped after the page
    assert pipelines.reports[0][2].interrupted
    assert clocked_store.lease_owner("customer") is None


def test_shutdown_gives_up_on_a_stuck_job_and_keeps_its_lease(make_daemon, pipelines, clocked_store):
    d = make_daemon()
    in_page = threading.Event()
    release = threading.Event()
    pipelines.hooks["customer"] = lambda page: (in_page.set(), release.wait(10))
    runner = threading.Thread(target=d.run_pipeline, args=("customer",))
    runner.start()
    try:
        assert in_page.wait(10)
        assert d.shutdown(timeout=0.2) is False
        # Still working under it: the lease is left to expire rather than handed over.
        assert clocked_store.lease_owner("customer").owner == "me"
    finally:
        release.set()
        runner.join(10)


def test_config_instance_id_is_the_default_instance(config, clocked_store):
    d = Daemon(config, serve_web=False, runtime_factory=lambda cfg, **kw: fake_runtime(cfg, clocked_store))
    assert d.instance == "me"
    assert Daemon(config, instance="cli-id", serve_web=False).instance == "cli-id"


def test_a_pipeline_taken_over_by_the_heartbeat_runs_at_once(make_daemon, pipelines, clocked_store, clock):
    clocked_store.acquire_lease("customer", "dead", timedelta(seconds=30))
    d = make_daemon(connect=False)
    d.start()
    try:
        assert wait_for(lambda: d._beaten and ("product", 1) in pipelines.created, 10)
        assert ("customer", 1) not in pipelines.created and ("customer", 2) not in pipelines.created
        clock.advance(31)  # the dead owner's lease expires
        assert d.heartbeat() == ["customer"]
        # Its next scheduled run was 5 minutes away; the takeover runs it now.
        assert wait_for(lambda: ("customer", 2) in pipelines.created, 10)
    finally:
        d.shutdown(timeout=10)


def test_housekeeping_prunes_history_past_the_configured_retention(make_daemon, clocked_store, clock):
    """The hourly job deletes old finished runs (a pipeline's newest success stays) and old processed
    webhook events; what is recent or still open is kept."""
    d = make_daemon()
    for status in ("failed", "ok", "ok"):
        clocked_store.finish_run(clocked_store.start_run("customer", "me"), status=status, counts={}, api_calls={})
    clock.advance((d.config.state.retention + timedelta(days=1)).total_seconds())
    recent = clocked_store.start_run("customer", "me")
    d._housekeeping_job()
    assert [r.id for r in clocked_store.last_runs("customer")][0] == recent
    assert [r.status for r in clocked_store.last_runs("customer")] == ["running", "ok"]
