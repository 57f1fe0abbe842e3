"""The daemon's HTTP face: a plain WSGI app for webhooks, health, readiness and metrics, and
``serve()`` to run it under waitress.

Webhooks are hints (DESIGN.md "How one change is synced"): a request is verified by its
connector, its events go into the store's inbox, and it is answered at once. No product API is
called in the request path; the daemon's worker re-reads the records later.
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import structlog

from connectors.base import Connector, WebhookEvent, WebhookRejected, WebhookRequest
from sync.metrics import Metrics
from sync.store import InboxEvent

log = structlog.get_logger("concord.web")

WSGIEnviron = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[WSGIEnviron, StartResponse], Iterable[bytes]]

JSON_TYPE = "application/json"
WEBHOOK_PREFIX = "/webhooks/"
UNKNOWN_SYSTEM_LABEL = "unknown"  # one label for every unknown system: no label per attacker's path
_READ_METHODS = ("GET", "HEAD")
_REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
            404: "Not Found", 405: "Method Not Allowed", 413: "Content Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}
# Header names whose values are credentials: never echoed into logs.
_SENSITIVE_HEADER_WORDS = ("signature", "token", "secret", "authorization", "cookie", "api-key")


# --------------------------------------------------------------------------------------------
# Request helpers
# --------------------------------------------------------------------------------------------
class Headers(Mapping[str, str]):
    """Request headers, looked up case-insensitively (HTTP names are case-insensitive)."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for name, value in items:
            self._items[name.lower()] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({[name for name in self]})"


def request_headers(environ: Mapping[str, Any]) -> Headers:
    """The request's headers from a WSGI environ (``HTTP_X_FOO`` -> ``X-Foo``)."""
    items: list[tuple[str, str]] = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:]
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = key
        else:
            continue
        if value == "" and key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            continue
        items.append(("-".join(part.capitalize() for part in name.split("_")), str(value)))
    return Headers(items)


def _quote_wsgi_path(path: str) -> str:
    # PEP 3333 paths are bytes decoded as latin-1; re-encode what the server decoded.
    return quote(path.encode("latin-1"), safe="/:@!$&'()*+,;=~")


def _raw_paths(environ: Mapping[str, Any]) -> tuple[str, str]:
    """(full raw path, app-relative raw path) as the client sent them, not percent-decoded."""
    script = environ.get("SCRIPT_NAME", "") or ""
    quoted_script = _quote_wsgi_path(script)
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if raw:
        if not raw.startswith("/"):  # absolute-form request target
            parts = urlsplit(raw)
            raw = parts.path or "/"
        raw = raw.split("?", 1)[0]
        if raw.startswith(quoted_script):
            return raw, raw[len(quoted_script):]
    relative = _quote_wsgi_path(environ.get("PATH_INFO", "") or "")
    return quoted_script + relative, relative


def request_url(environ: Mapping[str, Any], public_url: str | None = None) -> str:
    """The full URL as the sender addressed it (what HubSpot signs).

    With ``public_url`` (the address the world uses, behind a proxy) it is public_url + the
    app-relative path + query; otherwise it is rebuilt from the scheme, Host and raw path.
    """
    full_path, relative_path = _raw_paths(environ)
    query = environ.get("QUERY_STRING", "") or ""
    suffix = f"?{query}" if query else ""
    if public_url:
        return public_url.rstrip("/") + relative_path + suffix
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST")
    if not host:
        host = environ.get("SERVER_NAME", "localhost")
        port = str(environ.get("SERVER_PORT", ""))
        if port and port != {"http": "80", "https": "443"}.get(scheme):
            host = f"{host}:{port}"
    return f"{scheme}://{host}{full_path}{suffix}"


class BodyTooLarge(Exception):
    """The request body exceeds the configured limit."""


class BadLength(Exception):
    """Content-Length is not a non-negative integer."""


