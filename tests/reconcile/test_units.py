"""Reconcile's parts on their own: the compared fields, the per-side-base rule, normalised rows,
the report writers, progress output and the command's input errors."""
from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog
import typer
from rich.console import Console
from sqlalchemy import text
from typer.testing import CliRunner

from connectors.base import NativeRecord
from sandbox.fixtures import HubSpotAccess, OdooAccess, write_config
from sync import logging as clog
from sync.cli import app
from sync.cli_reconcile import parse_since
from sync.config import load_config
from sync.reconcile import Reconciler, reconcile_order
from sync.reconcile_classify import compare
from sync.reconcile_fields import RowBuilder, build_plan
from sync.reconcile_findings import (
    EntityResult,
    FieldDiff,
    Finding,
    ReconcileReport,
    Repair,
)
from sync.reconcile_output import write_csv, write_json, write_table
from sync.reconcile_progress import LogReporter, RichReporter
from sync.runtime import Runtime, build_runtime

runner = CliRunner()


@pytest.fixture
def offline_rt(tmp_path: Path) -> Iterator[Runtime]:
    """A runtime whose systems are never called (nothing listens there)."""
    path = write_config(tmp_path, HubSpotAccess("http://127.0.0.1:9"), OdooAccess("http://127.0.0.1:9"),
                        f"sqlite:///{tmp_path / 'state.db'}")
    rt = build_runtime(load_config(path))
    try:
        yield rt
    finally:
        rt.close()


def test_compared_fields_follow_the_flows_of_the_config(offline_rt: Runtime) -> None:
    plan = build_plan(offline_rt, "customer")
    flows = {f.name: f for f in plan.fields}
    # Two-way: both sides read and write them.
    assert {"name", "email", "phone", "city", "country", "website", "vat", "street", "zip"} <= {
        n for n, f in flows.items() if f.two_way}
    # Owned by the ERP: ERP -> CRM only, and HubSpot cannot read its copy back through the mapping.
    for name in ("credit_limit", "customer_code", "balance_due"):
        assert flows[name].direction == "erp_to_crm"
        assert flows[name].write_only_on("crm") and not flows[name].write_only_on("erp")
    # Odoo never takes a state name: it flows ERP -> CRM only.
    assert flows["state"].direction == "erp_to_crm"
    assert plan.match_on == ("email",)
    assert plan.key_fields == {"crm": "concord_erp_id", "erp": "x_concord_crm_id"}


def test_a_difference_both_sides_kept_since_the_last_sync_is_not_drift(offline_rt: Runtime) -> None:
    plan = build_plan(offline_rt, "customer")
    base = {"crm": {"state": "TX", "city": "Austin"}, "erp": {"state": None, "city": "Austin"}}
    # HubSpot has a state Odoo cannot store, and nobody changed anything since: in sync.
    assert compare(plan, {"state": "TX", "city": "Austin"}, {"state": None, "city": "Austin"}, base) == []
    # Odoo's state changed since (a lost webhook): drift, and it is Odoo that moved.
    (d,) = compare(plan, {"state": "TX", "city": "Austin"}, {"state": "Texas", "city": "Austin"}, base)
    assert (d.field, d.crm, d.erp, d.crm_moved, d.erp_moved) == ("state", "TX", "Texas", False, True)
    # Without a base (never linked) every difference counts; equal decimals are equal.
    assert [x.field for x in compare(plan, {"city": "A", "credit_limit": Decimal("10.50")},
                                     {"city": "B", "credit_limit": Decimal("10.5")}, None)] == ["city"]


def _hubspot(**props: Any) -> NativeRecord:
    data = {"hs_object_id": "101", "hs_lastmodifieddate": "2025-01-01T00:00:00Z", **props}
    return NativeRecord(id="101", updated_at=datetime(2025, 1, 1, tzinfo=UTC), data=data)


def _odoo(**values: Any) -> NativeRecord:
    data = {"id": 7, "write_date": "2025-01-01 00:00:00", "state_id.name": False, "credit": 0.0, "ref": False,
            "vat": False, "street": False, "zip": False, "website": False, **values}
    return NativeRecord(id="7", updated_at=datetime(2025, 1, 1, tzinfo=UTC), data=data)


