"""Records with edge values, put into the simulators through their direct-edit helpers (as a user or
an import would), then synced in-process: a pass never crashes; a record that cannot be synced
becomes a dead letter naming its id and field while the rest of the batch goes on; what does sync
arrives equal on both sides, and a second pass writes nothing (no rounding ping-pong)."""
from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.hubspot.values import parse_timestamp
from connectors.odoo.values import parse_datetime
from sandbox.core import Clock
from sandbox.fixtures import write_config
from sandbox.hubspot import HubSpotSimulator
from sandbox.odoo import OdooSimulator
from sync.config import load_config
from sync.pipeline import EntityPipeline, RunReport
from sync.runtime import Runtime, build_runtime
from tests.chaos.world import fuzz_settings, record_figures


@dataclass
class World:
    """Both simulators and a runtime on them (SQLite in a temporary folder)."""

    hub: HubSpotSimulator
    odoo: OdooSimulator
    rt: Runtime
    serial: int = 0
    stats: Counter[str] = field(default_factory=Counter)

    def email(self) -> str:
        self.serial += 1
        return f"edge{self.serial:05d}@edge.example"

    def company(self, props: dict[str, Any]) -> tuple[str, str]:
        email = props.setdefault("company_email", self.email())
        return self.hub.create("companies", props), str(email)

    def partner(self, vals: dict[str, Any]) -> tuple[str, str]:
        """Create a partner; returns (id, e-mail), or (id, "name:<name>") when it has no e-mail."""
        email = vals.setdefault("email", self.email())
        vals.setdefault("name", f"Partner {self.serial}")
        record_id = str(self.odoo.create("res.partner", {"is_company": True, "customer_rank": 1, **vals}))
        return record_id, str(email) if email else f"name:{vals['name']}"

    def sync(self) -> RunReport:
        self.stats["passes"] += 1
        return EntityPipeline(self.rt, "customer").run()

    def dead_letters(self) -> dict[str, Any]:
        return {d.record_id: d for d in self.rt.store.list_dead_letters()}

    def pair(self, email: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(HubSpot properties, Odoo partner) of the customer with this e-mail (or ``name:<name>``)."""
        hub_key, odoo_key = ("name", "name") if email.startswith("name:") else ("company_email", "email")
        wanted = email[5:] if email.startswith("name:") else email.strip().lower()

        def norm(value: Any) -> str:
            text = str(value or "").strip()
            return text if hub_key == "name" else text.lower()

        hub = [c["properties"] for c in self.hub.all("companies") if norm(c["properties"].get(hub_key)) == wanted]
        odoo = [p for p in self.odoo.all("res.partner", include_archived=False)
                if p.get("is_company") and norm(p.get(odoo_key)) == wanted]
        assert len(hub) <= 1 and len(odoo) <= 1, f"duplicates for {email}"
        return (hub[0] if hub else None), (odoo[0] if odoo else None)


def make_world(folder: Path, clock: datetime | None = None) -> World:
    hub = HubSpotSimulator(burst_limit=None, search_rate=None, clock=Clock(frozen=clock) if clock else None).start()
    odoo = OdooSimulator(clock=Clock(frozen=clock) if clock else None).start()
    config = write_config(folder, hub, odoo, f"sqlite:///{folder / 'concord.db'}", crm={"search_rate": 1000},
                          customer={"overlap": "0s"})
    rt = build_runtime(load_config(config))
    for ep in (rt.crm, rt.erp):
        ep.connector.setup([ep.spec("customer")])
    return World(hub, odoo, rt)


def close_world(w: World) -> None:
    w.rt.close()
    w.hub.stop()
    w.odoo.stop()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path)
    try:
        yield w
    finally:
        close_world(w)


def text(value: Any) -> str:
    """A stored value as the other side would compare it (Odoo's false and HubSpot's "" are empty)."""
    return "" if value in (None, False) else str(value).strip()


def assert_synced_or_dead(w: World, record_id: str, email: str, fields: dict[str, tuple[str, str]]) -> str:
    """The record is synced with equal values on both sides, or a dead letter names it and a field."""
    dead = w.dead_letters().get(record_id)
    if dead is not None:
        assert dead.field, f"dead letter for {record_id} names no field: {dead.error_message}"
        assert record_id in dead.error_message and dead.field in dead.error_message, dead.error_message
        return "dead_letter"
    hub, odoo = w.pair(email)
    assert hub is not None and odoo is not None, f"{record_id} ({email}) neither synced nor dead-lettered"
    for hub_name, odoo_name in fields.values():
        assert text(hub.get(hub_name)) == text(odoo.get(odoo_name)), (record_id, hub_name, hub, odoo)
    return "synced"


TEXT_FIELDS = {"name": ("name", "name"), "city": ("city", "city"), "website": ("website", "website")}


# ------------------------------------------------------------------------------------------ a table of edge values
HUB_EDGES: list[tuple[str, dict[str, Any]]] = [
    ("huge name", {"name": "N" * 70_000}),
    ("NUL byte", {"name": "Null \x00 Byte Ltd"}),
    ("unicode", {"name": "Ωμέγα ✓ 中文 Ünïcödé GmbH", "city": "Zürich"}),
    ("right-to-left override", {"name": "\u202eevil\u202c Corp"}),
    ("emoji and combining marks", {"name": "Cafe\u0301 \U0001F600 Ltd"}),
    ("whitespace only", {"name": "   ", "city": "\t"}),
    ("IDN e-mail", {"name": "Idn Ltd", "company_email": "Ünïcødé@Exämple.COM"}),
    ("unknown country", {"name": "Atlantis Ltd", "country": "Atlantis"}),
    ("garbage phone", {"name": "Phone Ltd", "phone": "call me maybe"}),
    ("script URL", {"name": "Script Ltd", "website": "javascript:alert(1)"}),
]
ODOO_EDGES: list[tuple[str, dict[str, Any]]] = [
    ("NaN credit", {"credit_limit": float("nan")}),
    ("infinite credit", {"credit_limit": float("inf")}),
    ("huge credit", {"credit_limit": 1e308}),
    ("binary fraction credit", {"credit_limit": 0.1 + 0.2}),
    ("half-cent credit", {"credit_limit": 1234.565}),
    ("negative zero credit", {"credit_limit": -0.0}),
    ("tiny credit", {"credit_limit": 1e-9}),
    ("false values", {"name": "No Email Partner", "email": False, "city": False, "website": False,
                      "phone": False}),
    ("padded name", {"name": "  Padded  Name  "}),
    ("unicode", {"name": "Łódź Sp. z o.o.", "city": "Łódź"}),
]


def test_edge_values_sync_or_become_dead_letters_and_the_batch_goes_on(world: World) -> None:
    good = [world.company({"name": f"Good Hub {i}"}) for i in range(3)]
    good += [world.partner({"name": f"Good Odoo {i}"}) for i in range(3)]
    edges = [(label, *world.company(dict(props))) for label, props in HUB_EDGES]
    edges += [(label, *world.partner(dict(props))) for label, props in ODOO_EDGES]
    first = world.sync()
    assert first.error is None
    for record_id, email in good:
        assert assert_synced_or_dead(world, record_id, email, TEXT_FIELDS) == "synced", record_id
    outcomes = {label: assert_synced_or_dead(world, record_id, email, TEXT_FIELDS)
                for label, record_id, email in edges if email}
    # What must not sync names its field; what must sync does.
    expected_dead = {"unknown country": "country", "NaN credit": "credit_limit", "infinite credit": "credit_limit"}
    dead = world.dead_letters()
    for label, record_id, _ in edges:
        if label in expected_dead:
            assert outcomes[label] == "dead_letter" and dead[record_id].field == expected_dead[label], (label, dead)
    for label in ("unicode", "IDN e-mail", "padded name", "half-cent credit", "binary fraction credit", "false values"):
        assert outcomes[label] == "synced", label
    # Money arrives with its value (no float noise, no rounding) and settles: the next pass writes nothing.
    for label, record_id, email in edges:
        hub, odoo = world.pair(email)
        if outcomes.get(label) == "synced" and hub is not None and odoo is not None and "credit" in label:
            assert Decimal(hub["erp_credit_limit"]) == Decimal(str(odoo["credit_limit"])), (label, hub, odoo)
    writes = (world.hub.write_count, world.odoo.write_count)
    second = world.sync()
    assert (world.hub.write_count, world.odoo.write_count) == writes, f"ping-pong: {second.counts}"
    record_figures("edge_records_table", records=len(edges) + len(good),
                   **Counter(outcomes.values()), crashes=0)


# ------------------------------------------------------------------------------------------ fuzzed text fields
SURROGATES: list[Literal["Cs"]] = ["Cs"]  # lone surrogates: test_a_lone_surrogate_is_a_dead_letter...
no_surrogates = st.characters(exclude_categories=SURROGATES)
edge_text = st.one_of(st.text(no_surrogates, max_size=60), st.text(st.characters(max_codepoint=0x1F), max_size=8),
                      st.sampled_from(["", " ", "false", "False", "null", "None", "0", "-", "\u00a0", "\u200b"]))


def test_fuzzed_names_and_cities_never_crash_a_pass() -> None:
    outcomes: Counter[str] = Counter()
    folder = Path(tempfile.mkdtemp(prefix="concord-edge-"))
    w = make_world(folder)
    try:

        @fuzz_settings(40, 1000)
        @given(side=st.sampled_from(["hub", "odoo"]), name=edge_text, city=edge_text)
        def check(side: str, name: str, city: str) -> None:
            sibling = w.company({"name": f"Sibling {w.serial}"})
            if side == "hub":
                record_id, email = w.company({"name": name, "city": city})
            else:
                record_id, email = w.partner({"name": name or "x", "city": city})
            report = w.sync()
            assert report.error is None
            assert assert_synced_or_dead(w, sibling[0], sibling[1], TEXT_FIELDS) == "synced"
            outcomes[assert_synced_or_dead(w, record_id, email, TEXT_FIELDS)] += 1

        check()
    finally:
        close_world(w)
    record_figures("edge_records_fuzz", inputs=sum(outcomes.values()), **outcomes, crashes=0)


def test_a_lone_surrogate_is_a_dead_letter_not_a_stuck_pipeline(world: World) -> None:
    sibling = world.company({"name": "Innocent Bystander"})
    bad = world.company({"name": "Broken \udcff Bytes"})
    report = world.sync()
    assert report.error is None
    assert assert_synced_or_dead(world, sibling[0], sibling[1], TEXT_FIELDS) == "synced"
    assert assert_synced_or_dead(world, bad[0], bad[1], TEXT_FIELDS) == "dead_letter"


# ------------------------------------------------------------------------------------------ time
def test_edits_across_a_dst_change_sync_in_order(tmp_path: Path) -> None:
    """Both systems' clocks run through the night Europe leaves summer time (01:00 UTC, 2025-10-26),
    with edits before, at and after it: every edit arrives, in order."""
    start = datetime(2025, 10, 26, 0, 59, 58, tzinfo=UTC)
    w = make_world(tmp_path, clock=start)
    try:
        company, email = w.company({"name": "Before DST"})
        assert w.sync().error is None
        for i, name in enumerate(("At DST", "After DST", "An Hour Later")):
            for sim in (w.hub, w.odoo):
                sim.clock.advance(1 if i < 2 else 3600)
            w.hub.update("companies", company, {"name": name})
            assert w.sync().error is None
            hub, odoo = w.pair(email)
            assert hub is not None and odoo is not None and odoo["name"] == name
    finally:
        close_world(w)


@pytest.mark.parametrize(("raw", "expected"), [
    ("2025-03-30T00:59:59.999Z", datetime(2025, 3, 30, 0, 59, 59, 999000, tzinfo=UTC)),
    ("2025-03-30T03:00:00+02:00", datetime(2025, 3, 30, 1, 0, tzinfo=UTC)),   # CEST, just after the switch
    ("2025-03-30T01:30:00", datetime(2025, 3, 30, 1, 30, tzinfo=UTC)),        # naive: UTC
    ("1743296400000", datetime(2025, 3, 30, 1, 0, tzinfo=UTC)),               # epoch milliseconds
])
def test_hubspot_timestamps_naive_aware_and_epoch(raw: str, expected: datetime) -> None:
    parsed = parse_timestamp(raw)
    assert parsed == expected and parsed.tzinfo is not None and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(("raw", "expected"), [
    ("2025-10-26 01:30:00", datetime(2025, 10, 26, 1, 30, tzinfo=UTC)),       # Odoo: naive UTC
    ("2025-10-26 01:30:00.123456", datetime(2025, 10, 26, 1, 30, tzinfo=UTC)),  # microseconds cut
    (False, None),
])
def test_odoo_datetimes_are_naive_utc(raw: Any, expected: datetime | None) -> None:
    parsed = parse_datetime(raw)
    assert parsed == expected
    assert parsed is None or parsed.utcoffset() == timedelta(0)
