"""The stateful two-way test: random interleavings of user actions on HubSpot and Odoo, sync passes,
webhook deliveries (duplicated, reordered, stale), crashes and faults, checked against the model.

Both simulators run in this process with frozen clocks that every step advances by one second, so
record modified times order exactly like the steps (newest_wins is then decidable by the model).
Passes are in-process :class:`EntityPipeline` runs on a runtime built from a real config file, with
the state in SQLite in a temporary folder.
"""
from __future__ import annotations

import dataclasses
import random
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, cast

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sandbox.core import Clock, Faults
from sandbox.fixtures import write_config
from sandbox.hubspot import HubSpotSimulator
from sandbox.odoo import OdooSimulator
from sync.config import load_config
from sync.pipeline import EntityPipeline, PipelineStopped, RunReport
from sync.runtime import Runtime, build_runtime
from sync.verify import check_agreement
from tests.chaos.world import CursorWatch, duplicates

from .model import FIELDS, HUB_FIELDS, Customer, Side, expect, settle

FAULTS: dict[str, Any] = {"error_rate": 0.10, "drop_before_rate": 0.03, "drop_after_rate": 0.05, "partial_rate": 0.10}
WRITES = ("created", "adopted", "matched", "updated", "updated_back", "archived")

# Figures for RELIABILITY.md, summed over every example this process ran.
STATS: Counter[str] = Counter()


class SimulatedCrash(BaseException):
    """The process died (raised where the pipeline calls the store, so nothing of that call is stored)."""


class CrashingStore:
    """The runtime's store, except that the process dies at the ``at``-th batch commit (``where``
    "commit"), or at the ``at``-th match-index update ("index": right after a batch's writes were
    applied, before the batch is committed or even indexed)."""

    def __init__(self, store: Any, at: int, where: str = "commit") -> None:
        self._store = store
        self._left = at
        self._where = where

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _tick(self) -> None:
        self._left -= 1
        if self._left == 0:
            raise SimulatedCrash()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        if self._where == "commit":
            self._tick()
        with self._store.transaction() as tx:
            yield tx

    def match_index_add(self, *args: Any, **kwargs: Any) -> Any:
        if self._where == "index":
            self._tick()
        return self._store.match_index_add(*args, **kwargs)


