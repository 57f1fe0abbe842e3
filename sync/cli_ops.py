"""Operator commands of `concord`: daemon, dlq, conflicts, config schema, init.

Registered on the main typer app of sync/cli.py when that module imports this one. Exit codes
as in the README: 0 ok; 1 finished with dead letters or conflicts; 2 bad config or input;
3 cannot reach or authenticate to a system.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import typer
from rich.json import JSON
from rich.table import Table

from sync.cli import (
    EXIT_DRIFT,
    EXIT_INPUT,
    EXIT_OK,
    EXIT_UNREACHABLE,
    ConfigOpt,
    StateOpt,
    app,
    err,
    fail,
    load,
    out,
    runtime,
)
from sync.status import human_age

dlq_app = typer.Typer(no_args_is_help=True, help="Dead letters: changes that failed and wait for a retry.")
conflicts_app = typer.Typer(no_args_is_help=True, help="Conflicts left for a human to decide.")
config_app = typer.Typer(no_args_is_help=True, help="The config file.")
app.add_typer(dlq_app, name="dlq")
app.add_typer(conflicts_app, name="conflicts")
app.add_typer(config_app, name="config")

JsonOpt = typer.Option(False, "--json", help="Machine-readable output.")


def _json(value: Any) -> str:
    def default(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.isoformat()
        return str(v)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    elif isinstance(value, list):
        value = [dataclasses.asdict(v) if dataclasses.is_dataclass(v) and not isinstance(v, type) else v
                 for v in value]
    return json.dumps(value, indent=2, default=default)


def _when(at: datetime | None) -> str:
    """'in 5m' / '3h ago' / '-' relative to now."""
    if at is None:
        return "-"
    delta = (at - datetime.now(UTC)).total_seconds()
    return f"in {human_age(delta)}" if delta > 0 else f"{human_age(-delta)} ago"


@contextmanager
def _store(config: str | None, state: str | None) -> Iterator[Any]:
    """The state store of the config (or --state), with its errors turned into exit codes."""
    from sync.store import Store, StoreUnavailable
    url = state or load(config).state.url
    try:
        store = Store.open(url)
    except StoreUnavailable as exc:
        fail(str(exc), EXIT_UNREACHABLE)
    try:
        yield store
    finally:
        store.close()


# ---------------------------------------------------------------------------------- daemon
@app.command()
def daemon(config: str = ConfigOpt, state: str = StateOpt,
           instance: str = typer.Option(None, "--instance", help="Instance id in leases and logs "
                                        "(default: daemon.instance_id, else hostname:pid)."),
           listen: str = typer.Option(None, "--listen", help="host:port for webhooks, health and metrics "
                                      "(default: webhooks.listen).")) -> None:
    """Run the pipelines on their schedules and take webhooks until SIGTERM/SIGINT."""
    from sync.daemon import Daemon, DaemonStartError
    from sync.mapping import MappingError
    cfg = load(config)
    d = Daemon(cfg, state_url=state, instance=instance, listen=listen)
    try:
        code = d.run()
    except MappingError as exc:
        err.print(f"[bold red]error:[/] a mapping file has {len(exc.errors)} problem(s):", highlight=False)
        for e in exc.errors:
            err.print(f"  {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_INPUT) from None
    except DaemonStartError as exc:
        fail(str(exc), exc.exit_code)
    if not d.finished:
        # A job outlived the grace period; its thread would keep the interpreter alive.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise typer.Exit(code)


# ---------------------------------------------------------------------------------- dlq
@dlq_app.command("list")
def dlq_list(config: str = ConfigOpt, state: str = StateOpt,
             pipeline: str = typer.Option(None, "--pipeline", "-p", help="Only this pipeline (entity)."),
             include_resolved: bool = typer.Option(False, "--all", help="Include resolved and dropped ones."),
             as_json: bool = JsonOpt) -> None:
    """Dead letters, oldest first."""
    with _store(config, state) as store:
        items = store.list_dead_letters(include_resolved=include_resolved, pipeline=pipeline)
    if as_json:
        print(_json(items))
        return
    table = Table(title=f"dead letters ({len(items)})")
    for col in ("id", "pipeline", "system", "record", "error", "field", "attempts", "next retry", "state"):
        table.add_column(col, justify="right" if col in ("id", "attempts") else "left")
    for d in items:
        state_text = d.resolution or ("parked" if d.parked else "waiting")
        table.add_row(str(d.id), d.pipeline, d.system, d.record_id, d.error_class, d.field or "-",
                      str(d.attempts), "-" if d.resolved_at or d.parked else _when(d.next_retry_at), state_text)
    out.print(table)


@dlq_app.command("show")
def dlq_show(dead_letter_id: int = typer.Argument(..., metavar="ID"), config: str = ConfigOpt,
             state: str = StateOpt, as_json: bool = JsonOpt) -> None:
    """One dead letter: the full error, the field, the payload."""
    with _store(config, state) as store:
        d = store.get_dead_letter(dead_letter_id)
    if d is None:
        fail(f"no dead letter with id {dead_letter_id}", EXIT_INPUT)
    if as_json:
        print(_json(d))
        return
    table = Table(show_header=False, title=f"dead letter {d.id}")
    table.add_column(style="bold")
    table.add_column()
    rows = [("pipeline", d.pipeline), ("entity", d.entity), ("system", d.system), ("record", d.record_id),
            ("error", d.error_class), ("field", d.field or "-"), ("attempts", str(d.attempts)),
            ("first failed", d.first_failed_at.isoformat(timespec="seconds")),
            ("last failed", d.last_failed_at.isoformat(timespec="seconds")),
            ("next retry", "parked" if d.parked else _when(d.next_retry_at)),
            ("resolved", f"{d.resolution} {d.resolved_at.isoformat(timespec='seconds')}" if d.resolved_at else "no")]
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)
    out.print("[bold]message[/]")
    out.print(d.error_message, highlight=False, soft_wrap=True)
    out.print("[bold]payload[/]")
    out.print(JSON(json.dumps(d.payload, default=str)))


@dlq_app.command("retry")
def dlq_retry(dead_letter_id: int = typer.Argument(None, metavar="[ID]"),
              all_: bool = typer.Option(False, "--all", help="Every open dead letter (parked ones too)."),
              now: bool = typer.Option(False, "--now", help="Sync the records now instead of at the next run."),
              config: str = ConfigOpt, state: str = StateOpt, as_json: bool = JsonOpt) -> None:
    """Make dead letters due now (unparking them); the next run retries them, or this command with --now."""
    from sync.store import AlreadyResolved, RecordNotFound
    if (dead_letter_id is None) == (not all_):
        fail("give one dead letter ID, or --all", EXIT_INPUT)
    with _retry_store(config, state, now) as (store, rt):
        items = store.list_dead_letters() if all_ else [store.get_dead_letter(dead_letter_id)]
        if items == [None]:
            fail(f"no dead letter with id {dead_letter_id}", EXIT_INPUT)
        for d in items:
            try:
                store.retry_dead_letter_now(d.id)
            except (RecordNotFound, AlreadyResolved) as exc:
                fail(str(exc), EXIT_INPUT)
        if not now:
            if as_json:
                print(_json({"due_now": [d.id for d in items]}))
            else:
                out.print(f"{len(items)} dead letter(s) due now; the next run of their pipeline retries them "
                          "(or run this again with --now).")
            return
        results = _retry_now(rt, items)
        code = EXIT_OK if all(r["outcome"] == "synced" for r in results) else EXIT_DRIFT
        if as_json:
            print(_json(results))
        else:
            table = Table(title="dead letters retried now")
            for col in ("id", "pipeline", "record", "outcome", "error"):
                table.add_column(col)
            for r in results:
                colour = "green" if r["outcome"] == "synced" else "yellow"
                table.add_row(str(r["id"]), r["pipeline"], r["record"], f"[{colour}]{r['outcome']}[/]",
                              r.get("error") or "")
            out.print(table)
    raise typer.Exit(code)


@contextmanager
def _open_runtime(cfg: Any, state: str | None) -> Iterator[Any]:
    """sync.cli.runtime(), with an unreachable state store as exit 3."""
    from sync.store import StoreUnavailable
    stack = ExitStack()
    try:
        rt = stack.enter_context(runtime(cfg, state))
    except StoreUnavailable as exc:
        fail(str(exc), EXIT_UNREACHABLE)
    with stack:
        yield rt


@contextmanager
def _retry_store(config: str | None, state: str | None, with_runtime: bool) -> Iterator[tuple[Any, Any]]:
    """The store alone (making dead letters due needs no config with --state), or the whole runtime."""
    if with_runtime:
        with _open_runtime(load(config), state) as rt:
            yield rt.store, rt
        return
    with _store(config, state) as store:
        yield store, None


def _retry_now(rt: Any, items: Sequence[Any]) -> list[dict[str, Any]]:
    """Sync the dead letters' records through their pipelines; one result row per dead letter."""
    from sync.inbox_worker import source_roles
    from sync.pipeline import EntityPipeline, PipelineStopped
    groups: dict[tuple[str, str], list[Any]] = {}
    results: dict[int, dict[str, Any]] = {}
    for d in items:
        results[d.id] = {"id": d.id, "pipeline": d.pipeline, "record": d.record_id, "outcome": "skipped"}
        role = "crm" if d.system == rt.crm.system else "erp" if d.system == rt.erp.system else None
        entity_cfg = rt.config.sync.get(d.entity)
        if role is None or entity_cfg is None or role not in source_roles(entity_cfg.direction):
            results[d.id]["error"] = (f"{d.system} is not a source of {d.entity} "
                                      f"(direction {getattr(entity_cfg, 'direction', 'not configured')})")
            continue
        groups.setdefault((d.entity, role), []).append(d)
    for (entity, role), dls in groups.items():
        ids = list(dict.fromkeys(d.record_id for d in dls))
        try:
            EntityPipeline(rt, entity).sync_ids(role, ids)  # type: ignore[arg-type]
        except PipelineStopped as exc:
            fail(f"{entity}: {exc}", exc.exit_code)
        for d in dls:
            after = rt.store.get_dead_letter(d.id)
            if after is not None and after.resolved_at is not None:
                results[d.id]["outcome"] = "synced"
            elif after is not None and after.attempts > d.attempts:
                results[d.id].update(outcome="failed again", error=after.error_message)
            else:
                results[d.id].update(outcome="not synced",
                                     error=f"{d.system} {entity} {d.record_id} was not found, or needs no change")
    return list(results.values())


