"""HubSpot property values: every value on the wire is a string.

Writes: Decimal -> plain digits (never an exponent), bool -> "true"/"false", date ->
"YYYY-MM-DD", datetime -> ISO 8601 UTC with milliseconds and "Z", None -> "" (clears the
property, per the PATCH semantics). HubSpot accepts either "YYYY-MM-DD" or epoch milliseconds at
midnight UTC for ``date`` properties and returns "YYYY-MM-DD" in v3; we send the readable form.
"""
from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_property(value: Any) -> str:
    """One Python value as HubSpot's string form; raises ValueError for values it cannot carry."""
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return to_property(value.value)
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a finite number: {value}")
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return to_property(Decimal(repr(value)))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: timestamps must be timezone-aware")
        utc = value.astimezone(timezone.utc)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        # Multiple-checkbox properties take their options separated by semicolons.
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return ";".join(to_property(v) for v in items)
    raise ValueError(f"cannot send a {type(value).__name__} as a HubSpot property value")


def to_properties(data: Mapping[str, Any]) -> dict[str, str]:
    """A record's fields as HubSpot properties; ValueError names the field that failed."""
    out: dict[str, str] = {}
    for name, value in data.items():
        try:
            out[name] = to_property(value)
        except ValueError as exc:
            raise PropertyValueError(name, str(exc)) from None
    return out


class PropertyValueError(ValueError):
    """A field value that cannot be written as a HubSpot property."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def epoch_ms(when: datetime) -> int:
    """An aware datetime as epoch milliseconds, rounded down (a GTE filter then includes it)."""
    if when.tzinfo is None:
        raise ValueError("naive datetime: watermarks must be timezone-aware")
    return (when - _EPOCH) // timedelta(milliseconds=1)


def parse_timestamp(value: Any) -> datetime | None:
    """A HubSpot timestamp (ISO 8601 or epoch milliseconds) as an aware UTC datetime."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text.isdigit():
        return _EPOCH + timedelta(milliseconds=int(text))
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)
