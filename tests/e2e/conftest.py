"""End-to-end fixtures: both simulators in this process (threads), a config file in tmp_path that
points at them, and the `concord` CLI run as a subprocess against that config.

The state store is parametrised over SQLite and PostgreSQL through the root ``store_url`` fixture
(the PostgreSQL URL carries ``?options=-csearch_path=<schema>``, so the subprocess lands in the
test's own schema).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sandbox.fixtures import seed, write_config
from sandbox.hubspot import HubSpotSimulator
from sandbox.odoo import OdooSimulator
from sync.config import load_config
from sync.runtime import Runtime, build_runtime
from sync.store import Store
from sync.verify import Agreement, check_agreement

CLI = [sys.executable, "-m", "sync.cli"]
# Rich wraps at 80 columns when not on a terminal; wide output keeps messages on one line.
CLI_ENV = {**os.environ, "COLUMNS": "250", "PYTHONUNBUFFERED": "1"}


@dataclass
class Result:
    """A finished `concord` subprocess."""

    args: list[str]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def __str__(self) -> str:
        return f"concord {' '.join(self.args)} -> exit {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}"


@dataclass
class Concord:
    """Both simulators, a config for them in ``folder``, and the CLI against that config."""

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

    def cli_args(self, *args: str) -> list[str]:
        return [*CLI, *args]

    def run(self, *args: str, timeout: float = 180, config: bool = True) -> Result:
        """Run ``concord ARGS -c CONFIG`` to completion."""
        argv = [*args, "-c", str(self.config)] if config else list(args)
        proc = subprocess.run(self.cli_args(*argv), cwd=self.folder, env=CLI_ENV, capture_output=True, text=True,
                              timeout=timeout, check=False)
        return Result(argv, proc.returncode, proc.stdout, proc.stderr)

    def popen(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        """Start ``concord ARGS -c CONFIG`` without waiting; stdout and stderr go to ``log``."""
        with log.open("ab") as sink:
            return subprocess.Popen(self.cli_args(*args, "-c", str(self.config)), cwd=self.folder, env=CLI_ENV,
                                    stdout=sink, stderr=subprocess.STDOUT)

    def sync(self, *entities: str, dry_run: bool = False, timeout: float = 180) -> Result:
        """`concord sync [ENTITIES] --json`."""
        return self.run("sync", *(entities or ("customer",)), "--json", *(["--dry-run"] if dry_run else []),
                        timeout=timeout)

    def status(self) -> dict[str, Any]:
        """`concord status --json`, the customer pipeline's row."""
        result = self.run("status", "--json")
        assert result.code == 0, str(result)
        rows = {p["pipeline"]: p for p in result.json()["pipelines"]}
        return rows["customer"]

    def sync_until_clean(self, *, attempts: int = 8, allowed: tuple[int, ...] = (0, 1, 3)) -> list[Result]:
        """Run `concord sync` until it exits 0; every intermediate exit code must be in ``allowed``."""
        results = []
        for _ in range(attempts):
            result = self.sync()
            results.append(result)
            assert result.code in allowed, str(result)
            if result.code == 0:
                return results
        raise AssertionError(f"no clean sync in {attempts} runs; last:\n{results[-1]}")

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
        """What `concord setup` does (tested through the CLI in test_cli.py), in-process for speed."""
        with self.runtime() as rt:
            for ep in (rt.crm, rt.erp):
                ep.connector.setup([ep.spec("customer")])

    def seed(self, *, crm_only: int = 0, erp_only: int = 0, shared: int = 0,
             erp_overrides: Callable[[int], dict[str, Any]] | None = None) -> list[tuple[str, int]]:
        """Custom fields, then customers on each side (``shared`` of them on both, same e-mail)."""
        self.setup_systems()
        return seed(self.hub, self.odoo, crm_only=crm_only, erp_only=erp_only, shared=shared,
                    erp_overrides=erp_overrides)

    def agreement(self) -> Agreement:
        with self.runtime() as rt:
            return check_agreement(rt, "customer")

    def writes(self) -> tuple[int, int]:
        """(HubSpot, Odoo) write requests served so far."""
        return self.hub.write_count, self.odoo.write_count

    # ------------------------------------------------------------------ reading the systems directly
    def companies(self) -> list[dict[str, Any]]:
        """Live HubSpot companies (properties only)."""
        return [c["properties"] for c in self.hub.all("companies")]

    def partners(self) -> list[dict[str, Any]]:
        """Active Odoo partners the customer mapping covers (companies)."""
        return [p for p in self.odoo.all("res.partner", include_archived=False) if p.get("is_company")]


def assert_no_duplicates(env: Concord, *, companies: int, partners: int) -> None:
    """Each side holds exactly the expected records, every idempotency key once, and both agree."""
    comps, parts = env.companies(), env.partners()
    assert len(comps) == companies
    assert len(parts) == partners
    erp_keys = [c.get("concord_erp_id") for c in comps if c.get("concord_erp_id")]
    crm_keys = [p.get("x_concord_crm_id") for p in parts if p.get("x_concord_crm_id")]
    assert len(erp_keys) == len(set(erp_keys)), "a HubSpot key (Odoo id) is on two companies"
    assert len(crm_keys) == len(set(crm_keys)), "an Odoo key (HubSpot id) is on two partners"
    result = env.agreement()
    assert result.ok, (result.differences[:5], result.unlinked_crm[:5], result.unlinked_erp[:5])
    assert result.linked == companies == partners


@pytest.fixture
def make_env(tmp_path: Path) -> Iterator[Callable[..., Concord]]:
    """Build a Concord environment; ``hub``/``odoo`` are simulator keyword arguments."""
    sims: list[Any] = []

    def make(state_url: str | None = None, *, hub: dict[str, Any] | None = None,
             odoo: dict[str, Any] | None = None, **config: Any) -> Concord:
        h = HubSpotSimulator(**(hub or {})).start()
        sims.append(h)
        o = OdooSimulator(**(odoo or {})).start()
        sims.append(o)
        folder = tmp_path / f"env{len(sims) // 2}"
        folder.mkdir()
        env = Concord(h, o, folder, state_url or f"sqlite:///{folder / 'concord.db'}")
        if config:
            env.configure(**config)
        return env

    yield make
    for sim in sims:
        sim.stop()


@pytest.fixture
def env(make_env: Callable[..., Concord]) -> Concord:
    """Default simulators and config, state in SQLite."""
    return make_env()


@pytest.fixture
def env_any_store(make_env: Callable[..., Concord], store_url: str) -> Concord:
    """Default simulators and config, state on SQLite and on PostgreSQL (parametrised)."""
    return make_env(store_url)
