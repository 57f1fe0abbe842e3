"""Inventory (Odoo 18 ``stock``): locations, warehouses, quants, moves, pickings, reservations.

Quantities follow ``stock/models/product.py``: ``qty_available`` sums the quants under the
scope's locations, ``free_qty`` subtracts their reservations, ``incoming_qty``/``outgoing_qty`` sum
the demand of open moves (waiting, confirmed, partially_available, assigned) entering/leaving the
scope, ``virtual_available = qty_available + incoming - outgoing``. The scope is every warehouse,
or the context keys Odoo 17+ reads: ``warehouse_id`` (id, name or list) and ``location`` (id, name
or list; children included unless ``strict``). The Odoo <= 16 key ``warehouse`` is ignored, as in
Odoo 18. Like Odoo, quants exist in every location a storable product moves through (partners,
inventory adjustment), so a quant reader must filter ``location_id.usage = internal``.

Reservation happens at confirmation (``reservation_method = at_confirm``) from quants under the
move's source location, oldest first; a move is ``assigned``, ``partially_available`` or
``confirmed`` accordingly, and a picking's state is derived from its moves exactly as
``_get_relevant_state_among_moves`` does (a "ship as soon as possible" picking is ``assigned`` as
soon as anything is reserved; "ship all at once" only when everything is).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Protocol, cast

from .commands import as_ids
from .errors import UserError
from .fields import Field, to_wire_datetime
from .money import qty_round
from .orm import BaseModel, Env, Registry, api_records
from .sequence import IrSequence


class StockListener(Protocol):
    """What sales and purchases offer stock: recompute after their transfers changed (sale_stock)."""

    def stock_changed(self, env: Env, order_ids: list[int]) -> None:
        """Recompute the orders' stored fields that depend on their transfers."""


OPEN_MOVE_STATES = frozenset({"waiting", "confirmed", "assigned", "partially_available"})
QTY_FIELDS = ("qty_available", "virtual_available", "free_qty", "incoming_qty", "outgoing_qty")
BYPASS_USAGES = frozenset({"supplier", "customer", "inventory", "production"})
LOCATION_USAGES = (("supplier", "Vendor"), ("view", "Virtual"), ("internal", "Internal"), ("customer", "Customer"),
                   ("inventory", "Inventory Loss"), ("production", "Production"), ("transit", "Transit"))
MOVE_STATES = (("draft", "New"), ("waiting", "Waiting Another Move"), ("confirmed", "Waiting Availability"),
               ("partially_available", "Partially Available"), ("assigned", "Available"), ("done", "Done"),
               ("cancel", "Cancelled"))
PICKING_STATES = (("draft", "Draft"), ("waiting", "Waiting Another Operation"), ("confirmed", "Waiting"),
                  ("assigned", "Ready"), ("done", "Done"), ("cancel", "Cancelled"))
PICKING_CODES = (("incoming", "Receipt"), ("outgoing", "Delivery"), ("internal", "Internal Transfer"))
NO_QUANTITY_ERROR = ("You cannot validate a transfer if no quantities are reserved nor done. "
                     "To force the transfer, encode quantities.")
EPSILON = 1e-9


# ====================================================================================== product facts
def product_template(registry: Registry, product_id: int | None) -> dict[str, Any]:
    """The template row of a product.product (empty when unknown)."""
    prod = registry.models["product.product"].records.get(product_id or 0)
    if prod is None:
        return {}
    return registry.models["product.template"].records.get(prod.get("product_tmpl_id") or 0, {})


def is_storable(registry: Registry, product_id: int | None) -> bool:
    """Whether stock of the product is tracked (Odoo 18: ``type = consu`` and ``is_storable``)."""
    tmpl = product_template(registry, product_id)
    return tmpl.get("type") == "consu" and bool(tmpl.get("is_storable"))


def is_goods(registry: Registry, product_id: int | None) -> bool:
    """Whether the product is moved by pickings (goods, storable or not; not services or combos)."""
    return product_template(registry, product_id).get("type", "consu") == "consu"


# ====================================================================================== locations
def location_path(registry: Registry, location_id: int | None) -> str:
    """The ``parent_path`` of a location (``"1/7/8/"``), empty when unknown."""
    rec = registry.models["stock.location"].records.get(location_id or 0)
    return rec.get("parent_path") or "" if rec else ""


def bypasses_reservation(registry: Registry, location_id: int | None) -> bool:
    """Moves out of partner/virtual locations need no reservation (``should_bypass_reservation``)."""
    rec = registry.models["stock.location"].records.get(location_id or 0)
    return rec is None or rec.get("usage") in BYPASS_USAGES


def _ids_by_name(registry: Registry, model_name: str, values: list[Any]) -> set[int]:
    model = registry.models[model_name]
    ids = {v for v in values if type(v) is int}
    names = [str(v).lower() for v in values if type(v) is not int and v]
    if names:
        for rec in model.records.values():
            label = model.display_name(rec).lower()
            if any(n in label for n in names):
                ids.add(rec["id"])
    return ids


def scope_paths(registry: Registry, context: dict[str, Any]) -> tuple[tuple[str, ...], bool]:
    """The location paths the stock quantities count, from the context (see module docstring).

    Returns (paths, strict): with ``strict`` only the listed locations count, not their children.
    """
    warehouses = registry.models["stock.warehouse"]
    locations = registry.models["stock.location"]
    location = context.get("location") or context.get("search_location")
    warehouse = context.get("warehouse_id") or context.get("search_warehouse")
    if location and not isinstance(location, list):
        location = [location]
    if warehouse and not isinstance(warehouse, list):
        warehouse = [warehouse]
    if warehouse:
        wh_ids = _ids_by_name(registry, "stock.warehouse", warehouse)
        views = {warehouses.records[w]["view_location_id"] for w in wh_ids if w in warehouses.records}
        if location:
            parents = [location_path(registry, v) for v in views]
            loc_ids = {lid for lid in _ids_by_name(registry, "stock.location", location)
                       if any(location_path(registry, lid).startswith(p) for p in parents)}
        else:
            loc_ids = views
    elif location:
        loc_ids = _ids_by_name(registry, "stock.location", location)
    else:
        loc_ids = {w["view_location_id"] for w in warehouses.records.values() if w.get("active", True)}
    paths = tuple(sorted(p for p in (location_path(registry, i) for i in loc_ids if i in locations.records) if p))
    return paths, bool(context.get("strict"))


def _in_scope(path: str, paths: tuple[str, ...], strict: bool) -> bool:
    if strict:
        return path in paths
    return any(path.startswith(p) for p in paths)


