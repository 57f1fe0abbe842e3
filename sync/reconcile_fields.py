"""What `concord reconcile` compares for one entity, and how a native record becomes a comparable row.

The comparison follows the sync's own semantics. A canonical field is compared when the entity's
configured flows carry it: some allowed direction A -> B in which A reads the field and B is
written it (an owner restricts the flows to owner -> other). That is every field the sync keeps
equal: the two-way fields of sync/verify.py ``compared_fields`` (both sides read and write them),
plus one-way ones (an ERP-owned credit limit shown in the CRM, stock levels, payment figures).

Values are the canonical ones after the mappings' transforms (so phone formats, case, trailing
spaces and decimal scale never count). A field that B is written but cannot read back through
its mapping (``out_only``) is decoded from B's raw native value with the field's own inbound
transform, so a hand edit of B's copy is found too.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.base import NativeRecord
from sync.merge import _key, flat_canonical
from sync.model import _normalise, content_hash
from sync.pipeline import DIRECTIONS, EntityPipeline, match_value
from sync.refs import RefTranslator
from sync.runtime import Endpoint, Role, Runtime

ROLES: tuple[Role, Role] = ("crm", "erp")
KEY_KIND = "@key"  # match-key kind of the idempotency key (a canonical field is never named so)


def other(role: Role) -> Role:
    """The other side."""
    return "erp" if role == "crm" else "crm"


@dataclass(frozen=True)
class FieldFlow:
    """One compared field: which directions carry it and who can read it back."""

    name: str
    flows: tuple[tuple[Role, Role], ...]    # allowed (source, target) pairs
    readable: frozenset[Role]                # sides whose mapping reads the field

    @property
    def two_way(self) -> bool:
        return len(self.flows) == 2

    @property
    def direction(self) -> str:
        """``both``, ``crm_to_erp`` or ``erp_to_crm``."""
        return "both" if self.two_way else f"{self.flows[0][0]}_to_{self.flows[0][1]}"

    def write_only_on(self, role: Role) -> bool:
        """True when ``role`` is written this field but cannot read it back through its mapping."""
        return role not in self.readable


@dataclass(frozen=True)
class FieldPlan:
    """The compared fields of one entity and the entity's sync settings that decide repairs."""

    entity: str
    fields: tuple[FieldFlow, ...]
    direction: str                               # the configured direction
    passes: tuple[tuple[Role, Role], ...]        # the sync's passes (an order's status comes back)
    match_on: tuple[str, ...]
    on_delete: str
    creatable: frozenset[Role]                   # sides on which the sync may create this entity
    key_fields: Mapping[Role, str | None] = field(default_factory=dict)
    systems: Mapping[Role, str] = field(default_factory=dict)   # role -> connector name (hubspot, odoo)

    @property
    def two_way(self) -> bool:
        """Both sides' changes flow to the other (one merge writes both ways)."""
        return self.direction == "both"

    @property
    def one_way_source(self) -> Role | None:
        """The master side of a one-way entity (``erp`` for erp_to_crm), None for two-way."""
        return None if self.two_way else DIRECTIONS[self.direction][0][0]

    def can_flow(self, source: Role, target: Role) -> bool:
        return (source, target) in self.passes

    def can_create_on(self, role: Role) -> bool:
        """Whether a record missing on ``role`` can be created there by the sync."""
        return self.can_flow(other(role), role) and role in self.creatable

    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def write_only_names(self) -> list[str]:
        """Compared fields that one of the sides cannot read back through its mapping."""
        return [f.name for f in self.fields if len(f.readable) < 2]


def sync_passes(rt: Runtime, entity: str) -> tuple[tuple[Role, Role], ...]:
    """The (source, target) passes the sync runs for ``entity`` (its pipeline decides)."""
    return tuple(EntityPipeline(rt, entity, dry_run=True).directions())


def build_plan(rt: Runtime, entity: str) -> FieldPlan:
    """The compared fields of ``entity`` from both mappings and its sync config section."""
    cfg = rt.config.sync[entity]  # type: ignore[index]  # an entity name the caller checked
    found = {role: rt.side(role).entity(entity) for role in ROLES}
    missing = [rt.side(r).system for r, m in found.items() if m is None]
    if missing:
        raise ValueError(f"mapping file of {', '.join(missing)} has no entity {entity!r}")
    maps = {role: m for role, m in found.items() if m is not None}
    inbound = {role: set(m.inbound_fields()) for role, m in maps.items()}
    outbound = {role: set(m.outbound_fields()) for role, m in maps.items()}
    owners = dict(cfg.owner or {})
    passes = sync_passes(rt, entity)
    flows: list[FieldFlow] = []
    names = sorted((inbound["crm"] | inbound["erp"]) & (outbound["crm"] | outbound["erp"]))
    for name in names:
        allowed = tuple((a, b) for a, b in passes
                        if name in inbound[a] and name in outbound[b] and owners.get(name, a) == a)
        if allowed:
            readable = frozenset(r for r in ROLES if name in inbound[r])
            flows.append(FieldFlow(name, allowed, readable))
    creatable = frozenset(r for r, m in maps.items() if m.create)
    keys = {role: m.spec.key_field for role, m in maps.items()}
    return FieldPlan(entity=entity, fields=tuple(flows), direction=cfg.direction, passes=passes,
                     match_on=tuple(cfg.match_on or ()), on_delete=cfg.on_delete,
                     creatable=creatable, key_fields=keys, systems={r: rt.side(r).system for r in ROLES})


