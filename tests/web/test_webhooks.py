"""Webhook intake through a real waitress server, with real HMAC-SHA256 v3 signatures."""
from __future__ import annotations

import json
import socket
from collections.abc import Iterator

from structlog.testing import capture_logs

from .conftest import SECRET
from .fakes import ExplodingConnector
from .signing import body_of, event, now_ms, sign_v3, signed_headers

PATH = "/webhooks/fakehub"


def test_signing_helper_matches_hubspots_official_vector() -> None:
    # tests/spec/utils/test_signature.py in HubSpot/hubspot-api-python (api-notes §1.12).
    assert sign_v3("yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy", "POST",
                   "https://www.example.com/webhook_uri",
                   b"{'example_field':'example_value'}", 1693657560000) \
        == "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="


def test_signed_batch_lands_in_the_inbox_with_its_event_fields(web) -> None:
    h = web()
    events = [event(1, 101), event(2, 102, "contact.creation", key="eventType"),
              event(3, 103, "contact.deletion")]
    raw = body_of(events)
    r = h.post_signed(events)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 3, "duplicates": 0, "ignored": 0}

    seen = h.connector.requests[-1]
    assert seen.url == h.url + PATH  # the full URL, as the sender addressed it
    assert seen.body == raw  # byte for byte
    assert seen.headers["x-hubspot-request-timestamp"] == seen.headers["X-HubSpot-Request-Timestamp"]

    rows = {row.record_id: row for row in h.inbox()}
    assert set(rows) == {"101", "102", "103"}
    assert {rows[k].kind for k in rows} == {"update", "create", "delete"}
    row = rows["102"]
    assert row.system == "fakehub" and row.object == "contacts"
    assert row.payload["event_id"] == row.event_id
    assert row.payload["record_id"] == "102" and row.payload["kind"] == "create"
    assert row.payload["occurred_at"].startswith("20")


def test_forged_signature_is_401_and_nothing_is_stored(web) -> None:
    h = web()
    raw = body_of([event(1, 101)])
    forged = signed_headers("not-the-secret", h.url + PATH, raw)
    r = h.post(PATH, raw, forged)
    assert r.status_code == 401
    assert r.json() == {"error": "bad_signature"}

    # A genuine signature over a different body does not carry over to a tampered one.
    genuine = signed_headers(SECRET, h.url + PATH, raw)
    r = h.post(PATH, body_of([event(1, 666)]), genuine)
    assert r.status_code == 401

    r = h.post(PATH, raw, {"Content-Type": "application/json"})
    assert r.status_code == 401
    assert r.json() == {"error": "missing_signature"}
    assert h.inbox() == []


def test_rejection_is_logged_without_the_signature(web) -> None:
    h = web()
    raw = body_of([event(1, 101)])
    forged = signed_headers("not-the-secret", h.url + PATH, raw)
    with capture_logs() as logs:
        assert h.post(PATH, raw, forged).status_code == 401
    rejected = [e for e in logs if e["event"] == "webhook.rejected"]
    assert rejected and rejected[0]["reason"] == "bad_signature"
    assert rejected[0]["system"] == "fakehub" and rejected[0]["status"] == 401
    flat = json.dumps(logs, default=str)
    assert forged["X-HubSpot-Signature-v3"] not in flat
    # Nor the signature the connector expected (it would let this very body through).
    timestamp = forged["X-HubSpot-Request-Timestamp"]
    assert sign_v3(SECRET, "POST", h.url + PATH, raw, timestamp) not in flat
    assert SECRET not in flat


def test_stale_timestamp_is_401_even_when_correctly_signed(web) -> None:
    h = web()
    r = h.post_signed([event(1, 101)], timestamp_ms=now_ms() - 6 * 60 * 1000)
    assert r.status_code == 401
    assert r.json() == {"error": "stale_timestamp"}
    assert h.inbox() == []


