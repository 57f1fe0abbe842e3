"""Faults on the wire: lost acknowledgements (the write is applied, then the connection drops),
5xx bursts and 429 bursts. The sync may need several runs (exit 3 while a system stays
unreachable is fine), but it converges and never duplicates a customer."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.core import Faults, Simulator

from .conftest import Concord, assert_no_duplicates

CRM_ONLY, ERP_ONLY, SHARED = 120, 120, 20
CUSTOMERS = CRM_ONLY + ERP_ONLY + SHARED
# Quick retries and dead-letter retries: the faults are dense, and the test should not wait minutes.
FAST_RETRIES: dict[str, Any] = {
    "crm": {"max_attempts": 4, "backoff_max": 0.5},
    "erp": {"max_attempts": 4, "backoff_max": 0.5, "batch_size": 40},
    "extra": {"dead_letters": {"backoff_initial": "1s", "backoff_max": "1s"}},
}


def dropped_writes(sim: Simulator) -> int:
    """Write requests the simulator applied (or refused) without answering."""
    return sum(1 for entry in sim.request_log if entry.is_write and entry.status is None)


def converge_and_check(env: Concord) -> None:
    """Sync until clean, then: no duplicates, both sides agree, and a further pass writes nothing."""
    env.sync_until_clean(attempts=10)
    env.hub.faults = Faults()
    env.odoo.faults = Faults()
    assert_no_duplicates(env, companies=CUSTOMERS, partners=CUSTOMERS)
    writes = env.writes()
    again = env.sync()
    assert again.code == 0, str(again)
    assert env.writes() == writes


@pytest.mark.parametrize("system, faults", [
    pytest.param("hubspot", {"paths": r"/batch/upsert$", "seed": 11}, id="hubspot-batch-upsert"),
    pytest.param("odoo", {"seed": 12}, id="odoo-create-and-write"),
])
def test_lost_acknowledgements_do_not_duplicate(make_env: Callable[..., Concord], store_url: str, system: str,
                                                faults: dict[str, Any]) -> None:
    env = make_env(store_url, **FAST_RETRIES)
    env.seed(crm_only=CRM_ONLY, erp_only=ERP_ONLY, shared=SHARED)
    sim: Simulator = env.hub if system == "hubspot" else env.odoo
    sim.faults = Faults(drop_after_rate=0.5, writes_only=True, **faults)
    converge_and_check(env)
    assert dropped_writes(sim) > 0, "no acknowledgement was lost: the fault did not fire"


def test_5xx_burst_on_both_systems(make_env: Callable[..., Concord]) -> None:
    env = make_env(**FAST_RETRIES)
    env.seed(crm_only=CRM_ONLY, erp_only=ERP_ONLY, shared=SHARED)
    env.hub.faults = Faults(error_rate=0.25, seed=21)
    env.odoo.faults = Faults(error_rate=0.25, seed=22)
    converge_and_check(env)
    for sim in (env.hub, env.odoo):
        assert any(entry.status == 503 for entry in sim.request_log), f"{sim.name}: no 5xx was injected"


class RateClock:
    """The HubSpot simulator's rate-limit clock: real time during the sync; outside it (set-up and
    the final check, made in this process) every reading is a window later, so those never wait."""

    def __init__(self) -> None:
        self.real = False
        self._skew = 0.0

    def __call__(self) -> float:
        if not self.real:
            self._skew += 10.0
        return time.monotonic() + self._skew


def test_429_burst_from_a_small_hubspot_burst_limit(make_env: Callable[..., Concord]) -> None:
    # HubSpot sends no Retry-After with its 429s: the client waits out the 10-second window, so one
    # exhausted window costs 10 s. The sync of these few customers takes 7 requests: one 429.
    clock = RateClock()
    env = make_env(hub={"burst_limit": (5, 10.0), "rate_clock": clock})
    env.seed(crm_only=20, erp_only=20, shared=5)
    clock.real = True
    env.sync_until_clean(attempts=3, allowed=(0,))
    clock.real = False
    assert any(entry.status == 429 for entry in env.hub.request_log), "the burst limit was never hit"
    assert_no_duplicates(env, companies=45, partners=45)
