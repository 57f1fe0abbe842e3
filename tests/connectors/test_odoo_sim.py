"""Odoo connector against the Odoo simulator (sandbox/odoo.py) over real HTTP on 127.0.0.1."""
from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from connectors.base import AuthError, EntitySpec, NotFound, ValidationError, Watermark, WriteOp
from connectors.odoo import OdooConnector, OdooSettings
from sandbox.core import Clock, Faults
from sandbox.odoo import OdooSimulator

odoo_sim = pytest.importorskip("sandbox.odoo", reason="sandbox/odoo (OdooSimulator) not written yet")
if not hasattr(odoo_sim, "OdooSimulator"):
    pytest.skip("sandbox.odoo.OdooSimulator not written yet", allow_module_level=True)

T0 = datetime(2026, 11, 26, 19, 0, 0, tzinfo=timezone.utc)

PARTNER = EntitySpec(
    entity="customer", object="res.partner", id_field="id", updated_field="write_date",
    fields=("name", "email", "country_id.code", "state_id.name", "x_concord_crm_id"),
    key_field="x_concord_crm_id",
    options={"xmlid_prefix": "hubspot_company_", "domain": [["is_company", "=", True]],
             "create_defaults": {"is_company": True, "customer_rank": 1},
             "custom_fields": {"x_concord_crm_id": {"type": "char", "label": "HubSpot company id", "index": True}}})


@pytest.fixture
def clock() -> Clock:
    return Clock(frozen=T0)


@pytest.fixture
def sim(clock: Clock) -> Iterator[Any]:
    simulator = odoo_sim.OdooSimulator(clock=clock)
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


def connect(sim: Any, **overrides: Any) -> OdooConnector:
    settings = OdooSettings(url=sim.base_url, db=sim.db, username=sim.login, api_key=sim.password,
                            **overrides)
    conn = OdooConnector(settings)
    conn.rpc.http.settings = dataclasses.replace(conn.rpc.http.settings, backoff_initial=0.001, backoff_max=0.002)
    return conn


@pytest.fixture
def conn(sim: Any) -> Iterator[OdooConnector]:
    connector = connect(sim)
    connector.setup([PARTNER])
    yield connector
    connector.close()


def company(sim: Any, name: str, **vals: Any) -> int:
    return int(sim.create("res.partner", {"name": name, "is_company": True, **vals}))


def changes(conn: OdooConnector, spec: EntitySpec, since: Watermark | None) -> list[list[str]]:
    return [[r.id for r in page.records] for page in conn.iter_changes(spec, since)]


# ------------------------------------------------------------------ connection and setup
def test_check_connection_and_bad_key(sim: Any) -> None:
    connect(sim).check_connection()
    bad = OdooSettings(url=sim.base_url, db=sim.db, username=sim.login, api_key="wrong-key")
    with pytest.raises(AuthError, match="login failed"):
        OdooConnector(bad).check_connection()


def test_setup_creates_custom_fields_idempotently(sim: Any) -> None:
    conn = connect(sim)
    spec = dataclasses.replace(PARTNER, options={**PARTNER.options, "custom_fields": {
        "x_concord_crm_id": {"type": "char", "label": "HubSpot company id", "index": True},
        "x_concord_score": {"type": "float", "label": "Score"}}})
    assert sorted(conn.missing_setup([spec])) == ["res.partner.x_concord_crm_id (char)",
                                                  "res.partner.x_concord_score (float)"]
    assert sorted(conn.setup([spec])) == ["res.partner.x_concord_crm_id (char)",
                                          "res.partner.x_concord_score (float)"]
    assert conn.missing_setup([spec]) == []
    assert conn.setup([spec]) == []
    [result] = conn.write(dataclasses.replace(spec, fields=("name", "x_concord_score")),
                          [WriteOp("r", {"name": "Acme", "x_concord_score": 2.5}, key="1")])
    assert result.ok
    assert sim.get("res.partner", int(result.target_id))["x_concord_score"] == 2.5
    assert conn.api_calls()["setup"] >= 2


