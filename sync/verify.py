"""Read both sides and check that linked records agree: the demo's final check and a test oracle.

This holds one side's canonical records in memory, so it is for small data sets; `concord reconcile`
is the streaming, bounded-memory version for production sizes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sync.merge import _key, flatten
from sync.runtime import Endpoint, Runtime


@dataclass
class Agreement:
    """The outcome of a full comparison of one entity."""

    entity: str
    crm_records: int = 0
    erp_records: int = 0
    linked: int = 0
    unlinked_crm: list[str] = field(default_factory=list)
    unlinked_erp: list[str] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)
    unmappable: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.unlinked_crm or self.unlinked_erp or self.differences or self.unmappable)


def _read_all(ep: Endpoint, entity: str, unmappable: list[str]) -> dict[str, dict[str, Any]]:
    em = ep.entity(entity)
    assert em is not None
    out: dict[str, dict[str, Any]] = {}
    for page in ep.connector.iter_all(ep.spec(entity)):
        for rec in page.records:
            if rec.deleted:
                continue
            try:
                out[rec.id] = flatten(em.to_canonical(rec.data))
            except Exception:  # a record the mapping refuses is reported, not a crash of the check
                unmappable.append(f"{ep.system}:{rec.id}")
    return out


def compared_fields(rt: Runtime, entity: str) -> set[str]:
    """Fields both sides read and both sides write: where agreement is guaranteed.

    A field one side cannot store (Odoo's state name, say) may legitimately differ: Concord
    never erases the other side's value with an empty one it could not receive.
    """
    cm, em = rt.crm.entity(entity), rt.erp.entity(entity)
    assert cm is not None and em is not None
    shared = set(cm.inbound_fields()) & set(em.inbound_fields())
    return shared & set(cm.outbound_fields()) & set(em.outbound_fields())


def check_agreement(rt: Runtime, entity: str) -> Agreement:
    """Compare every linked pair field by field; list records with no counterpart."""
    result = Agreement(entity)
    crm = _read_all(rt.crm, entity, result.unmappable)
    erp = _read_all(rt.erp, entity, result.unmappable)
    result.crm_records, result.erp_records = len(crm), len(erp)
    fields = compared_fields(rt, entity)
    seen_crm: set[str] = set()
    seen_erp: set[str] = set()
    for link in rt.store.iter_links(entity):
        if link.deleted:
            continue
        c, e = crm.get(link.crm_id), erp.get(link.erp_id)
        if c is None or e is None:
            continue
        seen_crm.add(link.crm_id)
        seen_erp.add(link.erp_id)
        result.linked += 1
        for name in sorted(fields):
            if _key(c.get(name)) != _key(e.get(name)):
                result.differences.append({"crm_id": link.crm_id, "erp_id": link.erp_id, "field": name,
                                           "crm": c.get(name), "erp": e.get(name)})
    result.unlinked_crm = sorted(set(crm) - seen_crm)
    result.unlinked_erp = sorted(set(erp) - seen_erp)
    return result
