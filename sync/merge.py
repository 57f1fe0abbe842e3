"""Field-level three-way merge of a record changed on one or both sides.

Pure functions over flat canonical dicts (``extra.x`` keys flattened), so the policy is easy to
test on its own: owners first, then the entity's conflict policy for fields changed on both sides.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sync.model import _normalise

Role = Literal["crm", "erp"]
Policy = Literal["newest_wins", "crm_wins", "erp_wins", "manual"]


def flatten(canonical: Mapping[str, Any]) -> dict[str, Any]:
    """``{"extra": {"x": 1}}`` -> ``{"extra.x": 1}``; other keys unchanged."""
    out = {k: v for k, v in canonical.items() if k != "extra"}
    for k, v in (canonical.get("extra") or {}).items():
        out[f"extra.{k}"] = v
    return out


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`flatten`."""
    out: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for k, v in flat.items():
        if k.startswith("extra."):
            extra[k[6:]] = v
        else:
            out[k] = v
    if extra:
        out["extra"] = extra
    return out


def normalise_lists(canonical: dict[str, Any]) -> dict[str, Any]:
    """Order lists of records (order lines) by their reference, so line order never counts as a change."""
    for key, value in canonical.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            canonical[key] = sorted(value, key=lambda v: (str(v.get("line_ref") or ""), str(v.get("sku") or "")))
    return canonical


def flat_canonical(em: Any, data: Mapping[str, Any]) -> dict[str, Any]:
    """A native record's canonical content as the engine compares it: flat, lists in a stable order."""
    return normalise_lists(flatten(em.to_canonical(data)))


@dataclass
class Side:
    """One side's current view of a record for the merge."""

    role: Role
    values: dict[str, Any]          # flat canonical over the fields this side maps inbound
    updated_at: datetime | None
    exists: bool = True


@dataclass
class MergeResult:
    """The merged content, and the fields that need a human (policy ``manual``)."""

    merged: dict[str, Any]
    conflicts: list[str] = field(default_factory=list)   # fields changed on both sides, differently
    unresolved: list[str] = field(default_factory=list)  # of those, the ones left to a human
    untouched: set[str] = field(default_factory=set)      # changed on neither side: write nowhere


def merge(source: Side, target: Side | None, base: Mapping[str, Mapping[str, Any]] | None, *,
          owners: Mapping[str, Role], policy: Policy) -> MergeResult:
    """Merge ``source`` (the side whose change is being synced) with ``target``.

    ``base`` holds, per role, the content each side had right after the last sync (None before
    the first link): a side changed a field when its value differs from its own base. Per-side
    bases matter because a side may not store every field the other one has (a read-only field,
    a field one product normalises): comparing both with one merged base would mistake that for
    an edit. Without a base, an empty value on one side is "unknown", not a deletion, so a
    first match never erases data.
    """
    sides = [source] + ([target] if target is not None and target.exists else [])
    if len(sides) == 1 and base is None:
        # A create: nothing to compare with, the source's values are the result (the loop below
        # would give exactly this, at a cost per field).
        return MergeResult(dict(source.values))
    names: set[str] = set()
    for s in sides:
        names.update(s.values)
    merged: dict[str, Any] = {}
    result = MergeResult(merged)
    by_role = {s.role: s for s in sides}
    for name in sorted(names):
        changed: dict[str, Any] = {}
        for s in sides:
            if name not in s.values:
                continue
            own = (base or {}).get(s.role) if base is not None else None
            if own is None or name not in own or _key(s.values[name]) != _key(own[name]):
                changed[s.role] = s.values[name]
        if base is None:
            # No shared history: empty means unknown, so it never wins over a value.
            changed = {r: v for r, v in changed.items() if v is not None}
        owner = owners.get(name)
        if owner is not None and owner in by_role and name in by_role[owner].values:
            merged[name] = by_role[owner].values[name]
            continue
        if not changed:
            merged[name] = _first(sides, name)
            if base is not None:
                result.untouched.add(name)
            continue
        distinct = {_key(v) for v in changed.values()}
        if len(changed) == 1 or len(distinct) == 1:
            merged[name] = next(iter(changed.values()))
            continue
        result.conflicts.append(name)
        winner = _winner(by_role, policy)
        if winner is None:
            result.unresolved.append(name)
            merged[name] = _first(sides, name)
        else:
            merged[name] = changed[winner]
    return result


def _winner(by_role: Mapping[str, Side], policy: Policy) -> Role | None:
    if policy == "crm_wins":
        return "crm"
    if policy == "erp_wins":
        return "erp"
    if policy == "manual":
        return None
    crm, erp = by_role.get("crm"), by_role.get("erp")
    if crm is None or erp is None:
        return "crm" if crm is not None else "erp"
    if crm.updated_at is None or erp.updated_at is None:
        return "crm" if erp.updated_at is None else "erp"
    # Ties go to the CRM: deterministic, and it is where people edit customers most.
    return "erp" if erp.updated_at > crm.updated_at else "crm"


def _first(sides: list[Side], name: str) -> Any:
    for s in sides:
        if name in s.values and s.values[name] is not None:
            return s.values[name]
    return None


def _key(value: Any) -> Any:
    """Comparable form: 10.50 equals 10.5, a date equals its ISO text (the link's base is JSON)."""
    value = _normalise(value)
    if isinstance(value, list):
        return tuple(_key(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _key(v)) for k, v in value.items()))
    return value


def diff(wanted: Mapping[str, Any], current: Mapping[str, Any] | None, fields: set[str]) -> dict[str, Any]:
    """The fields (of ``fields``) whose wanted value differs from the current one."""
    out: dict[str, Any] = {}
    for name in fields:
        if name not in wanted:
            continue
        value = wanted[name]
        if current is None:
            if value is not None:
                out[name] = value
        elif name not in current or _key(current[name]) != _key(value):
            if name not in current and value is None:
                continue
            out[name] = value
    return out
