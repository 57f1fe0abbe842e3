"""Write intents: the writes in flight, inserted in one statement per batch and cleared by id."""
from __future__ import annotations

from sync.store import Link, Store, WriteIntent


def intent(crm_id: str | None, erp_id: str | None, *, source: str = "crm", name: str = "Acme") -> WriteIntent:
    return WriteIntent(entity="customer", source=source, crm_id=crm_id, erp_id=erp_id,  # type: ignore[arg-type]
                       base={"crm": {"name": name}, "erp": {"name": name}}, written={"crm": [], "erp": ["name"]},
                       is_create=erp_id is None)


def test_added_intents_get_ids_in_order_and_read_back_by_either_id(store: Store) -> None:
    batch = [intent(str(i), None if i % 2 else f"e{i}") for i in range(5)]
    store.add_intents(batch)
    ids = [i.id for i in batch]
    assert None not in ids and ids == sorted(ids)
    assert all(i.created_at is not None for i in batch)
    found = store.intents_for("customer", crm_ids=["1"], erp_ids=["e2", "e4", "nope"])
    assert [(i.crm_id, i.erp_id) for i in found] == [("1", None), ("2", "e2"), ("4", "e4")]
    assert found[0].is_create and not found[1].is_create
    assert found[1].base == {"crm": {"name": "Acme"}, "erp": {"name": "Acme"}}
    assert found[1].written == {"crm": [], "erp": ["name"]}
    assert store.intents_for("product", crm_ids=["1"]) == []
    assert store.intents_for("customer") == []


def test_an_intent_named_by_both_ids_is_returned_once_oldest_first(store: Store) -> None:
    first, second = intent("c1", "e1", name="Old"), intent("c1", "e1", source="erp", name="New")
    store.add_intents([first])
    store.add_intents([second])
    found = store.intents_for("customer", crm_ids=["c1"], erp_ids=["e1"])
    assert [i.base["crm"]["name"] for i in found] == ["Old", "New"]


def test_cleared_with_the_links_in_one_transaction(store: Store) -> None:
    batch = [intent(f"c{i}", f"e{i}") for i in range(3)]
    store.add_intents(batch)
    assert store.count_intents() == 3 and store.count_intents("customer") == 3
    with store.transaction() as tx:
        tx.save_links([Link(entity="customer", crm_id="c0", erp_id="e0")])
        assert tx.clear_intents([batch[0].id or 0, batch[1].id or 0, 999_999]) == 2
    assert [i.crm_id for i in store.intents_for("customer", crm_ids=["c0", "c1", "c2"])] == ["c2"]
    assert store.clear_intents([]) == 0


def test_a_rolled_back_batch_keeps_its_intents(store: Store) -> None:
    batch = [intent("c1", "e1")]
    store.add_intents(batch)
    try:
        with store.transaction() as tx:
            tx.clear_intents([batch[0].id or 0])
            raise RuntimeError("the process died before the commit")
    except RuntimeError:
        pass
    assert store.count_intents("customer") == 1


def test_many_ids_are_looked_up_and_cleared_in_chunks(store: Store) -> None:
    batch = [intent(f"c{i}", f"e{i}") for i in range(1200)]
    store.add_intents(batch)
    assert len(store.intents_for("customer", crm_ids=[f"c{i}" for i in range(1200)])) == 1200
    assert store.clear_intents([i.id or 0 for i in batch]) == 1200
    assert store.count_intents() == 0
