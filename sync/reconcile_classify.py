"""Classify one entity's records, read into the scratch tables, into reconcile's classes.

Linked pairs are compared in SQL first (equal compared-value hashes and both sides unchanged
since the last sync: in sync, counted only); the rest are streamed in link order and compared
field by field with the links' per-side bases. Unlinked records are matched the way the sync
would match them (idempotency key, then ``match_on``), a chunk at a time.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from sync.reconcile_fields import KEY_KIND, FieldPlan, Role, other, same, values_of
from sync.reconcile_findings import FieldDiff, Finding, Repair
from sync.reconcile_scratch import Scratch
from sync.store import Store

FLUSH = 500


def compare(plan: FieldPlan, crm: dict[str, Any], erp: dict[str, Any],
            base: dict[str, Any] | None) -> list[FieldDiff]:
    """Fields whose values differ and that at least one side changed since the last sync.

    A field where each side still holds what the last sync left it is not drift: one side cannot
    store the other's value (a state Odoo does not take, a write-only field) and the sync knows it.
    """
    bases = base or {}
    out: list[FieldDiff] = []
    for f in plan.fields:
        a, b = crm.get(f.name), erp.get(f.name)
        if same(a, b):
            continue
        moved = {}
        for role, value in (("crm", a), ("erp", b)):
            own = bases.get(role)
            moved[role] = own is None or f.name not in own or not same(value, own[f.name])
        if not moved["crm"] and not moved["erp"]:
            continue
        out.append(FieldDiff(f.name, a, b, f.direction, moved["crm"], moved["erp"]))
    return out


class Classifier:
    """Runs the classification passes of one entity and writes findings to the scratch tables."""

    def __init__(self, store: Store, plan: FieldPlan, scratch: Scratch, *, since_mode: bool = False,
                 phase: str = "found") -> None:
        self.store = store
        self.phase = phase
        self.plan = plan
        self.entity = plan.entity
        self.scratch = scratch
        self.since_mode = since_mode
        self.counts: Counter[str] = Counter()
        self._buf: list[Finding] = []
        self._dead: dict[tuple[str, str], str] | None = None

    def run(self) -> Counter[str]:
        """All passes; returns the counts per class."""
        self.scratch.reset_pairs()
        self.counts["in_sync"] += self.scratch.count_clean_pairs(self.entity)
        self._linked_pairs()
        self._orphans()
        self._unreadable()
        for side in ("crm", "erp"):
            self._unlinked(side)  # type: ignore[arg-type]
        self._duplicates()
        self._conflicts()
        self._flush()
        return self.counts

    # ------------------------------------------------------------------ output
    def _add(self, finding: Finding) -> None:
        self._explain(finding)
        self.counts[finding.cls] += 1
        self._buf.append(finding)
        if len(self._buf) >= FLUSH:
            self._flush()

    def _explain(self, finding: Finding) -> None:
        """Add the sync's own failure on the record (an open dead letter), if there is one."""
        if finding.cls not in ("different", "missing_on_crm", "missing_on_erp", "orphan_link"):
            return
        if self._dead is None:
            by_system = {system: role for role, system in self.plan.systems.items()}
            self._dead = {}
            for d in self.store.list_dead_letters(pipeline=self.entity):
                owner = by_system.get(d.system)
                if owner is not None:
                    self._dead[(owner, d.record_id)] = d.error_message
        for side, rid in (("crm", finding.crm_id), ("erp", finding.erp_id)):
            message = self._dead.get((side, rid)) if rid else None
            if message:
                finding.note = "; ".join(x for x in (finding.note, f"the sync failed on it: {message}") if x)
                return

    def _flush(self) -> None:
        self.scratch.add_findings(self.entity, self.phase, self._buf)
        self._buf = []

    # ------------------------------------------------------------------ linked pairs
    def _linked_pairs(self) -> None:
        for row in self.scratch.iter_candidate_pairs(self.entity):
            if row.conflict or row.crm_error or row.erp_error:
                continue  # reported by the conflict and unreadable passes
            if not row.crm_live or not row.erp_live:
                self._deletion(row)
                continue
            diffs = compare(self.plan, values_of(row.crm_cmp), values_of(row.erp_cmp), row.base)
            if not diffs:
                self.counts["in_sync"] += 1
                continue
            self._add(Finding("different", self.entity, row.crm_id, row.erp_id, fields=diffs,
                              repair=self._repair_different(row, diffs)))

    def _deletion(self, row: Any) -> None:
        if not row.crm_live and not row.erp_live:
            self.counts["in_sync"] += 1  # archived on both sides
            return
        if self.plan.on_delete == "ignore":
            self.counts["in_sync"] += 1  # by configuration, an archive is not passed on
            return
        gone: Role = "crm" if not row.crm_live else "erp"
        diff = FieldDiff("deleted", not row.crm_live, not row.erp_live, self.plan.direction,
                         crm_moved=gone == "crm", erp_moved=gone == "erp")
        source = self.plan.one_way_source
        if source is not None and gone != source:
            self._add(Finding("different", self.entity, row.crm_id, row.erp_id, fields=[diff],
                              note=f"archived on {gone}, the target of a one-way entity ({self.plan.direction}): "
                                   "restore it there, or archive the source record"))
            return
        self._add(Finding("different", self.entity, row.crm_id, row.erp_id, fields=[diff],
                          note=f"archived on {gone} only", repair=Repair("sync", source=gone, deleted=True)))

    def _repair_different(self, row: Any, diffs: Sequence[FieldDiff]) -> Repair:
        """Which side(s) to sync from, and what the link must say first so the merge writes the value
        the configured flow calls for (never for a two-way field: that is the conflict policy's call)."""
        moved_hash = {"crm": row.crm_side_hash != (row.crm_hash or ""),
                      "erp": row.erp_side_hash != (row.erp_hash or "")}
        flows = {f.name: f for f in self.plan.fields}
        rebase: dict[str, dict[str, Any]] = {}
        sources: list[Role] = []
        for d in diffs:
            flow = flows[d.field]
            if flow.two_way:
                continue
            source, target = flow.flows[0]
            if self.plan.two_way:
                # One merge writes both ways; only a hand edit of a copy the target cannot read back
                # is invisible to it.
                if flow.write_only_on(target) and getattr(d, f"{target}_moved"):
                    rebase.setdefault(target, {})[d.field] = getattr(d, target)
                continue
            # One-way: the source is the master, a change on the target is overwritten - which the
            # merge does only when the link says the target still holds its last value.
            if getattr(d, f"{target}_moved") or flow.write_only_on(target):
                rebase.setdefault(target, {})[d.field] = getattr(d, target)
            if source not in sources:
                sources.append(source)
        if self.plan.two_way or not sources:
            sources = ["crm" if moved_hash["crm"] or not moved_hash["erp"] else "erp"]
        master = self.plan.one_way_source
        sources.sort(key=lambda r: r != master)
        force = bool(rebase) or not all(moved_hash[r] for r in sources)
        return Repair("sync", source=sources[0], also_from=sources[1] if len(sources) > 1 else None, force=force,
                      rebase=rebase)

    # ------------------------------------------------------------------ orphans, unreadable
    def _orphans(self) -> None:
        source = self.plan.one_way_source
        for row in self.scratch.iter_orphan_links(self.entity, touched_only=self.since_mode):
            crm_gone, erp_gone = row.crm_found is None, row.erp_found is None
            gone = "both sides" if crm_gone and erp_gone else ("crm" if crm_gone else "erp")
            finding = Finding("orphan_link", self.entity, row.crm_id, row.erp_id,
                              note=f"linked record gone on {gone}")
            if crm_gone and erp_gone:
                finding.repair = Repair("unlink")
            else:
                lost: Role = "crm" if crm_gone else "erp"
                survivor = other(lost)
                survivor_live = row.crm_live if survivor == "crm" else row.erp_live
                if not survivor_live:
                    finding.repair = Repair("unlink")
                    finding.note += f"; the {survivor} record is archived"
                elif source is not None and lost == source:
                    finding.repair = Repair("archive", source=lost, deleted=True)
                    finding.note += f"; its deletion is passed on (on_delete: {self.plan.on_delete})"
                elif self.plan.can_create_on(lost):
                    finding.repair = Repair("relink", source=survivor)
                else:
                    finding.note += f"; the sync does not create {self.entity} records on {lost}"
            self._add(finding)

    def _unreadable(self) -> None:
        for row in self.scratch.iter_unreadable():
            self._add(Finding("unreadable", self.entity, crm_id=row.record_id if row.side == "crm" else None,
                              erp_id=row.record_id if row.side == "erp" else None, note=f"{row.side}: {row.error}"))

    # ------------------------------------------------------------------ unlinked records
    def _unlinked(self, side: Role) -> None:
        o = other(side)
        for chunk in self.scratch.iter_unlinked(self.entity, side):
            ids = [r.record_id for r in chunk]
            cmp_of = {r.record_id: r.cmp for r in chunk}
            keys = self.scratch.keys_of(side, ids)
            by_kind: dict[str, dict[str, str]] = {}
            for rid, kv in keys.items():
                for kind, value in kv:
                    by_kind.setdefault(kind, {})[rid] = value
            claims = by_kind.get(KEY_KIND, {})
            key_holders = self.scratch.holders(KEY_KIND, list(claims.values()) + ids)
            match_holders = {k: self.scratch.holders(k, list(by_kind.get(k, {}).values())) for k in self.plan.match_on}
            candidate_ids = set(claims.values()) | {y for rid in ids for y in key_holders.get((o, rid), [])}
            for k in self.plan.match_on:
                for v in by_kind.get(k, {}).values():
                    candidate_ids.update(match_holders[k].get((o, v), []))
            present = self.scratch.present(o, sorted(candidate_ids))
            linked = self.scratch.linked_ids(self.entity, o, sorted(candidate_ids))
            paired = self.scratch.paired(o, sorted(candidate_ids))
            pairs: list[tuple[str, str]] = []
            for rid in ids:
                outcome = self._match_one(side, rid, claims, key_holders, by_kind, match_holders, present, linked,
                                          paired)
                if outcome is None:
                    continue  # covered by a duplicate finding
                kind, y, note = outcome
                if y is None:
                    self._missing(side, rid, note)
                    continue
                paired.add(y)
                pairs.append((rid, y))
                self._pair(side, rid, y, kind, cmp_of[rid], present[y].cmp)
            self.scratch.mark_paired([(side, x) for x, _ in pairs] + [(o, y) for _, y in pairs])

    def _match_one(self, side: Role, rid: str, claims: dict[str, str], key_holders: dict[tuple[str, str], list[str]],
                   by_kind: dict[str, dict[str, str]], match_holders: dict[str, dict[tuple[str, str], list[str]]],
                   present: dict[str, Any], linked: dict[str, str], paired: set[str]
                   ) -> tuple[str, str | None, str] | None:
        """(kind, partner id or None, note) for one unlinked record; None when a duplicate covers it."""
        o = other(side)

        def usable(y: str) -> bool:
            r = present.get(y)
            return r is not None and r.live and r.error is None and y not in linked

        claimed = claims.get(rid)
        if claimed is not None and len(key_holders.get((side, claimed), [])) > 1:
            return None
        claimants = key_holders.get((o, rid), [])
        if len(claimants) > 1:
            return None
        by_key = {y for y in ([claimed] if claimed else []) + claimants if usable(y)}
        if len(by_key) == 1:
            y = next(iter(by_key))
            if y in paired:
                return KEY_KIND, None, f"its key points at {o} {y}, which is already paired with another record"
            return KEY_KIND, y, ""
        if len(by_key) > 1:
            return KEY_KIND, None, f"keys point at several {o} records ({', '.join(sorted(by_key))}): link one by hand"
        for kind in self.plan.match_on:
            v = by_kind.get(kind, {}).get(rid)
            if not v:
                continue
            mine, theirs = match_holders[kind].get((side, v), []), match_holders[kind].get((o, v), [])
            if len(mine) > 1 or len(theirs) > 1:
                return None
            if not theirs:
                continue
            y = theirs[0]
            if y in linked:
                return kind, None, (f"{kind} matches {o} {y}, which is linked to {side} {linked[y]}: "
                                    "not created again (that would duplicate it)")
            if y in paired:
                return kind, None, f"{kind} matches {o} {y}, which is already paired with another record"
            return kind, y, ""
        return KEY_KIND, None, ""

    def _missing(self, side: Role, rid: str, note: str) -> None:
        o = other(side)
        if not note and not self.plan.can_create_on(o):
            # The configured flow never brings it over (an order typed in the ERP, a CRM product
            # that only carries stock levels): no drift, only counted.
            self.counts["untracked"] += 1
            return
        finding = Finding(f"missing_on_{o}", self.entity, crm_id=rid if side == "crm" else None,
                          erp_id=rid if side == "erp" else None, linked=False, note=note or "never synced")
        if note:
            return self._add(finding)  # an explained non-match is for a human to sort out
        finding.repair = Repair("sync", source=side)
        self._add(finding)

    def _pair(self, side: Role, x: str, y: str, kind: str, x_cmp: str, y_cmp: str) -> None:
        crm_id, erp_id = (x, y) if side == "crm" else (y, x)
        crm_vals, erp_vals = (values_of(x_cmp), values_of(y_cmp)) if side == "crm" else (values_of(y_cmp),
                                                                                          values_of(x_cmp))
        diffs = compare(self.plan, crm_vals, erp_vals, None)
        how = "idempotency key" if kind == KEY_KIND else kind
        source: Role = self.plan.one_way_source or "crm"
        cls = "different" if diffs else "in_sync"
        self._add(Finding(cls, self.entity, crm_id, erp_id, fields=diffs, linked=False,
                          note=f"not linked; matched by {how}", repair=Repair("link", source=source)))

    # ------------------------------------------------------------------ duplicates, conflicts
    def _duplicates(self) -> None:
        batch: list[tuple[str, str, str, list[str]]] = []
        for group in self.scratch.iter_duplicate_keys():
            batch.append(group)
            if len(batch) >= FLUSH:
                self._duplicate_batch(batch)
                batch = []
        if batch:
            self._duplicate_batch(batch)

    def _duplicate_batch(self, groups: Iterable[tuple[str, str, str, list[str]]]) -> None:
        groups = list(groups)
        by_kind: dict[str, list[str]] = {}
        for _, kind, value, _ in groups:
            if kind != KEY_KIND:
                by_kind.setdefault(kind, []).append(value)
        others = {kind: self.scratch.holders(kind, values) for kind, values in by_kind.items()}
        for side, kind, value, ids in groups:
            o = other(side)  # type: ignore[arg-type]
            if kind == KEY_KIND:
                theirs = [value] if self.scratch.present(o, [value]) else []
                label = f"the {o} id in {self.plan.key_fields.get(side) or 'the key field'}"  # type: ignore[call-overload]
            else:
                theirs = others[kind].get((o, value), [])
                label = kind
            mine = list(ids)
            crm_ids, erp_ids = (mine, theirs) if side == "crm" else (theirs, mine)
            self._add(Finding("duplicate", self.entity, key=kind, value=value, crm_ids=crm_ids, erp_ids=erp_ids,
                              note=f"{len(mine)} {side} records share {label} {value!r}; "
                                   "merge or archive them by hand (Concord never merges records)"))

    def _conflicts(self) -> None:
        for c in self.store.open_conflicts(self.entity):
            crm_now = self.scratch.present("crm", [c.crm_id]).get(c.crm_id)
            erp_now = self.scratch.present("erp", [c.erp_id]).get(c.erp_id) if c.erp_id else None
            crm_vals = values_of(crm_now.cmp) if crm_now is not None else c.crm_version or {}
            erp_vals = values_of(erp_now.cmp) if erp_now is not None else c.erp_version or {}
            diffs = [FieldDiff(name, crm_vals.get(name), erp_vals.get(name)) for name in c.fields]
            self._add(Finding("conflict", self.entity, c.crm_id, c.erp_id, fields=diffs, conflict_id=c.id,
                              note=f"decide with: concord conflicts resolve {c.id} --take crm|erp"))