def test_setup_rejects_bad_custom_field(sim: Any) -> None:
    spec = dataclasses.replace(PARTNER, options={"custom_fields": {"concord_id": {"type": "char"}}})
    with pytest.raises(ValidationError, match="x_"):
        connect(sim).missing_setup([spec])


# ------------------------------------------------------------------ listing changes
def test_iter_changes_keyset_paging_over_shared_write_date(sim: Any, conn: OdooConnector, clock: Clock) -> None:
    same_second = [company(sim, f"Same {i}") for i in range(25)]  # all share T0 as write_date
    clock.advance(5)
    later = [company(sim, f"Later {i}") for i in range(4)]
    small = connect(sim, page_size=10)
    pages = changes(small, PARTNER, Watermark(T0, "0"))
    assert all(0 < len(p) <= 10 for p in pages)
    assert [i for p in pages for i in p] == [str(i) for i in same_second + later]  # (write_date, id) order


def test_iter_changes_does_not_skip_when_rows_change_between_pages(sim: Any, conn: OdooConnector,
                                                                   clock: Clock) -> None:
    ids = [company(sim, f"C {i}") for i in range(30)]
    clock.advance(1)
    small = connect(sim, page_size=10)
    seen: list[str] = []
    for n, page in enumerate(small.iter_changes(PARTNER, Watermark(T0, "0"))):
        seen.extend(r.id for r in page.records)
        if n == 0:
            # A record already listed changes: offset paging would now skip one unseen record.
            sim.update("res.partner", ids[0], {"email": "new@example.com"})
    assert set(seen) == {str(i) for i in ids}
    assert seen.count(str(ids[0])) == 2  # seen again with its new write_date, at the end
    assert seen[-1] == str(ids[0])


def test_iter_changes_filters_and_parses(sim: Any, conn: OdooConnector, clock: Clock) -> None:
    old = company(sim, "Old")
    clock.advance(60)
    new = company(sim, "New", email="new@example.com")
    sim.create("res.partner", {"name": "A person", "is_company": False})  # outside the mapping's domain
    [[record]] = [p.records for p in conn.iter_changes(PARTNER, Watermark(T0 + timedelta(seconds=30), "0"))]
    assert record.id == str(new)
    assert record.updated_at == T0 + timedelta(seconds=60)
    assert record.data["email"] == "new@example.com" and record.data["name"] == "New"
    assert set(record.data) == set(PARTNER.fields)
    assert str(old) in [r.id for p in conn.iter_changes(PARTNER, None) for r in p.records]


def test_write_date_lag_is_caught_by_the_callers_overlap(sim: Any, conn: OdooConnector, clock: Clock) -> None:
    first = company(sim, "First")
    [[record]] = [p.records for p in conn.iter_changes(PARTNER, None)]
    cursor = Watermark(record.updated_at, record.id)  # type: ignore[arg-type]
    clock.advance(10)
    sim.write_date_lag = 60  # a long transaction committed after our poll, stamped with its start
    late = company(sim, "Late")
    assert sim.get("res.partner", late)["write_date"] < sim.get("res.partner", first)["write_date"]
    assert str(late) not in {i for p in changes(conn, PARTNER, cursor) for i in p}
    overlap = Watermark(cursor.updated_at - timedelta(minutes=2), cursor.id)
    assert str(late) in {i for p in changes(conn, PARTNER, overlap) for i in p}


def test_archived_records_come_as_deleted(sim: Any, conn: OdooConnector, clock: Clock) -> None:
    pid = company(sim, "Gone soon")
    clock.advance(1)
    [result, missing] = conn.archive(PARTNER, [str(pid), "999999"])
    assert result.ok and not sim.get("res.partner", pid)["active"]
    assert not missing.ok and isinstance(missing.error, NotFound)
    records = [r for p in conn.iter_changes(PARTNER, Watermark(T0, "0")) for r in p.records]
    assert [(r.id, r.deleted) for r in records] == [(str(pid), True)]
    assert conn.read(PARTNER, [str(pid)])[str(pid)].deleted


