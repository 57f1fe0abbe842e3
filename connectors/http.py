"""The one HTTP session factory: timeouts, one retry policy (tenacity), a token bucket per
connector, typed errors at the boundary, and secrets redacted from everything we log or raise.

Connectors call :meth:`HttpClient.request`; they never loop on retries themselves.
"""
from __future__ import annotations

import email.utils
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import requests
import structlog
import tenacity
from requests.adapters import HTTPAdapter

from connectors.base import (
    AuthError,
    ConnectorError,
    NotFound,
    RateLimited,
    RetryableError,
    ValidationError,
)

log = structlog.get_logger("concord.http")

REDACTED = "***"


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value (and bearer tokens) in ``text`` with ***."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, REDACTED)
    return text


@dataclass(frozen=True)
class HttpSettings:
    """Timeouts, retry bounds and rate limit of one connector (from its config section)."""

    timeout_connect: float = 5.0
    timeout_read: float = 30.0
    max_attempts: int = 6
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    max_total_wait: float = 180.0
    rate_per_second: float | None = None
    burst: int | None = None
    verify_tls: bool = True
    user_agent: str = "concord-sync/0.1"
    pool_size: int = 8


class TokenBucket:
    """A thread-safe token bucket: ``rate`` tokens per second, at most ``capacity`` banked."""

    def __init__(self, rate: float, capacity: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = float(rate)
        self.capacity = float(capacity if capacity is not None else max(1.0, rate))
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self, n: float = 1.0) -> float:
        """Take ``n`` tokens, sleeping as needed; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= n:
                    self._tokens -= n
                    return waited
                need = (n - self._tokens) / self.rate
            self._sleep(need)
            waited += need


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP-date. None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


def default_classify(response: requests.Response, system: str) -> ConnectorError | None:
    """Map an HTTP status to a typed error (None: success). Connectors refine this."""
    status = response.status_code
    if status < 400:
        return None
    text = response.text[:500]
    if status in (401, 403):
        return AuthError(f"{system}: HTTP {status}: {text}", system=system, status=status)
    if status == 404:
        return NotFound(f"{system}: HTTP 404: {text}", system=system, status=status)
    if status == 429:
        return RateLimited(f"{system}: HTTP 429: {text}", system=system,
                           retry_after=parse_retry_after(response.headers.get("Retry-After")))
    if status >= 500 or status in (408, 423, 477):
        return RetryableError(f"{system}: HTTP {status}: {text}", system=system, status=status,
                              maybe_applied=status not in (503,))
    return ValidationError(f"{system}: HTTP {status}: {text}", system=system, status=status)


Classifier = Callable[[requests.Response, str], ConnectorError | None]


class HttpClient:
    """One product's HTTP session with the shared retry policy and rate limiting."""

    def __init__(self, system: str, base_url: str, settings: HttpSettings | None = None, *,
                 headers: Mapping[str, str] | None = None, secrets: Iterable[str] = (),
                 classify: Classifier | None = None,
                 buckets: Mapping[str, TokenBucket] | None = None,
                 on_response: Callable[[str, str, int | None, float], None] | None = None) -> None:
        self.system = system
        self.base_url = base_url.rstrip("/")
        self.settings = settings or HttpSettings()
        self.secrets = [s for s in secrets if s]
        self.classify = classify or default_classify
        self.on_response = on_response
        self.calls: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self._calls_lock = threading.Lock()
        self.buckets: dict[str, TokenBucket] = dict(buckets or {})
        if "default" not in self.buckets and self.settings.rate_per_second:
            self.buckets["default"] = TokenBucket(self.settings.rate_per_second, self.settings.burst)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=self.settings.pool_size, pool_maxsize=self.settings.pool_size,
                              max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = self.settings.user_agent
        if headers:
            self.session.headers.update(headers)
        self.session.verify = self.settings.verify_tls
        if not self.settings.verify_tls:
            log.warning("http.tls_verification_off", system=system,
                        hint="verify_tls: false accepts any certificate; use it only for testing")

    # ------------------------------------------------------------------ public
    def request(self, method: str, path: str, *, kind: str, json: Any = None,
                params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
                idempotent: bool = True, bucket: str = "default",
                data: bytes | None = None) -> requests.Response:
        """Send one request through the retry policy; returns a successful response or raises.

        ``idempotent=False`` (a plain create) is not resent when it may have reached the
        product: the caller looks the record up by its key and decides.
        """
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda e: self._should_retry(e, idempotent)),
            wait=self._wait,
            stop=(tenacity.stop_after_attempt(self.settings.max_attempts)
                  | tenacity.stop_after_delay(self.settings.max_total_wait)),
            reraise=True,
            before_sleep=self._log_retry,
        )
        return retrying(self._send_once, method, path, kind, json, params, headers, bucket, data)

    def api_calls(self) -> dict[str, int]:
        with self._calls_lock:
            return dict(self.calls)

    def close(self) -> None:
        self.session.close()

    # ------------------------------------------------------------------ internals
    def _send_once(self, method: str, path: str, kind: str, json_body: Any,
                   params: Mapping[str, Any] | None, headers: Mapping[str, str] | None,
                   bucket: str, data: bytes | None) -> requests.Response:
        limiter = self.buckets.get(bucket)
        if limiter is not None:
            limiter.acquire()
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        start = time.monotonic()
        with self._calls_lock:
            self.calls[kind] += 1
        try:
            response = self.session.request(
                method, url, json=json_body, params=params, headers=headers, data=data,
                # Per request: requests lets REQUESTS_CA_BUNDLE override a session-level verify=False.
                verify=self.settings.verify_tls,
                timeout=(self.settings.timeout_connect, self.settings.timeout_read))
        except requests.exceptions.ConnectTimeout as exc:
            self._observe(kind, None, start)
            raise RetryableError(self._msg(f"connect timeout to {self._where(url)}", exc),
                                 system=self.system) from None
        except requests.exceptions.ConnectionError as exc:
            self._observe(kind, None, start)
            # A refused connection never reached the server; a dropped one may have been applied.
            refused = "NewConnectionError" in repr(exc) or "Connection refused" in str(exc)
            raise RetryableError(self._msg(f"connection error to {self._where(url)}", exc),
                                 system=self.system, maybe_applied=not refused) from None
        except requests.exceptions.Timeout as exc:
            self._observe(kind, None, start)
            raise RetryableError(self._msg(f"read timeout from {self._where(url)}", exc),
                                 system=self.system, maybe_applied=True) from None
        except requests.exceptions.RequestException as exc:
            self._observe(kind, None, start)
            raise RetryableError(self._msg(f"request to {self._where(url)} failed", exc),
                                 system=self.system, maybe_applied=True) from None
        self._observe(kind, response.status_code, start)
        error = self.classify(response, self.system)
        if error is not None:
            error.message = redact(error.message, self.secrets)
            error.args = (error.message,)
            raise error
        return response

    def _observe(self, kind: str, status: int | None, start: float) -> None:
        elapsed = time.monotonic() - start
        if status is not None:
            with self._calls_lock:
                self.statuses[status] += 1
        if self.on_response is not None:
            self.on_response(self.system, kind, status, elapsed)

    def _should_retry(self, exc: BaseException, idempotent: bool) -> bool:
        if not isinstance(exc, RetryableError):
            return False
        if isinstance(exc, RateLimited):
            return exc.retry_after is None or exc.retry_after <= self.settings.backoff_max * 4
        return idempotent or not exc.maybe_applied

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return exc.retry_after + random.uniform(0, 0.25)
        base = min(self.settings.backoff_max, self.settings.backoff_initial * 2 ** (state.attempt_number - 1))
        return random.uniform(base / 2, base)  # jitter keeps instances from retrying in lockstep

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("http.retry", system=self.system, attempt=state.attempt_number,
                    error=type(exc).__name__, detail=str(exc)[:200],
                    wait=round(state.next_action.sleep, 2) if state.next_action else None)

    def _msg(self, text: str, exc: BaseException) -> str:
        return redact(f"{self.system}: {text}: {type(exc).__name__}", self.secrets)

    @staticmethod
    def _where(url: str) -> str:
        return url.split("?", 1)[0]
