"""Custom properties a mapping needs (``options.custom_fields``), and their creation.

``custom_fields`` is ``{name: {type: string|number|date|datetime|bool, unique: bool, label, group}}``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.base import EntitySpec, ValidationError

# Concord type -> (HubSpot property type, fieldType), per the properties API's type table.
TYPES: dict[str, tuple[str, str]] = {
    "string": ("string", "text"),
    "number": ("number", "number"),
    "date": ("date", "date"),
    "datetime": ("datetime", "date"),
    "bool": ("bool", "booleancheckbox"),
}
# Default property group of each standard object.
GROUPS = {
    "companies": "companyinformation", "contacts": "contactinformation", "deals": "dealinformation",
    "products": "productinformation", "line_items": "lineiteminformation", "tickets": "ticketinformation",
    "quotes": "quoteinformation",
}
# booleancheckbox properties need their two options spelled out.
BOOL_OPTIONS = [{"label": "Yes", "value": "true", "displayOrder": 0, "hidden": False},
                {"label": "No", "value": "false", "displayOrder": 1, "hidden": False}]


@dataclass(frozen=True)
class PropertyDef:
    """One custom property a mapping needs on one object."""

    object: str
    name: str
    type: str
    unique: bool
    label: str
    group: str

    def describe(self) -> str:
        return f"{self.object}.{self.name} ({self.type}{', unique' if self.unique else ''})"

    def create_body(self) -> dict[str, Any]:
        """The ``PropertyCreate`` body for POST /crm/v3/properties/{object}."""
        hs_type, field_type = TYPES[self.type]
        body: dict[str, Any] = {"name": self.name, "label": self.label, "type": hs_type,
                                "fieldType": field_type, "groupName": self.group,
                                "hasUniqueValue": self.unique}
        if hs_type == "bool":
            body["options"] = BOOL_OPTIONS
        return body


def required_properties(spec: EntitySpec) -> list[PropertyDef]:
    """The custom properties ``spec`` declares; ValidationError names a bad declaration."""
    declared = spec.options.get("custom_fields") or {}
    if not isinstance(declared, Mapping):
        raise ValidationError(f"hubspot: {spec.entity}: custom_fields must be a mapping", system="hubspot",
                              field="custom_fields")
    out = []
    for name, raw in declared.items():
        conf = raw or {}
        kind = str(conf.get("type", "string"))
        if kind not in TYPES:
            raise ValidationError(
                f"hubspot: {spec.entity}: custom field {name!r} has type {kind!r}; expected one of "
                f"{', '.join(TYPES)}", system="hubspot", field=str(name))
        out.append(PropertyDef(
            object=spec.object, name=str(name), type=kind, unique=bool(conf.get("unique", False)),
            label=str(conf.get("label") or str(name).replace("_", " ").title()),
            group=str(conf.get("group") or GROUPS.get(spec.object, f"{spec.object.rstrip('s')}information")),
        ))
    return out
