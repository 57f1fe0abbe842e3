"""Invoicing (Odoo 18 ``account``): taxes, journals, invoices, payments and what customers owe.

Simplifications, on purpose: an invoice's ``line_ids`` are its product lines (no tax, receivable
or payment-term journal items are generated), reconciliation is kept as simulator bookkeeping
between an invoice and a payment or credit note, and there is no currency conversion.

What a client sees follows Odoo 18 Community: an invoice is numbered ``INV/2026/00001`` when
posted (``RINV/...`` for a credit note), ``amount_residual``/``payment_state`` are stored fields
recomputed when a payment is reconciled (so the invoice's ``write_date`` moves), and a fully paid
invoice is ``paid`` at once (Community has no "in payment" step; ``Registry.company.in_payment``
switches to the Enterprise behaviour). The sales order is *not* touched by a payment (its stored
fields do not depend on it). A partner's ``credit`` is computed, not stored: the sum of the
residuals of its posted customer invoices minus credit notes and unreconciled customer payments,
plus an opening balance a direct helper may set; it never moves the partner's ``write_date``.
"""
from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any, ClassVar, Protocol, cast

from .commands import as_ids
from .errors import UserError
from .fields import Field
from .money import Tax, line_amounts, money_round, sum_money
from .orm import BaseModel, Env, Registry, api_records

MOVE_TYPES = (("entry", "Journal Entry"), ("out_invoice", "Customer Invoice"), ("out_refund", "Customer Credit Note"),
              ("in_invoice", "Vendor Bill"), ("in_refund", "Vendor Credit Note"), ("out_receipt", "Sales Receipt"),
              ("in_receipt", "Purchase Receipt"))
PAYMENT_STATES = (("not_paid", "Not Paid"), ("in_payment", "In Payment"), ("paid", "Paid"), ("partial", "Partially Paid"),
                  ("reversed", "Reversed"), ("blocked", "Blocked"), ("invoicing_legacy", "Invoicing App Legacy"))
CUSTOMER_TYPES = frozenset({"out_invoice", "out_refund", "out_receipt"})
INVOICE_TYPES = frozenset({"out_invoice", "out_refund", "in_invoice", "in_refund", "out_receipt", "in_receipt"})
_DRAFT_LABELS = {"out_invoice": "Invoice", "out_refund": "Credit Note", "in_invoice": "Bill",
                 "in_refund": "Refund", "out_receipt": "Sales Receipt", "in_receipt": "Purchase Receipt",
                 "entry": "Entry"}


class SalesRecompute(Protocol):
    """What sale.order offers invoicing: recompute orders whose invoiced quantities changed."""

    def recompute(self, env: Env, order_ids: Iterable[int]) -> None:
        """Recompute the orders' stored computed fields."""


def commercial_partner(registry: Registry, partner_id: int | None) -> int | None:
    """The partner's commercial entity: itself if a company or without parent, else its parent's."""
    partners = registry.models["res.partner"].records
    seen: set[int] = set()
    pid = partner_id
    while pid is not None and pid not in seen:
        seen.add(pid)
        rec = partners.get(pid)
        if rec is None:
            return partner_id
        if rec.get("is_company") or not rec.get("parent_id"):
            return pid
        pid = rec["parent_id"]
    return partner_id


def taxes_of(registry: Registry, tax_ids: Iterable[int] | None) -> list[Tax]:
    """The percent taxes behind a list of account.tax ids."""
    taxes = registry.models["account.tax"].records
    out = []
    for tid in tax_ids or ():
        rec = taxes.get(tid)
        if rec is not None:
            out.append(Tax(rec.get("amount") or 0.0, bool(rec.get("price_include"))))
    return out


# ====================================================================================== taxes, journals
class AccountTax(BaseModel):
    """``account.tax``: percent taxes (the generic chart's "15%" sales and purchase taxes)."""

    _name = "account.tax"
    _description = "Tax"
    _order = "sequence, id"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Tax Name", required=True),
        "description": Field("char", "Description"),
        "amount_type": Field("selection", "Tax Computation", required=True, default="percent", selection=(
            ("group", "Group of Taxes"), ("fixed", "Fixed"), ("percent", "Percentage"), ("division", "Percentage Tax Included"))),
        "amount": Field("float", "Amount", required=True, default=0.0),
        "type_tax_use": Field("selection", "Tax Type", required=True, default="sale", selection=(
            ("sale", "Sales"), ("purchase", "Purchases"), ("none", "None"))),
        "price_include": Field("boolean", "Included in Price", default=False),
        "sequence": Field("integer", "Sequence", default=1),
        "active": Field("boolean", "Active", default=True),
    }

    def _post_create(self, env: Env, ids: list[int]) -> None:
        for rid in ids:
            if self.records[rid].get("amount_type") != "percent":
                raise UserError("The Odoo simulator only computes percentage taxes")


