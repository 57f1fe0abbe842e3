"""Per-system health for /readyz: the last answer of each product, and why a pipeline stopped."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from sync.pipeline import PipelineStopped

log = structlog.get_logger("concord.daemon")


@dataclass
class _SystemState:
    last_contact: float | None = None  # monotonic
    last_error: str | None = None


class SystemHealth:
    """Per system: when it last answered, and why a pipeline last had to stop because of it."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._mono = monotonic
        self._lock = threading.Lock()
        self._systems: dict[str, _SystemState] = {}

    def register(self, systems: Sequence[str]) -> None:
        """Make ``systems`` appear in snapshots before their first call."""
        with self._lock:
            for s in systems:
                self._systems.setdefault(s, _SystemState())

    def contact(self, system: str, status: int | None) -> None:
        """An API call finished; any HTTP answer counts as contact."""
        if status is None:
            return
        with self._lock:
            self._systems.setdefault(system, _SystemState()).last_contact = self._mono()

    def failed(self, system: str, message: str) -> None:
        """A pipeline stopped because ``system`` is unreachable or refused our credentials."""
        with self._lock:
            self._systems.setdefault(system, _SystemState()).last_error = message

    def recovered(self, system: str) -> None:
        """A run completed with calls to ``system``: it is reachable and we are authenticated."""
        with self._lock:
            state = self._systems.get(system)
            if state is not None and state.last_error is not None:
                state.last_error = None
                log.info("system.recovered", system=system)

    def ok(self) -> bool:
        """No system is in error."""
        with self._lock:
            return all(s.last_error is None for s in self._systems.values())

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """``{system: {"last_contact_age": seconds | None, "last_error": str | None}}``."""
        now = self._mono()
        with self._lock:
            return {name: {"last_contact_age": None if s.last_contact is None else round(now - s.last_contact, 3),
                           "last_error": s.last_error}
                    for name, s in sorted(self._systems.items())}


def stopped_system(exc: PipelineStopped, systems: Sequence[str]) -> str | None:
    """The system a PipelineStopped names (its messages start with ``"<system>: "``)."""
    head = str(exc).split(":", 1)[0].strip()
    return head if head in systems else None
