"""`concord reconcile --apply`: repair findings through the sync's own idempotent write path.

Every write goes through :meth:`EntityPipeline.sync_ids` (the same merge, owners, conflict policy,
idempotent creates and archives as `concord sync`); this module only prepares the state store
so the pipeline sees what reconcile saw: stale match-index rows removed, orphan links dropped,
unlinked pairs linked (a first match: nothing is erased), and - for changes the merge cannot see
on its own - the link's memory of a side's value set to what that side holds now. Duplicates,
conflicts and unreadable records are never touched. Each chunk's records are read again right
after it is repaired, so the report after --apply is what the systems hold.
"""
from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog
from sqlalchemy import delete

from connectors.base import WriteOp
from sync.pipeline import EntityPipeline, PipelineStopped
from sync.reconcile_fields import KEY_KIND, FieldPlan, Role, other
from sync.reconcile_findings import Finding
from sync.reconcile_progress import Reporter
from sync.reconcile_read import EntityReader, ReconcileStopped, call
from sync.reconcile_scratch import Scratch
from sync.runtime import Runtime
from sync.store import MATCH, Link

log = structlog.get_logger("concord.reconcile")

CHUNK = 200


@dataclass
class _Work:
    """The repairs of one chunk of findings, grouped for batched calls."""

    syncs: dict[tuple[Role, bool], list[str]] = field(default_factory=dict)   # (source, deleted) -> ids
    links: list[Link] = field(default_factory=list)                          # to save before syncing
    unlink: list[str] = field(default_factory=list)                          # crm ids of links to drop
    gone: dict[str, list[str]] = field(default_factory=dict)                 # lost ids, for the match index
    stale_keys: dict[Role, dict[str, str]] = field(default_factory=dict)     # survivor id -> lost id
    later: dict[Role, list[str]] = field(default_factory=dict)               # second sources
    touched: dict[str, list[str]] = field(default_factory=lambda: {"crm": [], "erp": []})


class Repairer:
    """Applies the repairs of one entity's findings, a chunk at a time."""

    def __init__(self, rt: Runtime, plan: FieldPlan, scratch: Scratch, reader: EntityReader, reporter: Reporter,
                 *, full_read: bool) -> None:
        self.rt = rt
        self.store = rt.store
        self.plan = plan
        self.entity = plan.entity
        self.scratch = scratch
        self.reader = reader
        self.reporter = reporter
        self.full_read = full_read
        self.pipeline = EntityPipeline(rt, plan.entity)
        self.done: Counter[str] = Counter()
        self.sync_counts: Counter[str] = Counter()

    def run(self) -> Counter[str]:
        """Repair every repairable finding; returns the number of repairs per action."""
        total = self.scratch.count_repairs(self.entity)
        if not total:
            return self.done
        if self.plan.match_on:
            self._refresh_match_index()
        name = f"{self.entity}: repair"
        self.reporter.start(name, total)
        chunk: list[Finding] = []
        for data in self.scratch.iter_findings(self.entity, "found", repairs_only=True):
            chunk.append(Finding.from_json(data))
            if len(chunk) >= CHUNK:
                self._chunk(chunk)
                self.reporter.advance(name, len(chunk))
                chunk = []
        if chunk:
            self._chunk(chunk)
            self.reporter.advance(name, len(chunk))
        self.reporter.finish(name)
        log.info("reconcile.repaired", entity=self.entity, **self.done, **{f"sync_{k}": v for k, v in
                                                                           self.sync_counts.items() if v})
        return self.done

    # ------------------------------------------------------------------ one chunk
    def _chunk(self, findings: list[Finding]) -> None:
        work = self._plan(findings)
        self._store_changes(work.unlink, work.links, work.gone)
        for role, claims in work.stale_keys.items():
            self._clear_stale_keys(role, claims)
        echoes: dict[Role, list[str]] = {}
        for (source, deleted), ids in work.syncs.items():
            self._sync(source, ids, deleted)
            # The counterparts the sync created or adopted are read back too.
            links = self.store.links_by_ids(self.entity, source, ids)
            counterparts = [link.erp_id if source == "crm" else link.crm_id for link in links.values()
                            if not link.deleted]
            work.touched[other(source)].extend(counterparts)
            if self.plan.can_flow(other(source), source):
                echoes.setdefault(other(source), []).extend(counterparts)
        # A sync run makes every pass: a record just written reads back with the target's own
        # values (Odoo's default credit limit, an order's number and status), which the return pass
        # carries over. Unchanged records are recognised as echoes and cost one read, no write.
        for role, ids in echoes.items():
            self._sync(role, list(dict.fromkeys(ids)), False)
        for role, ids in work.later.items():
            self._sync(role, ids, False)
        self.reader.reread(work.touched)

    def _plan(self, findings: list[Finding]) -> _Work:
        """What a chunk of findings asks of the store and of the pipeline."""
        work = _Work()
        for f in findings:
            r = f.repair
            assert r is not None
            for side, rid in (("crm", f.crm_id), ("erp", f.erp_id)):
                if rid:
                    work.touched[side].append(rid)
            source: Role | None = r.source  # type: ignore[assignment]
            record = (f.crm_id if source == "crm" else f.erp_id) if source else None
            if r.action in ("unlink", "relink"):
                assert f.crm_id is not None
                work.unlink.append(f.crm_id)
                if r.action == "relink" and source is not None and record:
                    lost = other(source)
                    lost_id = (f.crm_id if lost == "crm" else f.erp_id) or ""
                    work.gone.setdefault(lost, []).append(lost_id)
                    work.stale_keys.setdefault(source, {})[record] = lost_id
            elif r.action == "link":
                work.links.append(Link(entity=self.entity, crm_id=f.crm_id or "", erp_id=f.erp_id or ""))
            elif r.action == "sync" and (r.force or r.rebase) and f.linked:
                link = self._prepared_link(f)
                if link is not None:
                    work.links.append(link)
            if source is not None and record and r.action != "unlink":
                work.syncs.setdefault((source, r.deleted), []).append(record)
            if r.also_from is not None:
                also: Role = r.also_from  # type: ignore[assignment]
                second = f.crm_id if also == "crm" else f.erp_id
                if second:
                    work.later.setdefault(also, []).append(second)
            self.done[r.action] += 1
        return work

    def _prepared_link(self, f: Finding) -> Link | None:
        """The finding's link, changed so the pipeline processes the record and the merge writes the
        flow's value: ``rebase`` values recorded as the target's state, the source's hash cleared."""
        assert f.repair is not None and f.crm_id is not None
        link = self.store.links_by_ids(self.entity, "crm", [f.crm_id]).get(f.crm_id)
        if link is None:
            return None
        base: dict[str, Any] = copy.deepcopy(link.base) if link.base else {}
        for side, values in f.repair.rebase.items():
            base.setdefault(side, {}).update(values)
            own = base.get(other(side))  # type: ignore[arg-type]
            for name in values:
                if own is not None:
                    own.pop(name, None)  # the source "changed" it: the merge takes the source's value
        link.base = base or None
        for source in (f.repair.source, f.repair.also_from):
            if source == "crm":
                link.crm_hash = None
            elif source == "erp":
                link.erp_hash = None
        return link

    def _store_changes(self, unlink: list[str], links: list[Link], gone: dict[str, list[str]]) -> None:
        if not (unlink or links or gone):
            return
        with self.store.transaction() as tx:
            for crm_id in unlink:
                tx.delete_link(self.entity, crm_id)
            for role, ids in gone.items():
                system = self.rt.side(role).system  # type: ignore[arg-type]
                tx.connection.execute(delete(MATCH).where(MATCH.c.entity == self.entity, MATCH.c.system == system,
                                                          MATCH.c.record_id.in_([i for i in ids if i])))
            if links:
                tx.save_links(links)

    def _clear_stale_keys(self, role: Role, claims: dict[str, str]) -> None:
        """Empty the idempotency key of survivors of an orphan link whose key still names the record
        that is gone: the sync takes a record's key for its counterpart, and would stop at the
        missing one instead of creating it again. The key is Concord's own field, like the link."""
        key_field = self.plan.key_fields.get(role)
        if not key_field or not claims:
            return
        keys = self.scratch.keys_of(role, list(claims))
        stale = [rid for rid, lost in claims.items() if (KEY_KIND, lost) in keys.get(rid, [])]
        if not stale:
            return
        ep = self.rt.side(role)
        spec = self.reader.specs[role]
        results = call(ep, partial(ep.connector.write, spec, [WriteOp(ref=rid, data={key_field: None}, target_id=rid)
                                                             for rid in stale]))
        failed = [r.ref for r in results if not r.ok]
        log.info("reconcile.stale_keys_cleared", entity=self.entity, system=ep.system, count=len(stale) - len(failed),
                 failed=failed[:20])

    def _sync(self, source: Role, ids: list[str], deleted: bool) -> None:
        if not ids:
            return
        try:
            counts = self.pipeline.sync_ids(source, ids, deleted_ids=ids if deleted else ())
        except PipelineStopped as exc:
            raise ReconcileStopped(str(exc), exit_code=exc.exit_code) from None
        for k, v in counts.as_dict().items():
            if v and k != "read":
                self.sync_counts[k] += v

    # ------------------------------------------------------------------ match index
    def _refresh_match_index(self) -> None:
        """Make the store's match index agree with what was just read, so the pipeline neither
        matches a record that is gone nor misses one created behind Concord's back."""
        kinds = list(self.plan.match_on)
        for role in ("crm", "erp"):
            system = self.rt.side(role).system  # type: ignore[arg-type]
            if self.full_read:
                stale = self.scratch.stale_match_rows(self.entity, system, role)
                for start in range(0, len(stale), 500):
                    with self.store.transaction() as tx:
                        tx.connection.execute(delete(MATCH).where(
                            MATCH.c.entity == self.entity, MATCH.c.system == system,
                            MATCH.c.record_id.in_(stale[start:start + 500])))
            page: list[tuple[str, str, str]] = []
            for row in self.scratch.unlinked_keys(self.entity, role, kinds):
                page.append(row)
                if len(page) >= 1000:
                    self.store.match_index_add(self.entity, system, page)
                    page = []
            if page:
                self.store.match_index_add(self.entity, system, page)
