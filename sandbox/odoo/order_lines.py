"""What sales and purchase order lines have in common in the simulator: fields read through their
order, and the defaults a line takes from its product (Odoo's onchange, applied at create)."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .orm import BaseModel, Env


def order_value(order_model: str, name: str) -> Callable[[BaseModel, dict[str, Any]], Any]:
    """A compute that reads field ``name`` of the line's order (a related field in Odoo)."""
    def compute(model: BaseModel, rec: dict[str, Any]) -> Any:
        return model.registry.models[order_model].records.get(rec.get("order_id") or 0, {}).get(name)
    return compute


def orders_of(lines: BaseModel, ids: Iterable[int]) -> list[int]:
    """The orders of the given lines, sorted and without repeats."""
    return sorted({lines.records[i]["order_id"] for i in ids if i in lines.records})


def product_defaults(lines: BaseModel, vals: dict[str, Any], *, description: str, uom: str, price: str,
                     taxes: str, tax_field: str) -> dict[str, Any]:
    """Fill a product line's name, unit, price and taxes from its product where ``vals`` lacks them."""
    product = vals.get("product_id")
    products = lines.registry.models["product.product"]
    if type(product) is not int or product not in products.records:
        return vals
    prec = products.records[product]
    if not vals.get("name"):
        text = products.raw_getter(description)(prec)
        label = products.display_name(prec)
        vals["name"] = f"{label}\n{text}" if text else label
    vals.setdefault("product_uom", products.raw_getter(uom)(prec))
    if "price_unit" not in vals:
        vals["price_unit"] = products.raw_getter(price)(prec) or 0.0
    if tax_field not in vals:
        vals[tax_field] = [[6, 0, list(products.raw_getter(taxes)(prec) or ())]]
    return vals


def set_flag(model: BaseModel, env: Env, ids: list[int], field: str, value: Any) -> bool:
    """Set one field on every record (lock/unlock buttons); returns true as the buttons do."""
    for rid in ids:
        model._set(env, rid, {field: value})
    return True
