"""The reference model of the customer policy the property test checks Concord against.

Per customer (identified by its e-mail) the model keeps what users did on each side since the
last *complete* sync (a pass, or a webhook-driven re-sync of that record, that ended without an
error or a dead letter) and what both sides agreed on at that sync. At the next complete sync it
says what every field must become, following DESIGN.md: fields with an owner take the owner's
value; other fields changed on one side take that side's value; a field changed on both sides
goes to the policy (crm_wins, or newest_wins by the records' modified times, ties to the CRM).

Values written by users are fresh (never reused), so "changed" is simply "edited". A sync that
stopped half-way (crash, faults) may have synced some records and not others; for a field then
edited on both sides the model only knows that the result is one of the two users' values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

Side = Literal["hub", "odoo"]
POLICY_FIELDS = ("name", "city")   # both sides edit them; conflicts go to the policy
OWNERS: dict[str, Side] = {"website": "hub", "credit_limit": "odoo"}
FIELDS = (*POLICY_FIELDS, *OWNERS)
HUB_FIELDS = ("name", "city", "website")  # credit_limit is out_only in HubSpot: shown, never read


@dataclass
class SideState:
    """One product's copy of a customer, as far as the model knows."""

    exists: bool = False
    values: dict[str, Any] = field(default_factory=dict)
    edited: set[str] = field(default_factory=set)   # fields users changed since the last complete sync
    last_edit: datetime | None = None               # the record's modified time from those edits
    history: dict[str, list[Any]] = field(default_factory=dict)  # every value held since that sync


@dataclass
class Customer:
    """One customer: both sides, the agreed values, and whether the last sync left doubt."""

    email: str
    hub: SideState = field(default_factory=SideState)
    odoo: SideState = field(default_factory=SideState)
    agreed: dict[str, Any] | None = None   # after the last complete sync; None before the first
    shaky: bool = False                     # a sync stopped half-way while changes were pending
    archived: Side | None = None

    def side(self, name: Side) -> SideState:
        return self.hub if name == "hub" else self.odoo

    @property
    def pending(self) -> bool:
        """Changes not yet known to be synced (new records count)."""
        return self.agreed is None or bool(self.hub.edited or self.odoo.edited)

    def edit(self, side: Side, values: dict[str, Any], at: datetime) -> None:
        s = self.side(side)
        s.exists = True
        s.values.update(values)
        s.edited.update(values)
        s.last_edit = at
        for name, value in values.items():
            s.history.setdefault(name, []).append(value)


@dataclass
class Expectation:
    """What one field must be on both sides after a complete sync: one value, or one of a few."""

    allowed: list[Any]

    @property
    def exact(self) -> bool:
        return len(self.allowed) == 1


def expect(c: Customer, policy: str) -> dict[str, Expectation]:
    """The value of every field once ``c`` is synced, per the configured owners and policy.

    A sync that stopped half-way leaves write intents (sync/intents.py), so a write Concord made but
    did not record is not mistaken for a user's edit: owners and crm_wins hold exactly, crash or not.
    """
    out: dict[str, Expectation] = {}
    for name in FIELDS:
        out[name] = _expect_field(c, name, policy)
    return out


def _expect_field(c: Customer, name: str, policy: str) -> Expectation:
    hub, odoo = c.hub, c.odoo
    hub_has = hub.exists and name in HUB_FIELDS
    if name == "credit_limit":
        # Owned by the ERP, which defaults it to 0 on a partner Concord creates.
        value = odoo.values.get(name) if odoo.exists else None
        return Expectation([Decimal(str(value if value is not None else 0))])
    if not hub_has or not odoo.exists:
        only = hub if hub_has else odoo
        return Expectation([only.values.get(name)])
    owner = OWNERS.get(name)
    if owner is not None:
        return Expectation([c.side(owner).values.get(name)])
    h, o = hub.values.get(name), odoo.values.get(name)
    if c.agreed is None:
        # First match of a customer typed into both: no history, every difference is a conflict.
        changed_h, changed_o = h is not None, o is not None
    else:
        changed_h, changed_o = name in hub.edited, name in odoo.edited
    if not changed_h and not changed_o:
        return Expectation([c.agreed.get(name) if c.agreed else h])
    if changed_h != changed_o:
        return Expectation([h if changed_h else o])
    if h == o:
        return Expectation([h])
    if c.shaky:
        return Expectation([h, o])  # a half-done sync may have moved the base: either user's value
    if policy == "crm_wins":
        return Expectation([h])
    assert hub.last_edit is not None and odoo.last_edit is not None
    return Expectation([o if odoo.last_edit > hub.last_edit else h])


def settle(c: Customer, actual: dict[str, Any]) -> None:
    """After a complete sync: both sides hold ``actual`` (checked by the caller); no edits pending."""
    c.agreed = dict(actual)
    for s in (c.hub, c.odoo):
        s.exists = True
        s.values = {k: v for k, v in actual.items() if s is c.odoo or k in HUB_FIELDS}
        s.edited = set()
        s.last_edit = None
        s.history = {k: [v] for k, v in s.values.items()}
    c.shaky = False
