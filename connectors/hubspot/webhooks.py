"""HubSpot webhooks: signature v3 verification and event parsing.

Signature v3 (developers.hubspot.com/docs/api/webhooks/validating-requests):
Base64(HMAC-SHA256(client secret, method + URI + raw body + timestamp)), where the URI is the
full URL with only a fixed set of percent-escapes decoded and the timestamp is the
``X-HubSpot-Request-Timestamp`` header (epoch milliseconds); requests older than 5 minutes are
rejected.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import structlog

from connectors.base import WebhookEvent, WebhookRejected, WebhookRequest

log = structlog.get_logger("concord.hubspot.webhooks")

SIGNATURE_HEADER = "x-hubspot-signature-v3"
TIMESTAMP_HEADER = "x-hubspot-request-timestamp"
MAX_EVENTS = 100

# The only escapes HubSpot's docs say to decode before signing. Hex digits are case-insensitive
# in percent-encoding (RFC 3986 2.1), so %3a counts as %3A.
_DECODE = {"3A": ":", "2F": "/", "3F": "?", "40": "@", "21": "!", "24": "$", "27": "'",
           "28": "(", "29": ")", "2A": "*", "2C": ",", "3B": ";"}
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")

# Subscription type prefix -> CRM object path segment.
OBJECT_BY_PREFIX = {
    "company": "companies", "contact": "contacts", "deal": "deals", "product": "products",
    "line_item": "line_items", "ticket": "tickets", "quote": "quotes", "order": "orders",
}
# Generic ``object.*`` events carry objectTypeId instead.
OBJECT_BY_TYPE_ID = {
    "0-1": "contacts", "0-2": "companies", "0-3": "deals", "0-5": "tickets", "0-7": "products",
    "0-8": "line_items", "0-14": "quotes", "0-123": "orders",
}
KIND_BY_ACTION = {
    "creation": "create", "propertyChange": "update", "restore": "update",
    "associationChange": "update", "deletion": "delete", "privacyDeletion": "delete",
}


def normalize_uri(uri: str) -> str:
    """The URI as HubSpot signs it: only the listed percent-escapes decoded, all else verbatim."""
    return _ESCAPE.sub(lambda m: _DECODE.get(m.group(1).upper(), m.group(0)), uri)


def sign_v3(client_secret: str, method: str, uri: str, body: bytes | str, timestamp: str | int) -> str:
    """The X-HubSpot-Signature-v3 value for a request (Base64 of the raw HMAC-SHA256 digest)."""
    raw = body if isinstance(body, bytes) else body.encode("utf-8")
    return _hmac_b64(client_secret, method, normalize_uri(uri), raw, str(timestamp))


def _hmac_b64(client_secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    message = method.upper().encode() + uri.encode("utf-8") + body + timestamp.encode()
    digest = hmac.new(client_secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_v3(client_secret: str | None, request: WebhookRequest, *, now: float,
              max_age: float = 300.0) -> None:
    """Check a request's v3 signature and timestamp; raise WebhookRejected (401) when they fail.

    ``now`` is the current epoch time in seconds.
    """
    if not client_secret:
        raise WebhookRejected("hubspot: no client_secret configured: cannot verify webhooks",
                              status=401, reason="not_configured", system="hubspot")
    headers = {k.lower(): v for k, v in request.headers.items()}
    signature = headers.get(SIGNATURE_HEADER)
    timestamp = (headers.get(TIMESTAMP_HEADER) or "").strip()
    if not signature or not timestamp.isdigit():
        raise WebhookRejected("hubspot: missing signature or timestamp header",
                              status=401, reason="bad_signature", system="hubspot")
    presented = signature.strip().encode("utf-8", "replace")
    if not any(hmac.compare_digest(candidate.encode("ascii"), presented)
               for candidate in _candidates(client_secret, request, timestamp)):
        raise WebhookRejected("hubspot: webhook signature does not match",
                              status=401, reason="bad_signature", system="hubspot")
    age = now - int(timestamp) / 1000.0
    if abs(age) > max_age:
        # Checked after the signature, so "stale" only ever describes a genuine request (a
        # replay, or clock skew worth fixing).
        raise WebhookRejected(f"hubspot: webhook timestamp is {age:.0f} s from now (limit {max_age:.0f} s)",
                              status=401, reason="stale", system="hubspot")


def _candidates(client_secret: str, request: WebhookRequest, timestamp: str) -> list[str]:
    # The docs sign the URI with the listed escapes decoded; HubSpot's SDKs sign it verbatim. The
    # two differ only when the URL holds such an escape, and both need the secret, so accepting
    # either costs no security and keeps working whichever HubSpot really does.
    signed = [sign_v3(client_secret, request.method, request.url, request.body, timestamp)]
    if normalize_uri(request.url) != request.url:
        signed.append(_hmac_b64(client_secret, request.method, request.url, request.body, timestamp))
    return signed


def parse_events(body: bytes) -> list[WebhookEvent]:
    """A verified webhook body (a JSON array of at most 100 events) as WebhookEvents.

    Events of types Concord does not sync are skipped; malformed bodies raise WebhookRejected (400).
    """
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise WebhookRejected("hubspot: webhook body is not JSON", status=400, reason="malformed",
                              system="hubspot") from None
    if not isinstance(payload, list):
        raise WebhookRejected("hubspot: webhook body is not a JSON array", status=400, reason="malformed",
                              system="hubspot")
    if len(payload) > MAX_EVENTS:
        raise WebhookRejected(f"hubspot: {len(payload)} events in one request (at most {MAX_EVENTS})",
                              status=400, reason="too_many_events", system="hubspot")
    events: list[WebhookEvent] = []
    for item in payload:
        if not isinstance(item, dict):
            log.warning("hubspot.webhook.skipped", reason="not_an_object")
            continue
        try:
            events.extend(_events_of(item))
        except (TypeError, ValueError, OverflowError):  # a signed but ill-typed event is skipped, not a 500
            log.warning("hubspot.webhook.skipped", reason="ill_typed_event")
    return events


def _events_of(item: Mapping[str, Any]) -> list[WebhookEvent]:
    event_type = str(item.get("subscriptionType") or item.get("eventType") or "")
    prefix, _, action = event_type.partition(".")
    obj = OBJECT_BY_PREFIX.get(prefix)
    if prefix == "object":
        type_id = item.get("objectTypeId")
        obj = OBJECT_BY_TYPE_ID.get(str(type_id or ""), type_id if isinstance(type_id, str) and type_id else None)
    if not obj or not action:
        log.info("hubspot.webhook.skipped", reason="unsupported_type", type=event_type)
        return []
    occurred = _occurred_at(item.get("occurredAt"))
    # eventId is "not guaranteed to be unique": qualify it with the subscription, time and record.
    # attemptNumber is left out on purpose, so a redelivery deduplicates against the first try.
    base_id = f"{item.get('subscriptionId')}:{item.get('eventId')}:{item.get('occurredAt')}"

    if action == "merge":
        return _merge_events(item, obj, base_id, occurred)
    if action == "associationChange":
        record = item.get("fromObjectId") or item.get("objectId")
    else:
        record = item.get("objectId")
    if record is None or str(record) == "":
        log.warning("hubspot.webhook.skipped", reason="no_object_id", type=event_type)
        return []
    kind = KIND_BY_ACTION.get(action, "other")
    return [WebhookEvent(event_id=f"{base_id}:{record}", object=obj, record_id=str(record),
                         kind=kind, occurred_at=occurred)]


def _merge_events(item: Mapping[str, Any], obj: str, base_id: str,
                  occurred: datetime | None) -> list[WebhookEvent]:
    # The surviving record changed; the merged-away ones no longer exist.
    survivor = item.get("newObjectId") or item.get("primaryObjectId") or item.get("objectId")
    events = []
    if survivor is not None:
        events.append(WebhookEvent(event_id=f"{base_id}:{survivor}", object=obj, record_id=str(survivor),
                                   kind="update", occurred_at=occurred))
    gone = {str(i) for i in item.get("mergedObjectIds") or []}
    if item.get("primaryObjectId") is not None:
        gone.add(str(item["primaryObjectId"]))
    for record in sorted(gone - {str(survivor)}):
        events.append(WebhookEvent(event_id=f"{base_id}:{record}:merged", object=obj, record_id=record,
                                   kind="delete", occurred_at=occurred))
    return events


def _occurred_at(value: Any) -> datetime | None:
    try:
        return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=int(value))
    except (TypeError, ValueError, OverflowError):
        return None