# ---------------------------------------------------------------------------------- rows
@dataclass
class Row:
    """One record as reconcile keeps it: hashes, compared values and match keys."""

    side: Role
    record_id: str
    live: bool
    side_hash: str = ""
    cmp_hash: str = ""
    wo_hash: str = ""               # hash of the values of fields one side cannot read back
    cmp: str = "{}"                 # canonical JSON of the compared values
    error: str | None = None        # why the mapping could not read the record
    keys: list[tuple[str, str]] = field(default_factory=list)  # (kind, value)


def cmp_hash(cmp_json: str) -> str:
    """Short hash of the compared values' canonical JSON (equal values, equal hash)."""
    return hashlib.sha256(cmp_json.encode()).hexdigest()[:32]


def same(a: Any, b: Any) -> bool:
    """The sync's equality of canonical values (10.50 == 10.5; a date equals its ISO text)."""
    return bool(_key(a) == _key(b))


class RowBuilder:
    """Turns one side's native records into :class:`Row` values, a page at a time.

    Mirrors the pipeline's preparation of a source record (flatten, order lines sorted,
    references in their neutral form, side hash over the inbound fields) so a record that the
    sync considers unchanged hashes to its link's hash here too.
    """

    def __init__(self, rt: Runtime, plan: FieldPlan, role: Role) -> None:
        self.rt = rt
        self.plan = plan
        self.role = role
        ep: Endpoint = rt.side(role)
        em = ep.entity(plan.entity)
        assert em is not None
        self.em = em
        self.inbound = set(em.inbound_fields())
        self.refs = dict(em.refs)
        self.translator = RefTranslator(rt.store)
        self.key_field = plan.key_fields.get(role)
        self.names = plan.names()
        self.write_only = plan.write_only_names()
        by_name = {f.canonical: f for f in em.fields}
        # Write-only compared fields: decoded from the raw native value with the field's transform.
        self.decoders = {f.name: by_name[f.name] for f in plan.fields
                         if f.write_only_on(role) and f.name in by_name}

    def rows(self, records: Sequence[NativeRecord]) -> list[Row]:
        """Rows for one page of records (unmappable ones carry ``error``)."""
        out: list[Row] = []
        mapped: list[tuple[NativeRecord, dict[str, Any], Row]] = []
        for rec in records:
            row = Row(self.role, rec.id, live=not rec.deleted)
            try:
                c = flat_canonical(self.em, rec.data)
            except Exception as exc:  # noqa: BLE001 - RecordError names the field; any failure is this record's
                row.error = str(exc)[:500]
                out.append(row)
                continue
            mapped.append((rec, c, row))
            out.append(row)
        if self.refs and mapped:
            # As the pipeline does: an ERP id in a reference becomes the linked CRM id, so both compare.
            self.translator.neutralize(self.role, self.refs, [c for _, c, _ in mapped])
        for rec, c, row in mapped:
            # _normalise once; the hashes below are then plain JSON dumps (a hot loop at 1M records).
            norm = _normalise(c)
            row.side_hash = fast_side_hash(norm, self.inbound, deleted=rec.deleted)
            values = {name: norm.get(name) for name in self.names if name not in self.decoders}
            for name, f in self.decoders.items():
                values[name] = _normalise(self._decode(f, rec.data.get(f.path)))
            row.cmp = _dumps(values)
            row.cmp_hash = cmp_hash(row.cmp)
            row.wo_hash = cmp_hash(_dumps({name: values.get(name) for name in self.write_only}))
            if row.live:
                row.keys = self._keys(rec, c)
        return out

    @staticmethod
    def _decode(f: Any, raw: Any) -> Any:
        try:
            return f.inbound(raw)
        except Exception:  # noqa: BLE001 - a hand-typed value the transform refuses still differs from ours
            return None if raw in (None, "", False) else str(raw)

    def _keys(self, rec: NativeRecord, c: Mapping[str, Any]) -> list[tuple[str, str]]:
        keys: list[tuple[str, str]] = []
        if self.key_field:
            raw = rec.data.get(self.key_field)
            if raw not in (None, "", False):
                keys.append((KEY_KIND, str(raw).strip()))
        for name in self.plan.match_on:
            value = match_value(c.get(name))
            if value:
                keys.append((name, value))
        return keys


def _dumps(normalised: Any) -> str:
    # canonical_json without its _normalise pass (the caller normalised already): same text.
    return json.dumps(normalised, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fast_side_hash(normalised: Mapping[str, Any], inbound: Iterable[str], *, deleted: bool) -> str:
    """sync.pipeline.side_hash of content that is already normalised (equal by construction;
    tests/reconcile check it against the pipeline's)."""
    return content_hash({**{k: normalised.get(k) for k in inbound}, "deleted": deleted})


def values_of(row_cmp: str | None) -> dict[str, Any]:
    """The compared values of a stored row."""
    return json.loads(row_cmp) if row_cmp else {}
