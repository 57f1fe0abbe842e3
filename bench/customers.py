"""Benchmark of the customer pipeline: an initial sync of N HubSpot companies to Odoo, then a full
re-read after a cursor reset (nothing changed, so nothing may be written).

    python -m bench.customers --n 10000 [--direction crm_to_erp|both|all] [--state URL] [--keep]

Each scenario starts fresh simulators as separate processes (``python -m sandbox.hubspot`` with
its rate limits off, ``python -m sandbox.odoo``), so their memory and CPU are not Concord's. The
sync runs through the real `concord sync` code path in a subprocess; its peak RSS comes from
``os.wait4``, its API calls from its runs row (`concord status --json`). The client-side rate
limits are lifted too (the simulators have none): the figures are Concord's own cost.
Targets (issue 2, on 2 cores): >= 3,000 records/s at 100k, peak RSS <= 250 MB, write calls per
record <= 1/batch size + 2 %.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from sandbox.fixtures import HubSpotAccess, OdooAccess, write_config

CLI = [sys.executable, "-m", "sync.cli"]
URL = re.compile(rb"http://127\.0\.0\.1:\d+")
WRITE_KINDS = ("write", "create", "archive")  # the connectors' api_calls kinds that change data
ODOO_BATCH = 100  # the Odoo connector's default batch_size: the target's "1/batch"
TARGETS = {"records_per_s": 3000.0, "peak_rss_mb": 250.0, "writes_per_record": 1 / ODOO_BATCH + 0.02}


@dataclass
class Measured:
    """One measured `concord sync` run, and the CPU seconds it and each simulator used."""

    wall: float
    peak_rss_mb: float
    code: int
    report: dict[str, Any]
    api_calls: dict[str, dict[str, int]] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """The pipeline's own time (the run, without process start-up)."""
        return float(self.report.get("seconds") or self.wall)

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.report.get("counts") or {})

    def write_calls(self) -> int:
        return sum(calls.get(kind, 0) for calls in self.api_calls.values() for kind in WRITE_KINDS)


# ---------------------------------------------------------------------------------- processes
@dataclass
class Sim:
    """A simulator process: its base URL and pid."""

    name: str
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)