class AccountJournal(BaseModel):
    """``account.journal``: Customer Invoices (INV), Vendor Bills (BILL), Bank (BNK1), ..."""

    _name = "account.journal"
    _description = "Journal"
    _order = "sequence, type, code"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Journal Name", required=True),
        "code": Field("char", "Short Code", required=True),
        "type": Field("selection", "Type", required=True, selection=(
            ("sale", "Sales"), ("purchase", "Purchase"), ("cash", "Cash"), ("bank", "Bank"),
            ("credit", "Credit Card"), ("general", "Miscellaneous"))),
        "sequence": Field("integer", "Sequence", default=10),
        "currency_id": Field("many2one", "Currency", relation="res.currency"),
        "refund_sequence": Field("boolean", "Dedicated Credit Note Sequence", default=False),
        "active": Field("boolean", "Active", default=True),
    }


class SimReconcile(BaseModel):
    """Simulator bookkeeping: an amount of an invoice settled by a payment, credit note or write-off."""

    _name = "sim.reconcile"
    _description = "Reconciliation (simulator)"
    _internal = True
    _rec_name = None
    _fields: ClassVar[dict[str, Field]] = {
        "invoice_id": Field("many2one", "Invoice", relation="account.move", required=True, index=True,
                            ondelete="cascade"),
        "payment_id": Field("many2one", "Payment", relation="account.payment", index=True, ondelete="cascade"),
        "refund_id": Field("many2one", "Credit Note", relation="account.move", index=True, ondelete="cascade"),
        "amount": Field("float", "Amount", required=True),
    }


def _reconciles(registry: Registry, field: str, rid: int) -> list[dict[str, Any]]:
    model = registry.models["sim.reconcile"]
    return [model.records[i] for i in sorted(model._hash[field].get(rid, ()))]


# ====================================================================================== invoices
def _move_display_name(model: BaseModel, rec: dict[str, Any]) -> str:
    name = rec.get("name")
    if rec.get("state") == "draft" and (not name or name == "/"):
        return f"Draft {_DRAFT_LABELS.get(rec.get('move_type') or 'entry', 'Entry')} (* {rec['id']})"
    return name or "/"


def _move_matched_payments(model: BaseModel, rec: dict[str, Any]) -> list[int]:
    return sorted({r["payment_id"] for r in _reconciles(model.registry, "invoice_id", rec["id"]) if r.get("payment_id")})


