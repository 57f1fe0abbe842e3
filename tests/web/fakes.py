"""Test doubles: a connector that verifies HubSpot v3 signatures for real, and a store proxy."""
from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from connectors.base import WebhookEvent, WebhookRejected, WebhookRequest

from .signing import sign_v3

KINDS = {"creation": "create", "propertyChange": "update", "deletion": "delete"}


class SignedFakeConnector:
    """parse_webhook with a real HMAC-SHA256 v3 check and HubSpot's payload shape."""

    name: ClassVar[str] = "fakehub"

    def __init__(self, secret: str, max_age: float = 300.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self.max_age = max_age
        self.clock = clock
        self.requests: list[WebhookRequest] = []

    def parse_webhook(self, request: WebhookRequest) -> list[WebhookEvent]:
        self.requests.append(request)
        signature = request.headers.get("X-HubSpot-Signature-v3")
        timestamp = request.headers.get("X-HubSpot-Request-Timestamp", "")
        if not signature or not timestamp.isdigit():
            raise WebhookRejected("missing signature", status=401, reason="missing_signature")
        if abs(self.clock() - int(timestamp) / 1000) > self.max_age:
            raise WebhookRejected("timestamp too old", status=401, reason="stale_timestamp")
        expected = sign_v3(self.secret, request.method, request.url, request.body, timestamp)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            # Deliberately careless message: the app must not log the signature it carries.
            raise WebhookRejected(f"signature {signature} != {expected}", status=401,
                                  reason="bad_signature")
        try:
            items = json.loads(request.body)
        except ValueError:
            raise WebhookRejected("not JSON", status=400, reason="malformed_json") from None
        if not isinstance(items, list):
            raise WebhookRejected("not a JSON array", status=400, reason="malformed_json")
        events = []
        for item in items:
            kind = str(item.get("subscriptionType") or item.get("eventType"))
            prefix, _, action = kind.partition(".")
            events.append(WebhookEvent(
                event_id=f"{item['subscriptionId']}:{item['eventId']}:{item['occurredAt']}:{item['objectId']}",
                object=f"{prefix}s", record_id=str(item["objectId"]), kind=KINDS.get(action, "other"),
                occurred_at=datetime(1970, 1, 1, tzinfo=UTC)
                + timedelta(milliseconds=int(item["occurredAt"]))))
        return events


class ExplodingConnector:
    """A connector with a bug: parse_webhook raises something unexpected."""

    name: ClassVar[str] = "broken"

    def parse_webhook(self, request: WebhookRequest) -> list[WebhookEvent]:
        raise RuntimeError("connector bug")


@dataclass
class Run:
    pipeline: str
    started_at: datetime
    finished_at: datetime


@dataclass
class Conflict:
    entity: str


@dataclass
class MemoryStore:
    """The slice of the Store API the web app uses, in memory (dedup on (system, event_id))."""

    inbox: dict[tuple[str, str], Any] = field(default_factory=dict)
    dead: dict[str, int] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    runs: dict[str, Run] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ping(self) -> bool:
        return True

    def inbox_add(self, system: str, events: Any) -> int:
        with self._lock:
            added = 0
            for e in events:
                if (system, e.event_id) not in self.inbox:
                    self.inbox[(system, e.event_id)] = e
                    added += 1
            return added

    def inbox_pending(self) -> int:
        return len(self.inbox)

    def inbox_claim(self, worker: str, limit: int, ttl: timedelta) -> list[Any]:
        return list(self.inbox.values())[:limit]

    def count_dead_letters(self, pipeline: str | None = None) -> int:
        return self.dead.get(pipeline or "", 0) if pipeline else sum(self.dead.values())

    def open_conflicts(self, entity: str | None = None) -> list[Conflict]:
        return [c for c in self.conflicts if entity is None or c.entity == entity]

    def last_successful_run(self, pipeline: str) -> Run | None:
        return self.runs.get(pipeline)


class StoreProxy:
    """Wraps a store to make ping fail or inbox_add raise, delegating everything else."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.reachable = True
        self.fail_inbox = False

    def ping(self) -> bool:
        return self.reachable and self.inner.ping()

    def inbox_add(self, system: str, events: Any) -> int:
        if self.fail_inbox:
            raise ConnectionError("database is down")
        return self.inner.inbox_add(system, events)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