@dlq_app.command("drop")
def dlq_drop(dead_letter_id: int = typer.Argument(..., metavar="ID"), config: str = ConfigOpt,
             state: str = StateOpt) -> None:
    """Give up on a dead letter (it stays listed with --all, marked dropped)."""
    from sync.store import AlreadyResolved, RecordNotFound
    with _store(config, state) as store:
        try:
            store.drop_dead_letter(dead_letter_id)
        except (RecordNotFound, AlreadyResolved) as exc:
            fail(str(exc), EXIT_INPUT)
    out.print(f"dead letter {dead_letter_id} dropped")


# ---------------------------------------------------------------------------------- conflicts
@conflicts_app.command("list")
def conflicts_list(config: str = ConfigOpt, state: str = StateOpt,
                   entity: str = typer.Option(None, "--entity", "-e", help="Only this entity."),
                   as_json: bool = JsonOpt) -> None:
    """Open conflicts, oldest first."""
    with _store(config, state) as store:
        items = store.open_conflicts(entity)
    if as_json:
        print(_json(items))
        return
    table = Table(title=f"open conflicts ({len(items)})")
    for col in ("id", "entity", "crm id", "erp id", "fields", "detected"):
        table.add_column(col)
    for c in items:
        table.add_row(str(c.id), c.entity, c.crm_id, c.erp_id or "-", ", ".join(c.fields), _when(c.detected_at))
    out.print(table)


