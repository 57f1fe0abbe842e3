"""Fills a page of records' virtual paths (see virtual.py) with a bounded number of calls.

Per page and associated object type: one associations v4 batch read per 100 records (plus
one per further page of a record with very many associations); for list fields, one batch read
of the associated records per 100 of them, with exactly the item properties. A page of up to
100 deals with companies and line items therefore costs 2 + ceil(line items / 100) calls.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import structlog

from connectors.base import EntitySpec, NativeRecord, RetryableError
from connectors.hubspot.associations import AssociationReader, Link, primary_id
from connectors.hubspot.errors import error_message
from connectors.hubspot.virtual import VirtualFields

log = structlog.get_logger("concord.hubspot.expand")

Post = Callable[[str, dict[str, Any]], dict[str, Any]]
ID_PROPERTY = "hs_object_id"


class Expander:
    """Resolves virtual paths through ``post(path, body) -> JSON`` (a "read" call)."""

    def __init__(self, post: Post, batch_size: int) -> None:
        self.post = post
        self.batch_size = batch_size
        self.associations = AssociationReader(post, batch_size)

    def expand(self, spec: EntitySpec, virtual: VirtualFields, records: Sequence[NativeRecord]) -> None:
        """Set every virtual path on the live records, in place (archived ones are left alone)."""
        live = [r for r in records if not r.deleted]
        if not virtual or not live:
            return
        ids = [r.id for r in live]
        links = {to_type: self.associations.read(spec.object, to_type, ids) for to_type in virtual.object_types()}
        for path, to_type in virtual.singles.items():
            for record in live:
                record.data[path] = primary_id(links[to_type].get(record.id, []))
        items = self._items(virtual, links)
        for path, field in virtual.lists.items():
            found = items[field.object]
            for record in live:
                record.data[path] = [_item(found[link.to_id], field.properties)
                                     for link in links[field.object].get(record.id, []) if link.to_id in found]
        log.debug("hubspot.expand.page", object=spec.object, records=len(live),
                  items={k: len(v) for k, v in items.items()})

    def _items(self, virtual: VirtualFields, links: dict[str, dict[str, list[Link]]]
               ) -> dict[str, dict[str, dict[str, Any]]]:
        """{object type: {id: properties}} of every record a list field needs, one read per type."""
        wanted: dict[str, list[str]] = {}
        for field in virtual.lists.values():
            wanted.setdefault(field.object, [])
            wanted[field.object] = list(dict.fromkeys([*wanted[field.object], *field.properties]))
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for obj, properties in wanted.items():
            ids = list(dict.fromkeys(link.to_id for per_record in links[obj].values() for link in per_record))
            out[obj] = self._read(obj, ids, properties)
        return out

    def _read(self, obj: str, ids: list[str], properties: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), self.batch_size):
            chunk = ids[start:start + self.batch_size]
            body = {"inputs": [{"id": i} for i in chunk], "properties": properties, "propertiesWithHistory": []}
            payload = self.post(f"/crm/v3/objects/{obj}/batch/read", body)
            for result in payload.get("results") or []:
                props = dict(result.get("properties") or {})
                props.setdefault(ID_PROPERTY, str(result["id"]))
                found[str(result["id"])] = props
            for error in payload.get("errors") or []:
                if str(error.get("category") or "") != "OBJECT_NOT_FOUND":
                    raise RetryableError(f"hubspot: reading {obj} failed: {error.get('category')}: "
                                         f"{error_message(error, 'batch input failed')}", system="hubspot")
                # Deleted between the association read and now: no longer part of the record.
                log.info("hubspot.expand.gone", object=obj, ids=(error.get("context") or {}).get("ids"))
        return found


def _item(props: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    return {p: props.get(p) for p in paths}
