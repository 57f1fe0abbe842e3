"""The in-memory records of one object type and the indexes that keep requests O(page)."""
from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.hubspot.catalog import ObjectType, standard_properties
from sandbox.hubspot.values import iso


@dataclass(slots=True)
class Record:
    """One CRM record. ``props`` holds only stored values; system properties are derived."""

    num: int
    props: dict[str, str]
    created_ms: int
    updated_ms: int
    archived: bool = False
    archived_ms: int | None = None

    @property
    def id(self) -> str:
        """The id as HubSpot sends it: a numeric string."""
        return str(self.num)


class ObjectStore:
    """The records of one object type plus the indexes that keep every request O(page).

    ``live`` and ``gone`` are sorted record numbers (ids only ever grow, so creation appends);
    ``by_modified`` is (updated_ms, num) of live records, kept sorted on every write.
    """

    def __init__(self, otype: ObjectType, now_ms: int) -> None:
        self.otype = otype
        self.records: dict[int, Record] = {}
        self.live: list[int] = []
        self.gone: list[int] = []
        self.by_modified: list[tuple[int, int]] = []
        self.properties = standard_properties(otype, now_ms)
        self.unique: dict[str, dict[str, int]] = {p.name: {} for p in self.properties.values()
                                                  if p.unique and p.name != "hs_object_id"}

    # ---------------------------------------------------------------- system properties
    def system_props(self, rec: Record) -> dict[str, str]:
        """hs_object_id, createdate and the modified-date property, derived from the record."""
        return {"hs_object_id": rec.id, "createdate": iso(rec.created_ms),
                self.otype.modified_prop: iso(rec.updated_ms)}

    def value(self, rec: Record, prop: str) -> str | None:
        """The wire value of one property (system ones included), or None."""
        if prop == "hs_object_id":
            return rec.id
        if prop == "createdate":
            return iso(rec.created_ms)
        if prop == self.otype.modified_prop:
            return iso(rec.updated_ms)
        return rec.props.get(prop)

    # ---------------------------------------------------------------- index upkeep
    def add(self, rec: Record) -> None:
        """Insert a new record into every index."""
        self.records[rec.num] = rec
        if not self.live or rec.num > self.live[-1]:
            self.live.append(rec.num)
        else:
            bisect.insort(self.live, rec.num)
        bisect.insort(self.by_modified, (rec.updated_ms, rec.num))
        self.index_unique(rec, rec.props)

    def touch(self, rec: Record, updated_ms: int) -> None:
        """Move a record's modified time, keeping ``by_modified`` sorted."""
        if not rec.archived:
            self._remove_sorted(self.by_modified, (rec.updated_ms, rec.num))
            bisect.insort(self.by_modified, (updated_ms, rec.num))
        rec.updated_ms = updated_ms

    def retire(self, rec: Record) -> None:
        """Take an archived record out of the live indexes."""
        self._remove_sorted(self.live, rec.num)
        self._remove_sorted(self.by_modified, (rec.updated_ms, rec.num))
        bisect.insort(self.gone, rec.num)
        self.unindex_unique(rec, rec.props)

    def index_unique(self, rec: Record, values: Mapping[str, str]) -> None:
        """Record the unique-property values a record now holds."""
        for prop, index in self.unique.items():
            v = values.get(prop)
            if v:
                index[self.unique_key(prop, v)] = rec.num

    def unindex_unique(self, rec: Record, values: Mapping[str, str]) -> None:
        """Free the unique-property values a record no longer holds."""
        for prop, index in self.unique.items():
            v = values.get(prop)
            if v and index.get(self.unique_key(prop, v)) == rec.num:
                del index[self.unique_key(prop, v)]

    def unique_key(self, prop: str, value: str) -> str:
        # Emails are matched case-insensitively by HubSpot; custom unique values exactly.
        """The index key of a unique value."""
        return value.lower() if prop == "email" else value

    @staticmethod
    def _remove_sorted(seq: list[Any], item: Any) -> None:
        i = bisect.bisect_left(seq, item)
        if i < len(seq) and seq[i] == item:
            del seq[i]

    # ---------------------------------------------------------------- look-ups
    def live_record(self, num: int) -> Record | None:
        """The record if it exists and is not archived."""
        rec = self.records.get(num)
        return rec if rec is not None and not rec.archived else None

    def find(self, key: str, id_property: str | None, *, archived: bool = False) -> Record | None:
        """The record whose id (or unique ``id_property`` value) is ``key``; None when absent."""
        if id_property and id_property != "hs_object_id":
            index = self.unique.get(id_property)
            if index is None:
                return None
            num = index.get(self.unique_key(id_property, key))
            if num is None:
                return None
        else:
            if not key.isdigit():
                return None
            num = int(key)
        rec = self.records.get(num)
        if rec is None or rec.archived != archived:
            return None
        return rec
