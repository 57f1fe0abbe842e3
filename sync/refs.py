"""Record references (an order's customer, a payment's order) across the two systems' ids.

Inside the engine a reference is held in one neutral form so both sides' values compare: the
CRM's id, or ``erp:<id>`` for an ERP record that has no link yet. Translation goes through the
links table, a batch at a time.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from sync.store import Store

Role = Literal["crm", "erp"]
ERP_PREFIX = "erp:"


class RefTranslator:
    """Translate reference values between a side's ids and the neutral form."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def neutralize(self, role: Role, refs: Mapping[str, str], records: Iterable[dict[str, Any]]) -> None:
        """In place: turn ``role``'s ids in the ref fields of ``records`` into the neutral form."""
        if role == "crm" or not refs:
            return
        records = list(records)
        for fld, entity in refs.items():
            ids = sorted({str(r[fld]) for r in records if r.get(fld) not in (None, "")})
            if not ids:
                continue
            links = self.store.links_by_ids(entity, "erp", ids)
            for r in records:
                v = r.get(fld)
                if v in (None, ""):
                    continue
                link = links.get(str(v))
                r[fld] = link.crm_id if link is not None else f"{ERP_PREFIX}{v}"

    def to_side(self, role: Role, entity: str, values: Iterable[str]) -> dict[str, str | None]:
        """Neutral values -> ``role``'s ids (None where no link exists yet)."""
        values = sorted(set(values))
        out: dict[str, str | None] = {}
        crm_ids = [v for v in values if not v.startswith(ERP_PREFIX)]
        erp_ids = [v[len(ERP_PREFIX):] for v in values if v.startswith(ERP_PREFIX)]
        if role == "crm":
            out.update({v: v for v in crm_ids})
            links = self.store.links_by_ids(entity, "erp", erp_ids) if erp_ids else {}
            out.update({f"{ERP_PREFIX}{i}": (links[i].crm_id if i in links else None) for i in erp_ids})
        else:
            out.update({f"{ERP_PREFIX}{i}": i for i in erp_ids})
            links = self.store.links_by_ids(entity, "crm", crm_ids) if crm_ids else {}
            out.update({v: (links[v].erp_id if v in links else None) for v in crm_ids})
        return out

    @staticmethod
    def home(value: str) -> tuple[Role, str]:
        """Which side a neutral value names a record of, and that side's id."""
        if value.startswith(ERP_PREFIX):
            return "erp", value[len(ERP_PREFIX):]
        return "crm", value
