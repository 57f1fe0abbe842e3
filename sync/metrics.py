"""Prometheus metrics of one Concord process, on its own registry.

Each :class:`Metrics` owns a ``CollectorRegistry`` (never the global default one) so that tests
and several apps in one process do not collide; whoever builds the daemon passes it around.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

# Keys of a run's counts that are not per-record outcomes (they would double-count records).
_NOT_OUTCOMES = frozenset({"read", "api_calls", "calls", "pages"})

# Pipeline names may carry their direction ("customer:crm_to_erp"); these split them.
_PIPELINE_SEPARATORS = (":", "/", ".")

_FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_API_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_RUN_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


def split_pipeline(pipeline: str) -> tuple[str, str]:
    """``"customer:crm_to_erp"`` -> ``("customer", "crm_to_erp")``; a bare name has no direction."""
    for sep in _PIPELINE_SEPARATORS:
        entity, found, direction = pipeline.partition(sep)
        if found:
            return entity, direction
    return pipeline, ""


class Metrics:
    """Every metric Concord exports, with helpers matching the callers' hooks."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.records_synced_total = Counter(
            "records_synced_total", "Records processed by a pipeline run, by outcome.",
            ["entity", "direction", "outcome"], registry=r)
        self.api_calls_total = Counter(
            "api_calls_total", "HTTP calls to a product's API (status 'error' = no response).",
            ["system", "kind", "status"], registry=r)
        self.api_call_seconds = Histogram(
            "api_call_seconds", "Duration of one API call, retries excluded.",
            ["system"], buckets=_API_BUCKETS, registry=r)
        self.run_duration_seconds = Histogram(
            "run_duration_seconds", "Duration of one pipeline run.",
            ["pipeline"], buckets=_RUN_BUCKETS, registry=r)
        self.pipeline_lag_seconds = Gauge(
            "pipeline_lag_seconds", "Age of the newest change a pipeline is known to have synced.",
            ["pipeline"], registry=r)
        self.dead_letters = Gauge(
            "dead_letters", "Open (unresolved) dead letters.", ["pipeline"], registry=r)
        self.open_conflicts = Gauge(
            "open_conflicts", "Conflicts waiting for a manual decision.", ["entity"], registry=r)
        self.webhook_events_total = Counter(
            "webhook_events_total",
            "Webhook events received, by outcome (accepted, duplicate, ignored, failed).",
            ["system", "outcome"], registry=r)
        self.webhook_rejected_total = Counter(
            "webhook_rejected_total", "Webhook requests refused, by reason.",
            ["system", "reason"], registry=r)
        self.webhook_request_seconds = Histogram(
            "webhook_request_seconds", "Time to answer one webhook request.",
            buckets=_FAST_BUCKETS, registry=r)

    # ----------------------------------------------------------------------------------------
    def observe_api(self, system: str, kind: str, status: int | None, seconds: float) -> None:
        """One API call; the signature matches HttpClient's ``on_response`` hook."""
        label = "error" if status is None else str(status)
        self.api_calls_total.labels(system, kind, label).inc()
        self.api_call_seconds.labels(system).observe(max(0.0, seconds))

    def observe_run(self, pipeline: str, seconds: float, counts: Mapping[str, object], *,
                    entity: str | None = None, direction: str | None = None) -> None:
        """One finished pipeline run: its duration and per-outcome record counts.

        ``counts`` is ``{outcome: n}``, or ``{direction: {outcome: n}}`` for a two-way run.
        ``entity``/``direction`` default to the halves of ``pipeline`` (``"customer:crm_to_erp"``).
        """
        self.run_duration_seconds.labels(pipeline).observe(max(0.0, seconds))
        split_entity, split_direction = split_pipeline(pipeline)
        entity = entity if entity is not None else split_entity
        direction = direction if direction is not None else split_direction
        flat: dict[str, object] = {}
        for key, value in counts.items():
            if isinstance(value, Mapping):
                self.count_records(entity, key, value)
            else:
                flat[key] = value
        self.count_records(entity, direction, flat)

    def count_records(self, entity: str, direction: str, counts: Mapping[str, object]) -> None:
        """Add per-outcome record counts; non-integer and non-outcome entries (``read``) are skipped."""
        for outcome, value in counts.items():
            if outcome in _NOT_OUTCOMES or isinstance(value, bool) or not isinstance(value, int):
                continue
            if value > 0:
                self.records_synced_total.labels(entity, direction, outcome).inc(value)

    def set_lag(self, pipeline: str, seconds: float) -> None:
        """How far behind a pipeline is (seconds)."""
        self.pipeline_lag_seconds.labels(pipeline).set(max(0.0, seconds))

    def set_dead_letters(self, counts: Mapping[str, int]) -> None:
        """Open dead letters per pipeline (pipelines absent from ``counts`` keep their value)."""
        for pipeline, n in counts.items():
            self.dead_letters.labels(pipeline).set(n)

    def set_open_conflicts(self, counts: Mapping[str, int], known: Iterable[str] = ()) -> None:
        """Open conflicts per entity; entities in ``known`` but not in ``counts`` drop to 0."""
        for entity in known:
            if entity not in counts:
                self.open_conflicts.labels(entity).set(0)
        for entity, n in counts.items():
            self.open_conflicts.labels(entity).set(n)

    def init_webhook_labels(self, systems: Iterable[str]) -> None:
        """Create the accepted/duplicate series at 0 so rate() works before the first event."""
        for system in systems:
            for outcome in ("accepted", "duplicate"):
                self.webhook_events_total.labels(system, outcome)

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition text and its content type (OpenMetrics when the scraper asks for it)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
