"""The models of the simulated Odoo 18 database, and the database they make up.

Here: the base models (res.partner and its countries, states and tags; res.users; ir.model,
ir.model.fields for custom ``x_`` fields, ir.model.data for external ids). Order to cash lives in
its own modules: :mod:`.product`, :mod:`.stock`, :mod:`.sale`, :mod:`.purchase`, :mod:`.account`
(with :mod:`.sequence` for numbering and :mod:`.data` for the master data); :data:`MODELS`
lists every model of the database.
"""
from __future__ import annotations

import dataclasses
import re
from functools import partial
from typing import Any, ClassVar

from . import account, product, purchase, sale, stock
from .account import commercial_partner, partner_credit
from .data import seed_order_to_cash
from .errors import UserError, ValidationError
from .fields import ALL_TTYPES, CUSTOM_FIELD_TYPES, Field
from .orm import BaseModel, Env, Registry, api_model
from .seed import STATES, countries
from .sequence import IrSequence

LANGS = (("en_US", "English (US)"),)  # a fresh database has one language installed


class ResUsers(BaseModel):
    """``res.users`` (only what create_uid/write_uid and the login need)."""

    _name = "res.users"
    _description = "User"
    _order = "name, login"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Name", required=True),
        "login": Field("char", "Login", required=True, index=True),
        "active": Field("boolean", "Active", default=True),
    }


class ResCountry(BaseModel):
    """``res.country``: every ISO 3166 country; ``code`` is the upper-case alpha-2 code."""

    _name = "res.country"
    _description = "Country"
    _order = "name"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Country Name", required=True),
        "code": Field("char", "Country Code", index=True,
                      help="The ISO country code in two chars. You can use this field for quick search."),
    }


class ResCountryState(BaseModel):
    """``res.country.state``; displayed as ``Name (CC)`` like Odoo 17+."""

    _name = "res.country.state"
    _description = "Country state"
    _order = "code"
    _fields: ClassVar[dict[str, Field]] = {
        "country_id": Field("many2one", "Country", required=True, relation="res.country", ondelete="cascade",
                            index=True),
        "name": Field("char", "State Name", required=True),
        "code": Field("char", "State Code", required=True),
    }

    def display_name(self, rec: dict[str, Any]) -> str:
        """``California (US)``."""
        country = self.registry.models["res.country"].records.get(rec.get("country_id") or 0)
        code = country.get("code") if country else None
        return f"{rec.get('name') or ''} ({code})" if code else (rec.get("name") or "")


class ResPartnerCategory(BaseModel):
    """``res.partner.category`` (contact tags); displayed with their parents, ``Parent / Child``."""

    _name = "res.partner.category"
    _description = "Partner Tags"
    _order = "name"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Tag Name", required=True),
        "color": Field("integer", "Color"),
        "parent_id": Field("many2one", "Parent Category", relation="res.partner.category", ondelete="cascade",
                           index=True),
        "active": Field("boolean", "Active", default=True),
    }

    def display_name(self, rec: dict[str, Any]) -> str:
        """``Parent / Child``."""
        names = []
        seen = set()
        node: dict[str, Any] | None = rec
        while node is not None and node["id"] not in seen:
            seen.add(node["id"])
            names.append(node.get("name") or "")
            node = self.records.get(node.get("parent_id") or 0)
        return " / ".join(reversed(names))


_ADDRESS_TYPES = (("contact", "Contact"), ("invoice", "Invoice Address"), ("delivery", "Delivery Address"),
                  ("other", "Other Address"))


def _partner_complete_name(model: BaseModel, rec: dict[str, Any]) -> str:
    name = rec.get("name") or ""
    parent = model.records.get(rec.get("parent_id") or 0)
    if not name and rec.get("type") in ("invoice", "delivery", "other"):
        name = dict(_ADDRESS_TYPES)[rec["type"]]
    if parent is not None and not rec.get("is_company"):
        name = f"{parent.get('name') or ''}, {name}"
    return name


