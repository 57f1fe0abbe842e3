"""Hostile webhook requests against sync.web's app with the real HubSpot and Odoo connectors: random
bytes, huge and non-UTF-8 bodies, wrong JSON types, broken headers, forgeries and replays. The app
must answer 2xx or 4xx, never 5xx, and an unauthenticated request must never reach the inbox."""
from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from connectors.hubspot import webhooks as hubspot_webhooks
from connectors.odoo import webhook as odoo_webhook
from connectors.odoo.reader import numeric_ids
from sync.config import WebhooksConfig
from sync.web import parse_listen, serve
from tests.chaos.world import fuzz_settings, record_figures

from .webapp import CLIENT_SECRET, HOST, MAX_BODY, ODOO_HOOK_TOKEN, Hooks, hooks

FUZZ = fuzz_settings(300, 10_000)
SENSITIVE = (CLIENT_SECRET, ODOO_HOOK_TOKEN)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Hooks]:
    with hooks(tmp_path) as h:
        yield h


def inbox(h: Hooks) -> int:
    return h.store.inbox_pending()


# ------------------------------------------------------------------------------------------ strategies
HEADER_NAMES = ("Content-Type", "X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp", "X-HubSpot-Signature",
                "X-Concord-Token", "Authorization", "Transfer-Encoding", "Content-Encoding", "X-Forwarded-For")
latin1 = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=200)
header_values = st.one_of(latin1, st.just(""), st.integers().map(str), st.just("v1,abc=="),
                          st.just(str(int(time.time() * 1000))), st.just("x" * 10_000))
bodies = st.one_of(
    st.binary(max_size=2048),
    st.text(max_size=500).map(lambda t: t.encode("utf-8")),
    st.text(max_size=200).map(lambda t: t.encode("utf-16")),
    st.sampled_from([b"", b"null", b"[]", b"{}", b"[null]", b"\xff\xfe\x00", b"[" * 100 + b"]" * 100,
                     b'{"_model": "res.partner", "_id": 1}', b"x" * (MAX_BODY + 1)]),
)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.floats(allow_nan=False,
                         allow_infinity=False), st.text(max_size=40))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12)
# Values a sender might put where an id or a millisecond timestamp belongs (out-of-range ones:
# test_signed_hubspot_event_with_an_out_of_range_timestamp).
HUB_TYPES = ("company.creation", "company.propertyChange", "company.deletion", "company.merge", "company.restore",
             "contact.creation", "deal.propertyChange", "object.creation", "object.propertyChange",
             "company.associationChange", "company.privacyDeletion", "bogus", "", "company.")
hub_event = st.fixed_dictionaries(
    {"eventId": st.one_of(st.integers(0, 10**12), st.text(max_size=20), st.none()),
     "subscriptionId": st.one_of(st.integers(0, 10**9), st.none(), st.text(max_size=5)),
     "portalId": st.integers(0, 10**9),
     "occurredAt": st.one_of(st.integers(-(10**13), 10**13), st.integers(), st.floats(), st.text(max_size=20),
                             st.none(), st.booleans()),
     "subscriptionType": st.one_of(st.sampled_from(HUB_TYPES), st.text(max_size=20)),
     "objectId": st.one_of(st.integers(-5, 10**15), st.text(max_size=20), st.none(), st.booleans(),
                           st.lists(st.integers(), max_size=2))},
    optional={"propertyName": st.text(max_size=20), "propertyValue": json_scalars,
              "attemptNumber": st.integers(0, 10), "changeSource": st.text(max_size=10),
              "objectTypeId": st.one_of(st.sampled_from(["0-1", "0-2", "0-3", "2-123"]), st.text(max_size=6),
                                        json_values),
              "mergedObjectIds": st.one_of(st.lists(st.one_of(st.integers(0, 10**9), st.text(max_size=6)), max_size=3),
                                           json_values),
              "primaryObjectId": st.one_of(st.integers(0, 10**9), st.text(max_size=6)),
              "newObjectId": st.one_of(st.integers(0, 10**9), st.text(max_size=6)),
              "fromObjectId": st.one_of(st.integers(0, 10**9), st.none())})
hub_payloads = st.one_of(st.lists(hub_event, max_size=8), st.lists(st.one_of(hub_event, json_values), max_size=5),
                         json_values)
odoo_record = st.fixed_dictionaries(
    {"_model": st.one_of(st.sampled_from(["res.partner", "sale.order", "product.product"]),
                         st.sampled_from(["res.partner"]), json_scalars),
     "_id": st.one_of(st.integers(-5, 10**12), st.text(st.characters(min_codepoint=48, max_codepoint=57),
                                                       min_size=1, max_size=12), json_scalars)},
    optional={"id": json_scalars, "write_date": st.one_of(st.text(max_size=30), st.just("2025-03-30 01:30:00"),
                                                          json_scalars),
              "_action": st.text(max_size=30), "name": json_values})
odoo_payloads = st.one_of(odoo_record, st.lists(odoo_record, max_size=5), json_values)


