"""What `concord status` (and /readyz) reports: per pipeline, its last run, lag, owner and backlog."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def human_age(seconds: float | None) -> str | None:
    """'42s', '5m', '3h', '2d' — short enough for a table cell."""
    if seconds is None:
        return None
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def collect_status(config: Any, store: Any) -> dict[str, Any]:
    """A JSON-able summary of every configured pipeline from the state store."""
    now = datetime.now(timezone.utc)
    pipelines = []
    dead_by_pipeline: dict[str, int] = {}
    for d in store.list_dead_letters():
        dead_by_pipeline[d.pipeline] = dead_by_pipeline.get(d.pipeline, 0) + 1
    conflicts_by_entity: dict[str, int] = {}
    for c in store.open_conflicts():
        conflicts_by_entity[c.entity] = conflicts_by_entity.get(c.entity, 0) + 1
    for entity in config.sync:
        runs = store.last_runs(entity, limit=1)
        last = runs[0] if runs else None
        ok = store.last_successful_run(entity)
        lease = store.lease_owner(entity)
        lag = (now - ok.finished_at).total_seconds() if ok is not None and ok.finished_at else None
        counts = (last.counts or {}) if last else {}
        written = sum(counts.get(k, 0) for k in ("created", "updated", "updated_back", "archived"))
        pipelines.append({
            "pipeline": entity,
            "owner": lease.owner if lease is not None and lease.expires_at and lease.expires_at > now else None,
            "last_run": last.started_at.isoformat(timespec="seconds") if last else None,
            "status": last.status if last else None,
            "lag_seconds": lag,
            "lag_human": human_age(lag),
            "read": counts.get("read", 0),
            "written": written,
            "counts": counts,
            "api_calls": (last.api_calls or {}) if last else {},
            "links": store.count_links(entity),
            "dead_letters": dead_by_pipeline.get(entity, 0),
            "conflicts": conflicts_by_entity.get(entity, 0),
            # Writes a killed run left unconfirmed; the pipeline's next pass settles them (sync/intents.py).
            "writes_in_flight": store.count_intents(entity),
        })
    return {"generated_at": now.isoformat(timespec="seconds"), "store": store.url_for_display,
            "pipelines": pipelines}