def _country_code(model: BaseModel, rec: dict[str, Any]) -> str | None:
    country = model.registry.models["res.country"].records.get(rec.get("country_id") or 0)
    return country.get("code") if country else None


class ResPartner(BaseModel):
    """``res.partner`` with the fields of base + account that a customer sync reads and writes.

    ``credit`` (total receivable) is computed from the partner's posted customer invoices, credit
    notes and unreconciled payments (:func:`~sandbox.odoo.account.partner_credit`), plus an
    opening balance that direct helpers may set (``sim.update("res.partner", id, {"credit": 120.0})``).
    API writes to it are ignored like writes to any computed field without inverse.
    """

    _name = "res.partner"
    _description = "Contact"
    _order = "complete_name ASC, id DESC"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Name", required=True, index=True),
        "complete_name": Field("char", "Complete Name", compute=_partner_complete_name),
        "parent_id": Field("many2one", "Related Company", relation="res.partner", index=True),
        "child_ids": Field("one2many", "Contact", relation="res.partner", inverse_name="parent_id"),
        "ref": Field("char", "Reference", index=True),
        "lang": Field("selection", "Language", selection=LANGS, default="en_US"),
        "vat": Field("char", "Tax ID", index=True),
        "website": Field("char", "Website Link"),
        "comment": Field("html", "Notes"),
        "category_id": Field("many2many", "Tags", relation="res.partner.category"),
        "active": Field("boolean", "Active", default=True),
        "function": Field("char", "Job Position"),
        "type": Field("selection", "Address Type", selection=_ADDRESS_TYPES, default="contact"),
        "street": Field("char", "Street"),
        "street2": Field("char", "Street2"),
        "zip": Field("char", "Zip"),
        "city": Field("char", "City"),
        "state_id": Field("many2one", "State", relation="res.country.state", ondelete="restrict"),
        "country_id": Field("many2one", "Country", relation="res.country", ondelete="restrict"),
        "country_code": Field("char", "Country Code", compute=_country_code),
        "email": Field("char", "Email"),
        "phone": Field("char", "Phone"),
        "mobile": Field("char", "Mobile"),
        "is_company": Field("boolean", "Is a Company", default=False,
                            help="Check if the contact is a company, otherwise it is a person"),
        "customer_rank": Field("integer", "Customer Rank", default=0),
        "supplier_rank": Field("integer", "Supplier Rank", default=0),
        "credit_limit": Field("float", "Credit Limit", help="Credit limit specific to this partner."),
        "credit": Field("float", "Total Receivable", compute=partner_credit,
                        help="Total amount this customer owes you."),
        "commercial_partner_id": Field("many2one", "Commercial Entity", relation="res.partner",
                                       compute=lambda model, rec: commercial_partner(model.registry, rec["id"])),
    }

    def display_name(self, rec: dict[str, Any]) -> str:
        """``Company, Person`` for a company's contact, else the name."""
        return _partner_complete_name(self, rec)


class IrModel(BaseModel):
    """``ir.model``: one row per model (technical name -> id for ir.model.fields)."""

    _name = "ir.model"
    _description = "Models"
    _order = "model"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Model Description", required=True),
        "model": Field("char", "Model", required=True, index=True),
        "state": Field("selection", "Type", selection=(("manual", "Custom Object"), ("base", "Base Object")),
                       default="manual"),
        "transient": Field("boolean", "Transient Model"),
        "field_id": Field("one2many", "Fields", relation="ir.model.fields", inverse_name="model_id"),
    }

    def _complete_vals(self, env: Env, vals: dict[str, Any]) -> dict[str, Any]:
        raise UserError("The Odoo simulator does not support creating models through ir.model")


_FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class IrModelFields(BaseModel):
    """``ir.model.fields``: creating a ``manual`` row adds a custom ``x_`` field to its model."""

    _name = "ir.model.fields"
    _description = "Fields"
    _order = "name"
    _rec_name = "field_description"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Field Name", required=True, index=True),
        "model": Field("char", "Model Name", required=True, index=True),
        "model_id": Field("many2one", "Model", required=True, relation="ir.model", ondelete="cascade", index=True),
        "field_description": Field("char", "Field Label", required=True),
        "help": Field("text", "Field Help"),
        "ttype": Field("selection", "Field Type", required=True, selection=ALL_TTYPES),
        "relation": Field("char", "Related Model"),
        "relation_field": Field("char", "Related Field"),
        "required": Field("boolean", "Required"),
        "readonly": Field("boolean", "Readonly"),
        "index": Field("boolean", "Indexed"),
        "store": Field("boolean", "Stored", default=True),
        "copied": Field("boolean", "Copied", help="Whether the value is copied when duplicating a record."),
        "translate": Field("boolean", "Translatable"),
        "size": Field("integer", "Size"),
        "on_delete": Field("selection", "On Delete", default="set null", selection=(
            ("cascade", "Cascade"), ("set null", "Set NULL"), ("restrict", "Restrict"))),
        "domain": Field("char", "Domain", default="[]"),
        "related": Field("char", "Related Field Definition"),
        "depends": Field("char", "Dependencies"),
        "compute": Field("text", "Compute"),
        "state": Field("selection", "Type", required=True, default="manual",
                       selection=(("manual", "Custom Field"), ("base", "Base Field"))),
    }
    _IMMUTABLE: ClassVar[tuple[str, ...]] = ("name", "model", "model_id", "ttype", "relation")
    _MUTABLE: ClassVar[dict[str, str]] = {"field_description": "string", "help": "help", "required": "required",
                                           "readonly": "readonly", "index": "index"}

    def _complete_vals(self, env: Env, vals: dict[str, Any]) -> dict[str, Any]:
        ir_model = self.registry.models["ir.model"]
        vals = dict(vals)
        if vals.get("model_id") and not vals.get("model"):
            row = ir_model.records.get(vals["model_id"]) if type(vals["model_id"]) is int else None
            if row is not None:
                vals["model"] = row["model"]
        elif vals.get("model") and not vals.get("model_id"):
            # Odoo derives `model` from `model_id`; accepting the reverse too is a simulator convenience.
            found = ir_model._hash["model"].get(vals["model"])
            if found:
                vals["model_id"] = min(found)
        return vals

    def _post_create(self, env: Env, ids: list[int]) -> None:
        for rid in ids:
            row = self.records[rid]
            if row.get("state") != "manual":
                raise UserError("Only custom fields (state 'manual') can be created through the API")
            name = row["name"]
            if not name.startswith("x_"):
                raise ValidationError("Custom fields must have a name that starts with 'x_'!")
            if not _FIELD_NAME.match(name):
                raise ValidationError("Field names can only contain characters, digits and underscores (up to 63).")
            target = self.registry.models.get(row["model"])
            if target is None:
                raise UserError(f"Object {row['model']} doesn't exist")
            twins = self._hash["name"].get(name, set())
            if any(self.records[t]["model"] == row["model"] for t in twins if t != rid):
                raise ValidationError("The operation cannot be completed: Field names must be unique per model.")
            ttype = row["ttype"]
            if ttype not in CUSTOM_FIELD_TYPES:
                raise UserError(f"The Odoo simulator does not support custom fields of type {ttype!r}")
            relation = row.get("relation")
            if ttype == "many2one" and relation not in self.registry.models:
                raise ValidationError(f"Unknown model name '{relation}' for field {name!r}")
            target.add_field(name, Field(
                ttype, row.get("field_description") or name, required=bool(row.get("required")),
                relation=relation if ttype == "many2one" else None, index=bool(row.get("index")),
                ondelete=row.get("on_delete") or "set null",
                readonly=bool(row.get("readonly")), manual=True, help=row.get("help") or ""))
            env.undo.append(partial(_drop_field, target, name))

    def _post_write(self, env: Env, ids: list[int], vals: dict[str, Any]) -> None:
        changed = [k for k in self._IMMUTABLE if k in vals]
        if changed:
            raise UserError(f"Changing {', '.join(changed)} of a field is not supported; "
                            "drop the field and create it again.")
        attrs: dict[str, Any] = {self._MUTABLE[k]: vals[k] for k in self._MUTABLE if k in vals}
        for rid in ids:
            row = self.records[rid]
            target = self.registry.models.get(row["model"])
            if row.get("state") != "manual" or target is None or row["name"] not in target.fields:
                continue
            old = target.fields[row["name"]]
            changes: dict[str, Any] = {k: (v or "") if k in ("string", "help") else bool(v)
                                       for k, v in attrs.items()}
            new = dataclasses.replace(old, **changes)
            target.fields[row["name"]] = new
            if new.index:
                target.ensure_index(new.name)
            target._schema_changed()
            env.undo.append(partial(_restore_field, target, old))

    def _pre_unlink(self, env: Env, ids: list[int]) -> None:
        for rid in ids:
            row = self.records[rid]
            if row.get("state") != "manual":
                raise UserError("This column contains module data and cannot be removed!")
            target = self.registry.models.get(row["model"])
            if target is None or row["name"] not in target.fields:
                continue
            values = {r["id"]: r[row["name"]] for r in target.records.values() if row["name"] in r}
            removed = target.remove_field(row["name"])
            env.undo.append(partial(_readd_field, target, removed, values))