def test_iter_all_and_read(sim: Any, conn: OdooConnector) -> None:
    ids = [company(sim, f"C {i}") for i in range(7)]
    sim.archive("res.partner", ids[3])
    small = connect(sim, page_size=3)
    assert [r.id for p in small.iter_all(PARTNER) for r in p.records] == [str(i) for i in ids]
    got = small.read(PARTNER, [str(ids[0]), "424242", "not-an-id", str(ids[3])])
    assert set(got) == {str(ids[0]), str(ids[3])} and got[str(ids[3])].deleted


# ------------------------------------------------------------------ dotted paths
def test_dotted_country_code_read_and_write(sim: Any, conn: OdooConnector) -> None:
    results = conn.write(PARTNER, [WriteOp("a", {"name": "Acme GmbH", "country_id.code": "DE"}, key="1"),
                                   WriteOp("b", {"name": "Nowhere", "country_id.code": None}, key="2"),
                                   WriteOp("c", {"name": "Bad", "country_id.code": "XX"}, key="3")])
    assert [r.ok for r in results] == [True, True, False]
    assert results[2].error is not None and results[2].error.field == "country_id.code"
    assert results[2].error.message == "no res.country with code 'XX'"
    got = conn.read(PARTNER, [results[0].target_id, results[1].target_id])  # type: ignore[list-item]
    assert got[results[0].target_id].data["country_id.code"] == "DE"  # type: ignore[index]
    assert got[results[1].target_id].data["country_id.code"] is None  # type: ignore[index]
    [update] = conn.write(PARTNER, [WriteOp("a", {"country_id.code": "FR"}, target_id=results[0].target_id)])
    assert update.ok
    assert conn.read(PARTNER, [update.target_id])[update.target_id].data["country_id.code"] == "FR"  # type: ignore
    # countries are looked up once per run, and the read resolved a page with one batched call
    before = conn.api_calls()
    conn.read(PARTNER, [results[0].target_id])  # type: ignore[list-item]
    assert conn.api_calls()["read"] - before["read"] <= 1


# ------------------------------------------------------------------ keys and idempotent creates
def test_find_by_keys_via_xmlid_and_key_field(sim: Any, conn: OdooConnector) -> None:
    [made] = conn.write(PARTNER, [WriteOp("r", {"name": "Made by Concord"}, key="101")])
    assert made.created
    assert any(x.get("name") == "hubspot_company_101" for x in _xmlids(sim))
    manual = company(sim, "Typed in by hand", x_concord_crm_id="202")  # no external id
    found = conn.find_by_keys(PARTNER, ["101", "202", "303"])
    assert {k: r.id for k, r in found.items()} == {"101": made.target_id, "202": str(manual)}
    assert any(x.get("name") == "hubspot_company_202" and x.get("res_id") == manual for x in _xmlids(sim))


def test_stale_xmlid_is_ignored_and_repointed(sim: Any, conn: OdooConnector) -> None:
    [made] = conn.write(PARTNER, [WriteOp("r", {"name": "Doomed"}, key="7")])
    conn.rpc.execute_kw("res.partner", "unlink", [[int(made.target_id)]])  # type: ignore[arg-type]
    assert conn.find_by_keys(PARTNER, ["7"]) == {}
    [again] = conn.write(PARTNER, [WriteOp("r", {"name": "Reborn"}, key="7")])
    assert again.ok and again.created and again.target_id != made.target_id
    assert conn.find_by_keys(PARTNER, ["7"])["7"].id == again.target_id


def test_create_adopts_existing_and_updates_differences(sim: Any, conn: OdooConnector) -> None:
    existing = company(sim, "Old name", x_concord_crm_id="55", email="a@example.com")
    [result] = conn.write(PARTNER, [WriteOp("r", {"name": "New name", "email": "a@example.com"}, key="55")])
    assert (result.ok, result.created, result.target_id) == (True, False, str(existing))
    assert sim.get("res.partner", existing)["name"] == "New name"
    assert len([p for p in sim.all("res.partner") if p.get("x_concord_crm_id") == "55"]) == 1


