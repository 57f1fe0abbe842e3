"""Products (Odoo 18 ``product`` + ``stock``): units, currencies, categories, templates, variants.

``product.product`` inherits ``product.template`` by delegation (``_inherits``): a variant reads
and writes the template's fields (name, list_price, type, ...) and owns ``default_code``,
``barcode`` and ``active``. Creating a template creates its single variant; creating a variant
creates its template. As in Odoo, each model has its own ``write_date``: writing a template
field *through the variant* moves both, but editing the template alone (as the product form
does for most fields) leaves the variant's ``write_date`` unchanged, so a poller of
``product.product`` must also look at ``product_tmpl_id.write_date``.
"""
from __future__ import annotations

from typing import Any, ClassVar

from .fields import Field
from .orm import BaseModel, Env
from .stock import QTY_FIELDS, quantity_compute, template_quantity_compute

_MISSING = object()
PRODUCT_TYPES = (("consu", "Goods"), ("service", "Service"), ("combo", "Combo"))


class UomUom(BaseModel):
    """``uom.uom`` (Units, Dozens, kg): no conversions are simulated."""

    _name = "uom.uom"
    _description = "Product Unit of Measure"
    _order = "factor DESC, id"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Unit of Measure", required=True),
        "factor": Field("float", "Ratio", required=True, default=1.0),
        "rounding": Field("float", "Rounding Precision", required=True, default=0.01),
        "uom_type": Field("selection", "Type", required=True, default="reference", selection=(
            ("bigger", "Bigger than the reference Unit of Measure"), ("reference", "Reference Unit of Measure"),
            ("smaller", "Smaller than the reference Unit of Measure"))),
        "active": Field("boolean", "Active", default=True),
    }


class ResCurrency(BaseModel):
    """``res.currency``: ``name`` is the ISO 4217 code (``USD``)."""

    _name = "res.currency"
    _description = "Currency"
    _order = "active desc, name"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Currency", required=True, index=True),
        "full_name": Field("char", "Name"),
        "symbol": Field("char", "Symbol", required=True),
        "rounding": Field("float", "Rounding Factor", default=0.01),
        "decimal_places": Field("integer", "Decimal Places", compute=lambda model, rec: 2),
        "position": Field("selection", "Symbol Position", default="after",
                          selection=(("after", "After Amount"), ("before", "Before Amount"))),
        "rate": Field("float", "Current Rate", compute=lambda model, rec: 1.0),
        "active": Field("boolean", "Active", default=True),
    }


def _category_name(model: BaseModel, rec: dict[str, Any]) -> str:
    names: list[str] = []
    node: dict[str, Any] | None = rec
    seen: set[int] = set()
    while node is not None and node["id"] not in seen:
        seen.add(node["id"])
        names.append(node.get("name") or "")
        node = model.records.get(node.get("parent_id") or 0)
    return " / ".join(reversed(names))


class ProductCategory(BaseModel):
    """``product.category`` ("All"), displayed with its parents."""

    _name = "product.category"
    _description = "Product Category"
    _order = "complete_name"
    _rec_name = "complete_name"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Name", required=True, index=True),
        "complete_name": Field("char", "Complete Name", compute=_category_name),
        "parent_id": Field("many2one", "Parent Category", relation="product.category", index=True,
                           ondelete="cascade"),
    }


def _single_variant_value(name: str) -> Any:
    def compute(model: BaseModel, rec: dict[str, Any]) -> Any:
        variants = model.registry.models["product.product"]._hash["product_tmpl_id"].get(rec["id"], ())
        if len(variants) != 1:
            return None
        return model.registry.models["product.product"].records[next(iter(variants))].get(name)
    return compute


def _first_variant(model: BaseModel, rec: dict[str, Any]) -> int | None:
    variants = model.registry.models["product.product"]._hash["product_tmpl_id"].get(rec["id"], ())
    return min(variants) if variants else None


