"""Currency rounding and tax amounts as Odoo computes them by default ("round per line").

Odoo rounds half-up (``float_round``, with an epsilon that absorbs binary noise): a line's
untaxed amount is ``round(price * (1 - discount) * qty)``, each percent tax on it is rounded on
its own, and document totals are sums of those rounded line amounts. So 3 x 12.50 at 15 %
is 37.50 + 5.63 = 43.13, not round(37.5 * 1.15) = 43.12.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CURRENCY_DIGITS = 2


def money_round(value: float, digits: int = CURRENCY_DIGITS) -> float:
    """``value`` rounded half-up to ``digits`` decimals (``repr`` keeps 1.005 from being 1.00499...)."""
    return float(Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def qty_round(value: float) -> float:
    """A quantity rounded to the 0.01 precision of the default unit ("Units")."""
    return money_round(value, 2)


@dataclass(frozen=True)
class Tax:
    """What a line needs of an ``account.tax``: a percentage, excluded from or included in the price."""

    amount: float
    price_include: bool = False


@dataclass(frozen=True)
class LineAmounts:
    """The amounts of one document line, in the document currency."""

    subtotal: float
    tax: float
    total: float


def line_amounts(price_unit: float, quantity: float, discount: float, taxes: Iterable[Tax]) -> LineAmounts:
    """Untaxed amount, tax and total of one line (percent taxes, rounded per line)."""
    price = price_unit * (1.0 - (discount or 0.0) / 100.0)
    gross = money_round(price * quantity)
    taxes = list(taxes)
    included = sum(t.amount for t in taxes if t.price_include)
    base = money_round(gross / (1.0 + included / 100.0)) if included else gross
    tax_total = 0.0
    for t in taxes:
        tax_total += money_round(base * t.amount / 100.0)
    if included:
        # Included taxes are carved out of the price: their rounding goes into the base.
        base = money_round(gross - sum(money_round(base * t.amount / 100.0) for t in taxes if t.price_include))
    tax_total = money_round(tax_total)
    return LineAmounts(base, tax_total, money_round(base + tax_total))


def sum_money(values: Iterable[float]) -> float:
    """A sum of currency amounts, free of float noise."""
    return money_round(sum(values))
