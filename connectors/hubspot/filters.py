"""Record filters from the mapping (``options.filters``), e.g. only deals in a closed-won stage.

``filters`` is ``{property: [values]}``. In change scans each becomes a search filter with the
``IN`` operator, ANDed with the scan's own filters; in full listings the same test is applied
client-side. Values are sent verbatim: enumeration values (deal stages, pipelines) are
case-sensitive in HubSpot's search, while text properties are matched case-insensitively and
their ``IN`` values must be lowercase, so give text values in lowercase.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.base import EntitySpec, ValidationError

# A search filter group holds at most 6 filters and a change scan uses up to 3 of them.
MAX_FILTERS = 3


@dataclass(frozen=True)
class RecordFilters:
    """Property -> allowed values; empty means every record passes."""

    allowed: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def of(cls, spec: EntitySpec) -> RecordFilters:
        """The filters ``spec.options`` declares; ValidationError names a malformed declaration."""
        raw = spec.options.get("filters")
        if not raw:
            return cls()
        if not isinstance(raw, Mapping):
            raise _bad(spec, "filters must be a mapping {property: [values]}")
        allowed: list[tuple[str, tuple[str, ...]]] = []
        for prop, values in raw.items():
            listed = [values] if isinstance(values, (str, int)) else values
            if not isinstance(listed, (list, tuple)) or not listed:
                raise _bad(spec, f"filters.{prop} must be a non-empty list of values")
            if any(isinstance(v, (dict, list, tuple)) or v is None for v in listed):
                raise _bad(spec, f"filters.{prop} values must be plain strings")
            allowed.append((str(prop), tuple(str(v) for v in listed)))
        if len(allowed) > MAX_FILTERS:
            raise _bad(spec, f"at most {MAX_FILTERS} filter properties fit in a HubSpot search "
                             f"(got {len(allowed)})")
        return cls(tuple(allowed))

    def __bool__(self) -> bool:
        return bool(self.allowed)

    @property
    def properties(self) -> list[str]:
        """The properties the filters test (they must be read to test them client-side)."""
        return [prop for prop, _ in self.allowed]

    def search_filters(self) -> list[dict[str, Any]]:
        """The ``Filter`` objects to AND into every search filter group."""
        return [{"propertyName": prop, "operator": "IN", "values": list(values)} for prop, values in self.allowed]

    def matches(self, data: Mapping[str, Any]) -> bool:
        """Whether a record's properties pass every filter.

        Compared case-insensitively, as HubSpot's search compares text; enumeration values that
        differ only in case do not occur in practice.
        """
        for prop, values in self.allowed:
            value = data.get(prop)
            if value is None or str(value).casefold() not in {v.casefold() for v in values}:
                return False
        return True


def _bad(spec: EntitySpec, message: str) -> ValidationError:
    return ValidationError(f"hubspot: {spec.entity}: {message}", system="hubspot", field="filters")