def _company_currency(model: BaseModel, rec: dict[str, Any]) -> int | None:
    return model.registry.company.currency_id if model.registry.company else None


_TEMPLATE_VARIANT_FIELDS = ("default_code", "barcode")


class ProductTemplate(BaseModel):
    """``product.template``: what is sold; Odoo 18 types ``consu`` (+ ``is_storable``), ``service``, ``combo``."""

    _name = "product.template"
    _description = "Product"
    _order = "priority desc, name"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Name", required=True, index=True),
        "sequence": Field("integer", "Sequence", default=1),
        "description": Field("html", "Description"),
        "description_sale": Field("text", "Sales Description"),
        "description_purchase": Field("text", "Purchase Description"),
        "type": Field("selection", "Product Type", required=True, default="consu", selection=PRODUCT_TYPES),
        "is_storable": Field("boolean", "Track Inventory", default=False),
        "categ_id": Field("many2one", "Product Category", relation="product.category", required=True, default=1),
        "list_price": Field("float", "Sales Price", default=1.0),
        "standard_price": Field("float", "Cost", default=0.0),
        "currency_id": Field("many2one", "Currency", relation="res.currency", compute=_company_currency),
        "uom_id": Field("many2one", "Unit", relation="uom.uom", required=True, default=1),
        "uom_po_id": Field("many2one", "Purchase Unit", relation="uom.uom", required=True, default=1),
        "sale_ok": Field("boolean", "Can be Sold", default=True),
        "purchase_ok": Field("boolean", "Can be Purchased", default=True),
        "active": Field("boolean", "Active", default=True),
        "priority": Field("selection", "Favorite", default="0", selection=(("0", "Normal"), ("1", "Favorite"))),
        "weight": Field("float", "Weight"),
        "volume": Field("float", "Volume"),
        "invoice_policy": Field("selection", "Invoicing Policy", default="order",
                                selection=(("order", "Ordered quantities"), ("delivery", "Delivered quantities"))),
        "purchase_method": Field("selection", "Control Policy", default="receive",
                                 selection=(("purchase", "On ordered quantities"),
                                            ("receive", "On received quantities"))),
        "taxes_id": Field("many2many", "Sales Taxes", relation="account.tax"),
        "supplier_taxes_id": Field("many2many", "Purchase Taxes", relation="account.tax"),
        "default_code": Field("char", "Internal Reference", compute=_single_variant_value("default_code")),
        "barcode": Field("char", "Barcode", compute=_single_variant_value("barcode")),
        "product_variant_ids": Field("one2many", "Products", relation="product.product",
                                     inverse_name="product_tmpl_id"),
        "product_variant_id": Field("many2one", "Product", relation="product.product", compute=_first_variant),
        "product_variant_count": Field("integer", "# Product Variants", compute=lambda model, rec: len(
            model.registry.models["product.product"]._hash["product_tmpl_id"].get(rec["id"], ()))),
        **{name: Field("float", name.replace("_", " ").title(), compute=template_quantity_compute(name))
           for name in QTY_FIELDS},
    }

    def _complete_vals(self, env: Env, vals: dict[str, Any]) -> dict[str, Any]:
        company = self.registry.company
        vals = dict(vals)
        if "taxes_id" not in vals and company is not None and company.sale_tax_id:
            vals["taxes_id"] = [[6, 0, [company.sale_tax_id]]]
        if "supplier_taxes_id" not in vals and company is not None and company.purchase_tax_id:
            vals["supplier_taxes_id"] = [[6, 0, [company.purchase_tax_id]]]
        return vals

    def create_records(self, env: Env, vals_list: list[Any]) -> list[int]:
        """Create templates, then one variant each (unless ``create_product_product`` is false)."""
        variant_vals = [{k: v.pop(k) for k in _TEMPLATE_VARIANT_FIELDS if k in v} if isinstance(v, dict) else {}
                        for v in (dict(x) if isinstance(x, dict) else x for x in vals_list)]
        cleaned = [{k: v for k, v in x.items() if k not in _TEMPLATE_VARIANT_FIELDS} if isinstance(x, dict) else x
                   for x in vals_list]
        ids = super().create_records(env, cleaned)
        if env.context.get("create_product_product", True) is not False:
            variants = self.registry.models["product.product"]
            variants.create_records(env, [{**extra, "product_tmpl_id": tid} for tid, extra in zip(ids, variant_vals)])
        return ids

    def write_records(self, env: Env, ids: list[int], vals: Any) -> None:
        """Write; ``default_code``/``barcode`` go to a single variant, ``active`` to every variant."""
        if not isinstance(vals, dict):
            super().write_records(env, ids, vals)
            return
        on_variant = {k: vals[k] for k in _TEMPLATE_VARIANT_FIELDS if k in vals}
        super().write_records(env, ids, {k: v for k, v in vals.items() if k not in on_variant})
        variants = self.registry.models["product.product"]
        for tid in ids:
            mine = sorted(variants._hash["product_tmpl_id"].get(tid, ()))
            if on_variant and len(mine) == 1:
                variants.write_records(env, mine, on_variant)
            if "active" in vals and mine:
                variants.write_records(env, mine, {"active": vals["active"]})


