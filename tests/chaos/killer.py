"""SIGKILL at a chosen point of a `concord` process's work, from inside the simulators."""
from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.core import Request
from tests.e2e.conftest import Concord


@dataclass
class KillPoint:
    """Where a process died: after how many API requests, whether the last one was a write, and on
    which system (``timer`` when it was killed by the clock instead)."""

    request: int
    write: bool
    system: str


class Killer:
    """Kills a process at its n-th API request: the simulator applies the request, then the process
    dies before the answer reaches it (a crash between a product applying a write and Concord
    recording it: the window idempotent writes exist for)."""

    def __init__(self, env: Concord) -> None:
        self.env = env
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._left = 0
        self._seen = 0
        self._writes_only = False
        self.point: KillPoint | None = None
        for sim in (env.hub, env.odoo):
            sim.observers.append(self._observe)

    def _observe(self, request: Request, response: Any) -> None:
        with self._lock:
            if self._proc is None or self.point is not None:
                return
            sim = self.env.hub if request.path.startswith("/crm/") else self.env.odoo
            write = sim.is_write(request)
            self._seen += 1
            if self._writes_only and not write:
                return
            self._left -= 1
            if self._left > 0:
                return
            self.point = KillPoint(self._seen, write, sim.name)
            self._proc.send_signal(signal.SIGKILL)

    def run(self, start: Callable[[], subprocess.Popen[bytes]], at_request: int, *, writes_only: bool = False,
            deadline: float | None = None, timeout: float = 120) -> tuple[KillPoint | None, int | None]:
        """Start a process and kill it at its ``at_request``-th request (or write, with ``writes_only``),
        or at ``deadline`` seconds if it gets there first; returns (kill point, exit code if it ended)."""
        with self._lock:
            self.point, self._seen, self._left, self._writes_only = None, 0, at_request, writes_only
            self._proc = proc = start()
        try:
            code: int | None = proc.wait(timeout=deadline if deadline is not None else timeout)
        except subprocess.TimeoutExpired:
            if deadline is None:
                raise
            with self._lock:
                if self.point is None:
                    self.point = KillPoint(self._seen, False, "timer")
                    proc.send_signal(signal.SIGKILL)
            code = proc.wait(timeout=timeout)
        with self._lock:
            self._proc = None
            point = self.point
        return point, (None if point is not None else code)

    def sync(self, at_request: int, log: Path, *, writes_only: bool = False) -> tuple[KillPoint | None, int | None]:
        """`concord sync customer`, killed at its ``at_request``-th request (or write)."""
        return self.run(lambda: self.env.popen("sync", "customer", "--json", log=log), at_request,
                        writes_only=writes_only)