def product_quantities(registry: Registry, product_id: int) -> dict[str, float]:
    """The five stock quantities of one product in the current call's scope (memoised per call)."""
    env = registry.env
    if env is None:
        paths, strict = scope_paths(registry, {})
    else:
        scope = env.memo.get("stock_scope")
        if scope is None:
            scope = env.memo["stock_scope"] = scope_paths(registry, env.context)
        paths, strict = scope
    key = ("stock_qty", product_id, paths, strict)
    if env is not None and key in env.memo:
        return env.memo[key]  # type: ignore[no-any-return]
    tmpl = product_template(registry, product_id)
    result = dict.fromkeys(QTY_FIELDS, 0.0)
    if tmpl.get("type", "consu") == "consu":
        quants = registry.models["stock.quant"]
        on_hand = reserved = 0.0
        for qid in quants._hash["product_id"].get(product_id, ()):
            q = quants.records[qid]
            if _in_scope(location_path(registry, q.get("location_id")), paths, strict):
                on_hand += q.get("quantity") or 0.0
                reserved += q.get("reserved_quantity") or 0.0
        moves = registry.models["stock.move"]
        incoming = outgoing = 0.0
        for mid in moves._hash["product_id"].get(product_id, ()):
            m = moves.records[mid]
            if m.get("state") not in OPEN_MOVE_STATES:
                continue
            src_in = _in_scope(location_path(registry, m.get("location_id")), paths, strict)
            dst_in = _in_scope(location_path(registry, m.get("location_dest_id")), paths, strict)
            if dst_in and not src_in:
                incoming += m.get("product_uom_qty") or 0.0
            elif src_in and not dst_in:
                outgoing += m.get("product_uom_qty") or 0.0
        result = {"qty_available": qty_round(on_hand), "free_qty": qty_round(on_hand - reserved),
                  "incoming_qty": qty_round(incoming), "outgoing_qty": qty_round(outgoing),
                  "virtual_available": qty_round(on_hand + incoming - outgoing)}
    if env is not None:
        env.memo[key] = result
    return result


def quantity_compute(name: str) -> Callable[[BaseModel, dict[str, Any]], float]:
    """A ``compute`` for product.product's stock quantity field ``name``."""
    def compute(model: BaseModel, rec: dict[str, Any]) -> float:
        return product_quantities(model.registry, rec["id"])[name]
    return compute


def template_quantity_compute(name: str) -> Callable[[BaseModel, dict[str, Any]], float]:
    """A ``compute`` for product.template's stock quantity field ``name`` (sum over variants)."""
    def compute(model: BaseModel, rec: dict[str, Any]) -> float:
        products = model.registry.models["product.product"]
        variants = products._hash["product_tmpl_id"].get(rec["id"], ())
        return qty_round(sum(product_quantities(model.registry, v)[name] for v in variants))
    return compute


class StockMemoMixin(BaseModel):
    """Models whose changes alter stock quantities: clear the call's memo on every change."""

    def _changed(self) -> None:
        env = self.registry.env
        if env is not None and env.memo:
            env.memo.clear()

    def _insert(self, env: Env | None, rec: dict[str, Any], rid: int | None = None) -> int:
        self._changed()
        return super()._insert(env, rec, rid)

    def _update(self, env: Env | None, rid: int, changes: dict[str, Any]) -> None:
        self._changed()
        super()._update(env, rid, changes)

    def _remove(self, env: Env | None, rid: int) -> None:
        self._changed()
        super()._remove(env, rid)


# ====================================================================================== models
def _location_complete_name(registry: Registry, rec: dict[str, Any]) -> str:
    parent = registry.models["stock.location"].records.get(rec.get("location_id") or 0)
    name = rec.get("name") or ""
    if parent is not None and rec.get("usage") != "view":
        return f"{parent.get('complete_name') or parent.get('name') or ''}/{name}"
    return name


def _location_warehouse(model: BaseModel, rec: dict[str, Any]) -> int | None:
    path = rec.get("parent_path") or ""
    for wh in model.registry.models["stock.warehouse"].records.values():
        view_path = location_path(model.registry, wh.get("view_location_id"))
        if view_path and path.startswith(view_path):
            return int(wh["id"])
    return None


class StockLocation(BaseModel):
    """``stock.location``: ``complete_name`` ("WH/Stock") and ``parent_path`` are stored computes."""

    _name = "stock.location"
    _description = "Inventory Locations"
    _order = "complete_name, id"
    _rec_name = "complete_name"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Location Name", required=True),
        "complete_name": Field("char", "Full Location Name", computed=True, index=True),
        "location_id": Field("many2one", "Parent Location", relation="stock.location", index=True,
                             ondelete="cascade"),
        "child_ids": Field("one2many", "Contains", relation="stock.location", inverse_name="location_id"),
        "usage": Field("selection", "Location Type", required=True, default="internal", selection=LOCATION_USAGES),
        "active": Field("boolean", "Active", default=True),
        "parent_path": Field("char", "Parent Path", computed=True, index=True),
        "barcode": Field("char", "Barcode"),
        "warehouse_id": Field("many2one", "Warehouse", relation="stock.warehouse", compute=_location_warehouse),
        "last_inventory_date": Field("date", "Last Inventory"),
    }

    def _post_create(self, env: Env, ids: list[int]) -> None:
        self._refresh_paths(env, ids)

    def _post_write(self, env: Env, ids: list[int], vals: dict[str, Any]) -> None:
        if {"name", "location_id", "usage"} & set(vals):
            self._refresh_paths(env, ids)

    def _refresh_paths(self, env: Env, ids: Iterable[int]) -> None:
        todo = list(ids)
        while todo:
            rid = todo.pop(0)
            rec = self.records[rid]
            parent = self.records.get(rec.get("location_id") or 0)
            path = f"{parent.get('parent_path') or '' if parent else ''}{rid}/"
            self._set(env, rid, {"parent_path": path,
                                 "complete_name": _location_complete_name(self.registry, rec)})
            todo.extend(sorted(self._hash["location_id"].get(rid, ())))


def _picking_type_name(model: BaseModel, rec: dict[str, Any]) -> str:
    wh = model.registry.models["stock.warehouse"].records.get(rec.get("warehouse_id") or 0)
    return f"{wh.get('name')}: {rec.get('name') or ''}" if wh else (rec.get("name") or "")


