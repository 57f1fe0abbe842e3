"""Business rules that run around an entity's writes: the order flow's credit check,
confirmation, stock check and purchase requests (DESIGN.md "Business rules").

The rules speak only the canonical model and the OrderOperations capability of the ERP connector.
"""
from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog

from connectors.base import ConnectorError, OrderOperations, OrderState, PurchaseRequest
from sync.merge import flatten

if TYPE_CHECKING:
    from sync.pipeline import EntityPipeline
    from sync.runtime import Endpoint

log = structlog.get_logger("concord.rules")


class NoRules:
    """Entities without business rules."""

    def before_direction(self, src: Endpoint, tgt: Endpoint) -> None:
        return None

    def after_batch(self, src: Endpoint, tgt: Endpoint, written: Sequence[tuple[str, str]]) -> None:
        return None


class OrderRules(NoRules):
    """After a CRM order is written to the ERP: credit check, confirm, stock check, purchase requests."""

    def __init__(self, pipeline: EntityPipeline) -> None:
        self.p = pipeline
        self.cfg = pipeline.cfg

    def _ops(self, ep: Endpoint) -> OrderOperations | None:
        return ep.connector if isinstance(ep.connector, OrderOperations) else None

    def before_direction(self, src: Endpoint, tgt: Endpoint) -> None:
        """Orders held for credit are re-checked every pass: a payment may have made room."""
        ops = self._ops(tgt)
        if src.role != "crm" or ops is None or self.p.dry_run or not getattr(self.cfg, "credit_check", False):
            return
        spec = self.p.spec_for(tgt)
        held = self.p._call(tgt, lambda: ops.held_orders(spec))
        if held:
            log.info("orders.recheck_held", count=len(held))
            self._evaluate(tgt, ops, held)

    def after_batch(self, src: Endpoint, tgt: Endpoint, written: Sequence[tuple[str, str]]) -> None:
        ops = self._ops(tgt)
        if src.role != "crm" or ops is None or self.p.dry_run or not written:
            return
        self._evaluate(tgt, ops, [target_id for _, target_id in written])

    # ------------------------------------------------------------------ the rules
    def _evaluate(self, erp: Endpoint, ops: OrderOperations, ids: Sequence[str]) -> None:
        spec = self.p.spec_for(erp)
        states = self.p._call(erp, lambda: ops.order_states(spec, list(ids)))
        # A confirmed order may still lack its purchase requests (a crash between the two steps):
        # requests are idempotent per line, so asking again is safe.
        for st in states.values():
            if st.state == "confirmed":
                self._request_purchases(ops, st)
        drafts = [st for st in states.values() if st.state == "draft"]
        if not drafts:
            return
        credit = self._credit(erp, [st.partner_id for st in drafts if st.partner_id]) \
            if getattr(self.cfg, "credit_check", False) else {}
        exposure: dict[str, Decimal] = {}  # orders confirmed in this batch count against the limit too
        for st in drafts:
            try:
                self._one(erp, ops, spec, st, credit, exposure)
            except ConnectorError as exc:
                if exc.retryable or type(exc).__name__ == "AuthError":
                    raise
                log.warning("order.rule_failed", order=st.number or st.id, error=type(exc).__name__,
                            message=exc.message[:300])

    def _one(self, erp: Endpoint, ops: OrderOperations, spec: Any, st: OrderState,
             credit: dict[str, tuple[Decimal | None, Decimal]], exposure: dict[str, Decimal]) -> None:
        partner = st.partner_id or ""
        limit, balance = credit.get(partner, (None, Decimal(0)))
        total = st.amount_total or Decimal(0)
        if limit and balance + exposure.get(partner, Decimal(0)) + total > limit:
            if not st.held:
                reason = (f"credit limit {limit}: balance due {balance} + order {total} exceeds it")
                ops.hold_order(spec, st.id, reason)
                log.info("order.credit_hold", order=st.number or st.id, limit=str(limit), balance=str(balance),
                         total=str(total))
            return
        if st.held:
            ops.hold_order(spec, st.id, None)
            log.info("order.credit_released", order=st.number or st.id)
        if not getattr(self.cfg, "confirm", False):
            return
        ops.confirm_order(spec, st.id)
        exposure[partner] = exposure.get(partner, Decimal(0)) + total
        log.info("order.confirmed", order=st.number or st.id)
        after = ops.order_states(spec, [st.id]).get(st.id)
        if after is not None:
            self._request_purchases(ops, after)

    def _request_purchases(self, ops: OrderOperations, after: OrderState) -> None:
        """Draft purchases for the shortfall of each line (``on_shortage: purchase_request``)."""
        if getattr(self.cfg, "on_shortage", "none") != "purchase_request":
            return
        st = after
        requests = [PurchaseRequest(key=f"{st.id}:{line.line_ref or line.sku}", sku=line.sku,
                                    quantity=line.shortfall, origin=after.number or st.id)
                    for line in after.lines if line.sku and line.shortfall > 0]
        if requests:
            results = ops.request_purchases(requests)
            failed = [r for r in results if not r.ok]
            log.info("order.purchase_requests", order=after.number or st.id, requested=len(requests),
                     failed=len(failed))
            for r in failed:
                log.warning("order.purchase_request_failed", order=after.number, key=r.ref,
                            message=r.error.message if r.error else "")

    def _credit(self, erp: Endpoint, partner_ids: Sequence[str]) -> dict[str, tuple[Decimal | None, Decimal]]:
        """Credit limit and balance due per ERP customer, read through the customer mapping."""
        em = erp.entity("customer")
        if em is None or not partner_ids:
            return {}
        spec = erp.spec("customer")
        found = self.p._call(erp, lambda: erp.connector.read(spec, sorted(set(partner_ids))))
        out: dict[str, tuple[Decimal | None, Decimal]] = {}
        for pid, rec in found.items():
            c = flatten(em.to_canonical(rec.data))
            limit = c.get("credit_limit")
            out[pid] = (Decimal(limit) if limit else None, Decimal(c.get("balance_due") or 0))
        return out


def rules_for(entity: str, pipeline: EntityPipeline) -> NoRules:
    """The business rules of an entity (orders have some; the others none)."""
    return OrderRules(pipeline) if entity == "order" else NoRules()
