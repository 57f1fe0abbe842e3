"""The app in front of the real HubSpotConnector.parse_webhook (signature v3, event parsing)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.hubspot import HubSpotConnector, HubSpotSettings

from .conftest import SECRET
from .signing import body_of, event, now_ms, signed_headers

PATH = "/webhooks/hubspot"


@pytest.fixture
def hubspot() -> Iterator[HubSpotConnector]:
    connector = HubSpotConnector(HubSpotSettings(
        connector="hubspot", token="pat-na1-test", client_secret=SECRET,
        base_url="http://127.0.0.1:9"))  # never called: webhooks make no API calls
    yield connector
    connector.close()


@pytest.fixture
def h(web, hubspot):
    return web(connectors={"hubspot": hubspot},
               object_entities={("hubspot", "contacts"): "customer", ("hubspot", "deals"): "order"})


def test_signed_batch_with_both_type_keys_is_queued(h, hubspot) -> None:
    events = [event(1, 101), event(2, 202, "deal.creation", key="eventType"),
              event(3, 303, "ticket.creation")]
    r = h.post_signed(events, path=PATH)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 2, "duplicates": 0, "ignored": 1}
    rows = {row.record_id: row for row in h.inbox()}
    assert rows["101"].object == "contacts" and rows["101"].payload["entity"] == "customer"
    assert rows["202"].object == "deals" and rows["202"].kind == "create"
    assert sum(hubspot.api_calls().values()) == 0  # no product API call in the request path


def test_escaped_characters_in_the_url_verify(h) -> None:
    raw = body_of([event(1, 101)])
    path = PATH + "?portal=a%3Ab%2Fc&x=%20y"  # %3A and %2F decoded before signing, %20 kept
    r = h.post(path, raw, signed_headers(SECRET, h.url + path, raw))
    assert r.status_code == 200, r.text


def test_forged_stale_malformed_and_oversized_batches_are_refused(h) -> None:
    raw = body_of([event(1, 101)])
    assert h.post(PATH, raw, signed_headers("forged", h.url + PATH, raw)).status_code == 401
    assert h.post_signed([event(1, 101)], path=PATH,
                         timestamp_ms=now_ms() - 10 * 60 * 1000).status_code == 401
    assert h.post_signed([], path=PATH, body=b"[{").status_code == 400
    too_many = [event(i, i) for i in range(101)]
    assert h.post_signed(too_many, path=PATH).status_code == 400
    assert h.inbox() == []
    for reason in ("bad_signature", "stale", "malformed", "too_many_events"):
        assert h.sample("webhook_rejected_total", system="hubspot", reason=reason) == 1, reason


def test_replayed_duplicated_and_reordered_deliveries(h) -> None:
    e1, e2 = event(1, 101), event(2, 102)
    raw = body_of([e1, e2])
    headers = signed_headers(SECRET, h.url + PATH, raw)
    assert h.post(PATH, raw, headers).json()["accepted"] == 2
    assert h.post(PATH, raw, headers).json()["duplicates"] == 2  # replay
    retry = dict(e2, attemptNumber=1)  # HubSpot's own retry of one event, reordered
    assert h.post_signed([retry, e1], path=PATH).json() == {"accepted": 0, "duplicates": 2, "ignored": 0}
    assert sorted(row.record_id for row in h.inbox()) == ["101", "102"]