class StockPickingType(BaseModel):
    """``stock.picking.type`` (Receipts, Delivery Orders): numbering and default locations."""

    _name = "stock.picking.type"
    _description = "Picking Type"
    _order = "sequence, id"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Operation Type", required=True),
        "code": Field("selection", "Type of Operation", required=True, selection=PICKING_CODES),
        "sequence": Field("integer", "Sequence", default=1),
        "sequence_code": Field("char", "Sequence Prefix", required=True),
        "sequence_id": Field("many2one", "Reference Sequence", relation="ir.sequence"),
        "warehouse_id": Field("many2one", "Warehouse", relation="stock.warehouse", ondelete="cascade"),
        "default_location_src_id": Field("many2one", "Default Source Location", relation="stock.location"),
        "default_location_dest_id": Field("many2one", "Default Destination Location", relation="stock.location"),
        "reservation_method": Field("selection", "Reservation Method", default="at_confirm", selection=(
            ("at_confirm", "At Confirmation"), ("manual", "Manually"), ("by_date", "Before scheduled date"))),
        "active": Field("boolean", "Active", default=True),
    }

    def display_name(self, rec: dict[str, Any]) -> str:
        """``My Company: Delivery Orders``."""
        return _picking_type_name(self, rec)


class StockWarehouse(BaseModel):
    """``stock.warehouse``; creating one creates its view and stock locations and picking types."""

    _name = "stock.warehouse"
    _description = "Warehouse"
    _order = "sequence, id"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Warehouse", required=True),
        "code": Field("char", "Short Name", required=True),
        "active": Field("boolean", "Active", default=True),
        "sequence": Field("integer", "Sequence", default=10),
        "partner_id": Field("many2one", "Address", relation="res.partner"),
        "view_location_id": Field("many2one", "View Location", relation="stock.location", required=True),
        "lot_stock_id": Field("many2one", "Location Stock", relation="stock.location", required=True),
        "in_type_id": Field("many2one", "In Type", relation="stock.picking.type"),
        "out_type_id": Field("many2one", "Out Type", relation="stock.picking.type"),
        "reception_steps": Field("selection", "Incoming Shipments", default="one_step", selection=(
            ("one_step", "Receive and Store (1 step)"), ("two_steps", "Receive then store (2 steps)"),
            ("three_steps", "Receive, quality control, then store (3 steps)"))),
        "delivery_steps": Field("selection", "Outgoing Shipments", default="ship_only", selection=(
            ("ship_only", "Deliver (1 step)"), ("pick_ship", "Pick then Deliver (2 steps)"),
            ("pick_pack_ship", "Pick, Pack, then Deliver (3 steps)"))),
    }

    def _complete_vals(self, env: Env, vals: dict[str, Any]) -> dict[str, Any]:
        if vals.get("view_location_id") or not vals.get("code") or not isinstance(vals.get("code"), str):
            return vals
        locations = self.registry.models["stock.location"]
        physical = self.registry.company.physical_location_id
        view = locations.create_records(env, [{"name": vals["code"], "usage": "view", "location_id": physical}])[0]
        stock = locations.create_records(env, [{"name": "Stock", "usage": "internal", "location_id": view}])[0]
        return {**vals, "view_location_id": view, "lot_stock_id": stock}

    def _post_create(self, env: Env, ids: list[int]) -> None:
        for rid in ids:
            rec = self.records[rid]
            if rec.get("in_type_id") and rec.get("out_type_id"):
                continue
            self._set(env, rid, create_picking_types(env, rid))


def create_picking_types(env: Env, warehouse_id: int) -> dict[str, int]:
    """Create the Receipts and Delivery Orders types (and their sequences) of a warehouse."""
    registry = env.registry
    wh = registry.models["stock.warehouse"].records[warehouse_id]
    sequences = registry.models["ir.sequence"]
    types = registry.models["stock.picking.type"]
    company = registry.company
    out: dict[str, int] = {}
    for key, name, code, seq_code, src, dest in (
            ("in_type_id", "Receipts", "incoming", "IN", company.supplier_location_id, wh["lot_stock_id"]),
            ("out_type_id", "Delivery Orders", "outgoing", "OUT", wh["lot_stock_id"], company.customer_location_id)):
        seq = sequences.create_records(env, [{
            "name": f"{wh['name']} Sequence {'in' if code == 'incoming' else 'out'}",
            "prefix": f"{wh['code']}/{seq_code}/", "padding": 5, "code": f"stock.picking.{seq_code.lower()}"}])[0]
        out[key] = types.create_records(env, [{
            "name": name, "code": code, "sequence_code": seq_code, "sequence_id": seq, "warehouse_id": warehouse_id,
            "default_location_src_id": src, "default_location_dest_id": dest}])[0]
    return out


def _quant_available(model: BaseModel, rec: dict[str, Any]) -> float:
    return qty_round((rec.get("quantity") or 0.0) - (rec.get("reserved_quantity") or 0.0))


def _quant_diff(model: BaseModel, rec: dict[str, Any]) -> float:
    if not rec.get("inventory_quantity_set"):
        return 0.0
    return qty_round((rec.get("inventory_quantity") or 0.0) - (rec.get("quantity") or 0.0))


def _quant_warehouse(model: BaseModel, rec: dict[str, Any]) -> int | None:
    loc = model.registry.models["stock.location"].records.get(rec.get("location_id") or 0)
    return _location_warehouse(model, loc) if loc else None


def _quant_uom(model: BaseModel, rec: dict[str, Any]) -> int | None:
    return product_template(model.registry, rec.get("product_id")).get("uom_id")


_QUANT_INVENTORY_CREATE = frozenset({"product_id", "location_id", "lot_id", "package_id", "owner_id",
                                     "inventory_quantity", "inventory_quantity_auto_apply", "user_id",
                                     "inventory_date"})


