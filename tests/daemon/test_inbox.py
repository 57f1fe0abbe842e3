"""The inbox worker: events grouped per (entity, source role), routed by the mapping objects,
synced in batches through sync_ids, marked done only when synced; others' entities left alone."""
from __future__ import annotations

from datetime import timedelta

from sync.store import InboxEvent

from .fakes import stopped

TTL = timedelta(seconds=30)


def ev(system: str, obj: str, record: str, kind: str = "update", n: int = 0) -> InboxEvent:
    return InboxEvent(system=system, event_id=f"{obj}:{record}:{kind}:{n}", object=obj, record_id=record, kind=kind)


def calls(pipelines):
    return sorted((c.entity, c.role, c.ids, c.deleted) for c in pipelines.sync_calls)


def test_events_are_grouped_and_routed_to_entity_and_role(make_daemon, pipelines, clocked_store):
    d = make_daemon()
    d.heartbeat()  # owns customer and product
    clocked_store.inbox_add("hubspot", [ev("hubspot", "companies", "1"), ev("hubspot", "companies", "2"),
                                        ev("hubspot", "companies", "1", n=1), ev("hubspot", "companies", "3", "delete")])
    clocked_store.inbox_add("odoo", [ev("odoo", "res.partner", "5"), ev("odoo", "product.product", "7", "create")])
    assert d.inbox.run_once() == 6
    assert calls(pipelines) == [("customer", "crm", ["1", "2", "3"], ["3"]),
                                ("customer", "erp", ["5"], []),
                                ("product", "erp", ["7"], [])]
    assert all(c.epoch == 1 for c in pipelines.sync_calls)
    assert clocked_store.inbox_pending() == 0


def test_changes_from_a_side_that_is_not_a_source_are_not_synced(make_daemon, pipelines, clocked_store):
    d = make_daemon()
    d.heartbeat()
    # product is erp_to_crm: a HubSpot product change must not be written to Odoo.
    clocked_store.inbox_add("hubspot", [ev("hubspot", "products", "9")])
    d.inbox.run_once()
    assert pipelines.sync_calls == []
    assert clocked_store.inbox_pending() == 0


def test_events_of_entities_not_synced_are_marked_done(make_daemon, pipelines, clocked_store):
    d = make_daemon()
    d.heartbeat()
    clocked_store.inbox_add("hubspot", [ev("hubspot", "deals", "4")])  # order is mapped but not enabled
    clocked_store.inbox_add("odoo", [ev("odoo", "mail.message", "4")])  # not mapped at all: never claimed
    d.inbox.run_once()
    assert pipelines.sync_calls == []
    assert clocked_store.inbox_pending() == 1


def test_ids_are_synced_in_batches_of_100(make_daemon, pipelines, clocked_store):
    d = make_daemon()
    d.heartbeat()
    clocked_store.inbox_add("hubspot", [ev("hubspot", "companies", str(i)) for i in range(250)])
    d.inbox.run_once()
    assert [len(c.ids) for c in pipelines.sync_calls] == [100, 100, 50]
    assert [i for c in pipelines.sync_calls for i in c.ids] == [str(i) for i in range(250)]
    assert clocked_store.inbox_pending() == 0


def test_entities_owned_by_another_instance_are_left_to_it(make_daemon, pipelines, clocked_store):
    clocked_store.acquire_lease("customer", "other", TTL)
    d = make_daemon()
    d.heartbeat()  # gets product only
    clocked_store.inbox_add("hubspot", [ev("hubspot", "companies", "1")])
    clocked_store.inbox_add("odoo", [ev("odoo", "product.product", "7")])
    d.inbox.run_once()
    assert calls(pipelines) == [("product", "erp", ["7"], [])]
    assert clocked_store.inbox_pending() == 1
    # The owner can claim it at once: this instance never held a claim on it.
    assert [e.record_id for e in clocked_store.inbox_claim("other", 10, TTL)] == ["1"]


class StoreSpy:
    """The store, with the names of the methods called through it."""

    def __init__(self, store) -> None:
        self.store, self.called = store, []

    def __getattr__(self, name: str):
        self.called.append(name)
        return getattr(self.store, name)


