"""Benchmark of the stock flow: stock levels of N SKUs, then again with 1 % of them changed.

    python -m bench.stock [--skus 50000] [--changed 0.01] [--state URL]

The simulators run in a separate process (bench.orders' harness, rate limits off). Set-up: Odoo
seeded with N stocked products, `concord setup`, the product sync (so that HubSpot has them), and
a first stock_level pass that writes every product's stock. Measured: after changing the stock of
``changed`` of the SKUs in Odoo, one `concord sync stock_level`. Only changed values may be
written, in full batches: HubSpot write calls must equal ceil(changed / batch size).
"""
from __future__ import annotations

import argparse
import math
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.orders import (
    Sims,
    concord,
    measured,
    per_unit,
    pipeline_row,
    serve,
    write_bench_config,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stock", description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=50_000)
    parser.add_argument("--changed", type=float, default=0.01, help="share of SKUs whose stock changes")
    parser.add_argument("--state", default=None, help="state store URL (default: SQLite in a temp dir)")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve)
    with tempfile.TemporaryDirectory(prefix="concord-bench-stock-") as tmp:
        work = Path(tmp)
        sims = Sims(work)
        try:
            config = write_bench_config(work, sims, args.state or f"sqlite:///{work / 'concord.db'}")
            from sync.config import load_config
            batch = load_config(config).crm.batch_size  # type: ignore[attr-defined]
            t0 = time.monotonic()
            sims.one("odoo", "seed_products", args.skus)
            concord(config, "setup")
            products = measured(config, "sync", "product")
            print(f"set-up: {args.skus:,} products seeded and synced to HubSpot in {time.monotonic() - t0:.0f} s "
                  f"(product sync {products['seconds']:.0f} s)", flush=True)

            first = measured(config, "sync", "stock_level")
            row = pipeline_row(config, "stock_level")
            print(f"first stock pass: {args.skus:,} SKUs in {first['seconds']:.1f} s = "
                  f"{args.skus / first['seconds']:.0f} records/s; HubSpot writes "
                  f"{row['api_calls'].get('hubspot', {}).get('write', 0)}; peak RSS {first['rss_mb']:.0f} MB",
                  flush=True)

            n_changed = round(args.skus * args.changed)
            skus = sorted(random.Random(1).sample([f"SKU-{i:05d}" for i in range(1, args.skus + 1)], n_changed))
            sims.one("stock_changes", "", skus, 2)
            again = measured(config, "sync", "stock_level")
            row = pipeline_row(config, "stock_level")
            writes = row["api_calls"].get("hubspot", {}).get("write", 0)
            expected = math.ceil(n_changed / batch)
            print(f"changed: {n_changed:,} SKUs; HubSpot write calls {writes}, expected ceil({n_changed} / {batch}) "
                  f"= {expected} -> {'OK' if writes == expected else 'MISMATCH'}")
            print(f"second stock pass: {args.skus:,} SKUs read in {again['seconds']:.1f} s = "
                  f"{args.skus / again['seconds']:.0f} records/s; updated {row['counts'].get('updated')}; "
                  f"peak RSS {again['rss_mb']:.0f} MB")
            print(f"API calls per SKU: {per_unit(row['api_calls'], args.skus)}")
            return 0 if writes == expected else 1
        finally:
            sims.close()


if __name__ == "__main__":
    raise SystemExit(main())
