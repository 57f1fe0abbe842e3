"""Webhook signatures (v3, v1) and the background delivery of signed event batches."""
from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger("sandbox.hubspot")


def sign_v3(secret: str, method: str, uri: str, body: bytes | str, timestamp: int | str) -> str:
    """X-HubSpot-Signature-v3: Base64(HMAC-SHA256(secret, method + uri + body + timestamp))."""
    raw = body.decode("utf-8") if isinstance(body, bytes) else body
    message = f"{method}{uri}{raw}{timestamp}".encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def sign_v1(secret: str, body: bytes | str) -> str:
    """X-HubSpot-Signature (v1): hex SHA-256 of client secret + body, still sent with CRM webhooks."""
    raw = body.decode("utf-8") if isinstance(body, bytes) else body
    return hashlib.sha256(f"{secret}{raw}".encode()).hexdigest()


@dataclass
class WebhookSettings:
    """Where and how the simulator delivers webhooks; nothing is sent while ``target_url`` is None.

    ``subscriptions`` limits event types (e.g. ``{"company.propertyChange"}``) and ``properties``
    the properties of propertyChange events; None means all. ``duplicate_rate`` sends that share of
    events twice, ``reorder`` shuffles each batch, a non-2xx answer or a connection error is retried
    ``max_retries`` times ``retry_delay`` * attempt seconds apart (real HubSpot: 10 times over 24 h).
    """

    target_url: str | None = None
    client_secret: str = ""
    subscriptions: set[str] | None = None
    properties: set[str] | None = None
    max_batch: int = 100
    batch_window: float = 0.01
    duplicate_rate: float = 0.0
    reorder: bool = False
    max_retries: int = 3
    retry_delay: float = 0.05
    timeout: float = 5.0
    seed: int = 0
    now_ms: Callable[[], int] | None = None  # signature timestamp clock; default: real time


@dataclass
class WebhookDelivery:
    """One POST of a webhook batch: what was sent and how the receiver answered."""

    events: list[dict[str, Any]]
    attempt: int
    status: int | None
    error: str | None = None


class WebhookDispatcher:
    """Queues events and POSTs them in signed batches from a background thread."""

    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self.deliveries: list[WebhookDelivery] = []
        self._queue: deque[tuple[dict[str, Any], bool]] = deque()
        self._retries: list[tuple[float, int, list[dict[str, Any]], int]] = []
        self._retry_seq = itertools.count()
        self._inflight = 0
        self._cond = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._rng = random.Random(settings.seed)
        self._session: Any = None

    def use(self, settings: WebhookSettings) -> None:
        """Deliver with these settings from now on (their seed restarts the duplicate/reorder dice)."""
        with self._cond:
            self.settings = settings
            self._rng.seed(settings.seed)

    def start(self) -> None:
        """Start the delivery thread (idempotent)."""
        if self._thread is None:
            self._stopped = False
            self._thread = threading.Thread(target=self._run, name="sim-hubspot-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the delivery thread; undelivered events are dropped."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def enqueue(self, events: Iterable[dict[str, Any]]) -> None:
        """Queue events for delivery."""
        with self._cond:
            self._queue.extend((e, False) for e in events)
            self._cond.notify_all()

    def pending(self) -> int:
        """Events queued, waiting for a retry or in flight."""
        with self._cond:
            return len(self._queue) + len(self._retries) + self._inflight

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._retries or self._inflight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    # ---------------------------------------------------------------- worker
    def _next_batch(self) -> tuple[list[dict[str, Any]], int] | None:
        """Under the lock: the next batch to send, or None to stop."""
        while True:
            if self._stopped:
                return None
            now = time.monotonic()
            if self._retries and self._retries[0][0] <= now:
                self._retries.sort()
                _, _, events, attempt = self._retries.pop(0)
                self._inflight += 1
                return events, attempt
            if self._queue:
                # Gather a little first: HubSpot batches events that occur close together.
                gather_until = now + self.settings.batch_window
                while len(self._queue) < self.settings.max_batch and not self._stopped:
                    left = gather_until - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                if self._stopped:
                    return None
                batch: list[dict[str, Any]] = []
                while self._queue and len(batch) < self.settings.max_batch:
                    event, is_copy = self._queue.popleft()
                    batch.append(event)
                    if not is_copy and self._rng.random() < self.settings.duplicate_rate:
                        self._queue.append((dict(event), True))
                if self.settings.reorder:
                    self._rng.shuffle(batch)
                self._inflight += 1
                return batch, 0
            wait = min((r[0] for r in self._retries), default=now + 0.5) - now
            self._cond.wait(max(wait, 0.001))

    def _run(self) -> None:
        import requests  # only the delivery thread needs it

        self._session = requests.Session()
        while True:
            with self._cond:
                item = self._next_batch()
            if item is None:
                return
            events, attempt = item
            try:
                self._deliver(events, attempt)
            finally:
                with self._cond:
                    self._inflight -= 1
                    self._cond.notify_all()

    def _deliver(self, events: list[dict[str, Any]], attempt: int) -> None:
        s = self.settings
        if not s.target_url:
            return
        sent = [dict(e, attemptNumber=attempt) for e in events]
        body = json.dumps(sent, separators=(",", ":")).encode()
        ts = s.now_ms() if s.now_ms else int(time.time() * 1000)
        headers = {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": sign_v3(s.client_secret, "POST", s.target_url, body, ts),
            "X-HubSpot-Request-Timestamp": str(ts),
            "X-HubSpot-Signature": sign_v1(s.client_secret, body),
            "X-HubSpot-Signature-Version": "v1",
            "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/) (sandbox)",
        }
        status: int | None = None
        error: str | None = None
        try:
            response = self._session.post(s.target_url, data=body, headers=headers, timeout=s.timeout)
            status = response.status_code
        except Exception as exc:  # the receiver being down is an expected condition, retried below
            error = f"{type(exc).__name__}: {exc}"
        self.deliveries.append(WebhookDelivery(sent, attempt, status, error))
        if status is not None and 200 <= status < 300:
            log.debug("hubspot.webhook.delivered", events=len(sent), attempt=attempt, status=status)
            return
        if attempt < s.max_retries:
            log.info("hubspot.webhook.retry", events=len(sent), attempt=attempt, status=status, error=error)
            with self._cond:
                due = time.monotonic() + s.retry_delay * (attempt + 1)
                self._retries.append((due, next(self._retry_seq), events, attempt + 1))
                self._cond.notify_all()
        else:
            log.warning("hubspot.webhook.gave_up", events=len(sent), attempt=attempt, status=status, error=error)