class AccountMove(BaseModel):
    """``account.move``: customer invoices and credit notes (and vendor bills, unposted work only)."""

    _name = "account.move"
    _description = "Journal Entry"
    _order = "date desc, name desc, id desc"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Number", default="/", index=True),
        "ref": Field("char", "Reference"),
        "move_type": Field("selection", "Type", required=True, default="entry", selection=MOVE_TYPES, index=True),
        "state": Field("selection", "Status", required=True, default="draft", readonly=True, selection=(
            ("draft", "Draft"), ("posted", "Posted"), ("cancel", "Cancelled"))),
        "date": Field("date", "Date", required=True),
        "invoice_date": Field("date", "Invoice/Bill Date"),
        "invoice_date_due": Field("date", "Due Date"),
        "partner_id": Field("many2one", "Partner", relation="res.partner", index=True, ondelete="restrict"),
        "commercial_partner_id": Field("many2one", "Commercial Entity", relation="res.partner", computed=True,
                                       index=True),
        "journal_id": Field("many2one", "Journal", relation="account.journal", required=True),
        "currency_id": Field("many2one", "Currency", relation="res.currency", required=True),
        "invoice_origin": Field("char", "Origin", readonly=True,
                                help="The document(s) that generated the invoice."),
        "payment_reference": Field("char", "Payment Reference"),
        "invoice_line_ids": Field("one2many", "Invoice lines", relation="account.move.line", inverse_name="move_id"),
        "line_ids": Field("one2many", "Journal Items", relation="account.move.line", inverse_name="move_id"),
        "amount_untaxed": Field("monetary", "Untaxed Amount", computed=True),
        "amount_tax": Field("monetary", "Tax", computed=True),
        "amount_total": Field("monetary", "Total", computed=True),
        "amount_residual": Field("monetary", "Amount Due", computed=True),
        "amount_untaxed_signed": Field("monetary", "Untaxed Amount Signed", computed=True),
        "amount_total_signed": Field("monetary", "Total Signed", computed=True),
        "amount_residual_signed": Field("monetary", "Amount Due Signed", computed=True),
        "payment_state": Field("selection", "Payment Status", default="not_paid", selection=PAYMENT_STATES,
                               computed=True),
        "reversed_entry_id": Field("many2one", "Reversal of", relation="account.move", index=True),
        "sequence_prefix": Field("char", "Sequence Prefix", computed=True),
        "sequence_number": Field("integer", "Sequence Number", computed=True),
        "matched_payment_ids": Field("many2many", "Matched Payments", relation="account.payment",
                                     compute=_move_matched_payments),
        "invoice_user_id": Field("many2one", "Salesperson", relation="res.users"),
    }

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        self._last_number: dict[str, int] = {}  # sequence prefix -> last number used (gapless)

    def display_name(self, rec: dict[str, Any]) -> str:
        """``INV/2026/00001``, or ``Draft Invoice (* 5)`` before posting."""
        return _move_display_name(self, rec)

    def _complete_vals(self, env: Env, vals: dict[str, Any]) -> dict[str, Any]:
        company = self.registry.company
        vals = dict(vals)
        move_type = vals.get("move_type") or "entry"
        if "journal_id" not in vals:
            vals["journal_id"] = company.sale_journal_id if move_type.startswith("out_") else (
                company.purchase_journal_id if move_type.startswith("in_") else company.misc_journal_id)
        vals.setdefault("currency_id", company.currency_id)
        vals.setdefault("date", vals.get("invoice_date") or env.now[:10])
        return vals

    def _post_create(self, env: Env, ids: list[int]) -> None:
        for rid in ids:
            self._set(env, rid, {"commercial_partner_id": commercial_partner(
                self.registry, self.records[rid].get("partner_id"))})
        recompute_moves(env, ids)

    def write_records(self, env: Env, ids: list[int], vals: Any) -> None:
        """Posted entries only accept harmless fields (references, due date)."""
        if isinstance(vals, dict):
            locked = set(vals) - {"ref", "payment_reference", "invoice_date_due", "narration", "invoice_user_id"}
            for rid in ids:
                if rid in self.records and self.records[rid].get("state") == "posted" and locked:
                    raise UserError(f"You cannot modify a posted entry ({self.display_name_of(rid)}): "
                                    f"reset it to draft first.")
        super().write_records(env, ids, vals)
        if isinstance(vals, dict) and "partner_id" in vals:
            for rid in ids:
                self._set(env, rid, {"commercial_partner_id": commercial_partner(
                    self.registry, self.records[rid].get("partner_id"))})
        recompute_moves(env, ids)

    def _pre_unlink(self, env: Env, ids: list[int]) -> None:
        for rid in ids:
            if self.records[rid].get("state") == "posted":
                raise UserError("You cannot delete an entry which has been posted once.")

    @api_records
    def action_post(self, env: Env, ids: Any) -> bool:
        """Post: number the entry (``INV/2026/00001``), date it, open it for payment; returns true."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        post_moves(env, ids)
        return True

    @api_records
    def button_draft(self, env: Env, ids: Any) -> bool:
        """Reset posted or cancelled entries to draft (reconciliations are undone)."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        reconcile = self.registry.models["sim.reconcile"]
        for rid in ids:
            for field in ("invoice_id", "refund_id"):
                reconcile.unlink_records(env, sorted(reconcile._hash[field].get(rid, ())))
            self._set(env, rid, {"state": "draft"})
        recompute_moves(env, ids + _counterparts(env, ids))
        return True

    @api_records
    def button_cancel(self, env: Env, ids: Any) -> bool:
        """Cancel draft entries (a posted one must be reset to draft first)."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        for rid in ids:
            if self.records[rid].get("state") == "posted":
                raise UserError("You can only cancel draft entries; reset this one to draft first.")
            self._set(env, rid, {"state": "cancel"})
        recompute_moves(env, ids)
        return True


def _counterparts(env: Env, ids: list[int]) -> list[int]:
    moves = env.registry.models["account.move"]
    return [i for i in moves.records if moves.records[i].get("reversed_entry_id") in set(ids)]


class AccountMoveLine(BaseModel):
    """``account.move.line``: an invoice line (product, quantity, price, taxes; links to sale lines)."""

    _name = "account.move.line"
    _description = "Journal Item"
    _order = "move_id, sequence, id"
    _fields: ClassVar[dict[str, Field]] = {
        "move_id": Field("many2one", "Journal Entry", relation="account.move", required=True, index=True,
                         ondelete="cascade"),
        "move_name": Field("char", "Number", compute=lambda model, rec: model.registry.models["account.move"]
                           .display_name_of(rec.get("move_id") or 0)),
        "parent_state": Field("selection", "Status", selection=(("draft", "Draft"), ("posted", "Posted"),
                                                                ("cancel", "Cancelled")),
                              compute=lambda model, rec: model.registry.models["account.move"].records.get(
                                  rec.get("move_id") or 0, {}).get("state")),
        "partner_id": Field("many2one", "Partner", relation="res.partner",
                            compute=lambda model, rec: model.registry.models["account.move"].records.get(
                                rec.get("move_id") or 0, {}).get("commercial_partner_id")),
        "currency_id": Field("many2one", "Currency", relation="res.currency",
                             compute=lambda model, rec: model.registry.models["account.move"].records.get(
                                 rec.get("move_id") or 0, {}).get("currency_id")),
        "sequence": Field("integer", "Sequence", default=10),
        "display_type": Field("selection", "Display Type", default="product", selection=(
            ("product", "Product"), ("line_section", "Section"), ("line_note", "Note"))),
        "product_id": Field("many2one", "Product", relation="product.product", index=True, ondelete="restrict"),
        "name": Field("char", "Label"),
        "quantity": Field("float", "Quantity", default=1.0),
        "product_uom_id": Field("many2one", "Unit", relation="uom.uom"),
        "price_unit": Field("float", "Unit Price"),
        "discount": Field("float", "Discount (%)", default=0.0),
        "tax_ids": Field("many2many", "Taxes", relation="account.tax"),
        "price_subtotal": Field("monetary", "Subtotal", computed=True),
        "price_total": Field("monetary", "Total", computed=True),
        "balance": Field("monetary", "Balance", compute=lambda model, rec: -(rec.get("price_subtotal") or 0.0)),
        "sale_line_ids": Field("many2many", "Sales Order Lines", relation="sale.order.line"),
        "purchase_line_id": Field("many2one", "Purchase Order Line", relation="purchase.order.line", index=True),
    }

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        self.ensure_index("sale_line_ids")

    def display_name(self, rec: dict[str, Any]) -> str:
        """The entry number and the label."""
        move = self.registry.models["account.move"].display_name_of(rec.get("move_id") or 0)
        return f"{move} {rec.get('name') or ''}".strip()

    def _complete_vals(self, env: Env, vals: dict[str, Any]) -> dict[str, Any]:
        vals = dict(vals)
        move = self.registry.models["account.move"].records.get(vals.get("move_id") or 0) \
            if type(vals.get("move_id")) is int else None
        product = vals.get("product_id")
        if type(product) is not int or product not in self.registry.models["product.product"].records:
            return vals
        products = self.registry.models["product.product"]
        prec = products.records[product]
        purchase = bool(move) and str(move.get("move_type") or "").startswith("in_")  # type: ignore[union-attr]
        vals.setdefault("name", products.display_name(prec))
        vals.setdefault("product_uom_id", products.raw_getter("uom_id")(prec))
        if "price_unit" not in vals:
            vals["price_unit"] = products.raw_getter("standard_price" if purchase else "list_price")(prec) or 0.0
        if "tax_ids" not in vals:
            vals["tax_ids"] = [[6, 0, list(products.raw_getter("supplier_taxes_id" if purchase else "taxes_id")(prec)
                                          or ())]]
        return vals

    def _check_draft(self, ids: Iterable[int]) -> None:
        moves = self.registry.models["account.move"]
        for rid in ids:
            move = moves.records.get(self.records[rid].get("move_id") or 0, {})
            if move.get("state") == "posted":
                raise UserError(f"You cannot modify a posted entry ({moves.display_name(move)}): "
                                "reset it to draft first.")

    def _post_create(self, env: Env, ids: list[int]) -> None:
        self._check_draft(ids)
        recompute_moves(env, sorted({self.records[i]["move_id"] for i in ids}))

    def write_records(self, env: Env, ids: list[int], vals: Any) -> None:
        """Lines of posted entries are read-only."""
        self._check_exist(env, ids)
        self._check_draft(ids)
        super().write_records(env, ids, vals)
        recompute_moves(env, sorted({self.records[i]["move_id"] for i in ids}))

    def _pre_unlink(self, env: Env, ids: list[int]) -> None:
        self._check_draft(ids)

    def _after_unlink(self, env: Env, removed: list[dict[str, Any]]) -> None:
        moves = self.registry.models["account.move"]
        recompute_moves(env, sorted({r["move_id"] for r in removed if r.get("move_id") in moves.records}))
        _notify_sales(env, [s for r in removed for s in r.get("sale_line_ids") or ()])


def recompute_moves(env: Env, move_ids: Iterable[int]) -> None:
    """Recompute line amounts, totals, residuals and payment states, then the sales they invoice."""
    registry = env.registry
    moves = registry.models["account.move"]
    lines = registry.models["account.move.line"]
    sale_lines: list[int] = []
    for mid in dict.fromkeys(move_ids):
        move = moves.records.get(mid)
        if move is None:
            continue
        untaxed = tax = 0.0
        for lid in sorted(lines._hash["move_id"].get(mid, ())):
            line = lines.records[lid]
            if line.get("display_type", "product") != "product":
                continue
            amounts = line_amounts(line.get("price_unit") or 0.0, line.get("quantity") or 0.0,
                                   line.get("discount") or 0.0, taxes_of(registry, line.get("tax_ids")))
            lines._set(env, lid, {"price_subtotal": amounts.subtotal, "price_total": amounts.total})
            untaxed += amounts.subtotal
            tax += amounts.tax
            sale_lines += line.get("sale_line_ids") or ()
        untaxed, tax = money_round(untaxed), money_round(tax)
        total = money_round(untaxed + tax)
        move_type = move.get("move_type") or "entry"
        if move.get("state") == "posted":
            settled = sum_money(r["amount"] for r in _reconciles(registry, "invoice_id", mid))
            settled += sum_money(r["amount"] for r in _reconciles(registry, "refund_id", mid))
            residual = money_round(max(total - settled, 0.0))
        elif move.get("state") == "cancel":
            residual = 0.0
        else:
            residual = total
        sign = -1.0 if move_type in ("out_refund", "in_invoice", "in_receipt") else 1.0
        moves._set(env, mid, {
            "amount_untaxed": untaxed, "amount_tax": tax, "amount_total": total, "amount_residual": residual,
            "amount_untaxed_signed": sign * untaxed, "amount_total_signed": sign * total,
            "amount_residual_signed": sign * residual, "payment_state": _payment_state(env, move, total, residual)})
    _notify_sales(env, sale_lines)


def _payment_state(env: Env, move: dict[str, Any], total: float, residual: float) -> str:
    if move.get("state") != "posted" or move.get("move_type") not in INVOICE_TYPES:
        return "not_paid"
    if residual <= 0.0:
        if _reversed(env.registry, move):
            return "reversed"
        return "in_payment" if env.registry.company.in_payment else "paid"
    if residual < total:
        return "partial"
    return "not_paid"


def _reversed(registry: Registry, move: dict[str, Any]) -> bool:
    """Whether a settled entry was settled only against its reversal (or, for a credit note, its origin)."""
    moves = registry.models["account.move"].records
    mid = move["id"]
    own = _reconciles(registry, "invoice_id", mid)
    if own:
        return all(r.get("refund_id") and moves.get(r["refund_id"], {}).get("reversed_entry_id") == mid for r in own)
    as_refund = _reconciles(registry, "refund_id", mid)
    return bool(as_refund) and all(r["invoice_id"] == move.get("reversed_entry_id") for r in as_refund)


def _notify_sales(env: Env, sale_line_ids: Iterable[int]) -> None:
    sale_lines = env.registry.models["sale.order.line"].records
    orders = sorted({sale_lines[s]["order_id"] for s in sale_line_ids if s in sale_lines})
    if orders:
        cast(SalesRecompute, env.registry.models["sale.order"]).recompute(env, orders)


def post_moves(env: Env, ids: list[int]) -> None:
    """``_post``: checks, dates, number, posted state."""
    registry = env.registry
    moves = cast(AccountMove, registry.models["account.move"])
    journals = registry.models["account.journal"].records
    lines = registry.models["account.move.line"]
    for mid in ids:
        move = moves.records[mid]
        label = moves.display_name(move)
        if move.get("state") == "posted":
            raise UserError(f"The entry {label} (id {mid}) is already posted.")
        if move.get("state") == "cancel":
            raise UserError(f"The entry {label} (id {mid}) is cancelled: reset it to draft before posting.")
        move_type = move.get("move_type") or "entry"
        if move_type in INVOICE_TYPES:
            if not move.get("partner_id"):
                who = "Customer" if move_type.startswith("out_") else "Vendor"
                kind = dict(MOVE_TYPES)[move_type]
                raise UserError(f"The field '{who}' is required, please complete it to validate the {kind}.")
            if not lines._hash["move_id"].get(mid):
                raise UserError("You need to add a line before posting.")
        invoice_date = move.get("invoice_date") or env.now[:10]
        values: dict[str, Any] = {"state": "posted", "invoice_date": invoice_date if move_type in INVOICE_TYPES else
                                  move.get("invoice_date"),
                                  "date": invoice_date if move_type in INVOICE_TYPES else move.get("date")}
        if move_type in INVOICE_TYPES:
            values["invoice_date_due"] = move.get("invoice_date_due") or invoice_date
        if not move.get("name") or move.get("name") == "/":
            journal = journals.get(move.get("journal_id") or 0, {})
            refund = move_type in ("out_refund", "in_refund")
            prefix = f"{'R' if refund else ''}{journal.get('code') or 'MISC'}/{values['date'][:4]}/"
            number = moves._last_number.get(prefix, 0) + 1
            previous = moves._last_number.get(prefix)
            moves._last_number[prefix] = number
            env.undo.append(partial(_restore_counter, moves._last_number, prefix, previous))
            values.update(name=f"{prefix}{number:05d}", sequence_prefix=prefix, sequence_number=number)
        moves._set(env, mid, values)
    recompute_moves(env, ids)


def _restore_counter(counters: dict[str, int], prefix: str, value: int | None) -> None:
    if value is None:
        counters.pop(prefix, None)
    else:
        counters[prefix] = value


def reconcile(env: Env, invoice_id: int, amount: float, *, payment_id: int | None = None,
              refund_id: int | None = None) -> float:
    """Settle up to ``amount`` of a posted invoice's residual; returns what was applied."""
    moves = env.registry.models["account.move"]
    inv = moves.records[invoice_id]
    applied = money_round(min(amount, inv.get("amount_residual") or 0.0))
    if applied <= 0.0:
        return 0.0
    env.registry.models["sim.reconcile"].create_records(env, [{
        "invoice_id": invoice_id, "payment_id": payment_id, "refund_id": refund_id, "amount": applied}])
    recompute_moves(env, [invoice_id] + ([refund_id] if refund_id else []))
    return applied


