"""What reconcile reports: one :class:`Finding` per record, pair, link or duplicate key, and the
counts per class. Plain dataclasses; they travel through the scratch table as JSON."""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

# Report order. in_sync pairs are only counted (and listed only when not linked yet); untracked
# records (on one side, and the configured direction never brings them over: an order typed in
# the ERP, a CRM product that only carries stock levels) are only counted.
CLASSES = ("in_sync", "missing_on_crm", "missing_on_erp", "different", "orphan_link", "duplicate", "conflict",
           "unreadable", "untracked")
DRIFT = frozenset(CLASSES) - {"in_sync", "untracked"}
CLASS_TITLES = {"in_sync": "in sync", "missing_on_crm": "missing on crm", "missing_on_erp": "missing on erp",
                "different": "different", "orphan_link": "orphan links", "duplicate": "duplicates",
                "conflict": "conflicts", "unreadable": "unreadable", "untracked": "not synced that way"}


@dataclass
class FieldDiff:
    """One field whose values differ; ``moved`` tells which side changed it since the last sync."""

    field: str
    crm: Any
    erp: Any
    direction: str = "both"
    crm_moved: bool = True
    erp_moved: bool = True


@dataclass
class Repair:
    """How ``--apply`` repairs a finding through the sync's own write path.

    ``action``: ``sync`` (re-read ``source``'s record by id and sync it), ``link`` (link an
    unlinked pair, then sync), ``relink`` (drop the orphan link, then sync the survivor),
    ``unlink`` (drop a link whose records are both gone) or ``archive`` (the source record of
    a one-way entity is gone: sync its deletion). ``rebase``: per side, field values to record as
    that side's state in the link before syncing, so the merge writes the flow's value over a
    change it cannot otherwise see (a hand edit of a write-only field, the target of a one-way entity).
    """

    action: str
    source: str | None = None
    also_from: str | None = None           # a second source (fields flowing each way in a one-way entity)
    deleted: bool = False
    force: bool = False
    rebase: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Finding:
    """One thing reconcile found (or counted as in sync but not yet linked)."""

    cls: str
    entity: str
    crm_id: str | None = None
    erp_id: str | None = None
    fields: list[FieldDiff] = field(default_factory=list)
    note: str = ""
    linked: bool = True
    repair: Repair | None = None
    key: str | None = None                 # duplicate: the key kind (a match_on field or "@key")
    value: str | None = None               # duplicate: the shared value
    crm_ids: list[str] = field(default_factory=list)
    erp_ids: list[str] = field(default_factory=list)
    conflict_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: v for k, v in data.items() if v not in (None, [], "", {})} | {"cls": self.cls,
                                                                                  "entity": self.entity}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Finding:
        d = dict(data)
        d["fields"] = [FieldDiff(**f) for f in d.get("fields", [])]
        if d.get("repair") is not None:
            d["repair"] = Repair(**d["repair"])
        return Finding(**d)


@dataclass
class EntityResult:
    """Counts per class for one entity, before and (with --apply) after the repairs."""

    entity: str
    found: Counter[str] = field(default_factory=Counter)
    remaining: Counter[str] | None = None
    remaining_phase: str = "found"          # which findings describe the state after --apply
    repairs: Counter[str] = field(default_factory=Counter)
    sync_counts: dict[str, int] = field(default_factory=dict)
    read: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def final(self) -> Counter[str]:
        """The counts that decide the exit code: after repairs when there were any."""
        return self.remaining if self.remaining is not None else self.found

    @property
    def drift(self) -> int:
        return sum(n for cls, n in self.final.items() if cls in DRIFT)


@dataclass
class ReconcileReport:
    """Everything one `concord reconcile` run found and did."""

    entities: list[EntityResult] = field(default_factory=list)
    applied: bool = False
    since: str | None = None
    api_calls: dict[str, dict[str, int]] = field(default_factory=dict)
    api_calls_by_phase: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def drift(self) -> int:
        return sum(e.drift for e in self.entities)
