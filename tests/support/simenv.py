"""Both simulators in this process, a config for them in a folder, and in-process views of the
runtime and the store: the common base of the end-to-end and reconcile test environments."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sandbox.fixtures import seed, write_config
from sandbox.hubspot import HubSpotSimulator
from sandbox.odoo import OdooSimulator
from sync.config import load_config
from sync.runtime import Runtime, build_runtime
from sync.store import Store


@dataclass
class SimEnv:
    """Both simulators, a config for them in ``folder``, and the store it names."""

    hub: HubSpotSimulator
    odoo: OdooSimulator
    folder: Path
    state_url: str
    config: Path = field(init=False)

    def __post_init__(self) -> None:
        self.configure()

    def configure(self, **options: Any) -> Path:
        """(Re)write the config; ``options`` as for sandbox.fixtures.config_data (customer=..., ...)."""
        self.config = write_config(self.folder, self.hub, self.odoo, self.state_url, **options)
        return self.config

    @contextmanager
    def runtime(self) -> Iterator[Runtime]:
        """The config's runtime in this process (the oracle's view of both systems and the store)."""
        rt = build_runtime(load_config(self.config))
        try:
            yield rt
        finally:
            rt.close()

    @contextmanager
    def store(self) -> Iterator[Store]:
        store = Store.open(self.state_url)
        try:
            yield store
        finally:
            store.close()

    def setup_systems(self) -> None:
        """What `concord setup` does for customers (tested through the CLI elsewhere), in-process."""
        with self.runtime() as rt:
            for ep in (rt.crm, rt.erp):
                ep.connector.setup([ep.spec("customer")])

    def seed(self, *, crm_only: int = 0, erp_only: int = 0, shared: int = 0,
             erp_overrides: Callable[[int], dict[str, Any]] | None = None) -> list[tuple[str, int]]:
        """Custom fields, then customers on each side (``shared`` of them on both, same e-mail)."""
        self.setup_systems()
        return seed(self.hub, self.odoo, crm_only=crm_only, erp_only=erp_only, shared=shared,
                    erp_overrides=erp_overrides)

    def writes(self) -> tuple[int, int]:
        """(HubSpot, Odoo) write requests served so far (since the last log reset)."""
        return self.hub.write_count, self.odoo.write_count


E = TypeVar("E", bound=SimEnv)


def env_factory(tmp_path: Path, cls: type[E]) -> tuple[Callable[..., E], Callable[[], None]]:
    """``(make, stop)``: make(state_url=None, *, hub=None, odoo=None, **config) starts two simulators
    (``hub``/``odoo`` are their keyword arguments) and returns a ``cls``; stop() stops them all."""
    sims: list[Any] = []

    def make(state_url: str | None = None, *, hub: dict[str, Any] | None = None,
             odoo: dict[str, Any] | None = None, **config: Any) -> E:
        h = HubSpotSimulator(**(hub or {})).start()
        sims.append(h)
        o = OdooSimulator(**(odoo or {})).start()
        sims.append(o)
        folder = tmp_path / f"env{len(sims) // 2}"
        folder.mkdir()
        env = cls(h, o, folder, state_url or f"sqlite:///{folder / 'concord.db'}")
        if config:
            env.configure(**config)
        return env

    def stop() -> None:
        for sim in sims:
            sim.stop()

    return make, stop
