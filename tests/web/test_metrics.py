"""sync/metrics.py: own registry, helper semantics, exposition."""
from __future__ import annotations

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from sync.metrics import Metrics, split_pipeline


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render()[0].decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_each_instance_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.webhook_events_total.labels("hubspot", "accepted").inc(3)
    assert samples(a)[("webhook_events_total", (("outcome", "accepted"), ("system", "hubspot")))] == 3
    assert ("webhook_events_total", (("outcome", "accepted"), ("system", "hubspot"))) not in samples(b)
    assert REGISTRY.get_sample_value("webhook_events_total",
                                     {"system": "hubspot", "outcome": "accepted"}) is None


def test_observe_api_matches_the_http_client_hook() -> None:
    m = Metrics()
    m.observe_api("hubspot", "read", 200, 0.12)
    m.observe_api("hubspot", "read", 200, 0.02)
    m.observe_api("odoo", "write", None, 5.0)  # no response at all
    s = samples(m)
    assert s[("api_calls_total", (("kind", "read"), ("status", "200"), ("system", "hubspot")))] == 2
    assert s[("api_calls_total", (("kind", "write"), ("status", "error"), ("system", "odoo")))] == 1
    assert s[("api_call_seconds_count", (("system", "hubspot"),))] == 2
    assert s[("api_call_seconds_bucket", (("le", "0.05"), ("system", "hubspot")))] == 1


def test_observe_api_is_called_by_http_client() -> None:
    import responses

    from connectors.http import HttpClient, HttpSettings

    m = Metrics()
    with responses.RequestsMock() as mock:
        mock.get("http://api.test/x", json={}, status=200)
        client = HttpClient("hubspot", "http://api.test", HttpSettings(max_attempts=1),
                            on_response=m.observe_api)
        client.request("GET", "/x", kind="read")
    calls = {k: v for k, v in samples(m).items() if k[0] == "api_calls_total"}
    assert list(calls.values()) == [1]
    assert dict(next(iter(calls))[1])["system"] == "hubspot"


def test_observe_run_counts_outcomes_by_entity_and_direction() -> None:
    m = Metrics()
    m.observe_run("customer:crm_to_erp", 12.5,
                  {"read": 10, "created": 2, "updated": 3, "skipped_echo": 0, "api_calls": 7,
                   "ok": True, "note": "x"})
    m.observe_run("customer:crm_to_erp", 1.0, {"created": 1})
    m.observe_run("stock", 2.0, {"updated": 4}, entity="stock_level", direction="erp_to_crm")
    # A two-way run reports per direction (the pipeline's report.by_direction).
    m.observe_run("product", 3.0, {"erp_to_crm": {"created": 5, "read": 9}, "crm_to_erp": {"echo": 2}})
    s = samples(m)
    key = lambda e, d, o: ("records_synced_total", (("direction", d), ("entity", e), ("outcome", o)))
    assert s[key("customer", "crm_to_erp", "created")] == 3
    assert s[key("customer", "crm_to_erp", "updated")] == 3
    assert s[key("stock_level", "erp_to_crm", "updated")] == 4
    assert s[key("product", "erp_to_crm", "created")] == 5
    assert s[key("product", "crm_to_erp", "echo")] == 2
    assert s[("run_duration_seconds_count", (("pipeline", "product"),))] == 1
    assert not any(k[0] == "records_synced_total" and dict(k[1])["outcome"] in
                   ("read", "api_calls", "skipped_echo", "ok", "note") for k in s)
    assert s[("run_duration_seconds_count", (("pipeline", "customer:crm_to_erp"),))] == 2


def test_gauges() -> None:
    m = Metrics()
    m.set_lag("customer:crm_to_erp", 42)
    m.set_dead_letters({"customer:crm_to_erp": 2})
    m.set_open_conflicts({"customer": 5})
    m.set_open_conflicts({}, known=["customer"])
    s = samples(m)
    assert s[("pipeline_lag_seconds", (("pipeline", "customer:crm_to_erp"),))] == 42
    assert s[("dead_letters", (("pipeline", "customer:crm_to_erp"),))] == 2
    assert s[("open_conflicts", (("entity", "customer"),))] == 0


def test_split_pipeline() -> None:
    assert split_pipeline("order:crm_to_erp") == ("order", "crm_to_erp")
    assert split_pipeline("payment") == ("payment", "")


def test_render_negotiates_openmetrics() -> None:
    m = Metrics()
    body, ctype = m.render()
    assert ctype.startswith("text/plain") and b"# TYPE webhook_rejected_total counter" in body
    body, ctype = m.render("application/openmetrics-text; version=1.0.0")
    assert ctype.startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")
