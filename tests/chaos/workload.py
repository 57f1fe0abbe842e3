"""A seeded user workload for the chaos tests: customers created on both sides, names edited in
HubSpot, cities edited in Odoo, partners archived in Odoo, each recorded in the :class:`Ledger`.

Each field is edited on one side only (names in the CRM, cities in the ERP), so the value every
customer must end with is the last one written, whatever the conflict policy and the clocks say:
a different final value can only mean a lost change. An archive may race an unsynced edit: the archive
wins, so an archived customer must end archived on both sides. One exception is left out on purpose: a
customer typed into both products is not edited until Concord has linked the two records, because
before the first match there is no common history to tell which side changed which field (the
merge then rightly treats every difference as a conflict and lets the newer record win). And a
copy Concord created is only edited once Concord has linked it: a copy whose link a crash lost is
adopted by the next run as if new, and an edit made to it in between is overwritten (a known bug,
tests/property/test_findings.py).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from sandbox.fixtures import country_ids
from sandbox.hubspot import HubSpotSimulator
from sandbox.odoo import OdooSimulator
from sync.store import Store

from .world import Expected, Ledger, hub_id, odoo_id

CITIES = ("Berlin", "Lyon", "Austin", "Leeds", "Graz", "Porto", "Turku", "Cork", "Gent", "Brno")


@dataclass
class Workload:
    """Creates and edits customers behind Concord's back, and remembers what it wrote."""

    hub: HubSpotSimulator
    odoo: OdooSimulator
    state_url: str
    rng: random.Random
    ledger: Ledger = field(default_factory=Ledger)
    serial: int = 0
    edits: int = 0
    unmatched: set[str] = field(default_factory=set)  # typed into both, not linked yet
    typed_in: dict[str, set[str]] = field(default_factory=dict)  # e-mail -> the products a user typed it into

    def _email(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial:05d}@chaos.example"

    def create_in_hubspot(self) -> str:
        email = self._email("crm")
        name, city = f"Crm Customer {self.serial:05d}", self.rng.choice(CITIES)
        # Mixed case on purpose: the mapping lower-cases e-mails on the way in.
        self.hub.create("companies", {"name": name, "company_email": email.upper(), "city": city})
        self.ledger.add(email, name, city)
        self.typed_in[email] = {"hubspot"}
        self.edits += 1
        return email

    def create_in_odoo(self) -> str:
        email = self._email("erp")
        name, city = f"Erp Customer {self.serial:05d}", self.rng.choice(CITIES)
        self.odoo.create("res.partner", {"name": name, "email": email, "city": city, "is_company": True,
                                         "customer_rank": 1})
        self.ledger.add(email, name, city)
        self.typed_in[email] = {"odoo"}
        self.edits += 1
        return email

    def create_on_both(self) -> str:
        """The same customer typed into both products (matched on e-mail by the first sync)."""
        email = self._email("both")
        name, city = f"Shared Customer {self.serial:05d}", self.rng.choice(CITIES)
        self.hub.create("companies", {"name": name, "company_email": email, "city": city, "country": "Germany"})
        self.odoo.create("res.partner", {"name": name, "email": email, "city": city, "is_company": True,
                                         "customer_rank": 1, "country_id": country_ids(self.odoo)["DE"]})
        self.ledger.add(email, name, city)
        self.typed_in[email] = {"hubspot", "odoo"}
        self.unmatched.add(email)
        self.edits += 2
        return email

    def _linked(self) -> tuple[set[str], set[str]]:
        """(CRM ids, ERP ids) Concord has linked so far, from its store."""
        store = Store.open(self.state_url, upgrade=False)
        try:
            links = [link for link in store.iter_links("customer") if not link.deleted]
        finally:
            store.close()
        return {link.crm_id for link in links}, {link.erp_id for link in links}

    def _editable(self, system: str) -> list[Expected]:
        """Live customers a user may edit in ``system`` (a product name): typed in there, or linked."""
        crm_ids, erp_ids = self._linked()
        self.unmatched = {e for e in self.unmatched if hub_id(self.hub, e) not in crm_ids}
        out = []
        for c in self.ledger.live():
            if c.email in self.unmatched:
                continue
            record_id = hub_id(self.hub, c.email) if system == "hubspot" else str(odoo_id(self.odoo, c.email))
            if record_id and (system in self.typed_in.get(c.email, set())
                              or record_id in (crm_ids if system == "hubspot" else erp_ids)):
                out.append(c)
        return out

    def rename_in_hubspot(self) -> bool:
        """A user renames a customer in HubSpot (only where it has exactly one company)."""
        candidates = self._editable("hubspot")
        if not candidates:
            return False
        customer = self.rng.choice(candidates)
        self.serial += 1
        customer.name = f"{customer.name.split(' /')[0]} / renamed {self.serial}"
        self.hub.update("companies", hub_id(self.hub, customer.email) or "", {"name": customer.name})
        self.edits += 1
        return True

    def move_in_odoo(self) -> bool:
        """A user changes a customer's city in Odoo."""
        candidates = self._editable("odoo")
        if not candidates:
            return False
        customer = self.rng.choice(candidates)
        customer.city = self.rng.choice([c for c in CITIES if c != customer.city])
        self.odoo.update("res.partner", odoo_id(self.odoo, customer.email) or 0, {"city": customer.city})
        self.edits += 1
        return True

    def archive_in_odoo(self) -> bool:
        """A user archives a customer in Odoo that Concord has linked, edited since on either side or not
        (the archive wins over an unsynced edit: test_archive_racing_an_edit_...)."""
        _, linked = self._linked()
        candidates = [c for c in self._editable("odoo") if str(odoo_id(self.odoo, c.email)) in linked]
        if not candidates:
            return False
        customer = self.rng.choice(candidates)
        self.odoo.archive("res.partner", odoo_id(self.odoo, customer.email) or 0)
        customer.archived = True
        self.edits += 1
        return True

    def seed(self, *, crm: int, erp: int, both: int) -> None:
        for _ in range(crm):
            self.create_in_hubspot()
        for _ in range(erp):
            self.create_in_odoo()
        for _ in range(both):
            self.create_on_both()

    def round(self, size: int) -> None:
        """``size`` random user actions: creates (the odd one typed into both products), renames, moves and
        the odd archive."""
        actions = [self.create_in_hubspot, self.create_in_odoo, self.create_on_both, self.rename_in_hubspot,
                   self.rename_in_hubspot, self.move_in_odoo, self.move_in_odoo, self.archive_in_odoo]
        for _ in range(size):
            self.rng.choice(actions)()
