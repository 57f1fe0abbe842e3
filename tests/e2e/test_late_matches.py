"""match_on after the first run: the same customer typed into both products later (or announced by a
webhook before its pass) is matched, not created twice. The match index covers what Concord has seen;
the rest is searched on the target, one search per batch and key, never on the initial sync."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from connectors.base import ValidationError
from sync.pipeline import EntityPipeline
from sync.runtime import Runtime

from .conftest import Concord


def company_ids(env: Concord, email: str) -> list[str]:
    return [c["id"] for c in env.hub.all("companies")
            if (c["properties"].get("company_email") or "").casefold() == email.casefold()]


def partner_ids(env: Concord, email: str) -> list[int]:
    return [p["id"] for p in env.partners() if (p.get("email") or "").casefold() == email.casefold()]


def type_into_both(env: Concord, email: str, name: str) -> tuple[str, int]:
    hub = env.hub.create("companies", {"name": name, "company_email": email.upper(), "city": "Leeds"})
    odoo = env.odoo.create("res.partner", {"name": name, "email": email.lower(), "city": "Leeds",
                                           "is_company": True, "customer_rank": 1})
    return hub, odoo


def test_customer_typed_into_both_after_the_first_sync_is_matched(env_any_store: Concord) -> None:
    env = env_any_store
    env.seed(crm_only=3, erp_only=3, shared=2)
    assert env.sync().code == 0
    hub, odoo = type_into_both(env, "late_one@late.example", "Late One Ltd")
    # A LIKE pattern's wildcards are literal: "late_one" must not match this one.
    decoy = env.odoo.create("res.partner", {"name": "Decoy Ltd", "email": "lateXone@late.example",
                                            "is_company": True, "customer_rank": 1})
    result = env.sync()
    assert result.code == 0, str(result)
    counts = result.json()[0]["counts"]
    assert counts["matched"] == 1 and counts["created"] == 1, counts  # the pair matched, the decoy created
    assert company_ids(env, "late_one@late.example") == [hub]
    assert partner_ids(env, "late_one@late.example") == [odoo]
    assert len(company_ids(env, "lateXone@late.example")) == 1 and partner_ids(env, "lateXone@late.example") == [decoy]
    with env.store() as store:
        assert store.links_by_ids("customer", "crm", [hub])[hub].erp_id == str(odoo)
    writes = env.writes()
    assert env.sync().code == 0 and env.writes() == writes
    assert env.agreement().ok


@pytest.mark.parametrize("first", ["crm", "erp"])
def test_a_webhook_for_one_copy_matches_the_other(env: Concord, first: str) -> None:
    env.seed(crm_only=2, erp_only=2)
    assert env.sync().code == 0
    hub, odoo = type_into_both(env, "hooked@late.example", "Hooked Ltd")
    with env.runtime() as rt:
        counts = EntityPipeline(rt, "customer").sync_ids(first, [hub if first == "crm" else str(odoo)])  # type: ignore[arg-type]
    assert counts.matched == 1 and counts.created == 0
    assert company_ids(env, "hooked@late.example") == [hub] and partner_ids(env, "hooked@late.example") == [odoo]
    assert env.sync().code == 0
    assert env.agreement().ok


@contextmanager
def spied_searches(rt: Runtime) -> Iterator[list[tuple[str, int]]]:
    """Record (system, number of values) for every find_by_values call of both connectors."""
    calls: list[tuple[str, int]] = []
    for ep in (rt.crm, rt.erp):
        real = ep.connector.find_by_values

        def spy(spec: Any, field: str, values: Any, *, _real: Any = real, _system: str = ep.system) -> Any:
            calls.append((_system, len(values)))
            return _real(spec, field, values)

        ep.connector.find_by_values = spy  # type: ignore[method-assign]
    yield calls


def test_searches_are_batched_and_skipped_on_the_initial_sync(make_env: Any) -> None:
    env = make_env(crm={"batch_size": 10, "page_size": 10}, erp={"batch_size": 10, "page_size": 10})
    env.seed(crm_only=25, erp_only=25, shared=5)
    with env.runtime() as rt, spied_searches(rt) as calls:
        first = EntityPipeline(rt, "customer").run()
        assert first.counts.matched == 5 and first.counts.created == 50
        assert calls == [], "the initial sync searched although its match index is complete"
    env.hub.seed_companies(25, faker_seed=1, overrides=lambda i, _: {"company_email": f"new{i}@crm.example"})
    env.odoo.seed_partners(25, seed=1, overrides=lambda i: {"is_company": True, "customer_rank": 1,
                                                            "email": f"new{i}@erp.example"})
    with env.runtime() as rt, spied_searches(rt) as calls:
        later = EntityPipeline(rt, "customer").run()
        assert later.counts.created == 50 and later.counts.matched == 0
    # One search per batch of (at most 10) new records and direction, each asking for the whole batch.
    for system in ("hubspot", "odoo"):
        sizes = [n for s, n in calls if s == system]
        assert sum(sizes) == 25 and len(sizes) <= 3, calls
    assert env.agreement().ok


def test_a_key_the_target_cannot_search_by_falls_back_to_the_index(env: Concord) -> None:
    """A refused search (say, a property that is not searchable) does not stop the pass: the record is
    matched through the index as before, and created when the index does not know it."""
    env.seed(crm_only=1, erp_only=1)
    assert env.sync().code == 0
    env.hub.create("companies", {"name": "Fresh Ltd", "company_email": "fresh@late.example"})
    with env.runtime() as rt:
        def refuse(spec: Any, field: str, values: Any) -> Any:
            raise ValidationError(f"{field} is not searchable", system="odoo", field=field)

        rt.erp.connector.find_by_values = refuse  # type: ignore[method-assign]
        report = EntityPipeline(rt, "customer").run()
    assert report.counts.created == 1 and report.counts.dead_letters == 0
    assert len(partner_ids(env, "fresh@late.example")) == 1
