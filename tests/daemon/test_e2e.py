"""`concord daemon` as a subprocess against the HubSpot and Odoo simulators: webhooks sync a
change without waiting for the poll, SIGTERM mid-run loses nothing and a restart resumes, and
three daemons on one PostgreSQL survive one of them being SIGKILLed."""
from __future__ import annotations

import json
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest

from connectors.base import id_sort_key
from sandbox.core import Faults
from sandbox.hubspot import HubSpotSimulator
from sync.store import Store

from .procs import HOOK_TOKEN, DaemonProcess, setup_systems, wait_for, write_config

odoo_sim = pytest.importorskip("sandbox.odoo", reason="the Odoo simulator is not written yet")


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


def linked_partners(odoo: Any) -> list[dict[str, Any]]:
    """Odoo partners that carry a HubSpot company id (created or adopted by Concord)."""
    return [p for p in odoo.all("res.partner") if p.get("x_concord_crm_id")]


def partner_for(odoo: Any, company_id: str) -> dict[str, Any] | None:
    return next((p for p in linked_partners(odoo) if p["x_concord_crm_id"] == company_id), None)


def odoo_creates_per_key(odoo: Any) -> Counter[str]:
    """How many times each HubSpot id was sent in a res.partner create call."""
    sent: Counter[str] = Counter()
    for entry in list(odoo.request_log):
        try:
            args = json.loads(entry.body)["params"]["args"]
        except (ValueError, KeyError, TypeError):
            continue
        if len(args) >= 6 and args[3] == "res.partner" and args[4] == "create":
            values = args[5][0] if args[5] else []
            for vals in values if isinstance(values, list) else [values]:
                if isinstance(vals, dict) and vals.get("x_concord_crm_id"):
                    sent[vals["x_concord_crm_id"]] += 1
    return sent


def test_a_change_reaches_the_other_side_by_webhook_without_waiting_for_the_poll(tmp_path: Path, hub, odoo):
    hub.seed_companies(5)
    config = write_config(tmp_path / "concord.yaml", hub=hub, odoo=odoo, every="1h",
                          state_url=f"sqlite:///{tmp_path / 'state.db'}")
    setup_systems(config)
    daemon = DaemonProcess(config, tmp_path)
    try:
        assert daemon.wait_event("web.listening", 30), daemon.tail()
        # Duplicated and reordered deliveries, as HubSpot may send them.
        hub.configure_webhooks(f"{daemon.url}/webhooks/hubspot", duplicate_rate=0.5, reorder=True)
        odoo.webhook_url = f"{daemon.url}/webhooks/odoo?token={HOOK_TOKEN}"
        odoo.webhook_models = {"res.partner"}
        # The first poll runs at start; the next one would be in an hour.
        assert daemon.wait_event("run.finished", 30), daemon.tail()
        assert len(linked_partners(odoo)) == 5

        company = hub.all("companies")[0]
        hub.update("companies", company["id"], {"name": "Renamed In HubSpot"})
        assert wait_for(lambda: partner_for(odoo, company["id"])["name"] == "Renamed In HubSpot", 20), daemon.tail()

        partner = partner_for(odoo, hub.all("companies")[1]["id"])
        odoo.update("res.partner", partner["id"], {"city": "Lyon"})
        assert wait_for(lambda: hub.get("companies", partner["x_concord_crm_id"])["properties"].get("city") == "Lyon",
                        20), daemon.tail()
        assert hub.flush_webhooks(10)
        assert daemon.events("inbox.synced")
        assert len(daemon.events("run.finished")) == 1  # no poll did it
    finally:
        daemon.stop()
    assert daemon.proc.returncode == 0, daemon.tail()
    assert len(hub.all("companies")) == 5 and len(linked_partners(odoo)) == 5
    assert max(odoo_creates_per_key(odoo).values()) == 1


