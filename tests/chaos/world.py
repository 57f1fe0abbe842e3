"""What the reliability suites share: the expected state of every customer (the tests' own ledger,
independent of Concord's store), reading both simulators as a user would, the cursor monotony
check, fault tallies from the simulators, and the figures file RELIABILITY.md is written from.

A customer is identified by its e-mail (unique per test): the ledger says which name and city it
must end with and whether it was archived; :func:`assert_matches_ledger` checks both products.
"""
from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sandbox.core import Request, Response, Simulator
from sandbox.hubspot import HubSpotSimulator
from sandbox.odoo import OdooSimulator
from sync.store import Store

# --------------------------------------------------------------------------------------------
# The ledger: what the test itself wrote, so "nothing lost" is judged without Concord's help.
# --------------------------------------------------------------------------------------------


@dataclass
class Expected:
    """One customer as it must look on both sides once Concord has caught up."""

    email: str
    name: str
    city: str
    archived: bool = False


@dataclass
class Ledger:
    """Every customer the test created or seeded, by e-mail, with its latest intended values."""

    customers: dict[str, Expected] = field(default_factory=dict)

    def add(self, email: str, name: str, city: str) -> Expected:
        assert email not in self.customers, f"the test reused the e-mail {email}"
        self.customers[email] = Expected(email, name, city)
        return self.customers[email]

    def live(self) -> list[Expected]:
        return [c for c in self.customers.values() if not c.archived]


def live_companies(hub: HubSpotSimulator) -> list[dict[str, Any]]:
    """HubSpot companies that are not archived (properties only)."""
    return [c["properties"] for c in hub.all("companies")]


def live_partners(odoo: OdooSimulator) -> list[dict[str, Any]]:
    """Active Odoo partners the customer mapping covers (companies), raw stored values."""
    return [p for p in odoo.all("res.partner", include_archived=False) if p.get("is_company")]


def companies_by_email(hub: HubSpotSimulator) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for props in live_companies(hub):
        out.setdefault((props.get("company_email") or "").strip().lower(), []).append(props)
    return out


def partners_by_email(odoo: OdooSimulator) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for p in live_partners(odoo):
        out.setdefault((p.get("email") or "").strip().lower(), []).append(p)
    return out


def hub_id(hub: HubSpotSimulator, email: str) -> str | None:
    """The id of the live company with this e-mail, if there is exactly one."""
    found = companies_by_email(hub).get(email, [])
    return str(found[0]["hs_object_id"]) if len(found) == 1 else None


def odoo_id(odoo: OdooSimulator, email: str) -> int | None:
    """The id of the active partner with this e-mail, if there is exactly one."""
    found = partners_by_email(odoo).get(email, [])
    return int(found[0]["id"]) if len(found) == 1 else None


def duplicates(hub: HubSpotSimulator, odoo: OdooSimulator) -> dict[str, list[str]]:
    """E-mails held by more than one live record on one side (a duplicate Concord made)."""
    out: dict[str, list[str]] = {}
    for email, rows in companies_by_email(hub).items():
        if len(rows) > 1:
            out[f"hubspot:{email}"] = [str(r["hs_object_id"]) for r in rows]
    for email, rows in partners_by_email(odoo).items():
        if len(rows) > 1:
            out[f"odoo:{email}"] = [str(r["id"]) for r in rows]
    return out


def ledger_mismatches(ledger: Ledger, hub: HubSpotSimulator, odoo: OdooSimulator) -> list[str]:
    """Every way the two products differ from the ledger: missing, duplicated, stale or extra."""
    problems: list[str] = []
    companies, partners = companies_by_email(hub), partners_by_email(odoo)
    for email, want in ledger.customers.items():
        comps, parts = companies.get(email, []), partners.get(email, [])
        if want.archived:
            if comps or parts:
                problems.append(f"{email}: archived, but live on hubspot={len(comps)} odoo={len(parts)}")
            continue
        if len(comps) != 1 or len(parts) != 1:
            problems.append(f"{email}: expected one record per side, found hubspot={len(comps)} odoo={len(parts)}")
            continue
        got = {"hubspot name": comps[0].get("name", ""), "hubspot city": comps[0].get("city", ""),
               "odoo name": parts[0].get("name") or "", "odoo city": parts[0].get("city") or ""}
        for label, value in got.items():
            wanted = want.name if label.endswith("name") else want.city
            if str(value).strip() != wanted:
                problems.append(f"{email}: {label} is {value!r}, expected {wanted!r} (lost change)")
    known = set(ledger.customers)
    for email in sorted((set(companies) | set(partners)) - known):
        problems.append(f"{email}: on a side but never written by the test")
    return problems


