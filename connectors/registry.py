"""Connector registry: name -> connector class, built in or from the ``concord.connectors``
entry-point group, so a third-party package can add a product without touching Concord."""
from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

_BUILTIN = {
    "hubspot": "connectors.hubspot:HubSpotConnector",
    "odoo": "connectors.odoo:OdooConnector",
}


class UnknownConnector(KeyError):
    """No connector is registered under that name."""


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)


def names() -> list[str]:
    """Every connector name available (built in and from entry points)."""
    found = set(_BUILTIN)
    found.update(ep.name for ep in entry_points(group="concord.connectors"))
    return sorted(found)


def get(name: str) -> Any:
    """The connector class registered under ``name``."""
    for ep in entry_points(group="concord.connectors"):
        if ep.name == name:
            return ep.load()
    if name in _BUILTIN:
        return _load(_BUILTIN[name])
    raise UnknownConnector(f"unknown connector {name!r}; available: {', '.join(names())}")
