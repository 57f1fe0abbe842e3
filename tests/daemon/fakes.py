"""Test doubles for the daemon: a runtime whose endpoints have mapping objects but no network,
pipelines that record what the daemon asks of them, and clocks the tests move by hand."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

from sync.config import Config, load_config
from sync.pipeline import Counts, PipelineStopped, RunReport
from sync.runtime import Endpoint, Runtime

CONFIG = """\
state: {{url: "sqlite:///{db}"}}
crm: {{connector: hubspot, token: t0ken-hub, base_url: "http://127.0.0.1:9"}}
erp: {{connector: odoo, url: "http://127.0.0.1:9", db: d, username: u, api_key: k3y-odoo}}
sync:
  customer: {{direction: both, every: 5m}}
  product: {{direction: erp_to_crm, every: 1h}}
daemon: {{lease_ttl: 30s, instance_id: me}}
webhooks: {{listen: "127.0.0.1:18999"}}
logging: {{format: json}}
"""

CRM_OBJECTS = {"customer": "companies", "product": "products", "order": "deals"}
ERP_OBJECTS = {"customer": "res.partner", "product": "product.product", "order": "sale.order"}


def make_config(tmp_path: Path, text: str | None = None) -> Config:
    path = tmp_path / "concord.yaml"
    path.write_text(text or CONFIG.format(db=tmp_path / "state.db"))
    return load_config(path)


class FakeClock:
    """An aware-UTC wall clock (for the store) and a monotonic one (for the daemon), moved together."""

    def __init__(self) -> None:
        self.wall = datetime(2025, 1, 1, tzinfo=UTC)
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


class FakeConnector:
    name: ClassVar[str] = "fake"

    def __init__(self) -> None:
        self.closed = False

    def parse_webhook(self, request: Any) -> list[Any]:
        return []

    def api_calls(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        self.closed = True


def _mapping(objects: dict[str, str]) -> Any:
    return SimpleNamespace(entities={e: SimpleNamespace(spec=SimpleNamespace(object=o)) for e, o in objects.items()})


def fake_runtime(config: Config, store: Any, instance: str = "me") -> Runtime:
    crm = Endpoint(role="crm", system="hubspot", connector=FakeConnector(), mapping=_mapping(CRM_OBJECTS))  # type: ignore[arg-type]
    erp = Endpoint(role="erp", system="odoo", connector=FakeConnector(), mapping=_mapping(ERP_OBJECTS))  # type: ignore[arg-type]
    return Runtime(config=config, store=store, crm=crm, erp=erp, instance=instance)


@dataclass
class SyncCall:
    entity: str
    role: str
    ids: list[str]
    deleted: list[str]
    epoch: int | None


@dataclass
class FakePipelines:
    """A pipeline factory: each run() goes through ``pages`` pages, calling ``hooks[entity](page)``
    before each, and stops between pages when should_stop() says so (like EntityPipeline)."""

    pages: int = 3
    hooks: dict[str, Callable[[int], None]] = field(default_factory=dict)
    run_errors: dict[str, BaseException] = field(default_factory=dict)
    sync_errors: dict[str, BaseException] = field(default_factory=dict)
    api_calls: dict[str, dict[str, int]] = field(default_factory=lambda: {"hubspot": {"read": 1}, "odoo": {"read": 1}})
    created: list[tuple[str, int | None]] = field(default_factory=list)
    reports: list[tuple[str, int, RunReport]] = field(default_factory=list)
    sync_calls: list[SyncCall] = field(default_factory=list)

    def __call__(self, rt: Any, entity: str, *, epoch: int | None = None,
                 should_stop: Callable[[], bool] = lambda: False, **_: Any) -> FakePipeline:
        self.created.append((entity, epoch))
        return FakePipeline(self, entity, epoch, should_stop)


class FakePipeline:
    def __init__(self, owner: FakePipelines, entity: str, epoch: int | None, should_stop: Callable[[], bool]) -> None:
        self.owner, self.entity, self.epoch, self.should_stop = owner, entity, epoch, should_stop

    def run(self) -> RunReport:
        error = self.owner.run_errors.get(self.entity)
        if error is not None:
            raise error
        report = RunReport(self.entity)
        done = 0
        for page in range(self.owner.pages):
            if self.should_stop():
                report.interrupted = True
                break
            hook = self.owner.hooks.get(self.entity)
            if hook is not None:
                hook(page)
            done += 1
        report.by_direction["crm_to_erp"] = Counts(read=done, created=done)
        report.counts.add(report.by_direction["crm_to_erp"])
        report.api_calls = self.owner.api_calls
        self.owner.reports.append((self.entity, done, report))
        return report

    def sync_ids(self, role: str, ids: Sequence[str], *, deleted_ids: Sequence[str] = ()) -> Counts:
        error = self.owner.sync_errors.get(self.entity)
        if error is not None:
            raise error
        self.owner.sync_calls.append(SyncCall(self.entity, role, list(ids), sorted(deleted_ids), self.epoch))
        return Counts(read=len(ids), updated=len(ids))


def stopped(system: str, message: str = "unreachable after retries: boom", code: int = 3) -> PipelineStopped:
    return PipelineStopped(f"{system}: {message}", exit_code=code)