def test_formatting_the_mappings_normalise_gives_equal_rows(offline_rt: Runtime) -> None:
    plan = build_plan(offline_rt, "customer")
    hub = RowBuilder(offline_rt, plan, "crm")
    odoo = RowBuilder(offline_rt, plan, "erp")
    (h,) = hub.rows([_hubspot(name="Acme Ltd  ", company_email=" ACCOUNTS@ACME.EXAMPLE ", phone="(512) 555-0100",
                              city="Austin", country="United States", erp_credit_limit="2500.000",
                              erp_balance_due="0.00")])
    (o,) = odoo.rows([_odoo(name="Acme Ltd", email="accounts@acme.example", phone="+1 512-555-0100", city="Austin ",
                            **{"country_id.code": "US"}, credit_limit=2500.0)])
    assert h.error is None and o.error is None
    assert json.loads(h.cmp) == json.loads(o.cmp)
    assert h.cmp_hash == o.cmp_hash
    assert ("email", "accounts@acme.example") in h.keys and ("email", "accounts@acme.example") in o.keys
    (moved,) = odoo.rows([_odoo(name="Acme Ltd", email="accounts@acme.example", phone="+1 512-555-0100",
                                city="Dallas", **{"country_id.code": "US"}, credit_limit=2500.0)])
    assert moved.cmp_hash != h.cmp_hash


def test_a_record_the_mapping_cannot_read_is_a_row_with_its_error(offline_rt: Runtime) -> None:
    plan = build_plan(offline_rt, "customer")
    (row,) = RowBuilder(offline_rt, plan, "crm").rows([_hubspot(name="X", country="Atlantis")])
    assert row.error is not None and "Atlantis" in row.error
    assert row.keys == []


def _report() -> tuple[ReconcileReport, dict[str, list[Finding]]]:
    e = EntityResult("customer", found=Counter(in_sync=5, different=1, duplicate=1), read={"hubspot": 7, "odoo": 6})
    report = ReconcileReport(entities=[e], api_calls={"hubspot": {"read": 1}}, seconds=0.5)
    found = [Finding("different", "customer", "101", "7", fields=[FieldDiff("city", "Munich", "Berlin"),
                                                                  FieldDiff("credit_limit", None, "10")],
                     repair=Repair("sync", source="crm")),
             Finding("duplicate", "customer", key="email", value="a@b.example", crm_ids=["101", "102"],
                     erp_ids=["7"], note="2 crm records share email")]
    return report, {"found": found}


