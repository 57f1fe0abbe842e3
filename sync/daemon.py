"""`concord daemon`: pipelines on their schedules, the webhook inbox worker, pipeline leases and a
graceful shutdown (DESIGN.md "Running").

One process holds one :class:`Daemon`. Each enabled entity is one pipeline; a pipeline runs only
while this instance holds its lease (so several daemons can share one PostgreSQL store) and never
at the same time as the inbox worker handles that entity's webhook events in this process.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import structlog
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from sync import inbox_wake
from sync.config import Config
from sync.health import SystemHealth, stopped_system
from sync.housekeeping import prune
from sync.inbox_worker import InboxWorker, build_routes
from sync.leases import LEASE_LOST, LeaseKeeper
from sync.mapping import MappingError
from sync.metrics import Metrics
from sync.pipeline import EntityPipeline, PipelineStopped
from sync.runtime import Runtime, build_runtime, default_instance_id
from sync.store import InboxEvent

log = structlog.get_logger("concord.daemon")

SHUTDOWN_GRACE = 30.0  # seconds a running batch gets to finish after SIGTERM (systemd waits 45)
INBOX_POLL = 1.0  # seconds between inbox polls when nothing woke the worker
DEAD_LETTER_SWEEP = 30.0  # seconds between dead-letter retry sweeps
CONNECT_BACKOFF_MAX = 60.0

EXIT_OK, EXIT_INPUT, EXIT_UNREACHABLE = 0, 2, 3

RuntimeFactory = Callable[..., Runtime]
PipelineFactory = Callable[..., Any]  # (rt, entity, *, epoch, should_stop) -> EntityPipeline-like


class DaemonStartError(Exception):
    """The daemon cannot start; ``exit_code`` says why (2: config or listen address)."""

    exit_code = 2


class DaemonConfigError(DaemonStartError):
    """The config and the mapping files do not fit together (exit 2)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _age(then: datetime | None, now: datetime) -> float | None:
    return None if then is None else round(max(0.0, (now - then).total_seconds()), 3)


# ============================================================================================
# The web app before the runtime exists
# ============================================================================================
class SwitchableApp:
    """The WSGI app the server runs: answers health and readiness while the daemon connects,
    then hands every request to the real web app (sync.web.WebApp)."""

    def __init__(self, *, metrics: Metrics, readiness: Callable[[], Mapping[str, Any]], max_body: int) -> None:
        self.metrics = metrics
        self.readiness = readiness
        self.max_body = max_body
        self._inner: Callable[..., Any] | None = None

    def set(self, app: Callable[..., Any]) -> None:
        """Serve ``app`` from now on."""
        self._inner = app

    def server_rejected(self, method: str, path: str, status: int) -> None:
        """Forward waitress's own refusals to the real app's metrics."""
        hook = getattr(self._inner, "server_rejected", None)
        if callable(hook):
            hook(method, path, status)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        inner = self._inner
        if inner is not None:
            return inner(environ, start_response)
        path = environ.get("PATH_INFO", "") or "/"
        status, body, ctype, extra = 404, {"error": "not_found"}, "application/json", []
        if path == "/healthz":
            status, body = 200, {"status": "ok"}
        elif path == "/readyz":
            status, body = 503, {**dict(self.readiness()), "status": "not_ready"}
        elif path.startswith("/webhooks/"):
            # Not verified yet (no connector): refuse so that the sender retries later.
            status, body, extra = 503, {"error": "starting"}, [("Retry-After", "30")]
        if path == "/metrics":
            payload, ctype = self.metrics.render(environ.get("HTTP_ACCEPT"))
            start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(payload)))])
            return [payload]
        data = json.dumps(body, default=str).encode()
        reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
        start_response(f"{status} {reason}", [("Content-Type", ctype), ("Content-Length", str(len(data))),
                                               ("Cache-Control", "no-store"), *extra])
        return [data]


class _InboxNotifier:
    """The store as the web app sees it: a new inbox event wakes the worker at once."""

    def __init__(self, store: Any, wake: threading.Event) -> None:
        self._store = store
        self._wake = wake

    def inbox_add(self, system: str, events: Sequence[InboxEvent]) -> int:
        added = int(self._store.inbox_add(system, events))
        if added:
            self._wake.set()
        return added

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


