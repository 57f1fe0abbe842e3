"""Benchmark of webhook-driven sync: from a change in HubSpot to the Odoo write that carries it.

    python -m bench.webhooks [--rate 50] [--seconds 60] [--latency 0.02] [--state URL] [--instances 2]
                             [--profile FILE]

Both simulators run in this process, every API call on them delayed by ``--latency`` seconds.
HubSpot is seeded with one company per change to come (so that no change overwrites one still in
flight), the customers are synced once, then `concord daemon` runs as a subprocess with a 1 h poll
interval, so that only webhooks move data. For ``--seconds`` s, ``--rate`` companies per second
get a unique city ("bench-<n>") through the simulator, which sends signed v3 webhook batches to
the daemon's /webhooks/hubspot. An observer on the Odoo simulator stamps the write that carries
each marker once the write is applied. Latency = that stamp minus the moment of the HubSpot change,
both on this process's monotonic clock.

The daemon's CPU time and RSS come from psutil (peak: the kernel's high-water mark, VmHWM).
``--instances 2`` (PostgreSQL ``--state`` only) starts a second daemon on the same store once the
first owns the pipeline, and sends the webhooks to the second: every event then reaches its
owner through the shared store (LISTEN/NOTIFY, see sync/inbox_wake.py). A PostgreSQL ``--state``
gets a fresh schema, dropped afterwards.

``--profile FILE`` runs the daemon under py-spy (raw collapsed stacks, idle included) and prints
where the inbox worker thread spends its wall time. Exit status: 0 when every change reached
Odoo, 1 when any was lost, 2 when the set-up failed.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.customers import state_url as bench_state_url
from sandbox.core import Faults, Request, Response
from sandbox.hubspot import HubSpotSimulator
from sandbox.odoo import OdooSimulator

MARKER_PREFIX = "bench-"
INBOX_FRAME = "_inbox_loop"  # a frame of the daemon's inbox worker thread, to pick its stacks
PROJECT_DIRS = ("sync/", "connectors/")


class BenchSetupError(Exception):
    """The benchmark could not get to the measured phase (exit 2)."""


# ---------------------------------------------------------------------------------- measurement
class MarkerWatch:
    """Odoo simulator observer: the first moment each marker city was written to a res.partner.

    Observers run in the simulator's request thread after the call was applied and before the
    answer goes out, so the stamp is when the write became visible in Odoo.
    """

    def __init__(self, prefix: str = MARKER_PREFIX, clock: Callable[[], float] = time.perf_counter) -> None:
        self.prefix = prefix
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}

    def __call__(self, request: Request, response: Response) -> None:
        if request.path != "/jsonrpc" or response.status != 200:
            return
        if not isinstance(response.body, dict) or "error" in response.body:
            return
        cities = self._written_cities(request)
        if not cities:
            return
        now = self._clock()
        with self._lock:
            for city in cities:
                self._seen.setdefault(city, now)

    def _written_cities(self, request: Request) -> list[str]:
        try:
            params = request.json()["params"]
            args = params["args"]
        except (ValueError, KeyError, TypeError):
            return []
        if params.get("service") != "object" or not isinstance(args, list) or len(args) < 6:
            return []
        if args[3] != "res.partner":
            return []
        method, call_args = args[4], args[5]
        if method == "write" and isinstance(call_args, list) and len(call_args) >= 2:
            values = [call_args[1]]
        elif method == "create" and isinstance(call_args, list) and call_args:
            first = call_args[0]
            values = first if isinstance(first, list) else [first]
        else:
            return []
        return [v["city"] for v in values
                if isinstance(v, dict) and isinstance(v.get("city"), str) and v["city"].startswith(self.prefix)]

    def seen(self) -> dict[str, float]:
        """Marker -> the moment it was written, so far."""
        with self._lock:
            return dict(self._seen)

    def count(self) -> int:
        """How many distinct markers were written so far."""
        with self._lock:
            return len(self._seen)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Usage:
    """The daemon's resource use over the measured window."""

    cpu_seconds: float
    wall_seconds: float
    rss_start: int
    rss_end: int
    rss_peak: int