class StockQuant(StockMemoMixin):
    """``stock.quant``: on-hand and reserved quantity of one product in one location.

    The inventory path of the observed session: ``create`` in ``inventory_mode`` with
    ``inventory_quantity`` (merged into the existing quant of that product and location), then
    ``action_apply_inventory``, which creates a done move from/to the inventory-adjustment
    location and returns None (no ``result`` key). ``inventory_quantity_auto_apply`` applies at once.
    """

    _name = "stock.quant"
    _description = "Quants"
    _order = "location_id, id"
    _rec_name = None
    _fields: ClassVar[dict[str, Field]] = {
        "product_id": Field("many2one", "Product", required=True, relation="product.product", index=True,
                            ondelete="restrict"),
        "location_id": Field("many2one", "Location", required=True, relation="stock.location", index=True,
                             ondelete="restrict"),
        "quantity": Field("float", "Quantity", readonly=True,
                          help="Quantity of products in this quant, in the default unit of measure of the product"),
        "reserved_quantity": Field("float", "Reserved Quantity", readonly=True, default=0.0),
        "available_quantity": Field("float", "Available Quantity", compute=_quant_available),
        "inventory_quantity": Field("float", "Counted Quantity"),
        "inventory_diff_quantity": Field("float", "Difference", compute=_quant_diff),
        "inventory_quantity_set": Field("boolean", "Inventory Quantity Set", default=False),
        "inventory_quantity_auto_apply": Field("float", "Inventoried Quantity",
                                               compute=lambda model, rec: rec.get("quantity") or 0.0),
        "inventory_date": Field("date", "Scheduled Date"),
        "in_date": Field("datetime", "Incoming Date", readonly=True),
        "user_id": Field("many2one", "Assigned To", relation="res.users"),
        "warehouse_id": Field("many2one", "Warehouse", relation="stock.warehouse", compute=_quant_warehouse),
        "product_uom_id": Field("many2one", "Unit", relation="uom.uom", compute=_quant_uom),
    }

    def display_name(self, rec: dict[str, Any]) -> str:
        """The location and product, as Odoo's quant list shows them."""
        loc = self.registry.models["stock.location"].display_name_of(rec.get("location_id") or 0)
        prod = self.registry.models["product.product"].display_name_of(rec.get("product_id") or 0)
        return f"{loc} - {prod}"

    def find(self, product_id: int, location_id: int) -> int | None:
        """The quant of a product in a location, if any (lowest id)."""
        for qid in sorted(self._hash["product_id"].get(product_id, ())):
            if self.records[qid].get("location_id") == location_id:
                return qid
        return None

    def create_records(self, env: Env, vals_list: list[Any]) -> list[int]:
        """Odoo's quant ``create``: the inventory mode merges and records counted quantities."""
        if not env.context.get("inventory_mode"):
            return super().create_records(env, vals_list)
        ids: list[int] = []
        for vals in vals_list:
            if not isinstance(vals, dict) or not ({"inventory_quantity", "inventory_quantity_auto_apply"} & set(vals)):
                ids += super().create_records(env, [vals])
                continue
            if set(vals) - _QUANT_INVENTORY_CREATE:
                raise UserError("Quant's creation is restricted, you can't do this operation.")
            vals = dict(vals)
            auto = "inventory_quantity_auto_apply" in vals
            counted = float(vals.pop("inventory_quantity_auto_apply", None) or vals.pop("inventory_quantity", None)
                            or 0.0)
            vals.pop("inventory_quantity", None)
            qid = self.find(vals.get("product_id") or 0, vals.get("location_id") or 0) if \
                type(vals.get("product_id")) is int and type(vals.get("location_id")) is int else None
            if qid is None:
                qid = super().create_records(env, [{**vals, "quantity": 0.0}])[0]
            self.count(env, qid, counted)
            if auto:
                apply_inventory(env, [qid])
            ids.append(qid)
        return ids

    def write_records(self, env: Env, ids: list[int], vals: Any) -> None:
        """Inventory-mode writes of ``inventory_quantity`` mark the quant as counted."""
        if env.context.get("inventory_mode") and isinstance(vals, dict) and "inventory_quantity_auto_apply" in vals:
            rest = {k: v for k, v in vals.items() if k != "inventory_quantity_auto_apply"}
            if rest:
                super().write_records(env, ids, rest)
            for qid in ids:
                self._check_exist(env, [qid])
                self.count(env, qid, float(vals["inventory_quantity_auto_apply"] or 0.0))
            apply_inventory(env, ids)
            return
        super().write_records(env, ids, vals)
        if env.context.get("inventory_mode") and isinstance(vals, dict) and "inventory_quantity" in vals:
            for qid in ids:
                self._set(env, qid, {"inventory_quantity_set": True, "user_id": env.uid,
                                     "inventory_date": env.now[:10]})

    def count(self, env: Env, qid: int, counted: float) -> None:
        """Record a counted quantity (what ``inventory_quantity``'s inverse does)."""
        self._set(env, qid, {"inventory_quantity": float(counted), "inventory_quantity_set": True,
                             "user_id": env.uid, "inventory_date": env.now[:10]})

    @api_records
    def action_apply_inventory(self, env: Env, ids: Any) -> None:
        """Apply counted quantities through done inventory moves; returns None (no result key)."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        apply_inventory(env, ids)

    @api_records
    def action_set_inventory_quantity_to_zero(self, env: Env, ids: Any) -> None:
        """Forget counted quantities (the "Clear" button)."""
        for qid in as_ids(ids):
            self._set(env, qid, {"inventory_quantity": 0.0, "inventory_quantity_set": False})


def apply_inventory(env: Env, quant_ids: list[int]) -> None:
    """``_apply_inventory``: a done move per quant from/to Inventory adjustment, then reset the count."""
    registry = env.registry
    quants = registry.models["stock.quant"]
    moves = registry.models["stock.move"]
    loss = registry.company.inventory_location_id
    user = registry.models["res.users"].display_name_of(env.uid)
    for qid in quant_ids:
        q = quants.records[qid]
        diff = _quant_diff(quants, q)
        if diff > 0:
            src, dest, qty = loss, q["location_id"], diff
        else:
            src, dest, qty = q["location_id"], loss, -diff
        name = "Product Quantity Confirmed" if abs(qty) < EPSILON else "Product Quantity Updated"
        mid = moves.create_records(env, [{
            "name": f"{name} ({user})", "product_id": q["product_id"], "product_uom_qty": qty, "quantity": qty,
            "location_id": src, "location_dest_id": dest, "state": "confirmed", "is_inventory": True,
            "picked": True}])[0]
        done_moves(env, [mid])
        quants._set(env, qid, {"inventory_quantity": 0.0, "inventory_quantity_set": False, "user_id": None})
        registry.models["stock.location"]._set(env, q["location_id"], {"last_inventory_date": env.now[:10]})


def update_quant(env: Env, product_id: int, location_id: int, quantity: float = 0.0, reserved: float = 0.0) -> int:
    """Add to the on-hand and reserved quantity of a product in a location (creating the quant)."""
    quants = cast(StockQuant, env.registry.models["stock.quant"])
    qid = quants.find(product_id, location_id)
    if qid is None:
        return quants.create_records(env, [{"product_id": product_id, "location_id": location_id,
                                            "quantity": qty_round(quantity), "reserved_quantity": qty_round(reserved),
                                            "in_date": env.now[:19]}])[0]
    q = quants.records[qid]
    values: dict[str, Any] = {
        "quantity": qty_round((q.get("quantity") or 0.0) + quantity),
        "reserved_quantity": qty_round(max(0.0, (q.get("reserved_quantity") or 0.0) + reserved))}
    if quantity > 0:
        values["in_date"] = env.now
    quants._set(env, qid, values)
    return qid


def _move_reference(model: BaseModel, rec: dict[str, Any]) -> str:
    picking = model.registry.models["stock.picking"].records.get(rec.get("picking_id") or 0)
    return (picking.get("name") or "") if picking else (rec.get("name") or "")


def _move_picking_code(model: BaseModel, rec: dict[str, Any]) -> str | None:
    ptype = model.registry.models["stock.picking.type"].records.get(rec.get("picking_type_id") or 0)
    return ptype.get("code") if ptype else None


class StockMove(StockMemoMixin):
    """``stock.move``: a demand (``product_uom_qty``) and a reserved/done ``quantity`` (Odoo 17+)."""

    _name = "stock.move"
    _description = "Stock Move"
    _order = "sequence, id"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Description", required=True, default="/"),
        "sequence": Field("integer", "Sequence", default=10),
        "reference": Field("char", "Reference", compute=_move_reference),
        "origin": Field("char", "Source Document"),
        "product_id": Field("many2one", "Product", required=True, relation="product.product", index=True,
                            ondelete="restrict"),
        "product_uom_qty": Field("float", "Demand", required=True, default=0.0),
        "product_qty": Field("float", "Real Quantity", compute=lambda model, rec: rec.get("product_uom_qty") or 0.0),
        "quantity": Field("float", "Quantity", default=0.0),
        "product_uom": Field("many2one", "Unit", relation="uom.uom"),
        "location_id": Field("many2one", "Source Location", required=True, relation="stock.location", index=True),
        "location_dest_id": Field("many2one", "Destination Location", required=True, relation="stock.location",
                                  index=True),
        "state": Field("selection", "Status", default="draft", selection=MOVE_STATES, readonly=True),
        "picking_id": Field("many2one", "Transfer", relation="stock.picking", index=True),
        "picking_type_id": Field("many2one", "Operation Type", relation="stock.picking.type"),
        "picking_code": Field("selection", "Type of Operation", selection=PICKING_CODES, compute=_move_picking_code),
        "partner_id": Field("many2one", "Destination Address", relation="res.partner"),
        "sale_line_id": Field("many2one", "Sale Line", relation="sale.order.line", index=True),
        "purchase_line_id": Field("many2one", "Purchase Order Line", relation="purchase.order.line", index=True),
        "date": Field("datetime", "Date Scheduled"),
        "picked": Field("boolean", "Picked", default=False),
        "is_inventory": Field("boolean", "Inventory", default=False),
        "procure_method": Field("selection", "Supply Method", default="make_to_stock", selection=(
            ("make_to_stock", "Default: Take From Stock"), ("make_to_order", "Advanced: Apply Procurement Rules"))),
        "move_line_ids": Field("one2many", "Operations", relation="stock.move.line", inverse_name="move_id"),
    }

    def _complete_vals(self, env: Env, vals: dict[str, Any]) -> dict[str, Any]:
        vals = dict(vals)
        vals.setdefault("date", env.now[:19])
        if "product_uom" not in vals and type(vals.get("product_id")) is int:
            vals["product_uom"] = product_template(self.registry, vals["product_id"]).get("uom_id")
        return vals

    def write_records(self, env: Env, ids: list[int], vals: Any) -> None:
        """Encoding a ``quantity`` by hand marks the move picked (it is what validation will move)."""
        if isinstance(vals, dict) and "quantity" in vals and "picked" not in vals:
            vals = {**vals, "picked": True}
        super().write_records(env, ids, vals)
        if isinstance(vals, dict) and {"quantity", "product_uom_qty"} & set(vals):
            for mid in ids:
                move = self.records[mid]
                if move.get("state") in ("confirmed", "partially_available", "assigned"):
                    self._set(env, mid, {"state": _reserved_state(move.get("quantity") or 0.0,
                                                                  move.get("product_uom_qty") or 0.0)})
            refresh_pickings(env, _pickings_of(env, ids))


class StockMoveLine(StockMemoMixin):
    """``stock.move.line``: where a move's reserved (then done) quantity is taken from."""

    _name = "stock.move.line"
    _description = "Product Moves (Stock Move Line)"
    _order = "id"
    _rec_name = None
    _fields: ClassVar[dict[str, Field]] = {
        "move_id": Field("many2one", "Stock Operation", relation="stock.move", index=True, ondelete="cascade"),
        "picking_id": Field("many2one", "Transfer", relation="stock.picking", index=True),
        "product_id": Field("many2one", "Product", relation="product.product", index=True, ondelete="cascade"),
        "product_uom_id": Field("many2one", "Unit", relation="uom.uom"),
        "location_id": Field("many2one", "From", required=True, relation="stock.location", index=True),
        "location_dest_id": Field("many2one", "To", required=True, relation="stock.location", index=True),
        "quantity": Field("float", "Quantity", default=0.0),
        "picked": Field("boolean", "Picked", default=False),
        "state": Field("selection", "Status", selection=MOVE_STATES, compute=lambda model, rec: (
            model.registry.models["stock.move"].records.get(rec.get("move_id") or 0, {}).get("state"))),
        "reference": Field("char", "Reference", compute=lambda model, rec: _move_reference(
            model.registry.models["stock.move"], model.registry.models["stock.move"].records.get(
                rec.get("move_id") or 0, {}))),
        "date": Field("datetime", "Date", required=True),
    }