# ====================================================================================== payments
def _payment_reconciled(model: BaseModel, rec: dict[str, Any]) -> list[int]:
    return sorted({r["invoice_id"] for r in _reconciles(model.registry, "payment_id", rec["id"])})


def payment_unreconciled(registry: Registry, rec: dict[str, Any]) -> float:
    """The part of a posted payment not settled against invoices."""
    applied = sum_money(r["amount"] for r in _reconciles(registry, "payment_id", rec["id"]) if r.get("invoice_id"))
    return money_round((rec.get("amount") or 0.0) - applied)


PAYMENT_STATE_VALUES = (("draft", "Draft"), ("in_process", "In Process"), ("paid", "Paid"),
                        ("canceled", "Canceled"), ("rejected", "Rejected"))


class AccountPayment(BaseModel):
    """``account.payment`` (Odoo 18 fields: ``memo``, ``state`` draft/in_process/paid/canceled).

    ``action_post`` reconciles the payment with its ``invoice_ids`` (oldest first); a payment
    fully matched to invoices is ``paid``, otherwise ``in_process`` (money not yet matched).
    """

    _name = "account.payment"
    _description = "Payments"
    _order = "date desc, name desc, id desc"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Number", default=False, readonly=True, index=True),
        "date": Field("date", "Date", required=True),
        "amount": Field("monetary", "Amount", default=0.0),
        "payment_type": Field("selection", "Payment Type", required=True, default="inbound", selection=(
            ("outbound", "Send"), ("inbound", "Receive"))),
        "partner_type": Field("selection", "Partner Type", required=True, default="customer", selection=(
            ("customer", "Customer"), ("supplier", "Vendor"))),
        "partner_id": Field("many2one", "Customer/Vendor", relation="res.partner", index=True, ondelete="restrict"),
        "journal_id": Field("many2one", "Journal", relation="account.journal", required=True),
        "currency_id": Field("many2one", "Currency", relation="res.currency", required=True),
        "memo": Field("char", "Memo"),
        "payment_reference": Field("char", "Payment Reference"),
        "state": Field("selection", "Status", required=True, default="draft", readonly=True,
                       selection=PAYMENT_STATE_VALUES),
        "invoice_ids": Field("many2many", "Invoices", relation="account.move"),
        "reconciled_invoice_ids": Field("many2many", "Reconciled Invoices", relation="account.move",
                                        compute=_payment_reconciled),
        "reconciled_invoices_count": Field("integer", "# Reconciled Invoices",
                                           compute=lambda model, rec: len(_payment_reconciled(model, rec))),
        "is_reconciled": Field("boolean", "Is Reconciled", compute=lambda model, rec: rec.get("state") in (
            "in_process", "paid") and payment_unreconciled(model.registry, rec) <= 0.0),
        "is_matched": Field("boolean", "Is Matched With a Bank Statement", default=False),
        "move_id": Field("many2one", "Journal Entry", relation="account.move", readonly=True),
    }

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        self._last_number: dict[str, int] = {}

    def display_name(self, rec: dict[str, Any]) -> str:
        """``PBNK1/2026/00001``, or ``Draft Payment`` before posting."""
        return rec.get("name") or "Draft Payment"

    def _complete_vals(self, env: Env, vals: dict[str, Any]) -> dict[str, Any]:
        company = self.registry.company
        vals = dict(vals)
        vals.setdefault("journal_id", company.bank_journal_id)
        vals.setdefault("currency_id", company.currency_id)
        vals.setdefault("date", env.now[:10])
        return vals

    def _post_create(self, env: Env, ids: list[int]) -> None:
        for rid in ids:
            if (self.records[rid].get("amount") or 0.0) < 0:
                raise UserError("The payment amount cannot be negative.")

    @api_records
    def action_post(self, env: Env, ids: Any) -> bool:
        """Post draft payments, reconciling them with their invoices; returns true."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        for rid in ids:
            if self.records[rid].get("state") != "draft":
                raise UserError("Only a draft payment can be posted.")
            post_payment(env, rid, list(self.records[rid].get("invoice_ids") or ()))
        return True

    @api_records
    def action_draft(self, env: Env, ids: Any) -> bool:
        """Back to draft, undoing its reconciliations."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        for rid in ids:
            _unreconcile_payment(env, rid)
            self._set(env, rid, {"state": "draft"})
        return True

    @api_records
    def action_cancel(self, env: Env, ids: Any) -> bool:
        """Cancel, undoing its reconciliations."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        for rid in ids:
            _unreconcile_payment(env, rid)
            self._set(env, rid, {"state": "canceled"})
        return True


def _unreconcile_payment(env: Env, payment_id: int) -> None:
    reconciles = env.registry.models["sim.reconcile"]
    linked = sorted(reconciles._hash["payment_id"].get(payment_id, ()))
    invoices = sorted({reconciles.records[r]["invoice_id"] for r in linked})
    reconciles.unlink_records(env, linked)
    recompute_moves(env, invoices)


def post_payment(env: Env, payment_id: int, invoice_ids: list[int], writeoff: bool = False) -> None:
    """Name and post a payment, then settle its invoices oldest first (write off the rest if asked)."""
    registry = env.registry
    payments = cast(AccountPayment, registry.models["account.payment"])
    moves = registry.models["account.move"]
    pay = payments.records[payment_id]
    journal = registry.models["account.journal"].records.get(pay.get("journal_id") or 0, {})
    prefix = f"P{journal.get('code') or 'BNK1'}/{(pay.get('date') or env.now)[:4]}/"
    previous = payments._last_number.get(prefix)
    number = (previous or 0) + 1
    payments._last_number[prefix] = number
    env.undo.append(partial(_restore_counter, payments._last_number, prefix, previous))
    remaining = pay.get("amount") or 0.0
    targets = sorted((i for i in invoice_ids if moves.records.get(i, {}).get("state") == "posted"),
                     key=lambda i: (moves.records[i].get("invoice_date_due") or "", i))
    for inv in targets:
        if remaining <= 0.0:
            break
        remaining = money_round(remaining - reconcile(env, inv, remaining, payment_id=payment_id))
    if writeoff:
        for inv in targets:
            left = moves.records[inv].get("amount_residual") or 0.0
            if left > 0:
                # "Mark as fully paid": the difference goes to a write-off, not to the payment.
                registry.models["sim.reconcile"].create_records(env, [{"invoice_id": inv, "amount": left}])
                recompute_moves(env, [inv])
    state = "paid" if remaining <= 0.0 and targets else "in_process"
    payments._set(env, payment_id, {"state": state, "name": f"{prefix}{number:05d}",
                                    "invoice_ids": sorted(set(pay.get("invoice_ids") or ()) | set(targets))})


def partner_credit(model: BaseModel, rec: dict[str, Any]) -> float:
    """``res.partner.credit``: what the commercial partner owes (see the module docstring)."""
    registry = model.registry
    total = rec.get("credit") or 0.0  # opening balance set by a direct helper
    moves = registry.models.get("account.move")
    if moves is None:
        return float(total)
    for mid in moves._hash["commercial_partner_id"].get(rec["id"], ()):
        move = moves.records[mid]
        if move.get("state") != "posted":
            continue
        if move.get("move_type") in ("out_invoice", "out_receipt"):
            total += move.get("amount_residual") or 0.0
        elif move.get("move_type") == "out_refund":
            total -= move.get("amount_residual") or 0.0
    payments = registry.models["account.payment"]
    partners = registry.models["res.partner"]
    members = {rec["id"], *partners._hash["parent_id"].get(rec["id"], ())}
    for pid in members:
        for pay_id in payments._hash["partner_id"].get(pid, ()):
            pay = payments.records[pay_id]
            if pay.get("partner_type") != "customer" or pay.get("state") not in ("in_process", "paid"):
                continue
            if commercial_partner(registry, pid) != rec["id"]:
                continue
            open_amount = payment_unreconciled(registry, pay)
            total += -open_amount if pay.get("payment_type") == "inbound" else open_amount
    return money_round(total)


# ====================================================================================== wizard
class AccountPaymentRegister(BaseModel):
    """``account.payment.register``: the "Register Payment" wizard real integrations call.

    Create it with context ``{"active_model": "account.move", "active_ids": [invoice ids]}`` (and
    optionally ``amount``, ``payment_date``, ``journal_id``, ``communication``,
    ``payment_difference_handling``), then call ``action_create_payments``.
    """

    _name = "account.payment.register"
    _description = "Pay"
    _rec_name = None
    _fields: ClassVar[dict[str, Field]] = {
        "line_ids": Field("many2many", "Journal items", relation="account.move.line"),
        "payment_date": Field("date", "Payment Date", required=True),
        "amount": Field("monetary", "Amount"),
        "communication": Field("char", "Memo"),
        "group_payment": Field("boolean", "Group Payments", default=False),
        "journal_id": Field("many2one", "Journal", relation="account.journal"),
        "currency_id": Field("many2one", "Currency", relation="res.currency"),
        "partner_id": Field("many2one", "Customer/Vendor", relation="res.partner"),
        "payment_type": Field("selection", "Payment Type", selection=(("outbound", "Send"), ("inbound", "Receive"))),
        "partner_type": Field("selection", "Partner Type", selection=(("customer", "Customer"), ("supplier", "Vendor"))),
        "payment_difference_handling": Field("selection", "Payment Difference Handling", default="open", selection=(
            ("open", "Keep open"), ("reconcile", "Mark as fully paid"))),
        "writeoff_label": Field("char", "Journal Item Label", default="Write-Off"),
        "source_amount": Field("monetary", "Amount to Pay (company currency)", readonly=True),
    }

    def _complete_vals(self, env: Env, vals: dict[str, Any]) -> dict[str, Any]:
        registry = self.registry
        moves = registry.models["account.move"]
        lines = registry.models["account.move.line"]
        vals = dict(vals)
        active_ids = env.context.get("active_ids") or []
        active_model = env.context.get("active_model")
        if "line_ids" not in vals:
            if active_model == "account.move":
                invoice_ids = [i for i in active_ids if i in moves.records]
            elif active_model == "account.move.line":
                invoice_ids = sorted({lines.records[i]["move_id"] for i in active_ids if i in lines.records})
            else:
                raise UserError("The register payment wizard should only be called on account.move or "
                                "account.move.line records.")
            line_ids = [lid for inv in invoice_ids for lid in sorted(lines._hash["move_id"].get(inv, ()))]
            vals["line_ids"] = [[6, 0, line_ids]]
        invoice_ids = _wizard_invoices(registry, vals["line_ids"])
        if any(moves.records[i].get("state") != "posted" for i in invoice_ids):
            raise UserError("You can only register payment for posted journal entries.")
        residual = sum_money(moves.records[i].get("amount_residual") or 0.0 for i in invoice_ids)
        if not invoice_ids or residual <= 0.0:
            raise UserError("You can't register a payment because there is nothing left to pay on the selected "
                            "journal items.")
        first = moves.records[invoice_ids[0]]
        vals.setdefault("amount", residual)
        vals.setdefault("source_amount", residual)
        vals.setdefault("payment_date", env.now[:10])
        vals.setdefault("journal_id", registry.company.bank_journal_id)
        vals.setdefault("currency_id", first.get("currency_id"))
        vals.setdefault("partner_id", first.get("commercial_partner_id"))
        vals.setdefault("payment_type", "inbound" if first.get("move_type") in ("out_invoice", "out_receipt",
                                                                                 "in_refund") else "outbound")
        vals.setdefault("partner_type", "customer" if first.get("move_type") in CUSTOMER_TYPES else "supplier")
        vals.setdefault("communication", " ".join(moves.display_name(moves.records[i]) for i in invoice_ids))
        return vals

    @api_records
    def action_create_payments(self, env: Env, ids: Any) -> Any:
        """Create and post the payment(s); the payment's form action, or true with
        ``dont_redirect_to_payments`` in the context."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        created: list[int] = []
        for wid in ids:
            created += create_payments(env, self.records[wid])
        if env.context.get("dont_redirect_to_payments"):
            return True
        action: dict[str, Any] = {"name": "Payments", "type": "ir.actions.act_window", "res_model": "account.payment",
                                  "context": {"create": False}}
        if len(created) == 1:
            action.update(view_mode="form", res_id=created[0])
        else:
            action.update(view_mode="list,form", domain=[["id", "in", created]])
        return action


