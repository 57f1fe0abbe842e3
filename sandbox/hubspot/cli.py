"""``python -m sandbox.hubspot --port P --seed N``: the simulator in the foreground."""
from __future__ import annotations

import argparse
from collections.abc import Sequence

from sandbox.hubspot.simulator import HubSpotSimulator


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator in the foreground: ``python -m sandbox.hubspot --port P --seed N``."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.hubspot",
                                     description="A local simulator of the HubSpot CRM API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=0, help="number of companies to create")
    parser.add_argument("--token", default="sim-hubspot-token")
    parser.add_argument("--client-secret", default="sim-hubspot-secret")
    parser.add_argument("--no-rate-limits", action="store_true", help="disable the burst and search limits")
    parser.add_argument("--webhook-url", default=None, help="deliver signed webhooks to this URL")
    args = parser.parse_args(argv)
    sim = HubSpotSimulator(token=args.token, client_secret=args.client_secret, host=args.host, port=args.port,
                           burst_limit=None if args.no_rate_limits else (190, 10.0),
                           search_rate=None if args.no_rate_limits else 5)
    if args.seed:
        sim.seed_companies(args.seed)
    sim.start()
    if args.webhook_url:
        sim.configure_webhooks(args.webhook_url)
    print(f"HubSpot simulator at {sim.base_url}", flush=True)
    print(f"  token (Authorization: Bearer ...): {sim.token}", flush=True)
    print(f"  client secret (webhook signatures): {sim.client_secret}", flush=True)
    print(f"  seeded companies: {args.seed}; Ctrl-C to stop", flush=True)
    sim.serve_forever()
    return 0


