"""The `concord` command. Exit codes: 0 ok; 1 finished with dead letters or conflicts;
2 bad config or input; 3 cannot reach or authenticate to a system."""
from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import structlog
import typer
from rich.console import Console
from rich.table import Table

from sync import logging as clog

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Concord keeps a CRM and an ERP consistent: customers, orders, stock and payments.")
db_app = typer.Typer(no_args_is_help=True, help="The state store.")
mapping_app = typer.Typer(no_args_is_help=True, help="Mapping files.")
app.add_typer(db_app, name="db")
app.add_typer(mapping_app, name="mapping")

out = Console()
err = Console(stderr=True)
log = structlog.get_logger("concord.cli")

EXIT_OK, EXIT_DRIFT, EXIT_INPUT, EXIT_UNREACHABLE = 0, 1, 2, 3

ConfigOpt = typer.Option(None, "--config", "-c", envvar="CONCORD_CONFIG",
                         help="Config file (default: ./concord.yaml, or $CONCORD_CONFIG).")
StateOpt = typer.Option(None, "--state", help="State store URL; overrides state.url of the config.")


def fail(message: str, code: int) -> NoReturn:
    """Print an error to stderr and exit with ``code``."""
    err.print(f"[bold red]error:[/] {clog.MASKER._mask(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load(config_path: str | None) -> Any:
    """Load and validate the config; any error exits 2 with every problem listed."""
    from sync.config import ConfigError, load_config
    path = Path(config_path or "concord.yaml")
    if not path.exists():
        fail(f"{path}: config file not found (give one with -c, or copy config.example.yaml)", EXIT_INPUT)
    try:
        config = load_config(path)
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {path}: the config has {len(exc.errors)} problem(s):", highlight=False)
        for e in exc.errors:
            err.print(f"  {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_INPUT) from None
    clog.add_secrets(config.secret_values())
    clog.configure(config.logging.level, config.logging.format)
    return config


@contextmanager
def runtime(config: Any, state: str | None = None, *, upgrade: bool = True) -> Iterator[Any]:
    """Build the runtime (store + connectors), turning set-up errors into exit codes."""
    from sync.mapping import MappingError
    from sync.runtime import build_runtime
    try:
        rt = build_runtime(config, state_url=state, upgrade=upgrade)
    except MappingError as exc:
        err.print(f"[bold red]error:[/] a mapping file has {len(exc.errors)} problem(s):", highlight=False)
        for e in exc.errors:
            err.print(f"  {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_INPUT) from None
    try:
        yield rt
    finally:
        rt.close()


@app.callback()
def main_callback() -> None:
    """Concord: CRM <-> ERP sync."""
    clog.configure("info", "auto")


# ---------------------------------------------------------------------------------- validate
@app.command()
def validate(config: str = ConfigOpt,
             check_connections: bool = typer.Option(False, "--check-connections",
                                                    help="Log in to both systems and check custom fields.")) -> None:
    """Check the config and mapping files (and, optionally, both systems)."""
    from connectors.base import AuthError, ConnectorError, RetryableError
    cfg = load(config)
    with runtime(cfg, "sqlite://", upgrade=False) as rt:
        out.print(f"[green]ok[/] config {config or 'concord.yaml'}: crm={rt.crm.system} erp={rt.erp.system}, "
                  f"entities: {', '.join(cfg.sync) or '(none)'}")
        if not check_connections:
            return
        code = EXIT_OK
        for ep in (rt.crm, rt.erp):
            try:
                ep.connector.check_connection()
                specs = [ep.spec(e) for e in cfg.sync if ep.entity(e) is not None]
                missing = ep.connector.missing_setup(specs)
            except (AuthError, RetryableError) as exc:
                out.print(f"[red]FAIL[/] {ep.role} {ep.system}: {exc.message}")
                code = EXIT_UNREACHABLE
                continue
            except ConnectorError as exc:
                out.print(f"[red]FAIL[/] {ep.role} {ep.system}: {exc.message}")
                code = max(code, EXIT_INPUT)
                continue
            if missing:
                out.print(f"[yellow]setup needed[/] {ep.role} {ep.system}: missing {', '.join(missing)} "
                          "(run `concord setup`)")
                code = max(code, EXIT_DRIFT)
            else:
                out.print(f"[green]ok[/] {ep.role} {ep.system}: logged in; custom fields present")
        raise typer.Exit(code)


# ---------------------------------------------------------------------------------- setup
@app.command()
def setup(config: str = ConfigOpt) -> None:
    """Create the custom fields/properties the mappings need on each system (idempotent)."""
    from connectors.base import AuthError, ConnectorError, RetryableError
    cfg = load(config)
    with runtime(cfg, "sqlite://", upgrade=False) as rt:
        for ep in (rt.crm, rt.erp):
            specs = [ep.spec(e) for e in cfg.sync if ep.entity(e) is not None]
            try:
                created = ep.connector.setup(specs)
            except (AuthError, RetryableError) as exc:
                fail(f"{ep.system}: {exc.message}", EXIT_UNREACHABLE)
            except ConnectorError as exc:
                fail(f"{ep.system}: {exc.message}", EXIT_INPUT)
            out.print(f"{ep.system}: " + (f"created {', '.join(created)}" if created else "nothing to create"))


# ---------------------------------------------------------------------------------- sync
@app.command()
def sync(entities: list[str] = typer.Argument(None, help="Entities to sync (default: all configured)."),
         config: str = ConfigOpt, state: str = StateOpt,
         dry_run: bool = typer.Option(False, "--dry-run", help="Read and compare, write nothing."),
         as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON.")) -> None:
    """One incremental pass, then exit (cron-friendly)."""
    cfg = load(config)
    chosen = _entities(cfg, entities)
    with runtime(cfg, state) as rt:
        code, reports = run_sync(rt, chosen, dry_run=dry_run)
        print_reports(reports, as_json=as_json, dry_run=dry_run)
        if code == EXIT_OK and not dry_run and (rt.store.count_dead_letters() or rt.store.open_conflicts()):
            code = EXIT_DRIFT
    raise typer.Exit(code)


def _entities(cfg: Any, wanted: list[str] | None) -> list[str]:
    configured = [e for e, s in cfg.sync.items() if getattr(s, "enabled", True)]
    if not wanted:
        return configured
    unknown = [e for e in wanted if e not in cfg.sync]
    if unknown:
        fail(f"not configured under sync: {', '.join(unknown)} (configured: {', '.join(cfg.sync)})", EXIT_INPUT)
    return list(wanted)


# The order in which entities depend on each other: orders need customers and products.
ENTITY_ORDER = ["customer", "product", "order", "stock_level", "payment"]


def run_sync(rt: Any, entities: list[str], *, dry_run: bool = False,
             should_stop: Callable[[], bool] = lambda: False) -> tuple[int, list[Any]]:
    """Run the pipelines of ``entities`` in dependency order; returns (exit code, reports)."""
    from sync.pipeline import EntityPipeline, PipelineStopped
    reports = []
    for entity in sorted(entities, key=lambda e: ENTITY_ORDER.index(e) if e in ENTITY_ORDER else 99):
        try:
            reports.append(EntityPipeline(rt, entity, dry_run=dry_run, should_stop=should_stop).run())
        except PipelineStopped as exc:
            err.print(f"[bold red]error:[/] {entity}: {clog.MASKER._mask(str(exc))}", highlight=False)
            return exc.exit_code, reports
    return EXIT_OK, reports


def print_reports(reports: list[Any], *, as_json: bool = False, dry_run: bool = False) -> None:
    if as_json:
        print(json.dumps([{"entity": r.entity, "counts": r.counts.as_dict(),
                           "by_direction": {k: v.as_dict() for k, v in r.by_direction.items()},
                           "api_calls": r.api_calls, "seconds": round(r.seconds, 3)} for r in reports], indent=2))
        return
    table = Table(title="sync (dry run: nothing written)" if dry_run else "sync")
    for col in ("entity", "direction", "read", "created", "matched", "updated", "updated back", "unchanged",
                "echo", "archived", "conflicts", "dead letters"):
        table.add_column(col, justify="left" if col in ("entity", "direction") else "right")
    for r in reports:
        for direction, c in r.by_direction.items():
            table.add_row(r.entity, direction.replace("_", " "), str(c.read), str(c.created), str(c.matched),
                          str(c.updated), str(c.updated_back), str(c.unchanged), str(c.echo), str(c.archived),
                          str(c.conflicts), str(c.dead_letters))
    out.print(table)


# ---------------------------------------------------------------------------------- status
@app.command()
def status(config: str = ConfigOpt, state: str = StateOpt,
           as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Per pipeline: last run, counts, cursors, dead letters and open conflicts."""
    from sync.status import collect_status
    cfg = load(config)
    from sync.store import Store
    store = Store.open(state or cfg.state.url)
    try:
        data = collect_status(cfg, store)
    finally:
        store.close()
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return
    table = Table(title="concord status")
    for col in ("pipeline", "owner", "last run", "status", "lag", "read", "written", "links", "dead letters",
                "conflicts", "in flight"):
        table.add_column(col)
    for p in data["pipelines"]:
        table.add_row(p["pipeline"], p.get("owner") or "-", p.get("last_run") or "never", p.get("status") or "-",
                      p.get("lag_human") or "-", str(p.get("read", 0)), str(p.get("written", 0)),
                      str(p.get("links", 0)), str(p.get("dead_letters", 0)), str(p.get("conflicts", 0)),
                      str(p.get("writes_in_flight", 0)))
    out.print(table)


# ---------------------------------------------------------------------------------- db
@db_app.command("upgrade")
def db_upgrade(config: str = ConfigOpt, state: str = StateOpt) -> None:
    """Create or migrate the state store schema to the latest version."""
    from sync.store import Store
    url = state
    if url is None:
        url = load(config).state.url
    store = Store.open(url, upgrade=False)
    try:
        before = store.current_revision()
        store.upgrade()
        after = store.current_revision()
        out.print(f"state store {store.url_for_display}: {before or 'empty'} -> {after}")
    finally:
        store.close()


@db_app.command("prune")
def db_prune(config: str = ConfigOpt,
             older_than: str = typer.Option(None, "--older-than",
                                            help="e.g. 30d; default: the config's state.retention"),
             state: str = StateOpt) -> None:
    """Delete finished runs, resolved dead letters and conflicts, and processed webhook events
    older than the retention (the daemon does this every hour)."""
    from sync.config import parse_duration
    from sync.housekeeping import prune
    from sync.store import Store
    cfg = load(config)
    try:
        keep = parse_duration(older_than) if older_than is not None else cfg.state.retention
        if not keep:
            raise ValueError("expected a duration of more than 0, like 30d")
    except ValueError as exc:
        err.print(f"--older-than {older_than!r}: {exc}")
        raise typer.Exit(2) from None
    store = Store.open(state or cfg.state.url)
    try:
        counts = prune(store, keep)
    finally:
        store.close()
    out.print(", ".join(f"{n} {what.replace('_', ' ')}" for what, n in counts.items()) + " deleted")


# ---------------------------------------------------------------------------------- mapping test
@mapping_app.command("test")
def mapping_test(entity: str = typer.Argument(..., help="Canonical entity, e.g. customer."),
                 system: str = typer.Option(..., "--system", help="Which side the input record comes from."),
                 input_file: Path = typer.Option(..., "--input", exists=False, help="A native record as JSON."),
                 config: str = typer.Option(None, "--config", "-c", envvar="CONCORD_CONFIG")) -> None:
    """Show a native record's canonical form and how the other side would receive it."""
    from sync.mapping_test import run_mapping_test
    code = run_mapping_test(entity, system, input_file, config, out, err)
    raise typer.Exit(code)


# ---------------------------------------------------------------------------------- sandbox / demo
@app.command()
def sandbox(product: str = typer.Argument(..., help="hubspot or odoo"),
            port: int = typer.Option(0, "--port", help="Port on 127.0.0.1 (0: a free one)."),
            seed: int = typer.Option(0, "--seed", help="Seed this many records."),
            host: str = typer.Option("127.0.0.1", "--host")) -> None:
    """Run one product simulator in the foreground, to try a config or a mapping against it."""
    from sandbox.run import run_sandbox
    code = run_sandbox(product, host=host, port=port, seed=seed, out=out)
    raise typer.Exit(code)


@app.command()
def demo(state: str = StateOpt,
         crm_records: int = typer.Option(200, "--crm", help="HubSpot companies to seed."),
         erp_records: int = typer.Option(150, "--erp", help="Odoo partners to seed."),
         shared: int = typer.Option(50, "--shared", help="How many customers exist on both sides.")) -> None:
    """Start local simulators, seed them, sync both ways, edit, sync again, and check both sides agree."""
    from sandbox.demo import run_demo
    code = run_demo(state_url=state, crm_records=crm_records, erp_records=erp_records, shared=shared, out=out)
    raise typer.Exit(code)


from sync import (
    cli_ops,  # noqa: E402,F401  (registers daemon/dlq/conflicts/config/init)
    cli_reconcile,  # noqa: E402,F401
)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    # `python -m sync.cli` runs this file as __main__; the commands registered by cli_ops live on
    # the importable sync.cli module, so run that one.
    from sync.cli import main as _main
    _main()
