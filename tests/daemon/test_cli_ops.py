"""The operator commands on a real state store: dlq, conflicts, config schema, init, and the
daemon's refusal to start on a bad config."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from sync.cli import app
from sync.config import load_config
from sync.store import Store

runner = CliRunner()


@pytest.fixture
def state(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ops.db'}"


@pytest.fixture
def dead(state: str) -> list[int]:
    store = Store.open(state)
    try:
        ids = [store.add_dead_letter(pipeline="customer", entity="customer", system="hubspot", record_id=rid,
                                     payload={"data": {"name": "ACME", "email": "not-an-email"}},
                                     error_class="ValidationError",
                                     error_message=f"hubspot customer {rid}, field email: not an email address",
                                     field="email", backoff=lambda n: timedelta(hours=1), max_attempts=1).id
               for rid in ("101", "102")]
    finally:
        store.close()
    return ids


def run(*args: str) -> Any:
    try:
        return runner.invoke(app, list(args))
    finally:
        # The CLI points structlog at the runner's stderr, which is closed once invoke returns.
        structlog.reset_defaults()


def test_dlq_list_shows_open_dead_letters(state, dead):
    result = run("dlq", "list", "--state", state)
    assert result.exit_code == 0, result.output
    assert "101" in result.output and "102" in result.output and "parked" in result.output
    rows = json.loads(run("dlq", "list", "--state", state, "--json").stdout)
    assert [r["record_id"] for r in rows] == ["101", "102"]
    assert rows[0]["field"] == "email" and rows[0]["parked"] is True


def test_dlq_show_has_the_full_error_and_payload(state, dead):
    result = run("dlq", "show", str(dead[0]), "--state", state)
    assert result.exit_code == 0, result.output
    assert "field email: not an email address" in result.output
    assert "not-an-email" in result.output
    assert json.loads(run("dlq", "show", str(dead[0]), "--state", state, "--json").stdout)["payload"] == {
        "data": {"name": "ACME", "email": "not-an-email"}}


def test_dlq_show_unknown_id_is_bad_input(state, dead):
    assert run("dlq", "show", "999", "--state", state).exit_code == 2


def test_dlq_retry_makes_one_or_all_due_and_unparks(state, dead):
    assert run("dlq", "retry", "--state", state).exit_code == 2  # neither ID nor --all
    assert run("dlq", "retry", str(dead[0]), "--all", "--state", state).exit_code == 2
    result = run("dlq", "retry", str(dead[0]), "--state", state)
    assert result.exit_code == 0, result.output
    store = Store.open(state)
    try:
        assert [d.record_id for d in store.due_dead_letters("customer")] == ["101"]
        assert run("dlq", "retry", "--all", "--state", state).exit_code == 0
        assert [d.record_id for d in store.due_dead_letters("customer")] == ["101", "102"]
    finally:
        store.close()


def test_dlq_drop_resolves_and_refuses_twice(state, dead):
    assert run("dlq", "drop", str(dead[1]), "--state", state).exit_code == 0
    rows = json.loads(run("dlq", "list", "--state", state, "--json").stdout)
    assert [r["record_id"] for r in rows] == ["101"]
    every = json.loads(run("dlq", "list", "--all", "--state", state, "--json").stdout)
    assert [r["resolution"] for r in every] == [None, "dropped"]
    assert run("dlq", "drop", str(dead[1]), "--state", state).exit_code == 2


@pytest.fixture
def conflict(state: str) -> int:
    store = Store.open(state)
    try:
        return store.record_conflict(entity="customer", link_id=None, crm_id="11", erp_id="7",
                                     crm_version={"name": "ACME Corp", "city": "Paris"},
                                     erp_version={"name": "ACME SA", "city": "Paris"},
                                     base={"name": "ACME", "city": "Paris"}, fields=["name"]).id
    finally:
        store.close()


def test_conflicts_list_and_show(state, conflict):
    result = run("conflicts", "list", "--state", state)
    assert result.exit_code == 0 and "customer" in result.output and "name" in result.output
    shown = run("conflicts", "show", str(conflict), "--state", state)
    assert shown.exit_code == 0, shown.output
    assert "ACME Corp" in shown.output and "ACME SA" in shown.output
    assert "Paris" not in shown.output  # equal on both sides and not in conflict: not shown
    data = json.loads(run("conflicts", "show", str(conflict), "--state", state, "--json").stdout)
    assert data["fields"] == ["name"] and data["erp_version"]["name"] == "ACME SA"
    assert run("conflicts", "show", "999", "--state", state).exit_code == 2


def test_conflicts_resolve_rejects_a_bad_side(state, conflict):
    assert run("conflicts", "resolve", str(conflict), "--take", "both", "--state", state).exit_code == 2


def test_config_schema_is_json_schema_of_the_config(tmp_path):
    result = run("config", "schema")
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert {"state", "crm", "erp", "sync", "webhooks", "daemon"} <= set(schema["properties"])
    target = tmp_path / "schema.json"
    assert run("config", "schema", "-o", str(target)).exit_code == 0
    assert json.loads(target.read_text()) == schema


ENV = {"HUBSPOT_TOKEN": "tok-hub", "ODOO_URL": "https://erp.example.com", "ODOO_DB": "prod",
       "ODOO_USER": "sync@example.com", "ODOO_API_KEY": "key-odoo"}


def test_init_writes_a_config_that_loads_and_refuses_to_overwrite(tmp_path):
    target = tmp_path / "site"
    result = run("init", str(target))
    assert result.exit_code == 0, result.output
    assert (target / "mappings" / "hubspot.yaml").is_file() and (target / "mappings" / "odoo.yaml").is_file()
    assert (target / "concord.env").stat().st_mode & 0o077 == 0
    config = load_config(target / "concord.yaml", env=ENV)
    assert config.enabled_entities() == ["customer", "product"]
    assert config.crm.mapping == "mappings/hubspot.yaml"
    (target / "concord.yaml").write_text("# edited\n")
    again = run("init", str(target))
    assert again.exit_code == 2 and "--force" in again.output
    assert (target / "concord.yaml").read_text() == "# edited\n"
    assert run("init", str(target), "--force").exit_code == 0
    assert "connector: hubspot" in (target / "concord.yaml").read_text()


def test_daemon_exits_2_on_a_bad_config_before_anything_runs(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("state: {url: sqlite:///x.db}\nsync: {customer: {every: soon}}\n")
    result = run("daemon", "-c", str(bad))
    assert result.exit_code == 2
    assert not (tmp_path / "x.db").exists()
