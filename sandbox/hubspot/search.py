"""CRM search: POST /crm/v3/objects/{T}/search with HubSpot's filters, sort, paging and limits."""
from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from sandbox.core import Request, Response
from sandbox.hubspot.base import HubSpotBase
from sandbox.hubspot.catalog import (
    SEARCH_BODY_MAX_CHARS,
    SEARCH_MAX_FILTERS,
    SEARCH_MAX_FILTERS_PER_GROUP,
    SEARCH_MAX_GROUPS,
    SEARCH_PAGE_MAX,
    SEARCH_RESULT_CAP,
    resolve_object_type,
)
from sandbox.hubspot.store import ObjectStore, Record
from sandbox.hubspot.values import convert

RANGE_OPS = {"EQ", "GT", "GTE", "LT", "LTE", "BETWEEN"}
ALL_OPS = RANGE_OPS | {"NEQ", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN",
                       "NOT_CONTAINS_TOKEN"}
TOKEN_SPLIT = re.compile(r"[\s,;:()\[\]{}\"'/|]+")


@dataclass
class Filter:
    """A compiled search filter: a predicate plus, for indexed properties, an inclusive bound."""

    prop: str
    op: str
    match: Callable[[Record], bool]
    bound: tuple[int, int] | None = None


def kind_of(store: ObjectStore, prop: str) -> str:
    """How a property compares in search: num, time, enum (case-sensitive) or str."""
    if prop == "hs_object_id":
        return "num"
    pdef = store.properties.get(prop)
    if pdef is None:
        return "str"
    return {"number": "num", "date": "time", "datetime": "time", "enumeration": "enum",
            "bool": "enum"}.get(pdef.type, "str")


def record_getter(store: ObjectStore, prop: str, kind: str) -> Callable[[Record], Any]:
    """A function giving a record's comparable value of ``prop`` (None when unset)."""
    if prop == "hs_object_id":
        return lambda r: r.num
    if prop == "createdate":
        return lambda r: r.created_ms
    if prop == store.otype.modified_prop:
        return lambda r: r.updated_ms

    def get(r: Record) -> Any:
        raw = r.props.get(prop)
        return None if raw is None or raw == "" else convert(kind, raw)

    return get


def token_match(pattern: str, raw: str | None) -> bool:
    """CONTAINS_TOKEN: the value or one of its tokens matches, ``*`` a wildcard."""
    if not raw:
        return False
    text = raw.casefold()
    pat = pattern.casefold()
    tokens = [t for t in TOKEN_SPLIT.split(text) if t]
    if "*" in pat:
        return fnmatchcase(text, pat) or any(fnmatchcase(t, pat) for t in tokens)
    return pat == text or pat in tokens


def int_bound(kind: str, op: str, value: Any, high: Any = None) -> tuple[int, int] | None:
    """An inclusive integer range for a range operator on an integer-valued index."""
    lo, hi = -(2**63), 2**63

    def floor(x: Any) -> int:
        return math.floor(x)

    def ceil(x: Any) -> int:
        return math.ceil(x)

    if op == "EQ":
        return (ceil(value), floor(value))
    if op == "GT":
        return (floor(value) + 1, hi)
    if op == "GTE":
        return (ceil(value), hi)
    if op == "LT":
        return (lo, ceil(value) - 1)
    if op == "LTE":
        return (lo, floor(value))
    if op == "BETWEEN":
        return (ceil(value), floor(high))
    return None