# ------------------------------------------------------------------------------------------ fuzz
def test_unauthenticated_garbage_is_refused_with_4xx(tmp_path: Path) -> None:
    """Any method, path, headers and body without valid credentials: 4xx (or 2xx for health),
    never 5xx, and nothing reaches the inbox."""
    statuses: Counter[int] = Counter()
    with hooks(tmp_path) as h:

        @FUZZ
        @given(method=st.one_of(st.just("POST"), st.sampled_from(["GET", "PUT", "DELETE", "HEAD", "OPTIONS",
                                                                  "PATCH", "BREW"])),
               path=st.one_of(st.sampled_from(["/webhooks/hubspot", "/webhooks/odoo"]),
                              st.sampled_from(["/webhooks/", "/webhooks/x%00y", "/webhooks/hubspot/extra",
                                               "/healthz", "/readyz", "/metrics", "/", "//", "/webhooks/../metrics"])),
               headers=st.dictionaries(st.sampled_from(HEADER_NAMES), header_values, max_size=4),
               body=bodies, query=st.sampled_from(["", "token=wrong", "token=", "a=%ff", "token"]),
               length=st.one_of(st.none(), st.sampled_from(["-1", "abc", "999999999", "0", "1e3", " 5"])))
        def check(method: str, path: str, headers: dict[str, str], body: bytes, query: str, length: str | None) -> None:
            answer = h.call(method, path, body, headers, query=query, content_length=length)
            statuses[answer.status] += 1
            assert answer.status < 500, (method, path, headers, body[:100], answer)
            assert inbox(h) == 0, "an unauthenticated request reached the inbox"
            assert not any(s.encode() in answer.body for s in SENSITIVE)

        check()
    record_figures("fuzz_webhooks_unauthenticated", inputs=sum(statuses.values()),
                   statuses={str(k): v for k, v in sorted(statuses.items())}, server_errors=0)


def test_signed_hubspot_payloads_of_any_shape_never_5xx(tmp_path: Path) -> None:
    """Correctly signed requests whose JSON has every wrong type in every field: parsed, refused
    (400) or partly ignored, never a 5xx."""
    statuses: Counter[int] = Counter()
    with hooks(tmp_path) as h:

        @FUZZ
        @given(payload=hub_payloads)
        def check(payload: Any) -> None:
            answer = h.hubspot(json.dumps(payload).encode())
            statuses[answer.status] += 1
            assert answer.status in (200, 400), (payload, answer)

        check()
    record_figures("fuzz_webhooks_hubspot_signed", inputs=sum(statuses.values()),
                   statuses={str(k): v for k, v in sorted(statuses.items())}, server_errors=0)


def test_odoo_payloads_with_the_token_of_any_shape_never_5xx(tmp_path: Path) -> None:
    statuses: Counter[int] = Counter()
    with hooks(tmp_path) as h:

        @FUZZ
        @given(payload=odoo_payloads, encoding=st.sampled_from(["utf-8", "utf-16", "latin-1"]))
        def check(payload: Any, encoding: str) -> None:
            raw = json.dumps(payload, ensure_ascii=False).encode(encoding, "replace")
            answer = h.odoo(raw)
            statuses[answer.status] += 1
            assert answer.status in (200, 400), (payload, answer)

        check()
    record_figures("fuzz_webhooks_odoo_token", inputs=sum(statuses.values()),
                   statuses={str(k): v for k, v in sorted(statuses.items())}, server_errors=0)


# ------------------------------------------------------------------------------------------ found by the fuzz, pinned
def hub_event_json(**fields: Any) -> bytes:
    event = {"eventId": 1, "subscriptionId": 2, "portalId": 3, "occurredAt": 1_700_000_000_000,
             "subscriptionType": "company.propertyChange", "objectId": 5, **fields}
    return json.dumps([event]).encode()


@pytest.mark.parametrize("occurred", [10**30, "1e400"])
def test_signed_hubspot_event_with_an_out_of_range_timestamp(app: Hooks, occurred: Any) -> None:
    raw = hub_event_json(occurredAt=occurred).replace(b'"1e400"', b"1e400")
    assert app.hubspot(raw).status in (200, 400)


@pytest.mark.parametrize("fields", [{"subscriptionType": "object.creation", "objectTypeId": [1]},
                                    {"subscriptionType": "company.merge", "mergedObjectIds": 5}],
                         ids=["objectTypeId-list", "mergedObjectIds-int"])
def test_signed_hubspot_event_with_a_wrongly_typed_field(app: Hooks, fields: dict[str, Any]) -> None:
    assert app.hubspot(hub_event_json(**fields)).status in (200, 400)


@pytest.mark.parametrize("system", ["hubspot", "odoo"])
def test_deeply_nested_authenticated_body(app: Hooks, system: str) -> None:
    raw = b"[" * 20_000 + b"]" * 20_000
    answer = app.hubspot(raw) if system == "hubspot" else app.odoo(raw)
    assert answer.status == 400


def test_a_superscript_digit_is_not_an_odoo_id() -> None:
    assert numeric_ids(["²", "7"]) == [7]