def read_body(environ: Mapping[str, Any], max_body: int) -> bytes:
    """The raw body, at most ``max_body`` bytes; an oversized declared length is refused unread."""
    stream = environ.get("wsgi.input")
    declared = environ.get("CONTENT_LENGTH", "") or ""
    if declared:
        try:
            length = int(declared)
        except ValueError as exc:
            raise BadLength(declared) from exc
        if length < 0:
            raise BadLength(declared)
        if length > max_body:
            raise BodyTooLarge(length)
    elif environ.get("wsgi.input_terminated"):
        length = max_body + 1  # chunked: read until EOF, but never more than the cap allows
    else:
        return b""  # PEP 3333: without a length there is no body to read
    if stream is None or length == 0:
        return b""
    chunks: list[bytes] = []
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(remaining, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    body = b"".join(chunks)
    if len(body) > max_body:
        raise BodyTooLarge(len(body))
    return body


def _secret_values(headers: Mapping[str, str], url: str) -> list[str]:
    values = [v for k, v in headers.items() if any(w in k.lower() for w in _SENSITIVE_HEADER_WORDS)]
    values.extend(v for _, v in parse_qsl(urlsplit(url).query, keep_blank_values=False))
    return [v for v in values if len(v) >= 4]


# Long base64/hex runs in a connector's message may be signatures (even the expected one, which
# would let a forged body through): masked whatever their origin.
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9+/_\-]{20,}={0,2}")


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return _TOKEN_LIKE.sub("***", text)


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


# --------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Response:
    """A complete response; every route builds one and ``__call__`` sends it."""

    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
        body = json.dumps(payload, separators=(",", ":"), default=_json_default).encode("utf-8")
        return cls(status, body, JSON_TYPE, headers)


