"""Fixtures of the daemon tests: a SQLite store on a hand-moved clock, a config, fake pipelines
and a Daemon wired to them (connected, but with no scheduler or web server running)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sync.config import Config
from sync.daemon import Daemon
from sync.store import Store

from .fakes import FakeClock, FakePipelines, fake_runtime, make_config


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
def clocked_store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}", clock=clock.now)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def pipelines() -> FakePipelines:
    return FakePipelines()


@pytest.fixture
def make_daemon(config: Config, clocked_store: Store, clock: FakeClock, pipelines: FakePipelines) -> Iterator[Any]:
    made: list[Daemon] = []

    def make(instance: str = "me", *, connect: bool = True, **kwargs: Any) -> Daemon:
        factory = kwargs.pop("runtime_factory", None) or (lambda cfg, **kw: fake_runtime(cfg, clocked_store,
                                                                                           kw.get("instance") or instance))
        d = Daemon(config, instance=instance, serve_web=False, runtime_factory=factory, pipeline_factory=pipelines,
                   monotonic=clock.monotonic, **kwargs)
        if connect:
            assert d._connect()
        made.append(d)
        return d

    yield make
    for d in made:
        if d.scheduler.running:
            d.scheduler.shutdown(wait=False)
