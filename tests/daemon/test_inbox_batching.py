"""The inbox worker against the simulators: a round of webhook events costs one batch re-read per
side, whatever the number of events (HubSpot's 190 calls per 10 s would otherwise cap the daemon
near 17 events/s), and duplicates or stale events cost no write."""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.core import Faults
from sandbox.hubspot import HubSpotSimulator
from sync.cli import run_sync
from sync.config import load_config
from sync.daemon import Daemon
from sync.runtime import build_runtime
from sync.store import InboxEvent

from .procs import setup_systems, write_config

odoo_sim = pytest.importorskip("sandbox.odoo", reason="the Odoo simulator is not written yet")

N = 30


@pytest.fixture
def hub() -> Iterator[HubSpotSimulator]:
    sim = HubSpotSimulator().start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def odoo() -> Iterator[Any]:
    sim = odoo_sim.OdooSimulator(log_bodies=True, faults=Faults()).start()
    try:
        yield sim
    finally:
        sim.stop()


def odoo_methods(odoo: Any) -> Counter[str]:
    """JSON-RPC ``execute_kw`` calls on res.partner by method."""
    out: Counter[str] = Counter()
    for entry in list(odoo.request_log):
        try:
            args = json.loads(entry.body)["params"]["args"]
        except (ValueError, KeyError, TypeError):
            continue
        if len(args) >= 5 and args[3] == "res.partner":
            out[args[4]] += 1
    return out


def change_event(company_id: str, n: int) -> InboxEvent:
    return InboxEvent(system="hubspot", event_id=f"bench-{company_id}-{n}", object="companies",
                      record_id=company_id, kind="update")


def test_a_round_of_events_is_one_batch_read_per_side(tmp_path: Path, hub, odoo) -> None:
    hub.seed_companies(N)
    path = write_config(tmp_path / "concord.yaml", hub=hub, odoo=odoo, state_url=f"sqlite:///{tmp_path / 's.db'}")
    setup_systems(path)
    config = load_config(path)
    rt = build_runtime(config)
    try:
        assert run_sync(rt, ["customer"])[0] == 0  # every company linked to a partner
    finally:
        rt.close()
    ids = [c["id"] for c in hub.all("companies")]
    for n, company_id in enumerate(ids):
        hub.update("companies", company_id, {"city": f"city-{n}"})

    d = Daemon(config, instance="me", serve_web=False)
    assert d._connect()
    try:
        d.heartbeat()
        assert d.rt is not None and d.leases is not None and d.leases.holds("customer")
        # Every change twice, the second copy out of order: as HubSpot may deliver them.
        events = [change_event(i, 1) for i in ids] + [change_event(i, 0) for i in reversed(ids)]
        assert d.rt.store.inbox_add("hubspot", events) == 2 * N
        hub.reset_log()
        odoo.reset_log()

        assert d.inbox is not None and d.inbox.run_once() == 2 * N

        assert hub.counts == Counter({"POST batch/read": 1})
        methods = odoo_methods(odoo)
        assert methods["write"] == N and methods["create"] == 0
        assert methods["search_read"] + methods["read"] == 1, methods  # (and a one-off fields_get)
        assert d.rt.store.inbox_pending() == 0
        partners = {p["x_concord_crm_id"]: p for p in odoo.all("res.partner") if p.get("x_concord_crm_id")}
        assert {cid: partners[cid]["city"] for cid in ids} == {cid: f"city-{n}" for n, cid in enumerate(ids)}

        # The same changes again (a redelivery with new ids): re-read, nothing to write.
        d.rt.store.inbox_add("hubspot", [change_event(i, 2) for i in ids])
        hub.reset_log()
        odoo.reset_log()
        assert d.inbox.run_once() == N
        assert hub.counts == Counter({"POST batch/read": 1})
        assert odoo_methods(odoo)["write"] == 0
    finally:
        d.shutdown(timeout=10)
