"""HubSpot webhook signature v3, implemented independently of the connector for the tests.

Per developers.hubspot.com/docs/api/webhooks/validating-requests (shared api-notes §1.12):
Base64(HMAC-SHA256(client secret, method + URI + raw body + timestamp ms)), with only a fixed set
of percent-escapes in the URI decoded before signing.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

_DECODED = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
            "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def decode_uri(uri: str) -> str:
    """Decode only the escapes HubSpot lists, leaving every other escape as sent."""
    out, i = [], 0
    while i < len(uri):
        chunk = uri[i:i + 3]
        if chunk[:1] == "%" and chunk.upper() in _DECODED:
            out.append(_DECODED[chunk.upper()])
            i += 3
        else:
            out.append(uri[i])
            i += 1
    return "".join(out)


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp_ms: int | str) -> str:
    """The X-HubSpot-Signature-v3 header value."""
    message = method.encode() + decode_uri(uri).encode() + body + str(timestamp_ms).encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def now_ms() -> int:
    return int(time.time() * 1000)


def signed_headers(secret: str, uri: str, body: bytes, timestamp_ms: int | None = None,
                   method: str = "POST") -> dict[str, str]:
    """Headers HubSpot sends with a webhook POST to ``uri``."""
    ts = now_ms() if timestamp_ms is None else timestamp_ms
    return {"Content-Type": "application/json",
            "X-HubSpot-Signature-v3": sign_v3(secret, method, uri, body, ts),
            "X-HubSpot-Request-Timestamp": str(ts)}


def event(event_id: int, object_id: int, kind: str = "contact.propertyChange",
          key: str = "subscriptionType", occurred_ms: int | None = None, **extra: Any) -> dict[str, Any]:
    """One webhook event in HubSpot's documented shape."""
    item: dict[str, Any] = {
        "eventId": event_id, "subscriptionId": 686627, "portalId": 891472211, "appId": 7906213,
        "occurredAt": occurred_ms if occurred_ms is not None else now_ms(), key: kind,
        "attemptNumber": 0, "objectId": object_id, "changeSource": "CRM_UI",
    }
    item.update(extra)
    return item


def body_of(events: list[dict[str, Any]]) -> bytes:
    return json.dumps(events).encode()