def _product_display_name(model: BaseModel, rec: dict[str, Any]) -> str:
    name = model.raw_getter("name")(rec) or ""
    code = rec.get("default_code")
    return f"[{code}] {name}" if code else name


class ProductProduct(BaseModel):
    """``product.product`` (a variant): ``default_code`` is the SKU; stock quantities are computed."""

    _name = "product.product"
    _description = "Product Variant"
    _order = "default_code, id"
    _inherits: ClassVar[dict[str, str]] = {"product.template": "product_tmpl_id"}
    _fields: ClassVar[dict[str, Field]] = {
        "product_tmpl_id": Field("many2one", "Product Template", relation="product.template", required=True,
                                 index=True, ondelete="cascade"),
        "default_code": Field("char", "Internal Reference", index=True),
        "barcode": Field("char", "Barcode", index=True),
        "active": Field("boolean", "Active", default=True),
        "lst_price": Field("float", "Sales Price", compute=lambda model, rec: model.raw_getter("list_price")(rec) or 0.0),
        "code": Field("char", "Reference", compute=lambda model, rec: rec.get("default_code")),
        "partner_ref": Field("char", "Customer Ref", compute=_product_display_name),
        "stock_quant_ids": Field("one2many", "Quants", relation="stock.quant", inverse_name="product_id"),
        "stock_move_ids": Field("one2many", "Moves", relation="stock.move", inverse_name="product_id"),
        **{name: Field("float", name.replace("_", " ").title(), compute=quantity_compute(name)) for name in QTY_FIELDS},
    }

    def display_name(self, rec: dict[str, Any]) -> str:
        """``[SKU-1] Test Widget``."""
        return _product_display_name(self, rec)

    def _create_parent(self, env: Env, parent: BaseModel, vals: dict[str, Any]) -> int:
        # The variant being created is the template's variant: the template must not make another.
        saved = env.context.get("create_product_product", _MISSING)
        env.context["create_product_product"] = False
        try:
            return parent.create_records(env, [vals])[0]
        finally:
            if saved is _MISSING:
                env.context.pop("create_product_product", None)
            else:
                env.context["create_product_product"] = saved

    def _after_unlink(self, env: Env, removed: list[dict[str, Any]]) -> None:
        # Odoo's product.product unlink also deletes templates left without variants.
        templates = self.registry.models["product.template"]
        orphans = sorted({int(r["product_tmpl_id"]) for r in removed
                          if r.get("product_tmpl_id") in templates.records
                          and not self._hash["product_tmpl_id"].get(r["product_tmpl_id"])})
        if orphans:
            templates.unlink_records(env, orphans)


MODELS: tuple[type[BaseModel], ...] = (UomUom, ResCurrency, ProductCategory, ProductTemplate, ProductProduct)
