"""`concord conflicts resolve` and `concord dlq retry --now` against the simulators: the chosen
version is written through the pipeline, and the store records the outcome."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from sandbox.hubspot import HubSpotSimulator
from sync.cli import app
from sync.store import Store

from .procs import setup_systems, write_config

odoo_sim = pytest.importorskip("sandbox.odoo", reason="the Odoo simulator is not written yet")
runner = CliRunner()


def run(*args: str) -> Any:
    try:
        return runner.invoke(app, list(args))
    finally:
        structlog.reset_defaults()  # the CLI logged to the runner's (now closed) stderr


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, str, HubSpotSimulator, Any]]:
    hub = HubSpotSimulator().start()
    odoo = odoo_sim.OdooSimulator().start()
    state = f"sqlite:///{tmp_path / 'state.db'}"
    config = write_config(tmp_path / "concord.yaml", hub=hub, odoo=odoo, state_url=state)
    text = config.read_text().replace("customer: {direction: both, every: 1h}",
                                      "customer: {direction: both, every: 1h, conflict: manual}")
    config.write_text(text)
    setup_systems(config)
    try:
        yield config, state, hub, odoo
    finally:
        hub.stop()
        odoo.stop()


def partner_of(odoo: Any, company_id: str) -> dict[str, Any]:
    return next(p for p in odoo.all("res.partner") if p.get("x_concord_crm_id") == company_id)


def test_resolve_takes_the_chosen_side_and_closes_the_conflict(site):
    config, state, hub, odoo = site
    company = hub.seed_companies(1)[0]
    assert run("sync", "-c", str(config)).exit_code == 0
    partner = partner_of(odoo, company)
    hub.update("companies", company, {"name": "Name From HubSpot"})
    odoo.update("res.partner", partner["id"], {"name": "Name From Odoo"})
    first = run("sync", "-c", str(config))
    assert first.exit_code == 1, first.output  # finished, with a conflict to decide
    conflicts = json.loads(run("conflicts", "list", "-c", str(config), "--json").stdout)
    assert [c["fields"] for c in conflicts] == [["name"]]

    result = run("conflicts", "resolve", str(conflicts[0]["id"]), "--take", "erp", "-c", str(config))
    assert result.exit_code == 0, result.output
    assert "resolved" in result.output
    assert hub.get("companies", company)["properties"]["name"] == "Name From Odoo"
    assert partner_of(odoo, company)["name"] == "Name From Odoo"
    store = Store.open(state)
    try:
        assert store.open_conflicts() == []
        assert store.get_conflict(conflicts[0]["id"]).resolution == "erp"
    finally:
        store.close()
    again = run("conflicts", "resolve", str(conflicts[0]["id"]), "--take", "crm", "-c", str(config))
    assert again.exit_code == 2


def test_dlq_retry_now_syncs_the_fixed_record(site):
    config, _, hub, odoo = site
    company = hub.seed_companies(1, overrides={"country": "Atlantis"})[0]
    assert run("sync", "-c", str(config)).exit_code == 1  # a dead letter
    dead = json.loads(run("dlq", "list", "-c", str(config), "--json").stdout)
    assert [(d["record_id"], d["field"]) for d in dead] == [(company, "country")]

    still_bad = run("dlq", "retry", str(dead[0]["id"]), "--now", "-c", str(config), "--json")
    assert still_bad.exit_code == 1
    assert json.loads(still_bad.stdout)[0]["outcome"] == "failed again"

    hub.update("companies", company, {"country": "France"})
    fixed = run("dlq", "retry", str(dead[0]["id"]), "--now", "-c", str(config), "--json")
    assert fixed.exit_code == 0, fixed.output
    assert json.loads(fixed.stdout)[0]["outcome"] == "synced"
    assert partner_of(odoo, company)["country_id"]
    assert json.loads(run("dlq", "list", "-c", str(config), "--json").stdout) == []