@contextmanager
def simulator(module: str, args: Sequence[str], folder: Path) -> Iterator[Sim]:
    """Run ``python -m module args`` until the block ends; yields it once it printed its URL."""
    log = folder / f"{module.rsplit('.', 1)[-1]}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", module, "--port", "0", *args], stdout=sink,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while True:
            found = URL.search(log.read_bytes())
            if found:
                yield Sim(module.rsplit(".", 1)[-1], found.group().decode(), proc.pid)
                return
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{module} did not start; see {log}")
            time.sleep(0.05)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def concord(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A `concord` command to completion (for set-up and status)."""
    return subprocess.run([*CLI, *args, "-c", str(config)], capture_output=True, text=True, check=False)


def measured_sync(config: Path, sims: Sequence[Sim], profile: Path | None = None) -> Measured:
    """`concord sync customer --json` in a subprocess; wall time and peak RSS (os.wait4).

    With ``profile``, the run is under cProfile and its stats are written there (slower: figures
    from a profiled run are for finding where the time goes, not for the targets)."""
    out = config.parent / "sync.out"
    err = config.parent / "sync.err"
    cli = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "sync.cli"] if profile else CLI
    sims_before = {sim.name: sim.cpu_seconds() for sim in sims}
    with out.open("wb") as stdout, err.open("ab") as stderr:
        started = time.monotonic()
        proc = subprocess.Popen([*cli, "sync", "customer", "--json", "-c", str(config)], stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen
    cpu = {"concord": usage.ru_utime + usage.ru_stime}
    cpu.update({sim.name: sim.cpu_seconds() - sims_before[sim.name] for sim in sims})
    text = out.read_text()
    try:
        report = json.loads(text)[0]
    except (ValueError, IndexError):
        raise RuntimeError(f"concord sync exited {proc.returncode} without a report; see {err}") from None
    status_out = concord(config, "status", "--json")
    rows = {p["pipeline"]: p for p in json.loads(status_out.stdout)["pipelines"]}
    return Measured(wall=wall, peak_rss_mb=usage.ru_maxrss / 1024, code=proc.returncode, report=report,
                    api_calls=rows["customer"]["api_calls"], cpu=cpu)


# ---------------------------------------------------------------------------------- state store
@contextmanager
def state_url(base: str | None, folder: Path) -> Iterator[str]:
    """SQLite in ``folder``; or, for a PostgreSQL URL, a fresh schema of its own, dropped afterwards."""
    if not base:
        yield f"sqlite:///{folder / 'concord.db'}"
        return
    if not base.startswith("postgresql"):
        yield base
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from sync.store import normalise_url

    url = normalise_url(base)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def reset_cursors(url: str) -> None:
    """Forget both customer cursors: the next run re-reads every record from the start."""
    from sync.store import Store

    store = Store.open(url)
    try:
        for system in ("hubspot", "odoo"):
            store.reset_cursor("customer", system, "customer")
    finally:
        store.close()


# ---------------------------------------------------------------------------------- one scenario
def run_scenario(n: int, direction: str, base_state: str | None, keep: bool, profile: Path | None = None,
                 map_workers: int | None = None) -> dict[str, Any]:
    """Fresh simulators and state; initial sync, then a re-read after a cursor reset."""
    folder = Path(tempfile.mkdtemp(prefix=f"concord-bench-{direction}-"))
    try:
        with simulator("sandbox.hubspot", ["--seed", str(n), "--no-rate-limits"], folder) as hub, \
                simulator("sandbox.odoo", [], folder) as odoo, state_url(base_state, folder) as url:
            config = write_config(
                folder, HubSpotAccess(hub.url), OdooAccess(odoo.url), url,
                customer={"direction": direction, **({} if map_workers is None else {"map_workers": map_workers})},
                crm={"rate_limit": 100000, "burst": 1000, "search_rate": 100000},
                erp={"batch_size": ODOO_BATCH})
            setup = concord(config, "setup")
            if setup.returncode != 0:
                raise RuntimeError(f"concord setup failed:\n{setup.stdout}{setup.stderr}")
            sims = (hub, odoo)
            initial = measured_sync(config, sims, profile / f"initial-{direction}-{n}.prof" if profile else None)
            reset_cursors(url)
            reread = measured_sync(config, sims, profile / f"reread-{direction}-{n}.prof" if profile else None)
    finally:
        if keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return {"n": n, "direction": direction, "initial": initial, "reread": reread}


# ---------------------------------------------------------------------------------- report
def per_record(calls: dict[str, dict[str, int]], n: int) -> dict[str, float]:
    return {f"{system}.{kind}": count / n for system, kinds in sorted(calls.items())
            for kind, count in sorted(kinds.items()) if count}


def cpu_line(cpu: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds}" for name, seconds in cpu.items())


def mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(result: dict[str, Any]) -> dict[str, Any]:
    """Print one scenario's figures; return them as plain data."""
    n, initial, reread = result["n"], result["initial"], result["reread"]
    rate = n / initial.seconds
    writes_per_record = initial.write_calls() / n
    figures = {
        "n": n, "direction": result["direction"],
        "initial": {"exit": initial.code, "records_per_s": round(rate), "pipeline_s": round(initial.seconds, 2),
                    "wall_s": round(initial.wall, 2), "peak_rss_mb": round(initial.peak_rss_mb, 1),
                    "read": initial.counts.get("read"), "created": initial.counts.get("created"),
                    "cpu_s": {k: round(v, 1) for k, v in initial.cpu.items()},
                    "write_calls": initial.write_calls(), "write_calls_per_record": round(writes_per_record, 5),
                    "api_calls_per_record": {k: round(v, 5) for k, v in per_record(initial.api_calls, n).items()}},
        "reread": {"exit": reread.code, "records_per_s": round(n / reread.seconds),
                   "pipeline_s": round(reread.seconds, 2), "wall_s": round(reread.wall, 2),
                   "peak_rss_mb": round(reread.peak_rss_mb, 1), "read": reread.counts.get("read"),
                   "echo": reread.counts.get("echo"), "write_calls": reread.write_calls(),
                   "cpu_s": {k: round(v, 1) for k, v in reread.cpu.items()},
                   "api_calls": reread.api_calls},
    }
    i, r = figures["initial"], figures["reread"]
    print(f"\n== initial sync HubSpot -> Odoo, direction {result['direction']}, {n:,} customers ==")
    print(f"  records/s        {i['records_per_s']:>10,}   ({i['pipeline_s']} s in the pipeline, {i['wall_s']} s "
          f"wall; target >= {TARGETS['records_per_s']:,.0f} at 100k: {mark(rate >= TARGETS['records_per_s'])})")
    print(f"  peak RSS         {i['peak_rss_mb']:>10} MB (target <= {TARGETS['peak_rss_mb']:.0f}: "
          f"{mark(initial.peak_rss_mb <= TARGETS['peak_rss_mb'])})")
    print(f"  write calls      {i['write_calls']:>10,}   = {writes_per_record:.4f} per record (target <= "
          f"{TARGETS['writes_per_record']:.2f}: {mark(writes_per_record <= TARGETS['writes_per_record'])})")
    print(f"  read {i['read']:,}, created {i['created']:,}, exit {i['exit']}")
    print(f"  CPU seconds      {cpu_line(i['cpu_s'])}")
    print("  API calls per record by kind:")
    for kind, value in i["api_calls_per_record"].items():
        print(f"    {kind:<18} {value:.5f}")
    print("-- re-read after a cursor reset (nothing changed) --")
    print(f"  records/s        {r['records_per_s']:>10,}   ({r['pipeline_s']} s in the pipeline, {r['wall_s']} s wall)")
    print(f"  peak RSS         {r['peak_rss_mb']:>10} MB")
    print(f"  write calls      {r['write_calls']:>10,}   (must be 0: {mark(r['write_calls'] == 0)}); "
          f"read {r['read']:,}, echo {r['echo']:,}, exit {r['exit']}")
    print(f"  CPU seconds      {cpu_line(r['cpu_s'])}")
    print(f"  API calls: {json.dumps(r['api_calls'], sort_keys=True)}")
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenarios and print their figures; exit 1 if a run failed or wrote on the re-read."""
    parser = argparse.ArgumentParser(prog="python -m bench.customers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="HubSpot companies to seed and sync")
    parser.add_argument("--direction", choices=("crm_to_erp", "both", "all"), default="all",
                        help="customer direction of the config (all: crm_to_erp, then both)")
    parser.add_argument("--state", default=None,
                        help="state store URL (default: SQLite in a temp folder; PostgreSQL: a fresh schema)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (config, logs, SQLite)")
    parser.add_argument("--json", dest="as_json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="run the syncs under cProfile and write their stats to DIR (figures then slower)")
    parser.add_argument("--map-workers", type=int, choices=(0, 1), default=None,
                        help="sync.customer.map_workers of the config (default: Concord's default, 1)")
    args = parser.parse_args(argv)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    directions = ["crm_to_erp", "both"] if args.direction == "all" else [args.direction]
    all_figures = []
    failed = False
    for direction in directions:
        figures = report(run_scenario(args.n, direction, args.state, args.keep, args.profile, args.map_workers))
        all_figures.append(figures)
        failed |= figures["initial"]["exit"] != 0 or figures["reread"]["exit"] != 0
        failed |= figures["reread"]["write_calls"] != 0
    if args.as_json:
        args.as_json.write_text(json.dumps(all_figures, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