# ============================================================================================
# The daemon
# ============================================================================================
class Daemon:
    """Schedules the pipelines, runs the inbox worker, keeps leases and serves the web app.

    ``run()`` is the whole life of ``concord daemon`` (signals included); ``start()`` and
    ``shutdown()`` are its halves, for tests and embedding.
    """

    def __init__(self, config: Config, *, state_url: str | None = None, instance: str | None = None,
                 listen: str | None = None, serve_web: bool = True, metrics: Metrics | None = None,
                 runtime_factory: RuntimeFactory = build_runtime,
                 pipeline_factory: PipelineFactory = EntityPipeline,
                 shutdown_grace: float = SHUTDOWN_GRACE,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.state_url = state_url
        self.instance = instance or config.daemon.instance_id or default_instance_id()
        self.listen = listen or config.webhooks.listen
        self.serve_web = serve_web
        self.metrics = metrics or Metrics()
        self.runtime_factory = runtime_factory
        self.pipeline_factory = pipeline_factory
        self.shutdown_grace = shutdown_grace
        self.entities = config.enabled_entities()
        self.ttl: timedelta = config.daemon.lease_ttl
        self.stopping = threading.Event()
        self.exit_code = EXIT_OK
        self.finished = True  # False when shutdown gave up waiting for a job
        self.monotonic = monotonic
        self.health = SystemHealth(monotonic)
        self.rt: Runtime | None = None
        self.leases: LeaseKeeper | None = None
        self.inbox: InboxWorker | None = None
        self.locks = {e: threading.Lock() for e in self.entities}
        self.web: Any = None
        self.app = SwitchableApp(metrics=self.metrics, readiness=self.readiness,
                                 max_body=config.webhooks.max_body)
        self._stop_requested = threading.Event()
        self._wake = threading.Event()
        self._signalled = 0  # the first SIGTERM/SIGINT received
        self._active = 0
        self._active_cond = threading.Condition()
        self._inbox_thread: threading.Thread | None = None
        self._listener: inbox_wake.InboxListener | None = None
        self._connect_attempts = 0
        self._connect_error: str | None = None
        self._started = False
        self._running: set[str] = set()  # pipelines inside run_pipeline now
        self._running_lock = threading.Lock()
        self._beaten = False  # a heartbeat has run
        # Enough threads that a long pipeline run never delays the lease heartbeat.
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=len(self.entities) + 3)},
            job_defaults={"max_instances": 1, "coalesce": True})
        self.scheduler.add_listener(self._on_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)

    # ------------------------------------------------------------------ life cycle
    def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT, shut down gracefully; returns the exit code."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not self._signalled and not self._stop_requested.wait(0.2):
                pass
            if self._signalled:
                log.info("daemon.signal", signal=signal.Signals(self._signalled).name)
            self.finished = self.shutdown(self.shutdown_grace)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.exit_code

    def start(self) -> None:
        """Connect (a mapping error raises; an unreachable store is retried), serve, schedule."""
        # APScheduler's own warnings are reported through _on_job_event as structured logs.
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
        log.info("daemon.starting", instance=self.instance, pipelines=self.entities, listen=self.listen,
                 lease_ttl=self.ttl.total_seconds())
        connected = self._connect()
        if self.serve_web:
            from sync.web import serve
            try:
                self.web = serve(self.app, self.listen)
            except (OSError, ValueError) as exc:
                if self.rt is not None:
                    self.rt.close()
                raise DaemonStartError(f"cannot listen on {self.listen}: {exc}") from None
            self.web.start()
        self.scheduler.start()
        self._started = True
        if connected:
            self._schedule()
        else:
            self._retry_connect()

    def request_stop(self, exit_code: int | None = None) -> None:
        """Stop taking new work; ``run()`` then shuts down. Safe from any thread."""
        if exit_code is not None and self.exit_code == EXIT_OK:
            self.exit_code = exit_code
        if not self.stopping.is_set():
            log.info("daemon.stopping", instance=self.instance)
        self.stopping.set()
        self._wake.set()
        self._stop_requested.set()

    def shutdown(self, timeout: float = SHUTDOWN_GRACE) -> bool:
        """Finish in-flight batches (up to ``timeout`` s), release leases, close everything.

        Returns False when a job was still running at the deadline (its work is fenced by the
        lease epoch and its cursor only moves after a page commits, so exiting loses nothing).
        """
        self.request_stop()
        deadline = time.monotonic() + timeout
        if self._started:
            for job in self.scheduler.get_jobs():
                if job.id != "heartbeat":  # leases stay renewed while the batch in flight finishes
                    with suppress(Exception):
                        job.remove()
        finished = self._wait_idle(deadline)
        if self._listener is not None:  # it notices ``stopping`` within its 1 s timeout
            self._listener.join(max(0.0, min(2.0, deadline - time.monotonic())))
        with suppress(SchedulerNotRunningError):
            self.scheduler.shutdown(wait=False)
        if self.leases is not None:
            for name in list(self.leases.held()):
                lock = self.locks[name]
                if lock.acquire(blocking=False):  # not while a stuck job still works under it
                    try:
                        self.leases.release(name)
                    finally:
                        lock.release()
        if self.web is not None:
            self.web.close()
        if self.rt is not None and finished:
            self.rt.close()
        log.info("daemon.stopped", instance=self.instance, clean=finished, exit_code=self.exit_code)
        return finished

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only a flag and async-signal-safe calls here: taking a lock (an Event, a logger) could
        # deadlock against the interrupted main thread. run() notices the flag within 0.2 s.
        if self._signalled:
            # Committed work is safe: cursors and links only move with a committed page.
            os.write(2, b"concord: second signal, exiting now\n")
            os._exit(130)
        self._signalled = signum

    def _wait_idle(self, deadline: float) -> bool:
        thread = self._inbox_thread
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._active_cond:
            while self._active:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("daemon.shutdown_timeout", running_jobs=self._active)
                    return False
                self._active_cond.wait(left)
        return thread is None or not thread.is_alive()

    @contextmanager
    def _job(self) -> Iterator[None]:
        with self._active_cond:
            self._active += 1
        try:
            yield
        finally:
            with self._active_cond:
                self._active -= 1
                self._active_cond.notify_all()

    # ------------------------------------------------------------------ connecting
    def _connect(self) -> bool:
        """Build the runtime once; False (and a retry later) when a system or the store is down."""
        self._connect_attempts += 1
        try:
            rt = self.runtime_factory(self.config, state_url=self.state_url, instance=self.instance,
                                      on_response=self._on_api)
        except MappingError:
            raise
        except Exception as exc:  # any failure to connect is retried; only config errors end the daemon
            self._connect_error = f"{type(exc).__name__}: {exc}"
            log.error("daemon.connect_failed", attempt=self._connect_attempts, error=self._connect_error)
            return False
        try:
            self._check_mappings(rt)
        except DaemonConfigError:
            rt.close()
            raise
        self._wire(rt)
        return True

    def _check_mappings(self, rt: Runtime) -> None:
        missing = [f"{ep.system} has no {e!r}" for e in self.entities for ep in (rt.crm, rt.erp)
                   if ep.entity(e) is None]
        if missing:
            raise DaemonConfigError("enabled entities missing from the mapping files: " + "; ".join(missing)
                                    + " (add them to the mappings or set enabled: false under sync)")

    def _wire(self, rt: Runtime) -> None:
        from sync.web import make_app

        self.rt = rt
        self._connect_error = None
        self.health.register([rt.crm.system, rt.erp.system])
        self.leases = LeaseKeeper(rt.store, self.instance, self.ttl, self.entities, self.monotonic)
        routes = build_routes(rt, self.config, self.entities)
        self.inbox = InboxWorker(store=rt.store, config=self.config, routes=routes, entities=self.entities,
                                 leases=self.leases, locks=self.locks, pipeline_for=self._inbox_pipeline,
                                 instance=self.instance, stopping=self.stopping, health=self.health,
                                 metrics=self.metrics, systems={"crm": rt.crm.system, "erp": rt.erp.system})
        self.app.set(make_app(store=_InboxNotifier(rt.store, self._wake),
                              connectors={rt.crm.system: rt.crm.connector, rt.erp.system: rt.erp.connector},
                              metrics=self.metrics, readiness=self.readiness,
                              max_body=self.config.webhooks.max_body, public_url=self.config.webhooks.public_url,
                              object_entities=routes.object_entities(), pipelines=self.entities))
        log.info("daemon.connected", instance=self.instance, store=rt.store.url_for_display,
                 crm=rt.crm.system, erp=rt.erp.system)

    def _retry_connect(self) -> None:
        delay = min(CONNECT_BACKOFF_MAX, 2.0 ** min(self._connect_attempts, 6))
        log.info("daemon.connect_retry", in_seconds=delay)
        self.scheduler.add_job(self._connect_job, "date", run_date=_utcnow() + timedelta(seconds=delay),
                               id="connect", replace_existing=True)

    def _connect_job(self) -> None:
        if self.stopping.is_set():
            return
        try:
            connected = self._connect()
        except (MappingError, DaemonConfigError) as exc:
            log.error("daemon.config_error", error=str(exc))
            self.request_stop(EXIT_INPUT)
            return
        if connected:
            self._schedule()
        elif not self.stopping.is_set():
            self._retry_connect()

    def _schedule(self) -> None:
        now = _utcnow()
        for entity in self.entities:
            every = self.config.sync[entity].every.total_seconds()  # type: ignore[index]
            # A run that starts up to half an interval late is still worth running; later than
            # that, the next regular run is closer, and coalescing folds the backlog into one.
            self.scheduler.add_job(self._pipeline_job, IntervalTrigger(seconds=every), args=[entity],
                                   id=f"pipeline:{entity}", name=f"pipeline {entity}", next_run_time=now,
                                   misfire_grace_time=max(1, int(every / 2)), replace_existing=True)
        beat = max(self.ttl.total_seconds() / 3, 0.2)
        # A late heartbeat is still useful until the lease would expire: grace = the period.
        self.scheduler.add_job(self._heartbeat_job, IntervalTrigger(seconds=beat), id="heartbeat",
                               name="lease heartbeat", next_run_time=now,
                               misfire_grace_time=max(1, int(beat)), replace_existing=True)
        self.scheduler.add_job(self._housekeeping_job, IntervalTrigger(hours=1), id="housekeeping",
                               name="store retention", misfire_grace_time=3600, replace_existing=True)
        self._inbox_thread = threading.Thread(target=self._inbox_loop, name="concord-inbox", daemon=True)
        self._inbox_thread.start()
        self._start_listener()

    def _start_listener(self) -> None:
        """On PostgreSQL, wake the inbox worker when another instance queues events (inbox_wake.py)."""
        engine = getattr(self.rt.store, "engine", None) if self.rt is not None else None
        connect = inbox_wake.listen_connect(engine) if engine is not None else None
        if connect is None:
            return
        self._listener = inbox_wake.InboxListener(connect, self._wake.set, self.stopping)
        self._listener.start()

    # ------------------------------------------------------------------ jobs
    def run_pipeline(self, entity: str) -> Any:
        """One scheduled run of ``entity``'s pipeline if this instance holds its lease; the report or None."""
        if self.stopping.is_set() or self.rt is None or self.leases is None:
            return None
        with self._job(), self._marked_running(entity):
            epoch = self.leases.acquire(entity)
            if epoch is None:
                owner = None
                with suppress(Exception):
                    lease = self.rt.store.lease_owner(entity)
                    owner = lease.owner if lease is not None else None
                log.debug("pipeline.skipped", entity=entity, reason="lease held elsewhere", owner=owner)
                return None
            with self.locks[entity]:
                if self.stopping.is_set() or not self.leases.holds(entity, epoch):
                    return None
                pipeline = self.pipeline_factory(self.rt, entity, epoch=epoch,
                                                 should_stop=self._should_stop(entity, epoch))
                try:
                    report = pipeline.run()
                except PipelineStopped as exc:
                    self._pipeline_stopped(entity, exc)
                    return None
                except Exception:
                    log.exception("pipeline.failed", entity=entity)
                    return None
            self.metrics.observe_run(entity, report.seconds,
                                     {d: c.as_dict() for d, c in report.by_direction.items()}, entity=entity)
            if not report.interrupted:
                for system, calls in (report.api_calls or {}).items():
                    if calls:
                        self.health.recovered(system)
            return report

    @contextmanager
    def _marked_running(self, entity: str) -> Iterator[None]:
        with self._running_lock:
            self._running.add(entity)
        try:
            yield
        finally:
            with self._running_lock:
                self._running.discard(entity)

    def _should_stop(self, entity: str, epoch: int) -> Callable[[], bool]:
        leases = self.leases
        assert leases is not None

        def should_stop() -> bool:
            return self.stopping.is_set() or not leases.holds(entity, epoch)
        return should_stop

    def _pipeline_stopped(self, entity: str, exc: PipelineStopped) -> None:
        if exc.exit_code == LEASE_LOST:
            assert self.leases is not None
            self.leases.forget(entity)
            log.warning("pipeline.lease_lost", entity=entity, error=str(exc))
            return
        assert self.rt is not None
        system = stopped_system(exc, [self.rt.crm.system, self.rt.erp.system])
        if system is not None:
            self.health.failed(system, str(exc))
        log.error("pipeline.stopped", entity=entity, system=system, error=str(exc), exit_code=exc.exit_code,
                  retry="next interval")

    def _pipeline_job(self, entity: str) -> None:
        self.run_pipeline(entity)

    def heartbeat(self) -> list[str]:
        """Renew held leases and take expired ones; a taken pipeline runs at once."""
        if self.leases is None:
            return []
        with self._job():
            taken = self.leases.heartbeat(acquire_free=not self.stopping.is_set())
        first, self._beaten = not self._beaten, True
        if first:  # at start every pipeline is due now anyway
            return taken
        for entity in taken:
            if self.stopping.is_set():
                break
            with self._running_lock:
                if entity in self._running:  # it is starting anyway
                    continue
            # A lease that just moved here may belong to a daemon that died mid-run: resume now.
            with suppress(Exception):
                self.scheduler.modify_job(f"pipeline:{entity}", next_run_time=_utcnow())
        return taken

    def _heartbeat_job(self) -> None:
        self.heartbeat()

    def _housekeeping_job(self) -> None:
        if self.rt is None or self.stopping.is_set():
            return
        with self._job():
            try:
                prune(self.rt.store, self.config.state.retention)
            except Exception as exc:  # retention is best effort; the next hour tries again
                log.warning("store.prune_failed", error=f"{type(exc).__name__}: {exc}")

    def _inbox_pipeline(self, entity: str) -> Any:
        assert self.rt is not None and self.leases is not None
        epoch = self.leases.epoch(entity)
        return self.pipeline_factory(self.rt, entity, epoch=epoch,
                                     should_stop=self._should_stop(entity, epoch) if epoch is not None
                                     else self.stopping.is_set)

    def _inbox_loop(self) -> None:
        """The inbox worker: woken by each webhook accepted here or (PostgreSQL) by another
        instance, otherwise polling every second."""
        assert self.inbox is not None
        next_sweep = 0.0
        while not self.stopping.is_set():
            self._wake.clear()
            claimed = 0
            try:
                claimed = self.inbox.run_once()
                if time.monotonic() >= next_sweep and not self.stopping.is_set():
                    next_sweep = time.monotonic() + DEAD_LETTER_SWEEP
                    self.inbox.retry_dead_letters()
            except Exception as exc:
                log.exception("inbox.worker_failed", error=f"{type(exc).__name__}: {exc}")
            if claimed == 0:
                self._wake.wait(INBOX_POLL)

    def _on_api(self, system: str, kind: str, status: int | None, seconds: float) -> None:
        self.metrics.observe_api(system, kind, status, seconds)
        self.health.contact(system, status)

    def _on_job_event(self, event: Any) -> None:
        job_id = str(getattr(event, "job_id", "?"))
        if event.code == EVENT_JOB_MAX_INSTANCES:
            # A pipeline run longer than its interval is worth knowing; a busy heartbeat is not.
            level = log.info if job_id.startswith("pipeline:") else log.debug
            level("job.skipped_busy", job=job_id, reason="the previous run is still going")
        elif event.code == EVENT_JOB_MISSED:
            log.info("job.missed", job=job_id, scheduled=str(getattr(event, "scheduled_run_time", "")))
        elif event.code == EVENT_JOB_ERROR:
            exc = getattr(event, "exception", None)
            log.error("job.failed", job=job_id, error=f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ readiness
    def readiness(self) -> dict[str, Any]:
        """For /readyz: connected, systems in contact and without errors, and each pipeline's state."""
        now = _utcnow()
        rt = self.rt
        body: dict[str, Any] = {"instance": self.instance, "systems": self.health.snapshot(), "pipelines": {}}
        if rt is None:
            body["runtime"] = {"connected": False, "attempts": self._connect_attempts, "error": self._connect_error}
        held = self.leases.held() if self.leases is not None else {}
        for p in self.entities:
            info: dict[str, Any] = {"last_success_age": None, "owner": None, "here": p in held}
            if rt is not None:
                try:
                    run = rt.store.last_successful_run(p)
                    lease = rt.store.lease_owner(p)
                    info["last_success_age"] = _age(run.finished_at if run else None, now)
                    info["owner"] = lease.owner if lease is not None else None
                except Exception as exc:  # readiness reports, never raises
                    info["error"] = f"{type(exc).__name__}"
            body["pipelines"][p] = info
        if self.stopping.is_set():
            body["stopping"] = True
        body["ready"] = rt is not None and not self.stopping.is_set() and self.health.ok()
        return body
