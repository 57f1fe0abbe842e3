"""Webhook signature v3 and event parsing."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import datetime, timezone

import pytest

from connectors.base import WebhookRejected, WebhookRequest
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from connectors.hubspot.webhooks import normalize_uri, parse_events, sign_v3, verify_v3

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
URL = "https://concord.example.com/webhooks/hubspot"


def test_official_sdk_vector() -> None:
    assert sign_v3(SECRET, "POST", "https://www.example.com/webhook_uri", "{'example_field':'example_value'}",
                   1693657560000) == "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="


def signed(body: bytes, *, url: str = URL, ts_ms: int | None = None, secret: str = SECRET,
           method: str = "POST") -> WebhookRequest:
    ts = str(ts_ms if ts_ms is not None else int(time.time() * 1000))
    return WebhookRequest(method=method, url=url, body=body,
                          headers={"X-HubSpot-Signature-v3": sign_v3(secret, method, url, body, ts),
                                   "X-HubSpot-Request-Timestamp": ts, "Content-Type": "application/json"})


def connector(secret: str | None = SECRET) -> HubSpotConnector:
    return HubSpotConnector(HubSpotSettings(connector="hubspot", token="pat-x", client_secret=secret))


EVENTS = [
    {"eventId": 3029365631, "subscriptionId": 686627, "portalId": 891472211, "appId": 7906213,
     "occurredAt": 1715203101896, "subscriptionType": "company.propertyChange", "attemptNumber": 0,
     "objectId": 847297356, "propertyName": "name", "propertyValue": "Acme", "changeSource": "CRM_UI"},
    {"eventId": 1, "subscriptionId": 12345, "portalId": 62515, "occurredAt": 1564113600000,
     "eventType": "deal.creation", "attemptNumber": 0, "objectId": 123, "changeFlag": "NEW", "appId": 54321},
]


def test_verified_request_yields_events_for_both_type_keys() -> None:
    body = json.dumps(EVENTS).encode()
    events = connector().parse_webhook(signed(body))
    assert [(e.object, e.record_id, e.kind) for e in events] == [("companies", "847297356", "update"),
                                                                 ("deals", "123", "create")]
    assert events[0].event_id == "686627:3029365631:1715203101896:847297356"
    assert events[0].occurred_at == datetime(2024, 5, 8, 21, 18, 21, 896000, tzinfo=timezone.utc)


def test_redelivery_has_the_same_event_id() -> None:
    retry = [dict(EVENTS[0], attemptNumber=3)]
    first = parse_events(json.dumps(EVENTS[:1]).encode())
    again = parse_events(json.dumps(retry).encode())
    assert first[0].event_id == again[0].event_id


def test_tampered_body_is_rejected() -> None:
    request = signed(json.dumps(EVENTS).encode())
    tampered = WebhookRequest(request.method, request.url, request.headers, request.body.replace(b"Acme", b"Evil"))
    with pytest.raises(WebhookRejected) as caught:
        connector().parse_webhook(tampered)
    assert (caught.value.status, caught.value.reason) == (401, "bad_signature")


def test_wrong_url_or_method_is_rejected() -> None:
    request = signed(b"[]")
    for changed in (WebhookRequest("POST", URL + "?x=1", request.headers, request.body),
                    WebhookRequest("PUT", URL, request.headers, request.body)):
        with pytest.raises(WebhookRejected):
            connector().parse_webhook(changed)


@pytest.mark.parametrize("headers", [{}, {"X-HubSpot-Request-Timestamp": "1"},
                                     {"X-HubSpot-Signature-v3": "abc"}])
def test_missing_headers_are_rejected(headers: dict) -> None:
    with pytest.raises(WebhookRejected) as caught:
        connector().parse_webhook(WebhookRequest("POST", URL, headers, b"[]"))
    assert (caught.value.status, caught.value.reason) == (401, "bad_signature")


@pytest.mark.parametrize("skew", [-301.0, 301.0])
def test_stale_or_future_timestamps_are_rejected(skew: float) -> None:
    now = 1_700_000_000.0
    request = signed(b"[]", ts_ms=int((now + skew) * 1000))
    with pytest.raises(WebhookRejected) as caught:
        verify_v3(SECRET, request, now=now)
    assert (caught.value.status, caught.value.reason) == (401, "stale")
    verify_v3(SECRET, signed(b"[]", ts_ms=int((now + skew * 0.99) * 1000)), now=now)  # inside the window


def test_without_a_client_secret_nothing_is_accepted() -> None:
    with pytest.raises(WebhookRejected) as caught:
        connector(secret=None).parse_webhook(signed(b"[]"))
    assert (caught.value.status, caught.value.reason) == (401, "not_configured")


def test_header_names_are_case_insensitive() -> None:
    request = signed(b"[]")
    lower = WebhookRequest("POST", URL, {k.lower(): v for k, v in request.headers.items()}, request.body)
    assert connector().parse_webhook(lower) == []


def test_uri_decoding_touches_only_the_listed_escapes() -> None:
    assert normalize_uri("https://h/a%3Ab%2Fc%3Fd%40e%21f%24g%27h%28i%29j%2Ak%2Cl%3Bm") == \
        "https://h/a:b/c?d@e!f$g'h(i)j*k,l;m"
    assert normalize_uri("https://h/p%20q%25r%26s%3D%23?x=%3a") == "https://h/p%20q%25r%26s%3D%23?x=:"


def test_a_signature_over_the_decoded_uri_verifies_the_encoded_one() -> None:
    ts = "1700000000000"
    sig = sign_v3(SECRET, "POST", "https://h/hook?tenant=a:b", b"[]", ts)
    request = WebhookRequest("POST", "https://h/hook?tenant=a%3Ab", {"X-HubSpot-Signature-v3": sig,
                                                                      "X-HubSpot-Request-Timestamp": ts}, b"[]")
    verify_v3(SECRET, request, now=1_700_000_000.0)
    # HubSpot's SDKs sign the URI verbatim; that signature is accepted as well.
    raw = f"POSThttps://h/hook?tenant=a%3Ab[]{ts}".encode()
    verbatim = base64.b64encode(hmac.new(SECRET.encode(), raw, hashlib.sha256).digest()).decode()
    assert verbatim != sig
    verify_v3(SECRET, WebhookRequest("POST", "https://h/hook?tenant=a%3Ab",
                                     {"X-HubSpot-Signature-v3": verbatim, "X-HubSpot-Request-Timestamp": ts},
                                     b"[]"), now=1_700_000_000.0)
    spaced = WebhookRequest("POST", "https://h/hook?tenant=a%20b", request.headers, b"[]")
    sig_space = sign_v3(SECRET, "POST", "https://h/hook?tenant=a b", b"[]", ts)
    with pytest.raises(WebhookRejected):  # %20 is not on the list: it is signed verbatim
        verify_v3(SECRET, WebhookRequest(spaced.method, spaced.url,
                                         {**request.headers, "X-HubSpot-Signature-v3": sig_space}, b"[]"),
                  now=1_700_000_000.0)


@pytest.mark.parametrize("body, reason", [(b"{not json", "malformed"), (b'{"a": 1}', "malformed"),
                                          (json.dumps([EVENTS[0]] * 101).encode(), "too_many_events")])
def test_malformed_bodies_are_400(body: bytes, reason: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        connector().parse_webhook(signed(body))
    assert (caught.value.status, caught.value.reason) == (400, reason)


def test_event_kinds_objects_and_merges() -> None:
    base = {"subscriptionId": 1, "occurredAt": 1700000000000, "objectId": 10}
    items = [
        dict(base, eventId=1, subscriptionType="company.deletion"),
        dict(base, eventId=2, subscriptionType="contact.restore"),
        dict(base, eventId=3, subscriptionType="line_item.creation"),
        dict(base, eventId=4, subscriptionType="deal.associationChange", objectId=None, fromObjectId=77,
             toObjectId=88, associationType="DEAL_TO_LINE_ITEM"),
        dict(base, eventId=5, subscriptionType="company.merge", primaryObjectId=10, mergedObjectIds=[11, 12],
             newObjectId=10),
        dict(base, eventId=6, eventType="object.creation", objectTypeId="0-7"),
        dict(base, eventId=7, subscriptionType="conversation.creation"),
        dict(base, eventId=8, subscriptionType="product.propertyChange", objectId=None),
        "not an event",
    ]
    events = parse_events(json.dumps(items).encode())
    assert [(e.object, e.record_id, e.kind) for e in events] == [
        ("companies", "10", "delete"), ("contacts", "10", "update"), ("line_items", "10", "create"),
        ("deals", "77", "update"), ("companies", "10", "update"), ("companies", "11", "delete"),
        ("companies", "12", "delete"), ("products", "10", "create")]
    assert len({e.event_id for e in events}) == len(events)
