"""Large passes map records in a worker process: the same canonical content as the sync process,
a record the worker cannot map is mapped again (and reported) by the sync process, and small
passes never start a worker."""
from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from typing import Any

import phonenumbers
import pytest

from connectors.base import NativeRecord
from sandbox.hubspot.seed import seed_company
from sync import transforms
from sync.map_workers import START_AFTER, MapWorker, PageMapper
from sync.mapping import RecordError, load_default_mapping
from sync.merge import flat_canonical

MAPPING = load_default_mapping("hubspot")
EM = MAPPING.entity("customer")
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def records(n: int, start: int = 0) -> list[NativeRecord]:
    rng = random.Random(start)
    names: set[str] = set()
    domains: set[str] = set()
    return [NativeRecord(id=str(start + i), updated_at=NOW, data=seed_company(rng, names, domains)) for i in range(n)]


def test_the_worker_maps_as_the_sync_process_and_leaves_bad_records_to_it() -> None:
    transforms._PHONE_MEMO.clear()
    recs = records(30)
    recs[7] = NativeRecord(id="bad", updated_at=NOW, data={"name": "Sunken Ltd", "country": "Atlantis"})
    worker = MapWorker(MAPPING, "customer")
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while not worker.ready():
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.02)
        mapped = worker.map([r.data for r in recs])
    finally:
        worker.close()
    assert mapped[7] is None
    # The phone numbers it normalised are known here now: reading back what a write sends
    # does not parse them again in the sync process.
    phones = [c["phone"] for c in mapped if c is not None and c.get("phone")]
    assert phones and all((p, "", phonenumbers.PhoneNumberFormat.E164) in transforms._PHONE_MEMO for p in phones)
    for rec, got in zip(recs, mapped, strict=True):
        if rec.id != "bad":
            assert got == flat_canonical(EM, rec.data)


class FakeWorker:
    """Stands in for MapWorker: maps in process, records when it was started and used."""

    def __init__(self, *, ready: bool = True, fail: bool = False) -> None:
        self.started_at: int | None = None
        self.pages = 0
        self._ready, self._fail = ready, fail
        self.closed = False

    def start(self) -> None:
        if self.started_at is None:
            self.started_at = self.pages

    def ready(self) -> bool:
        return self.started_at is not None and self._ready

    def map(self, datas: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        self.pages += 1
        if self._fail:
            raise RuntimeError("worker died")
        out: list[dict[str, Any] | None] = []
        for d in datas:
            try:
                out.append(flat_canonical(EM, d))
            except RecordError:
                out.append(None)
        return out

    def close(self) -> None:
        self.closed = True


def test_the_worker_starts_only_once_a_pass_is_large() -> None:
    fake = FakeWorker()
    mapper = PageMapper(EM, fake)  # type: ignore[arg-type]
    page = records(200)
    read = 0
    while read + len(page) < START_AFTER:
        mapper.map(page)
        read += len(page)
        assert fake.started_at is None and fake.pages == 0
    mapper.map(page)
    assert fake.started_at is not None and fake.pages == 1


def test_a_record_the_worker_cannot_map_raises_its_error_in_the_sync_process() -> None:
    fake = FakeWorker()
    mapper = PageMapper(EM, fake)  # type: ignore[arg-type]
    mapper.read = START_AFTER
    bad = NativeRecord(id="bad", updated_at=NOW, data={"name": "Sunken Ltd", "country": "Atlantis"})
    good = records(3)
    out = mapper.map([good[0], bad, *good[1:]])
    assert fake.pages == 1
    assert isinstance(out[id(bad)][1], RecordError) and out[id(bad)][1].field == "country"
    assert out[id(good[0])][1] == flat_canonical(EM, good[0].data)


@pytest.mark.parametrize("ready", [False, True])
def test_a_worker_not_ready_or_broken_leaves_the_mapping_to_the_sync_process(ready: bool) -> None:
    fake = FakeWorker(ready=ready, fail=True)
    mapper = PageMapper(EM, fake)  # type: ignore[arg-type]
    mapper.read = START_AFTER
    page = records(5)
    for _ in range(3):
        out = mapper.map(page)
        assert [out[id(r)][1] for r in page] == [flat_canonical(EM, r.data) for r in page]
    assert fake.pages == (1 if ready else 0)  # a broken worker is not asked again
    assert fake.closed == ready


def test_the_worker_ends_with_a_sync_process_killed_with_sigkill(tmp_path: Any) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from sync.mapping import load_default_mapping\n"
        "from sync.map_workers import MapWorker\n"
        "w = MapWorker(load_default_mapping('hubspot'), 'customer')\n"
        "w.start()\n"
        "while not w.ready():\n"
        "    time.sleep(0.02)\n"
        "print('WORKER', w._proc.pid, flush=True)\n"
        "time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        line = ""
        while not line.startswith("WORKER"):
            line = parent.stdout.readline()  # type: ignore[union-attr]
            assert line, "the parent ended before starting its worker"
        worker_pid = int(line.split()[1])
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 10
    while _alive(worker_pid):
        assert time.monotonic() < deadline, "the map worker outlived its killed parent"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
