"""Benchmark (``-m slow``): save 100,000 links in batches of 100, each batch with its cursor, as the engine does.

Prints the time taken; it asserts only the outcome (timings vary with the machine).
"""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from sync.store import Link, Store

TOTAL, BATCH = 100_000, 100
T = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.mark.slow
def test_save_100k_links_in_batches_of_100(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    for start in range(0, TOTAL, BATCH):
        links = [Link("customer", str(i), f"E{i}", "h" * 32, "g" * 32, {"name": f"Customer {i}", "n": i},
                      T + timedelta(seconds=i), T + timedelta(seconds=i)) for i in range(start, start + BATCH)]
        with store.transaction() as tx:
            tx.links_by_ids("customer", "crm", [lk.crm_id for lk in links])
            tx.save_links(links)
            tx.set_cursor("customer", "hubspot", "customer", T + timedelta(seconds=start + BATCH - 1),
                          str(start + BATCH - 1), epoch=1)
    elapsed = time.perf_counter() - started
    streamed = sum(1 for _ in store.iter_links("customer"))
    stream_elapsed = time.perf_counter() - started - elapsed
    with capsys.disabled():
        print(f"\n[bench] {store.dialect}: {TOTAL} links in batches of {BATCH} (lookup + upsert + cursor): "
              f"{elapsed:.1f} s ({TOTAL / elapsed:,.0f} links/s); iter_links: {stream_elapsed:.1f} s")
    assert store.count_links("customer") == TOTAL == streamed
    assert store.get_cursor("customer", "hubspot", "customer").record_id == str(TOTAL - 1)  # type: ignore[union-attr]