def _drop_field(model: BaseModel, name: str) -> None:
    model.remove_field(name)


def _restore_field(model: BaseModel, old: Field) -> None:
    model.fields[old.name] = old
    model._schema_changed()


def _readd_field(model: BaseModel, old: Field, values: dict[int, Any]) -> None:
    model.fields[old.name] = old
    for rid, value in values.items():
        if rid in model.records:
            model.records[rid][old.name] = value
    if old.index:
        model._build_hash(old.name)
    model._schema_changed()


def _xmlid_complete_name(model: BaseModel, rec: dict[str, Any]) -> str:
    module = rec.get("module") or ""
    return f"{module}.{rec.get('name') or ''}" if module else (rec.get("name") or "")


class IrModelData(BaseModel):
    """``ir.model.data`` (external ids); ``(module, name)`` is unique like the real index."""

    _name = "ir.model.data"
    _description = "Model Data"
    _order = "module, model, name"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "External Identifier", required=True, index=True,
                      help="External Key/Identifier that can be used for data integration with third-party systems"),
        "complete_name": Field("char", "Complete ID", compute=_xmlid_complete_name),
        "model": Field("char", "Model Name", required=True),
        "module": Field("char", "Module", required=True, default=""),
        "res_id": Field("many2one_reference", "Record ID", index=True, help="ID of the target record in the database"),
        "noupdate": Field("boolean", "Non Updatable", default=False),
        "reference": Field("char", "Reference",
                           compute=lambda model, rec: f"{rec.get('model')},{rec.get('res_id') or 0}"),
    }

    def display_name(self, rec: dict[str, Any]) -> str:
        """``module.name``."""
        return _xmlid_complete_name(self, rec)

    @api_model
    def toggle_noupdate(self, env: Env, model: str, res_id: int) -> None:
        """Flip ``noupdate`` on the external ids of a record; returns None like Odoo (no result key)."""
        for xid in self.search_ids(env, [("model", "=", model), ("res_id", "=", res_id)]):
            self.write_records(env, [xid], {"noupdate": not self.records[xid].get("noupdate")})

    def _post_create(self, env: Env, ids: list[int]) -> None:
        self._check_unique(ids)

    def _post_write(self, env: Env, ids: list[int], vals: dict[str, Any]) -> None:
        if "name" in vals or "module" in vals:
            self._check_unique(ids)

    def _check_unique(self, ids: list[int]) -> None:
        for rid in ids:
            row = self.records[rid]
            twins = self._hash["name"].get(row["name"], set())
            if any(self.records[t].get("module") == row.get("module") for t in twins if t != rid):
                raise ValidationError(
                    "The operation cannot be completed: duplicate key value violates unique constraint "
                    '"ir_model_data_module_name_uniq_index"\n'
                    f"DETAIL:  Key (module, name)=({row.get('module')}, {row['name']}) already exists.\n")


