"""`concord demo`: the whole product on one machine, with local HubSpot and Odoo simulators.

Seeds both sides (some customers on both), syncs both ways, edits a few customers on each side
(one on both: a conflict), syncs again, prints what happened and checks that both sides agree.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sandbox.demo_o2c import O2C_SYNC, run_order_to_cash
from sandbox.fixtures import seed, write_config
from sandbox.hubspot import HubSpotSimulator
from sandbox.odoo import OdooSimulator


def edit(hub: HubSpotSimulator, odoo: OdooSimulator, pairs: list[tuple[str, int]]) -> list[str]:
    """Edits behind Concord's back on both sides, one of them a conflict; returns what was done."""
    done = []
    for hub_id, _ in pairs[0:3]:
        hub.update("companies", hub_id, {"city": "Munich"})
        done.append(f"HubSpot company {hub_id}: city -> Munich")
    for _, odoo_id in pairs[3:6]:
        odoo.update("res.partner", odoo_id, {"phone": "+49 89 1234567", "credit_limit": 25000.0})
        done.append(f"Odoo partner {odoo_id}: phone -> +49 89 1234567, credit limit -> 25000")
    hub_id, odoo_id = pairs[6]
    hub.update("companies", hub_id, {"name": "Renamed in HubSpot Ltd"})
    time.sleep(1.1)  # Odoo stamps write_date in whole seconds: make the ERP edit clearly the newer one
    odoo.update("res.partner", odoo_id, {"name": "Renamed in Odoo Ltd"})
    done.append(f"conflict: HubSpot {hub_id} renamed, then Odoo {odoo_id} renamed a second later "
                "(newest_wins: Odoo's name should win on both sides)")
    return done


def summary_table(title: str, reports: list[Any], links: int, dead: int, conflicts: int) -> Table:
    table = Table(title=title)
    for col in ("direction", "read", "matched", "created", "updated", "upd. back", "echo", "conflicts", "dead"):
        table.add_column(col, justify="left" if col == "direction" else "right")
    for r in reports:
        for direction, c in r.by_direction.items():
            table.add_row(direction.replace("_to_", "->"), str(c.read), str(c.matched), str(c.created), str(c.updated),
                          str(c.updated_back), str(c.echo), str(c.conflicts + c.conflicts_resolved),
                          str(c.dead_letters))
    table.caption = (f"matched: linked to an existing record by e-mail; upd. back: written back to the side the "
                     f"change came from (owned fields, conflict outcome); echo: our own write seen again, "
                     f"skipped without an API call. Links: {links}; open dead letters: {dead}; open conflicts: "
                     f"{conflicts}")
    return table


def run_demo(*, state_url: str | None, crm_records: int, erp_records: int, shared: int, out: Console) -> int:
    """Run the demo end to end; returns 0 when both sides agree at the end."""
    from sync import logging as clog
    from sync.cli import run_sync
    from sync.config import load_config
    from sync.runtime import build_runtime
    from sync.verify import check_agreement

    clog.configure("warning", "console")
    shared = max(12, min(shared, crm_records, erp_records))
    folder = Path(tempfile.mkdtemp(prefix="concord-demo-"))
    state_url = state_url or f"sqlite:///{folder / 'concord.db'}"
    with HubSpotSimulator() as hub, OdooSimulator() as odoo:
        config_path = write_config(folder, hub, odoo, state_url, extra={"sync": O2C_SYNC})
        out.print(f"[bold]Concord demo[/]: HubSpot simulator at {hub.base_url}, Odoo simulator at {odoo.base_url}")
        out.print(f"config: {config_path}   state: {state_url}")
        config = load_config(config_path)
        clog.add_secrets(config.secret_values())
        clog.configure("warning", "console")
        rt = build_runtime(config)
        try:
            for ep in (rt.crm, rt.erp):
                created = ep.connector.setup([ep.spec(e) for e in config.sync if ep.entity(e) is not None])
                out.print(f"setup {ep.system}: created {', '.join(created) or 'nothing'}")
            pairs = seed(hub, odoo, crm_only=crm_records - shared, erp_only=erp_records - shared, shared=shared)
            out.print(f"seeded {crm_records} HubSpot companies and {erp_records} Odoo partners, "
                      f"{shared} of them the same customers typed differently on each side")

            code, reports = run_sync(rt, ["customer"])
            store = rt.store
            out.print(summary_table("first sync", reports, store.count_links("customer"),
                                    store.count_dead_letters(), len(store.open_conflicts())))
            if code:
                return code
            for line in edit(hub, odoo, pairs):
                out.print(f"  edit: {line}")
            code, reports = run_sync(rt, ["customer"])
            out.print(summary_table("second sync", reports, store.count_links("customer"),
                                    store.count_dead_letters(), len(store.open_conflicts())))
            if code:
                return code
            code, reports = run_sync(rt, ["customer"])
            writes = sum(r.counts.writes for r in reports)
            out.print(f"third sync (nothing changed): {writes} writes")

            hub_id, odoo_id = pairs[6]
            out.print(f"conflict outcome: HubSpot name {hub.get('companies', hub_id)['properties']['name']!r}, "
                      f"Odoo name {odoo.get('res.partner', odoo_id)['name']!r}")
            result = check_agreement(rt, "customer")
            if result.ok:
                out.print(f"[bold green]check: both sides agree[/]: {result.linked} linked customers, "
                          f"{result.crm_records} in HubSpot, {result.erp_records} in Odoo, 0 differences, "
                          "0 without a counterpart")
                return run_order_to_cash(rt, hub, odoo, pairs, out)
            out.print(f"[bold red]check failed[/]: {len(result.differences)} differences, "
                      f"{len(result.unlinked_crm)} HubSpot and {len(result.unlinked_erp)} Odoo records unlinked")
            for d in result.differences[:10]:
                out.print(f"  {d}")
            return 1
        finally:
            rt.close()