def test_partial_create_failure_is_isolated(sim: Any, conn: OdooConnector) -> None:
    results = conn.write(PARTNER, [WriteOp("a", {"name": "Fine"}, key="1"), WriteOp("b", {"name": None}, key="2"),
                                   WriteOp("c", {"name": "Also fine"}, key="3")])
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, ValidationError) and results[1].error.field == "name"
    assert set(conn.find_by_keys(PARTNER, ["1", "2", "3"])) == {"1", "3"}


@pytest.mark.parametrize("fault", ["drop_after_rate", "drop_before_rate"])
def test_create_idempotent_under_dropped_connections(clock: Clock, fault: str) -> None:
    sim = odoo_sim.OdooSimulator(clock=clock, faults=Faults(writes_only=True, seed=7, **{fault: 0.5}))
    sim.start()
    try:
        setup_conn = connect(sim)
        sim.faults, faults = Faults(), sim.faults
        setup_conn.setup([PARTNER])
        sim.faults = faults
        conn = connect(sim, batch_size=10, max_attempts=20)
        ops = [WriteOp(f"r{i}", {"name": f"Company {i}"}, key=str(1000 + i)) for i in range(40)]
        results = conn.write(PARTNER, ops)
        retried = conn.write(PARTNER, [o for o, r in zip(ops, results, strict=True) if not r.ok])
        assert all(r.ok for r in retried)
        sim.faults = Faults()
        assert any(entry.status is None for entry in sim.request_log)  # connections were really dropped
        keys = Counter(p.get("x_concord_crm_id") for p in sim.all("res.partner") if p.get("x_concord_crm_id"))
        assert keys == Counter({str(1000 + i): 1 for i in range(40)})  # no duplicate partners
        assert set(conn.find_by_keys(PARTNER, [str(1000 + i) for i in range(40)])) == set(keys)
        # a second pass (a crash before the engine stored its links) adopts, never creates
        again = conn.write(PARTNER, ops)
        assert all(r.ok and not r.created for r in again)
        assert len([p for p in sim.all("res.partner") if p.get("x_concord_crm_id")]) == 40
    finally:
        sim.stop()


def _xmlids(sim: Any) -> list[dict[str, Any]]:
    """The simulator's concord.* external ids as {name, model, res_id}."""
    return [{"name": full.split(".", 1)[1], "model": model, "res_id": res_id}
            for full, (model, res_id) in sim.xmlids("concord").items()]


def test_iter_changes_with_subsecond_write_dates_across_many_pages() -> None:
    # Real Odoo 18 stores write_date with microseconds but sends whole seconds: paging must
    # neither loop nor skip when many records share one wire second with distinct stored values.
    with OdooSimulator() as real_clock_sim:
        small = connect(real_clock_sim, page_size=7)
        small.setup([PARTNER])
        created = []
        for k in range(5):
            created += small.rpc.execute_kw("res.partner", "create",
                                            [[{"name": f"P{k}-{i}", "is_company": True} for i in range(9)]])
        seen = [r.id for page in small.iter_changes(PARTNER, None) for r in page.records]
        assert sorted(seen, key=int) == [str(i) for i in sorted(created)]
        assert len(seen) == len(set(seen))


def test_find_by_values_ignores_case_and_treats_like_wildcards_literally(sim: Any, conn: OdooConnector) -> None:
    wanted = company(sim, "Wanted", email="A_B%c@Late.Example")
    company(sim, "Wildcard decoy", email="aXbYc@late.example")  # what a_b%c would match as a pattern
    company(sim, "Archived twin", email="a_b%c@late.example", active=False)
    sim.create("res.partner", {"name": "Not a company", "email": "a_b%c@late.example"})  # outside the domain
    other = company(sim, "Other", email="other@late.example")
    found = conn.find_by_values(PARTNER, "email", ["a_b%c@late.example", "OTHER@late.example", "none@x.example"])
    assert sorted(int(r.id) for r in found) == sorted([wanted, other])
    assert conn.find_by_values(PARTNER, "email", []) == []
