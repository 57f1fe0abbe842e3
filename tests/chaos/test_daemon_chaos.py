"""Chaos for `concord daemon`: polling every second and taking both products' webhooks (HubSpot's
duplicated and reordered), under every fault at once, SIGKILLed at random points and restarted;
then the invariants of test_chaos.py."""
from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.core import Faults
from tests.daemon.procs import DaemonProcess, wait_for
from tests.e2e.conftest import Concord

from .killer import Killer, KillPoint
from .test_chaos import ALL_FAULTS, CHAOS_CONFIG, assert_recovered, chaos_env
from .workload import Workload
from .world import CursorWatch, FaultTally, duplicates, read_cursors, record_figures

HOOK_TOKEN = "odoo-chaos-hook-token-5a6b7c"


def daemon_env(make_env: Callable[..., Concord]) -> Concord:
    env = chaos_env(make_env)
    env.configure(customer={"every": "1s"}, crm=CHAOS_CONFIG["crm"],
                  erp={**CHAOS_CONFIG["erp"], "webhook_token": HOOK_TOKEN},
                  extra={**CHAOS_CONFIG["extra"], "daemon": {"lease_ttl": "3s"}}, log_level="info")
    return env


def start_daemon(env: Concord, folder: Path, n: int) -> DaemonProcess:
    """A daemon on a free port; both products send their webhooks to it (HubSpot duplicating and
    reordering them)."""
    # A new instance name per start: its own log file; it takes the lease once the dead one's expires.
    daemon = DaemonProcess(env.config, folder, instance=f"chaos-{n}")
    env.hub.configure_webhooks(f"{daemon.url}/webhooks/hubspot", client_secret=env.hub.client_secret,
                               duplicate_rate=0.3, reorder=True, seed=n, timeout=1.0, max_retries=1)
    env.odoo.webhook_url = f"{daemon.url}/webhooks/odoo"
    env.odoo.webhook_models = {"res.partner"}
    env.odoo.webhook_headers = {"X-Concord-Token": HOOK_TOKEN}
    return daemon


def daemon_chaos(make_env: Callable[..., Concord], tmp_path: Path, *, kills: int, seed: int, name: str) -> None:
    rng = random.Random(seed)
    env = daemon_env(make_env)
    workload = Workload(env.hub, env.odoo, env.state_url, rng)
    workload.seed(crm=10, erp=10, both=4)
    tally = FaultTally(env.hub, env.odoo)
    watch = CursorWatch()
    for n, sim in enumerate((env.hub, env.odoo)):
        sim.faults = Faults(**ALL_FAULTS, seed=seed * 10 + n)
    killer = Killer(env)
    points: list[KillPoint] = []
    daemons: list[DaemonProcess] = []
    try:
        def start() -> Any:
            daemons.append(start_daemon(env, tmp_path, len(points)))
            return daemons[-1].proc

        while len(points) < kills:
            workload.round(4)
            point, code = killer.run(start, rng.randint(5, 60), deadline=rng.uniform(3, 8))
            assert point is not None, f"the daemon exited by itself ({code}):\n{daemons[-1].tail()}"
            points.append(point)
            watch.check(read_cursors(env.state_url))
            assert not duplicates(env.hub, env.odoo), f"a duplicate appeared after a kill at {point}"
        # Recovery by the daemon itself, faults off: it runs until a pass that finds nothing to do.
        for sim in (env.hub, env.odoo):
            tally.absorb(sim)
            sim.faults = Faults()
        last = start_daemon(env, tmp_path, kills)
        daemons.append(last)

        def quiet_run() -> bool:
            runs = [e for e in last.events("run.finished") if e.get("entity") == "customer"]
            return any(e.get("status") == "ok" and not any(e.get(k) for k in ("created", "updated", "updated_back",
                                                                                "archived", "dead_letters"))
                       for e in runs[1:])

        assert wait_for(quiet_run, timeout=120, interval=0.5), last.tail()
        last.signal()
        assert last.wait(40) == 0, last.tail()
    finally:
        env.hub.webhooks.target_url = None
        env.odoo.webhook_url = None
        for d in daemons:
            d.stop()
    figures = assert_recovered(env, workload, watch)
    counts = tally.counts()
    record_figures(name, kills=len(points), kill_points=len({(p.request, p.system) for p in points}),
                   kills_by_timer=sum(p.system == "timer" for p in points), customers=len(workload.ledger.customers),
                   user_edits=workload.edits, faults_injected=sum(counts.values()), faults=dict(counts),
                   webhook_deliveries=len(env.hub.webhook_deliveries) + len(env.odoo.webhook_deliveries),
                   cursor_checks=watch.checks, duplicates=0, lost=0, **figures)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_daemon_sigkilled_under_all_faults_converges(make_env: Callable[..., Concord], tmp_path: Path) -> None:
    daemon_chaos(make_env, tmp_path, kills=20, seed=20, name="daemon_chaos_long")