MODELS: tuple[type[BaseModel], ...] = (
    ResUsers, ResCountry, ResCountryState, ResPartnerCategory, ResPartner, IrModel, IrModelFields, IrModelData,
    IrSequence, *product.MODELS, *stock.MODELS, *account.MODELS, *sale.MODELS, *purchase.MODELS,
)

ADMIN_UID = 2


def build_registry(db: str, now: Any, *, builtin_partners: bool = False) -> Registry:
    """A fresh database: the models, their ir.model/ir.model.fields rows, users, countries, states.

    ``builtin_partners`` adds what a real fresh database holds in res.partner (the company, OdooBot
    and the administrator's partner, ids 1-3; new partners start at 7). Off by default, so that a
    test's partner counts are its own.
    """
    registry = Registry(db, now)
    for cls in MODELS:
        registry.add(cls)
    for model in registry.models.values():
        model.setup_inherits()
    stamp = now()
    base = {"create_uid": 1, "write_uid": 1, "create_date": stamp, "write_date": stamp}
    m = registry.models

    def raw(model: str, values: dict[str, Any], rid: int | None = None) -> int:
        return m[model]._insert(None, {**base, **values}, rid)

    def xmlid(name: str, model: str, res_id: int) -> None:
        raw("ir.model.data", {"module": "base", "name": name, "model": model, "res_id": res_id, "noupdate": True})

    raw("res.users", {"name": "OdooBot", "login": "__system__", "active": False}, 1)
    raw("res.users", {"name": "Administrator", "login": "admin", "active": True}, ADMIN_UID)
    xmlid("user_root", "res.users", 1)
    xmlid("user_admin", "res.users", ADMIN_UID)
    for model in [model for model in m.values() if not model._internal]:
        model_id = raw("ir.model", {"name": model._description, "model": model._name, "state": "base"})
        xmlid(f"model_{model._name.replace('.', '_')}", "ir.model", model_id)
        for fname, f in model.fields.items():
            raw("ir.model.fields", {
                "name": fname, "model": model._name, "model_id": model_id, "field_description": f.string,
                "ttype": f.type, "relation": f.relation, "required": f.required, "readonly": f.readonly,
                "index": f.index, "store": f.store, "state": "base"})
    country_ids = {}
    for code, name in countries():
        country_ids[code] = raw("res.country", {"name": name, "code": code})
        xmlid(code.lower(), "res.country", country_ids[code])
    for cc, code, name in STATES:
        raw("res.country.state", {"country_id": country_ids[cc], "code": code, "name": name})
    if builtin_partners:
        partner = {"active": True, "type": "contact", "lang": "en_US", "customer_rank": 0, "supplier_rank": 0}
        raw("res.partner", {**partner, "name": "My Company", "is_company": True}, 1)
        raw("res.partner", {**partner, "name": "OdooBot", "is_company": False, "active": False,
                            "email": "odoobot@example.com"}, 2)
        raw("res.partner", {**partner, "name": "Administrator", "is_company": False}, 3)
        xmlid("main_partner", "res.partner", 1)
        xmlid("partner_root", "res.partner", 2)
        xmlid("partner_admin", "res.partner", 3)
        m["res.partner"]._next_id = 7
    seed_order_to_cash(registry, partner_id=1 if builtin_partners else None)
    return registry
