"""Links: the ID cross-reference, bulk upserts, batched lookups, streaming."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Self

import pytest
from sqlalchemy import event

from sync.store import Link, Store

T = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _links(n: int, entity: str = "customer", start: int = 0) -> list[Link]:
    return [Link(entity, f"c{i}", f"e{i}", f"hc{i}", f"he{i}", {"name": f"N{i}"}, T, T + timedelta(seconds=i))
            for i in range(start, start + n)]


class StatementCounter:
    """Counts SQL statements sent to the database while active."""

    def __init__(self, store: Store) -> None:
        self.store, self.count = store, 0

    def _on(self, *args: Any) -> None:
        self.count += 1

    def __enter__(self) -> Self:
        event.listen(self.store.engine, "before_cursor_execute", self._on)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.store.engine, "before_cursor_execute", self._on)


def test_save_and_find_by_either_side(store: Store) -> None:
    links = _links(3)
    store.save_links(links)
    assert all(isinstance(lk.id, int) for lk in links)
    by_crm = store.links_by_ids("customer", "crm", ["c0", "c2", "nope"])
    assert set(by_crm) == {"c0", "c2"}
    by_erp = store.links_by_ids("customer", "erp", ["e1"])
    got = by_erp["e1"]
    assert (got.crm_id, got.erp_id, got.crm_hash, got.erp_hash) == ("c1", "e1", "hc1", "he1")
    assert got.base == {"name": "N1"}
    assert got.id == links[1].id
    assert got.deleted is False


def test_datetimes_come_back_aware_utc(store: Store) -> None:
    cet = timezone(timedelta(hours=1))
    store.save_links([Link("customer", "c", "e", crm_updated_at=T.astimezone(cet), synced_at=T)])
    got = store.links_by_ids("customer", "crm", ["c"])["c"]
    assert got.crm_updated_at == T and got.crm_updated_at.utcoffset() == timedelta(0)
    assert got.synced_at == T and got.synced_at.tzinfo is not None
    assert got.erp_updated_at is None


def test_synced_at_defaults_to_now(store: Store) -> None:
    link = Link("customer", "c", "e")
    before = datetime.now(UTC)
    store.save_links([link])
    assert link.synced_at is not None and link.synced_at >= before
    assert store.links_by_ids("customer", "crm", ["c"])["c"].synced_at == link.synced_at


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(Exception, match="naive"):
        store.save_links([Link("customer", "c", "e", crm_updated_at=datetime(2025, 1, 1))])
    assert store.count_links("customer") == 0


def test_base_keeps_decimals_as_normalised_strings(store: Store) -> None:
    store.save_links([Link("customer", "c", "e", base={"credit_limit": Decimal("1000.50"), "tags": ["a"]})])
    assert store.links_by_ids("customer", "crm", ["c"])["c"].base == {"credit_limit": "1000.5", "tags": ["a"]}


def test_save_is_an_upsert_on_entity_and_crm_id(store: Store) -> None:
    first = Link("customer", "c1", "e1", "h1", "h1", {"v": 1}, synced_at=T)
    store.save_links([first])
    second = Link("customer", "c1", "e1", "h2", "h3", {"v": 2}, synced_at=T + timedelta(1), deleted=True)
    store.save_links([second])
    assert second.id == first.id
    got = store.links_by_ids("customer", "crm", ["c1"])["c1"]
    assert (got.crm_hash, got.erp_hash, got.base, got.deleted) == ("h2", "h3", {"v": 2}, True)
    assert got.synced_at == T + timedelta(1)
    assert store.count_links("customer") == 1


def test_entities_are_separate(store: Store) -> None:
    store.save_links([Link("customer", "1", "1"), Link("order", "1", "1")])
    assert store.count_links("customer") == 1 and store.count_links("order") == 1
    store.delete_link("order", "1")
    assert store.count_links("order") == 0
    assert "1" in store.links_by_ids("customer", "crm", ["1"])


def test_a_link_taking_an_erp_id_supersedes_the_old_pair(store: Store) -> None:
    store.save_links([Link("customer", "old", "e1"), Link("customer", "c2", "e2")])
    store.save_links([Link("customer", "new", "e1")])
    assert set(store.links_by_ids("customer", "crm", ["old", "new", "c2"])) == {"new", "c2"}
    assert store.links_by_ids("customer", "erp", ["e1"])["e1"].crm_id == "new"


def test_swapping_erp_ids_between_two_links(store: Store) -> None:
    store.save_links([Link("customer", "a", "x"), Link("customer", "b", "y")])
    store.save_links([Link("customer", "a", "y"), Link("customer", "b", "x")])
    got = store.links_by_ids("customer", "crm", ["a", "b"])
    assert (got["a"].erp_id, got["b"].erp_id) == ("y", "x")


def test_repointing_a_link_to_another_erp_id(store: Store) -> None:
    store.save_links([Link("customer", "a", "x")])
    store.save_links([Link("customer", "a", "z")])
    assert store.links_by_ids("customer", "erp", ["x", "z"]).keys() == {"z"}


def test_duplicates_within_one_batch_last_wins(store: Store) -> None:
    a1, a2 = Link("customer", "a", "x", "h1"), Link("customer", "a", "x", "h2")
    store.save_links([a1, a2])
    assert store.links_by_ids("customer", "crm", ["a"])["a"].crm_hash == "h2"
    assert a1.id == a2.id is not None


def test_delete_link(store: Store) -> None:
    store.save_links(_links(2))
    store.delete_link("customer", "c0")
    store.delete_link("customer", "missing")
    assert set(store.links_by_ids("customer", "crm", ["c0", "c1"])) == {"c1"}


def test_iter_links_streams_everything_in_batches(store: Store) -> None:
    store.save_links(_links(25))
    store.save_links(_links(3, entity="order"))
    got = list(store.iter_links("customer", batch=7))
    assert sorted(lk.crm_id for lk in got) == sorted(f"c{i}" for i in range(25))
    assert [lk.id for lk in got] == sorted(lk.id for lk in got)  # type: ignore[type-var]
    assert store.count_links("customer") == 25
    assert list(store.iter_links("nothing")) == []


def test_iter_links_exact_multiple_of_batch(store: Store) -> None:
    store.save_links(_links(10))
    assert len(list(store.iter_links("customer", batch=5))) == 10


def test_links_by_ids_is_one_query_per_500_ids(store: Store) -> None:
    store.save_links(_links(600))
    ids = [f"c{i}" for i in range(100)]
    with StatementCounter(store) as one:
        assert len(store.links_by_ids("customer", "crm", ids)) == 100
    with StatementCounter(store) as two:
        assert len(store.links_by_ids("customer", "crm", [f"c{i}" for i in range(600)])) == 600
    assert two.count == one.count + 1


def test_saving_links_and_cursor_costs_the_same_for_10_or_100_links(store: Store) -> None:
    def save(n: int, start: int) -> int:
        with StatementCounter(store) as counter, store.transaction() as tx:
            tx.save_links(_links(n, start=start))
            tx.set_cursor("customer:crm", "hubspot", "customer", T + timedelta(seconds=start), str(start))
        return counter.count

    save(1, 10_000)  # the cursor row exists from here on
    small, big = save(10, 0), save(100, 100)
    assert big == small
    assert big <= 8
    assert store.count_links("customer") == 111


def test_links_by_ids_rejects_unknown_system(store: Store) -> None:
    with pytest.raises(ValueError):
        store.links_by_ids("customer", "hubspot", ["1"])  # type: ignore[arg-type]
