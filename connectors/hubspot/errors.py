"""HubSpot error bodies -> Concord's typed errors (the HttpClient classifier and 207 items).

Error bodies follow HubSpot's ``Error``/``StandardError`` schemas; the docs say every field is
optional, so every lookup here tolerates absence.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import requests

from connectors.base import (
    AuthError,
    ConnectorError,
    NotFound,
    RateLimited,
    RetryableError,
    ValidationError,
)
from connectors.http import parse_retry_after

# HubSpot sends no Retry-After on 429s; its own SDK waits 10 s for the rolling 10-second
# window and 1 s for the per-second search limit, and so do we.
TEN_SECONDLY_WAIT = 10.0
SECONDLY_WAIT = 1.0
LOCKED_WAIT = 2.0  # 423 Locked: "locks last 2 seconds"

_PROPERTY_IN_MESSAGE = re.compile(r'Property \\?"([^"\\]+)\\?" does not exist')


def body_of(response: requests.Response) -> dict[str, Any]:
    """The JSON error body, or {} when the body is not a JSON object."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def error_field(error: dict[str, Any]) -> str | None:
    """The property an error is about: ``errors[].context.propertyName``, a PROPERTY_DOESNT_EXIST
    detail, or the property list embedded in "Property values were not valid: [...]"."""
    details = [d for d in error.get("errors") or [] if isinstance(d, dict)]
    for detail in details:
        names = (detail.get("context") or {}).get("propertyName")
        if names:
            return str(names[0])
    top_names = (error.get("context") or {}).get("propertyName")
    if top_names:
        return str(top_names[0])
    for text in [d.get("message", "") for d in details] + [str(error.get("message", ""))]:
        match = _PROPERTY_IN_MESSAGE.search(text)
        if match:
            return match.group(1)
    embedded = _embedded_property_errors(str(error.get("message", "")))
    for item in embedded:
        if item.get("name"):
            return str(item["name"])
    return None


def error_message(error: dict[str, Any], fallback: str = "") -> str:
    """HubSpot's human-readable message: the detail messages when present, else the top one."""
    details = [str(d["message"]) for d in error.get("errors") or [] if isinstance(d, dict) and d.get("message")]
    if details:
        return "; ".join(details)
    embedded = [str(i["message"]) for i in _embedded_property_errors(str(error.get("message", "")))
                if i.get("message")]
    if embedded:
        return "; ".join(embedded)
    return str(error.get("message") or fallback)


def _embedded_property_errors(message: str) -> list[dict[str, Any]]:
    # "Property values were not valid: [{...json...}]" carries a JSON list after the colon.
    start = message.find("[")
    if not message.startswith("Property values were not valid") or start < 0:
        return []
    try:
        items = json.loads(message[start:])
    except ValueError:
        return []
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def seconds_until_utc_midnight(now: datetime | None = None) -> float:
    """Seconds until the next 00:00 UTC (when we assume the DAILY quota resets)."""
    now = now or datetime.now(timezone.utc)
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (tomorrow - now).total_seconds()


def item_error(error: dict[str, Any], system: str = "hubspot") -> ConnectorError:
    """One ``StandardError`` of a 207 batch response as a typed per-record error."""
    category = str(error.get("category") or "")
    message = f"{system}: {category or 'error'}: {error_message(error, 'batch input failed')}"
    if category == "OBJECT_NOT_FOUND":
        return NotFound(message, system=system, status=404)
    return ValidationError(message, system=system, status=400, field=error_field(error))


def classify(response: requests.Response, system: str, *, now: datetime | None = None) -> ConnectorError | None:
    """HttpClient classifier for HubSpot: status + JSON body -> typed error (None: success)."""
    status = response.status_code
    if status < 400:
        return None
    body = body_of(response)
    category = str(body.get("category") or body.get("errorType") or "")
    message = error_message(body, response.text[:300])
    correlation = body.get("correlationId")
    where = f"{system}: HTTP {status}" + (f" {category}" if category else "")
    text = f"{where}: {message}" + (f" (correlationId {correlation})" if correlation else "")

    if status in (401, 403):
        return AuthError(text, system=system, status=status)
    if status == 404:
        return NotFound(text, system=system, status=status)
    if status == 429:
        return RateLimited(text, system=system, status=status,
                           retry_after=_rate_limit_wait(response, body, now))
    if status == 477:  # migration in progress: Retry-After in seconds, "typically up to 24 hours"
        wait = parse_retry_after(response.headers.get("Retry-After"))
        return RateLimited(text, system=system, status=status, retry_after=wait)
    if status == 423:
        return RateLimited(text, system=system, status=status, retry_after=LOCKED_WAIT)
    if status >= 500 or status == 408:
        # 503/521 never reached a worker; anything else may have applied the write.
        return RetryableError(text, system=system, status=status, maybe_applied=status not in (503, 521))
    return ValidationError(text, system=system, status=status, field=error_field(body))


def _rate_limit_wait(response: requests.Response, body: dict[str, Any], now: datetime | None) -> float:
    policy = str(body.get("policyName") or "")
    message = str(body.get("message") or "").lower()
    if policy == "DAILY":
        # The quota resets at midnight in the account's time zone, which the API does not tell
        # us; midnight UTC is the documented approximation. The wait exceeds HttpClient's retry
        # bound, so the pipeline stops and the next scheduled run tries again.
        return seconds_until_utc_midnight(now)
    header = parse_retry_after(response.headers.get("Retry-After"))
    if header is not None:
        return header
    if policy == "TEN_SECONDLY_ROLLING":
        return TEN_SECONDLY_WAIT
    if "secondly" in message:  # the search endpoints' 5-per-second limit
        return SECONDLY_WAIT
    return TEN_SECONDLY_WAIT
