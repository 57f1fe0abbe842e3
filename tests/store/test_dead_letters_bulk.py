"""Closing many dead letters at once (the pipeline does it once per page, not once per record)."""
from datetime import timedelta

from sync.store import Store


def _add(store: Store, record_id: str) -> None:
    store.add_dead_letter(pipeline="customer", entity="customer", system="hubspot", record_id=record_id,
                          payload={}, error_class="ValidationError", error_message="bad", field="name",
                          backoff=lambda n: timedelta(seconds=30), max_attempts=5)


def test_resolve_dead_letters_closes_only_the_named_open_ones(store: Store) -> None:
    for rid in ("1", "2", "3"):
        _add(store, rid)
    assert store.resolve_dead_letters("customer", "hubspot", ["1", "3", "99"]) == 2
    assert [d.record_id for d in store.list_dead_letters()] == ["2"]
    assert store.resolve_dead_letters("customer", "hubspot", ["1"]) == 0  # already closed
    assert store.resolve_dead_letters("customer", "odoo", ["2"]) == 0     # another system's record
    with store.transaction() as tx:
        assert tx.resolve_dead_letters("customer", "hubspot", ["2"]) == 1
    assert store.count_dead_letters() == 0
