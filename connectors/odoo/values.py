"""Odoo wire formats: value serialisation, UTC datetimes, domains and external-id names."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # odoo.tools.DEFAULT_SERVER_DATETIME_FORMAT, always UTC
DATE_FORMAT = "%Y-%m-%d"

Domain = list[Any]

_NOT_XMLID = re.compile(r"[^a-z0-9_]")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def to_odoo(value: Any) -> Any:
    """A Python value as Odoo's ORM expects it over JSON-RPC (None -> False, Decimal -> float...)."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.strftime(DATE_FORMAT)
    if isinstance(value, Enum):
        return to_odoo(value.value)
    if isinstance(value, Mapping):
        return {str(k): to_odoo(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_odoo(v) for v in value]  # command tuples such as [0, 0, {...}] nest
    return value


def format_datetime(value: datetime) -> str:
    """UTC ``YYYY-MM-DD HH:MM:SS`` (naive values are taken as UTC already)."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime(DATETIME_FORMAT)


def parse_datetime(value: Any) -> datetime | None:
    """An Odoo datetime string (naive UTC) as an aware UTC datetime; False/None -> None."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    text = str(value)
    try:
        parsed = datetime.strptime(text[:19], DATETIME_FORMAT)
    except ValueError:
        parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def normalize_domain(domain: Sequence[Any]) -> Domain:
    """Make implicit ANDs explicit (as odoo.osv.expression.normalize_domain does)."""
    if not domain:
        return [("id", "!=", False)]
    result: Domain = []
    expected = 1
    arity = {"!": 1, "&": 2, "|": 2}
    for token in domain:
        if expected == 0:
            result.insert(0, "&")
            expected = 1
        if isinstance(token, (list, tuple)):
            expected -= 1
            result.append(list(token))
        else:
            expected += arity.get(token, 0) - 1
            result.append(token)
    if expected != 0:
        raise ValueError(f"malformed Odoo domain: {list(domain)!r}")
    return result


def and_domains(domains: Iterable[Sequence[Any]]) -> Domain:
    """Conjunction of domains in explicit prefix form; empty domains are dropped."""
    parts = [normalize_domain(d) for d in domains if d]
    if not parts:
        return []
    out: Domain = ["&"] * (len(parts) - 1)
    for part in parts:
        out.extend(part)
    return out


def xmlid_name(prefix: str, key: str) -> str:
    """The ``ir.model.data`` name for a key: ``[a-z0-9_]`` only.

    When sanitising changes the text, a hash of the original is appended so that keys such
    as ``A-1`` and ``a_1`` cannot collide on one external id (a wrong adoption).
    """
    raw = f"{prefix}{key}"
    clean = _NOT_XMLID.sub("_", raw.lower())
    if clean != raw:
        clean = f"{clean}_{hashlib.sha256(raw.encode()).hexdigest()[:8]}"
    return clean


def many2one_id(value: Any) -> int | None:
    """The id in a many2one value (``[id, "name"]``, an int, or false)."""
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], int):
        return value[0]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def record_ref(value: Any) -> str | None:
    """A many2one value as the related record's id in text (``[7, "Acme"]`` -> ``"7"``), or None."""
    rid = many2one_id(value)
    return str(rid) if rid is not None else None


def same_value(native: Any, desired: Any) -> bool:
    """Whether a value read from Odoo equals a serialised value we would write."""
    desired_int = isinstance(desired, int) and not isinstance(desired, bool)
    if isinstance(native, (list, tuple)) and len(native) == 2 and desired_int:
        return bool(many2one_id(native) == desired)
    if isinstance(native, str) and native.isdigit() and desired_int:
        return bool(int(native) == desired)  # a many2one read back as its id in text
    if isinstance(native, str) and isinstance(desired, str) and _DATE.match(desired) and _DATETIME.match(native):
        return native[:10] == desired  # a date written into a datetime field (date_order)
    numbers = (isinstance(native, (int, float)) and isinstance(desired, (int, float))
               and not isinstance(native, bool) and not isinstance(desired, bool))
    if numbers and (isinstance(native, float) or isinstance(desired, float)):
        return abs(float(native) - float(desired)) < 1e-9
    if (native is False or native is None) and (desired is False or desired is None or desired == ""):
        return True
    return bool(native == desired)


def to_decimal(value: Any) -> Decimal:
    """An Odoo number (a float over JSON) as the Decimal it displays; false/None -> 0."""
    if value is None or value is False:
        return Decimal(0)
    return Decimal(str(value))