class ResourceMeter:
    """psutil on the daemon process: CPU seconds between two marks, RSS sampled in between."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.proc = psutil.Process(pid)
        self.interval = interval
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-rss", daemon=True)
        self._cpu0 = 0.0
        self._wall0 = 0.0
        self._rss0 = 0

    def start(self) -> None:
        """Mark the start of the window and begin sampling RSS."""
        self._cpu0 = self._cpu()
        self._wall0 = time.perf_counter()
        self._rss0 = self.proc.memory_info().rss
        self._peak = self._rss0
        self._thread.start()

    def stop(self) -> Usage:
        """Mark the end of the window (the process must still be alive)."""
        self._stop.set()
        self._thread.join(5)
        rss = self.proc.memory_info().rss
        peak = max(self._peak, rss, self._high_water_mark())
        return Usage(self._cpu() - self._cpu0, time.perf_counter() - self._wall0, self._rss0, rss, peak)

    def _cpu(self) -> float:
        t = self.proc.cpu_times()
        return float(t.user + t.system)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._peak = max(self._peak, self.proc.memory_info().rss)
            except psutil.Error:
                return

    def _high_water_mark(self) -> int:
        # psutil has no peak RSS; Linux keeps one per process (VmHWM), which no sampling can miss.
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        return 0


# ---------------------------------------------------------------------------------- the daemon
class JsonLog:
    """The daemon's JSON log file, read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self.records: list[dict[str, Any]] = []

    def poll(self) -> list[dict[str, Any]]:
        """Records written since the last poll."""
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        new = []
        for line in lines:
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                new.append(item)
        self.records.extend(new)
        return new

    def events(self, name: str) -> list[dict[str, Any]]:
        """Every record of event ``name`` read so far."""
        return [r for r in self.records if r.get("event") == name]


class DaemonProcess:
    """`concord daemon` as a subprocess (optionally under py-spy), logging JSON to a file."""

    def __init__(self, config: Path, workdir: Path, listen: str, profile: Path | None = None,
                 instance: str = "bench") -> None:
        self.listen = listen
        self.instance = instance
        self.log = JsonLog(workdir / ("daemon.log" if instance == "bench" else f"daemon-{instance}.log"))
        self._log_file = self.log.path.open("ab")
        argv = [sys.executable, "-m", "sync.cli", "daemon", "-c", str(config), "--instance", instance,
                "--listen", listen]
        self.profile = profile
        if profile is not None:
            spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            # py-spy as the parent can trace its child without extra ptrace rights; --nonblocking
            # does not pause the daemon to sample it, so the latencies stay comparable.
            argv = [spy, "record", "--idle", "--nonblocking", "--format", "raw", "--rate", "100",
                    "-o", str(profile), "--", *argv]
        self.popen = subprocess.Popen(argv, cwd=workdir, stdout=subprocess.DEVNULL, stderr=self._log_file,
                                      env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.pid = self._daemon_pid()

    def _daemon_pid(self) -> int:
        if self.profile is None:
            return self.popen.pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.popen.poll() is None:
            children = psutil.Process(self.popen.pid).children()
            if children:
                return children[0].pid
            time.sleep(0.02)
        raise BenchSetupError("py-spy did not start the daemon (is py-spy installed?)")

    @property
    def url(self) -> str:
        """The daemon's base URL."""
        return f"http://{self.listen}"

    def alive(self) -> bool:
        """The daemon (and py-spy around it, if any) is still running."""
        return self.popen.poll() is None and psutil.pid_exists(self.pid)

    def wait_event(self, name: str, timeout: float) -> dict[str, Any] | None:
        """The first record of event ``name``, waiting up to ``timeout`` s; None if none came."""
        deadline = time.monotonic() + timeout
        while True:
            self.log.poll()
            found = self.log.events(name)
            if found:
                return found[0]
            if time.monotonic() >= deadline or not self.alive():
                return None
            time.sleep(0.05)

    def stop(self, timeout: float = 40.0) -> int | None:
        """SIGTERM the daemon and wait; its exit code (None if it had to be killed)."""
        code: int | None = None
        try:
            if psutil.pid_exists(self.pid):
                os.kill(self.pid, signal.SIGTERM)
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)
        finally:
            self._log_file.close()
            self.log.poll()
        return code

    def tail(self, n: int = 20) -> str:
        """The last ``n`` lines of the daemon's log, for error messages."""
        return "\n".join(self.log.path.read_text(errors="replace").splitlines()[-n:])


