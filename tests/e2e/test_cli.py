"""The `concord` CLI end to end against both simulators: validate, setup, db upgrade, sync (and
--dry-run), status and mapping test, with the state on SQLite and on PostgreSQL."""
from __future__ import annotations

import json
from pathlib import Path

from .conftest import Concord


def test_validate_ok_and_broken_config_names_file_and_line(env: Concord) -> None:
    ok = env.run("validate")
    assert ok.code == 0, str(ok)
    assert "ok" in ok.out and "crm=hubspot erp=odoo" in ok.out

    lines = env.config.read_text().splitlines()
    at = lines.index("    conflict: newest_wins")
    lines[at] = "    conflict: sometimes"
    lines.insert(at + 1, "    matchon: [email]")
    env.config.write_text("\n".join(lines) + "\n")
    bad = env.run("validate")
    assert bad.code == 2, str(bad)
    assert f"concord.yaml:{at + 1}:" in bad.err and "sync.customer.conflict" in bad.err and "sometimes" in bad.err
    assert f"concord.yaml:{at + 2}:" in bad.err and "matchon" in bad.err


def test_check_connections_before_and_after_setup(env: Concord) -> None:
    before = env.run("validate", "--check-connections")
    assert before.code == 1, str(before)
    assert "setup needed" in before.out
    assert "concord_erp_id" in before.out and "x_concord_crm_id" in before.out

    first = env.run("setup")
    assert first.code == 0, str(first)
    assert "hubspot: created" in first.out and "concord_erp_id" in first.out
    assert "odoo: created" in first.out and "x_concord_crm_id" in first.out
    again = env.run("setup")
    assert again.code == 0, str(again)
    assert "hubspot: nothing to create" in again.out and "odoo: nothing to create" in again.out

    after = env.run("validate", "--check-connections")
    assert after.code == 0, str(after)
    assert after.out.count("custom fields present") == 2

    env.configure(crm={"token": "not-the-token", "max_attempts": 1})
    refused = env.run("validate", "--check-connections")
    assert refused.code == 3, str(refused)
    assert "FAIL" in refused.out and "not-the-token" not in refused.out + refused.err


def test_db_upgrade_sync_dry_run_and_status(env_any_store: Concord) -> None:
    env = env_any_store
    first = env.run("db", "upgrade")
    assert first.code == 0, str(first)
    assert "empty ->" in first.out
    revision = first.out.strip().rsplit("-> ", 1)[1]
    second = env.run("db", "upgrade")
    assert second.code == 0 and f"{revision} -> {revision}" in second.out, str(second)

    env.seed(crm_only=30, erp_only=20, shared=10)
    writes = env.writes()
    dry = env.sync(dry_run=True)
    assert dry.code == 0, str(dry)
    would = dry.json()[0]["by_direction"]
    # Nothing is linked by a dry run, so each direction matches the 10 shared customers.
    assert would["crm_to_erp"]["created"] == 30 and would["crm_to_erp"]["matched"] == 10
    assert would["erp_to_crm"]["created"] == 20 and would["erp_to_crm"]["matched"] == 10
    assert env.writes() == writes, "a dry run wrote to a system"
    with env.store() as store:
        assert store.count_links("customer") == 0
        assert store.get_cursor("customer", "hubspot", "customer") is None
        assert store.last_runs("customer") == []

    real = env.sync()
    assert real.code == 0, str(real)
    counts = real.json()[0]["counts"]
    assert counts["created"] == 50 and counts["matched"] == 10 and counts["dead_letters"] == 0
    result = env.agreement()
    assert result.ok and result.linked == 60, result

    # Edits on both sides, then a dry run: it would update, but nothing is written anywhere.
    hub_id = env.companies()[0]["hs_object_id"]
    env.hub.update("companies", hub_id, {"city": "Dry Run City"})
    partner = env.partners()[-1]
    env.odoo.update("res.partner", partner["id"], {"name": "Renamed Before Dry Run"})
    with env.store() as store:
        links_before = sorted((lk.crm_id, lk.erp_id, lk.crm_hash, lk.erp_hash) for lk in store.iter_links("customer"))
    writes = env.writes()
    dry = env.sync(dry_run=True)
    assert dry.code == 0, str(dry)
    assert dry.json()[0]["counts"]["updated"] == 2
    assert env.writes() == writes
    with env.store() as store:
        links_after = sorted((lk.crm_id, lk.erp_id, lk.crm_hash, lk.erp_hash) for lk in store.iter_links("customer"))
    assert links_after == links_before

    table = env.run("status")
    assert table.code == 0, str(table)
    assert "customer" in table.out and " 60 " in table.out
    row = env.status()
    assert row["status"] == "ok" and row["links"] == 60 and row["dead_letters"] == 0 and row["conflicts"] == 0
    assert row["counts"]["created"] == 50  # the last real run, not the dry runs
    assert row["api_calls"]["hubspot"].get("write", 0) >= 1 and row["api_calls"]["odoo"]


def test_mapping_test_renders_both_sides_and_refuses_bad_input(env: Concord, tmp_path: Path) -> None:
    record = tmp_path / "company.json"
    record.write_text(json.dumps({"id": "101", "properties": {
        "name": " Acme GmbH ", "company_email": "Billing@ACME.example", "phone": "+49 30 1234567",
        "country": "Germany", "city": "Berlin"}}))
    ok = env.run("mapping", "test", "customer", "--system", "hubspot", "--input", str(record))
    assert ok.code == 0, str(ok)
    canonical, _, rendered = ok.out.partition("as odoo would receive it")
    assert '"country": "DE"' in canonical and '"email": "billing@acme.example"' in canonical
    assert '"name": "Acme GmbH"' in canonical and '"phone": "+49301234567"' in canonical
    assert '"country_id.code": "DE"' in rendered and '"name": "Acme GmbH"' in rendered

    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "name": \n')
    bad = env.run("mapping", "test", "customer", "--system", "hubspot", "--input", str(broken))
    assert bad.code == 2 and "broken.json:3" in bad.err and "not valid JSON" in bad.err, str(bad)

    atlantis = tmp_path / "atlantis.json"
    atlantis.write_text('{"name": "Sunken Ltd", "country": "Atlantis"}')
    unmappable = env.run("mapping", "test", "customer", "--system", "hubspot", "--input", str(atlantis))
    assert unmappable.code == 2 and "country" in unmappable.err and "Atlantis" in unmappable.err, str(unmappable)

    missing = env.run("mapping", "test", "customer", "--system", "hubspot", "--input", str(tmp_path / "none.json"))
    assert missing.code == 2 and "no such file" in missing.err, str(missing)
    wrong_system = env.run("mapping", "test", "customer", "--system", "salesforce", "--input", str(record))
    assert wrong_system.code == 2 and "hubspot" in wrong_system.err, str(wrong_system)


def test_status_shows_writes_a_killed_run_left_in_flight(env: Concord) -> None:
    from sync.intents import make_intent
    env.seed(crm_only=2)
    assert env.sync().code == 0
    assert env.status()["writes_in_flight"] == 0
    with env.store() as store, store.transaction() as tx:
        tx.add_intents([make_intent("customer", "crm", "123", None, {"crm": {"name": "A"}, "erp": {"name": "A"}},
                                    {"crm": [], "erp": ["name"]})])
    assert env.status()["writes_in_flight"] == 1