def assert_matches_ledger(ledger: Ledger, hub: HubSpotSimulator, odoo: OdooSimulator) -> None:
    """Every customer has exactly one live counterpart per side, with its latest values."""
    problems = ledger_mismatches(ledger, hub, odoo)
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:30])


# --------------------------------------------------------------------------------------------
# Cursors: read from the store after every run; they may stay, never move back.
# --------------------------------------------------------------------------------------------
CursorKey = tuple[str, str, str]


def read_cursors(state_url: str, pipelines: Iterable[str] = ("customer",),
                 systems: Iterable[str] = ("hubspot", "odoo")) -> dict[CursorKey, tuple[datetime, str]]:
    """The stored (updated_at, record id) of every pipeline's cursor on each system."""
    store = Store.open(state_url, upgrade=False)
    try:
        out = {}
        for pipeline in pipelines:
            for system in systems:
                cursor = store.get_cursor(pipeline, system, pipeline)
                if cursor is not None:
                    out[(pipeline, system, pipeline)] = (cursor.updated_at, cursor.record_id)
        return out
    finally:
        store.close()


@dataclass
class CursorWatch:
    """Remembers the last cursors seen and fails when one moved backwards (or vanished)."""

    seen: dict[CursorKey, tuple[datetime, str]] = field(default_factory=dict)
    checks: int = 0

    def check(self, current: Mapping[CursorKey, tuple[datetime, str]]) -> None:
        from connectors.base import id_sort_key
        for key, before in self.seen.items():
            assert key in current, f"cursor {key} disappeared (was {before})"
            now = current[key]
            assert (now[0], id_sort_key(now[1])) >= (before[0], id_sort_key(before[1])), \
                f"cursor {key} went backwards: {before} -> {now}"
        self.seen = dict(current)
        self.checks += 1


# --------------------------------------------------------------------------------------------
# Fault tallies: what the simulators actually did to the requests.
# --------------------------------------------------------------------------------------------
class FaultTally:
    """Counts the faults both simulators injected, plus their 429s and 207 partial failures.

    Faults objects may be swapped during a test (faults on/off): :meth:`absorb` keeps the counts
    of a Faults object before it is replaced.
    """

    def __init__(self, *sims: Simulator) -> None:
        self.sims = sims
        self.retired: Counter[str] = Counter()
        self.responses: Counter[str] = Counter()
        self._lock = threading.Lock()
        for sim in sims:
            sim.observers.append(self._observe)

    def _observe(self, request: Request, response: Response) -> None:
        with self._lock:
            if response.status == 429:
                policy = response.body.get("policyName") if isinstance(response.body, dict) else None
                self.responses[f"rate_limited_429.{policy or 'other'}"] += 1

    def absorb(self, sim: Simulator) -> None:
        """Keep the counts of ``sim``'s current Faults before the test replaces it."""
        self.retired.update({f"{sim.name}.{k}": v for k, v in sim.faults.injected.items()})

    def counts(self) -> Counter[str]:
        total = Counter(self.retired)
        for sim in self.sims:
            total.update({f"{sim.name}.{k}": v for k, v in sim.faults.injected.items()})
        total.update(self.responses)
        return total

    def total(self) -> int:
        return sum(self.counts().values())


def long_run() -> bool:
    """HYPOTHESIS_PROFILE=long: the large budgets, freshly random examples."""
    return os.environ.get("HYPOTHESIS_PROFILE") == "long"


def budget(ci: int, long: int) -> int:
    """An example/iteration budget: ``ci`` by default, ``long`` with HYPOTHESIS_PROFILE=long."""
    return long if long_run() else ci


def fuzz_settings(ci: int, long: int, **extra: Any) -> Any:
    """hypothesis settings for the fuzzers: CI runs the same derandomized examples every time (a red
    CI means a regression, not a lucky draw); the long profile explores with fresh random ones."""
    from hypothesis import HealthCheck, Phase, settings
    repeatable: dict[str, Any] = {} if long_run() else {"derandomize": True, "database": None}
    return settings(max_examples=budget(ci, long), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture],
                    # no "explain" phase: it traces every line of a failing example, for minutes
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink], **repeatable, **extra)


# --------------------------------------------------------------------------------------------
# Figures: appended as JSON lines when CONCORD_FIGURES names a file (RELIABILITY.md's source).
# --------------------------------------------------------------------------------------------
def record_figures(test: str, **figures: Any) -> None:
    """Append one test's measured figures to $CONCORD_FIGURES (if set) and print them."""
    line = json.dumps({"test": test, **figures}, default=str, sort_keys=True)
    print(f"FIGURES {line}")
    target = os.environ.get("CONCORD_FIGURES")
    if target:
        with Path(target).open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
