"""Crash safety: an initial sync of 2,000 customers run as a subprocess and SIGKILLed at random
points, then restarted until a run exits 0. Afterwards every customer has exactly one counterpart
on the other side, and one more pass writes nothing.

The simulators run in this process and keep running across the kills, so a request in flight
when the client dies is still applied (a lost acknowledgement, from the client's point of view).
"""
from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.core import Faults, Request, Response

from .conftest import Concord, assert_no_duplicates

CRM_ONLY, ERP_ONLY, SHARED = 800, 800, 200
CUSTOMERS = CRM_ONLY + ERP_ONLY + SHARED  # distinct customers once synced
TOP_UP = 200  # new records per side when a run finishes before it could be killed
# Small pages and batches: more batch boundaries, so kills land between a write and its commit.
# The simulators commit instantly, so no overlap is needed; with one, every restart would re-read
# all the freshly seeded records (seconds of rate-limited HubSpot searches) before reaching new work.
SETTINGS = {"crm": {"page_size": 100, "batch_size": 50}, "erp": {"page_size": 200, "batch_size": 50},
            "customer": {"overlap": "0s"}}
STARTED = b"store.opened"  # logged once the process has its config and store: the sync begins


@dataclass
class Kill:
    """One SIGKILL: how long after the sync began, and the links committed by then."""

    after: float
    links: int


def wait_for_start(proc: subprocess.Popen[bytes], log: Path, offset: int, timeout: float = 30.0) -> bool:
    """Wait until the process logged that the sync began (True) or exited first (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with log.open("rb") as f:
            f.seek(offset)
            if STARTED in f.read():
                return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    raise AssertionError(f"the sync did not start within {timeout}s; see {log}")


def crash_until_done(env: Concord, *, kills: int, seed: int, top_up: Callable[[], None]) -> list[Kill]:
    """SIGKILL ``kills`` runs at random points of their work, then run until one exits 0.

    A run that finishes before it is killed (a fast machine) gets new records to sync
    (``top_up``), so that every kill still lands in a sync with work left.
    """
    rng = random.Random(seed)
    log = env.folder / "sync.log"
    log.touch()
    done: list[Kill] = []
    finished = 0
    while len(done) < kills:
        offset = log.stat().st_size
        proc = env.popen("sync", "customer", log=log)
        if wait_for_start(proc, log, offset):
            delay = rng.uniform(0.05, 1.5)
            time.sleep(delay)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                with env.store() as store:
                    done.append(Kill(delay, store.count_links("customer")))
                continue
        code = proc.wait()
        assert code == 0, f"an unkilled run failed with exit {code}; see {log}"
        finished += 1
        assert finished <= kills, f"runs keep finishing before they can be killed: {done}"
        top_up()
    env.sync_until_clean(attempts=3, allowed=(0,))
    return done


@dataclass
class Seeded:
    """Customers seeded so far (each synced customer must end with exactly one counterpart)."""

    customers: int = 0
    rounds: int = 0


def run_crash_test(env: Concord, *, kills: int, seed: int, latency: float = 0.02) -> None:
    env.configure(log_level="info", **SETTINGS)
    # Data as generated: HubSpot-only companies have no e-mail and about one Odoo company in twenty
    # has none, so matching cannot always hide a link lost in a crash. Top-up partners get e-mails
    # of their own round (another seed round could repeat one, and make a match ambiguous).
    env.seed(crm_only=CRM_ONLY, erp_only=ERP_ONLY, shared=SHARED)
    seeded = Seeded(customers=CUSTOMERS)

    def top_up() -> None:
        seeded.rounds += 1
        env.hub.seed_companies(TOP_UP, faker_seed=seeded.rounds)
        tag = seeded.rounds
        env.odoo.seed_partners(TOP_UP, seed=tag, overrides=lambda i: {
            "is_company": True, "customer_rank": 1, "email": f"billing{i}@round{tag}.example"})
        seeded.customers += 2 * TOP_UP

    env.hub.faults = Faults(latency=latency)
    env.odoo.faults = Faults(latency=latency)
    history = crash_until_done(env, kills=kills, seed=seed, top_up=top_up)

    assert len(history) == kills
    # The kills must have hit a sync in progress, not only its start-up or an idle tail.
    assert any(0 < k.links < seeded.customers for k in history), history
    env.hub.faults = Faults()
    env.odoo.faults = Faults()
    assert_no_duplicates(env, companies=seeded.customers, partners=seeded.customers)
    writes = env.writes()
    again = env.sync()
    assert again.code == 0, str(again)
    assert env.writes() == writes, "a pass after convergence wrote to a system"
    counts = again.json()[0]["counts"]
    assert counts["created"] == counts["updated"] == counts["updated_back"] == 0
    # The killed runs' rows were closed by the runs after them, not left 'running' for ever.
    with env.store() as store:
        runs = store.last_runs("customer", limit=1000)
    abandoned = [r for r in runs if r.status == "interrupted" and "abandoned" in (r.error or "")]
    assert abandoned and all(r.status == "ok" or r in abandoned for r in runs), [(r.status, r.error) for r in runs]
    assert len(abandoned) <= kills


def test_sigkill_during_initial_sync_leaves_no_duplicates(make_env: Callable[..., Concord], store_url: str) -> None:
    run_crash_test(make_env(store_url), kills=10, seed=20240611)


@pytest.mark.slow
def test_fifty_sigkills_during_initial_sync(make_env: Callable[..., Concord], store_url: str) -> None:
    run_crash_test(make_env(store_url), kills=50, seed=7)


def is_partner_create(request: Request) -> bool:
    try:
        args = request.json()["params"]["args"]
    except (ValueError, KeyError, TypeError):
        return False
    return list(args[3:5]) == ["res.partner", "create"]


def is_company_upsert(request: Request) -> bool:
    return request.path == "/crm/v3/objects/companies/batch/upsert"


@pytest.mark.parametrize("system, applied", [
    pytest.param("odoo", is_partner_create, id="odoo-create"),
    pytest.param("hubspot", is_company_upsert, id="hubspot-upsert"),
])
def test_killed_right_after_a_write_is_applied(make_env: Callable[..., Concord], system: str,
                                               applied: Callable[[Request], bool]) -> None:
    """The sync dies the moment a system has applied its first create batch: before the answer
    arrives, so before the links and the cursor are committed. The restart must adopt, not duplicate.
    Customers without an e-mail, so that matching cannot paper over a lost link."""
    env = make_env()
    env.setup_systems()
    env.hub.seed_companies(30)
    env.odoo.seed_partners(30, overrides={"is_company": True, "customer_rank": 1, "email": False})
    sim = env.hub if system == "hubspot" else env.odoo
    victim: dict[str, subprocess.Popen[bytes]] = {}
    killed = threading.Event()

    def kill_on_apply(request: Request, response: Response) -> None:
        if not killed.is_set() and response.status < 300 and applied(request):
            killed.set()
            victim["proc"].send_signal(signal.SIGKILL)

    sim.observers.append(kill_on_apply)
    victim["proc"] = env.popen("sync", "customer", log=env.folder / "sync.log")
    code = victim["proc"].wait(timeout=120)
    assert killed.is_set() and code == -signal.SIGKILL, f"exit {code}: the kill did not happen"
    sim.observers.remove(kill_on_apply)

    env.sync_until_clean(attempts=3, allowed=(0,))
    assert_no_duplicates(env, companies=60, partners=60)
    writes = env.writes()
    assert env.sync().code == 0
    assert env.writes() == writes