class StockPicking(BaseModel):
    """``stock.picking`` (a transfer: WH/OUT/00001): state computed from its moves."""

    _name = "stock.picking"
    _description = "Transfer"
    _order = "priority desc, scheduled_date asc, id desc"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Reference", default="/", index=True),
        "origin": Field("char", "Source Document", index=True),
        "note": Field("html", "Notes"),
        "backorder_id": Field("many2one", "Back Order of", relation="stock.picking", index=True),
        "backorder_ids": Field("one2many", "Back Orders", relation="stock.picking", inverse_name="backorder_id"),
        "move_type": Field("selection", "Shipping Policy", required=True, default="direct", selection=(
            ("direct", "As soon as possible"), ("one", "When all products are ready"))),
        "state": Field("selection", "Status", default="draft", selection=PICKING_STATES, computed=True, index=True),
        "priority": Field("selection", "Priority", default="0", selection=(("0", "Normal"), ("1", "Urgent"))),
        "scheduled_date": Field("datetime", "Scheduled Date"),
        "date_deadline": Field("datetime", "Deadline"),
        "date_done": Field("datetime", "Date of Transfer", readonly=True),
        "location_id": Field("many2one", "Source Location", required=True, relation="stock.location"),
        "location_dest_id": Field("many2one", "Destination Location", required=True, relation="stock.location"),
        "move_ids": Field("one2many", "Stock Moves", relation="stock.move", inverse_name="picking_id"),
        "move_line_ids": Field("one2many", "Operations", relation="stock.move.line", inverse_name="picking_id"),
        "picking_type_id": Field("many2one", "Operation Type", required=True, relation="stock.picking.type"),
        "picking_type_code": Field("selection", "Type of Operation", selection=PICKING_CODES,
                                   compute=lambda model, rec: model.registry.models["stock.picking.type"].records.get(
                                       rec.get("picking_type_id") or 0, {}).get("code")),
        "partner_id": Field("many2one", "Contact", relation="res.partner"),
        "user_id": Field("many2one", "Responsible", relation="res.users"),
        "sale_id": Field("many2one", "Sales Order", relation="sale.order", index=True),
        "purchase_id": Field("many2one", "Purchase Orders", relation="purchase.order", index=True),
    }

    def _complete_vals(self, env: Env, vals: dict[str, Any]) -> dict[str, Any]:
        vals = dict(vals)
        ptype = self.registry.models["stock.picking.type"].records.get(vals.get("picking_type_id") or 0) \
            if type(vals.get("picking_type_id")) is int else None
        if ptype is not None:
            vals.setdefault("location_id", ptype.get("default_location_src_id"))
            vals.setdefault("location_dest_id", ptype.get("default_location_dest_id"))
            if vals.get("name", "/") == "/" and ptype.get("sequence_id"):
                sequences = cast(IrSequence, self.registry.models["ir.sequence"])
                vals["name"] = sequences.next_value(env, ptype["sequence_id"])
        vals.setdefault("scheduled_date", env.now[:19])
        return vals

    def _post_create(self, env: Env, ids: list[int]) -> None:
        refresh_pickings(env, ids)

    def _post_write(self, env: Env, ids: list[int], vals: dict[str, Any]) -> None:
        if "move_ids" in vals:
            refresh_pickings(env, ids)

    @api_records
    def action_confirm(self, env: Env, ids: Any) -> bool:
        """Confirm draft moves and reserve what is available; returns true."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        moves = self.registry.models["stock.move"]
        move_ids = [m for p in ids for m in sorted(moves._hash["picking_id"].get(p, ()))]
        confirm_moves(env, move_ids)
        assign_moves(env, move_ids)
        refresh_pickings(env, ids)
        return True

    @api_records
    def action_assign(self, env: Env, ids: Any) -> bool:
        """"Check Availability": reserve what is available for open moves; returns true."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        for pid in ids:
            if self.records[pid].get("state") == "draft":
                self.action_confirm(env, [pid])
        moves = self.registry.models["stock.move"]
        assign_moves(env, [m for p in ids for m in sorted(moves._hash["picking_id"].get(p, ()))])
        refresh_pickings(env, ids)
        return True

    @api_records
    def do_unreserve(self, env: Env, ids: Any) -> bool:
        """Release the reservations of the transfers' moves."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        moves = self.registry.models["stock.move"]
        unreserve_moves(env, [m for p in ids for m in sorted(moves._hash["picking_id"].get(p, ()))])
        refresh_pickings(env, ids)
        return True

    @api_records
    def button_validate(self, env: Env, ids: Any) -> Any:
        """Validate: move the reserved/encoded quantities; true, or the backorder wizard's action.

        As in Odoo, a transfer with less than its demand opens "Create Backorder?" unless the
        context says ``skip_backorder`` (then a backorder is created, except for the pickings in
        ``picking_ids_not_to_backorder``, whose remainder is cancelled).
        """
        ids = as_ids(ids)
        self._check_exist(env, ids)
        if env.context.get("skip_backorder"):
            no_backorder = set(env.context.get("picking_ids_not_to_backorder") or ())
            return validate_pickings(env, ids, backorder={p: p not in no_backorder for p in ids})
        return validate_pickings(env, ids, backorder=None)

    @api_records
    def action_cancel(self, env: Env, ids: Any) -> bool:
        """Cancel the transfers' open moves (releasing reservations)."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        moves = self.registry.models["stock.move"]
        cancel_moves(env, [m for p in ids for m in sorted(moves._hash["picking_id"].get(p, ()))])
        refresh_pickings(env, ids)
        return True


