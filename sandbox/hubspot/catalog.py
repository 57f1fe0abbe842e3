"""What HubSpot's CRM has: object types, association types, standard properties and API limits."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sandbox.hubspot.values import iso

SEARCH_PAGE_MAX = 200
SEARCH_RESULT_CAP = 10_000
SEARCH_BODY_MAX_CHARS = 3_000
SEARCH_MAX_GROUPS = 5
SEARCH_MAX_FILTERS_PER_GROUP = 6
SEARCH_MAX_FILTERS = 18
LIST_PAGE_MAX = 100
BATCH_MAX_INPUTS = 100
MAX_UNIQUE_PROPERTIES = 10
ASSOC_PAGE_DEFAULT = 500
FIRST_OBJECT_ID = 10_000_000_001  # real ids are 10-12 digit numbers; never collide with small test ints
NOMINAL_DAILY_LIMIT = 1_000_000  # Enterprise figure, reported (not enforced) when daily_limit is None

NOT_SUBSCRIBABLE = {"hs_lastmodifieddate", "lastmodifieddate", "hs_object_id", "createdate"}


@dataclass(frozen=True)
class ObjectType:
    """One CRM object type: its path name, type id and the names HubSpot uses for it."""

    name: str  # path segment, e.g. "companies"
    type_id: str  # e.g. "0-2"
    singular: str  # webhook prefix and association names, e.g. "company"
    upper: str  # as in "Could not get some COMPANY objects"
    modified_prop: str  # contacts use lastmodifieddate, the others hs_lastmodifieddate
    group: str  # default property group
    default_props: tuple[str, ...]
    search_text_props: tuple[str, ...]


OBJECT_TYPES: dict[str, ObjectType] = {
    t.name: t
    for t in (
        ObjectType("contacts", "0-1", "contact", "CONTACT", "lastmodifieddate", "contactinformation",
                   ("firstname", "lastname", "email"), ("firstname", "lastname", "email", "phone", "company")),
        ObjectType("companies", "0-2", "company", "COMPANY", "hs_lastmodifieddate", "companyinformation",
                   ("name", "domain"), ("name", "domain", "website", "phone")),
        ObjectType("deals", "0-3", "deal", "DEAL", "hs_lastmodifieddate", "dealinformation",
                   ("dealname", "amount", "closedate", "pipeline", "dealstage"), ("dealname",)),
        ObjectType("products", "0-7", "product", "PRODUCT", "hs_lastmodifieddate", "productinformation",
                   ("name", "description", "price"), ("name", "hs_sku", "description")),
        ObjectType("line_items", "0-8", "line_item", "LINE_ITEM", "hs_lastmodifieddate", "lineiteminformation",
                   ("quantity", "amount", "price"), ("name", "hs_sku")),
    )
}
_TYPE_ALIASES: dict[str, str] = {}
for _t in OBJECT_TYPES.values():
    for _alias in (_t.name, _t.type_id, _t.singular, _t.name.replace("_", "")):
        _TYPE_ALIASES[_alias.lower()] = _t.name
_TYPE_ALIASES["lineitems"] = "line_items"
BY_TYPE_ID = {t.type_id: t for t in OBJECT_TYPES.values()}


def resolve_object_type(segment: str) -> ObjectType | None:
    """The object type named by a path segment (``companies``, ``0-2``, ``company``), or None."""
    name = _TYPE_ALIASES.get(segment.lower())
    return OBJECT_TYPES[name] if name else None


@dataclass(frozen=True)
class AssocType:
    """A HUBSPOT_DEFINED association type: direction, label (Primary or none) and its inverse."""

    type_id: int
    from_type: str
    to_type: str
    label: str | None
    inverse: int


# Type ids per notes §1.9 (Line item -> Deal = 20 is UNVERIFIED there; used as documented).
ASSOC_TYPES: dict[int, AssocType] = {
    a.type_id: a
    for a in (
        AssocType(341, "0-3", "0-2", None, 342), AssocType(342, "0-2", "0-3", None, 341),
        AssocType(5, "0-3", "0-2", "Primary", 6), AssocType(6, "0-2", "0-3", "Primary", 5),
        AssocType(19, "0-3", "0-8", None, 20), AssocType(20, "0-8", "0-3", None, 19),
        AssocType(3, "0-3", "0-1", None, 4), AssocType(4, "0-1", "0-3", None, 3),
        AssocType(279, "0-1", "0-2", None, 280), AssocType(280, "0-2", "0-1", None, 279),
        AssocType(1, "0-1", "0-2", "Primary", 2), AssocType(2, "0-2", "0-1", "Primary", 1),
    )
}
DEFAULT_ASSOC: dict[tuple[str, str], int] = {
    (a.from_type, a.to_type): a.type_id for a in ASSOC_TYPES.values() if a.label is None
}
# A primary association always comes with the unlabeled one (notes §1.9).
PRIMARY_IMPLIES = {5: 341, 6: 342, 1: 279, 2: 280}


def assoc_v3_name(a: AssocType) -> str:
    """The ``type`` string of v3 ``?associations=`` results, e.g. deal_to_company_unlabeled."""
    base = f"{BY_TYPE_ID[a.from_type].singular}_to_{BY_TYPE_ID[a.to_type].singular}"
    has_primary = any(x.label and x.from_type == a.from_type and x.to_type == a.to_type
                      for x in ASSOC_TYPES.values())
    return f"{base}_unlabeled" if has_primary and a.label is None else base


@dataclass
class PropertyDef:
    """A property definition as the properties API describes it."""

    name: str
    label: str
    type: str  # string | number | date | datetime | enumeration | bool | phone_number
    field_type: str
    group: str
    unique: bool = False
    hubspot_defined: bool = True
    read_only: bool = False
    calculated: bool = False
    options: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""
    created_ms: int = 0
    display_order: int = -1

    def to_json(self) -> dict[str, Any]:
        """The ``Property`` schema of the properties v3 API."""
        stamp = iso(self.created_ms)
        return {
            "name": self.name, "label": self.label, "type": self.type, "fieldType": self.field_type,
            "description": self.description, "groupName": self.group, "options": list(self.options),
            "displayOrder": self.display_order, "calculated": self.calculated, "externalOptions": False,
            "hasUniqueValue": self.unique, "hidden": False, "hubspotDefined": self.hubspot_defined,
            "formField": not self.read_only, "archived": False, "dataSensitivity": "non_sensitive",
            "createdAt": stamp, "updatedAt": stamp,
            "modificationMetadata": {"archivable": not self.hubspot_defined,
                                     "readOnlyDefinition": self.hubspot_defined,
                                     "readOnlyValue": self.read_only},
        }


FIELD_TYPES_FOR = {
    "string": {"text", "textarea", "html", "file", "phonenumber", "calculation_equation"},
    "phone_number": {"phonenumber", "text"},
    "number": {"number", "calculation_equation"},
    "date": {"date"},
    "datetime": {"date"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox", "calculation_equation"},
    "bool": {"booleancheckbox", "calculation_equation"},
}
PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


def opts(*values: str) -> list[dict[str, Any]]:
    """Enumeration options in the properties API shape."""
    return [{"label": v.replace("_", " ").title(), "value": v, "displayOrder": i, "hidden": False}
            for i, v in enumerate(values)]


_LIFECYCLE = opts("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
                  "customer", "evangelist", "other")
_DEAL_STAGES = opts("appointmentscheduled", "qualifiedtobuy", "presentationscheduled",
                    "decisionmakerboughtin", "contractsent", "closedwon", "closedlost")
_S, _N, _D, _DT, _E = "string", "number", "date", "datetime", "enumeration"
# (name, label, type, fieldType, options, unique, read_only, calculated)
_STANDARD_PROPS: dict[str, list[tuple[Any, ...]]] = {
    "companies": [
        ("name", "Company name", _S, "text"), ("domain", "Company domain name", _S, "text"),
        ("website", "Website URL", _S, "text"), ("phone", "Phone number", _S, "phonenumber"),
        ("address", "Street address", _S, "text"), ("address2", "Street address 2", _S, "text"),
        ("city", "City", _S, "text"), ("zip", "Postal code", _S, "text"), ("state", "State/Region", _S, "text"),
        ("country", "Country/Region", _S, "text"), ("industry", "Industry", _S, "text"),
        ("description", "Description", _S, "textarea"), ("numberofemployees", "Number of Employees", _N, "number"),
        ("annualrevenue", "Annual Revenue", _N, "number"),
        ("lifecyclestage", "Lifecycle Stage", _E, "radio", _LIFECYCLE),
        ("hubspot_owner_id", "Company owner", _S, "text"),
    ],
    "contacts": [
        ("email", "Email", _S, "text", None, True), ("firstname", "First Name", _S, "text"),
        ("lastname", "Last Name", _S, "text"), ("phone", "Phone Number", _S, "phonenumber"),
        ("mobilephone", "Mobile Phone Number", _S, "phonenumber"), ("company", "Company Name", _S, "text"),
        ("website", "Website URL", _S, "text"), ("jobtitle", "Job Title", _S, "text"),
        ("address", "Street Address", _S, "text"), ("city", "City", _S, "text"), ("zip", "Postal Code", _S, "text"),
        ("state", "State/Region", _S, "text"), ("country", "Country/Region", _S, "text"),
        ("lifecyclestage", "Lifecycle Stage", _E, "radio", _LIFECYCLE),
    ],
    "deals": [
        ("dealname", "Deal Name", _S, "text"), ("dealstage", "Deal Stage", _E, "radio", _DEAL_STAGES),
        ("pipeline", "Pipeline", _E, "select", opts("default")), ("amount", "Amount", _N, "number"),
        ("closedate", "Close Date", _DT, "date"), ("deal_currency_code", "Currency", _S, "text"),
        ("description", "Deal Description", _S, "textarea"),
        ("dealtype", "Deal Type", _E, "radio", opts("newbusiness", "existingbusiness")),
        ("hubspot_owner_id", "Deal owner", _S, "text"),
    ],
    "products": [
        ("name", "Name", _S, "text"), ("price", "Unit price", _N, "number"), ("hs_sku", "SKU", _S, "text"),
        ("description", "Description", _S, "textarea"), ("hs_cost_of_goods_sold", "Unit cost", _N, "number"),
        ("hs_product_type", "Product type", _E, "select", opts("inventory", "non_inventory", "service")),
    ],
    "line_items": [
        ("name", "Name", _S, "text"), ("quantity", "Quantity", _N, "number"), ("price", "Unit price", _N, "number"),
        # amount ("Net price") is calculated by HubSpot: price * quantity - discounts, read-only.
        ("amount", "Net price", _N, "number", None, False, True, True),
        ("hs_product_id", "Product ID", _S, "text"), ("hs_sku", "SKU", _S, "text"),
        ("discount", "Unit discount", _N, "number"), ("hs_discount_percentage", "Discount Percentage", _N, "number"),
        ("description", "Description", _S, "textarea"),
    ],
}


def standard_properties(otype: ObjectType, now_ms: int) -> dict[str, PropertyDef]:
    """The HubSpot-defined properties of an object type, system ones included."""
    props: dict[str, PropertyDef] = {}
    for order, row in enumerate(_STANDARD_PROPS[otype.name]):
        name, label, ptype, ftype, *rest = row
        options, unique, read_only, calculated = [*rest, None, False, False, False][:4]
        props[name] = PropertyDef(name, label, ptype, ftype, otype.group, unique=bool(unique),
                                  read_only=bool(read_only), calculated=bool(calculated),
                                  options=list(options or []), created_ms=now_ms, display_order=order)
    for name, label, ptype, ftype in (("hs_object_id", "Record ID", _N, "number"),
                                      ("createdate", "Create Date", _DT, "date"),
                                      (otype.modified_prop, "Last Modified Date", _DT, "date")):
        props[name] = PropertyDef(name, label, ptype, ftype, otype.group, read_only=True,
                                  unique=name == "hs_object_id", created_ms=now_ms)
    return props
