"""Direct helpers for order-to-cash tests and demos: a deal with its company and line items.

These act as a user in HubSpot's UI would (``HubSpotSimulator.create`` / ``associate``), so the
records, associations v4 and webhooks look exactly as if someone had built the deal by hand.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sandbox.hubspot.simulator import HubSpotSimulator

DEAL_TO_COMPANY_PRIMARY = 5
DEAL_TO_COMPANY = 341
DEAL_TO_LINE_ITEM = 19
DEAL_DEFAULTS = {"pipeline": "default", "dealstage": "appointmentscheduled"}


@dataclass
class Deal:
    """Ids of a deal made by :func:`create_deal`."""

    id: str
    line_ids: list[str] = field(default_factory=list)
    company_id: str | None = None


def create_deal(sim: HubSpotSimulator, properties: Mapping[str, Any], *, company: str | None = None,
                primary: bool = True, other_companies: Sequence[str] = (),
                lines: Sequence[Mapping[str, Any]] = ()) -> Deal:
    """Create a deal, associate ``company`` (primary unless ``primary=False``) and any
    ``other_companies`` (unlabeled), and create and associate one line item per ``lines`` entry
    (line item properties, e.g. ``{"hs_product_id": pid, "quantity": 2}``)."""
    deal_id = sim.create("deals", {**DEAL_DEFAULTS, "dealname": "Deal", **properties})
    if company is not None:
        sim.associate("deals", deal_id, "companies", company,
                      DEAL_TO_COMPANY_PRIMARY if primary else DEAL_TO_COMPANY)
    for other in other_companies:
        sim.associate("deals", deal_id, "companies", other, DEAL_TO_COMPANY)
    line_ids = []
    for line in lines:
        line_id = sim.create("line_items", dict(line))
        sim.associate("deals", deal_id, "line_items", line_id, DEAL_TO_LINE_ITEM)
        line_ids.append(line_id)
    return Deal(deal_id, line_ids, company)