class SearchApi(HubSpotBase):
    """Handler of /crm/v3/objects/{T}/search; O(page) when filtering on the indexed properties."""

    def _h_search(self, request: Request, m: re.Match[str]) -> Response:
        store = self._store(m["t"])
        try:
            chars = len(request.body.decode("utf-8"))
        except UnicodeDecodeError:
            chars = len(request.body)
        if chars > SEARCH_BODY_MAX_CHARS:
            raise self._abort(400, "VALIDATION_ERROR",
                              f"The request body is {chars} characters long; the limit is "
                              f"{SEARCH_BODY_MAX_CHARS} characters.")
        body = self._body(request) if request.body else {}
        return Response(200, self._search(store, body))

    def _search(self, store: ObjectStore, body: Mapping[str, Any]) -> dict[str, Any]:
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise self._abort(400, "VALIDATION_ERROR", f"limit must be a non-negative integer, got {limit!r}")
        if limit > SEARCH_PAGE_MAX:
            raise self._abort(400, "VALIDATION_ERROR",
                              f"Invalid limit: {limit}. The maximum is {SEARCH_PAGE_MAX} objects per page.",
                              context={"limit": [str(limit)]})
        limit = limit or 10
        after_raw = body.get("after") or "0"
        try:
            after = int(str(after_raw))
        except ValueError:
            raise self._abort(400, "VALIDATION_ERROR",
                              f"The value of 'after' must be formatted as an integer, got {after_raw!r}") from None
        if after < 0:
            raise self._abort(400, "VALIDATION_ERROR", "'after' must not be negative")
        if after >= SEARCH_RESULT_CAP:
            raise self._abort(400, "VALIDATION_ERROR",
                              f"Search results are limited to {SEARCH_RESULT_CAP} total results; "
                              f"paging beyond {SEARCH_RESULT_CAP} is not supported (after={after}).")
        groups = self._compile_groups(store, body.get("filterGroups") or [])
        sort_prop, descending = self._sort_of(store, body.get("sorts") or [])
        query = body.get("query")
        query_match = self._query_matcher(store, query) if query else None
        requested = body.get("properties") or None
        if requested is not None and not isinstance(requested, list):
            raise self._abort(400, "VALIDATION_ERROR", "'properties' must be a list of property names")
        props = self._read_props(store, requested)
        end = min(after + limit, SEARCH_RESULT_CAP)
        total, page = self._run_search(store, groups, query_match, sort_prop, descending, after, end)
        body_out: dict[str, Any] = {"total": total, "results": [self._render(store, r, props) for r in page]}
        if after + len(page) < total and page:
            # Offered even when it is 10,000: asking for that page is then the documented 400.
            body_out["paging"] = {"next": {"after": str(after + len(page))}}
        return body_out

    def _compile_groups(self, store: ObjectStore, raw: Any) -> list[list[Filter]]:
        if not isinstance(raw, list):
            raise self._abort(400, "VALIDATION_ERROR", "'filterGroups' must be a list")
        if len(raw) > SEARCH_MAX_GROUPS:
            raise self._abort(400, "VALIDATION_ERROR",
                              f"Too many filter groups: {len(raw)}. The maximum is {SEARCH_MAX_GROUPS}.")
        total = 0
        groups: list[list[Filter]] = []
        for group in raw:
            filters = group.get("filters") if isinstance(group, dict) else None
            if not isinstance(filters, list):
                raise self._abort(400, "VALIDATION_ERROR", "Each filter group needs a 'filters' list")
            if len(filters) > SEARCH_MAX_FILTERS_PER_GROUP:
                raise self._abort(400, "VALIDATION_ERROR",
                                  f"Too many filters in a filter group: {len(filters)}. "
                                  f"The maximum is {SEARCH_MAX_FILTERS_PER_GROUP}.")
            total += len(filters)
            groups.append([self._compile_filter(store, f) for f in filters])
        if total > SEARCH_MAX_FILTERS:
            raise self._abort(400, "VALIDATION_ERROR",
                              f"Too many filters: {total}. The maximum is {SEARCH_MAX_FILTERS} across all groups.")
        return groups

    def _compile_filter(self, store: ObjectStore, raw: Any) -> Filter:
        if not isinstance(raw, dict) or not raw.get("propertyName") or not raw.get("operator"):
            raise self._abort(400, "VALIDATION_ERROR", "Each filter needs 'propertyName' and 'operator'")
        prop, op = str(raw["propertyName"]), str(raw["operator"])
        if op not in ALL_OPS:
            raise self._abort(400, "VALIDATION_ERROR", f"Unknown operator {op!r}")
        if prop.startswith("associations."):
            return self._association_filter(store, prop, op, raw)
        if prop not in store.properties:
            raise self._abort(400, "VALIDATION_ERROR", f"Property \"{prop}\" does not exist on {store.otype.name}",
                              context={"propertyName": [prop]})
        kind = kind_of(store, prop)
        get = record_getter(store, prop, kind)
        raw_get: Callable[[Record], str | None] = lambda r: store.value(r, prop)  # noqa: E731

        def need(name: str) -> Any:
            if name not in raw or raw[name] is None:
                raise self._abort(400, "VALIDATION_ERROR", f"Operator {op} on {prop} requires '{name}'")
            v = convert(kind, str(raw[name]))
            if v is None:
                raise self._abort(400, "VALIDATION_ERROR", f"{raw[name]!r} is not a valid value for {prop}")
            return v

        indexed = prop == "hs_object_id" or prop == store.otype.modified_prop
        if op in RANGE_OPS:
            v = need("value")
            hi = need("highValue") if op == "BETWEEN" else None
            cmp: Callable[[Any], bool] = {
                "EQ": lambda x: x == v, "GT": lambda x: x > v, "GTE": lambda x: x >= v,
                "LT": lambda x: x < v, "LTE": lambda x: x <= v, "BETWEEN": lambda x: v <= x <= hi,
            }[op]

            def match(r: Record) -> bool:
                x = get(r)
                return x is not None and cmp(x)

            return Filter(prop, op, match, int_bound(kind, op, v, hi) if indexed else None)
        if op == "NEQ":
            v = need("value")
            return Filter(prop, op, lambda r: get(r) != v)
        if op in ("IN", "NOT_IN"):
            values = raw.get("values")
            if not isinstance(values, list) or not values:
                raise self._abort(400, "VALIDATION_ERROR", f"Operator {op} on {prop} requires 'values'")
            wanted = {convert(kind, str(x)) for x in values}
            if op == "IN":
                return Filter(prop, op, lambda r: get(r) in wanted)
            return Filter(prop, op, lambda r: get(r) not in wanted)
        if op == "HAS_PROPERTY":
            return Filter(prop, op, lambda r: bool(raw_get(r)))
        if op == "NOT_HAS_PROPERTY":
            return Filter(prop, op, lambda r: not raw_get(r))
        if "value" not in raw:
            raise self._abort(400, "VALIDATION_ERROR", f"Operator {op} on {prop} requires 'value'")
        pattern = str(raw["value"])
        if op == "CONTAINS_TOKEN":
            return Filter(prop, op, lambda r: token_match(pattern, raw_get(r)))
        return Filter(prop, op, lambda r: not token_match(pattern, raw_get(r)))

    def _association_filter(self, store: ObjectStore, prop: str, op: str, raw: Mapping[str, Any]) -> Filter:
        other = resolve_object_type(prop.split(".", 1)[1])
        if other is None or op not in ("EQ", "IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            raise self._abort(400, "VALIDATION_ERROR", f"Unsupported association filter {prop} {op}")
        from_type, to_type = store.otype.type_id, other.type_id

        def linked(r: Record) -> set[str]:
            return {str(n) for (t, n) in self._assoc.get((from_type, r.num), {}) if t == to_type}

        if op == "HAS_PROPERTY":
            return Filter(prop, op, lambda r: bool(linked(r)))
        if op == "NOT_HAS_PROPERTY":
            return Filter(prop, op, lambda r: not linked(r))
        wanted = {str(raw.get("value"))} if op == "EQ" else {str(v) for v in raw.get("values") or []}
        return Filter(prop, op, lambda r: bool(linked(r) & wanted))

    def _sort_of(self, store: ObjectStore, raw: Any) -> tuple[str | None, bool]:
        if not isinstance(raw, list):
            raise self._abort(400, "VALIDATION_ERROR", "'sorts' must be a list")
        if not raw:
            return None, False
        if len(raw) > 1:
            raise self._abort(400, "VALIDATION_ERROR", "Only one sort is allowed per search request.")
        sort = raw[0]
        if isinstance(sort, str):  # the spec types sorts as strings: "prop" or "-prop"
            prop, descending = sort.lstrip("-"), sort.startswith("-")
        elif isinstance(sort, dict) and sort.get("propertyName"):
            direction = str(sort.get("direction", "ASCENDING")).upper()
            if direction not in ("ASCENDING", "DESCENDING"):
                raise self._abort(400, "VALIDATION_ERROR", f"Unknown sort direction {direction!r}")
            prop, descending = str(sort["propertyName"]), direction == "DESCENDING"
        else:
            raise self._abort(400, "VALIDATION_ERROR", "A sort needs 'propertyName' and 'direction'")
        if prop not in store.properties:
            raise self._abort(400, "VALIDATION_ERROR", f"Property \"{prop}\" does not exist on {store.otype.name}")
        return prop, descending

    def _query_matcher(self, store: ObjectStore, query: Any) -> Callable[[Record], bool]:
        words = [w for w in TOKEN_SPLIT.split(str(query).casefold()) if w]
        fields = store.otype.search_text_props

        def match(r: Record) -> bool:
            tokens = [t for p in fields for t in TOKEN_SPLIT.split(r.props.get(p, "").casefold()) if t]
            return all(any(t.startswith(w) for t in tokens) for w in words)

        return match

    def _run_search(self, store: ObjectStore, groups: list[list[Filter]],
                    query_match: Callable[[Record], bool] | None, sort_prop: str | None, descending: bool,
                    start: int, end: int) -> tuple[int, list[Record]]:
        """(total matches, matches[start:end]) in the requested order; O(page) on the indexed fast path."""
        seq: list[Any]
        by_id = sort_prop is None or sort_prop == "hs_object_id"
        if by_id:
            index_prop, seq = "hs_object_id", store.live
        elif sort_prop == store.otype.modified_prop:
            index_prop, seq = sort_prop, store.by_modified
        else:
            return self._sorted_search(store, groups, query_match, str(sort_prop), descending, start, end)
        lo_i, hi_i = 0, len(seq)
        bounds = [self._group_bound(g, index_prop) for g in groups]
        if groups and all(b is not None for b in bounds):
            lo = min(b[0] for b in bounds if b)
            hi = max(b[1] for b in bounds if b)
            if by_id:
                lo_i, hi_i = bisect.bisect_left(seq, lo), bisect.bisect_right(seq, hi)
            else:
                lo_i, hi_i = bisect.bisect_left(seq, (lo, -1)), bisect.bisect_right(seq, (hi, 2**63))
            hi_i = max(hi_i, lo_i)

        def num_at(i: int) -> int:
            item: Any = seq[i]
            return int(item) if by_id else int(item[1])

        exact = query_match is None and (not groups or (
            len(groups) == 1 and all(f.prop == index_prop and f.bound for f in groups[0])))
        if exact:
            total = hi_i - lo_i
            if descending:
                positions = range(hi_i - 1 - start, max(hi_i - 1 - end, lo_i - 1), -1)
            else:
                positions = range(lo_i + start, min(lo_i + end, hi_i))
            return total, [store.records[num_at(i)] for i in positions]
        order = range(hi_i - 1, lo_i - 1, -1) if descending else range(lo_i, hi_i)
        total = 0
        page: list[Record] = []
        for i in order:
            rec = store.records[num_at(i)]
            if query_match is not None and not query_match(rec):
                continue
            if groups and not any(all(f.match(rec) for f in g) for g in groups):
                continue
            if start <= total < end:
                page.append(rec)
            total += 1
        return total, page

    @staticmethod
    def _group_bound(group: Sequence[Filter], prop: str) -> tuple[int, int] | None:
        """The intersection of a group's range filters on ``prop`` (None: the group is unbounded)."""
        bounds = [f.bound for f in group if f.prop == prop and f.bound]
        if not bounds:
            return None
        return max(b[0] for b in bounds), min(b[1] for b in bounds)

    def _sorted_search(self, store: ObjectStore, groups: list[list[Filter]],
                       query_match: Callable[[Record], bool] | None, sort_prop: str, descending: bool,
                       start: int, end: int) -> tuple[int, list[Record]]:
        kind = kind_of(store, sort_prop)
        get = record_getter(store, sort_prop, kind)
        matches = [store.records[n] for n in store.live
                   if (query_match is None or query_match(store.records[n]))
                   and (not groups or any(all(f.match(store.records[n]) for f in g) for g in groups))]
        present = [(get(r), r.num, r) for r in matches if get(r) is not None]
        absent = [r for r in matches if get(r) is None]
        present.sort(key=lambda x: (x[0], x[1]), reverse=descending)
        ordered = [x[2] for x in present] + absent  # records without a value come last
        return len(ordered), ordered[start:end]
