"""Cursors: never backwards, fenced by lease epochs, and atomic with the links of a page."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.base import Watermark
from sync.store import Link, StaleEpoch, Store

T = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)
KEY = ("customer:crm->erp", "hubspot", "customer")


def test_no_cursor_before_the_first_run(store: Store) -> None:
    assert store.get_cursor(*KEY) is None


def test_set_and_get(store: Store) -> None:
    store.set_cursor(*KEY, T, "42")
    c = store.get_cursor(*KEY)
    assert c is not None
    assert (c.updated_at, c.record_id, c.epoch) == (T, "42", 0)
    assert c.updated_at.tzinfo is not None and c.changed_at is not None and c.changed_at.tzinfo is not None
    assert c.watermark == Watermark(T, "42")


def test_cursors_are_keyed_by_pipeline_system_and_entity(store: Store) -> None:
    store.set_cursor("p1", "hubspot", "customer", T, "1")
    store.set_cursor("p1", "odoo", "customer", T, "2")
    store.set_cursor("p2", "hubspot", "customer", T, "3")
    assert [store.get_cursor(*k).record_id for k in  # type: ignore[union-attr]
            [("p1", "hubspot", "customer"), ("p1", "odoo", "customer"), ("p2", "hubspot", "customer")]] == \
        ["1", "2", "3"]


def test_advances_in_time(store: Store) -> None:
    store.set_cursor(*KEY, T, "9")
    store.set_cursor(*KEY, T + timedelta(seconds=1), "1")
    assert store.get_cursor(*KEY).watermark == Watermark(T + timedelta(seconds=1), "1")  # type: ignore[union-attr]


def test_never_moves_back_in_time(store: Store) -> None:
    store.set_cursor(*KEY, T, "5")
    store.set_cursor(*KEY, T - timedelta(microseconds=1), "999")
    assert store.get_cursor(*KEY).watermark == Watermark(T, "5")  # type: ignore[union-attr]


def test_same_time_compares_numeric_ids_as_numbers(store: Store) -> None:
    store.set_cursor(*KEY, T, "10")
    store.set_cursor(*KEY, T, "9")  # "9" > "10" as text, but 9 < 10
    assert store.get_cursor(*KEY).record_id == "10"  # type: ignore[union-attr]
    store.set_cursor(*KEY, T, "11")
    assert store.get_cursor(*KEY).record_id == "11"  # type: ignore[union-attr]


def test_same_time_text_ids_compare_as_text(store: Store) -> None:
    store.set_cursor(*KEY, T, "b")
    store.set_cursor(*KEY, T, "a")
    assert store.get_cursor(*KEY).record_id == "b"  # type: ignore[union-attr]


def test_other_time_zones_are_compared_as_instants(store: Store) -> None:
    store.set_cursor(*KEY, T, "1")
    earlier_looking_later = (T - timedelta(minutes=1)).astimezone(timezone(timedelta(hours=5)))
    store.set_cursor(*KEY, earlier_looking_later, "2")
    assert store.get_cursor(*KEY).updated_at == T  # type: ignore[union-attr]


def test_naive_updated_at_is_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        store.set_cursor(*KEY, datetime(2025, 1, 1), "1")


def test_stale_epoch_is_fenced_off(store: Store) -> None:
    store.set_cursor(*KEY, T, "1", epoch=2)
    with pytest.raises(StaleEpoch) as err:
        store.set_cursor(*KEY, T + timedelta(hours=1), "2", epoch=1)
    assert (err.value.stored, err.value.given) == (2, 1)
    c = store.get_cursor(*KEY)
    assert c is not None and (c.record_id, c.epoch) == ("1", 2)


def test_newer_epoch_takes_over_and_is_recorded(store: Store) -> None:
    store.set_cursor(*KEY, T, "1", epoch=1)
    store.set_cursor(*KEY, T + timedelta(seconds=1), "2", epoch=3)
    assert store.get_cursor(*KEY).epoch == 3  # type: ignore[union-attr]
    with pytest.raises(StaleEpoch):
        store.set_cursor(*KEY, T + timedelta(seconds=2), "3", epoch=2)


def test_newer_epoch_is_recorded_even_when_the_position_does_not_move(store: Store) -> None:
    store.set_cursor(*KEY, T, "5", epoch=1)
    store.set_cursor(*KEY, T - timedelta(days=1), "1", epoch=4)
    c = store.get_cursor(*KEY)
    assert c is not None and (c.updated_at, c.record_id, c.epoch) == (T, "5", 4)
    with pytest.raises(StaleEpoch):
        store.set_cursor(*KEY, T + timedelta(days=1), "6", epoch=1)


def test_no_epoch_means_no_fencing_and_keeps_the_stored_epoch(store: Store) -> None:
    store.set_cursor(*KEY, T, "1", epoch=7)
    store.set_cursor(*KEY, T + timedelta(seconds=1), "2")
    c = store.get_cursor(*KEY)
    assert c is not None and (c.record_id, c.epoch) == ("2", 7)


def test_first_write_with_epoch_stores_it(store: Store) -> None:
    store.set_cursor(*KEY, T, "1", epoch=5)
    assert store.get_cursor(*KEY).epoch == 5  # type: ignore[union-attr]


def test_reset(store: Store) -> None:
    store.set_cursor(*KEY, T, "1")
    store.reset_cursor(*KEY)
    assert store.get_cursor(*KEY) is None
    store.set_cursor(*KEY, T - timedelta(days=30), "1")  # after a reset it may start earlier
    assert store.get_cursor(*KEY).updated_at == T - timedelta(days=30)  # type: ignore[union-attr]


def test_links_and_cursor_commit_together(store: Store) -> None:
    with store.transaction() as tx:
        tx.save_links([Link("customer", "c1", "e1")])
        tx.set_cursor(*KEY, T, "1")
        assert tx.count_links("customer") == 1
    assert store.count_links("customer") == 1 and store.get_cursor(*KEY) is not None


def test_a_fenced_cursor_rolls_back_the_links_of_its_page(store: Store) -> None:
    store.set_cursor(*KEY, T, "1", epoch=2)
    with pytest.raises(StaleEpoch), store.transaction() as tx:
        tx.save_links([Link("customer", "c1", "e1")])
        tx.set_cursor(*KEY, T + timedelta(seconds=1), "2", epoch=1)
    assert store.count_links("customer") == 0


def test_store_methods_inside_a_transaction_join_it(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.save_links([Link("customer", "c1", "e1")])
        assert store.count_links("customer") == 1  # sees its own uncommitted write
        raise RuntimeError("boom")
    assert store.count_links("customer") == 0