def test_sigterm_mid_run_finishes_the_batch_exits_0_and_a_restart_resumes(tmp_path: Path, hub, odoo):
    total = 300
    hub.seed_companies(total)
    odoo.faults.latency = 0.03  # every Odoo call takes a while: the first run spans many batches
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    config = write_config(tmp_path / "concord.yaml", hub=hub, odoo=odoo, state_url=state_url, page_size=50)
    setup_systems(config)
    first = DaemonProcess(config, tmp_path, instance="first")
    try:
        assert first.wait_event("batch.written", 60), first.tail()
        first.signal(signal.SIGTERM)
        code = first.wait(35)  # the 30 s grace, plus start-up slack
    finally:
        first.stop()
    assert code == 0, first.tail()
    assert first.events("daemon.stopped")[-1]["clean"] is True

    store = Store.open(state_url)
    try:
        links = store.count_links("customer")
        assert 0 < links < total, "SIGTERM was meant to land mid-run"
        # The batch in flight was finished and recorded: every partner written has its link.
        assert len(linked_partners(odoo)) == links
        assert store.last_runs("customer", limit=1)[0].status == "interrupted"

        second = DaemonProcess(config, tmp_path, instance="second")
        try:
            assert wait_for(lambda: store.count_links("customer") == total, 90), second.tail()
            assert second.wait_event("run.finished", 60, lambda e: e.get("status") == "ok"), second.tail()
        finally:
            second.stop()
        assert second.proc.returncode == 0, second.tail()
    finally:
        store.close()
    partners = linked_partners(odoo)
    assert len(partners) == total == len({p["x_concord_crm_id"] for p in partners})
    assert max(odoo_creates_per_key(odoo).values()) == 1
    assert len(hub.all("companies")) == total


def test_a_second_signal_exits_at_once(tmp_path: Path, hub, odoo):
    hub.seed_companies(200)
    odoo.faults.latency = 0.05
    config = write_config(tmp_path / "concord.yaml", hub=hub, odoo=odoo, page_size=50,
                          state_url=f"sqlite:///{tmp_path / 'state.db'}")
    setup_systems(config)
    daemon = DaemonProcess(config, tmp_path)
    try:
        assert daemon.wait_event("batch.written", 60), daemon.tail()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait_event("daemon.signal", 10), daemon.tail()
        daemon.signal(signal.SIGTERM)
        code = daemon.wait(10)
    finally:
        daemon.stop()
    assert code == 130, daemon.tail()
    assert "second signal" in daemon.log_path.read_text()
    assert not daemon.events("daemon.stopped")


class CursorWatch:
    """Samples the customer cursors in a thread, to check they never go backwards."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.samples: dict[str, list[tuple[Any, ...]]] = {"hubspot": [], "odoo": []}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for system, samples in self.samples.items():
                cursor = self.store.get_cursor("customer", system, "customer")
                if cursor is not None:
                    key = (cursor.updated_at, id_sort_key(cursor.record_id))
                    if not samples or samples[-1] != key:
                        samples.append(key)


@pytest.mark.postgres
def test_three_daemons_on_postgresql_survive_one_being_killed(tmp_path: Path, hub, odoo, pg_url):
    total = 300
    hub.seed_companies(total)
    odoo.faults.latency = 0.03
    config = write_config(tmp_path / "concord.yaml", hub=hub, odoo=odoo, state_url=pg_url, every="2s",
                          lease_ttl="3s", page_size=50)
    setup_systems(config)
    store = Store.open(pg_url)
    daemons = [DaemonProcess(config, tmp_path, instance=f"d{i}") for i in (1, 2, 3)]
    try:
        with CursorWatch(store) as cursors:
            def owner_with_progress() -> str | None:
                lease = store.lease_owner("customer")
                return lease.owner if lease is not None and store.count_links("customer") > 0 else None

            victim_id = wait_for(owner_with_progress, 60)
            assert victim_id, "\n".join(d.tail(10) for d in daemons)
            victim = next(d for d in daemons if d.instance == victim_id)
            victim.proc.kill()  # SIGKILL mid-run: no shutdown, no lease release
            assert store.count_links("customer") < total, "the kill was meant to land mid-run"

            def new_owner() -> str | None:
                lease = store.lease_owner("customer")
                return lease.owner if lease is not None and lease.owner != victim_id else None

            # The lease expires 3 s after the last renewal; a survivor's heartbeat (every 1 s) takes it.
            successor = wait_for(new_owner, 15)
            assert successor in {d.instance for d in daemons} - {victim_id}
            assert wait_for(lambda: store.count_links("customer") == total, 120), \
                "\n".join(d.tail(10) for d in daemons)
            assert wait_for(lambda: any(r.status == "ok" and r.instance == successor
                                        for r in store.last_runs("customer", limit=5)), 60)
    finally:
        for d in daemons:
            d.stop()
        store.close()
    survivors = [d for d in daemons if d.instance != victim_id]
    assert [d.proc.returncode for d in survivors] == [0, 0]
    partners = linked_partners(odoo)
    assert len(partners) == total == len({p["x_concord_crm_id"] for p in partners})
    assert max(odoo_creates_per_key(odoo).values()) == 1  # nothing written twice
    assert len(hub.all("companies")) == total
    for system, samples in cursors.samples.items():
        assert samples == sorted(samples), f"the {system} cursor went backwards"
    assert cursors.samples["hubspot"], "the cursor was never seen"
