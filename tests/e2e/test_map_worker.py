"""A large pass maps its records in a worker process (sync/map_workers.py): the outcome is the
one the sync process alone gives, a record only the sync process can report is still a dead
letter naming its field, and the worker is gone when the pass ends."""
from __future__ import annotations

import os
import subprocess
import time
from typing import Any

import pytest

from sync.map_workers import MapWorker
from sync.pipeline import EntityPipeline

from .conftest import Concord


def workers_alive() -> list[str]:
    """Running `python -m sync.map_workers` processes that are children of this one."""
    me = str(os.getpid())
    out = subprocess.run(["ps", "-o", "pid=,ppid=,args=", "--ppid", me], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "sync.map_workers" in line]


def test_a_large_pass_maps_in_a_worker_with_the_same_outcome(env: Concord, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sync.map_workers.START_AFTER", 1)
    # Wait for the worker instead of mapping in process while it starts, so every page goes through it.
    real_ready = MapWorker.ready

    def waiting_ready(self: MapWorker) -> bool:
        deadline = time.monotonic() + 60
        while self._proc is not None and not real_ready(self) and time.monotonic() < deadline:
            time.sleep(0.02)
        return real_ready(self)

    monkeypatch.setattr(MapWorker, "ready", waiting_ready)
    pages: list[int] = []
    real_map = MapWorker.map

    def counting_map(self: MapWorker, datas: Any) -> Any:
        pages.append(len(datas))
        return real_map(self, datas)

    monkeypatch.setattr(MapWorker, "map", counting_map)
    env.seed(crm_only=450, erp_only=20, shared=30)
    atlantis = env.hub.create("companies", {"name": "Sunken Trading Ltd", "country": "Atlantis"})
    with env.runtime() as rt:
        report = EntityPipeline(rt, "customer").run()
    assert sum(pages) > 400, pages  # the HubSpot pages after the first went through the worker
    counts = report.by_direction["crm_to_erp"]
    assert counts.created == 450 and counts.matched == 30 and counts.dead_letters == 1
    with env.store() as store:
        (letter,) = store.list_dead_letters()
    assert letter.record_id == atlantis and letter.field == "country" and "Atlantis" in letter.error_message
    agreement = env.agreement()
    assert agreement.linked == 500 and not agreement.differences, agreement
    assert not agreement.unlinked_crm and not agreement.unlinked_erp and agreement.unmappable == [f"hubspot:{atlantis}"]
    assert not workers_alive()
    writes = env.writes()
    assert env.sync().code == 1 and env.writes() == writes  # only the dead letter is left; nothing rewritten


def test_a_changed_linked_record_is_mapped_once_per_pass(env: Concord, monkeypatch: pytest.MonkeyPatch) -> None:
    from sync.mapping import EntityMapping
    env.seed(crm_only=5)
    assert env.sync().code == 0
    company = env.hub.all("companies")[0]
    env.hub.update("companies", company["id"], {"name": "Renamed Once Ltd"})
    mapped: list[EntityMapping] = []
    real = EntityMapping.to_canonical

    def counting(self: EntityMapping, data: Any) -> Any:
        if data.get("name") == "Renamed Once Ltd":
            mapped.append(self)
        return real(self, data)

    monkeypatch.setattr(EntityMapping, "to_canonical", counting)
    with env.runtime() as rt:
        counts = EntityPipeline(rt, "customer").sync_direction("crm", "erp")
        hubspot = rt.crm.entity("customer")
    assert counts.updated == 1
    # Mapped once to see it is no echo; the merge and the write use that same content.
    assert sum(1 for em in mapped if em is hubspot) == 1, mapped
