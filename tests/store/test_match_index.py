"""Match index: normalised match_on values per system, for first-run matching."""
from __future__ import annotations

from sync.store import Store


def test_replace_lookup_and_size(store: Store) -> None:
    rows = [("email", "a@x.com", "1"), ("email", "b@x.com", "2"), ("email", "a@x.com", "3"),
            ("vat", "DE1", "1")]
    assert store.match_index_replace("customer", "odoo", rows) == 4
    assert store.match_index_size("customer", "odoo") == 4
    found = store.match_lookup("customer", "odoo", "email", ["a@x.com", "zzz", "b@x.com"])
    assert found == {"a@x.com": ["1", "3"], "b@x.com": ["2"]}
    assert store.match_lookup("customer", "odoo", "vat", ["DE1"]) == {"DE1": ["1"]}
    assert store.match_lookup("customer", "hubspot", "email", ["a@x.com"]) == {}


def test_replace_drops_old_rows_of_that_system_only(store: Store) -> None:
    store.match_index_replace("customer", "odoo", [("email", "old@x", "1")])
    store.match_index_replace("customer", "hubspot", [("email", "old@x", "9")])
    store.match_index_replace("customer", "odoo", [("email", "new@x", "1")])
    assert store.match_lookup("customer", "odoo", "email", ["old@x", "new@x"]) == {"new@x": ["1"]}
    assert store.match_lookup("customer", "hubspot", "email", ["old@x"]) == {"old@x": ["9"]}


def test_a_record_has_one_value_per_kind_the_last_wins(store: Store) -> None:
    n = store.match_index_replace("customer", "odoo", [("email", "a@x", "1"), ("email", "b@x", "1")])
    assert n == 1
    assert store.match_lookup("customer", "odoo", "email", ["a@x", "b@x"]) == {"b@x": ["1"]}


def test_add_upserts(store: Store) -> None:
    store.match_index_replace("customer", "odoo", [("email", "a@x", "1")])
    assert store.match_index_add("customer", "odoo", [("email", "c@x", "1"), ("email", "a@x", "2")]) == 2
    assert store.match_lookup("customer", "odoo", "email", ["a@x", "c@x"]) == {"a@x": ["2"], "c@x": ["1"]}
    assert store.match_index_size("customer", "odoo") == 2
    assert store.match_index_add("customer", "odoo", []) == 0


def test_large_streams_are_stored_in_chunks(store: Store) -> None:
    def rows():
        for i in range(2500):
            yield "email", f"user{i}@x", str(i)
        yield "email", "user0@x", "5"  # record 5 (first chunk) again in the last chunk, with a new value

    assert store.match_index_replace("customer", "odoo", rows()) == 2500
    assert store.match_index_size("customer", "odoo") == 2500
    values = [f"user{i}@x" for i in range(0, 2500, 5)]
    found = store.match_lookup("customer", "odoo", "email", values)
    assert found["user0@x"] == ["0", "5"]
    assert "user5@x" not in found
    assert len(found) == len(values) - 1
