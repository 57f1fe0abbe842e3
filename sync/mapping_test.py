"""`concord mapping test`: a native record -> canonical -> the other side's native form, offline."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from connectors import registry
from sync.merge import flatten


def _mappings(config_path: str | None) -> dict[str, Any]:
    """system name -> MappingFile: from the config when given, else the shipped defaults."""
    from sync.mapping import load_default_mapping
    from sync.runtime import load_endpoint_mapping
    if config_path:
        from sync.config import load_config
        cfg = load_config(Path(config_path))
        base = Path(config_path).parent
        out = {}
        for settings in (cfg.crm, cfg.erp):
            cls = registry.get(settings.connector)
            out[cls.name] = load_endpoint_mapping(settings, cls, base)
        return out
    return {name: load_default_mapping(name) for name in registry.names()}


def run_mapping_test(entity: str, system: str, input_file: Path, config_path: str | None,
                     out: Console, err: Console) -> int:
    """Print the canonical form and the renderings; returns an exit code (0 ok, 2 bad input)."""
    from sync.config import ConfigError
    from sync.mapping import MappingError
    try:
        mappings = _mappings(config_path)
    except (ConfigError, MappingError) as exc:
        err.print(f"[bold red]error:[/] {len(exc.errors)} problem(s):")
        for e in exc.errors:
            err.print(f"  {e}", highlight=False)
        return 2
    if system not in mappings:
        err.print(f"[bold red]error:[/] --system {system!r}: expected one of {', '.join(sorted(mappings))}")
        return 2
    em = mappings[system].entities.get(entity)
    if em is None:
        err.print(f"[bold red]error:[/] the {system} mapping has no entity {entity!r}")
        return 2
    try:
        raw = json.loads(Path(input_file).read_text())
    except FileNotFoundError:
        err.print(f"[bold red]error:[/] {input_file}: no such file")
        return 2
    except json.JSONDecodeError as exc:
        err.print(f"[bold red]error:[/] {input_file}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}")
        return 2
    # Accept a product's whole API record too: HubSpot wraps values in "properties".
    data = raw.get("properties", raw) if isinstance(raw, dict) else None
    if not isinstance(data, dict):
        err.print(f"[bold red]error:[/] {input_file}: expected a JSON object (one native record)")
        return 2
    try:
        canonical = em.to_canonical(data)
    except Exception as exc:
        err.print(f"[bold red]error:[/] {input_file}: {exc}")
        return 2
    out.print(f"[bold]canonical {entity}[/] (from {system}):")
    out.print_json(json.dumps(flatten(canonical), default=str, sort_keys=True))
    for other, mf in sorted(mappings.items()):
        if other == system or entity not in mf.entities:
            continue
        oem = mf.entities[entity]
        rendered = oem.to_native(canonical, fields=set(oem.outbound_fields()) & set(flatten(canonical)))
        out.print(f"[bold]as {other} would receive it[/]:")
        out.print_json(json.dumps(rendered, default=str, sort_keys=True))
    return 0