@conflicts_app.command("show")
def conflicts_show(conflict_id: int = typer.Argument(..., metavar="ID"), config: str = ConfigOpt,
                   state: str = StateOpt, as_json: bool = JsonOpt) -> None:
    """Both versions of a conflicting record, field by field, with the last agreed value."""
    with _store(config, state) as store:
        c = store.get_conflict(conflict_id)
    if c is None:
        fail(f"no conflict with id {conflict_id}", EXIT_INPUT)
    if as_json:
        print(_json(c))
        return
    state_text = f"resolved ({c.resolution})" if c.resolved_at else "open"
    table = Table(title=f"conflict {c.id}: {c.entity} crm {c.crm_id} / erp {c.erp_id or '-'} ({state_text})")
    for col in ("field", "last agreed", "crm", "erp"):
        table.add_column(col)
    base = c.base or {}
    names = sorted(set(c.crm_version or {}) | set(c.erp_version or {}))
    for name in sorted(names, key=lambda n: (n not in c.fields, n)):
        crm_v, erp_v = (c.crm_version or {}).get(name), (c.erp_version or {}).get(name)
        if name not in c.fields and crm_v == erp_v:
            continue
        style = "bold yellow" if name in c.fields else ""
        table.add_row(f"[{style}]{name}[/]" if style else name, _cell(base.get(name)), _cell(crm_v), _cell(erp_v))
    out.print(table)
    out.print(f"decide with: concord conflicts resolve {c.id} --take crm|erp")


def _cell(value: Any) -> str:
    return "-" if value is None else json.dumps(value, default=str) if not isinstance(value, str) else value