# ---------------------------------------------------------------------------------- set-up
def free_listen() -> str:
    """A free 127.0.0.1 port for the daemon's web server, as host:port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def write_bench_config(workdir: Path, hub: HubSpotSimulator, odoo: OdooSimulator, state_url: str) -> Path:
    """Customers both ways, polled hourly so that only webhooks drive the sync; JSON logs at info."""
    from sandbox.fixtures import write_config
    return write_config(workdir, hub, odoo, state_url, customer={"every": "1h"}, log_level="info",
                        extra={"logging": {"format": "json"}})


def initial_sync(config_path: Path, companies: int, hub: HubSpotSimulator) -> float:
    """Custom fields on both sides, ``companies`` seeded in HubSpot, one sync; returns its seconds."""
    from sync.cli import run_sync
    from sync.config import load_config
    from sync.runtime import build_runtime
    rt = build_runtime(load_config(config_path))
    try:
        for ep in (rt.crm, rt.erp):
            ep.connector.setup([ep.spec("customer")])
        hub.seed_companies(companies)
        started = time.perf_counter()
        code, _ = run_sync(rt, ["customer"])
        if code:
            raise BenchSetupError(f"the initial sync failed with exit code {code}")
        return time.perf_counter() - started
    finally:
        rt.close()


# ---------------------------------------------------------------------------------- the load
def send_changes(hub: HubSpotSimulator, ids: Sequence[str], rate: float, seconds: float,
                 clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Change one company per 1/rate s for ``seconds`` s; marker -> when the change was made.

    The schedule is absolute (start + n / rate), so a late change does not shift the others.
    """
    total = min(len(ids), int(rate * seconds))
    sent: dict[str, float] = {}
    start = clock()
    for n in range(total):
        delay = start + n / rate - clock()
        if delay > 0:
            time.sleep(delay)
        marker = f"{MARKER_PREFIX}{n}"
        hub.update("companies", ids[n], {"city": marker})
        sent[marker] = clock()
    return sent


def wait_applied(watch: MarkerWatch, expected: int, stall: float, cap: float, daemon: DaemonProcess) -> None:
    """Wait until ``expected`` markers are written, or none came for ``stall`` s, or ``cap`` s passed."""
    deadline = time.monotonic() + cap
    last, last_change = watch.count(), time.monotonic()
    while last < expected and daemon.alive():
        now = time.monotonic()
        if now >= deadline or now - last_change >= stall:
            return
        time.sleep(0.05)
        count = watch.count()
        if count != last:
            last, last_change = count, time.monotonic()


# ---------------------------------------------------------------------------------- report
@dataclass
class Outcome:
    """What the measured phase produced."""

    sent: dict[str, float]
    seen: dict[str, float]
    usage: Usage
    hub_calls: Counter[str] = field(default_factory=Counter)
    odoo_calls: Counter[str] = field(default_factory=Counter)
    deliveries: list[Any] = field(default_factory=list)
    intake: Usage | None = None  # the second daemon, which took the webhooks (--instances 2)

    def latencies_ms(self) -> list[tuple[float, float]]:
        """(seconds into the run, latency ms) of every applied change, in send order."""
        start = min(self.sent.values(), default=0.0)
        return [(t - start, (self.seen[m] - t) * 1000) for m, t in self.sent.items() if m in self.seen]

    @property
    def lost(self) -> int:
        """Changes whose marker never reached Odoo."""
        return sum(1 for m in self.sent if m not in self.seen)


def fmt_ms(value: float) -> str:
    """Milliseconds with thousands separators, or n/a."""
    return "n/a" if math.isnan(value) else f"{value:,.0f}"


