"""The Odoo connector: Odoo 17/18 external API over JSON-RPC (``/jsonrpc``).

The work is split by job: rpc.py (transport and errors), reader.py (listing, reading),
relations.py (dotted many2one paths), keys.py (idempotency keys), writer.py (create, write,
archive), setup.py (custom fields), webhook.py (webhook verification and parsing); for
order-to-cash: items.py/lines.py (order lines), virtual.py/status.py/stock.py (computed
``concord_*`` fields), orders.py (confirm, hold, states) and purchases.py (purchase requests).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar

import structlog

from connectors.base import (
    Capabilities,
    EntitySpec,
    NativeRecord,
    OrderState,
    Page,
    PurchaseRequest,
    Watermark,
    WebhookEvent,
    WebhookRejected,
    WebhookRequest,
    WriteOp,
    WriteResult,
)
from connectors.odoo.items import ItemReader
from connectors.odoo.keys import Keys
from connectors.odoo.lines import LineWriter
from connectors.odoo.orders import OrderOps
from connectors.odoo.purchases import Purchases
from connectors.odoo.reader import Reader
from connectors.odoo.relations import Relations
from connectors.odoo.rpc import OdooRPC, OnResponse
from connectors.odoo.schema import Schema
from connectors.odoo.settings import OdooSettings
from connectors.odoo.setup import Setup
from connectors.odoo.webhook import parse_events, verify_token
from connectors.odoo.writer import Writer

log = structlog.get_logger("concord.odoo")

API_CALL_KINDS = ("auth", "read", "search", "write", "create", "setup")


class OdooConnector:
    """Connector for Odoo (Community or Enterprise, 17/18) through its external JSON-RPC API.

    Also an :class:`~connectors.base.OrderOperations` provider (sale.order, purchase.order).
    """

    name: ClassVar[str] = "odoo"
    settings_model: ClassVar[type[OdooSettings]] = OdooSettings
    default_mapping: ClassVar[str] = "odoo.yaml"

    def __init__(self, settings: OdooSettings, *, on_response: OnResponse | None = None) -> None:
        self.settings = settings
        self.rpc = OdooRPC(settings, on_response=on_response)
        self.schema = Schema(self.rpc)
        self._relations = Relations(self.rpc, self.schema)
        self._reader = Reader(self.rpc, self.schema, self._relations, settings.page_size)
        self._keys = Keys(self.rpc, self._reader)
        items = ItemReader(self.rpc, self.schema, self._relations)
        self._writer = Writer(self.rpc, self.schema, self._relations, self._keys,
                              batch_size=settings.batch_size, max_rounds=settings.max_attempts,
                              concurrency=settings.write_concurrency,
                              lines=LineWriter(self.rpc, self.schema, self._relations, items))
        self._setup = Setup(self.rpc, self.schema, purchase_key=settings.purchase_key_field)
        self._orders = OrderOps(self.rpc, self.schema, self._relations, items)
        self._purchases = Purchases(self.rpc, self.schema, self._keys, self._setup, settings)

    def capabilities(self) -> Capabilities:
        """Batches and pages from the config; Odoo has no upsert and no API rate limit of its own."""
        return Capabilities(batch_size=self.settings.batch_size, page_size=self.settings.page_size,
                            upsert=False, webhooks=True, archive=True)

    def check_connection(self) -> None:
        """``common.version`` (is this Odoo?) then a fresh ``common.authenticate``."""
        info = self.rpc.version()
        uid = self.rpc.login()
        log.info("odoo.connected", server_version=info.get("server_version"), db=self.settings.db, uid=uid)

    def missing_setup(self, specs: Sequence[EntitySpec]) -> list[str]:
        """Custom fields (``options.custom_fields``, ``x_`` key fields) not yet on the models."""
        return [f.describe() for f in self._setup.missing(specs)]

    def setup(self, specs: Sequence[EntitySpec]) -> list[str]:
        """Create the missing custom fields (ir.model.fields, state manual)."""
        return self._setup.create(specs)

    def iter_changes(self, spec: EntitySpec, since: Watermark | None) -> Iterator[Page]:
        """search_read by ``write_date >= since`` in (write_date, id) order, keyset-paged."""
        return self._reader.iter_changes(spec, since)

    def iter_all(self, spec: EntitySpec) -> Iterator[Page]:
        """Every record (archived included) by id, keyset-paged."""
        return self._reader.iter_all(spec)

    def read(self, spec: EntitySpec, ids: Sequence[str]) -> dict[str, NativeRecord]:
        """Records by id; ids that do not exist are absent."""
        return self._reader.read(spec, ids)

    def find_by_keys(self, spec: EntitySpec, keys: Sequence[str]) -> dict[str, NativeRecord]:
        """Records by idempotency key: external id ``concord.<prefix><key>``, then ``spec.key_field``."""
        return self._keys.lookup(spec, keys).found

    def find_by_values(self, spec: EntitySpec, field: str, values: Sequence[str]) -> list[NativeRecord]:
        """Active records whose ``field`` equals one of ``values``, ignoring case (search_read, ``=ilike``)."""
        return self._reader.find_by_values(spec, field, values)

    def write(self, spec: EntitySpec, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Updates (one write per distinct vals) and idempotent batched creates."""
        return self._writer.write(spec, ops)

    def archive(self, spec: EntitySpec, ids: Sequence[str]) -> list[WriteResult]:
        """``active = False``; deleting is the engine's decision, not made here."""
        return self._writer.archive(spec, ids)

    def parse_webhook(self, request: WebhookRequest) -> list[WebhookEvent]:
        """Check the shared token (header or ``?token=``) and return the announced records."""
        if request.method.upper() != "POST":
            raise WebhookRejected("odoo: webhooks are POST requests", status=405, reason="method_not_allowed",
                                  system=self.name)
        token = self.settings.webhook_token.get_secret_value() if self.settings.webhook_token else None
        verify_token(request, token, self.settings.webhook_header)
        return parse_events(request.body)

    # ------------------------------------------------------------------ OrderOperations
    def order_states(self, spec: EntitySpec, ids: Sequence[str]) -> dict[str, OrderState]:
        """State (draft/confirmed/cancelled), number, total, hold and per-line reservations."""
        return self._orders.order_states(spec, ids)

    def confirm_order(self, spec: EntitySpec, order_id: str) -> None:
        """``sale.order.action_confirm``; raises ValidationError if Odoo refuses."""
        self._orders.confirm_order(spec, order_id)

    def hold_order(self, spec: EntitySpec, order_id: str, reason: str | None) -> None:
        """Set (reason) or clear (None) the order's ``x_concord_hold``."""
        self._orders.hold_order(spec, order_id, reason)

    def held_orders(self, spec: EntitySpec) -> list[str]:
        """Draft orders with ``x_concord_hold`` set."""
        return self._orders.held_orders(spec)

    def request_purchases(self, requests: Sequence[PurchaseRequest]) -> list[WriteResult]:
        """Draft purchase orders for shortfalls, idempotent per request key (ref = key)."""
        return self._purchases.request(requests)

    def api_calls(self) -> dict[str, int]:
        """HTTP calls so far by kind (auth, read, search, write, create, setup)."""
        counts = dict.fromkeys(API_CALL_KINDS, 0)
        counts.update(self.rpc.api_calls())
        return counts

    def close(self) -> None:
        """Release the HTTP session."""
        self.rpc.close()