def test_an_instance_that_owns_no_pipeline_leaves_the_inbox_to_the_owners(make_daemon, pipelines, clocked_store):
    # It may take every webhook (one URL for all instances) and is woken by each: a round must not
    # cost it a store transaction, and the leftovers of unsynced objects wait for an owner.
    for entity in ("customer", "product"):
        clocked_store.acquire_lease(entity, "other", TTL)
    d = make_daemon()
    d.heartbeat()
    clocked_store.inbox_add("hubspot", [ev("hubspot", "companies", "1"), ev("hubspot", "deals", "4")])
    spy = d.inbox.store = StoreSpy(clocked_store)
    assert d.inbox.run_once() == 0
    assert spy.called == [] and pipelines.sync_calls == []
    owner = make_daemon("other")
    owner.heartbeat()
    assert owner.inbox.run_once() == 2
    assert calls(pipelines) == [("customer", "crm", ["1"], [])]
    assert clocked_store.inbox_pending() == 0


def test_a_failed_sync_leaves_the_events_for_a_retry(make_daemon, pipelines, clocked_store, clock):
    d = make_daemon()
    d.heartbeat()
    clocked_store.inbox_add("hubspot", [ev("hubspot", "companies", "1")])
    pipelines.sync_errors["customer"] = RuntimeError("bug")
    d.inbox.run_once()
    assert clocked_store.inbox_pending() == 1
    del pipelines.sync_errors["customer"]
    assert d.inbox.run_once() == 0  # still claimed by the failed attempt
    clock.advance(61)
    d.heartbeat()
    assert d.inbox.run_once() == 1
    assert calls(pipelines) == [("customer", "crm", ["1"], [])]
    assert clocked_store.inbox_pending() == 0


def test_an_unreachable_system_marks_it_failed_and_keeps_the_events(make_daemon, pipelines, clocked_store):
    d = make_daemon()
    d.heartbeat()
    clocked_store.inbox_add("hubspot", [ev("hubspot", "companies", "1")])
    pipelines.sync_errors["customer"] = stopped("odoo")
    d.inbox.run_once()
    assert clocked_store.inbox_pending() == 1
    health = d.readiness()
    assert not health["ready"]
    assert "unreachable" in health["systems"]["odoo"]["last_error"]


def test_the_worker_waits_while_a_poll_of_the_same_entity_runs(make_daemon, pipelines, clocked_store):
    d = make_daemon()
    d.heartbeat()
    clocked_store.inbox_add("hubspot", [ev("hubspot", "companies", "1")])
    clocked_store.inbox_add("odoo", [ev("odoo", "product.product", "7")])
    seen: list[int] = []

    def during_poll(page: int) -> None:
        if page == 0:
            seen.append(d.inbox.run_once())

    pipelines.hooks["customer"] = during_poll
    d.run_pipeline("customer")
    assert seen == [1]  # only the product event: customer is locked by its running poll
    assert calls(pipelines) == [("product", "erp", ["7"], [])]
    assert d.inbox.run_once() == 1
    assert ("customer", "crm", ["1"], []) in calls(pipelines)


def test_due_dead_letters_are_retried_once_per_retry_time(make_daemon, pipelines, clocked_store, clock):
    d = make_daemon()
    d.heartbeat()
    for record_id in ("11", "12"):
        clocked_store.add_dead_letter(pipeline="customer", entity="customer", system="hubspot", record_id=record_id,
                                      payload={}, error_class="ValidationError", error_message="bad",
                                      field="email", backoff=lambda n: timedelta(seconds=30), max_attempts=5)
    clocked_store.add_dead_letter(pipeline="product", entity="product", system="hubspot", record_id="13",
                                  payload={}, error_class="ValidationError", error_message="bad", field=None,
                                  backoff=lambda n: timedelta(seconds=30), max_attempts=5)
    assert d.inbox.retry_dead_letters() == 0  # not due yet
    clock.advance(31)
    d.heartbeat()
    assert d.inbox.retry_dead_letters() == 2
    # hubspot is not a source of product (erp_to_crm): that one waits for a human.
    assert calls(pipelines) == [("customer", "crm", ["11", "12"], [])]
    assert d.inbox.retry_dead_letters() == 0  # unchanged since: not retried in a loop