def _wizard_invoices(registry: Registry, line_commands: Any) -> list[int]:
    lines = registry.models["account.move.line"].records
    ids: list[int] = []
    for cmd in line_commands:
        if isinstance(cmd, (list, tuple)) and cmd and cmd[0] == 6:
            ids += list(cmd[2])
        elif isinstance(cmd, (list, tuple)) and cmd and cmd[0] == 4:
            ids.append(cmd[1])
        elif type(cmd) is int:
            ids.append(cmd)
    return sorted({lines[i]["move_id"] for i in ids if i in lines})


def create_payments(env: Env, wizard: dict[str, Any]) -> list[int]:
    """The wizard's payments: one for all invoices (one invoice, or ``group_payment``), else one each."""
    registry = env.registry
    moves = registry.models["account.move"]
    payments = registry.models["account.payment"]
    invoice_ids = sorted({registry.models["account.move.line"].records[i]["move_id"]
                          for i in wizard.get("line_ids") or ()})
    batches = [invoice_ids] if len(invoice_ids) == 1 or wizard.get("group_payment") else [[i] for i in invoice_ids]
    out: list[int] = []
    for batch in batches:
        amount = wizard.get("amount") or 0.0 if len(batches) == 1 else moves.records[batch[0]].get("amount_residual")
        pid = payments.create_records(env, [{
            "amount": amount, "date": wizard.get("payment_date"), "journal_id": wizard.get("journal_id"),
            "currency_id": wizard.get("currency_id"), "partner_id": wizard.get("partner_id"),
            "payment_type": wizard.get("payment_type") or "inbound",
            "partner_type": wizard.get("partner_type") or "customer",
            "memo": wizard.get("communication") if len(batches) == 1 else moves.display_name(moves.records[batch[0]]),
            "invoice_ids": [[6, 0, batch]]}])[0]
        post_payment(env, pid, batch, writeoff=wizard.get("payment_difference_handling") == "reconcile")
        out.append(pid)
    return out


