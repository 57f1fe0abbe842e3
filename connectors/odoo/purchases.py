"""Purchase requests for stock shortfalls: draft purchase orders (RFQs), idempotent per request key.

One call makes one draft purchase.order per (vendor, origin) with one line per request. Each
line carries its request key twice, as for records (keys.py): in a custom field
(``purchase_key_field``, default ``x_concord_po_key``) set in the create call itself, so that the
order, its lines and their keys are one transaction, and as the external id
``concord.po_<sanitised key>`` on the purchase.order.line. Before creating, both are looked up;
after a lost acknowledgement they are looked up again, so a retry, a crash or a lost answer
never makes a second line for a key. The vendor is the product's first seller
(product.supplierinfo, by sequence), else ``purchase_vendor_id``, else a partner "Concord default
vendor" created once (external id ``concord.default_vendor``). Prices, descriptions, units and
dates are left to Odoo, which computes them from the vendor's price list.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from connectors.base import (
    AuthError,
    ConnectorError,
    EntitySpec,
    PurchaseRequest,
    RetryableError,
    ValidationError,
    WriteResult,
)
from connectors.odoo.errors import SYSTEM
from connectors.odoo.keys import MODULE, Keys
from connectors.odoo.rpc import OdooRPC
from connectors.odoo.schema import Schema
from connectors.odoo.settings import OdooSettings
from connectors.odoo.setup import PURCHASE_LINE, Setup, purchase_key_field
from connectors.odoo.values import many2one_id

log = structlog.get_logger("concord.odoo.purchases")

DEFAULT_VENDOR_NAME = "Concord default vendor"
DEFAULT_VENDOR_XMLID = "default_vendor"
XMLID_PREFIX = "po_"


@dataclass
class _Line:
    request: PurchaseRequest
    product_id: int
    vendor_id: int


class Purchases:
    """Creates draft purchase orders for :class:`PurchaseRequest` values."""

    def __init__(self, rpc: OdooRPC, schema: Schema, keys: Keys, setup: Setup, settings: OdooSettings) -> None:
        self._rpc = rpc
        self._schema = schema
        self._keys = keys
        self._setup = setup
        self._settings = settings
        self._vendor: int | None = settings.purchase_vendor_id
        self.spec = EntitySpec(entity="purchase_request", object=PURCHASE_LINE, id_field="id",
                               updated_field="write_date", fields=("order_id",),
                               key_field=settings.purchase_key_field, options={"xmlid_prefix": XMLID_PREFIX})

    def request(self, requests: Sequence[PurchaseRequest]) -> list[WriteResult]:
        """One result per request (ref = key, target_id = the purchase.order id)."""
        results: dict[str, WriteResult] = {}
        unique = list({r.key: r for r in requests}.values())
        try:
            self._setup.ensure([purchase_key_field(self._settings.purchase_key_field)])
            todo = self._adopt(unique, results)
            lines = self._resolve(todo, results)
            self._create(lines, results)
        except AuthError:
            raise
        except ConnectorError as exc:  # a lookup every request depends on failed
            for r in unique:
                results.setdefault(r.key, WriteResult(r.key, ok=False, error=exc))
        return [results[r.key] for r in requests]

    # ------------------------------------------------------------------ lookups
    def _adopt(self, requests: list[PurchaseRequest], results: dict[str, WriteResult]) -> list[PurchaseRequest]:
        """Record the requests that already have a line; return the others."""
        if not requests:
            return []
        found = self._keys.lookup(self.spec, [r.key for r in requests], light=True).found
        rest = []
        for r in requests:
            record = found.get(r.key)
            if record is None:
                rest.append(r)
            else:
                results[r.key] = WriteResult(r.key, ok=True, target_id=record.data.get("order_id"), created=False)
        return rest

    def _resolve(self, requests: list[PurchaseRequest], results: dict[str, WriteResult]) -> list[_Line]:
        """Products by SKU and their vendors; a request whose SKU is unknown fails."""
        if not requests:
            return []
        skus = sorted({r.sku for r in requests})
        rows = self._rpc.execute_kw("product.product", "search_read", [[("default_code", "in", skus)]],
                                    {"fields": ["id", "default_code", "product_tmpl_id"]}) or []
        by_sku: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_sku[str(row.get("default_code"))].append(row)
        sellers = self._sellers(rows)
        lines = []
        for r in requests:
            hits = by_sku.get(r.sku, [])
            if len(hits) != 1:
                message = (f"no product with SKU {r.sku!r} in Odoo" if not hits
                           else f"{len(hits)} products have SKU {r.sku!r} in Odoo; it must be unique")
                results[r.key] = WriteResult(r.key, ok=False, error=ValidationError(message, system=SYSTEM,
                                                                                    field="sku"))
                continue
            product = hits[0]
            vendor = sellers.get(int(product["id"])) or self._default_vendor()
            lines.append(_Line(r, int(product["id"]), vendor))
        return lines

    def _sellers(self, products: list[dict[str, Any]]) -> dict[int, int]:
        """Product id -> its first vendor (product.supplierinfo by sequence), when the model exists."""
        if not products or not self._schema.has_model("product.supplierinfo"):
            return {}
        tmpl_of = {int(p["id"]): many2one_id(p.get("product_tmpl_id")) for p in products}
        rows = self._rpc.execute_kw("product.supplierinfo", "search_read", [[
            ("product_tmpl_id", "in", sorted({t for t in tmpl_of.values() if t is not None}))]],
            {"fields": ["partner_id", "product_id", "product_tmpl_id", "sequence"],
             "order": "sequence asc, id asc"}) or []
        out: dict[int, int] = {}
        for pid, tmpl in tmpl_of.items():
            for row in rows:
                variant = many2one_id(row.get("product_id"))
                if many2one_id(row.get("product_tmpl_id")) == tmpl and variant in (None, pid):
                    vendor = many2one_id(row.get("partner_id"))
                    if vendor is not None:
                        out[pid] = vendor
                        break
        return out

    def _default_vendor(self) -> int:
        """``purchase_vendor_id``, else the "Concord default vendor" partner (made once)."""
        if self._vendor is not None:
            return self._vendor
        for _ in range(self._settings.max_attempts):
            vendor = self._find_default_vendor()
            if vendor is None:
                try:
                    vendor = int(self._rpc.execute_kw("res.partner", "create", [{
                        "name": DEFAULT_VENDOR_NAME, "is_company": True, "supplier_rank": 1}], idempotent=False))
                except RetryableError as exc:
                    if exc.maybe_applied:
                        continue  # it may exist now: look again
                    raise
                log.info("odoo.default_vendor_created", id=vendor)
                self._link_default_vendor(vendor)
            self._vendor = vendor
            return vendor
        raise RetryableError("odoo: could not create the default vendor (answers lost)", system=SYSTEM,
                             maybe_applied=True)

    def _find_default_vendor(self) -> int | None:
        rows = self._rpc.execute_kw("ir.model.data", "search_read", [[
            ("module", "=", MODULE), ("name", "=", DEFAULT_VENDOR_XMLID), ("model", "=", "res.partner")]],
            {"fields": ["res_id"]}) or []
        if rows and rows[0].get("res_id"):
            return int(rows[0]["res_id"])
        # Created but not linked yet (a crash in between): adopt it by name.
        ids = self._rpc.execute_kw("res.partner", "search", [[("name", "=", DEFAULT_VENDOR_NAME)]],
                                   {"limit": 1, "order": "id asc"}) or []
        if ids:
            self._link_default_vendor(int(ids[0]))
            return int(ids[0])
        return None

    def _link_default_vendor(self, vendor: int) -> None:
        try:
            self._rpc.execute_kw("ir.model.data", "create", [{
                "module": MODULE, "name": DEFAULT_VENDOR_XMLID, "model": "res.partner", "res_id": vendor,
                "noupdate": True}], idempotent=False)
        except AuthError:
            raise
        except ConnectorError as exc:  # the name lookup backs it up
            log.warning("odoo.xmlid_failed", model="res.partner", xmlid=DEFAULT_VENDOR_XMLID, detail=exc.message[:200])

    # ------------------------------------------------------------------ creates
    def _create(self, lines: list[_Line], results: dict[str, WriteResult]) -> None:
        groups: dict[tuple[int, str], list[_Line]] = defaultdict(list)
        for line in lines:
            groups[(line.vendor_id, line.request.origin)].append(line)
        pending = list(groups.values())
        for _ in range(self._settings.max_attempts):
            if not pending:
                return
            try:
                self._create_orders(pending, results)
                return
            except RetryableError as exc:
                if not exc.maybe_applied:
                    raise
                log.warning("odoo.purchase_create_unacknowledged", orders=len(pending), detail=exc.message[:200])
                # An order and its lines are one transaction: a group is there entirely or not at all.
                found = self._keys.lookup(self.spec, [ln.request.key for g in pending for ln in g], light=True).found
                for group in pending:
                    for ln in group:
                        if ln.request.key in found:
                            results[ln.request.key] = WriteResult(
                                ln.request.key, ok=True, target_id=found[ln.request.key].data.get("order_id"),
                                created=True)
                pending = [g for g in pending if g[0].request.key not in found]
        for group in pending:
            for ln in group:
                results[ln.request.key] = WriteResult(ln.request.key, ok=False, error=RetryableError(
                    "odoo: purchase order creation unacknowledged too many times", system=SYSTEM,
                    maybe_applied=True))

    def _create_orders(self, groups: list[list[_Line]], results: dict[str, WriteResult]) -> None:
        key_field = self._settings.purchase_key_field
        vals = [{"partner_id": g[0].vendor_id, "origin": g[0].request.origin,
                 "order_line": [[0, 0, {"product_id": ln.product_id, "product_qty": float(ln.request.quantity),
                                        key_field: ln.request.key}] for ln in g]} for g in groups]
        try:
            ids = self._rpc.execute_kw("purchase.order", "create", [vals], idempotent=False)
        except ValidationError as exc:
            if len(groups) == 1:
                for ln in groups[0]:
                    results[ln.request.key] = WriteResult(ln.request.key, ok=False, error=exc)
                return
            for g in groups:  # one refused order must not cost the others
                self._create_orders([g], results)
            return
        order_ids = ids if isinstance(ids, list) else [ids]
        if len(order_ids) != len(groups):
            raise ConnectorError(f"odoo: purchase.order create returned {str(ids)[:100]} for {len(groups)} orders",
                                 system=SYSTEM)
        created = self._rpc.execute_kw(PURCHASE_LINE, "search_read", [[("order_id", "in", order_ids)]],
                                       {"fields": ["id", "order_id", key_field]}) or []
        line_of = {str(row[key_field]): int(row["id"]) for row in created if row.get(key_field)}
        for g, oid in zip(groups, order_ids, strict=True):
            for ln in g:
                results[ln.request.key] = WriteResult(ln.request.key, ok=True, target_id=str(oid), created=True)
            log.info("odoo.purchase_order_created", id=oid, vendor=g[0].vendor_id, origin=g[0].request.origin,
                     lines=len(g))
        self._keys.ensure_xmlids(self.spec, line_of, {})
