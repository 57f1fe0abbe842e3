"""Builds what a command needs from a loaded config: the store, both connectors and their mappings.

Nothing here knows a product by name: connectors come from the registry, mappings from files.
"""
from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import structlog

from connectors import registry
from connectors.base import Connector, EntitySpec
from sync.config import Config
from sync.mapping import EntityMapping, MappingFile, load_default_mapping, load_mapping
from sync.store import Store

log = structlog.get_logger("concord.runtime")

Role = Literal["crm", "erp"]


@dataclass
class Endpoint:
    """One side of the bridge: its role, connector and mapping file."""

    role: Role
    system: str
    connector: Connector
    mapping: MappingFile

    def entity(self, entity: str) -> EntityMapping | None:
        return self.mapping.entities.get(entity)

    def spec(self, entity: str) -> EntitySpec:
        """The connector-facing spec of an entity, with the custom fields `setup` must create."""
        em = self.mapping.entities[entity]
        options = dict(em.spec.options)
        options["custom_fields"] = dict(getattr(em, "custom_fields", {}) or {})
        return dataclasses.replace(em.spec, options=options)


@dataclass
class Runtime:
    """Everything one command run works with; close() releases sessions and the store."""

    config: Config
    store: Store
    crm: Endpoint
    erp: Endpoint
    instance: str
    extras: dict[str, Any] = field(default_factory=dict)

    def side(self, role: Role) -> Endpoint:
        return self.crm if role == "crm" else self.erp

    def other(self, role: Role) -> Endpoint:
        return self.erp if role == "crm" else self.crm

    def api_calls(self) -> dict[str, dict[str, int]]:
        return {self.crm.system: self.crm.connector.api_calls(),
                self.erp.system: self.erp.connector.api_calls()}

    def close(self) -> None:
        for ep in (self.crm, self.erp):
            try:
                ep.connector.close()
            except Exception:  # closing must not hide the real error of a run
                log.warning("connector.close_failed", system=ep.system)
        self.store.close()


def default_instance_id() -> str:
    """hostname:pid — unique enough for leases and runs, readable in `concord status`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def load_endpoint_mapping(settings: Any, cls: Any, base_dir: Path | None) -> MappingFile:
    """The mapping file named in the config (relative to the config file), or the shipped one."""
    if settings.mapping:
        path = Path(settings.mapping)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return load_mapping(path)
    return load_default_mapping(cls.name)


# webhooks.<system>.<key> in the config -> the connector setting it fills when that is unset.
_WEBHOOK_SETTINGS = {"client_secret": ("client_secret",), "token": ("webhook_token",), "header": ("webhook_header",)}


def with_webhook_settings(settings: Any, source: Any) -> Any:
    """Secrets given under ``webhooks.<system>`` fill the connector's own webhook settings, so the
    two places a config may hold them never disagree silently: the connector's section wins."""
    if source is None:
        return settings
    update: dict[str, Any] = {}
    for key, targets in _WEBHOOK_SETTINGS.items():
        value = getattr(source, key, None)
        if value is None or key not in source.model_fields_set:
            continue
        for target in targets:
            if target in type(settings).model_fields and target not in settings.model_fields_set:
                update[target] = value
    return settings.model_copy(update=update) if update else settings


def build_endpoint(role: Role, settings: Any, base_dir: Path | None,
                   on_response: Callable[[str, str, int | None, float], None] | None = None,
                   webhook_source: Any = None) -> Endpoint:
    settings = with_webhook_settings(settings, webhook_source)
    cls = registry.get(settings.connector)
    connector = cls(settings, on_response=on_response)
    mapping = load_endpoint_mapping(settings, cls, base_dir)
    return Endpoint(role=role, system=cls.name, connector=connector, mapping=mapping)


def build_runtime(config: Config, *, state_url: str | None = None, instance: str | None = None,
                  on_response: Callable[[str, str, int | None, float], None] | None = None,
                  upgrade: bool = True) -> Runtime:
    """Open the store and build both endpoints from a validated config."""
    base_dir = Path(config.source_path).parent if getattr(config, "source_path", None) else None
    hooks = getattr(config, "webhooks", None)
    crm = build_endpoint("crm", config.crm, base_dir, on_response,
                         hooks.source(config.crm.connector) if hooks is not None else None)
    erp = build_endpoint("erp", config.erp, base_dir, on_response,
                         hooks.source(config.erp.connector) if hooks is not None else None)
    store = Store.open(state_url or config.state.url, upgrade=upgrade)
    return Runtime(config=config, store=store, crm=crm, erp=erp,
                   instance=instance or (config.daemon.instance_id if getattr(config, "daemon", None)
                                         and config.daemon.instance_id else default_instance_id()))
