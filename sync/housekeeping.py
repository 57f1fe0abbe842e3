"""Bookkeeping the store needs over time: runs whose process died, and retention of history."""
from __future__ import annotations

import os
import socket
from datetime import timedelta

import structlog

from sync.store import Store

log = structlog.get_logger("concord.housekeeping")

# Processed webhook events are only kept to recognise a redelivery; a week covers every product's
# retry schedule (HubSpot retries for up to a day) with room to spare.
INBOX_RETENTION = timedelta(days=7)


def instance_alive(instance: str) -> bool:
    """Whether the process behind a run's instance id may still be running.

    Only ``hostname:pid`` ids of this host can be checked; any other id (another host, or a
    configured daemon.instance_id) is assumed alive: a wrong 'interrupted' is worse than a stale
    'running'.
    """
    host, _, pid = instance.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process of that number
        return True
    return True


def close_abandoned_runs(store: Store, pipeline: str) -> int:
    """Mark the pipeline's runs left 'running' by a dead process of this host as interrupted."""
    closed = store.close_abandoned_runs(pipeline, instance_alive)
    if closed:
        log.warning("runs.abandoned", pipeline=pipeline, runs=closed)
    return closed


def prune(store: Store, history: timedelta, *, inbox: timedelta = INBOX_RETENTION) -> dict[str, int]:
    """Delete history older than ``history`` and processed webhook events older than ``inbox``."""
    counts = store.prune_history(history)
    counts["webhook_events"] = store.inbox_purge(inbox)
    if any(counts.values()):
        log.info("store.pruned", older_than_days=history.days, **counts)
    return counts
