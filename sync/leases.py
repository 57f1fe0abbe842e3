"""Pipeline leases held by this instance: acquired, renewed by a heartbeat, and fenced by epoch
(DESIGN.md "Running": several daemons on one PostgreSQL store)."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import structlog

log = structlog.get_logger("concord.daemon")

LEASE_LOST = 1  # PipelineStopped exit code of a fenced cursor write (the lease moved on)


class LeaseKeeper:
    """The pipeline leases this instance holds, with their epochs (fencing tokens).

    A lease counts as held only while its last successful renewal is younger than the TTL, so a
    daemon cut off from the store stops its pipelines before another instance can take them.
    """

    def __init__(self, store: Any, owner: str, ttl: timedelta, names: Sequence[str],
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.owner = owner
        self.ttl = ttl
        self.names = list(names)
        self._mono = monotonic
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}
        self._renewed: dict[str, float] = {}

    def acquire(self, name: str) -> int | None:
        """Take or renew lease ``name``; its epoch if this instance holds it now, else None."""
        started = self._mono()  # before the call: the store's expiry is at least this late
        try:
            epoch = self.store.acquire_lease(name, self.owner, self.ttl)
        except Exception as exc:  # the store is down: hold nothing new, keep what is still fresh
            log.warning("lease.acquire_failed", lease=name, error=f"{type(exc).__name__}: {exc}")
            return None
        with self._lock:
            previous = self._held.get(name)
            if epoch is None:
                self._drop(name)
                if previous is not None:
                    log.warning("lease.lost", lease=name, epoch=previous, owner=self.owner)
                return None
            self._held[name] = epoch
            self._renewed[name] = started
        if previous != epoch:
            log.info("lease.acquired", lease=name, epoch=epoch, owner=self.owner)
        return int(epoch)

    def holds(self, name: str, epoch: int | None = None) -> bool:
        """True while this instance holds ``name`` (at ``epoch``, if given) and renewed it in time."""
        with self._lock:
            held = self._held.get(name)
            if held is None or (epoch is not None and held != epoch):
                return False
            return self._mono() - self._renewed[name] < self.ttl.total_seconds()

    def epoch(self, name: str) -> int | None:
        """The epoch of a lease held now, else None."""
        with self._lock:
            held = self._held.get(name)
        return held if held is not None and self.holds(name, held) else None

    def held(self) -> dict[str, int]:
        """Leases held now: name -> epoch."""
        with self._lock:
            names = dict(self._held)
        return {n: e for n, e in names.items() if self.holds(n, e)}

    def heartbeat(self, *, acquire_free: bool = True) -> list[str]:
        """Renew held leases; try to take the others (expired ones move here). Returns newly taken."""
        taken: list[str] = []
        for name in self.names:
            with self._lock:
                epoch = self._held.get(name)
            if epoch is None:
                if acquire_free and self.acquire(name) is not None:
                    taken.append(name)
                continue
            started = self._mono()
            try:
                renewed = self.store.renew_lease(name, self.owner, epoch, self.ttl)
            except Exception as exc:  # freshness runs out on its own if the store stays away
                log.warning("lease.renew_failed", lease=name, error=f"{type(exc).__name__}: {exc}")
                continue
            with self._lock:
                if renewed and self._held.get(name) == epoch:
                    self._renewed[name] = started
                elif not renewed:
                    self._drop(name)
            if not renewed:
                log.warning("lease.lost", lease=name, epoch=epoch, owner=self.owner)
        return taken

    def forget(self, name: str) -> None:
        """Stop counting ``name`` as held (the store said another instance has it)."""
        with self._lock:
            self._drop(name)

    def release(self, name: str) -> None:
        """Give lease ``name`` up so that another instance need not wait for it to expire."""
        with self._lock:
            held = self._held.get(name)
            self._drop(name)
        if held is None:
            return
        try:
            self.store.release_lease(name, self.owner)
            log.info("lease.released", lease=name, epoch=held, owner=self.owner)
        except Exception as exc:  # it expires on its own
            log.warning("lease.release_failed", lease=name, error=f"{type(exc).__name__}: {exc}")

    def _drop(self, name: str) -> None:
        self._held.pop(name, None)
        self._renewed.pop(name, None)
