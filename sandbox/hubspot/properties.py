"""The properties API v3: list, read, create and batch-read property definitions."""
from __future__ import annotations

import re

from sandbox.core import Request, Response
from sandbox.hubspot.base import HubSpotBase
from sandbox.hubspot.catalog import FIELD_TYPES_FOR, MAX_UNIQUE_PROPERTIES, PROPERTY_NAME, PropertyDef
from sandbox.hubspot.errors import std_error


class PropertiesApi(HubSpotBase):
    """Handlers of /crm/v3/properties/{T}."""

    def _h_prop_list(self, request: Request, m: re.Match[str]) -> Response:
        store = self._store(m["t"])
        if self._bool_arg(request, "archived"):
            return Response(200, {"results": []})
        return Response(200, {"results": [p.to_json() for p in store.properties.values()]})

    def _h_prop_get(self, request: Request, m: re.Match[str]) -> Response:
        store = self._store(m["t"])
        pdef = store.properties.get(m["name"])
        if pdef is None:
            raise self._abort(404, "OBJECT_NOT_FOUND",
                              f"Unable to find property with name {m['name']} for object type "
                              f"{store.otype.type_id}.")
        return Response(200, pdef.to_json())

    def _h_prop_groups(self, request: Request, m: re.Match[str]) -> Response:
        store = self._store(m["t"])
        names = sorted({p.group for p in store.properties.values()})
        return Response(200, {"results": [{"name": n, "label": n.replace("information", " information").title(),
                                           "displayOrder": i, "archived": False} for i, n in enumerate(names)]})

    def _h_prop_batch_read(self, request: Request, m: re.Match[str]) -> Response:
        store = self._store(m["t"])
        started = self._now_ms()
        inputs = self._inputs(self._body(request))
        results, missing = [], []
        for item in inputs:
            pdef = store.properties.get(str(item.get("name", "")))
            if pdef is None:
                missing.append(str(item.get("name", "")))
            else:
                results.append(pdef.to_json())
        errors = [std_error("OBJECT_NOT_FOUND", f"Unable to find property with name {n} for object type "
                            f"{store.otype.type_id}.", {"name": [n]}) for n in missing]
        return Response(207 if errors else 200, self._batch_body(results, errors, started))

    def _h_prop_create(self, request: Request, m: re.Match[str]) -> Response:
        store = self._store(m["t"])
        body = self._body(request)
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
        if missing:
            raise self._abort(400, "VALIDATION_ERROR", f"Missing required fields: {', '.join(missing)}",
                              errors=[{"message": f"{k} is required", "code": "REQUIRED_FIELD", "in": k}
                                      for k in missing])
        name, ptype, ftype = str(body["name"]), str(body["type"]), str(body["fieldType"])
        if name in store.properties:
            raise self._abort(409, "OBJECT_ALREADY_EXISTS", f"Property named '{name}' already exists.",
                              context={"name": [name]})
        if not PROPERTY_NAME.match(name):
            raise self._abort(400, "VALIDATION_ERROR",
                              f"Property name '{name}' is invalid: use lowercase letters, digits and underscores, "
                              "starting with a letter.")
        if ptype not in FIELD_TYPES_FOR:
            raise self._abort(400, "VALIDATION_ERROR", f"Invalid property type '{ptype}'.")
        if ftype not in FIELD_TYPES_FOR[ptype]:
            raise self._abort(400, "VALIDATION_ERROR",
                              f"fieldType '{ftype}' is not valid for type '{ptype}'; "
                              f"use one of {sorted(FIELD_TYPES_FOR[ptype])}.")
        groups = {p.group for p in store.properties.values()}
        if body["groupName"] not in groups:
            raise self._abort(400, "VALIDATION_ERROR",
                              f"Property group '{body['groupName']}' does not exist for {store.otype.name}.")
        unique = bool(body.get("hasUniqueValue", False))
        if unique and ptype not in ("string", "number"):
            raise self._abort(400, "VALIDATION_ERROR", "Only string and number properties can have unique values.")
        if unique and len(store.unique) >= MAX_UNIQUE_PROPERTIES:
            raise self._abort(400, "VALIDATION_ERROR",
                              f"An object can have at most {MAX_UNIQUE_PROPERTIES} unique value properties.")
        options = body.get("options") or []
        if ptype == "enumeration" and not options and ftype != "booleancheckbox":
            raise self._abort(400, "VALIDATION_ERROR", "Enumeration properties need options.")
        pdef = PropertyDef(name, str(body["label"]), ptype, ftype, str(body["groupName"]), unique=unique,
                           hubspot_defined=False, options=[{"hidden": False, **o} for o in options],
                           description=str(body.get("description", "")), created_ms=self._now_ms(),
                           display_order=int(body.get("displayOrder", -1)))
        self._add_property(store, pdef)
        return Response(201, pdef.to_json())