@conflicts_app.command("resolve")
def conflicts_resolve(conflict_id: int = typer.Argument(..., metavar="ID"),
                      take: str = typer.Option(..., "--take", help="The side whose version wins: crm or erp."),
                      config: str = ConfigOpt, state: str = StateOpt, as_json: bool = JsonOpt) -> None:
    """Write the chosen side's version to the other side, then mark the conflict resolved."""
    from sync.pipeline import EntityPipeline, PipelineStopped
    if take not in ("crm", "erp"):
        fail(f"--take must be crm or erp, not {take!r}", EXIT_INPUT)
    cfg = load(config)
    with _open_runtime(cfg, state) as rt:
        c = rt.store.get_conflict(conflict_id)
        if c is None:
            fail(f"no conflict with id {conflict_id}", EXIT_INPUT)
        if c.resolved_at is not None:
            fail(f"conflict {conflict_id} is already resolved ({c.resolution})", EXIT_INPUT)
        if c.entity not in rt.config.sync:
            fail(f"conflict {conflict_id} is about {c.entity}, which the config does not sync", EXIT_INPUT)
        record_id = c.crm_id if take == "crm" else c.erp_id
        if not record_id:
            fail(f"conflict {conflict_id} has no {take} record to take", EXIT_INPUT)
        pipeline = EntityPipeline(rt, c.entity, policy_override=f"{take}_wins")
        try:
            counts = pipeline.sync_ids(take, [record_id])  # type: ignore[arg-type]
        except PipelineStopped as exc:
            fail(f"{c.entity}: {exc}", exc.exit_code)
        system = rt.side(take).system  # type: ignore[arg-type]
        outcome = counts.as_dict()
        if counts.read == 0:
            _resolve_failed(as_json, conflict_id, outcome,
                            f"{system} {c.entity} {record_id} no longer exists; nothing was written")
        if counts.dead_letters or counts.conflicts:
            _resolve_failed(as_json, conflict_id, outcome,
                            f"writing {system}'s version failed (see `concord dlq list`); the conflict stays open")
        rt.store.resolve_conflict(conflict_id, take)
    if as_json:
        print(_json({"id": conflict_id, "resolution": take, "counts": outcome}))
        return
    written = outcome["updated"] + outcome["updated_back"] + outcome["created"]
    out.print(f"conflict {conflict_id} resolved: took {take} ({system} {c.entity} {record_id}); "
              f"{written} write(s)" + ("" if written else ", both sides already agree"))


def _resolve_failed(as_json: bool, conflict_id: int, counts: dict[str, int], message: str) -> None:
    if as_json:
        print(_json({"id": conflict_id, "resolution": None, "counts": counts, "error": message}))
        raise typer.Exit(EXIT_DRIFT)
    fail(message, EXIT_DRIFT)


# ---------------------------------------------------------------------------------- config
@config_app.command("schema")
def config_schema(output: Path = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout.")
                  ) -> None:
    """The JSON Schema of the config file (point your editor's YAML support at it)."""
    from sync.config import config_json_schema
    text = json.dumps(config_json_schema(), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text, encoding="utf-8")
    out.print(f"wrote {output}")


# ---------------------------------------------------------------------------------- init
TEMPLATE_FILES = {"concord.yaml": "concord.yaml", "concord.env": "concord.env"}


def init_files() -> dict[str, str]:
    """What `concord init` writes: relative path -> content (the starter config, the env file,
    and a copy of every mapping file shipped with Concord)."""
    templates = resources.files("sync") / "templates"
    files = {target: (templates / name).read_text(encoding="utf-8") for target, name in TEMPLATE_FILES.items()}
    for item in sorted(resources.files("mappings").iterdir(), key=lambda p: p.name):
        if item.name.endswith(".yaml"):
            files[f"mappings/{item.name}"] = item.read_text(encoding="utf-8")
    return files


@app.command()
def init(directory: Path = typer.Argument(Path("."), metavar="[DIR]", help="Where to write (default: here)."),
         force: bool = typer.Option(False, "--force", help="Overwrite files that exist.")) -> None:
    """Write a starter concord.yaml, concord.env and the mapping files into DIR."""
    files = init_files()
    existing = [rel for rel in files if (directory / rel).exists()]
    if existing and not force:
        fail(f"{directory}: would overwrite {', '.join(existing)} (use --force to replace them)", EXIT_INPUT)
    for rel, content in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        if rel.endswith(".env"):
            path.chmod(0o600)  # it will hold tokens
    out.print(f"wrote {', '.join(str(directory / rel) for rel in files)}")
    out.print("next: put your tokens in concord.env, export them (or use the systemd unit), then run\n"
              f"  concord validate -c {directory / 'concord.yaml'} --check-connections\n"
              f"  concord setup -c {directory / 'concord.yaml'}\n"
              f"  concord daemon -c {directory / 'concord.yaml'}")


__all__ = ["config_app", "conflicts_app", "daemon", "dlq_app", "init", "init_files"]
