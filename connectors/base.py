"""The connector protocol and the types that connectors and the sync engine share.

A connector speaks one product's API and nothing else: it knows no sync policy. The engine
(``sync/``) drives it through the methods of :class:`Connector`, with :class:`EntitySpec`
values compiled from the product's mapping file.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Protocol, runtime_checkable


# --------------------------------------------------------------------------------------------
# Typed errors: raised at the connector boundary; library exceptions never leak into sync/.
# --------------------------------------------------------------------------------------------
class ConnectorError(Exception):
    """Base of every error a connector raises."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, system: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.status = status


class RetryableError(ConnectorError):
    """Connection error, timeout or 5xx that outlived the retry policy; try again later.

    ``maybe_applied`` is true when the request may have reached the product (a lost
    acknowledgement): a create must then be looked up by its key before it is sent again.
    """

    retryable = True

    def __init__(self, message: str, *, system: str = "", status: int | None = None,
                 maybe_applied: bool = False) -> None:
        super().__init__(message, system=system, status=status)
        self.maybe_applied = maybe_applied


class RateLimited(RetryableError):
    """The product throttled us; ``retry_after`` seconds (if known) before the next call."""

    def __init__(self, message: str, *, system: str = "", status: int | None = 429,
                 retry_after: float | None = None) -> None:
        super().__init__(message, system=system, status=status)
        self.retry_after = retry_after


class AuthError(ConnectorError):
    """401/403 or Odoo AccessDenied/AccessError: stops the pipeline with a clear message."""


class ValidationError(ConnectorError):
    """The product refused a record (400, Odoo ValidationError/UserError); names the field if known."""

    def __init__(self, message: str, *, system: str = "", status: int | None = None,
                 field: str | None = None) -> None:
        super().__init__(message, system=system, status=status)
        self.field = field


class NotFound(ConnectorError):
    """The record does not exist (any more) on the product."""


