"""``match_on`` beyond the match index: ask a system for records the index has not seen yet.

The index is built in full on a pipeline's first run and then fed by the records Concord processes,
so a record typed into the other system since (or announced by webhook before its own pass) is not
in it. Before creating, the pipeline asks the target for the unmatched key values, a batch at a time
(one search per batch and key, never one per record), and indexes what it finds.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import structlog

from connectors.base import Connector, EntitySpec
from sync.merge import flatten, unflatten

log = structlog.get_logger("concord.matching")

Normalise = Callable[[Any], "str | None"]


def native_key(em: Any, key: str, value: Any) -> tuple[str, str] | None:
    """The native field and value ``em`` writes for canonical ``key`` = ``value``; None when the key
    is not written as one plain top-level field (nothing to search by)."""
    try:
        native = em.to_native(unflatten({key: value}), fields={key})
    except Exception:  # a value this side cannot hold: no record of it can match
        return None
    if len(native) != 1:
        return None
    ((fld, raw),) = native.items()
    if "." in fld or raw in (None, "", False) or isinstance(raw, (dict, list, tuple)):
        return None
    return fld, str(raw)


def search_unindexed(connector: Connector, spec: EntitySpec, em: Any, keys: Sequence[str], key: str,
                     raw_by_value: Mapping[str, Any], normalise: Normalise) -> list[tuple[str, str, str]]:
    """Match-index rows ``(key, value, record id)`` for ``connector``'s live records whose ``key``
    matches one of ``raw_by_value`` (normalised value -> canonical value), every ``keys`` of them."""
    by_field: dict[str, list[str]] = {}
    for raw in raw_by_value.values():
        found = native_key(em, key, raw)
        if found is not None:
            by_field.setdefault(found[0], []).append(found[1])
    rows: list[tuple[str, str, str]] = []
    for fld, values in by_field.items():
        records = connector.find_by_values(spec, fld, values)
        rows.extend(match_rows(records, em, keys, normalise))
        log.info("match.searched", entity=spec.entity, field=fld, values=len(values), found=len(records))
    return rows


def match_rows(records: Iterable[Any], em: Any, keys: Sequence[str],
               normalise: Normalise) -> Iterator[tuple[str, str, str]]:
    """(key, normalised value, record id) index rows of live, mappable records."""
    for rec in records:
        if rec.deleted:
            continue
        try:
            c = flatten(em.to_canonical(rec.data))
        except Exception:  # an unmappable record can't be matched; its own sync reports it
            continue
        for k in keys:
            v = normalise(c.get(k))
            if v:
                yield k, v, rec.id
