"""Benchmark of the order flow: N closed-won deals of 1-5 lines through `concord sync order`.

    python -m bench.orders [--orders 10000] [--state URL]

Both simulators run in a separate process (driven over a local authenticated socket), so their
memory and CPU do not count; rate limits are off there and in the connectors, so the figures are
Concord's own cost. Set-up (products with stock, companies, `concord setup`, the customer and
product sync, the deals) is not measured. The measured `concord sync order` runs as a subprocess
(peak RSS from ``os.wait4``); the API calls per order come from its runs row (`concord status
--json`). The result is checked: exactly one sales order per deal.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import simprocess

ORDER_SYNC = {
    "product": {"direction": "erp_to_crm", "match_on": ["sku"]},
    "order": {"direction": "crm_to_erp", "stages": ["closedwon"], "confirm": True, "credit_check": True,
              "on_shortage": "purchase_request"},
    "stock_level": {"direction": "erp_to_crm"},
}


# ---------------------------------------------------------------------------------- simulator process
def serve(info_path: Path) -> int:
    """Run both simulators and obey this benchmark's commands until told to stop."""
    return simprocess.serve(info_path, _command)


def _command(hub: Any, odoo: Any, target: str, name: str, *args: Any) -> Any:
    if target == "seed_deals":
        return _seed_deals(hub, *args)
    if target == "product_ids":
        return {p["properties"]["hs_sku"]: p["id"] for p in hub.all("products") if p["properties"].get("hs_sku")}
    if target == "orders_by_ref":
        refs: dict[str, int] = {}
        for o in odoo.all("sale.order"):
            if o.get("client_order_ref"):
                refs[o["client_order_ref"]] = refs.get(o["client_order_ref"], 0) + 1
        return refs
    if target == "counts":
        return {"hubspot_writes": hub.write_count, "odoo_writes": odoo.write_count}
    if target == "stock_changes":
        return _change_stock(odoo, *args)
    sim = hub if target == "hub" else odoo
    return getattr(sim, name)(*args)


def _seed_deals(hub: Any, n: int, companies: Sequence[str], products: Sequence[str], seed: int) -> list[str]:
    """``n`` closed-won deals of 1-5 lines each, as a user would make them (deal, company, line items)."""
    from sandbox.hubspot.deals import create_deal
    rng = random.Random(seed)
    ids = []
    for i in range(n):
        lines = [{"hs_product_id": pid, "quantity": str(rng.randint(1, 5)), "price": f"{rng.uniform(5, 500):.2f}"}
                 for pid in rng.sample(list(products), rng.randint(1, 5))]
        deal = create_deal(hub, {"dealname": f"Bench order {i + 1}", "dealstage": "closedwon"},
                           company=rng.choice(list(companies)), lines=lines)
        ids.append(deal.id)
    return ids


def _change_stock(odoo: Any, skus: Sequence[str], seed: int) -> int:
    rng = random.Random(seed)
    for sku in skus:
        odoo.set_stock(sku, float(rng.randint(1000, 2000)))
    return len(skus)


class Sims(simprocess.Sims):
    """The simulator process of this benchmark."""

    def __init__(self, workdir: Path, module: str = "bench.orders") -> None:
        super().__init__(workdir, module)


# ---------------------------------------------------------------------------------- set-up and runs
def write_bench_config(folder: Path, sims: Sims, state_url: str) -> Path:
    """A config for the simulator process; the connectors' own rate limits lifted too."""
    from sandbox.fixtures import HubSpotAccess, OdooAccess, write_config
    return write_config(folder, HubSpotAccess(sims.info["hub"]), OdooAccess(sims.info["odoo"]), state_url,
                        crm={"rate_limit": 10000, "burst": 1000}, extra={"sync": ORDER_SYNC}, log_level="warning")


def concord(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`concord ARGS -c CONFIG` to completion; exits the benchmark on an unexpected failure."""
    proc = subprocess.run([sys.executable, "-m", "sync", *args, "-c", str(config)], capture_output=True, text=True,
                          check=False)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"concord {' '.join(args)} failed: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def measured(config: Path, *args: str) -> dict[str, Any]:
    """Run `concord ARGS` in a subprocess: wall time, peak RSS, exit code."""
    argv = [sys.executable, "-m", "sync", *args, "-c", str(config)]
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"concord {' '.join(args)} failed: exit {code}")
    return {"seconds": seconds, "rss_mb": usage.ru_maxrss / 1024, "code": code}


def pipeline_row(config: Path, entity: str) -> dict[str, Any]:
    """The pipeline's row of `concord status --json` (its last run's counts and API calls)."""
    rows = {p["pipeline"]: p for p in json.loads(concord(config, "status", "--json").stdout)["pipelines"]}
    return rows[entity]  # type: ignore[no-any-return]


def per_unit(calls: dict[str, dict[str, int]], n: int) -> str:
    return "; ".join(f"{system}: " + ", ".join(f"{k} {v / n:.3f}" for k, v in sorted(kinds.items()))
                     for system, kinds in calls.items() if kinds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.orders", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000, help="closed-won deals (orders) to sync")
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--companies", type=int, default=1000)
    parser.add_argument("--state", default=None, help="state store URL (default: SQLite in a temp dir)")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve)
    with tempfile.TemporaryDirectory(prefix="concord-bench-orders-") as tmp:
        work = Path(tmp)
        sims = Sims(work)
        try:
            config = write_bench_config(work, sims, args.state or f"sqlite:///{work / 'concord.db'}")
            t0 = time.monotonic()
            sims.run([("odoo", "seed_products", args.products),
                      ("hub", "seed_companies", args.companies)])
            concord(config, "setup")
            concord(config, "sync", "customer", "product")
            products = list(sims.one("product_ids", "").values())
            companies = [c["id"] for c in sims.one("hub", "all", "companies")]
            deals: list[str] = []
            for start in range(0, args.orders, 1000):
                deals += sims.one("seed_deals", "", min(1000, args.orders - start), companies, products, start)
            print(f"set-up: {args.products} products, {len(companies)} companies synced, {len(deals):,} deals "
                  f"seeded in {time.monotonic() - t0:.0f} s", flush=True)

            before = sims.one("counts", "")
            run = measured(config, "sync", "order")
            after = sims.one("counts", "")
            row = pipeline_row(config, "order")
            refs = sims.one("orders_by_ref", "")
            made = sum(1 for d in deals if refs.get(d) == 1)
            dupes = sum(1 for n in refs.values() if n > 1)
            n = len(deals)
            calls = row["api_calls"]
            total_calls = sum(v for kinds in calls.values() for v in kinds.values())
            print(f"orders: {n:,} deals -> {made:,} sales orders ({dupes} duplicated), exit {run['code']}")
            print(f"time: {run['seconds']:.1f} s = {n / run['seconds']:.1f} orders/s; peak RSS {run['rss_mb']:.0f} MB")
            print(f"API calls: {total_calls:,} = {total_calls / n:.2f} per order")
            print(f"API calls per order by kind: {per_unit(calls, n)}")
            print(f"write requests: HubSpot {after['hubspot_writes'] - before['hubspot_writes']:,}, "
                  f"Odoo {after['odoo_writes'] - before['odoo_writes']:,}")
            print(f"counts: {json.dumps(row['counts'])}")
            return 0 if made == n and not dupes else 1
        finally:
            sims.close()


if __name__ == "__main__":
    raise SystemExit(main())