class StockBackorderConfirmation(BaseModel):
    """``stock.backorder.confirmation``: the "Create Backorder?" wizard ``button_validate`` opens."""

    _name = "stock.backorder.confirmation"
    _description = "Backorder Confirmation"
    _rec_name = None
    _fields: ClassVar[dict[str, Field]] = {
        "pick_ids": Field("many2many", "Transfers", relation="stock.picking"),
    }

    def _complete_vals(self, env: Env, vals: dict[str, Any]) -> dict[str, Any]:
        if "pick_ids" not in vals and env.context.get("button_validate_picking_ids"):
            return {**vals, "pick_ids": [[6, 0, list(env.context["button_validate_picking_ids"])]]}
        return vals

    @api_records
    def process(self, env: Env, ids: Any) -> bool:
        """"Create Backorder": validate what is there, the rest goes to a backorder."""
        picks = [p for w in as_ids(ids) for p in self.records[w].get("pick_ids") or ()]
        return bool(validate_pickings(env, picks, backorder=dict.fromkeys(picks, True)))

    @api_records
    def process_cancel_backorder(self, env: Env, ids: Any) -> bool:
        """"No Backorder": validate what is there, cancel the rest."""
        picks = [p for w in as_ids(ids) for p in self.records[w].get("pick_ids") or ()]
        return bool(validate_pickings(env, picks, backorder=dict.fromkeys(picks, False)))


# ====================================================================================== move engine
def _reserved_state(quantity: float, demand: float) -> str:
    if quantity >= demand - EPSILON:
        return "assigned"
    return "partially_available" if quantity > EPSILON else "confirmed"


def _pickings_of(env: Env, move_ids: Iterable[int]) -> list[int]:
    moves = env.registry.models["stock.move"]
    return sorted({moves.records[m]["picking_id"] for m in move_ids
                   if m in moves.records and moves.records[m].get("picking_id")})


def confirm_moves(env: Env, move_ids: Iterable[int]) -> None:
    """``_action_confirm``: draft moves become confirmed (waiting for availability)."""
    moves = env.registry.models["stock.move"]
    for mid in move_ids:
        if moves.records[mid].get("state") == "draft":
            moves._set(env, mid, {"state": "confirmed"})


def _move_line_for(env: Env, move: dict[str, Any], location_id: int) -> int | None:
    lines = env.registry.models["stock.move.line"]
    for lid in sorted(lines._hash["move_id"].get(move["id"], ())):
        if lines.records[lid].get("location_id") == location_id:
            return lid
    return None


def _add_move_line(env: Env, move: dict[str, Any], location_id: int, quantity: float) -> None:
    lines = env.registry.models["stock.move.line"]
    lid = _move_line_for(env, move, location_id)
    if lid is None:
        lines.create_records(env, [{
            "move_id": move["id"], "picking_id": move.get("picking_id"), "product_id": move["product_id"],
            "product_uom_id": move.get("product_uom"), "location_id": location_id,
            "location_dest_id": move["location_dest_id"], "quantity": qty_round(quantity), "date": env.now[:19]}])
    else:
        lines._set(env, lid, {"quantity": qty_round((lines.records[lid].get("quantity") or 0.0) + quantity)})


