"""Fixtures of the reconcile tests: both simulators in this process, a config pointing at them,
the `concord` CLI run in-process (typer's runner), and helpers that change the simulators'
data behind Concord's back."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sync.cli import app
from tests.support.simenv import SimEnv, env_factory

runner = CliRunner()


@dataclass
class Run:
    """A finished in-process `concord` command."""

    args: list[str]
    code: int
    out: str
    err: str
    report: Any = None

    def __str__(self) -> str:
        return f"concord {' '.join(self.args)} -> exit {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}"


@dataclass
class Env(SimEnv):
    """Both simulators, a config for them in ``folder``, and the CLI (in-process) against that config."""

    reports: int = 0

    def cli(self, *args: str) -> Run:
        argv = [*args, "-c", str(self.config)]
        result = runner.invoke(app, argv)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Run(argv, result.exit_code, result.stdout, result.stderr)

    def reconcile(self, *args: str) -> Run:
        """`concord reconcile ARGS --format json --output FILE`, the report parsed."""
        self.reports += 1
        path = self.folder / f"report{self.reports}.json"
        run = self.cli("reconcile", *args, "--format", "json", "--output", str(path), "--no-progress")
        assert run.code in (0, 1), str(run)
        run.report = json.loads(path.read_text())
        return run

    def sync(self) -> Run:
        return self.cli("sync", "--json")

    def reset_counters(self) -> None:
        self.hub.reset_log()
        self.odoo.reset_log()

    # ------------------------------------------------------------------ behind Concord's back
    def purge_company(self, record_id: str) -> None:
        """A HubSpot company gone for good (emptied from the recycle bin after 90 days, or merged
        away): the simulator has no helper for that, so its store is edited directly."""
        hub = self.hub
        with hub.lock:
            store = hub._helper_store("companies")
            rec = store.records[int(record_id)]
            if not rec.archived:
                store.retire(rec)
            del store.records[rec.num]
            store.gone.remove(rec.num)

    def new_partner(self, **values: Any) -> int:
        """An Odoo customer company created by hand."""
        return self.odoo.create("res.partner", {"is_company": True, "customer_rank": 1, **values})

    def country_id(self, code: str) -> int:
        return next(r["id"] for r in self.odoo.all("res.country") if r["code"] == code)


def findings(report: dict[str, Any], entity: str = "customer", key: str = "findings") -> list[dict[str, Any]]:
    """The drift findings (in-sync ones left out) of one entity of a JSON report."""
    e = next(x for x in report["entities"] if x["entity"] == entity)
    return [f for f in e[key] if f["cls"] != "in_sync"]


def summary(f: dict[str, Any]) -> tuple[Any, ...]:
    """(class, crm id, erp id, fields) of a finding, comparable in a set."""
    ids = (f.get("crm_id") or tuple(f.get("crm_ids", ())), f.get("erp_id") or tuple(f.get("erp_ids", ())))
    names = tuple(sorted(d["field"] for d in f.get("fields", [])))
    return (f["cls"], *ids, names)


@pytest.fixture
def make_env(tmp_path: Path) -> Iterator[Callable[..., Env]]:
    make, stop = env_factory(tmp_path, Env)
    yield make
    stop()


@pytest.fixture
def env(make_env: Callable[..., Env], store_url: str) -> Env:
    """Default simulators and config, state on SQLite and on PostgreSQL (parametrised)."""
    return make_env(store_url)
