"""Webhooks from Odoo's "Send Webhook Notification" server action (Odoo 17+).

Odoo does not sign webhook requests. Concord therefore expects a shared secret, either in a
header (``webhook_header``, default ``X-Concord-Token``) or, because the server action cannot
add headers in every version, as a ``token`` query parameter in the webhook URL configured in
Odoo (``https://concord.example.com/webhooks/odoo?token=...``). Odoo POSTs one record as a JSON
object: ``{"_action": ..., "_model": "res.partner", "_id": 7, "id": 7, <selected fields>}``.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connectors.base import WebhookEvent, WebhookRejected, WebhookRequest
from connectors.odoo.errors import SYSTEM
from connectors.odoo.values import parse_datetime


def verify_token(request: WebhookRequest, expected: str | None, header: str) -> None:
    """Raise WebhookRejected unless the request carries ``expected`` in ``header`` or ``?token=``."""
    if not expected:
        raise WebhookRejected("odoo: webhook_token is not configured; refusing unauthenticated webhooks",
                              status=401, reason="not_configured", system=SYSTEM)
    wanted = header.lower()
    given = next((v for k, v in request.headers.items() if k.lower() == wanted), None)
    if given is None:
        tokens = parse_qs(urlsplit(request.url).query).get("token")
        given = tokens[0] if tokens else None
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise WebhookRejected("odoo: webhook token missing or wrong", status=401, reason="bad_token",
                              system=SYSTEM)


def parse_events(body: bytes) -> list[WebhookEvent]:
    """The events in a verified webhook body (one record object, or a list of them)."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise WebhookRejected("odoo: webhook body is not JSON", status=400, reason="malformed",
                              system=SYSTEM) from None
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise WebhookRejected("odoo: empty webhook body", status=400, reason="malformed", system=SYSTEM)
    return [_event(item) for item in items]


def _event(item: Any) -> WebhookEvent:
    if not isinstance(item, dict):
        raise WebhookRejected("odoo: webhook record is not a JSON object", status=400, reason="malformed",
                              system=SYSTEM)
    model = item.get("_model")
    record_id = item.get("_id", item.get("id"))
    if not isinstance(model, str) or not model or isinstance(record_id, bool) \
            or not isinstance(record_id, (int, str)) or not (str(record_id).isascii() and str(record_id).isdigit()):
        raise WebhookRejected("odoo: webhook record lacks _model or a numeric _id", status=400,
                              reason="malformed", system=SYSTEM)
    write_date = item.get("write_date")
    try:
        occurred = parse_datetime(write_date) if isinstance(write_date, str) else None
    except ValueError:
        occurred = None
    # Without write_date, identical content is the same event (a redelivery).
    version = write_date if occurred is not None else hashlib.sha256(
        json.dumps(item, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()[:16]
    return WebhookEvent(event_id=f"{model}:{record_id}:{version}", object=model, record_id=str(record_id),
                        kind="update", occurred_at=occurred)
