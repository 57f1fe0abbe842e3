"""`concord sandbox hubspot|odoo`: one simulator in the foreground, with what a config needs to reach it."""
from __future__ import annotations

from typing import Any

PRODUCTS = ("hubspot", "odoo")


def make_simulator(product: str, *, host: str = "127.0.0.1", port: int = 0) -> Any:
    """A simulator instance (not started) for ``product``."""
    if product == "hubspot":
        from sandbox.hubspot import HubSpotSimulator
        return HubSpotSimulator(host=host, port=port)
    if product == "odoo":
        from sandbox.odoo import OdooSimulator
        return OdooSimulator(host=host, port=port)
    raise ValueError(f"unknown product {product!r}; expected one of {', '.join(PRODUCTS)}")


def config_snippet(product: str, sim: Any) -> str:
    """The YAML a user pastes under crm:/erp: to point Concord at this simulator."""
    if product == "hubspot":
        return (f"crm:\n  connector: hubspot\n  base_url: {sim.base_url}\n  token: {sim.token}\n"
                f"  client_secret: {sim.client_secret}   # webhook signatures\n")
    return (f"erp:\n  connector: odoo\n  url: {sim.base_url}\n  db: {sim.db}\n  username: {sim.login}\n"
            f"  api_key: {sim.password}\n")


def run_sandbox(product: str, *, host: str, port: int, seed: int, out: Any) -> int:
    """Start, seed, print how to connect, and serve until Ctrl-C; returns an exit code."""
    if product not in PRODUCTS:
        out.print(f"[red]error:[/] unknown product {product!r}; expected one of {', '.join(PRODUCTS)}")
        return 2
    sim = make_simulator(product, host=host, port=port)
    try:
        sim.start()
    except OSError as exc:
        out.print(f"[red]error:[/] cannot listen on {host}:{port}: {exc.strerror}")
        return 2
    if seed:
        if product == "hubspot":
            sim.seed_companies(seed)
        else:
            sim.seed_partners(seed)
    out.print(f"{product} simulator listening on [bold]{sim.base_url}[/] ({seed} records seeded)")
    out.print("These are simulator credentials, not secrets. Config to reach it:")
    out.print(config_snippet(product, sim), highlight=False)
    out.print("Ctrl-C to stop.")
    sim.serve_forever()
    return 0
