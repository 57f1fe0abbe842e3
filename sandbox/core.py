"""The simulator framework: a real HTTP server on 127.0.0.1 with routing, a controllable clock,
fault injection and a request log. Each product simulator (hubspot.py, odoo.py) builds on it.

Faults are rolled per request with a seeded RNG so that a failing test can be replayed.
"""
from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Faults:
    """Fault-injection knobs. Rates are probabilities per request that matches ``paths``.

    - ``error_rate``: answer a 5xx (the product's own error body).
    - ``timeout_rate``: hold the request ``hang_seconds`` without answering, then close.
    - ``drop_before_rate``: close the connection before the request is applied.
    - ``drop_after_rate``: apply the request, then close without answering (lost acknowledgement).
    - ``partial_rate``: on batch endpoints, fail this share of inputs (207 / per-record errors).
    - ``latency``: seconds added to every request; ``slow_rate``/``slow_seconds`` for slow pages.
    - ``writes_only``: apply the rates only to requests that change data.

    ``injected`` counts the faults this object has produced, by kind (``error``, ``timeout``,
    ``drop_before``, ``drop_after``, ``slow``, ``partial``), so tests can report what they survived.
    """

    error_rate: float = 0.0
    timeout_rate: float = 0.0
    drop_before_rate: float = 0.0
    drop_after_rate: float = 0.0
    partial_rate: float = 0.0
    latency: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 2.0
    hang_seconds: float = 10.0
    writes_only: bool = False
    paths: str | None = None  # regex on the path; None = all
    seed: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    injected: Counter[str] = field(default_factory=Counter, repr=False)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def roll(self, rate: float) -> bool:
        """One seeded draw: True with probability ``rate``. A hit on ``partial_rate`` is counted
        here because the product simulators roll it themselves, per batch."""
        hit = self._draw(rate)
        if hit and rate is self.partial_rate:
            with self._lock:
                self.injected["partial"] += 1
        return hit

    def hit(self, rate: float, kind: str) -> bool:
        """A seeded draw like :meth:`roll`, counting a hit under ``kind`` in :attr:`injected`."""
        if not self._draw(rate):
            return False
        with self._lock:
            self.injected[kind] += 1
        return True

    def _draw(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def applies(self, path: str, is_write: bool) -> bool:
        if self.writes_only and not is_write:
            return False
        return self.paths is None or re.search(self.paths, path) is not None


class Clock:
    """The simulator's notion of now: real time plus an offset, or frozen, and advanceable."""

    def __init__(self, frozen: datetime | None = None) -> None:
        self._offset = timedelta(0)
        self._frozen = frozen
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return datetime.now(timezone.utc) + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            if self._frozen is not None:
                self._frozen += timedelta(seconds=seconds)
            else:
                self._offset += timedelta(seconds=seconds)

    def freeze(self, at: datetime | None = None) -> None:
        with self._lock:
            self._frozen = at or (datetime.now(timezone.utc) + self._offset)

    def unfreeze(self) -> None:
        with self._lock:
            if self._frozen is not None:
                self._offset = self._frozen - datetime.now(timezone.utc)
            self._frozen = None

    def skew(self, seconds: float) -> None:
        """Shift this system's clock relative to the real one (clock skew between systems)."""
        self.advance(seconds)


@dataclass
class Request:
    """An incoming request as the handlers see it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    url: str

    _json: Any = field(default=None, repr=False)
    _parsed: bool = field(default=False, repr=False)

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError when it is not JSON."""
        if not self._parsed:
            self._json = json.loads(self.body.decode("utf-8")) if self.body else None
            self._parsed = True
        return self._json

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    """What a handler answers; ``body`` is JSON-encoded unless it is bytes."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=utf-8"

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, separators=(",", ":")).encode()


@dataclass
class LoggedRequest:
    """One entry of the request log."""

    method: str
    path: str
    status: int | None
    is_write: bool
    at: float
    body: bytes = b""


class _Dropped(Exception):
    """Close the connection without answering."""


Handler = Callable[[Request, "re.Match[str]"], Response]


class Simulator:
    """Base of the product simulators: a threaded HTTP/1.1 server on 127.0.0.1.

    Subclasses register routes with :meth:`add_route`, say which requests write with
    :meth:`is_write`, and answer faults in the product's own shapes (:meth:`error_response`).
    """

    name = "simulator"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, faults: Faults | None = None,
                 clock: Clock | None = None, log_bodies: bool = False, log_size: int = 100_000) -> None:
        self.host = host
        self.port = port
        self.faults = faults or Faults()
        self.clock = clock or Clock()
        self.lock = threading.RLock()
        self.log_bodies = log_bodies
        self.request_log: deque[LoggedRequest] = deque(maxlen=log_size)
        self.counts: Counter[str] = Counter()  # "METHOD path-pattern" -> n
        self.write_count = 0
        self.read_count = 0
        self._routes: list[tuple[str, re.Pattern[str], Handler, str]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.observers: list[Callable[[Request, Response], None]] = []

    # ---------------------------------------------------------------- routing
    def add_route(self, method: str, pattern: str, handler: Handler, name: str | None = None) -> None:
        self._routes.append((method.upper(), re.compile("^" + pattern + "$"), handler, name or pattern))

    def is_write(self, request: Request) -> bool:
        """Whether a request changes data (used for fault scoping and write counting)."""
        return request.method in {"POST", "PUT", "PATCH", "DELETE"}

    def error_response(self, status: int, message: str) -> Response:
        """A product-shaped error body; subclasses override."""
        return Response(status, {"message": message})

    def before(self, request: Request) -> Response | None:
        """Auth and rate limits; return a response to short-circuit. Subclasses override."""
        return None

    # ---------------------------------------------------------------- lifecycle
    @property
    def base_url(self) -> str:
        assert self._server is not None, "simulator not started"
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> Simulator:
        sim = self

        class _H(_RequestHandler):
            simulator = sim

        self._server = ThreadingHTTPServer((self.host, self.port), _H)
        self._server.daemon_threads = True
        self._server.request_queue_size = 128
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"sim-{self.name}",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Run in the foreground until interrupted (``concord sandbox``)."""
        if self._server is None:
            self.start()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            self.stop()

    def reset_log(self) -> None:
        with self.lock:
            self.request_log.clear()
            self.counts.clear()
            self.write_count = 0
            self.read_count = 0

    # ---------------------------------------------------------------- dispatch
    def dispatch(self, request: Request) -> Response:
        """Route a request through faults, auth/rate limits and the handler."""
        is_write = self.is_write(request)
        f = self.faults
        if f.latency:
            time.sleep(f.latency)
        faulty = f.applies(request.path, is_write)
        if faulty and f.hit(f.slow_rate, "slow"):
            time.sleep(f.slow_seconds)
        if faulty and f.hit(f.timeout_rate, "timeout"):
            time.sleep(f.hang_seconds)
            raise _Dropped()
        if faulty and f.hit(f.drop_before_rate, "drop_before"):
            raise _Dropped()
        if faulty and f.hit(f.error_rate, "error"):
            return self.error_response(503, "Service temporarily unavailable (injected fault)")
        early = self.before(request)
        if early is not None:
            return early
        for method, pattern, handler, name in self._routes:
            if method != request.method:
                continue
            m = pattern.match(request.path)
            if m is None:
                continue
            with self.lock:
                self.counts[f"{method} {name}"] += 1
                if is_write:
                    self.write_count += 1
                else:
                    self.read_count += 1
            response = handler(request, m)
            if faulty and f.hit(f.drop_after_rate, "drop_after"):
                raise _Dropped()
            return response
        return self.error_response(404, f"No route for {request.method} {request.path}")


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle on, the client's delayed ACK stalls every
    # keep-alive response by ~40 ms, which would make the simulator, not Concord, the bottleneck.
    disable_nagle_algorithm = True
    simulator: Simulator

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _handle(self) -> None:
        sim = self.simulator
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        host = self.headers.get("Host") or f"{sim.host}:{sim.port}"
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            url=f"http://{host}{self.path}",
        )
        entry = LoggedRequest(self.command, parts.path, None, sim.is_write(request), time.time(),
                              body if sim.log_bodies else b"")
        try:
            response = sim.dispatch(request)
        except _Dropped:
            sim.request_log.append(entry)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        except Exception as exc:  # a simulator bug must show as a 500, not a hung client
            response = sim.error_response(500, f"simulator error: {type(exc).__name__}: {exc}")
        entry.status = response.status
        sim.request_log.append(entry)
        for observer in sim.observers:
            try:
                observer(request, response)
            except Exception:  # an observer (a test's validator) must never cost the client its answer
                pass
        payload = response.encode()
        self.send_response(response.status)
        if payload or response.status not in (204, 304):
            self.send_header("Content-Type", response.content_type)
        for k, v in response.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle
