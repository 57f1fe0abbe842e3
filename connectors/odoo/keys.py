"""Idempotency keys of records Concord creates in Odoo.

Each created record carries its key twice: in ``spec.key_field`` (a custom field set in the
create call itself, so the record and its key are atomic) and as an external id
``concord.<prefix><key>`` in ``ir.model.data`` (Odoo's own cross-reference, unique per
module and name). Lookups try the external ids first, then the key field, which also covers
a crash between the record's create and its external id's create.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from connectors.base import AuthError, ConnectorError, EntitySpec, NativeRecord
from connectors.odoo.reader import Reader
from connectors.odoo.relations import RunCache
from connectors.odoo.rpc import OdooRPC
from connectors.odoo.values import xmlid_name

log = structlog.get_logger("concord.odoo.keys")

MODULE = "concord"
_CHUNK = 1000


def xmlid_prefix(spec: EntitySpec) -> str:
    """The external-id name prefix of an entity (``options.xmlid_prefix``, default ``<entity>_``)."""
    return str(spec.options.get("xmlid_prefix") or f"{spec.entity}_")


@dataclass
class Lookup:
    """What a key lookup found: records by key, and dangling external ids (record deleted)."""

    found: dict[str, NativeRecord] = field(default_factory=dict)
    stale: dict[str, int] = field(default_factory=dict)  # key -> ir.model.data id


class Keys:
    """Finds records by key and keeps their external ids in place."""

    def __init__(self, rpc: OdooRPC, reader: Reader) -> None:
        self._rpc = rpc
        self._reader = reader

    def lookup(self, spec: EntitySpec, keys: Sequence[str], cache: RunCache | None = None, *,
               light: bool = False) -> Lookup:
        """Records for ``keys`` via external ids, then via the key field (repairing external ids).

        ``light`` records lack item lists and virtual fields (enough to decide create or adopt).
        """
        keys = list(dict.fromkeys(k for k in keys if k))
        result = Lookup()
        if not keys:
            return result
        prefix = xmlid_prefix(spec)
        by_name = {xmlid_name(prefix, k): k for k in keys}
        targets: dict[str, int] = {}
        xmlid_rows: dict[str, int] = {}
        names = list(by_name)
        for start in range(0, len(names), _CHUNK):
            rows = self._rpc.execute_kw("ir.model.data", "search_read", [[
                ("module", "=", MODULE), ("model", "=", spec.object), ("name", "in", names[start:start + _CHUNK])]],
                {"fields": ["name", "res_id"]})
            for row in rows or []:
                key = by_name.get(row.get("name"))
                if key is not None and row.get("res_id"):
                    targets[key] = int(row["res_id"])
                    xmlid_rows[key] = int(row["id"])
        records = self._reader.read(spec, [str(i) for i in targets.values()], cache, light=light)
        for key, res_id in targets.items():
            record = records.get(str(res_id))
            if record is not None:
                result.found[key] = record
            else:
                result.stale[key] = xmlid_rows[key]  # points at a deleted record
        rest = [k for k in keys if k not in result.found]
        if rest and spec.key_field:
            repairs = self._by_key_field(spec, rest, result, cache, light)
            if repairs:
                self.ensure_xmlids(spec, repairs, result.stale)
        return result

    def _by_key_field(self, spec: EntitySpec, keys: list[str], result: Lookup,
                      cache: RunCache | None, light: bool) -> dict[str, int]:
        assert spec.key_field
        repairs: dict[str, int] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            pairs = self._reader.search_records(spec, [(spec.key_field, "in", chunk)], extra=[spec.key_field],
                                                cache=cache, light=light)
            for row, record in pairs:
                key = str(row.get(spec.key_field))
                if key in result.found:
                    log.warning("odoo.duplicate_key", model=spec.object, key_field=spec.key_field,
                                kept=result.found[key].id, other=record.id)
                    continue
                result.found[key] = record
                repairs[key] = int(record.id)
        return repairs

    def ensure_xmlids(self, spec: EntitySpec, targets: Mapping[str, int], stale: Mapping[str, int]) -> None:
        """Point ``concord.<prefix><key>`` at each target. Best effort: the key field backs it up."""
        prefix = xmlid_prefix(spec)
        for key, res_id in targets.items():
            if key in stale:
                self._best_effort(spec, xmlid_name(prefix, key), "write", [[stale[key]], {"res_id": res_id}])
        vals = [{"module": MODULE, "name": xmlid_name(prefix, k), "model": spec.object, "res_id": res_id,
                 "noupdate": True} for k, res_id in targets.items() if k not in stale]
        if not vals or self._best_effort(spec, None, "create", [vals], quiet=len(vals) > 1):
            return
        if len(vals) > 1:
            # One duplicate (a concurrent instance, a resent request) must not cost the others.
            for v in vals:
                self._best_effort(spec, str(v["name"]), "create", [[v]])

    def _best_effort(self, spec: EntitySpec, xmlid: str | None, method: str, args: list[Any],
                     quiet: bool = False) -> bool:
        try:
            self._rpc.execute_kw("ir.model.data", method, args, idempotent=method != "create")
        except AuthError:
            raise
        except ConnectorError as exc:
            if not quiet:
                log.warning("odoo.xmlid_failed", model=spec.object, xmlid=xmlid, error=type(exc).__name__,
                            detail=exc.message[:200])
            return False
        return True