# ------------------------------------------------------------------------------------------ forgery, replay, timing
def test_forged_tampered_and_replayed_hubspot_webhooks_are_refused(app: Hooks) -> None:
    body = hub_event_json()
    now = int(time.time() * 1000)
    good = app.hubspot(body, timestamp=now)
    assert good.status == 200 and json.loads(good.body)["accepted"] == 1
    # The very same request again (a replay within the window, or HubSpot's own retry): deduplicated.
    again = app.hubspot(body, timestamp=now)
    assert again.status == 200 and json.loads(again.body) == {"accepted": 0, "duplicates": 1, "ignored": 0}
    # Signed with another secret, body changed after signing, or signed for another URL.
    forged_signature = hubspot_webhooks.sign_v3("not-the-secret", "POST", f"https://{HOST}/webhooks/hubspot", body, now)
    forged = app.call("POST", "/webhooks/hubspot", body, {"X-HubSpot-Signature-v3": forged_signature,
                                                          "X-HubSpot-Request-Timestamp": str(now)})
    signature = hubspot_webhooks.sign_v3(CLIENT_SECRET, "POST", f"https://{HOST}/webhooks/hubspot", body, now)
    tampered = app.call("POST", "/webhooks/hubspot", body.replace(b'"objectId": 5', b'"objectId": 6'),
                        {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": str(now)})
    other_url = hubspot_webhooks.sign_v3(CLIENT_SECRET, "POST", "https://evil.example/webhooks/hubspot", body, now)
    elsewhere = app.call("POST", "/webhooks/hubspot", body, {"X-HubSpot-Signature-v3": other_url,
                                                             "X-HubSpot-Request-Timestamp": str(now)})
    # A genuine request captured and replayed after HubSpot's 5-minute window.
    stale = app.hubspot(hub_event_json(eventId=99), timestamp=now - 6 * 60 * 1000)
    assert [a.status for a in (forged, tampered, elsewhere, stale)] == [401, 401, 401, 401]
    assert inbox(app) == 1


def test_signatures_and_tokens_are_compared_in_constant_time(app: Hooks, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both checks go through hmac.compare_digest (a byte-by-byte == would leak the secret by timing)."""
    calls: list[str] = []
    real = hubspot_webhooks.hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append("compare_digest")
        return real(a, b)

    monkeypatch.setattr(hubspot_webhooks.hmac, "compare_digest", spy)
    monkeypatch.setattr(odoo_webhook.hmac, "compare_digest", spy)
    assert app.call("POST", "/webhooks/hubspot", b"[]", {"X-HubSpot-Signature-v3": "AAAA",
                                                         "X-HubSpot-Request-Timestamp": "1"}).status == 401
    hub_calls = len(calls)
    assert app.call("POST", "/webhooks/odoo", b"{}", {"X-Concord-Token": "wrong"}).status == 401
    assert hub_calls >= 1 and len(calls) > hub_calls


def test_odoo_token_in_header_or_query_and_never_logged(app: Hooks, capsys: pytest.CaptureFixture[str]) -> None:
    record = json.dumps({"_model": "res.partner", "_id": 7, "write_date": "2025-01-01 10:00:00"}).encode()
    assert app.odoo(record).status == 200
    by_query = app.call("POST", "/webhooks/odoo", record.replace(b"10:00", b"11:00"),
                        {"Content-Type": "application/json"}, query=f"token={ODOO_HOOK_TOKEN}")
    assert by_query.status == 200
    wrong = app.call("POST", "/webhooks/odoo", record, {}, query=f"token={ODOO_HOOK_TOKEN[:-1]}")
    assert wrong.status == 401 and inbox(app) == 2
    out = capsys.readouterr()
    for secret in SENSITIVE:
        assert secret not in out.out + out.err
        assert secret[:-1] not in out.out + out.err  # not even the wrong token that was presented


# ------------------------------------------------------------------------------------------ through a real server
def test_a_huge_body_is_refused_before_it_is_read(app: Hooks) -> None:
    server = serve(app.app, "127.0.0.1:0", threads=2)
    server.start()
    try:
        huge = requests.post(f"{server.url}/webhooks/hubspot", data=b"x" * (8 * 1024 * 1024), timeout=60)
        chunked = requests.post(f"{server.url}/webhooks/odoo", data=iter([b"x" * 65536] * 4), timeout=60,
                                headers={"X-Concord-Token": ODOO_HOOK_TOKEN})
        non_utf8 = requests.post(f"{server.url}/webhooks/odoo", data=b"\xff\xfe{\x00", timeout=60,
                                 headers={"X-Concord-Token": ODOO_HOOK_TOKEN})
    finally:
        server.close()
    assert (huge.status_code, chunked.status_code, non_utf8.status_code) == (413, 413, 400)


def test_the_web_server_binds_loopback_unless_configured(app: Hooks) -> None:
    assert WebhooksConfig.model_validate({}).listen == "127.0.0.1:8080"
    assert parse_listen(":8080") == ("127.0.0.1", 8080)
    loopback = serve(app.app, ":0", threads=1)
    anywhere = serve(app.app, "0.0.0.0:0", threads=1)  # only when an admin writes it
    try:
        assert loopback.host == "127.0.0.1"
        assert anywhere.host == "0.0.0.0"
    finally:
        loopback.close()
        anywhere.close()