def test_replayed_request_gives_one_inbox_row(web) -> None:
    h = web()
    raw = body_of([event(7, 701)])
    headers = signed_headers(SECRET, h.url + PATH, raw)
    first = h.post(PATH, raw, headers)
    again = h.post(PATH, raw, headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json()["accepted"] == 1
    assert again.json() == {"accepted": 0, "duplicates": 1, "ignored": 0}
    assert [row.record_id for row in h.inbox()] == ["701"]
    assert h.sample("webhook_events_total", system="fakehub", outcome="accepted") == 1
    assert h.sample("webhook_events_total", system="fakehub", outcome="duplicate") == 1


def test_duplicated_and_reordered_events_are_stored_once_each(web) -> None:
    h = web()
    e1, e2, e3 = event(1, 101), event(2, 102), event(3, 103)
    r1 = h.post_signed([e2, e1, e2])  # a duplicate inside one batch
    r2 = h.post_signed([e3, e2, e1])  # redelivered, in another order
    assert r1.json() == {"accepted": 2, "duplicates": 1, "ignored": 0}
    assert r2.json() == {"accepted": 1, "duplicates": 2, "ignored": 0}
    rows = h.inbox()
    assert sorted(row.record_id for row in rows) == ["101", "102", "103"]
    assert len({row.event_id for row in rows}) == 3


def _raw_post_headers_only(host: str, port: int, path: str, length: int) -> bytes:
    """Send request headers announcing ``length`` bytes and no body; return the response."""
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n".encode())
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def test_oversized_body_is_413_without_being_read(web) -> None:
    h = web()
    two_mib = 2 * 1024 * 1024
    # The body is never sent: a 413 can only come back if the server refused it from the
    # Content-Length alone (otherwise it would wait for the body and recv would time out).
    response = _raw_post_headers_only(h.server.host, h.server.port, PATH, two_mib)
    assert response.startswith(b"HTTP/1.1 413 ")

    raw = b"[" + b" " * two_mib + b"]"
    r = h.post(PATH, raw, signed_headers(SECRET, h.url + PATH, raw))
    assert r.status_code == 413
    assert h.inbox() == []
    assert h.connector.requests == []  # never reached the connector
    assert h.sample("webhook_rejected_total", system="fakehub", reason="body_too_large") == 2


def test_body_limit_boundary_and_chunked_bodies(web) -> None:
    h = web(max_body=2048)
    base = body_of([event(1, 101)])
    exact = base + b" " * (2048 - len(base))  # JSON may end in whitespace
    assert h.post_signed([], body=exact).status_code == 200
    assert h.post_signed([], body=exact + b" ").status_code == 413

    def chunks() -> Iterator[bytes]:
        yield base
        for _ in range(4):
            yield b" " * 1024

    r = h.session.post(h.url + PATH, data=chunks(), timeout=30)  # no length: chunked
    assert r.status_code == 413
    assert [row.record_id for row in h.inbox()] == ["101"]


def test_malformed_json_is_400(web) -> None:
    h = web()
    r = h.post_signed([], body=b'[{"eventId": 1,')
    assert r.status_code == 400
    assert r.json() == {"error": "malformed_json"}
    assert h.inbox() == []


def test_unknown_system_wrong_method_and_unknown_paths(web) -> None:
    h = web()
    r = h.post("/webhooks/salesforce", b"[]")
    assert r.status_code == 404 and r.json() == {"error": "unknown_system"}
    r = h.session.get(h.url + PATH)
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    assert h.session.post(h.url + "/healthz").status_code == 405
    assert h.session.get(h.url + "/nothing-here").status_code == 404
    assert h.session.post(h.url + "/webhooks/fakehub/extra", data=b"[]").status_code == 404
    assert h.sample("webhook_rejected_total", system="unknown", reason="unknown_system") == 2


def test_store_outage_answers_503_and_the_retry_is_kept(web) -> None:
    h = web()
    raw = body_of([event(9, 901)])
    h.store.fail_inbox = True
    r = h.post(PATH, raw, signed_headers(SECRET, h.url + PATH, raw))
    assert r.status_code == 503  # non-2xx: HubSpot retries later
    assert h.sample("webhook_events_total", system="fakehub", outcome="failed") == 1
    h.store.fail_inbox = False
    r = h.post(PATH, raw, signed_headers(SECRET, h.url + PATH, raw))
    assert r.status_code == 200 and r.json()["accepted"] == 1
    assert [row.record_id for row in h.inbox()] == ["901"]


def test_connector_bug_is_500_not_a_crash(web) -> None:
    h = web(connectors={"broken": ExplodingConnector()})
    r = h.post("/webhooks/broken", b"[]")
    assert r.status_code == 500 and r.json() == {"error": "internal_error"}
    assert h.session.get(h.url + "/healthz").status_code == 200


def test_public_url_is_what_the_signature_covers(web) -> None:
    h = web(public_url="https://concord.example.com/")
    raw = body_of([event(5, 501)])
    public = "https://concord.example.com/webhooks/fakehub?portal=891472211"
    r = h.post(PATH + "?portal=891472211", raw, signed_headers(SECRET, public, raw))
    assert r.status_code == 200, r.text
    assert h.connector.requests[-1].url == public
    # Signed for the address the proxy forwarded to: not what the sender signed, refused.
    local = h.url + PATH
    assert h.post(PATH, raw, signed_headers(SECRET, local, raw)).status_code == 401


def test_events_of_unsynced_objects_are_acknowledged_and_skipped(web) -> None:
    h = web(object_entities={("fakehub", "contacts"): "customer"})
    r = h.post_signed([event(1, 101), event(2, 201, "ticket.creation")])
    assert r.status_code == 200
    assert r.json() == {"accepted": 1, "duplicates": 0, "ignored": 1}
    (row,) = h.inbox()
    assert row.record_id == "101" and row.payload["entity"] == "customer"
    assert h.sample("webhook_events_total", system="fakehub", outcome="ignored") == 1


def test_metrics_count_every_outcome_with_its_labels(web) -> None:
    h = web()
    e1 = event(1, 101)
    assert h.post_signed([e1, event(2, 102)]).status_code == 200
    assert h.post_signed([e1]).status_code == 200
    raw = body_of([event(3, 103)])
    assert h.post(PATH, raw, signed_headers("forged", h.url + PATH, raw)).status_code == 401
    assert h.post_signed([event(4, 104)], timestamp_ms=now_ms() - 3_600_000).status_code == 401
    assert h.post_signed([], body=b"{not json").status_code == 400
    assert h.post("/webhooks/nope", b"[]").status_code == 404
    big = b"[" + b" " * (2 * 1024 * 1024) + b"]"
    assert h.post(PATH, big, signed_headers(SECRET, h.url + PATH, big)).status_code == 413

    expected = {
        ("webhook_events_total", ("fakehub", "accepted")): 2,
        ("webhook_events_total", ("fakehub", "duplicate")): 1,
        ("webhook_rejected_total", ("fakehub", "bad_signature")): 1,
        ("webhook_rejected_total", ("fakehub", "stale_timestamp")): 1,
        ("webhook_rejected_total", ("fakehub", "malformed_json")): 1,
        ("webhook_rejected_total", ("fakehub", "body_too_large")): 1,
        ("webhook_rejected_total", ("unknown", "unknown_system")): 1,
    }
    for (name, (system, second)), value in expected.items():
        key = "outcome" if name == "webhook_events_total" else "reason"
        assert h.sample(name, system=system, **{key: second}) == value, (name, system, second)
    # Five requests reached the app for a known system (the 413 was refused by the server).
    assert h.sample("webhook_request_seconds_count") == 5


def test_dedup_holds_on_every_store_dialect(web, store) -> None:
    # ``store`` is the shared fixture: SQLite and PostgreSQL.
    h = web(store=store)
    e1, e2 = event(1, 101), event(2, 102)
    raw = body_of([e1, e2])
    headers = signed_headers(SECRET, h.url + PATH, raw)
    assert h.post(PATH, raw, headers).json()["accepted"] == 2
    assert h.post(PATH, raw, headers).json()["duplicates"] == 2
    assert h.post_signed([e2, e1, e1]).json() == {"accepted": 0, "duplicates": 3, "ignored": 0}
    assert sorted(row.record_id for row in h.inbox()) == ["101", "102"]
