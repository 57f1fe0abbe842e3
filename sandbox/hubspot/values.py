"""Property values on the wire: HubSpot timestamps and the comparable forms search uses."""
from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any


def iso(ms: int) -> str:
    """Epoch milliseconds as HubSpot's ISO-8601 form with milliseconds and Z."""
    secs, milli = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{milli:03d}Z"


def to_ms(dt: datetime) -> int:
    """An aware datetime as epoch milliseconds."""
    return int(dt.timestamp() * 1000)


_EPOCH_MS = re.compile(r"^-?\d+$")


def parse_time_ms(value: str) -> int | None:
    """Epoch ms from a date/datetime property or filter value: epoch-ms string, ISO datetime or date."""
    text = value.strip()
    if not text:
        return None
    if _EPOCH_MS.match(text):
        return int(text)
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return to_ms(datetime(d.year, d.month, d.day, tzinfo=UTC))
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return to_ms(dt)


def convert(kind: str, raw: str) -> Any:
    """A stored or filter value in the comparable form of its kind; None if it does not parse."""
    if kind == "num":
        try:
            v = Decimal(raw.strip())
        except (InvalidOperation, AttributeError):
            return None
        return v if v.is_finite() else None
    if kind == "time":
        return parse_time_ms(raw)
    if kind == "enum":
        return raw
    return raw.casefold()