def _reserves(env: Env, move: dict[str, Any]) -> bool:
    registry = env.registry
    return is_storable(registry, move.get("product_id")) and not bypasses_reservation(registry, move.get("location_id"))


def assign_moves(env: Env, move_ids: Iterable[int]) -> None:
    """``_action_assign``: reserve available stock for open moves, oldest quants first."""
    registry = env.registry
    moves = registry.models["stock.move"]
    quants = registry.models["stock.quant"]
    for mid in move_ids:
        move = moves.records.get(mid)
        if move is None or move.get("state") not in ("confirmed", "waiting", "partially_available"):
            continue
        demand = move.get("product_uom_qty") or 0.0
        have = move.get("quantity") or 0.0
        need = demand - have
        if need <= EPSILON:
            moves._set(env, mid, {"state": "assigned"})
            continue
        if not _reserves(env, move):
            _add_move_line(env, move, move["location_id"], need)
            moves._set(env, mid, {"quantity": qty_round(demand), "state": "assigned"})
            continue
        source = location_path(registry, move["location_id"])
        candidates = sorted(
            (quants.records[q] for q in quants._hash["product_id"].get(move["product_id"], ())),
            key=lambda q: (q.get("in_date") or "", q["id"]))
        for q in candidates:
            loc = registry.models["stock.location"].records.get(q.get("location_id") or 0, {})
            if loc.get("usage") != "internal" or not (loc.get("parent_path") or "").startswith(source):
                continue
            free = (q.get("quantity") or 0.0) - (q.get("reserved_quantity") or 0.0)
            if free <= EPSILON:
                continue
            take = min(free, need)
            update_quant(env, move["product_id"], q["location_id"], reserved=take)
            _add_move_line(env, move, q["location_id"], take)
            need -= take
            if need <= EPSILON:
                break
        got = qty_round(demand - max(need, 0.0))
        moves._set(env, mid, {"quantity": got, "state": _reserved_state(got, demand)})


def unreserve_moves(env: Env, move_ids: Iterable[int]) -> None:
    """``_do_unreserve``: give reserved quantities back to the quants."""
    registry = env.registry
    moves = registry.models["stock.move"]
    lines = registry.models["stock.move.line"]
    for mid in move_ids:
        move = moves.records.get(mid)
        if move is None or move.get("state") in ("done", "cancel", "draft"):
            continue
        reserving = _reserves(env, move)
        for lid in sorted(lines._hash["move_id"].get(mid, ())):
            line = lines.records[lid]
            if reserving:
                update_quant(env, move["product_id"], line["location_id"], reserved=-(line.get("quantity") or 0.0))
            lines.unlink_records(env, [lid])
        moves._set(env, mid, {"quantity": 0.0, "picked": False, "state": "confirmed"})


def cancel_moves(env: Env, move_ids: Iterable[int]) -> None:
    """``_action_cancel``: release reservations and cancel moves that are not done."""
    moves = env.registry.models["stock.move"]
    open_ids = [m for m in move_ids if moves.records.get(m, {}).get("state") not in ("done", "cancel")]
    unreserve_moves(env, open_ids)
    for mid in open_ids:
        moves._set(env, mid, {"state": "cancel", "quantity": 0.0})
    _notify(env, open_ids)


def done_moves(env: Env, move_ids: Iterable[int]) -> None:
    """``_action_done``: move each move's ``quantity`` from its source to its destination.

    Reserved quantities leave the quants they were reserved on; anything encoded beyond the
    reservation leaves the move's source location (which may go negative, as Odoo allows).
    A move with nothing to move is cancelled, except inventory moves.
    """
    registry = env.registry
    moves = registry.models["stock.move"]
    lines = registry.models["stock.move.line"]
    done: list[int] = []
    for mid in move_ids:
        move = moves.records.get(mid)
        if move is None or move.get("state") in ("done", "cancel"):
            continue
        qty = move.get("quantity") or 0.0
        if qty <= EPSILON and not move.get("is_inventory"):
            unreserve_moves(env, [mid])
            moves._set(env, mid, {"state": "cancel"})
            done.append(mid)
            continue
        reserving = _reserves(env, move)
        storable = is_storable(registry, move["product_id"])
        remaining = qty
        drawn: set[int] = set()
        for lid in sorted(lines._hash["move_id"].get(mid, ())):
            line = lines.records[lid]
            line_qty = line.get("quantity") or 0.0
            take = min(line_qty, remaining)
            if storable:
                update_quant(env, move["product_id"], line["location_id"], quantity=-take,
                             reserved=-line_qty if reserving else 0.0)
                drawn.add(line["location_id"])
            lines._set(env, lid, {"quantity": qty_round(take), "picked": True})
            remaining -= take
        if remaining > EPSILON:
            if storable:
                update_quant(env, move["product_id"], move["location_id"], quantity=-remaining)
                drawn.add(move["location_id"])
            _add_move_line(env, move, move["location_id"], remaining)
        if storable:
            update_quant(env, move["product_id"], move["location_dest_id"], quantity=qty)
        moves._set(env, mid, {"state": "done", "picked": True, "date": env.now})
        done.append(mid)
        for location_id in sorted(drawn):
            free_reservation(env, move["product_id"], location_id)
    _notify(env, done)


def free_reservation(env: Env, product_id: int, location_id: int) -> None:
    """``_free_reservation``: when a quant holds less than is reserved on it, the newest
    reservations there are released (and reserved again from what is left elsewhere)."""
    registry = env.registry
    quants = cast(StockQuant, registry.models["stock.quant"])
    qid = quants.find(product_id, location_id)
    if qid is None or registry.models["stock.location"].records[location_id].get("usage") != "internal":
        return
    quant = quants.records[qid]
    excess = (quant.get("reserved_quantity") or 0.0) - max(quant.get("quantity") or 0.0, 0.0)
    if excess <= EPSILON:
        return
    lines = registry.models["stock.move.line"]
    moves = registry.models["stock.move"]
    holders = sorted({lines.records[lid]["move_id"] for lid in lines._hash["product_id"].get(product_id, ())
                      if lines.records[lid].get("location_id") == location_id
                      and moves.records.get(lines.records[lid].get("move_id") or 0, {}).get("state")
                      in ("partially_available", "assigned")}, reverse=True)
    released: list[int] = []
    for mid in holders:
        if excess <= EPSILON:
            break
        held = sum(lines.records[lid].get("quantity") or 0.0 for lid in lines._hash["move_id"].get(mid, ())
                   if lines.records[lid].get("location_id") == location_id)
        released.append(mid)
        excess -= held
    unreserve_moves(env, released)
    assign_moves(env, released)
    refresh_pickings(env, _pickings_of(env, released))