class WebhookRejected(ConnectorError):
    """A webhook request failed verification; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, *, status: int, reason: str, system: str = "") -> None:
        super().__init__(message, system=system, status=status)
        self.reason = reason


# --------------------------------------------------------------------------------------------
# Shared value types
# --------------------------------------------------------------------------------------------
def id_sort_key(record_id: str) -> tuple[int, int, str]:
    """Order ids numerically when they are numbers (HubSpot, Odoo), else as text."""
    if record_id.isascii() and record_id.isdigit():
        return (0, int(record_id), "")
    return (1, 0, record_id)


@dataclass(frozen=True, order=False)
class Watermark:
    """The (updated_at, id) position of the last fully processed change on one system."""

    updated_at: datetime
    id: str

    def sort_key(self) -> tuple[datetime, tuple[int, int, str]]:
        return (self.updated_at, id_sort_key(self.id))

    def __lt__(self, other: Watermark) -> bool:
        return self.sort_key() < other.sort_key()

    def __le__(self, other: Watermark) -> bool:
        return self.sort_key() <= other.sort_key()


@dataclass(frozen=True)
class EntitySpec:
    """What the engine asks of one native object, compiled from a mapping file.

    ``fields`` are the top-level native fields to read. ``key_field`` is the native field that
    carries the other system's id (the idempotency key); ``options`` holds connector-specific
    settings from the mapping file (an Odoo domain, an external-id prefix, ...).
    """

    entity: str
    object: str
    id_field: str
    updated_field: str
    fields: tuple[str, ...]
    key_field: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class NativeRecord:
    """One record as the product returns it (values untouched: strings for HubSpot, ``false`` for empty in Odoo)."""

    id: str
    updated_at: datetime | None
    data: dict[str, Any]
    deleted: bool = False


@dataclass
class Page:
    """One page of records, in (updated_at, id) order for change listings."""

    records: list[NativeRecord]


@dataclass
class WriteOp:
    """One record to write. ``target_id`` set: update it; unset: create it idempotently with ``key``."""

    ref: str
    data: dict[str, Any]
    target_id: str | None = None
    key: str | None = None


@dataclass
class WriteResult:
    """The outcome of one :class:`WriteOp`; partial failure of a batch is normal."""

    ref: str
    ok: bool
    target_id: str | None = None
    created: bool = False
    error: ConnectorError | None = None
    record: NativeRecord | None = None


@dataclass(frozen=True)
class Capabilities:
    """What a connector can do, so the engine can drive it without knowing the product."""

    batch_size: int
    page_size: int
    upsert: bool = False
    webhooks: bool = False
    archive: bool = True


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook HTTP request as received: the full URL as the sender addressed it, raw body."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class WebhookEvent:
    """A change announced by a webhook. A hint only: the record is always re-read by id."""

    event_id: str
    object: str
    record_id: str
    kind: str  # "create" | "update" | "delete" | "other"
    occurred_at: datetime | None = None


@runtime_checkable
class Connector(Protocol):
    """One product's API. Registered by name in connectors/registry.py."""

    name: ClassVar[str]

    def capabilities(self) -> Capabilities:
        """Batch size, page size and features, from the product's limits and the config."""

    def check_connection(self) -> None:
        """Log in and make one cheap call; raise AuthError or RetryableError."""

    def missing_setup(self, specs: Sequence[EntitySpec]) -> list[str]:
        """Custom fields/properties the specs need that do not exist yet (human-readable)."""

    def setup(self, specs: Sequence[EntitySpec]) -> list[str]:
        """Create what :meth:`missing_setup` reports, idempotently; return what was created."""

    def iter_changes(self, spec: EntitySpec, since: Watermark | None) -> Iterator[Page]:
        """Records with updated_at >= since.updated_at (the caller subtracts its overlap), in
        (updated_at, id) order, a page at a time; archived records included, ``deleted`` set."""

    def iter_all(self, spec: EntitySpec) -> Iterator[Page]:
        """Every record of the object (archived included), a page at a time, in any stable order."""

    def read(self, spec: EntitySpec, ids: Sequence[str]) -> dict[str, NativeRecord]:
        """Records by id, batched; ids that do not exist are absent from the result."""

    def find_by_keys(self, spec: EntitySpec, keys: Sequence[str]) -> dict[str, NativeRecord]:
        """Records whose idempotency key (``spec.key_field`` / external id) is one of ``keys``."""

    def find_by_values(self, spec: EntitySpec, field: str, values: Sequence[str]) -> list[NativeRecord]:
        """Live records whose native ``field`` equals one of ``values``, ignoring case; batched (for
        ``match_on``: records the match index has not seen yet)."""

    def write(self, spec: EntitySpec, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Create or update, batched; creates are idempotent on ``op.key`` (lookup, then create)."""

    def archive(self, spec: EntitySpec, ids: Sequence[str]) -> list[WriteResult]:
        """Archive (soft-delete) records by id."""

    def parse_webhook(self, request: WebhookRequest) -> list[WebhookEvent]:
        """Verify the request's signature/token and return its events; raise WebhookRejected."""

    def api_calls(self) -> dict[str, int]:
        """Calls made so far by kind (``read``, ``search``, ``write``, ...), for runs and benchmarks."""

    def close(self) -> None:
        """Release the HTTP session."""


# --------------------------------------------------------------------------------------------
# Order-to-cash: what an ERP connector offers beyond records, for the order business rules.
# --------------------------------------------------------------------------------------------
@dataclass
class OrderLineState:
    """One line of an ERP order as the ERP sees it after confirmation."""

    line_ref: str | None
    sku: str | None
    quantity: Decimal
    reserved: Decimal  # what the ERP could reserve from stock; quantity - reserved is the shortfall

    @property
    def shortfall(self) -> Decimal:
        return max(Decimal(0), self.quantity - self.reserved)


@dataclass
class OrderState:
    """An ERP order's state: ``draft`` (editable), ``confirmed`` (locked for edits) or ``cancelled``."""

    id: str
    state: str
    number: str | None
    amount_total: Decimal | None
    held: bool
    partner_id: str | None
    lines: list[OrderLineState] = field(default_factory=list)


@dataclass(frozen=True)
class PurchaseRequest:
    """A draft purchase for a shortfall, idempotent on ``key`` (one per order line)."""

    key: str
    sku: str
    quantity: Decimal
    origin: str


@runtime_checkable
class OrderOperations(Protocol):
    """Optional capability of an ERP connector: confirm, hold and inspect orders, request purchases."""

    def order_states(self, spec: EntitySpec, ids: Sequence[str]) -> dict[str, OrderState]:
        """State, number, total, hold flag and per-line reservations of orders by id."""

    def confirm_order(self, spec: EntitySpec, order_id: str) -> None:
        """Confirm a draft order (Odoo action_confirm); raises ValidationError if the ERP refuses."""

    def hold_order(self, spec: EntitySpec, order_id: str, reason: str | None) -> None:
        """Mark (reason) or unmark (None) a draft order as held by Concord, e.g. for credit."""

    def held_orders(self, spec: EntitySpec) -> list[str]:
        """Ids of draft orders Concord holds: re-checked on every pass."""

    def request_purchases(self, requests: Sequence[PurchaseRequest]) -> list[WriteResult]:
        """Create draft purchase requests for shortfalls; idempotent on each request's key (ref = key)."""