def test_csv_has_one_row_per_differing_field() -> None:
    report, by_phase = _report()
    buf = io.StringIO()
    write_csv(report, lambda entity, phase: by_phase[phase], buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert [(r["class"], r["crm_id"], r["erp_id"], r["field"], r["crm_value"], r["erp_value"]) for r in rows] == [
        ("different", "101", "7", "city", "Munich", "Berlin"),
        ("different", "101", "7", "credit_limit", "", "10"),
        ("duplicate", "101 102", "7", "email", "a@b.example", ""),
    ]
    assert rows[0]["repair"] == "sync from crm"


def test_json_report_is_one_document_with_counts_and_findings() -> None:
    report, by_phase = _report()
    buf = io.StringIO()
    write_json(report, lambda entity, phase: by_phase[phase], buf, exit_code=1)
    data = json.loads(buf.getvalue())
    assert data["exit_code"] == 1 and data["dry_run"] is True and data["drift"] == 2
    (entity,) = data["entities"]
    assert entity["found"]["in_sync"] == 5 and entity["found"]["missing_on_crm"] == 0
    assert [f["cls"] for f in entity["findings"]] == ["different", "duplicate"]
    assert entity["findings"][0]["fields"][0] == {"field": "city", "crm": "Munich", "erp": "Berlin",
                                                   "direction": "both", "crm_moved": True, "erp_moved": True}


def test_table_report_shows_summary_and_details() -> None:
    report, by_phase = _report()
    console = Console(file=io.StringIO(), width=220, color_system=None)
    write_table(report, lambda entity, phase: by_phase[phase], console)
    text_out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "missing on crm" in text_out and "orphan links" in text_out
    assert "Munich" in text_out and "Berlin" in text_out and "a@b.example" in text_out
    assert "drift found: 2 finding(s)" in text_out


def test_since_parses_dates_and_times_as_utc() -> None:
    assert parse_since("2025-03-01") == datetime(2025, 3, 1, tzinfo=UTC)
    assert parse_since("2025-03-01T10:00:00") == datetime(2025, 3, 1, 10, tzinfo=UTC)
    assert parse_since("2025-03-01T10:00:00+02:00") == datetime(2025, 3, 1, 8, tzinfo=UTC)
    with pytest.raises(typer.Exit) as exc:
        parse_since("last tuesday")
    assert exc.value.exit_code == 2


def test_log_progress_reports_counts_rate_and_eta(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("sync.reconcile_progress.time.monotonic", lambda: now[0])
    reporter = LogReporter(interval=5)
    clog.configure("info", "json", stream=io.StringIO())  # an earlier test may have set the level to warning
    with structlog.testing.capture_logs() as logs:
        reporter.start("customer: read hubspot", 1000)
        now[0] += 10
        reporter.advance("customer: read hubspot", 250)
        reporter.finish("customer: read hubspot")
    progress = next(e for e in logs if e["event"] == "reconcile.progress")
    assert (progress["done"], progress["per_second"], progress["eta_seconds"]) == (250, 25.0, 30.0)
    assert logs[-1]["event"] == "reconcile.phase_finished"


def test_progress_bar_on_a_terminal_shows_counts() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    reporter = RichReporter(console)
    reporter.start("customer: read hubspot", 200)
    reporter.advance("customer: read hubspot", 150)
    reporter.finish("customer: read hubspot")
    reporter.close()
    assert "150/150" in console.file.getvalue()  # type: ignore[attr-defined]


def test_entities_are_reconciled_in_dependency_order() -> None:
    assert reconcile_order(["payment", "order", "customer", "customer"]) == ["customer", "order", "payment"]


@pytest.mark.parametrize(("args", "message"), [
    (["--format", "xml"], "--format 'xml'"),
    (["invoice"], "not configured under sync"),
    (["--since", "yesterday-ish"], "--since 'yesterday-ish'"),
])
def test_bad_input_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    path = write_config(tmp_path, HubSpotAccess("http://127.0.0.1:9"), OdooAccess("http://127.0.0.1:9"),
                        f"sqlite:///{tmp_path / 'state.db'}")
    result = runner.invoke(app, ["reconcile", *args, "-c", str(path)])
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_unreachable_system_exits_3(tmp_path: Path) -> None:
    path = write_config(tmp_path, HubSpotAccess("http://127.0.0.1:9"), OdooAccess("http://127.0.0.1:9"),
                        f"sqlite:///{tmp_path / 'state.db'}", crm={"max_attempts": 1}, erp={"max_attempts": 1})
    result = runner.invoke(app, ["reconcile", "--no-progress", "-c", str(path)])
    assert result.exit_code == 3, result.output
    assert "unreachable" in result.stderr


def test_scratch_tables_are_gone_after_a_run(offline_rt: Runtime, pg_url: str) -> None:
    from sync.store import Store
    store = Store.open(pg_url)
    try:
        offline_rt.store, old = store, offline_rt.store
        with Reconciler(offline_rt) as rec:
            assert rec.scratch.count("crm") == 0
        with Reconciler(offline_rt) as rec:  # a second run on the same pooled connection starts afresh
            assert rec.scratch.count("crm") == 0
        with store.engine.connect() as conn:  # the pool hands back the connection the runs used
            left = conn.execute(text("SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema() "
                                     "AND relname LIKE 'reconcile_%'")).scalar()
        assert left == 0
    finally:
        offline_rt.store = old
        store.close()


def test_fast_side_hash_equals_the_pipelines() -> None:
    from sync.model import _normalise
    from sync.pipeline import side_hash
    from sync.reconcile_fields import fast_side_hash
    # Non-ASCII text too: a reconcile that hashed it differently would report every such record as drift.
    content = {"name": "Müller Straße", "credit_limit": Decimal("10.50"), "tags": ["a", "b"], "due": datetime(2025, 1, 2),
               "extra.note": None}
    for deleted in (False, True):
        assert fast_side_hash(_normalise(content), content.keys(), deleted=deleted) == side_hash(
            content, set(content), deleted=deleted)