def _split_remainder(env: Env, mid: int) -> int | None:
    """Split the undelivered part of a move into a new move (``_split``); returns it, if any."""
    moves = env.registry.models["stock.move"]
    move = moves.records[mid]
    demand = move.get("product_uom_qty") or 0.0
    qty = move.get("quantity") or 0.0
    rest = qty_round(demand - qty)
    if rest <= EPSILON:
        return None
    moves._set(env, mid, {"product_uom_qty": qty_round(qty)})
    copy = {k: move.get(k) for k in ("name", "origin", "product_id", "product_uom", "location_id", "location_dest_id",
                                     "picking_type_id", "partner_id", "sale_line_id", "purchase_line_id",
                                     "procure_method", "sequence")}
    return moves.create_records(env, [{**copy, "product_uom_qty": rest, "quantity": 0.0, "state": "confirmed",
                                       "picking_id": move.get("picking_id")}])[0]


def validate_pickings(env: Env, picking_ids: list[int], backorder: dict[int, bool] | None) -> Any:
    """Validate transfers (see ``StockPicking.button_validate``)."""
    registry = env.registry
    pickings = cast(StockPicking, registry.models["stock.picking"])
    moves = registry.models["stock.move"]
    todo = [p for p in dict.fromkeys(picking_ids) if pickings.records[p].get("state") not in ("done", "cancel")]
    for pid in todo:
        if pickings.records[pid].get("state") == "draft":
            pickings.action_confirm(env, [pid])

    def open_moves(pid: int) -> list[int]:
        return [m for m in sorted(moves._hash["picking_id"].get(pid, ()))
                if moves.records[m].get("state") not in ("done", "cancel")]

    for pid in todo:
        if all((moves.records[m].get("quantity") or 0.0) <= EPSILON for m in open_moves(pid)):
            raise UserError(NO_QUANTITY_ERROR)
    short = [pid for pid in todo if any(
        (moves.records[m].get("quantity") or 0.0) < (moves.records[m].get("product_uom_qty") or 0.0) - EPSILON
        for m in open_moves(pid))]
    if short and backorder is None:
        return {
            "name": "Create Backorder?", "type": "ir.actions.act_window", "view_mode": "form",
            "res_model": "stock.backorder.confirmation", "views": [[False, "form"]], "view_id": False,
            "target": "new",
            "context": {"button_validate_picking_ids": todo, "default_pick_ids": [[4, p] for p in short]},
        }
    for pid in todo:
        remainder = [r for m in open_moves(pid) if (r := _split_remainder(env, m)) is not None]
        done_moves(env, [m for m in open_moves(pid) if m not in remainder])
        pickings._set(env, pid, {"date_done": env.now})
        if remainder:
            if backorder and backorder.get(pid):
                make_backorder(env, pid, remainder)
            else:
                cancel_moves(env, remainder)
        refresh_pickings(env, [pid])
    return True


def make_backorder(env: Env, picking_id: int, move_ids: list[int]) -> int:
    """``_create_backorder``: a new transfer for the remaining moves, then try to reserve them."""
    pickings = env.registry.models["stock.picking"]
    moves = env.registry.models["stock.move"]
    pick = pickings.records[picking_id]
    copy = {k: pick.get(k) for k in ("origin", "move_type", "picking_type_id", "location_id", "location_dest_id",
                                     "partner_id", "sale_id", "purchase_id")}
    copy["scheduled_date"] = to_wire_datetime(pick.get("scheduled_date")) or False
    new = pickings.create_records(env, [{**copy, "backorder_id": picking_id}])[0]
    for mid in move_ids:
        moves._set(env, mid, {"picking_id": new})
    assign_moves(env, move_ids)
    refresh_pickings(env, [new, picking_id])
    return new


_SORT_MAP = {"assigned": 4, "waiting": 3, "partially_available": 2, "confirmed": 1}


def relevant_move_state(moves: list[dict[str, Any]], move_type: str) -> str:
    """Odoo's ``_get_relevant_state_among_moves`` for the open moves of one picking."""
    todo = [m for m in moves if m.get("state") not in ("cancel", "done")
            and not (m.get("state") == "assigned" and not m.get("product_uom_qty"))]
    todo.sort(key=lambda m: (_SORT_MAP.get(m.get("state") or "", 0), m.get("product_uom_qty") or 0.0))
    if not todo:
        return "assigned"
    first = todo[0]
    if move_type == "one":
        if all(not m.get("product_uom_qty") for m in todo):
            return "assigned"
        if first.get("state") == "confirmed":
            return "confirmed" if first.get("product_uom_qty") else "assigned"
        if first.get("state") == "partially_available":
            return "confirmed"
        return first.get("state") or "draft"
    if first.get("state") != "assigned" and any(m.get("state") in ("assigned", "partially_available") for m in todo):
        return "partially_available"
    last = todo[-1]
    if last.get("state") == "confirmed" and not last.get("product_uom_qty"):
        return "assigned"
    return last.get("state") or "draft"


def picking_state(moves: list[dict[str, Any]], move_type: str) -> str:
    """A picking's state from its moves (``stock.picking._compute_state``)."""
    if not moves:
        return "draft"
    states = [m.get("state") for m in moves]
    if "draft" in states:
        return "draft"
    if all(s == "cancel" for s in states):
        return "cancel"
    if all(s in ("cancel", "done") for s in states):
        return "done"
    relevant = relevant_move_state(moves, move_type)
    return "assigned" if relevant == "partially_available" else relevant


def refresh_pickings(env: Env, picking_ids: Iterable[int]) -> None:
    """Recompute the state of transfers, then let sales and purchases recompute theirs."""
    registry = env.registry
    pickings = registry.models["stock.picking"]
    moves = registry.models["stock.move"]
    sales: set[int] = set()
    purchases: set[int] = set()
    for pid in picking_ids:
        pick = pickings.records.get(pid)
        if pick is None:
            continue
        recs = [moves.records[m] for m in sorted(moves._hash["picking_id"].get(pid, ()))]
        pickings._set(env, pid, {"state": picking_state(recs, pick.get("move_type") or "direct")})
        if pick.get("sale_id"):
            sales.add(pick["sale_id"])
        if pick.get("purchase_id"):
            purchases.add(pick["purchase_id"])
    if sales:
        cast(StockListener, registry.models["sale.order"]).stock_changed(env, sorted(sales))
    if purchases:
        cast(StockListener, registry.models["purchase.order"]).stock_changed(env, sorted(purchases))


def _notify(env: Env, move_ids: list[int]) -> None:
    refresh_pickings(env, _pickings_of(env, move_ids))


MODELS: tuple[type[BaseModel], ...] = (
    StockLocation, StockPickingType, StockWarehouse, StockQuant, StockMove, StockMoveLine, StockPicking,
    StockBackorderConfirmation,
)
