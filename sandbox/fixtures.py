"""Shared by `concord demo`, the end-to-end tests and the benchmarks: a config file pointing at
the simulators, and seed data with some customers on both sides.

The simulators may run in this process (HubSpotSimulator / OdooSimulator objects) or in another
one: :func:`write_config` only needs their addresses and credentials (:class:`HubSpotAccess`,
:class:`OdooAccess`).
"""
from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ruamel.yaml import YAML

from sandbox.hubspot import HubSpotSimulator
from sandbox.odoo import OdooSimulator


class HubSpotLike(Protocol):
    """Where a HubSpot (simulator) answers and the credentials it accepts."""

    @property
    def base_url(self) -> str: ...
    @property
    def token(self) -> str: ...
    @property
    def client_secret(self) -> str: ...


class OdooLike(Protocol):
    """Where an Odoo (simulator) answers and the credentials it accepts."""

    @property
    def base_url(self) -> str: ...
    @property
    def db(self) -> str: ...
    @property
    def login(self) -> str: ...
    @property
    def password(self) -> str: ...


@dataclass(frozen=True)
class HubSpotAccess:
    """A HubSpot simulator running elsewhere (another process), as a config needs it."""

    base_url: str
    token: str = "sim-hubspot-token"
    client_secret: str = "sim-hubspot-secret"


@dataclass(frozen=True)
class OdooAccess:
    """An Odoo simulator running elsewhere (another process), as a config needs it."""

    base_url: str
    db: str = "concord"
    login: str = "admin"
    password: str = "sim-odoo-key"


# The customer pipeline as the demo and most tests run it (config.example.yaml's choices).
DEFAULT_CUSTOMER: dict[str, Any] = {
    "direction": "both",
    "conflict": "newest_wins",
    "owner": {"credit_limit": "erp", "balance_due": "erp", "customer_code": "erp"},
    "match_on": ["email"],
    "every": "5m",
}

HEADER = "# Written for the local simulators: their addresses and credentials (not real secrets).\n"

SHARED_CITIES = [("Berlin", "DE"), ("Lyon", "FR"), ("Austin", "US"), ("Leeds", "GB"), ("Graz", "AT")]
COUNTRY_NAMES = {"DE": "Germany", "FR": "France", "US": "United States", "GB": "United Kingdom", "AT": "Austria"}


def config_data(hub: HubSpotLike, odoo: OdooLike, state_url: str, *, customer: Mapping[str, Any] | None = None,
                crm: Mapping[str, Any] | None = None, erp: Mapping[str, Any] | None = None,
                extra: Mapping[str, Any] | None = None, log_level: str = "warning") -> dict[str, Any]:
    """The config as a dict: both simulators, the customer pipeline (``customer`` overrides the
    default keys; a None value drops a key), plus ``crm``/``erp`` settings and top-level ``extra``."""
    cust = {**DEFAULT_CUSTOMER, **(customer or {})}
    data: dict[str, Any] = {
        "state": {"url": state_url},
        "crm": {"connector": "hubspot", "base_url": hub.base_url, "token": hub.token,
                "client_secret": hub.client_secret, **(crm or {})},
        "erp": {"connector": "odoo", "url": odoo.base_url, "db": odoo.db, "username": odoo.login,
                "api_key": odoo.password, **(erp or {})},
        "sync": {"customer": {k: v for k, v in cust.items() if v is not None}},
        "logging": {"level": log_level},
    }
    for key, value in (extra or {}).items():
        data[key] = {**data[key], **value} if isinstance(data.get(key), dict) and isinstance(value, dict) else value
    return data


def write_config(folder: Path, hub: HubSpotLike, odoo: OdooLike, state_url: str, *, name: str = "concord.yaml",
                 **options: Any) -> Path:
    """Write the config a user would write for the simulators; ``options`` as for :func:`config_data`."""
    yaml = YAML()
    yaml.default_flow_style = False
    buf = io.StringIO()
    yaml.dump(config_data(hub, odoo, state_url, **options), buf)
    path = folder / name
    path.write_text(HEADER + buf.getvalue())
    return path


def country_ids(odoo: OdooSimulator) -> dict[str, int]:
    """Odoo's res.country ids by ISO code."""
    return {r["code"]: r["id"] for r in odoo.all("res.country")}


def shared_email(i: int) -> str:
    """The e-mail of the i-th (0-based) customer seeded on both sides."""
    return f"accounts@shared{i + 1:03d}.example"


def seed(hub: HubSpotSimulator, odoo: OdooSimulator, *, crm_only: int, erp_only: int, shared: int,
         erp_overrides: Callable[[int], Mapping[str, Any]] | None = None) -> list[tuple[str, int]]:
    """Seed both sides; returns the (HubSpot id, Odoo id) pairs of the shared customers.

    Shared customers are typed differently on each side (phone format, e-mail case, country as a
    name in HubSpot and a code in Odoo): the mapping normalises them, so they match and agree.
    Odoo-only partners are companies and customers (the shipped mapping syncs those). The HubSpot
    custom properties (``concord setup``) must exist first: shared companies carry an e-mail.
    ``erp_overrides(i)`` adds values to the i-th Odoo-only partner.
    """
    countries = country_ids(odoo)
    pairs = []
    for i in range(shared):
        city, cc = SHARED_CITIES[i % len(SHARED_CITIES)]
        name = f"Shared Customer {i + 1:03d} Ltd"
        email = shared_email(i)
        hub_id = hub.create("companies", {
            "name": name, "company_email": email.upper(), "phone": f"+1 (512) 555-{1000 + i:04d}",
            "city": city, "country": COUNTRY_NAMES[cc], "website": f"https://shared{i + 1:03d}.example"})
        odoo_id = odoo.create("res.partner", {
            "name": name, "email": email, "phone": f"+1 512-555-{1000 + i:04d}", "city": city,
            "country_id": countries[cc], "is_company": True, "customer_rank": 1,
            "website": f"https://shared{i + 1:03d}.example", "credit_limit": 5000.0 + i})
        pairs.append((hub_id, odoo_id))
    if crm_only:
        hub.seed_companies(crm_only)
    if erp_only:
        customer = {"is_company": True, "customer_rank": 1}
        odoo.seed_partners(erp_only, overrides=(lambda i: {**customer, **erp_overrides(i)}) if erp_overrides
                           else customer)
    return pairs
