"""Incremental listing through HubSpot's CRM search, exact and gap-free.

HubSpot sorts by one property only (so ties on the modified date come back in any order) and
pages with an integer offset capped at 10,000 results. Offset paging also skips records when a
record earlier in the result set is modified mid-scan (it moves to the end and everything after
it shifts up by one). So every page here is a fresh query ("keyset" paging):

* query ``updated >= lower`` sorted ascending, first page only (``after`` = 0, never near the cap);
* yield the records older than the page's newest timestamp ``T``; records *at* ``T`` may have
  siblings on the next page, so they are re-read by the next query ``updated >= T``;
* when a full page holds nothing but ``T`` (more records share ``T`` than fit a page), list
  that timestamp by id instead: ``updated == T and hs_object_id > last id`` sorted by id, then go
  on with ``updated > T``.

Every record is yielded once per scan in (updated, id) order; one modified during the scan is
yielded again later with its new timestamp, which is what a change feed should do.

``filters`` (e.g. ``dealstage IN [closedwon]``) are ANDed into every query: they narrow the
records without changing the keyset logic, since every query sees the same narrowed set.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from connectors.base import RetryableError, id_sort_key
from connectors.hubspot.values import epoch_ms, parse_timestamp

ID_PROPERTY = "hs_object_id"
SEARCH_PAGE_MAX = 200  # "up to 200 objects" per search page

SearchPost = Callable[[dict[str, Any]], dict[str, Any]]


def record_stamp(obj: dict[str, Any], updated_field: str) -> int:
    """A result's modified time in epoch ms: the property, else the record's ``updatedAt``."""
    props = obj.get("properties") or {}
    when = parse_timestamp(props.get(updated_field)) or parse_timestamp(obj.get("updatedAt"))
    return epoch_ms(when) if when is not None else -1


class ChangeScan:
    """One scan of records modified at or after ``since_ms`` (None: all records)."""

    def __init__(self, post: SearchPost, *, updated_field: str, properties: Sequence[str],
                 page_size: int, since_ms: int | None, filters: Sequence[dict[str, Any]] = ()) -> None:
        self.post = post
        self.updated_field = updated_field
        self.properties = list(properties)
        self.page_size = page_size
        self.since_ms = since_ms
        self.filters = [dict(f) for f in filters]

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        """Raw search results, a page at a time, in (updated, id) order."""
        lower, strict = self.since_ms, False
        while True:
            filters = []
            if lower is not None:
                filters.append(self._filter(self.updated_field, "GT" if strict else "GTE", lower))
            results = self._query(filters, self.updated_field)
            ordered = sorted(results, key=self._order)
            if len(results) < self.page_size:  # the last page: nothing can follow its newest records
                if ordered:
                    yield ordered
                return
            top = self._stamp(ordered[-1])
            head = [r for r in ordered if self._stamp(r) < top]
            if head:
                yield head
                lower, strict = top, False
                continue
            yield from self._pages_at(top)
            lower, strict = top, True

    def _pages_at(self, stamp: int) -> Iterator[list[dict[str, Any]]]:
        """Every record modified exactly at ``stamp``, by ascending id."""
        last: str | None = None
        while True:
            filters = [self._filter(self.updated_field, "GTE", stamp),
                       self._filter(self.updated_field, "LTE", stamp)]
            if last is not None:
                filters.append({"propertyName": ID_PROPERTY, "operator": "GT", "value": last})
            results = self._query(filters, ID_PROPERTY)
            fresh = sorted((r for r in results if self._stamp(r) == stamp
                            and (last is None or id_sort_key(str(r["id"])) > id_sort_key(last))),
                           key=lambda r: id_sort_key(str(r["id"])))
            if fresh:
                yield fresh
            if len(results) < self.page_size:
                return
            newest = max((str(r["id"]) for r in results), key=id_sort_key)
            if last is not None and id_sort_key(newest) <= id_sort_key(last):
                raise RetryableError(f"hubspot: search by id made no progress past {last}", system="hubspot")
            last = newest

    def longest_body(self) -> dict[str, Any]:
        """The largest request body this scan sends (for HubSpot's 3,000-character limit)."""
        filters = [self._filter(self.updated_field, op, 10**13 - 1) for op in ("GTE", "LTE")]
        filters.append({"propertyName": ID_PROPERTY, "operator": "GT", "value": "9" * 20})
        return self._body(filters, self.updated_field)

    def _query(self, filters: list[dict[str, Any]], sort_property: str) -> list[dict[str, Any]]:
        return list(self.post(self._body(filters, sort_property)).get("results") or [])

    def _body(self, filters: list[dict[str, Any]], sort_property: str) -> dict[str, Any]:
        filters = [*filters, *self.filters]
        return {
            "filterGroups": [{"filters": filters}] if filters else [],
            "sorts": [{"propertyName": sort_property, "direction": "ASCENDING"}],
            "properties": self.properties,
            "limit": self.page_size,
            "after": "0",
        }

    def _stamp(self, obj: dict[str, Any]) -> int:
        return record_stamp(obj, self.updated_field)

    def _order(self, obj: dict[str, Any]) -> tuple[int, tuple[int, int, str]]:
        return (self._stamp(obj), id_sort_key(str(obj["id"])))

    @staticmethod
    def _filter(prop: str, operator: str, ms: int) -> dict[str, Any]:
        return {"propertyName": prop, "operator": operator, "value": str(ms)}


def value_search_bodies(prop: str, values: Sequence[str], properties: Sequence[str],
                        filters: Sequence[dict[str, Any]], *, limit: int, max_chars: int) -> Iterator[dict[str, Any]]:
    """Search bodies for ``prop IN values``, each holding as many values as fit in ``max_chars``
    (HubSpot refuses a body over 3,000 characters); a value too long to fit at all is left out."""
    def body(chunk: list[str], props: Sequence[str]) -> dict[str, Any]:
        group = [{"propertyName": prop, "operator": "IN", "values": chunk}, *filters]
        return {"filterGroups": [{"filters": group}], "properties": list(props),
                "sorts": [{"propertyName": ID_PROPERTY, "direction": "ASCENDING"}], "limit": limit}

    def size(b: dict[str, Any]) -> int:
        return len(json.dumps(b)) + len(', "after": "10000"')

    chunk: list[str] = []
    for value in values:
        if size(body([value], properties)) > max_chars:
            continue
        if chunk and size(body([*chunk, value], properties)) > max_chars:
            yield body(chunk, properties)
            chunk = []
        chunk.append(value)
    if chunk:
        yield body(chunk, properties)