def report(args: argparse.Namespace, outcome: Outcome, companies: int, log: JsonLog) -> list[str]:
    """The printed figures."""
    timed = outcome.latencies_ms()
    lat = [ms for _, ms in timed]
    u = outcome.usage
    mb = 1024 * 1024
    sent = len(outcome.sent)
    applied = sent - outcome.lost
    posts = outcome.deliveries
    bad = [d for d in posts if d.status is None or not 200 <= d.status < 300]
    events_posted = sum(len(d.events) for d in posts)
    synced = log.events("inbox.synced")
    setup = (" webhooks to a second daemon that does not own the pipeline" if args.instances == 2 else "")
    lines = [
        f"webhook -> Odoo write latency: {args.rate:g} changes/s for {args.seconds:g} s, "
        f"{args.latency * 1000:g} ms per API call, {companies:,} companies{setup}",
        f"  latency (ms)     p50 {fmt_ms(percentile(lat, 50))}   p95 {fmt_ms(percentile(lat, 95))}   "
        f"p99 {fmt_ms(percentile(lat, 99))}   max {fmt_ms(max(lat, default=math.nan))}   (target p95 <= 1,000)",
        f"  events           sent {sent}, applied {applied}, lost {outcome.lost}",
        f"  webhooks         {len(posts)} POSTs carrying {events_posted} events"
        f" ({events_posted / max(1, len(posts)):.1f} per POST), {len(bad)} not 2xx",
        f"  daemon rounds    {len(synced)} inbox batches, "
        f"{sum(int(e.get('records', 0)) for e in synced) / max(1, len(synced)):.1f} records each",
        f"  daemon CPU       {u.cpu_seconds:.1f} s over {u.wall_seconds:.1f} s "
        f"({100 * u.cpu_seconds / max(u.wall_seconds, 1e-9):.0f} % of one core), "
        f"{1000 * u.cpu_seconds / max(1, applied):.1f} ms per change",
        f"  daemon RSS       {u.rss_start / mb:.0f} MB at start, {u.rss_end / mb:.0f} MB at end, "
        f"peak {u.rss_peak / mb:.0f} MB",
        f"  API calls        HubSpot {calls_text(outcome.hub_calls)}",
        f"                   Odoo {calls_text(outcome.odoo_calls)}",
        "  latency by time  " + by_slice(timed, args.seconds),
    ]
    if outcome.intake is not None:
        i = outcome.intake
        lines.insert(7, f"  intake daemon    CPU {i.cpu_seconds:.1f} s over {i.wall_seconds:.1f} s "
                        f"({100 * i.cpu_seconds / max(i.wall_seconds, 1e-9):.0f} % of one core), "
                        f"RSS peak {i.rss_peak / mb:.0f} MB")
    return lines


def calls_text(counts: Counter[str]) -> str:
    """Total API calls and the most frequent routes."""
    total = sum(counts.values())
    top = ", ".join(f"{k} {v}" for k, v in counts.most_common(4))
    return f"{total} ({top})" if total else "0"


def by_slice(timed: Sequence[tuple[float, float]], seconds: float, slices: int = 6) -> str:
    """p95 per slice of the sending period: a backlog shows as a p95 that keeps growing."""
    width = max(seconds / slices, 1e-9)
    out = []
    for i in range(slices):
        part = [ms for at, ms in timed if i * width <= at < (i + 1) * width or (i == slices - 1 and at >= seconds)]
        out.append(f"{round(i * width, 1):g}-{round((i + 1) * width, 1):g}s p95 {fmt_ms(percentile(part, 95))}")
    return "; ".join(out)


# ---------------------------------------------------------------------------------- profile
def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``file path:func`` shortened to the package path."""
    func, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{func}"


def summarize_profile(path: Path, focus: str = INBOX_FRAME, top: int = 12) -> list[str]:
    """Where the thread running ``focus`` spent its wall time: Concord's own functions (inclusive)
    and the innermost frames (self), as shares of that thread's samples."""
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if focus not in stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";") if f]
        total += count
        leaf[frames[-1]] += count
        for name in dict.fromkeys(frames):
            if name.startswith(PROJECT_DIRS):
                inclusive[name] += count
    if not total:
        return [f"  profile: no samples of the {focus} thread in {path}"]
    lines = [f"  inbox worker thread, {total} samples (wall time, idle included); inclusive, Concord code:"]
    lines += [f"    {100 * n / total:5.1f} %  {name}" for name, n in inclusive.most_common(top)]
    lines.append("  innermost frames (self):")
    lines += [f"    {100 * n / total:5.1f} %  {name}" for name, n in leaf.most_common(top)]
    return lines


# ---------------------------------------------------------------------------------- main
def run(args: argparse.Namespace, workdir: Path) -> int:
    """Set up, measure, print; the exit status."""
    with ExitStack() as stack:
        return _run(args, workdir, stack)


