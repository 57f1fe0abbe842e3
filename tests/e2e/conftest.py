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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sync.verify import Agreement, check_agreement
from tests.support.simenv import SimEnv, env_factory

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
class Concord(SimEnv):
    """Both simulators, a config for them in ``folder``, and the CLI (a subprocess) against that config."""

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

    def agreement(self) -> Agreement:
        with self.runtime() as rt:
            return check_agreement(rt, "customer")

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
    make, stop = env_factory(tmp_path, Concord)
    yield make
    stop()


@pytest.fixture
def env(make_env: Callable[..., Concord]) -> Concord:
    """Default simulators and config, state in SQLite."""
    return make_env()


@pytest.fixture
def env_any_store(make_env: Callable[..., Concord], store_url: str) -> Concord:
    """Default simulators and config, state on SQLite and on PostgreSQL (parametrised)."""
    return make_env(store_url)
