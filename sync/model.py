"""Canonical entities: every connector's records are mapped to and from these.

Money is Decimal with an explicit currency, timestamps are aware UTC. Unknown ``extra``
fields (declared in a mapping file as ``extra.<name>``) flow like core fields.
"""
from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Canonical(BaseModel):
    """Base of canonical entities: strict about unknown fields, lenient about missing ones."""

    model_config = ConfigDict(extra="forbid", frozen=False)

    deleted: bool = False
    extra: dict[str, Any] = Field(default_factory=dict)


class Customer(Canonical):
    """A customer (company); two-way by default, the ERP owns credit limit and balance."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    website: str | None = None
    vat: str | None = None
    street: str | None = None
    city: str | None = None
    zip: str | None = None
    state: str | None = None
    country: str | None = None  # ISO 3166 alpha-2
    currency: str | None = None
    tags: list[str] | None = None
    customer_code: str | None = None
    credit_limit: Decimal | None = None
    balance_due: Decimal | None = None

    @field_validator("country")
    @classmethod
    def _alpha2(cls, v: str | None) -> str | None:
        if v is not None and (len(v) != 2 or not v.isalpha() or not v.isupper()):
            raise ValueError(f"country must be an ISO 3166 alpha-2 code, got {v!r}")
        return v


class Product(Canonical):
    """A product, keyed by SKU; the ERP is its master."""

    sku: str | None = None
    name: str | None = None
    description: str | None = None
    list_price: Decimal | None = None
    currency: str | None = None
    uom: str | None = None
    active: bool | None = None


class OrderStatus(str, Enum):
    draft = "draft"
    confirmed = "confirmed"
    backordered = "backordered"
    credit_hold = "credit_hold"
    shipped = "shipped"
    invoiced = "invoiced"
    paid = "paid"
    cancelled = "cancelled"


class OrderLine(BaseModel):
    """One order line; ``line_ref`` is the CRM line id that keys per-line diffs."""

    model_config = ConfigDict(extra="forbid")

    line_ref: str | None = None
    sku: str | None = None
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    discount: Decimal | None = None


class Order(Canonical):
    """A sales order: CRM to ERP, status back."""

    order_ref: str | None = None
    customer: str | None = None
    order_date: date | None = None
    currency: str | None = None
    lines: list[OrderLine] | None = None
    amount_total: Decimal | None = None
    status: OrderStatus | None = None
    erp_number: str | None = None


class StockLevel(Canonical):
    """Stock of one SKU in one warehouse (``*`` for the total)."""

    sku: str | None = None
    warehouse: str | None = None
    on_hand: Decimal | None = None
    reserved: Decimal | None = None
    available: Decimal | None = None
    incoming: Decimal | None = None


class Payment(Canonical):
    """An invoice and what has been paid on it."""

    invoice_number: str | None = None
    order: str | None = None
    customer: str | None = None
    amount_total: Decimal | None = None
    amount_paid: Decimal | None = None
    amount_due: Decimal | None = None
    currency: str | None = None
    state: str | None = None  # unpaid | partial | paid | reversed
    due_date: date | None = None
    paid_at: datetime | None = None


ENTITIES: dict[str, type[Canonical]] = {
    "customer": Customer,
    "product": Product,
    "order": Order,
    "stock_level": StockLevel,
    "payment": Payment,
}


def field_names(entity: str) -> set[str]:
    """Core canonical field names of an entity (``extra.*`` fields are always allowed)."""
    return set(ENTITIES[entity].model_fields) - {"extra"}


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _normalise(value: Any) -> Any:
    if type(value) in _PLAIN:  # the common case: no isinstance chain
        return value
    if isinstance(value, dict):
        return {k: v if type(v) in _PLAIN else _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    return json_scalar(value)


def json_scalar(value: Any) -> Any:
    """The JSON form of a Decimal, datetime, date or enum (normalised: the text hashes and the store
    use); any other value unchanged."""
    if isinstance(value, Decimal):
        # 10.50 and 10.5 are the same amount: hash the normalised form.
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def _encode_default(value: Any) -> Any:
    out = json_scalar(value)
    if out is value:
        raise TypeError(f"{type(value).__name__} is not canonical content")
    return out


# One encoder, built once (json.dumps with options builds a new one per call). Its C
# implementation calls ``_encode_default`` for Decimals, datetimes and enums, so the text equals
# json.dumps(_normalise(data)) without a Python pass over the data. ASCII escapes: a lone
# surrogate (an undecodable byte a product passed through) hashes instead of failing to encode.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_encode_default)


def canonical_json(data: dict[str, Any]) -> str:
    """Canonical JSON of canonical content: sorted keys, normalised decimals and datetimes."""
    return _CANONICAL.encode(data)


def content_hash(data: dict[str, Any]) -> str:
    """Hash of canonical content; equal content gives an equal hash whatever its formatting."""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:32]


def jsonable(value: Any) -> Any:
    """A copy of canonical content in JSON types (as stored in a link's base): decimals as
    normalised text, datetimes as ISO UTC, tuples and sets as lists, other objects as text."""
    t = type(value)
    if t in _PLAIN:
        return value
    if t is dict or isinstance(value, dict):
        return {k if type(k) is str else _key_text(k): v if type(v) in _PLAIN else jsonable(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    out = json_scalar(value)
    if type(out) in _PLAIN:
        return out
    return str(out)


def _key_text(key: Any) -> str:
    # json turns keys into text the same way: True -> "true", None -> "null", 1.5 -> "1.5".
    if type(key) in _PLAIN:
        return next(iter(json.loads(json.dumps({key: 0}))))
    return str(json_scalar(key))