def _run(args: argparse.Namespace, workdir: Path, stack: ExitStack) -> int:
    from sync import logging as clog
    clog.configure("warning", "console")  # the in-process initial sync stays quiet

    companies = args.companies or int(args.rate * args.seconds)
    hub = HubSpotSimulator(faults=Faults()).start()
    odoo = OdooSimulator(faults=Faults()).start()
    daemon: DaemonProcess | None = None
    intake: DaemonProcess | None = None
    try:
        state_url = stack.enter_context(bench_state_url(args.state, workdir))
        config = write_bench_config(workdir, hub, odoo, state_url)
        seconds = initial_sync(config, companies, hub)
        print(f"set-up: initial sync of {companies:,} customers in {seconds:.1f} s", flush=True)
        # The latency applies to the measured phase only; the set-up need not pay it.
        hub.faults.latency = odoo.faults.latency = args.latency

        daemon = DaemonProcess(config, workdir, free_listen(), profile=args.profile)
        if daemon.wait_event("web.listening", 60) is None:
            raise BenchSetupError("the daemon did not start listening:\n" + daemon.tail())
        started = daemon.wait_event("run.finished", 120)  # the start-up poll, before the load
        if started is None or started.get("status") != "ok":
            raise BenchSetupError("the daemon's start-up run did not finish:\n" + daemon.tail())
        receiver = daemon
        if args.instances == 2:
            # The first daemon holds the customer lease by now: the second only takes webhooks,
            # so every event has to reach the owner through the shared store.
            intake = DaemonProcess(config, workdir, free_listen(), instance="bench-2")
            if intake.wait_event("web.listening", 60) is None:
                raise BenchSetupError("the second daemon did not start listening:\n" + intake.tail())
            receiver = intake
        hub.configure_webhooks(f"{receiver.url}/webhooks/hubspot")

        watch = MarkerWatch()
        odoo.observers.append(watch)
        hub.reset_log()
        odoo.reset_log()
        meter = ResourceMeter(daemon.pid)
        meter.start()
        intake_meter = ResourceMeter(intake.pid) if intake is not None else None
        if intake_meter is not None:
            intake_meter.start()
        ids = [c["id"] for c in hub.all("companies")]
        print(f"load: {args.rate:g} changes/s for {args.seconds:g} s ...", flush=True)
        sent = send_changes(hub, ids, args.rate, args.seconds)
        wait_applied(watch, len(sent), stall=args.drain, cap=args.drain_cap, daemon=daemon)
        if not daemon.alive():
            raise BenchSetupError("the daemon died during the run:\n" + daemon.tail())
        if intake is not None and not intake.alive():
            raise BenchSetupError("the second daemon died during the run:\n" + intake.tail())
        usage = meter.stop()
        intake_usage = intake_meter.stop() if intake_meter is not None else None
        hub.flush_webhooks(5)
        outcome = Outcome(sent, watch.seen(), usage, Counter(hub.counts), Counter(odoo.counts),
                          list(hub.webhook_deliveries), intake=intake_usage)
        if intake is not None:
            intake.stop()
            intake = None
        finished, daemon = daemon, None
        code = finished.stop()
        print()
        for line in report(args, outcome, companies, finished.log):
            print(line)
        if code != 0:
            print(f"  note: the daemon exited with {code} on SIGTERM")
        if args.profile is not None:
            for line in summarize_profile(args.profile):
                print(line)
        print(f"\nresult: {'OK' if outcome.lost == 0 else 'LOST EVENTS'}   (work folder {workdir})")
        return 0 if outcome.lost == 0 else 1
    finally:
        for proc in (intake, daemon):
            if proc is not None:
                proc.stop()
        hub.stop()
        odoo.stop()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line, checked."""
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="HubSpot changes per second (default 50)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to send changes (default 60)")
    parser.add_argument("--latency", type=float, default=0.02,
                        help="seconds added to every API call on both simulators (default 0.02)")
    parser.add_argument("--companies", type=int, default=0,
                        help="companies seeded (default: rate x seconds, one per change)")
    parser.add_argument("--drain", type=float, default=30.0,
                        help="after sending, give up when no change arrived for this many seconds")
    parser.add_argument("--drain-cap", type=float, default=600.0, help="after sending, wait at most this long")
    parser.add_argument("--state", default=None,
                        help="state store URL (default: SQLite in the work folder; PostgreSQL: a fresh schema)")
    parser.add_argument("--instances", type=int, choices=(1, 2), default=1,
                        help="2: a second daemon (same PostgreSQL store) takes the webhooks while the first "
                             "owns the pipeline")
    parser.add_argument("--profile", type=Path, default=None,
                        help="run the daemon under py-spy, raw stacks to this file, and summarise them")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0 or args.latency < 0:
        parser.error("--rate and --seconds must be positive and --latency not negative")
    if args.instances == 2 and not (args.state or "").startswith("postgres"):
        parser.error("--instances 2 needs a PostgreSQL --state (the daemons share the store)")
    if args.companies and args.companies < int(args.rate * args.seconds):
        parser.error("--companies must be at least rate x seconds (one company per change)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark in a new work folder; the exit status."""
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="concord-bench-webhooks-"))
    try:
        return run(args, workdir)
    except BenchSetupError as exc:
        print(f"set-up failed: {exc}\n(work folder {workdir})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
