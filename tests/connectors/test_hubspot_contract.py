"""Contract tests: HubSpotConnector against the HubSpot simulator over real HTTP, with every
request the connector sends and every response it gets checked against HubSpot's OpenAPI files."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connectors.base import (
    AuthError,
    EntitySpec,
    NotFound,
    ValidationError,
    Watermark,
    WebhookRequest,
    WriteOp,
    id_sort_key,
)
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from sandbox.hubspot import HubSpotSimulator
from tests.support.openapi import ValidatingObserver

KEY = "concord_erp_id"
CUSTOM = {KEY: {"type": "string", "unique": True, "label": "Concord ERP id"},
          "credit_limit": {"type": "number"}, "on_credit_hold": {"type": "bool"},
          "last_invoice_date": {"type": "date"}}
SPEC = EntitySpec(entity="customer", object="companies", id_field="hs_object_id",
                  updated_field="hs_lastmodifieddate", fields=("name", "domain", "credit_limit", "on_credit_hold",
                                                               "last_invoice_date"),
                  key_field=KEY, options={"custom_fields": CUSTOM})


@pytest.fixture
def sim() -> Iterator[HubSpotSimulator]:
    s = HubSpotSimulator(burst_limit=None, search_rate=None).start()
    observer = ValidatingObserver()
    s.observers.append(observer)
    try:
        yield s
        observer.assert_clean()
    finally:
        s.stop()


def connector_for(sim: HubSpotSimulator, **extra: object) -> HubSpotConnector:
    settings = {"connector": "hubspot", "token": sim.token, "client_secret": sim.client_secret,
                "base_url": sim.base_url, "rate_limit": 10_000, "burst": 10_000, "search_rate": 10_000}
    settings.update(extra)
    return HubSpotConnector(HubSpotSettings(**settings))


@pytest.fixture
def hs(sim: HubSpotSimulator) -> Iterator[HubSpotConnector]:
    c = connector_for(sim)
    c.setup([SPEC])
    yield c
    c.close()


def records_of(pages) -> list:
    return [r for page in pages for r in page.records]


def test_check_connection_and_bad_token(sim: HubSpotSimulator) -> None:
    connector_for(sim).check_connection()
    with pytest.raises(AuthError):
        connector_for(sim, token="pat-wrong").check_connection()


def test_setup_creates_the_custom_properties_once(sim: HubSpotSimulator) -> None:
    c = connector_for(sim)
    assert len(c.missing_setup([SPEC])) == 4
    assert len(c.setup([SPEC])) == 4
    assert c.missing_setup([SPEC]) == []
    assert c.setup([SPEC]) == []


def test_iter_changes_lists_everything_once_in_order_then_only_newer(sim: HubSpotSimulator,
                                                                      hs: HubSpotConnector) -> None:
    ids = sim.seed_companies(450)
    records = records_of(hs.iter_changes(SPEC, None))
    assert [r.id for r in records] == ids  # seeded one millisecond apart, oldest first
    assert all(r.updated_at is not None and r.updated_at.tzinfo is not None for r in records)
    assert records[0].data["name"] and not records[0].deleted

    mark = Watermark(records[-1].updated_at, records[-1].id)  # type: ignore[arg-type]
    sim.clock.advance(5)
    sim.update("companies", ids[10], {"name": "Renamed Ltd"})
    changed = records_of(hs.iter_changes(SPEC, mark))
    assert [r.id for r in changed] == [ids[-1], ids[10]]  # GTE: the watermark's own record comes back
    assert changed[-1].data["name"] == "Renamed Ltd" and changed[-1].updated_at > mark.updated_at


def test_iter_changes_with_more_ties_than_a_page(sim: HubSpotSimulator) -> None:
    sim.clock.freeze(datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc))
    tied = [sim.create("companies", {"name": f"Tie {n}"}) for n in range(23)]
    sim.clock.advance(1)
    later = sim.create("companies", {"name": "Later"})
    c = connector_for(sim, page_size=5)
    records = records_of(c.iter_changes(SPEC, None))
    assert [r.id for r in records] == sorted(tied, key=id_sort_key) + [later]
    assert c.api_calls()["search"] >= 6


def test_upsert_is_idempotent_and_updates_by_id(sim: HubSpotSimulator, hs: HubSpotConnector) -> None:
    op = WriteOp(ref="erp:42", key="ERP-42",
                 data={"name": "Acme GmbH", "credit_limit": Decimal("5E+3"), "on_credit_hold": False,
                       "last_invoice_date": date(2025, 2, 3)})
    (first,) = hs.write(SPEC, [op])
    (again,) = hs.write(SPEC, [op])  # a retry, or a write whose acknowledgement was lost
    assert first.ok and first.created and again.ok and not again.created
    assert first.target_id == again.target_id
    assert len([r for r in sim.all("companies") if r["properties"].get(KEY) == "ERP-42"]) == 1

    (update,) = hs.write(SPEC, [WriteOp(ref="erp:42", target_id=first.target_id, data={"domain": "acme.example"})])
    assert update.ok and not update.created
    stored = sim.get("companies", first.target_id)
    assert stored is not None and stored["properties"]["domain"] == "acme.example"
    assert stored["properties"]["on_credit_hold"] == "false"
    assert stored["properties"]["credit_limit"] == "5000"
    assert stored["properties"]["last_invoice_date"] == "2025-02-03"


def test_partial_batch_failure_is_reported_per_record(sim: HubSpotSimulator, hs: HubSpotConnector) -> None:
    ops = [WriteOp(ref="good", key="ERP-1", data={"name": "Good"}),
           WriteOp(ref="bad", key="ERP-2", data={"name": "Bad", "no_such_property": "x"}),
           WriteOp(ref="good2", key="ERP-3", data={"name": "Good too"})]
    good, bad, good2 = hs.write(SPEC, ops)
    assert good.ok and good2.ok
    assert not bad.ok and isinstance(bad.error, ValidationError) and bad.error.field == "no_such_property"
    (missing,) = hs.write(SPEC, [WriteOp(ref="m", target_id="999", data={"name": "x"})])
    assert not missing.ok and isinstance(missing.error, (NotFound, ValidationError))


def test_read_find_by_keys_and_archive(sim: HubSpotSimulator, hs: HubSpotConnector) -> None:
    results = hs.write(SPEC, [WriteOp(ref=f"r{n}", key=f"ERP-{n}", data={"name": f"Co {n}"}) for n in range(150)])
    ids = [r.target_id for r in results]
    assert all(r.ok for r in results) and len(set(ids)) == 150

    found = hs.read(SPEC, [*ids[:120], "999"])
    assert set(found) == set(ids[:120])
    assert found[ids[0]].data[KEY] == "ERP-0"

    by_key = hs.find_by_keys(SPEC, ["ERP-5", "ERP-149", "ERP-nope"])
    assert {k: r.id for k, r in by_key.items()} == {"ERP-5": ids[5], "ERP-149": ids[149]}

    archived = hs.archive(SPEC, ids[:3])
    assert all(r.ok for r in archived)
    assert set(hs.read(SPEC, ids[:5])) == set(ids[3:5])
    listing = records_of(hs.iter_all(SPEC))
    assert {(r.id, r.deleted) for r in listing if r.id in ids[:5]} == \
        {(i, True) for i in ids[:3]} | {(i, False) for i in ids[3:5]}
    assert len(listing) == 150
    calls = hs.api_calls()
    assert calls["write"] == 2 and calls["archive"] == 1 and calls["read"] >= 3


def test_find_by_values_searches_case_insensitively_in_bodies_under_the_limit(sim: HubSpotSimulator,
                                                                              hs: HubSpotConnector) -> None:
    emails = [f"Buyer.{n:03d}@Some-Long-Company-Name.example" for n in range(120)]
    ids = [sim.create("companies", {"name": f"Co {n}", "domain": e}) for n, e in enumerate(emails)]
    sim.archive("companies", ids[7])
    found = hs.find_by_values(SPEC, "domain", [e.upper() for e in emails[:100]] + ["nobody@x.example"])
    assert sorted(r.id for r in found) == sorted(i for i in ids[:100] if i != ids[7])
    assert all(not r.deleted and r.data["name"] for r in found)
    # 100 values of ~45 characters do not fit in one 3,000-character body: several searches, not 100.
    assert 2 <= hs.api_calls()["search"] <= 4


def test_default_search_pacing_stays_under_the_search_limit() -> None:
    with HubSpotSimulator(burst_limit=None, search_rate=5) as sim:
        observer = ValidatingObserver()
        sim.observers.append(observer)
        sim.seed_companies(5 * 200 + 1)
        c = connector_for(sim, search_rate=4.0)
        records = records_of(c.iter_changes(SPEC, None))
        assert len(records) == 1001
        assert c.http.statuses[429] == 0
        assert c.api_calls()["search"] == 6
        observer.assert_clean()


class _Capture(BaseHTTPRequestHandler):
    received: list[WebhookRequest] = []

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        host = self.headers["Host"]
        self.received.append(WebhookRequest("POST", f"http://{host}{self.path}", dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_webhooks_signed_by_the_simulator_verify_and_parse(sim: HubSpotSimulator, hs: HubSpotConnector) -> None:
    _Capture.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sim.configure_webhooks(f"http://127.0.0.1:{server.server_address[1]}/webhooks/hubspot?tenant=a%3Ab")
        rid = sim.create("companies", {"name": "Hooked"})
        sim.update("companies", rid, {"name": "Hooked again"})
        sim.archive("companies", rid)
        assert sim.flush_webhooks(10)
    finally:
        server.shutdown()
        server.server_close()
    events = [e for request in _Capture.received for e in hs.parse_webhook(request)]
    kinds = {e.kind for e in events if e.record_id == rid and e.object == "companies"}
    assert {"create", "update", "delete"} <= kinds
    assert len({e.event_id for e in events}) == len(events)
    assert all(e.occurred_at is not None and e.occurred_at > datetime.now(timezone.utc) - timedelta(minutes=5)
               for e in events)
