"""`concord reconcile`: registered on the main typer app of sync/cli.py when that module imports this one.

Exit codes: 0 in sync; 1 drift found (dry run) or remaining (after --apply); 2 bad input;
3 a system (or the state store) cannot be reached.
"""
from __future__ import annotations

import sys
from contextlib import ExitStack
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

import typer
from rich.console import Console

from sync.cli import (
    EXIT_DRIFT,
    EXIT_INPUT,
    EXIT_OK,
    EXIT_UNREACHABLE,
    ConfigOpt,
    StateOpt,
    _entities,
    app,
    err,
    fail,
    load,
    out,
    runtime,
)


def parse_since(text: str) -> datetime:
    """An ISO date or date-time; a date means its midnight, no zone means UTC."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--since {text!r}: expected an ISO date (2025-01-31) or date-time (2025-01-31T12:00:00+01:00)",
             EXIT_INPUT)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@app.command()
def reconcile(entities: list[str] = typer.Argument(None, help="Entities to compare (default: all configured)."),
              config: str = ConfigOpt, state: str = StateOpt,
              apply: bool = typer.Option(False, "--apply",
                                         help="Repair what can be repaired through the sync, then check again."),
              fmt: str = typer.Option("table", "--format", help="table, json or csv."),
              output: Path = typer.Option(None, "--output", "-o", help="Write the report to this file."),
              since: str = typer.Option(None, "--since",
                                        help="Only records changed since this ISO date or date-time (and what "
                                             "they are linked to or match)."),
              progress: bool = typer.Option(True, "--progress/--no-progress",
                                            help="Progress bar on a terminal, log events otherwise.")) -> None:
    """Compare both systems record by record, report every difference; --apply repairs them."""
    from sync.reconcile import Reconciler, ReconcileStopped
    from sync.reconcile_output import FORMATS, write_csv, write_json, write_table
    from sync.reconcile_progress import make_reporter
    from sync.store import StoreUnavailable

    if fmt not in FORMATS:
        fail(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}", EXIT_INPUT)
    when = parse_since(since) if since else None
    cfg = load(config)
    chosen = _entities(cfg, entities)
    with ExitStack() as stack:
        sink: IO[str] | None = None
        if output is not None:
            try:
                sink = stack.enter_context(output.open("w", encoding="utf-8", newline=""))
            except OSError as exc:
                fail(f"--output {output}: {exc.strerror}", EXIT_INPUT)
        try:
            rt = stack.enter_context(runtime(cfg, state))
        except StoreUnavailable as exc:
            fail(str(exc), EXIT_UNREACHABLE)
        missing = [f"{ep.system} has no {e!r}" for e in chosen for ep in (rt.crm, rt.erp) if ep.entity(e) is None]
        if missing:
            fail(f"cannot reconcile: the mapping file of {'; '.join(missing)}", EXIT_INPUT)
        reporter = make_reporter(err, enabled=progress)
        rec = stack.enter_context(Reconciler(rt, apply=apply, since=when, reporter=reporter))
        try:
            report = rec.run(chosen)
        except ReconcileStopped as exc:
            fail(str(exc), exc.exit_code)
        reporter.close()  # the bar must be gone before the report is printed
        code = EXIT_DRIFT if report.drift else EXIT_OK
        findings: Any = rec.findings
        if fmt == "table":
            console = out if sink is None else Console(file=sink, width=200, color_system=None)
            write_table(report, findings, console)
        elif fmt == "json":
            write_json(report, findings, sink or sys.stdout, exit_code=code)
        else:
            write_csv(report, findings, sink or sys.stdout)
        if fmt != "table" or sink is not None:
            state_text = "in sync" if not report.drift else f"{report.drift} finding(s)"
            err.print(f"reconcile: {state_text}" + (f"; report written to {output}" if sink is not None else ""),
                      highlight=False)
    raise typer.Exit(code)