def _status_line(status: int) -> str:
    return f"{status} {_REASONS.get(status, 'Unknown')}"


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------
class WebApp:
    """The WSGI callable: /webhooks/<system>, /healthz, /readyz, /metrics."""

    def __init__(self, *, store: Any, connectors: Mapping[str, Connector], metrics: Metrics,
                 readiness: Callable[[], Mapping[str, Any]] | None = None,
                 max_body: int = 1_048_576, public_url: str | None = None,
                 object_entities: Mapping[tuple[str, str], str] | None = None,
                 pipelines: Sequence[str] = (),
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        if max_body <= 0:
            raise ValueError("max_body must be positive")
        self.store = store
        self.connectors = dict(connectors)
        self.metrics = metrics
        self.readiness = readiness
        self.max_body = max_body
        self.public_url = public_url.rstrip("/") if public_url else None
        self.object_entities = dict(object_entities) if object_entities is not None else None
        self.pipelines = tuple(pipelines)
        self.now = now
        self._conflict_entities: set[str] = set()
        if self.object_entities:
            self._conflict_entities.update(self.object_entities.values())
        self._refresh_lock = threading.Lock()
        metrics.init_webhook_labels(self.connectors)

    # ------------------------------------------------------------------ WSGI entry point
    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> list[bytes]:
        try:
            response = self._route(environ)
        except Exception:  # the app never lets an exception reach the server
            log.exception("web.internal_error", path=environ.get("PATH_INFO", ""))
            response = Response.json(500, {"error": "internal_error"})
        headers = [("Content-Type", response.content_type),
                   ("Content-Length", str(len(response.body))),
                   ("Cache-Control", "no-store"), *response.headers]
        start_response(_status_line(response.status), headers)
        return [response.body]

    def _route(self, environ: WSGIEnviron) -> Response:
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if path.startswith(WEBHOOK_PREFIX):
            system = path[len(WEBHOOK_PREFIX):]
            if system not in self.connectors:
                self.metrics.webhook_rejected_total.labels(UNKNOWN_SYSTEM_LABEL, "unknown_system").inc()
                log.info("webhook.rejected", system=UNKNOWN_SYSTEM_LABEL, reason="unknown_system",
                         status=404, remote=environ.get("REMOTE_ADDR"))
                return Response.json(404, {"error": "unknown_system"})
            if method != "POST":
                return Response.json(405, {"error": "method_not_allowed"}, (("Allow", "POST"),))
            started = time.perf_counter()
            try:
                return self._webhook(system, environ)
            finally:
                self.metrics.webhook_request_seconds.observe(time.perf_counter() - started)
        handler = {"/healthz": self._healthz, "/readyz": self._readyz,
                   "/metrics": self._metrics}.get(path)
        if handler is None:
            return Response.json(404, {"error": "not_found"})
        if method not in _READ_METHODS:
            return Response.json(405, {"error": "method_not_allowed"}, (("Allow", "GET, HEAD"),))
        return handler(environ)

    # ------------------------------------------------------------------ webhooks
    def _reject(self, system: str, status: int, reason: str, environ: WSGIEnviron,
                detail: str | None = None) -> Response:
        self.metrics.webhook_rejected_total.labels(system, reason).inc()
        log.warning("webhook.rejected", system=system, reason=reason, status=status,
                    detail=detail, remote=environ.get("REMOTE_ADDR"))
        return Response.json(status, {"error": reason})

    def _webhook(self, system: str, environ: WSGIEnviron) -> Response:
        try:
            body = read_body(environ, self.max_body)
        except BodyTooLarge as exc:
            return self._reject(system, 413, "body_too_large", environ,
                                f"{exc.args[0]} bytes > {self.max_body}")
        except BadLength:
            return self._reject(system, 400, "bad_content_length", environ)
        headers = request_headers(environ)
        url = request_url(environ, self.public_url)
        request = WebhookRequest(method="POST", url=url, headers=headers, body=body)
        try:
            events = self.connectors[system].parse_webhook(request)
        except WebhookRejected as exc:
            status = exc.status if exc.status in (400, 401, 403, 413) else 400
            # The URL may carry a token (Odoo) and the headers a signature: none goes to the log.
            detail = _redact(exc.message, _secret_values(headers, url))
            return self._reject(system, status, exc.reason or "rejected", environ, detail)
        except Exception:
            log.exception("webhook.parse_failed", system=system)
            self.metrics.webhook_rejected_total.labels(system, "internal_error").inc()
            return Response.json(500, {"error": "internal_error"})
        return self._enqueue(system, events)

    def _enqueue(self, system: str, events: Sequence[WebhookEvent]) -> Response:
        received_at = self.now()
        rows: list[InboxEvent] = []
        seen: set[str] = set()
        duplicates = ignored = 0
        for event in events:
            entity = None
            if self.object_entities is not None:
                entity = self.object_entities.get((system, event.object))
                if entity is None:  # an object no pipeline syncs: nothing for the worker to do
                    ignored += 1
                    continue
            if event.event_id in seen:  # the same event twice in one batch
                duplicates += 1
                continue
            seen.add(event.event_id)
            rows.append(InboxEvent(system=system, event_id=event.event_id, object=event.object,
                                   record_id=event.record_id, kind=event.kind,
                                   payload=_event_payload(event, entity), received_at=received_at))
        try:
            added = self.store.inbox_add(system, rows) if rows else 0
        except Exception:
            log.exception("webhook.inbox_failed", system=system, events=len(rows))
            self.metrics.webhook_events_total.labels(system, "failed").inc(len(rows))
            # Non-2xx makes the sender retry later; nothing is lost.
            return Response.json(503, {"error": "store_unavailable"})
        duplicates += len(rows) - added
        self._count(system, accepted=added, duplicate=duplicates, ignored=ignored)
        log.info("webhook.accepted", system=system, events=len(events), accepted=added,
                 duplicates=duplicates, ignored=ignored)
        return Response.json(200, {"accepted": added, "duplicates": duplicates, "ignored": ignored})

    def _count(self, system: str, **outcomes: int) -> None:
        for outcome, n in outcomes.items():
            if n:
                self.metrics.webhook_events_total.labels(system, outcome).inc(n)

    def server_rejected(self, method: str, path: str, status: int) -> None:
        """Count a request the server refused before the app saw it (e.g. 413 on Content-Length)."""
        if not path.startswith(WEBHOOK_PREFIX):
            return
        system = path[len(WEBHOOK_PREFIX):]
        label = system if system in self.connectors else UNKNOWN_SYSTEM_LABEL
        reason = {413: "body_too_large", 400: "bad_request",
                  431: "headers_too_large"}.get(status, f"http_{status}")
        self.metrics.webhook_rejected_total.labels(label, reason).inc()
        log.warning("webhook.rejected", system=label, reason=reason, status=status,
                    method=method, by="server")

    # ------------------------------------------------------------------ health and metrics
    def _healthz(self, environ: WSGIEnviron) -> Response:
        return Response.json(200, {"status": "ok"})

    def _readyz(self, environ: WSGIEnviron) -> Response:
        store_ok = self._ping()
        body: dict[str, Any] = {}
        checks_ok = True
        if self.readiness is not None:
            try:
                details = dict(self.readiness())
            except Exception:
                log.exception("web.readiness_failed")
                details = {"ready": False, "error": "readiness check failed"}
            checks_ok = bool(details.pop("ready", True))
            body.update(details)
        ready = store_ok and checks_ok
        body["store"] = {"reachable": store_ok}
        body["ready"] = ready
        body["status"] = "ready" if ready else "not_ready"
        return Response.json(200 if ready else 503, body)

    def _ping(self) -> bool:
        try:
            return bool(self.store.ping())
        except Exception:
            log.warning("web.store_ping_failed", exc_info=True)
            return False

    def _metrics(self, environ: WSGIEnviron) -> Response:
        self.refresh_store_gauges()
        body, content_type = self.metrics.render(environ.get("HTTP_ACCEPT"))
        return Response(200, body, content_type)

    def refresh_store_gauges(self) -> None:
        """Dead letters, open conflicts and lag from the store, so a scrape sees current values."""
        with self._refresh_lock:
            try:
                conflicts = Counter(c.entity for c in self.store.open_conflicts())
                self.metrics.set_open_conflicts(conflicts, known=self._conflict_entities)
                self._conflict_entities.update(conflicts)
                if self.pipelines:
                    self.metrics.set_dead_letters(
                        {p: self.store.count_dead_letters(p) for p in self.pipelines})
                now = self.now()
                for pipeline in self.pipelines:
                    run = self.store.last_successful_run(pipeline)
                    if run is not None and run.started_at is not None:
                        # Everything changed before the last good run started has been synced.
                        self.metrics.set_lag(pipeline, (now - run.started_at).total_seconds())
            except Exception:
                log.warning("metrics.store_refresh_failed", exc_info=True)


def _event_payload(event: WebhookEvent, entity: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "event_id": event.event_id, "object": event.object, "record_id": event.record_id,
        "kind": event.kind,
        "occurred_at": event.occurred_at.isoformat() if event.occurred_at else None,
    }
    if entity is not None:
        payload["entity"] = entity
    return payload


def make_app(*, store: Any, connectors: Mapping[str, Connector], metrics: Metrics,
             readiness: Callable[[], Mapping[str, Any]] | None = None,
             max_body: int = 1_048_576, public_url: str | None = None,
             object_entities: Mapping[tuple[str, str], str] | None = None,
             pipelines: Sequence[str] = (),
             now: Callable[[], datetime] | None = None) -> WebApp:
    """Build the WSGI app.

    ``connectors`` maps the system name in /webhooks/<system> to its connector;
    ``object_entities`` maps (system, native object) to the canonical entity (events for other
    objects are acknowledged and ignored); ``pipelines`` are refreshed into the store gauges.
    """
    kwargs: dict[str, Any] = {}
    if now is not None:
        kwargs["now"] = now
    return WebApp(store=store, connectors=connectors, metrics=metrics, readiness=readiness,
                  max_body=max_body, public_url=public_url, object_entities=object_entities,
                  pipelines=pipelines, **kwargs)


# --------------------------------------------------------------------------------------------
# Serving with waitress
# --------------------------------------------------------------------------------------------
def parse_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"``, ``"[::1]:8080"`` or ``":8080"`` -> (host, port)."""
    listen = listen.strip()
    if listen.startswith("["):
        host, sep, port = listen[1:].partition("]:")
    else:
        host, sep, port = listen.rpartition(":")
    if not sep:
        raise ValueError(f"listen address {listen!r} must be host:port")
    try:
        port_number = int(port)
    except ValueError as exc:
        raise ValueError(f"listen address {listen!r}: port {port!r} is not a number") from exc
    if not 0 <= port_number <= 65535:
        raise ValueError(f"listen address {listen!r}: port out of range")
    return host or "127.0.0.1", port_number


class WebServer:
    """A waitress server: ``run()`` blocks, ``start()`` runs it in a thread, ``close()`` stops it."""

    def __init__(self, server: Any, socket_map: dict[Any, Any]) -> None:
        self._server = server
        self._map = socket_map
        self._running = False
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._closed = False
        listen = getattr(server, "effective_listen", None)
        if listen:
            self.host, self.port = str(listen[0][0]), int(listen[0][1])
        else:
            self.host, self.port = str(server.effective_host), int(server.effective_port)

    @property
    def url(self) -> str:
        """The base URL the server answers on (http://host:port)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def run(self) -> None:
        """Serve until :meth:`close` (blocking)."""
        with self._lock:
            if self._closed:
                return
            self._running = True
        log.info("web.listening", host=self.host, port=self.port)
        try:
            self._server.run()
        finally:
            self._stopped.set()

    def start(self) -> threading.Thread:
        """Run the server in a daemon thread and return the thread."""
        thread = threading.Thread(target=self.run, name="concord-web", daemon=True)
        thread.start()
        return thread

    def close(self, timeout: float = 5.0) -> None:
        """Stop: in-flight requests get ``timeout`` seconds, queued ones are dropped (senders retry)."""
        from waitress import wasyncore

        with self._lock:
            if self._closed:
                return
            self._closed = True
            running = self._running
        self._server.task_dispatcher.shutdown(timeout=timeout)
        trigger = self._trigger()
        if running and trigger is not None and not self._stopped.is_set():
            # Sockets belong to the loop thread: close them there, then the loop ends (empty map).
            trigger.pull_trigger(lambda: wasyncore.close_all(self._map, ignore_all=True))
            self._stopped.wait(timeout)
        else:
            wasyncore.close_all(self._map, ignore_all=True)
        log.info("web.closed", host=self.host, port=self.port)

    def _trigger(self) -> Any:
        trigger = getattr(self._server, "trigger", None)
        if trigger is not None:
            return trigger
        for obj in list(self._map.values()):
            if hasattr(obj, "pull_trigger"):
                return obj
        return None


def _install_rejection_hook(socket_map: Mapping[Any, Any],
                            hook: Callable[[str, str, int], None]) -> None:
    """Let the app count requests waitress refuses itself (oversized body, bad framing).

    waitress answers those without calling the app; its channel's ``error_task_class`` is the
    one place to see them. If a waitress release drops these attributes, serving still works.
    """
    try:
        from waitress.channel import HTTPChannel
        from waitress.server import BaseWSGIServer
        from waitress.task import ErrorTask
    except ImportError:  # pragma: no cover - only if waitress reorganises its modules
        return

    class ReportingErrorTask(ErrorTask):  # type: ignore[misc]
        def execute(self) -> None:
            super().execute()
            request = self.request
            try:
                hook(str(getattr(request, "command", "") or ""),
                     str(getattr(request, "path", "") or ""),
                     int(getattr(request.error, "code", 0)))
            except Exception:
                log.warning("web.rejection_hook_failed", exc_info=True)

    class ReportingChannel(HTTPChannel):  # type: ignore[misc]
        error_task_class = ReportingErrorTask

    for obj in list(socket_map.values()):
        if isinstance(obj, BaseWSGIServer) and getattr(obj, "channel_class", None) is HTTPChannel:
            obj.channel_class = ReportingChannel


def serve(app: WSGIApp, listen: str = "127.0.0.1:8080", threads: int = 8,
          **adjustments: Any) -> WebServer:
    """Create (bind) a waitress server for ``app``; call ``.run()`` or ``.start()`` on it.

    A body over the app's ``max_body`` is refused by waitress from its Content-Length (or as
    soon as a chunked body passes the limit), before it is buffered.
    """
    import waitress

    host, port = parse_listen(listen)
    options: dict[str, Any] = {"host": host, "port": port, "threads": threads, "ident": "concord"}
    max_body = getattr(app, "max_body", None)
    if isinstance(max_body, int) and max_body > 0:
        # waitress refuses lengths >= its limit; +1 keeps a body of exactly max_body acceptable.
        options["max_request_body_size"] = max_body + 1
    options.update(adjustments)
    socket_map: dict[Any, Any] = {}
    server = waitress.create_server(app, map=socket_map, **options)
    hook = getattr(app, "server_rejected", None)
    if callable(hook):
        _install_rejection_hook(socket_map, hook)
    return WebServer(server, socket_map)
