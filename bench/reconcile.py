"""Benchmark of `concord reconcile`: N customers per side, 1 % drift spread over every class.

    python -m bench.reconcile --n 100000 [--drift 0.01] [--state URL] [--no-apply]

Both simulators run in a separate process (``--serve``, driven over a local authenticated
socket), so their memory does not count; rate limits are off there, so the figures are
Concord's own cost. Set-up (seed HubSpot, one `concord sync` creating the Odoo side, drift
created behind Concord's back) runs in this process; the measured `concord reconcile` runs as a
subprocess whose peak RSS comes from ``os.wait4``. The report's findings are checked against the
seeded drift: every difference must be found, and nothing else. With --apply (default on), a
second measured run repairs, and a third one checks what remains (duplicates, conflicts and
unreadable records are left for a human by design).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import simprocess

# Share of the drift per class (sums to 1).
MIX = {"different_crm": 0.15, "different_erp": 0.15, "archived": 0.10, "orphan_erp": 0.10, "orphan_crm": 0.10,
       "missing_on_erp": 0.10, "missing_on_crm": 0.10, "duplicate_crm": 0.05, "duplicate_erp": 0.05,
       "conflict": 0.05, "unreadable": 0.05}


# ---------------------------------------------------------------------------------- simulator process
def serve(info_path: Path) -> int:
    """Run both simulators and obey this benchmark's commands until told to stop."""
    return simprocess.serve(info_path, _command)


def _command(hub: Any, odoo: Any, target: str, name: str, *args: Any) -> Any:
    if target == "seed_companies":
        n, = args
        return hub.seed_companies(n, overrides=lambda i, props: {"company_email": f"customer{i}@bench.example"})
    if target == "purge":
        with hub.lock:  # a HubSpot company gone for good (no simulator helper for the 90-day purge)
            store = hub._helper_store("companies")
            rec = store.records[int(args[0])]
            if not rec.archived:
                store.retire(rec)
            del store.records[rec.num]
            store.gone.remove(rec.num)
        return None
    if target == "counts":
        return {"hubspot_writes": hub.write_count, "odoo_writes": odoo.write_count}
    if target == "reset":
        hub.reset_log()
        odoo.reset_log()
        return None
    if target == "partner_ids":
        return [r["id"] for r in odoo.all("res.partner") if r.get("is_company")]
    sim = hub if target == "hub" else odoo
    return getattr(sim, name)(*args)


