"""Progress of a reconcile run: a rich progress bar on a terminal, periodic log events otherwise."""
from __future__ import annotations

import time
from typing import Any, Protocol

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

log = structlog.get_logger("concord.reconcile")


class Reporter(Protocol):
    """What the reconcile engine tells about its progress."""

    def start(self, name: str, total: int | None) -> None:
        """A phase begins (reading one side, repairing ...); ``total`` is an estimate or None."""

    def advance(self, name: str, n: int) -> None:
        """``n`` more items of phase ``name`` are done."""

    def finish(self, name: str) -> None:
        """Phase ``name`` is over."""

    def close(self) -> None:
        """No more phases."""


class RichReporter:
    """A rich progress bar per phase with counts, rate and ETA (on stderr)."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description:<28}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[rate]:>9}"),
                                 TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                 console=console, transient=False)
        self.tasks: dict[str, TaskID] = {}
        self.started: dict[str, float] = {}
        self.stopped = False
        self.progress.start()

    def start(self, name: str, total: int | None) -> None:
        self.tasks[name] = self.progress.add_task(name, total=total, rate="")
        self.started[name] = time.monotonic()

    def advance(self, name: str, n: int) -> None:
        task = self.tasks[name]
        self.progress.advance(task, n)
        t = self.progress.tasks[task]
        if t.total is not None and t.completed > t.total:
            self.progress.update(task, total=t.completed)  # the estimate was low
        elapsed = max(time.monotonic() - self.started[name], 1e-6)
        self.progress.update(task, rate=f"{t.completed / elapsed:,.0f}/s")

    def finish(self, name: str) -> None:
        task = self.tasks[name]
        t = self.progress.tasks[task]
        self.progress.update(task, total=t.completed)

    def close(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.progress.stop()


class LogReporter:
    """``reconcile.progress`` log events at most every ``interval`` seconds per phase."""

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self.state: dict[str, dict[str, Any]] = {}

    def start(self, name: str, total: int | None) -> None:
        now = time.monotonic()
        self.state[name] = {"done": 0, "total": total, "started": now, "logged": now}
        log.info("reconcile.phase_started", phase=name, estimate=total)

    def advance(self, name: str, n: int) -> None:
        s = self.state[name]
        s["done"] += n
        now = time.monotonic()
        if now - s["logged"] >= self.interval:
            s["logged"] = now
            log.info("reconcile.progress", phase=name, **self._figures(s, now))

    def finish(self, name: str) -> None:
        s = self.state.pop(name)
        log.info("reconcile.phase_finished", phase=name, **self._figures(s, time.monotonic()))

    def close(self) -> None:
        self.state.clear()

    @staticmethod
    def _figures(s: dict[str, Any], now: float) -> dict[str, Any]:
        elapsed = max(now - s["started"], 1e-6)
        rate = s["done"] / elapsed
        out: dict[str, Any] = {"done": s["done"], "per_second": round(rate, 1), "seconds": round(elapsed, 1)}
        total = s["total"]
        if total and rate > 0 and total > s["done"]:
            out["total_estimate"] = total
            out["eta_seconds"] = round((total - s["done"]) / rate, 1)
        return out


class NullReporter:
    """No progress output (library use, tests)."""

    def start(self, name: str, total: int | None) -> None:
        pass

    def advance(self, name: str, n: int) -> None:
        pass

    def finish(self, name: str) -> None:
        pass

    def close(self) -> None:
        pass


def make_reporter(console: Console, *, enabled: bool = True) -> Reporter:
    """A progress bar when ``console`` is a terminal, log events otherwise."""
    if not enabled:
        return NullReporter()
    if console.is_terminal:
        return RichReporter(console)
    return LogReporter()
