"""/healthz, /readyz and /metrics through the real server."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .fakes import Conflict, MemoryStore, Run


def test_healthz_is_ok_while_the_process_runs(web) -> None:
    h = web()
    r = h.session.get(h.url + "/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert r.headers["Content-Type"] == "application/json"
    head = h.session.head(h.url + "/healthz")
    assert head.status_code == 200 and head.content == b""


def test_readyz_reports_the_store_and_the_daemons_checks(web) -> None:
    checked = {"systems": {"hubspot": {"last_contact_age": 4.5}},
               "pipelines": {"customer:crm_to_erp": {"last_success_age": 30}}}
    h = web(readiness=lambda: {"ready": True, **checked})
    r = h.session.get(h.url + "/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["ready"] is True and body["store"] == {"reachable": True}
    assert body["systems"] == checked["systems"] and body["pipelines"] == checked["pipelines"]


def test_readyz_is_503_when_the_store_is_unreachable(web) -> None:
    h = web(readiness=lambda: {"ready": True})
    h.store.reachable = False
    r = h.session.get(h.url + "/readyz")
    assert r.status_code == 503
    assert r.json()["store"] == {"reachable": False} and r.json()["ready"] is False
    h.store.reachable = True
    assert h.session.get(h.url + "/readyz").status_code == 200


def test_readyz_is_503_when_the_daemon_is_not_ready(web) -> None:
    h = web(readiness=lambda: {"ready": False, "systems": {"odoo": {"error": "unreachable"}}})
    r = h.session.get(h.url + "/readyz")
    assert r.status_code == 503
    assert r.json()["systems"] == {"odoo": {"error": "unreachable"}}


def test_readyz_is_503_when_the_check_itself_fails(web) -> None:
    def broken() -> dict:
        raise RuntimeError("boom")

    h = web(readiness=broken)
    r = h.session.get(h.url + "/readyz")
    assert r.status_code == 503 and r.json()["ready"] is False


def test_readyz_without_daemon_checks_follows_the_store(web) -> None:
    h = web()
    assert h.session.get(h.url + "/readyz").status_code == 200


def test_metrics_is_prometheus_text_and_openmetrics_on_request(web) -> None:
    h = web()
    r = h.session.get(h.url + "/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'webhook_events_total{outcome="accepted",system="fakehub"} 0.0' in r.text
    om = h.session.get(h.url + "/metrics", headers={"Accept": "application/openmetrics-text"})
    assert om.headers["Content-Type"].startswith("application/openmetrics-text")
    assert om.text.rstrip().endswith("# EOF")


def test_metrics_refresh_dead_letters_conflicts_and_lag_from_the_store(web) -> None:
    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    store = MemoryStore(dead={"customer:crm_to_erp": 3},
                        conflicts=[Conflict("customer"), Conflict("customer"), Conflict("order")],
                        runs={"customer:crm_to_erp": Run("customer:crm_to_erp",
                                                         now - timedelta(seconds=90), now)})
    h = web(store=store, pipelines=["customer:crm_to_erp", "order:crm_to_erp"], now=lambda: now)
    assert h.sample("dead_letters", pipeline="customer:crm_to_erp") == 3
    assert h.sample("dead_letters", pipeline="order:crm_to_erp") == 0
    assert h.sample("open_conflicts", entity="customer") == 2
    assert h.sample("open_conflicts", entity="order") == 1
    assert h.sample("pipeline_lag_seconds", pipeline="customer:crm_to_erp") == 90
    assert h.sample("pipeline_lag_seconds", pipeline="order:crm_to_erp") is None  # never ran

    store.conflicts = [Conflict("order")]  # the customer conflicts were resolved
    assert h.sample("open_conflicts", entity="customer") == 0


def test_metrics_refresh_reads_the_real_store(web) -> None:
    h = web(pipelines=["customer:crm_to_erp"])
    store = h.store.inner
    store.record_conflict(entity="customer", link_id=None, crm_id="1", erp_id="7",
                          crm_version={"name": "A"}, erp_version={"name": "B"}, base=None,
                          fields=["name"])
    store.add_dead_letter(pipeline="customer:crm_to_erp", entity="customer", system="crm",
                          record_id="9", payload={}, error_class="ValidationError",
                          error_message="bad email", field="email",
                          backoff=lambda n: timedelta(minutes=n), max_attempts=5)
    run = store.start_run("customer:crm_to_erp", "test")
    store.finish_run(run, status="ok", counts={"created": 1}, api_calls={})
    assert h.sample("open_conflicts", entity="customer") == 1
    assert h.sample("dead_letters", pipeline="customer:crm_to_erp") == 1
    lag = h.sample("pipeline_lag_seconds", pipeline="customer:crm_to_erp")
    assert lag is not None and lag >= 0