class Sims(simprocess.Sims):
    """The simulator process of this benchmark."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, "bench.reconcile")


# ---------------------------------------------------------------------------------- set-up
def write_bench_config(folder: Path, sims: Sims, state_url: str) -> Path:
    from sandbox.fixtures import HubSpotAccess, OdooAccess, write_config
    # Rate limits are off in the simulator; lift the connector's own bucket too (Concord's cost only).
    return write_config(folder, HubSpotAccess(sims.info["hub"]), OdooAccess(sims.info["odoo"]), state_url,
                        crm={"rate_limit": 10000, "burst": 1000}, log_level="warning")


def initial_sync(config_path: Path, n: int, sims: Sims) -> None:
    from sync.cli import run_sync
    from sync.config import load_config
    from sync.runtime import build_runtime
    rt = build_runtime(load_config(config_path))
    try:
        for ep in (rt.crm, rt.erp):
            ep.connector.setup([ep.spec("customer")])
        sims.one("seed_companies", "", n)
        started = time.monotonic()
        code, _ = run_sync(rt, ["customer"])
        if code:
            raise SystemExit(f"initial sync failed with exit code {code}")
        print(f"set-up: initial sync of {n:,} customers in {time.monotonic() - started:.0f} s", flush=True)
    finally:
        rt.close()


def make_drift(config_path: Path, n: int, share: float, sims: Sims) -> set[tuple[Any, ...]]:
    """Create drift of every class behind Concord's back; returns the findings it must produce."""
    from sync.config import load_config
    from sync.pipeline import EntityPipeline
    from sync.runtime import build_runtime

    total = max(len(MIX), round(n * share))
    k = {cls: max(1, round(total * part)) for cls, part in MIX.items()}
    rt = build_runtime(load_config(config_path))
    try:
        links = [lk for lk in rt.store.iter_links("customer") if not lk.deleted]
        step = max(1, len(links) // sum(k.values()))
        picked = iter(links[::step])
        take = {cls: [next(picked) for _ in range(count)] for cls, count in k.items()}
        expected: set[tuple[Any, ...]] = set()
        cmds: list[tuple[Any, ...]] = []
        for lk in take["different_crm"]:
            cmds.append(("hub", "update", "companies", lk.crm_id, {"city": "Driftwood"}))
            expected.add(("different", lk.crm_id, lk.erp_id, ("city",)))
        for lk in take["different_erp"]:
            cmds.append(("odoo", "update", "res.partner", int(lk.erp_id), {"phone": "+49 89 1234567"}))
            expected.add(("different", lk.crm_id, lk.erp_id, ("phone",)))
        for lk in take["archived"]:
            cmds.append(("hub", "archive", "companies", lk.crm_id))
            expected.add(("different", lk.crm_id, lk.erp_id, ("deleted",)))
        for lk in take["orphan_erp"]:
            cmds.append(("odoo", "delete", "res.partner", int(lk.erp_id)))
            expected.add(("orphan_link", lk.crm_id, lk.erp_id, ()))
        for lk in take["orphan_crm"]:
            cmds.append(("purge", "", lk.crm_id))
            expected.add(("orphan_link", lk.crm_id, lk.erp_id, ()))
        for lk in take["unreadable"]:
            cmds.append(("hub", "update", "companies", lk.crm_id, {"country": "Atlantis"}))
            expected.add(("unreadable", lk.crm_id, (), ()))
        sims.run(cmds)
        created = sims.run(
            [("hub", "create", "companies", {"name": f"Lead {i}", "company_email": f"lead{i}@new.example"})
             for i in range(k["missing_on_erp"])]
            + [("odoo", "create", "res.partner", {"name": f"Walk-in {i}", "email": f"walkin{i}@new.example",
                                                  "is_company": True, "customer_rank": 1})
               for i in range(k["missing_on_crm"])])
        for cid in created[:k["missing_on_erp"]]:
            expected.add(("missing_on_erp", cid, (), ()))
        for eid in created[k["missing_on_erp"]:]:
            expected.add(("missing_on_crm", (), str(eid), ()))
        # Duplicates: a second record with the e-mail of an existing, linked customer.
        emails = {lk.crm_id: f"customer{int(lk.crm_id) - int(links[0].crm_id)}@bench.example"
                  for lk in take["duplicate_crm"] + take["duplicate_erp"]}
        dups = sims.run(
            [("hub", "create", "companies", {"name": "Copy", "company_email": emails[lk.crm_id].upper()})
             for lk in take["duplicate_crm"]]
            + [("odoo", "create", "res.partner", {"name": "Copy", "email": emails[lk.crm_id], "is_company": True,
                                                  "customer_rank": 1}) for lk in take["duplicate_erp"]])
        for lk, dup in zip(take["duplicate_crm"], dups, strict=False):
            expected.add(("duplicate", tuple(sorted([lk.crm_id, dup])), (lk.erp_id,), ()))
        for lk, dup in zip(take["duplicate_erp"], dups[k["duplicate_crm"]:], strict=True):
            expected.add(("duplicate", (lk.crm_id,), tuple(sorted([lk.erp_id, str(dup)])), ()))
        # Conflicts: a name changed on both sides, synced under the manual policy.
        sims.run([c for lk in take["conflict"] for c in (
            ("hub", "update", "companies", lk.crm_id, {"name": f"HubSpot name {lk.crm_id}"}),
            ("odoo", "update", "res.partner", int(lk.erp_id), {"name": f"Odoo name {lk.erp_id}"}))])
        EntityPipeline(rt, "customer", policy_override="manual").sync_ids("crm", [lk.crm_id for lk in take["conflict"]])
        for lk in take["conflict"]:
            expected.add(("conflict", lk.crm_id, lk.erp_id, ("name",)))
        print("set-up: drift seeded: " + ", ".join(f"{cls} {count}" for cls, count in k.items()), flush=True)
        return expected
    finally:
        rt.close()


# ---------------------------------------------------------------------------------- measured run
def measure(out: Path, argv: Sequence[str]) -> int:
    """Run ``argv`` and write its wall time, peak RSS and exit code to ``out``.

    A child forked from a big process counts that process's resident pages in its peak RSS until
    it execs, so the benchmark forks this small process to start the measured one.
    """
    started = time.monotonic()
    proc = subprocess.Popen(list(argv), stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    out.write_text(json.dumps({"seconds": time.monotonic() - started, "rss_mb": usage.ru_maxrss / 1024,
                               "code": os.waitstatus_to_exitcode(status)}))
    return 0


def measured(config_path: Path, report: Path, *extra: str) -> dict[str, Any]:
    """Run `concord reconcile` in a subprocess; wall time, peak RSS and the parsed JSON report."""
    argv = [sys.executable, "-m", "sync.cli", "reconcile", "-c", str(config_path), "--format", "json",
            "--output", str(report), "--no-progress", *extra]
    figures = report.with_suffix(".figures.json")
    subprocess.run([sys.executable, "-m", "bench.reconcile", "--measure", str(figures), "--", *argv], check=True)
    result: dict[str, Any] = json.loads(figures.read_text())
    if result["code"] not in (0, 1):
        raise SystemExit(f"reconcile failed: exit {result['code']}")
    result["report"] = json.loads(report.read_text())
    return result


def summary(f: dict[str, Any]) -> tuple[Any, ...]:
    ids = (f.get("crm_id") or tuple(f.get("crm_ids", ())), f.get("erp_id") or tuple(f.get("erp_ids", ())))
    return (f["cls"], *ids, tuple(sorted(d["field"] for d in f.get("fields", []))))


def check(run: dict[str, Any], expected: set[tuple[Any, ...]], key: str = "findings") -> tuple[int, int, int]:
    """(found, missed, unexpected) of the seeded differences in one report."""
    entity = run["report"]["entities"][0]
    got = {summary(f) for f in entity[key] if f["cls"] != "in_sync"}
    return len(expected & got), len(expected - got), len(got - expected)


def calls_text(calls: dict[str, dict[str, int]]) -> str:
    return "; ".join(f"{system} " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
                     for system, kinds in calls.items() if kinds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reconcile", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="customers per side")
    parser.add_argument("--drift", type=float, default=0.01, help="share of records with drift")
    parser.add_argument("--state", default=None, help="state store URL (default: SQLite in a temp folder)")
    parser.add_argument("--no-apply", action="store_true", help="skip the --apply run")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("command", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve)
    if args.measure:
        return measure(args.measure, args.command)
    from sync import logging as clog
    clog.configure("warning", "console")  # the set-up's own sync logs would drown the figures

    workdir = Path(tempfile.mkdtemp(prefix="concord-bench-reconcile-"))
    state_url = args.state or f"sqlite:///{workdir / 'concord.db'}"
    sims = Sims(workdir)
    try:
        config_path = write_bench_config(workdir, sims, state_url)
        initial_sync(config_path, args.n, sims)
        expected = make_drift(config_path, args.n, args.drift, sims)
        sims.one("reset", "")

        dry = measured(config_path, workdir / "dry.json")
        writes = sims.one("counts", "")
        found, missed, extra = check(dry, expected)
        entity = dry["report"]["entities"][0]
        print(f"\nreconcile (dry run), {args.n:,} customers per side, {len(expected)} seeded differences")
        print(f"  wall time        {dry['seconds']:.1f} s   (target <= 60 s)")
        print(f"  peak RSS         {dry['rss_mb']:.0f} MB  (target <= 300 MB; reconcile process only)")
        print(f"  records read     {entity['read']}")
        print(f"  API calls        {calls_text(dry['report']['api_calls'])}")
        print(f"  write calls      HubSpot {writes['hubspot_writes']}, Odoo {writes['odoo_writes']} (must be 0)")
        print("  found            " + ", ".join(f"{k} {v}" for k, v in entity["found"].items()))
        print(f"  seeded found     {found}/{len(expected)}; missed {missed}; unexpected {extra}; exit {dry['code']}")
        ok = missed == 0 and extra == 0 and writes == {"hubspot_writes": 0, "odoo_writes": 0}
        if not args.no_apply:
            applied = measured(config_path, workdir / "apply.json", "--apply")
            after = measured(config_path, workdir / "after.json")
            e_apply = applied["report"]["entities"][0]
            left = Counter(f["cls"] for f in after["report"]["entities"][0]["findings"] if f["cls"] != "in_sync")
            print("\nreconcile --apply")
            print(f"  wall time        {applied['seconds']:.1f} s, peak RSS {applied['rss_mb']:.0f} MB")
            print("  repairs          " + ", ".join(f"{k} {v}" for k, v in sorted(e_apply["repairs"].items()))
                  + "; sync " + ", ".join(f"{k} {v}" for k, v in sorted(e_apply["sync"].items())))
            print(f"  API calls        {calls_text(applied['report']['api_calls_by_phase'].get('repair', {}))} "
                  "(repair phase)")
            print(f"  then reconcile   {after['seconds']:.1f} s, exit {after['code']}; left: "
                  + (", ".join(f"{k} {v}" for k, v in sorted(left.items())) or "nothing"))
            ok = ok and set(left) <= {"duplicate", "conflict", "unreadable"}
        print(f"\nresult: {'OK' if ok else 'FAILED'}   (work folder {workdir})")
        return 0 if ok else 1
    finally:
        sims.close()


if __name__ == "__main__":
    sys.exit(main())