class CustomerSyncMachine(RuleBasedStateMachine):
    """Two-way customer sync with owners (website: CRM, credit limit: ERP) and ``policy``."""

    policy: ClassVar[str] = "newest_wins"

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="concord-prop-"))
        start = datetime.now(UTC).replace(microsecond=0)
        self.now = start
        self.hub = HubSpotSimulator(clock=Clock(frozen=start), burst_limit=None, search_rate=None).start()
        self.odoo = OdooSimulator(clock=Clock(frozen=start)).start()
        connector = {"max_attempts": 2, "backoff_max": 0.01, "timeout": 10, "page_size": 4, "batch_size": 3}
        hub_connector = {**connector, "search_rate": 1000}  # the simulator's search limit is off too
        config = write_config(
            self.folder, self.hub, self.odoo, f"sqlite:///{self.folder / 'concord.db'}",
            customer={"conflict": self.policy, "overlap": "0s",
                      "owner": {"website": "crm", "credit_limit": "erp", "balance_due": "erp",
                                "customer_code": "erp"}},
            crm=hub_connector, erp=connector,
            extra={"dead_letters": {"backoff_initial": "1ms", "backoff_max": "1ms", "max_attempts": 1000}})
        self.rt: Runtime = build_runtime(load_config(config))
        for ep in (self.rt.crm, self.rt.erp):
            ep.connector.setup([ep.spec("customer")])
        self.customers: dict[str, Customer] = {}
        self.serial = 0
        self.events: list[tuple[Side, str, str]] = []   # every webhook event ever sent: (side, id, kind)
        self.undelivered: set[int] = set()
        self.faults_on = False
        self.cursors = CursorWatch()
        self.rng = random.Random(0)
        STATS["examples"] += 1

    # ------------------------------------------------------------------ helpers
    def tick(self) -> None:
        """One second passes on both systems (every step): modified times order like the steps."""
        self.now += timedelta(seconds=1)
        self.hub.clock.advance(1)
        self.odoo.clock.advance(1)

    def fresh(self, what: str) -> str:
        self.serial += 1
        return f"{what} {self.serial:04d}"

    def hub_record(self, email: str) -> dict[str, Any] | None:
        found = [c for c in self.hub.all("companies") if c["properties"].get("company_email") == email]
        assert len(found) <= 1, f"duplicate companies for {email}"
        return found[0] if found else None

    def odoo_record(self, email: str) -> dict[str, Any] | None:
        found = [p for p in self.odoo.all("res.partner", include_archived=False)
                 if p.get("is_company") and p.get("email") == email]
        assert len(found) <= 1, f"duplicate partners for {email}"
        return found[0] if found else None

    def live(self, side: Side | None = None) -> list[Customer]:
        out = [c for c in self.customers.values() if c.archived is None]
        if side is not None:
            out = [c for c in out if c.side(side).exists]
        return sorted(out, key=lambda c: c.email)

    def send_event(self, side: Side, record_id: str, kind: str) -> None:
        self.events.append((side, record_id, kind))
        self.undelivered.add(len(self.events) - 1)

    def set_faults(self, on: bool) -> None:
        for n, sim in enumerate((self.hub, self.odoo)):
            STATS.update({f"faults.{sim.name}.{k}": v for k, v in sim.faults.injected.items()})
            sim.faults = Faults(**FAULTS, seed=self.serial * 2 + n) if on else Faults()
        self.faults_on = on

    def pass_(self, *, crash_at: int | None = None, where: str = "commit") -> RunReport | None:
        """One incremental pass, both directions; None when it stopped (crash, or a system down)."""
        rt = self.rt
        if crash_at is not None:
            rt = dataclasses.replace(self.rt, store=cast(Any, CrashingStore(self.rt.store, crash_at, where)))
        STATS["passes"] += 1
        try:
            report = EntityPipeline(rt, "customer").run()
        except SimulatedCrash:
            STATS["crashes"] += 1
            return None
        except PipelineStopped:
            STATS["stopped_passes"] += 1
            return None
        finally:
            self.cursors.check({k: (c.updated_at, c.record_id) for k, c in self._cursors().items()})
        return report

    def _cursors(self) -> dict[tuple[str, str, str], Any]:
        out = {}
        for system in ("hubspot", "odoo"):
            cursor = self.rt.store.get_cursor("customer", system, "customer")
            if cursor is not None:
                out[("customer", system, "customer")] = cursor
        return out

    def open_dead_letter_ids(self) -> set[str]:
        return {d.record_id for d in self.rt.store.list_dead_letters()}

    def after_sync(self, clean: bool, emails: list[str] | None = None) -> None:
        """Settle the customers a sync completed (checking them), or mark the ones left in doubt."""
        chosen = [self.customers[e] for e in emails] if emails is not None else list(self.customers.values())
        for c in chosen:
            if c.archived is not None:
                continue
            if clean:
                self.check_settled(c)
            elif c.pending:
                c.shaky = True

    def actual(self, c: Customer) -> tuple[dict[str, Any], dict[str, Any]]:
        """(HubSpot values, Odoo values) of a customer, in the model's terms."""
        company, partner = self.hub_record(c.email), self.odoo_record(c.email)
        assert company is not None and partner is not None, \
            f"{c.email}: hubspot {'present' if company else 'MISSING'}, odoo {'present' if partner else 'MISSING'}"
        props = company["properties"]
        hub = {k: props.get(k) or None for k in HUB_FIELDS}
        hub["credit_limit"] = Decimal(props["erp_credit_limit"]) if props.get("erp_credit_limit") else None
        odoo = {k: partner.get(k) or None for k in HUB_FIELDS}
        odoo["credit_limit"] = Decimal(str(partner.get("credit_limit") or 0))
        return hub, odoo

    def check_settled(self, c: Customer) -> None:
        want = expect(c, self.policy)
        hub, odoo = self.actual(c)
        for name in FIELDS:
            allowed = want[name].allowed
            assert _norm(name, hub[name]) == _norm(name, odoo[name]), \
                f"{c.email}.{name}: sides disagree after a complete sync: hubspot {hub[name]!r}, odoo {odoo[name]!r}"
            assert any(_norm(name, hub[name]) == _norm(name, a) for a in allowed), \
                f"{c.email}.{name}: {hub[name]!r}, but the policy says {' or '.join(map(repr, allowed))}"
        STATS["records_checked"] += 1
        settle(c, {k: (odoo[k] if k == "credit_limit" else hub[k]) for k in FIELDS})

    # ------------------------------------------------------------------ user actions
    @rule(same_name=st.booleans(), same_city=st.booleans(), where=st.sampled_from(["hub", "odoo", "both"]),
          credit=st.sampled_from([None, 0, 1500, 2500.5]))
    def create(self, where: str, same_name: bool, same_city: bool, credit: float | None) -> None:
        """A customer typed into HubSpot, Odoo, or both (same e-mail, maybe different details), before
        or after the first sync: either way the next pass (or a webhook) matches the two on e-mail."""
        self.tick()
        self.serial += 1
        email = f"c{self.serial:04d}@prop.example"
        c = Customer(email)
        self.customers[email] = c
        name, city, website = self.fresh("Name"), self.fresh("City"), f"https://w{self.serial}.example"
        if where in ("hub", "both"):
            hid = self.hub.create("companies", {"name": name, "city": city, "website": website,
                                                "company_email": email})
            c.edit("hub", {"name": name, "city": city, "website": website}, self.now)
            self.send_event("hub", hid, "create")
        if where in ("odoo", "both"):
            values: dict[str, Any] = {
                "name": name if same_name or where == "odoo" else self.fresh("Name"),
                "city": city if same_city or where == "odoo" else self.fresh("City"),
                "website": website if where == "odoo" else f"https://o{self.serial}.example"}
            vals = {**values, "email": email, "is_company": True, "customer_rank": 1}
            if credit is not None:
                vals["credit_limit"] = credit
            oid = self.odoo.create("res.partner", vals)
            c.edit("odoo", {**values, "credit_limit": credit if credit is not None else 0}, self.now)
            self.send_event("odoo", str(oid), "create")
        STATS["user_actions"] += 1

    @precondition(lambda self: self.live("hub"))
    @rule(pick=st.integers(0, 10_000), what=st.sampled_from(HUB_FIELDS))
    def edit_in_hubspot(self, pick: int, what: str) -> None:
        self.tick()
        candidates = self.live("hub")
        c = candidates[pick % len(candidates)]
        company = self.hub_record(c.email)
        if company is None:  # the model believes it exists but it is not there: a lost record
            raise AssertionError(f"{c.email}: the HubSpot company disappeared")
        value = self.fresh(what.title()) if what != "website" else f"https://e{self.serial + 1}.example"
        self.hub.update("companies", company["id"], {what: value})
        c.edit("hub", {what: value}, self.now)
        self.send_event("hub", company["id"], "update")
        STATS["user_actions"] += 1

    @precondition(lambda self: self.live("odoo"))
    @rule(pick=st.integers(0, 10_000), what=st.sampled_from([*HUB_FIELDS, "credit_limit"]))
    def edit_in_odoo(self, pick: int, what: str) -> None:
        self.tick()
        candidates = self.live("odoo")
        c = candidates[pick % len(candidates)]
        partner = self.odoo_record(c.email)
        if partner is None:
            raise AssertionError(f"{c.email}: the Odoo partner disappeared")
        if what == "credit_limit":
            value: Any = 100 * (self.serial + 1)
        elif what == "website":
            value = f"https://e{self.serial + 1}.example"
        else:
            value = self.fresh(what.title())
        self.serial += 1
        self.odoo.update("res.partner", partner["id"], {what: value})
        c.edit("odoo", {what: value}, self.now)
        self.send_event("odoo", str(partner["id"]), "update")
        STATS["user_actions"] += 1

    def _archivable(self, side: Side) -> list[Customer]:
        # An archive may race an unsynced edit on the other side (it wins) or fail under faults (it is
        # retried). Not archived: a half-synced record (it may have an unlinked copy, which an archive
        # would leave live), or one typed into both that Concord never matched (nothing ties the other
        # copy to it: that copy is synced back as a customer of its own).
        other: Side = "odoo" if side == "hub" else "hub"
        return [c for c in self.live(side) if not c.shaky and (c.agreed is not None or not c.side(other).exists)]

    @precondition(lambda self: self._archivable("hub"))
    @rule(pick=st.integers(0, 10_000))
    def archive_in_hubspot(self, pick: int) -> None:
        self.tick()
        candidates = self._archivable("hub")
        c = candidates[pick % len(candidates)]
        company = self.hub_record(c.email)
        assert company is not None, f"{c.email}: the HubSpot company disappeared"
        self.hub.archive("companies", company["id"])
        c.archived = "hub"
        self.send_event("hub", company["id"], "delete")  # archived companies are not searchable: only the webhook tells
        STATS["user_actions"] += 1

    @precondition(lambda self: self._archivable("odoo"))
    @rule(pick=st.integers(0, 10_000))
    def archive_in_odoo(self, pick: int) -> None:
        self.tick()
        candidates = self._archivable("odoo")
        c = candidates[pick % len(candidates)]
        partner = self.odoo_record(c.email)
        assert partner is not None, f"{c.email}: the Odoo partner disappeared"
        self.odoo.archive("res.partner", partner["id"])
        c.archived = "odoo"
        self.send_event("odoo", str(partner["id"]), "update")
        STATS["user_actions"] += 1

    # ------------------------------------------------------------------ Concord
    @rule()
    def sync_pass(self) -> None:
        """One incremental pass (`concord sync`), under the current faults."""
        self.tick()
        report = self.pass_()
        self.after_sync(report is not None and not report.counts.dead_letters and not report.counts.conflicts)

    @rule(at=st.integers(1, 3), where=st.sampled_from(["commit", "index"]))
    def crash(self, at: int, where: str) -> None:
        """A pass whose process dies at its ``at``-th batch commit or match-index update (see CrashingStore)."""
        self.tick()
        report = self.pass_(crash_at=at, where=where)
        self.after_sync(report is not None and not report.counts.dead_letters and not report.counts.conflicts)

    def unmatched_pairs(self) -> bool:
        """Customers typed into both that no complete sync has matched yet."""
        return any(c.agreed is None and c.hub.exists and c.odoo.exists for c in self.customers.values())

    @precondition(lambda self: self.events)
    @rule(data=st.data())
    def deliver_webhooks(self, data: st.DataObject) -> None:
        """Webhook events handled by the daemon's inbox worker: pending ones and redeliveries of old
        ones, in any order; each becomes a re-read by id (sync_ids), as in sync/daemon.py."""
        self.tick()
        n = len(self.events)
        picked = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=6), label="events")
        pipeline = EntityPipeline(self.rt, "customer")
        order: list[Side] = data.draw(st.permutations(["hub", "odoo"]), label="order")
        for side in order:
            chosen = [self.events[i] for i in picked if self.events[i][0] == side]
            if not chosen:
                continue
            ids = list(dict.fromkeys(rid for _, rid, _ in chosen))
            deleted = [rid for _, rid, kind in chosen if kind == "delete"]
            STATS["webhook_events_delivered"] += len(chosen)
            try:
                pipeline.sync_ids("crm" if side == "hub" else "erp", ids, deleted_ids=deleted)
                clean = True
            except PipelineStopped:
                clean = False
            dead = self.open_dead_letter_ids()
            for c in list(self.customers.values()):
                if c.archived is not None or self._id_on(c, side) not in ids:
                    continue
                if not self._changed_on(c, side):
                    continue  # an echo: the re-read finds nothing new on this side and does nothing
                ok = clean and self._id_on(c, side) not in dead
                self.after_sync(ok, [c.email])
        self.undelivered -= set(picked)

    def _id_on(self, c: Customer, side: Side) -> str | None:
        rec = self.hub_record(c.email) if side == "hub" else self.odoo_record(c.email)
        if rec is None:
            return None
        return str(rec["id"])

    def _changed_on(self, c: Customer, side: Side) -> bool:
        """Whether a re-read of ``c`` on ``side`` has something to sync: a change there since the
        last complete sync (then it is merged with its counterpart, whose changes come along)."""
        if c.shaky:
            return False  # a half-done sync may have synced this side's edits already: then it is an echo
        return c.side(side).exists and (c.agreed is None or bool(c.side(side).edited))

    @rule(on=st.booleans())
    def toggle_faults(self, on: bool) -> None:
        """Turn all faults on (5xx, dropped connections before/after apply, 207 partials) or off."""
        self.set_faults(on)

    # ------------------------------------------------------------------ invariants
    @invariant()
    def nothing_duplicated(self) -> None:
        assert not duplicates(self.hub, self.odoo)

    # ------------------------------------------------------------------ the end
    def quiesce(self) -> None:
        """Faults off, every undelivered webhook delivered, then passes until one writes nothing."""
        self.set_faults(False)
        if self.unmatched_pairs():
            self.tick()
            report = self.pass_()
            assert report is not None, "a pass without faults stopped"
            self.after_sync(not report.counts.dead_letters)
        pending = sorted(self.undelivered)
        self.rng.shuffle(pending)
        pipeline = EntityPipeline(self.rt, "customer")
        for side in ("hub", "odoo"):
            chosen = [self.events[i] for i in pending if self.events[i][0] == side]
            if chosen:
                pipeline.sync_ids("crm" if side == "hub" else "erp", list(dict.fromkeys(r for _, r, _ in chosen)),
                                  deleted_ids=[r for _, r, k in chosen if k == "delete"])
        for _ in range(4):
            self.tick()
            report = self.pass_()
            assert report is not None, "a pass without faults stopped"
            assert not report.counts.conflicts
            if not any(getattr(report.counts, k) for k in WRITES) and not report.counts.dead_letters:
                break
        else:
            raise AssertionError("no quiet pass after 4 passes without faults")
        self.after_sync(True)

    def final_check(self) -> None:
        self.quiesce()
        for c in self.customers.values():
            if c.archived is not None:
                assert self.hub_record(c.email) is None and self.odoo_record(c.email) is None, \
                    f"{c.email}: archived in {c.archived}, still live on the other side"
        agreement = check_agreement(self.rt, "customer")
        assert agreement.ok, (agreement.differences[:3], agreement.unlinked_crm[:3], agreement.unlinked_erp[:3])
        before = (self.hub.write_count, self.odoo.write_count)
        report = self.pass_()
        assert report is not None and (self.hub.write_count, self.odoo.write_count) == before, \
            "a pass after convergence wrote"
        STATS["final_checks"] += 1
        STATS["customers"] += len(self.customers)

    def teardown(self) -> None:
        failed = sys.exc_info()[1] is not None  # a failing step is reported as is, not masked
        try:
            if not failed:
                self.final_check()
        finally:
            self.close()

    def close(self) -> None:
        """Stop both simulators and drop the runtime and the temporary folder."""
        self.set_faults(False)
        self.rt.close()
        self.hub.stop()
        self.odoo.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class CrmWinsMachine(CustomerSyncMachine):
    """The same, with ``conflict: crm_wins``."""

    policy = "crm_wins"


def _norm(name: str, value: Any) -> Any:
    if name == "credit_limit":
        return Decimal(str(value if value is not None else 0)).normalize()
    return value or None