def reverse_invoice(env: Env, invoice_id: int) -> int:
    """A posted credit note for the invoice's residual, reconciled with it (``reversed`` when full)."""
    registry = env.registry
    moves = registry.models["account.move"]
    lines = registry.models["account.move.line"]
    inv = moves.records[invoice_id]
    if inv.get("state") != "posted" or inv.get("move_type") != "out_invoice":
        raise UserError("Only posted customer invoices can be reversed.")
    commands = []
    for lid in sorted(lines._hash["move_id"].get(invoice_id, ())):
        line = lines.records[lid]
        commands.append([0, 0, {k: line.get(k) for k in ("product_id", "name", "quantity", "price_unit", "discount")}
                         | {"tax_ids": [[6, 0, list(line.get("tax_ids") or ())]],
                            "sale_line_ids": [[6, 0, list(line.get("sale_line_ids") or ())]]}])
    refund = moves.create_records(env, [{
        "move_type": "out_refund", "partner_id": inv.get("partner_id"), "reversed_entry_id": invoice_id,
        "invoice_origin": inv.get("invoice_origin"), "ref": f"Reversal of: {inv.get('name')}",
        "currency_id": inv.get("currency_id"), "invoice_line_ids": commands}])[0]
    post_moves(env, [refund])
    reconcile(env, invoice_id, moves.records[refund].get("amount_residual") or 0.0, refund_id=refund)
    return refund


MODELS: tuple[type[BaseModel], ...] = (
    AccountTax, AccountJournal, AccountMove, AccountMoveLine, AccountPayment, AccountPaymentRegister, SimReconcile,
)
